//! The openraft type configuration of the metadata quorum. Every openraft type the broker names is declared
//! or re-exported here (and only used inside `cluster/raft/`), so an engine upgrade touches one folder.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::cluster::store::{MetadataChange, MetadataError};

/// A Raft node id: Kafka's `node.id`, widened because openraft wants an unsigned id.
pub type RaftNodeId = u64;

/// What a voter or learner publishes about itself in the Raft membership: where its controller listener is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumNode {
    /// `host:port` of the node's controller listener (Raft RPCs, registration, heartbeats, forwarding).
    pub controller_addr: String,
    /// The node's metadata log directory id (`directory.id` of its `meta.properties`), which KIP-853 names a
    /// voter by together with its id: a voter whose disk was replaced and reformatted is another voter.
    /// Unknown (None) for members of a quorum formed with static `controller.quorum.voters`, and in
    /// membership entries written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_id: Option<String>,
}

/// One entry of the metadata log: changes applied together, in order, all or none (a broker fenced and its
/// leaderships moved is one entry).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetadataCommand {
    pub changes: Vec<MetadataChange>,
}

impl fmt::Display for MetadataCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} metadata change(s)", self.changes.len())
    }
}

/// Why the state machine refused an entry. Refusals are deterministic (every replica refuses the same entry
/// the same way), so the entry stays in the log and changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    #[error("topic {0:?} already exists")]
    TopicExists(String),
    #[error("topic {0:?} does not exist")]
    UnknownTopic(String),
    #[error("topic {topic:?} has no partition {partition}")]
    UnknownPartition { topic: String, partition: i32 },
    #[error("the new partition count must be larger than the current one ({current}) of topic {topic:?}")]
    PartitionsNotIncreasing { topic: String, current: i32 },
    #[error("{0}")]
    Other(String),
}

impl Rejection {
    pub fn from_metadata_error(error: &MetadataError) -> Self {
        match error {
            MetadataError::TopicExists(name) => Self::TopicExists(name.clone()),
            MetadataError::UnknownTopic(name) => Self::UnknownTopic(name.clone()),
            MetadataError::UnknownPartition { topic, partition } => Self::UnknownPartition {
                topic: topic.clone(),
                partition: *partition,
            },
            MetadataError::PartitionsNotIncreasing { name, current, .. } => {
                Self::PartitionsNotIncreasing {
                    topic: name.clone(),
                    current: *current,
                }
            }
            other => Self::Other(crate::error_chain(other)),
        }
    }
}

/// The result of applying one entry, returned to whoever proposed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandOutcome {
    /// Log index of the entry; a broker's registration epoch in Kafka's sense is the index of its entry.
    pub index: u64,
    pub result: Result<(), Rejection>,
}

openraft::declare_raft_types!(
    /// The metadata quorum's openraft configuration.
    pub TypeConfig:
        D = MetadataCommand,
        R = CommandOutcome,
        NodeId = RaftNodeId,
        Node = QuorumNode,
);

/// A snapshot as it is stored and shipped: the JSON encoding of the state machine's image and applied state
/// (the state machine's `SnapshotData`, which the network sends as it is).
pub type MetadataSnapshotData = Vec<u8>;

/// The metadata quorum's Raft node.
pub type MetadataRaft = openraft::Raft<TypeConfig, super::state_machine::MetadataStateMachine>;
