//! Broker liveness on the active controller (KIP-631): registration with a broker epoch, heartbeats,
//! fencing after `broker.session.timeout.ms` without one, unfencing once the broker has caught up with the
//! metadata log, controlled shutdown, and the leader elections these force.
//!
//! Heartbeat times live only in the active controller's memory: a new active controller gives every broker
//! a full session from the moment it took over, as Kafka's does, so a controller failover never fences a
//! live broker. Elections here are clean: a new leader comes only from the ISR. Where a topic allows unclean
//! elections, the periodic session check also gives leaderless partitions a leader from outside the ISR.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{
    calls::{CallOutput, Heartbeat},
    Controller, TopicError,
};
use crate::cluster::{
    image::{BrokerRegistration, MetadataImage, NodeId, PartitionChange, NO_LEADER},
    store::MetadataChange,
};

/// Kafka's `leader.imbalance.per.broker.percentage` default.
const LEADER_IMBALANCE_PERCENTAGE: u32 = 10;

/// Kafka's names and defaults.
#[derive(Debug, Clone)]
pub struct LivenessSettings {
    /// `broker.session.timeout.ms` (9000).
    pub session_timeout: Duration,
    /// `broker.heartbeat.interval.ms` (2000).
    pub heartbeat_interval: Duration,
    /// `auto.leader.rebalance.enable` (true): how often preferred leaders are restored
    /// (`leader.imbalance.check.interval.seconds`, 300), or never.
    pub leader_rebalance_interval: Option<Duration>,
    /// `tributary.partition.autobalancing.mode` (`node_add`): whether a broker registering for the first time
    /// into a cluster with partitions is filled with its share of replicas (`off`: only when asked).
    pub fill_new_brokers: bool,
    /// `unclean.leader.election.enable` (false), the static broker default under the cluster-wide and topic
    /// configs: whether a partition left without a live ISR member takes a leader from its other replicas.
    pub unclean_leader_election: bool,
}

impl Default for LivenessSettings {
    fn default() -> Self {
        Self {
            session_timeout: Duration::from_millis(9000),
            heartbeat_interval: Duration::from_millis(2000),
            leader_rebalance_interval: Some(Duration::from_secs(300)),
            fill_new_brokers: true,
            unclean_leader_election: false,
        }
    }
}

#[derive(Debug)]
pub(super) struct Liveness {
    settings: LivenessSettings,
    state: Mutex<LivenessState>,
}

#[derive(Debug, Default)]
struct LivenessState {
    /// The quorum term this node has been active controller in; `None` while it is not.
    term: Option<u64>,
    /// When preferred leaders were last checked in this term.
    last_rebalance: Option<Instant>,
    last_heartbeat: HashMap<NodeId, Instant>,
    /// The quorum leader this node last followed, while it was not leading.
    previous_leader: Option<NodeId>,
    /// Open connections to this node's controller listener, per node.
    connections: HashMap<NodeId, usize>,
    /// Since when a node that connected here in this term has had no connection left.
    disconnected_since: HashMap<NodeId, Instant>,
}

/// Why a broker's session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expiry {
    /// No heartbeat within `broker.session.timeout.ms` (Kafka's only rule).
    Session,
    /// Every connection it had to this controller closed and it has been silent for two heartbeat
    /// intervals since: its process is gone (a killed process's sockets are closed by its kernel) or it
    /// cannot reconnect. A live broker reconnects at its next heartbeat, within one interval; a broker cut off
    /// by the network closes nothing here, so it keeps its whole session.
    Disconnected,
}

impl Liveness {
    pub(super) fn new(settings: LivenessSettings) -> Self {
        Self {
            settings,
            state: Mutex::new(LivenessState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LivenessState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn touch(&self, id: NodeId) {
        self.lock().last_heartbeat.insert(id, Instant::now());
    }

    /// Counts node `id`'s connections to this controller listener as one opens (`open`) or ends.
    fn connection(&self, id: NodeId, open: bool) {
        let mut state = self.lock();
        let count = state.connections.entry(id).or_insert(0);
        if open {
            *count += 1;
        } else {
            *count = count.saturating_sub(1);
        }
        let none_left = *count == 0;
        if none_left {
            state.connections.remove(&id);
            if state.term.is_some() {
                state.disconnected_since.insert(id, Instant::now());
            }
        } else {
            state.disconnected_since.remove(&id);
        }
    }

    /// Brokers of `image` that are unfenced and have not been heard from within the session timeout.
    /// On the first call of a new term every broker starts a fresh session, as in Kafka, except the
    /// previous active controller: this node won an election because that one went quiet, so it gets two
    /// heartbeat intervals to show it is alive (a controller that only lost an election heartbeats here
    /// well within them) instead of a whole session; a dead controller's leaderships then move seconds
    /// sooner than Kafka's.
    fn expired(&self, term: u64, local: NodeId, image: &MetadataImage) -> Vec<(NodeId, Expiry)> {
        let now = Instant::now();
        let grace = self.settings.heartbeat_interval * 2;
        let mut state = self.lock();
        if state.term != Some(term) {
            state.term = Some(term);
            state.last_heartbeat = image.brokers.keys().map(|id| (*id, now)).collect();
            // Brokers find a new active controller by themselves; only a disconnection after they did counts.
            state.disconnected_since.clear();
            state.last_rebalance = Some(now);
            if let Some(previous) = state.previous_leader.filter(|id| *id != local) {
                let started = now
                    .checked_sub(self.settings.session_timeout.saturating_sub(grace))
                    .unwrap_or(now);
                state.last_heartbeat.insert(previous, started);
            }
            return Vec::new();
        }
        image
            .live_brokers()
            .filter_map(|b| {
                let quiet = now.duration_since(*state.last_heartbeat.entry(b.id).or_insert(now));
                let gone = state
                    .disconnected_since
                    .get(&b.id)
                    .is_some_and(|since| now.duration_since(*since) > grace);
                if quiet > self.settings.session_timeout {
                    Some((b.id, Expiry::Session))
                } else if gone && quiet > grace {
                    Some((b.id, Expiry::Disconnected))
                } else {
                    None
                }
            })
            .collect()
    }

    /// Remembers who leads the quorum while this node does not.
    fn follow(&self, leader: Option<NodeId>) {
        let mut state = self.lock();
        if leader.is_some() {
            state.previous_leader = leader;
        }
    }

    /// Whether preferred leaders are due for a check now (and marks them checked).
    fn rebalance_due(&self) -> bool {
        let Some(interval) = self.settings.leader_rebalance_interval else {
            return false;
        };
        let now = Instant::now();
        let mut state = self.lock();
        match state.last_rebalance {
            Some(last) if now.duration_since(last) < interval => false,
            _ => {
                state.last_rebalance = Some(now);
                true
            }
        }
    }

    fn step_down(&self) {
        let mut state = self.lock();
        state.term = None;
        state.last_heartbeat.clear();
    }
}

/// The changes that take `broker` out of service: fenced, out of every ISR it can leave, and replaced as
/// leader by the first eligible ISR member in replica order (no leader when there is none: the partition
/// waits for an ISR member rather than losing acknowledged records).
pub fn fence_changes(image: &MetadataImage, broker: NodeId) -> Vec<MetadataChange> {
    let mut changes = vec![MetadataChange::FenceBroker {
        id: broker,
        fenced: true,
    }];
    changes.extend(leave_partitions(image, broker, Fallback::LiveIsrMember));
    changes
}

/// The changes for a broker whose data directory ran out of space (`full`) or has space again. A full one
/// leaves every ISR it can leave and hands its leaderships to an eligible ISR member, so its partitions
/// keep taking writes elsewhere; where it is the only ISR member it keeps leading (serving reads), since
/// nobody else holds everything. Coming back needs no partition change: it rejoins the ISRs by catching up.
pub fn storage_changes(image: &MetadataImage, broker: NodeId, full: bool) -> Vec<MetadataChange> {
    let mut changes = vec![MetadataChange::SetStorageFull { id: broker, full }];
    if full {
        changes.extend(leave_partitions(image, broker, Fallback::KeepLeading));
    }
    changes
}

/// Who leads when no ISR member besides the departing leader is eligible.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fallback {
    /// A live ISR member whose disk is full (it serves reads, and writes once it has space), else nobody.
    LiveIsrMember,
    /// The departing leader itself: moving leadership between full disks gains nothing.
    KeepLeading,
}

/// `broker` out of every ISR it can leave and, where it leads, replaced by the first eligible ISR member
/// in replica order, or as `fallback` says when there is none.
fn leave_partitions(
    image: &MetadataImage,
    broker: NodeId,
    fallback: Fallback,
) -> Vec<MetadataChange> {
    let mut changes = Vec::new();
    let eligible = |id: NodeId| id != broker && image.eligible_replica(id);
    for topic in image.topics.values() {
        for (index, partition) in topic.partitions.iter().enumerate() {
            if !partition.replicas.contains(&broker) {
                continue;
            }
            let leader = (partition.leader == broker).then(|| {
                let in_isr = |id: &NodeId| partition.isr.contains(id) && *id != broker;
                let mut members = partition.replicas.iter().copied().filter(in_isr);
                members
                    .clone()
                    .find(|id| eligible(*id))
                    .or_else(|| match fallback {
                        Fallback::LiveIsrMember => {
                            members.find(|id| image.live_broker(*id).is_some())
                        }
                        Fallback::KeepLeading => Some(broker),
                    })
                    .unwrap_or(NO_LEADER)
            });
            // The ISR never becomes empty: its last member is the only replica known to hold everything;
            // nor does it lose a leader that stays.
            let isr: Vec<NodeId> = if partition.isr.len() > 1 && leader != Some(broker) {
                partition
                    .isr
                    .iter()
                    .copied()
                    .filter(|id| *id != broker)
                    .collect()
            } else {
                partition.isr.clone()
            };
            let mut change = PartitionChange::default();
            if isr != partition.isr {
                change.isr = Some(isr);
            }
            if leader.is_some_and(|l| l != partition.leader) {
                change.leader = leader;
            }
            if change != PartitionChange::default() {
                changes.push(MetadataChange::ChangePartition {
                    topic: topic.name.clone(),
                    partition: i32::try_from(index).unwrap_or(i32::MAX),
                    change,
                });
            }
        }
    }
    changes
}

fn has_partitions(image: &MetadataImage) -> bool {
    image.topics.values().any(|t| !t.partitions.is_empty())
}

/// The changes that put `broker` back in service: unfenced, and leader of every leaderless partition whose
/// ISR it is in (it holds everything acknowledged there).
pub fn unfence_changes(image: &MetadataImage, broker: NodeId) -> Vec<MetadataChange> {
    let mut changes = vec![MetadataChange::FenceBroker {
        id: broker,
        fenced: false,
    }];
    for topic in image.topics.values() {
        for (index, partition) in topic.partitions.iter().enumerate() {
            if partition.leader == NO_LEADER && partition.isr.contains(&broker) {
                changes.push(MetadataChange::ChangePartition {
                    topic: topic.name.clone(),
                    partition: i32::try_from(index).unwrap_or(i32::MAX),
                    change: PartitionChange {
                        leader: Some(broker),
                        ..PartitionChange::default()
                    },
                });
            }
        }
    }
    changes
}

/// What UnregisterBroker did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnregisterOutcome {
    Unregistered,
    NotRegistered,
    /// Why the broker cannot be forgotten (yet).
    Refused(String),
}

/// Why broker `id` may not be forgotten, if it may not: it still runs (its heartbeats would register it
/// again at once), it still holds replicas (their data would have one copy fewer with nobody noticing), or
/// it votes in the metadata quorum.
pub fn unregister_refusal(image: &MetadataImage, id: NodeId, voters: &[NodeId]) -> Option<String> {
    if voters.contains(&id) {
        return Some(format!(
            "Broker {id} is a voter of the metadata quorum and cannot be unregistered."
        ));
    }
    if image.live_broker(id).is_some() {
        return Some(format!(
            "Broker {id} is running; stop it (after draining it) before unregistering it."
        ));
    }
    let held: Vec<String> = image
        .indexed_partitions()
        .filter(|(_, _, p)| p.replicas.contains(&id))
        .map(|(topic, index, _)| format!("{topic}-{index}"))
        .collect();
    if let Some(first) = held.first() {
        return Some(format!(
            "Broker {id} still holds {} replica(s), {first} among them; drain it \
             (tributary.broker.draining=true) before unregistering it.",
            held.len()
        ));
    }
    None
}

impl Controller {
    /// Kafka's UnregisterBroker, refused while [`unregister_refusal`] says so. Its per-broker configs go
    /// with it, so an id used again later starts as a new broker (and is filled).
    pub async fn unregister_broker(&self, id: NodeId) -> Result<UnregisterOutcome, TopicError> {
        match self
            .call(super::calls::ControllerCall::UnregisterBroker { id })
            .await?
        {
            CallOutput::Unregistered(outcome) => Ok(outcome),
            other => Err(super::calls::unexpected(&other)),
        }
    }

    /// Kafka's DescribeQuorum, answered by the active controller; None without a metadata quorum.
    pub async fn describe_quorum(
        &self,
    ) -> Result<Option<crate::cluster::raft::quorum::QuorumDescription>, TopicError> {
        match self
            .call(super::calls::ControllerCall::DescribeQuorum)
            .await?
        {
            CallOutput::Quorum(description) => Ok(description),
            other => Err(super::calls::unexpected(&other)),
        }
    }

    pub(super) async fn unregister_broker_here(
        &self,
        id: NodeId,
    ) -> Result<(CallOutput, u64), TopicError> {
        let _decisions = self.topic_admin.lock().await;
        let image = self.image();
        if !image.brokers.contains_key(&id) {
            return Ok((
                CallOutput::Unregistered(UnregisterOutcome::NotRegistered),
                0,
            ));
        }
        let voters = self
            .quorum
            .as_ref()
            .map(|link| link.quorum().voters())
            .unwrap_or_default();
        if let Some(why) = unregister_refusal(&image, id, &voters) {
            return Ok((CallOutput::Unregistered(UnregisterOutcome::Refused(why)), 0));
        }
        let mut changes = vec![MetadataChange::UnregisterBroker { id }];
        if image.node_configs.contains_key(&id) {
            changes.push(MetadataChange::SetNodeConfigs {
                id,
                configs: Default::default(),
            });
        }
        let (_, index) = self.submit(changes).await?;
        tracing::info!(broker = id, "broker unregistered");
        Ok((
            CallOutput::Unregistered(UnregisterOutcome::Unregistered),
            index,
        ))
    }

    /// Registers a broker, fenced, with a new epoch. An older incarnation that is still unfenced is taken
    /// out of service first, so its leaderships move (with new leader epochs) before the new one catches up.
    pub(super) async fn register_broker_here(
        &self,
        mut registration: BrokerRegistration,
        metadata_addr: Option<String>,
        directory_id: Option<String>,
    ) -> Result<(CallOutput, u64), TopicError> {
        let _decisions = self.topic_admin.lock().await;
        if let (Some(link), Some(addr)) = (&self.quorum, &metadata_addr) {
            link.add_learner(registration.id, addr, directory_id.as_deref())
                .await?;
        }
        let image = self.image();
        let id = registration.id;
        let mut changes = match image.live_broker(id) {
            Some(_) => fence_changes(&image, id),
            None => Vec::new(),
        };
        registration.fenced = true;
        let first_registration = !image.brokers.contains_key(&id);
        changes.push(MetadataChange::RegisterBroker(registration));
        if first_registration && self.liveness.settings.fill_new_brokers && has_partitions(&image) {
            tracing::info!(
                broker = id,
                "new broker: it will be filled with its share of replicas"
            );
            changes.push(super::fill::flag_change(
                &image,
                id,
                crate::config::FILLING_CONFIG,
                true,
            ));
        }
        let (image, index) = self.submit(changes).await?;
        self.liveness.touch(id);
        let epoch = image.brokers.get(&id).map(|b| b.epoch).ok_or_else(|| {
            TopicError::Internal(format!("broker {id} vanished after registering"))
        })?;
        tracing::info!(broker = id, epoch, "broker registered");
        Ok((CallOutput::Registered { epoch }, index))
    }

    /// A heartbeat: keeps the session alive, unfences a broker that has caught up with the metadata log
    /// (its registration's entry is applied there), carries out a controlled shutdown on request, and
    /// records whether the broker's data directory is out of space.
    pub(super) async fn heartbeat_here(
        &self,
        heartbeat: Heartbeat,
    ) -> Result<(CallOutput, u64), TopicError> {
        let Heartbeat {
            id,
            epoch,
            metadata_offset,
            want_shut_down,
            storage_full,
        } = heartbeat;
        let _decisions = self.topic_admin.lock().await;
        let image = self.image();
        let Some(registration) = image.brokers.get(&id).filter(|b| b.epoch == epoch) else {
            return Ok((
                CallOutput::Heartbeat {
                    registered: false,
                    is_fenced: true,
                    should_shut_down: false,
                },
                0,
            ));
        };
        self.liveness.touch(id);
        let caught_up = u64::try_from(registration.epoch).is_ok_and(|e| metadata_offset >= e);
        let (mut changes, fenced_after) = match (registration.fenced, want_shut_down) {
            (false, true) => (fence_changes(&image, id), true),
            (true, false) if caught_up => (unfence_changes(&image, id), false),
            (fenced, _) => (Vec::new(), fenced),
        };
        let storage_changed = registration.storage_full != storage_full;
        if storage_changed {
            if changes.is_empty() && !fenced_after {
                changes = storage_changes(&image, id, storage_full);
            } else {
                // Fencing takes the broker out of the ISRs anyway, and an unfenced one joins them only
                // once eligible: the flag alone is enough while the service changes.
                changes.push(MetadataChange::SetStorageFull {
                    id,
                    full: storage_full,
                });
            }
        }
        let index = if changes.is_empty() {
            0
        } else {
            let (_, index) = self.submit(changes).await?;
            if storage_changed && storage_full {
                tracing::warn!(broker = id, "broker is out of disk space: its replicas leave the ISRs and its leaderships move where they can");
            } else if storage_changed {
                tracing::info!(
                    broker = id,
                    "broker has disk space again: its replicas rejoin the ISRs as they catch up"
                );
            }
            if fenced_after && !registration.fenced {
                tracing::info!(broker = id, "broker shutting down: leaderships moved away");
            } else if registration.fenced && !fenced_after {
                tracing::info!(broker = id, epoch, "broker unfenced");
            }
            index
        };
        Ok((
            CallOutput::Heartbeat {
                registered: true,
                is_fenced: fenced_after,
                should_shut_down: want_shut_down,
            },
            index,
        ))
    }

    /// A connection of node `node` to this node's controller listener opened.
    pub fn peer_connected(&self, node: NodeId) {
        self.liveness.connection(node, true);
    }

    /// A connection of node `node` to this node's controller listener ended.
    pub fn peer_disconnected(&self, node: NodeId) {
        self.liveness.connection(node, false);
    }

    /// On the active controller: fences brokers whose session expired. Runs until `shutdown` turns true; does nothing in single-node mode.
    pub async fn run_liveness(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let Some(link) = &self.quorum else {
            return;
        };
        let mut interval = tokio::time::interval(Duration::from_millis(250));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.changed() => return,
            }
            let Some(term) = link.quorum().leader_term() else {
                self.liveness.step_down();
                self.liveness
                    .follow(link.quorum().leader().map(|(id, _)| id));
                continue;
            };
            if let Err(e) = self.check_sessions(term, link.quorum().node_id()).await {
                tracing::warn!(error = %crate::error_chain(&e), "fencing brokers failed; will retry");
            }
        }
    }

    async fn check_sessions(&self, term: u64, local: NodeId) -> Result<(), TopicError> {
        let _decisions = self.topic_admin.lock().await;
        let image = self.image();
        for (broker, expiry) in self.liveness.expired(term, local, &image) {
            let image = self.image();
            match expiry {
                Expiry::Session => tracing::warn!(
                    broker,
                    timeout_ms = self.liveness.settings.session_timeout.as_millis() as u64,
                    "broker missed its heartbeats; fencing it"
                ),
                Expiry::Disconnected => tracing::warn!(
                    broker,
                    silent_ms = (self.liveness.settings.heartbeat_interval * 2).as_millis() as u64,
                    "broker closed its connections to the controller and has not come back; fencing it"
                ),
            }
            self.submit(fence_changes(&image, broker)).await?;
        }
        let unclean = super::elections::automatic_unclean_elections(
            &self.image(),
            self.liveness.settings.unclean_leader_election,
        );
        if !unclean.is_empty() {
            self.submit(unclean).await?;
        }
        drop(_decisions);
        if self.liveness.rebalance_due() {
            self.rebalance_leaders(LEADER_IMBALANCE_PERCENTAGE).await?;
        }
        self.drain_step().await?;
        if self.fill_step().await? && self.liveness.settings.leader_rebalance_interval.is_some() {
            self.rebalance_leaders(LEADER_IMBALANCE_PERCENTAGE).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cluster::{
        image::{PartitionRegistration, TopicMetadata},
        store::apply_change,
    };

    fn image(brokers: &[NodeId], partitions: Vec<PartitionRegistration>) -> MetadataImage {
        let mut image = MetadataImage::default();
        for id in brokers {
            image.brokers.insert(*id, BrokerRegistration::bare(*id, 1));
        }
        image.topics.insert(
            "t".into(),
            TopicMetadata {
                name: "t".into(),
                id: uuid::Uuid::new_v4(),
                replication_factor: 3,
                partitions,
                configs: Default::default(),
            },
        );
        image
    }

    fn apply(image: &MetadataImage, changes: Vec<MetadataChange>) -> MetadataImage {
        changes
            .into_iter()
            .fold(image.clone(), |i, c| apply_change(&i, c).unwrap())
    }

    #[test]
    fn fencing_a_leader_elects_the_next_live_isr_member_with_a_new_epoch() {
        let start = image(&[1, 2, 3], vec![PartitionRegistration::new(vec![1, 2, 3])]);
        let after = apply(&start, fence_changes(&start, 1));
        let p = &after.topics["t"].partitions[0];
        assert_eq!((p.leader, p.leader_epoch), (2, 1));
        assert_eq!(p.isr, [2, 3]);
        assert!(after.brokers[&1].fenced);
    }

    #[test]
    fn a_follower_outside_the_isr_is_never_elected() {
        let mut registration = PartitionRegistration::new(vec![1, 2, 3]);
        registration.isr = vec![1, 3];
        let start = image(&[1, 2, 3], vec![registration]);
        let after = apply(&start, fence_changes(&start, 1));
        assert_eq!(after.topics["t"].partitions[0].leader, 3);
    }

    #[test]
    fn the_last_isr_member_stays_in_the_isr_and_leadership_waits_for_it() {
        let mut registration = PartitionRegistration::new(vec![1, 2]);
        registration.isr = vec![1];
        let start = image(&[1, 2], vec![registration]);
        let fenced = apply(&start, fence_changes(&start, 1));
        let p = &fenced.topics["t"].partitions[0];
        assert_eq!((p.leader, p.isr.clone()), (NO_LEADER, vec![1]));
        // Broker 2 returning does not lead (it may miss acknowledged records); broker 1 does.
        let two_back = apply(&fenced, unfence_changes(&fenced, 2));
        assert_eq!(two_back.topics["t"].partitions[0].leader, NO_LEADER);
        let one_back = apply(&fenced, unfence_changes(&fenced, 1));
        let p = &one_back.topics["t"].partitions[0];
        assert_eq!((p.leader, p.leader_epoch), (1, 2));
    }

    #[test]
    fn two_brokers_fenced_in_turn_leave_the_third_leading() {
        let start = image(&[1, 2, 3], vec![PartitionRegistration::new(vec![1, 2, 3])]);
        let one = apply(&start, fence_changes(&start, 1));
        let two = apply(&one, fence_changes(&one, 2));
        let p = &two.topics["t"].partitions[0];
        assert_eq!((p.leader, p.isr.clone(), p.leader_epoch), (3, vec![3], 2));
    }

    #[test]
    fn a_full_disk_moves_leadership_to_an_eligible_isr_member_and_leaves_the_isr() {
        let start = image(&[1, 2, 3], vec![PartitionRegistration::new(vec![1, 2, 3])]);
        let full = apply(&start, storage_changes(&start, 1, true));
        let p = &full.topics["t"].partitions[0];
        assert_eq!(
            (p.leader, p.leader_epoch, p.isr.clone()),
            (2, 1, vec![2, 3])
        );
        assert!(full.brokers[&1].storage_full && !full.brokers[&1].fenced);
        assert!(!full.eligible_replica(1));
        assert!(full.live_broker(1).is_some(), "still listed to clients");
        // Space again: only the flag changes; the ISR grows back through the leader once it caught up.
        let back = apply(&full, storage_changes(&full, 1, false));
        assert!(back.eligible_replica(1));
        assert_eq!(back.topics["t"].partitions[0], *p);
    }

    #[test]
    fn a_full_disk_that_alone_holds_everything_keeps_leading() {
        let mut registration = PartitionRegistration::new(vec![1, 2]);
        registration.isr = vec![1];
        let start = image(&[1, 2], vec![registration.clone()]);
        let full = apply(&start, storage_changes(&start, 1, true));
        assert_eq!(full.topics["t"].partitions[0], registration);
    }

    #[test]
    fn a_full_follower_is_only_a_last_resort_when_the_leader_is_fenced() {
        let start = image(&[1, 2, 3], vec![PartitionRegistration::new(vec![1, 2, 3])]);
        let two_full = apply(&start, storage_changes(&start, 2, true));
        let fenced = apply(&two_full, fence_changes(&two_full, 1));
        assert_eq!(fenced.topics["t"].partitions[0].leader, 3, "3 can write");
        let mut registration = PartitionRegistration::new(vec![1, 2]);
        registration.isr = vec![1, 2];
        let start = image(&[1, 2], vec![registration]);
        let two_full = apply(&start, storage_changes(&start, 2, true));
        let p = &two_full.topics["t"].partitions[0];
        assert_eq!((p.leader, p.isr.clone()), (1, vec![1]));
        // Broker 2 left the ISR when it filled up; with 1 fenced nothing eligible is left and 1 stays the
        // only holder of everything: the partition waits for it.
        let fenced = apply(&two_full, fence_changes(&two_full, 1));
        assert_eq!(fenced.topics["t"].partitions[0].leader, NO_LEADER);
        // A full broker still in the ISR (flagged while it was being fenced) is better than no leader: it
        // serves reads, and writes once it has room.
        let flagged_only = apply(
            &start,
            vec![MetadataChange::SetStorageFull { id: 2, full: true }],
        );
        let fenced = apply(&flagged_only, fence_changes(&flagged_only, 1));
        let p = &fenced.topics["t"].partitions[0];
        assert_eq!((p.leader, p.isr.clone()), (2, vec![2]));
    }

    #[test]
    fn a_new_term_gives_every_broker_a_fresh_session() {
        let liveness = Liveness::new(LivenessSettings {
            session_timeout: Duration::from_millis(0),
            heartbeat_interval: Duration::from_millis(0),
            leader_rebalance_interval: None,
            fill_new_brokers: false,
            unclean_leader_election: false,
        });
        let start = image(&[1, 2], Vec::new());
        assert!(liveness.expired(7, 1, &start).is_empty());
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(
            liveness.expired(7, 1, &start),
            [(1, Expiry::Session), (2, Expiry::Session)]
        );
        assert!(liveness.expired(8, 1, &start).is_empty());
    }

    #[test]
    fn the_previous_controller_gets_only_two_heartbeat_intervals() {
        let liveness = Liveness::new(LivenessSettings {
            session_timeout: Duration::from_secs(9),
            heartbeat_interval: Duration::from_millis(20),
            leader_rebalance_interval: None,
            fill_new_brokers: false,
            unclean_leader_election: false,
        });
        let start = image(&[1, 2, 3], Vec::new());
        liveness.follow(Some(3));
        liveness.follow(None);
        assert!(liveness.expired(7, 1, &start).is_empty());
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(
            liveness.expired(7, 1, &start),
            [(3, Expiry::Session)],
            "1 and 2 keep a full session"
        );
        liveness.touch(3);
        assert!(
            liveness.expired(7, 1, &start).is_empty(),
            "a heartbeat saves it"
        );
    }

    #[test]
    fn a_broker_whose_connections_closed_is_fenced_after_two_heartbeat_intervals() {
        let liveness = Liveness::new(LivenessSettings {
            session_timeout: Duration::from_secs(9),
            heartbeat_interval: Duration::from_millis(20),
            leader_rebalance_interval: None,
            fill_new_brokers: false,
            unclean_leader_election: false,
        });
        let start = image(&[1, 2, 3], Vec::new());
        // Closed before this term: brokers look for a new controller by themselves.
        liveness.connection(3, true);
        liveness.connection(3, false);
        assert!(liveness.expired(7, 1, &start).is_empty());
        for id in [2, 3] {
            liveness.connection(id, true);
        }
        // Broker 2 reconnects at its next heartbeat; broker 3 is gone.
        liveness.connection(2, true);
        liveness.connection(2, false);
        liveness.connection(3, false);
        std::thread::sleep(Duration::from_millis(30));
        liveness.touch(2);
        assert!(
            liveness.expired(7, 1, &start).is_empty(),
            "one interval is not enough"
        );
        std::thread::sleep(Duration::from_millis(30));
        liveness.touch(2);
        assert_eq!(
            liveness.expired(7, 1, &start),
            [(3, Expiry::Disconnected)],
            "broker 2 kept a connection and heartbeats"
        );
        liveness.connection(3, true);
        assert!(
            liveness.expired(7, 1, &start).is_empty(),
            "a new connection is not a fencing"
        );
        // A heartbeat after the last connection closed keeps it too, until two silent intervals pass.
        liveness.connection(3, false);
        liveness.touch(3);
        std::thread::sleep(Duration::from_millis(30));
        assert!(liveness.expired(7, 1, &start).is_empty());
    }
}
