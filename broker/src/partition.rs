//! One partition replica on this broker: its [`Log`], its idempotent-producer state, its high watermark, the
//! group-commit flusher and the wake-ups for long-polling fetches.
//!
//! Thread-safe: the log and producer state sit behind one short-held mutex (appends are page-cache writes);
//! fsync happens outside it so readers and other appends never wait for the disk. Must never hold the lock
//! across an `.await`.

pub mod producer_state;

use std::{
    path::Path,
    sync::{
        atomic::{AtomicI64, Ordering},
        Mutex, MutexGuard,
    },
    time::Instant,
};

use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::Notify;
use uuid::Uuid;

use self::producer_state::{
    last_sequence, BatchSequence, ProducerStateError, ProducerStates, SequenceCheck,
};
use crate::{
    log::{
        batch_size_from_prefix, parse_header, BatchError, CleanReport, FlushPolicy, Log, LogConfig,
        LogError, ReadSlice, RecoveryReport,
    },
    metrics::PartitionCounters,
};

#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Producer(#[from] ProducerStateError),
    #[error("a produce request must carry exactly one record batch per partition, found {0}")]
    BatchCount(usize),
    #[error("record batch is malformed")]
    MalformedBatch(#[source] BatchError),
    #[error("a compacted topic cannot accept a record without a key")]
    KeylessRecordInCompactedTopic,
    #[error("fsync of partition {topic}-{partition} failed")]
    Flush {
        topic: String,
        partition: i32,
        source: std::io::Error,
    },
}

/// The producer fields of an incoming batch, read before the log validates the rest.
#[derive(Debug, Clone, Copy)]
struct ProducerFields {
    producer_id: i64,
    epoch: i16,
    first_seq: i32,
    last_seq: i32,
}

/// Checks that a produce payload is exactly one v2 batch, as Kafka requires since Produce v3, and reads its
/// producer fields; the log validates the rest (CRC, counts, size) on append.
fn single_batch_producer_fields(records: &[u8]) -> Result<ProducerFields, PartitionError> {
    let header = parse_header(records, 0).map_err(PartitionError::MalformedBatch)?;
    let size = header.size as usize;
    if size < records.len() {
        let mut count = 1;
        let mut position = size;
        while count < 1_000 {
            let Ok(next) = batch_size_from_prefix(&records[position..], position) else {
                break;
            };
            position = position.saturating_add(next);
            count += 1;
            if position >= records.len() {
                break;
            }
        }
        return Err(PartitionError::BatchCount(count));
    }
    let last_offset_delta =
        (header.last_offset - header.base_offset).clamp(0, i64::from(i32::MAX)) as i32;
    Ok(ProducerFields {
        producer_id: header.producer_id,
        epoch: header.producer_epoch,
        first_seq: header.base_sequence,
        last_seq: last_sequence(header.base_sequence, last_offset_delta),
    })
}

/// Decodes the batch in `slice` and returns (offset, timestamp) of its first record at or after `timestamp`.
fn first_record_at_or_after(
    slice: &ReadSlice,
    timestamp: i64,
) -> anyhow::Result<Option<(i64, i64)>> {
    let mut buf = slice.read_bytes()?;
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf)?;
    Ok(set
        .records
        .iter()
        .find(|r| r.timestamp >= timestamp)
        .map(|r| (r.offset, r.timestamp)))
}

/// A compacted topic keeps the latest record per key, so a record without a key could never be kept; Kafka
/// refuses it on produce and so do we. Needs the records decoded (and decompressed), which only compacted
/// topics pay for.
fn reject_keyless_records(records: &[u8]) -> Result<(), PartitionError> {
    let mut buf = bytes::Bytes::copy_from_slice(records);
    let keyless = match kafka_protocol::records::RecordBatchDecoder::decode(&mut buf) {
        Ok(set) => set.records.iter().any(|r| r.key.is_none() && !r.control),
        // Undecodable records are the log's to reject with a precise reason.
        Err(_) => false,
    };
    if keyless {
        return Err(PartitionError::KeylessRecordInCompactedTopic);
    }
    Ok(())
}

/// What the checkpoint files and the clean shutdown marker say about a log before it is opened.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogStartState {
    pub recovery_point: i64,
    pub log_start_offset: i64,
    pub clean_shutdown: bool,
}

#[derive(Debug)]
struct PartitionLog {
    log: Log,
    config: LogConfig,
    producers: ProducerStates,
}

/// Log figures read under one lock, for metrics.
#[derive(Debug, Clone, Copy)]
pub struct LogStats {
    pub size_bytes: u64,
    pub segments: u64,
    pub log_end_offset: i64,
}

/// The result of an append that the produce handler reports back.
#[derive(Debug, Clone, Copy)]
pub struct AppendOutcome {
    pub base_offset: i64,
    pub last_offset: i64,
    pub log_append_time: i64,
    pub log_start_offset: i64,
    /// True when the batch was a retry of one already written.
    pub duplicate: bool,
}

/// This replica's part in the partition, as the metadata last said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// This broker leads; `isr` are the in-sync replicas (this broker among them).
    Leader { local: i32, isr: Vec<i32> },
    /// Another broker leads (or none: [`crate::cluster::image::NO_LEADER`]).
    Follower { leader: i32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Leadership {
    role: Role,
    leader_epoch: i32,
    /// Log end offsets followers reported, by broker id. The high watermark is the lowest end offset in the
    /// ISR, so a follower in the ISR that has not reported holds it back.
    follower_end_offsets: std::collections::BTreeMap<i32, i64>,
}

#[derive(Debug)]
pub struct Partition {
    pub topic: String,
    pub topic_id: Uuid,
    pub index: i32,
    state: Mutex<PartitionLog>,
    /// Woken on every append so long-polling fetches re-check.
    data_arrived: Notify,
    /// Serializes fsyncs; waiters that find their offset already flushed return at once (group commit).
    flush_lock: tokio::sync::Mutex<()>,
    flushed_offset: AtomicI64,
    high_watermark: AtomicI64,
    leadership: Mutex<Leadership>,
    log_start_offset: AtomicI64,
    /// Produced and fetched bytes and records, read by the metrics scrape.
    pub counters: PartitionCounters,
    /// The broker-wide fsync latency histogram.
    fsync_duration: Histogram,
}

impl Partition {
    pub fn open(
        topic: &str,
        topic_id: Uuid,
        index: i32,
        dir: &Path,
        config: LogConfig,
        start: LogStartState,
        fsync_duration: Histogram,
    ) -> Result<(Self, RecoveryReport), PartitionError> {
        let (mut log, report) = Log::open(
            dir,
            config.clone(),
            start.recovery_point,
            start.clean_shutdown,
        )?;
        // A log start offset inside a segment lives only in the checkpoint; put it back.
        if start.log_start_offset > log.log_start_offset()
            && start.log_start_offset <= log.log_end_offset()
        {
            log.delete_records_before(start.log_start_offset)?;
        }
        let mut producers = ProducerStates::default();
        for header in log.batch_headers(log.log_start_offset()) {
            let header = header?;
            if header.producer_id >= 0 {
                producers.record(
                    header.producer_id,
                    header.producer_epoch,
                    BatchSequence {
                        first_seq: header.base_sequence,
                        last_seq: last_sequence(
                            header.base_sequence,
                            (header.last_offset - header.base_offset) as i32,
                        ),
                        first_offset: header.base_offset,
                        last_offset: header.last_offset,
                        max_timestamp: header.max_timestamp,
                    },
                );
            }
        }
        let end = log.log_end_offset();
        let start = log.log_start_offset();
        let recovered = log.recovery_point();
        Ok((
            Self {
                topic: topic.to_owned(),
                topic_id,
                index,
                state: Mutex::new(PartitionLog {
                    log,
                    config,
                    producers,
                }),
                data_arrived: Notify::new(),
                flush_lock: tokio::sync::Mutex::new(()),
                flushed_offset: AtomicI64::new(recovered),
                high_watermark: AtomicI64::new(end),
                // Nothing is served until the replica manager gives the partition a role.
                leadership: Mutex::new(Leadership {
                    role: Role::Follower {
                        leader: crate::cluster::image::NO_LEADER,
                    },
                    leader_epoch: -1,
                    follower_end_offsets: Default::default(),
                }),
                log_start_offset: AtomicI64::new(start),
                counters: PartitionCounters::default(),
                fsync_duration,
            },
            report,
        ))
    }

    fn lock(&self) -> MutexGuard<'_, PartitionLog> {
        // A panic while holding the lock cannot leave the log half-written in memory (every mutation is a
        // file append followed by bookkeeping), so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Validates and appends one producer batch, rewriting its offsets in place.
    pub fn append(&self, records: &mut [u8], now_ms: i64) -> Result<AppendOutcome, PartitionError> {
        let fields = single_batch_producer_fields(records)?;
        let mut state = self.lock();
        if state.config.compact {
            reject_keyless_records(records)?;
        }
        let idempotent = fields.producer_id >= 0;
        if idempotent {
            let check = state.producers.check(
                fields.producer_id,
                fields.epoch,
                fields.first_seq,
                fields.last_seq,
            )?;
            if let SequenceCheck::Duplicate(original) = check {
                return Ok(AppendOutcome {
                    base_offset: original.first_offset,
                    last_offset: original.last_offset,
                    log_append_time: -1,
                    log_start_offset: state.log.log_start_offset(),
                    duplicate: true,
                });
            }
        }
        let info = state.log.append(records, now_ms)?;
        self.counters.produced(
            records.len() as u64,
            u64::try_from(info.last_offset - info.first_offset + 1).unwrap_or(0),
        );
        if idempotent {
            state.producers.record(
                fields.producer_id,
                fields.epoch,
                BatchSequence {
                    first_seq: fields.first_seq,
                    last_seq: fields.last_seq,
                    first_offset: info.first_offset,
                    last_offset: info.last_offset,
                    max_timestamp: info.max_timestamp,
                },
            );
        }
        let log_end = state.log.log_end_offset();
        drop(state);
        self.advance_high_watermark(log_end);
        self.data_arrived.notify_waiters();
        Ok(AppendOutcome {
            base_offset: info.first_offset,
            last_offset: info.last_offset,
            log_append_time: info.log_append_time.unwrap_or(-1),
            log_start_offset: info.log_start_offset,
            duplicate: false,
        })
    }

    fn leadership(&self) -> MutexGuard<'_, Leadership> {
        self.leadership
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes this replica the leader for `leader_epoch` with in-sync replicas `isr`.
    pub fn become_leader(&self, local: i32, leader_epoch: i32, isr: Vec<i32>) {
        {
            let mut leadership = self.leadership();
            leadership
                .follower_end_offsets
                .retain(|id, _| isr.contains(id));
            leadership.role = Role::Leader { local, isr };
            leadership.leader_epoch = leader_epoch;
        }
        self.advance_high_watermark(self.log_end_offset());
    }

    /// Makes this replica a follower of `leader` for `leader_epoch`.
    pub fn become_follower(&self, leader: i32, leader_epoch: i32) {
        let mut leadership = self.leadership();
        leadership.role = Role::Follower { leader };
        leadership.leader_epoch = leader_epoch;
        leadership.follower_end_offsets.clear();
    }

    pub fn role(&self) -> Role {
        self.leadership().role.clone()
    }

    pub fn is_leader(&self) -> bool {
        matches!(self.leadership().role, Role::Leader { .. })
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leadership().leader_epoch
    }

    /// Moves the high watermark up to the lowest log end offset among the in-sync replicas (this leader's
    /// own is `log_end`). Never moves it back, and a follower is never the one to move it.
    fn advance_high_watermark(&self, log_end: i64) {
        let leadership = self.leadership();
        let Role::Leader { local, isr } = &leadership.role else {
            return;
        };
        let mut committed = log_end;
        for replica in isr.iter().filter(|id| *id != local) {
            match leadership.follower_end_offsets.get(replica) {
                Some(end) => committed = committed.min(*end),
                None => return,
            }
        }
        self.high_watermark.fetch_max(committed, Ordering::AcqRel);
    }

    pub fn flush_policy(&self) -> FlushPolicy {
        self.lock().config.flush
    }

    /// Waits until everything below `offset` is on disk, fsyncing if nobody else is. Concurrent callers share
    /// one fsync: the second finds its data already covered when it gets the lock.
    pub async fn flush_until(&self, offset: i64) -> Result<(), PartitionError> {
        if self.flushed_offset.load(Ordering::Acquire) >= offset {
            return Ok(());
        }
        let _flushing = self.flush_lock.lock().await;
        if self.flushed_offset.load(Ordering::Acquire) >= offset {
            return Ok(());
        }
        let (file, end) = self.lock().log.active_segment_handle();
        let started = Instant::now();
        let synced = tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .unwrap_or_else(|join| Err(std::io::Error::other(join)));
        self.fsync_duration.observe(started.elapsed().as_secs_f64());
        synced.map_err(|source| PartitionError::Flush {
            topic: self.topic.clone(),
            partition: self.index,
            source,
        })?;
        self.lock().log.mark_flushed(end);
        self.flushed_offset.fetch_max(end, Ordering::AcqRel);
        Ok(())
    }

    /// Offsets appended but not yet fsynced.
    pub fn unflushed(&self) -> i64 {
        self.log_end_offset() - self.flushed_offset.load(Ordering::Acquire)
    }

    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadSlice, PartitionError> {
        Ok(self.lock().log.read(offset, max_bytes)?)
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }

    pub fn log_end_offset(&self) -> i64 {
        self.lock().log.log_end_offset()
    }

    pub fn log_stats(&self) -> LogStats {
        let state = self.lock();
        LogStats {
            size_bytes: state.log.size_bytes(),
            segments: state.log.segment_count() as u64,
            log_end_offset: state.log.log_end_offset(),
        }
    }

    /// A future that completes on the next append; create it *before* checking for data to not miss one.
    pub fn data_arrived(&self) -> tokio::sync::futures::Notified<'_> {
        self.data_arrived.notified()
    }

    /// ListOffsets by timestamp: the first *record* whose timestamp is at or after `timestamp`, as Kafka
    /// answers. The log's time index finds the batch; the batch is then decoded (decompressed if needed) to
    /// find the record. Reads from disk, so call it from a request task, not under other locks.
    pub fn offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<(i64, i64)>, PartitionError> {
        let (found, slice) = {
            let state = self.lock();
            let Some(found) = state.log.offset_for_timestamp(timestamp)? else {
                return Ok(None);
            };
            (found, state.log.read(found.0, 1)?)
        };
        match first_record_at_or_after(&slice, timestamp) {
            Ok(Some(hit)) => Ok(Some(hit)),
            // The batch's max timestamp qualified, so a record must; a decode failure falls back to the batch.
            Ok(None) => Ok(Some(found)),
            Err(e) => {
                tracing::warn!(topic = %self.topic, partition = self.index, error = %e, "could not decode batch for a timestamp lookup");
                Ok(Some(found))
            }
        }
    }

    pub fn max_timestamp_and_offset(&self) -> Option<(i64, i64)> {
        self.lock().log.max_timestamp_and_offset()
    }

    pub fn set_config(&self, config: LogConfig) {
        let mut state = self.lock();
        state.log.set_config(config.clone());
        state.config = config;
    }

    /// One compaction pass if the partition is compacted and due. The slow part (reading, deduplicating and
    /// rewriting segments) runs without the partition lock, so appends and fetches carry on; only planning
    /// and installing the cleaned segments take it briefly. Blocking: call from a blocking thread.
    pub fn clean(&self, now_ms: i64) -> Result<Option<CleanReport>, PartitionError> {
        let Some(plan) = self.lock().log.compaction_plan(now_ms) else {
            return Ok(None);
        };
        let cleaned = plan.execute()?;
        Ok(Some(self.lock().log.install_cleaned(cleaned)?))
    }

    pub fn is_compacted(&self) -> bool {
        self.lock().config.compact
    }

    pub fn apply_retention(&self, now_ms: i64) -> Result<usize, PartitionError> {
        let mut state = self.lock();
        let deleted = state.log.apply_retention(now_ms)?;
        self.log_start_offset
            .store(state.log.log_start_offset(), Ordering::Release);
        Ok(deleted)
    }

    /// (recovery point, log start offset) for the checkpoint files.
    pub fn checkpoint_offsets(&self) -> (i64, i64) {
        let state = self.lock();
        (state.log.recovery_point(), state.log.log_start_offset())
    }

    pub fn flush_now(&self) -> Result<(), PartitionError> {
        let mut state = self.lock();
        let started = Instant::now();
        state.log.flush()?;
        self.fsync_duration.observe(started.elapsed().as_secs_f64());
        self.flushed_offset
            .fetch_max(state.log.log_end_offset(), Ordering::AcqRel);
        Ok(())
    }

    pub fn producer_count(&self) -> usize {
        self.lock().producers.len()
    }

    /// Consumes the partition to close or delete its log; callers must hold the only reference.
    pub fn into_log(self) -> Log {
        self.state
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .log
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn produce_payload_framing_is_checked_before_the_log() {
        assert!(matches!(
            single_batch_producer_fields(&[0; 10]),
            Err(PartitionError::MalformedBatch(_))
        ));
        let mut batch = vec![0u8; 61];
        batch[8..12].copy_from_slice(&49i32.to_be_bytes());
        batch[16] = 2;
        batch[43..51].copy_from_slice(&42i64.to_be_bytes());
        batch[53..57].copy_from_slice(&7i32.to_be_bytes());
        batch[23..27].copy_from_slice(&2i32.to_be_bytes());
        let fields = single_batch_producer_fields(&batch).expect("valid header");
        assert_eq!(
            (fields.producer_id, fields.first_seq, fields.last_seq),
            (42, 7, 9)
        );
        let mut two = batch.clone();
        two.extend_from_slice(&batch);
        assert!(matches!(
            single_batch_producer_fields(&batch[..60]),
            Err(PartitionError::MalformedBatch(_))
        ));
        assert!(matches!(
            single_batch_producer_fields(&two),
            Err(PartitionError::BatchCount(2))
        ));
        batch[16] = 1;
        assert!(matches!(
            single_batch_producer_fields(&batch),
            Err(PartitionError::MalformedBatch(_))
        ));
    }
}
