//! The metadata quorum as the rest of the broker sees it: start the Raft node (voter set from
//! `controller.quorum.voters`), write entries on the leader, learn who leads, wait for the local state
//! machine to apply an index, and answer Raft RPCs. No openraft type crosses this boundary.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use openraft::async_runtime::WatchReceiver;

use super::{
    config::metadata_quorum_config,
    log_store::MetadataLogStore,
    network::{self, MetadataNetwork, RaftRpc, RaftRpcReply},
    state_machine::{CommittedImageListener, MetadataStateMachine},
    types::{CommandOutcome, MetadataCommand, MetadataRaft, QuorumNode, RaftNodeId, TypeConfig},
};
use crate::cluster::{
    image::{MetadataImage, NodeId},
    publisher::MetadataPublisher,
    rpc::RpcIdentity,
    store::{MetadataChange, FIRST_PRODUCER_ID},
};

impl CommittedImageListener for MetadataPublisher {
    fn committed(&self, _index: u64, image: Arc<MetadataImage>) {
        self.publish_committed(image);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    #[error("node.id {0} is negative; a quorum member needs a non-negative id")]
    NegativeNodeId(NodeId),
    #[error("opening the metadata log in {dir}")]
    Storage {
        dir: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("controller.quorum.voters names voters {configured:?}, but this node's metadata log was formed by voters {stored:?}; a static voter set cannot change (keep the original controller.quorum.voters; a cluster formed with controller.quorum.bootstrap.servers changes its voters at run time with kafka-metadata-quorum.sh add-controller / remove-controller)")]
    VoterSetChanged {
        configured: Vec<NodeId>,
        stored: Vec<NodeId>,
    },
    #[error("invalid Raft configuration")]
    Config(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("starting the metadata quorum")]
    Start(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("this node is not the metadata quorum's leader (the leader is {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("the metadata quorum failed to commit the change")]
    Write(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the metadata log did not reach index {index} here within {timeout:?}")]
    WaitTimeout { index: u64, timeout: Duration },
}

/// How to start this node's member of the quorum.
#[derive(Debug, Clone)]
pub struct QuorumSettings {
    pub node_id: NodeId,
    /// Every voter's id and controller listener `host:port` (`controller.quorum.voters`).
    pub voters: BTreeMap<NodeId, String>,
    /// Where the metadata log, vote and snapshots live (`<log.dirs>/__cluster_metadata-0`).
    pub dir: PathBuf,
    /// `controller.quorum.election.timeout.ms`: the shortest election timeout; the longest is twice it.
    pub election_timeout: Duration,
    pub identity: Arc<RpcIdentity>,
    /// The id given to `format`; the first image of the log carries it.
    pub cluster_id: String,
    /// This node's metadata log directory id (`directory.id`).
    pub directory_id: String,
    /// The initial voters' directory ids, where `format` recorded them.
    pub voter_directories: BTreeMap<NodeId, String>,
    /// KIP-853's dynamic quorum (`controller.quorum.bootstrap.servers`): the voters are whatever the metadata
    /// log says, changed at run time by AddRaftVoter/RemoveRaftVoter. Without it (static
    /// `controller.quorum.voters`) the voter set is fixed and must match the configuration.
    pub dynamic: bool,
}

#[derive(Debug)]
pub struct MetadataQuorum {
    raft: MetadataRaft,
    node_id: NodeId,
    dynamic: bool,
    /// Serializes voter changes: openraft refuses a second while one is uncommitted, and a removal's
    /// safety check must not race another change.
    voter_change: tokio::sync::Mutex<()>,
}

/// Why a voter change (AddRaftVoter / RemoveRaftVoter) was refused; each maps to Kafka's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum VoterChangeError {
    /// UNSUPPORTED_VERSION: the quorum was formed with static `controller.quorum.voters`.
    #[error("{0}")]
    StaticQuorum(String),
    /// DUPLICATE_VOTER.
    #[error("{0}")]
    AlreadyVoter(String),
    /// VOTER_NOT_FOUND.
    #[error("{0}")]
    NotVoter(String),
    /// REQUEST_TIMED_OUT: the new voter is not following the log closely enough, or another change is in
    /// progress; retriable.
    #[error("{0}")]
    NotReady(String),
    /// INVALID_REQUEST: the change would leave the quorum without a working majority, or names no listener.
    #[error("{0}")]
    Unsafe(String),
}

fn raft_id(id: NodeId) -> Result<RaftNodeId, QuorumError> {
    RaftNodeId::try_from(id).map_err(|_| QuorumError::NegativeNodeId(id))
}

fn node_id(id: RaftNodeId) -> NodeId {
    NodeId::try_from(id).unwrap_or(NodeId::MAX)
}

/// A refused or failed write (entry or membership change): NotLeader, with the leader openraft names, when
/// this node does not lead.
fn write_error(
    error: openraft::error::RaftError<TypeConfig, openraft::error::ClientWriteError<TypeConfig>>,
) -> QuorumError {
    match error.forward_to_leader() {
        Some(forward) => QuorumError::NotLeader {
            leader: forward.leader_id.map(node_id),
        },
        None => QuorumError::Write(Box::new(error)),
    }
}

impl MetadataQuorum {
    /// Opens the log and state machine, starts the Raft node and, on a log that has never been
    /// initialized, proposes the configured voter set (every voter does, with the same set; openraft keeps
    /// the first and refuses the rest).
    pub async fn start(
        settings: QuorumSettings,
        listener: Arc<dyn CommittedImageListener>,
    ) -> Result<Arc<Self>, QuorumError> {
        let id = raft_id(settings.node_id)?;
        let storage = |source: Box<dyn std::error::Error + Send + Sync>| QuorumError::Storage {
            dir: settings.dir.clone(),
            source,
        };
        let log_store = MetadataLogStore::open(&settings.dir).map_err(|e| storage(Box::new(e)))?;
        // Every voter starts from the same image (the formatted cluster id), so replaying the log from
        // the start gives the same result everywhere.
        let initial = MetadataImage {
            cluster_id: settings.cluster_id.clone(),
            next_producer_id: FIRST_PRODUCER_ID,
            ..MetadataImage::default()
        };
        let (state_machine, _applied) =
            MetadataStateMachine::open(&settings.dir, initial, listener)
                .map_err(|e| storage(Box::new(e)))?;
        let election_ms = u64::try_from(settings.election_timeout.as_millis()).unwrap_or(1000);
        let config =
            metadata_quorum_config(election_ms).map_err(|e| QuorumError::Config(Box::new(e)))?;
        let network = MetadataNetwork::new(Arc::clone(&settings.identity));
        let raft = MetadataRaft::new(id, config, network, log_store, state_machine)
            .await
            .map_err(|e| QuorumError::Start(Box::new(e)))?;
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| QuorumError::Start(Box::new(e)))?;
        if initialized && settings.dynamic {
            let stored: Vec<NodeId> = raft.voter_ids().map(node_id).collect();
            tracing::info!(voters = ?stored, "metadata quorum voters as the log records them (dynamic quorum)");
        } else if initialized {
            let stored: Vec<NodeId> = raft.voter_ids().map(node_id).collect();
            let configured: Vec<NodeId> = settings.voters.keys().copied().collect();
            let mut sorted = stored.clone();
            sorted.sort_unstable();
            if sorted != configured {
                let _ = raft.shutdown().await;
                return Err(QuorumError::VoterSetChanged {
                    configured,
                    stored: sorted,
                });
            }
        }
        if !initialized && settings.voters.contains_key(&settings.node_id) {
            let mut members = BTreeMap::new();
            for (voter, addr) in &settings.voters {
                members.insert(
                    raft_id(*voter)?,
                    QuorumNode {
                        controller_addr: addr.clone(),
                        directory_id: settings.voter_directories.get(voter).cloned(),
                    },
                );
            }
            if let Err(e) = raft.initialize(members).await {
                // Another voter's proposal got here first: the log is initialized either way.
                tracing::debug!(error = %e, "metadata quorum already initialized");
            }
        }
        tracing::info!(
            node = settings.node_id,
            voters = ?settings.voters.keys().collect::<Vec<_>>(),
            "metadata quorum started"
        );
        Ok(Arc::new(Self {
            raft,
            node_id: settings.node_id,
            dynamic: settings.dynamic,
            voter_change: tokio::sync::Mutex::new(()),
        }))
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Whether this node is the quorum's leader, i.e. the active controller.
    pub fn is_leader(&self) -> bool {
        self.raft.is_leader()
    }

    /// The term this node leads in, if it leads.
    pub fn leader_term(&self) -> Option<u64> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow_watched();
        metrics.state.is_leader().then_some(metrics.current_term)
    }

    /// The known leader and its controller listener address.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow_watched();
        let leader = metrics.current_leader?;
        let node = metrics.membership_config.get_node(&leader)?;
        Some((node_id(leader), node.controller_addr.clone()))
    }

    /// Whether this node is in the membership (as a voter or a learner), so the leader replicates to it.
    pub fn follows_log(&self) -> bool {
        let Ok(id) = raft_id(self.node_id) else {
            return false;
        };
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow_watched();
        metrics
            .membership_config
            .membership()
            .get_node(&id)
            .is_some()
    }

    /// The voters of the current membership.
    pub fn voters(&self) -> Vec<NodeId> {
        self.raft.voter_ids().map(node_id).collect()
    }

    /// The voters of the current membership, with what each published about itself.
    fn voter_nodes(&self) -> BTreeMap<NodeId, QuorumNode> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow_watched();
        let membership = metrics.membership_config.membership();
        membership
            .voter_ids()
            .filter_map(|id| {
                let node = metrics.membership_config.get_node(&id)?;
                Some((node_id(id), node.clone()))
            })
            .collect()
    }

    /// The voters of the current membership with their controller listener addresses.
    pub fn voter_addresses(&self) -> BTreeMap<NodeId, String> {
        self.voter_nodes()
            .into_iter()
            .map(|(id, node)| (id, node.controller_addr))
            .collect()
    }

    /// The voters' directory ids, where the membership records them.
    pub fn voter_directories(&self) -> BTreeMap<NodeId, Option<String>> {
        self.voter_nodes()
            .into_iter()
            .map(|(id, node)| (id, node.directory_id))
            .collect()
    }

    /// What the leader knows of every member's replication of the metadata log (KIP-595's DescribeQuorum),
    /// or None on a node that does not lead: only the leader tracks the others' progress.
    pub fn describe(&self) -> Option<QuorumDescription> {
        use openraft::Instant as _;
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow_watched();
        if !metrics.state.is_leader() {
            return None;
        }
        let replication = metrics.replication.clone().unwrap_or_default();
        let heartbeat = metrics.heartbeat.clone().unwrap_or_default();
        let member = |id: u64| {
            let matched = if id == metrics.id {
                metrics.last_log_index
            } else {
                replication
                    .get(&id)
                    .and_then(|log| log.as_ref().map(|l| l.index))
            };
            let since_ack = if id == metrics.id {
                Some(Duration::ZERO)
            } else {
                heartbeat
                    .get(&id)
                    .and_then(|at| at.as_ref())
                    .map(|at| at.elapsed())
            };
            let node = metrics.membership_config.get_node(&id);
            QuorumMember {
                id: node_id(id),
                log_end: matched.map(|index| index + 1),
                since_ack,
                controller_addr: node.map(|n| n.controller_addr.clone()),
                directory_id: node.and_then(|n| n.directory_id.clone()),
            }
        };
        let membership = metrics.membership_config.membership();
        let voters: Vec<u64> = membership.voter_ids().collect();
        let observers: Vec<u64> = membership.learner_ids().collect();
        Some(QuorumDescription {
            leader: node_id(metrics.id),
            term: metrics.current_term,
            high_watermark: metrics
                .cluster_committed
                .as_ref()
                .map_or(0, |log| log.index + 1),
            voters: voters.into_iter().map(member).collect(),
            observers: observers.into_iter().map(member).collect(),
        })
    }

    /// Makes `id` (a broker that does not vote) a learner that replicates the metadata log from its
    /// controller-protocol address `addr`, or moves it there when its address changed. Leader only; returns
    /// without waiting for the learner to catch up (its heartbeats say when it has).
    pub async fn ensure_learner(
        &self,
        id: NodeId,
        addr: &str,
        directory_id: Option<&str>,
    ) -> Result<(), QuorumError> {
        let raft_id = raft_id(id)?;
        let known = {
            let metrics = self.raft.metrics();
            let metrics = metrics.borrow_watched();
            let membership = metrics.membership_config.membership();
            if membership.voter_ids().any(|v| v == raft_id) {
                return Ok(());
            }
            match membership.get_node(&raft_id) {
                Some(node)
                    if node.controller_addr == addr
                        && (directory_id.is_none()
                            || node.directory_id.as_deref() == directory_id) =>
                {
                    return Ok(())
                }
                Some(_) => true,
                None => false,
            }
        };
        let node = QuorumNode {
            controller_addr: addr.to_owned(),
            directory_id: directory_id.map(str::to_owned),
        };
        if known {
            // A restarted learner listens on a new port. openraft keeps replicating to the address it
            // connected to when only a node's metadata changes, so the learner is removed and added again,
            // which opens a new replication stream (the way openraft's guide prefers over SetNodes).
            self.change_membership(
                openraft::ChangeMembers::RemoveNodes(BTreeSet::from([raft_id])),
                false,
            )
            .await?;
        }
        self.raft
            .add_learner(raft_id, node, false)
            .await
            .map_err(write_error)?;
        tracing::info!(broker = id, %addr, "broker added to the metadata quorum as a learner");
        Ok(())
    }

    fn static_quorum_refusal() -> VoterChangeError {
        VoterChangeError::StaticQuorum(
            "The metadata quorum was formed with static controller.quorum.voters, so its voters cannot change \
             at run time (Kafka's kraft.version 0). Form the cluster with controller.quorum.bootstrap.servers and \
             format --standalone or --initial-controllers to change voters with add-controller / remove-controller."
                .to_owned(),
        )
    }

    /// Kafka's AddRaftVoter (KIP-853): promotes `id`, which must already follow the metadata log as a learner
    /// (a node with the controller role that started without being a voter and registered), to a voter once
    /// it holds every committed entry; waits up to `timeout` for that. `listeners` are the `host:port`s the
    /// request names; one must be the address the node follows the log on. Leader only.
    pub async fn add_voter(
        &self,
        id: NodeId,
        directory_id: Option<&str>,
        listeners: &[String],
        timeout: Duration,
    ) -> Result<Result<(), VoterChangeError>, QuorumError> {
        if !self.dynamic {
            return Ok(Err(Self::static_quorum_refusal()));
        }
        let member = raft_id(id)?;
        let _one_change = self.voter_change.lock().await;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let description = self.describe().ok_or_else(|| self.not_leader())?;
            let voters: Vec<NodeId> = description.voters.iter().map(|v| v.id).collect();
            if voters.contains(&id) {
                return Ok(Err(VoterChangeError::AlreadyVoter(format!(
                    "The voter id for {id} is already part of the set of voters {voters:?}."
                ))));
            }
            let Some(learner) = description.observers.iter().find(|o| o.id == id) else {
                return Ok(Err(VoterChangeError::NotReady(format!(
                    "Node {id} does not follow the metadata log: start it with a controller role and \
                     controller.quorum.bootstrap.servers (formatted with --no-initial-controllers) and let it \
                     register before adding it."
                ))));
            };
            if let (Some(wanted), Some(known)) = (directory_id, learner.directory_id.as_deref()) {
                if wanted != known {
                    return Ok(Err(VoterChangeError::Unsafe(format!(
                        "Node {id} follows the metadata log with directory id {known}, not {wanted}."
                    ))));
                }
            }
            let addr = learner.controller_addr.clone().unwrap_or_default();
            if !listeners.contains(&addr) {
                return Ok(Err(VoterChangeError::Unsafe(format!(
                    "Provided listeners {listeners:?} do not contain {addr}, the controller listener node {id} \
                     follows the metadata log on."
                ))));
            }
            if learner.follows(description.high_watermark) {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(Err(VoterChangeError::NotReady(format!(
                    "Node {id} is lagging behind the metadata log (it holds {:?} of {} entries); it is added once \
                     it has caught up.",
                    learner.log_end, description.high_watermark
                ))));
            }
            tokio::time::sleep(CATCH_UP_POLL).await;
        }
        self.change_membership(
            openraft::ChangeMembers::AddVoterIds(BTreeSet::from([member])),
            true,
        )
        .await?;
        tracing::info!(node = id, voters = ?self.voters(), "voter added to the metadata quorum");
        Ok(Ok(()))
    }

    /// Kafka's RemoveRaftVoter (KIP-853): demotes voter `id` to a learner, so a node that also serves as a
    /// broker keeps following the log. Refused when the voters left, or the joint configuration on the way
    /// there, would not have a majority that follows the leader now: unlike Kafka, a removal never leaves
    /// the quorum unable to commit. A leader asked to remove itself hands leadership to a following voter
    /// first and answers NotLeader, so the caller retries at the new leader. Leader only.
    pub async fn remove_voter(
        &self,
        id: NodeId,
        directory_id: Option<&str>,
    ) -> Result<Result<(), VoterChangeError>, QuorumError> {
        if !self.dynamic {
            return Ok(Err(Self::static_quorum_refusal()));
        }
        let member = raft_id(id)?;
        let _one_change = self.voter_change.lock().await;
        let description = self.describe().ok_or_else(|| self.not_leader())?;
        let voters: Vec<NodeId> = description.voters.iter().map(|v| v.id).collect();
        let Some(voter) = description.voters.iter().find(|v| v.id == id) else {
            return Ok(Err(VoterChangeError::NotVoter(format!(
                "The voter id {id} is not part of the set of voters {voters:?}."
            ))));
        };
        if let (Some(wanted), Some(known)) = (directory_id, voter.directory_id.as_deref()) {
            if wanted != known {
                return Ok(Err(VoterChangeError::NotVoter(format!(
                    "Voter {id} has directory id {known}, not {wanted}."
                ))));
            }
        }
        if voters.len() == 1 {
            return Ok(Err(VoterChangeError::Unsafe(format!(
                "Node {id} is the only voter of the metadata quorum; add another voter before removing it."
            ))));
        }
        if let Some(refusal) = removal_refusal(&description, id) {
            return Ok(Err(refusal));
        }
        let following = following_voters(&description);
        if id == self.node_id {
            let target = following.iter().copied().find(|v| *v != id);
            if let Some(target) = target.and_then(|t| raft_id(t).ok()) {
                if let Err(e) = self.raft.trigger().transfer_leader(target).await {
                    return Err(QuorumError::Write(Box::new(e)));
                }
                let handed_over = tokio::time::timeout(Duration::from_secs(5), async {
                    while self.is_leader() {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                })
                .await;
                if handed_over.is_ok() {
                    tracing::info!(
                        node = id,
                        "handed metadata leadership over before removing this voter"
                    );
                }
            }
            return Err(self.not_leader());
        }
        self.change_membership(
            openraft::ChangeMembers::RemoveVoters(BTreeSet::from([member])),
            true,
        )
        .await?;
        tracing::info!(node = id, voters = ?self.voters(), "voter removed from the metadata quorum; it stays a learner");
        Ok(Ok(()))
    }

    fn not_leader(&self) -> QuorumError {
        QuorumError::NotLeader {
            leader: self
                .leader()
                .map(|(id, _)| id)
                .filter(|id| *id != self.node_id),
        }
    }

    /// openraft's `change_membership` (`retain`: removed voters stay learners), returning once committed.
    async fn change_membership(
        &self,
        change: openraft::ChangeMembers<RaftNodeId, QuorumNode>,
        retain: bool,
    ) -> Result<(), QuorumError> {
        self.raft
            .change_membership(change, retain)
            .await
            .map(drop)
            .map_err(write_error)
    }

    /// The index of the last entry the local state machine applied (0 before any).
    pub fn applied_index(&self) -> u64 {
        self.raft
            .metrics()
            .borrow_watched()
            .last_applied
            .as_ref()
            .map_or(0, |log_id| log_id.index)
    }

    /// Writes `changes` as one entry and returns once it is committed and applied here. Only the leader
    /// can; others get [`QuorumError::NotLeader`].
    pub async fn write(&self, changes: Vec<MetadataChange>) -> Result<CommandOutcome, QuorumError> {
        self.raft
            .client_write(MetadataCommand { changes })
            .await
            .map(|response| response.data)
            .map_err(write_error)
    }

    /// Waits until the local state machine has applied `index`.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> Result<(), QuorumError> {
        self.raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), "forwarded metadata change")
            .await
            .map(drop)
            .map_err(|_| QuorumError::WaitTimeout { index, timeout })
    }

    /// Answers a Raft RPC from another controller.
    pub async fn serve(&self, request: RaftRpc) -> RaftRpcReply {
        network::serve(&self.raft, request).await
    }

    /// Hands leadership to another voter before this node stops, so the quorum does not wait out an
    /// election timeout. Best effort: the caller goes on after a short wait either way.
    pub async fn resign(&self, wait: Duration) {
        if !self.is_leader() {
            return;
        }
        let target = self
            .raft
            .voter_ids()
            .find(|id| node_id(*id) != self.node_id);
        if let Some(target) = target {
            if let Err(e) = self.raft.trigger().transfer_leader(target).await {
                tracing::warn!(error = %e, "handing over metadata leadership failed");
                return;
            }
            let _ = tokio::time::timeout(wait, async {
                while self.is_leader() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await;
        }
    }

    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "metadata quorum did not stop cleanly");
        }
    }
}

fn following_voters(description: &QuorumDescription) -> Vec<NodeId> {
    description
        .voters
        .iter()
        .filter(|v| v.follows(description.high_watermark))
        .map(|v| v.id)
        .collect()
}

/// Why removing voter `id` would leave the quorum unable to commit, if it would: openraft goes through a
/// joint configuration, which needs a majority of the old voters and of the new ones, so both must have a
/// majority that follows the leader now.
fn removal_refusal(description: &QuorumDescription, id: NodeId) -> Option<VoterChangeError> {
    let voters: Vec<NodeId> = description.voters.iter().map(|v| v.id).collect();
    let following = following_voters(description);
    let remaining: Vec<NodeId> = voters.iter().copied().filter(|v| *v != id).collect();
    let following_remaining = following.iter().filter(|v| **v != id).count();
    (following_remaining * 2 <= remaining.len() || following.len() * 2 <= voters.len()).then(|| {
        VoterChangeError::Unsafe(format!(
            "Removing voter {id} would leave voters {remaining:?}, of which only {following_remaining} follow \
             the leader now ({following:?} of {voters:?} do): the quorum could not commit. Bring the others \
             back first."
        ))
    })
}

/// The leader's view of the metadata quorum: who votes, who only follows, and how far each has replicated.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuorumDescription {
    pub leader: NodeId,
    pub term: u64,
    /// One past the last committed entry's index (Kafka's high watermark of `__cluster_metadata`).
    pub high_watermark: u64,
    pub voters: Vec<QuorumMember>,
    pub observers: Vec<QuorumMember>,
}

/// One member of [`QuorumDescription`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuorumMember {
    pub id: NodeId,
    /// One past the last entry the leader knows it holds; None before it has replicated anything.
    pub log_end: Option<u64>,
    /// How long ago the member last acknowledged the leader.
    pub since_ack: Option<Duration>,
    pub controller_addr: Option<String>,
    pub directory_id: Option<String>,
}

impl QuorumMember {
    /// Whether the member follows the leader closely: it acknowledged within `HEALTHY_ACK` and holds every
    /// committed entry (as of the description).
    fn follows(&self, high_watermark: u64) -> bool {
        self.since_ack.is_some_and(|ago| ago <= HEALTHY_ACK)
            && self.log_end.is_some_and(|end| end >= high_watermark)
    }
}

/// A member that acknowledged the leader this recently counts as following it (the leader's heartbeats go
/// out every 50 ms; a few seconds leaves room for a busy machine).
const HEALTHY_ACK: Duration = Duration::from_secs(3);
/// How often a voter addition checks whether the new voter has caught up.
const CATCH_UP_POLL: Duration = Duration::from_millis(50);

#[cfg(test)]
mod tests {
    use super::*;

    /// A description whose voters `following` hold every entry and acknowledged just now, and whose other
    /// `voters` are silent.
    fn quorum(voters: &[NodeId], following: &[NodeId]) -> QuorumDescription {
        let member = |id: &NodeId| QuorumMember {
            id: *id,
            log_end: Some(if following.contains(id) { 10 } else { 3 }),
            since_ack: following.contains(id).then_some(Duration::from_millis(20)),
            controller_addr: None,
            directory_id: None,
        };
        QuorumDescription {
            leader: following[0],
            term: 2,
            high_watermark: 10,
            voters: voters.iter().map(member).collect(),
            observers: Vec::new(),
        }
    }

    #[test]
    fn a_removal_needs_a_following_majority_before_and_after() {
        // Three voters, all following: any one can go.
        assert_eq!(removal_refusal(&quorum(&[1, 2, 3], &[1, 2, 3]), 3), None);
        // One of three down: removing the down one leaves two that follow; removing a live one leaves one.
        assert_eq!(removal_refusal(&quorum(&[1, 2, 3], &[1, 2]), 3), None);
        assert!(removal_refusal(&quorum(&[1, 2, 3], &[1, 2]), 2).is_some());
        // Four voters with two down: the three left would have a following majority once 4 is gone, but the
        // joint configuration also needs three of the four old voters, and only two follow.
        let refusal = removal_refusal(&quorum(&[1, 2, 3, 4], &[1, 2]), 4).expect("refused");
        assert!(
            refusal.to_string().contains("could not commit"),
            "{refusal}"
        );
        // Four voters with one down: removing a live one still leaves a majority on both sides.
        assert_eq!(removal_refusal(&quorum(&[1, 2, 3, 4], &[1, 2, 3]), 3), None);
        // A member that acknowledged long ago does not count, even with the whole log.
        let mut stale = quorum(&[1, 2, 3], &[1, 2, 3]);
        stale.voters[1].since_ack = Some(HEALTHY_ACK * 2);
        assert!(removal_refusal(&stale, 3).is_some());
    }
}
