//! Kafka's KRaft properties (`process.roles`, `controller.quorum.*`) and the replication settings a cluster
//! node needs, parsed into a typed [`ClusterConfig`].
//!
//! Owns the parsing and the checks Kafka makes between these keys and `node.id`; the listener keys are
//! [`super::listeners`]'. Never decides anything about a running cluster: it only describes the configuration.

use std::collections::BTreeMap;

use super::{listeners::parse_host_port, parse_bool, parse_in_range, ConfigError};

/// `process.roles`: what this node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessRoles {
    Broker,
    Controller,
    /// Kafka's combined mode: a broker that is also a voter of the metadata quorum.
    BrokerAndController,
}

impl ProcessRoles {
    pub fn is_broker(self) -> bool {
        matches!(self, Self::Broker | Self::BrokerAndController)
    }

    pub fn is_controller(self) -> bool {
        matches!(self, Self::Controller | Self::BrokerAndController)
    }

    /// The `process.roles` value that yields these roles.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Broker => "broker",
            Self::Controller => "controller",
            Self::BrokerAndController => "broker,controller",
        }
    }
}

/// One `id@host:port` entry of `controller.quorum.voters`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuorumVoter {
    pub id: i32,
    pub host: String,
    pub port: u16,
}

/// How this node finds the metadata quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuorumConfig {
    /// `controller.quorum.voters`: a static voter set, the same in every node's file.
    StaticVoters(Vec<QuorumVoter>),
    /// `controller.quorum.bootstrap.servers` (KIP-853): contact points only; the initial voter set is written
    /// by `tributary-broker format --standalone | --initial-controllers` into the formatted log directory.
    Bootstrap(Vec<(String, u16)>),
}

/// A cluster node's configuration: present exactly when `process.roles` is set. Defaults are Kafka's.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// `node.id`, the same as [`super::BrokerConfig::node_id`]; here so that the cluster code needs only this.
    pub node_id: i32,
    pub roles: ProcessRoles,
    pub quorum: QuorumConfig,
    /// `controller.listener.names`; the first one is the listener controllers serve and brokers connect to.
    pub controller_listener_names: Vec<String>,
    /// `inter.broker.listener.name` (PLAINTEXT): the listener brokers use to reach each other.
    pub inter_broker_listener_name: String,
    /// On a node with the controller role, the host and port other nodes reach its controller listener on:
    /// its `advertised.listeners` entry, else its bind host (the host name for every interface). `format
    /// --standalone` records it as the voter's endpoint.
    pub controller_advertised: Option<(String, u16)>,
    /// `broker.session.timeout.ms` (9000): a broker without a heartbeat for this long is fenced.
    pub broker_session_timeout_ms: u64,
    /// `broker.heartbeat.interval.ms` (2000).
    pub broker_heartbeat_interval_ms: u64,
    /// `replica.lag.time.max.ms` (30000): a follower behind for this long leaves the ISR.
    pub replica_lag_time_max_ms: u64,
    /// `min.insync.replicas` (1): the broker default; acks=all needs an ISR at least this large.
    pub min_insync_replicas: i32,
    /// `offsets.topic.replication.factor` (3) for `__consumer_offsets`.
    pub offsets_topic_replication_factor: i16,
    /// `unclean.leader.election.enable` (false): elect a leader from outside the ISR rather than stay offline.
    pub unclean_leader_election_enable: bool,
    /// `auto.leader.rebalance.enable` (true): move leadership back to preferred replicas.
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.check.interval.seconds` (300).
    pub leader_imbalance_check_interval_seconds: u64,
    /// `tributary.partition.autobalancing.mode` (`node_add`): see [`PartitionAutobalancing`].
    pub partition_autobalancing: PartitionAutobalancing,
    /// `controller.quorum.election.timeout.ms` (1000).
    pub election_timeout_ms: u64,
    /// `controller.quorum.fetch.timeout.ms` (2000): a voter that hears nothing from the leader this long starts
    /// an election.
    pub fetch_timeout_ms: u64,
    /// `replica.fetch.max.bytes` (1048576): bytes a follower asks for per partition.
    pub replica_fetch_max_bytes: i32,
    /// `replica.fetch.wait.max.ms` (500): how long a follower fetch long-polls.
    pub replica_fetch_wait_max_ms: u64,
    /// `num.replica.fetchers` (1): fetcher tasks per source broker.
    pub num_replica_fetchers: i32,
}

/// When the controller moves replicas onto a broker by itself (Redpanda's `partition_autobalancing_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionAutobalancing {
    /// A broker registering for the first time into a cluster with partitions is filled with its share
    /// (`tributary.broker.filling` is set on it).
    NodeAdd,
    /// Only brokers someone marks `tributary.broker.filling=true` are filled.
    Off,
}

/// Keys parsed here (and not by the main property loop).
pub(super) const CLUSTER_KEYS: &[&str] = &[
    "process.roles",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "broker.session.timeout.ms",
    "broker.heartbeat.interval.ms",
    "replica.lag.time.max.ms",
    "min.insync.replicas",
    "offsets.topic.replication.factor",
    "unclean.leader.election.enable",
    "auto.leader.rebalance.enable",
    "leader.imbalance.check.interval.seconds",
    "tributary.partition.autobalancing.mode",
    "controller.quorum.election.timeout.ms",
    "controller.quorum.fetch.timeout.ms",
    "replica.fetch.max.bytes",
    "replica.fetch.wait.max.ms",
    "num.replica.fetchers",
];

fn invalid(key: &str, value: &str, reason: &'static str) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        value: value.to_owned(),
        reason,
    }
}

/// `process.roles`, or None when absent (single-node mode).
pub(super) fn parse_roles(
    props: &BTreeMap<String, String>,
) -> Result<Option<ProcessRoles>, ConfigError> {
    const KEY: &str = "process.roles";
    let Some(value) = props.get(KEY).map(|v| v.trim()) else {
        return Ok(None);
    };
    let (mut broker, mut controller) = (false, false);
    for role in value.split(',').map(str::trim) {
        let seen = match role.to_ascii_lowercase().as_str() {
            "broker" => std::mem::replace(&mut broker, true),
            "controller" => std::mem::replace(&mut controller, true),
            _ => return Err(invalid(KEY, value, "roles are broker, controller or both")),
        };
        if seen {
            return Err(invalid(KEY, value, "a role is listed twice"));
        }
    }
    Ok(Some(match (broker, controller) {
        (true, true) => ProcessRoles::BrokerAndController,
        (true, false) => ProcessRoles::Broker,
        (false, true) => ProcessRoles::Controller,
        (false, false) => return Err(invalid(KEY, value, "roles are broker, controller or both")),
    }))
}

fn parse_voters(value: &str) -> Result<Vec<QuorumVoter>, ConfigError> {
    const KEY: &str = "controller.quorum.voters";
    let mut voters: Vec<QuorumVoter> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let parsed = entry.split_once('@').and_then(|(id, address)| {
            let id: i32 = id.trim().parse().ok().filter(|id| *id >= 0)?;
            let (host, port) = parse_host_port(address)?;
            (!host.is_empty() && port != 0).then_some(QuorumVoter { id, host, port })
        });
        let voter = parsed
            .ok_or_else(|| invalid(KEY, value, "expected id@host:port entries with ids >= 0"))?;
        if voters.iter().any(|v| v.id == voter.id) {
            return Err(ConfigError::DuplicateVoter { id: voter.id });
        }
        voters.push(voter);
    }
    if voters.is_empty() {
        return Err(invalid(KEY, value, "at least one voter is needed"));
    }
    Ok(voters)
}

fn parse_bootstrap_servers(value: &str) -> Result<Vec<(String, u16)>, ConfigError> {
    const KEY: &str = "controller.quorum.bootstrap.servers";
    let mut servers = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let server = parse_host_port(entry)
            .filter(|(host, port)| !host.is_empty() && *port != 0)
            .ok_or_else(|| invalid(KEY, value, "expected host:port entries"))?;
        servers.push(server);
    }
    if servers.is_empty() {
        return Err(invalid(KEY, value, "at least one server is needed"));
    }
    Ok(servers)
}

fn parse_quorum(props: &BTreeMap<String, String>) -> Result<QuorumConfig, ConfigError> {
    let voters = props.get("controller.quorum.voters").map(|v| v.trim());
    let bootstrap = props
        .get("controller.quorum.bootstrap.servers")
        .map(|v| v.trim());
    match (voters, bootstrap) {
        (Some(voters), bootstrap) if !voters.is_empty() => {
            if let Some(bootstrap) = bootstrap.filter(|b| !b.is_empty()) {
                // Kafka accepts both and uses the static set; so do we, but check both and say so.
                parse_bootstrap_servers(bootstrap)?;
                tracing::warn!(
                    "controller.quorum.voters and controller.quorum.bootstrap.servers are both set; \
                     using the static voters"
                );
            }
            Ok(QuorumConfig::StaticVoters(parse_voters(voters)?))
        }
        (_, Some(bootstrap)) if !bootstrap.is_empty() => {
            Ok(QuorumConfig::Bootstrap(parse_bootstrap_servers(bootstrap)?))
        }
        _ => Err(ConfigError::QuorumMissing),
    }
}

/// Parses the cluster keys of a node with `roles` and checks them against `node_id`. The listener keys are
/// resolved by the caller and passed in.
pub(super) fn parse(
    props: &BTreeMap<String, String>,
    roles: ProcessRoles,
    node_id: i32,
    controller_listener_names: Vec<String>,
    inter_broker_listener_name: String,
    controller_advertised: Option<(String, u16)>,
) -> Result<ClusterConfig, ConfigError> {
    let get = |key: &str| props.get(key).map(|v| v.trim());
    let ms = |key: &str, default: u64| -> Result<u64, ConfigError> {
        match get(key) {
            None => Ok(default),
            Some(v) => parse_in_range(v, 1, i64::from(i32::MAX))
                .map(|v| v as u64)
                .ok_or_else(|| invalid(key, v, "expected 1..=2147483647")),
        }
    };
    let int = |key: &str, default: i32, min: i64| -> Result<i32, ConfigError> {
        match get(key) {
            None => Ok(default),
            Some(v) => parse_in_range(v, min, i64::from(i32::MAX))
                .map(|v| v as i32)
                .ok_or_else(|| invalid(key, v, "expected an integer in range")),
        }
    };
    let boolean = |key: &str, default: bool| -> Result<bool, ConfigError> {
        match get(key) {
            None => Ok(default),
            Some(v) => parse_bool(v).ok_or_else(|| invalid(key, v, "expected true or false")),
        }
    };
    let offsets_topic_replication_factor = match get("offsets.topic.replication.factor") {
        None => 3,
        Some(v) => parse_in_range(v, 1, i64::from(i16::MAX))
            .map(|v| v as i16)
            .ok_or_else(|| invalid("offsets.topic.replication.factor", v, "expected 1..=32767"))?,
    };
    let config = ClusterConfig {
        node_id,
        roles,
        quorum: parse_quorum(props)?,
        controller_listener_names,
        inter_broker_listener_name,
        controller_advertised,
        broker_session_timeout_ms: ms("broker.session.timeout.ms", 9_000)?,
        broker_heartbeat_interval_ms: ms("broker.heartbeat.interval.ms", 2_000)?,
        replica_lag_time_max_ms: ms("replica.lag.time.max.ms", 30_000)?,
        min_insync_replicas: int("min.insync.replicas", 1, 1)?,
        offsets_topic_replication_factor,
        unclean_leader_election_enable: boolean("unclean.leader.election.enable", false)?,
        auto_leader_rebalance_enable: boolean("auto.leader.rebalance.enable", true)?,
        leader_imbalance_check_interval_seconds: ms(
            "leader.imbalance.check.interval.seconds",
            300,
        )?,
        partition_autobalancing: match get("tributary.partition.autobalancing.mode").map(str::trim)
        {
            None | Some("node_add") => PartitionAutobalancing::NodeAdd,
            Some("off") => PartitionAutobalancing::Off,
            Some(v) => {
                return Err(invalid(
                    "tributary.partition.autobalancing.mode",
                    v,
                    "expected node_add or off",
                ))
            }
        },
        election_timeout_ms: ms("controller.quorum.election.timeout.ms", 1_000)?,
        fetch_timeout_ms: ms("controller.quorum.fetch.timeout.ms", 2_000)?,
        replica_fetch_max_bytes: int("replica.fetch.max.bytes", 1_048_576, 0)?,
        replica_fetch_wait_max_ms: ms("replica.fetch.wait.max.ms", 500)?,
        num_replica_fetchers: int("num.replica.fetchers", 1, 1)?,
    };
    config.check_node(node_id)?;
    if config.broker_heartbeat_interval_ms >= config.broker_session_timeout_ms {
        return Err(ConfigError::HeartbeatNotBelowSession {
            heartbeat_ms: config.broker_heartbeat_interval_ms,
            session_ms: config.broker_session_timeout_ms,
        });
    }
    Ok(config)
}

impl ClusterConfig {
    /// The checks that depend on the node id, repeated when `--node-id` overrides the file.
    pub(super) fn check_node(&self, node_id: i32) -> Result<(), ConfigError> {
        if node_id < 0 {
            return Err(ConfigError::NegativeNodeId { node_id });
        }
        if let QuorumConfig::StaticVoters(voters) = &self.quorum {
            let is_voter = voters.iter().any(|v| v.id == node_id);
            if self.roles.is_controller() && !is_voter {
                return Err(ConfigError::ControllerNotAVoter {
                    node_id,
                    roles: self.roles.as_str(),
                });
            }
            if !self.roles.is_controller() && is_voter {
                return Err(ConfigError::BrokerIsAVoter { node_id });
            }
        }
        Ok(())
    }

    /// The static voters, when `controller.quorum.voters` is set.
    pub fn static_voters(&self) -> Option<&[QuorumVoter]> {
        match &self.quorum {
            QuorumConfig::StaticVoters(voters) => Some(voters),
            QuorumConfig::Bootstrap(_) => None,
        }
    }
}
