//! The classic group membership protocol: JoinGroup, SyncGroup, Heartbeat, LeaveGroup, session expiry and
//! rebalances, as Kafka's classic group coordinator runs them.
//!
//! Groups live behind one short-held mutex; a request that must wait (a join until the rebalance completes, a
//! follower's sync until the leader's assignment arrives) parks a oneshot sender in its member and waits outside
//! the lock. A periodic [`GroupCoordinator::tick`] expires sessions and ends rebalances whose time is up.

use std::{collections::HashMap, time::Duration};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::{Group, GroupCoordinator, GroupState, Member, Protocol};

/// A JoinGroup as the coordinator sees it.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub group_id: String,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// In the member's order of preference.
    pub protocols: Vec<Protocol>,
    /// v4+: an unknown member first gets a member id back with MEMBER_ID_REQUIRED.
    pub require_known_member: bool,
}

#[derive(Debug, Clone, Default)]
pub struct JoinResult {
    /// MEMBER_ID_REQUIRED comes with the `member_id` to join with.
    pub error: Option<ResponseError>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Filled for the leader only, in join order.
    pub members: Vec<JoinedMember>,
}

/// A member of the new generation, as its leader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    /// The member's metadata for the chosen protocol.
    pub metadata: Bytes,
}

impl JoinResult {
    fn error(e: ResponseError, member_id: &str) -> Self {
        Self {
            error: Some(e),
            generation: -1,
            member_id: member_id.to_owned(),
            ..Self::default()
        }
    }
}

/// A SyncGroup as the coordinator sees it.
#[derive(Debug, Clone, Default)]
pub struct SyncRequest {
    pub group_id: String,
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
    /// v5+: when given, must match the group's.
    pub protocol_type: Option<String>,
    /// v5+: when given, must match the group's.
    pub protocol_name: Option<String>,
    /// The leader's assignment; ignored from followers.
    pub assignments: Vec<MemberAssignment>,
}

/// The assignment the leader hands one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberAssignment {
    pub member_id: String,
    pub assignment: Bytes,
}

#[derive(Debug, Clone, Default)]
pub struct SyncResult {
    pub error: Option<ResponseError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    fn error(e: ResponseError) -> Self {
        Self {
            error: Some(e),
            ..Self::default()
        }
    }
}

/// A member named in a LeaveGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeavingMember {
    /// May be empty for a static member (v3+), which is then found by `instance_id`.
    pub member_id: String,
    pub instance_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveResult {
    /// The request-level error (v0-v2): the one member's outcome, or UNKNOWN_MEMBER_ID for an unknown group.
    pub error: Option<ResponseError>,
    /// One outcome per [`LeavingMember`], in order (v3+); empty when the coordinator refused the whole
    /// request (`error` says why).
    pub members: Vec<Result<(), ResponseError>>,
}

/// What a parked request waits for, with the longest it may wait.
type Parked<T> = (oneshot::Receiver<T>, Duration);

impl GroupCoordinator {
    pub async fn join(&self, request: JoinRequest) -> JoinResult {
        let parked = match self.join_locked(&request) {
            Ok(result) => return result,
            Err(parked) => parked,
        };
        let (receiver, wait) = parked;
        match tokio::time::timeout(wait, receiver).await {
            Ok(Ok(result)) => result,
            // The member was removed or the coordinator gave up on it.
            _ => JoinResult::error(ResponseError::UnknownMemberId, &request.member_id),
        }
    }

    fn join_locked(&self, request: &JoinRequest) -> Result<JoinResult, Parked<JoinResult>> {
        let config = &self.config;
        if request.group_id.is_empty() {
            return Ok(JoinResult::error(
                ResponseError::InvalidGroupId,
                &request.member_id,
            ));
        }
        // Kafka checks the coordinator before the request's own fields.
        let mut state = self.lock();
        if let Err(e) = state.shards.check(self.shard_of(&request.group_id)) {
            return Ok(JoinResult::error(e, &request.member_id));
        }
        let groups = &mut state.groups;
        if request.session_timeout_ms < config.min_session_timeout_ms
            || request.session_timeout_ms > config.max_session_timeout_ms
        {
            return Ok(JoinResult::error(
                ResponseError::InvalidSessionTimeout,
                &request.member_id,
            ));
        }
        if request.protocol_type.is_empty() || request.protocols.is_empty() {
            return Ok(JoinResult::error(
                ResponseError::InconsistentGroupProtocol,
                &request.member_id,
            ));
        }
        if !request.member_id.is_empty() && !groups.contains_key(&request.group_id) {
            return Ok(JoinResult::error(
                ResponseError::UnknownMemberId,
                &request.member_id,
            ));
        }
        let group = groups
            .entry(request.group_id.clone())
            .or_insert_with(|| Group::new(&request.group_id));
        if group.state != GroupState::Empty
            && !group.supports(&request.protocol_type, &request.protocols)
        {
            return Ok(JoinResult::error(
                ResponseError::InconsistentGroupProtocol,
                &request.member_id,
            ));
        }
        let now = self.clock.now();
        let member_id = if request.member_id.is_empty() {
            let new_id = format!("{}-{}", request.client_id, Uuid::new_v4());
            if let Some(instance) = &request.instance_id {
                if let Some(old_id) = group.static_members.get(instance).cloned() {
                    // A static member restarting: it takes over its old identity (and its assignment).
                    if let Some(mut member) = group.members.remove(&old_id) {
                        member.fail_waiters();
                        member.member_id = new_id.clone();
                        member.protocols = request.protocols.clone();
                        member.session_deadline =
                            now + Duration::from_millis(request.session_timeout_ms as u64);
                        group.insert_member(member);
                        if group.leader.as_deref() == Some(old_id.as_str()) {
                            group.leader = Some(new_id.clone());
                        }
                        group
                            .static_members
                            .insert(instance.clone(), new_id.clone());
                        if group.state == GroupState::Stable {
                            return Ok(group.current_join_result(&new_id));
                        }
                    }
                }
            } else if request.require_known_member {
                group.pending_members.insert(
                    new_id.clone(),
                    now + Duration::from_millis(request.session_timeout_ms as u64),
                );
                let mut result = JoinResult::error(ResponseError::MemberIdRequired, &new_id);
                result.member_id = new_id;
                return Ok(result);
            }
            new_id
        } else {
            if let Some(instance) = &request.instance_id {
                if group
                    .static_members
                    .get(instance)
                    .is_some_and(|id| id != &request.member_id)
                {
                    return Ok(JoinResult::error(
                        ResponseError::FencedInstanceId,
                        &request.member_id,
                    ));
                }
            }
            if !group.members.contains_key(&request.member_id)
                && group.pending_members.remove(&request.member_id).is_none()
            {
                return Ok(JoinResult::error(
                    ResponseError::UnknownMemberId,
                    &request.member_id,
                ));
            }
            request.member_id.clone()
        };

        let was_member = group.members.contains_key(&member_id);
        let protocols_changed = group
            .members
            .get(&member_id)
            .is_some_and(|m| m.protocols != request.protocols);
        let member = group
            .members
            .entry(member_id.clone())
            .or_insert_with(|| Member::new(&member_id, request, now));
        member.protocols = request.protocols.clone();
        member.session_timeout_ms = request.session_timeout_ms;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        member.session_deadline = now + Duration::from_millis(request.session_timeout_ms as u64);
        if !was_member {
            group.join_order.push(member_id.clone());
        }
        if let Some(instance) = &request.instance_id {
            group
                .static_members
                .insert(instance.clone(), member_id.clone());
        }
        let is_leader = group.leader.as_deref() == Some(member_id.as_str());
        match group.state {
            GroupState::CompletingRebalance | GroupState::Stable
                if was_member
                    && !protocols_changed
                    && !(group.state == GroupState::Stable && is_leader) =>
            {
                // A retry of a join that already completed (or a follower re-joining a stable group): answer with
                // the current generation instead of disturbing everyone.
                return Ok(group.current_join_result(&member_id));
            }
            GroupState::PreparingRebalance => {}
            _ => group.prepare_rebalance(now, config.initial_rebalance_delay_ms),
        }
        let (sender, receiver) = oneshot::channel();
        let wait = Duration::from_millis(
            request.rebalance_timeout_ms.max(request.session_timeout_ms) as u64,
        ) + Duration::from_secs(5);
        if let Some(member) = group.members.get_mut(&member_id) {
            if let Some(old) = member.join_waiter.replace(sender) {
                drop(old);
            }
            member.awaiting_join = true;
        }
        group.try_complete_join(now);
        Err((receiver, wait))
    }

    pub async fn sync(&self, request: SyncRequest) -> SyncResult {
        let SyncRequest {
            group_id,
            generation,
            member_id,
            instance_id,
            protocol_type,
            protocol_name,
            assignments,
        } = request;
        let member_id = member_id.as_str();
        let parked = {
            let mut state = self.lock();
            if let Err(e) = state.shards.check(self.shard_of(&group_id)) {
                return SyncResult::error(e);
            }
            let Some(group) = state.groups.get_mut(&group_id) else {
                return SyncResult::error(ResponseError::UnknownMemberId);
            };
            if let Err(e) = group.check_member(member_id, instance_id.as_deref(), generation) {
                return SyncResult::error(e);
            }
            if protocol_type.is_some_and(|t| Some(t) != group.protocol_type)
                || protocol_name.is_some_and(|n| Some(n) != group.protocol)
            {
                return SyncResult::error(ResponseError::InconsistentGroupProtocol);
            }
            match group.state {
                GroupState::PreparingRebalance => {
                    return SyncResult::error(ResponseError::RebalanceInProgress)
                }
                GroupState::Empty | GroupState::Dead => {
                    return SyncResult::error(ResponseError::UnknownMemberId)
                }
                GroupState::Stable => return group.sync_result_for(member_id),
                GroupState::CompletingRebalance => {}
            }
            let (sender, receiver) = oneshot::channel();
            let wait = group
                .members
                .get(member_id)
                .map_or(30_000, |m| m.rebalance_timeout_ms.max(m.session_timeout_ms))
                as u64;
            if let Some(member) = group.members.get_mut(member_id) {
                member.sync_waiter = Some(sender);
                member.session_deadline =
                    self.clock.now() + Duration::from_millis(member.session_timeout_ms as u64);
            }
            if group.leader.as_deref() == Some(member_id) {
                let assigned: HashMap<String, Bytes> = assignments
                    .into_iter()
                    .map(|a| (a.member_id, a.assignment))
                    .collect();
                for member in group.members.values_mut() {
                    member.assignment =
                        assigned.get(&member.member_id).cloned().unwrap_or_default();
                }
                group.state = GroupState::Stable;
                group.state_changed_ms = crate::clock::now_ms();
                group.needs_persist = true;
                group.answer_syncs();
            }
            (
                receiver,
                Duration::from_millis(wait) + Duration::from_secs(5),
            )
        };
        self.persist_dirty_groups().await;
        let (receiver, wait) = parked;
        match tokio::time::timeout(wait, receiver).await {
            Ok(Ok(result)) => result,
            _ => SyncResult::error(ResponseError::RebalanceInProgress),
        }
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ResponseError> {
        let mut state = self.lock();
        match state.shards.check(self.shard_of(group_id)) {
            Ok(_) => {}
            // Kafka answers heartbeats blindly while the group loads: the member keeps its assignment
            // and learns of any rebalance once the group is back.
            Err(ResponseError::CoordinatorLoadInProgress) => return Ok(()),
            Err(e) => return Err(e),
        }
        let group = state
            .groups
            .get_mut(group_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        group.check_member(member_id, instance_id, generation)?;
        if let Some(member) = group.members.get_mut(member_id) {
            member.session_deadline =
                self.clock.now() + Duration::from_millis(member.session_timeout_ms as u64);
        }
        match group.state {
            GroupState::PreparingRebalance => Err(ResponseError::RebalanceInProgress),
            GroupState::Empty | GroupState::Dead => Err(ResponseError::UnknownMemberId),
            GroupState::CompletingRebalance | GroupState::Stable => Ok(()),
        }
    }

    /// Removes members that leave.
    pub fn leave(&self, group_id: &str, leaving: &[LeavingMember]) -> LeaveResult {
        let mut state = self.lock();
        if let Err(e) = state.shards.check(self.shard_of(group_id)) {
            // No member outcomes: Kafka reports a coordinator error once, for the whole request.
            return LeaveResult {
                error: Some(e),
                members: Vec::new(),
            };
        }
        let Some(group) = state.groups.get_mut(group_id) else {
            return LeaveResult {
                error: Some(ResponseError::UnknownMemberId),
                members: vec![Err(ResponseError::UnknownMemberId); leaving.len()],
            };
        };
        let now = self.clock.now();
        let mut outcomes = Vec::with_capacity(leaving.len());
        for LeavingMember {
            member_id,
            instance_id,
        } in leaving
        {
            let id = match instance_id {
                Some(instance) => match group.static_members.get(instance) {
                    Some(known) if member_id.is_empty() || known == member_id => {
                        Some(known.clone())
                    }
                    Some(_) => {
                        outcomes.push(Err(ResponseError::FencedInstanceId));
                        continue;
                    }
                    None => None,
                },
                None => group
                    .members
                    .contains_key(member_id)
                    .then(|| member_id.clone()),
            };
            match id {
                Some(id) => {
                    group.remove_member(&id);
                    outcomes.push(Ok(()));
                }
                None => outcomes.push(Err(ResponseError::UnknownMemberId)),
            }
        }
        if outcomes.iter().any(Result::is_ok) {
            match group.state {
                GroupState::Stable | GroupState::CompletingRebalance => {
                    group.prepare_rebalance(now, 0)
                }
                _ => {}
            }
            group.try_complete_join(now);
        }
        let error = match outcomes.as_slice() {
            [only] => only.err(),
            _ => None,
        };
        LeaveResult {
            error,
            members: outcomes,
        }
    }

    /// Expires sessions and pending member ids, and completes rebalances whose time is up. Called periodically.
    pub async fn tick(&self) {
        let now = self.clock.now();
        {
            let mut state = self.lock();
            for group in state.groups.values_mut() {
                group.pending_members.retain(|_, deadline| *deadline > now);
                let expired: Vec<String> = group
                    .members
                    .values()
                    .filter(|m| {
                        !m.awaiting_join && m.sync_waiter.is_none() && m.session_deadline <= now
                    })
                    .map(|m| m.member_id.clone())
                    .collect();
                for id in &expired {
                    tracing::info!(group = %group.id, member = %id, "member session expired");
                    group.remove_member(id);
                }
                if !expired.is_empty()
                    && matches!(
                        group.state,
                        GroupState::Stable | GroupState::CompletingRebalance
                    )
                {
                    group.prepare_rebalance(now, 0);
                }
                if group.state == GroupState::PreparingRebalance {
                    if group.join_deadline.is_some_and(|d| d <= now) {
                        group.complete_join(now);
                    } else {
                        group.try_complete_join(now);
                    }
                }
            }
        }
        self.persist_dirty_groups().await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        clock::ManualClock,
        group::{
            offsets::{BoxFuture, OffsetsLogError},
            GroupConfig, OffsetsLog,
        },
    };

    /// Membership alone: nothing is stored, as if `__consumer_offsets` could not be written.
    #[derive(Debug)]
    struct NoOffsetsLog;

    impl OffsetsLog for NoOffsetsLog {
        fn ensure_topic(&self, _: i32) -> BoxFuture<'_, Result<(), OffsetsLogError>> {
            Box::pin(async { Err(OffsetsLogError::NotHosted(0)) })
        }
        fn append_durably(
            &self,
            partition: i32,
            _: Option<i32>,
            _: bytes::BytesMut,
        ) -> BoxFuture<'_, Result<(), OffsetsLogError>> {
            Box::pin(async move { Err(OffsetsLogError::NotHosted(partition)) })
        }
        fn wait_until_caught_up(
            &self,
            partition: i32,
            _: i32,
        ) -> BoxFuture<'_, Result<(), OffsetsLogError>> {
            Box::pin(async move { Err(OffsetsLogError::NotHosted(partition)) })
        }
        fn readable_range(&self, _: i32) -> Option<std::ops::Range<i64>> {
            None
        }
        fn read(&self, partition: i32, _: i64, _: usize) -> Result<Bytes, OffsetsLogError> {
            Err(OffsetsLogError::NotHosted(partition))
        }
    }

    /// A standalone coordinator: every shard loaded (from an empty log).
    fn coordinator_with(clock: Arc<ManualClock>) -> Arc<GroupCoordinator> {
        let coordinator = Arc::new(GroupCoordinator::new(
            GroupConfig {
                initial_rebalance_delay_ms: 0,
                ..GroupConfig::default()
            },
            Arc::new(NoOffsetsLog),
            clock,
        ));
        coordinator.load().unwrap();
        coordinator
    }

    fn coordinator() -> Arc<GroupCoordinator> {
        coordinator_with(Arc::new(ManualClock::default()))
    }

    fn join_request(member_id: &str) -> JoinRequest {
        JoinRequest {
            group_id: "g".into(),
            member_id: member_id.into(),
            instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            protocol_type: "consumer".into(),
            protocols: vec![Protocol {
                name: "range".into(),
                metadata: Bytes::from_static(b"meta"),
            }],
            require_known_member: true,
        }
    }

    fn sync_request(member_id: &str, generation: i32) -> SyncRequest {
        SyncRequest {
            group_id: "g".into(),
            generation,
            member_id: member_id.into(),
            ..SyncRequest::default()
        }
    }

    fn assignment(member_id: &str, assignment: &'static [u8]) -> MemberAssignment {
        MemberAssignment {
            member_id: member_id.into(),
            assignment: Bytes::from_static(assignment),
        }
    }

    fn leaving(member_id: &str) -> LeavingMember {
        LeavingMember {
            member_id: member_id.into(),
            instance_id: None,
        }
    }

    /// Joins with MEMBER_ID_REQUIRED first, as a v4+ client does; returns the task waiting for the join.
    async fn join_member(c: &Arc<GroupCoordinator>) -> tokio::task::JoinHandle<JoinResult> {
        let first = c.join(join_request("")).await;
        assert_eq!(first.error, Some(ResponseError::MemberIdRequired));
        let c = Arc::clone(c);
        let id = first.member_id;
        tokio::spawn(async move { c.join(join_request(&id)).await })
    }

    async fn finish<T>(task: tokio::task::JoinHandle<T>) -> T {
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("request did not complete")
            .unwrap()
    }

    #[tokio::test]
    async fn two_members_rebalance_and_receive_the_leaders_assignment() {
        let c = coordinator();
        let first = finish(join_member(&c).await).await;
        assert_eq!((first.error, first.generation), (None, 1));
        assert_eq!(first.leader, first.member_id, "the only member leads");
        assert_eq!(first.members.len(), 1);

        // A second member joins: the first must rejoin before the new generation completes.
        let second = join_member(&c).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            c.heartbeat("g", 1, &first.member_id, None),
            Err(ResponseError::RebalanceInProgress)
        );
        let first_again = {
            let c = Arc::clone(&c);
            let id = first.member_id.clone();
            tokio::spawn(async move { c.join(join_request(&id)).await })
        };
        let (a, b) = (finish(first_again).await, finish(second).await);
        assert_eq!((a.error, b.error), (None, None));
        assert_eq!((a.generation, b.generation), (2, 2));
        assert_eq!(
            a.leader, first.member_id,
            "the existing leader keeps leading"
        );
        assert_eq!(a.members.len(), 2, "the leader sees every member");
        assert!(b.members.is_empty(), "followers get no member list");
        assert_eq!(a.protocol_name.as_deref(), Some("range"));

        let follower_sync = {
            let c = Arc::clone(&c);
            let id = b.member_id.clone();
            tokio::spawn(async move { c.sync(sync_request(&id, 2)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let leader_sync = c
            .sync(SyncRequest {
                protocol_type: Some("consumer".into()),
                protocol_name: Some("range".into()),
                assignments: vec![
                    assignment(&a.member_id, b"A"),
                    assignment(&b.member_id, b"B"),
                ],
                ..sync_request(&a.member_id, 2)
            })
            .await;
        assert_eq!(
            (leader_sync.error, &leader_sync.assignment[..]),
            (None, &b"A"[..])
        );
        let follower = finish(follower_sync).await;
        assert_eq!(
            (follower.error, &follower.assignment[..]),
            (None, &b"B"[..])
        );
        assert_eq!(c.heartbeat("g", 2, &b.member_id, None), Ok(()));
        assert_eq!(
            c.heartbeat("g", 1, &b.member_id, None),
            Err(ResponseError::IllegalGeneration)
        );
        assert_eq!(
            c.heartbeat("g", 2, "stranger", None),
            Err(ResponseError::UnknownMemberId)
        );
        assert_eq!(c.describe("g").unwrap().unwrap().state, GroupState::Stable);
    }

    #[tokio::test]
    async fn leaving_triggers_a_rebalance_and_the_last_leave_empties_the_group() {
        let c = coordinator();
        let only = finish(join_member(&c).await).await;
        let sync = c
            .sync(SyncRequest {
                assignments: vec![assignment(&only.member_id, b"x")],
                ..sync_request(&only.member_id, 1)
            })
            .await;
        assert_eq!(sync.error, None);
        assert_eq!(
            c.leave("g", &[leaving(&only.member_id)]),
            LeaveResult {
                error: None,
                members: vec![Ok(())]
            }
        );
        let group = c.describe("g").unwrap().unwrap();
        assert_eq!(group.state, GroupState::Empty);
        assert!(group.members.is_empty());
        assert_eq!(
            c.leave("g", &[leaving(&only.member_id)]).members,
            vec![Err(ResponseError::UnknownMemberId)]
        );
    }

    #[tokio::test]
    async fn invalid_joins_are_refused() {
        let c = coordinator();
        let mut request = join_request("");
        request.session_timeout_ms = 10;
        assert_eq!(
            c.join(request).await.error,
            Some(ResponseError::InvalidSessionTimeout)
        );
        let mut request = join_request("");
        request.group_id = String::new();
        assert_eq!(
            c.join(request).await.error,
            Some(ResponseError::InvalidGroupId)
        );
        assert_eq!(
            c.join(join_request("made-up")).await.error,
            Some(ResponseError::UnknownMemberId)
        );
        let member = finish(join_member(&c).await).await;
        let mut other_protocol = join_request("");
        other_protocol.require_known_member = false;
        other_protocol.protocols = vec![Protocol {
            name: "roundrobin-only".into(),
            metadata: Bytes::new(),
        }];
        assert_eq!(
            c.join(other_protocol).await.error,
            Some(ResponseError::InconsistentGroupProtocol)
        );
        assert_eq!(
            c.describe("g").unwrap().unwrap().members.len(),
            1,
            "a refused join must not add a member: {member:?}"
        );
    }

    #[tokio::test]
    async fn a_silent_member_expires_after_its_session_timeout() {
        let clock = Arc::new(ManualClock::default());
        let c = coordinator_with(Arc::clone(&clock));
        let only = finish(join_member(&c).await).await;
        let _ = c.sync(sync_request(&only.member_id, 1)).await;
        clock.advance(Duration::from_millis(9_900));
        c.tick().await;
        assert_eq!(
            c.describe("g").unwrap().unwrap().members.len(),
            1,
            "still inside the 10 s session"
        );
        clock.advance(Duration::from_millis(200));
        c.tick().await;
        let group = c.describe("g").unwrap().unwrap();
        assert!(
            group.members.is_empty(),
            "expired member still in the group"
        );
        assert_eq!(group.state, GroupState::Empty);
    }
}
