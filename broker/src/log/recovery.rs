//! Loading a partition directory at open (Kafka's `LogLoader`): finding segments, cleaning up leftovers,
//! and after an unclean shutdown scanning everything past the recovery point and cutting off a torn tail.
//!
//! It must never guess: a torn or corrupt tail in unflushed data is truncated, anything else that does not
//! add up is a typed error naming the file.

use std::{collections::BTreeMap, fs, path::Path};

use super::{
    segment::{Segment, SegmentRepair},
    sync_dir, LogConfig, LogError,
};

/// What opening a log had to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub clean_shutdown: bool,
    /// Segments whose every batch was read and CRC-checked.
    pub segments_scanned: usize,
    /// Bytes cut from the end of the last good segment (torn or corrupt tail).
    pub bytes_truncated: u64,
    /// Whole segments removed because they followed a truncation point.
    pub segments_removed: usize,
    /// Segments whose `.index`/`.timeindex` were missing or failed sanity checks and were rebuilt.
    pub indexes_rebuilt: usize,
    /// Stray files (`.deleted`, `.cleaned`, `.swap`, orphan indexes) removed.
    pub stray_files_removed: usize,
    /// Segments whose interrupted compaction swap (`<base>.log.swap`) was completed.
    pub swaps_completed: usize,
    pub log_end_offset: i64,
}

#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) segments: BTreeMap<i64, Segment>,
    pub(crate) active: Segment,
    pub(crate) report: RecoveryReport,
}

/// Kafka suffixes for files left behind by an interrupted delete, compaction or swap. By the time these are
/// removed, [`complete_swaps`] has already completed every `.log.swap`; what is left (`.cleaned` files of a
/// clean that never reached its swap, temp files) is not data we own.
const STRAY_SUFFIXES: [&str; 4] = [".deleted", ".cleaned", ".swap", ".tmp"];

fn parse_base_offset(stem: &str) -> Option<i64> {
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

pub(crate) fn load(
    dir: &Path,
    config: &LogConfig,
    recovery_point: i64,
    clean: bool,
) -> Result<Loaded, LogError> {
    fs::create_dir_all(dir).map_err(|source| LogError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut report = RecoveryReport {
        clean_shutdown: clean,
        ..RecoveryReport::default()
    };
    let list_err = |source| LogError::ListDir {
        path: dir.to_path_buf(),
        source,
    };
    report.swaps_completed = complete_swaps(dir)?;
    let mut bases = Vec::new();
    let mut index_files = Vec::new();
    for entry in fs::read_dir(dir).map_err(list_err)? {
        let path = entry.map_err(list_err)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        if STRAY_SUFFIXES.iter().any(|s| name.ends_with(s)) {
            fs::remove_file(&path).map_err(|source| LogError::RemoveFile {
                path: path.clone(),
                source,
            })?;
            report.stray_files_removed += 1;
            continue;
        }
        if let Some(stem) = name.strip_suffix(".log") {
            bases.push(
                parse_base_offset(stem)
                    .ok_or_else(|| LogError::UnexpectedFile { path: path.clone() })?,
            );
        } else if let Some(stem) = name
            .strip_suffix(".index")
            .or_else(|| name.strip_suffix(".timeindex"))
        {
            index_files.push((stem.to_owned(), path));
        }
    }
    bases.sort_unstable();
    for (stem, path) in index_files {
        if parse_base_offset(&stem).is_none_or(|b| bases.binary_search(&b).is_err()) {
            tracing::warn!(file = %path.display(), "removing index without a segment");
            fs::remove_file(&path).map_err(|source| LogError::RemoveFile {
                path: path.clone(),
                source,
            })?;
            report.stray_files_removed += 1;
        }
    }

    let mut segments = BTreeMap::new();
    let mut truncated_at = None;
    for (i, &base) in bases.iter().enumerate() {
        if let Some(cut) = truncated_at {
            // Everything after a truncated segment is unflushed data that followed a hole: drop it.
            remove_segment_files(dir, base)?;
            tracing::warn!(dir = %dir.display(), base_offset = base, truncated_at = cut, "removed segment after truncation");
            report.segments_removed += 1;
            continue;
        }
        let next_base = bases.get(i + 1).copied();
        // A segment holds offsets >= recovery_point unless the next segment starts at or below it.
        let unflushed = next_base.is_none_or(|n| n > recovery_point);
        let scan = !clean && unflushed;
        let (segment, repair): (Segment, SegmentRepair) =
            Segment::open(dir, base, scan, config.index_interval_bytes)?;
        if scan || repair.indexes_rebuilt {
            report.segments_scanned += 1;
            // Data just checked may still only be in the page cache; make it durable before it counts as
            // recovered.
            segment.flush()?;
        }
        if repair.indexes_rebuilt {
            report.indexes_rebuilt += 1;
        }
        if repair.truncated_bytes > 0 {
            tracing::warn!(dir = %dir.display(), base_offset = base, bytes = repair.truncated_bytes, "truncated torn or corrupt tail");
            report.bytes_truncated += repair.truncated_bytes;
            truncated_at = Some(segment.next_offset());
        }
        segments.insert(base, segment);
    }
    let active = match segments.pop_last() {
        Some((_, active)) => active,
        None => Segment::create(dir, 0)?,
    };
    sync_dir(dir)?;
    report.log_end_offset = active.next_offset();
    Ok(Loaded {
        segments,
        active,
        report,
    })
}

fn remove_segment_files(dir: &Path, base: i64) -> Result<(), LogError> {
    for ext in ["log", "index", "timeindex"] {
        let path = super::segment::segment_path(dir, base, ext);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(LogError::RemoveFile { path, source }),
        }
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> Result<(), LogError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(LogError::RemoveFile {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Completes a log cleaner swap that a crash interrupted (Kafka's `LogLoader` does the same).
///
/// The cleaner renames `<base>.log.cleaned` to `<base>.log.swap` oldest segment first, only once every
/// cleaned file is fsynced, so a `.log.swap` is complete and its swap was decided: it replaces the segment
/// with the same base offset. A `.log.swap` of zero bytes that is not the log's first segment means "this
/// segment had no live record left": the segment is removed. The replaced segment's indexes are removed and
/// get rebuilt by the scan at open. Returns how many swaps were completed.
pub(crate) fn complete_swaps(dir: &Path) -> Result<usize, LogError> {
    use super::segment::segment_path;
    let list_err = |source| LogError::ListDir {
        path: dir.to_path_buf(),
        source,
    };
    let mut swaps = Vec::new();
    let mut first_base: Option<i64> = None;
    for entry in fs::read_dir(dir).map_err(list_err)? {
        let path = entry.map_err(list_err)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let base = name
            .strip_suffix(".log.swap")
            .map(|stem| (stem, true))
            .or_else(|| name.strip_suffix(".log").map(|stem| (stem, false)))
            .and_then(|(stem, swap)| parse_base_offset(stem).map(|b| (b, swap)));
        if let Some((base, swap)) = base {
            first_base = Some(first_base.map_or(base, |f| f.min(base)));
            if swap {
                swaps.push(base);
            }
        }
    }
    swaps.sort_unstable();
    for &base in &swaps {
        let swap = segment_path(dir, base, "log.swap");
        let empty = fs::metadata(&swap)
            .map_err(|source| LogError::ReadFile {
                path: swap.clone(),
                position: 0,
                source,
            })?
            .len()
            == 0;
        for ext in ["index", "timeindex", "index.swap", "timeindex.swap"] {
            remove_if_present(&segment_path(dir, base, ext))?;
        }
        let target = segment_path(dir, base, "log");
        if empty && first_base != Some(base) {
            remove_if_present(&target)?;
            remove_if_present(&swap)?;
            tracing::warn!(dir = %dir.display(), base_offset = base, "completed interrupted compaction: removed a segment with no live record");
        } else {
            fs::rename(&swap, &target).map_err(|source| LogError::RenameFile {
                from: swap.clone(),
                to: target.clone(),
                source,
            })?;
            tracing::warn!(dir = %dir.display(), base_offset = base, "completed interrupted compaction swap");
        }
    }
    if !swaps.is_empty() {
        sync_dir(dir)?;
    }
    Ok(swaps.len())
}
