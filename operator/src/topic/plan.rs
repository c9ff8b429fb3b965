//! Pure decisions of the Topic reconciler: which Topic owns a Kafka topic name, and what to change on the brokers
//! to make a described topic match the spec. Never does I/O.

use std::collections::BTreeMap;

use kube::ResourceExt;

use crate::{
    crd::Topic,
    kafka_admin::{ClusterMetadata, ConfigChange, PartitionPlacement, TopicDescription},
};

/// The Kafka topic name a Topic manages: `spec.topicName`, else `metadata.name`.
pub fn kafka_topic_name(topic: &Topic) -> String {
    topic
        .spec
        .topic_name
        .clone()
        .unwrap_or_else(|| topic.name_any())
}

/// Among every Topic in the namespace, the one that owns `topic`'s Kafka topic: the oldest Topic naming the same
/// topic on the same cluster (ties broken by name). A younger duplicate never touches the brokers, so creating a
/// second Topic by mistake cannot change or delete the first one's data.
pub fn owner<'a>(
    topic: &'a Topic,
    namespace_topics: impl IntoIterator<Item = &'a Topic>,
) -> &'a Topic {
    let name = kafka_topic_name(topic);
    let mut owner = topic;
    for other in namespace_topics {
        let same_target = other.spec.cluster_ref.name == topic.spec.cluster_ref.name
            && other.namespace() == topic.namespace()
            && kafka_topic_name(other) == name;
        if same_target && age_key(other) < age_key(owner) {
            owner = other;
        }
    }
    owner
}

fn age_key(topic: &Topic) -> (Option<k8s_openapi::jiff::Timestamp>, String) {
    (
        topic.metadata.creation_timestamp.as_ref().map(|t| t.0),
        topic.name_any(),
    )
}

/// The config changes that make a topic's overrides equal `desired`: set what differs, delete overrides the spec
/// does not list (the spec is the whole truth for a managed topic).
pub fn config_changes(
    desired: &BTreeMap<String, String>,
    current: &BTreeMap<String, String>,
) -> Vec<ConfigChange> {
    let sets = desired
        .iter()
        .filter(|(name, value)| current.get(*name) != Some(*value))
        .map(|(name, value)| ConfigChange::Set {
            name: name.clone(),
            value: value.clone(),
        });
    let deletes = current
        .keys()
        .filter(|name| !desired.contains_key(*name))
        .map(|name| ConfigChange::Delete { name: name.clone() });
    sets.chain(deletes).collect()
}

/// How a described topic differs from the spec in ways the operator cannot or will not fix by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// The topic has more partitions than the spec; Kafka cannot remove partitions.
    PartitionsAboveSpec { actual: i32, desired: i32 },
    /// The replication factor differs and cannot be changed: fewer live brokers than the spec asks for.
    ReplicationFactorDiffers {
        actual: i32,
        desired: i32,
        brokers: usize,
    },
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Drift::PartitionsAboveSpec { actual, desired } => write!(
                f,
                "the topic has {actual} partitions but the spec asks for {desired}; Kafka cannot remove partitions, \
                 so set spec.partitions to at least {actual}"
            ),
            Drift::ReplicationFactorDiffers {
                actual,
                desired,
                brokers,
            } => write!(
                f,
                "the topic has replication factor {actual} but the spec asks for {desired}, more than the \
                 {brokers} live brokers can hold; add brokers or lower spec.replicationFactor"
            ),
        }
    }
}

/// What to do to an existing topic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Grow to this many partitions.
    pub grow_partitions_to: Option<i32>,
    /// Config overrides to set or delete.
    pub config_changes: Vec<ConfigChange>,
    /// Change every partition's replica count to this, by reassignment (see [`replica_targets`]).
    pub change_replication_factor_to: Option<i32>,
    /// Differences left as they are, reported in the status.
    pub drift: Vec<Drift>,
}

impl Plan {
    /// Whether the brokers already match the spec.
    pub fn is_empty(&self) -> bool {
        self.grow_partitions_to.is_none()
            && self.config_changes.is_empty()
            && self.change_replication_factor_to.is_none()
    }
}

/// Plans the changes that bring `described` (with config overrides `overrides`) to `topic`'s spec.
pub fn plan(
    topic: &Topic,
    described: &TopicDescription,
    overrides: &BTreeMap<String, String>,
) -> Plan {
    let desired_partitions = topic.spec.partitions;
    let mut plan = Plan {
        config_changes: config_changes(&topic.spec.config, overrides),
        ..Plan::default()
    };
    if described.partitions < desired_partitions {
        plan.grow_partitions_to = Some(desired_partitions);
    } else if described.partitions > desired_partitions {
        plan.drift.push(Drift::PartitionsAboveSpec {
            actual: described.partitions,
            desired: desired_partitions,
        });
    }
    if described.replication_factor != topic.spec.replication_factor {
        plan.change_replication_factor_to = Some(topic.spec.replication_factor);
    }
    plan
}

/// The reassignments that give every partition of `topic` `factor` replicas, as KIP-455 moves the brokers
/// carry out (new replicas catch up as followers before they count): a partition with too few gets the live
/// brokers holding the fewest replicas cluster-wide (counting the ones just planned) appended, so its
/// preferred leader stays; one with too many drops replicas from the end, never its current leader. Partitions
/// that already have `factor` replicas are left out. Refused with the drift to report when fewer live brokers
/// run than `factor`.
pub fn replica_targets(
    cluster: &ClusterMetadata,
    topic: &str,
    factor: i32,
) -> Result<Vec<(i32, Vec<i32>)>, Drift> {
    let partitions = cluster.topics.get(topic).cloned().unwrap_or_default();
    let wanted = usize::try_from(factor).unwrap_or(0);
    let actual = partitions
        .values()
        .map(PartitionPlacement::replication_factor)
        .max()
        .unwrap_or(0);
    if wanted > cluster.brokers.len() {
        return Err(Drift::ReplicationFactorDiffers {
            actual: i32::try_from(actual).unwrap_or(i32::MAX),
            desired: factor,
            brokers: cluster.brokers.len(),
        });
    }
    let mut load: BTreeMap<i32, usize> = cluster.brokers.keys().map(|id| (*id, 0)).collect();
    for placement in cluster.topics.values().flat_map(BTreeMap::values) {
        for id in placement.kept_replicas() {
            if let Some(count) = load.get_mut(&id) {
                *count += 1;
            }
        }
    }
    let mut targets = Vec::new();
    for (index, placement) in &partitions {
        // A partition being moved starts from the move's target: a new reassignment replaces the move
        // (KIP-455), and one whose target already has `factor` replicas is left to finish.
        let mut target = placement.kept_replicas();
        if target.len() == wanted {
            continue;
        }
        while target.len() < wanted {
            let Some(id) = load
                .iter()
                .filter(|(id, _)| !target.contains(id))
                .min_by_key(|(id, count)| (**count, **id))
                .map(|(id, _)| *id)
            else {
                break;
            };
            *load.entry(id).or_insert(0) += 1;
            target.push(id);
        }
        while target.len() > wanted.max(1) {
            let Some(position) = target.iter().rposition(|id| *id != placement.leader) else {
                break;
            };
            let id = target.remove(position);
            if let Some(count) = load.get_mut(&id) {
                *count = count.saturating_sub(1);
            }
        }
        targets.push((*index, target));
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn described(partitions: i32, replication_factor: i32) -> TopicDescription {
        TopicDescription {
            id: Uuid::nil(),
            partitions,
            replication_factor,
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn kafka_name_defaults_to_the_resource_name() {
        assert_eq!(kafka_topic_name(&Topic::test()), "orders");
        assert_eq!(
            kafka_topic_name(&Topic::test().topic_name("Orders.v2")),
            "Orders.v2"
        );
    }

    #[test]
    fn the_oldest_topic_for_a_name_owns_it() {
        let first = Topic::test().named("orders").created_at(100);
        let duplicate = Topic::test()
            .named("orders-copy")
            .topic_name("orders")
            .created_at(200);
        let unrelated = Topic::test().named("payments").created_at(50);
        let other_cluster = Topic::test()
            .named("orders-elsewhere")
            .topic_name("orders")
            .cluster("other")
            .created_at(10);
        let all = vec![duplicate.clone(), unrelated, other_cluster, first.clone()];
        assert_eq!(owner(&duplicate, &all).name_any(), "orders");
        assert_eq!(owner(&first, &all).name_any(), "orders");
    }

    #[test]
    fn same_age_duplicates_are_ordered_by_name() {
        let a = Topic::test().named("a").topic_name("t").created_at(100);
        let b = Topic::test().named("b").topic_name("t").created_at(100);
        let all = vec![b.clone(), a.clone()];
        assert_eq!(owner(&b, &all).name_any(), "a");
    }

    #[test]
    fn config_diff_sets_changes_and_removes_unlisted_overrides() {
        let desired = map(&[("retention.ms", "60000"), ("cleanup.policy", "compact")]);
        let current = map(&[("retention.ms", "1000"), ("segment.bytes", "1048576")]);
        let mut changes = config_changes(&desired, &current);
        changes.sort();
        assert_eq!(
            changes,
            vec![
                ConfigChange::Set {
                    name: "cleanup.policy".into(),
                    value: "compact".into()
                },
                ConfigChange::Set {
                    name: "retention.ms".into(),
                    value: "60000".into()
                },
                ConfigChange::Delete {
                    name: "segment.bytes".into()
                },
            ]
        );
        assert!(config_changes(&desired, &desired).is_empty());
    }

    #[test]
    fn growing_partitions_is_planned_and_shrinking_is_reported() {
        let topic = Topic::test().partitions(6).replication_factor(1);
        let grow = plan(&topic, &described(3, 1), &BTreeMap::new());
        assert_eq!(grow.grow_partitions_to, Some(6));
        assert!(grow.drift.is_empty());

        let topic = Topic::test().partitions(3).replication_factor(1);
        let above = plan(&topic, &described(6, 1), &BTreeMap::new());
        assert_eq!(above.grow_partitions_to, None);
        assert!(above.is_empty());
        assert_eq!(
            above.drift,
            vec![Drift::PartitionsAboveSpec {
                actual: 6,
                desired: 3
            }]
        );
        assert!(above.drift[0].to_string().contains("at least 6"));
    }

    #[test]
    fn a_replication_factor_difference_is_planned() {
        let topic = Topic::test()
            .partitions(3)
            .replication_factor(3)
            .config("retention.ms", "1000");
        let planned = plan(&topic, &described(3, 1), &map(&[("retention.ms", "1000")]));
        assert!(!planned.is_empty());
        assert_eq!(planned.change_replication_factor_to, Some(3));
        assert!(planned.drift.is_empty());
    }

    /// Per partition: (replicas, leader).
    type Placements = Vec<(Vec<i32>, i32)>;

    fn cluster(brokers: &[i32], topics: &[(&str, Placements)]) -> ClusterMetadata {
        ClusterMetadata {
            cluster_id: None,
            controller_id: brokers[0],
            brokers: brokers
                .iter()
                .map(|id| (*id, format!("b{id}:9092")))
                .collect(),
            topics: topics
                .iter()
                .map(|(name, partitions)| {
                    (
                        (*name).to_owned(),
                        partitions
                            .iter()
                            .enumerate()
                            .map(|(i, (replicas, leader))| {
                                (
                                    i32::try_from(i).expect("a small index"),
                                    PartitionPlacement {
                                        leader: *leader,
                                        replicas: replicas.clone(),
                                        isr: replicas.clone(),
                                        ..PartitionPlacement::default()
                                    },
                                )
                            })
                            .collect(),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn growing_the_replication_factor_appends_the_least_loaded_brokers() {
        // Broker 2 already holds two replicas of another topic.
        let metadata = cluster(
            &[1, 2, 3, 4],
            &[
                ("orders", vec![(vec![1], 1), (vec![2], 2), (vec![3], 3)]),
                ("other", vec![(vec![2, 4], 2), (vec![2], 2)]),
            ],
        );
        let targets = replica_targets(&metadata, "orders", 3).expect("enough brokers");
        assert_eq!(targets.len(), 3);
        for (index, target) in &targets {
            assert_eq!(target.len(), 3, "partition {index}: {target:?}");
            assert_eq!(
                target[0],
                [1, 2, 3][*index as usize],
                "the preferred leader stays first"
            );
            let distinct: std::collections::BTreeSet<_> = target.iter().collect();
            assert_eq!(distinct.len(), 3);
        }
        let mut load = BTreeMap::new();
        for id in targets.iter().flat_map(|(_, t)| t).chain([2, 4, 2].iter()) {
            *load.entry(*id).or_insert(0) += 1;
        }
        let min = load.values().min().expect("loads");
        let max = load.values().max().expect("loads");
        assert!(max - min <= 1, "replicas spread over the brokers: {load:?}");
    }

    #[test]
    fn shrinking_keeps_the_leader_and_drops_from_the_end() {
        let metadata = cluster(
            &[1, 2, 3],
            &[("orders", vec![(vec![1, 2, 3], 3), (vec![2, 3], 2)])],
        );
        let targets = replica_targets(&metadata, "orders", 1).expect("a shrink");
        assert_eq!(targets, vec![(0, vec![3]), (1, vec![2])]);
        assert!(
            replica_targets(&metadata, "orders", 2).expect("a shrink") == vec![(0, vec![1, 3])]
        );
    }

    #[test]
    fn a_factor_above_the_live_brokers_is_drift() {
        let metadata = cluster(&[1, 2], &[("orders", vec![(vec![1], 1)])]);
        let refused = replica_targets(&metadata, "orders", 3).expect_err("too few brokers");
        assert_eq!(
            refused,
            Drift::ReplicationFactorDiffers {
                actual: 1,
                desired: 3,
                brokers: 2
            }
        );
        assert!(refused.to_string().contains("add brokers"), "{refused}");
    }

    #[test]
    fn a_partition_being_moved_is_judged_by_the_replicas_it_keeps() {
        // A fill moves partition 0 from [1, 2, 3] to [1, 2, 4]; Metadata lists four replicas meanwhile.
        let mut metadata = cluster(
            &[1, 2, 3, 4],
            &[("orders", vec![(vec![1, 2, 4, 3], 1), (vec![2, 3, 4], 2)])],
        );
        metadata
            .topics
            .get_mut("orders")
            .and_then(|partitions| partitions.get_mut(&0))
            .expect("partition 0")
            .removing = vec![3];
        assert_eq!(
            replica_targets(&metadata, "orders", 3).expect("enough brokers"),
            Vec::<(i32, Vec<i32>)>::new(),
            "the move is left to finish"
        );
        assert_eq!(
            replica_targets(&metadata, "orders", 2).expect("a shrink"),
            vec![(0, vec![1, 2]), (1, vec![2, 3])],
            "a new factor replaces the move's target"
        );
    }
}
