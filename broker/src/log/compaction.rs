//! Log compaction for `cleanup.policy=compact` (Kafka's `LogCleaner`/`Cleaner`): keep, for every key, only
//! the record with the highest offset, and drop tombstones once their delete horizon has passed.
//!
//! A clean runs in three phases so that the caller's `Log` mutex is only held briefly:
//! 1. [`Log::compaction_plan`] (under the lock, fast): decides whether a clean is due and snapshots the
//!    inactive segments it will rewrite (base offset, size, `Arc<File>`).
//! 2. [`CompactionPlan::execute`] (no lock, slow): builds the key -> latest offset map over the dirty range,
//!    then rewrites every planned segment into `<base>.log.cleaned` (+ `.index.cleaned`,
//!    `.timeindex.cleaned`) and fsyncs them. Inactive segments never change while the lock is not held
//!    except by retention/truncation, which [`Log::install_cleaned`] detects.
//! 3. [`Log::install_cleaned`] (under the lock, fast): renames, swaps in the new segments and persists the
//!    cleaner checkpoint.
//!
//! This module must never write to a file the `Log` serves reads from before phase 3, never touch the active
//! segment, and never leave a directory state in which a crash could lose a live record or resurrect a
//! deleted key; see [`Log::install_cleaned`] for the ordering argument.
//!
//! Rules chosen (Kafka differences noted):
//! - **One-to-one**: each inactive segment is rewritten into one cleaned segment with the same base offset;
//!   segments are not grouped. A segment left with no record is removed, except the log's first segment,
//!   which stays (empty) so the log start offset survives a restart.
//! - **Tombstones** (non-null key, null value) follow Kafka's v2 rule: a tombstone's delete horizon is the
//!   time of the first clean whose range held it plus `delete.retention.ms`, and a clean at or after the
//!   horizon drops it. So a tombstone survives its first clean whatever its (producer-set) timestamp, and
//!   stays readable for delete.retention.ms after that. Kafka writes the horizon into the batch; the batch
//!   encoder cannot, so the time of each clean is kept in the checkpoint instead (the "clean marks" below)
//!   and the horizon is computed with the current delete.retention.ms. A log is due for a clean, whatever
//!   its dirty ratio, once the earliest retained tombstone's horizon has passed.
//! - **Records without a key** are dropped; **control batches** are kept verbatim. Aborted transactional
//!   data is not recognised (no transaction index yet): it is compacted like committed data.
//! - A batch whose every record survives is copied byte for byte; otherwise its retained records are
//!   re-encoded with the batch's codec, keeping offsets (as non-contiguous offset deltas), timestamps,
//!   headers, producer id/epoch, per-record sequence numbers, the partition leader epoch and, for
//!   LogAppendTime, the batch's append time. Known loss: kafka-protocol decodes headers into a map, so a
//!   re-encoded record keeps only the last of duplicate header keys.
//! - The offset map holds every distinct key of the dirty range in memory (Kafka bounds it with
//!   `log.cleaner.dedupe.buffer.size` and cleans a shorter dirty range instead; not done here).
//! - **Checkpoint**: `cleaner-offset-checkpoint` in the partition directory, text lines: version `0`; the
//!   first dirty offset (everything below it has been cleaned); the earliest delete horizon of a retained
//!   tombstone, or -1; the number of clean marks; then one `end_offset cleaned_at_ms` line per mark, ends
//!   ascending: offsets below `end_offset` (and at or above the previous mark's) were first cleaned at
//!   `cleaned_at_ms`. Marks whose tombstones have all been dropped are pruned. Written atomically (temp
//!   file, fsync, rename, fsync directory) after the swap; a crash before that only makes the next clean
//!   redo the work and count tombstones as first cleaned later. Missing or corrupt means "nothing cleaned
//!   yet", which is always safe.

mod cleaner_checkpoint;
#[cfg(test)]
mod tests;

use std::{
    collections::HashMap,
    fs::{self, File},
    io,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::Arc,
};

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};

pub(crate) use cleaner_checkpoint::CleanerCheckpoint;
pub use cleaner_checkpoint::CLEANER_CHECKPOINT;
use cleaner_checkpoint::{first_cleaned_at, CleanMark};

use super::{
    batch::{self, BatchHeader, HEADER_LEN},
    segment::{segment_path, Segment},
    sync_dir, Log, LogError,
};

const CLEANED: &str = ".cleaned";
const SWAP: &str = ".swap";
/// Order matters: the `.log` file is renamed last, so its `.swap` marks a segment whose swap is decided.
const EXTENSIONS: [&str; 3] = ["index", "timeindex", "log"];

/// An inactive segment as it was when the plan was made.
#[derive(Debug, Clone)]
struct SegmentSnapshot {
    base_offset: i64,
    size: u64,
    file: Arc<File>,
    path: PathBuf,
}

/// What one clean will do, captured under the `Log` lock by [`Log::compaction_plan`]. Owns `Arc<File>`s of
/// the segments it reads, so it stays valid whatever happens to the `Log` meanwhile. `Send`.
#[derive(Debug)]
pub struct CompactionPlan {
    dir: PathBuf,
    now_ms: i64,
    first_dirty_offset: i64,
    first_uncleanable_offset: i64,
    delete_retention_ms: i64,
    index_interval_bytes: u32,
    first_segment_base: i64,
    segments: Vec<SegmentSnapshot>,
    marks: Vec<CleanMark>,
    truncations: u64,
}

/// Counters of one clean.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanStats {
    pub segments: usize,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_read: u64,
    pub records_retained: u64,
    /// Records removed because a later record has the same key.
    pub records_superseded: u64,
    pub tombstones_removed: u64,
    pub keyless_removed: u64,
}

#[derive(Debug)]
struct CleanedSegment {
    base_offset: i64,
    /// The segment this one replaces, to detect that it changed since the plan.
    replaced_file: Arc<File>,
    replaced_size: u64,
    size: u64,
    /// The log's first segment stays even when empty.
    keep_if_empty: bool,
}

/// The `.cleaned` files written by [`CompactionPlan::execute`], waiting for [`Log::install_cleaned`].
/// Dropping it without installing removes the files.
#[derive(Debug)]
pub struct CleanedSegments {
    dir: PathBuf,
    truncations: u64,
    now_ms: i64,
    delete_retention_ms: i64,
    first_dirty_offset: i64,
    first_uncleanable_offset: i64,
    tombstone_expiry_ms: i64,
    index_interval_bytes: u32,
    segments: Vec<CleanedSegment>,
    stats: CleanStats,
    /// The files are still ours to remove on drop.
    pending: bool,
}

impl Drop for CleanedSegments {
    fn drop(&mut self) {
        if !self.pending {
            return;
        }
        for c in &self.segments {
            for ext in EXTENSIONS {
                let path = segment_path(&self.dir, c.base_offset, &format!("{ext}{CLEANED}"));
                if let Err(e) = fs::remove_file(&path) {
                    if e.kind() != io::ErrorKind::NotFound {
                        tracing::warn!(file = %path.display(), error = %e, "could not remove cleaned file");
                    }
                }
            }
        }
    }
}

/// How a clean ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanOutcome {
    /// The cleaned segments replaced the originals.
    Installed,
    /// A segment it would replace is gone (retention, DeleteRecords) or the log was truncated since the
    /// plan; nothing was changed.
    Stale,
}

/// What [`Log::install_cleaned`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanReport {
    pub outcome: CleanOutcome,
    pub first_dirty_offset: i64,
    /// End of the cleaned range: the active segment's base, or the first segment younger than
    /// min.compaction.lag.ms. The new first dirty offset once installed.
    pub first_uncleanable_offset: i64,
    pub stats: CleanStats,
}

impl Log {
    /// Decides whether a clean is due at `now_ms` and, if so, captures what it needs. Fast; call it under the
    /// lock that guards the `Log`. `None` when compaction is off, there is no inactive segment, or neither the
    /// dirty ratio nor an expired tombstone calls for a clean.
    pub fn compaction_plan(&self, now_ms: i64) -> Option<CompactionPlan> {
        if !self.config.compact {
            return None;
        }
        let first_segment_base = *self.segments.keys().next()?;
        let active_base = self.active.base_offset();
        let first_dirty = self
            .cleaner
            .first_dirty_offset
            .clamp(first_segment_base, active_base);
        let dirty_floor = self
            .segments
            .range(..=first_dirty)
            .next_back()
            .map_or(first_segment_base, |(b, _)| *b);
        let lag = self.config.min_compaction_lag_ms;
        let first_uncleanable = self
            .segments
            .range(dirty_floor..)
            .map(|(_, s)| s)
            .find(|s| lag > 0 && s.size() > 0 && now_ms.saturating_sub(s.largest_timestamp()) < lag)
            .map_or(active_base, |s| s.base_offset());
        let cleanable = || self.segments.range(..first_uncleanable).map(|(_, s)| s);
        let dirty_bytes: u64 = cleanable()
            .filter(|s| s.base_offset() >= dirty_floor && s.next_offset() > first_dirty)
            .map(|s| s.size())
            .sum();
        let total_bytes: u64 = cleanable().map(|s| s.size()).sum();
        let ratio = if total_bytes == 0 {
            0.0
        } else {
            dirty_bytes as f64 / total_bytes as f64
        };
        // max.compaction.lag.ms: the oldest dirty segment's first record has waited too long (Kafka's
        // LogCleanerManager uses the segment's first batch timestamp the same way).
        let max_lag = self.config.max_compaction_lag_ms;
        let overdue = max_lag < i64::MAX
            && cleanable()
                .find(|s| s.next_offset() > first_dirty && s.size() > 0)
                .and_then(|s| s.roll_clock_start_ms())
                .is_some_and(|first| now_ms.saturating_sub(first) >= max_lag);
        let dirty_due =
            dirty_bytes > 0 && (ratio >= self.config.min_cleanable_dirty_ratio || overdue);
        let expiry = self.cleaner.tombstone_expiry_ms;
        let tombstones_due = expiry >= 0 && now_ms >= expiry;
        if !dirty_due && !tombstones_due {
            return None;
        }
        tracing::debug!(dir = %self.dir.display(), first_dirty, first_uncleanable, ratio, overdue, tombstones_due, "compaction due");
        Some(CompactionPlan {
            dir: self.dir.clone(),
            now_ms,
            first_dirty_offset: first_dirty,
            first_uncleanable_offset: first_uncleanable,
            delete_retention_ms: self.config.delete_retention_ms,
            index_interval_bytes: self.config.index_interval_bytes,
            first_segment_base,
            segments: cleanable()
                .map(|s| SegmentSnapshot {
                    base_offset: s.base_offset(),
                    size: s.size(),
                    file: Arc::clone(s.file()),
                    path: s.path().to_path_buf(),
                })
                .collect(),
            marks: self.cleaner.marks.clone(),
            truncations: self.truncations,
        })
    }

    /// Swaps in the segments a [`CompactionPlan::execute`] wrote. Fast (renames and a few fsyncs); call it
    /// under the lock. Returns [`CleanOutcome::Stale`], changing nothing, if a segment to replace changed
    /// since the plan.
    ///
    /// Order, oldest segment first in each step: rename every `.cleaned` file to `.swap` (the `.log` last),
    /// fsync the directory, then per segment rename the `.swap` files over the originals (or remove a segment
    /// left empty), fsync the directory, write the checkpoint. A crash at any point leaves a prefix (by
    /// offset) of the segments swapped; recovery completes every `.log.swap` and drops `.cleaned` files.
    /// A swapped prefix never loses a live record nor resurrects a key: an older cleaned segment only
    /// dropped records superseded by records in newer segments, which still hold either their original
    /// or their cleaned content.
    pub fn install_cleaned(&mut self, cleaned: CleanedSegments) -> Result<CleanReport, LogError> {
        self.install_cleaned_steps(cleaned, usize::MAX)
            .map(|r| r.expect("an unlimited install always finishes"))
    }

    /// [`Log::install_cleaned`] that stops (as a crash would) after `max_steps` file operations; `None` if it
    /// stopped. Used by the crash-point tests.
    pub(crate) fn install_cleaned_steps(
        &mut self,
        mut cleaned: CleanedSegments,
        max_steps: usize,
    ) -> Result<Option<CleanReport>, LogError> {
        let mut report = CleanReport {
            outcome: CleanOutcome::Stale,
            first_dirty_offset: cleaned.first_dirty_offset,
            first_uncleanable_offset: cleaned.first_uncleanable_offset,
            stats: cleaned.stats,
        };
        let first_base = self.segments.keys().next().copied();
        // A truncation may have cut and refilled a planned segment in place (same file, same size).
        let unchanged = cleaned.dir == self.dir
            && cleaned.truncations == self.truncations
            && cleaned.segments.iter().all(|c| {
                self.segments.get(&c.base_offset).is_some_and(|s| {
                    Arc::ptr_eq(s.file(), &c.replaced_file) && s.size() == c.replaced_size
                }) && (!c.keep_if_empty || first_base == Some(c.base_offset))
            });
        if !unchanged {
            tracing::info!(dir = %self.dir.display(), "log changed during compaction; discarding the cleaned segments");
            return Ok(Some(report));
        }
        // From here on the files are the directory's business (recovery), not the drop guard's.
        cleaned.pending = false;
        let dir = self.dir.clone();
        let mut steps = max_steps;
        let mut step = || {
            let go = steps > 0;
            steps = steps.saturating_sub(1);
            go
        };
        let path = |base: i64, ext: &str, suffix: &str| {
            segment_path(&dir, base, &format!("{ext}{suffix}"))
        };
        for c in &cleaned.segments {
            for ext in EXTENSIONS {
                if !step() {
                    return Ok(None);
                }
                rename(
                    &path(c.base_offset, ext, CLEANED),
                    &path(c.base_offset, ext, SWAP),
                )?;
            }
        }
        if !step() {
            return Ok(None);
        }
        sync_dir(&dir)?;
        for c in &cleaned.segments {
            if c.size == 0 && !c.keep_if_empty {
                let doomed = EXTENSIONS
                    .iter()
                    .map(|ext| path(c.base_offset, ext, ""))
                    .chain(["index", "timeindex", "log"].map(|ext| path(c.base_offset, ext, SWAP)));
                for p in doomed {
                    if !step() {
                        return Ok(None);
                    }
                    remove(&p)?;
                }
            } else {
                for ext in EXTENSIONS {
                    if !step() {
                        return Ok(None);
                    }
                    rename(
                        &path(c.base_offset, ext, SWAP),
                        &path(c.base_offset, ext, ""),
                    )?;
                }
            }
        }
        if !step() {
            return Ok(None);
        }
        sync_dir(&dir)?;
        let checkpoint = self.next_checkpoint(&cleaned);
        if !step() {
            return Ok(None);
        }
        checkpoint.write(&dir)?;
        self.cleaner = checkpoint;
        for c in &cleaned.segments {
            // Dropping the old `Segment` closes only our handles: readers' `Arc<File>`s keep the old inode.
            if c.size == 0 && !c.keep_if_empty {
                self.segments.remove(&c.base_offset);
            } else {
                let (segment, _) =
                    Segment::open(&dir, c.base_offset, false, cleaned.index_interval_bytes)?;
                self.segments.insert(c.base_offset, segment);
            }
        }
        report.outcome = CleanOutcome::Installed;
        tracing::info!(
            dir = %dir.display(),
            first_dirty_offset = report.first_dirty_offset,
            first_uncleanable_offset = report.first_uncleanable_offset,
            bytes_read = report.stats.bytes_read,
            bytes_written = report.stats.bytes_written,
            "compacted log"
        );
        Ok(Some(report))
    }

    /// The checkpoint after `cleaned` is installed: the dirty range becomes clean as of the clean's time, and
    /// marks whose every tombstone this clean dropped (horizon passed, range cleaned) are pruned.
    fn next_checkpoint(&self, cleaned: &CleanedSegments) -> CleanerCheckpoint {
        let end = cleaned.first_uncleanable_offset;
        let mut marks: Vec<CleanMark> = self
            .cleaner
            .marks
            .iter()
            .filter(|m| {
                let expired =
                    m.cleaned_at_ms.saturating_add(cleaned.delete_retention_ms) <= cleaned.now_ms;
                !(expired && m.end_offset <= end)
            })
            .copied()
            .collect();
        let first_dirty = self.cleaner.first_dirty_offset.max(end);
        if end > self.cleaner.first_dirty_offset && marks.last().is_none_or(|m| m.end_offset < end)
        {
            marks.push(CleanMark {
                end_offset: end,
                cleaned_at_ms: cleaned.now_ms,
            });
        }
        CleanerCheckpoint {
            first_dirty_offset: first_dirty,
            tombstone_expiry_ms: cleaned.tombstone_expiry_ms,
            marks,
        }
    }

    /// Runs all three phases while holding `&mut self`: for tests, tools and small logs.
    pub fn clean_now(&mut self, now_ms: i64) -> Result<Option<CleanReport>, LogError> {
        let Some(plan) = self.compaction_plan(now_ms) else {
            return Ok(None);
        };
        let cleaned = plan.execute()?;
        self.install_cleaned(cleaned).map(Some)
    }

    /// The first dirty offset: every record below it has been through a clean.
    pub fn cleaner_checkpoint(&self) -> i64 {
        self.cleaner.first_dirty_offset
    }

    /// After a truncation to `offset`, records at and above it are new: they must count as dirty.
    pub(crate) fn lower_cleaner_checkpoint(&mut self, offset: i64) -> Result<(), LogError> {
        if self.cleaner.first_dirty_offset > offset {
            self.cleaner.first_dirty_offset = offset;
            let keep = self
                .cleaner
                .marks
                .partition_point(|m| m.end_offset <= offset);
            self.cleaner.marks.truncate(keep + 1);
            if let Some(last) = self.cleaner.marks.last_mut() {
                last.end_offset = last.end_offset.min(offset);
            }
            self.cleaner.marks.dedup_by_key(|m| m.end_offset);
            self.cleaner.write(&self.dir)?;
        }
        Ok(())
    }
}

fn rename(from: &Path, to: &Path) -> Result<(), LogError> {
    fs::rename(from, to).map_err(|source| LogError::RenameFile {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        source,
    })
}

fn remove(path: &Path) -> Result<(), LogError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(LogError::RemoveFile {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Why a record is or is not kept.
enum Verdict {
    Keep,
    Superseded,
    Keyless,
    ExpiredTombstone,
}

impl CompactionPlan {
    /// The offset below which this plan considers records clean.
    pub fn first_dirty_offset(&self) -> i64 {
        self.first_dirty_offset
    }

    /// The end (exclusive) of the range this plan cleans.
    pub fn first_uncleanable_offset(&self) -> i64 {
        self.first_uncleanable_offset
    }

    /// Builds the offset map and writes the cleaned segments. Takes no lock: it reads only the planned,
    /// immutable inactive segments through their `Arc<File>`s. On error every `.cleaned` file is removed.
    pub fn execute(self) -> Result<CleanedSegments, LogError> {
        let map = self.build_offset_map()?;
        let mut out = CleanedSegments {
            dir: self.dir.clone(),
            truncations: self.truncations,
            now_ms: self.now_ms,
            delete_retention_ms: self.delete_retention_ms,
            first_dirty_offset: self.first_dirty_offset,
            first_uncleanable_offset: self.first_uncleanable_offset,
            tombstone_expiry_ms: -1,
            index_interval_bytes: self.index_interval_bytes,
            segments: Vec::with_capacity(self.segments.len()),
            stats: CleanStats::default(),
            pending: true,
        };
        for snap in &self.segments {
            // Registered first so that the drop guard removes a half-written file too.
            out.segments.push(CleanedSegment {
                base_offset: snap.base_offset,
                replaced_file: Arc::clone(&snap.file),
                replaced_size: snap.size,
                size: 0,
                keep_if_empty: snap.base_offset == self.first_segment_base,
            });
            let size = self.clean_segment(snap, &map, &mut out)?;
            if let Some(last) = out.segments.last_mut() {
                last.size = size;
            }
            out.stats.segments += 1;
            out.stats.bytes_written += size;
        }
        Ok(out)
    }

    /// Key -> offset of its last record in the dirty range `[first_dirty, first_uncleanable)`.
    fn build_offset_map(&self) -> Result<HashMap<Bytes, i64>, LogError> {
        let mut map = HashMap::new();
        for snap in &self.segments {
            for_each_batch(snap, |h, bytes| {
                if h.is_control() || h.last_offset < self.first_dirty_offset {
                    return Ok(());
                }
                for r in decode(snap, h, bytes)?.0 {
                    if let (Some(key), true) = (r.key, r.offset >= self.first_dirty_offset) {
                        // Owned copy: the decoded key points into the whole (decompressed) batch.
                        map.insert(Bytes::copy_from_slice(&key), r.offset);
                    }
                }
                Ok(())
            })?;
        }
        Ok(map)
    }

    /// Kafka's delete horizon of a tombstone: when it was first cleaned plus delete.retention.ms.
    fn delete_horizon(&self, r: &Record) -> i64 {
        first_cleaned_at(&self.marks, r.offset, self.now_ms)
            .saturating_add(self.delete_retention_ms)
    }

    fn verdict(&self, r: &Record, map: &HashMap<Bytes, i64>) -> Verdict {
        let Some(key) = &r.key else {
            return Verdict::Keyless;
        };
        if map.get(key).is_some_and(|&latest| latest > r.offset) {
            return Verdict::Superseded;
        }
        if r.value.is_none() && self.delete_horizon(r) <= self.now_ms {
            return Verdict::ExpiredTombstone;
        }
        Verdict::Keep
    }

    /// Writes the retained batches of `snap` to `<base>.log.cleaned` and fsyncs it; returns its size.
    fn clean_segment(
        &self,
        snap: &SegmentSnapshot,
        map: &HashMap<Bytes, i64>,
        out: &mut CleanedSegments,
    ) -> Result<u64, LogError> {
        let mut cleaned = Segment::create_with_suffix(&self.dir, snap.base_offset, CLEANED)?;
        let stats = &mut out.stats;
        let expiry = &mut out.tombstone_expiry_ms;
        for_each_batch(snap, |h, bytes| {
            stats.bytes_read += u64::from(h.size);
            if h.is_control() {
                return append(&mut cleaned, bytes, self.index_interval_bytes, self.now_ms);
            }
            let (records, compression) = decode(snap, h, bytes)?;
            let total = records.len();
            let mut kept = Vec::with_capacity(total);
            for r in records {
                stats.records_read += 1;
                match self.verdict(&r, map) {
                    Verdict::Keep => {
                        if r.value.is_none() {
                            let t = self.delete_horizon(&r);
                            *expiry = if *expiry < 0 { t } else { (*expiry).min(t) };
                        }
                        kept.push(r);
                    }
                    Verdict::Superseded => stats.records_superseded += 1,
                    Verdict::Keyless => stats.keyless_removed += 1,
                    Verdict::ExpiredTombstone => stats.tombstones_removed += 1,
                }
            }
            stats.records_retained += kept.len() as u64;
            if kept.len() == total {
                append(&mut cleaned, bytes, self.index_interval_bytes, self.now_ms)
            } else if kept.is_empty() {
                Ok(())
            } else {
                let encoded = reencode(cleaned.path(), h, compression, kept)?;
                append(
                    &mut cleaned,
                    &encoded,
                    self.index_interval_bytes,
                    self.now_ms,
                )
            }
        })?;
        cleaned.seal()?;
        Ok(cleaned.size())
    }
}

fn append(segment: &mut Segment, bytes: &[u8], interval: u32, now_ms: i64) -> Result<(), LogError> {
    let header = batch::parse_header(bytes, 0).map_err(|e| LogError::CorruptSegment {
        path: segment.path().to_path_buf(),
        position: segment.size(),
        reason: e.to_string(),
    })?;
    segment.append(bytes, &[header], interval, now_ms)
}

/// Calls `f` with the header and bytes of every batch of the snapshot, in order.
fn for_each_batch(
    snap: &SegmentSnapshot,
    mut f: impl FnMut(&BatchHeader, &[u8]) -> Result<(), LogError>,
) -> Result<(), LogError> {
    let corrupt = |position: u64, reason: String| LogError::CorruptSegment {
        path: snap.path.clone(),
        position,
        reason,
    };
    let read = |buf: &mut [u8], position: u64| {
        snap.file
            .read_exact_at(buf, position)
            .map_err(|source| LogError::ReadFile {
                path: snap.path.clone(),
                position,
                source,
            })
    };
    let mut buf = vec![0u8; HEADER_LEN];
    let mut pos = 0u64;
    while pos < snap.size {
        if snap.size - pos < HEADER_LEN as u64 {
            return Err(corrupt(
                pos,
                "batch header runs past the end of the segment".into(),
            ));
        }
        buf.resize(HEADER_LEN, 0);
        read(&mut buf, pos)?;
        let mut h = batch::parse_header(&buf, pos).map_err(|e| corrupt(pos, e.to_string()))?;
        if pos + u64::from(h.size) > snap.size {
            return Err(corrupt(
                pos,
                "batch runs past the end of the segment".into(),
            ));
        }
        buf.resize(h.size as usize, 0);
        read(&mut buf[HEADER_LEN..], pos + HEADER_LEN as u64)?;
        h.position = pos;
        f(&h, &buf)?;
        pos += u64::from(h.size);
    }
    Ok(())
}

/// Decodes (and decompresses) one stored batch.
fn decode(
    snap: &SegmentSnapshot,
    h: &BatchHeader,
    bytes: &[u8],
) -> Result<(Vec<Record>, Compression), LogError> {
    let mut buf = Bytes::copy_from_slice(bytes);
    RecordBatchDecoder::decode(&mut buf)
        .map(|set| (set.records, set.compression))
        .map_err(|e| LogError::CorruptSegment {
            path: snap.path.clone(),
            position: h.position,
            reason: format!("undecodable batch: {e:#}"),
        })
}

/// Encodes the retained records of batch `h` as one batch with the same codec. Each record keeps its offset
/// (the encoder stores offset deltas from the first retained record, gaps included) and its sequence number.
fn reencode(
    path: &Path,
    h: &BatchHeader,
    compression: Compression,
    mut kept: Vec<Record>,
) -> Result<Vec<u8>, LogError> {
    let fail = |reason: String| LogError::EncodeBatch {
        path: path.to_path_buf(),
        base_offset: h.base_offset,
        reason,
    };
    let first = kept.first().map_or(h.base_offset, |r| r.offset);
    for r in &mut kept {
        r.delete_horizon = false;
        if h.base_sequence < 0 {
            // The decoder derives base_sequence + delta even without sequences; keep the batch at -1.
            r.sequence = (-1i32).wrapping_add((r.offset - first) as i32);
        }
    }
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &kept,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .map_err(|e| fail(format!("{e:#}")))?;
    let mut buf = buf.to_vec();
    if h.is_log_append_time() {
        batch::set_log_append_time(&mut buf, h.max_timestamp);
    }
    let out = batch::parse_header(&buf, 0).map_err(|e| fail(e.to_string()))?;
    if out.size as usize != buf.len() || out.record_count as usize != kept.len() {
        return Err(fail(
            "the encoder split the records into several batches".into(),
        ));
    }
    Ok(buf)
}
