//! One segment: the `<base_offset>.log` file of whole batches and its two indexes.
//!
//! A segment owns its three files and the in-memory facts derived from them (size, next offset, max timestamp).
//! It must never decide policy (when to roll, flush or delete): `Log` does. It is not synchronized.

use std::{
    fs::File,
    io::{BufReader, ErrorKind, Read, Seek, SeekFrom},
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::UNIX_EPOCH,
};

use super::{
    batch::{self, BatchHeader, HEADER_LEN, LOG_OVERHEAD},
    index::{OffsetIndex, TimeIndex},
    open_read_write, LogError,
};

/// Positions in `.index` are 32-bit, so no segment may grow past this regardless of `segment.bytes`.
pub(crate) const MAX_SEGMENT_BYTES: u64 = i32::MAX as u64;

pub(crate) fn segment_path(dir: &Path, base_offset: i64, ext: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{ext}"))
}

/// What opening or recovering a segment had to do.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SegmentRepair {
    pub(crate) truncated_bytes: u64,
    pub(crate) indexes_rebuilt: bool,
}

#[derive(Debug)]
pub(crate) struct Segment {
    base_offset: i64,
    path: PathBuf,
    file: Arc<File>,
    size: u64,
    next_offset: i64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
    bytes_since_last_index: u64,
    /// Time the segment.ms clock started: first append, or on reopen the first batch's timestamp (as Kafka).
    roll_clock_start_ms: Option<i64>,
}

impl Segment {
    /// Creates an empty segment, replacing any leftover files with the same base offset.
    pub(crate) fn create(dir: &Path, base_offset: i64) -> Result<Segment, LogError> {
        Self::create_with_suffix(dir, base_offset, "")
    }

    /// Creates an empty segment whose three files carry `suffix` after their usual extension
    /// (`<base>.log.cleaned`, ...), as the log cleaner writes them before they are swapped in.
    pub(crate) fn create_with_suffix(
        dir: &Path,
        base_offset: i64,
        suffix: &str,
    ) -> Result<Segment, LogError> {
        let path = segment_path(dir, base_offset, &format!("log{suffix}"));
        let file = open_read_write(&path, true)?;
        Ok(Segment {
            base_offset,
            file: Arc::new(file),
            size: 0,
            next_offset: base_offset,
            offset_index: OffsetIndex::create(
                &segment_path(dir, base_offset, &format!("index{suffix}")),
                base_offset,
            )?,
            time_index: TimeIndex::create(
                &segment_path(dir, base_offset, &format!("timeindex{suffix}")),
                base_offset,
            )?,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            bytes_since_last_index: 0,
            roll_clock_start_ms: None,
            path,
        })
    }

    /// Opens an existing segment. With `recover`, every batch is checked and the indexes rebuilt; otherwise
    /// the indexes are trusted if they pass a sanity check (else the segment is recovered anyway).
    pub(crate) fn open(
        dir: &Path,
        base_offset: i64,
        recover: bool,
        index_interval: u32,
    ) -> Result<(Segment, SegmentRepair), LogError> {
        let path = segment_path(dir, base_offset, "log");
        let file = open_read_write(&path, false)?;
        let size = file
            .metadata()
            .map_err(|source| LogError::ReadFile {
                path: path.clone(),
                position: 0,
                source,
            })?
            .len();
        let index_path = segment_path(dir, base_offset, "index");
        let time_path = segment_path(dir, base_offset, "timeindex");
        let loaded = if recover {
            None
        } else {
            match (
                OffsetIndex::load(&index_path, base_offset, size)?,
                TimeIndex::load(&time_path, base_offset)?,
            ) {
                (Some(o), Some(t)) => Some((o, t)),
                _ => {
                    tracing::warn!(segment = %path.display(), "index missing or corrupt; rebuilding");
                    None
                }
            }
        };
        let mut repair = SegmentRepair::default();
        let (offset_index, time_index, must_recover) = match loaded {
            Some((o, t)) => (o, t, false),
            None => {
                // A scan always rebuilds; only report indexes that had to be replaced.
                repair.indexes_rebuilt = !recover;
                (
                    OffsetIndex::create(&index_path, base_offset)?,
                    TimeIndex::create(&time_path, base_offset)?,
                    true,
                )
            }
        };
        let mut segment = Segment {
            base_offset,
            path,
            file: Arc::new(file),
            size,
            next_offset: base_offset,
            offset_index,
            time_index,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            bytes_since_last_index: 0,
            roll_clock_start_ms: None,
        };
        if must_recover {
            repair.truncated_bytes = segment.recover(index_interval)?;
        } else {
            segment.reload_tail()?;
        }
        if segment.size > 0 {
            let first = segment.read_header_at(0)?;
            segment.roll_clock_start_ms = (first.max_timestamp >= 0).then_some(first.max_timestamp);
        }
        Ok((segment, repair))
    }

    /// Re-derives next offset and max timestamp from the time index plus the batches after the last offset
    /// index entry, without reading the whole segment.
    fn reload_tail(&mut self) -> Result<(), LogError> {
        (self.max_timestamp, self.offset_of_max_timestamp) =
            self.time_index.last().unwrap_or((-1, self.base_offset));
        self.next_offset = self.base_offset;
        let start = u64::from(self.offset_index.last_position());
        let mut pos = start;
        while pos < self.size {
            let h = self.read_header_at(pos)?;
            self.observe_timestamp(&h);
            self.next_offset = h.last_offset + 1;
            pos += u64::from(h.size);
        }
        self.bytes_since_last_index = self.size - start;
        Ok(())
    }

    /// Rebuilds both indexes from a full, CRC-checked scan and truncates the file at the first batch that is
    /// torn, corrupt or out of offset order. Returns the number of bytes removed.
    pub(crate) fn recover(&mut self, index_interval: u32) -> Result<u64, LogError> {
        self.offset_index.truncate_to_position(0)?;
        self.time_index.truncate_to_offset(self.base_offset)?;
        self.max_timestamp = -1;
        self.offset_of_max_timestamp = self.base_offset;
        self.next_offset = self.base_offset;
        self.bytes_since_last_index = 0;
        let path = self.path.clone();
        let read_err = |position: u64, source: std::io::Error| LogError::ReadFile {
            path: path.clone(),
            position,
            source,
        };
        let file = Arc::clone(&self.file);
        let mut reader = BufReader::with_capacity(1 << 20, &*file);
        reader
            .seek(SeekFrom::Start(0))
            .map_err(|e| read_err(0, e))?;
        let mut buf = Vec::new();
        let mut pos = 0u64;
        let valid_end = loop {
            if self.size - pos < LOG_OVERHEAD as u64 {
                break pos;
            }
            buf.resize(LOG_OVERHEAD, 0);
            reader.read_exact(&mut buf).map_err(|e| read_err(pos, e))?;
            let Ok(batch_size) = batch::batch_size_from_prefix(&buf, pos as usize) else {
                break pos;
            };
            if batch_size as u64 > self.size - pos {
                break pos;
            }
            buf.resize(batch_size, 0);
            reader
                .read_exact(&mut buf[LOG_OVERHEAD..])
                .map_err(|e| read_err(pos, e))?;
            let header = match batch::check_stored_batch(&buf, pos) {
                Ok(h) => h,
                Err(reason) => {
                    tracing::warn!(segment = %path.display(), position = pos, %reason, "corrupt batch");
                    break pos;
                }
            };
            if header.base_offset < self.next_offset
                || header.last_offset - self.base_offset > i64::from(u32::MAX)
            {
                tracing::warn!(segment = %path.display(), position = pos, offset = header.base_offset, "batch offset out of order");
                break pos;
            }
            self.index_batch(&header, pos, index_interval)?;
            pos += batch_size as u64;
        };
        let truncated = self.size - valid_end;
        if truncated > 0 {
            self.truncate_file(valid_end)?;
        }
        Ok(truncated)
    }

    fn truncate_file(&mut self, len: u64) -> Result<(), LogError> {
        self.file
            .set_len(len)
            .map_err(|source| LogError::TruncateFile {
                path: self.path.clone(),
                len,
                source,
            })?;
        self.size = len;
        Ok(())
    }

    fn observe_timestamp(&mut self, h: &BatchHeader) {
        if h.max_timestamp > self.max_timestamp {
            self.max_timestamp = h.max_timestamp;
            self.offset_of_max_timestamp = h.last_offset;
        }
    }

    /// Kafka's indexing rule: the first batch after index_interval bytes gets an entry (its last offset ->
    /// its start position), and the time index records the max timestamp so far at the same moment.
    fn index_batch(
        &mut self,
        h: &BatchHeader,
        position: u64,
        index_interval: u32,
    ) -> Result<(), LogError> {
        self.observe_timestamp(h);
        if self.bytes_since_last_index > u64::from(index_interval) {
            self.offset_index.append(h.last_offset, position as u32)?;
            self.time_index
                .maybe_append(self.max_timestamp, self.offset_of_max_timestamp)?;
            self.bytes_since_last_index = 0;
        }
        self.bytes_since_last_index += u64::from(h.size);
        self.next_offset = h.last_offset + 1;
        Ok(())
    }

    /// Writes already-validated, already-offset-assigned batches at the end of the file. On a failed write the
    /// file is cut back so no partial batch stays behind.
    pub(crate) fn append(
        &mut self,
        bytes: &[u8],
        headers: &[BatchHeader],
        index_interval: u32,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let start = self.size;
        if let Err(source) = self.file.write_all_at(bytes, start) {
            if let Err(e) = self.file.set_len(start) {
                tracing::error!(segment = %self.path.display(), error = %e, "could not cut back failed append");
            }
            return Err(LogError::WriteFile {
                path: self.path.clone(),
                source,
            });
        }
        for h in headers {
            self.index_batch(h, start + h.position, index_interval)?;
        }
        self.size = start + bytes.len() as u64;
        self.roll_clock_start_ms.get_or_insert(now_ms);
        Ok(())
    }

    /// Header of the batch starting at `position`, checked to lie inside the file.
    pub(crate) fn read_header_at(&self, position: u64) -> Result<BatchHeader, LogError> {
        let corrupt = |reason: String| LogError::CorruptSegment {
            path: self.path.clone(),
            position,
            reason,
        };
        if self.size.saturating_sub(position) < HEADER_LEN as u64 {
            return Err(corrupt(format!(
                "batch header runs past the end of the file ({} bytes)",
                self.size
            )));
        }
        let mut buf = [0u8; HEADER_LEN];
        self.file
            .read_exact_at(&mut buf, position)
            .map_err(|source| LogError::ReadFile {
                path: self.path.clone(),
                position,
                source,
            })?;
        let h = batch::parse_header(&buf, position).map_err(|e| corrupt(e.to_string()))?;
        if position + u64::from(h.size) > self.size {
            return Err(corrupt(format!(
                "batch of {} bytes runs past the end of the file",
                h.size
            )));
        }
        Ok(h)
    }

    /// The batch containing `offset`, or the first batch after it; `None` if the segment ends before it.
    pub(crate) fn find_batch(&self, offset: i64) -> Result<Option<BatchHeader>, LogError> {
        let mut pos = u64::from(self.offset_index.lookup(offset));
        while pos < self.size {
            let h = self.read_header_at(pos)?;
            if h.last_offset >= offset {
                return Ok(Some(h));
            }
            pos += u64::from(h.size);
        }
        Ok(None)
    }

    /// Headers from the batch containing `offset` (or the index entry before it) to the end of the segment.
    /// Stops after the first error.
    pub(crate) fn headers_from(&self, offset: i64) -> SegmentHeaders<'_> {
        SegmentHeaders {
            segment: self,
            position: u64::from(self.offset_index.lookup(offset)),
            failed: false,
        }
    }

    /// First batch whose max timestamp is >= `timestamp`.
    pub(crate) fn find_by_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<BatchHeader>, LogError> {
        let start_offset = self
            .time_index
            .lookup(timestamp)
            .unwrap_or(self.base_offset);
        let mut pos = u64::from(self.offset_index.lookup(start_offset));
        while pos < self.size {
            let h = self.read_header_at(pos)?;
            if h.max_timestamp >= timestamp {
                return Ok(Some(h));
            }
            pos += u64::from(h.size);
        }
        Ok(None)
    }

    /// Removes the batch containing `offset` and everything after it. Returns bytes removed.
    pub(crate) fn truncate_to(&mut self, offset: i64) -> Result<u64, LogError> {
        let Some(h) = self.find_batch(offset)? else {
            return Ok(0);
        };
        let removed = self.size - h.position;
        self.truncate_file(h.position)?;
        self.offset_index.truncate_to_position(h.position)?;
        self.time_index.truncate_to_offset(h.base_offset)?;
        self.reload_tail()?;
        if self.size == 0 {
            self.roll_clock_start_ms = None;
        }
        Ok(removed)
    }

    /// Adds the final time index entry Kafka writes when a segment stops being active, then fsyncs.
    pub(crate) fn seal(&mut self) -> Result<(), LogError> {
        if self.max_timestamp >= 0 {
            self.time_index
                .maybe_append(self.max_timestamp, self.offset_of_max_timestamp)?;
        }
        self.flush()
    }

    pub(crate) fn flush(&self) -> Result<(), LogError> {
        self.file.sync_data().map_err(|source| LogError::SyncFile {
            path: self.path.clone(),
            source,
        })?;
        self.offset_index.sync()?;
        self.time_index.sync()
    }

    /// Unlinks all three files. Readers holding the `Arc<File>` keep reading the unlinked inode.
    pub(crate) fn delete(self) -> Result<(), LogError> {
        for path in [
            self.path.as_path(),
            self.offset_index.path(),
            self.time_index.path(),
        ] {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(LogError::RemoveFile {
                        path: path.to_path_buf(),
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    /// Kafka's `largestTimestamp`: the newest batch timestamp, or the file's mtime if no batch has one.
    pub(crate) fn largest_timestamp(&self) -> i64 {
        if self.max_timestamp >= 0 {
            return self.max_timestamp;
        }
        self.file
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64)
    }

    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }
    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub(crate) fn size(&self) -> u64 {
        self.size
    }
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
    pub(crate) fn file(&self) -> &Arc<File> {
        &self.file
    }
    pub(crate) fn max_timestamp_and_offset(&self) -> (i64, i64) {
        (self.max_timestamp, self.offset_of_max_timestamp)
    }
    pub(crate) fn roll_clock_start_ms(&self) -> Option<i64> {
        self.roll_clock_start_ms
    }
    /// True when the offset or the time index cannot take one more entry within `limit` bytes
    /// (`segment.index.bytes`), Kafka's other reason to roll.
    pub(crate) fn index_full(&self, limit: usize) -> bool {
        self.offset_index.full(limit) || self.time_index.full(limit)
    }
}

/// Iterator over the batch headers of one segment, reading 61 bytes per batch.
#[derive(Debug)]
pub(crate) struct SegmentHeaders<'a> {
    segment: &'a Segment,
    position: u64,
    failed: bool,
}

impl Iterator for SegmentHeaders<'_> {
    type Item = Result<BatchHeader, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.position >= self.segment.size {
            return None;
        }
        let result = self.segment.read_header_at(self.position);
        match &result {
            Ok(h) => self.position += u64::from(h.size),
            Err(_) => self.failed = true,
        }
        Some(result)
    }
}
