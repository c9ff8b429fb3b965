//! Broker and topic configuration, named with Kafka's property names wherever the concept is the same.
//!
//! Owns: the static broker configuration (command line + properties file), the table of topic configs with
//! their broker-level defaults and validators, and the resolution of a topic's effective [`LogConfig`]
//! (static broker default < dynamic broker override < topic override). Never touches the disk beyond reading
//! the properties file.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf};

use crate::log::{FlushPolicy, LogConfig, TimestampType, TopicCompression};

mod cluster;
pub mod creation_defaults;
mod listeners;

pub use cluster::{ClusterConfig, PartitionAutobalancing, ProcessRoles, QuorumConfig, QuorumVoter};
pub use listeners::{ListenerConfig, SecurityProtocol, DEFAULT_INTER_BROKER_LISTENER};

/// Kafka's `socket.request.max.bytes` default: the largest request frame accepted.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 104_857_600;
/// Kafka's `fetch.max.bytes` default for a whole fetch response.
pub const DEFAULT_FETCH_MAX_BYTES: usize = 57_671_680;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {path}")]
    ReadFile {
        path: PathBuf,
        source: java_properties::PropertiesError,
    },
    #[error("opening config file {path}")]
    OpenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid value {value:?} for {key}: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: &'static str,
    },
    #[error("invalid value {value:?} for {key}")]
    InvalidTopicDefault {
        key: String,
        value: String,
        source: TopicConfigError,
    },
    #[error("log.dirs {value:?} names several directories: JBOD not supported; use one directory")]
    Jbod { value: String },
    #[error("{key} lists listener {name} twice")]
    DuplicateListener { key: String, name: String },
    #[error("listeners {value:?}: cannot resolve host {host:?} to an address to bind")]
    UnresolvableListenerHost { value: String, host: String },
    #[error(
        "listeners {first} and {second} both use port {port}; each listener needs its own port"
    )]
    ListenerPortClash {
        first: String,
        second: String,
        port: u16,
    },
    #[error("listener {name} has no security protocol: add {name}:PLAINTEXT to listener.security.protocol.map")]
    ListenerWithoutProtocol { name: String },
    #[error("listener {name} uses security protocol {protocol}, which is not supported yet; only PLAINTEXT listeners are")]
    UnsupportedSecurityProtocol {
        name: String,
        protocol: &'static str,
    },
    #[error("advertised.listeners names listener {name}, which is not in listeners")]
    AdvertisedListenerNotInListeners { name: String },
    #[error("advertised.listeners contains controller listener {name}, which a node with process.roles=broker does not serve")]
    AdvertisedControllerListener { name: String },
    #[error("controller.listener.names is required with process.roles={roles}")]
    ControllerListenerNamesMissing { roles: &'static str },
    #[error("controller.listener.names names {name}, which is not in listeners; a controller must listen on it")]
    ControllerListenerNotInListeners { name: String },
    #[error("listener {name} is not in controller.listener.names; a node with process.roles=controller listens only on controller listeners")]
    ControllerOnlyListener { name: String },
    #[error("listener {name} is in controller.listener.names; a node with process.roles=broker must not listen on it")]
    BrokerOnlyControllerListener { name: String },
    #[error("listeners has no listener outside controller.listener.names; the broker role needs one for clients")]
    NoBrokerListener,
    #[error("inter.broker.listener.name {name} is a controller listener; brokers reach each other on a broker listener")]
    InterBrokerIsControllerListener { name: String },
    #[error("inter.broker.listener.name {name} is not in listeners")]
    InterBrokerListenerMissing { name: String },
    #[error("node.id is required when process.roles is set")]
    NodeIdMissing,
    #[error("node.id {node_id} is negative; a cluster node needs an id >= 0")]
    NegativeNodeId { node_id: i32 },
    #[error("process.roles is set but neither controller.quorum.voters nor controller.quorum.bootstrap.servers is")]
    QuorumMissing,
    #[error("controller.quorum.voters lists node {id} twice")]
    DuplicateVoter { id: i32 },
    #[error("node.id {node_id} has process.roles={roles} but is not in controller.quorum.voters")]
    ControllerNotAVoter { node_id: i32, roles: &'static str },
    #[error("node.id {node_id} is in controller.quorum.voters but process.roles=broker has no controller role")]
    BrokerIsAVoter { node_id: i32 },
    #[error("broker.heartbeat.interval.ms {heartbeat_ms} must be below broker.session.timeout.ms {session_ms}")]
    HeartbeatNotBelowSession { heartbeat_ms: u64, session_ms: u64 },
}

/// Why a topic config value is refused. The text is sent to clients as the error message with INVALID_CONFIG,
/// so it names the config and the value and makes sense on its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum TopicConfigError {
    #[error("unknown topic config {name:?}")]
    UnknownName { name: String },
    #[error("{name} must be an integer >= {min}, got {value:?}")]
    NotAnInteger {
        name: String,
        min: i64,
        value: String,
    },
    #[error("{name} must be an integer >= {min}, got {value:?}")]
    BelowMinimum {
        name: String,
        min: i64,
        value: String,
    },
    #[error("{name} must fit in a 32-bit integer, got {value:?}")]
    NotAnInt32 { name: String, value: String },
    #[error("cleanup.policy must be delete, compact or both, got {value:?}")]
    InvalidCleanupPolicy { value: String },
    #[error(
        "compression.type must be uncompressed, zstd, lz4, snappy, gzip or producer, got {value:?}"
    )]
    InvalidCompressionType { value: String },
    #[error("min.cleanable.dirty.ratio must be a number in [0, 1], got {value:?}")]
    InvalidDirtyRatio { value: String },
    #[error("message.timestamp.type must be CreateTime or LogAppendTime, got {value:?}")]
    InvalidTimestampType { value: String },
    #[error("{name} must be empty, * or a list of partition:broker, got {value:?}")]
    InvalidThrottledReplicas { name: String, value: String },
    #[error("{name} must be true or false, got {value:?}")]
    NotABoolean { name: String, value: String },
    #[error("{name} must be an integer in [{min}, {max}], got {value:?}")]
    OutOfRange {
        name: String,
        min: i64,
        max: i64,
        value: String,
    },
    #[error("{name}={value} is not supported: {why}")]
    Unsupported {
        name: String,
        value: String,
        why: String,
    },
}

/// The broker's static configuration. Cheap to clone; handlers read it through the broker context.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub node_id: i32,
    /// Bind address of the primary listener: the inter-broker listener (`inter.broker.listener.name`), else
    /// the first client listener. Always equal to `listeners[0].bind` when there is a client listener.
    pub listen: SocketAddr,
    /// `host:port` of the primary listener that clients are told to connect to (Metadata, DescribeCluster).
    pub advertised_host: String,
    pub advertised_port: i32,
    /// Every Kafka (non-controller) listener, the primary one first. Empty only on a controller-only node.
    pub listeners: Vec<ListenerConfig>,
    /// Bind address of the controller listener (the first of `controller.listener.names`), on a node with the
    /// controller role; the metadata quorum's RPC is served there.
    pub controller_listen: Option<SocketAddr>,
    /// Name of that controller listener.
    pub controller_listener_name: Option<String>,
    /// The KRaft configuration; None (no `process.roles`) is single-node mode.
    pub cluster: Option<ClusterConfig>,
    pub http_listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `broker.rack`: the rack (or zone) this broker runs in, reported to clients in Metadata.
    pub rack: Option<String>,
    pub auto_create_topics: bool,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub max_request_bytes: usize,
    pub fetch_max_bytes: usize,
    /// `max.incremental.fetch.session.cache.slots`: fetch sessions kept at most (0: none). Default 1000.
    pub fetch_session_cache_slots: usize,
    pub retention_check_interval_ms: u64,
    /// Broker-level defaults for topic configs, keyed by the *topic* config name (`retention.ms`), already
    /// validated. Topics without an override inherit these.
    pub topic_defaults: BTreeMap<String, String>,
    pub group: crate::group::GroupConfig,
    /// `log.cleaner.backoff.ms`: pause between compaction passes.
    pub cleaner_backoff_ms: u64,
    /// `log.cleaner.enable`
    pub cleaner_enabled: bool,
    /// `metrics.partition.level`: per-partition metric series (true) or sums per topic (false), for brokers
    /// hosting so many partitions that per-partition series would be too many.
    pub metrics_partition_level: bool,
    /// Follower fetching and ISR maintenance (`replica.*`, Kafka's names and defaults).
    pub replication: ReplicationConfig,
    /// Client quota windows (`quota.window.*`, `controller.quota.window.*`).
    pub client_quotas: crate::quota::manager::ClientQuotaConfig,
}

/// How followers fetch and when leaders change the ISR; Kafka's broker settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// `replica.lag.time.max.ms`: a follower not caught up to the leader's log end for this long leaves
    /// the ISR. Default 30000.
    pub lag_time_max_ms: u64,
    /// `replica.fetch.max.bytes`: per-partition bytes a follower asks for. Default 1048576.
    pub fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes`: bytes per follower fetch response. Default 10485760.
    pub fetch_response_max_bytes: i32,
    /// `replica.fetch.wait.max.ms`: how long the leader may hold a follower fetch. Default 500.
    pub fetch_wait_max_ms: i32,
    /// `replica.fetch.min.bytes`. Default 1.
    pub fetch_min_bytes: i32,
    /// `replica.fetch.backoff.ms`: pause after a failed follower fetch. Default 1000.
    pub fetch_backoff_ms: u64,
    /// `replica.high.watermark.checkpoint.interval.ms`: how often every partition's high watermark is
    /// written to `replication-offset-checkpoint`. Default 5000.
    pub high_watermark_checkpoint_interval_ms: u64,
    /// `inter.broker.listener.name`: the listener followers fetch from. Default PLAINTEXT.
    pub inter_broker_listener: String,
    /// Not a property: the address follower connections to leaders bind to before connecting (None: the
    /// kernel picks, 127.0.0.1 on loopback). A cluster node sets it to its own listener address, as its
    /// controller connections do, so that per-address rules (a partition test's `ip rule ... blackhole`)
    /// see which broker a connection comes from.
    pub bind_source: Option<std::net::IpAddr>,
    /// `replication.quota.window.num`: samples the replication throttle's rate is measured over.
    /// Default 11.
    pub quota_window_num: usize,
    /// `replication.quota.window.size.seconds`: the span of each of those samples. Default 1.
    pub quota_window_size_seconds: u64,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        Self {
            lag_time_max_ms: 30_000,
            fetch_max_bytes: 1_048_576,
            fetch_response_max_bytes: 10_485_760,
            fetch_wait_max_ms: 500,
            fetch_min_bytes: 1,
            fetch_backoff_ms: 1_000,
            high_watermark_checkpoint_interval_ms: 5_000,
            inter_broker_listener: "PLAINTEXT".to_owned(),
            bind_source: None,
            quota_window_num: 11,
            quota_window_size_seconds: 1,
        }
    }
}

impl BrokerConfig {
    /// Defaults of a single-node development broker: 127.0.0.1:9092, data in `./data`.
    pub fn dev_defaults() -> Self {
        let listen: SocketAddr = ([127, 0, 0, 1], 9092).into();
        Self {
            node_id: 1,
            listen,
            advertised_host: listen.ip().to_string(),
            advertised_port: i32::from(listen.port()),
            listeners: vec![ListenerConfig {
                name: DEFAULT_INTER_BROKER_LISTENER.to_owned(),
                bind: listen,
                advertised_host: listen.ip().to_string(),
                advertised_port: i32::from(listen.port()),
                security_protocol: SecurityProtocol::Plaintext,
            }],
            controller_listen: None,
            controller_listener_name: None,
            cluster: None,
            http_listen: ([127, 0, 0, 1], 9644).into(),
            data_dir: PathBuf::from("data"),
            rack: None,
            auto_create_topics: true,
            num_partitions: 1,
            default_replication_factor: 1,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            fetch_max_bytes: DEFAULT_FETCH_MAX_BYTES,
            fetch_session_cache_slots: 1_000,
            retention_check_interval_ms: 300_000,
            topic_defaults: BTreeMap::new(),
            group: crate::group::GroupConfig::default(),
            cleaner_backoff_ms: 15_000,
            cleaner_enabled: true,
            metrics_partition_level: true,
            replication: ReplicationConfig::default(),
            client_quotas: Default::default(),
        }
    }

    /// Applies Kafka-style broker properties (`server.properties` names). Unknown keys are ignored with a log
    /// line, as Kafka does, so one file can serve both.
    pub fn apply_properties(
        &mut self,
        props: &BTreeMap<String, String>,
    ) -> Result<(), ConfigError> {
        for (key, value) in props {
            let value = value.trim();
            let invalid = |reason: &'static str| ConfigError::InvalidValue {
                key: key.clone(),
                value: value.to_owned(),
                reason,
            };
            match key.as_str() {
                "node.id" | "broker.id" => {
                    self.node_id = value.parse().map_err(|_| invalid("not an integer"))?
                }
                "log.dirs" | "log.dir" => {
                    let dirs: Vec<&str> = value
                        .split(',')
                        .map(str::trim)
                        .filter(|d| !d.is_empty())
                        .collect();
                    match dirs.as_slice() {
                        [dir] => self.data_dir = PathBuf::from(dir),
                        [] => return Err(invalid("expected a directory")),
                        _ => {
                            return Err(ConfigError::Jbod {
                                value: value.to_owned(),
                            })
                        }
                    }
                }
                "broker.rack" => self.rack = (!value.is_empty()).then(|| value.to_owned()),
                "http.listener" => {
                    self.http_listen = value.parse().map_err(|_| invalid("expected ip:port"))?
                }
                "auto.create.topics.enable" => {
                    self.auto_create_topics =
                        parse_bool(value).ok_or_else(|| invalid("expected true or false"))?
                }
                "num.partitions" => {
                    self.num_partitions = parse_in_range(value, 1, 1_000_000)
                        .ok_or_else(|| invalid("expected 1..=1000000"))?
                        as i32
                }
                "default.replication.factor" => {
                    self.default_replication_factor = parse_in_range(value, 1, i64::from(i16::MAX))
                        .ok_or_else(|| invalid("expected a positive integer"))?
                        as i16
                }
                "socket.request.max.bytes" => {
                    self.max_request_bytes = parse_in_range(value, 1024, i64::from(i32::MAX))
                        .ok_or_else(|| invalid("expected 1024..=2147483647"))?
                        as usize
                }
                "fetch.max.bytes" => {
                    self.fetch_max_bytes = parse_in_range(value, 1024, i64::from(i32::MAX))
                        .ok_or_else(|| invalid("expected 1024..=2147483647"))?
                        as usize
                }
                "max.incremental.fetch.session.cache.slots" => {
                    self.fetch_session_cache_slots = parse_in_range(value, 0, i64::from(i32::MAX))
                        .ok_or_else(|| {
                        invalid("expected 0..=2147483647")
                    })? as usize
                }
                "group.initial.rebalance.delay.ms" => {
                    self.group.initial_rebalance_delay_ms =
                        parse_in_range(value, 0, i64::from(i32::MAX))
                            .ok_or_else(|| invalid("expected 0..=2147483647"))?
                            as u64
                }
                "group.min.session.timeout.ms" => {
                    self.group.min_session_timeout_ms =
                        parse_in_range(value, 1, i64::from(i32::MAX))
                            .ok_or_else(|| invalid("expected a positive integer"))?
                            as i32
                }
                "group.max.session.timeout.ms" => {
                    self.group.max_session_timeout_ms =
                        parse_in_range(value, 1, i64::from(i32::MAX))
                            .ok_or_else(|| invalid("expected a positive integer"))?
                            as i32
                }
                "offsets.topic.num.partitions" => {
                    self.group.offsets_partitions = parse_in_range(value, 1, 10_000)
                        .ok_or_else(|| invalid("expected 1..=10000"))?
                        as i32
                }
                "offsets.commit.timeout.ms" => {
                    self.group.commit_timeout_ms = parse_in_range(value, 1, i64::from(i32::MAX))
                        .ok_or_else(|| invalid("expected a positive integer"))?
                        as u64
                }
                "offset.metadata.max.bytes" => {
                    self.group.max_metadata_bytes = parse_in_range(value, 0, i64::from(i32::MAX))
                        .ok_or_else(|| invalid("expected a non-negative integer"))?
                        as usize
                }
                "log.cleaner.backoff.ms" => {
                    self.cleaner_backoff_ms = parse_in_range(value, 1, i64::MAX)
                        .ok_or_else(|| invalid("expected a positive integer"))?
                        as u64
                }
                "log.cleaner.enable" => {
                    self.cleaner_enabled =
                        parse_bool(value).ok_or_else(|| invalid("expected true or false"))?
                }
                "metrics.partition.level" => {
                    self.metrics_partition_level =
                        parse_bool(value).ok_or_else(|| invalid("expected true or false"))?
                }
                "replica.lag.time.max.ms" => {
                    self.replication.lag_time_max_ms = parse_in_range(value, 1, i64::MAX)
                        .ok_or_else(|| invalid("expected a positive integer"))?
                        as u64
                }
                "replica.fetch.max.bytes" => {
                    self.replication.fetch_max_bytes = parse_in_range(value, 1, i64::from(i32::MAX))
                        .ok_or_else(|| invalid("expected a positive integer"))?
                        as i32
                }
                "replica.fetch.response.max.bytes" => {
                    self.replication.fetch_response_max_bytes =
                        parse_in_range(value, 1, i64::from(i32::MAX))
                            .ok_or_else(|| invalid("expected a positive integer"))?
                            as i32
                }
                "replica.fetch.wait.max.ms" => {
                    self.replication.fetch_wait_max_ms =
                        parse_in_range(value, 0, i64::from(i32::MAX))
                            .ok_or_else(|| invalid("expected 0..=2147483647"))?
                            as i32
                }
                "replica.fetch.min.bytes" => {
                    self.replication.fetch_min_bytes = parse_in_range(value, 1, i64::from(i32::MAX))
                        .ok_or_else(|| invalid("expected a positive integer"))?
                        as i32
                }
                "replica.fetch.backoff.ms" => {
                    self.replication.fetch_backoff_ms = parse_in_range(value, 0, i64::MAX)
                        .ok_or_else(|| invalid("expected a non-negative integer"))?
                        as u64
                }
                "quota.window.num" => {
                    self.client_quotas.window_num = parse_in_range(value, 1, i64::from(i32::MAX))
                        .ok_or_else(|| invalid("expected a positive integer"))?
                        as usize
                }
                "quota.window.size.seconds" => {
                    self.client_quotas.window_size_seconds =
                        parse_in_range(value, 1, i64::from(i32::MAX))
                            .ok_or_else(|| invalid("expected a positive integer"))?
                            as u64
                }
                "controller.quota.window.num" => {
                    self.client_quotas.controller_window_num =
                        parse_in_range(value, 1, i64::from(i32::MAX))
                            .ok_or_else(|| invalid("expected a positive integer"))?
                            as usize
                }
                "controller.quota.window.size.seconds" => {
                    self.client_quotas.controller_window_size_seconds =
                        parse_in_range(value, 1, i64::from(i32::MAX))
                            .ok_or_else(|| invalid("expected a positive integer"))?
                            as u64
                }
                "replication.quota.window.num" => {
                    self.replication.quota_window_num =
                        parse_in_range(value, 1, i64::from(i32::MAX))
                            .ok_or_else(|| invalid("expected a positive integer"))?
                            as usize
                }
                "replication.quota.window.size.seconds" => {
                    self.replication.quota_window_size_seconds =
                        parse_in_range(value, 1, i64::from(i32::MAX))
                            .ok_or_else(|| invalid("expected a positive integer"))?
                            as u64
                }
                "replica.high.watermark.checkpoint.interval.ms" => {
                    self.replication.high_watermark_checkpoint_interval_ms =
                        parse_in_range(value, 1, i64::MAX)
                            .ok_or_else(|| invalid("expected a positive integer"))?
                            as u64
                }
                "inter.broker.listener.name" => {
                    self.replication.inter_broker_listener = value.to_owned()
                }
                "unclean.leader.election.enable" => {
                    // The cluster parse reads it again for the controller's elections; as the topics' static
                    // default it shows in DescribeConfigs where a topic's value comes from.
                    let enabled =
                        parse_bool(value).ok_or_else(|| invalid("expected true or false"))?;
                    self.topic_defaults.insert(
                        "unclean.leader.election.enable".to_owned(),
                        enabled.to_string(),
                    );
                }
                "log.retention.check.interval.ms" => {
                    self.retention_check_interval_ms = parse_in_range(value, 1, i64::MAX)
                        .ok_or_else(|| invalid("expected a positive integer"))?
                        as u64
                }
                other => match broker_key_to_topic_key(other) {
                    Some((topic_key, scale)) => {
                        let scaled = scale_value(value, scale)
                            .ok_or_else(|| invalid("expected an integer"))?;
                        validate_topic_config(topic_key, &scaled).map_err(|source| {
                            ConfigError::InvalidTopicDefault {
                                key: key.clone(),
                                value: value.to_owned(),
                                source,
                            }
                        })?;
                        self.topic_defaults.insert(topic_key.to_owned(), scaled);
                    }
                    // Resolved together after this loop: they constrain each other. (Keys that also
                    // set something above, such as replica.* or min.insync.replicas, were matched there
                    // first and are read again by the cluster parse.)
                    None if LISTENER_KEYS.contains(&other)
                        || cluster::CLUSTER_KEYS.contains(&other) => {}
                    None if KAFKA_KEYS_WITHOUT_EFFECT.contains(&other) => {
                        tracing::debug!(key = other, "Kafka broker property has no effect here")
                    }
                    None => tracing::warn!(key = other, "ignoring unknown broker property"),
                },
            }
        }
        self.apply_listener_and_cluster_properties(props)
    }

    /// The keys that only make sense together: `process.roles`, the quorum and the listeners.
    fn apply_listener_and_cluster_properties(
        &mut self,
        props: &BTreeMap<String, String>,
    ) -> Result<(), ConfigError> {
        let roles = cluster::parse_roles(props)?;
        if roles.is_some() && !props.contains_key("node.id") && !props.contains_key("broker.id") {
            return Err(ConfigError::NodeIdMissing);
        }
        if roles.is_none() && !LISTENER_KEYS.iter().any(|k| props.contains_key(*k)) {
            self.cluster = None;
            return Ok(());
        }
        let current = self
            .listeners
            .first()
            .cloned()
            .unwrap_or_else(|| ListenerConfig {
                name: DEFAULT_INTER_BROKER_LISTENER.to_owned(),
                bind: self.listen,
                advertised_host: self.advertised_host.clone(),
                advertised_port: self.advertised_port,
                security_protocol: SecurityProtocol::Plaintext,
            });
        let resolved = listeners::resolve(props, &current, roles)?;
        self.listeners = resolved.client;
        if let Some(primary) = self.listeners.first() {
            self.listen = primary.bind;
            self.advertised_host = primary.advertised_host.clone();
            self.advertised_port = primary.advertised_port;
        }
        self.controller_listen = resolved.controller.as_ref().map(|c| c.bind);
        self.controller_listener_name = resolved.controller.as_ref().map(|c| c.name.clone());
        self.cluster = match roles {
            Some(roles) => Some(cluster::parse(
                props,
                roles,
                self.node_id,
                resolved.controller_listener_names,
                resolved.inter_broker_listener_name,
                resolved.controller.map(|c| c.advertised),
            )?),
            None => None,
        };
        Ok(())
    }

    /// Sets the node id (the `--node-id` flag), repeating the checks that depend on it in cluster mode.
    pub fn set_node_id(&mut self, node_id: i32) -> Result<(), ConfigError> {
        if let Some(cluster) = &mut self.cluster {
            cluster.check_node(node_id)?;
            cluster.node_id = node_id;
        }
        self.node_id = node_id;
        Ok(())
    }

    /// Moves the primary listener (the `--listen` flag).
    pub fn set_listen(&mut self, bind: SocketAddr) {
        self.listen = bind;
        if let Some(primary) = self.listeners.first_mut() {
            primary.bind = bind;
        }
    }

    /// Changes what the primary listener advertises (the `--advertised-listener` flag, or a port 0 that got a
    /// real port).
    pub fn set_advertised(&mut self, host: String, port: i32) {
        if let Some(primary) = self.listeners.first_mut() {
            primary.advertised_host = host.clone();
            primary.advertised_port = port;
        }
        self.advertised_host = host;
        self.advertised_port = port;
    }

    pub fn load_properties_file(
        path: &std::path::Path,
    ) -> Result<BTreeMap<String, String>, ConfigError> {
        let file = std::fs::File::open(path).map_err(|source| ConfigError::OpenFile {
            path: path.to_owned(),
            source,
        })?;
        let map = java_properties::read(std::io::BufReader::new(file)).map_err(|source| {
            ConfigError::ReadFile {
                path: path.to_owned(),
                source,
            }
        })?;
        Ok(map.into_iter().collect())
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

fn parse_in_range(value: &str, min: i64, max: i64) -> Option<i64> {
    value
        .parse::<i64>()
        .ok()
        .filter(|v| (min..=max).contains(v))
}

/// Kafka broker properties that a stock `server.properties` sets and that mean nothing to Tributary (thread
/// pools, socket buffers, internal topics it does not have); accepted quietly so that a real typo still stands
/// out as a warning.
const KAFKA_KEYS_WITHOUT_EFFECT: &[&str] = &[
    "num.network.threads",
    "num.io.threads",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "num.recovery.threads.per.data.dir",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "share.coordinator.state.topic.replication.factor",
    "share.coordinator.state.topic.min.isr",
];

/// The listener keys, resolved by [`listeners::resolve`] after the other keys.
const LISTENER_KEYS: &[&str] = &[
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "controller.listener.names",
    "inter.broker.listener.name",
];

/// Kafka's broker-level names for topic defaults; the scale turns hours/minutes into milliseconds.
pub(crate) fn broker_key_to_topic_key(key: &str) -> Option<(&'static str, i64)> {
    Some(match key {
        "log.segment.bytes" => ("segment.bytes", 1),
        "log.roll.ms" => ("segment.ms", 1),
        "log.roll.hours" => ("segment.ms", 3_600_000),
        "log.retention.ms" => ("retention.ms", 1),
        "log.retention.minutes" => ("retention.ms", 60_000),
        "log.retention.hours" => ("retention.ms", 3_600_000),
        "log.retention.bytes" => ("retention.bytes", 1),
        "message.max.bytes" => ("max.message.bytes", 1),
        "log.index.interval.bytes" => ("index.interval.bytes", 1),
        "log.message.timestamp.type" => ("message.timestamp.type", 0),
        "log.message.timestamp.before.max.ms" => ("message.timestamp.before.max.ms", 1),
        "log.message.timestamp.after.max.ms" => ("message.timestamp.after.max.ms", 1),
        "log.flush.interval.messages" => ("flush.messages", 1),
        "log.flush.interval.ms" => ("flush.ms", 1),
        "log.cleanup.policy" => ("cleanup.policy", 0),
        "min.insync.replicas" => ("min.insync.replicas", 1),
        "log.cleaner.delete.retention.ms" => ("delete.retention.ms", 1),
        "log.cleaner.min.cleanable.ratio" => ("min.cleanable.dirty.ratio", 0),
        "log.cleaner.min.compaction.lag.ms" => ("min.compaction.lag.ms", 1),
        "compression.type" => ("compression.type", 0),
        "compression.gzip.level" => ("compression.gzip.level", 1),
        "compression.lz4.level" => ("compression.lz4.level", 1),
        "compression.zstd.level" => ("compression.zstd.level", 1),
        "log.segment.delete.delay.ms" => ("file.delete.delay.ms", 1),
        "log.local.retention.bytes" => ("local.retention.bytes", 1),
        "log.local.retention.ms" => ("local.retention.ms", 1),
        "log.cleaner.max.compaction.lag.ms" => ("max.compaction.lag.ms", 1),
        "log.preallocate" => ("preallocate", 0),
        "log.index.size.max.bytes" => ("segment.index.bytes", 1),
        "log.roll.jitter.ms" => ("segment.jitter.ms", 1),
        "log.roll.jitter.hours" => ("segment.jitter.ms", 3_600_000),
        "max.decompressed.message.bytes" => ("max.decompressed.message.bytes", 1),
        "log.remote.copy.lag.bytes" => ("remote.copy.lag.bytes", 1),
        "log.remote.copy.lag.ms" => ("remote.copy.lag.ms", 1),
        _ => return None,
    })
}

pub(crate) fn scale_value(value: &str, scale: i64) -> Option<String> {
    if scale == 0 {
        return Some(value.to_owned());
    }
    let v: i64 = value.parse().ok()?;
    Some(if v < 0 {
        v.to_string()
    } else {
        v.checked_mul(scale)?.to_string()
    })
}

/// The kind of a config value, as DescribeConfigs reports it (Kafka's `ConfigType` ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigValueType {
    Boolean = 1,
    Int = 3,
    Long = 5,
    Double = 6,
    String = 2,
    List = 7,
}

/// One topic config that this broker implements.
#[derive(Debug)]
pub struct TopicConfigDef {
    pub name: &'static str,
    pub broker_name: &'static str,
    pub default: &'static str,
    pub value_type: ConfigValueType,
    pub doc: &'static str,
}

/// Every topic config the broker understands. Anything else is rejected with INVALID_CONFIG rather than
/// silently stored, so a typo never looks like it took effect.
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    TopicConfigDef {
        name: "cleanup.policy",
        broker_name: "log.cleanup.policy",
        default: "delete",
        value_type: ConfigValueType::List,
        doc: "delete, compact or both",
    },
    TopicConfigDef {
        name: "compression.gzip.level",
        broker_name: "compression.gzip.level",
        default: "-1",
        value_type: ConfigValueType::Int,
        doc: "gzip level (1-9, -1 for the codec's default) a leader recompresses batches with when \
              compression.type=gzip",
    },
    TopicConfigDef {
        name: "compression.lz4.level",
        broker_name: "compression.lz4.level",
        default: "9",
        value_type: ConfigValueType::Int,
        doc: "lz4 level (1-17) a leader recompresses batches with when compression.type=lz4",
    },
    // A leader rebuilds a batch whose codec differs (partition::recompress); producer keeps the bytes as sent.
    TopicConfigDef {
        name: "compression.type",
        broker_name: "compression.type",
        default: "producer",
        value_type: ConfigValueType::String,
        doc: "codec a leader stores produced batches in: uncompressed, zstd, lz4, snappy or gzip (batches in \
              another codec are recompressed), or producer to keep each batch's codec as sent",
    },
    TopicConfigDef {
        name: "compression.zstd.level",
        broker_name: "compression.zstd.level",
        default: "3",
        value_type: ConfigValueType::Int,
        doc: "zstd level (-131072 to 22) a leader recompresses batches with when compression.type=zstd",
    },
    // Tributary acknowledges a write only after it is fsynced (group commit): flush.messages=1. Kafka's default
    // leaves flushing to the OS and relies on replication; set flush.messages/flush.ms to
    // 9223372036854775807 for that behaviour.
    TopicConfigDef {
        name: "delete.retention.ms",
        broker_name: "log.cleaner.delete.retention.ms",
        default: "86400000",
        value_type: ConfigValueType::Long,
        doc: "how long tombstones stay readable in a compacted topic after their first clean",
    },
    TopicConfigDef {
        name: "errors.deadletterqueue.group.enable",
        broker_name: "",
        default: "false",
        value_type: ConfigValueType::Boolean,
        doc: "share groups' dead-letter queue; only false: this broker has no share groups",
    },
    TopicConfigDef {
        name: "file.delete.delay.ms",
        broker_name: "log.segment.delete.delay.ms",
        default: "60000",
        value_type: ConfigValueType::Long,
        doc: "Kafka's wait before removing a deleted segment's files; here they are unlinked at once, since \
              readers hold open handles and the data stays readable to them until they close",
    },
    TopicConfigDef {
        name: "flush.messages",
        broker_name: "log.flush.interval.messages",
        default: "1",
        value_type: ConfigValueType::Long,
        doc: "fsync after this many messages; 1 = every batch (group commit)",
    },
    TopicConfigDef {
        name: "flush.ms",
        broker_name: "log.flush.interval.ms",
        default: "9223372036854775807",
        value_type: ConfigValueType::Long,
        doc: "fsync at least this often",
    },
    TopicConfigDef {
        name: FOLLOWER_THROTTLED_REPLICAS,
        broker_name: "",
        default: "",
        value_type: ConfigValueType::List,
        doc: "replicas (partition:broker, or *) that the follower broker leaves out of its fetches while \
              out of sync and over its follower.replication.throttled.rate",
    },
    TopicConfigDef {
        name: "index.interval.bytes",
        broker_name: "log.index.interval.bytes",
        default: "4096",
        value_type: ConfigValueType::Int,
        doc: "bytes between offset index entries",
    },
    // Set and cleared by kafka-reassign-partitions.sh --throttle / --verify, enforced with the per-broker
    // rates of [`NODE_CONFIGS`] by `replication::quota`. No broker-level synonym, as in Kafka.
    TopicConfigDef {
        name: LEADER_THROTTLED_REPLICAS,
        broker_name: "",
        default: "",
        value_type: ConfigValueType::List,
        doc: "replicas (partition:broker, or *) whose leader broker holds back data for out-of-sync \
              followers while its leader.replication.throttled.rate is exceeded",
    },
    TopicConfigDef {
        name: "local.retention.bytes",
        broker_name: "log.local.retention.bytes",
        default: "-2",
        value_type: ConfigValueType::Long,
        doc: "local retention with tiered storage (-2: retention.bytes); stored only, as this broker has no \
              remote storage (remote.storage.enable=false)",
    },
    TopicConfigDef {
        name: "local.retention.ms",
        broker_name: "log.local.retention.ms",
        default: "-2",
        value_type: ConfigValueType::Long,
        doc: "local retention with tiered storage (-2: retention.ms); stored only, as local.retention.bytes",
    },
    TopicConfigDef {
        name: "max.compaction.lag.ms",
        broker_name: "log.cleaner.max.compaction.lag.ms",
        default: "9223372036854775807",
        value_type: ConfigValueType::Long,
        doc: "a compacted log whose oldest dirty record is older than this is cleaned whatever its dirty ratio",
    },
    TopicConfigDef {
        name: "max.decompressed.message.bytes",
        broker_name: "max.decompressed.message.bytes",
        default: "2147483639",
        value_type: ConfigValueType::Int,
        doc: "most bytes the broker reads of a batch's decompressed records when it must read them \
              (recompression for compression.type, a compacted topic's key check); a batch over it is \
              refused there with MESSAGE_TOO_LARGE",
    },
    TopicConfigDef {
        name: "max.message.bytes",
        broker_name: "message.max.bytes",
        default: "1048588",
        value_type: ConfigValueType::Int,
        doc: "largest record batch accepted",
    },
    TopicConfigDef {
        name: "message.timestamp.after.max.ms",
        broker_name: "log.message.timestamp.after.max.ms",
        default: "3600000",
        value_type: ConfigValueType::Long,
        doc: "how far ahead of the broker's clock a CreateTime record's timestamp may be",
    },
    TopicConfigDef {
        name: "message.timestamp.before.max.ms",
        broker_name: "log.message.timestamp.before.max.ms",
        default: "9223372036854775807",
        value_type: ConfigValueType::Long,
        doc: "how far behind the broker's clock a CreateTime record's timestamp may be",
    },
    TopicConfigDef {
        name: "message.timestamp.type",
        broker_name: "log.message.timestamp.type",
        default: "CreateTime",
        value_type: ConfigValueType::String,
        doc: "CreateTime or LogAppendTime",
    },
    TopicConfigDef {
        name: "min.cleanable.dirty.ratio",
        broker_name: "log.cleaner.min.cleanable.ratio",
        default: "0.5",
        value_type: ConfigValueType::Double,
        doc: "share of not-yet-compacted bytes that makes a compacted partition due for cleaning",
    },
    TopicConfigDef {
        name: "min.compaction.lag.ms",
        broker_name: "log.cleaner.min.compaction.lag.ms",
        default: "0",
        value_type: ConfigValueType::Long,
        doc: "records younger than this are not compacted",
    },
    TopicConfigDef {
        name: "min.insync.replicas",
        broker_name: "min.insync.replicas",
        default: "1",
        value_type: ConfigValueType::Int,
        doc: "in-sync replicas an acks=all write needs; the high watermark waits for at least this many",
    },
    TopicConfigDef {
        name: "preallocate",
        broker_name: "log.preallocate",
        default: "false",
        value_type: ConfigValueType::Boolean,
        doc: "preallocate segment files; only false: segments grow as they are written",
    },
    TopicConfigDef {
        name: "remote.copy.lag.bytes",
        broker_name: "log.remote.copy.lag.bytes",
        default: "-1",
        value_type: ConfigValueType::Long,
        doc: "tiered storage: bytes a segment may wait before its copy; stored only (no remote storage here)",
    },
    TopicConfigDef {
        name: "remote.copy.lag.ms",
        broker_name: "log.remote.copy.lag.ms",
        default: "0",
        value_type: ConfigValueType::Long,
        doc: "tiered storage: time a segment may wait before its copy; stored only (no remote storage here)",
    },
    TopicConfigDef {
        name: "remote.log.copy.disable",
        broker_name: "",
        default: "false",
        value_type: ConfigValueType::Boolean,
        doc: "tiered storage: stop copying segments to remote storage; stored only (no remote storage here)",
    },
    TopicConfigDef {
        name: "remote.log.delete.on.disable",
        broker_name: "",
        default: "false",
        value_type: ConfigValueType::Boolean,
        doc: "tiered storage: delete remote data when it is turned off; stored only (no remote storage here)",
    },
    TopicConfigDef {
        name: "remote.storage.enable",
        broker_name: "",
        default: "false",
        value_type: ConfigValueType::Boolean,
        doc: "tiered storage; only false: this broker keeps every segment on its local disk",
    },
    TopicConfigDef {
        name: "retention.bytes",
        broker_name: "log.retention.bytes",
        default: "-1",
        value_type: ConfigValueType::Long,
        doc: "partition size above which old segments are deleted; -1 = no limit",
    },
    TopicConfigDef {
        name: "retention.ms",
        broker_name: "log.retention.ms",
        default: "604800000",
        value_type: ConfigValueType::Long,
        doc: "age after which segments are deleted; -1 = no limit",
    },
    TopicConfigDef {
        name: "segment.bytes",
        broker_name: "log.segment.bytes",
        default: "1073741824",
        value_type: ConfigValueType::Int,
        doc: "segment file size before a roll",
    },
    TopicConfigDef {
        name: "segment.index.bytes",
        broker_name: "log.index.size.max.bytes",
        default: "10485760",
        value_type: ConfigValueType::Int,
        doc: "the active segment rolls before its offset or time index grows past this",
    },
    TopicConfigDef {
        name: "segment.jitter.ms",
        broker_name: "log.roll.jitter.ms",
        default: "0",
        value_type: ConfigValueType::Long,
        doc: "up to this much is taken off segment.ms per segment, so partitions do not all roll at once",
    },
    TopicConfigDef {
        name: "segment.ms",
        broker_name: "log.roll.ms",
        default: "604800000",
        value_type: ConfigValueType::Long,
        doc: "segment age before a roll",
    },
    TopicConfigDef {
        name: "unclean.leader.election.enable",
        broker_name: "unclean.leader.election.enable",
        default: "false",
        value_type: ConfigValueType::Boolean,
        doc: "elect a leader from outside the ISR when no ISR member is live (what only the ISR held is \
              lost); false waits for an ISR member, or for an explicit ElectLeaders of type UNCLEAN",
    },
];

pub fn topic_config_def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|def| def.name == name)
}

/// Checks one topic config value.
pub fn validate_topic_config(name: &str, value: &str) -> Result<(), TopicConfigError> {
    let long = |min: i64| -> Result<(), TopicConfigError> {
        match value.trim().parse::<i64>() {
            Ok(v) if v >= min => Ok(()),
            Ok(_) => Err(TopicConfigError::BelowMinimum {
                name: name.to_owned(),
                min,
                value: value.to_owned(),
            }),
            Err(_) => Err(TopicConfigError::NotAnInteger {
                name: name.to_owned(),
                min,
                value: value.to_owned(),
            }),
        }
    };
    match name {
        "cleanup.policy" => {
            let ok = !value.trim().is_empty()
                && value
                    .split(',')
                    .all(|p| matches!(p.trim(), "delete" | "compact"));
            if ok {
                Ok(())
            } else {
                Err(TopicConfigError::InvalidCleanupPolicy {
                    value: value.to_owned(),
                })
            }
        }
        // Kafka's `BrokerCompressionType` names, case-sensitive as its `ValidString` validator is.
        "compression.type" => match value {
            "uncompressed" | "zstd" | "lz4" | "snappy" | "gzip" | "producer" => Ok(()),
            _ => Err(TopicConfigError::InvalidCompressionType {
                value: value.to_owned(),
            }),
        },
        "flush.messages" | "flush.ms" | "max.compaction.lag.ms" => long(1),
        "file.delete.delay.ms" | "segment.jitter.ms" | "remote.copy.lag.ms" => long(0),
        "local.retention.bytes" | "local.retention.ms" => long(-2),
        "remote.copy.lag.bytes" => long(-1),
        "max.decompressed.message.bytes" => long(1).and_then(|()| fits_i32(name, value)),
        "errors.deadletterqueue.group.enable" => only_false(
            name,
            value,
            "this broker has no share groups, so no dead-letter queue for them",
        ),
        "segment.index.bytes" => long(4).and_then(|()| fits_i32(name, value)),
        "compression.gzip.level" => match value.trim().parse::<i64>() {
            Ok(-1 | 1..=9) => Ok(()),
            _ => Err(TopicConfigError::OutOfRange {
                name: name.to_owned(),
                min: 1,
                max: 9,
                value: value.to_owned(),
            }),
        },
        "compression.lz4.level" => in_range(name, value, 1, 17),
        "compression.zstd.level" => in_range(name, value, -131_072, 22),
        "remote.log.copy.disable" | "remote.log.delete.on.disable" => boolean(name, value),
        "preallocate" => only_false(name, value, "segments are not preallocated here"),
        "remote.storage.enable" => only_false(
            name,
            value,
            "this broker has no tiered storage; every segment stays on its local disk",
        ),
        "unclean.leader.election.enable" => boolean(name, value),
        "delete.retention.ms"
        | "min.compaction.lag.ms"
        | "message.timestamp.before.max.ms"
        | "message.timestamp.after.max.ms" => long(0),
        "min.cleanable.dirty.ratio" => match value.trim().parse::<f64>() {
            Ok(v) if (0.0..=1.0).contains(&v) => Ok(()),
            _ => Err(TopicConfigError::InvalidDirtyRatio {
                value: value.to_owned(),
            }),
        },
        "index.interval.bytes" | "min.insync.replicas" => {
            long(1).and_then(|()| fits_i32(name, value))
        }
        "max.message.bytes" => long(64).and_then(|()| fits_i32(name, value)),
        // A segment must hold at least one batch header; Kafka's floor is 14 bytes, ours the header size.
        "segment.bytes" => long(1024).and_then(|()| fits_i32(name, value)),
        "segment.ms" => long(1),
        "retention.ms" | "retention.bytes" => long(-1),
        LEADER_THROTTLED_REPLICAS | FOLLOWER_THROTTLED_REPLICAS => throttled_replicas(name, value),
        "message.timestamp.type" => match value {
            "CreateTime" | "LogAppendTime" => Ok(()),
            _ => Err(TopicConfigError::InvalidTimestampType {
                value: value.to_owned(),
            }),
        },
        _ => Err(TopicConfigError::UnknownName {
            name: name.to_owned(),
        }),
    }
}

fn in_range(name: &str, value: &str, min: i64, max: i64) -> Result<(), TopicConfigError> {
    match value.trim().parse::<i64>() {
        Ok(v) if (min..=max).contains(&v) => Ok(()),
        _ => Err(TopicConfigError::OutOfRange {
            name: name.to_owned(),
            min,
            max,
            value: value.to_owned(),
        }),
    }
}

/// Kafka's boolean parsing: `true` or `false`, any case.
fn parse_boolean(name: &str, value: &str) -> Result<bool, TopicConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(TopicConfigError::NotABoolean {
            name: name.to_owned(),
            value: value.to_owned(),
        }),
    }
}

fn boolean(name: &str, value: &str) -> Result<(), TopicConfigError> {
    parse_boolean(name, value).map(|_| ())
}

/// A boolean whose `true` names a feature this broker does not have: refused rather than stored, so it
/// never looks like it took effect.
fn only_false(name: &str, value: &str, why: &'static str) -> Result<(), TopicConfigError> {
    if parse_boolean(name, value)? {
        return Err(TopicConfigError::Unsupported {
            name: name.to_owned(),
            value: value.to_owned(),
            why: why.to_owned(),
        });
    }
    Ok(())
}

/// Kafka's `ThrottledReplicaListValidator`: empty, `*`, or a list of `partition:broker`.
fn throttled_replicas(name: &str, value: &str) -> Result<(), TopicConfigError> {
    let items: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let pair = |item: &str| {
        item.split_once(':').is_some_and(|(p, b)| {
            p.trim().parse::<u32>().is_ok() && b.trim().parse::<u32>().is_ok()
        })
    };
    if items == ["*"] || items.iter().all(|item| pair(item)) {
        Ok(())
    } else {
        Err(TopicConfigError::InvalidThrottledReplicas {
            name: name.to_owned(),
            value: value.to_owned(),
        })
    }
}

/// Topic config: replicas (`partition:broker,...` or `*`) throttled on their leader (KIP-73).
pub const LEADER_THROTTLED_REPLICAS: &str = "leader.replication.throttled.replicas";
/// Topic config: replicas (`partition:broker,...` or `*`) throttled on the follower that fetches them.
pub const FOLLOWER_THROTTLED_REPLICAS: &str = "follower.replication.throttled.replicas";
/// Per-broker config: bytes/s this broker sends for leader-throttled replicas before it holds back data
/// for out-of-sync followers.
pub const LEADER_THROTTLED_RATE: &str = "leader.replication.throttled.rate";
/// Per-broker config: bytes/s this broker fetches for follower-throttled replicas before it leaves those
/// that are out of sync out of its fetches.
pub const FOLLOWER_THROTTLED_RATE: &str = "follower.replication.throttled.rate";

/// Per-broker dynamic configs (IncrementalAlterConfigs on broker resource `id`) this broker stores, in
/// bytes/s: the replication throttle rates that kafka-reassign-partitions.sh sets and clears, enforced
/// with Kafka's semantics (`replication::quota`: measured over `replication.quota.window.num` samples of
/// `replication.quota.window.size.seconds`; in-sync replicas are never held back; no value, no limit),
/// and `replica.alter.log.dirs.io.max.bytes.per.second`, stored only (this broker has one log directory).
pub const NODE_CONFIGS: &[&str] = &[
    LEADER_THROTTLED_RATE,
    FOLLOWER_THROTTLED_RATE,
    "replica.alter.log.dirs.io.max.bytes.per.second",
];

/// Per-broker dynamic config that drains broker `id` ("true"/"false"): the controller moves every replica
/// off it and places nothing new on it. Unlike [`NODE_CONFIGS`], any broker accepts it for any registered
/// broker, so a broker whose node died can still be drained. Stored only while "true".
pub const DRAINING_CONFIG: &str = "tributary.broker.draining";

/// Per-broker dynamic config that fills broker `id` ("true"/"false"): the controller moves replicas onto
/// it from the brokers holding the most until replica counts are even, then clears it. The controller sets
/// it when a broker registers for the first time into a cluster that has partitions (unless
/// `tributary.partition.autobalancing.mode=off`); anyone may set it on a registered broker, as draining.
pub const FILLING_CONFIG: &str = "tributary.broker.filling";

/// The per-broker operation flags: any broker accepts them for any registered broker.
pub const BROKER_FLAGS: &[&str] = &[DRAINING_CONFIG, FILLING_CONFIG];

/// Checks one per-broker dynamic config value (each a rate: a long >= 0, as in Kafka).
pub fn validate_node_config(name: &str, value: &str) -> Result<(), TopicConfigError> {
    if !NODE_CONFIGS.contains(&name) {
        return Err(TopicConfigError::UnknownName {
            name: name.to_owned(),
        });
    }
    match value.trim().parse::<i64>() {
        Ok(v) if v >= 0 => Ok(()),
        Ok(_) => Err(TopicConfigError::BelowMinimum {
            name: name.to_owned(),
            min: 0,
            value: value.to_owned(),
        }),
        Err(_) => Err(TopicConfigError::NotAnInteger {
            name: name.to_owned(),
            min: 0,
            value: value.to_owned(),
        }),
    }
}

fn fits_i32(name: &str, value: &str) -> Result<(), TopicConfigError> {
    match value.trim().parse::<i32>() {
        Ok(_) => Ok(()),
        Err(_) => Err(TopicConfigError::NotAnInt32 {
            name: name.to_owned(),
            value: value.to_owned(),
        }),
    }
}

/// Where an effective config value came from, for DescribeConfigs: Kafka's `ConfigSource` ids (0 unknown,
/// 1 topic, 2 dynamic broker, 3 dynamic default broker, 4 static broker, 5 default, 6 dynamic broker logger).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    TopicOverride = 1,
    DynamicBroker = 2,
    DynamicDefaultBroker = 3,
    StaticBroker = 4,
    Default = 5,
}

/// The effective value of one topic config and its source.
pub fn effective_topic_config<'a>(
    def: &'a TopicConfigDef,
    topic_overrides: &'a BTreeMap<String, String>,
    dynamic_broker: &'a BTreeMap<String, String>,
    static_broker: &'a BTreeMap<String, String>,
) -> (&'a str, ConfigSource) {
    if let Some(v) = topic_overrides.get(def.name) {
        (v, ConfigSource::TopicOverride)
    } else if let Some(v) = dynamic_broker.get(def.name) {
        (v, ConfigSource::DynamicDefaultBroker)
    } else if let Some(v) = static_broker.get(def.name) {
        (v, ConfigSource::StaticBroker)
    } else {
        (def.default, ConfigSource::Default)
    }
}

/// Resolves a topic's effective [`LogConfig`]. Values were validated when stored, so a parse failure here can
/// only come from a hand-edited metadata file; the default is used and a warning logged.
pub fn resolve_log_config(
    topic_overrides: &BTreeMap<String, String>,
    dynamic_broker: &BTreeMap<String, String>,
    static_broker: &BTreeMap<String, String>,
) -> LogConfig {
    let get = |name: &str| -> i64 {
        let Some(def) = topic_config_def(name) else {
            return 0;
        };
        let (value, _) =
            effective_topic_config(def, topic_overrides, dynamic_broker, static_broker);
        value.trim().parse().unwrap_or_else(|_| {
            tracing::warn!(
                config = name,
                value,
                "unparseable stored config value; using the default"
            );
            def.default.parse().unwrap_or(0)
        })
    };
    let text = |name: &str| -> &str {
        topic_config_def(name)
            .map(|def| {
                effective_topic_config(def, topic_overrides, dynamic_broker, static_broker).0
            })
            .unwrap_or("")
    };
    let policies: Vec<&str> = text("cleanup.policy").split(',').map(str::trim).collect();
    let dirty_ratio = text("min.cleanable.dirty.ratio")
        .trim()
        .parse::<f64>()
        .unwrap_or(0.5)
        .clamp(0.0, 1.0);
    let level = |name: &str, min: i64, max: i64| get(name).clamp(min, max) as i32;
    let compression = match text("compression.type") {
        "uncompressed" => TopicCompression::Uncompressed,
        "gzip" => TopicCompression::Gzip {
            level: level("compression.gzip.level", -1, 9),
        },
        "snappy" => TopicCompression::Snappy,
        "lz4" => TopicCompression::Lz4 {
            level: level("compression.lz4.level", 1, 17),
        },
        "zstd" => TopicCompression::Zstd {
            level: level("compression.zstd.level", -131_072, 22),
        },
        _ => TopicCompression::Producer,
    };
    let timestamp_type = match Some(text("message.timestamp.type")) {
        Some("LogAppendTime") => TimestampType::LogAppendTime,
        _ => TimestampType::CreateTime,
    };
    LogConfig {
        segment_bytes: get("segment.bytes").max(1024) as u64,
        segment_ms: get("segment.ms"),
        retention_ms: get("retention.ms"),
        retention_bytes: get("retention.bytes"),
        max_message_bytes: get("max.message.bytes").clamp(64, i64::from(i32::MAX)) as u32,
        index_interval_bytes: get("index.interval.bytes").clamp(1, i64::from(i32::MAX)) as u32,
        timestamp_type,
        timestamp_before_max_ms: get("message.timestamp.before.max.ms").max(0),
        timestamp_after_max_ms: get("message.timestamp.after.max.ms").max(0),
        flush: FlushPolicy::from_kafka(get("flush.messages"), get("flush.ms")),
        delete: policies.contains(&"delete"),
        compact: policies.contains(&"compact"),
        delete_retention_ms: get("delete.retention.ms"),
        min_cleanable_dirty_ratio: dirty_ratio,
        min_compaction_lag_ms: get("min.compaction.lag.ms"),
        max_compaction_lag_ms: get("max.compaction.lag.ms").max(1),
        segment_jitter_ms: get("segment.jitter.ms").max(0),
        segment_index_bytes: get("segment.index.bytes").clamp(4, i64::from(i32::MAX)) as u32,
        min_insync_replicas: get("min.insync.replicas").clamp(1, i64::from(i32::MAX)) as usize,
        compression,
        max_decompressed_bytes: get("max.decompressed.message.bytes").clamp(1, i64::from(i32::MAX))
            as u32,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn broker_properties_override_dev_defaults_and_scale_hours() {
        let mut config = BrokerConfig::dev_defaults();
        let props: BTreeMap<String, String> = [
            ("listeners", "PLAINTEXT://127.0.0.2:19092"),
            ("advertised.listeners", "PLAINTEXT://broker-0.example:19092"),
            ("log.retention.hours", "2"),
            ("auto.create.topics.enable", "false"),
            ("some.kafka.only.setting", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        config.apply_properties(&props).unwrap();
        assert_eq!(config.listen, "127.0.0.2:19092".parse().unwrap());
        assert_eq!(config.advertised_host, "broker-0.example");
        assert_eq!(config.advertised_port, 19092);
        assert!(!config.auto_create_topics);
        assert_eq!(
            config
                .topic_defaults
                .get("retention.ms")
                .map(String::as_str),
            Some("7200000")
        );
    }

    #[test]
    fn replication_quota_window_properties() {
        let mut config = BrokerConfig::dev_defaults();
        assert_eq!(
            (
                config.replication.quota_window_num,
                config.replication.quota_window_size_seconds
            ),
            (11, 1),
            "Kafka's defaults"
        );
        let props = BTreeMap::from([
            ("replication.quota.window.num".to_owned(), "5".to_owned()),
            (
                "replication.quota.window.size.seconds".to_owned(),
                "2".to_owned(),
            ),
        ]);
        config.apply_properties(&props).unwrap();
        assert_eq!(config.replication.quota_window_num, 5);
        assert_eq!(config.replication.quota_window_size_seconds, 2);
        for bad in ["0", "-1", "many"] {
            let props =
                BTreeMap::from([("replication.quota.window.num".to_owned(), bad.to_owned())]);
            let err = config.apply_properties(&props).unwrap_err().to_string();
            assert!(err.contains("replication.quota.window.num"), "{bad}: {err}");
        }
    }

    #[test]
    fn invalid_broker_property_names_the_key() {
        let mut config = BrokerConfig::dev_defaults();
        let props = BTreeMap::from([("log.segment.bytes".to_owned(), "tiny".to_owned())]);
        let err = config.apply_properties(&props).unwrap_err().to_string();
        assert!(err.contains("log.segment.bytes"), "{err}");
    }

    #[test]
    fn topic_config_validation() {
        assert!(validate_topic_config("retention.ms", "-1").is_ok());
        assert!(validate_topic_config("retention.ms", "-2").is_err());
        assert!(validate_topic_config("cleanup.policy", "compact,delete").is_ok());
        assert!(validate_topic_config("cleanup.policy", "forever").is_err());
        assert!(validate_topic_config("segment.bytes", "99999999999").is_err());
        assert_eq!(
            validate_topic_config("no.such.config", "1"),
            Err(TopicConfigError::UnknownName {
                name: "no.such.config".to_owned()
            })
        );
    }

    /// Clients get these texts as error messages; they must not change by accident.
    #[test]
    fn topic_config_error_texts() {
        let cases = [
            (
                "no.such.config",
                "1",
                r#"unknown topic config "no.such.config""#,
            ),
            (
                "retention.ms",
                "soon",
                r#"retention.ms must be an integer >= -1, got "soon""#,
            ),
            (
                "retention.ms",
                "-2",
                r#"retention.ms must be an integer >= -1, got "-2""#,
            ),
            (
                "segment.bytes",
                "99999999999",
                r#"segment.bytes must fit in a 32-bit integer, got "99999999999""#,
            ),
            (
                "cleanup.policy",
                "forever",
                r#"cleanup.policy must be delete, compact or both, got "forever""#,
            ),
            (
                "compression.type",
                "brotli",
                r#"compression.type must be uncompressed, zstd, lz4, snappy, gzip or producer, got "brotli""#,
            ),
            (
                "min.cleanable.dirty.ratio",
                "2",
                r#"min.cleanable.dirty.ratio must be a number in [0, 1], got "2""#,
            ),
            (
                "message.timestamp.type",
                "Now",
                r#"message.timestamp.type must be CreateTime or LogAppendTime, got "Now""#,
            ),
        ];
        for (name, value, text) in cases {
            let err = validate_topic_config(name, value).unwrap_err();
            assert_eq!(err.to_string(), text, "{name}={value}");
        }
    }

    #[test]
    fn kafka_topic_configs_without_a_feature_here_are_refused_only_when_turned_on() {
        for name in ["remote.storage.enable", "preallocate"] {
            assert!(validate_topic_config(name, "false").is_ok(), "{name}");
            assert!(validate_topic_config(name, "FALSE").is_ok(), "{name}");
            let err = validate_topic_config(name, "true").unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("{name}=true is not supported: ")),
                "{err}"
            );
            assert_eq!(
                validate_topic_config(name, "yes").unwrap_err().to_string(),
                format!(r#"{name} must be true or false, got "yes""#)
            );
        }
        assert!(validate_topic_config("remote.log.copy.disable", "true").is_ok());
        assert!(validate_topic_config("unclean.leader.election.enable", "true").is_ok());
        assert!(validate_topic_config("unclean.leader.election.enable", "yes").is_err());
        assert!(validate_topic_config("local.retention.ms", "-2").is_ok());
        assert!(validate_topic_config("local.retention.ms", "-3").is_err());
        assert!(validate_topic_config("compression.gzip.level", "-1").is_ok());
        assert!(validate_topic_config("compression.gzip.level", "0").is_err());
        assert!(validate_topic_config("compression.zstd.level", "-131072").is_ok());
        assert_eq!(
            validate_topic_config("compression.lz4.level", "18")
                .unwrap_err()
                .to_string(),
            r#"compression.lz4.level must be an integer in [1, 17], got "18""#
        );
        assert!(validate_topic_config("segment.index.bytes", "3").is_err());
        assert!(validate_topic_config("max.compaction.lag.ms", "0").is_err());
        // Every defined config's default passes its own validation.
        for def in TOPIC_CONFIGS {
            assert!(
                validate_topic_config(def.name, def.default).is_ok(),
                "{}={}",
                def.name,
                def.default
            );
        }
    }

    #[test]
    fn broker_synonyms_of_the_new_topic_configs_are_parsed_and_checked() {
        let mut config = BrokerConfig::dev_defaults();
        let props = BTreeMap::from([
            ("log.roll.jitter.hours".to_owned(), "2".to_owned()),
            ("log.index.size.max.bytes".to_owned(), "4096".to_owned()),
        ]);
        config.apply_properties(&props).unwrap();
        assert_eq!(
            config
                .topic_defaults
                .get("segment.jitter.ms")
                .map(String::as_str),
            Some("7200000")
        );
        assert_eq!(
            config
                .topic_defaults
                .get("segment.index.bytes")
                .map(String::as_str),
            Some("4096")
        );
        let props = BTreeMap::from([("log.preallocate".to_owned(), "true".to_owned())]);
        let err = crate::error_chain(&config.apply_properties(&props).unwrap_err());
        assert!(err.contains("segments are not preallocated here"), "{err}");
    }

    #[test]
    fn compression_type_takes_kafkas_codecs_with_their_levels_at_topic_and_broker_level() {
        for value in ["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"] {
            assert!(
                validate_topic_config("compression.type", value).is_ok(),
                "{value}"
            );
        }
        for value in ["ZSTD", "none", "brotli", ""] {
            assert!(
                validate_topic_config("compression.type", value).is_err(),
                "{value:?}: Kafka's validator is case-sensitive and knows no other codec"
            );
        }
        let empty = BTreeMap::new();
        let resolve = |pairs: &[(&str, &str)]| {
            let topic = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            resolve_log_config(&topic, &empty, &empty).compression
        };
        assert_eq!(resolve(&[]), TopicCompression::Producer);
        assert_eq!(
            resolve(&[("compression.type", "zstd")]),
            TopicCompression::Zstd { level: 3 },
            "Kafka's default zstd level"
        );
        assert_eq!(
            resolve(&[("compression.type", "lz4")]),
            TopicCompression::Lz4 { level: 9 }
        );
        assert_eq!(
            resolve(&[("compression.type", "gzip")]),
            TopicCompression::Gzip { level: -1 }
        );
        assert_eq!(
            resolve(&[
                ("compression.type", "gzip"),
                ("compression.gzip.level", "9"),
                ("compression.zstd.level", "1"),
            ]),
            TopicCompression::Gzip { level: 9 }
        );
        assert_eq!(
            resolve(&[("compression.type", "uncompressed")]),
            TopicCompression::Uncompressed
        );
        let mut config = BrokerConfig::dev_defaults();
        let props = BTreeMap::from([
            ("compression.type".to_owned(), "zstd".to_owned()),
            ("compression.zstd.level".to_owned(), "-7".to_owned()),
        ]);
        config.apply_properties(&props).unwrap();
        assert_eq!(
            resolve_log_config(&empty, &empty, &config.topic_defaults).compression,
            TopicCompression::Zstd { level: -7 },
            "the broker's compression.type is every topic's default"
        );
        let props = BTreeMap::from([("compression.type".to_owned(), "deflate".to_owned())]);
        assert!(config.apply_properties(&props).is_err());
        assert_eq!(
            resolve_log_config(&empty, &empty, &empty).max_decompressed_bytes,
            2_147_483_639
        );
    }

    #[test]
    fn invalid_topic_default_keeps_the_validation_text_as_its_cause() {
        let mut config = BrokerConfig::dev_defaults();
        let props = BTreeMap::from([("log.retention.ms".to_owned(), "-5".to_owned())]);
        let err = config.apply_properties(&props).unwrap_err();
        assert_eq!(
            crate::error_chain(&err),
            r#"invalid value "-5" for log.retention.ms: retention.ms must be an integer >= -1, got "-5""#
        );
    }

    #[test]
    fn topic_override_beats_dynamic_beats_static_beats_default() {
        let def = topic_config_def("retention.ms").unwrap();
        let topic = BTreeMap::from([("retention.ms".to_owned(), "1".to_owned())]);
        let dynamic = BTreeMap::from([("retention.ms".to_owned(), "2".to_owned())]);
        let statik = BTreeMap::from([("retention.ms".to_owned(), "3".to_owned())]);
        let empty = BTreeMap::new();
        assert_eq!(
            effective_topic_config(def, &topic, &dynamic, &statik),
            ("1", ConfigSource::TopicOverride)
        );
        assert_eq!(
            effective_topic_config(def, &empty, &dynamic, &statik),
            ("2", ConfigSource::DynamicDefaultBroker)
        );
        assert_eq!(
            effective_topic_config(def, &empty, &empty, &statik),
            ("3", ConfigSource::StaticBroker)
        );
        assert_eq!(
            effective_topic_config(def, &empty, &empty, &empty),
            ("604800000", ConfigSource::Default)
        );
        let resolved = resolve_log_config(&empty, &empty, &statik);
        assert_eq!(resolved.retention_ms, 3);
        assert!(matches!(resolved.flush, FlushPolicy::EveryBatch));
    }
}

#[cfg(test)]
mod kraft_tests;
