//! The sparse `.index` (offset -> file position) and `.timeindex` (timestamp -> offset) of one segment, in
//! Kafka's on-disk format, held in memory as sorted vectors and appended to their files.
//!
//! Indexes are hints, never the source of truth: this module must never decide what is in a segment. Anything
//! that does not look exactly right at load is reported as "rebuild me" rather than trusted.

use std::{
    fs::File,
    io::ErrorKind,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
};

use super::{open_read_write, LogError};

/// One fixed-size entry format.
trait Entry: Copy + std::fmt::Debug {
    const SIZE: usize;
    fn decode(b: &[u8]) -> Self;
    fn encode(&self, out: &mut Vec<u8>);
    /// Relative offset this entry refers to, used for ordering checks and truncation.
    fn relative_offset(&self) -> u32;
}

/// `.index` entry: 4-byte offset relative to the segment base, 4-byte byte position of a batch start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub(crate) relative_offset: u32,
    pub(crate) position: u32,
}

/// `.timeindex` entry: 8-byte max timestamp so far, 4-byte relative offset of the batch that reached it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub(crate) timestamp: i64,
    pub(crate) relative_offset: u32,
}

impl Entry for OffsetEntry {
    const SIZE: usize = 8;
    fn decode(b: &[u8]) -> Self {
        OffsetEntry {
            relative_offset: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            position: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }
    fn relative_offset(&self) -> u32 {
        self.relative_offset
    }
}

impl Entry for TimeEntry {
    const SIZE: usize = 12;
    fn decode(b: &[u8]) -> Self {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[..8]);
        TimeEntry {
            timestamp: i64::from_be_bytes(ts),
            relative_offset: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        }
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
    }
    fn relative_offset(&self) -> u32 {
        self.relative_offset
    }
}

/// An index file plus its entries in memory. Not synchronized; owned by one `Segment`.
#[derive(Debug)]
struct IndexFile<E> {
    path: PathBuf,
    file: File,
    entries: Vec<E>,
}

impl<E: Entry> IndexFile<E> {
    fn create(path: &Path) -> Result<Self, LogError> {
        Ok(IndexFile {
            path: path.to_path_buf(),
            file: open_read_write(path, true)?,
            entries: Vec::new(),
        })
    }

    /// Loads the raw entries; `Ok(None)` if the file is missing or its length is not a whole number of entries.
    fn load(path: &Path) -> Result<Option<Self>, LogError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(LogError::ReadFile {
                    path: path.to_path_buf(),
                    position: 0,
                    source,
                })
            }
        };
        if bytes.len() % E::SIZE != 0 {
            return Ok(None);
        }
        let entries = bytes.chunks_exact(E::SIZE).map(E::decode).collect();
        Ok(Some(IndexFile {
            path: path.to_path_buf(),
            file: open_read_write(path, false)?,
            entries,
        }))
    }

    /// Bytes the entries take on disk.
    fn bytes(&self) -> usize {
        self.entries.len() * E::SIZE
    }

    /// True when one more entry would take the file past `limit` bytes (`segment.index.bytes`).
    fn full(&self, limit: usize) -> bool {
        self.bytes() + E::SIZE > limit
    }

    fn append(&mut self, entry: E) -> Result<(), LogError> {
        let mut buf = Vec::with_capacity(E::SIZE);
        entry.encode(&mut buf);
        let at = (self.entries.len() * E::SIZE) as u64;
        self.file
            .write_all_at(&buf, at)
            .map_err(|source| LogError::WriteFile {
                path: self.path.clone(),
                source,
            })?;
        self.entries.push(entry);
        Ok(())
    }

    /// Drops every entry whose relative offset is >= `relative_offset`.
    fn truncate_from(&mut self, relative_offset: u32) -> Result<(), LogError> {
        let keep = self
            .entries
            .partition_point(|e| e.relative_offset() < relative_offset);
        self.truncate_entries(keep)
    }

    fn truncate_entries(&mut self, keep: usize) -> Result<(), LogError> {
        self.entries.truncate(keep);
        let len = (keep * E::SIZE) as u64;
        self.file
            .set_len(len)
            .map_err(|source| LogError::TruncateFile {
                path: self.path.clone(),
                len,
                source,
            })
    }

    fn sync(&self) -> Result<(), LogError> {
        self.file.sync_all().map_err(|source| LogError::SyncFile {
            path: self.path.clone(),
            source,
        })
    }
}

/// The `.index` of one segment.
#[derive(Debug)]
pub(crate) struct OffsetIndex {
    inner: IndexFile<OffsetEntry>,
    base_offset: i64,
}

impl OffsetIndex {
    pub(crate) fn create(path: &Path, base_offset: i64) -> Result<Self, LogError> {
        Ok(OffsetIndex {
            inner: IndexFile::create(path)?,
            base_offset,
        })
    }

    /// `Ok(None)` when the file is missing or fails a sanity check (offsets not strictly increasing,
    /// positions decreasing or beyond `log_size`): the caller must rebuild it from the segment.
    pub(crate) fn load(
        path: &Path,
        base_offset: i64,
        log_size: u64,
    ) -> Result<Option<Self>, LogError> {
        let Some(inner) = IndexFile::<OffsetEntry>::load(path)? else {
            return Ok(None);
        };
        let ordered = inner
            .entries
            .windows(2)
            .all(|w| w[0].relative_offset < w[1].relative_offset && w[0].position < w[1].position);
        let in_file = inner
            .entries
            .iter()
            .all(|e| u64::from(e.position) < log_size);
        if !ordered || !in_file {
            return Ok(None);
        }
        Ok(Some(OffsetIndex { inner, base_offset }))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.inner.path
    }

    pub(crate) fn full(&self, limit: usize) -> bool {
        self.inner.full(limit)
    }

    pub(crate) fn append(&mut self, offset: i64, position: u32) -> Result<(), LogError> {
        let relative_offset = (offset - self.base_offset) as u32;
        self.inner.append(OffsetEntry {
            relative_offset,
            position,
        })
    }

    /// Position of a batch that starts at or before the batch containing `offset` (0 if no entry applies).
    pub(crate) fn lookup(&self, offset: i64) -> u32 {
        let rel = offset - self.base_offset;
        let n = self
            .inner
            .entries
            .partition_point(|e| i64::from(e.relative_offset) <= rel);
        if n == 0 {
            0
        } else {
            self.inner.entries[n - 1].position
        }
    }

    pub(crate) fn last_position(&self) -> u32 {
        self.inner.entries.last().map_or(0, |e| e.position)
    }

    /// Drops entries pointing at or past `position` (the new end of the log file).
    pub(crate) fn truncate_to_position(&mut self, position: u64) -> Result<(), LogError> {
        let keep = self
            .inner
            .entries
            .partition_point(|e| u64::from(e.position) < position);
        self.inner.truncate_entries(keep)
    }

    pub(crate) fn sync(&self) -> Result<(), LogError> {
        self.inner.sync()
    }
}

/// The `.timeindex` of one segment.
#[derive(Debug)]
pub(crate) struct TimeIndex {
    inner: IndexFile<TimeEntry>,
    base_offset: i64,
}

impl TimeIndex {
    pub(crate) fn create(path: &Path, base_offset: i64) -> Result<Self, LogError> {
        Ok(TimeIndex {
            inner: IndexFile::create(path)?,
            base_offset,
        })
    }

    pub(crate) fn full(&self, limit: usize) -> bool {
        self.inner.full(limit)
    }

    /// `Ok(None)` when missing or when timestamps or offsets go backwards.
    pub(crate) fn load(path: &Path, base_offset: i64) -> Result<Option<Self>, LogError> {
        let Some(inner) = IndexFile::<TimeEntry>::load(path)? else {
            return Ok(None);
        };
        let ordered = inner.entries.windows(2).all(|w| {
            w[0].timestamp < w[1].timestamp && w[0].relative_offset <= w[1].relative_offset
        });
        if !ordered {
            return Ok(None);
        }
        Ok(Some(TimeIndex { inner, base_offset }))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Appends `(timestamp, offset)` only if it raises the max timestamp, keeping entries strictly increasing.
    pub(crate) fn maybe_append(&mut self, timestamp: i64, offset: i64) -> Result<(), LogError> {
        if self.last().is_some_and(|(ts, _)| ts >= timestamp) {
            return Ok(());
        }
        let relative_offset = (offset - self.base_offset) as u32;
        self.inner.append(TimeEntry {
            timestamp,
            relative_offset,
        })
    }

    /// Last `(timestamp, absolute offset)` entry.
    pub(crate) fn last(&self) -> Option<(i64, i64)> {
        self.inner
            .entries
            .last()
            .map(|e| (e.timestamp, self.base_offset + i64::from(e.relative_offset)))
    }

    /// Offset of the newest entry with timestamp <= `timestamp`, a safe place to start scanning for it.
    pub(crate) fn lookup(&self, timestamp: i64) -> Option<i64> {
        let n = self
            .inner
            .entries
            .partition_point(|e| e.timestamp <= timestamp);
        (n > 0).then(|| self.base_offset + i64::from(self.inner.entries[n - 1].relative_offset))
    }

    /// Drops entries for offsets >= `offset`.
    pub(crate) fn truncate_to_offset(&mut self, offset: i64) -> Result<(), LogError> {
        let rel = (offset - self.base_offset).clamp(0, i64::from(u32::MAX)) as u32;
        self.inner.truncate_from(rel)
    }

    pub(crate) fn sync(&self) -> Result<(), LogError> {
        self.inner.sync()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_round_trips_and_looks_up_floor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000100.index");
        let mut idx = OffsetIndex::create(&path, 100).unwrap();
        idx.append(110, 500).unwrap();
        idx.append(120, 900).unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            [0, 0, 0, 10, 0, 0, 1, 244, 0, 0, 0, 20, 0, 0, 3, 132]
        );
        let idx = OffsetIndex::load(&path, 100, 1000).unwrap().unwrap();
        assert_eq!(idx.lookup(105), 0);
        assert_eq!(idx.lookup(110), 500);
        assert_eq!(idx.lookup(119), 500);
        assert_eq!(idx.lookup(5000), 900);
        assert!(
            OffsetIndex::load(&path, 100, 900).unwrap().is_none(),
            "position past log end is corrupt"
        );
    }

    #[test]
    fn bad_index_files_ask_for_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.index");
        assert!(
            OffsetIndex::load(&path, 0, 10).unwrap().is_none(),
            "missing"
        );
        std::fs::write(&path, [0u8; 7]).unwrap();
        assert!(
            OffsetIndex::load(&path, 0, 10).unwrap().is_none(),
            "partial entry"
        );
        std::fs::write(&path, [0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert!(
            OffsetIndex::load(&path, 0, 10).unwrap().is_none(),
            "zero-filled tail"
        );
        let tpath = dir.path().join("x.timeindex");
        let mut t = TimeIndex::create(&tpath, 0).unwrap();
        t.maybe_append(10, 1).unwrap();
        t.maybe_append(10, 2).unwrap();
        t.maybe_append(20, 3).unwrap();
        let t = TimeIndex::load(&tpath, 0).unwrap().unwrap();
        assert_eq!(t.last(), Some((20, 3)));
        assert_eq!(t.lookup(15), Some(1));
        assert_eq!(t.lookup(5), None);
    }
}
