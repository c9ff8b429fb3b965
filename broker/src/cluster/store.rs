//! Where metadata lives: the [`MetadataStore`] boundary, the one function that applies a [`MetadataChange`] to
//! an image, and the single-node store that keeps the image as a JSON snapshot in the data directory.
//!
//! Only the controller submits changes, and only through the publisher, so a replicated metadata log (a Raft
//! quorum of brokers) can later replace [`LocalMetadataStore`] without touching handlers. Must never touch
//! partition data.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::image::{
    BrokerRegistration, MetadataImage, NodeId, PartitionChange, PartitionRegistration,
    TopicMetadata,
};
use crate::durable::{write_atomically, DurableWriteError};

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("topic {0:?} already exists")]
    TopicExists(String),
    #[error("topic {0:?} does not exist")]
    UnknownTopic(String),
    #[error("topic {name:?} has {current} partitions; the new count {requested} must be larger")]
    PartitionsNotIncreasing {
        name: String,
        current: i32,
        requested: i32,
    },
    #[error("topic {topic:?} has no partition {partition}")]
    UnknownPartition { topic: String, partition: i32 },
    #[error("broker {0} is not registered")]
    UnknownBroker(NodeId),
    #[error("encoding the metadata snapshot")]
    Encode(#[source] serde_json::Error),
    #[error("writing metadata snapshot")]
    Persist(#[source] DurableWriteError),
    #[error("reading metadata snapshot {path}")]
    Load {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("metadata snapshot {path} is not valid JSON")]
    Decode {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// One change to the metadata, shaped like a record of a metadata log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MetadataChange {
    CreateTopic(TopicMetadata),
    DeleteTopic {
        name: String,
    },
    /// Adds partitions (already placed) after the topic's current ones.
    CreatePartitions {
        name: String,
        added: Vec<PartitionRegistration>,
    },
    /// Changes one partition's replicas, ISR or leader (Kafka's `PartitionChangeRecord`).
    ChangePartition {
        topic: String,
        partition: i32,
        change: PartitionChange,
    },
    /// Registers a broker, replacing an older registration of the same id.
    RegisterBroker(BrokerRegistration),
    /// Forgets a broker (Kafka's `UnregisterBrokerRecord`).
    UnregisterBroker {
        id: NodeId,
    },
    /// Fences or unfences a registered broker (Kafka's `FenceBrokerRecord` / `UnfenceBrokerRecord`).
    FenceBroker {
        id: NodeId,
        fenced: bool,
    },
    /// A registered broker's data directory ran out of space, or has space again (Kafka's closest is the
    /// offline log directories of KIP-858's heartbeats, but a full directory here comes back by itself).
    SetStorageFull {
        id: NodeId,
        full: bool,
    },

    /// Replaces the whole override map of a topic (the handler computes the new map).
    SetTopicConfigs {
        name: String,
        configs: BTreeMap<String, String>,
    },
    SetBrokerConfigs {
        configs: BTreeMap<String, String>,
    },
    /// Replaces the per-broker dynamic configs of broker `id` (an empty map removes them).
    SetNodeConfigs {
        id: NodeId,
        configs: BTreeMap<String, String>,
    },
    /// Sets and removes client quota values of entities, all at once (Kafka's `ClientQuotaRecord`s of one
    /// AlterClientQuotas request); already validated.
    AlterClientQuotas {
        alterations: Vec<(crate::quota::QuotaEntity, crate::quota::Alteration)>,
    },
    /// Reserves `count` producer ids starting at the image's `next_producer_id`.
    AllocateProducerIds {
        count: i64,
    },
}

/// The boundary between API handlers and wherever metadata lives. Implementations apply changes atomically
/// and durably before returning the new image.
pub trait MetadataStore: Send + Sync + std::fmt::Debug {
    fn image(&self) -> Arc<MetadataImage>;
    fn apply(&self, change: MetadataChange) -> Result<Arc<MetadataImage>, MetadataError>;
}

/// Applies a change to an image; shared by every store so the semantics cannot drift.
pub fn apply_change(
    image: &MetadataImage,
    change: MetadataChange,
) -> Result<MetadataImage, MetadataError> {
    let mut next = image.clone();
    match change {
        MetadataChange::CreateTopic(topic) => {
            if next.topics.contains_key(&topic.name) {
                return Err(MetadataError::TopicExists(topic.name));
            }
            next.topics.insert(topic.name.clone(), topic);
        }
        MetadataChange::DeleteTopic { name } => {
            next.topics
                .remove(&name)
                .ok_or(MetadataError::UnknownTopic(name))?;
        }
        MetadataChange::CreatePartitions { name, added } => {
            let topic = next
                .topics
                .get_mut(&name)
                .ok_or_else(|| MetadataError::UnknownTopic(name.clone()))?;
            if added.is_empty() {
                return Err(MetadataError::PartitionsNotIncreasing {
                    current: topic.partition_count(),
                    requested: topic.partition_count(),
                    name,
                });
            }
            topic.partitions.extend(added);
        }
        MetadataChange::ChangePartition {
            topic,
            partition,
            change,
        } => {
            let registration = next
                .topics
                .get_mut(&topic)
                .and_then(|t| {
                    usize::try_from(partition)
                        .ok()
                        .and_then(|i| t.partitions.get_mut(i))
                })
                .ok_or(MetadataError::UnknownPartition { topic, partition })?;
            registration.apply(change);
        }
        MetadataChange::RegisterBroker(mut registration) => {
            registration.epoch = next
                .brokers
                .get(&registration.id)
                .map_or(0, |old| old.epoch + 1);
            next.brokers.insert(registration.id, registration);
        }
        MetadataChange::UnregisterBroker { id } => {
            next.brokers.remove(&id);
        }
        MetadataChange::FenceBroker { id, fenced } => {
            next.brokers
                .get_mut(&id)
                .ok_or(MetadataError::UnknownBroker(id))?
                .fenced = fenced;
        }
        MetadataChange::SetStorageFull { id, full } => {
            next.brokers
                .get_mut(&id)
                .ok_or(MetadataError::UnknownBroker(id))?
                .storage_full = full;
        }

        MetadataChange::SetTopicConfigs { name, configs } => {
            let topic = next
                .topics
                .get_mut(&name)
                .ok_or(MetadataError::UnknownTopic(name))?;
            topic.configs = configs;
        }
        MetadataChange::SetBrokerConfigs { configs } => next.broker_configs = configs,
        MetadataChange::SetNodeConfigs { id, configs } => {
            if configs.is_empty() {
                next.node_configs.remove(&id);
            } else {
                next.node_configs.insert(id, configs);
            }
        }
        MetadataChange::AlterClientQuotas { alterations } => {
            crate::quota::apply_alterations(&mut next.client_quotas, &alterations)
        }
        MetadataChange::AllocateProducerIds { count } => next.next_producer_id += count.max(1),
    }
    Ok(next)
}

/// Metadata of a single-node broker kept as a JSON snapshot in the data directory, rewritten atomically
/// (temp file, fsync, rename, fsync directory) on every change. Changes are rare (topic admin), so a full
/// rewrite is cheaper than a log to compact. Thread-safe: changes are serialized by an internal mutex.
#[derive(Debug)]
pub struct LocalMetadataStore {
    path: PathBuf,
    current: Mutex<Arc<MetadataImage>>,
}

const SNAPSHOT_FILE: &str = "tributary-metadata.json";
/// Producer ids start here, as they always have on single nodes (ids below are never handed out).
pub const FIRST_PRODUCER_ID: i64 = 1000;

impl LocalMetadataStore {
    /// Loads the snapshot from `data_dir`, or starts a new cluster with a fresh id, and makes `local` the
    /// one broker of the cluster: it is registered (again, when its endpoints changed) and every partition
    /// is placed on it, which also places partitions of snapshots written before registrations existed.
    pub fn open(data_dir: &Path, local: BrokerRegistration) -> Result<Self, MetadataError> {
        let path = data_dir.join(SNAPSHOT_FILE);
        let mut image = match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| MetadataError::Decode {
                    path: path.clone(),
                    source,
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let image = MetadataImage {
                    cluster_id: new_cluster_id(),
                    next_producer_id: FIRST_PRODUCER_ID,
                    ..MetadataImage::default()
                };
                persist(&path, &image)?;
                image
            }
            Err(source) => return Err(MetadataError::Load { path, source }),
        };
        let changes = single_node_changes(&image, &local);
        if !changes.is_empty() {
            for change in changes {
                image = apply_change(&image, change)?;
            }
            persist(&path, &image)?;
        }
        image.controller = Some(local.id);
        Ok(Self {
            path,
            current: Mutex::new(Arc::new(image)),
        })
    }
}

/// What makes `image` describe a cluster of `local` alone: its registration, and every partition placed on
/// it and led by it. Empty when the image already does.
fn single_node_changes(image: &MetadataImage, local: &BrokerRegistration) -> Vec<MetadataChange> {
    let mut changes = Vec::new();
    let registered = image.brokers.get(&local.id);
    if registered.is_none_or(|r| r.endpoints != local.endpoints || r.rack != local.rack || r.fenced)
    {
        changes.push(MetadataChange::RegisterBroker(local.clone()));
    }
    for stale in image.brokers.keys().filter(|id| **id != local.id) {
        tracing::warn!(
            broker = stale,
            node_id = local.id,
            "single-node metadata names another broker; it is unregistered and its partitions move to this one"
        );
        changes.push(MetadataChange::UnregisterBroker { id: *stale });
    }
    let only_local: Vec<NodeId> = vec![local.id];
    for topic in image.topics.values() {
        for (index, registration) in topic.partitions.iter().enumerate() {
            if registration.replicas == only_local
                && registration.isr == only_local
                && registration.leader == local.id
                && !registration.is_reassigning()
            {
                continue;
            }
            changes.push(MetadataChange::ChangePartition {
                topic: topic.name.clone(),
                partition: i32::try_from(index).unwrap_or(i32::MAX),
                change: PartitionChange {
                    replicas: Some(only_local.clone()),
                    isr: Some(only_local.clone()),
                    leader: Some(local.id),
                    // A move between brokers means nothing with one broker left.
                    adding_replicas: Some(Vec::new()),
                    removing_replicas: Some(Vec::new()),
                },
            });
        }
    }
    changes
}

impl MetadataStore for LocalMetadataStore {
    fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(
            &self
                .current
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    fn apply(&self, change: MetadataChange) -> Result<Arc<MetadataImage>, MetadataError> {
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut next = apply_change(&current, change)?;
        next.controller = current.controller;
        persist(&self.path, &next)?;
        *current = Arc::new(next);
        Ok(Arc::clone(&current))
    }
}

/// Kafka cluster ids are 16 random bytes in URL-safe base64 without padding (22 characters).
fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits = Uuid::new_v4().as_u128();
    (0..22)
        .map(|i| ALPHABET[((bits >> (i * 6)) & 63) as usize] as char)
        .collect()
}

fn persist(path: &Path, image: &MetadataImage) -> Result<(), MetadataError> {
    let bytes = serde_json::to_vec_pretty(image).map_err(MetadataError::Encode)?;
    write_atomically(path, &bytes).map_err(MetadataError::Persist)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::cluster::image::Endpoint;

    fn local(id: NodeId, port: i32) -> BrokerRegistration {
        BrokerRegistration {
            endpoints: vec![Endpoint {
                listener: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port,
                security_protocol: "PLAINTEXT".into(),
            }],
            ..BrokerRegistration::bare(id, 0)
        }
    }

    fn topic(name: &str, partitions: usize) -> TopicMetadata {
        TopicMetadata {
            name: name.to_owned(),
            id: Uuid::new_v4(),
            partitions: vec![PartitionRegistration::new(vec![1]); partitions],
            replication_factor: 1,
            configs: BTreeMap::new(),
        }
    }

    #[test]
    fn changes_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalMetadataStore::open(dir.path(), local(1, 9092)).unwrap();
        let cluster_id = store.image().cluster_id.clone();
        assert_eq!(cluster_id.len(), 22);
        store
            .apply(MetadataChange::CreateTopic(topic("orders", 3)))
            .unwrap();
        store
            .apply(MetadataChange::CreatePartitions {
                name: "orders".into(),
                added: vec![PartitionRegistration::new(vec![1]); 3],
            })
            .unwrap();
        store
            .apply(MetadataChange::AllocateProducerIds { count: 100 })
            .unwrap();
        drop(store);
        let reopened = LocalMetadataStore::open(dir.path(), local(1, 9092)).unwrap();
        let image = reopened.image();
        assert_eq!(image.cluster_id, cluster_id);
        assert_eq!(image.topics["orders"].partition_count(), 6);
        assert_eq!(image.next_producer_id, 1100);
        assert_eq!(image.controller, Some(1));
        assert_eq!(
            image.brokers[&1].epoch, 0,
            "an unchanged broker is not registered again"
        );
    }

    #[test]
    fn invalid_changes_leave_the_image_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalMetadataStore::open(dir.path(), local(1, 9092)).unwrap();
        store
            .apply(MetadataChange::CreateTopic(topic("a", 3)))
            .unwrap();
        assert!(matches!(
            store.apply(MetadataChange::CreateTopic(topic("a", 1))),
            Err(MetadataError::TopicExists(_))
        ));
        assert!(matches!(
            store.apply(MetadataChange::CreatePartitions {
                name: "a".into(),
                added: Vec::new(),
            }),
            Err(MetadataError::PartitionsNotIncreasing { current: 3, .. })
        ));
        assert!(matches!(
            store.apply(MetadataChange::DeleteTopic { name: "b".into() }),
            Err(MetadataError::UnknownTopic(_))
        ));
        assert!(matches!(
            store.apply(MetadataChange::ChangePartition {
                topic: "a".into(),
                partition: 3,
                change: PartitionChange::default(),
            }),
            Err(MetadataError::UnknownPartition { partition: 3, .. })
        ));
        assert_eq!(store.image().topics["a"].partition_count(), 3);
    }

    #[test]
    fn a_new_address_or_node_id_is_registered_and_takes_every_partition() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalMetadataStore::open(dir.path(), local(1, 9092)).unwrap();
        store
            .apply(MetadataChange::CreateTopic(topic("a", 2)))
            .unwrap();
        drop(store);
        let moved = LocalMetadataStore::open(dir.path(), local(1, 19092)).unwrap();
        assert_eq!(moved.image().brokers[&1].epoch, 1);
        assert_eq!(moved.image().brokers[&1].endpoints[0].port, 19092);
        drop(moved);
        let renumbered = LocalMetadataStore::open(dir.path(), local(7, 19092)).unwrap();
        let image = renumbered.image();
        assert_eq!(
            image.brokers.keys().copied().collect::<Vec<_>>(),
            [7],
            "the old node id is no longer a broker of the cluster"
        );
        let registration = image.partition("a", 1).unwrap();
        assert_eq!(
            (
                registration.replicas.clone(),
                registration.isr.clone(),
                registration.leader
            ),
            (vec![7], vec![7], 7)
        );
        assert_eq!(
            registration.leader_epoch, 1,
            "a new leader means a new epoch"
        );
    }

    #[test]
    fn snapshots_from_before_registrations_are_placed_on_the_local_broker() {
        let dir = tempfile::tempdir().unwrap();
        let legacy = r#"{"cluster_id":"AAAAAAAAAAAAAAAAAAAAAA","topics":{"t":{"name":"t",
            "id":"5f0c1c5e-7a4e-4a39-9a0a-6f2b6c2f8d11","partitions":2,"replication_factor":1,
            "configs":{}}},"broker_configs":{},"next_producer_id":2000}"#;
        fs::write(dir.path().join(SNAPSHOT_FILE), legacy).unwrap();
        let store = LocalMetadataStore::open(dir.path(), local(3, 9092)).unwrap();
        let image = store.image();
        assert_eq!(image.next_producer_id, 2000);
        for index in 0..2 {
            assert_eq!(image.partition("t", index).unwrap().leader, 3);
        }
    }
}
