//! The metadata quorum's voter set and the shape of the cluster that follows from it. Pure: the caller reads the
//! recorded voter set and the running broker count.
//!
//! A formatted broker keeps the voter set its metadata log was started with, and refuses to start with a
//! `controller.quorum.voters` that names another one (a static quorum, Kafka's kraft.version 0); the brokers
//! change the voters of a dynamic quorum (`controller.quorum.bootstrap.servers`, KIP-853's AddRaftVoter /
//! RemoveRaftVoter), but the operator forms static ones and does not drive voter changes. So the voters are decided once, when the
//! cluster is created (the first [`MAX_VOTERS`] brokers, or all of them when there are fewer), and kept for the
//! cluster's life: brokers added later are `process.roles=broker` learners, and a scale-down never removes a
//! voter. This module must never derive the voters of an existing cluster from `spec.brokers`.
//!
//! The record is `status.quorumVoters` of the KafkaCluster. Status survives operator restarts and the StatefulSet
//! being deleted and recreated (`--cascade=orphan`, the usual way to change its immutable fields), and neither
//! `kubectl apply`, `kubectl edit` nor a GitOps sync of the KafkaCluster writes it (the status subresource). When
//! the status does not record it (a cluster made by an operator that did not record voters, a status lost in a
//! backup and restore, a first reconcile that failed before it wrote its status), the voters are read back from
//! what the brokers were given: `controller.quorum.voters` in the ConfigMap the operator wrote.

use std::collections::{BTreeMap, BTreeSet};

use super::build::config_file;

/// The voters of a new cluster are its first pods, at most this many: three voters survive one loss.
pub const MAX_VOTERS: i32 = 3;

/// Node ids (pod ordinals) of the metadata quorum's voters; never empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Voters(BTreeSet<i32>);

impl Voters {
    /// The voters of a cluster created with `brokers` brokers: ordinals `0..min(brokers, MAX_VOTERS)`.
    pub fn of_new_cluster(brokers: i32) -> Self {
        Self((0..brokers.clamp(1, MAX_VOTERS)).collect())
    }

    /// The voters in `ids`, or `None` when there are none or one is not a pod ordinal.
    pub fn from_ids(ids: impl IntoIterator<Item = i32>) -> Option<Self> {
        let ids: BTreeSet<i32> = ids.into_iter().collect();
        (!ids.is_empty() && ids.iter().all(|id| *id >= 0)).then_some(Self(ids))
    }

    /// Whether the broker with `ordinal` votes.
    pub fn contains(&self, ordinal: i32) -> bool {
        self.0.contains(&ordinal)
    }

    /// The voter ids in ascending order.
    pub fn ids(&self) -> impl Iterator<Item = i32> + '_ {
        self.0.iter().copied()
    }

    /// Number of voters.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a voter set has at least one voter.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The fewest brokers that keep every voter: one past the highest voter ordinal.
    pub fn min_brokers(&self) -> i32 {
        self.0.last().map_or(1, |highest| highest + 1)
    }
}

impl std::fmt::Display for Voters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("{")?;
        for (i, id) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{id}")?;
        }
        f.write_str("}")
    }
}

/// Where a reconcile's voter set came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VotersSource {
    /// `status.quorumVoters`.
    Status,
    /// `controller.quorum.voters` of broker 0 in the running cluster's ConfigMap.
    ConfigMap,
    /// Neither exists: the cluster is being created.
    NewCluster,
}

/// The voter set of a cluster: the recorded one (`status.quorumVoters`), else the one in the running brokers'
/// ConfigMap (`config_map_data`: its `data`), else that of a new cluster of `brokers`.
pub fn decide(
    recorded: &[i32],
    config_map_data: Option<&BTreeMap<String, String>>,
    brokers: i32,
) -> (Voters, VotersSource) {
    if let Some(voters) = Voters::from_ids(recorded.iter().copied()) {
        return (voters, VotersSource::Status);
    }
    let configured = config_map_data
        .and_then(|data| data.get(&config_file(0)))
        .and_then(|text| voters_in_properties(text));
    match configured {
        Some(voters) => (voters, VotersSource::ConfigMap),
        None => (Voters::of_new_cluster(brokers), VotersSource::NewCluster),
    }
}

/// The voter ids of `controller.quorum.voters` (`id@host:port,...`) in a properties file the operator wrote.
pub fn voters_in_properties(text: &str) -> Option<Voters> {
    let value = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix("controller.quorum.voters="))?;
    let ids = value
        .split(',')
        .map(|voter| {
            voter
                .split_once('@')
                .and_then(|(id, _)| id.trim().parse().ok())
        })
        .collect::<Option<Vec<i32>>>()?;
    Voters::from_ids(ids)
}

/// What the StatefulSet runs: how many brokers, and which of them vote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    /// Brokers (StatefulSet replicas), ordinals `0..brokers`; at least [`Voters::min_brokers`].
    pub brokers: i32,
    /// The metadata quorum's voters.
    pub voters: Voters,
}

impl Topology {
    /// A cluster created with `brokers` brokers.
    pub fn new_cluster(brokers: i32) -> Self {
        Self {
            brokers,
            voters: Voters::of_new_cluster(brokers),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{build::build, validate::validate};
    use crate::crd::KafkaCluster;

    fn ids(voters: &Voters) -> Vec<i32> {
        voters.ids().collect()
    }

    /// The ConfigMap data a cluster of `topology` gets.
    fn config_map(topology: &Topology) -> BTreeMap<String, String> {
        let valid = validate(&KafkaCluster::test().brokers(topology.brokers)).expect("valid");
        build(&valid, topology)
            .config_map
            .data
            .expect("config data")
    }

    /// Reconciles of a cluster created with `created` brokers and then scaled to each of `scaled`, as the
    /// reconciler sees them: the status records what the previous reconcile decided.
    fn voters_over_time(created: i32, scaled: &[i32]) -> Vec<(Vec<i32>, VotersSource)> {
        let mut recorded: Vec<i32> = Vec::new();
        let mut seen = Vec::new();
        for brokers in std::iter::once(created).chain(scaled.iter().copied()) {
            let (voters, source) = decide(&recorded, None, brokers);
            recorded = ids(&voters);
            seen.push((recorded.clone(), source));
        }
        seen
    }

    #[test]
    fn a_new_cluster_votes_with_its_first_brokers_up_to_three() {
        for (brokers, expected) in [
            (1, vec![0]),
            (2, vec![0, 1]),
            (3, vec![0, 1, 2]),
            (5, vec![0, 1, 2]),
        ] {
            let (voters, source) = decide(&[], None, brokers);
            assert_eq!(
                (ids(&voters), source),
                (expected, VotersSource::NewCluster),
                "{brokers} brokers"
            );
        }
    }

    #[test]
    fn created_with_one_broker_it_keeps_one_voter_when_scaled() {
        let seen = voters_over_time(1, &[2, 3, 5, 1]);
        assert_eq!(seen[0], (vec![0], VotersSource::NewCluster));
        for (voters, source) in &seen[1..] {
            assert_eq!(
                (voters, *source),
                (&vec![0], VotersSource::Status),
                "scaling must not change the voters"
            );
        }
    }

    #[test]
    fn created_with_three_brokers_it_keeps_three_voters_when_scaled() {
        for (voters, _) in voters_over_time(3, &[4, 5, 9, 3]) {
            assert_eq!(voters, vec![0, 1, 2]);
        }
    }

    #[test]
    fn created_with_five_brokers_it_keeps_three_voters_when_scaled() {
        let seen = voters_over_time(5, &[7, 3]);
        assert_eq!(seen[0], (vec![0, 1, 2], VotersSource::NewCluster));
        for (voters, _) in &seen[1..] {
            assert_eq!(voters, &vec![0, 1, 2]);
        }
    }

    #[test]
    fn without_a_recorded_set_the_running_configmap_says_who_votes() {
        // A cluster created with one broker and scaled to two, whose status lost the record: the ConfigMap
        // still names voter 0 only, and a new cluster of two (voters 0 and 1) must not be assumed.
        let running = config_map(&Topology {
            brokers: 2,
            voters: Voters::of_new_cluster(1),
        });
        let (voters, source) = decide(&[], Some(&running), 2);
        assert_eq!((ids(&voters), source), (vec![0], VotersSource::ConfigMap));

        let three = config_map(&Topology::new_cluster(3));
        let (voters, source) = decide(&[], Some(&three), 5);
        assert_eq!(
            (ids(&voters), source),
            (vec![0, 1, 2], VotersSource::ConfigMap)
        );
    }

    #[test]
    fn the_record_wins_over_the_configmap() {
        let running = config_map(&Topology::new_cluster(3));
        let (voters, source) = decide(&[0], Some(&running), 3);
        assert_eq!((ids(&voters), source), (vec![0], VotersSource::Status));
    }

    #[test]
    fn a_configmap_without_voters_is_a_new_cluster() {
        let data = BTreeMap::from([(
            config_file(0),
            "# old\nnode.id=0\nlog.dirs=/data\n".to_owned(),
        )]);
        let (voters, source) = decide(&[], Some(&data), 2);
        assert_eq!(
            (ids(&voters), source),
            (vec![0, 1], VotersSource::NewCluster)
        );
        assert_eq!(
            voters_in_properties("controller.quorum.voters=x@host:9093\n"),
            None,
            "an id that is not a number is not a voter set"
        );
        assert_eq!(Voters::from_ids([]), None);
        assert_eq!(Voters::from_ids([-1]), None);
    }

    #[test]
    fn the_voters_need_brokers_up_to_the_highest_voter() {
        assert_eq!(Voters::of_new_cluster(1).min_brokers(), 1);
        assert_eq!(Voters::of_new_cluster(9).min_brokers(), 3);
        assert_eq!(Voters::from_ids([0, 4]).map(|v| v.min_brokers()), Some(5));
        assert_eq!(Voters::of_new_cluster(2).to_string(), "{0, 1}");
    }
}
