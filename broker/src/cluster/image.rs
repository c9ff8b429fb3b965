//! The metadata image: an immutable view of the whole cluster's metadata at one point (brokers and their
//! endpoints, topics with each partition's registration, dynamic configs, the producer id counter), and the
//! delta between two images that the publisher hands to whoever follows the metadata.
//!
//! Handlers answer leader, ISR, epochs, coordinator and controller only from one image per request, so a
//! response never mixes two versions. Must never touch partition data or the disk.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A broker's id (Kafka's `node.id`).
pub type NodeId = i32;

/// Kafka's "no leader" sentinel in Metadata and partition registrations.
pub const NO_LEADER: NodeId = -1;

/// One listener a broker accepts clients on, as it advertises it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Endpoint {
    /// The listener name (`PLAINTEXT`, `CLIENT`, ...), as in Kafka's `listeners`.
    pub listener: String,
    pub host: String,
    pub port: i32,
    pub security_protocol: String,
}

/// A broker as the metadata knows it (Kafka's `RegisterBrokerRecord`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub id: NodeId,
    /// Bumped on every registration, so requests from an older incarnation can be told apart.
    pub epoch: i64,
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
    /// A fenced broker leads nothing and is not offered to clients.
    pub fenced: bool,
    /// The broker reported that its data directory is out of space: it stays listed and serves reads, but
    /// neither joins an ISR nor is elected leader until it reports space again. Absent in metadata written
    /// before it existed.
    #[serde(default)]
    pub storage_full: bool,
}

#[cfg(test)]
impl BrokerRegistration {
    /// A live broker with no endpoints or rack, for test images.
    pub(crate) fn bare(id: NodeId, epoch: i64) -> Self {
        Self {
            id,
            epoch,
            endpoints: Vec::new(),
            rack: None,
            fenced: false,
            storage_full: false,
        }
    }
}

impl BrokerRegistration {
    /// The endpoint of `listener`, or the first one when the broker has no listener of that name.
    pub fn endpoint(&self, listener: &str) -> Option<&Endpoint> {
        self.endpoints
            .iter()
            .find(|e| e.listener == listener)
            .or_else(|| self.endpoints.first())
    }
}

/// Where one partition lives and who leads it (Kafka's `PartitionRecord` / `PartitionChangeRecord`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartitionRegistration {
    /// Assigned replicas, preferred leader first.
    pub replicas: Vec<NodeId>,
    /// In-sync replicas, a subset of `replicas`.
    pub isr: Vec<NodeId>,
    /// [`NO_LEADER`] when no replica can lead.
    pub leader: NodeId,
    /// Bumped on every leader change; clients and followers fence stale leaders with it.
    pub leader_epoch: i32,
    /// Bumped on every change of this registration; fences stale ISR updates.
    pub partition_epoch: i32,
    /// While a reassignment moves the partition (KIP-455): the replicas being added, which catch up as
    /// followers outside the ISR. `replicas` is then the target followed by `removing_replicas`. Empty
    /// when nothing moves, and absent in metadata written before reassignments existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adding_replicas: Vec<NodeId>,
    /// While a reassignment moves the partition: the replicas that leave once the target is in sync.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing_replicas: Vec<NodeId>,
}

impl PartitionRegistration {
    /// A new partition led by the first of `replicas`, with every replica in sync.
    pub fn new(replicas: Vec<NodeId>) -> Self {
        Self {
            leader: replicas.first().copied().unwrap_or(NO_LEADER),
            isr: replicas.clone(),
            replicas,
            leader_epoch: 0,
            partition_epoch: 0,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        }
    }

    /// True while a reassignment is moving this partition.
    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// Replicas on brokers that are not registered or fenced.
    pub fn offline_replicas(&self, image: &MetadataImage) -> Vec<NodeId> {
        self.replicas
            .iter()
            .copied()
            .filter(|id| image.brokers.get(id).is_none_or(|b| b.fenced))
            .collect()
    }
}

/// The part of a [`PartitionRegistration`] a change replaces; `None` keeps the current value.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartitionChange {
    pub replicas: Option<Vec<NodeId>>,
    pub isr: Option<Vec<NodeId>>,
    pub leader: Option<NodeId>,
    /// Absent in changes written before reassignments existed.
    #[serde(default)]
    pub adding_replicas: Option<Vec<NodeId>>,
    #[serde(default)]
    pub removing_replicas: Option<Vec<NodeId>>,
}

impl PartitionRegistration {
    /// Applies `change`: the partition epoch always moves, the leader epoch only when the leader changes.
    pub fn apply(&mut self, change: PartitionChange) {
        if let Some(replicas) = change.replicas {
            self.replicas = replicas;
        }
        if let Some(isr) = change.isr {
            self.isr = isr;
        }
        if let Some(adding) = change.adding_replicas {
            self.adding_replicas = adding;
        }
        if let Some(removing) = change.removing_replicas {
            self.removing_replicas = removing;
        }
        if let Some(leader) = change.leader {
            if leader != self.leader {
                self.leader = leader;
                self.leader_epoch += 1;
            }
        }
        self.partition_epoch += 1;
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TopicMetadata {
    pub name: String,
    pub id: Uuid,
    /// Partition registrations by index. Older snapshots stored only a count; those load as unplaced
    /// registrations that the store places when it opens them.
    #[serde(deserialize_with = "legacy::partitions")]
    pub partitions: Vec<PartitionRegistration>,
    pub replication_factor: i16,
    /// Topic config overrides (Kafka names), validated before they are stored.
    pub configs: BTreeMap<String, String>,
}

impl TopicMetadata {
    pub fn partition_count(&self) -> i32 {
        i32::try_from(self.partitions.len()).unwrap_or(i32::MAX)
    }

    pub fn partition(&self, index: i32) -> Option<&PartitionRegistration> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }
}

/// An immutable view of all metadata at one point. Cheap to share (`Arc`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MetadataImage {
    pub cluster_id: String,
    #[serde(default)]
    pub brokers: BTreeMap<NodeId, BrokerRegistration>,
    pub topics: BTreeMap<String, TopicMetadata>,
    /// Cluster-wide dynamic defaults for topic configs (IncrementalAlterConfigs on the broker resource).
    pub broker_configs: BTreeMap<String, String>,
    /// Per-broker dynamic configs (IncrementalAlterConfigs on broker resource `id`), by broker: only
    /// [`crate::config::NODE_CONFIGS`]. Absent in metadata written before they existed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_configs: BTreeMap<NodeId, BTreeMap<String, String>>,
    /// Client quotas by entity (AlterClientQuotas). Absent in metadata written before they existed.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        with = "crate::quota::serde_entries"
    )]
    pub client_quotas: crate::quota::ClientQuotas,
    /// Next producer id to hand out; ids below it were given out already, possibly before a crash.
    pub next_producer_id: i64,
    /// The active controller as the store that published this image knows it. Not part of the stored
    /// metadata: a quorum learns it from its leader, a single node is its own controller.
    #[serde(skip)]
    pub controller: Option<NodeId>,
}

impl MetadataImage {
    pub fn topic_by_id(&self, id: Uuid) -> Option<&TopicMetadata> {
        self.topics.values().find(|t| t.id == id)
    }

    pub fn partition(&self, topic: &str, index: i32) -> Option<&PartitionRegistration> {
        self.topics.get(topic)?.partition(index)
    }

    /// Every partition as (topic name, index, registration), topics in name order.
    pub fn indexed_partitions(&self) -> impl Iterator<Item = (&str, i32, &PartitionRegistration)> {
        self.topics.values().flat_map(|t| {
            t.partitions
                .iter()
                .enumerate()
                .map(move |(i, p)| (t.name.as_str(), i32::try_from(i).unwrap_or(i32::MAX), p))
        })
    }

    /// Brokers that can lead and serve clients: registered and not fenced, by id.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    /// Live brokers with their endpoint for `listener`: what Metadata and DescribeCluster list.
    pub fn live_endpoints<'a>(
        &'a self,
        listener: &'a str,
    ) -> impl Iterator<Item = (&'a BrokerRegistration, &'a Endpoint)> {
        self.live_brokers()
            .filter_map(move |b| Some((b, b.endpoint(listener)?)))
    }

    /// The registration of `id` if it is live.
    pub fn live_broker(&self, id: NodeId) -> Option<&BrokerRegistration> {
        self.brokers.get(&id).filter(|b| !b.fenced)
    }

    /// True when `id` may join an ISR or be elected leader: live, and able to write.
    pub fn eligible_replica(&self, id: NodeId) -> bool {
        self.live_broker(id).is_some_and(|b| !b.storage_full)
    }

    /// True when `id` has `tributary.broker.draining=true`: it gets no new replicas and its own move away.
    pub fn draining(&self, id: NodeId) -> bool {
        self.node_configs
            .get(&id)
            .and_then(|c| c.get(crate::config::DRAINING_CONFIG))
            .is_some_and(|v| v == "true")
    }

    /// True when `id` has `tributary.broker.filling=true`: the controller moves replicas onto it until the
    /// replica counts are even.
    pub fn filling(&self, id: NodeId) -> bool {
        self.node_configs
            .get(&id)
            .and_then(|c| c.get(crate::config::FILLING_CONFIG))
            .is_some_and(|v| v == "true")
    }
}

/// A partition whose registration is new or changed, named by topic id so that a topic deleted and
/// re-created under the same name is never mistaken for the old one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedPartition {
    pub topic: String,
    pub topic_id: Uuid,
    pub index: i32,
    pub registration: PartitionRegistration,
}

/// What changed between two images, as those who follow the metadata (the replica manager) need it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetadataDelta {
    /// Topics no longer in the image (or re-created under a new id), as they were.
    pub deleted_topics: Vec<TopicMetadata>,
    /// Partitions that are new or whose registration changed.
    pub changed_partitions: Vec<ChangedPartition>,
    /// Topics (still present) whose config overrides changed.
    pub changed_topic_configs: BTreeSet<String>,
    pub broker_configs_changed: bool,
    pub brokers_changed: bool,
}

impl MetadataDelta {
    /// The delta that takes `old` to `new`. From the empty image it describes everything (a broker's start).
    pub fn between(old: &MetadataImage, new: &MetadataImage) -> Self {
        let mut delta = MetadataDelta {
            broker_configs_changed: old.broker_configs != new.broker_configs,
            brokers_changed: old.brokers != new.brokers,
            ..Self::default()
        };
        for (name, before) in &old.topics {
            if new
                .topics
                .get(name)
                .is_none_or(|after| after.id != before.id)
            {
                delta.deleted_topics.push(before.clone());
            }
        }
        for (name, after) in &new.topics {
            let before = old.topics.get(name).filter(|b| b.id == after.id);
            if before.is_some_and(|b| b.configs != after.configs) {
                delta.changed_topic_configs.insert(name.clone());
            }
            for (index, registration) in after.partitions.iter().enumerate() {
                let unchanged = before
                    .and_then(|b| b.partitions.get(index))
                    .is_some_and(|r| r == registration);
                if !unchanged {
                    delta.changed_partitions.push(ChangedPartition {
                        topic: name.clone(),
                        topic_id: after.id,
                        index: i32::try_from(index).unwrap_or(i32::MAX),
                        registration: registration.clone(),
                    });
                }
            }
        }
        delta
    }

    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

mod legacy {
    use serde::{Deserialize, Deserializer};

    use super::{PartitionRegistration, NO_LEADER};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Partitions {
        Count(i32),
        Registrations(Vec<PartitionRegistration>),
    }

    /// Accepts the partition count of snapshots written before partitions had registrations.
    pub(super) fn partitions<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<PartitionRegistration>, D::Error> {
        Ok(match Partitions::deserialize(deserializer)? {
            Partitions::Registrations(registrations) => registrations,
            Partitions::Count(count) => (0..count.max(0))
                .map(|_| PartitionRegistration {
                    leader: NO_LEADER,
                    ..PartitionRegistration::new(Vec::new())
                })
                .collect(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn topic(name: &str, partitions: usize) -> TopicMetadata {
        TopicMetadata {
            name: name.to_owned(),
            id: Uuid::new_v4(),
            partitions: vec![PartitionRegistration::new(vec![1]); partitions],
            replication_factor: 1,
            configs: BTreeMap::new(),
        }
    }

    fn image(topics: &[&TopicMetadata]) -> MetadataImage {
        MetadataImage {
            topics: topics
                .iter()
                .map(|t| (t.name.clone(), (*t).clone()))
                .collect(),
            ..MetadataImage::default()
        }
    }

    #[test]
    fn delta_from_empty_lists_every_partition() {
        let orders = topic("orders", 3);
        let delta = MetadataDelta::between(&MetadataImage::default(), &image(&[&orders]));
        let indexes: Vec<i32> = delta.changed_partitions.iter().map(|p| p.index).collect();
        assert_eq!(indexes, [0, 1, 2]);
        assert!(delta.deleted_topics.is_empty());
    }

    #[test]
    fn delta_has_only_what_changed() {
        let orders = topic("orders", 2);
        let before = image(&[&orders]);
        let mut grown = orders.clone();
        grown.partitions.push(PartitionRegistration::new(vec![1]));
        grown.partitions[0].apply(PartitionChange {
            isr: Some(vec![1]),
            ..PartitionChange::default()
        });
        grown.configs.insert("retention.ms".into(), "1000".into());
        let delta = MetadataDelta::between(&before, &image(&[&grown]));
        let indexes: Vec<i32> = delta.changed_partitions.iter().map(|p| p.index).collect();
        assert_eq!(indexes, [0, 2], "partition 1 did not change");
        assert_eq!(
            delta.changed_topic_configs,
            BTreeSet::from(["orders".to_owned()])
        );
        assert!(MetadataDelta::between(&before, &before).is_empty());
    }

    #[test]
    fn a_recreated_topic_is_a_deletion_and_a_creation() {
        let old = topic("orders", 1);
        let new = topic("orders", 1);
        let delta = MetadataDelta::between(&image(&[&old]), &image(&[&new]));
        assert_eq!(delta.deleted_topics, [old]);
        assert_eq!(delta.changed_partitions.len(), 1);
        assert_eq!(delta.changed_partitions[0].topic_id, new.id);
        assert!(
            delta.changed_topic_configs.is_empty(),
            "a new topic's configs are not a config change"
        );
    }

    #[test]
    fn leader_epoch_moves_only_with_the_leader() {
        let mut registration = PartitionRegistration::new(vec![1, 2, 3]);
        registration.apply(PartitionChange {
            isr: Some(vec![1, 2]),
            ..PartitionChange::default()
        });
        assert_eq!(
            (registration.leader_epoch, registration.partition_epoch),
            (0, 1)
        );
        registration.apply(PartitionChange {
            leader: Some(2),
            ..PartitionChange::default()
        });
        assert_eq!(
            (
                registration.leader,
                registration.leader_epoch,
                registration.partition_epoch
            ),
            (2, 1, 2)
        );
    }

    #[test]
    fn legacy_snapshots_with_a_partition_count_load() {
        let json = r#"{"name":"a","id":"5f0c1c5e-7a4e-4a39-9a0a-6f2b6c2f8d11","partitions":2,
                       "replication_factor":1,"configs":{}}"#;
        let topic: TopicMetadata = serde_json::from_str(json).unwrap();
        assert_eq!(topic.partition_count(), 2);
        assert!(topic.partitions.iter().all(|p| p.replicas.is_empty()));
    }
}
