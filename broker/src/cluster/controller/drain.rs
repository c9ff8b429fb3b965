//! Draining a broker (`tributary.broker.draining=true` on broker resource `id`): the active controller
//! moves its leaderships to other ISR members and its replicas to other brokers, through the ordinary
//! reassignment machinery, so ListPartitionReassignments shows the moves and they complete as a user's do.
//!
//! Every decision is a pure function of the image: a controller that takes over mid-drain derives the same
//! remaining work from the same metadata, with nothing kept in memory.

use std::collections::BTreeMap;

use super::{reassignment, Controller, TopicError};
use crate::cluster::{
    image::{MetadataImage, NodeId, PartitionChange},
    store::MetadataChange,
};

/// At most this many reassignments in progress cluster-wide (any cause) before a drain starts another, so
/// draining a big broker does not flood the network with catch-up traffic.
pub const MAX_CONCURRENT_MOVES: usize = 10;

/// One move a drain wants: `topic`/`partition` to `target` (its replicas with the draining broker replaced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedMove {
    pub topic: String,
    pub partition: i32,
    pub target: Vec<NodeId>,
}

/// Brokers that may receive a drained replica: registered, not fenced, not draining.
fn receivers(image: &MetadataImage) -> Vec<NodeId> {
    image
        .live_brokers()
        .map(|b| b.id)
        .filter(|id| !image.draining(*id))
        .collect()
}

/// Why draining `broker` is refused, if it is: the first partition with a replica on it that has too few
/// registered, non-draining other brokers to move to. Fenced brokers count: a move to one waits for it.
pub fn refusal(image: &MetadataImage, broker: NodeId) -> Option<String> {
    let others = image
        .brokers
        .keys()
        .filter(|id| **id != broker && !image.draining(**id))
        .count();
    for topic in image.topics.values() {
        for (index, partition) in topic.partitions.iter().enumerate() {
            if !partition.replicas.contains(&broker) {
                continue;
            }
            let factor = partition.replicas.len() - partition.adding_replicas.len();
            if factor > others {
                return Some(format!(
                    "Cannot drain broker {broker}: partition {}-{index} has replication factor {factor} \
                     but only {others} registered non-draining brokers other than {broker} can hold it.",
                    topic.name
                ));
            }
        }
    }
    None
}

/// Replicas per broker over the whole image (a moving partition counts on both sides).
fn loads(image: &MetadataImage) -> BTreeMap<NodeId, usize> {
    let mut load = BTreeMap::new();
    for topic in image.topics.values() {
        for partition in &topic.partitions {
            for id in &partition.replicas {
                *load.entry(*id).or_insert(0) += 1;
            }
        }
    }
    load
}

/// The moves to start now for every draining broker, at most `max_moves` in progress cluster-wide counting
/// the ones already moving. A partition already moving (a user's move, or an earlier drain step) is never
/// touched. Each draining replica is replaced in place by the least-loaded receiver that is not already a
/// replica, preferring one on a rack the remaining replicas do not use; a partition with no receiver waits.
pub fn plan(image: &MetadataImage, max_moves: usize) -> Vec<PlannedMove> {
    let draining: Vec<NodeId> = image
        .brokers
        .keys()
        .copied()
        .filter(|id| image.draining(*id))
        .collect();
    if draining.is_empty() {
        return Vec::new();
    }
    let ongoing = image
        .topics
        .values()
        .flat_map(|t| &t.partitions)
        .filter(|p| p.is_reassigning())
        .count();
    let mut budget = max_moves.saturating_sub(ongoing);
    let receivers = receivers(image);
    let mut load = loads(image);
    let rack = |id: NodeId| image.brokers.get(&id).and_then(|b| b.rack.as_deref());
    let mut moves = Vec::new();
    for topic in image.topics.values() {
        for (index, partition) in topic.partitions.iter().enumerate() {
            if budget == 0 {
                return moves;
            }
            if partition.is_reassigning()
                || !partition.replicas.iter().any(|id| draining.contains(id))
            {
                continue;
            }
            let mut target = partition.replicas.clone();
            let mut complete = true;
            for slot in 0..target.len() {
                if !draining.contains(&target[slot]) {
                    continue;
                }
                let used_racks: Vec<Option<&str>> = target
                    .iter()
                    .filter(|id| !draining.contains(id))
                    .map(|id| rack(*id))
                    .collect();
                let choice = receivers
                    .iter()
                    .copied()
                    .filter(|id| !target.contains(id))
                    .min_by_key(|id| {
                        let rack_taken = rack(*id).is_some() && used_racks.contains(&rack(*id));
                        (rack_taken, load.get(id).copied().unwrap_or(0), *id)
                    });
                match choice {
                    Some(id) => {
                        *load.entry(id).or_insert(0) += 1;
                        target[slot] = id;
                    }
                    None => {
                        complete = false;
                        break;
                    }
                }
            }
            if complete {
                budget -= 1;
                moves.push(PlannedMove {
                    topic: topic.name.clone(),
                    partition: i32::try_from(index).unwrap_or(i32::MAX),
                    target,
                });
            }
        }
    }
    moves
}

/// Leadership changes handing every draining broker's leaderships to the first eligible, non-draining ISR
/// member in replica order. The draining broker stays in the ISR: its data is still needed while it moves.
pub fn leadership_changes(image: &MetadataImage) -> Vec<MetadataChange> {
    let mut changes = Vec::new();
    for topic in image.topics.values() {
        for (index, partition) in topic.partitions.iter().enumerate() {
            if !image.draining(partition.leader) {
                continue;
            }
            let next = partition.replicas.iter().copied().find(|id| {
                partition.isr.contains(id) && image.eligible_replica(*id) && !image.draining(*id)
            });
            if let Some(leader) = next {
                changes.push(MetadataChange::ChangePartition {
                    topic: topic.name.clone(),
                    partition: i32::try_from(index).unwrap_or(i32::MAX),
                    change: PartitionChange {
                        leader: Some(leader),
                        ..PartitionChange::default()
                    },
                });
            }
        }
    }
    changes
}

/// The partition a `ChangePartition` change names.
fn changed_partition(change: &MetadataChange) -> Option<(&str, i32)> {
    match change {
        MetadataChange::ChangePartition {
            topic, partition, ..
        } => Some((topic.as_str(), *partition)),
        _ => None,
    }
}

/// The changes that start `moves` as ordinary reassignments; a move the reassignment rules refuse is logged
/// and left out. `why` ("draining", "filling") names the controller's reason in the log.
pub(super) fn start_moves(
    image: &MetadataImage,
    moves: Vec<PlannedMove>,
    why: &str,
) -> Vec<MetadataChange> {
    let mut changes = Vec::new();
    for planned in moves {
        let Some(current) = image.partition(&planned.topic, planned.partition) else {
            continue;
        };
        match reassignment::start(image, current, &planned.target, false) {
            Ok(Some(change)) => {
                tracing::info!(topic = %planned.topic, partition = planned.partition,
                    target = ?planned.target, "{why}: partition reassignment started");
                changes.push(MetadataChange::ChangePartition {
                    topic: planned.topic,
                    partition: planned.partition,
                    change,
                });
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(topic = %planned.topic, partition = planned.partition, error = %e,
                    "{why}: move refused")
            }
        }
    }
    changes
}

impl Controller {
    /// One drain step on the active controller: leaderships off draining brokers, then new moves up to
    /// [`MAX_CONCURRENT_MOVES`]. Decided under the admin lock, so a user's move started meanwhile wins.
    pub(super) async fn drain_step(&self) -> Result<(), TopicError> {
        let _admin = self.topic_admin.lock().await;
        let image = self.image();
        if !image.brokers.keys().any(|id| image.draining(*id)) {
            return Ok(());
        }
        let moves = start_moves(&image, plan(&image, MAX_CONCURRENT_MOVES), "draining");
        // A leadership change for a partition that starts moving is superseded by the move's own election.
        let moving: Vec<(&str, i32)> = moves.iter().filter_map(changed_partition).collect();
        let mut changes: Vec<MetadataChange> = leadership_changes(&image)
            .into_iter()
            .filter(|c| changed_partition(c).is_none_or(|key| !moving.contains(&key)))
            .collect();
        changes.extend(moves);
        if !changes.is_empty() {
            self.submit(changes).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
