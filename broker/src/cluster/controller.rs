//! The controller: decides topic changes (validation, replica placement, partition growth, deletion, config
//! overrides) and producer id blocks, and emits them as [`MetadataChange`]s through the publisher.
//!
//! It never opens, deletes or reconfigures a partition itself: local partitions follow the published image
//! (the replica manager does that). Placement reads only the image's live brokers, so the same code places
//! replicas on one broker or on many. Must never hold its admin lock across anything but metadata work.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    image::{MetadataImage, NodeId, PartitionRegistration, TopicMetadata},
    publisher::{ApplyError, MetadataPublisher, PublishError},
    store::{MetadataChange, MetadataError},
};
use crate::config::{validate_topic_config, TopicConfigError};

pub mod calls;
pub mod drain;
pub mod elections;
pub mod fill;
pub mod liveness;
mod placement;
pub mod producer_ids;
pub mod reassignment;
#[cfg(test)]
mod test_images;

pub use calls::{CallOutput, ControllerCall, QuorumLink};

/// Kafka's limit on partitions per topic in one request; far above anything a broker can host.
pub const MAX_PARTITIONS: i32 = 1_000_000;
/// Producer ids are reserved from the metadata in blocks, like Kafka's controller does.
const PRODUCER_ID_BLOCK: i64 = 1000;

/// Why a topic operation was refused; handlers map each to its Kafka error code. Crosses the controller
/// listener when a broker forwards an operation to the active controller, so all but the two local-only
/// variants are serde ([`TopicError::for_wire`] turns those into [`TopicError::Internal`]).
#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum TopicError {
    #[error("topic name {name:?} must be 1 to 249 characters and not '.' or '..'")]
    InvalidNameLength { name: String },
    #[error("topic name {name:?} contains {character:?}; only [a-zA-Z0-9._-] are allowed")]
    InvalidNameCharacter { name: String, character: char },
    #[error("topic {0:?} already exists")]
    AlreadyExists(String),
    #[error("topic {0:?} does not exist")]
    Unknown(String),
    #[error("number of partitions must be 1..={MAX_PARTITIONS}, got {0}")]
    InvalidPartitionCount(i32),
    #[error("topic {name:?} has {current} partitions; the new count {requested} must be larger (and at most {MAX_PARTITIONS})")]
    PartitionsNotIncreasing {
        name: String,
        current: i32,
        requested: i32,
    },
    #[error("give either replica assignments or partitions and replication factor, not both")]
    AssignmentsWithCounts,
    #[error("replication factor {requested} is larger than the {available} available broker{}", if *available == 1 { "" } else { "s" })]
    ReplicationFactorTooLarge { requested: i16, available: usize },
    #[error("replication factor must be at least 1, got {0}")]
    ReplicationFactorTooSmall(i16),
    #[error("replica assignment of partition {partition} is invalid: {problem}")]
    InvalidAssignment {
        partition: i32,
        problem: AssignmentProblem,
    },
    #[error("config {key} has a null value")]
    NullConfig { key: String },
    /// The client's `controller_mutation_rate` is used up (KIP-599); checked by the broker the client
    /// reached, before anything is forwarded.
    #[error("the controller mutation quota is exceeded; retry in {throttle_ms} ms")]
    ThrottlingQuotaExceeded { throttle_ms: u64 },
    /// Transparent: the validation text is what clients get as the error message.
    #[error(transparent)]
    InvalidConfig(#[from] TopicConfigError),
    #[error("storing the topic change")]
    #[serde(skip)]
    Metadata(#[source] MetadataError),
    #[error("the topic change is stored but this broker could not apply it")]
    #[serde(skip)]
    Apply(#[source] ApplyError),
    /// No active controller took the operation in time (an election in progress, or no quorum).
    #[error("no active controller is available: {0}")]
    ControllerUnavailable(String),
    /// The active controller failed in a way this broker can only report.
    #[error("the controller failed: {0}")]
    Internal(String),
}

impl TopicError {
    /// The error as it can be sent to another broker.
    pub fn for_wire(self) -> Self {
        match self {
            Self::Metadata(e) => Self::Internal(crate::error_chain(&e)),
            Self::Apply(e) => Self::Internal(crate::error_chain(&e)),
            other => other,
        }
    }
}

/// What is wrong with one partition's replica list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum AssignmentProblem {
    #[error("it names no broker")]
    Empty,
    #[error("broker {0} appears more than once")]
    Duplicate(NodeId),
    #[error("broker {0} is not a live broker of this cluster")]
    UnknownBroker(NodeId),
    #[error("it has {found} replicas where the other partitions have {expected}")]
    UnevenReplicationFactor { found: usize, expected: usize },
    #[error("assignments must be given for partitions 0..n in order")]
    NotDense,
}

impl From<PublishError> for TopicError {
    fn from(e: PublishError) -> Self {
        match e {
            PublishError::Store(MetadataError::TopicExists(name)) => {
                TopicError::AlreadyExists(name)
            }
            PublishError::Store(MetadataError::UnknownTopic(name)) => TopicError::Unknown(name),
            PublishError::Store(other) => TopicError::Metadata(other),
            PublishError::Apply(e) => TopicError::Apply(e),
            e @ PublishError::Following => TopicError::Internal(e.to_string()),
        }
    }
}

/// A leader's request to change a partition's ISR (Kafka's AlterPartition, key 56, in the broker's terms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterPartitionRequest {
    pub topic: String,
    pub partition: i32,
    pub leader_id: NodeId,
    /// The leader epoch and partition epoch the leader computed the change under.
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub new_isr: Vec<NodeId>,
}

/// Why an ISR change was refused; each maps to Kafka's AlterPartition error. Crosses the controller
/// listener, so it carries only data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum AlterPartitionError {
    #[error("partition {topic}-{partition} does not exist")]
    UnknownTopicOrPartition { topic: String, partition: i32 },
    /// FENCED_LEADER_EPOCH: the requester is not the leader of the current epoch.
    #[error("leader {leader_id} epoch {requested} is not the current leader {current_leader} epoch {current}")]
    FencedLeaderEpoch {
        leader_id: NodeId,
        requested: i32,
        current_leader: NodeId,
        current: i32,
    },
    /// INVALID_UPDATE_VERSION: the change was computed on an older registration.
    #[error("partition epoch {requested} is not the current {current}")]
    InvalidUpdateVersion { requested: i32, current: i32 },
    /// INELIGIBLE_REPLICA: a new ISR member is not a replica, or its broker is fenced or unregistered.
    #[error("broker {0} cannot join the ISR")]
    IneligibleReplica(NodeId),
    /// INVALID_REQUEST: the leader must stay in the ISR.
    #[error("the new ISR {0:?} does not contain the leader")]
    LeaderNotInIsr(Vec<NodeId>),
    /// Storing the change failed on the active controller.
    #[error("storing the ISR change failed: {0}")]
    Store(String),
    /// No active controller took the request in time.
    #[error("no active controller: {0}")]
    Controller(String),
}

/// How the partitions of a new topic are to be placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Placement {
    /// The controller places `partitions` partitions of `replication_factor` replicas on live brokers,
    /// rack-aware ([`placement`]).
    Spread {
        partitions: i32,
        replication_factor: i16,
    },
    /// Replica lists given by the client, one per partition, in partition order.
    Assigned(Vec<Vec<NodeId>>),
}

/// Kafka's topic name rule: 1-249 characters of `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    if name.is_empty() || name.len() > 249 || name == "." || name == ".." {
        return Err(TopicError::InvalidNameLength {
            name: name.to_owned(),
        });
    }
    if let Some(character) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(TopicError::InvalidNameCharacter {
            name: name.to_owned(),
            character,
        });
    }
    Ok(())
}

/// Decides metadata changes. Every broker has one: in single-node mode it decides and stores changes
/// itself; in a cluster the one on the active controller (the Raft leader) decides, and the others forward
/// each operation to it ([`calls`]) and return once their own image has caught up with the result.
#[derive(Debug)]
pub struct Controller {
    /// The image decisions are made on, and the sink of changes in single-node mode.
    publisher: Arc<MetadataPublisher>,
    /// Set in a cluster: the metadata quorum changes are written to, and the way to the active controller.
    quorum: Option<QuorumLink>,
    /// Serializes topic changes, so a validation and the change it allows see the same image.
    topic_admin: tokio::sync::Mutex<()>,
    producer_ids: producer_ids::ProducerIds,
    liveness: liveness::Liveness,
}

impl Controller {
    /// A single-node controller: changes go straight to the local store.
    pub fn new(publisher: Arc<MetadataPublisher>) -> Self {
        Self::build(publisher, None, liveness::LivenessSettings::default())
    }

    /// A cluster member's controller: decisions are made by the active controller and stored in the quorum.
    pub fn clustered(
        publisher: Arc<MetadataPublisher>,
        quorum: QuorumLink,
        settings: liveness::LivenessSettings,
    ) -> Self {
        Self::build(publisher, Some(quorum), settings)
    }

    fn build(
        publisher: Arc<MetadataPublisher>,
        quorum: Option<QuorumLink>,
        settings: liveness::LivenessSettings,
    ) -> Self {
        Self {
            publisher,
            quorum,
            topic_admin: tokio::sync::Mutex::new(()),
            producer_ids: producer_ids::ProducerIds::default(),
            liveness: liveness::Liveness::new(settings),
        }
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.publisher.image()
    }

    /// Stores `changes` as one unit and returns the image after them and, in a cluster, the log index
    /// of their entry (0 in single-node mode). Only the active controller calls this.
    async fn submit(
        &self,
        changes: Vec<MetadataChange>,
    ) -> Result<(Arc<MetadataImage>, u64), TopicError> {
        match &self.quorum {
            None => {
                let mut image = self.publisher.image();
                for change in changes {
                    image = self.publisher.submit(change).map_err(TopicError::from)?;
                }
                Ok((image, 0))
            }
            Some(link) => {
                let index = link.write(changes).await?;
                Ok((self.publisher.image(), index))
            }
        }
    }

    /// Creates a topic: validates, places its replicas and records it. Returns the topic as it was (or, with
    /// `validate_only`, would be) created.
    pub async fn create_topic(
        &self,
        name: &str,
        placement: Placement,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<TopicMetadata, TopicError> {
        let call = ControllerCall::CreateTopic {
            name: name.to_owned(),
            placement,
            configs,
            validate_only,
        };
        match self.call(call).await? {
            CallOutput::Topic(topic) => Ok(topic),
            other => Err(calls::unexpected(&other)),
        }
    }

    async fn create_topic_here(
        &self,
        name: &str,
        placement: Placement,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(CallOutput, u64), TopicError> {
        validate_topic_name(name)?;
        for (key, value) in &configs {
            validate_topic_config(key, value)?;
        }
        let _admin = self.topic_admin.lock().await;
        let image = self.image();
        if image.topics.contains_key(name) {
            return Err(TopicError::AlreadyExists(name.to_owned()));
        }
        let partitions = match placement {
            Placement::Spread {
                partitions,
                replication_factor,
            } => {
                if !(1..=MAX_PARTITIONS).contains(&partitions) {
                    return Err(TopicError::InvalidPartitionCount(partitions));
                }
                placement::place_partitions(&image, name, &[], partitions, replication_factor)?
            }
            Placement::Assigned(assignments) => {
                let count = i32::try_from(assignments.len()).unwrap_or(i32::MAX);
                if !(1..=MAX_PARTITIONS).contains(&count) {
                    return Err(TopicError::InvalidPartitionCount(count));
                }
                check_assignments(&image, &assignments, None)?;
                assignments
                    .into_iter()
                    .map(PartitionRegistration::new)
                    .collect()
            }
        };
        let topic = TopicMetadata {
            name: name.to_owned(),
            id: Uuid::new_v4(),
            replication_factor: i16::try_from(partitions[0].replicas.len()).unwrap_or(i16::MAX),
            partitions,
            configs,
        };
        if validate_only {
            return Ok((CallOutput::Topic(topic), 0));
        }
        let (_, index) = self
            .submit(vec![MetadataChange::CreateTopic(topic.clone())])
            .await?;
        tracing::info!(
            topic = name,
            partitions = topic.partition_count(),
            "topic created"
        );
        Ok((CallOutput::Topic(topic), index))
    }

    /// Grows a topic to `total` partitions, placed like its existing ones or as `assignments` say.
    pub async fn create_partitions(
        &self,
        name: &str,
        total: i32,
        assignments: Option<Vec<Vec<NodeId>>>,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let call = ControllerCall::CreatePartitions {
            name: name.to_owned(),
            total,
            assignments,
            validate_only,
        };
        self.call(call).await.map(drop)
    }

    async fn create_partitions_here(
        &self,
        name: &str,
        total: i32,
        assignments: Option<Vec<Vec<NodeId>>>,
        validate_only: bool,
    ) -> Result<(CallOutput, u64), TopicError> {
        let _admin = self.topic_admin.lock().await;
        let image = self.image();
        let topic = image
            .topics
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_owned()))?;
        let current = topic.partition_count();
        if total <= current || total > MAX_PARTITIONS {
            return Err(TopicError::PartitionsNotIncreasing {
                name: name.to_owned(),
                current,
                requested: total,
            });
        }
        let added = match assignments {
            Some(assignments) => {
                check_assignments(&image, &assignments, Some(topic.replication_factor))?;
                if i64::try_from(assignments.len()).ok() != Some(i64::from(total - current)) {
                    return Err(TopicError::InvalidAssignment {
                        partition: current,
                        problem: AssignmentProblem::NotDense,
                    });
                }
                assignments
                    .into_iter()
                    .map(PartitionRegistration::new)
                    .collect()
            }
            None => placement::place_partitions(
                &image,
                name,
                &topic.partitions,
                total - current,
                topic.replication_factor,
            )?,
        };
        if validate_only {
            return Ok((CallOutput::Done, 0));
        }
        let (_, index) = self
            .submit(vec![MetadataChange::CreatePartitions {
                name: name.to_owned(),
                added,
            }])
            .await?;
        tracing::info!(topic = name, partitions = total, "partitions added");
        Ok((CallOutput::Done, index))
    }

    /// Deletes a topic from the metadata; brokers hosting its partitions delete them as they follow.
    pub async fn delete_topic(&self, name: &str) -> Result<Uuid, TopicError> {
        match self
            .call(ControllerCall::DeleteTopic {
                name: name.to_owned(),
            })
            .await?
        {
            CallOutput::TopicDeleted(id) => Ok(id),
            other => Err(calls::unexpected(&other)),
        }
    }

    async fn delete_topic_here(&self, name: &str) -> Result<(CallOutput, u64), TopicError> {
        let _admin = self.topic_admin.lock().await;
        let id = self
            .image()
            .topics
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_owned()))?
            .id;
        let (_, index) = self
            .submit(vec![MetadataChange::DeleteTopic {
                name: name.to_owned(),
            }])
            .await?;
        tracing::info!(topic = name, "topic deleted");
        Ok((CallOutput::TopicDeleted(id), index))
    }

    /// Replaces a topic's config overrides (already validated).
    pub async fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), TopicError> {
        let call = ControllerCall::SetTopicConfigs {
            name: name.to_owned(),
            configs,
        };
        self.call(call).await.map(drop)
    }

    /// Replaces the cluster-wide dynamic topic defaults (already validated).
    pub async fn set_broker_configs(
        &self,
        configs: BTreeMap<String, String>,
    ) -> Result<(), TopicError> {
        self.call(ControllerCall::SetBrokerConfigs { configs })
            .await
            .map(drop)
    }

    /// Replaces broker `id`'s per-broker dynamic configs (already validated).
    pub async fn set_node_configs(
        &self,
        id: NodeId,
        configs: BTreeMap<String, String>,
    ) -> Result<(), TopicError> {
        self.call(ControllerCall::SetNodeConfigs { id, configs })
            .await
            .map(drop)
    }

    /// Applies validated client quota alterations together.
    pub async fn alter_client_quotas(
        &self,
        alterations: Vec<(crate::quota::QuotaEntity, crate::quota::Alteration)>,
    ) -> Result<(), TopicError> {
        self.call(ControllerCall::AlterClientQuotas { alterations })
            .await
            .map(drop)
    }

    async fn set_configs_here(
        &self,
        change: MetadataChange,
    ) -> Result<(CallOutput, u64), TopicError> {
        let _admin = self.topic_admin.lock().await;
        let (_, index) = self.submit(vec![change]).await?;
        Ok((CallOutput::Done, index))
    }

    /// AlterPartition: checks a leader's proposed ISR against the current registration and commits it as a
    /// `ChangePartition` (the store bumps the partition epoch). The leader applies the new ISR when the
    /// published registration reaches it, not when this returns.
    pub async fn alter_partition(
        &self,
        request: AlterPartitionRequest,
    ) -> Result<PartitionRegistration, AlterPartitionError> {
        match self.call(ControllerCall::AlterPartition(request)).await {
            Ok(CallOutput::Partition(result)) => result,
            Ok(other) => Err(AlterPartitionError::Controller(
                calls::unexpected(&other).to_string(),
            )),
            Err(e) => Err(AlterPartitionError::Controller(crate::error_chain(&e))),
        }
    }

    async fn alter_partition_here(
        &self,
        request: AlterPartitionRequest,
    ) -> Result<(CallOutput, u64), TopicError> {
        let (result, index) = match self.decide_alter_partition(request).await {
            Ok((registration, index)) => (Ok(registration), index),
            // Lost leadership mid-way: the caller retries with the new active controller.
            Err(AlterPartitionError::Controller(reason)) => {
                return Err(TopicError::ControllerUnavailable(reason))
            }
            Err(refused) => (Err(refused), 0),
        };
        Ok((CallOutput::Partition(result), index))
    }

    async fn decide_alter_partition(
        &self,
        request: AlterPartitionRequest,
    ) -> Result<(PartitionRegistration, u64), AlterPartitionError> {
        let _admin = self.topic_admin.lock().await;
        let image = self.image();
        let current = image
            .partition(&request.topic, request.partition)
            .ok_or_else(|| AlterPartitionError::UnknownTopicOrPartition {
                topic: request.topic.clone(),
                partition: request.partition,
            })?;
        if current.leader != request.leader_id || current.leader_epoch != request.leader_epoch {
            return Err(AlterPartitionError::FencedLeaderEpoch {
                leader_id: request.leader_id,
                requested: request.leader_epoch,
                current_leader: current.leader,
                current: current.leader_epoch,
            });
        }
        if current.partition_epoch != request.partition_epoch {
            return Err(AlterPartitionError::InvalidUpdateVersion {
                requested: request.partition_epoch,
                current: current.partition_epoch,
            });
        }
        if !request.new_isr.contains(&request.leader_id) {
            return Err(AlterPartitionError::LeaderNotInIsr(request.new_isr));
        }
        for member in &request.new_isr {
            let joining = !current.isr.contains(member);
            let eligible =
                current.replicas.contains(member) && (!joining || image.eligible_replica(*member));
            if !eligible {
                return Err(AlterPartitionError::IneligibleReplica(*member));
            }
        }
        // An ISR that now holds a move's whole target completes the move in the same change (Kafka's
        // PartitionChangeBuilder does so on every AlterPartition).
        let change = reassignment::isr_change(&image, current, request.new_isr.clone());
        let completes_move = change.replicas.is_some();
        let (image, index) = self
            .submit(vec![MetadataChange::ChangePartition {
                topic: request.topic.clone(),
                partition: request.partition,
                change,
            }])
            .await
            .map_err(|e| match e {
                TopicError::ControllerUnavailable(reason) => {
                    AlterPartitionError::Controller(reason)
                }
                other => AlterPartitionError::Store(crate::error_chain(&other)),
            })?;
        tracing::info!(topic = %request.topic, partition = request.partition, isr = ?request.new_isr, "ISR changed");
        if completes_move {
            tracing::info!(topic = %request.topic, partition = request.partition, "partition reassignment completed");
        }
        let registration = image
            .partition(&request.topic, request.partition)
            .cloned()
            .ok_or(AlterPartitionError::UnknownTopicOrPartition {
                topic: request.topic,
                partition: request.partition,
            })?;
        Ok((registration, index))
    }

    async fn allocate_producer_ids_here(&self) -> Result<(CallOutput, u64), TopicError> {
        // The admin lock makes the start read and the reservation one step.
        let _admin = self.topic_admin.lock().await;
        let start = self.image().next_producer_id;
        let (image, index) = self
            .submit(vec![MetadataChange::AllocateProducerIds {
                count: PRODUCER_ID_BLOCK,
            }])
            .await?;
        debug_assert!(image.next_producer_id >= start + PRODUCER_ID_BLOCK);
        Ok((
            CallOutput::ProducerIds {
                start,
                count: PRODUCER_ID_BLOCK,
            },
            index,
        ))
    }
}

/// Checks client-given replica lists: every broker live and named once per partition, the same number of
/// replicas everywhere (`expected` when the topic has a replication factor already).
fn check_assignments(
    image: &MetadataImage,
    assignments: &[Vec<NodeId>],
    expected: Option<i16>,
) -> Result<(), TopicError> {
    let expected = expected
        .and_then(|f| usize::try_from(f).ok())
        .or_else(|| assignments.first().map(Vec::len));
    for (partition, replicas) in assignments.iter().enumerate() {
        let invalid = |problem| TopicError::InvalidAssignment {
            partition: i32::try_from(partition).unwrap_or(i32::MAX),
            problem,
        };
        if replicas.is_empty() {
            return Err(invalid(AssignmentProblem::Empty));
        }
        let mut seen = BTreeSet::new();
        for broker in replicas {
            if !seen.insert(*broker) {
                return Err(invalid(AssignmentProblem::Duplicate(*broker)));
            }
            if image.live_broker(*broker).is_none() {
                return Err(invalid(AssignmentProblem::UnknownBroker(*broker)));
            }
        }
        if let Some(expected) = expected.filter(|e| *e != replicas.len()) {
            return Err(invalid(AssignmentProblem::UnevenReplicationFactor {
                found: replicas.len(),
                expected,
            }));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cluster::image::BrokerRegistration;

    fn cluster(ids: &[NodeId]) -> MetadataImage {
        MetadataImage {
            brokers: ids
                .iter()
                .map(|id| (*id, BrokerRegistration::bare(*id, 0)))
                .collect(),
            ..MetadataImage::default()
        }
    }

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

    #[test]
    fn assignments_must_name_live_distinct_brokers_evenly() {
        let image = cluster(&[1, 2]);
        assert!(check_assignments(&image, &[vec![1, 2], vec![2, 1]], None).is_ok());
        let problem =
            |assignments: &[Vec<NodeId>]| match check_assignments(&image, assignments, None) {
                Err(TopicError::InvalidAssignment { problem, .. }) => problem,
                other => panic!("expected an invalid assignment, got {other:?}"),
            };
        assert_eq!(problem(&[vec![]]), AssignmentProblem::Empty);
        assert_eq!(problem(&[vec![1, 1]]), AssignmentProblem::Duplicate(1));
        assert_eq!(problem(&[vec![3]]), AssignmentProblem::UnknownBroker(3));
        assert_eq!(
            problem(&[vec![1], vec![1, 2]]),
            AssignmentProblem::UnevenReplicationFactor {
                found: 2,
                expected: 1
            }
        );
    }
}
