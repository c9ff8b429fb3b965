//! Committed offsets and the `__consumer_offsets` topic: OffsetCommit, OffsetFetch, OffsetDelete,
//! DeleteGroups, persisting group metadata, and rebuilding everything from the topic on start.
//!
//! A commit is acknowledged only after its record is committed: in the log, durable under the topic's flush
//! policy and below the partition's high watermark, i.e. held by every in-sync replica (Kafka appends
//! offsets with acks=all). The in-memory cache is updated after that, so a fetch never returns an offset
//! a crash or a failover could lose.

use std::{collections::BTreeMap, ops::Range, sync::Arc};

use bytes::{Bytes, BytesMut};
use kafka_protocol::{messages::ConsumerProtocolSubscription, protocol::Decodable, ResponseError};

use super::{
    records::{partition_for, GroupValue, OffsetValue, OffsetsKey},
    shards::ShardToken,
    Group, GroupCoordinator, GroupState, OFFSETS_TOPIC,
};
use crate::{
    error_chain,
    log::{builder::BatchBuilder, TopicPartition},
};

/// How the coordinator reaches `__consumer_offsets`: the only thing it knows of the broker around it.
pub trait OffsetsLog: Send + Sync + std::fmt::Debug {
    /// Creates `__consumer_offsets` (compacted, `partitions` partitions) unless it exists, and returns once
    /// its partitions can be written here.
    fn ensure_topic(&self, partitions: i32) -> BoxFuture<'_, Result<(), OffsetsLogError>>;
    /// Appends one record batch to `partition` while this broker leads it in `leader_epoch` (any epoch when
    /// `None`) and returns once it is committed: durable under the topic's flush policy and below the high
    /// watermark. Gives up with [`OffsetsLogError::Timeout`] after `offsets.commit.timeout.ms`.
    fn append_durably(
        &self,
        partition: i32,
        leader_epoch: Option<i32>,
        batch: BytesMut,
    ) -> BoxFuture<'_, Result<(), OffsetsLogError>>;
    /// Returns once this broker leads `partition` in `leader_epoch` and everything its log held when it
    /// took over is below the high watermark, so that a load up to the high watermark sees every commit
    /// an earlier leader acknowledged. Errors when the leadership ends first.
    fn wait_until_caught_up(
        &self,
        partition: i32,
        leader_epoch: i32,
    ) -> BoxFuture<'_, Result<(), OffsetsLogError>>;
    /// The readable offsets of `partition`: log start offset to high watermark; `None` if it is not hosted.
    fn readable_range(&self, partition: i32) -> Option<Range<i64>>;
    /// Whole batches from `offset` on, at most about `max_bytes`; empty at the end.
    fn read(&self, partition: i32, offset: i64, max_bytes: usize)
        -> Result<Bytes, OffsetsLogError>;
}

pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum OffsetsLogError {
    #[error("creating {OFFSETS_TOPIC}")]
    CreateTopic(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("{OFFSETS_TOPIC}-{0} is not hosted here")]
    NotHosted(i32),
    #[error("storing to {OFFSETS_TOPIC}-{partition}")]
    Storage {
        partition: i32,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(
        "this broker does not lead {OFFSETS_TOPIC}-{partition} in leader epoch {leader_epoch:?}"
    )]
    NotLeader {
        partition: i32,
        leader_epoch: Option<i32>,
    },
    #[error("the ISR of {OFFSETS_TOPIC}-{0} is below min.insync.replicas")]
    NotEnoughReplicas(i32),
    #[error("{OFFSETS_TOPIC}-{partition}: not replicated within {timeout_ms} ms")]
    Timeout { partition: i32, timeout_ms: u64 },
    #[error("encoding a record batch for {OFFSETS_TOPIC}")]
    Encode(#[source] crate::log::builder::BatchBuildError),
    #[error("appending to {OFFSETS_TOPIC}-{partition}")]
    Append {
        partition: i32,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("reading {OFFSETS_TOPIC}-{partition} at offset {offset}")]
    Read {
        partition: i32,
        offset: i64,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("decoding {OFFSETS_TOPIC}-{partition} at offset {offset}")]
    Decode {
        partition: i32,
        offset: i64,
        #[source]
        source: anyhow::Error,
    },
}

impl OffsetsLogError {
    /// What a client is told when a write of the coordinator fails, as Kafka maps its append errors
    /// (`GroupMetadataManager.storeOffsets`, `GroupCoordinatorService.handleOperationException`): a lost
    /// leadership or a broken disk sends the client to find the coordinator again, too few replicas make
    /// it back off, a timeout is reported as such.
    pub fn response_error(&self) -> ResponseError {
        match self {
            OffsetsLogError::NotLeader { .. } => ResponseError::NotCoordinator,
            OffsetsLogError::Timeout { .. } => ResponseError::RequestTimedOut,
            OffsetsLogError::Storage { .. } => ResponseError::NotCoordinator,
            OffsetsLogError::NotEnoughReplicas(_)
            | OffsetsLogError::NotHosted(_)
            | OffsetsLogError::CreateTopic(_)
            | OffsetsLogError::Encode(_)
            | OffsetsLogError::Append { .. }
            | OffsetsLogError::Read { .. }
            | OffsetsLogError::Decode { .. } => ResponseError::CoordinatorNotAvailable,
        }
    }
}

/// One partition's commit in an OffsetCommit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitEntry {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// -1 when the client sent none (before v6).
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// Partitions of one topic, as OffsetFetch and OffsetDelete name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPartitions {
    pub topic: String,
    pub partitions: Vec<i32>,
}

/// Committed offsets of one topic, in an OffsetFetch answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicOffsets {
    pub topic: String,
    pub partitions: Vec<PartitionOffset>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffset {
    pub partition: i32,
    /// `None` when the group has committed nothing for the partition.
    pub committed: Option<OffsetValue>,
}

/// What happened to each partition of one topic, in an OffsetDelete answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicOutcomes {
    pub topic: String,
    pub partitions: Vec<PartitionOutcome>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOutcome {
    pub partition: i32,
    pub outcome: Result<(), ResponseError>,
}

impl GroupCoordinator {
    /// Creates `__consumer_offsets` (compacted) on first use, as Kafka does.
    pub async fn ensure_offsets_topic(&self) -> Result<(), OffsetsLogError> {
        self.log.ensure_topic(self.config.offsets_partitions).await
    }

    /// For FindCoordinator: creates `__consumer_offsets` in the background and waits for it at most
    /// `patience`. `Ok(false)` while it is still being created: the caller answers COORDINATOR_NOT_AVAILABLE
    /// and the client retries, as with Kafka, instead of a connection blocked for the controller's whole
    /// timeout (its requests are answered in order) when there is no quorum.
    pub async fn create_offsets_topic_within(
        self: &Arc<Self>,
        patience: std::time::Duration,
    ) -> Result<bool, String> {
        use std::sync::atomic::Ordering;
        if self.creating_offsets_topic.swap(true, Ordering::AcqRel) {
            return Ok(false);
        }
        let coordinator = Arc::clone(self);
        let creation = tokio::spawn(async move {
            let created = coordinator.ensure_offsets_topic().await;
            coordinator
                .creating_offsets_topic
                .store(false, Ordering::Release);
            created.map_err(|e| crate::error_chain(&e))
        });
        match tokio::time::timeout(patience, creation).await {
            Ok(Ok(created)) => created.map(|()| true),
            Ok(Err(join)) => Err(format!("creating {OFFSETS_TOPIC} failed: {join}")),
            Err(_) => Ok(false),
        }
    }

    /// Appends records of a group of shard `shard` to its `__consumer_offsets` partition, in the leadership
    /// the shard was loaded for, and waits until they are committed.
    async fn append(
        &self,
        shard: ShardToken,
        records: Vec<(Bytes, Option<Bytes>)>,
    ) -> Result<(), OffsetsLogError> {
        if records.is_empty() {
            return Ok(());
        }
        self.ensure_offsets_topic().await?;
        let now = self.clock.wall_ms();
        let builder = records
            .into_iter()
            .fold(BatchBuilder::new().timestamp(now), |b, (key, value)| {
                b.record(Some(key), value)
            });
        let batch = BytesMut::from(&builder.build().map_err(OffsetsLogError::Encode)?[..]);
        self.log
            .append_durably(shard.partition, shard.leader_epoch, batch)
            .await
    }

    /// Writes the metadata record of every group whose generation or assignment changed.
    pub(super) async fn persist_dirty_groups(&self) {
        let dirty: Vec<(String, ShardToken, GroupValue)> = {
            let mut state = self.lock();
            let state = &mut *state;
            let partitions = self.config.offsets_partitions;
            state
                .groups
                .values_mut()
                .filter(|g| g.needs_persist)
                .filter_map(|g| {
                    g.needs_persist = false;
                    let shard = state.shards.check(partition_for(&g.id, partitions)).ok()?;
                    Some((g.id.clone(), shard, g.to_value()))
                })
                .collect()
        };
        for (group, shard, value) in dirty {
            let key = OffsetsKey::Group {
                group: group.clone(),
            }
            .encode();
            if let Err(e) = self.append(shard, vec![(key, Some(value.encode()))]).await {
                tracing::error!(group = %group, error = %error_chain(&e), "persisting group metadata failed");
            }
        }
    }

    /// OffsetCommit: returns one outcome per entry, in order.
    pub async fn commit(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        entries: Vec<CommitEntry>,
    ) -> Vec<Result<(), ResponseError>> {
        let all = |e: ResponseError| vec![Err(e); entries.len()];
        if group_id.is_empty() {
            return all(ResponseError::InvalidGroupId);
        }
        let shard = {
            let mut state = self.lock();
            let shard = match state.shards.check(self.shard_of(group_id)) {
                Ok(shard) => shard,
                Err(e) => return all(e),
            };
            let groups = &mut state.groups;
            match groups.get(group_id) {
                None if generation < 0 => {
                    // A consumer that assigns partitions itself and only stores offsets ("simple" group).
                    groups.insert(group_id.to_owned(), Group::new(group_id));
                }
                None => return all(ResponseError::IllegalGeneration),
                Some(group) if generation < 0 && group.state == GroupState::Empty => {}
                Some(group) => {
                    // Kafka's order (ClassicGroup.validateOffsetCommit): a member of an old generation
                    // hears ILLEGAL_GENERATION, so it rejoins; only a member of the generation whose
                    // assignment is still coming waits with REBALANCE_IN_PROGRESS.
                    if let Err(e) = group.check_member(member_id, instance_id, generation) {
                        return all(e);
                    }
                    if group.state == GroupState::CompletingRebalance {
                        return all(ResponseError::RebalanceInProgress);
                    }
                }
            }
            shard
        };
        let mut outcomes = Vec::with_capacity(entries.len());
        let mut records = Vec::new();
        let mut accepted = Vec::new();
        let now = self.clock.wall_ms();
        for CommitEntry {
            topic,
            partition,
            offset,
            leader_epoch,
            metadata,
        } in entries
        {
            let metadata = metadata.unwrap_or_default();
            if metadata.len() > self.config.max_metadata_bytes {
                outcomes.push(Err(ResponseError::OffsetMetadataTooLarge));
                continue;
            }
            let value = OffsetValue {
                offset,
                leader_epoch,
                metadata,
                commit_timestamp: now,
            };
            records.push((
                offset_key(group_id, &topic, partition),
                Some(value.encode()),
            ));
            accepted.push((outcomes.len(), TopicPartition::new(topic, partition), value));
            outcomes.push(Ok(()));
        }
        if let Err(e) = self.append(shard, records).await {
            tracing::warn!(group = %group_id, error = %error_chain(&e), "storing committed offsets failed");
            let error = e.response_error();
            for (slot, ..) in &accepted {
                outcomes[*slot] = Err(error);
            }
            return outcomes;
        }
        let mut state = self.lock();
        if !state.shards.is_current(shard) {
            // The shard was unloaded while the commit replicated; the record is in the log, and whoever
            // loads the shard next reads it from there.
            return outcomes;
        }
        let group = state
            .groups
            .entry(group_id.to_owned())
            .or_insert_with(|| Group::new(group_id));
        for (_, key, value) in accepted {
            group.offsets.insert(key, value);
        }
        outcomes
    }

    /// OffsetFetch: committed offsets of `topics` (all of the group's when `None`).
    pub fn fetch(
        &self,
        group_id: &str,
        topics: Option<Vec<TopicPartitions>>,
    ) -> Result<Vec<TopicOffsets>, ResponseError> {
        let state = self.lock();
        state.shards.check(self.shard_of(group_id))?;
        let offsets = state.groups.get(group_id).map(|g| &g.offsets);
        Ok(match topics {
            Some(topics) => topics
                .into_iter()
                .map(|TopicPartitions { topic, partitions }| {
                    let partitions = partitions
                        .into_iter()
                        .map(|partition| PartitionOffset {
                            partition,
                            committed: offsets
                                .and_then(|o| o.get(&TopicPartition::new(topic.clone(), partition)))
                                .cloned(),
                        })
                        .collect();
                    TopicOffsets { topic, partitions }
                })
                .collect(),
            None => {
                let mut by_topic: BTreeMap<String, Vec<PartitionOffset>> = BTreeMap::new();
                for (key, value) in offsets.into_iter().flatten() {
                    by_topic
                        .entry(key.topic.clone())
                        .or_default()
                        .push(PartitionOffset {
                            partition: key.partition,
                            committed: Some(value.clone()),
                        });
                }
                by_topic
                    .into_iter()
                    .map(|(topic, mut partitions)| {
                        partitions.sort_by_key(|p| p.partition);
                        TopicOffsets { topic, partitions }
                    })
                    .collect()
            }
        })
    }

    /// DeleteGroups: only groups without members can go; their offsets and metadata get tombstones.
    pub async fn delete_group(&self, group_id: &str) -> Result<(), ResponseError> {
        let (shard, keys) = {
            let state = self.lock();
            let shard = state.shards.check(self.shard_of(group_id))?;
            let group = state
                .groups
                .get(group_id)
                .ok_or(ResponseError::GroupIdNotFound)?;
            if !group.members.is_empty() || group.state != GroupState::Empty {
                return Err(ResponseError::NonEmptyGroup);
            }
            let mut keys: Vec<(Bytes, Option<Bytes>)> = group
                .offsets
                .keys()
                .map(|key| (offset_key(group_id, &key.topic, key.partition), None))
                .collect();
            keys.push((
                OffsetsKey::Group {
                    group: group_id.to_owned(),
                }
                .encode(),
                None,
            ));
            (shard, keys)
        };
        if let Err(e) = self.append(shard, keys).await {
            tracing::warn!(group = %group_id, error = %error_chain(&e), "deleting group failed");
            return Err(e.response_error());
        }
        let mut state = self.lock();
        if state.shards.is_current(shard) {
            state.groups.remove(group_id);
        }
        Ok(())
    }

    /// OffsetDelete: removes committed offsets of topics the group's members are not subscribed to.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        topics: Vec<TopicPartitions>,
    ) -> Result<Vec<TopicOutcomes>, ResponseError> {
        let (shard, results, tombstones) = {
            let state = self.lock();
            let shard = state.shards.check(self.shard_of(group_id))?;
            let group = state
                .groups
                .get(group_id)
                .ok_or(ResponseError::GroupIdNotFound)?;
            let subscribed = subscribed_topics(group);
            let mut tombstones = Vec::new();
            let results: Vec<TopicOutcomes> = topics
                .into_iter()
                .map(|TopicPartitions { topic, partitions }| {
                    let partitions = partitions
                        .into_iter()
                        .map(|partition| {
                            let outcome = if subscribed.contains(&topic) {
                                Err(ResponseError::GroupSubscribedToTopic)
                            } else {
                                let key = TopicPartition::new(topic.clone(), partition);
                                if group.offsets.contains_key(&key) {
                                    tombstones.push(key);
                                }
                                Ok(())
                            };
                            PartitionOutcome { partition, outcome }
                        })
                        .collect();
                    TopicOutcomes { topic, partitions }
                })
                .collect();
            (shard, results, tombstones)
        };
        let records = tombstones
            .iter()
            .map(|key| (offset_key(group_id, &key.topic, key.partition), None))
            .collect();
        if let Err(e) = self.append(shard, records).await {
            tracing::warn!(group = %group_id, error = %error_chain(&e), "deleting offsets failed");
            return Err(e.response_error());
        }
        let mut state = self.lock();
        if !state.shards.is_current(shard) {
            return Ok(results);
        }
        if let Some(group) = state.groups.get_mut(group_id) {
            for key in tombstones {
                group.offsets.remove(&key);
            }
        }
        Ok(results)
    }
}

fn offset_key(group: &str, topic: &str, partition: i32) -> Bytes {
    OffsetsKey::Offset {
        group: group.to_owned(),
        topic: topic.to_owned(),
        partition,
    }
    .encode()
}

/// Applies one `__consumer_offsets` record to the groups being loaded.
pub(super) fn apply(
    groups: &mut std::collections::HashMap<String, Group>,
    key: OffsetsKey,
    value: Option<Bytes>,
) {
    let group_id = key.group().to_owned();
    match (key, value) {
        (
            OffsetsKey::Offset {
                topic, partition, ..
            },
            Some(value),
        ) => match OffsetValue::decode(value) {
            Ok(value) => {
                groups
                    .entry(group_id.clone())
                    .or_insert_with(|| Group::new(&group_id))
                    .offsets
                    .insert(TopicPartition::new(topic, partition), value);
            }
            Err(e) => {
                tracing::warn!(group = %group_id, error = %e, "skipping unreadable offset value")
            }
        },
        (
            OffsetsKey::Offset {
                topic, partition, ..
            },
            None,
        ) => {
            if let Some(group) = groups.get_mut(&group_id) {
                group.offsets.remove(&TopicPartition::new(topic, partition));
            }
        }
        (OffsetsKey::Group { .. }, Some(value)) => match GroupValue::decode(value) {
            Ok(value) => groups
                .entry(group_id.clone())
                .or_insert_with(|| Group::new(&group_id))
                .restore(value),
            Err(e) => {
                tracing::warn!(group = %group_id, error = %e, "skipping unreadable group value")
            }
        },
        (OffsetsKey::Group { .. }, None) => {
            groups.remove(&group_id);
        }
    }
}

/// Topics the group's consumer-protocol members subscribe to.
fn subscribed_topics(group: &Group) -> Vec<String> {
    if group.protocol_type.as_deref() != Some("consumer") {
        return Vec::new();
    }
    let protocol = group.protocol.clone().unwrap_or_default();
    let mut topics = Vec::new();
    for member in group.members.values() {
        let mut metadata = member.metadata_for(&protocol);
        if metadata.len() < 2 {
            continue;
        }
        // The embedded version may be newer than the codec knows; the fields read here exist in every version.
        let version = i16::from_be_bytes([metadata[0], metadata[1]]).clamp(0, 3);
        let _ = metadata.split_to(2);
        if let Ok(subscription) = ConsumerProtocolSubscription::decode(&mut metadata, version) {
            topics.extend(subscription.topics.iter().map(|t| t.to_string()));
        }
    }
    topics
}
