//! The scale-down guard. Removing a broker that still holds replicas loses data (strimzi #133, redpanda-operator
//! #1906), and draining brokers is not implemented yet, so the StatefulSet never shrinks: the brokers above
//! `spec.brokers` keep running and the cluster reports `ScaleDownBlocked` until the drain state machine exists.
//! Pure: the caller reads the running replica count.

use super::build::DesiredObjects;

/// A scale-down that was not carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScaleDownBlocked {
    /// Brokers the spec asks for.
    pub requested: i32,
    /// Brokers that keep running.
    pub running: i32,
}

impl std::fmt::Display for ScaleDownBlocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self { requested, running } = *self;
        write!(
            f,
            "spec.brokers is {requested} but {running} brokers run; brokers {requested}..{} keep running because \
             draining them before removal is not implemented yet (removing them could lose their replicas)",
            running - 1
        )
    }
}

/// Keeps the StatefulSet at `running` replicas when the spec asks for fewer; returns what was blocked.
pub fn guard_scale_down(
    objects: &mut DesiredObjects,
    running: Option<i32>,
) -> Option<ScaleDownBlocked> {
    let spec = objects.stateful_set.spec.as_mut()?;
    let requested = spec.replicas.unwrap_or(1);
    match running {
        Some(running) if running > requested => {
            spec.replicas = Some(running);
            Some(ScaleDownBlocked { requested, running })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        cluster::{build::build, validate::validate},
        crd::KafkaCluster,
    };

    fn objects(brokers: i32) -> DesiredObjects {
        build(&validate(&KafkaCluster::test().brokers(brokers)).expect("valid"))
    }

    fn replicas(objects: &DesiredObjects) -> Option<i32> {
        objects.stateful_set.spec.as_ref().and_then(|s| s.replicas)
    }

    #[test]
    fn scaling_up_or_creating_follows_the_spec() {
        for running in [None, Some(3), Some(5)] {
            let mut desired = objects(5);
            assert_eq!(
                guard_scale_down(&mut desired, running),
                None,
                "running {running:?}"
            );
            assert_eq!(replicas(&desired), Some(5));
        }
    }

    #[test]
    fn scaling_down_keeps_the_running_brokers() {
        let mut desired = objects(3);
        let blocked = guard_scale_down(&mut desired, Some(5));
        assert_eq!(
            blocked,
            Some(ScaleDownBlocked {
                requested: 3,
                running: 5
            })
        );
        assert_eq!(
            replicas(&desired),
            Some(5),
            "brokers 3 and 4 must not be removed before they are drained"
        );
        let message = blocked.map(|b| b.to_string()).unwrap_or_default();
        assert!(message.contains("brokers 3..4 keep running"), "{message}");
    }
}
