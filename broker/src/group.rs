//! The group coordinator (classic protocol): consumer group membership and rebalances (`membership`), and
//! committed offsets stored as records in the compacted `__consumer_offsets` topic (`offsets`, `records`).
//!
//! A group belongs to one `__consumer_offsets` partition (`records::partition_for`), its *shard*, and its
//! coordinator is that partition's leader. This broker coordinates the shards it leads (`shards`): it loads
//! a shard's groups and offsets when it becomes the partition's leader and drops them when it stops, and
//! answers the requests of any other group with NOT_COORDINATOR. A standalone broker leads every
//! partition, so it loads every shard at start. Assignment strategies stay in the clients, as in Kafka:
//! the coordinator only picks the protocol and relays the leader's assignment. Must never hold the groups
//! lock across an `.await`.

pub mod membership;
pub mod offsets;
pub mod records;
pub mod shards;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;

pub use self::membership::{
    JoinRequest, JoinResult, JoinedMember, LeaveResult, LeavingMember, MemberAssignment,
    SyncRequest, SyncResult,
};
pub use self::offsets::{
    CommitEntry, OffsetsLog, OffsetsLogError, PartitionOffset, PartitionOutcome, TopicOffsets,
    TopicOutcomes, TopicPartitions,
};
use self::records::{GroupValue, MemberValue, OffsetValue};
use crate::{
    clock::{now_ms, Clock},
    log::TopicPartition,
};

/// Kafka's group coordinator settings, with Kafka's defaults.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms`
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`: how long a new group waits for more members before its first
    /// rebalance completes.
    pub initial_rebalance_delay_ms: u64,
    /// `offsets.topic.num.partitions`
    pub offsets_partitions: i32,
    /// `offset.metadata.max.bytes`
    pub max_metadata_bytes: usize,
    /// `offsets.commit.timeout.ms`: how long a commit waits for the in-sync replicas.
    pub commit_timeout_ms: u64,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            offsets_partitions: 50,
            max_metadata_bytes: 4096,
            commit_timeout_ms: 5_000,
        }
    }
}

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The names Kafka reports in DescribeGroups and ListGroups.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// One protocol a member can use (for consumers, an assignment strategy) with the member's metadata for it
/// (for consumers, its encoded subscription).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    pub name: String,
    pub metadata: Bytes,
}

#[derive(Debug)]
pub struct Member {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// In the member's order of preference.
    pub protocols: Vec<Protocol>,
    pub assignment: Bytes,
    session_deadline: Instant,
    join_waiter: Option<oneshot::Sender<JoinResult>>,
    sync_waiter: Option<oneshot::Sender<SyncResult>>,
    awaiting_join: bool,
}

impl Member {
    fn new(member_id: &str, request: &JoinRequest, now: Instant) -> Self {
        Self {
            member_id: member_id.to_owned(),
            instance_id: request.instance_id.clone(),
            client_id: request.client_id.clone(),
            client_host: request.client_host.clone(),
            session_timeout_ms: request.session_timeout_ms,
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            protocols: request.protocols.clone(),
            assignment: Bytes::new(),
            session_deadline: now + Duration::from_millis(request.session_timeout_ms.max(0) as u64),
            join_waiter: None,
            sync_waiter: None,
            awaiting_join: false,
        }
    }

    /// Answers parked requests with `error` (the coordinator gave the group up).
    fn answer_waiters_with(&mut self, error: ResponseError) {
        if let Some(waiter) = self.join_waiter.take() {
            let _ = waiter.send(JoinResult {
                error: Some(error),
                generation: -1,
                member_id: self.member_id.clone(),
                ..JoinResult::default()
            });
        }
        if let Some(waiter) = self.sync_waiter.take() {
            let _ = waiter.send(SyncResult {
                error: Some(error),
                ..SyncResult::default()
            });
        }
        self.awaiting_join = false;
    }

    /// Dropping the senders wakes parked requests, which then answer UNKNOWN_MEMBER_ID.
    fn fail_waiters(&mut self) {
        self.join_waiter = None;
        self.sync_waiter = None;
        self.awaiting_join = false;
    }

    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }
}

#[derive(Debug)]
pub struct Group {
    pub id: String,
    pub state: GroupState,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub generation: i32,
    pub leader: Option<String>,
    pub members: HashMap<String, Member>,
    /// Member ids in the order they joined; the first present one becomes leader.
    join_order: Vec<String>,
    static_members: HashMap<String, String>,
    /// Ids handed out with MEMBER_ID_REQUIRED that have not joined yet, with their expiry.
    pending_members: HashMap<String, Instant>,
    join_deadline: Option<Instant>,
    in_initial_delay: bool,
    pub offsets: HashMap<TopicPartition, OffsetValue>,
    pub state_changed_ms: i64,
    needs_persist: bool,
}

impl Group {
    fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            state: GroupState::Empty,
            protocol_type: None,
            protocol: None,
            generation: 0,
            leader: None,
            members: HashMap::new(),
            join_order: Vec::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            join_deadline: None,
            in_initial_delay: false,
            offsets: HashMap::new(),
            state_changed_ms: now_ms(),
            needs_persist: false,
        }
    }

    fn insert_member(&mut self, member: Member) {
        if !self.join_order.contains(&member.member_id) {
            self.join_order.push(member.member_id.clone());
        }
        self.members.insert(member.member_id.clone(), member);
    }

    /// Protocol names every member supports.
    fn candidate_protocols(&self) -> Vec<String> {
        let mut members = self.members.values();
        let Some(first) = members.next() else {
            return Vec::new();
        };
        let mut names: Vec<String> = first.protocols.iter().map(|p| p.name.clone()).collect();
        for member in members {
            names.retain(|n| member.protocols.iter().any(|p| &p.name == n));
        }
        names
    }

    fn supports(&self, protocol_type: &str, protocols: &[Protocol]) -> bool {
        self.protocol_type
            .as_deref()
            .is_none_or(|t| t == protocol_type)
            && (self.members.is_empty()
                || self
                    .candidate_protocols()
                    .iter()
                    .any(|c| protocols.iter().any(|p| &p.name == c)))
    }

    fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        if let Some(instance) = instance_id {
            if self
                .static_members
                .get(instance)
                .is_some_and(|id| id != member_id)
            {
                return Err(ResponseError::FencedInstanceId);
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        if generation != self.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(())
    }

    fn max_rebalance_timeout(&self) -> Duration {
        Duration::from_millis(
            self.members
                .values()
                .map(|m| m.rebalance_timeout_ms.max(0))
                .max()
                .unwrap_or(0) as u64,
        )
    }

    fn prepare_rebalance(&mut self, now: Instant, initial_delay_ms: u64) {
        if self.state == GroupState::CompletingRebalance {
            for member in self.members.values_mut() {
                if let Some(waiter) = member.sync_waiter.take() {
                    let _ = waiter.send(SyncResult {
                        error: Some(ResponseError::RebalanceInProgress),
                        ..SyncResult::default()
                    });
                }
            }
        }
        let new_group = self.state == GroupState::Empty;
        self.in_initial_delay = new_group && initial_delay_ms > 0;
        self.join_deadline = Some(if self.in_initial_delay {
            now + Duration::from_millis(initial_delay_ms)
                .min(self.max_rebalance_timeout().max(Duration::from_millis(1)))
        } else {
            now + self.max_rebalance_timeout()
        });
        for member in self.members.values_mut() {
            member.awaiting_join = member.join_waiter.is_some();
        }
        self.state = GroupState::PreparingRebalance;
        self.state_changed_ms = now_ms();
    }

    fn try_complete_join(&mut self, now: Instant) {
        if self.state != GroupState::PreparingRebalance || self.in_initial_delay {
            return;
        }
        if self.members.values().all(|m| m.awaiting_join) && self.pending_members.is_empty() {
            self.complete_join(now);
        }
    }

    fn complete_join(&mut self, now: Instant) {
        let absent: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.awaiting_join)
            .map(|m| m.member_id.clone())
            .collect();
        for id in absent {
            tracing::info!(group = %self.id, member = %id, "member did not rejoin in time; removed");
            self.remove_member(&id);
        }
        self.generation += 1;
        self.join_deadline = None;
        self.in_initial_delay = false;
        self.state_changed_ms = now_ms();
        self.needs_persist = true;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol = None;
            self.leader = None;
            return;
        }
        if self.protocol_type.is_none() {
            self.protocol_type = self.members.values().next().map(|_| "consumer".to_owned());
        }
        self.protocol = self.select_protocol();
        if self
            .leader
            .as_ref()
            .is_none_or(|l| !self.members.contains_key(l))
        {
            self.leader = self
                .join_order
                .iter()
                .find(|id| self.members.contains_key(*id))
                .cloned();
        }
        self.state = GroupState::CompletingRebalance;
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let result = self.current_join_result(&id);
            if let Some(member) = self.members.get_mut(&id) {
                member.awaiting_join = false;
                member.session_deadline =
                    now + Duration::from_millis(member.session_timeout_ms.max(0) as u64);
                if let Some(waiter) = member.join_waiter.take() {
                    let _ = waiter.send(result);
                }
            }
        }
    }

    /// Each member votes for its most preferred protocol among those all members support; most votes wins.
    fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes: Vec<(String, usize)> = candidates.iter().map(|c| (c.clone(), 0)).collect();
        for member in self.members.values() {
            if let Some(preferred) = member
                .protocols
                .iter()
                .find(|p| candidates.contains(&p.name))
            {
                if let Some(entry) = votes.iter_mut().find(|(c, _)| *c == preferred.name) {
                    entry.1 += 1;
                }
            }
        }
        votes
            .into_iter()
            .max_by_key(|(_, count)| *count)
            .map(|(name, _)| name)
    }

    fn current_join_result(&self, member_id: &str) -> JoinResult {
        let protocol = self.protocol.clone().unwrap_or_default();
        let leader = self.leader.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.join_order
                .iter()
                .filter_map(|id| self.members.get(id))
                .map(|m| JoinedMember {
                    member_id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    metadata: m.metadata_for(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader,
            member_id: member_id.to_owned(),
            members,
        }
    }

    fn sync_result_for(&self, member_id: &str) -> SyncResult {
        SyncResult {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment: self
                .members
                .get(member_id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }

    fn answer_syncs(&mut self) {
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let result = self.sync_result_for(&id);
            if let Some(waiter) = self.members.get_mut(&id).and_then(|m| m.sync_waiter.take()) {
                let _ = waiter.send(result);
            }
        }
    }

    fn remove_member(&mut self, member_id: &str) {
        if let Some(mut member) = self.members.remove(member_id) {
            member.fail_waiters();
            if let Some(instance) = member.instance_id {
                if self
                    .static_members
                    .get(&instance)
                    .is_some_and(|id| id == member_id)
                {
                    self.static_members.remove(&instance);
                }
            }
        }
        self.join_order.retain(|id| id != member_id);
        if self.leader.as_deref() == Some(member_id) {
            self.leader = None;
        }
    }

    fn to_value(&self) -> GroupValue {
        let protocol = self.protocol.clone().unwrap_or_default();
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            state_timestamp: self.state_changed_ms,
            members: self
                .join_order
                .iter()
                .filter_map(|id| self.members.get(id))
                .map(|m| MemberValue {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Restores a group from its stored record. Members get a fresh session: they keep their assignment if
    /// they heartbeat in time, and are removed (with a rebalance) otherwise.
    fn restore(&mut self, value: GroupValue) {
        let now = Instant::now();
        self.protocol_type = (!value.protocol_type.is_empty()).then_some(value.protocol_type);
        self.generation = value.generation;
        self.protocol = value.protocol.clone();
        self.leader = value.leader;
        self.state_changed_ms = value.state_timestamp;
        self.members.clear();
        self.join_order.clear();
        self.static_members.clear();
        let protocol = value.protocol.unwrap_or_default();
        for m in value.members {
            if let Some(instance) = &m.group_instance_id {
                self.static_members
                    .insert(instance.clone(), m.member_id.clone());
            }
            self.join_order.push(m.member_id.clone());
            self.members.insert(
                m.member_id.clone(),
                Member {
                    member_id: m.member_id,
                    instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: vec![Protocol {
                        name: protocol.clone(),
                        metadata: m.subscription,
                    }],
                    assignment: m.assignment,
                    session_deadline: now
                        + Duration::from_millis(m.session_timeout_ms.max(0) as u64),
                    join_waiter: None,
                    sync_waiter: None,
                    awaiting_join: false,
                },
            );
        }
        self.state = if self.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
    }
}

/// One group as DescribeGroups reports it.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol: String,
    /// In join order.
    pub members: Vec<MemberDescription>,
}

/// One member as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// The member's metadata for the group's chosen protocol.
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// One group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: GroupState,
}

/// One committed offset of a consumer group, for the lag metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// What the coordinator's one mutex guards: the groups of the loaded shards and the shards' states, together
/// so that no request can slip a group into a shard that is being unloaded.
#[derive(Debug, Default)]
struct CoordinatorState {
    groups: HashMap<String, Group>,
    shards: shards::Shards,
}

#[derive(Debug)]
pub struct GroupCoordinator {
    state: Mutex<CoordinatorState>,
    pub config: GroupConfig,
    /// Where group state and offsets are stored.
    log: Arc<dyn OffsetsLog>,
    /// Session and rebalance deadlines.
    clock: Arc<dyn Clock>,
    /// A FindCoordinator is creating `__consumer_offsets` in the background; others need not start one.
    creating_offsets_topic: std::sync::atomic::AtomicBool,
}

impl GroupCoordinator {
    pub fn new(config: GroupConfig, log: Arc<dyn OffsetsLog>, clock: Arc<dyn Clock>) -> Self {
        Self {
            state: Mutex::new(CoordinatorState::default()),
            config,
            log,
            clock,
            creating_offsets_topic: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CoordinatorState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// DescribeGroups: `Ok(None)` for a group this coordinator does not know.
    pub fn describe(&self, group_id: &str) -> Result<Option<GroupDescription>, ResponseError> {
        let state = self.lock();
        state.shards.check(self.shard_of(group_id))?;
        let Some(group) = state.groups.get(group_id) else {
            return Ok(None);
        };
        let protocol = group.protocol.clone().unwrap_or_default();
        Ok(Some(GroupDescription {
            state: group.state,
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol: protocol.clone(),
            members: group
                .join_order
                .iter()
                .filter_map(|id| group.members.get(id))
                .map(|m| MemberDescription {
                    member_id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }))
    }

    /// Every committed offset of every live group, members online or not, sorted by (group, topic,
    /// partition). For the lag metric.
    pub fn committed_offsets(&self) -> Vec<CommittedOffset> {
        let state = self.lock();
        let mut offsets: Vec<_> = state
            .groups
            .values()
            .filter(|g| g.state != GroupState::Dead)
            .flat_map(|g| {
                g.offsets.iter().map(|(key, value)| CommittedOffset {
                    group: g.id.clone(),
                    topic: key.topic.clone(),
                    partition: key.partition,
                    offset: value.offset,
                })
            })
            .collect();
        drop(state);
        offsets.sort_by(|a, b| {
            (&a.group, &a.topic, a.partition).cmp(&(&b.group, &b.topic, b.partition))
        });
        offsets
    }

    /// True while a shard this broker leads is still loading: ListGroups then reports
    /// COORDINATOR_LOAD_IN_PROGRESS next to the groups it has, as Kafka does.
    pub fn is_loading(&self) -> bool {
        self.lock().shards.any_loading()
    }

    /// Every live group of the loaded shards, by group id.
    pub fn list(&self) -> Vec<GroupListing> {
        let state = self.lock();
        let mut list: Vec<_> = state
            .groups
            .values()
            .filter(|g| g.state != GroupState::Dead)
            .map(|g| GroupListing {
                group_id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state,
            })
            .collect();
        drop(state);
        list.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        list
    }
}
