//! Partition logs on disk: one directory per partition holding Kafka-format segments
//! (`<base_offset:020>.log`, `.index`, `.timeindex`), plus the data directory's checkpoint files.
//!
//! This module owns every byte under a data directory. It must never know about the Kafka protocol
//! (requests, error codes, topics' metadata) beyond the RecordBatch v2 framing it stores, and it must never
//! re-encode or decompress a producer's records.

mod batch;
mod checkpoint;
mod compaction;
mod config;
mod index;
mod leader_epoch;
mod recovery;
mod segment;
#[cfg(test)]
mod tests;

use std::{
    collections::BTreeMap,
    fs::File,
    io, iter,
    path::{Path, PathBuf},
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

pub use batch::builder;
pub use batch::{
    batch_size_from_prefix, check_batch, finish_rebuilt_batch, parse_header, set_base_offset,
    set_log_append_time, set_partition_leader_epoch, validate_batches, BatchError, BatchHeader,
    CONTROL_BIT, HEADER_LEN, LOG_OVERHEAD, MAGIC_V2, TIMESTAMP_TYPE_BIT, TRANSACTIONAL_BIT,
};
pub use checkpoint::{
    read_checkpoint, write_checkpoint, CheckpointError, TopicPartition, CLEAN_SHUTDOWN_MARKER,
    LOG_START_CHECKPOINT, RECOVERY_POINT_CHECKPOINT, REPLICATION_OFFSET_CHECKPOINT,
};
use compaction::CleanerCheckpoint;
pub use compaction::{
    CleanOutcome, CleanReport, CleanStats, CleanedSegments, CompactionPlan, CLEANER_CHECKPOINT,
};
pub use config::{FlushPolicy, LogConfig, TimestampType, TopicCompression};
pub use leader_epoch::{
    EpochEntry, LeaderEpochCache, LeaderEpochError, LEADER_EPOCH_CHECKPOINT, UNDEFINED_EPOCH,
    UNDEFINED_EPOCH_OFFSET,
};
pub use recovery::RecoveryReport;
use segment::{Segment, MAX_SEGMENT_BYTES};
use thiserror::Error;

/// Errors from one partition's log. File variants name the file and the step that failed.
#[derive(Debug, Error)]
pub enum LogError {
    #[error("creating log directory {path}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("listing log directory {path}")]
    ListDir { path: PathBuf, source: io::Error },
    #[error("syncing log directory {path}")]
    SyncDir { path: PathBuf, source: io::Error },
    #[error("removing log directory {path}")]
    RemoveDir { path: PathBuf, source: io::Error },
    #[error("opening {path}")]
    OpenFile { path: PathBuf, source: io::Error },
    #[error("reading {path} at byte {position}")]
    ReadFile {
        path: PathBuf,
        position: u64,
        source: io::Error,
    },
    #[error("writing {path}")]
    WriteFile { path: PathBuf, source: io::Error },
    #[error("syncing {path}")]
    SyncFile { path: PathBuf, source: io::Error },
    #[error("truncating {path} to {len} bytes")]
    TruncateFile {
        path: PathBuf,
        len: u64,
        source: io::Error,
    },
    #[error("removing {path}")]
    RemoveFile { path: PathBuf, source: io::Error },
    #[error("renaming {from} to {to}")]
    RenameFile {
        from: PathBuf,
        to: PathBuf,
        source: io::Error,
    },
    #[error("re-encoding the retained records of the batch at offset {base_offset} into {path}: {reason}")]
    EncodeBatch {
        path: PathBuf,
        base_offset: i64,
        reason: String,
    },
    #[error("writing cleaner checkpoint {path}")]
    WriteCleanerCheckpoint {
        path: PathBuf,
        source: crate::durable::DurableWriteError,
    },
    #[error("cleaner checkpoint {path} line {line}: {reason}")]
    CorruptCleanerCheckpoint {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{path} is corrupt at byte {position}: {reason}")]
    CorruptSegment {
        path: PathBuf,
        position: u64,
        reason: String,
    },
    #[error("{path} looks like a segment but its name is not a 20-digit base offset")]
    UnexpectedFile { path: PathBuf },
    #[error("invalid record set")]
    CorruptRecord(#[source] BatchError),
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    MessageTooLarge { size: usize, max: u32 },
    #[error("replicated batch starts at offset {found}, below the log end offset {log_end}")]
    UnexpectedAppendOffset { found: i64, log_end: i64 },
    #[error("offset {offset} is outside the log [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start: i64,
        log_end: i64,
    },
}

impl LogError {
    /// Short label for metrics.
    pub fn category(&self) -> &'static str {
        match self {
            LogError::CorruptRecord(_) => "corrupt_record",
            LogError::MessageTooLarge { .. } => "message_too_large",
            LogError::OffsetOutOfRange { .. } => "offset_out_of_range",
            LogError::CorruptSegment { .. } | LogError::UnexpectedFile { .. } => "corrupt_log",
            LogError::EncodeBatch { .. } => "compaction",
            _ => "io",
        }
    }

    /// The log's error for a refused batch: too large, or corrupt.
    pub fn from_batch(e: BatchError) -> LogError {
        match e {
            BatchError::TooLarge { size, max, .. } => LogError::MessageTooLarge { size, max },
            other => LogError::CorruptRecord(other),
        }
    }
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub first_offset: i64,
    pub last_offset: i64,
    /// Largest batch maxTimestamp appended (the broker's clock for LogAppendTime).
    pub max_timestamp: i64,
    /// `Some(now_ms)` when the topic uses LogAppendTime, as the Produce response reports it.
    pub log_append_time: Option<i64>,
    pub log_start_offset: i64,
}

/// A run of whole batches in one segment file, ready to be copied (or `sendfile`d) to a consumer.
///
/// Holding the `Arc<File>` keeps the bytes readable after the `Log` lock is dropped, even if retention unlinks
/// the segment meanwhile.
#[derive(Debug, Clone)]
pub struct ReadSlice {
    pub file: Arc<File>,
    pub position: u64,
    pub len: usize,
    /// Base offset of the first batch; may be below the requested offset (the batch contains it).
    pub first_batch_base_offset: i64,
    /// Records in the slice's batches, from their headers (for the fetched-records metric).
    pub records: u64,
}

impl ReadSlice {
    /// The slice's bytes, copied out of the file: for readers that decode records in the broker (offset
    /// lookups by time, rebuilding group state), not for fetch responses, which use sendfile.
    pub fn read_bytes(&self) -> io::Result<bytes::Bytes> {
        use std::os::unix::fs::FileExt;
        let mut bytes = vec![0u8; self.len];
        self.file.read_exact_at(&mut bytes, self.position)?;
        Ok(bytes::Bytes::from(bytes))
    }
}

/// One partition's log: a sequence of segments, the last of which is active.
///
/// Not internally synchronized: every `&mut self` method changes files, so callers wrap a `Log` in a `Mutex`
/// (reads hand out `Arc<File>`s so that lock need not be held while bytes are sent).
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    config: LogConfig,
    /// Inactive segments by base offset; every one has a base below `active`'s.
    segments: BTreeMap<i64, Segment>,
    active: Segment,
    log_start_offset: i64,
    recovery_point: i64,
    unflushed_messages: u64,
    last_flush_ms: i64,
    /// The log cleaner's persisted progress (see the `compaction` module).
    cleaner: CleanerCheckpoint,
    /// Bumped by every truncation, which may rewrite a segment in place: a compaction planned before one
    /// is stale.
    truncations: u64,
}

fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Opens (creating if needed) a segment or index file for reading and appending.
pub(crate) fn open_read_write(path: &Path, truncate: bool) -> Result<File, LogError> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(truncate)
        .open(path)
        .map_err(|source| LogError::OpenFile {
            path: path.to_path_buf(),
            source,
        })
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    crate::durable::sync_dir(dir).map_err(|source| LogError::SyncDir {
        path: dir.to_path_buf(),
        source,
    })
}

impl Log {
    /// Opens (creating if missing) the partition directory `dir`. After an unclean shutdown every segment
    /// holding offsets >= `recovery_point` is scanned and repaired; see [`RecoveryReport`].
    pub fn open(
        dir: &Path,
        config: LogConfig,
        recovery_point: i64,
        clean_shutdown: bool,
    ) -> Result<(Log, RecoveryReport), LogError> {
        let loaded = recovery::load(dir, &config, recovery_point, clean_shutdown)?;
        let log_start_offset = loaded
            .segments
            .keys()
            .next()
            .copied()
            .unwrap_or(loaded.active.base_offset());
        let log = Log {
            dir: dir.to_path_buf(),
            config,
            segments: loaded.segments,
            recovery_point: loaded.active.next_offset(),
            active: loaded.active,
            log_start_offset,
            unflushed_messages: 0,
            last_flush_ms: wall_clock_ms(),
            cleaner: CleanerCheckpoint::read(dir)?,
            truncations: 0,
        };
        tracing::info!(
            dir = %dir.display(),
            log_start_offset,
            log_end_offset = log.log_end_offset(),
            segments = log.segment_count(),
            "log opened"
        );
        Ok((log, loaded.report))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn config(&self) -> &LogConfig {
        &self.config
    }
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }
    pub fn log_end_offset(&self) -> i64 {
        self.active.next_offset()
    }
    /// Every offset below this is known to be on stable storage.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }
    pub fn size_bytes(&self) -> u64 {
        self.all_segments().map(Segment::size).sum()
    }
    pub fn segment_count(&self) -> usize {
        self.segments.len() + 1
    }

    fn all_segments(&self) -> impl Iterator<Item = &Segment> {
        self.segments.values().chain(iter::once(&self.active))
    }

    /// The segment that would hold `offset`, then every later one.
    fn segments_from(&self, offset: i64) -> impl Iterator<Item = &Segment> {
        let floor = self
            .segments
            .range(..=offset)
            .next_back()
            .map_or(i64::MIN, |(base, _)| *base);
        self.segments
            .range(floor..)
            .map(|(_, s)| s)
            .chain(iter::once(&self.active))
    }

    /// Validates, assigns offsets to and appends a producer's record set (one or more v2 batches).
    ///
    /// Nothing is written unless every batch is valid. The buffer is rewritten in place (base offsets, and
    /// maxTimestamp/attributes/CRC for LogAppendTime) so it equals what is stored.
    pub fn append(&mut self, batches: &mut [u8], now_ms: i64) -> Result<AppendInfo, LogError> {
        let mut headers = batch::validate_batches(batches, self.config.max_message_bytes)
            .map_err(LogError::from_batch)?;
        let first_offset = self.log_end_offset();
        let append_time = self.config.timestamp_type == TimestampType::LogAppendTime;
        let mut next = first_offset;
        let mut max_timestamp = -1;
        for h in &mut headers {
            let start = h.position as usize;
            let bytes = &mut batches[start..start + h.size as usize];
            batch::set_base_offset(bytes, next);
            h.base_offset = next;
            h.last_offset = next + i64::from(h.record_count) - 1;
            if append_time {
                batch::set_log_append_time(bytes, now_ms);
                h.max_timestamp = now_ms;
                h.attributes |= batch::TIMESTAMP_TYPE_BIT;
            }
            max_timestamp = max_timestamp.max(h.max_timestamp);
            next = h.last_offset + 1;
        }
        let last_offset = next - 1;
        self.maybe_roll(batches.len() as u64, last_offset, now_ms)?;
        self.active
            .append(batches, &headers, self.config.index_interval_bytes, now_ms)?;
        self.unflushed_messages += (next - first_offset) as u64;
        self.maybe_flush(now_ms)?;
        tracing::trace!(dir = %self.dir.display(), first_offset, last_offset, "appended");
        Ok(AppendInfo {
            first_offset,
            last_offset,
            max_timestamp,
            log_append_time: append_time.then_some(now_ms),
            log_start_offset: self.log_start_offset,
        })
    }

    /// Appends batches copied from a leader as they are: offsets, timestamps, leader epochs and CRCs are
    /// the leader's. Each batch is checked (framing, CRC) and must start at or after the log end offset and
    /// after the previous one; offset gaps between batches are allowed, since a compacted leader has them.
    pub fn append_replicated(
        &mut self,
        batches: &[u8],
        now_ms: i64,
    ) -> Result<(Vec<BatchHeader>, AppendInfo), LogError> {
        let mut headers = Vec::new();
        let mut pos = 0usize;
        let mut next = self.log_end_offset();
        while pos < batches.len() {
            let rest = &batches[pos..];
            let size = batch::batch_size_from_prefix(rest, pos).map_err(LogError::from_batch)?;
            if size > rest.len() {
                return Err(LogError::CorruptRecord(BatchError::Truncated {
                    position: pos,
                    needed: size,
                    available: rest.len(),
                }));
            }
            let mut header =
                batch::check_stored_batch(&rest[..size], 0).map_err(LogError::from_batch)?;
            header.position = pos as u64;
            if header.base_offset < next {
                return Err(LogError::UnexpectedAppendOffset {
                    found: header.base_offset,
                    log_end: next,
                });
            }
            next = header.last_offset + 1;
            headers.push(header);
            pos += size;
        }
        let (Some(first), Some(last)) = (headers.first(), headers.last()) else {
            return Err(LogError::CorruptRecord(BatchError::Empty));
        };
        let info = AppendInfo {
            first_offset: first.base_offset,
            last_offset: last.last_offset,
            max_timestamp: headers.iter().map(|h| h.max_timestamp).max().unwrap_or(-1),
            log_append_time: None,
            log_start_offset: self.log_start_offset,
        };
        self.maybe_roll(batches.len() as u64, info.last_offset, now_ms)?;
        self.active
            .append(batches, &headers, self.config.index_interval_bytes, now_ms)?;
        self.unflushed_messages += (next - info.first_offset).max(0) as u64;
        self.maybe_flush(now_ms)?;
        Ok((headers, info))
    }

    fn maybe_roll(&mut self, incoming: u64, last_offset: i64, now_ms: i64) -> Result<(), LogError> {
        let active = &self.active;
        if active.size() == 0 {
            return Ok(());
        }
        let limit = self.config.segment_bytes.min(MAX_SEGMENT_BYTES);
        let full = active.size() + incoming > limit;
        let roll_after = self.config.segment_ms.saturating_sub(roll_jitter_ms(
            active.base_offset(),
            self.config.segment_jitter_ms,
        ));
        let aged = active
            .roll_clock_start_ms()
            .is_some_and(|t| now_ms.saturating_sub(t) > roll_after);
        let index_full = active.index_full(self.config.segment_index_bytes as usize);
        // Index entries hold offsets relative to the base as 32 bits.
        let offsets_overflow = last_offset - active.base_offset() > i64::from(i32::MAX);
        if full || aged || index_full || offsets_overflow {
            tracing::debug!(dir = %self.dir.display(), full, aged, index_full, offsets_overflow, "rolling segment");
            self.roll()?;
        }
        Ok(())
    }

    /// Seals the active segment (fsync of log, indexes) and starts a new one at the log end offset.
    fn roll(&mut self) -> Result<(), LogError> {
        if self.active.size() == 0 {
            return Ok(());
        }
        let new_base = self.log_end_offset();
        self.active.seal()?;
        let new = Segment::create(&self.dir, new_base)?;
        sync_dir(&self.dir)?;
        let old = std::mem::replace(&mut self.active, new);
        self.segments.insert(old.base_offset(), old);
        // Everything before the new segment has just been fsynced.
        self.recovery_point = self.recovery_point.max(new_base);
        self.unflushed_messages = 0;
        tracing::info!(dir = %self.dir.display(), base_offset = new_base, "rolled new segment");
        Ok(())
    }

    fn maybe_flush(&mut self, now_ms: i64) -> Result<(), LogError> {
        let due = match self.config.flush {
            // Group commit belongs to the caller: it fsyncs (outside its lock, shared by concurrent appends)
            // before acknowledging. Flushing here would fsync every batch on the request path, under the lock.
            FlushPolicy::EveryBatch => false,
            FlushPolicy::Interval { messages, ms } => {
                // A clock that went backwards counts as no time passed.
                let elapsed = now_ms.saturating_sub(self.last_flush_ms).max(0) as u64;
                self.unflushed_messages >= messages || elapsed >= ms
            }
            FlushPolicy::Os => false,
        };
        if due {
            self.flush_at(now_ms)?;
        }
        Ok(())
    }

    fn flush_at(&mut self, now_ms: i64) -> Result<(), LogError> {
        self.active.flush()?;
        self.recovery_point = self.log_end_offset();
        self.unflushed_messages = 0;
        self.last_flush_ms = now_ms;
        Ok(())
    }

    /// fsyncs the active segment and its indexes and advances the recovery point to the log end offset.
    pub fn flush(&mut self) -> Result<(), LogError> {
        self.flush_at(wall_clock_ms())
    }

    /// The active segment's file and the log end offset it holds, so a caller can fsync outside its lock
    /// (group commit) and then call [`Log::mark_flushed`]. Only the `.log` file is synced that way; indexes are
    /// rebuilt at open if they turn out damaged.
    pub fn active_segment_handle(&self) -> (Arc<File>, i64) {
        (Arc::clone(self.active.file()), self.log_end_offset())
    }

    /// Records that everything below `up_to` has been fsynced by the caller.
    pub fn mark_flushed(&mut self, up_to: i64) {
        let up_to = up_to.min(self.log_end_offset());
        if up_to > self.recovery_point {
            self.recovery_point = up_to;
        }
        if up_to == self.log_end_offset() {
            self.unflushed_messages = 0;
        }
    }

    /// Whole batches starting with the one containing `offset`, up to `max_bytes` but at least one batch.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadSlice, LogError> {
        self.read_below(offset, max_bytes, i64::MAX)
    }

    /// [`Log::read`] without any batch whose last offset is at or above `upper`: consumers read up to the
    /// high watermark, and a batch straddling it waits until it is wholly committed (empty slice then).
    pub fn read_below(
        &self,
        offset: i64,
        max_bytes: usize,
        upper: i64,
    ) -> Result<ReadSlice, LogError> {
        let log_end = self.log_end_offset();
        if offset < self.log_start_offset || offset > log_end {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start: self.log_start_offset,
                log_end,
            });
        }
        for segment in self.segments_from(offset) {
            let Some(first) = segment.find_batch(offset)? else {
                continue;
            };
            if first.last_offset >= upper {
                break;
            }
            let mut len = u64::from(first.size);
            let mut pos = first.position + len;
            let mut records = u64::try_from(first.record_count).unwrap_or(0);
            while pos < segment.size() {
                let next = segment.read_header_at(pos)?;
                if len + u64::from(next.size) > max_bytes as u64 || next.last_offset >= upper {
                    break;
                }
                len += u64::from(next.size);
                pos += u64::from(next.size);
                records += u64::try_from(next.record_count).unwrap_or(0);
            }
            return Ok(ReadSlice {
                file: Arc::clone(segment.file()),
                position: first.position,
                len: len as usize,
                first_batch_base_offset: first.base_offset,
                records,
            });
        }
        Ok(ReadSlice {
            file: Arc::clone(self.active.file()),
            position: self.active.size(),
            len: 0,
            first_batch_base_offset: log_end,
            records: 0,
        })
    }

    /// ListOffsets by timestamp: the first batch whose maxTimestamp >= `timestamp`, as `(offset, timestamp)`.
    ///
    /// Works on batch headers only (records are never decoded), so it returns that batch's base offset and
    /// maxTimestamp, where Kafka would return the first record with timestamp >= `timestamp`; a consumer
    /// seeking there skips at most the earlier records of that one batch.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, LogError> {
        for segment in self.all_segments() {
            if segment.max_timestamp_and_offset().0 < timestamp {
                continue;
            }
            if let Some(h) = segment.find_by_timestamp(timestamp)? {
                return Ok(Some((
                    h.base_offset.max(self.log_start_offset),
                    h.max_timestamp,
                )));
            }
        }
        Ok(None)
    }

    /// ListOffsets MAX_TIMESTAMP: the largest batch timestamp and the last offset of the first batch that has
    /// it, or `None` for a log without timestamps.
    pub fn max_timestamp_and_offset(&self) -> Option<(i64, i64)> {
        self.all_segments()
            .map(Segment::max_timestamp_and_offset)
            .filter(|(ts, _)| *ts >= 0)
            .fold(None, |best: Option<(i64, i64)>, cur| match best {
                Some(b) if b.0 >= cur.0 => Some(b),
                _ => Some(cur),
            })
    }

    /// Headers of every batch from the one containing `from_offset` to the end, e.g. to rebuild producer state.
    pub fn batch_headers(
        &self,
        from_offset: i64,
    ) -> impl Iterator<Item = Result<BatchHeader, LogError>> + '_ {
        self.segments_from(from_offset)
            .flat_map(move |s| s.headers_from(from_offset))
            .filter(move |r| r.as_ref().map_or(true, |h| h.last_offset >= from_offset))
    }

    /// Deletes the oldest segments breaching retention.ms, then retention.bytes; returns how many went.
    ///
    /// Like Kafka, a fully expired log first rolls so the log start offset moves up to the log end offset.
    /// There is no high watermark here: the caller must not apply retention to uncommitted data it cares about.
    /// Does nothing unless `cleanup.policy` contains `delete`. An inactive segment compaction left empty
    /// counts as expired.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<usize, LogError> {
        if !self.config.delete {
            return Ok(0);
        }
        let mut deleted = 0;
        let active_base = self.active.base_offset();
        if self.config.retention_ms >= 0 {
            let retention_ms = self.config.retention_ms;
            let count = self
                .all_segments()
                .take_while(|s| {
                    if s.size() == 0 {
                        return s.base_offset() != active_base;
                    }
                    now_ms.saturating_sub(s.largest_timestamp()) > retention_ms
                })
                .count();
            deleted += self.delete_oldest(count, "retention.ms")?;
        }
        if self.config.retention_bytes >= 0 {
            let mut excess = self.size_bytes() as i64 - self.config.retention_bytes;
            let count = self
                .all_segments()
                .take_while(|s| {
                    let go = (s.size() > 0 || s.base_offset() != active_base)
                        && excess - s.size() as i64 >= 0;
                    if go {
                        excess -= s.size() as i64;
                    }
                    go
                })
                .count();
            deleted += self.delete_oldest(count, "retention.bytes")?;
        }
        Ok(deleted)
    }

    fn delete_oldest(&mut self, count: usize, reason: &'static str) -> Result<usize, LogError> {
        if count == 0 {
            return Ok(0);
        }
        if count >= self.segment_count() {
            self.roll()?;
        }
        for _ in 0..count.min(self.segments.len()) {
            let Some((base_offset, segment)) = self.segments.pop_first() else {
                break;
            };
            let next = self
                .segments
                .keys()
                .next()
                .copied()
                .unwrap_or(self.active.base_offset());
            self.log_start_offset = self.log_start_offset.max(next);
            segment.delete()?;
            tracing::info!(dir = %self.dir.display(), base_offset, reason, "deleted segment");
        }
        self.recovery_point = self.recovery_point.max(self.log_start_offset);
        sync_dir(&self.dir)?;
        Ok(count)
    }

    /// DeleteRecords: moves the log start offset up to `offset` and deletes segments wholly below it.
    ///
    /// A start offset inside a segment is only held in memory; persisting it is the job of the
    /// `log-start-offset-checkpoint`, which the broker writes and reapplies on start.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<(), LogError> {
        let log_end = self.log_end_offset();
        if offset > log_end {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start: self.log_start_offset,
                log_end,
            });
        }
        if offset <= self.log_start_offset {
            return Ok(());
        }
        self.log_start_offset = offset;
        // An empty inactive segment (left by compaction) spans up to the next segment's base.
        let ends = self
            .segments
            .keys()
            .skip(1)
            .copied()
            .chain([self.active.base_offset(), i64::MAX]);
        let below = self
            .all_segments()
            .zip(ends)
            .take_while(|(s, end)| {
                if s.size() == 0 {
                    *end <= offset && *end != i64::MAX
                } else {
                    s.next_offset() <= offset
                }
            })
            .count();
        self.delete_oldest(below, "delete-records")?;
        // delete_oldest moves the start to a segment base; the requested offset may lie inside that segment.
        self.log_start_offset = self.log_start_offset.max(offset);
        Ok(())
    }

    /// Removes every offset >= `offset` (used by replication). Truncation is at batch granularity: if `offset`
    /// falls inside a batch, that whole batch goes and the log end offset becomes its base offset.
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), LogError> {
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        self.truncations += 1;
        if offset <= self.log_start_offset {
            return self.truncate_fully_and_start_at(offset);
        }
        while self.active.base_offset() >= offset {
            let Some((_, previous)) = self.segments.pop_last() else {
                break;
            };
            std::mem::replace(&mut self.active, previous).delete()?;
        }
        // Where the log must end: the base of the batch holding `offset`, else `offset` itself, even when
        // compaction removed the records just below it (the log end offset is never reused).
        let target = self
            .active
            .find_batch(offset)?
            .map_or(offset, |h| h.base_offset.min(offset));
        let removed = self.active.truncate_to(offset)?;
        if self.active.next_offset() < target {
            self.active.seal()?;
            let fresh = Segment::create(&self.dir, target)?;
            let old = std::mem::replace(&mut self.active, fresh);
            self.segments.insert(old.base_offset(), old);
        }
        self.recovery_point = self.recovery_point.min(self.log_end_offset());
        self.lower_cleaner_checkpoint(self.log_end_offset())?;
        sync_dir(&self.dir)?;
        tracing::info!(dir = %self.dir.display(), offset, removed, log_end_offset = self.log_end_offset(), "truncated");
        Ok(())
    }

    fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<(), LogError> {
        self.truncations += 1;
        let fresh = Segment::create(&self.dir, offset);
        let old = std::mem::replace(&mut self.active, fresh?);
        // The fresh segment may share the old active's base offset and thus its file names.
        if old.base_offset() != offset {
            old.delete()?;
        }
        for (_, segment) in std::mem::take(&mut self.segments) {
            if segment.base_offset() != offset {
                segment.delete()?;
            }
        }
        self.log_start_offset = offset;
        self.recovery_point = offset;
        self.lower_cleaner_checkpoint(offset)?;
        sync_dir(&self.dir)
    }

    /// Flushes everything for a clean shutdown.
    pub fn close(mut self) -> Result<(), LogError> {
        // Inactive segments were fsynced when they were rolled (or recovered at open).
        self.active.seal()?;
        sync_dir(&self.dir)?;
        tracing::info!(dir = %self.dir.display(), log_end_offset = self.log_end_offset(), "log closed");
        Ok(())
    }

    /// Removes the partition directory and everything in it.
    pub fn delete(self) -> Result<(), LogError> {
        let dir = self.dir.clone();
        drop(self);
        std::fs::remove_dir_all(&dir).map_err(|source| LogError::RemoveDir {
            path: dir.clone(),
            source,
        })?;
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
        Ok(())
    }
}

/// The part of `segment.jitter.ms` taken off `segment.ms` for the segment at `base_offset`: spread over
/// [0, jitter) by the base offset (a multiplicative hash), fixed for the segment's life as Kafka's random
/// per-segment jitter is, and the same after a restart.
fn roll_jitter_ms(base_offset: i64, jitter_ms: i64) -> i64 {
    if jitter_ms <= 0 {
        return 0;
    }
    let spread = (base_offset as u64)
        .wrapping_add(1)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (spread % jitter_ms as u64) as i64
}
