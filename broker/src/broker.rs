//! The composition root: builds the broker's parts in dependency order and wires them together, and
//! nothing else. Handlers reach the parts through [`Broker`].
//!
//! Order: log manager (data directory) -> replica manager (follows the metadata) -> metadata store and
//! publisher (the replica manager subscribes) -> controller (emits changes through the publisher) -> group
//! coordinator (reaches `__consumer_offsets` through [`LocalOffsetsLog`], hears which of its partitions are
//! led here through [`OffsetsLeadership`], registered with the replica manager) -> metrics (reads snapshots
//! of the parts). No part holds a pointer back to the broker.

use std::{collections::BTreeMap, net::IpAddr, path::PathBuf, sync::Arc, time::Duration};

use bytes::{Bytes, BytesMut};
use tokio::{net::TcpListener, sync::watch};

use crate::{
    clock::{Clock, SystemClock},
    cluster::{
        controller::{liveness::LivenessSettings, Controller, Placement, QuorumLink, TopicError},
        image::{BrokerRegistration, Endpoint, MetadataImage, NodeId},
        member::{ClusterMember, HeartbeatSettings, MetadataFollowing},
        publisher::{ApplyError, MetadataPublisher},
        raft::quorum::{MetadataQuorum, QuorumError, QuorumSettings},
        rpc::RpcIdentity,
        store::{LocalMetadataStore, MetadataError, MetadataStore},
    },
    config::{
        creation_defaults::OFFSETS_TOPIC_REPLICATION_FACTOR, BrokerConfig, ReplicationConfig,
    },
    group::{offsets::BoxFuture, GroupCoordinator, OffsetsLog, OffsetsLogError, OFFSETS_TOPIC},
    handlers::fetch::session::FetchSessionCache,
    log_manager::{LogManager, LogManagerConfig, LogManagerError},
    metrics::{
        collector::{
            BrokerCollector, ClientQuotaSample, CommittedOffset, PartitionSample,
            QuotaThrottleSample, Snapshot, ThrottleSample,
        },
        BrokerMetrics,
    },
    partition::{HighWatermarkWait, PartitionError},
    protocol::SUPPORTED_APIS,
    quota::manager::ClientQuotaManager,
    replication::{
        leadership::LeadershipListener,
        manager::{NotServed, ReplicaManager},
    },
    storage_health::StorageHealth,
};

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("opening the data directory")]
    Logs(#[from] LogManagerError),
    #[error("opening metadata")]
    Metadata(#[from] MetadataError),
    #[error("opening the partitions the metadata names")]
    Partitions(#[source] ApplyError),
    #[error("rebuilding group state from {OFFSETS_TOPIC}")]
    LoadGroups(#[source] OffsetsLogError),
    #[error("starting the metadata quorum")]
    Quorum(#[from] QuorumError),
}

/// What a cluster member needs beyond the single-node configuration: who the voters are, the formatted
/// cluster id, and the bound controller listener.
#[derive(Debug)]
pub struct ClusterSetup {
    pub cluster_id: String,
    /// Voter id -> controller listener `host:port` (`controller.quorum.voters`).
    pub voters: BTreeMap<NodeId, String>,
    /// `controller.quorum.election.timeout.ms`.
    pub election_timeout: Duration,
    pub liveness: LivenessSettings,
    pub controller_listener: TcpListener,
    /// On a node that does not vote: the address of `controller_listener` (advertised host and bound port on
    /// a broker-only node, the advertised controller listener on a node with the controller role), announced
    /// at registration so that the leader can replicate the metadata log to it as to a learner.
    pub metadata_addr: Option<String>,
    /// This node's log directory id (`directory.id` of `meta.properties`).
    pub directory_id: String,
    /// The initial voters' directory ids, where `format` recorded them.
    pub voter_directories: BTreeMap<NodeId, String>,
    /// The quorum was formed through `controller.quorum.bootstrap.servers` (KIP-853): its voters live in the
    /// metadata log and change at run time.
    pub dynamic_voters: bool,
    /// False on a controller-only node (`process.roles=controller`).
    pub broker: bool,
    /// Outbound controller connections bind here (see [`RpcIdentity::bind_source`]).
    pub bind_source: Option<IpAddr>,
}

/// The listener name clients are registered under while the broker has one listener.
pub const CLIENT_LISTENER: &str = "PLAINTEXT";

#[derive(Debug)]
pub struct Broker {
    pub config: BrokerConfig,
    pub logs: Arc<LogManager>,
    pub replicas: Arc<ReplicaManager>,
    pub publisher: Arc<MetadataPublisher>,
    pub controller: Arc<Controller>,
    pub groups: Arc<GroupCoordinator>,
    pub metrics: BrokerMetrics,
    /// Incremental fetch sessions (KIP-227).
    pub fetch_sessions: FetchSessionCache,
    /// Set when this broker is a member of a cluster.
    pub cluster: Option<Arc<ClusterMember>>,
    /// Client quota meters (the quotas themselves are in the metadata image).
    pub quotas: Arc<ClientQuotaManager>,
}

fn log_manager_config(config: &BrokerConfig) -> LogManagerConfig {
    LogManagerConfig {
        data_dir: config.data_dir.clone(),
        retention_check_interval: Duration::from_millis(config.retention_check_interval_ms),
        cleaner_backoff: config
            .cleaner_enabled
            .then(|| Duration::from_millis(config.cleaner_backoff_ms)),
        high_watermark_checkpoint_interval: Duration::from_millis(
            config.replication.high_watermark_checkpoint_interval_ms,
        ),
    }
}

impl Broker {
    /// Opens the data directory and the metadata, then opens (recovering any that were not closed cleanly)
    /// every partition the metadata places here by publishing the metadata once, and rebuilds group state.
    /// The broker is not ready until the caller marks it so.
    pub fn open(config: BrokerConfig) -> Result<Arc<Self>, BrokerError> {
        Self::open_with_clock(config, Arc::new(SystemClock))
    }

    pub fn open_with_clock(
        config: BrokerConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, BrokerError> {
        let started = std::time::Instant::now();
        let logs = open_logs(&config, &clock)?;
        let replicas = Arc::new(replica_manager(&config, &logs, config.replication.clone()));
        let store: Arc<dyn MetadataStore> = Arc::new(LocalMetadataStore::open(
            &config.data_dir,
            local_registration(&config),
        )?);
        let publisher = Arc::new(MetadataPublisher::new(
            store,
            vec![Arc::clone(&replicas) as _],
        ));
        publisher.start().map_err(BrokerError::Partitions)?;
        let controller = Arc::new(Controller::new(Arc::clone(&publisher)));
        replicas.set_isr_proposer(Arc::new(Arc::clone(&controller)));
        let groups = group_coordinator(&config, &controller, &replicas, clock);
        // Standalone, this broker leads every offsets partition: every shard is loaded now, before clients
        // connect. The listener then keeps the shards in step with leadership (which only moves when the
        // metadata is driven from outside, as in the replication fixture).
        groups.load().map_err(BrokerError::LoadGroups)?;
        replicas.set_leadership_listener(Arc::new(OffsetsLeadership(Arc::clone(&groups))));
        logs.finish_startup();
        let quotas = Arc::new(ClientQuotaManager::new(config.client_quotas.clone()));
        let metrics = broker_metrics(&config, &logs, &replicas, &groups, &quotas);
        tracing::info!(
            partitions = replicas.partition_count(),
            clean_shutdown = logs.clean_shutdown(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "logs loaded"
        );
        Ok(Arc::new(Self {
            fetch_sessions: FetchSessionCache::new(
                config.fetch_session_cache_slots,
                metrics.fetch_session_metrics(),
            ),
            config,
            logs,
            replicas,
            publisher,
            controller,
            groups,
            metrics,
            cluster: None,
            quotas,
        }))
    }

    /// Opens a member of a cluster: the data directory, then the metadata quorum, whose committed images
    /// open, lead, follow or delete the local partitions as they arrive. Directories that no metadata names
    /// are set aside only once this broker has caught up with the metadata log ([`Broker::run`]), because
    /// before that the image is incomplete. Group shards load as their offsets partitions are led here.
    pub async fn open_cluster(
        config: BrokerConfig,
        setup: ClusterSetup,
    ) -> Result<Arc<Self>, BrokerError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let logs = open_logs(&config, &clock)?;
        // Until in service its image may be stale (replayed from its own log): lead nothing yet.
        let replicas = Arc::new(
            replica_manager(
                &config,
                &logs,
                ReplicationConfig {
                    bind_source: setup.bind_source,
                    ..config.replication.clone()
                },
            )
            .wait_for_service(),
        );
        let publisher = Arc::new(MetadataPublisher::following(vec![
            Arc::clone(&replicas) as _
        ]));
        let identity = Arc::new(RpcIdentity {
            cluster_id: setup.cluster_id.clone(),
            node_id: config.node_id,
            bind_source: setup.bind_source,
        });
        let quorum = MetadataQuorum::start(
            QuorumSettings {
                node_id: config.node_id,
                voters: setup.voters.clone(),
                dir: metadata_log_dir(&config.data_dir),
                election_timeout: setup.election_timeout,
                identity: Arc::clone(&identity),
                cluster_id: setup.cluster_id.clone(),
                directory_id: setup.directory_id.clone(),
                voter_directories: setup.voter_directories.clone(),
                dynamic: setup.dynamic_voters,
            },
            Arc::clone(&publisher) as _,
        )
        .await?;
        let controller = Arc::new(Controller::clustered(
            Arc::clone(&publisher),
            QuorumLink::new(
                Arc::clone(&quorum),
                Arc::clone(&identity),
                setup.voters.clone().into_iter().collect(),
            ),
            setup.liveness.clone(),
        ));
        replicas.set_isr_proposer(Arc::new(Arc::clone(&controller)));
        let member = Arc::new(ClusterMember::new(
            quorum,
            Arc::clone(&controller),
            identity,
            local_registration(&config),
            MetadataFollowing {
                addr: setup.metadata_addr.clone(),
                directory_id: setup.directory_id.clone(),
                broker: setup.broker,
            },
            HeartbeatSettings {
                interval: setup.liveness.heartbeat_interval,
                storage: Arc::clone(logs.storage()),
            },
            setup.controller_listener,
        ));
        let groups = group_coordinator(&config, &controller, &replicas, clock);
        // A cluster member coordinates the shards it leads, loading each when it takes the lead; the
        // registration replays the leaderships the metadata already gave it.
        replicas.set_leadership_listener(Arc::new(OffsetsLeadership(Arc::clone(&groups))));
        let quotas = Arc::new(ClientQuotaManager::new(config.client_quotas.clone()));
        let metrics = broker_metrics(&config, &logs, &replicas, &groups, &quotas);
        Ok(Arc::new(Self {
            fetch_sessions: FetchSessionCache::new(
                config.fetch_session_cache_slots,
                metrics.fetch_session_metrics(),
            ),
            config,
            logs,
            replicas,
            publisher,
            controller,
            groups,
            metrics,
            cluster: Some(member),
            quotas,
        }))
    }

    /// The node clients are told is the controller: the metadata quorum's leader in a cluster.
    /// A controller-only leader is no broker a client could reach: then, as Kafka's brokers do (KIP-590),
    /// this broker names itself and forwards what is sent to it.
    pub fn active_controller(&self, image: &MetadataImage) -> Option<NodeId> {
        match &self.cluster {
            Some(member) => member.quorum().leader().map(|(id, _)| {
                if image.brokers.contains_key(&id) {
                    id
                } else {
                    self.config.node_id
                }
            }),
            None => image.controller,
        }
    }

    /// The metadata image handlers answer from.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.publisher.image()
    }

    /// The broker's background work until `shutdown` turns true: the log manager's loops and the group
    /// coordinator's timers.
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(Arc::clone(&self.logs).run(shutdown.clone()));
        tasks.spawn(Arc::clone(self.logs.storage()).run_probe(shutdown.clone()));
        tasks.spawn(Arc::clone(&self.replicas).run(shutdown.clone()));
        tasks.spawn(group_timers(Arc::clone(&self.groups), shutdown.clone()));
        if let Some(member) = &self.cluster {
            tasks.spawn(Arc::clone(member).serve(shutdown.clone()));
            tasks.spawn(Arc::clone(member).run_lifecycle(shutdown.clone()));
            tasks.spawn(Arc::clone(&self.controller).run_liveness(shutdown.clone()));
            tasks.spawn(Arc::clone(&self).finish_joining(shutdown));
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Once this member first comes into service (registered, caught up, unfenced) its image is current:
    /// take up the leaderships it names, and set aside directories nothing names. (Group shards need no
    /// such moment: each loads when its partition is led here.)
    async fn finish_joining(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let Some(member) = &self.cluster else {
            return;
        };
        let mut state = member.state();
        tokio::select! {
            served = state.wait_for(|s| s.in_service()) => if served.is_err() { return },
            _ = shutdown.changed() => return,
        }
        let broker = Arc::clone(&self);
        let started = tokio::task::spawn_blocking(move || {
            broker.replicas.start_leading();
            broker.logs.finish_startup();
        });
        if let Err(e) = started.await {
            tracing::error!(error = %e, "finishing startup panicked");
        }
    }

    /// Before the listeners close: a cluster member hands its leaderships over (controlled shutdown).
    pub async fn prepare_shutdown(&self, timeout: Duration) {
        if let Some(member) = &self.cluster {
            member.controlled_shutdown(timeout).await;
        }
    }

    /// Closes every log cleanly. Called once, after the listeners and [`Broker::run`] stopped.
    pub fn shutdown(&self) -> Result<(), BrokerError> {
        Ok(self.logs.shutdown()?)
    }
}

/// The data directory (creating it, finishing deletions a crash interrupted, reading the checkpoints), with
/// the health of its storage shared by every partition. No log is opened yet.
fn open_logs(
    config: &BrokerConfig,
    clock: &Arc<dyn Clock>,
) -> Result<Arc<LogManager>, BrokerError> {
    Ok(Arc::new(LogManager::open(
        log_manager_config(config),
        Arc::clone(clock),
        Arc::new(StorageHealth::new(&config.data_dir)),
    )?))
}

fn replica_manager(
    config: &BrokerConfig,
    logs: &Arc<LogManager>,
    replication: ReplicationConfig,
) -> ReplicaManager {
    ReplicaManager::new(
        config.node_id,
        Arc::clone(logs),
        config.topic_defaults.clone(),
    )
    .with_replication(replication)
}

/// The group coordinator, writing group state to `__consumer_offsets` through the local replicas.
fn group_coordinator(
    config: &BrokerConfig,
    controller: &Arc<Controller>,
    replicas: &Arc<ReplicaManager>,
    clock: Arc<dyn Clock>,
) -> Arc<GroupCoordinator> {
    let offsets_log = Arc::new(LocalOffsetsLog::new(
        Arc::clone(controller),
        Arc::clone(replicas),
        config,
    ));
    Arc::new(GroupCoordinator::new(
        config.group.clone(),
        offsets_log,
        clock,
    ))
}

/// The metrics registry: request series for every implemented API, the storage metrics, and what a scrape
/// reads from the partitions and groups.
fn broker_metrics(
    config: &BrokerConfig,
    logs: &LogManager,
    replicas: &Arc<ReplicaManager>,
    groups: &Arc<GroupCoordinator>,
    quotas: &Arc<ClientQuotaManager>,
) -> BrokerMetrics {
    let snapshot = {
        let (replicas, groups, quotas) =
            (Arc::clone(replicas), Arc::clone(groups), Arc::clone(quotas));
        Box::new(move || Some(snapshot(&replicas, &groups, &quotas)))
    };
    let apis: Vec<_> = SUPPORTED_APIS.iter().map(|(api, _)| *api).collect();
    BrokerMetrics::new(
        &apis,
        |registry| logs.storage().register(registry),
        BrokerCollector::new(snapshot, config.metrics_partition_level),
    )
}

/// Where a cluster member keeps its metadata log: beside the partitions, under KRaft's name.
pub fn metadata_log_dir(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("__cluster_metadata-0")
}

/// How this broker registers itself: its advertised client endpoint and rack.
pub fn local_registration(config: &BrokerConfig) -> BrokerRegistration {
    let mut endpoints: Vec<Endpoint> = config
        .listeners
        .iter()
        .map(|l| Endpoint {
            listener: l.name.clone(),
            host: l.advertised_host.clone(),
            port: l.advertised_port,
            security_protocol: l.security_protocol.name().to_owned(),
        })
        .collect();
    if endpoints.is_empty() {
        endpoints.push(Endpoint {
            listener: CLIENT_LISTENER.to_owned(),
            host: config.advertised_host.clone(),
            port: config.advertised_port,
            security_protocol: "PLAINTEXT".to_owned(),
        });
    }
    BrokerRegistration {
        id: config.node_id,
        epoch: 0,
        endpoints,
        rack: config.rack.clone(),
        fenced: false,
        storage_full: false,
    }
}

/// What a metrics scrape reports: every hosted partition, then every group's committed offsets.
fn snapshot(
    replicas: &ReplicaManager,
    groups: &GroupCoordinator,
    client_quotas: &ClientQuotaManager,
) -> Snapshot {
    let mut partitions: Vec<PartitionSample> = replicas
        .all_partitions()
        .iter()
        .map(|p| {
            let stats = p.log_stats();
            PartitionSample {
                topic: p.topic.clone(),
                partition: p.index,
                traffic: p.counters.snapshot(),
                size_bytes: stats.size_bytes,
                segments: stats.segments,
                log_start_offset: p.log_start_offset(),
                log_end_offset: stats.log_end_offset,
                high_watermark: p.high_watermark(),
            }
        })
        .collect();
    // Stable output order makes scrapes diffable and tests simple; the partition map is a HashMap.
    partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    let image = replicas.current_image();
    let quotas = replicas.quotas();
    let replication_throttle = [&quotas.leader, &quotas.follower]
        .into_iter()
        .map(|quota| {
            let stats = quota.stats();
            ThrottleSample {
                side: stats.side.label(),
                throttled_bytes: stats.throttled_bytes,
                held_back: stats.held_back,
                rate: stats.rate.round() as i64,
                limit: quota
                    .limit(&image, replicas.local_id())
                    .map(|l| i64::try_from(l).unwrap_or(i64::MAX)),
            }
        })
        .collect();
    Snapshot {
        partitions,
        replication_throttle,
        client_quotas: ClientQuotaSample {
            throttles: client_quotas
                .stats()
                .into_iter()
                .map(|t| QuotaThrottleSample {
                    quota: t.kind.label(),
                    throttled_requests: t.throttled_requests,
                    throttle_time_ms: t.throttle_time_ms,
                })
                .collect(),
            connections_throttled: client_quotas.connections_throttled(),
        },
        committed: groups
            .committed_offsets()
            .into_iter()
            .map(|c| CommittedOffset {
                group: c.group,
                topic: c.topic,
                partition: c.partition,
                offset: c.offset,
            })
            .collect(),
    }
}

/// Session expiry and rebalance deadlines of consumer groups. 100 ms is far below the smallest session
/// timeout Kafka allows (6 s), so expiry is never late by a noticeable amount.
async fn group_timers(groups: Arc<GroupCoordinator>, mut shutdown: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => groups.tick().await,
            _ = shutdown.changed() => return,
        }
    }
}

/// Tells the group coordinator about the leadership of `__consumer_offsets` partitions; other topics are
/// none of its business.
#[derive(Debug)]
struct OffsetsLeadership(Arc<GroupCoordinator>);

impl LeadershipListener for OffsetsLeadership {
    fn became_leader(&self, topic: &str, partition: i32, leader_epoch: i32) {
        if topic == OFFSETS_TOPIC {
            self.0.shard_led(partition, leader_epoch);
        }
    }

    fn stopped_leading(&self, topic: &str, partition: i32) {
        if topic == OFFSETS_TOPIC {
            self.0.shard_lost(partition);
        }
    }
}

/// `__consumer_offsets` as the group coordinator sees it: created through the controller, written through
/// the local leader replicas and acknowledged once the in-sync replicas have it, read from local replicas.
#[derive(Debug)]
pub struct LocalOffsetsLog {
    controller: Arc<Controller>,
    replicas: Arc<ReplicaManager>,
    /// `offsets.topic.replication.factor` from `server.properties` (1 standalone, Kafka's 3 in a cluster);
    /// a cluster-wide dynamic value wins over it.
    replication_factor: i16,
    /// `offsets.commit.timeout.ms`.
    commit_timeout: Duration,
}

impl LocalOffsetsLog {
    pub fn new(
        controller: Arc<Controller>,
        replicas: Arc<ReplicaManager>,
        config: &BrokerConfig,
    ) -> Self {
        Self {
            controller,
            replicas,
            replication_factor: config
                .cluster
                .as_ref()
                .map_or(1, |c| c.offsets_topic_replication_factor),
            commit_timeout: Duration::from_millis(config.group.commit_timeout_ms),
        }
    }
}

impl OffsetsLog for LocalOffsetsLog {
    fn ensure_topic(&self, partitions: i32) -> BoxFuture<'_, Result<(), OffsetsLogError>> {
        Box::pin(async move {
            let image = self.controller.image();
            if image.topics.contains_key(OFFSETS_TOPIC) {
                return Ok(());
            }
            // Kafka refuses to create the topic with fewer live brokers than the replication factor (and
            // clients retry FindCoordinator until enough have registered); we cap it instead, so that a
            // cluster that is still forming or short of a broker can serve groups, and say so. The topic
            // keeps the broker's min.insync.replicas, as in Kafka.
            let live = i16::try_from(image.live_brokers().count()).unwrap_or(i16::MAX);
            let configured = OFFSETS_TOPIC_REPLICATION_FACTOR
                .resolve_i16(&image.broker_configs, self.replication_factor);
            let replication_factor = configured.min(live.max(1));
            if replication_factor < configured {
                tracing::warn!(
                    configured,
                    live_brokers = live,
                    replication_factor,
                    "creating {OFFSETS_TOPIC} with fewer replicas than offsets.topic.replication.factor"
                );
            }
            let configs = BTreeMap::from([
                ("cleanup.policy".to_owned(), "compact".to_owned()),
                ("segment.bytes".to_owned(), "104857600".to_owned()),
                // As Kafka creates it: the coordinator's batches are never recompressed by a broker default.
                ("compression.type".to_owned(), "producer".to_owned()),
            ]);
            let placement = Placement::Spread {
                partitions,
                replication_factor,
            };
            match self
                .controller
                .create_topic(OFFSETS_TOPIC, placement, configs, false)
                .await
            {
                Ok(_) | Err(TopicError::AlreadyExists(_)) => Ok(()),
                Err(e) => Err(OffsetsLogError::CreateTopic(Box::new(e))),
            }
        })
    }

    fn append_durably(
        &self,
        partition: i32,
        leader_epoch: Option<i32>,
        mut batch: BytesMut,
    ) -> BoxFuture<'_, Result<(), OffsetsLogError>> {
        Box::pin(async move {
            let not_leader = OffsetsLogError::NotLeader {
                partition,
                leader_epoch,
            };
            let leader = match self.replicas.leader(OFFSETS_TOPIC, partition) {
                Ok(leader) => leader,
                Err(NotServed::NotLeader { .. }) => return Err(not_leader),
                Err(NotServed::UnknownTopicOrPartition { .. }) => {
                    return Err(OffsetsLogError::NotHosted(partition))
                }
            };
            // As an acks=all produce: refused before the append when too few replicas are in sync.
            if leader.isr_len() < leader.min_insync_replicas() {
                return Err(OffsetsLogError::NotEnoughReplicas(partition));
            }
            let now = crate::clock::now_ms();
            let appended = match leader_epoch {
                Some(epoch) => leader.append_in_epoch(&mut batch, now, epoch),
                None => leader.append(&mut batch, now),
            };
            let outcome = match appended {
                Ok(outcome) => outcome,
                Err(PartitionError::EpochChanged { .. }) => return Err(not_leader),
                Err(source) => {
                    return Err(OffsetsLogError::Append {
                        partition,
                        source: Box::new(source),
                    })
                }
            };
            let end = outcome.last_offset + 1;
            // The leader's own fsync is part of the high watermark (and all of it without followers).
            leader
                .flush_until(end)
                .await
                .map_err(|source| OffsetsLogError::Storage {
                    partition,
                    source: Box::new(source),
                })?;
            match tokio::time::timeout(self.commit_timeout, leader.wait_for_high_watermark(end))
                .await
            {
                Ok(Ok(())) => Ok(()),
                Ok(Err(HighWatermarkWait::NotLeader)) => Err(not_leader),
                Ok(Err(HighWatermarkWait::NotEnoughReplicas)) => {
                    Err(OffsetsLogError::NotEnoughReplicas(partition))
                }
                Err(_elapsed) => Err(OffsetsLogError::Timeout {
                    partition,
                    timeout_ms: u64::try_from(self.commit_timeout.as_millis()).unwrap_or(u64::MAX),
                }),
            }
        })
    }

    fn wait_until_caught_up(
        &self,
        partition: i32,
        leader_epoch: i32,
    ) -> BoxFuture<'_, Result<(), OffsetsLogError>> {
        Box::pin(async move {
            let not_leader = OffsetsLogError::NotLeader {
                partition,
                leader_epoch: Some(leader_epoch),
            };
            let leader = self
                .replicas
                .leader(OFFSETS_TOPIC, partition)
                .map_err(|_| not_leader)?;
            let Some((epoch, epoch_start)) = leader.leader_epoch_start() else {
                return Err(OffsetsLogError::NotLeader {
                    partition,
                    leader_epoch: Some(leader_epoch),
                });
            };
            if epoch != leader_epoch {
                return Err(OffsetsLogError::NotLeader {
                    partition,
                    leader_epoch: Some(leader_epoch),
                });
            }
            leader
                .wait_until_committed(epoch_start)
                .await
                .map_err(|_| OffsetsLogError::NotLeader {
                    partition,
                    leader_epoch: Some(leader_epoch),
                })
        })
    }
    fn readable_range(&self, partition: i32) -> Option<std::ops::Range<i64>> {
        let replica = self.replicas.partition(OFFSETS_TOPIC, partition)?;
        Some(replica.log_start_offset()..replica.high_watermark())
    }

    fn read(
        &self,
        partition: i32,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Bytes, OffsetsLogError> {
        let replica = self
            .replicas
            .partition(OFFSETS_TOPIC, partition)
            .ok_or(OffsetsLogError::NotHosted(partition))?;
        let read = |source: Box<dyn std::error::Error + Send + Sync>| OffsetsLogError::Read {
            partition,
            offset,
            source,
        };
        let slice = replica
            .read(offset, max_bytes)
            .map_err(|e| read(Box::new(e)))?;
        slice.read_bytes().map_err(|e| read(Box::new(e)))
    }
}
