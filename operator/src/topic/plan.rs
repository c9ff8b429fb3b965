//! Pure decisions of the Topic reconciler: which Topic owns a Kafka topic name, and what to change on the brokers
//! to make a described topic match the spec. Never does I/O.

use std::collections::BTreeMap;

use kube::ResourceExt;

use crate::{
    crd::Topic,
    kafka_admin::{ConfigChange, TopicDescription},
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
    /// The replication factor differs; changing it needs a partition reassignment.
    ReplicationFactorDiffers { actual: i32, desired: i32 },
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Drift::PartitionsAboveSpec { actual, desired } => write!(
                f,
                "the topic has {actual} partitions but the spec asks for {desired}; Kafka cannot remove partitions, \
                 so set spec.partitions to at least {actual}"
            ),
            Drift::ReplicationFactorDiffers { actual, desired } => write!(
                f,
                "the topic has replication factor {actual} but the spec asks for {desired}; changing the \
                 replication factor of an existing topic needs a reassignment, which the operator does not do yet"
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
    /// Differences left as they are, reported in the status.
    pub drift: Vec<Drift>,
}

impl Plan {
    /// Whether the brokers already match the spec.
    pub fn is_empty(&self) -> bool {
        self.grow_partitions_to.is_none() && self.config_changes.is_empty()
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
        plan.drift.push(Drift::ReplicationFactorDiffers {
            actual: described.replication_factor,
            desired: topic.spec.replication_factor,
        });
    }
    plan
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
    fn replication_factor_difference_is_reported_not_changed() {
        let topic = Topic::test()
            .partitions(3)
            .replication_factor(3)
            .config("retention.ms", "1000");
        let planned = plan(&topic, &described(3, 1), &map(&[("retention.ms", "1000")]));
        assert!(planned.is_empty());
        assert_eq!(
            planned.drift,
            vec![Drift::ReplicationFactorDiffers {
                actual: 1,
                desired: 3
            }]
        );
    }
}
