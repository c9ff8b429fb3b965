//! The replica manager (Kafka's `ReplicaManager`): follows the metadata image. For every published delta it
//! opens the partitions that gained a replica here, makes each local replica leader or follower as its
//! registration says, applies config changes to the open logs, and deletes the replicas of deleted topics.
//! Handlers find partitions through it, and only leaders serve produce and consume.
//!
//! It never changes the metadata. Must never hold a lock across I/O: the log manager owns the map.

use std::{collections::BTreeMap, sync::Arc};

use crate::{
    cluster::{
        image::{MetadataDelta, MetadataImage, NodeId, TopicMetadata},
        publisher::MetadataSubscriber,
    },
    config::resolve_log_config,
    log::LogConfig,
    log_manager::{LogManager, LogManagerError},
    partition::Partition,
};

/// Why a partition cannot serve a leader's request here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotServed {
    #[error("partition {topic}-{partition} is not hosted here")]
    UnknownTopicOrPartition { topic: String, partition: i32 },
    #[error("this broker does not lead {topic}-{partition}")]
    NotLeader { topic: String, partition: i32 },
}

/// Partitions of one delta that could not be opened here.
#[derive(Debug, thiserror::Error)]
#[error("{} partition(s) could not be opened", failures.len())]
pub struct ApplyFailures {
    #[source]
    pub first: Box<LogManagerError>,
    pub failures: Vec<(String, i32)>,
}

#[derive(Debug)]
pub struct ReplicaManager {
    local: NodeId,
    logs: Arc<LogManager>,
    /// Static broker defaults of topic configs, below the image's dynamic ones.
    topic_defaults: BTreeMap<String, String>,
}

impl ReplicaManager {
    pub fn new(
        local: NodeId,
        logs: Arc<LogManager>,
        topic_defaults: BTreeMap<String, String>,
    ) -> Self {
        Self {
            local,
            logs,
            topic_defaults,
        }
    }

    pub fn local_id(&self) -> NodeId {
        self.local
    }

    /// The local replica of a partition, whatever its role.
    pub fn partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        self.logs.get(topic, index)
    }

    /// The local replica of a partition if it leads: what produce, consume and offset lookups need.
    pub fn leader(&self, topic: &str, index: i32) -> Result<Arc<Partition>, NotServed> {
        let partition =
            self.partition(topic, index)
                .ok_or_else(|| NotServed::UnknownTopicOrPartition {
                    topic: topic.to_owned(),
                    partition: index,
                })?;
        if !partition.is_leader() {
            return Err(NotServed::NotLeader {
                topic: topic.to_owned(),
                partition: index,
            });
        }
        Ok(partition)
    }

    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.logs.all()
    }

    pub fn partition_count(&self) -> usize {
        self.logs.count()
    }

    pub fn log_config(&self, image: &MetadataImage, topic: &TopicMetadata) -> LogConfig {
        resolve_log_config(&topic.configs, &image.broker_configs, &self.topic_defaults)
    }

    fn apply_delta(
        &self,
        delta: &MetadataDelta,
        image: &MetadataImage,
    ) -> Result<(), ApplyFailures> {
        for topic in &delta.deleted_topics {
            for index in 0..topic.partition_count() {
                let hosted = self.partition(&topic.name, index);
                if hosted.is_some_and(|p| p.topic_id == topic.id) {
                    self.logs.delete_partition(&topic.name, index);
                }
            }
        }
        let mut failures = Vec::new();
        let mut first = None;
        for changed in &delta.changed_partitions {
            let registration = &changed.registration;
            let hosted = self.partition(&changed.topic, changed.index);
            if hosted
                .as_ref()
                .is_some_and(|p| p.topic_id != changed.topic_id)
                || (hosted.is_some() && !registration.replicas.contains(&self.local))
            {
                // An older topic's replica under the same name, or a replica moved off this broker.
                self.logs.delete_partition(&changed.topic, changed.index);
            }
            if !registration.replicas.contains(&self.local) {
                continue;
            }
            let partition = match self.partition(&changed.topic, changed.index) {
                Some(partition) => partition,
                None => {
                    let Some(topic) = image.topics.get(&changed.topic) else {
                        continue;
                    };
                    match self.logs.open_partition(
                        &changed.topic,
                        changed.topic_id,
                        changed.index,
                        self.log_config(image, topic),
                    ) {
                        Ok(partition) => partition,
                        Err(e) => {
                            failures.push((changed.topic.clone(), changed.index));
                            first.get_or_insert(e);
                            continue;
                        }
                    }
                }
            };
            if registration.leader == self.local {
                if let Err(e) =
                    partition.become_leader(self.local, registration, crate::clock::now_ms())
                {
                    failures.push((changed.topic.clone(), changed.index));
                    first.get_or_insert(LogManagerError::OpenPartition {
                        topic: changed.topic.clone(),
                        partition: changed.index,
                        source: e,
                    });
                }
            } else {
                partition.become_follower(
                    registration.leader,
                    registration.leader_epoch,
                    registration.partition_epoch,
                );
            }
        }
        if delta.broker_configs_changed || !delta.changed_topic_configs.is_empty() {
            for partition in self.all_partitions() {
                let affected = delta.broker_configs_changed
                    || delta.changed_topic_configs.contains(&partition.topic);
                if let Some(topic) = image.topics.get(&partition.topic).filter(|_| affected) {
                    partition.set_config(self.log_config(image, topic));
                }
            }
        }
        match first {
            Some(first) => Err(ApplyFailures {
                first: Box::new(first),
                failures,
            }),
            None => Ok(()),
        }
    }
}

impl MetadataSubscriber for ReplicaManager {
    fn name(&self) -> &'static str {
        "replica manager"
    }

    fn apply(
        &self,
        delta: &MetadataDelta,
        image: &Arc<MetadataImage>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.apply_delta(delta, image).map_err(Into::into)
    }
}
