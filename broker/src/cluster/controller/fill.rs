//! Filling a broker (`tributary.broker.filling=true` on broker resource `id`): the active controller moves
//! replicas onto it from the brokers holding the most, through the ordinary reassignment machinery, until
//! it holds its even share; then it clears the flag. A broker that registers for the first time into a
//! cluster with partitions gets the flag (Redpanda's `node_add` autobalancing), so a scale-up does not leave
//! the new brokers empty until someone runs a rebalancing tool.
//!
//! As with draining, every decision is a pure function of the image: a controller that takes over mid-fill
//! derives the same remaining work, and the flag's absence tells an operator that the fill is finished.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    drain::{self, PlannedMove},
    Controller, TopicError,
};
use crate::cluster::{
    image::{MetadataImage, NodeId, PartitionRegistration},
    store::MetadataChange,
};

/// What one fill step does: the moves to start, and the filling brokers that are finished (their flag is
/// cleared).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FillPlan {
    pub moves: Vec<PlannedMove>,
    pub finished: Vec<NodeId>,
}

/// The replicas a partition ends up with once its move (if any) completes.
fn final_replicas(partition: &PartitionRegistration) -> Vec<NodeId> {
    partition
        .replicas
        .iter()
        .copied()
        .filter(|id| !partition.removing_replicas.contains(id))
        .collect()
}

/// Replicas and preferred leaderships per broker, counting every partition as it will be once the moves
/// in progress complete: a replica that is on its way counts at its destination only.
fn final_loads(image: &MetadataImage) -> (BTreeMap<NodeId, usize>, BTreeMap<NodeId, usize>) {
    let mut replicas = BTreeMap::new();
    let mut preferred = BTreeMap::new();
    for partition in image.topics.values().flat_map(|t| &t.partitions) {
        let target = final_replicas(partition);
        for id in &target {
            *replicas.entry(*id).or_insert(0) += 1;
        }
        if let Some(first) = target.first() {
            *preferred.entry(*first).or_insert(0) += 1;
        }
    }
    (replicas, preferred)
}

/// The moves to start now for every filling broker, at most `max_moves` in progress cluster-wide counting
/// the ones already moving. The even share is the total replica count over the live, non-draining brokers,
/// rounded down. Each move takes one replica from the broker holding the most (only while it holds at
/// least two more than the filling broker, so no move undoes another) and puts the filling broker in its
/// slot, without putting two replicas on one rack where they were on two. Preferred leaderships move too,
/// until the filling broker has its share of them, so leaders even out once preferred leaders are elected.
/// Partitions already moving or with a draining replica are left alone. A filling broker is finished once
/// it holds its share (or no move can bring it closer) and nothing is still moving onto it; one that is
/// draining is finished at once; one that is fenced waits.
pub fn plan(image: &MetadataImage, max_moves: usize) -> FillPlan {
    let filling: Vec<NodeId> = image
        .brokers
        .keys()
        .copied()
        .filter(|id| image.filling(*id))
        .collect();
    let mut plan = FillPlan::default();
    if filling.is_empty() {
        return plan;
    }
    let receivers = image
        .live_brokers()
        .filter(|b| !image.draining(b.id))
        .count();
    let partitions: Vec<(&str, i32, &PartitionRegistration)> = image.indexed_partitions().collect();
    let total_replicas: usize = partitions
        .iter()
        .map(|(_, _, p)| final_replicas(p).len())
        .sum();
    let share = total_replicas.checked_div(receivers).unwrap_or(0);
    let leader_share = partitions.len().checked_div(receivers).unwrap_or(0);
    let ongoing = partitions
        .iter()
        .filter(|(_, _, p)| p.is_reassigning())
        .count();
    let mut budget = max_moves.saturating_sub(ongoing);
    let (mut load, mut preferred) = final_loads(image);
    let rack = |id: NodeId| image.brokers.get(&id).and_then(|b| b.rack.as_deref());
    let mut planned: BTreeSet<(&str, i32)> = BTreeSet::new();
    for broker in filling {
        if image.draining(broker) {
            plan.finished.push(broker);
            continue;
        }
        if image.live_broker(broker).is_none() {
            continue;
        }
        let mut settled = true;
        loop {
            let held = load.get(&broker).copied().unwrap_or(0);
            if held >= share {
                break;
            }
            if budget == 0 {
                settled = false;
                break;
            }
            let wants_leadership = preferred.get(&broker).copied().unwrap_or(0) < leader_share;
            let candidate = partitions
                .iter()
                .filter(|(topic, index, p)| {
                    !p.is_reassigning()
                        && !p.replicas.contains(&broker)
                        && !p.replicas.iter().any(|id| image.draining(*id))
                        && !planned.contains(&(*topic, *index))
                })
                .flat_map(|(topic, index, p)| {
                    let target = final_replicas(p);
                    (0..target.len()).filter_map(move |slot| {
                        let source = target[slot];
                        let rack_kept = rack(source) == rack(broker)
                            || !target
                                .iter()
                                .any(|id| *id != source && rack(*id) == rack(broker));
                        rack_kept.then(|| (*topic, *index, target.clone(), slot))
                    })
                })
                .filter(|(_, _, target, slot)| {
                    load.get(&target[*slot]).copied().unwrap_or(0) > held + 1
                })
                // The fullest source first; then a slot that moves a preferred leadership exactly when the
                // filling broker still wants one; then the first in topic and partition order.
                .min_by_key(|(topic, index, target, slot)| {
                    let source_load = load.get(&target[*slot]).copied().unwrap_or(0);
                    (
                        std::cmp::Reverse(source_load),
                        (*slot == 0) != wants_leadership,
                        *topic,
                        *index,
                    )
                });
            let Some((topic, index, mut target, slot)) = candidate else {
                break;
            };
            let source = target[slot];
            target[slot] = broker;
            *load.entry(source).or_insert(0) -= 1;
            *load.entry(broker).or_insert(0) += 1;
            if slot == 0 {
                *preferred.entry(source).or_insert(0) -= 1;
                *preferred.entry(broker).or_insert(0) += 1;
            }
            planned.insert((topic, index));
            budget -= 1;
            plan.moves.push(PlannedMove {
                topic: topic.to_owned(),
                partition: index,
                target,
            });
        }
        let arriving = partitions
            .iter()
            .any(|(_, _, p)| p.adding_replicas.contains(&broker))
            || plan.moves.iter().any(|m| m.target.contains(&broker));
        if settled && !arriving {
            plan.finished.push(broker);
        }
    }
    plan
}

/// The change that sets (or clears) `flag` in broker `id`'s per-broker configs, keeping the others.
pub fn flag_change(image: &MetadataImage, id: NodeId, flag: &str, on: bool) -> MetadataChange {
    let mut configs = image.node_configs.get(&id).cloned().unwrap_or_default();
    if on {
        configs.insert(flag.to_owned(), "true".to_owned());
    } else {
        configs.remove(flag);
    }
    MetadataChange::SetNodeConfigs { id, configs }
}

impl Controller {
    /// One fill step on the active controller, after the drain step (a drain's moves take the shared
    /// budget of [`drain::MAX_CONCURRENT_MOVES`] first). Returns whether a fill finished, so preferred
    /// leaders can be elected at once rather than at the next periodic check.
    pub(super) async fn fill_step(&self) -> Result<bool, TopicError> {
        let _admin = self.topic_admin.lock().await;
        let image = self.image();
        if !image.brokers.keys().any(|id| image.filling(*id)) {
            return Ok(false);
        }
        let plan = plan(&image, drain::MAX_CONCURRENT_MOVES);
        let mut changes = drain::start_moves(&image, plan.moves, "filling");
        if !plan.finished.is_empty() {
            let (loads, _) = final_loads(&image);
            for id in &plan.finished {
                tracing::info!(
                    broker = id,
                    replicas = loads.get(id).copied().unwrap_or(0),
                    "filling: broker holds its share of replicas"
                );
                changes.push(flag_change(
                    &image,
                    *id,
                    crate::config::FILLING_CONFIG,
                    false,
                ));
            }
        }
        if !changes.is_empty() {
            self.submit(changes).await?;
        }
        Ok(!plan.finished.is_empty())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
