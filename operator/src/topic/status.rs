//! Computes a Topic's status from what its reconcile found. Pure: the clock is an argument, so an unchanged
//! outcome gives a byte-identical status and no write.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use uuid::Uuid;

use super::plan::Drift;
use crate::{conditions::Conditions, crd::TopicStatus, kafka_admin::topic_id_string};

/// Condition type: the Kafka topic exists as the spec declares it.
pub const READY: &str = "Ready";
/// Condition type: another, older Topic manages the same Kafka topic; this one is ignored.
pub const CONFLICT: &str = "Conflict";

/// Reason: the topic matches the spec.
pub const REASON_RECONCILED: &str = "Reconciled";
/// Reason: the referenced KafkaCluster does not exist.
pub const REASON_CLUSTER_NOT_FOUND: &str = "ClusterNotFound";
/// Reason: the referenced KafkaCluster's spec is invalid, so its brokers' address is unknown.
pub const REASON_CLUSTER_INVALID: &str = "ClusterInvalid";
/// Reason: a second Topic for a name already managed.
pub const REASON_CONFLICT: &str = "Conflict";
/// Reason: the brokers refused the spec (a bad config value, too high a replication factor...).
pub const REASON_INVALID_SPEC: &str = "InvalidSpec";
/// Reason: the brokers could not be reached or failed; retried with backoff.
pub const REASON_KAFKA_UNAVAILABLE: &str = "KafkaUnavailable";
/// Reason: the topic has more partitions than the spec.
pub const REASON_PARTITIONS_ABOVE_SPEC: &str = "PartitionsAboveSpec";
/// Reason: the replication factor differs from the spec.
pub const REASON_REPLICATION_FACTOR_DIFFERS: &str = "ReplicationFactorDiffers";

/// What a reconcile found.
#[derive(Debug)]
pub enum Outcome<'a> {
    /// The topic exists; `drift` lists what still differs and needs a person.
    Reconciled {
        kafka_name: &'a str,
        partitions: i32,
        topic_id: Uuid,
        drift: &'a [Drift],
    },
    /// `spec.clusterRef` names no KafkaCluster in the namespace.
    ClusterNotFound { cluster: &'a str },
    /// The KafkaCluster exists but is invalid.
    ClusterInvalid { cluster: &'a str },
    /// An older Topic manages the same Kafka topic.
    Conflict { kafka_name: &'a str, owner: &'a str },
    /// The brokers refused the spec.
    InvalidSpec { message: &'a str },
    /// The brokers could not be reached; the reconcile is retried.
    KafkaUnavailable { message: &'a str },
}

/// The status to write after a reconcile of generation `generation`.
pub fn status(
    previous: Option<&TopicStatus>,
    generation: Option<i64>,
    outcome: &Outcome<'_>,
    now: &Time,
) -> TopicStatus {
    let mut next = previous.cloned().unwrap_or_default();
    next.observed_generation = generation;
    let mut conditions = Conditions {
        list: &mut next.conditions,
        generation,
        now,
    };
    if let Outcome::Conflict { kafka_name, owner } = outcome {
        conditions.set(
            CONFLICT,
            true,
            REASON_CONFLICT,
            &format!("Kafka topic {kafka_name} is managed by Topic {owner}; this Topic is ignored until that one is deleted"),
        );
    } else {
        conditions.remove(CONFLICT);
    }
    let (ready, reason, message) = match outcome {
        Outcome::Reconciled {
            kafka_name,
            partitions,
            drift,
            ..
        } => match drift.first() {
            None => (
                true,
                REASON_RECONCILED,
                format!("topic {kafka_name} has {partitions} partitions and the declared config"),
            ),
            Some(first) => {
                let reason = drift_reason(first);
                let message = drift
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                (false, reason, message)
            }
        },
        Outcome::ClusterNotFound { cluster } => (
            false,
            REASON_CLUSTER_NOT_FOUND,
            format!("KafkaCluster {cluster} does not exist in this namespace"),
        ),
        Outcome::ClusterInvalid { cluster } => (
            false,
            REASON_CLUSTER_INVALID,
            format!("KafkaCluster {cluster} has an invalid spec; see its conditions"),
        ),
        Outcome::Conflict { kafka_name, owner } => (
            false,
            REASON_CONFLICT,
            format!("Kafka topic {kafka_name} is already managed by Topic {owner}"),
        ),
        Outcome::InvalidSpec { message } => (
            false,
            REASON_INVALID_SPEC,
            format!("the brokers refused the spec: {message}"),
        ),
        Outcome::KafkaUnavailable { message } => (
            false,
            REASON_KAFKA_UNAVAILABLE,
            format!("{message}; retrying"),
        ),
    };
    conditions.set(READY, ready, reason, &message);
    if let Outcome::Reconciled { topic_id, .. } = outcome {
        next.topic_id = (!topic_id.is_nil()).then(|| topic_id_string(*topic_id));
    }
    next
}

/// The condition and Event reason of a drift.
pub fn drift_reason(drift: &Drift) -> &'static str {
    match drift {
        Drift::PartitionsAboveSpec { .. } => REASON_PARTITIONS_ABOVE_SPEC,
        Drift::ReplicationFactorDiffers { .. } => REASON_REPLICATION_FACTOR_DIFFERS,
    }
}

/// Whether `status` says the topic is Ready.
pub fn is_ready(status: Option<&TopicStatus>) -> bool {
    status.is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == READY && c.status == "True")
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).expect("valid timestamp"))
    }

    fn ready(status: &TopicStatus) -> (&str, &str) {
        let condition = status
            .conditions
            .iter()
            .find(|c| c.type_ == READY)
            .expect("Ready condition");
        (condition.status.as_str(), condition.reason.as_str())
    }

    #[test]
    fn reconciled_topic_is_ready_with_its_id() {
        let id = Uuid::from_u128(7);
        let outcome = Outcome::Reconciled {
            kafka_name: "orders",
            partitions: 3,
            topic_id: id,
            drift: &[],
        };
        let status = status(None, Some(2), &outcome, &at(10));
        assert_eq!(ready(&status), ("True", REASON_RECONCILED));
        assert_eq!(status.observed_generation, Some(2));
        assert_eq!(status.topic_id, Some(topic_id_string(id)));
        assert!(is_ready(Some(&status)));
    }

    #[test]
    fn unchanged_outcome_gives_an_identical_status() {
        let outcome = Outcome::ClusterNotFound { cluster: "demo" };
        let first = status(None, Some(1), &outcome, &at(10));
        let second = status(Some(&first), Some(1), &outcome, &at(99));
        assert_eq!(first, second);
    }

    #[test]
    fn conflict_sets_its_condition_and_clears_it_once_resolved() {
        let conflict = Outcome::Conflict {
            kafka_name: "orders",
            owner: "orders-original",
        };
        let status1 = status(None, Some(1), &conflict, &at(10));
        assert_eq!(ready(&status1), ("False", REASON_CONFLICT));
        assert!(status1.conditions.iter().any(|c| c.type_ == CONFLICT
            && c.status == "True"
            && c.message.contains("orders-original")));

        let resolved = Outcome::Reconciled {
            kafka_name: "orders",
            partitions: 3,
            topic_id: Uuid::from_u128(1),
            drift: &[],
        };
        let status2 = status(Some(&status1), Some(1), &resolved, &at(20));
        assert!(!status2.conditions.iter().any(|c| c.type_ == CONFLICT));
        assert_eq!(ready(&status2), ("True", REASON_RECONCILED));
    }

    #[test]
    fn drift_keeps_the_topic_not_ready_and_says_what_to_do() {
        let drift = [Drift::PartitionsAboveSpec {
            actual: 6,
            desired: 3,
        }];
        let outcome = Outcome::Reconciled {
            kafka_name: "orders",
            partitions: 6,
            topic_id: Uuid::from_u128(1),
            drift: &drift,
        };
        let status = status(None, Some(1), &outcome, &at(10));
        assert_eq!(ready(&status), ("False", REASON_PARTITIONS_ABOVE_SPEC));
        assert!(!is_ready(Some(&status)));
    }

    #[test]
    fn a_failure_keeps_the_known_topic_id() {
        let previous = TopicStatus {
            topic_id: Some("abc".into()),
            ..TopicStatus::default()
        };
        let outcome = Outcome::KafkaUnavailable {
            message: "cannot connect",
        };
        let status = status(Some(&previous), Some(1), &outcome, &at(10));
        assert_eq!(status.topic_id.as_deref(), Some("abc"));
        assert_eq!(ready(&status), ("False", REASON_KAFKA_UNAVAILABLE));
    }
}
