//! A small Kafka admin client on the `kafka-protocol` types: the topic operations the operator needs (describe,
//! create, grow, read and change config overrides, delete), over one pipelined connection per bootstrap address.
//!
//! It speaks the wire protocol only; deciding what to change is the Topic reconciler's job.

mod connection;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use kafka_protocol::{
    error::ResponseError,
    messages::{
        add_raft_voter_request::Listener as VoterListener,
        alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic},
        create_partitions_request::CreatePartitionsTopic,
        create_topics_request::{CreatableTopic, CreatableTopicConfig},
        delete_topics_request::DeleteTopicState,
        describe_configs_request::DescribeConfigsResource,
        describe_quorum_request::{PartitionData as QuorumPartition, TopicData as QuorumTopic},
        incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig},
        metadata_request::MetadataRequestTopic,
        AddRaftVoterRequest, AlterPartitionReassignmentsRequest, CreatePartitionsRequest,
        CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest, DescribeLogDirsRequest,
        DescribeQuorumRequest, IncrementalAlterConfigsRequest, ListPartitionReassignmentsRequest,
        MetadataRequest, MetadataResponse, RemoveRaftVoterRequest, TopicName,
        UnregisterBrokerRequest,
    },
    protocol::StrBytes,
};
use uuid::Uuid;

use self::connection::Connection;
use crate::cluster::voters::{QuorumMember, QuorumView};

/// Kafka's resource type code for topics in the config APIs.
const RESOURCE_TYPE_TOPIC: i8 = 2;
/// Kafka's resource type code for brokers in the config APIs.
const RESOURCE_TYPE_BROKER: i8 = 4;
/// Kafka's BROKER_ID_NOT_REGISTERED.
const BROKER_ID_NOT_REGISTERED: i16 = 102;

/// Tributary's per-broker flag that makes the controller move every replica and leadership off a broker.
pub const DRAINING_FLAG: &str = "tributary.broker.draining";
/// Config source of a per-topic override (`DYNAMIC_TOPIC_CONFIG`).
const CONFIG_SOURCE_TOPIC_OVERRIDE: i8 = 1;
/// IncrementalAlterConfigs operations.
const OPERATION_SET: i8 = 0;
const OPERATION_DELETE: i8 = 1;
/// How long the broker may take over a topic change before it answers (Kafka's admin default is 30 s).
const BROKER_TIMEOUT_MS: i32 = 30_000;

/// A failed admin call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No TCP connection to the broker.
    #[error("cannot connect to Kafka at {address}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    /// The connection failed while a request was in flight.
    #[error("connection to Kafka at {address} failed")]
    Io {
        address: String,
        source: std::io::Error,
    },
    /// No response within the request timeout.
    #[error("{api} to Kafka at {address} timed out")]
    Timeout { api: &'static str, address: String },
    /// The broker does not implement a version of the API this client speaks.
    #[error("Kafka at {address} does not support a usable version of {api}")]
    UnsupportedApi { api: &'static str, address: String },
    /// A request could not be encoded or a response decoded.
    #[error("malformed {api} exchange")]
    Codec {
        api: &'static str,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The broker refused the request.
    #[error("{api} refused: {}{}", error_name(*.code), .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        api: &'static str,
        code: i16,
        message: Option<String>,
    },
    /// The response did not mention the resource asked about.
    #[error("{api} response has no result for {resource}")]
    MissingResult { api: &'static str, resource: String },
}

fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        Some(ResponseError::Unknown(code)) => format!("error code {code}"),
        Some(error) => format!("{error:?}"),
        None => "no error".to_owned(),
    }
}

impl Error {
    /// The Kafka error this is, when the broker answered with one.
    pub fn kafka_error(&self) -> Option<ResponseError> {
        match self {
            Error::Broker { code, .. } => ResponseError::try_from_code(*code),
            _ => None,
        }
    }

    /// Whether only a change of the Topic's spec can fix this (retrying the same request cannot).
    pub fn needs_spec_change(&self) -> bool {
        matches!(
            self.kafka_error(),
            Some(
                ResponseError::InvalidTopicException
                    | ResponseError::InvalidPartitions
                    | ResponseError::InvalidReplicationFactor
                    | ResponseError::InvalidReplicaAssignment
                    | ResponseError::InvalidConfig
                    | ResponseError::PolicyViolation
                    | ResponseError::InvalidRequest
            )
        )
    }

    /// Whether the connection itself failed (the broker is unreachable or broke the exchange).
    fn is_connection_failure(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. } | Error::Io { .. } | Error::Timeout { .. } | Error::Codec { .. }
        )
    }
}

/// A topic as the brokers describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// Kafka's topic id.
    pub id: Uuid,
    /// Number of partitions.
    pub partitions: i32,
    /// Replicas of the most-replicated partition (a topic created with a replication factor keeps it everywhere
    /// unless reassigned).
    pub replication_factor: i32,
}

/// The cluster as one broker's Metadata describes it: who is in it and where each partition lives. Each broker
/// answers from its own copy of the metadata, so two brokers can briefly disagree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterMetadata {
    /// The cluster id (`None` from a broker that predates cluster ids).
    pub cluster_id: Option<String>,
    /// The active controller as the broker knows it (`-1`: none known).
    pub controller_id: i32,
    /// Live (registered, unfenced) brokers: id to advertised `host:port`.
    pub brokers: BTreeMap<i32, String>,
    /// Partitions of every topic the broker knows, by topic name and then partition index.
    pub topics: BTreeMap<String, BTreeMap<i32, PartitionPlacement>>,
}

/// Where one partition lives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartitionPlacement {
    /// The leader (`-1`: none).
    pub leader: i32,
    /// The leader epoch.
    pub leader_epoch: i32,
    /// Every replica, in assignment order.
    pub replicas: Vec<i32>,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
    /// Replicas leaving in a move in progress (KIP-455). They stay in `replicas` until the move completes.
    pub removing: Vec<i32>,
}

impl PartitionPlacement {
    /// The replicas the partition keeps once any move in progress completes: Kafka's replication factor of a
    /// partition under reassignment (replicas minus removing ones), not the longer list Metadata shows meanwhile.
    pub fn replication_factor(&self) -> usize {
        self.kept_replicas().len()
    }

    /// The replicas the partition keeps once any move in progress completes, in assignment order.
    pub fn kept_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|id| !self.removing.contains(id))
            .collect()
    }
}

/// A partition's move in progress as ListPartitionReassignments describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PartitionMove {
    /// Every replica while the move runs, sorted.
    replicas: Vec<i32>,
    removing: Vec<i32>,
}

/// Moves in progress by topic and partition.
type PartitionMoves = BTreeMap<(String, i32), PartitionMove>;

/// Records in `placement` the leaving replicas of its move, taken from whichever of the two lists (one asked
/// before the Metadata, one after) describes the replica set Metadata showed. A move that started after the
/// Metadata lists more replicas than it showed, one that ended before it fewer, so neither is applied to a
/// replica list it does not describe.
fn apply_moves(
    placement: &mut PartitionPlacement,
    topic: &str,
    partition: i32,
    lists: [&PartitionMoves; 2],
) {
    let mut shown = placement.replicas.clone();
    shown.sort_unstable();
    let key = (topic.to_owned(), partition);
    if let Some(found) = lists
        .iter()
        .filter_map(|moves| moves.get(&key))
        .find(|m| m.replicas == shown)
    {
        placement.removing = found.removing.clone();
    }
}

impl ClusterMetadata {
    fn from_response(response: MetadataResponse) -> Self {
        let ids = |nodes: Vec<kafka_protocol::messages::BrokerId>| -> Vec<i32> {
            nodes.into_iter().map(|id| id.0).collect()
        };
        Self {
            cluster_id: response.cluster_id.map(|id| id.to_string()),
            controller_id: response.controller_id.0,
            brokers: response
                .brokers
                .into_iter()
                .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
                .collect(),
            topics: response
                .topics
                .into_iter()
                .filter(|t| t.error_code == 0)
                .filter_map(|t| {
                    let name = t.name?.0.to_string();
                    let partitions = t
                        .partitions
                        .into_iter()
                        .map(|p| {
                            let placement = PartitionPlacement {
                                leader: p.leader_id.0,
                                leader_epoch: p.leader_epoch,
                                replicas: ids(p.replica_nodes),
                                isr: ids(p.isr_nodes),
                                removing: Vec::new(),
                            };
                            (p.partition_index, placement)
                        })
                        .collect();
                    Some((name, partitions))
                })
                .collect(),
        }
    }
}

/// One broker's log directory as its DescribeLogDirs describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogDirUsage {
    /// Bytes of every partition replica in it.
    pub held_bytes: u64,
    /// The file system's size and the bytes still free on it (KIP-827, v4); `None` from a broker that does
    /// not say.
    pub total_bytes: Option<u64>,
    pub usable_bytes: Option<u64>,
}

/// One change of a topic's config overrides.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConfigChange {
    /// Set `name` to a value.
    Set { name: String, value: String },
    /// Remove the override of `name`, so the broker default applies.
    Delete { name: String },
}

/// A topic to create.
#[derive(Debug, Clone)]
pub struct NewTopic<'a> {
    /// Topic name.
    pub name: &'a str,
    /// Number of partitions.
    pub partitions: i32,
    /// Replication factor.
    pub replication_factor: i16,
    /// Config overrides.
    pub config: &'a BTreeMap<String, String>,
}

/// Kafka's printed form of a topic id: URL-safe base64 without padding, as `kafka-topics.sh --describe` shows it.
pub fn topic_id_string(id: Uuid) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// A directory id as Kafka prints it (the same form as topic ids); `None` for the nil UUID (not known).
fn directory_id_string(id: Uuid) -> Option<String> {
    (!id.is_nil()).then(|| topic_id_string(id))
}

/// The UUID of a directory id in Kafka's printed form.
fn parse_directory_id(text: &str) -> Option<Uuid> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()?;
    Uuid::from_slice(&bytes).ok()
}

/// The metadata quorum as DescribeQuorum reports it, with the controller listener (`host`, `port`) of each
/// member that has one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuorumDescription {
    pub view: QuorumView,
    pub endpoints: BTreeMap<i32, (String, u16)>,
}

/// An admin client for one bootstrap address. Cheap to share: calls from many tasks are pipelined over one
/// connection, which is re-opened after it fails.
#[derive(Debug)]
pub struct AdminClient {
    address: String,
    connection: tokio::sync::Mutex<Option<Arc<Connection>>>,
    connect_timeout: Duration,
    request_timeout: Duration,
}

impl AdminClient {
    /// A client for the broker at `address` (`host:port`). Nothing is connected until the first call.
    pub fn new(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            connection: tokio::sync::Mutex::new(None),
            connect_timeout: Duration::from_secs(5),
            // The broker's own timeout plus a margin for the network.
            request_timeout: Duration::from_millis(BROKER_TIMEOUT_MS as u64 + 5_000),
        }
    }

    /// The bootstrap address this client talks to.
    pub fn address(&self) -> &str {
        &self.address
    }

    async fn connection(&self) -> Result<Arc<Connection>, Error> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(connection.clone());
        }
        let connection = Arc::new(
            Connection::open(&self.address, self.connect_timeout, self.request_timeout).await?,
        );
        *slot = Some(connection.clone());
        Ok(connection)
    }

    async fn send<R: kafka_protocol::protocol::Request>(
        &self,
        request: &R,
    ) -> Result<R::Response, Error> {
        let connection = self.connection().await?;
        let result = connection.send(request).await;
        if let Err(error) = &result {
            if error.is_connection_failure() {
                // A timed-out or garbled exchange leaves the stream in an unknown state: never reuse it.
                let mut slot = self.connection.lock().await;
                if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, &connection)) {
                    *slot = None;
                }
            }
        }
        result
    }

    /// The cluster as this broker sees it: its brokers and every topic's partitions.
    pub async fn cluster_metadata(&self) -> Result<ClusterMetadata, Error> {
        // `topics: None` asks for every topic and never auto-creates one.
        let request = MetadataRequest::default()
            .with_topics(None)
            .with_allow_auto_topic_creation(false);
        let moves_before = self.partition_moves().await?;
        let mut metadata = ClusterMetadata::from_response(self.send(&request).await?);
        let moves_after = self.partition_moves().await?;
        for (topic, partitions) in &mut metadata.topics {
            for (index, placement) in partitions {
                apply_moves(placement, topic, *index, [&moves_before, &moves_after]);
            }
        }
        Ok(metadata)
    }

    /// Every partition move in progress (ListPartitionReassignments of all topics).
    async fn partition_moves(&self) -> Result<PartitionMoves, Error> {
        let request = ListPartitionReassignmentsRequest::default()
            .with_timeout_ms(BROKER_TIMEOUT_MS)
            .with_topics(None);
        let response = self.send(&request).await?;
        check(
            "ListPartitionReassignments",
            response.error_code,
            response.error_message,
        )?;
        let ids = |nodes: Vec<kafka_protocol::messages::BrokerId>| -> Vec<i32> {
            let mut ids: Vec<i32> = nodes.into_iter().map(|id| id.0).collect();
            ids.sort_unstable();
            ids
        };
        Ok(response
            .topics
            .into_iter()
            .flat_map(|topic| {
                let name = topic.name.0.to_string();
                topic.partitions.into_iter().map(move |p| {
                    (
                        (name.clone(), p.partition_index),
                        PartitionMove {
                            replicas: ids(p.replicas),
                            removing: ids(p.removing_replicas),
                        },
                    )
                })
            })
            .collect())
    }

    /// Describes `name`, or `None` when the topic does not exist.
    pub async fn describe_topic(&self, name: &str) -> Result<Option<TopicDescription>, Error> {
        let request = MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(topic_name(name)))
            ]))
            .with_allow_auto_topic_creation(false);
        let moves_before = self.partition_moves().await?;
        let response = self.send(&request).await?;
        let moves_after = self.partition_moves().await?;
        let topic = response
            .topics
            .into_iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == name))
            .ok_or_else(|| Error::MissingResult {
                api: "Metadata",
                resource: name.to_owned(),
            })?;
        match ResponseError::try_from_code(topic.error_code) {
            None | Some(ResponseError::LeaderNotAvailable) => {}
            Some(ResponseError::UnknownTopicOrPartition) => return Ok(None),
            Some(_) => {
                return Err(Error::Broker {
                    api: "Metadata",
                    code: topic.error_code,
                    message: None,
                })
            }
        }
        let replication_factor = topic
            .partitions
            .iter()
            .map(|p| {
                let mut placement = PartitionPlacement {
                    replicas: p.replica_nodes.iter().map(|id| id.0).collect(),
                    ..PartitionPlacement::default()
                };
                apply_moves(
                    &mut placement,
                    name,
                    p.partition_index,
                    [&moves_before, &moves_after],
                );
                placement.replication_factor()
            })
            .max()
            .unwrap_or(0);
        Ok(Some(TopicDescription {
            id: topic.topic_id,
            partitions: i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX),
            replication_factor: i32::try_from(replication_factor).unwrap_or(i32::MAX),
        }))
    }

    /// Creates a topic and returns its id (nil when the broker's CreateTopics version predates ids).
    pub async fn create_topic(&self, topic: &NewTopic<'_>) -> Result<Uuid, Error> {
        let configs = topic
            .config
            .iter()
            .map(|(name, value)| {
                CreatableTopicConfig::default()
                    .with_name(StrBytes::from_string(name.clone()))
                    .with_value(Some(StrBytes::from_string(value.clone())))
            })
            .collect();
        let request = CreateTopicsRequest::default()
            .with_topics(vec![CreatableTopic::default()
                .with_name(topic_name(topic.name))
                .with_num_partitions(topic.partitions)
                .with_replication_factor(topic.replication_factor)
                .with_configs(configs)])
            .with_timeout_ms(BROKER_TIMEOUT_MS);
        let response = self.send(&request).await?;
        let result = response
            .topics
            .into_iter()
            .find(|t| t.name.0.as_str() == topic.name)
            .ok_or_else(|| Error::MissingResult {
                api: "CreateTopics",
                resource: topic.name.to_owned(),
            })?;
        check("CreateTopics", result.error_code, result.error_message)?;
        Ok(result.topic_id)
    }

    /// Grows `name` to `count` partitions.
    pub async fn create_partitions(&self, name: &str, count: i32) -> Result<(), Error> {
        let request = CreatePartitionsRequest::default()
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(topic_name(name))
                .with_count(count)])
            .with_timeout_ms(BROKER_TIMEOUT_MS);
        let response = self.send(&request).await?;
        let result = response
            .results
            .into_iter()
            .find(|r| r.name.0.as_str() == name)
            .ok_or_else(|| Error::MissingResult {
                api: "CreatePartitions",
                resource: name.to_owned(),
            })?;
        check("CreatePartitions", result.error_code, result.error_message)
    }

    /// The config overrides set on topic `name` (not broker defaults).
    pub async fn topic_config_overrides(
        &self,
        name: &str,
    ) -> Result<BTreeMap<String, String>, Error> {
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(RESOURCE_TYPE_TOPIC)
                .with_resource_name(StrBytes::from_string(name.to_owned()))
                // None asks for every config; an empty list (the default) asks for none.
                .with_configuration_keys(None),
        ]);
        let response = self.send(&request).await?;
        let result = response
            .results
            .into_iter()
            .find(|r| r.resource_name.as_str() == name)
            .ok_or_else(|| Error::MissingResult {
                api: "DescribeConfigs",
                resource: name.to_owned(),
            })?;
        check("DescribeConfigs", result.error_code, result.error_message)?;
        Ok(result
            .configs
            .into_iter()
            .filter(|c| c.config_source == CONFIG_SOURCE_TOPIC_OVERRIDE)
            .map(|c| {
                (
                    c.name.to_string(),
                    c.value.map(|v| v.to_string()).unwrap_or_default(),
                )
            })
            .collect())
    }

    /// Applies `changes` to topic `name`'s config overrides in one request (the broker applies all or none).
    pub async fn alter_topic_config(
        &self,
        name: &str,
        changes: &[ConfigChange],
    ) -> Result<(), Error> {
        self.alter_config(RESOURCE_TYPE_TOPIC, name, changes).await
    }

    /// Applies `changes` to the cluster-wide dynamic broker configs (the broker resource with the empty name,
    /// what `kafka-configs.sh --entity-type brokers --entity-default` changes), in one request.
    pub async fn alter_cluster_broker_config(&self, changes: &[ConfigChange]) -> Result<(), Error> {
        self.alter_config(RESOURCE_TYPE_BROKER, "", changes).await
    }

    async fn alter_config(
        &self,
        resource_type: i8,
        name: &str,
        changes: &[ConfigChange],
    ) -> Result<(), Error> {
        let configs = changes
            .iter()
            .map(|change| match change {
                ConfigChange::Set { name, value } => AlterableConfig::default()
                    .with_name(StrBytes::from_string(name.clone()))
                    .with_config_operation(OPERATION_SET)
                    .with_value(Some(StrBytes::from_string(value.clone()))),
                ConfigChange::Delete { name } => AlterableConfig::default()
                    .with_name(StrBytes::from_string(name.clone()))
                    .with_config_operation(OPERATION_DELETE),
            })
            .collect();
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(name.to_owned()))
                .with_configs(configs),
        ]);
        let response = self.send(&request).await?;
        let result = response
            .responses
            .into_iter()
            .find(|r| r.resource_name.as_str() == name)
            .ok_or_else(|| Error::MissingResult {
                api: "IncrementalAlterConfigs",
                resource: name.to_owned(),
            })?;
        check(
            "IncrementalAlterConfigs",
            result.error_code,
            result.error_message,
        )
    }

    /// Sets (`on`) or clears a per-broker operation flag of broker `id` (such as [`DRAINING_FLAG`]); any
    /// broker takes it for any registered broker, and setting it as it is already changes nothing.
    pub async fn set_broker_flag(&self, id: i32, flag: &str, on: bool) -> Result<(), Error> {
        let change = if on {
            ConfigChange::Set {
                name: flag.to_owned(),
                value: "true".to_owned(),
            }
        } else {
            ConfigChange::Delete {
                name: flag.to_owned(),
            }
        };
        self.alter_config(RESOURCE_TYPE_BROKER, &id.to_string(), &[change])
            .await
    }

    /// The log directories of the broker this client is connected to (DescribeLogDirs answers for its own
    /// only), summed.
    pub async fn log_dir_usage(&self) -> Result<LogDirUsage, Error> {
        let response = self
            .send(&DescribeLogDirsRequest::default().with_topics(None))
            .await?;
        check("DescribeLogDirs", response.error_code, None)?;
        for dir in &response.results {
            check("DescribeLogDirs", dir.error_code, None)?;
        }
        let dirs = &response.results;
        // -1 (unknown) in any directory leaves the sum unknown.
        let known = |bytes: i64| u64::try_from(bytes).ok();
        let sum = |field: fn(
            &kafka_protocol::messages::describe_log_dirs_response::DescribeLogDirsResult,
        ) -> i64| {
            (!dirs.is_empty())
                .then(|| dirs.iter().map(|d| known(field(d))).sum::<Option<u64>>())
                .flatten()
        };
        Ok(LogDirUsage {
            held_bytes: dirs
                .iter()
                .flat_map(|d| &d.topics)
                .flat_map(|t| &t.partitions)
                .map(|p| u64::try_from(p.partition_size).unwrap_or(0))
                .sum(),
            total_bytes: sum(|d| d.total_bytes),
            usable_bytes: sum(|d| d.usable_bytes),
        })
    }

    /// The metadata quorum: leader, voters and observers with their directory ids and log ends
    /// (DescribeQuorum v2, KIP-853; any broker answers).
    pub async fn describe_quorum(&self) -> Result<QuorumDescription, Error> {
        let request = DescribeQuorumRequest::default().with_topics(vec![QuorumTopic::default()
            .with_topic_name(topic_name("__cluster_metadata"))
            .with_partitions(vec![QuorumPartition::default().with_partition_index(0)])]);
        let response = self.send(&request).await?;
        check(
            "DescribeQuorum",
            response.error_code,
            response.error_message,
        )?;
        let partition = response
            .topics
            .into_iter()
            .flat_map(|t| t.partitions)
            .next()
            .ok_or_else(|| Error::MissingResult {
                api: "DescribeQuorum",
                resource: "__cluster_metadata-0".to_owned(),
            })?;
        check(
            "DescribeQuorum",
            partition.error_code,
            partition.error_message,
        )?;
        let members =
            |states: Vec<kafka_protocol::messages::describe_quorum_response::ReplicaState>| {
                states
                    .into_iter()
                    .map(|state| QuorumMember {
                        id: state.replica_id.0,
                        directory_id: directory_id_string(state.replica_directory_id)
                            .unwrap_or_default(),
                        log_end_offset: state.log_end_offset,
                    })
                    .collect()
            };
        let endpoints = response
            .nodes
            .into_iter()
            .filter_map(|node| {
                let listener = node.listeners.into_iter().next()?;
                Some((node.node_id.0, (listener.host.to_string(), listener.port)))
            })
            .collect();
        Ok(QuorumDescription {
            view: QuorumView {
                leader: partition.leader_id.0,
                high_watermark: partition.high_watermark,
                voters: members(partition.current_voters),
                observers: members(partition.observers),
            },
            endpoints,
        })
    }

    /// Makes the controller `id` (formatted with `directory_id`, following the log on `listener` at `host`:
    /// `port`) a voter (AddRaftVoter, KIP-853). The broker waits until it has caught up.
    pub async fn add_raft_voter(
        &self,
        id: i32,
        directory_id: &str,
        listener: &str,
        (host, port): (&str, u16),
    ) -> Result<(), Error> {
        // No cluster id: kafka-protocol's default is an empty one, which a broker refuses as another cluster's.
        let request = AddRaftVoterRequest::default()
            .with_cluster_id(None)
            .with_timeout_ms(BROKER_TIMEOUT_MS)
            .with_voter_id(id)
            .with_voter_directory_id(parse_directory_id(directory_id).unwrap_or_default())
            .with_listeners(vec![VoterListener::default()
                .with_name(StrBytes::from_string(listener.to_owned()))
                .with_host(StrBytes::from_string(host.to_owned()))
                .with_port(port)]);
        let response = self.send(&request).await?;
        check("AddRaftVoter", response.error_code, response.error_message)
    }

    /// Removes voter `id` formatted with `directory_id` from the metadata quorum (RemoveRaftVoter, KIP-853).
    pub async fn remove_raft_voter(&self, id: i32, directory_id: &str) -> Result<(), Error> {
        let request = RemoveRaftVoterRequest::default()
            .with_cluster_id(None)
            .with_voter_id(id)
            .with_voter_directory_id(parse_directory_id(directory_id).unwrap_or_default());
        let response = self.send(&request).await?;
        check(
            "RemoveRaftVoter",
            response.error_code,
            response.error_message,
        )
    }

    /// Forgets broker `id` in the cluster metadata (Kafka's UnregisterBroker); `false` when it was not
    /// registered. Tributary refuses a broker that still runs or holds replicas.
    pub async fn unregister_broker(&self, id: i32) -> Result<bool, Error> {
        let request = UnregisterBrokerRequest::default().with_broker_id(id.into());
        let response = self.send(&request).await?;
        if response.error_code == BROKER_ID_NOT_REGISTERED {
            return Ok(false);
        }
        check(
            "UnregisterBroker",
            response.error_code,
            response.error_message,
        )?;
        Ok(true)
    }

    /// Starts moving partitions of `topic` to the given replica lists (KIP-455; the replication factor may
    /// change, KIP-860). The first partition refused fails the call; the others may have started.
    pub async fn alter_partition_reassignments(
        &self,
        topic: &str,
        targets: &[(i32, Vec<i32>)],
    ) -> Result<(), Error> {
        let request = AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(BROKER_TIMEOUT_MS)
            .with_allow_replication_factor_change(true)
            .with_topics(vec![ReassignableTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(
                    targets
                        .iter()
                        .map(|(index, replicas)| {
                            ReassignablePartition::default()
                                .with_partition_index(*index)
                                .with_replicas(Some(
                                    replicas.iter().map(|id| (*id).into()).collect(),
                                ))
                        })
                        .collect(),
                )]);
        let response = self.send(&request).await?;
        check(
            "AlterPartitionReassignments",
            response.error_code,
            response.error_message,
        )?;
        for partition in response.responses.into_iter().flat_map(|t| t.partitions) {
            check(
                "AlterPartitionReassignments",
                partition.error_code,
                partition.error_message,
            )?;
        }
        Ok(())
    }

    /// Deletes topic `name`; `false` when it did not exist.
    pub async fn delete_topic(&self, name: &str) -> Result<bool, Error> {
        let request = DeleteTopicsRequest::default()
            .with_topics(vec![
                DeleteTopicState::default().with_name(Some(topic_name(name)))
            ])
            .with_topic_names(vec![topic_name(name)])
            .with_timeout_ms(BROKER_TIMEOUT_MS);
        let response = self.send(&request).await?;
        let result = response
            .responses
            .into_iter()
            .find(|r| r.name.as_ref().is_some_and(|n| n.0.as_str() == name))
            .ok_or_else(|| Error::MissingResult {
                api: "DeleteTopics",
                resource: name.to_owned(),
            })?;
        if ResponseError::try_from_code(result.error_code)
            == Some(ResponseError::UnknownTopicOrPartition)
        {
            return Ok(false);
        }
        check("DeleteTopics", result.error_code, result.error_message)?;
        Ok(true)
    }
}

/// Admin clients by bootstrap address, so every Topic of one cluster shares a connection.
#[derive(Debug, Default)]
pub struct AdminClients {
    clients: Mutex<HashMap<String, Arc<AdminClient>>>,
}

impl AdminClients {
    /// The client for `address`, created on first use.
    pub fn get(&self, address: &str) -> Arc<AdminClient> {
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(address.to_owned())
            .or_insert_with(|| Arc::new(AdminClient::new(address)))
            .clone()
    }
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

fn check(api: &'static str, code: i16, message: Option<StrBytes>) -> Result<(), Error> {
    if code == 0 {
        return Ok(());
    }
    Err(Error::Broker {
        api,
        code,
        message: message.map(|m| m.to_string()).filter(|m| !m.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_move_applies_only_to_the_replica_set_it_describes() {
        let moving = |replicas: &[i32], removing: &[i32]| -> PartitionMoves {
            [(
                ("orders".to_owned(), 0),
                PartitionMove {
                    replicas: replicas.to_vec(),
                    removing: removing.to_vec(),
                },
            )]
            .into_iter()
            .collect()
        };
        let none = PartitionMoves::new();
        let shown = |replicas: Vec<i32>| PartitionPlacement {
            replicas,
            ..PartitionPlacement::default()
        };

        // Running at the second list: applied.
        let mut placement = shown(vec![1, 2, 4, 3]);
        apply_moves(
            &mut placement,
            "orders",
            0,
            [&none, &moving(&[1, 2, 3, 4], &[3])],
        );
        assert_eq!(placement.removing, vec![3]);
        assert_eq!(placement.replication_factor(), 3);

        // Ended between the first list and the Metadata: the replicas shown are the target already.
        let mut placement = shown(vec![1, 2, 4]);
        apply_moves(
            &mut placement,
            "orders",
            0,
            [&moving(&[1, 2, 3, 4], &[3]), &none],
        );
        assert!(placement.removing.is_empty());
        assert_eq!(placement.replication_factor(), 3);

        // Started after the Metadata: its leaving replica is still a full member of what was shown.
        let mut placement = shown(vec![1, 2, 3]);
        apply_moves(
            &mut placement,
            "orders",
            0,
            [&none, &moving(&[1, 2, 3, 4], &[3])],
        );
        assert!(placement.removing.is_empty());
        assert_eq!(placement.replication_factor(), 3);
    }

    #[test]
    fn topic_ids_print_like_kafka_tools() {
        // Kafka's Uuid.toString() of these bytes, as kafka-topics.sh prints it.
        let id = Uuid::from_bytes([
            0x5c, 0x2f, 0x46, 0x8a, 0x12, 0x0b, 0x4e, 0x3f, 0x9d, 0x21, 0xa0, 0x7e, 0xc4, 0x11,
            0x90, 0xfe,
        ]);
        assert_eq!(topic_id_string(id), "XC9GihILTj-dIaB-xBGQ_g");
    }

    #[test]
    fn broker_errors_name_the_kafka_error_and_keep_its_message() {
        let error = Error::Broker {
            api: "CreateTopics",
            code: 40,
            message: Some("unknown topic config retention.msx".to_owned()),
        };
        assert_eq!(
            error.to_string(),
            "CreateTopics refused: InvalidConfig: unknown topic config retention.msx"
        );
        assert!(error.needs_spec_change());
        let unreachable = Error::Broker {
            api: "CreateTopics",
            code: 7,
            message: None,
        };
        assert_eq!(
            unreachable.to_string(),
            "CreateTopics refused: RequestTimedOut"
        );
        assert!(!unreachable.needs_spec_change());
    }

    #[test]
    fn metadata_lists_brokers_and_placements_and_skips_failed_topics() {
        use kafka_protocol::messages::{
            metadata_response::{
                MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
            },
            BrokerId,
        };
        let partition = |index: i32, leader: i32| {
            MetadataResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(BrokerId(leader))
                .with_leader_epoch(3)
                .with_replica_nodes(vec![BrokerId(leader), BrokerId(2)])
                .with_isr_nodes(vec![BrokerId(leader)])
        };
        let response = MetadataResponse::default()
            .with_cluster_id(Some(StrBytes::from_static_str("abc")))
            .with_controller_id(BrokerId(1))
            .with_brokers(vec![MetadataResponseBroker::default()
                .with_node_id(BrokerId(1))
                .with_host(StrBytes::from_static_str("b1"))
                .with_port(9092)])
            .with_topics(vec![
                MetadataResponseTopic::default()
                    .with_name(Some(topic_name("orders")))
                    .with_partitions(vec![partition(0, 1), partition(1, 0)]),
                MetadataResponseTopic::default()
                    .with_name(Some(topic_name("broken")))
                    .with_error_code(3),
            ]);
        let metadata = ClusterMetadata::from_response(response);
        assert_eq!(metadata.cluster_id.as_deref(), Some("abc"));
        assert_eq!(metadata.controller_id, 1);
        assert_eq!(
            metadata.brokers,
            BTreeMap::from([(1, "b1:9092".to_owned())])
        );
        assert_eq!(
            metadata.topics.keys().collect::<Vec<_>>(),
            ["orders"],
            "a topic with an error has no placement"
        );
        assert_eq!(
            metadata.topics["orders"][&1],
            PartitionPlacement {
                leader: 0,
                leader_epoch: 3,
                replicas: vec![0, 2],
                isr: vec![0],
                removing: vec![],
            }
        );
    }
}
