//! Computes a KafkaCluster's status from what the last reconcile did and what the StatefulSet reports. Pure: the
//! clock is an argument, so a status that did not change is byte-identical and its conditions keep their
//! `lastTransitionTime`.

use k8s_openapi::{api::apps::v1::StatefulSet, apimachinery::pkg::apis::meta::v1::Time};

use super::{
    build::bootstrap_address, scale::ScaleDownBlocked, validate::Invalid, voters::Voters,
    ValidatedKafkaCluster,
};
use crate::{
    conditions::Conditions,
    crd::{KafkaClusterStatus, PendingRestart, RemovalState, RemovingBroker},
};

/// Condition type: every broker is Ready (registered and caught up) and runs the current spec.
pub const READY: &str = "Ready";
/// Condition type: the operator is moving the cluster towards its spec (creating, scaling, rolling).
pub const RECONCILING: &str = "Reconciling";
/// Condition type: something needs a person (an invalid spec, brokers that stay not Ready).
pub const DEGRADED: &str = "Degraded";

/// Condition type: the spec asks for fewer brokers than run, and the extra brokers cannot be removed yet.
pub const SCALE_DOWN_BLOCKED: &str = "ScaleDownBlocked";

/// Event and condition reason for a spec that cannot be reconciled.
pub const REASON_INVALID_SPEC: &str = "InvalidSpec";

/// What a reconcile found.
#[derive(Debug)]
pub enum Outcome<'a> {
    /// The desired objects were applied; `stateful_set` is the StatefulSet as the API server returned it.
    Applied {
        cluster: &'a ValidatedKafkaCluster,
        stateful_set: &'a StatefulSet,
        /// The voters the objects were built with: the record `status.quorumVoters` keeps.
        voters: &'a Voters,
        scale_down_blocked: Option<ScaleDownBlocked>,
        /// Brokers on their way out (the scale plan's record).
        removing: &'a [RemovingBroker],
        /// Outdated pods in restart order, and what the rolling restart does or waits for.
        pending_restarts: &'a [PendingRestart],
        roll_progress: Option<&'a str>,
    },
    /// The spec was refused; nothing was applied.
    Invalid {
        generation: Option<i64>,
        invalid: &'a Invalid,
    },
}

/// How far the StatefulSet is from running all its replicas current and Ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rollout {
    replicas: i32,
    ready: i32,
    rolling: bool,
}

fn rollout(stateful_set: &StatefulSet) -> Rollout {
    let replicas = stateful_set
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let status = stateful_set.status.clone().unwrap_or_default();
    let generation = stateful_set.metadata.generation.unwrap_or_default();
    let ready = status.ready_replicas.unwrap_or_default();
    // Not currentRevision against updateRevision: under the OnDelete strategy the StatefulSet controller never
    // advances currentRevision, while updatedReplicas counts the pods of the current template either way.
    let rolling = status.observed_generation.unwrap_or_default() < generation
        || status.updated_replicas.unwrap_or_default() < replicas
        || status.replicas != replicas;
    Rollout {
        replicas,
        ready,
        rolling,
    }
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
            let mut conditions = Conditions {
                list: &mut next.conditions,
                generation: *generation,
                now,
            };
            conditions.set(RECONCILING, false, REASON_INVALID_SPEC, &message);
            conditions.set(DEGRADED, true, REASON_INVALID_SPEC, &message);
            // The objects of the last valid spec keep running; Ready still describes them.
            if !conditions.has(READY) {
                conditions.set_status(READY, "Unknown", REASON_INVALID_SPEC, &message);
            }
        }
        Outcome::Applied {
            cluster,
            stateful_set,
            voters,
            scale_down_blocked,
            removing,
            pending_restarts,
            roll_progress,
        } => {
            let Rollout {
                replicas,
                ready,
                rolling,
            } = rollout(stateful_set);
            next.observed_generation = cluster.generation;
            next.ready_brokers = ready;
            next.bootstrap_address = Some(bootstrap_address(cluster));
            next.quorum_voters = voters.ids().collect();
            next.brokers = replicas;
            next.selector = Some(super::build::pod_selector(&cluster.name));
            next.removing_brokers = removing.to_vec();
            next.pending_restarts = pending_restarts.to_vec();
            let leaving: Vec<&RemovingBroker> = removing
                .iter()
                .filter(|b| b.state != RemovalState::Removed)
                .collect();
            let mut conditions = Conditions {
                list: &mut next.conditions,
                generation: cluster.generation,
                now,
            };
            let counts = format!("{ready}/{replicas} brokers ready");
            if ready >= replicas && !rolling {
                conditions.set(READY, true, "AllBrokersReady", &counts);
            } else {
                conditions.set(READY, false, "BrokersNotReady", &counts);
            }
            if !leaving.is_empty() {
                let each: Vec<String> = leaving
                    .iter()
                    .map(|b| match b.state {
                        RemovalState::Draining => {
                            format!("broker {} draining ({} replicas left)", b.id, b.replicas)
                        }
                        _ => format!("broker {} drained", b.id),
                    })
                    .collect();
                conditions.set(
                    RECONCILING,
                    true,
                    "RemovingBrokers",
                    &format!("scaling down to {}: {}", cluster.brokers, each.join(", ")),
                );
            } else if !pending_restarts.is_empty() {
                let queue: Vec<String> = pending_restarts
                    .iter()
                    .map(|p| format!("{} ({})", p.pod, p.reason))
                    .collect();
                conditions.set(
                    RECONCILING,
                    true,
                    "RollingRestart",
                    &format!(
                        "{}; to restart one at a time: {}",
                        roll_progress.unwrap_or("rolling restart"),
                        queue.join(", ")
                    ),
                );
            } else if rolling {
                conditions.set(
                    RECONCILING,
                    true,
                    "RollingOut",
                    &format!("rolling out the StatefulSet: {counts}"),
                );
            } else {
                conditions.set(
                    RECONCILING,
                    false,
                    "Reconciled",
                    "the StatefulSet runs the current spec",
                );
            }
            if !rolling && ready < replicas {
                let message = format!("{counts}; check the pods of StatefulSet {}", cluster.name);
                conditions.set(DEGRADED, true, "BrokersNotReady", &message);
            } else {
                conditions.set(DEGRADED, false, "AsExpected", "no problems found");
            }
            match scale_down_blocked {
                Some(blocked) => conditions.set(
                    SCALE_DOWN_BLOCKED,
                    true,
                    blocked.blocked_by().reason(),
                    &blocked.to_string(),
                ),
                None => conditions.set(
                    SCALE_DOWN_BLOCKED,
                    false,
                    "NoScaleDown",
                    "no broker is waiting for removal",
                ),
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

#[cfg(test)]
mod tests {
    use k8s_openapi::{
        api::apps::v1::{StatefulSetSpec, StatefulSetStatus},
        apimachinery::pkg::apis::meta::v1::ObjectMeta,
        jiff::Timestamp,
    };

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

    use super::*;
    use crate::{
        cluster::{
            scale::BlockedBy,
            validate::{validate, Problem},
        },
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
            spec: Some(StatefulSetSpec {
                replicas: Some(replicas),
                ..StatefulSetSpec::default()
            }),
            status: Some(StatefulSetStatus {
                observed_generation: Some(observed),
                replicas,
                updated_replicas: Some(updated),
                ready_replicas: Some(ready),
                current_revision: Some("r1".into()),
                update_revision: Some("r1".into()),
                ..StatefulSetStatus::default()
            }),
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
        let voters = Voters::of_new_cluster(3);
        let status = status(
            None,
            &Outcome::Applied {
                cluster: &valid,
                stateful_set: &sts(2, 2, 3, 3, 3),
                voters: &voters,
                scale_down_blocked: None,
                removing: &[],
                pending_restarts: &[],
                roll_progress: None,
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
        assert_eq!(status.quorum_voters, [0, 1, 2], "the voters are recorded");
    }

    #[test]
    fn a_rollout_in_progress_is_reconciling_not_degraded() {
        let valid = validate(&KafkaCluster::test()).expect("valid");
        let voters = Voters::of_new_cluster(3);
        let status = status(
            None,
            &Outcome::Applied {
                cluster: &valid,
                stateful_set: &sts(3, 2, 3, 1, 2),
                voters: &voters,
                scale_down_blocked: None,
                removing: &[],
                pending_restarts: &[],
                roll_progress: None,
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
        let voters = Voters::of_new_cluster(3);
        let status = status(
            None,
            &Outcome::Applied {
                cluster: &valid,
                stateful_set: &sts(2, 2, 3, 3, 2),
                voters: &voters,
                scale_down_blocked: None,
                removing: &[],
                pending_restarts: &[],
                roll_progress: None,
            },
            &at(10),
        );
        assert_eq!(condition(&status, DEGRADED).status, "True");
        assert_eq!(condition(&status, RECONCILING).status, "False");
    }

    #[test]
    fn an_invalid_spec_is_degraded_and_keeps_the_last_ready_state() {
        let valid = validate(&KafkaCluster::test()).expect("valid");
        let voters = Voters::of_new_cluster(3);
        let ready = status(
            None,
            &Outcome::Applied {
                cluster: &valid,
                stateful_set: &sts(2, 2, 3, 3, 3),
                voters: &voters,
                scale_down_blocked: None,
                removing: &[],
                pending_restarts: &[],
                roll_progress: None,
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
        let voters = Voters::of_new_cluster(3);
        let first = status(
            None,
            &Outcome::Applied {
                cluster: &valid,
                stateful_set: &sts(2, 2, 3, 3, 3),
                voters: &voters,
                scale_down_blocked: None,
                removing: &[],
                pending_restarts: &[],
                roll_progress: None,
            },
            &at(10),
        );
        let same = status(
            Some(&first),
            &Outcome::Applied {
                cluster: &valid,
                stateful_set: &sts(2, 2, 3, 3, 3),
                voters: &voters,
                scale_down_blocked: None,
                removing: &[],
                pending_restarts: &[],
                roll_progress: None,
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
                voters: &voters,
                scale_down_blocked: None,
                removing: &[],
                pending_restarts: &[],
                roll_progress: None,
            },
            &at(30),
        );
        assert_eq!(condition(&down, READY).last_transition_time, at(30));
        assert_eq!(condition(&down, RECONCILING).last_transition_time, at(10));
    }

    #[test]
    fn a_blocked_scale_down_is_reported_and_cleared() {
        let valid = validate(&KafkaCluster::test()).expect("valid");
        let voters = Voters::of_new_cluster(3);
        let blocked = ScaleDownBlocked {
            requested: 3,
            running: 5,
            by: BlockedBy::ReplicationFactor {
                topic: "orders".into(),
                factor: 4,
            },
        };
        let outcome = Outcome::Applied {
            cluster: &valid,
            stateful_set: &sts(2, 2, 5, 5, 5),
            voters: &voters,
            scale_down_blocked: Some(blocked),
            removing: &[],
            pending_restarts: &[],
            roll_progress: None,
        };
        let first = status(None, &outcome, &at(10));
        let condition_ = condition(&first, SCALE_DOWN_BLOCKED);
        assert_eq!(
            (condition_.status.as_str(), condition_.reason.as_str()),
            ("True", "ReplicationFactorTooLarge")
        );
        assert_eq!(first.ready_brokers, 5);
        assert_eq!(
            condition(&first, READY).message,
            "5/5 brokers ready",
            "Ready describes the brokers that run"
        );

        // Asked for fewer brokers than the voters need: its own reason, naming the voters.
        let below_voters = ScaleDownBlocked {
            requested: 2,
            running: 5,
            by: BlockedBy::VoterRemovalNotSupported {
                voters: voters.clone(),
            },
        };
        let outcome = Outcome::Applied {
            cluster: &valid,
            stateful_set: &sts(2, 2, 5, 5, 5),
            voters: &voters,
            scale_down_blocked: Some(below_voters),
            removing: &[],
            pending_restarts: &[],
            roll_progress: None,
        };
        let refused = status(Some(&first), &outcome, &at(15));
        let condition_ = condition(&refused, SCALE_DOWN_BLOCKED);
        assert_eq!(
            (condition_.status.as_str(), condition_.reason.as_str()),
            ("True", "VoterRemovalNotSupported")
        );
        assert!(
            condition_
                .message
                .contains("fixed when the cluster was created (a static quorum"),
            "{}",
            condition_.message
        );

        let outcome = Outcome::Applied {
            cluster: &valid,
            stateful_set: &sts(2, 2, 5, 5, 5),
            voters: &voters,
            scale_down_blocked: None,
            removing: &[],
            pending_restarts: &[],
            roll_progress: None,
        };
        let cleared = status(Some(&first), &outcome, &at(20));
        assert_eq!(condition(&cleared, SCALE_DOWN_BLOCKED).status, "False");
    }

    #[test]
    fn brokers_being_removed_are_listed_and_the_cluster_is_reconciling() {
        let valid = validate(&KafkaCluster::test()).expect("valid");
        let voters = Voters::of_new_cluster(3);
        let removing = [
            RemovingBroker {
                id: 4,
                state: RemovalState::Drained,
                replicas: 0,
            },
            RemovingBroker {
                id: 3,
                state: RemovalState::Draining,
                replicas: 7,
            },
        ];
        let status = status(
            None,
            &Outcome::Applied {
                cluster: &valid,
                stateful_set: &sts(2, 2, 5, 5, 5),
                voters: &voters,
                scale_down_blocked: None,
                removing: &removing,
                pending_restarts: &[],
                roll_progress: None,
            },
            &at(10),
        );
        assert_eq!(
            status.brokers, 5,
            "the scale subresource counts the brokers that run"
        );
        assert_eq!(status.removing_brokers, removing);
        let reconciling = condition(&status, RECONCILING);
        assert_eq!(
            (reconciling.status.as_str(), reconciling.reason.as_str()),
            ("True", "RemovingBrokers")
        );
        assert!(
            reconciling
                .message
                .contains("broker 3 draining (7 replicas left)")
                && reconciling.message.contains("broker 4 drained"),
            "{}",
            reconciling.message
        );
        assert_eq!(
            status.selector.as_deref(),
            Some(
                super::super::build::selector_labels("demo")
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
                    .as_str()
            )
        );
    }
}
