//! One partition replica on this broker: its [`Log`], its idempotent-producer state, its high watermark, the
//! group-commit flusher and the wake-ups for long-polling fetches.
//!
//! Thread-safe: the log and producer state sit behind one short-held mutex (appends are page-cache writes);
//! fsync happens outside it so readers and other appends never wait for the disk. Must never hold the lock
//! across an `.await`.

pub mod producer_state;
pub mod recompress;
pub mod replica_state;

use std::{
    ops::ControlFlow,
    path::Path,
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Instant,
};

use tokio::sync::{watch, Notify};
use uuid::Uuid;

use self::{
    producer_state::{
        last_sequence, BatchSequence, ProducerStateError, ProducerStates, SequenceCheck,
    },
    recompress::{RecompressError, Recompression},
    replica_state::{IsrChange, ReplicaSet},
};
use crate::{
    cluster::image::{NodeId, PartitionRegistration, NO_LEADER},
    log::{
        batch_size_from_prefix, parse_header, set_partition_leader_epoch, validate_batches,
        AppendInfo, BatchError, BatchHeader, CleanReport, FlushPolicy, LeaderEpochCache,
        LeaderEpochError, Log, LogConfig, LogError, ReadSlice, RecoveryReport,
    },
    metrics::PartitionCounters,
    storage_health::StorageHealth,
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
    #[error("storing the batch with the topic's compression.type")]
    Recompress(#[source] RecompressError),
    #[error("leader epoch cache of partition {topic}-{partition}")]
    LeaderEpoch {
        topic: String,
        partition: i32,
        source: Box<LeaderEpochError>,
    },
    #[error("partition {topic}-{partition} is no longer led in leader epoch {expected}")]
    EpochChanged {
        topic: String,
        partition: i32,
        expected: i32,
    },
    #[error("partition {topic}-{partition} has no room for the write")]
    NoRoom {
        topic: String,
        partition: i32,
        source: std::io::Error,
    },
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
    /// The batch attributes (codec, control bit), for recompression.
    attributes: i16,
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
        attributes: header.attributes,
        producer_id: header.producer_id,
        epoch: header.producer_epoch,
        first_seq: header.base_sequence,
        last_seq: last_sequence(header.base_sequence, last_offset_delta),
    })
}

/// Scans the batch in `slice` (decompressing it as a stream, at most `max_decompressed` bytes) and returns
/// (offset, timestamp) of its first record at or after `timestamp`.
fn first_record_at_or_after(
    slice: &ReadSlice,
    timestamp: i64,
    max_decompressed: u32,
) -> anyhow::Result<Option<(i64, i64)>> {
    let batch = slice.read_bytes()?;
    let header = parse_header(&batch, 0)?;
    let mut hit = None;
    recompress::scan_records(&batch, &header, max_decompressed, |record| {
        // Under LogAppendTime every record carries the batch's append time.
        let record_timestamp = if header.is_log_append_time() {
            header.max_timestamp
        } else {
            record.timestamp
        };
        if record_timestamp < timestamp {
            return ControlFlow::Continue(());
        }
        hit = Some((record.offset, record_timestamp));
        ControlFlow::Break(())
    })?;
    Ok(hit)
}

/// A compacted topic keeps the latest record per key, so a record without a key could never be kept; Kafka
/// refuses it on produce and so do we. Needs the records scanned (and decompressed, as a stream), which only
/// compacted topics pay for.
fn reject_keyless_records(records: &[u8], max_decompressed: u32) -> Result<(), PartitionError> {
    let Ok(header) = parse_header(records, 0) else {
        return Ok(());
    };
    if header.attributes & crate::log::CONTROL_BIT != 0 {
        return Ok(());
    }
    let mut keyless = false;
    let scanned = recompress::scan_records(records, &header, max_decompressed, |record| {
        keyless = record.key_len < 0;
        if keyless {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    // Records that cannot be read are the log's to reject with a precise reason, unless they are too large
    // to read at all.
    if let Err(e @ RecompressError::DecompressedTooLarge { .. }) = scanned {
        return Err(PartitionError::Recompress(e));
    }
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
    /// The high watermark in `replication-offset-checkpoint`, if the partition has an entry.
    pub high_watermark: Option<i64>,
}

#[derive(Debug)]
struct PartitionLog {
    log: Log,
    config: LogConfig,
    producers: ProducerStates,
    /// Epoch -> start offset, truncated together with the log.
    epochs: LeaderEpochCache,
    /// The leader epoch stamped on produced batches while this replica leads; set under this lock together
    /// with the epoch cache entry, so no batch of the new epoch lands before its epoch's start offset.
    append_epoch: Option<i32>,
}

/// Rebuilds idempotent-producer state from the batches of `log` (on open and after a truncation), so a
/// retry of a batch already in the log is recognised whoever wrote it.
fn producer_states(log: &Log) -> Result<ProducerStates, LogError> {
    let mut producers = ProducerStates::default();
    for header in log.batch_headers(log.log_start_offset()) {
        record_producer_batch(&mut producers, &header?);
    }
    Ok(producers)
}

fn record_producer_batch(producers: &mut ProducerStates, header: &BatchHeader) {
    if header.producer_id < 0 {
        return;
    }
    producers.record(
        header.producer_id,
        header.producer_epoch,
        BatchSequence {
            first_seq: header.base_sequence,
            last_seq: last_sequence(
                header.base_sequence,
                (header.last_offset - header.base_offset).clamp(0, i64::from(i32::MAX)) as i32,
            ),
            first_offset: header.base_offset,
            last_offset: header.last_offset,
            max_timestamp: header.max_timestamp,
        },
    );
}

/// Log figures read under one lock, for metrics.
#[derive(Debug, Clone, Copy)]
pub struct LogStats {
    pub size_bytes: u64,
    pub segments: u64,
    pub log_end_offset: i64,
}

/// Why an acks=all wait for the high watermark ended without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HighWatermarkWait {
    #[error("this replica stopped leading")]
    NotLeader,
    #[error("the ISR fell below min.insync.replicas")]
    NotEnoughReplicas,
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
    /// True when the batch was stored with the topic's `compression.type` instead of its own codec.
    pub recompressed: bool,
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
    partition_epoch: i32,
    /// Follower progress and the ISR, while this replica leads.
    replicas: Option<ReplicaSet>,
    /// Where this leader's epoch starts in the log (its log end offset when it became leader).
    epoch_start: i64,
}

/// The leader epoch and partition epoch a leader proposes an ISR change under, and the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrProposal {
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub change: IsrChange,
}

/// A lost race with the metadata: the partition's leadership is no longer the one a caller started with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EpochCheck {
    #[error("leader epoch {requested} is older than the current {current}")]
    Fenced { requested: i32, current: i32 },
    #[error("leader epoch {requested} is newer than the current {current}")]
    Unknown { requested: i32, current: i32 },
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
    /// The high watermark; receivers (acks=all produce waits) wake when it moves.
    high_watermark: watch::Sender<i64>,
    /// Set at open, where the high watermark starts at the recovered log end: right for a partition with
    /// one replica (everything on disk was fsynced here), wrong for a replicated one, whose tail may never
    /// have reached the rest of the ISR. The first role that names several replicas lowers it to the log
    /// start; followers' progress (as leader) or the leader's fetch answers (as follower) raise it again.
    /// Without this, a broker restarted as leader treated its unreplicated tail as committed and
    /// acknowledged idempotent retries of it at once; a later leader without the tail lost them.
    /// It is lowered to [`Partition::checkpointed_high_watermark`] rather than the log start when there
    /// is one, so a restarted replica serves what was committed before without waiting for fetches.
    high_watermark_unverified: std::sync::atomic::AtomicBool,
    /// The high watermark `replication-offset-checkpoint` had at open, within [log start, log end]. It
    /// was committed when it was written (a high watermark never covers what the ISR does not hold), and
    /// min(it, log end) is what this replica still has of it.
    checkpointed_high_watermark: Option<i64>,
    leadership: Mutex<Leadership>,
    /// `min.insync.replicas` in effect (topic override, else the broker's).
    min_insync: std::sync::atomic::AtomicUsize,
    log_start_offset: AtomicI64,
    /// Produced and fetched bytes and records, read by the metrics scrape.
    pub counters: PartitionCounters,
    /// The data directory's health: fsync latency, failed writes, out of space.
    storage: Arc<StorageHealth>,
}

impl Partition {
    pub fn open(
        topic: &str,
        topic_id: Uuid,
        index: i32,
        dir: &Path,
        config: LogConfig,
        start: LogStartState,
        storage: Arc<StorageHealth>,
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
        let producers = producer_states(&log)?;
        let epoch_error = |source| PartitionError::LeaderEpoch {
            topic: topic.to_owned(),
            partition: index,
            source: Box::new(source),
        };
        let mut epochs = match LeaderEpochCache::load(dir).map_err(epoch_error)? {
            Some(epochs) => epochs,
            None => {
                let mut stamped = Vec::new();
                for header in log.batch_headers(log.log_start_offset()) {
                    let header = header?;
                    stamped.push((header.partition_leader_epoch, header.base_offset));
                }
                LeaderEpochCache::rebuild(dir, stamped).map_err(epoch_error)?
            }
        };
        // Recovery may have cut a torn tail, and the start may have moved: the cache follows the log.
        epochs
            .truncate_from_end(log.log_end_offset())
            .map_err(epoch_error)?;
        epochs
            .truncate_from_start(log.log_start_offset())
            .map_err(epoch_error)?;
        let checkpointed_high_watermark = start
            .high_watermark
            .map(|hw| hw.min(log.log_end_offset()).max(log.log_start_offset()));
        let end = log.log_end_offset();
        let start = log.log_start_offset();
        let recovered = log.recovery_point();
        Ok((
            Self {
                topic: topic.to_owned(),
                topic_id,
                index,
                min_insync: std::sync::atomic::AtomicUsize::new(config.min_insync_replicas),
                state: Mutex::new(PartitionLog {
                    log,
                    config,
                    producers,
                    epochs,
                    append_epoch: None,
                }),
                data_arrived: Notify::new(),
                flush_lock: tokio::sync::Mutex::new(()),
                flushed_offset: AtomicI64::new(recovered),
                high_watermark: watch::Sender::new(end),
                high_watermark_unverified: std::sync::atomic::AtomicBool::new(true),
                checkpointed_high_watermark,
                // Nothing is served until the replica manager gives the partition a role.
                leadership: Mutex::new(Leadership {
                    role: Role::Follower { leader: NO_LEADER },
                    leader_epoch: -1,
                    partition_epoch: -1,
                    replicas: None,
                    epoch_start: end,
                }),
                log_start_offset: AtomicI64::new(start),
                counters: PartitionCounters::default(),
                storage,
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

    fn epoch_error(&self, source: LeaderEpochError) -> PartitionError {
        PartitionError::LeaderEpoch {
            topic: self.topic.clone(),
            partition: self.index,
            source: Box::new(source),
        }
    }

    /// Reports a failed write to the storage health (which logs the first failure of this partition and
    /// counts every one) and hands the error back.
    fn write_failed(&self, error: PartitionError) -> PartitionError {
        self.storage.write_failed(&self.topic, self.index, &error);
        error
    }

    /// Refuses a write of `bytes` that would take the storage reserve (see [`crate::storage_health`]).
    fn check_room(&self, bytes: usize) -> Result<(), PartitionError> {
        self.storage.check_room(bytes).map_err(|source| {
            self.write_failed(PartitionError::NoRoom {
                topic: self.topic.clone(),
                partition: self.index,
                source,
            })
        })
    }

    /// Validates and appends one producer batch, rewriting its offsets in place and stamping this leader's
    /// epoch on it (partitionLeaderEpoch lies outside the CRC-covered bytes, so the CRC stays valid). When
    /// the topic's `compression.type` names another codec than the batch's, a rebuilt batch in that codec
    /// is appended instead and `records` is left as it was ([`recompress`]).
    pub fn append(&self, records: &mut [u8], now_ms: i64) -> Result<AppendOutcome, PartitionError> {
        self.append_checked(records, now_ms, None)
    }

    /// [`Partition::append`] only while this replica leads in `leader_epoch`, checked under the log lock so
    /// no batch lands in a later epoch than the writer saw. The group coordinator writes this way: its
    /// in-memory state belongs to one leadership, and a write of an older one must not slip into a newer.
    pub fn append_in_epoch(
        &self,
        records: &mut [u8],
        now_ms: i64,
        leader_epoch: i32,
    ) -> Result<AppendOutcome, PartitionError> {
        self.append_checked(records, now_ms, Some(leader_epoch))
    }

    fn append_checked(
        &self,
        records: &mut [u8],
        now_ms: i64,
        leader_epoch: Option<i32>,
    ) -> Result<AppendOutcome, PartitionError> {
        let fields = single_batch_producer_fields(records)?;
        let mut state = self.lock();
        // Rebuilding is the slow part of an append: done without the lock, and checked again after.
        let mut rebuilt = None;
        if let Some(plan) = Recompression::plan(&state.config, fields.attributes) {
            drop(state);
            rebuilt = Some(self.rebuild(records, &plan)?);
            state = self.lock();
        }
        let recompressed = rebuilt.is_some();
        let records: &mut [u8] = match rebuilt.as_mut() {
            Some(rebuilt) => rebuilt.as_mut_slice(),
            None => records,
        };
        if let Some(expected) = leader_epoch {
            if state.append_epoch != Some(expected) {
                return Err(PartitionError::EpochChanged {
                    topic: self.topic.clone(),
                    partition: self.index,
                    expected,
                });
            }
        }
        if state.config.compact {
            reject_keyless_records(records, state.config.max_decompressed_bytes)?;
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
                    recompressed: false,
                });
            }
        }
        if let Some(epoch) = state.append_epoch {
            set_partition_leader_epoch(records, epoch);
        }
        self.check_room(records.len())?;
        let info = match state.log.append(records, now_ms) {
            Ok(info) => info,
            Err(e) => return Err(self.write_failed(e.into())),
        };
        self.storage.write_succeeded(&self.topic, self.index);
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
        drop(state);
        self.advance_high_watermark();
        self.data_arrived.notify_waiters();
        Ok(AppendOutcome {
            base_offset: info.first_offset,
            last_offset: info.last_offset,
            log_append_time: info.log_append_time.unwrap_or(-1),
            log_start_offset: info.log_start_offset,
            duplicate: false,
            recompressed,
        })
    }

    /// The batch in `records` rebuilt as `plan` says, after the checks the log makes of any batch (framing,
    /// CRC, `max.message.bytes`), which Kafka also makes before it recompresses.
    fn rebuild(&self, records: &[u8], plan: &Recompression) -> Result<Vec<u8>, PartitionError> {
        let headers = validate_batches(records, plan.max_batch_bytes())
            .map_err(|e| PartitionError::Log(LogError::from_batch(e)))?;
        let [header] = headers.as_slice() else {
            return Err(PartitionError::BatchCount(headers.len()));
        };
        plan.rebuild(records, header).map_err(|e| {
            if let RecompressError::Compress { .. } = e {
                // Not the producer's fault: compressing into memory does not fail on any input.
                tracing::warn!(topic = %self.topic, partition = self.index, error = %crate::error_chain(&e), "recompressing a produced batch failed");
            }
            PartitionError::Recompress(e)
        })
    }

    /// Appends batches fetched from the leader as they are (offsets, timestamps, epochs, CRCs), updates the
    /// epoch cache with any newer epoch they carry and the producer state with their sequences, then sets
    /// the follower high watermark to min(`leader_high_watermark`, own log end offset). The caller fsyncs
    /// ([`Partition::flush_until`]) before its next fetch, which is what makes its fetch offset durable.
    pub fn append_as_follower(
        &self,
        records: &[u8],
        leader_high_watermark: i64,
        now_ms: i64,
    ) -> Result<AppendInfo, PartitionError> {
        self.check_room(records.len())?;
        let mut state = self.lock();
        let (headers, info) = match state.log.append_replicated(records, now_ms) {
            Ok(appended) => appended,
            Err(e) => return Err(self.write_failed(e.into())),
        };
        self.storage.write_succeeded(&self.topic, self.index);
        for header in &headers {
            if state.epochs.latest_epoch() < Some(header.partition_leader_epoch) {
                state
                    .epochs
                    .assign(header.partition_leader_epoch, header.base_offset)
                    .map_err(|e| self.epoch_error(e))?;
            }
            record_producer_batch(&mut state.producers, header);
        }
        let log_end = state.log.log_end_offset();
        drop(state);
        self.counters.produced(
            records.len() as u64,
            headers
                .iter()
                .map(|h| u64::try_from(h.record_count).unwrap_or(0))
                .sum(),
        );
        self.set_follower_high_watermark(leader_high_watermark.min(log_end));
        self.data_arrived.notify_waiters();
        Ok(info)
    }

    /// A follower's high watermark is the leader's, capped by what it holds; it may move down after a
    /// truncation, never above the log end.
    pub fn set_follower_high_watermark(&self, high_watermark: i64) {
        if self.is_leader() {
            return;
        }
        let capped = high_watermark.min(self.log_end_offset()).max(0);
        if self.high_watermark.send_if_modified(|hw| {
            let changed = *hw != capped;
            *hw = capped;
            changed
        }) {
            self.data_arrived.notify_waiters();
        }
    }

    /// Removes every offset >= `offset` from the log and the epoch cache (at batch granularity, as
    /// [`Log::truncate_to`]), and rebuilds producer state from what is left. Used by a follower whose log
    /// diverged from its leader's.
    pub fn truncate_to(&self, offset: i64) -> Result<(), PartitionError> {
        let mut state = self.lock();
        if offset >= state.log.log_end_offset() {
            // Nothing to cut from the log, but the epoch cache may still end with an epoch that has no
            // batch: this replica became leader, recorded the epoch's start at its log end and died before
            // appending. Kept, it is this follower's last_fetched_epoch forever, the leader answers with the
            // same diverging epoch each time and the replica never catches up. Kafka's
            // UnifiedLog.truncateTo truncates the epoch cache in this case too.
            let log_end = state.log.log_end_offset();
            return state
                .epochs
                .truncate_from_end(log_end)
                .map_err(|e| self.epoch_error(e));
        }
        state.log.truncate_to(offset)?;
        let log_end = state.log.log_end_offset();
        state
            .epochs
            .truncate_from_end(log_end)
            .map_err(|e| self.epoch_error(e))?;
        // Rebuilding from the whole log is simple and correct; producer snapshots would make it cheap.
        state.producers = producer_states(&state.log)?;
        self.log_start_offset
            .store(state.log.log_start_offset(), Ordering::Release);
        drop(state);
        self.flushed_offset.fetch_min(log_end, Ordering::AcqRel);
        self.high_watermark.send_if_modified(|hw| {
            let changed = *hw > log_end;
            *hw = (*hw).min(log_end);
            changed
        });
        tracing::info!(topic = %self.topic, partition = self.index, offset, log_end_offset = log_end, "truncated replica");
        Ok(())
    }

    /// OffsetForLeaderEpoch: the largest epoch <= `epoch` this log knows and its end offset (where the next
    /// epoch starts, or the log end offset), or (-1, -1).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        let state = self.lock();
        state
            .epochs
            .end_offset_for(epoch, state.log.log_end_offset())
    }

    /// The newest epoch in this replica's log, what a follower sends as `last_fetched_epoch`.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.lock().epochs.latest_epoch()
    }

    /// The epoch cache's entries, for tests and diagnostics.
    pub fn epoch_entries(&self) -> Vec<crate::log::EpochEntry> {
        self.lock().epochs.entries().to_vec()
    }

    fn leadership(&self) -> MutexGuard<'_, Leadership> {
        self.leadership
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes this replica the leader as `registration` says. A new leader epoch starts in the epoch cache at
    /// the log end offset and every follower's progress starts unknown; a registration of the same epoch
    /// (an ISR change) keeps the progress.
    pub fn become_leader(
        &self,
        local: NodeId,
        registration: &PartitionRegistration,
        now_ms: i64,
    ) -> Result<(), PartitionError> {
        if registration.replicas.len() > 1 {
            self.distrust_recovered_high_watermark();
        }
        let same_leadership = {
            let leadership = self.leadership();
            leadership.replicas.is_some() && leadership.leader_epoch == registration.leader_epoch
        };
        let epoch_start = if same_leadership {
            None
        } else {
            let mut state = self.lock();
            let start = state.log.log_end_offset();
            state
                .epochs
                .assign(registration.leader_epoch, start)
                .map_err(|e| self.epoch_error(e))?;
            state.append_epoch = Some(registration.leader_epoch);
            Some(start)
        };
        {
            let mut leadership = self.leadership();
            match (&mut leadership.replicas, epoch_start) {
                (Some(replicas), None) => {
                    replicas.update(registration.replicas.clone(), registration.isr.clone())
                }
                (replicas, start) => {
                    *replicas = Some(ReplicaSet::new(
                        local,
                        registration.replicas.clone(),
                        registration.isr.clone(),
                        now_ms,
                    ));
                    if let Some(start) = start {
                        leadership.epoch_start = start;
                    }
                }
            }
            leadership.role = Role::Leader {
                local,
                isr: registration.isr.clone(),
            };
            leadership.leader_epoch = registration.leader_epoch;
            leadership.partition_epoch = registration.partition_epoch;
        }
        self.advance_high_watermark();
        if let Some(start) = epoch_start {
            tracing::info!(topic = %self.topic, partition = self.index, leader_epoch = registration.leader_epoch,
                start_offset = start, high_watermark = self.high_watermark(), isr = ?registration.isr,
                "leading the partition");
        }
        // A smaller ISR may let the high watermark move, and waiters must re-check min.insync either way.
        self.data_arrived.notify_waiters();
        self.high_watermark.send_modify(|_| {});
        Ok(())
    }

    /// Makes this replica a follower of `leader` for `leader_epoch`: produced batches are refused from now
    /// on and follower progress is forgotten. The log is left as it is; the fetcher truncates it by epoch.
    pub fn become_follower(&self, leader: NodeId, leader_epoch: i32, partition_epoch: i32) {
        self.distrust_recovered_high_watermark();
        self.lock().append_epoch = None;
        {
            let mut leadership = self.leadership();
            leadership.role = Role::Follower { leader };
            leadership.leader_epoch = leader_epoch;
            leadership.partition_epoch = partition_epoch;
            leadership.replicas = None;
        }
        // Waiting acks=all producers must learn they lost leadership.
        self.high_watermark.send_modify(|_| {});
        self.data_arrived.notify_waiters();
    }

    /// See `high_watermark_unverified`. Runs before the partition is first served with a role, so no
    /// reader has seen the value being lowered.
    fn distrust_recovered_high_watermark(&self) {
        if self
            .high_watermark_unverified
            .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            let trusted = self
                .checkpointed_high_watermark
                .unwrap_or_else(|| self.log_start_offset());
            self.high_watermark.send_if_modified(|hw| {
                let lowered = *hw > trusted;
                *hw = (*hw).min(trusted);
                lowered
            });
        }
    }

    /// The high watermark to write to `replication-offset-checkpoint`, or None for no entry. Before its
    /// first role the high watermark is still the recovered log end, which nobody showed to be
    /// committed: the value read at open is carried over instead.
    pub fn high_watermark_to_checkpoint(&self) -> Option<i64> {
        let unverified = self
            .high_watermark_unverified
            .load(std::sync::atomic::Ordering::Acquire);
        if unverified && self.leader_epoch() < 0 {
            return self.checkpointed_high_watermark;
        }
        Some(self.high_watermark())
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

    /// While this replica leads: its leader epoch and where that epoch starts in the log (its log end
    /// offset when it took over). Everything below the start was written by earlier leaders.
    pub fn leader_epoch_start(&self) -> Option<(i32, i64)> {
        let leadership = self.leadership();
        matches!(leadership.role, Role::Leader { .. })
            .then_some((leadership.leader_epoch, leadership.epoch_start))
    }

    pub fn partition_epoch(&self) -> i32 {
        self.leadership().partition_epoch
    }

    /// Checks a request's `current_leader_epoch` against this replica's (-1 skips the check, as in Kafka).
    pub fn check_leader_epoch(&self, requested: i32) -> Result<(), EpochCheck> {
        let current = self.leader_epoch();
        match requested {
            -1 => Ok(()),
            r if r < current => Err(EpochCheck::Fenced { requested, current }),
            r if r > current => Err(EpochCheck::Unknown { requested, current }),
            _ => Ok(()),
        }
    }

    /// The committed ISR size while leading (0 otherwise).
    pub fn isr_len(&self) -> usize {
        self.leadership()
            .replicas
            .as_ref()
            .map_or(0, |r| r.isr.len())
    }

    /// ISR members this leader still counts as in sync now (see [`ReplicaSet::in_sync_now`]); 0 when it
    /// does not lead.
    pub fn isr_in_sync_now(&self, now_ms: i64, lag_max_ms: i64) -> usize {
        self.leadership()
            .replicas
            .as_ref()
            .map_or(0, |r| r.in_sync_now(now_ms, lag_max_ms))
    }

    /// `min.insync.replicas` as it applies to this partition: the configured value, but never more than the
    /// partition's replicas while it leads (Kafka's `Partition.effectiveMinIsr`). A topic with fewer replicas
    /// than the cluster's setting (an RF 1 topic after the cluster grew and the setting rose to 2) stays
    /// writable with acks=all, and its high watermark moves.
    pub fn min_insync_replicas(&self) -> usize {
        let configured = self.min_insync.load(Ordering::Acquire);
        self.leadership()
            .replicas
            .as_ref()
            .map_or(configured, |r| configured.min(r.replicas.len().max(1)))
    }

    /// The offset below which this leader's own log is durable: what it fsynced under the default flush
    /// policy; with a relaxed flush policy (flush.messages > 1) the operator chose the page cache, so its
    /// log end offset.
    fn leader_durable_offset(&self, log_end: i64, policy: FlushPolicy) -> i64 {
        match policy {
            FlushPolicy::EveryBatch => self.flushed_offset.load(Ordering::Acquire).min(log_end),
            _ => log_end,
        }
    }

    /// Moves the high watermark up to the offset every member of the maximal ISR holds durably (see
    /// [`ReplicaSet::committed_offset`]). A partition without other replicas keeps the single-node rule:
    /// the high watermark is the log end offset (acks wait for the fsync themselves). Never moves it back,
    /// and a follower never moves it.
    fn advance_high_watermark(&self) {
        let (log_end, policy) = {
            let state = self.lock();
            (state.log.log_end_offset(), state.config.flush)
        };
        let durable = self.leader_durable_offset(log_end, policy);
        let min_insync = self.min_insync_replicas();
        let committed = {
            let leadership = self.leadership();
            let Some(replicas) = &leadership.replicas else {
                return;
            };
            if replicas.is_replicated() {
                replicas.committed_offset(durable, min_insync)
            } else if replicas.isr.len() >= min_insync {
                Some(log_end)
            } else {
                None
            }
        };
        let Some(committed) = committed else {
            return;
        };
        if self.high_watermark.send_if_modified(|hw| {
            let moved = committed > *hw;
            if moved {
                *hw = committed;
            }
            moved
        }) {
            // Consumers read up to the high watermark: their long-polls wake when it moves.
            self.data_arrived.notify_waiters();
        }
    }

    /// Records a follower's fetch at `fetch_offset` (durable on that follower) and advances the high
    /// watermark. Returns false when this replica does not lead.
    pub fn record_follower_fetch(&self, replica: NodeId, fetch_offset: i64, now_ms: i64) -> bool {
        let log_end = self.log_end_offset();
        {
            let mut leadership = self.leadership();
            let Some(replicas) = &mut leadership.replicas else {
                return false;
            };
            replicas.record_fetch(replica, fetch_offset, log_end, now_ms);
        }
        self.advance_high_watermark();
        true
    }

    /// The ISR change this leader should propose now (see [`ReplicaSet::isr_change`]), marked pending so
    /// the high watermark uses the maximal ISR until the metadata answers.
    pub fn propose_isr_change(
        &self,
        now_ms: i64,
        lag_max_ms: i64,
        eligible: impl Fn(NodeId) -> bool,
    ) -> Option<IsrProposal> {
        self.propose(|replicas, high_watermark, epoch_start| {
            replicas.isr_change(now_ms, lag_max_ms, high_watermark, epoch_start, eligible)
        })
    }

    /// After a fetch of out-of-sync `replica`: the change that adds it to the ISR if it may join now (see
    /// [`ReplicaSet::expansion`]), marked pending like [`Partition::propose_isr_change`].
    pub fn propose_isr_expansion(
        &self,
        replica: NodeId,
        now_ms: i64,
        eligible: impl Fn(NodeId) -> bool,
    ) -> Option<IsrProposal> {
        self.propose(|replicas, high_watermark, epoch_start| {
            replicas.expansion(replica, high_watermark, epoch_start, now_ms, eligible)
        })
    }

    /// The change `decide(replicas, high watermark, epoch start)` asks for, in this leadership's epochs,
    /// marked pending.
    fn propose(
        &self,
        decide: impl FnOnce(&ReplicaSet, i64, i64) -> Option<IsrChange>,
    ) -> Option<IsrProposal> {
        let high_watermark = self.high_watermark();
        let mut leadership = self.leadership();
        let epoch_start = leadership.epoch_start;
        let (leader_epoch, partition_epoch) = (leadership.leader_epoch, leadership.partition_epoch);
        let replicas = leadership.replicas.as_mut()?;
        let change = decide(replicas, high_watermark, epoch_start)?;
        replicas.pending_isr = Some(change.new_isr.clone());
        Some(IsrProposal {
            leader_epoch,
            partition_epoch,
            change,
        })
    }

    /// Forgets a pending ISR proposal the controller refused at `now_ms`, so a later check can propose
    /// again (see [`ReplicaSet::refused`]).
    pub fn clear_pending_isr(&self, now_ms: i64) {
        if let Some(replicas) = &mut self.leadership().replicas {
            replicas.refused(now_ms);
        }
        self.advance_high_watermark();
    }

    /// Waits until the high watermark reaches `offset`. Errors (returns the reason) when this replica
    /// stops leading meanwhile or the ISR falls below min.insync.replicas after the append.
    pub async fn wait_for_high_watermark(&self, offset: i64) -> Result<(), HighWatermarkWait> {
        self.wait_high_watermark(offset, true).await
    }

    /// Waits until the high watermark reaches `offset`, however long the ISR stays below
    /// min.insync.replicas (the high watermark does not move then); errors only when this replica stops
    /// leading. For a new leader waiting for its predecessors' records to be committed.
    pub async fn wait_until_committed(&self, offset: i64) -> Result<(), HighWatermarkWait> {
        self.wait_high_watermark(offset, false).await
    }

    async fn wait_high_watermark(
        &self,
        offset: i64,
        fail_below_min_insync: bool,
    ) -> Result<(), HighWatermarkWait> {
        let mut hw = self.high_watermark.subscribe();
        loop {
            if *hw.borrow_and_update() >= offset {
                return Ok(());
            }
            if !self.is_leader() {
                return Err(HighWatermarkWait::NotLeader);
            }
            if fail_below_min_insync && self.isr_len() < self.min_insync_replicas() {
                return Err(HighWatermarkWait::NotEnoughReplicas);
            }
            if hw.changed().await.is_err() {
                return Err(HighWatermarkWait::NotLeader);
            }
        }
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
        self.storage.observe_fsync(started.elapsed().as_secs_f64());
        synced.map_err(|source| {
            self.write_failed(PartitionError::Flush {
                topic: self.topic.clone(),
                partition: self.index,
                source,
            })
        })?;
        self.lock().log.mark_flushed(end);
        self.flushed_offset.fetch_max(end, Ordering::AcqRel);
        // The leader's own durable offset is part of the high watermark of a replicated partition.
        self.advance_high_watermark();
        Ok(())
    }

    /// True when this replicated leader has not fsynced up to `offset` (capped at its log end) although
    /// its flush policy makes the fsync part of the high watermark.
    pub fn needs_flush_for(&self, offset: i64) -> bool {
        let (log_end, policy) = {
            let state = self.lock();
            (state.log.log_end_offset(), state.config.flush)
        };
        policy == FlushPolicy::EveryBatch
            && self.flushed_offset.load(Ordering::Acquire) < offset.min(log_end)
            && self
                .leadership()
                .replicas
                .as_ref()
                .is_some_and(ReplicaSet::is_replicated)
    }

    /// Offsets appended but not yet fsynced.
    pub fn unflushed(&self) -> i64 {
        self.log_end_offset() - self.flushed_offset.load(Ordering::Acquire)
    }

    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadSlice, PartitionError> {
        Ok(self.lock().log.read(offset, max_bytes)?)
    }

    /// [`Partition::read`] that returns no batch holding an offset at or above `upper` (the high watermark
    /// for consumers), so no record above it is ever sent.
    pub fn read_below(
        &self,
        offset: i64,
        max_bytes: usize,
        upper: i64,
    ) -> Result<ReadSlice, PartitionError> {
        Ok(self.lock().log.read_below(offset, max_bytes, upper)?)
    }

    pub fn high_watermark(&self) -> i64 {
        *self.high_watermark.borrow()
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
    /// answers. The log's time index finds the batch; the batch is then scanned (decompressed as a stream if needed)
    /// to find the record. Reads from disk, so call it from a request task, not under other locks.
    pub fn offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<(i64, i64)>, PartitionError> {
        let (found, slice, max_decompressed) = {
            let state = self.lock();
            let Some(found) = state.log.offset_for_timestamp(timestamp)? else {
                return Ok(None);
            };
            (
                found,
                state.log.read(found.0, 1)?,
                state.config.max_decompressed_bytes,
            )
        };
        match first_record_at_or_after(&slice, timestamp, max_decompressed) {
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
        self.min_insync
            .store(config.min_insync_replicas, Ordering::Release);
        state.config = config;
        drop(state);
        // A lower min.insync.replicas may let the high watermark move; waiters re-check either way.
        self.advance_high_watermark();
        self.high_watermark.send_modify(|_| {});
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

    /// The topic config the partition applies now (a copy: it may change right after).
    pub fn log_config(&self) -> LogConfig {
        self.lock().config.clone()
    }

    pub fn apply_retention(&self, now_ms: i64) -> Result<usize, PartitionError> {
        let mut state = self.lock();
        let deleted = state.log.apply_retention(now_ms)?;
        let start = state.log.log_start_offset();
        state
            .epochs
            .truncate_from_start(start)
            .map_err(|e| self.epoch_error(e))?;
        self.log_start_offset.store(start, Ordering::Release);
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
        state.log.flush().map_err(|e| self.write_failed(e.into()))?;
        self.storage.observe_fsync(started.elapsed().as_secs_f64());
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
mod recompress_tests;

#[cfg(test)]
mod replication_tests;

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
