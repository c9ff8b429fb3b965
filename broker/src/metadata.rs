//! Cluster metadata: topics (names, ids, partition counts, config overrides), dynamic broker configs and the
//! producer id counter.
//!
//! Owns the [`MetadataStore`] boundary. Handlers read an immutable [`MetadataImage`] and submit
//! [`MetadataChange`]s; they never write metadata any other way, so a replicated metadata log (a Raft quorum of
//! brokers) can later replace [`LocalMetadataStore`] without touching them. Must never touch partition data.

use std::{
    collections::BTreeMap,
    fs::{self, File},
    io::Write,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
    #[error("writing metadata snapshot {path}")]
    Persist {
        path: PathBuf,
        source: std::io::Error,
    },
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TopicMetadata {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
    pub replication_factor: i16,
    /// Topic config overrides (Kafka names), validated before they are stored.
    pub configs: BTreeMap<String, String>,
}

/// An immutable view of all metadata at one point. Cheap to share (`Arc`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MetadataImage {
    pub cluster_id: String,
    pub topics: BTreeMap<String, TopicMetadata>,
    /// Cluster-wide dynamic defaults for topic configs (IncrementalAlterConfigs on the broker resource).
    pub broker_configs: BTreeMap<String, String>,
    /// Next producer id to hand out; ids below it were given out already, possibly before a crash.
    pub next_producer_id: i64,
}

impl MetadataImage {
    pub fn topic_by_id(&self, id: Uuid) -> Option<&TopicMetadata> {
        self.topics.values().find(|t| t.id == id)
    }
}

/// One change to the metadata, shaped like a record of a metadata log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MetadataChange {
    CreateTopic(TopicMetadata),
    DeleteTopic {
        name: String,
    },
    CreatePartitions {
        name: String,
        total: i32,
    },
    /// Replaces the whole override map of a topic (the handler computes the new map).
    SetTopicConfigs {
        name: String,
        configs: BTreeMap<String, String>,
    },
    SetBrokerConfigs {
        configs: BTreeMap<String, String>,
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
        MetadataChange::CreatePartitions { name, total } => {
            let topic = next
                .topics
                .get_mut(&name)
                .ok_or_else(|| MetadataError::UnknownTopic(name.clone()))?;
            if total <= topic.partitions {
                return Err(MetadataError::PartitionsNotIncreasing {
                    name,
                    current: topic.partitions,
                    requested: total,
                });
            }
            topic.partitions = total;
        }
        MetadataChange::SetTopicConfigs { name, configs } => {
            let topic = next
                .topics
                .get_mut(&name)
                .ok_or(MetadataError::UnknownTopic(name))?;
            topic.configs = configs;
        }
        MetadataChange::SetBrokerConfigs { configs } => next.broker_configs = configs,
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

impl LocalMetadataStore {
    /// Loads the snapshot from `data_dir`, or starts a new cluster with a fresh id.
    pub fn open(data_dir: &Path) -> Result<Self, MetadataError> {
        let path = data_dir.join(SNAPSHOT_FILE);
        let image = match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| MetadataError::Decode {
                    path: path.clone(),
                    source,
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let image = MetadataImage {
                    cluster_id: new_cluster_id(),
                    next_producer_id: 1000,
                    ..MetadataImage::default()
                };
                persist(&path, &image)?;
                image
            }
            Err(source) => return Err(MetadataError::Load { path, source }),
        };
        Ok(Self {
            path,
            current: Mutex::new(Arc::new(image)),
        })
    }
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
        let next = apply_change(&current, change)?;
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
    let err = |source| MetadataError::Persist {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(image).map_err(|e| err(std::io::Error::other(e)))?;
    let mut file = File::create(&tmp).map_err(err)?;
    file.write_all(&bytes).map_err(err)?;
    file.sync_all().map_err(err)?;
    fs::rename(&tmp, path).map_err(err)?;
    if let Some(dir) = path.parent() {
        File::open(dir).and_then(|d| d.sync_all()).map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn topic(name: &str, partitions: i32) -> TopicMetadata {
        TopicMetadata {
            name: name.to_owned(),
            id: Uuid::new_v4(),
            partitions,
            replication_factor: 1,
            configs: BTreeMap::new(),
        }
    }

    #[test]
    fn changes_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalMetadataStore::open(dir.path()).unwrap();
        let cluster_id = store.image().cluster_id.clone();
        assert_eq!(cluster_id.len(), 22);
        store
            .apply(MetadataChange::CreateTopic(topic("orders", 3)))
            .unwrap();
        store
            .apply(MetadataChange::CreatePartitions {
                name: "orders".into(),
                total: 6,
            })
            .unwrap();
        store
            .apply(MetadataChange::AllocateProducerIds { count: 100 })
            .unwrap();
        drop(store);
        let reopened = LocalMetadataStore::open(dir.path()).unwrap();
        let image = reopened.image();
        assert_eq!(image.cluster_id, cluster_id);
        assert_eq!(image.topics["orders"].partitions, 6);
        assert_eq!(image.next_producer_id, 1100);
    }

    #[test]
    fn invalid_changes_leave_the_image_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalMetadataStore::open(dir.path()).unwrap();
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
                total: 2
            }),
            Err(MetadataError::PartitionsNotIncreasing {
                current: 3,
                requested: 2,
                ..
            })
        ));
        assert!(matches!(
            store.apply(MetadataChange::DeleteTopic { name: "b".into() }),
            Err(MetadataError::UnknownTopic(_))
        ));
        assert_eq!(store.image().topics["a"].partitions, 3);
    }
}
