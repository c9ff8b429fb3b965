//! `__consumer_offsets` follows the cluster. Kafka sizes the offsets topic once, when the first group needs it,
//! from `offsets.topic.replication.factor` capped at the brokers alive then, and never again. The operator sets
//! that config from the broker count (see [`super::build::live_broker_config`]), so without this a cluster
//! started with one broker and grown to three keeps its group offsets on one broker, and a cluster scaled
//! below the offsets topic's replication factor could not be drained at all. The operator owns the setting, so
//! it owns the topic's replication factor: it keeps the topic at the live `offsets.topic.replication.factor`,
//! at most the brokers that stay, by ordinary reassignments (KIP-455: new replicas catch up before they
//! count). A user's own topics keep the replication factor their owner chose.
//!
//! Pure: the reconciler reads the cluster metadata and carries out the reassignments planned here.

use std::collections::BTreeMap;

use crate::kafka_admin::{ClusterMetadata, PartitionPlacement};
use crate::topic::plan::replica_targets;

/// Kafka's group offsets topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// What the cluster metadata says of the offsets topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetsTopicView {
    /// The largest replication factor of its partitions, counting what a move in progress keeps.
    pub replication_factor: usize,
    /// A partition of it is being moved: its replicas are leaving or arriving.
    pub moving: bool,
}

impl OffsetsTopicView {
    /// `None` while no group has made the brokers create the topic.
    pub fn of(metadata: &ClusterMetadata) -> Option<Self> {
        let partitions = metadata.topics.get(OFFSETS_TOPIC)?;
        Some(Self {
            replication_factor: partitions
                .values()
                .map(PartitionPlacement::replication_factor)
                .max()
                .unwrap_or(0),
            moving: partitions.values().any(|p| !p.removing.is_empty()),
        })
    }
}

/// The replication factor the offsets topic is kept at: the live `offsets.topic.replication.factor` (Kafka's
/// default 3 when unset or unreadable), at most the `staying` brokers and at least one.
pub fn wanted_factor(live_config: &BTreeMap<String, String>, staying: i32) -> usize {
    let configured = live_config
        .get("offsets.topic.replication.factor")
        .and_then(|v| v.trim().parse::<i32>().ok())
        .unwrap_or(3);
    usize::try_from(configured.min(staying).max(1)).unwrap_or(1)
}

/// The reassignments that give every partition of the offsets topic `factor` replicas; empty when it has them
/// or a move of it is still in progress (each step starts from settled replicas, so no move is replaced
/// half-way). Growing appends the live brokers holding the fewest replicas; shrinking first drops the replicas
/// on brokers at or above `staying` (those about to be drained, whose data would move anyway), then from the
/// end, keeping the leader while another choice exists. `None` when fewer live brokers run than `factor`.
pub fn targets(
    metadata: &ClusterMetadata,
    factor: usize,
    staying: i32,
) -> Option<Vec<(i32, Vec<i32>)>> {
    let view = OffsetsTopicView::of(metadata)?;
    if view.moving {
        return Some(Vec::new());
    }
    let partitions = metadata.topics.get(OFFSETS_TOPIC)?;
    if partitions.values().any(|p| p.replicas.len() < factor) {
        let wanted = i32::try_from(factor).unwrap_or(i32::MAX);
        let grown = replica_targets(metadata, OFFSETS_TOPIC, wanted).ok()?;
        // A partition already above the factor is left to the shrink below, on a later step.
        return Some(
            grown
                .into_iter()
                .filter(|(_, target)| target.len() == factor)
                .filter(|(index, _)| {
                    partitions
                        .get(index)
                        .is_some_and(|p| p.replicas.len() < factor)
                })
                .collect(),
        );
    }
    let mut targets = Vec::new();
    for (index, placement) in partitions {
        if placement.replicas.len() <= factor {
            continue;
        }
        let mut target = placement.replicas.clone();
        while target.len() > factor {
            let leaving = target.iter().rposition(|id| *id >= staying);
            let other = target.iter().rposition(|id| *id != placement.leader);
            let Some(position) = leaving.or(other) else {
                break;
            };
            target.remove(position);
        }
        targets.push((*index, target));
    }
    Some(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(brokers: &[i32], partitions: &[(&[i32], i32)]) -> ClusterMetadata {
        ClusterMetadata {
            brokers: brokers
                .iter()
                .map(|id| (*id, format!("b{id}:9092")))
                .collect(),
            topics: [(
                OFFSETS_TOPIC.to_owned(),
                partitions
                    .iter()
                    .enumerate()
                    .map(|(i, (replicas, leader))| {
                        (
                            i32::try_from(i).expect("a small index"),
                            PartitionPlacement {
                                leader: *leader,
                                replicas: replicas.to_vec(),
                                isr: replicas.to_vec(),
                                ..PartitionPlacement::default()
                            },
                        )
                    })
                    .collect(),
            )]
            .into_iter()
            .collect(),
            ..ClusterMetadata::default()
        }
    }

    fn live(factor: &str) -> BTreeMap<String, String> {
        [(
            "offsets.topic.replication.factor".to_owned(),
            factor.to_owned(),
        )]
        .into_iter()
        .collect()
    }

    #[test]
    fn the_factor_follows_the_config_within_the_brokers_that_stay() {
        assert_eq!(wanted_factor(&live("3"), 5), 3);
        assert_eq!(wanted_factor(&live("3"), 2), 2);
        assert_eq!(wanted_factor(&live("3"), 0), 1);
        assert_eq!(wanted_factor(&live("4"), 5), 4);
        assert_eq!(wanted_factor(&BTreeMap::new(), 5), 3, "Kafka's default");
    }

    #[test]
    fn a_cluster_grown_from_one_broker_gets_replicated_offsets() {
        let grown = metadata(&[0, 1, 2], &[(&[0], 0), (&[0], 0)]);
        let planned = targets(&grown, 3, 3).expect("three live brokers");
        assert_eq!(planned.len(), 2);
        for (index, target) in &planned {
            assert_eq!(target[0], 0, "partition {index} keeps its leader first");
            let mut sorted = target.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, [0, 1, 2]);
        }
        assert_eq!(
            targets(&grown, 4, 4),
            None,
            "four replicas need four brokers"
        );
    }

    #[test]
    fn shrinking_drops_the_replicas_of_the_brokers_that_leave_first() {
        // Scaling 3 -> 1: broker 0 stays.
        let three = metadata(
            &[0, 1, 2],
            &[(&[0, 1, 2], 1), (&[2, 0, 1], 2), (&[1, 2, 0], 0)],
        );
        assert_eq!(
            targets(&three, 1, 1),
            Some(vec![(0, vec![0]), (1, vec![0]), (2, vec![0])])
        );
        // Lowered by config with every broker staying: from the end, never the leader.
        assert_eq!(
            targets(&three, 2, 3),
            Some(vec![(0, vec![0, 1]), (1, vec![2, 0]), (2, vec![1, 0])])
        );
    }

    #[test]
    fn nothing_is_planned_while_a_move_runs_or_when_the_factor_fits() {
        let mut moving = metadata(&[0, 1, 2], &[(&[0, 1, 2], 0), (&[0], 0)]);
        moving
            .topics
            .get_mut(OFFSETS_TOPIC)
            .and_then(|p| p.get_mut(&0))
            .expect("partition 0")
            .removing = vec![1, 2];
        assert_eq!(targets(&moving, 3, 3), Some(vec![]));
        let settled = metadata(&[0, 1, 2], &[(&[0, 1, 2], 0)]);
        assert_eq!(targets(&settled, 3, 3), Some(vec![]));
        assert_eq!(
            targets(&ClusterMetadata::default(), 3, 3),
            None,
            "no topic yet"
        );
    }
}
