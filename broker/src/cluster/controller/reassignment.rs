//! Moving replicas between brokers (KIP-455): AlterPartitionReassignments and ListPartitionReassignments
//! on the active controller, with Kafka's rules (`PartitionReassignmentReplicas`, `PartitionChangeBuilder`).
//!
//! A move to target replicas `T` first widens the registration: `replicas = T + removing`, with
//! `adding_replicas = T - current` and `removing_replicas = current - T`. The new replicas follow the leader
//! as non-ISR followers until the leader's ISR expansion takes them in; the ISR change that makes `T` a
//! subset of the ISR completes the move in the same partition change: `replicas = T`, `ISR = ISR ∩ T`, a
//! leader from `T` when the current one leaves. Cancelling (null target) goes back to the replicas before
//! the move. Only the decisions live here, as pure functions over the image; the controller stores them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{calls::CallOutput, Controller, ControllerCall, TopicError};
use crate::cluster::{
    image::{MetadataImage, NodeId, PartitionChange, PartitionRegistration, NO_LEADER},
    store::MetadataChange,
};

/// Why one partition's reassignment was refused; each maps to Kafka's per-partition error. Crosses the
/// controller listener, so it carries only data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ReassignmentError {
    /// UNKNOWN_TOPIC_OR_PARTITION.
    #[error("Unable to find partition {topic}:{partition}.")]
    UnknownTopicOrPartition { topic: String, partition: i32 },
    /// INVALID_REPLICA_ASSIGNMENT, with Kafka's wording.
    #[error("{0}")]
    InvalidAssignment(String),
    /// INVALID_REPLICATION_FACTOR: `allow_replication_factor_change` was false (KIP-860).
    #[error("The replication factor is changed from {from} to {to}")]
    ReplicationFactorChange { from: usize, to: usize },
    /// NO_REASSIGNMENT_IN_PROGRESS: a cancel for a partition that is not moving.
    #[error("No partition reassignment is in progress for this topic or partition.")]
    NoReassignmentInProgress,
}

/// One partition of an AlterPartitionReassignments request: `target` None cancels its move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReassignmentRequest {
    pub topic: String,
    pub partition: i32,
    pub target: Option<Vec<NodeId>>,
}

/// The outcome for each requested partition, in request order.
pub type ReassignmentOutcomes = Vec<(String, i32, Result<(), ReassignmentError>)>;

/// Kafka's `validateManualPartitionAssignment`: a non-empty list of distinct registered brokers. A fenced
/// broker is accepted: its replica catches up once it is back, which is how a move is left pending.
fn validate_target(image: &MetadataImage, target: &[NodeId]) -> Result<(), ReassignmentError> {
    if target.is_empty() {
        return Err(ReassignmentError::InvalidAssignment(
            "The manual partition assignment includes an empty replica list.".into(),
        ));
    }
    let mut seen = BTreeSet::new();
    for broker in target {
        if !seen.insert(*broker) {
            return Err(ReassignmentError::InvalidAssignment(format!(
                "The manual partition assignment includes the broker {broker} more than once."
            )));
        }
        if !image.brokers.contains_key(broker) {
            return Err(ReassignmentError::InvalidAssignment(format!(
                "The manual partition assignment includes broker {broker}, but no such broker is registered."
            )));
        }
    }
    Ok(())
}

/// `a` without the members of `b`, in `a`'s order.
fn without(a: &[NodeId], b: &[NodeId]) -> Vec<NodeId> {
    a.iter().copied().filter(|id| !b.contains(id)).collect()
}

/// Kafka's clean election (`electAnyLeader`): the current leader stays if it is in the ISR and live,
/// otherwise the first ISR member in `replicas` order that can write, else the first live one.
fn elect(image: &MetadataImage, replicas: &[NodeId], isr: &[NodeId], current: NodeId) -> NodeId {
    if isr.contains(&current) && image.live_broker(current).is_some() {
        return current;
    }
    let in_isr = || replicas.iter().copied().filter(|id| isr.contains(id));
    in_isr()
        .find(|id| image.eligible_replica(*id))
        .or_else(|| in_isr().find(|id| image.live_broker(*id).is_some()))
        .unwrap_or(NO_LEADER)
}

/// The change that completes `candidate`'s move, if its ISR already holds the whole target
/// (`PartitionReassignmentReplicas.maybeCompleteReassignment`): the target becomes the replica set, the
/// leaving replicas leave the ISR, and a leader that leaves hands over to the target's first eligible ISR
/// member. Unlike Kafka, a move whose target has no replica able to lead waits rather than complete with
/// no leader: the current leader keeps serving until one can take over.
pub fn completion(
    image: &MetadataImage,
    candidate: &PartitionRegistration,
) -> Option<PartitionChange> {
    if !candidate.is_reassigning() {
        return None;
    }
    let target = without(&candidate.replicas, &candidate.removing_replicas);
    let isr = without(&candidate.isr, &candidate.removing_replicas);
    if target.is_empty() || isr.is_empty() || !target.iter().all(|id| isr.contains(id)) {
        return None;
    }
    let leader = elect(image, &target, &isr, candidate.leader);
    if leader == NO_LEADER && candidate.leader != NO_LEADER {
        return None;
    }
    Some(PartitionChange {
        replicas: Some(target),
        isr: Some(isr),
        leader: Some(leader),
        adding_replicas: Some(Vec::new()),
        removing_replicas: Some(Vec::new()),
    })
}

/// The ISR change `new_isr` of a leader's AlterPartition, completing the partition's move when it can.
pub fn isr_change(
    image: &MetadataImage,
    current: &PartitionRegistration,
    new_isr: Vec<NodeId>,
) -> PartitionChange {
    let candidate = PartitionRegistration {
        isr: new_isr.clone(),
        ..current.clone()
    };
    completion(image, &candidate).unwrap_or(PartitionChange {
        isr: Some(new_isr),
        ..PartitionChange::default()
    })
}

/// The change that starts moving `current` to `target` (`changePartitionReassignment`), completing it at
/// once where the ISR already holds the target (a reorder, or a replication factor decrease). None when
/// nothing changes. As in Kafka, a move that replaces one in progress computes adding and removing
/// replicas against the widened replica set, and keeps the previous adding (removing) replicas when the
/// new move adds (removes) none.
pub fn start(
    image: &MetadataImage,
    current: &PartitionRegistration,
    target: &[NodeId],
    allow_replication_factor_change: bool,
) -> Result<Option<PartitionChange>, ReassignmentError> {
    validate_target(image, target)?;
    if !allow_replication_factor_change {
        let from =
            current.replicas.len() - current.adding_replicas.len().min(current.replicas.len());
        if from != target.len() {
            return Err(ReassignmentError::ReplicationFactorChange {
                from,
                to: target.len(),
            });
        }
    }
    let removing: Vec<NodeId> = current
        .replicas
        .iter()
        .copied()
        .filter(|id| !target.contains(id))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let adding: Vec<NodeId> = target
        .iter()
        .copied()
        .filter(|id| !current.replicas.contains(id))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut replicas = target.to_vec();
    replicas.extend(&removing);
    let mut candidate = current.clone();
    candidate.replicas = replicas;
    if !removing.is_empty() {
        candidate.removing_replicas = removing;
    }
    if !adding.is_empty() {
        candidate.adding_replicas = adding;
    }
    if let Some(done) = completion(image, &candidate) {
        return Ok(Some(done));
    }
    let leader = elect(image, &candidate.replicas, &candidate.isr, current.leader);
    let change = PartitionChange {
        replicas: (candidate.replicas != current.replicas).then_some(candidate.replicas),
        isr: None,
        leader: (leader != current.leader).then_some(leader),
        adding_replicas: (candidate.adding_replicas != current.adding_replicas)
            .then_some(candidate.adding_replicas),
        removing_replicas: (candidate.removing_replicas != current.removing_replicas)
            .then_some(candidate.removing_replicas),
    };
    Ok((change != PartitionChange::default()).then_some(change))
}

/// The change that cancels `current`'s move (`PartitionReassignmentRevert`): the adding replicas leave the
/// replica set and the ISR. Refused, as Kafka does without unclean election, when only adding replicas
/// are in sync.
pub fn cancel(
    image: &MetadataImage,
    current: &PartitionRegistration,
) -> Result<PartitionChange, ReassignmentError> {
    if !current.is_reassigning() {
        return Err(ReassignmentError::NoReassignmentInProgress);
    }
    let replicas = without(&current.replicas, &current.adding_replicas);
    let isr = without(&current.isr, &current.adding_replicas);
    if isr.is_empty() {
        return Err(ReassignmentError::InvalidAssignment(
            "Unable to revert partition assignment because it would require an unclean leader election."
                .into(),
        ));
    }
    let leader = elect(image, &replicas, &isr, current.leader);
    Ok(PartitionChange {
        replicas: Some(replicas),
        isr: (isr != current.isr).then_some(isr),
        leader: (leader != current.leader).then_some(leader),
        adding_replicas: Some(Vec::new()),
        removing_replicas: Some(Vec::new()),
    })
}

/// One moving partition as ListPartitionReassignments reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OngoingReassignment {
    pub partition: i32,
    pub replicas: Vec<NodeId>,
    pub adding: Vec<NodeId>,
    pub removing: Vec<NodeId>,
}

/// The moves in progress, by topic: of every partition (`wanted` None), or of the named partitions
/// (unknown topics and partitions are left out, as Kafka does).
pub fn ongoing(
    image: &MetadataImage,
    wanted: Option<&[(String, Vec<i32>)]>,
) -> Vec<(String, Vec<OngoingReassignment>)> {
    let report = |index: i32, p: &PartitionRegistration| OngoingReassignment {
        partition: index,
        replicas: p.replicas.clone(),
        adding: p.adding_replicas.clone(),
        removing: p.removing_replicas.clone(),
    };
    let mut topics = Vec::new();
    let mut push = |name: &str, moving: Vec<OngoingReassignment>| {
        if !moving.is_empty() {
            topics.push((name.to_owned(), moving));
        }
    };
    match wanted {
        None => {
            for topic in image.topics.values() {
                let moving = (0..topic.partition_count())
                    .filter_map(|i| {
                        topic
                            .partition(i)
                            .filter(|p| p.is_reassigning())
                            .map(|p| report(i, p))
                    })
                    .collect();
                push(&topic.name, moving);
            }
        }
        Some(wanted) => {
            for (name, indexes) in wanted {
                let Some(topic) = image.topics.get(name) else {
                    continue;
                };
                let moving = indexes
                    .iter()
                    .filter_map(|i| {
                        topic
                            .partition(*i)
                            .filter(|p| p.is_reassigning())
                            .map(|p| report(*i, p))
                    })
                    .collect();
                push(name, moving);
            }
        }
    }
    topics
}

impl Controller {
    /// AlterPartitionReassignments: starts or cancels moves, all in one metadata entry.
    pub async fn alter_partition_reassignments(
        &self,
        requests: Vec<ReassignmentRequest>,
        allow_replication_factor_change: bool,
    ) -> Result<ReassignmentOutcomes, TopicError> {
        let call = ControllerCall::AlterPartitionReassignments {
            requests,
            allow_replication_factor_change,
        };
        match self.call(call).await? {
            CallOutput::Reassignments(outcomes) => Ok(outcomes),
            other => Err(super::calls::unexpected(&other)),
        }
    }

    pub(super) async fn alter_partition_reassignments_here(
        &self,
        requests: Vec<ReassignmentRequest>,
        allow_replication_factor_change: bool,
    ) -> Result<(CallOutput, u64), TopicError> {
        let _admin = self.topic_admin.lock().await;
        let image = self.image();
        // A partition named twice is decided the second time on the first decision's result.
        let mut decided: BTreeMap<(String, i32), PartitionRegistration> = BTreeMap::new();
        let mut changes = Vec::new();
        let mut outcomes = Vec::with_capacity(requests.len());
        for request in requests {
            let key = (request.topic.clone(), request.partition);
            let current = decided
                .get(&key)
                .cloned()
                .or_else(|| image.partition(&request.topic, request.partition).cloned());
            let outcome = match current {
                None => Err(ReassignmentError::UnknownTopicOrPartition {
                    topic: request.topic.clone(),
                    partition: request.partition,
                }),
                Some(current) => {
                    let change = match &request.target {
                        Some(target) => {
                            start(&image, &current, target, allow_replication_factor_change)
                        }
                        None => cancel(&image, &current).map(Some),
                    };
                    change.map(|change| {
                        if let Some(change) = change {
                            let mut next = current;
                            next.apply(change.clone());
                            tracing::info!(topic = %request.topic, partition = request.partition,
                                replicas = ?next.replicas, adding = ?next.adding_replicas,
                                removing = ?next.removing_replicas, leader = next.leader,
                                "partition reassignment {}", if request.target.is_some() { "started" } else { "cancelled" });
                            decided.insert(key, next);
                            changes.push(MetadataChange::ChangePartition {
                                topic: request.topic.clone(),
                                partition: request.partition,
                                change,
                            });
                        }
                    })
                }
            };
            outcomes.push((request.topic, request.partition, outcome));
        }
        let index = if changes.is_empty() {
            0
        } else {
            self.submit(changes).await?.1
        };
        Ok((CallOutput::Reassignments(outcomes), index))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cluster::image::{BrokerRegistration, TopicMetadata};

    fn image(
        brokers: &[NodeId],
        fenced: &[NodeId],
        partition: PartitionRegistration,
    ) -> MetadataImage {
        let mut image = MetadataImage::default();
        for id in brokers {
            image.brokers.insert(
                *id,
                BrokerRegistration {
                    fenced: fenced.contains(id),
                    ..BrokerRegistration::bare(*id, 1)
                },
            );
        }
        image.topics.insert(
            "t".into(),
            TopicMetadata {
                name: "t".into(),
                id: uuid::Uuid::new_v4(),
                replication_factor: 3,
                partitions: vec![partition],
                configs: Default::default(),
            },
        );
        image
    }

    fn applied(
        registration: &PartitionRegistration,
        change: PartitionChange,
    ) -> PartitionRegistration {
        let mut next = registration.clone();
        next.apply(change);
        next
    }

    #[test]
    fn a_move_widens_the_replicas_then_completes_when_the_target_is_in_sync() {
        let before = PartitionRegistration::new(vec![1, 2, 3]);
        let image = image(&[1, 2, 3, 4], &[], before.clone());
        let moving = applied(
            &before,
            start(&image, &before, &[2, 3, 4], true).unwrap().unwrap(),
        );
        assert_eq!(
            moving.replicas,
            [2, 3, 4, 1],
            "target first, then the leaving replicas"
        );
        assert_eq!(
            (
                moving.adding_replicas.clone(),
                moving.removing_replicas.clone()
            ),
            (vec![4], vec![1])
        );
        assert_eq!(
            (moving.isr.clone(), moving.leader, moving.leader_epoch),
            (vec![1, 2, 3], 1, 0)
        );
        // The leader's ISR expansions: adding 4 completes the move, and leader 1 leaves.
        let done = applied(&moving, isr_change(&image, &moving, vec![1, 2, 3, 4]));
        assert_eq!(done.replicas, [2, 3, 4]);
        assert_eq!(done.isr, [2, 3, 4]);
        assert_eq!(
            (done.leader, done.leader_epoch),
            (2, 1),
            "the target's first takes over"
        );
        assert!(!done.is_reassigning());
    }

    #[test]
    fn an_isr_change_short_of_the_target_only_changes_the_isr() {
        let mut before = PartitionRegistration::new(vec![1, 2]);
        before.isr = vec![1];
        let image = image(&[1, 2, 3], &[], before.clone());
        let moving = applied(
            &before,
            start(&image, &before, &[1, 2, 3], true).unwrap().unwrap(),
        );
        let change = isr_change(&image, &moving, vec![1, 3]);
        assert_eq!(
            change,
            PartitionChange {
                isr: Some(vec![1, 3]),
                ..PartitionChange::default()
            },
            "2 is still out of sync"
        );
        let done = applied(&moving, isr_change(&image, &moving, vec![1, 2, 3]));
        assert_eq!(
            (done.replicas.clone(), done.leader, done.leader_epoch),
            (vec![1, 2, 3], 1, 0)
        );
    }

    #[test]
    fn replication_factor_changes_both_ways() {
        let one = PartitionRegistration::new(vec![1]);
        let image = image(&[1, 2, 3], &[], one.clone());
        assert_eq!(
            start(&image, &one, &[1, 2, 3], false),
            Err(ReassignmentError::ReplicationFactorChange { from: 1, to: 3 })
        );
        let growing = applied(
            &one,
            start(&image, &one, &[1, 2, 3], true).unwrap().unwrap(),
        );
        assert_eq!(
            (growing.replicas.clone(), growing.adding_replicas.clone()),
            (vec![1, 2, 3], vec![2, 3])
        );
        assert!(growing.removing_replicas.is_empty());
        let three = applied(&growing, isr_change(&image, &growing, vec![1, 2, 3]));
        assert_eq!(
            (three.replicas.clone(), three.isr.clone()),
            (vec![1, 2, 3], vec![1, 2, 3])
        );
        // Down to one replica that is in sync: complete at once, and the leader leaves.
        let one_again = applied(&three, start(&image, &three, &[3], true).unwrap().unwrap());
        assert_eq!(
            (
                one_again.replicas.clone(),
                one_again.isr.clone(),
                one_again.leader
            ),
            (vec![3], vec![3], 3)
        );
        assert!(!one_again.is_reassigning());
    }

    #[test]
    fn a_reorder_completes_at_once_and_a_repeat_is_a_no_op() {
        let before = PartitionRegistration::new(vec![1, 2, 3]);
        let image = image(&[1, 2, 3], &[], before.clone());
        let change = start(&image, &before, &[3, 2, 1], false).unwrap().unwrap();
        let after = applied(&before, change);
        assert_eq!(
            (after.replicas.clone(), after.leader),
            (vec![3, 2, 1], 1),
            "the in-sync leader stays"
        );
        assert_eq!(start(&image, &after, &[3, 2, 1], true), Ok(None));
    }

    #[test]
    fn cancelling_goes_back_to_the_original_replicas() {
        let before = PartitionRegistration::new(vec![1, 2, 3]);
        let image = image(&[1, 2, 3, 4], &[4], before.clone());
        let moving = applied(
            &before,
            start(&image, &before, &[2, 3, 4], true).unwrap().unwrap(),
        );
        let reverted = applied(&moving, cancel(&image, &moving).unwrap());
        assert_eq!(
            (
                reverted.replicas.clone(),
                reverted.isr.clone(),
                reverted.leader
            ),
            (vec![2, 3, 1], vec![1, 2, 3], 1)
        );
        assert!(!reverted.is_reassigning());
        assert_eq!(
            cancel(&image, &reverted),
            Err(ReassignmentError::NoReassignmentInProgress)
        );
    }

    #[test]
    fn cancelling_drops_an_adding_replica_that_leads() {
        let before = PartitionRegistration::new(vec![1]);
        let image = image(&[1, 2], &[], before.clone());
        let mut moving = applied(
            &before,
            start(&image, &before, &[1, 2], true).unwrap().unwrap(),
        );
        // 2 caught up and was elected (1 was briefly fenced), then the move is cancelled.
        moving.isr = vec![1, 2];
        moving.leader = 2;
        let reverted = applied(&moving, cancel(&image, &moving).unwrap());
        assert_eq!(
            (
                reverted.replicas.clone(),
                reverted.isr.clone(),
                reverted.leader
            ),
            (vec![1], vec![1], 1)
        );
        assert_eq!(reverted.leader_epoch, moving.leader_epoch + 1);
        moving.isr = vec![2];
        assert!(
            matches!(
                cancel(&image, &moving),
                Err(ReassignmentError::InvalidAssignment(_))
            ),
            "2 alone holds everything"
        );
    }

    #[test]
    fn targets_must_be_distinct_registered_brokers() {
        let before = PartitionRegistration::new(vec![1, 2, 3]);
        let image = image(&[1, 2, 3, 4], &[4], before.clone());
        for bad in [vec![], vec![1, 1, 2], vec![1, 2, 9]] {
            assert!(
                matches!(
                    start(&image, &before, &bad, true),
                    Err(ReassignmentError::InvalidAssignment(_))
                ),
                "{bad:?} should be refused"
            );
        }
        assert!(
            start(&image, &before, &[1, 2, 4], true).is_ok(),
            "a fenced broker may be a target"
        );
    }

    #[test]
    fn a_move_whose_target_cannot_lead_waits() {
        let mut before = PartitionRegistration::new(vec![1, 2]);
        before.replicas = vec![2, 1];
        before.removing_replicas = vec![1];
        before.isr = vec![1, 2];
        let image = image(&[1, 2], &[2], before.clone());
        assert_eq!(
            completion(&image, &before),
            None,
            "2 is fenced: 1 keeps leading"
        );
    }

    #[test]
    fn listing_reports_only_moving_partitions() {
        let before = PartitionRegistration::new(vec![1, 2, 3]);
        let mut image = image(&[1, 2, 3, 4], &[], before.clone());
        assert!(ongoing(&image, None).is_empty());
        let moving = applied(
            &before,
            start(&image, &before, &[2, 3, 4], true).unwrap().unwrap(),
        );
        image.topics.get_mut("t").unwrap().partitions[0] = moving;
        let all = ongoing(&image, None);
        assert_eq!(
            all,
            [(
                "t".to_owned(),
                vec![OngoingReassignment {
                    partition: 0,
                    replicas: vec![2, 3, 4, 1],
                    adding: vec![4],
                    removing: vec![1],
                }]
            )]
        );
        assert_eq!(
            ongoing(
                &image,
                Some(&[("t".to_owned(), vec![0, 7]), ("x".to_owned(), vec![0])])
            ),
            all
        );
        assert!(ongoing(&image, Some(&[("t".to_owned(), vec![1])])).is_empty());
    }
}
