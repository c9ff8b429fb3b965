//! Computes a KafkaCluster's status from what the last reconcile did and what the StatefulSet reports. Pure: the
//! clock is an argument, so a status that did not change is byte-identical and its conditions keep their
//! `lastTransitionTime`.

use k8s_openapi::{
    api::apps::v1::StatefulSet,
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
};

use super::{build::bootstrap_address, validate::Invalid, ValidatedKafkaCluster};
use crate::crd::KafkaClusterStatus;

/// Condition type: every broker is Ready (registered and caught up) and runs the current spec.
pub const READY: &str = "Ready";
/// Condition type: the operator is moving the cluster towards its spec (creating, scaling, rolling).
pub const RECONCILING: &str = "Reconciling";
/// Condition type: something needs a person (an invalid spec, brokers that stay not Ready).
pub const DEGRADED: &str = "Degraded";

/// Event and condition reason for a spec that cannot be reconciled.
pub const REASON_INVALID_SPEC: &str = "InvalidSpec";

/// What a reconcile found.
#[derive(Debug)]
pub enum Outcome<'a> {
    /// The desired objects were applied; `stateful_set` is the StatefulSet as the API server returned it.
    Applied {
        cluster: &'a ValidatedKafkaCluster,
        stateful_set: &'a StatefulSet,
    },
    /// The spec was refused; nothing was applied.
    Invalid {
        generation: Option<i64>,
        invalid: &'a Invalid,
    },
}

/// How far the StatefulSet is from running `brokers` current, Ready pods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rollout {
    ready: i32,
    rolling: bool,
}

fn rollout(stateful_set: &StatefulSet, brokers: i32) -> Rollout {
    let status = stateful_set.status.clone().unwrap_or_default();
    let generation = stateful_set.metadata.generation.unwrap_or_default();
    let ready = status.ready_replicas.unwrap_or_default();
    let rolling = status.observed_generation.unwrap_or_default() < generation
        || status.updated_replicas.unwrap_or_default() < brokers
        || status.replicas != brokers
        || status.current_revision != status.update_revision;
    Rollout { ready, rolling }
}

/// The status to write after a reconcile.
pub fn status(
    previous: Option<&KafkaClusterStatus>,
    outcome: &Outcome<'_>,
    now: &Time,
) -> KafkaClusterStatus {
    let mut next = previous.cloned().unwrap_or_default();
    match outcome {
        Outcome::Invalid {
            generation,
            invalid,
        } => {
            let message = invalid.to_string();
            next.observed_generation = *generation;
            set(
                &mut next.conditions,
                *generation,
                now,
                RECONCILING,
                false,
                REASON_INVALID_SPEC,
                &message,
            );
            set(
                &mut next.conditions,
                *generation,
                now,
                DEGRADED,
                true,
                REASON_INVALID_SPEC,
                &message,
            );
            // The objects of the last valid spec keep running; Ready still describes them.
            if !next.conditions.iter().any(|c| c.type_ == READY) {
                set_status(
                    &mut next.conditions,
                    *generation,
                    now,
                    READY,
                    "Unknown",
                    REASON_INVALID_SPEC,
                    &message,
                );
            }
        }
        Outcome::Applied {
            cluster,
            stateful_set,
        } => {
            let generation = cluster.generation;
            let Rollout { ready, rolling } = rollout(stateful_set, cluster.brokers);
            let brokers = cluster.brokers;
            next.observed_generation = generation;
            next.ready_brokers = ready;
            next.bootstrap_address = Some(bootstrap_address(cluster));
            let counts = format!("{ready}/{brokers} brokers ready");
            let all_ready = ready >= brokers && !rolling;
            if all_ready {
                set(
                    &mut next.conditions,
                    generation,
                    now,
                    READY,
                    true,
                    "AllBrokersReady",
                    &counts,
                );
            } else {
                set(
                    &mut next.conditions,
                    generation,
                    now,
                    READY,
                    false,
                    "BrokersNotReady",
                    &counts,
                );
            }
            if rolling {
                let message = format!("rolling out the StatefulSet: {counts}");
                set(
                    &mut next.conditions,
                    generation,
                    now,
                    RECONCILING,
                    true,
                    "RollingOut",
                    &message,
                );
            } else {
                set(
                    &mut next.conditions,
                    generation,
                    now,
                    RECONCILING,
                    false,
                    "Reconciled",
                    "the cluster matches its spec",
                );
            }
            if !rolling && ready < brokers {
                let message = format!("{counts}; check the pods of StatefulSet {}", cluster.name);
                set(
                    &mut next.conditions,
                    generation,
                    now,
                    DEGRADED,
                    true,
                    "BrokersNotReady",
                    &message,
                );
            } else {
                set(
                    &mut next.conditions,
                    generation,
                    now,
                    DEGRADED,
                    false,
                    "AsExpected",
                    "no problems found",
                );
            }
        }
    }
    next
}

/// Whether `status` says every broker is Ready.
pub fn is_ready(status: &KafkaClusterStatus) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == READY && c.status == "True")
}

fn set(
    conditions: &mut Vec<Condition>,
    generation: Option<i64>,
    now: &Time,
    type_: &str,
    value: bool,
    reason: &str,
    message: &str,
) {
    let value = if value { "True" } else { "False" };
    set_status(conditions, generation, now, type_, value, reason, message);
}

/// Sets one condition, keeping its `lastTransitionTime` unless its status changes.
fn set_status(
    conditions: &mut Vec<Condition>,
    generation: Option<i64>,
    now: &Time,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
) {
    let condition = Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        observed_generation: generation,
        last_transition_time: now.clone(),
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(existing) if existing.status == status => {
            let since = existing.last_transition_time.clone();
            *existing = Condition {
                last_transition_time: since,
                ..condition
            };
        }
        Some(existing) => *existing = condition,
        None => conditions.push(condition),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::{
        api::apps::v1::StatefulSetStatus, apimachinery::pkg::apis::meta::v1::ObjectMeta,
        jiff::Timestamp,
    };

    use super::*;
    use crate::{
        cluster::validate::{validate, Problem},
        crd::KafkaCluster,
    };

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).expect("valid timestamp"))
    }

    fn sts(generation: i64, observed: i64, replicas: i32, updated: i32, ready: i32) -> StatefulSet {
        StatefulSet {
            metadata: ObjectMeta {
                generation: Some(generation),
                ..ObjectMeta::default()
            },
            status: Some(StatefulSetStatus {
                observed_generation: Some(observed),
                replicas,
                updated_replicas: Some(updated),
                ready_replicas: Some(ready),
                current_revision: Some("r1".into()),
                update_revision: Some("r1".into()),
                ..StatefulSetStatus::default()
            }),
            ..StatefulSet::default()
        }
    }

    fn condition<'a>(status: &'a KafkaClusterStatus, type_: &str) -> &'a Condition {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .unwrap_or_else(|| panic!("no {type_} condition"))
    }

    #[test]
    fn a_cluster_with_every_broker_ready_is_ready() {
        let valid = validate(&KafkaCluster::test()).expect("valid");
        let status = status(
            None,
            &Outcome::Applied {
                cluster: &valid,
                stateful_set: &sts(2, 2, 3, 3, 3),
            },
            &at(10),
        );
        assert_eq!(status.ready_brokers, 3);
        assert_eq!(status.observed_generation, Some(1));
        assert_eq!(
            status.bootstrap_address.as_deref(),
            Some("demo-bootstrap.kafka.svc:9092")
        );
        assert_eq!(condition(&status, READY).status, "True");
        assert_eq!(condition(&status, RECONCILING).status, "False");
        assert_eq!(condition(&status, DEGRADED).status, "False");
        assert!(is_ready(&status));
    }

    #[test]
    fn a_rollout_in_progress_is_reconciling_not_degraded() {
        let valid = validate(&KafkaCluster::test()).expect("valid");
        let status = status(
            None,
            &Outcome::Applied {
                cluster: &valid,
                stateful_set: &sts(3, 2, 3, 1, 2),
            },
            &at(10),
        );
        assert_eq!(condition(&status, READY).status, "False");
        assert_eq!(condition(&status, READY).message, "2/3 brokers ready");
        assert_eq!(condition(&status, RECONCILING).status, "True");
        assert_eq!(condition(&status, DEGRADED).status, "False");
    }

    #[test]
    fn brokers_that_stay_down_after_the_rollout_are_degraded() {
        let valid = validate(&KafkaCluster::test()).expect("valid");
        let status = status(
            None,
            &Outcome::Applied {
                cluster: &valid,
                stateful_set: &sts(2, 2, 3, 3, 2),
            },
            &at(10),
        );
        assert_eq!(condition(&status, DEGRADED).status, "True");
        assert_eq!(condition(&status, RECONCILING).status, "False");
    }

    #[test]
    fn an_invalid_spec_is_degraded_and_keeps_the_last_ready_state() {
        let valid = validate(&KafkaCluster::test()).expect("valid");
        let ready = status(
            None,
            &Outcome::Applied {
                cluster: &valid,
                stateful_set: &sts(2, 2, 3, 3, 3),
            },
            &at(10),
        );
        let invalid = Invalid {
            problems: vec![Problem::TooFewBrokers(0)],
        };
        let next = status(
            Some(&ready),
            &Outcome::Invalid {
                generation: Some(2),
                invalid: &invalid,
            },
            &at(20),
        );
        assert_eq!(next.observed_generation, Some(2));
        let degraded = condition(&next, DEGRADED);
        assert_eq!(
            (degraded.status.as_str(), degraded.reason.as_str()),
            ("True", REASON_INVALID_SPEC)
        );
        assert!(
            degraded.message.contains("spec.brokers is 0"),
            "{}",
            degraded.message
        );
        assert_eq!(
            condition(&next, READY).status,
            "True",
            "running brokers are still ready"
        );
        assert_eq!(next.ready_brokers, 3);
    }

    #[test]
    fn transition_times_change_only_when_a_condition_flips() {
        let valid = validate(&KafkaCluster::test()).expect("valid");
        let first = status(
            None,
            &Outcome::Applied {
                cluster: &valid,
                stateful_set: &sts(2, 2, 3, 3, 3),
            },
            &at(10),
        );
        let same = status(
            Some(&first),
            &Outcome::Applied {
                cluster: &valid,
                stateful_set: &sts(2, 2, 3, 3, 3),
            },
            &at(20),
        );
        assert_eq!(
            same, first,
            "an unchanged cluster must not rewrite its status"
        );
        let down = status(
            Some(&first),
            &Outcome::Applied {
                cluster: &valid,
                stateful_set: &sts(2, 2, 3, 3, 2),
            },
            &at(30),
        );
        assert_eq!(condition(&down, READY).last_transition_time, at(30));
        assert_eq!(condition(&down, RECONCILING).last_transition_time, at(10));
    }
}
