//! The broker's shared state, reached by every handler through [`Broker`]: configuration, the metadata store,
//! the partitions hosted here, topic lifecycle (create, grow, delete, reconfigure), producer id allocation,
//! checkpoints and clean shutdown.
//!
//! Topic changes go through the metadata store first and are then reflected in local partitions, so the same
//! code path will serve a replicated metadata log. Must never hold the partition map lock across I/O that can
//! block for long or across an `.await`.

use std::{
    collections::{BTreeMap, HashMap},
    fs,
    io::Write,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use uuid::Uuid;

use crate::{
    config::{resolve_log_config, validate_topic_config, BrokerConfig},
    log::{
        read_checkpoint, write_checkpoint, CheckpointError, FlushPolicy, LogConfig,
        TopicPartition as LogPartition, CLEAN_SHUTDOWN_MARKER, LOG_START_CHECKPOINT,
        RECOVERY_POINT_CHECKPOINT,
    },
    metadata::{
        LocalMetadataStore, MetadataChange, MetadataError, MetadataImage, MetadataStore,
        TopicMetadata,
    },
    metrics::{collector::BrokerCollector, BrokerMetrics},
    partition::{LogStartState, Partition, PartitionError},
};

const PARTITION_METADATA: &str = "partition.metadata";
/// A partition created just now: nothing to recover.
const NEW_LOG: LogStartState = LogStartState {
    recovery_point: 0,
    log_start_offset: 0,
    clean_shutdown: true,
};
/// Producer ids are reserved from the metadata store in blocks, like Kafka's controller does.
const PRODUCER_ID_BLOCK: i64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("creating data directory {path}")]
    CreateDataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("opening metadata")]
    Metadata(#[from] MetadataError),
    #[error("opening partition {topic}-{partition}")]
    OpenPartition {
        topic: String,
        partition: i32,
        source: PartitionError,
    },
    #[error("rebuilding group state from __consumer_offsets: {0}")]
    LoadGroups(String),
    #[error("preparing partition directory {path}")]
    ClaimDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing the clean shutdown marker {path}")]
    Marker {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("checkpoint")]
    Checkpoint(#[from] CheckpointError),
}

/// Why a topic operation was refused; handlers map each to its Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("{0}")]
    InvalidTopic(String),
    #[error("topic {0:?} already exists")]
    AlreadyExists(String),
    #[error("topic {0:?} does not exist")]
    Unknown(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error("{0}")]
    Storage(String),
}

impl From<MetadataError> for TopicError {
    fn from(e: MetadataError) -> Self {
        match e {
            MetadataError::TopicExists(name) => TopicError::AlreadyExists(name),
            MetadataError::UnknownTopic(name) => TopicError::Unknown(name),
            e @ MetadataError::PartitionsNotIncreasing { .. } => {
                TopicError::InvalidPartitions(e.to_string())
            }
            other => TopicError::Storage(format!(
                "{other}: {}",
                std::error::Error::source(&other)
                    .map(ToString::to_string)
                    .unwrap_or_default()
            )),
        }
    }
}

pub type TopicPartition = (String, i32);

#[derive(Debug)]
pub struct Broker {
    pub config: BrokerConfig,
    pub metadata: Arc<dyn MetadataStore>,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// Serializes topic lifecycle changes so metadata and local logs move together.
    topic_admin: tokio::sync::Mutex<()>,
    producer_ids: Mutex<(i64, i64)>,
    pub groups: crate::group::GroupCoordinator,
    pub metrics: BrokerMetrics,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Kafka's topic name rule: 1-249 characters of `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    if name.is_empty() || name.len() > 249 || name == "." || name == ".." {
        return Err(TopicError::InvalidTopic(format!(
            "topic name {name:?} must be 1 to 249 characters and not '.' or '..'"
        )));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(TopicError::InvalidTopic(format!(
            "topic name {name:?} contains {bad:?}; only [a-zA-Z0-9._-] are allowed"
        )));
    }
    Ok(())
}

impl Broker {
    /// Opens the data directory: metadata, then every partition log (recovering any that were not closed
    /// cleanly). The broker is not ready until the caller marks it so.
    pub fn open(config: BrokerConfig) -> Result<Arc<Self>, BrokerError> {
        let data_dir = config.data_dir.clone();
        fs::create_dir_all(&data_dir).map_err(|source| BrokerError::CreateDataDir {
            path: data_dir.clone(),
            source,
        })?;
        remove_deleted_partition_dirs(&data_dir);
        let metadata = Arc::new(LocalMetadataStore::open(&data_dir)?);
        let marker = data_dir.join(CLEAN_SHUTDOWN_MARKER);
        let clean_shutdown = marker.exists();
        let read = |name: &str| -> Result<HashMap<TopicPartition, i64>, BrokerError> {
            Ok(read_checkpoint(&data_dir.join(name))?
                .into_iter()
                .map(|(tp, offset)| ((tp.topic, tp.partition), offset))
                .collect())
        };
        let recovery_points = read(RECOVERY_POINT_CHECKPOINT)?;
        let log_starts = read(LOG_START_CHECKPOINT)?;
        let group_config = config.group.clone();
        let partition_level = config.metrics_partition_level;
        // Cyclic: the metrics registry's collector reads this broker at scrape time, and must not keep it alive.
        let broker = Arc::new_cyclic(|weak| Self {
            config,
            metadata,
            partitions: RwLock::new(HashMap::new()),
            topic_admin: tokio::sync::Mutex::new(()),
            producer_ids: Mutex::new((0, 0)),
            groups: crate::group::GroupCoordinator::new(group_config),
            metrics: BrokerMetrics::new(BrokerCollector::new(weak.clone(), partition_level)),
        });
        let image = broker.metadata.image();
        let started = std::time::Instant::now();
        for topic in image.topics.values() {
            for index in 0..topic.partitions {
                let key = (topic.name.clone(), index);
                let start = LogStartState {
                    recovery_point: recovery_points.get(&key).copied().unwrap_or(0),
                    log_start_offset: log_starts.get(&key).copied().unwrap_or(0),
                    clean_shutdown,
                };
                broker.open_partition(&image, topic, index, start)?;
            }
        }
        broker.groups.attach(Arc::downgrade(&broker));
        broker
            .groups
            .load(&broker)
            .map_err(BrokerError::LoadGroups)?;
        // From here on a crash must trigger recovery: remove the marker only after every log opened.
        if clean_shutdown {
            if let Err(e) = fs::remove_file(&marker) {
                tracing::warn!(error = %e, "could not remove the clean shutdown marker");
            }
        }
        tracing::info!(
            partitions = broker.partition_count(),
            clean_shutdown,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "logs loaded"
        );
        Ok(broker)
    }

    fn partition_dir(&self, topic: &str, index: i32) -> PathBuf {
        self.config.data_dir.join(format!("{topic}-{index}"))
    }

    pub fn log_config(&self, image: &MetadataImage, topic: &TopicMetadata) -> LogConfig {
        resolve_log_config(
            &topic.configs,
            &image.broker_configs,
            &self.config.topic_defaults,
        )
    }

    fn open_partition(
        &self,
        image: &MetadataImage,
        topic: &TopicMetadata,
        index: i32,
        start: LogStartState,
    ) -> Result<Arc<Partition>, BrokerError> {
        let dir = self.partition_dir(&topic.name, index);
        let err = |source| BrokerError::OpenPartition {
            topic: topic.name.clone(),
            partition: index,
            source,
        };
        claim_partition_dir(&dir, topic.id).map_err(|source| BrokerError::ClaimDir {
            path: dir.clone(),
            source,
        })?;
        let (partition, report) = Partition::open(
            &topic.name,
            topic.id,
            index,
            &dir,
            self.log_config(image, topic),
            start,
            self.metrics.fsync_duration(),
        )
        .map_err(err)?;
        tracing::debug!(topic = %topic.name, partition = index, ?report, "partition opened");
        let partition = Arc::new(partition);
        self.partitions_mut()
            .insert((topic.name.clone(), index), Arc::clone(&partition));
        Ok(partition)
    }

    fn partitions_mut(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<TopicPartition, Arc<Partition>>> {
        self.partitions
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn partitions_read(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<TopicPartition, Arc<Partition>>> {
        self.partitions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        self.partitions_read()
            .get(&(topic.to_owned(), index))
            .cloned()
    }

    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions_read().values().cloned().collect()
    }

    pub fn partition_count(&self) -> usize {
        self.partitions_read().len()
    }

    /// Creates a topic: validates, records it in the metadata, then creates its partition logs.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<TopicMetadata, TopicError> {
        validate_topic_name(name)?;
        if !(1..=1_000_000).contains(&partitions) {
            return Err(TopicError::InvalidPartitions(format!(
                "number of partitions must be 1..=1000000, got {partitions}"
            )));
        }
        // One broker: a replication factor above one cannot be placed. Kafka answers the same way.
        if replication_factor != 1 {
            return Err(TopicError::InvalidReplicationFactor(format!(
                "replication factor {replication_factor} is larger than the 1 available broker"
            )));
        }
        for (key, value) in &configs {
            validate_topic_config(key, value).map_err(TopicError::InvalidConfig)?;
        }
        let _admin = self.topic_admin.lock().await;
        if self.metadata.image().topics.contains_key(name) {
            return Err(TopicError::AlreadyExists(name.to_owned()));
        }
        let topic = TopicMetadata {
            name: name.to_owned(),
            id: Uuid::new_v4(),
            partitions,
            replication_factor,
            configs,
        };
        if validate_only {
            return Ok(topic);
        }
        let image = self
            .metadata
            .apply(MetadataChange::CreateTopic(topic.clone()))?;
        for index in 0..partitions {
            self.open_partition(&image, &topic, index, NEW_LOG)
                .map_err(|e| TopicError::Storage(error_chain(&e)))?;
        }
        tracing::info!(topic = name, partitions, "topic created");
        Ok(topic)
    }

    pub async fn create_partitions(
        &self,
        name: &str,
        total: i32,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let _admin = self.topic_admin.lock().await;
        let image = self.metadata.image();
        let topic = image
            .topics
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_owned()))?;
        if total <= topic.partitions || total > 1_000_000 {
            return Err(TopicError::InvalidPartitions(format!(
                "topic {name:?} has {} partitions; the new count {total} must be larger (and at most 1000000)",
                topic.partitions
            )));
        }
        if validate_only {
            return Ok(());
        }
        let image = self.metadata.apply(MetadataChange::CreatePartitions {
            name: name.to_owned(),
            total,
        })?;
        let topic = &image.topics[name];
        for index in 0..total {
            if self.partition(name, index).is_none() {
                self.open_partition(&image, topic, index, NEW_LOG)
                    .map_err(|e| TopicError::Storage(error_chain(&e)))?;
            }
        }
        tracing::info!(topic = name, partitions = total, "partitions added");
        Ok(())
    }

    /// Deletes a topic: its directories are renamed out of the way first (so a crash can never bring the data
    /// back under a re-created topic of the same name), then the metadata forgets it, then the files go.
    pub async fn delete_topic(&self, name: &str) -> Result<Uuid, TopicError> {
        let _admin = self.topic_admin.lock().await;
        let image = self.metadata.image();
        let topic = image
            .topics
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_owned()))?
            .clone();
        let removed: Vec<Arc<Partition>> = {
            let mut map = self.partitions_mut();
            (0..topic.partitions)
                .filter_map(|i| map.remove(&(name.to_owned(), i)))
                .collect()
        };
        for index in 0..topic.partitions {
            let dir = self.partition_dir(name, index);
            let doomed = self
                .config
                .data_dir
                .join(format!("{name}-{index}.{}-delete", topic.id.simple()));
            if let Err(e) = fs::rename(&dir, &doomed) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(topic = name, partition = index, error = %e, "could not move partition aside");
                }
            }
        }
        self.metadata.apply(MetadataChange::DeleteTopic {
            name: name.to_owned(),
        })?;
        drop(removed);
        remove_deleted_partition_dirs(&self.config.data_dir);
        tracing::info!(topic = name, "topic deleted");
        Ok(topic.id)
    }

    /// Replaces a topic's config overrides (already validated) and applies them to its open logs.
    pub async fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), TopicError> {
        let _admin = self.topic_admin.lock().await;
        let image = self.metadata.apply(MetadataChange::SetTopicConfigs {
            name: name.to_owned(),
            configs,
        })?;
        self.reapply_configs(&image, Some(name));
        Ok(())
    }

    pub async fn set_broker_configs(
        &self,
        configs: BTreeMap<String, String>,
    ) -> Result<(), TopicError> {
        let _admin = self.topic_admin.lock().await;
        let image = self
            .metadata
            .apply(MetadataChange::SetBrokerConfigs { configs })?;
        self.reapply_configs(&image, None);
        Ok(())
    }

    fn reapply_configs(&self, image: &MetadataImage, only_topic: Option<&str>) {
        for partition in self.all_partitions() {
            if only_topic.is_some_and(|t| t != partition.topic) {
                continue;
            }
            if let Some(topic) = image.topics.get(&partition.topic) {
                partition.set_config(self.log_config(image, topic));
            }
        }
    }

    /// Hands out a producer id, reserving a new block in the metadata when the current one is used up, so ids
    /// are never reused across restarts.
    pub fn allocate_producer_id(&self) -> Result<i64, TopicError> {
        let mut block = self
            .producer_ids
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if block.0 >= block.1 {
            let start = self.metadata.image().next_producer_id;
            self.metadata.apply(MetadataChange::AllocateProducerIds {
                count: PRODUCER_ID_BLOCK,
            })?;
            *block = (start, start + PRODUCER_ID_BLOCK);
        }
        let id = block.0;
        block.0 += 1;
        Ok(id)
    }

    /// Deletes segments past retention in every partition.
    pub fn enforce_retention(&self) {
        let now = now_ms();
        for partition in self.all_partitions() {
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
        let now = now_ms();
        for partition in self
            .all_partitions()
            .into_iter()
            .filter(|p| p.is_compacted())
        {
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
        let now = now_ms();
        let mut next_check = Duration::from_millis(1000);
        for partition in self.all_partitions() {
            let FlushPolicy::Interval { messages, ms } = partition.flush_policy() else {
                continue;
            };
            let key = (partition.topic.clone(), partition.index);
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
    pub fn write_checkpoints(&self) -> Result<(), BrokerError> {
        let mut recovery = Vec::new();
        let mut start = Vec::new();
        for partition in self.all_partitions() {
            let (recovery_point, log_start) = partition.checkpoint_offsets();
            recovery.push((
                LogPartition::new(partition.topic.clone(), partition.index),
                recovery_point,
            ));
            start.push((
                LogPartition::new(partition.topic.clone(), partition.index),
                log_start,
            ));
        }
        write_checkpoint(
            &self.config.data_dir.join(RECOVERY_POINT_CHECKPOINT),
            &recovery,
        )?;
        write_checkpoint(&self.config.data_dir.join(LOG_START_CHECKPOINT), &start)?;
        Ok(())
    }

    /// Flushes and closes every log, writes checkpoints and the clean shutdown marker, so the next start
    /// needs no recovery scan. Called once, after the listeners stopped.
    pub fn shutdown(&self) -> Result<(), BrokerError> {
        let partitions: Vec<(TopicPartition, Arc<Partition>)> =
            self.partitions_mut().drain().collect();
        let mut all_closed = true;
        let mut recovery = Vec::new();
        let mut starts = Vec::new();
        for ((topic, index), partition) in partitions {
            starts.push((
                LogPartition::new(topic.clone(), index),
                partition.log_start_offset(),
            ));
            match Arc::try_unwrap(partition) {
                Ok(partition) => {
                    let log = partition.into_log();
                    let end = log.log_end_offset();
                    match log.close() {
                        Ok(()) => recovery.push((LogPartition::new(topic, index), end)),
                        Err(e) => {
                            all_closed = false;
                            tracing::error!(topic = %topic, partition = index, error = %error_chain(&e), "closing log failed");
                        }
                    }
                }
                Err(partition) => {
                    // Still referenced by an in-flight request: flush what we can; recovery will check it.
                    all_closed = false;
                    if let Err(e) = partition.flush_now() {
                        tracing::error!(topic = %topic, partition = index, error = %error_chain(&e), "flush failed");
                    }
                }
            }
        }
        write_checkpoint(
            &self.config.data_dir.join(RECOVERY_POINT_CHECKPOINT),
            &recovery,
        )?;
        write_checkpoint(&self.config.data_dir.join(LOG_START_CHECKPOINT), &starts)?;
        if all_closed {
            let marker = self.config.data_dir.join(CLEAN_SHUTDOWN_MARKER);
            fs::File::create(&marker)
                .and_then(|f| f.sync_all())
                .and_then(|()| sync_dir(&self.config.data_dir))
                .map_err(|source| BrokerError::Marker {
                    path: marker,
                    source,
                })?;
        }
        tracing::info!(clean = all_closed, "logs closed");
        Ok(())
    }
}

/// Formats an error with its sources, for log lines and client-visible messages.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Makes sure `dir` belongs to the topic with `topic_id` (Kafka's `partition.metadata`). A directory left by
/// an older topic of the same name is moved aside for deletion instead of being served as this topic's data.
fn claim_partition_dir(dir: &Path, topic_id: Uuid) -> std::io::Result<()> {
    let file = dir.join(PARTITION_METADATA);
    let expected = format!("version: 0\ntopic_id: {topic_id}\n");
    match fs::read_to_string(&file) {
        Ok(existing) if existing == expected => return Ok(()),
        Ok(_) => {
            let aside = dir.with_file_name(format!(
                "{}.{}-delete",
                dir.file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("partition"),
                Uuid::new_v4().simple()
            ));
            tracing::warn!(dir = %dir.display(), "partition directory belongs to another topic id; moving it aside");
            fs::rename(dir, aside)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fs::create_dir_all(dir)?;
    let mut f = fs::File::create(&file)?;
    f.write_all(expected.as_bytes())?;
    f.sync_all()?;
    sync_dir(dir)
}

fn remove_deleted_partition_dirs(data_dir: &Path) {
    let Ok(entries) = fs::read_dir(data_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir()
            && path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with("-delete"))
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

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_eu-west").is_ok());
        for bad in ["", ".", "..", "has space", "slash/", &"x".repeat(250)] {
            assert!(
                validate_topic_name(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }
}
