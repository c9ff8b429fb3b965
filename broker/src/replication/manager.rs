//! The replica manager (Kafka's `ReplicaManager`): follows the metadata image. For every published delta it
//! opens the partitions that gained a replica here, makes each local replica leader or follower as its
//! registration says, applies config changes to the open logs, and deletes the replicas of deleted topics.
//! Handlers find partitions through it, and only leaders serve produce and consume.
//!
//! It never changes the metadata. Must never hold a lock across I/O: the log manager owns the map.

use std::{
    collections::BTreeMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use tokio::sync::watch;

use super::{
    fetcher::FetchAssignments,
    isr::{AlterPartitionRequest, IsrProposer},
    leadership::{LeadershipEvent, LeadershipListener},
    quota::ReplicationQuotas,
};
use crate::{
    cluster::{
        image::{ChangedPartition, MetadataDelta, MetadataImage, NodeId, TopicMetadata, NO_LEADER},
        publisher::MetadataSubscriber,
    },
    config::{resolve_log_config, ReplicationConfig},
    error_chain,
    log::LogConfig,
    log_manager::{LogManager, LogManagerError},
    partition::{IsrProposal, Partition},
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
    replication: ReplicationConfig,
    /// What the follower fetchers copy, from whom.
    assignments: Arc<FetchAssignments>,
    /// The replication throttle (KIP-73) of both sides, read by the Fetch handler and the fetchers.
    quotas: ReplicationQuotas,
    /// Where leaders send ISR changes; set once the controller exists (it is built after this manager).
    isr_proposer: RwLock<Option<Arc<dyn IsrProposer>>>,
    /// The last image applied, for broker liveness in ISR expansion.
    image: RwLock<Arc<MetadataImage>>,
    /// Who hears about leadership changes (the group coordinator). A mutex rather than a lock-free cell:
    /// delivering a delta's events and replaying the current state on registration must not interleave.
    leadership_listener: std::sync::Mutex<Option<Arc<dyn LeadershipListener>>>,
    /// False on a cluster member until it is in service (registered in this incarnation, caught up with
    /// the metadata log, unfenced): until then its image may be stale (replayed from its own log at start)
    /// and may still name it leader of partitions that others lead now; it must not take writes for them.
    may_lead: std::sync::atomic::AtomicBool,
    /// Serializes applying deltas with [`ReplicaManager::start_leading`].
    applying: std::sync::Mutex<()>,
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
            replication: ReplicationConfig::default(),
            assignments: Arc::default(),
            quotas: ReplicationQuotas::default(),
            isr_proposer: RwLock::new(None),
            image: RwLock::new(Arc::default()),
            leadership_listener: std::sync::Mutex::new(None),
            may_lead: std::sync::atomic::AtomicBool::new(true),
            applying: std::sync::Mutex::new(()),
        }
    }

    /// A cluster member leads nothing until [`ReplicaManager::start_leading`].
    pub fn wait_for_service(self) -> Self {
        self.may_lead
            .store(false, std::sync::atomic::Ordering::Release);
        self
    }

    /// The member is in service: its image is current, so take up the leaderships it names.
    pub fn start_leading(&self) {
        let _applying = self
            .applying
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if self
            .may_lead
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return;
        }
        let image = self.current_image();
        let led_here = MetadataDelta {
            changed_partitions: image
                .topics
                .values()
                .flat_map(|topic| {
                    topic
                        .partitions
                        .iter()
                        .enumerate()
                        .filter(|(_, p)| p.leader == self.local)
                        .map(|(index, p)| ChangedPartition {
                            topic: topic.name.clone(),
                            topic_id: topic.id,
                            index: i32::try_from(index).unwrap_or(i32::MAX),
                            registration: p.clone(),
                        })
                })
                .collect(),
            ..MetadataDelta::default()
        };
        tracing::info!(
            partitions = led_here.changed_partitions.len(),
            "in service: taking up the leaderships the metadata names"
        );
        if let Err(e) = self.apply_delta(&led_here, &image) {
            tracing::error!(error = %error_chain(&e), "taking up leaderships failed");
        }
    }

    /// Registers the one leadership listener and replays the current role of every local replica to it,
    /// so that a listener built after the first deltas were applied (the group coordinator comes after
    /// the metadata) misses nothing. Replicas without a leader role are reported as not led.
    pub fn set_leadership_listener(&self, listener: Arc<dyn LeadershipListener>) {
        let mut slot = self
            .leadership_listener
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for partition in self.all_partitions() {
            match partition.leader_epoch_start() {
                Some((leader_epoch, _)) => {
                    listener.became_leader(&partition.topic, partition.index, leader_epoch)
                }
                None => listener.stopped_leading(&partition.topic, partition.index),
            }
        }
        *slot = Some(listener);
    }

    /// Delivers `events` in order; called after the roles they describe are in effect.
    fn publish_leadership(&self, events: &[LeadershipEvent]) {
        if events.is_empty() {
            return;
        }
        let slot = self
            .leadership_listener
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(listener) = slot.as_deref() {
            for event in events {
                event.deliver(listener);
            }
        }
    }

    /// Sets the `replica.*` settings (Kafka's defaults otherwise).
    pub fn with_replication(mut self, replication: ReplicationConfig) -> Self {
        self.quotas = ReplicationQuotas::new(
            replication.quota_window_num,
            Duration::from_secs(replication.quota_window_size_seconds),
        );
        self.replication = replication;
        self
    }

    /// The replication throttle's meters.
    pub fn quotas(&self) -> &ReplicationQuotas {
        &self.quotas
    }

    /// Where this broker's leaders propose ISR changes.
    pub fn set_isr_proposer(&self, proposer: Arc<dyn IsrProposer>) {
        *self
            .isr_proposer
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(proposer);
    }

    pub fn fetch_assignments(&self) -> Arc<FetchAssignments> {
        Arc::clone(&self.assignments)
    }

    /// The leader's address on the inter-broker listener.
    fn source_address(&self, image: &MetadataImage, leader: NodeId) -> Option<String> {
        let broker = image.brokers.get(&leader)?;
        let endpoint = broker.endpoint(&self.replication.inter_broker_listener)?;
        Some(format!("{}:{}", endpoint.host, endpoint.port))
    }

    /// The replication background work until `shutdown`: follower fetchers and the leaders' ISR checks.
    /// With nothing to follow and no replicated partition it only ticks.
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        let fetchers = tokio::spawn(super::fetcher::run(
            Arc::clone(&self),
            self.replication.clone(),
            shutdown.clone(),
        ));
        let isr = tokio::spawn(Arc::clone(&self).isr_checks(shutdown));
        let _ = fetchers.await;
        let _ = isr.await;
    }

    /// Every `replica.lag.time.max.ms / 2` (Kafka's schedule), each leader proposes the ISR change its
    /// followers' progress calls for.
    async fn isr_checks(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let lag = self.replication.lag_time_max_ms;
        let mut interval =
            tokio::time::interval(Duration::from_millis((lag / 2).clamp(10, 30_000)));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => self.check_isrs().await,
                _ = shutdown.changed() => return,
            }
        }
    }

    fn proposer(&self) -> Option<Arc<dyn IsrProposer>> {
        self.isr_proposer
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The last image applied.
    pub fn current_image(&self) -> Arc<MetadataImage> {
        Arc::clone(
            &self
                .image
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    /// One pass of ISR checks over the partitions this broker leads. Shrinking happens only here; expanding
    /// also happens on each follower fetch ([`ReplicaManager::record_follower_fetch`]), this pass catches
    /// a proposal that a refusal cleared.
    pub async fn check_isrs(&self) {
        let Some(proposer) = self.proposer() else {
            return;
        };
        let image = self.current_image();
        let lag = self.lag_time_max_ms();
        for partition in self.all_partitions() {
            let now = crate::clock::now_ms();
            let Some(proposal) =
                partition.propose_isr_change(now, lag, |id| image.eligible_replica(id))
            else {
                continue;
            };
            send_isr_proposal(proposer.as_ref(), self.local, &partition, proposal).await;
        }
    }

    /// Records a follower's fetch on the leader `partition` (see [`Partition::record_follower_fetch`]) and,
    /// as Kafka's `maybeExpandIsr` does on every fetch, proposes adding the follower to the ISR as soon as
    /// it may join. The proposal goes out in the background so the fetch is not held up; while it is
    /// pending no other is made. Returns false when `partition` does not lead here.
    pub fn record_follower_fetch(
        &self,
        partition: &Arc<Partition>,
        replica: NodeId,
        fetch_offset: i64,
        now_ms: i64,
    ) -> bool {
        if !partition.record_follower_fetch(replica, fetch_offset, now_ms) {
            return false;
        }
        let Some(proposer) = self.proposer() else {
            return true;
        };
        let image = self.current_image();
        if let Some(proposal) =
            partition.propose_isr_expansion(replica, now_ms, |id| image.eligible_replica(id))
        {
            let (partition, local) = (Arc::clone(partition), self.local);
            tokio::spawn(async move {
                send_isr_proposal(proposer.as_ref(), local, &partition, proposal).await;
            });
        }
        true
    }

    /// `replica.lag.time.max.ms`.
    pub fn lag_time_max_ms(&self) -> i64 {
        i64::try_from(self.replication.lag_time_max_ms).unwrap_or(i64::MAX)
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
        image: &Arc<MetadataImage>,
    ) -> Result<(), ApplyFailures> {
        *self
            .image
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::clone(image);
        let mut events = Vec::new();
        let not_leader = |topic: &str, partition: i32| LeadershipEvent::NotLeader {
            topic: topic.to_owned(),
            partition,
        };
        for topic in &delta.deleted_topics {
            for index in 0..topic.partition_count() {
                let hosted = self.partition(&topic.name, index);
                if hosted.is_some_and(|p| p.topic_id == topic.id) {
                    self.assignments.stop(&topic.name, index);
                    self.logs.delete_partition(&topic.name, index);
                    events.push(not_leader(&topic.name, index));
                }
            }
        }
        if delta.brokers_changed {
            for source in self.assignments.source_ids() {
                self.assignments
                    .set_address(source, self.source_address(image, source));
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
                self.assignments.stop(&changed.topic, changed.index);
                self.logs.delete_partition(&changed.topic, changed.index);
                events.push(not_leader(&changed.topic, changed.index));
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
            let may_lead = self.may_lead.load(std::sync::atomic::Ordering::Acquire);
            if registration.leader == self.local && !may_lead {
                // Possibly stale: neither lead nor follow until in service.
                self.assignments.stop(&changed.topic, changed.index);
                partition.become_follower(
                    NO_LEADER,
                    registration.leader_epoch,
                    registration.partition_epoch,
                );
                events.push(not_leader(&changed.topic, changed.index));
            } else if registration.leader == self.local {
                self.assignments.stop(&changed.topic, changed.index);
                match partition.become_leader(self.local, registration, crate::clock::now_ms()) {
                    Ok(()) => events.push(LeadershipEvent::Leader {
                        topic: changed.topic.clone(),
                        partition: changed.index,
                        leader_epoch: registration.leader_epoch,
                    }),
                    Err(e) => {
                        events.push(not_leader(&changed.topic, changed.index));
                        failures.push((changed.topic.clone(), changed.index));
                        first.get_or_insert(LogManagerError::OpenPartition {
                            topic: changed.topic.clone(),
                            partition: changed.index,
                            source: e,
                        });
                    }
                }
            } else {
                partition.become_follower(
                    registration.leader,
                    registration.leader_epoch,
                    registration.partition_epoch,
                );
                events.push(not_leader(&changed.topic, changed.index));
                if registration.leader == NO_LEADER {
                    self.assignments.stop(&changed.topic, changed.index);
                } else {
                    self.assignments.follow(
                        &changed.topic,
                        changed.index,
                        registration.leader,
                        registration.leader_epoch,
                        self.source_address(image, registration.leader),
                    );
                }
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
        self.publish_leadership(&events);
        match first {
            Some(first) => Err(ApplyFailures {
                first: Box::new(first),
                failures,
            }),
            None => Ok(()),
        }
    }
}

/// Sends one ISR proposal of leader `local`; a refused one is forgotten so a later check may propose again.
async fn send_isr_proposal(
    proposer: &dyn IsrProposer,
    local: NodeId,
    partition: &Partition,
    proposal: IsrProposal,
) {
    tracing::info!(topic = %partition.topic, partition = partition.index, shrunk = ?proposal.change.shrunk,
        expanded = ?proposal.change.expanded, "proposing an ISR change");
    let request = AlterPartitionRequest {
        topic: partition.topic.clone(),
        partition: partition.index,
        leader_id: local,
        leader_epoch: proposal.leader_epoch,
        partition_epoch: proposal.partition_epoch,
        new_isr: proposal.change.new_isr,
    };
    if let Err(e) = proposer.alter_partition(request).await {
        tracing::warn!(topic = %partition.topic, partition = partition.index, error = %error_chain(&e), "ISR change refused");
        partition.clear_pending_isr(crate::clock::now_ms());
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
        let _applying = self
            .applying
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.apply_delta(delta, image).map_err(Into::into)
    }
}
