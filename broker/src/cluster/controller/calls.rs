//! Controller operations as messages, and their routing: in a cluster, an operation runs on the active
//! controller (the metadata quorum's leader). Any other broker forwards it over the controller listener and,
//! once the answer is in, waits until its own image has applied the result, so a client that created a topic
//! through broker 2 sees it in broker 2's next Metadata response (Kafka's forwarding, KIP-590).

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    elections::{ElectionOutcome, ElectionType},
    reassignment::{ReassignmentOutcomes, ReassignmentRequest},
    AlterPartitionError, AlterPartitionRequest, Controller, Placement, TopicError,
};
use crate::cluster::{
    image::{BrokerRegistration, NodeId, PartitionRegistration, TopicMetadata},
    raft::{
        quorum::{MetadataQuorum, QuorumError, VoterChangeError},
        types::Rejection,
    },
    rpc::{RpcClient, RpcIdentity, RpcRequest, RpcResponse},
    store::MetadataChange,
};

/// How long an operation may wait for an active controller (an election takes about a second) before the
/// client gets REQUEST_TIMED_OUT. Below the 30 s default `request.timeout.ms` of Kafka's admin client.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(15);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// How often a pending forwarded call checks whether its controller was replaced.
const SUPERSEDED_CHECK: Duration = Duration::from_millis(50);

/// One controller operation, as a broker forwards it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControllerCall {
    CreateTopic {
        name: String,
        placement: Placement,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    },
    CreatePartitions {
        name: String,
        total: i32,
        assignments: Option<Vec<Vec<NodeId>>>,
        validate_only: bool,
    },
    DeleteTopic {
        name: String,
    },
    SetTopicConfigs {
        name: String,
        configs: BTreeMap<String, String>,
    },
    SetBrokerConfigs {
        configs: BTreeMap<String, String>,
    },
    SetNodeConfigs {
        id: NodeId,
        configs: BTreeMap<String, String>,
    },
    /// Kafka's AlterClientQuotas, validated: the alterations are applied together.
    AlterClientQuotas {
        alterations: Vec<(crate::quota::QuotaEntity, crate::quota::Alteration)>,
    },
    AllocateProducerIds,
    /// Kafka's BrokerRegistration: the broker is registered fenced, with a new epoch. A broker that does
    /// not vote names the controller-protocol address it follows the metadata log on.
    RegisterBroker {
        registration: BrokerRegistration,
        metadata_addr: Option<String>,
        /// The broker's metadata log directory id, recorded with it as a learner (KIP-853 names voters by it).
        #[serde(default)]
        directory_id: Option<String>,
    },
    /// Kafka's ElectLeaders; `partitions` None means all.
    ElectLeaders {
        election_type: ElectionType,
        partitions: Option<Vec<(String, i32)>>,
    },
    /// Kafka's AlterPartition: a leader's ISR change.
    AlterPartition(AlterPartitionRequest),
    /// Kafka's AlterPartitionReassignments (KIP-455, KIP-860).
    AlterPartitionReassignments {
        requests: Vec<ReassignmentRequest>,
        allow_replication_factor_change: bool,
    },
    /// Kafka's BrokerHeartbeat.
    BrokerHeartbeat(Heartbeat),
    /// Kafka's UnregisterBroker: forgets a registered broker that is stopped and holds nothing.
    UnregisterBroker {
        id: NodeId,
    },
    /// Kafka's DescribeQuorum: the leader's view of the metadata quorum.
    DescribeQuorum,
    /// A controller-only node that does not vote asks to follow the metadata log as a learner (a broker
    /// asks by registering).
    FollowMetadataLog {
        id: NodeId,
        addr: String,
        directory_id: Option<String>,
    },
    /// Kafka's AddRaftVoter (KIP-853): a learner with the controller role becomes a voter.
    AddRaftVoter {
        id: NodeId,
        directory_id: Option<String>,
        /// The `host:port`s of the voter's listeners as the request names them.
        listeners: Vec<String>,
        /// How long to wait for the new voter to catch up.
        timeout: Duration,
    },
    /// Kafka's RemoveRaftVoter (KIP-853): a voter becomes a learner.
    RemoveRaftVoter {
        id: NodeId,
        directory_id: Option<String>,
    },
}

/// Kafka's BrokerHeartbeat request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Heartbeat {
    pub id: NodeId,
    pub epoch: i64,
    /// The index of the last metadata entry the broker has applied.
    pub metadata_offset: u64,
    pub want_shut_down: bool,
    /// The broker's data directory is out of space (Kafka reports offline log directories here).
    #[serde(default)]
    pub storage_full: bool,
}

/// What an operation produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CallOutput {
    Done,
    Topic(TopicMetadata),
    TopicDeleted(Uuid),
    ProducerIds {
        start: i64,
        count: i64,
    },
    Registered {
        epoch: i64,
    },
    Elections(Vec<(String, i32, ElectionOutcome)>),
    /// Per requested partition, whether its reassignment was started or cancelled.
    Reassignments(ReassignmentOutcomes),
    /// The new registration, or why the controller refused the ISR change.
    Partition(Result<PartitionRegistration, AlterPartitionError>),
    Unregistered(super::liveness::UnregisterOutcome),
    /// None when this node runs without a metadata quorum.
    Quorum(Option<crate::cluster::raft::quorum::QuorumDescription>),
    /// The voter change was made, or why it was refused.
    VoterChange(Result<(), VoterChangeError>),
    Heartbeat {
        /// False when the controller does not know this broker at this epoch: it must register again.
        registered: bool,
        is_fenced: bool,
        should_shut_down: bool,
    },
}

/// The answer to a forwarded operation: its output and the log index that holds its changes (0 if none).
pub type CallReply = Result<(CallOutput, u64), TopicError>;

pub(super) fn unexpected(output: &CallOutput) -> TopicError {
    TopicError::Internal(format!("the controller answered {output:?}"))
}

/// A cluster member's way to the metadata quorum and the active controller.
#[derive(Debug)]
pub struct QuorumLink {
    quorum: Arc<MetadataQuorum>,
    identity: Arc<RpcIdentity>,
    /// The configured voters' controller addresses: where a broker that has not yet joined the log (and
    /// so does not know the leader) looks for the active controller, one after the other.
    voters: Vec<(NodeId, String)>,
    next_voter: std::sync::atomic::AtomicUsize,
    /// The connection to the active controller, replaced when the leader moves.
    to_leader: tokio::sync::Mutex<Option<RpcClient>>,
}

impl QuorumLink {
    pub fn new(
        quorum: Arc<MetadataQuorum>,
        identity: Arc<RpcIdentity>,
        voters: Vec<(NodeId, String)>,
    ) -> Self {
        Self {
            quorum,
            identity,
            voters,
            next_voter: std::sync::atomic::AtomicUsize::new(0),
            to_leader: tokio::sync::Mutex::new(None),
        }
    }

    /// Where to send a call: the known leader, else the next configured voter other than this node.
    fn target(&self) -> Option<(NodeId, String)> {
        if let Some(leader) = self.quorum.leader() {
            return Some(leader);
        }
        let others: Vec<_> = self
            .voters
            .iter()
            .filter(|(id, _)| *id != self.identity.node_id)
            .collect();
        if others.is_empty() {
            return None;
        }
        let turn = self
            .next_voter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        others.get(turn % others.len()).map(|v| (*v).clone())
    }

    pub fn quorum(&self) -> &Arc<MetadataQuorum> {
        &self.quorum
    }

    /// Writes `changes` as one entry; the caller is the active controller. Returns the entry's index once
    /// it is committed and applied here.
    pub(super) async fn write(&self, changes: Vec<MetadataChange>) -> Result<u64, TopicError> {
        let outcome = Box::pin(self.quorum.write(changes))
            .await
            .map_err(quorum_error)?;
        match outcome.result {
            Ok(()) => Ok(outcome.index),
            Err(Rejection::TopicExists(name)) => Err(TopicError::AlreadyExists(name)),
            Err(Rejection::UnknownTopic(name)) => Err(TopicError::Unknown(name)),
            Err(Rejection::PartitionsNotIncreasing { topic, current }) => {
                Err(TopicError::PartitionsNotIncreasing {
                    name: topic,
                    current,
                    requested: current,
                })
            }
            Err(rejection) => Err(TopicError::Internal(rejection.to_string())),
        }
    }

    pub(super) async fn add_learner(
        &self,
        id: NodeId,
        addr: &str,
        directory_id: Option<&str>,
    ) -> Result<(), TopicError> {
        Box::pin(self.quorum.ensure_learner(id, addr, directory_id))
            .await
            .map_err(quorum_error)
    }

    /// Returns once the quorum knows a leader other than `leader`.
    async fn superseded(&self, leader: NodeId) {
        loop {
            tokio::time::sleep(SUPERSEDED_CHECK).await;
            if matches!(self.quorum.leader(), Some((id, _)) if id != leader) {
                return;
            }
        }
    }

    async fn forward(&self, call: &ControllerCall) -> CallReply {
        let (leader, addr) = self.target().ok_or_else(|| {
            TopicError::ControllerUnavailable("the metadata quorum has no leader".to_owned())
        })?;
        if leader == self.identity.node_id {
            return Err(TopicError::ControllerUnavailable(
                "leadership is changing".to_owned(),
            ));
        }
        let mut to_leader = self.to_leader.lock().await;
        if to_leader.as_ref().is_none_or(|c| c.addr() != addr) {
            *to_leader = Some(RpcClient::new(addr.clone(), Arc::clone(&self.identity)));
        }
        let Some(client) = to_leader.as_mut() else {
            return Err(TopicError::ControllerUnavailable(addr));
        };
        // A call to a controller that another leader has replaced is abandoned as soon as that is known,
        // not after CALL_TIMEOUT: a cut-off controller's connection can stay silent (no reset), and a
        // heartbeat stuck on it that long gets a healthy broker fenced by the new controller.
        let request = RpcRequest::Controller(call.clone());
        let result = tokio::select! {
            result = client.call(&request, CALL_TIMEOUT) => Some(result),
            () = self.superseded(leader) => None,
        };
        let Some(result) = result else {
            // The connection may still carry the abandoned call's late answer.
            *to_leader = None;
            return Err(TopicError::ControllerUnavailable(format!(
                "controller {leader} was replaced while a call to it was pending"
            )));
        };
        match result {
            Ok(RpcResponse::Controller(reply)) => reply,
            Ok(_) => Err(TopicError::Internal(format!(
                "controller {leader} at {addr} answered another kind of request"
            ))),
            Err(e) => Err(TopicError::ControllerUnavailable(format!(
                "controller {leader}: {}",
                crate::error_chain(&e)
            ))),
        }
    }
}

fn quorum_error(error: QuorumError) -> TopicError {
    match error {
        QuorumError::NotLeader { .. } => TopicError::ControllerUnavailable(
            "this broker is no longer the active controller".into(),
        ),
        other => TopicError::Internal(crate::error_chain(&other)),
    }
}

/// How long a voter addition waits for the new voter to catch up, below [`CALL_TIMEOUT`] so that a
/// forwarded call answers before its caller gives up.
const MAX_CATCH_UP_WAIT: Duration = Duration::from_secs(8);

fn single_node_refusal() -> VoterChangeError {
    VoterChangeError::StaticQuorum(
        "this broker runs as a single node without a metadata quorum".to_owned(),
    )
}

impl Controller {
    /// Kafka's AddRaftVoter and RemoveRaftVoter, run on the active controller.
    pub async fn change_voters(
        &self,
        call: ControllerCall,
    ) -> Result<Result<(), VoterChangeError>, TopicError> {
        match self.call(call).await? {
            CallOutput::VoterChange(outcome) => Ok(outcome),
            other => Err(unexpected(&other)),
        }
    }

    /// Runs `call` where it must run: here in single-node mode or on the active controller, else forwarded
    /// to it. Retries (bounded) while there is no reachable active controller.
    pub async fn call(&self, call: ControllerCall) -> Result<CallOutput, TopicError> {
        // Boxed: the operations' futures nest openraft's, deep enough to exceed the compiler's default
        // layout depth in callers that nest them further.
        let Some(link) = &self.quorum else {
            return Box::pin(self.execute(call)).await.map(|(output, _)| output);
        };
        let deadline = Instant::now() + FORWARD_TIMEOUT;
        loop {
            let attempt = if link.quorum.is_leader() {
                Box::pin(self.execute(call.clone())).await
            } else {
                Box::pin(link.forward(&call)).await
            };
            match attempt {
                Ok((output, index)) => {
                    if index > 0 {
                        let left = deadline.saturating_duration_since(Instant::now());
                        link.quorum
                            .wait_applied(index, left.max(Duration::from_secs(1)))
                            .await
                            .map_err(quorum_error)?;
                    }
                    return Ok(output);
                }
                Err(TopicError::ControllerUnavailable(reason)) => {
                    if Instant::now() >= deadline {
                        return Err(TopicError::ControllerUnavailable(reason));
                    }
                    tracing::debug!(%reason, "no active controller yet; retrying");
                    tokio::time::sleep(RETRY_BACKOFF).await;
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// Runs `call` on this node, which must be the active controller (or a single node). Called by the
    /// controller listener for forwarded operations.
    pub async fn execute(&self, call: ControllerCall) -> CallReply {
        if let Some(link) = &self.quorum {
            if !link.quorum.is_leader() {
                return Err(TopicError::ControllerUnavailable(format!(
                    "node {} is not the active controller",
                    link.identity.node_id
                )));
            }
        }
        match call {
            ControllerCall::CreateTopic {
                name,
                placement,
                configs,
                validate_only,
            } => {
                self.create_topic_here(&name, placement, configs, validate_only)
                    .await
            }
            ControllerCall::CreatePartitions {
                name,
                total,
                assignments,
                validate_only,
            } => {
                self.create_partitions_here(&name, total, assignments, validate_only)
                    .await
            }
            ControllerCall::DeleteTopic { name } => self.delete_topic_here(&name).await,
            ControllerCall::SetTopicConfigs { name, configs } => {
                self.set_configs_here(MetadataChange::SetTopicConfigs { name, configs })
                    .await
            }
            ControllerCall::SetBrokerConfigs { configs } => {
                self.set_configs_here(MetadataChange::SetBrokerConfigs { configs })
                    .await
            }
            ControllerCall::SetNodeConfigs { id, configs } => {
                self.set_configs_here(MetadataChange::SetNodeConfigs { id, configs })
                    .await
            }
            ControllerCall::AlterClientQuotas { alterations } => {
                self.set_configs_here(MetadataChange::AlterClientQuotas { alterations })
                    .await
            }
            ControllerCall::AllocateProducerIds => self.allocate_producer_ids_here().await,
            ControllerCall::RegisterBroker {
                registration,
                metadata_addr,
                directory_id,
            } => {
                self.register_broker_here(registration, metadata_addr, directory_id)
                    .await
            }
            ControllerCall::AlterPartition(request) => self.alter_partition_here(request).await,
            ControllerCall::AlterPartitionReassignments {
                requests,
                allow_replication_factor_change,
            } => {
                self.alter_partition_reassignments_here(requests, allow_replication_factor_change)
                    .await
            }
            ControllerCall::ElectLeaders {
                election_type,
                partitions,
            } => self.elect_leaders_here(election_type, partitions).await,
            ControllerCall::BrokerHeartbeat(heartbeat) => self.heartbeat_here(heartbeat).await,
            ControllerCall::UnregisterBroker { id } => self.unregister_broker_here(id).await,
            ControllerCall::DescribeQuorum => match &self.quorum {
                None => Ok((CallOutput::Quorum(None), 0)),
                Some(link) => link
                    .quorum()
                    .describe()
                    .map(|description| (CallOutput::Quorum(Some(description)), 0))
                    .ok_or_else(|| {
                        TopicError::ControllerUnavailable(
                            "this node stopped leading the metadata quorum".to_owned(),
                        )
                    }),
            },
            ControllerCall::FollowMetadataLog {
                id,
                addr,
                directory_id,
            } => match &self.quorum {
                Some(link) => link
                    .add_learner(id, &addr, directory_id.as_deref())
                    .await
                    .map(|()| (CallOutput::Done, 0)),
                None => Ok((CallOutput::Done, 0)),
            },
            ControllerCall::AddRaftVoter {
                id,
                directory_id,
                listeners,
                timeout,
            } => {
                let Some(link) = &self.quorum else {
                    return Ok((CallOutput::VoterChange(Err(single_node_refusal())), 0));
                };
                let wait = timeout.min(MAX_CATCH_UP_WAIT);
                Box::pin(
                    link.quorum
                        .add_voter(id, directory_id.as_deref(), &listeners, wait),
                )
                .await
                .map(|outcome| (CallOutput::VoterChange(outcome), 0))
                .map_err(quorum_error)
            }
            ControllerCall::RemoveRaftVoter { id, directory_id } => {
                let Some(link) = &self.quorum else {
                    return Ok((CallOutput::VoterChange(Err(single_node_refusal())), 0));
                };
                Box::pin(link.quorum.remove_voter(id, directory_id.as_deref()))
                    .await
                    .map(|outcome| (CallOutput::VoterChange(outcome), 0))
                    .map_err(quorum_error)
            }
        }
        .map_err(TopicError::for_wire)
    }
}
