//! Scaling down safely. Removing a broker that still holds replicas loses data (strimzi #133, redpanda-operator
//! #1906), so brokers above `spec.brokers` leave in steps, each decided here from what the status recorded and
//! what the cluster metadata says now, never from the operator's memory:
//!
//! 1. the scale-down is checked: the brokers that stay must be able to hold every topic's replicas and satisfy
//!    `min.insync.replicas`, their disks must have room for what the others hold, and in a static metadata
//!    quorum no voter may go; otherwise it is refused with `ScaleDownBlocked` and nothing is touched. The
//!    offsets topic is the exception: its replication factor is the operator's, so the operator lowers it to
//!    what the brokers that stay can hold (see [`super::offsets_topic`]) before anything is drained;
//! 2. each broker to remove, highest ids first, is marked `tributary.broker.draining`, and its controller moves
//!    its replicas and leaderships to the brokers that stay (`Draining`);
//! 3. once every one of them holds no replica and, in a dynamic quorum, is no longer a voter (the reconciler
//!    removes their voters meanwhile, see [`super::voters::voter_change`]), they are `Drained` and the
//!    StatefulSet shrinks;
//! 4. once their pods are gone, each is unregistered from the cluster metadata (`Removed`), so that an id used
//!    again later joins as a new broker and is filled with its share.
//!
//! Raising `spec.brokers` again before the StatefulSet shrank cancels: the brokers that stay are un-drained.
//! Pure: the caller reads the running replica count, the voters, the status and the cluster metadata, and
//! carries out the broker calls the plan lists.

use std::collections::BTreeMap;

use super::offsets_topic::{OffsetsTopicView, OFFSETS_TOPIC};
use super::voters::{Topology, Voters};
use crate::crd::QuorumMode;
use crate::{
    crd::{RemovalState, RemovingBroker},
    kafka_admin::{ClusterMetadata, LogDirUsage},
};

/// What a scale-down must leave the cluster: enough brokers for acks=all writes, and free disk on the
/// brokers that stay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScaleLimits {
    /// The cluster's `min.insync.replicas`.
    pub min_insync_replicas: i32,
    /// The share of each remaining broker's disk left free once the data has moved (the KafkaCluster's
    /// `storage.scaleDownFreeSpacePercent`); above the broker's own write reserve (5 %, at most 64 MiB), so
    /// that the brokers that stay do not start refusing writes once the data arrives.
    pub free_space_percent: u8,
}

/// What the cluster metadata says, as far as a scale-down needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// Partition replicas per broker id; a broker that holds none is absent.
    pub replicas_on: BTreeMap<i32, i32>,
    /// A topic with the largest replication factor, and that factor; the offsets topic, whose factor the
    /// operator lowers itself before a drain, is left out.
    pub largest_replication_factor: Option<(String, usize)>,
    /// The offsets topic, once a group made the brokers create it.
    pub offsets_topic: Option<OffsetsTopicView>,
    /// Each broker's log directory as it described it; a broker that did not answer is absent.
    pub disks: BTreeMap<i32, LogDirUsage>,
}

impl ClusterView {
    /// The view of `metadata` (every topic, internal ones included).
    pub fn of(metadata: &ClusterMetadata) -> Self {
        let mut view = Self {
            offsets_topic: OffsetsTopicView::of(metadata),
            ..Self::default()
        };
        for (topic, partitions) in &metadata.topics {
            for partition in partitions.values() {
                for id in &partition.replicas {
                    *view.replicas_on.entry(*id).or_insert(0) += 1;
                }
                // A partition being moved lists its leaving replicas too; the scale-down must fit the
                // replicas it keeps.
                let factor = partition.replication_factor();
                if topic != OFFSETS_TOPIC
                    && view
                        .largest_replication_factor
                        .as_ref()
                        .is_none_or(|(_, largest)| factor > *largest)
                {
                    view.largest_replication_factor = Some((topic.clone(), factor));
                }
            }
        }
        view
    }
}

/// Why a scale-down was not carried out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockedBy {
    /// The spec asks for fewer brokers than a static metadata quorum has voters: its voters are fixed
    /// (`controller.quorum.voters`, a cluster created by an operator that formed static quorums only).
    VoterRemovalNotSupported { voters: Voters },
    /// A topic has more replicas per partition than brokers would remain.
    ReplicationFactor { topic: String, factor: usize },
    /// Fewer brokers would remain than `min.insync.replicas`: acks=all writes would be refused.
    MinInsyncReplicas { min_insync_replicas: i32 },
    /// The cluster metadata could not be read, so nobody knows what the brokers to remove hold.
    ClusterUnreachable { error: String },
    /// The brokers that would remain lack the free disk for what the brokers to remove hold.
    NotEnoughDisk {
        free_space_percent: u8,
        leaving: Vec<i32>,
        needed_bytes: u64,
        available_bytes: u64,
    },
}

impl BlockedBy {
    /// Condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            BlockedBy::VoterRemovalNotSupported { .. } => "VoterRemovalNotSupported",
            BlockedBy::ReplicationFactor { .. } => "ReplicationFactorTooLarge",
            BlockedBy::MinInsyncReplicas { .. } => "MinInsyncReplicas",
            BlockedBy::ClusterUnreachable { .. } => "ClusterUnreachable",
            BlockedBy::NotEnoughDisk { .. } => "NotEnoughDisk",
        }
    }
}

/// A scale-down that was not carried out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScaleDownBlocked {
    /// Brokers the spec asks for.
    pub requested: i32,
    /// Brokers that keep running.
    pub running: i32,
    pub by: BlockedBy,
}

impl ScaleDownBlocked {
    pub fn blocked_by(&self) -> &BlockedBy {
        &self.by
    }
}

impl std::fmt::Display for ScaleDownBlocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            requested, running, ..
        } = *self;
        write!(f, "spec.brokers is {requested} but {running} brokers run; ")?;
        match &self.by {
            BlockedBy::VoterRemovalNotSupported { voters } => write!(
                f,
                "brokers {voters} are the voters of the metadata quorum, fixed when the cluster was created \
                 (a static quorum, controller.quorum.voters), so spec.brokers cannot go below {}; clusters \
                 created since the operator forms dynamic quorums move their voters; nothing is removed",
                voters.min_brokers()
            ),
            BlockedBy::ReplicationFactor { topic, factor } => write!(
                f,
                "topic {topic} has replication factor {factor}, more than the {requested} brokers that would \
                 remain; lower its replication factor first (the Topic's spec.replicationFactor, or \
                 kafka-reassign-partitions.sh) or keep at least {factor} brokers; nothing is removed"
            ),
            BlockedBy::MinInsyncReplicas {
                min_insync_replicas,
            } => write!(
                f,
                "min.insync.replicas is {min_insync_replicas}, so with {requested} brokers acks=all writes would \
                 be refused; lower it in spec.brokerConfig first or keep at least {min_insync_replicas} brokers; \
                 nothing is removed"
            ),
            BlockedBy::ClusterUnreachable { error } => write!(
                f,
                "the cluster metadata cannot be read ({error}), so what the brokers to remove hold is unknown; \
                 nothing is removed until it can be read"
            ),
            BlockedBy::NotEnoughDisk {
                free_space_percent,
                leaving,
                needed_bytes,
                available_bytes,
            } => write!(
                f,
                "brokers {leaving:?} hold {needed_bytes} bytes of partition data, but the {requested} brokers that \
                 would remain have only {available_bytes} bytes free beyond the {free_space_percent} % of \
                 their disks each keeps free (storage.scaleDownFreeSpacePercent); give the brokers larger \
                 volumes, delete data (retention) or keep more brokers; nothing is removed"
            ),
        }
    }
}

/// What a reconcile does about the broker count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalePlan {
    /// What the StatefulSet runs.
    pub topology: Topology,
    /// The brokers on their way out, for the status (highest id first).
    pub removing: Vec<RemovingBroker>,
    /// Brokers to mark draining (setting it again changes nothing).
    pub drain: Vec<i32>,
    /// Brokers that stay after all and lose their drain mark.
    pub undrain: Vec<i32>,
    /// Drained brokers whose pods are gone, to unregister; each becomes `Removed` once the cluster agrees.
    pub unregister: Vec<i32>,
    pub blocked: Option<ScaleDownBlocked>,
    /// Nothing is drained yet: the offsets topic must first be lowered to what the brokers that stay can
    /// hold (see [`super::offsets_topic`]), or a move of it is still in progress.
    pub offsets_topic_first: bool,
}

/// Whether a reconcile must read the cluster metadata before [`plan`]: brokers run above the spec, or a
/// removal recorded in the status is not finished.
pub fn needs_cluster_view(
    requested: i32,
    running: Option<i32>,
    previous: &[RemovingBroker],
) -> bool {
    running.unwrap_or(0) > requested || previous.iter().any(|b| b.state != RemovalState::Removed)
}

/// Whether [`plan`] will check the disks, so the caller must fill [`ClusterView::disks`]: brokers run above
/// the spec and none of them has been marked draining yet (the check is made once, before the first mark).
pub fn needs_disk_view(requested: i32, running: Option<i32>, previous: &[RemovingBroker]) -> bool {
    running.unwrap_or(0) > requested && !removal_started(requested, previous)
}

/// Whether a removal of brokers at or above `requested` is under way.
fn removal_started(requested: i32, previous: &[RemovingBroker]) -> bool {
    previous
        .iter()
        .any(|b| b.id >= requested && b.state != RemovalState::Removed)
}

/// The plan for a spec of `requested` brokers when `running` run now (`None`: no StatefulSet yet), `voters` vote
/// in a quorum configured as `mode`,
/// the status recorded `previous`, and the cluster metadata reads as `view` (`Err`: it could not be read; only
/// consulted when brokers run above the spec).
pub fn plan(
    requested: i32,
    running: Option<i32>,
    voters: Voters,
    mode: QuorumMode,
    previous: &[RemovingBroker],
    view: Result<&ClusterView, &str>,
    limits: ScaleLimits,
) -> ScalePlan {
    let running = running.unwrap_or(0);
    let topology = |brokers: i32, voters: &Voters| Topology {
        brokers,
        voters: voters.clone(),
        mode,
    };
    let floor = topology(0, &voters).min_brokers();
    // Brokers back under the spec stay: a scale-down raised again before they were removed is cancelled.
    let mut undrain: Vec<i32> = previous
        .iter()
        .filter(|b| b.id < requested && b.state != RemovalState::Removed)
        .map(|b| b.id)
        .collect();
    let previous: Vec<RemovingBroker> = previous
        .iter()
        .filter(|b| b.id >= requested)
        .cloned()
        .collect();
    let keep_running = |by: BlockedBy, undrain: &mut Vec<i32>| {
        undrain.extend(
            previous
                .iter()
                .filter(|b| b.state != RemovalState::Removed)
                .map(|b| b.id),
        );
        ScalePlan {
            topology: topology(running.max(floor).max(requested), &voters),
            removing: Vec::new(),
            drain: Vec::new(),
            undrain: std::mem::take(undrain),
            unregister: Vec::new(),
            offsets_topic_first: false,
            blocked: Some(ScaleDownBlocked {
                requested,
                running: running.max(floor).max(requested),
                by,
            }),
        }
    };
    if requested < floor {
        return keep_running(
            BlockedBy::VoterRemovalNotSupported {
                voters: voters.clone(),
            },
            &mut undrain,
        );
    }
    let leaving: Vec<i32> = (requested..running).rev().collect();
    if leaving.is_empty() {
        // Nothing runs above the spec: the pods of drained brokers are gone, so they can be forgotten.
        let unregister = previous
            .iter()
            .filter(|b| b.state != RemovalState::Removed)
            .map(|b| b.id)
            .collect();
        return ScalePlan {
            topology: topology(requested, &voters),
            removing: previous,
            drain: Vec::new(),
            undrain,
            unregister,
            blocked: None,
            offsets_topic_first: false,
        };
    }
    let view = match view {
        Ok(view) => view,
        Err(error) => {
            // Unknown holdings: keep everything as it is, drain marks included, until the metadata reads.
            let mut plan = keep_running(
                BlockedBy::ClusterUnreachable {
                    error: error.to_owned(),
                },
                &mut undrain,
            );
            plan.undrain.retain(|id| *id < requested);
            plan.removing = previous.clone();
            return plan;
        }
    };
    if let Some((topic, factor)) = &view.largest_replication_factor {
        if *factor > usize::try_from(requested).unwrap_or(0) {
            return keep_running(
                BlockedBy::ReplicationFactor {
                    topic: topic.clone(),
                    factor: *factor,
                },
                &mut undrain,
            );
        }
    }
    if limits.min_insync_replicas > requested {
        return keep_running(
            BlockedBy::MinInsyncReplicas {
                min_insync_replicas: limits.min_insync_replicas,
            },
            &mut undrain,
        );
    }
    if !removal_started(requested, &previous) {
        if let Some(blocked) = disk_shortage(view, requested, &leaving, limits.free_space_percent) {
            return keep_running(blocked, &mut undrain);
        }
        if view.offsets_topic.is_some_and(|offsets| {
            offsets.moving || offsets.replication_factor > usize::try_from(requested).unwrap_or(0)
        }) {
            return ScalePlan {
                topology: topology(running, &voters),
                removing: previous,
                drain: Vec::new(),
                undrain,
                unregister: Vec::new(),
                blocked: None,
                offsets_topic_first: true,
            };
        }
    }
    let removing: Vec<RemovingBroker> = leaving
        .iter()
        .map(|id| {
            let replicas = view.replicas_on.get(id).copied().unwrap_or(0);
            // A voter of a dynamic quorum leaves the voters before its broker goes.
            let votes = mode != QuorumMode::Static && voters.contains(*id);
            RemovingBroker {
                id: *id,
                state: if replicas == 0 && !votes {
                    RemovalState::Drained
                } else {
                    RemovalState::Draining
                },
                replicas,
            }
        })
        .collect();
    let drained = removing.iter().all(|b| b.state == RemovalState::Drained);
    ScalePlan {
        topology: topology(if drained { requested } else { running }, &voters),
        removing,
        drain: leaving,
        undrain,
        unregister: Vec::new(),
        blocked: None,
        offsets_topic_first: false,
    }
}

/// Whether the brokers below `requested` lack the room for what `leaving` hold, each keeping
/// `free_space_percent` of its disk free. Checked once, before the first drain mark (moving data back
/// because the disks filled meanwhile would cost more than finishing); not checked when a broker's disk is
/// unknown (it did not answer DescribeLogDirs, or gives no sizes), since a shortage does not lose data here:
/// the drain would stop with the replicas still on the brokers to remove, which stay.
fn disk_shortage(
    view: &ClusterView,
    requested: i32,
    leaving: &[i32],
    free_space_percent: u8,
) -> Option<BlockedBy> {
    let needed_bytes = leaving
        .iter()
        .map(|id| view.disks.get(id).map(|d| d.held_bytes))
        .sum::<Option<u64>>()?;
    let available_bytes = (0..requested)
        .map(|id| {
            let disk = view.disks.get(&id)?;
            let headroom = disk
                .total_bytes?
                .saturating_mul(u64::from(free_space_percent))
                / 100;
            Some(disk.usable_bytes?.saturating_sub(headroom))
        })
        .sum::<Option<u64>>()?;
    (needed_bytes > available_bytes).then(|| BlockedBy::NotEnoughDisk {
        free_space_percent,
        leaving: leaving.to_vec(),
        needed_bytes,
        available_bytes,
    })
}

#[cfg(test)]
mod tests;
