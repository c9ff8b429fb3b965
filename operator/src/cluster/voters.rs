//! The metadata quorum's voter set and the shape of the cluster that follows from it. Pure: the caller reads the
//! recorded voter set, the running broker count and, for a dynamic quorum, what the quorum says.
//!
//! A new cluster forms a dynamic quorum (Kafka's kraft.version 1, KIP-853): every broker runs a controller
//! (`process.roles=broker,controller`) with `controller.quorum.bootstrap.servers` naming pods 0 to 2, and the
//! first voters (the first [`MAX_VOTERS`] pods, or all when fewer) format with an initial-controllers list the
//! operator puts in the ConfigMap while the quorum forms (`Forming`) and withdraws once every one of them has
//! joined (`Formed`): a voter whose disk is replaced later must join as a new member rather than start a second
//! quorum. From then on the voters follow the fleet: the operator keeps them at the lowest broker ids, at most
//! three, adding a controller that has caught up with AddRaftVoter and removing the voters of brokers on their
//! way out with RemoveRaftVoter, one change at a time (see [`voter_change`]).
//!
//! Clusters created before (a static quorum, `controller.quorum.voters`, kraft.version 0) keep their voters for
//! life: a formatted broker refuses a `controller.quorum.voters` that names another set, so brokers added later
//! are `process.roles=broker` and a scale-down never removes a voter.
//!
//! The record is `status.quorumVoters` and `status.quorumMode` of the KafkaCluster. Status survives operator
//! restarts and the StatefulSet being deleted and recreated (`--cascade=orphan`, the usual way to change its
//! immutable fields), and neither `kubectl apply`, `kubectl edit` nor a GitOps sync of the KafkaCluster writes
//! it (the status subresource). When the status does not record it (a status lost in a backup and restore, a
//! first reconcile that failed before it wrote its status), the quorum is read back from what the brokers were
//! given: the ConfigMap the operator wrote.

use std::collections::{BTreeMap, BTreeSet};

use super::build::{config_file, INITIAL_CONTROLLERS_FILE};
use crate::crd::QuorumMode;

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
    /// Broker 0's properties (and the initial-controllers list) in the running cluster's ConfigMap.
    ConfigMap,
    /// Neither exists: the cluster is being created.
    NewCluster,
}

/// The voter set and quorum mode of a cluster: the recorded ones (`status.quorumVoters`, `status.quorumMode`;
/// voters without a mode were recorded by an operator that formed static quorums only), else the ones the
/// running brokers' ConfigMap (`config_map_data`: its `data`) gave them, else those of a new cluster of
/// `brokers`. For a formed dynamic quorum the set is refreshed from the quorum itself by the caller.
pub fn decide(
    recorded: &[i32],
    recorded_mode: Option<QuorumMode>,
    config_map_data: Option<&BTreeMap<String, String>>,
    brokers: i32,
) -> (Voters, QuorumMode, VotersSource) {
    if let Some(voters) = Voters::from_ids(recorded.iter().copied()) {
        return (
            voters,
            recorded_mode.unwrap_or(QuorumMode::Static),
            VotersSource::Status,
        );
    }
    let Some(data) = config_map_data else {
        return new_cluster(brokers);
    };
    let properties = data.get(&config_file(0)).map(String::as_str).unwrap_or("");
    if let Some(voters) = voters_in_properties(properties) {
        return (voters, QuorumMode::Static, VotersSource::ConfigMap);
    }
    if property(properties, "controller.quorum.bootstrap.servers").is_none() {
        return new_cluster(brokers);
    }
    match data
        .get(INITIAL_CONTROLLERS_FILE)
        .and_then(|list| voters_in_list(list))
    {
        Some(initial) => (initial, QuorumMode::Forming, VotersSource::ConfigMap),
        None => (
            Voters::of_new_cluster(brokers),
            QuorumMode::Formed,
            VotersSource::ConfigMap,
        ),
    }
}

fn new_cluster(brokers: i32) -> (Voters, QuorumMode, VotersSource) {
    (
        Voters::of_new_cluster(brokers),
        QuorumMode::Forming,
        VotersSource::NewCluster,
    )
}

/// The value of `key` in a properties file the operator wrote.
fn property<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
}

/// The ids of an `id@...,id@...` list (`controller.quorum.voters`, Kafka's `--initial-controllers`).
fn voters_in_list(list: &str) -> Option<Voters> {
    let ids = list
        .trim()
        .split(',')
        .map(|entry| {
            entry
                .split_once('@')
                .and_then(|(id, _)| id.trim().parse().ok())
        })
        .collect::<Option<Vec<i32>>>()?;
    Voters::from_ids(ids)
}

/// The voter ids of `controller.quorum.voters` (`id@host:port,...`) in a properties file the operator wrote.
pub fn voters_in_properties(text: &str) -> Option<Voters> {
    voters_in_list(property(text, "controller.quorum.voters")?)
}

/// What the StatefulSet runs: how many brokers, which of them vote, and how the quorum is configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    /// Brokers (StatefulSet replicas), ordinals `0..brokers`; in a static quorum at least
    /// [`Voters::min_brokers`].
    pub brokers: i32,
    /// The metadata quorum's voters: while `Forming` the initial ones, once `Formed` the ones last read.
    pub voters: Voters,
    pub mode: QuorumMode,
}

impl Topology {
    /// A cluster created with `brokers` brokers.
    pub fn new_cluster(brokers: i32) -> Self {
        Self {
            brokers,
            voters: Voters::of_new_cluster(brokers),
            mode: QuorumMode::Forming,
        }
    }

    /// Whether the voters change with the fleet (a dynamic quorum).
    pub fn is_dynamic(&self) -> bool {
        self.mode != QuorumMode::Static
    }

    /// The fewest brokers that keep every voter: in a static quorum one past the highest voter, in a dynamic
    /// one a single broker (voters move off the brokers that leave).
    pub fn min_brokers(&self) -> i32 {
        if self.is_dynamic() {
            1
        } else {
            self.voters.min_brokers()
        }
    }
}

/// One voter change of a dynamic quorum, as KIP-853 allows one at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VoterChange {
    /// AddRaftVoter of a controller that follows the log as an observer.
    Add { id: i32, directory_id: String },
    /// RemoveRaftVoter of a voter.
    Remove { id: i32, directory_id: String },
}

/// A member of the quorum as DescribeQuorum reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumMember {
    pub id: i32,
    pub directory_id: String,
    /// The end of its copy of the metadata log, as the leader last saw it; -1 when unknown.
    pub log_end_offset: i64,
}

/// The quorum as DescribeQuorum reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuorumView {
    /// The leader's id; -1 when there is none.
    pub leader: i32,
    /// The leader's high watermark of the metadata log.
    pub high_watermark: i64,
    pub voters: Vec<QuorumMember>,
    pub observers: Vec<QuorumMember>,
}

/// How far behind the leader's high watermark an observer may be and still be added as a voter: a new voter
/// that lags far would hold up the commits that need it.
pub const VOTER_CATCH_UP_RECORDS: i64 = 1000;

impl QuorumView {
    /// The voter ids.
    pub fn voter_ids(&self) -> Option<Voters> {
        Voters::from_ids(self.voters.iter().map(|v| v.id))
    }

    /// Whether each of `initial` votes and has fetched the log: the initial-controllers list has served its
    /// purpose.
    pub fn formed_with(&self, initial: &Voters) -> bool {
        self.leader >= 0
            && initial.ids().all(|id| {
                self.voters
                    .iter()
                    .any(|v| v.id == id && v.log_end_offset > 0)
            })
    }
}

/// The voters a dynamic quorum should have when `brokers_staying` brokers stay of the `running` ones: the
/// lowest ids, at most [`MAX_VOTERS`], at least one.
pub fn wanted_voters(brokers_staying: i32, running: i32) -> BTreeSet<i32> {
    (0..brokers_staying.min(running).clamp(1, MAX_VOTERS)).collect()
}

/// The next voter change that brings the voters of `quorum` to the lowest `brokers_staying` broker ids (at most
/// [`MAX_VOTERS`]) among the `running` brokers: first a missing voter is added (an observer of that id that has
/// caught up), then a voter that should not vote is removed, so that a move never leaves fewer voters than
/// before. `None` when the voters are as wanted, the quorum has no leader, or the controller to add has not
/// caught up yet.
pub fn voter_change(
    quorum: &QuorumView,
    brokers_staying: i32,
    running: i32,
) -> Option<VoterChange> {
    if quorum.leader < 0 {
        return None;
    }
    let wanted = wanted_voters(brokers_staying, running);
    let voting: BTreeSet<i32> = quorum.voters.iter().map(|v| v.id).collect();
    if let Some(observer) = wanted
        .difference(&voting)
        .filter_map(|id| quorum.observers.iter().find(|o| o.id == *id))
        .find(|o| {
            o.log_end_offset >= 0
                && quorum.high_watermark - o.log_end_offset <= VOTER_CATCH_UP_RECORDS
        })
    {
        return Some(VoterChange::Add {
            id: observer.id,
            directory_id: observer.directory_id.clone(),
        });
    }
    let missing = wanted.difference(&voting).count();
    if missing > 0 && voting.len() <= wanted.len() {
        // A wanted voter cannot be added yet: removing another now would leave fewer voters than wanted.
        return None;
    }
    quorum
        .voters
        .iter()
        .filter(|v| !wanted.contains(&v.id))
        .max_by_key(|v| v.id)
        .filter(|_| quorum.voters.len() > 1)
        .map(|v| VoterChange::Remove {
            id: v.id,
            directory_id: v.directory_id.clone(),
        })
}

/// What a broker writes in its last log lines when it refuses to vote in place of an earlier incarnation of
/// itself whose log is gone (its volume was replaced): the tag, then `id=`, `old-directory-id=` and
/// `directory-id=`. Keep in step with the broker's `REPLACED_VOTER_TAG` (broker/src/main.rs).
pub const REPLACED_VOTER_TAG: &str = "replaced-voter";

/// A broker that stopped because the quorum still counts its old incarnation as a voter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplacedVoter {
    pub id: i32,
    /// The voter the quorum counts, whose log is gone.
    pub old_directory_id: String,
    /// The broker's new directory.
    pub directory_id: String,
}

/// The replaced voter a broker's termination message (its last log lines) reports, if any: the last report
/// in the message counts.
pub fn parse_replaced_voter(message: &str) -> Option<ReplacedVoter> {
    let (_, rest) = message.rsplit_once(&format!("[{REPLACED_VOTER_TAG} "))?;
    let fields = rest.split(']').next()?;
    let field = |name: &str| {
        fields
            .split_whitespace()
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_owned)
    };
    Some(ReplacedVoter {
        id: field("id")?.parse().ok()?,
        old_directory_id: field("old-directory-id")?,
        directory_id: field("directory-id")?,
    })
}

/// Removes the old incarnation of a broker that reported it was formatted anew (see [`parse_replaced_voter`]):
/// its votes and log are gone, so it must not count toward a majority, and the broker then rejoins as an
/// observer that [`voter_change`] adds again once caught up. Only while that exact voter still votes, the
/// quorum has a leader other than it, and it is not the last voter (a single voter's log is the cluster's
/// metadata: nothing could replace it).
pub fn replacement_change(quorum: &QuorumView, replaced: &[ReplacedVoter]) -> Option<VoterChange> {
    if quorum.leader < 0 || quorum.voters.len() < 2 {
        return None;
    }
    replaced.iter().find_map(|r| {
        quorum
            .voters
            .iter()
            .find(|v| {
                v.id == r.id
                    && v.directory_id == r.old_directory_id
                    && r.directory_id != r.old_directory_id
                    && quorum.leader != r.id
            })
            .map(|v| VoterChange::Remove {
                id: v.id,
                directory_id: v.directory_id.clone(),
            })
    })
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

    /// A static cluster's ConfigMap: `topology` with fixed voters.
    fn static_topology(brokers: i32, voters: Voters) -> Topology {
        Topology {
            brokers,
            voters,
            mode: QuorumMode::Static,
        }
    }

    /// Reconciles of a static cluster created with `created` brokers (by an operator that recorded voters
    /// without a mode) and then scaled to each of `scaled`, as the reconciler sees them: the status records
    /// what the previous reconcile decided.
    fn voters_over_time(created: i32, scaled: &[i32]) -> Vec<(Vec<i32>, VotersSource)> {
        let mut recorded: Vec<i32> = ids(&Voters::of_new_cluster(created));
        let mut seen = vec![(recorded.clone(), VotersSource::NewCluster)];
        for brokers in scaled.iter().copied() {
            let (voters, mode, source) = decide(&recorded, None, None, brokers);
            assert_eq!(mode, QuorumMode::Static);
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
            let (voters, mode, source) = decide(&[], None, None, brokers);
            assert_eq!(
                (ids(&voters), mode, source),
                (expected, QuorumMode::Forming, VotersSource::NewCluster),
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
        let running = config_map(&static_topology(2, Voters::of_new_cluster(1)));
        let (voters, mode, source) = decide(&[], None, Some(&running), 2);
        assert_eq!(
            (ids(&voters), mode, source),
            (vec![0], QuorumMode::Static, VotersSource::ConfigMap)
        );

        let three = config_map(&static_topology(3, Voters::of_new_cluster(3)));
        let (voters, _, source) = decide(&[], None, Some(&three), 5);
        assert_eq!(
            (ids(&voters), source),
            (vec![0, 1, 2], VotersSource::ConfigMap)
        );
    }

    #[test]
    fn without_a_recorded_set_the_configmap_says_whether_a_dynamic_quorum_formed() {
        // Still forming: the initial-controllers list names the voters.
        let forming = config_map(&Topology::new_cluster(2));
        assert!(forming.contains_key(INITIAL_CONTROLLERS_FILE));
        let (voters, mode, _) = decide(&[], None, Some(&forming), 5);
        assert_eq!((ids(&voters), mode), (vec![0, 1], QuorumMode::Forming));

        // Formed: the list is gone, and the voters are whatever the quorum says.
        let formed = config_map(&Topology {
            mode: QuorumMode::Formed,
            ..Topology::new_cluster(3)
        });
        assert!(!formed.contains_key(INITIAL_CONTROLLERS_FILE));
        let (_, mode, source) = decide(&[], None, Some(&formed), 3);
        assert_eq!(
            (mode, source),
            (QuorumMode::Formed, VotersSource::ConfigMap)
        );
    }

    #[test]
    fn the_record_wins_over_the_configmap() {
        let running = config_map(&Topology::new_cluster(3));
        let (voters, mode, source) = decide(&[0], Some(QuorumMode::Formed), Some(&running), 3);
        assert_eq!(
            (ids(&voters), mode, source),
            (vec![0], QuorumMode::Formed, VotersSource::Status)
        );
    }

    #[test]
    fn a_configmap_without_voters_is_a_new_cluster() {
        let data = BTreeMap::from([(
            config_file(0),
            "# old\nnode.id=0\nlog.dirs=/data\n".to_owned(),
        )]);
        let (voters, _, source) = decide(&[], None, Some(&data), 2);
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

    fn member(id: i32, log_end_offset: i64) -> QuorumMember {
        QuorumMember {
            id,
            directory_id: format!("dir-{id}"),
            log_end_offset,
        }
    }

    fn quorum(voters: &[i32], observers: &[(i32, i64)]) -> QuorumView {
        QuorumView {
            leader: voters[0],
            high_watermark: 5000,
            voters: voters.iter().map(|id| member(*id, 5000)).collect(),
            observers: observers
                .iter()
                .map(|(id, end)| member(*id, *end))
                .collect(),
        }
    }

    #[test]
    fn voters_are_added_up_to_three_once_caught_up() {
        // One voter, scaled to five brokers: broker 1 has caught up, broker 2 lags.
        let growing = quorum(&[0], &[(1, 4990), (2, 100), (3, 5000), (4, 5000)]);
        assert_eq!(
            voter_change(&growing, 5, 5),
            Some(VoterChange::Add {
                id: 1,
                directory_id: "dir-1".to_owned()
            })
        );
        let lagging = quorum(&[0, 1], &[(2, 100), (3, 5000), (4, 5000)]);
        assert_eq!(
            voter_change(&lagging, 5, 5),
            None,
            "broker 2 votes once caught up; brokers 3 and 4 never"
        );
        let caught_up = quorum(&[0, 1], &[(2, 4500), (3, 5000)]);
        assert!(matches!(
            voter_change(&caught_up, 5, 5),
            Some(VoterChange::Add { id: 2, .. })
        ));
        assert_eq!(voter_change(&quorum(&[0, 1, 2], &[(3, 5000)]), 5, 5), None);
        // A broker that does not run yet is not waited for.
        assert_eq!(voter_change(&quorum(&[0], &[]), 3, 1), None);
    }

    #[test]
    fn voters_leave_highest_first_down_to_the_brokers_that_stay() {
        let three = quorum(&[0, 1, 2], &[]);
        assert_eq!(
            voter_change(&three, 1, 3),
            Some(VoterChange::Remove {
                id: 2,
                directory_id: "dir-2".to_owned()
            })
        );
        assert!(matches!(
            voter_change(&quorum(&[0, 1], &[(2, 5000)]), 1, 3),
            Some(VoterChange::Remove { id: 1, .. })
        ));
        assert_eq!(voter_change(&quorum(&[0], &[(1, 5000)]), 1, 2), None);
        assert!(matches!(
            voter_change(&three, 2, 3),
            Some(VoterChange::Remove { id: 2, .. })
        ));
    }

    #[test]
    fn a_misplaced_voter_is_replaced_before_it_is_removed() {
        // Voter 3 (say, from a quorum formed by hand) should give way to broker 2, which lags: keep three
        // voters until 2 has caught up and been added.
        let misplaced = quorum(&[0, 1, 3], &[(2, 10)]);
        assert_eq!(voter_change(&misplaced, 5, 5), None);
        let ready = quorum(&[0, 1, 3], &[(2, 5000)]);
        assert!(matches!(
            voter_change(&ready, 5, 5),
            Some(VoterChange::Add { id: 2, .. })
        ));
        let four = quorum(&[0, 1, 2, 3], &[]);
        assert!(matches!(
            voter_change(&four, 5, 5),
            Some(VoterChange::Remove { id: 3, .. })
        ));
        // No leader: nothing can change.
        let leaderless = QuorumView { leader: -1, ..four };
        assert_eq!(voter_change(&leaderless, 5, 5), None);
    }

    #[test]
    fn a_quorum_has_formed_once_every_initial_voter_has_fetched() {
        let initial = Voters::of_new_cluster(3);
        let mut view = quorum(&[0, 1, 2], &[]);
        assert!(view.formed_with(&initial));
        view.voters[2].log_end_offset = -1;
        assert!(!view.formed_with(&initial), "voter 2 has not formatted yet");
        view.voters[2].log_end_offset = 7;
        view.leader = -1;
        assert!(!view.formed_with(&initial));
    }

    #[test]
    fn a_replaced_voter_is_read_from_the_brokers_last_words() {
        let message = "2026-12-07T15:00:00Z INFO asking controller.quorum.bootstrap.servers for the voters\n\
            Error: the metadata quorum counts node 2 with directory id OLDdir as a voter, but /var/lib/tributary \
            was formatted anew (directory id NEWdir): ... tributary-operator does both \
            [replaced-voter id=2 old-directory-id=OLDdir directory-id=NEWdir]\n";
        assert_eq!(
            parse_replaced_voter(message),
            Some(ReplacedVoter {
                id: 2,
                old_directory_id: "OLDdir".to_owned(),
                directory_id: "NEWdir".to_owned(),
            })
        );
        assert_eq!(parse_replaced_voter("Error: disk full"), None);
        assert_eq!(
            parse_replaced_voter("[replaced-voter id=two old-directory-id=a directory-id=b]"),
            None
        );
        assert_eq!(
            parse_replaced_voter("[replaced-voter id=2 directory-id=b]"),
            None,
            "every field or nothing"
        );
    }

    #[test]
    fn only_the_reported_incarnation_of_a_voter_is_removed() {
        let replaced = |id: i32, old: &str| ReplacedVoter {
            id,
            old_directory_id: old.to_owned(),
            directory_id: "fresh".to_owned(),
        };
        let three = quorum(&[0, 1, 2], &[]);
        assert_eq!(
            replacement_change(&three, &[replaced(2, "dir-2")]),
            Some(VoterChange::Remove {
                id: 2,
                directory_id: "dir-2".to_owned()
            })
        );
        assert_eq!(
            replacement_change(&three, &[replaced(2, "dir-of-another-time")]),
            None,
            "that incarnation is gone already: the broker rejoins as an observer"
        );
        assert_eq!(
            replacement_change(&three, &[replaced(0, "dir-0")]),
            None,
            "the leader answers, so it is not the wiped one"
        );
        assert_eq!(
            replacement_change(&quorum(&[0], &[]), &[replaced(0, "dir-0")]),
            None,
            "a lone voter cannot be replaced"
        );
        let leaderless = QuorumView {
            leader: -1,
            ..three.clone()
        };
        assert_eq!(
            replacement_change(&leaderless, &[replaced(2, "dir-2")]),
            None
        );
    }
}
