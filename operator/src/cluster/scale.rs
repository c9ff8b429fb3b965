//! The scale-down guard. Removing a broker that still holds replicas loses data (strimzi #133, redpanda-operator
//! #1906), and draining brokers is not implemented yet, so the StatefulSet never shrinks: the brokers above
//! `spec.brokers` keep running and the cluster reports `ScaleDownBlocked` until the drain state machine exists.
//! Removing a voter of the metadata quorum would also change the voter set, which is fixed for the cluster's life
//! (see [`super::voters`]); that is reported with its own reason, and is refused even once draining exists.
//! Pure: the caller reads the running replica count and the voters.

use super::voters::{Topology, Voters};

/// Why a scale-down was not carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockedBy {
    /// The brokers to remove may hold replicas and cannot be drained yet.
    DrainNotImplemented,
    /// The spec asks for fewer brokers than the metadata quorum has voters: a voter cannot be removed (KIP-853
    /// voter changes are not implemented).
    VoterRemovalNotSupported,
}

impl BlockedBy {
    /// Condition reason.
    pub fn reason(self) -> &'static str {
        match self {
            BlockedBy::DrainNotImplemented => "DrainNotImplemented",
            BlockedBy::VoterRemovalNotSupported => "VoterRemovalNotSupported",
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
    /// The voters, which no scale-down may remove.
    pub voters: Voters,
}

impl ScaleDownBlocked {
    /// Why it was blocked: a voter would go, or (only) brokers that cannot be drained.
    pub fn blocked_by(&self) -> BlockedBy {
        if self.requested < self.voters.min_brokers() {
            BlockedBy::VoterRemovalNotSupported
        } else {
            BlockedBy::DrainNotImplemented
        }
    }
}

impl std::fmt::Display for ScaleDownBlocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            requested,
            running,
            ref voters,
        } = *self;
        write!(f, "spec.brokers is {requested} but {running} brokers run; ")?;
        match self.blocked_by() {
            BlockedBy::VoterRemovalNotSupported => write!(
                f,
                "brokers {voters} are the voters of the metadata quorum, fixed when the cluster was created, and \
                 changing the voter set is not supported yet, so spec.brokers cannot go below {}; brokers \
                 {requested}..{} keep running",
                voters.min_brokers(),
                running - 1
            ),
            BlockedBy::DrainNotImplemented => write!(
                f,
                "brokers {requested}..{} keep running because draining them before removal is not implemented yet \
                 (removing them could lose their replicas)",
                running - 1
            ),
        }
    }
}

/// What runs for a spec of `requested` brokers when `running` run now (`None`: no StatefulSet yet) and `voters`
/// vote: the spec's count when it does not shrink the cluster, else the running one, never fewer than the voters
/// need; and what was blocked.
pub fn plan(
    requested: i32,
    running: Option<i32>,
    voters: Voters,
) -> (Topology, Option<ScaleDownBlocked>) {
    let brokers = requested
        .max(running.unwrap_or(0))
        .max(voters.min_brokers());
    let blocked = (brokers > requested).then(|| ScaleDownBlocked {
        requested,
        running: brokers,
        voters: voters.clone(),
    });
    (Topology { brokers, voters }, blocked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_up_or_creating_follows_the_spec() {
        for running in [None, Some(3), Some(5)] {
            let (topology, blocked) = plan(5, running, Voters::of_new_cluster(3));
            assert_eq!(blocked, None, "running {running:?}");
            assert_eq!(topology.brokers, 5);
        }
    }

    #[test]
    fn scaling_down_keeps_the_running_brokers() {
        let (topology, blocked) = plan(3, Some(5), Voters::of_new_cluster(3));
        assert_eq!(
            blocked,
            Some(ScaleDownBlocked {
                requested: 3,
                running: 5,
                voters: Voters::of_new_cluster(3),
            })
        );
        assert_eq!(
            topology.brokers, 5,
            "brokers 3 and 4 must not be removed before they are drained"
        );
        let blocked = blocked.expect("blocked");
        assert_eq!(blocked.blocked_by(), BlockedBy::DrainNotImplemented);
        let message = blocked.to_string();
        assert!(message.contains("brokers 3..4 keep running"), "{message}");
    }

    #[test]
    fn scaling_below_the_voters_is_refused_for_the_voters() {
        // Created with three brokers, scaled to five, then asked for two: voter 2 would go.
        let (topology, blocked) = plan(2, Some(5), Voters::of_new_cluster(3));
        assert_eq!(topology.brokers, 5);
        let blocked = blocked.expect("blocked");
        assert_eq!(blocked.blocked_by(), BlockedBy::VoterRemovalNotSupported);
        assert_eq!(blocked.blocked_by().reason(), "VoterRemovalNotSupported");
        let message = blocked.to_string();
        assert!(
            message.contains("brokers {0, 1, 2} are the voters")
                && message.contains("cannot go below 3"),
            "{message}"
        );

        // Created with one broker: scaling 2 -> 1 removes no voter, only a broker that cannot be drained.
        let (_, blocked) = plan(1, Some(2), Voters::of_new_cluster(1));
        assert_eq!(
            blocked.map(|b| b.blocked_by()),
            Some(BlockedBy::DrainNotImplemented)
        );
    }

    #[test]
    fn the_voters_run_even_when_the_statefulset_is_gone() {
        // The StatefulSet was deleted (say with --cascade=orphan) and the spec shrunk meanwhile: the voters'
        // pods are still built.
        let (topology, blocked) = plan(1, None, Voters::of_new_cluster(3));
        assert_eq!(topology.brokers, 3);
        assert_eq!(
            blocked.map(|b| b.blocked_by()),
            Some(BlockedBy::VoterRemovalNotSupported)
        );
    }
}
