//! The log manager (Kafka's `LogManager`): the data directory and every partition log in it. Claims and
//! deletes partition directories, reads and writes the recovery-point, log-start and high watermark
//! (`replication-offset-checkpoint`, Kafka's ReplicaManager's file) checkpoints and the clean shutdown
//! marker, and runs the background work on logs (interval flushes, retention, checkpoints, the log
//! cleaner) in [`LogManager::run`].
//!
//! It opens and deletes logs only when told to (the replica manager follows the metadata); it never decides
//! which partitions this broker hosts or who leads them. Must never hold the map lock across file I/O.

use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use tokio::sync::watch;
use uuid::Uuid;

use crate::{
    clock::Clock,
    durable::{create_marker, write_atomically, DurableWriteError},
    error_chain,
    log::{
        read_checkpoint, write_checkpoint, CheckpointError, FlushPolicy, LogConfig, TopicPartition,
        CLEAN_SHUTDOWN_MARKER, LOG_START_CHECKPOINT, RECOVERY_POINT_CHECKPOINT,
        REPLICATION_OFFSET_CHECKPOINT,
    },
    partition::{LogStartState, Partition, PartitionError},
    storage_health::StorageHealth,
};

const PARTITION_METADATA: &str = "partition.metadata";
/// Suffix of a directory that is being deleted: renamed first, so a crash can never serve it again.
const DELETE_SUFFIX: &str = "-delete";
/// Suffix of a directory no partition in the metadata claims; kept for an operator to look at.
const STRAY_SUFFIX: &str = "-stray";

#[derive(Debug, thiserror::Error)]
pub enum LogManagerError {
    #[error("creating data directory {path}")]
    CreateDataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("preparing partition directory {path}")]
    ClaimDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}")]
    PartitionMetadata {
        path: PathBuf,
        source: DurableWriteError,
    },
    #[error("opening partition {topic}-{partition}")]
    OpenPartition {
        topic: String,
        partition: i32,
        source: PartitionError,
    },
    #[error("writing the clean shutdown marker")]
    Marker(#[source] DurableWriteError),
    #[error("checkpoint")]
    Checkpoint(#[from] CheckpointError),
}

/// The log manager's settings (Kafka's names in the docs of [`crate::config::BrokerConfig`]).
#[derive(Debug, Clone)]
pub struct LogManagerConfig {
    pub data_dir: PathBuf,
    /// `log.retention.check.interval.ms`
    pub retention_check_interval: Duration,
    /// `log.cleaner.backoff.ms`, or `None` when `log.cleaner.enable=false`.
    pub cleaner_backoff: Option<Duration>,
    /// `replica.high.watermark.checkpoint.interval.ms`
    pub high_watermark_checkpoint_interval: Duration,
}

/// How often the recovery point and log start checkpoints are written while running.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);

/// What the data directory said about its logs when the broker started; used once per partition.
#[derive(Debug, Default)]
struct BootState {
    recovery_points: HashMap<TopicPartition, i64>,
    log_starts: HashMap<TopicPartition, i64>,
    high_watermarks: HashMap<TopicPartition, i64>,
}

#[derive(Debug)]
pub struct LogManager {
    config: LogManagerConfig,
    clock: Arc<dyn Clock>,
    logs: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    boot: Mutex<BootState>,
    clean_shutdown: bool,
    storage: Arc<StorageHealth>,
}

impl LogManager {
    /// Opens the data directory (creating it), finishes deletions a crash interrupted and reads the
    /// checkpoints. No log is opened yet.
    pub fn open(
        config: LogManagerConfig,
        clock: Arc<dyn Clock>,
        storage: Arc<StorageHealth>,
    ) -> Result<Self, LogManagerError> {
        let dir = &config.data_dir;
        fs::create_dir_all(dir).map_err(|source| LogManagerError::CreateDataDir {
            path: dir.clone(),
            source,
        })?;
        remove_deleted_dirs(dir);
        let read = |name: &str| -> Result<HashMap<TopicPartition, i64>, LogManagerError> {
            Ok(read_checkpoint(&dir.join(name))?.into_iter().collect())
        };
        let boot = BootState {
            recovery_points: read(RECOVERY_POINT_CHECKPOINT)?,
            log_starts: read(LOG_START_CHECKPOINT)?,
            high_watermarks: read(REPLICATION_OFFSET_CHECKPOINT)?,
        };
        let clean_shutdown = dir.join(CLEAN_SHUTDOWN_MARKER).exists();
        Ok(Self {
            config,
            clock,
            logs: RwLock::new(HashMap::new()),
            boot: Mutex::new(boot),
            clean_shutdown,
            storage,
        })
    }

    pub fn storage(&self) -> &Arc<StorageHealth> {
        &self.storage
    }

    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    fn partition_dir(&self, topic: &str, index: i32) -> PathBuf {
        self.config.data_dir.join(format!("{topic}-{index}"))
    }

    fn read_map(&self) -> std::sync::RwLockReadGuard<'_, HashMap<TopicPartition, Arc<Partition>>> {
        self.logs
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_map(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<TopicPartition, Arc<Partition>>> {
        self.logs
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        self.read_map()
            .get(&TopicPartition::new(topic, index))
            .cloned()
    }

    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.read_map().values().cloned().collect()
    }

    pub fn count(&self) -> usize {
        self.read_map().len()
    }

    /// Opens (recovering it if the last stop was not clean) or creates the log of a partition of topic
    /// `topic_id`. A directory left by an older topic of the same name is moved aside first.
    pub fn open_partition(
        &self,
        topic: &str,
        topic_id: Uuid,
        index: i32,
        config: LogConfig,
    ) -> Result<Arc<Partition>, LogManagerError> {
        let dir = self.partition_dir(topic, index);
        claim_partition_dir(&dir, topic_id)?;
        let key = TopicPartition::new(topic, index);
        let start = {
            let mut boot = self.boot.lock().unwrap_or_else(|p| p.into_inner());
            LogStartState {
                recovery_point: boot.recovery_points.remove(&key).unwrap_or(0),
                log_start_offset: boot.log_starts.remove(&key).unwrap_or(0),
                clean_shutdown: self.clean_shutdown,
                high_watermark: boot.high_watermarks.remove(&key),
            }
        };
        let (partition, report) = Partition::open(
            topic,
            topic_id,
            index,
            &dir,
            config,
            start,
            Arc::clone(&self.storage),
        )
        .map_err(|source| LogManagerError::OpenPartition {
            topic: topic.to_owned(),
            partition: index,
            source,
        })?;
        tracing::debug!(topic, partition = index, ?report, "partition opened");
        let partition = Arc::new(partition);
        self.write_map().insert(key, Arc::clone(&partition));
        Ok(partition)
    }

    /// Stops serving a partition and deletes its directory: renamed aside first, so that a crash can never
    /// bring the data back under a re-created topic of the same name, then removed.
    pub fn delete_partition(&self, topic: &str, index: i32) {
        let removed = self.write_map().remove(&TopicPartition::new(topic, index));
        let Some(partition) = removed else {
            return;
        };
        let dir = self.partition_dir(topic, index);
        let doomed = self.config.data_dir.join(format!(
            "{topic}-{index}.{}{DELETE_SUFFIX}",
            partition.topic_id.simple()
        ));
        drop(partition);
        match fs::rename(&dir, &doomed) {
            Ok(()) => {
                if let Err(e) = fs::remove_dir_all(&doomed) {
                    tracing::warn!(dir = %doomed.display(), error = %e, "could not remove deleted partition; retried on next start");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(topic, partition = index, error = %e, "could not move partition aside")
            }
        }
    }

    /// Called once the logs the metadata names are open: from here on a crash must trigger recovery, so the
    /// clean shutdown marker goes. Directories of partitions this broker does not host (a delete that a
    /// crash interrupted) are renamed with a `-stray` suffix so that they are never served again; they are
    /// kept, not deleted, in case the metadata itself was lost, and can be removed by hand.
    pub fn finish_startup(&self) {
        let marker = self.config.data_dir.join(CLEAN_SHUTDOWN_MARKER);
        if self.clean_shutdown {
            if let Err(e) = fs::remove_file(&marker) {
                tracing::warn!(error = %e, "could not remove the clean shutdown marker");
            }
        }
        let Ok(entries) = fs::read_dir(&self.config.data_dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let stray = path.is_dir()
                && path.join(PARTITION_METADATA).exists()
                && TopicPartition::from_dir_name(name)
                    .is_some_and(|tp| !self.read_map().contains_key(&tp));
            if stray {
                let aside = path
                    .with_file_name(format!("{name}.{}{STRAY_SUFFIX}", Uuid::new_v4().simple()));
                tracing::warn!(dir = %path.display(), renamed = %aside.display(), "partition directory of no hosted partition; set aside");
                if let Err(e) = fs::rename(&path, &aside) {
                    tracing::warn!(dir = %path.display(), error = %e, "could not set a stray partition directory aside");
                }
            }
        }
    }

    /// Whether the last stop left every log closed cleanly.
    pub fn clean_shutdown(&self) -> bool {
        self.clean_shutdown
    }

    /// Deletes segments past retention in every partition.
    pub fn enforce_retention(&self) {
        let now = self.clock.wall_ms();
        for partition in self.all() {
            match partition.apply_retention(now) {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(
                    topic = %partition.topic,
                    partition = partition.index,
                    deleted,
                    log_start_offset = partition.log_start_offset(),
                    "retention deleted segments"
                ),
                Err(e) => {
                    tracing::error!(topic = %partition.topic, partition = partition.index, error = %error_chain(&e), "retention failed")
                }
            }
        }
    }

    /// Runs a compaction pass on every compacted partition that is due. Blocking.
    pub fn compact_due(&self) {
        let now = self.clock.wall_ms();
        for partition in self.all().into_iter().filter(|p| p.is_compacted()) {
            match partition.clean(now) {
                Ok(Some(report)) => tracing::info!(
                    topic = %partition.topic,
                    partition = partition.index,
                    outcome = ?report.outcome,
                    first_dirty_offset = report.first_dirty_offset,
                    stats = ?report.stats,
                    "compacted"
                ),
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(topic = %partition.topic, partition = partition.index, error = %error_chain(&e), "compaction failed")
                }
            }
        }
    }

    /// Fsyncs partitions whose `flush.messages`/`flush.ms` interval is due; returns how long until the next
    /// check is useful.
    pub fn flush_due(&self, since_last_ms: &mut HashMap<TopicPartition, i64>) -> Duration {
        let now = self.clock.wall_ms();
        let mut next_check = Duration::from_millis(1000);
        for partition in self.all() {
            let FlushPolicy::Interval { messages, ms } = partition.flush_policy() else {
                continue;
            };
            let key = TopicPartition::new(partition.topic.clone(), partition.index);
            let last = *since_last_ms.entry(key.clone()).or_insert(now);
            let unflushed = partition.unflushed();
            if unflushed > 0 && (unflushed as u64 >= messages || (now - last) as u64 >= ms) {
                if let Err(e) = partition.flush_now() {
                    tracing::error!(topic = %partition.topic, partition = partition.index, error = %error_chain(&e), "flush failed");
                }
                since_last_ms.insert(key, now);
            }
            next_check = next_check.min(Duration::from_millis(ms.clamp(10, 1000)));
        }
        next_check
    }

    /// Writes the recovery point and log start offset checkpoints (Kafka's file format).
    pub fn write_checkpoints(&self) -> Result<(), LogManagerError> {
        let mut recovery = Vec::new();
        let mut start = Vec::new();
        for partition in self.all() {
            let (recovery_point, log_start) = partition.checkpoint_offsets();
            let key = TopicPartition::new(partition.topic.clone(), partition.index);
            recovery.push((key.clone(), recovery_point));
            start.push((key, log_start));
        }
        self.write_checkpoint_files(&recovery, &start)
    }

    /// Writes every partition's high watermark to `replication-offset-checkpoint` (see
    /// [`Partition::high_watermark_to_checkpoint`]).
    pub fn write_high_watermark_checkpoint(&self) -> Result<(), LogManagerError> {
        let entries: Vec<(TopicPartition, i64)> = self
            .all()
            .iter()
            .filter_map(|p| {
                let hw = p.high_watermark_to_checkpoint()?;
                Some((TopicPartition::new(p.topic.clone(), p.index), hw))
            })
            .collect();
        write_checkpoint(
            &self.config.data_dir.join(REPLICATION_OFFSET_CHECKPOINT),
            &entries,
        )?;
        Ok(())
    }

    fn write_checkpoint_files(
        &self,
        recovery: &[(TopicPartition, i64)],
        start: &[(TopicPartition, i64)],
    ) -> Result<(), LogManagerError> {
        let dir = &self.config.data_dir;
        write_checkpoint(&dir.join(RECOVERY_POINT_CHECKPOINT), recovery)?;
        write_checkpoint(&dir.join(LOG_START_CHECKPOINT), start)?;
        Ok(())
    }

    /// The background work on logs until `shutdown` turns true: interval flushes, retention and checkpoints
    /// in one loop, the log cleaner in another. File work runs on the blocking pool; a pass in progress
    /// finishes before this returns, so shutdown can then close the logs.
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        let maintenance = tokio::spawn(Arc::clone(&self).maintenance(shutdown.clone()));
        let cleaner = tokio::spawn(Arc::clone(&self).cleaner(shutdown));
        let _ = maintenance.await;
        let _ = cleaner.await;
    }

    async fn maintenance(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let retention_every = self.config.retention_check_interval;
        let mut next_retention = Instant::now() + retention_every;
        let mut next_checkpoint = Instant::now() + CHECKPOINT_INTERVAL;
        let hw_every = self.config.high_watermark_checkpoint_interval;
        let mut next_hw_checkpoint = Instant::now() + hw_every;
        let mut last_flush = HashMap::new();
        loop {
            let logs = Arc::clone(&self);
            let (flush_again, map) = tokio::task::spawn_blocking(move || {
                let mut map = last_flush;
                let wait = logs.flush_due(&mut map);
                (wait, map)
            })
            .await
            .unwrap_or_else(|_| (Duration::from_secs(1), HashMap::new()));
            last_flush = map;
            let now = Instant::now();
            if now >= next_retention {
                let logs = Arc::clone(&self);
                let _ = tokio::task::spawn_blocking(move || logs.enforce_retention()).await;
                next_retention = now + retention_every;
            }
            if now >= next_checkpoint {
                let logs = Arc::clone(&self);
                if let Ok(Err(e)) =
                    tokio::task::spawn_blocking(move || logs.write_checkpoints()).await
                {
                    tracing::warn!(error = %error_chain(&e), "writing checkpoints failed");
                }
                next_checkpoint = now + CHECKPOINT_INTERVAL;
            }
            if now >= next_hw_checkpoint {
                let logs = Arc::clone(&self);
                if let Ok(Err(e)) =
                    tokio::task::spawn_blocking(move || logs.write_high_watermark_checkpoint())
                        .await
                {
                    tracing::warn!(error = %error_chain(&e), "writing the high watermark checkpoint failed");
                }
                next_hw_checkpoint = now + hw_every;
            }
            let wake = (now + flush_again)
                .min(next_retention)
                .min(next_checkpoint)
                .min(next_hw_checkpoint);
            tokio::select! {
                _ = tokio::time::sleep_until(wake.into()) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn cleaner(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let Some(backoff) = self.config.cleaner_backoff else {
            return;
        };
        loop {
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => return,
            }
            let logs = Arc::clone(&self);
            let _ = tokio::task::spawn_blocking(move || logs.compact_due()).await;
        }
    }

    /// Flushes and closes every log, writes checkpoints and the clean shutdown marker, so the next start
    /// needs no recovery scan. Called once, after the listeners and background work stopped.
    pub fn shutdown(&self) -> Result<(), LogManagerError> {
        let partitions: Vec<(TopicPartition, Arc<Partition>)> = self.write_map().drain().collect();
        let mut all_closed = true;
        let mut recovery = Vec::new();
        let mut starts = Vec::new();
        let mut high_watermarks = Vec::new();
        for (key, partition) in partitions {
            starts.push((key.clone(), partition.log_start_offset()));
            if let Some(hw) = partition.high_watermark_to_checkpoint() {
                high_watermarks.push((key.clone(), hw));
            }
            match Arc::try_unwrap(partition) {
                Ok(partition) => {
                    let log = partition.into_log();
                    let end = log.log_end_offset();
                    match log.close() {
                        Ok(()) => recovery.push((key, end)),
                        Err(e) => {
                            all_closed = false;
                            tracing::error!(topic = %key.topic, partition = key.partition, error = %error_chain(&e), "closing log failed");
                        }
                    }
                }
                Err(partition) => {
                    // Still referenced by an in-flight request: flush what we can; recovery will check it.
                    all_closed = false;
                    if let Err(e) = partition.flush_now() {
                        tracing::error!(topic = %key.topic, partition = key.partition, error = %error_chain(&e), "flush failed");
                    }
                }
            }
        }
        self.write_checkpoint_files(&recovery, &starts)?;
        write_checkpoint(
            &self.config.data_dir.join(REPLICATION_OFFSET_CHECKPOINT),
            &high_watermarks,
        )?;
        if all_closed {
            create_marker(&self.config.data_dir.join(CLEAN_SHUTDOWN_MARKER))
                .map_err(LogManagerError::Marker)?;
        }
        tracing::info!(clean = all_closed, "logs closed");
        Ok(())
    }
}

/// Makes sure `dir` belongs to the topic with `topic_id` (Kafka's `partition.metadata`, written atomically).
/// A directory left by an older topic of the same name is moved aside for deletion instead of being served
/// as this topic's data.
fn claim_partition_dir(dir: &Path, topic_id: Uuid) -> Result<(), LogManagerError> {
    let claim = |source| LogManagerError::ClaimDir {
        path: dir.to_path_buf(),
        source,
    };
    let file = dir.join(PARTITION_METADATA);
    let expected = format!("version: 0\ntopic_id: {topic_id}\n");
    match fs::read_to_string(&file) {
        Ok(existing) if existing == expected => return Ok(()),
        Ok(_) => {
            let aside = dir.with_file_name(format!(
                "{}.{}{DELETE_SUFFIX}",
                dir.file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("partition"),
                Uuid::new_v4().simple()
            ));
            tracing::warn!(dir = %dir.display(), "partition directory belongs to another topic id; moving it aside");
            fs::rename(dir, aside).map_err(claim)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(claim(e)),
    }
    // The new directory's entry in the data directory is not fsynced: the partition is empty, and if power
    // loss drops the entry the next start creates it again from the metadata, which is the truth.
    fs::create_dir_all(dir).map_err(claim)?;
    write_atomically(&file, expected.as_bytes())
        .map_err(|source| LogManagerError::PartitionMetadata { path: file, source })
}

/// Finishes deletions that a crash interrupted.
fn remove_deleted_dirs(data_dir: &Path) {
    let Ok(entries) = fs::read_dir(data_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir()
            && path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(DELETE_SUFFIX))
        {
            if let Err(e) = fs::remove_dir_all(&path) {
                tracing::warn!(dir = %path.display(), error = %e, "could not remove deleted partition");
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{
        clock::SystemClock, cluster::image::PartitionRegistration, log::builder::BatchBuilder,
    };

    fn manager(dir: &Path) -> Arc<LogManager> {
        let config = LogManagerConfig {
            data_dir: dir.to_path_buf(),
            retention_check_interval: Duration::from_secs(300),
            cleaner_backoff: None,
            high_watermark_checkpoint_interval: Duration::from_millis(20),
        };
        Arc::new(
            LogManager::open(
                config,
                Arc::new(SystemClock),
                Arc::new(StorageHealth::new(dir)),
            )
            .unwrap(),
        )
    }

    fn led_by_1(isr: &[i32], epoch: i32) -> PartitionRegistration {
        PartitionRegistration {
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
            leader: 1,
            leader_epoch: epoch,
            partition_epoch: epoch,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        }
    }

    async fn append_committed(partition: &Partition, value: &'static str) {
        let mut batch = BatchBuilder::new()
            .record(None, Some(bytes::Bytes::from_static(value.as_bytes())))
            .build()
            .unwrap()
            .to_vec();
        let outcome = partition.append(&mut batch, 0).unwrap();
        partition
            .flush_until(outcome.last_offset + 1)
            .await
            .unwrap();
        assert_eq!(partition.high_watermark(), outcome.last_offset + 1);
    }

    fn checkpointed(dir: &Path) -> Vec<(TopicPartition, i64)> {
        read_checkpoint(&dir.join(REPLICATION_OFFSET_CHECKPOINT)).unwrap()
    }

    #[tokio::test]
    async fn high_watermarks_are_checkpointed_while_running_and_on_shutdown_and_used_after_a_restart(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let topic_id = Uuid::new_v4();
        let logs = manager(dir.path());
        let partition = logs
            .open_partition("t", topic_id, 0, LogConfig::default())
            .unwrap();
        logs.write_high_watermark_checkpoint().unwrap();
        assert_eq!(
            checkpointed(dir.path()),
            [],
            "no role yet: the recovered log end is not a committed offset"
        );
        // The leader alone in the ISR (min.insync.replicas 1): what it fsyncs is committed.
        partition.become_leader(1, &led_by_1(&[1], 0), 0).unwrap();
        append_committed(&partition, "a").await;
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(Arc::clone(&logs).run(stopped));
        let deadline = Instant::now() + Duration::from_secs(10);
        while checkpointed(dir.path()) != [(TopicPartition::new("t", 0), 1)] {
            assert!(
                Instant::now() < deadline,
                "no periodic checkpoint of high watermark 1: {:?}",
                checkpointed(dir.path())
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.send(true).unwrap();
        running.await.unwrap();
        append_committed(&partition, "b").await;
        drop(partition);
        logs.shutdown().unwrap();
        assert_eq!(
            checkpointed(dir.path()),
            [(TopicPartition::new("t", 0), 2)],
            "shutdown writes the latest high watermark"
        );
        drop(logs);

        let logs = manager(dir.path());
        let partition = logs
            .open_partition("t", topic_id, 0, LogConfig::default())
            .unwrap();
        // 2 is in the ISR and has not fetched: only the checkpoint says what is committed.
        partition
            .become_leader(1, &led_by_1(&[1, 2], 1), 0)
            .unwrap();
        assert_eq!(partition.high_watermark(), 2);
    }
}
