//! `tributary-broker`: the broker. With no arguments it is a single-node broker that listens on 127.0.0.1:9092
//! and keeps its data in `./data`; with `process.roles` in its `--config` file it is a cluster node, whose log
//! directory `tributary-broker format` must have formatted first. `random-uuid` prints a new cluster id.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::PathBuf,
    sync::{atomic::Ordering, Arc},
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::{Args as ClapArgs, Parser, Subcommand};
use tokio::{net::TcpListener, signal::unix::SignalKind, sync::watch};
use tributary_broker::{
    broker::{Broker, ClusterSetup},
    cluster::{
        controller::liveness::LivenessSettings,
        rpc::{discover_voters, RpcIdentity},
    },
    cluster_identity::{self, ClusterIdentity, FormatOutcome, InitialVoters},
    config::{BrokerConfig, ClusterConfig, PartitionAutobalancing, QuorumConfig},
    error_chain, http, server,
};

/// Kafka-wire-compatible streaming broker. Without a subcommand it runs the broker.
#[derive(Debug, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: Args,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Formats the log directory of a cluster node once, like Kafka's `kafka-storage.sh format`: writes
    /// meta.properties (cluster id, node id, directory id) and, with --standalone or --initial-controllers,
    /// the initial voter set.
    Format(FormatArgs),
    /// Prints a new random cluster id (a UUID as 22 characters of base64url), like `kafka-storage.sh
    /// random-uuid`.
    RandomUuid,
}

#[derive(Debug, ClapArgs)]
#[command(group = clap::ArgGroup::new("voters").multiple(false))]
struct FormatArgs {
    /// The cluster id, the same on every node (`tributary-broker random-uuid` makes one).
    #[arg(short = 't', long)]
    cluster_id: String,
    /// The node's server.properties; its log.dirs is the directory formatted.
    #[arg(short = 'c', long)]
    config: PathBuf,
    /// Succeed without writing anything when the directory is formatted already.
    #[arg(short = 'g', long)]
    ignore_formatted: bool,
    /// With controller.quorum.bootstrap.servers: start a new quorum whose only voter is this node.
    #[arg(short = 's', long, group = "voters")]
    standalone: bool,
    /// With controller.quorum.bootstrap.servers: the voters of a new quorum, `ID@HOST:PORT:DIRECTORY_ID,...`.
    #[arg(short = 'I', long, group = "voters", value_name = "VOTERS")]
    initial_controllers: Option<String>,
    /// With controller.quorum.bootstrap.servers: this controller joins an existing quorum.
    #[arg(short = 'N', long, group = "voters")]
    no_initial_controllers: bool,
    /// With controller.quorum.bootstrap.servers, for deployments that give every node the same flags (a
    /// Kubernetes StatefulSet): the --initial-controllers list is read from FILE when FILE exists, is not
    /// empty and lists this node; otherwise the node joins an existing quorum (--no-initial-controllers).
    /// Whoever writes FILE removes it once the quorum has formed, so a node whose disk is replaced later
    /// joins instead of starting a second quorum.
    #[arg(long, group = "voters", value_name = "FILE")]
    initial_controllers_file: Option<PathBuf>,
}

/// Flags of the broker itself.
#[derive(Debug, ClapArgs)]
struct Args {
    /// Kafka listener address (Kafka's `listeners`). Default 127.0.0.1:9092.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// host:port that clients are told to connect to (Kafka's `advertised.listeners`). Default: the listen
    /// address.
    #[arg(long)]
    advertised_listener: Option<String>,
    /// Directory for logs and metadata (Kafka's `log.dirs`). Default ./data.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Broker id (Kafka's `node.id`). Default 1.
    #[arg(long)]
    node_id: Option<i32>,
    /// HTTP side port for /healthz, /readyz and /metrics. Default 127.0.0.1:9644.
    #[arg(long)]
    http_listen: Option<SocketAddr>,
    /// Java-properties file with Kafka broker property names (server.properties style). Command-line flags
    /// win over it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Once the listeners are bound, write their addresses to this file, one per line, replaced atomically:
    /// `kafka=IP:PORT` (the primary listener), `listener.NAME=IP:PORT` for each Kafka listener,
    /// `controller=IP:PORT` on a controller, `http=IP:PORT`. With port 0 for `--listen` or `--http-listen`
    /// this is how a script learns the ports the kernel chose, without racing for a free one.
    #[arg(long)]
    bound_addresses_file: Option<PathBuf>,
}

fn build_config(args: &Args) -> anyhow::Result<BrokerConfig> {
    let mut config = BrokerConfig::dev_defaults();
    if let Some(path) = &args.config {
        let props = BrokerConfig::load_properties_file(path)?;
        config.apply_properties(&props)?;
    }
    let mut listen_changed = false;
    if let Some(listen) = args.listen {
        config.set_listen(listen);
        listen_changed = true;
    }
    if let Some(advertised) = &args.advertised_listener {
        let (host, port) = advertised
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
            .with_context(|| format!("--advertised-listener {advertised:?} is not host:port"))?;
        config.set_advertised(host, i32::from(port));
    } else if listen_changed {
        let host = if config.listen.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            config.listen.ip().to_string()
        };
        let port = i32::from(config.listen.port());
        config.set_advertised(host, port);
    }
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(id) = args.node_id {
        config.set_node_id(id)?;
    }
    if let Some(addr) = args.http_listen {
        config.http_listen = addr;
    }
    Ok(config)
}

fn main() -> std::process::ExitCode {
    match start() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // One line, the causes after the message, and nothing after it (no backtrace, even with
            // RUST_BACKTRACE): the last lines are what Kubernetes keeps as the termination message.
            eprintln!("Error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn start() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(
            std::env::var_os("NO_COLOR").is_none()
                && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        )
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Format(format)) => run_format(&format),
        Some(Command::RandomUuid) => {
            println!("{}", cluster_identity::random_uuid());
            Ok(())
        }
        None => {
            let config = build_config(&cli.run)?;
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(run(config, cli.run.bound_addresses_file))
        }
    }
}

fn run_format(args: &FormatArgs) -> anyhow::Result<()> {
    let mut config = BrokerConfig::dev_defaults();
    let props = BrokerConfig::load_properties_file(&args.config)?;
    config.apply_properties(&props)?;
    let voters = match (
        args.standalone,
        &args.initial_controllers,
        args.no_initial_controllers,
        &args.initial_controllers_file,
    ) {
        (true, _, _, _) => InitialVoters::Standalone,
        (_, Some(list), _, _) => InitialVoters::InitialControllers(list.clone()),
        (_, _, true, _) => InitialVoters::NoInitialControllers,
        (_, _, _, Some(file)) => cluster_identity::initial_voters_from_file(file, &config)
            .map_err(|e| anyhow::anyhow!(error_chain(&e)))?,
        _ => InitialVoters::Unset,
    };
    let outcome =
        cluster_identity::format(&config, &args.cluster_id, &voters, args.ignore_formatted)
            .map_err(|e| anyhow::anyhow!(error_chain(&e)))?;
    match outcome {
        FormatOutcome::Formatted(identity) => println!(
            "Formatted {} for cluster {} as node {} (directory id {}).",
            config.data_dir.display(),
            identity.cluster_id,
            identity.node_id,
            identity.directory_id
        ),
        FormatOutcome::AlreadyFormatted => println!(
            "{} is already formatted; left as it is (--ignore-formatted).",
            config.data_dir.display()
        ),
    }
    Ok(())
}

/// How long a broker that does not vote keeps asking the bootstrap servers for the voters at start.
const VOTER_DISCOVERY_PATIENCE: Duration = Duration::from_secs(120);

/// How long a SIGTERM waits for the controller to move this broker's leaderships away before stopping anyway.
const CONTROLLED_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Marks the refusal to vote in place of a wiped voter in the broker's last log lines, which Kubernetes keeps as
/// the container's termination message (`FallbackToLogsOnError`): tributary-operator reads the ids that follow
/// it (`id=`, `old-directory-id=`, `directory-id=`) and removes the old voter, so the node rejoins as an
/// observer and is added again. Keep in step with the operator's `voters::REPLACED_VOTER_TAG`.
const REPLACED_VOTER_TAG: &str = "replaced-voter";

/// The cluster part of the start: voters from `controller.quorum.voters` or from `format`'s record of the
/// initial voters, and the bound controller listener.
async fn cluster_setup(
    config: &BrokerConfig,
    cluster: &ClusterConfig,
    identity: ClusterIdentity,
    controller_listener: Option<TcpListener>,
) -> anyhow::Result<ClusterSetup> {
    let voters: BTreeMap<i32, String> = match (&cluster.quorum, &identity.bootstrap_voters) {
        // A node formatted without initial voters asks the controllers: a broker that does not vote (Kafka's
        // brokers find the quorum leader through the bootstrap servers too), or a controller that joins a
        // running quorum as an observer until AddRaftVoter (`kafka-metadata-quorum.sh add-controller`)
        // makes it a voter.
        (QuorumConfig::Bootstrap(servers), None) => {
            let asking = Arc::new(RpcIdentity {
                cluster_id: identity.cluster_id.clone(),
                node_id: config.node_id,
                bind_source: None,
            });
            tracing::info!(servers = ?servers, "asking controller.quorum.bootstrap.servers for the voters");
            let voters = discover_voters(servers, asking, VOTER_DISCOVERY_PATIENCE)
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "no controller in controller.quorum.bootstrap.servers told the voters within {}s: {e}",
                        VOTER_DISCOVERY_PATIENCE.as_secs()
                    )
                })?;
            tracing::info!(voters = ?voters.addresses, "found the metadata quorum");
            if let Some(Some(recorded)) = voters
                .directories
                .as_ref()
                .and_then(|directories| directories.get(&config.node_id))
            {
                // The quorum counts an earlier incarnation of this node (its log and its votes, now gone) as
                // a voter: voting again with an empty log could elect a leader without the committed entries.
                if *recorded != identity.directory_id {
                    anyhow::bail!(
                        "the metadata quorum counts node {id} with directory id {recorded} as a voter, but {dir} was \
                         formatted anew (directory id {mine}): that voter's log is gone, and this node must not vote \
                         in its place. Remove the old voter first (kafka-metadata-quorum.sh remove-controller \
                         --controller-id {id} --controller-directory-id {recorded}), then start this node and add it \
                         (add-controller); tributary-operator does both [{REPLACED_VOTER_TAG} id={id} \
                         old-directory-id={recorded} directory-id={mine}]",
                        id = config.node_id,
                        dir = config.data_dir.display(),
                        mine = identity.directory_id,
                    );
                }
            }
            voters.addresses
        }
        (QuorumConfig::StaticVoters(voters), _) => voters
            .iter()
            .map(|v| (v.id, format!("{}:{}", v.host, v.port)))
            .collect(),
        (QuorumConfig::Bootstrap(_), Some(voters)) => voters
            .iter()
            .map(|v| (v.id, format!("{}:{}", v.host, v.port)))
            .collect(),
    };
    let voter_directories = identity
        .bootstrap_voters
        .iter()
        .flatten()
        .map(|v| (v.id, v.directory_id.clone()))
        .collect();
    let (controller_listener, metadata_addr) = match controller_listener {
        // A controller announces its controller listener: a voter ignores it, and one that is not (yet) a
        // voter follows the log there as a learner.
        Some(listener) => {
            let bound = listener.local_addr()?;
            let addr = cluster
                .controller_advertised
                .as_ref()
                .map(|(host, port)| {
                    let port = if *port == 0 { bound.port() } else { *port };
                    format!("{host}:{port}")
                })
                .unwrap_or_else(|| bound.to_string());
            (listener, Some(addr))
        }
        // A broker that does not vote still takes the metadata log from the leader (as a Raft learner), so
        // it serves the controller protocol too: on its inter-broker host, on a port the kernel picks, which
        // it announces when it registers.
        None => {
            let primary = config
                .listeners
                .first()
                .context("a broker needs a client listener")?;
            let bound = std::net::TcpListener::bind((primary.bind.ip(), 0)).with_context(|| {
                format!(
                    "binding the metadata replication port on {}",
                    primary.bind.ip()
                )
            })?;
            bound.set_nonblocking(true)?;
            let port = bound.local_addr()?.port();
            let addr = format!("{}:{port}", primary.advertised_host);
            tracing::info!(%addr, "broker-only node: metadata log replicated to it here");
            (TcpListener::from_std(bound)?, Some(addr))
        }
    };
    let bind_source = config
        .controller_listen
        .or_else(|| config.listeners.first().map(|l| l.bind))
        .map(|addr| addr.ip())
        .filter(|ip| !ip.is_unspecified());
    Ok(ClusterSetup {
        dynamic_voters: matches!(cluster.quorum, QuorumConfig::Bootstrap(_)),
        broker: cluster.roles.is_broker(),
        directory_id: identity.directory_id.clone(),
        voter_directories,
        cluster_id: identity.cluster_id,
        voters,
        election_timeout: Duration::from_millis(cluster.election_timeout_ms),
        liveness: LivenessSettings {
            session_timeout: Duration::from_millis(cluster.broker_session_timeout_ms),
            heartbeat_interval: Duration::from_millis(cluster.broker_heartbeat_interval_ms),
            leader_rebalance_interval: cluster
                .auto_leader_rebalance_enable
                .then(|| Duration::from_secs(cluster.leader_imbalance_check_interval_seconds)),
            fill_new_brokers: cluster.partition_autobalancing == PartitionAutobalancing::NodeAdd,
            unclean_leader_election: cluster.unclean_leader_election_enable,
        },
        controller_listener,
        metadata_addr,
        bind_source,
    })
}

async fn run(mut config: BrokerConfig, addresses_file: Option<PathBuf>) -> anyhow::Result<()> {
    let started = Instant::now();
    // A cluster node runs only on a log directory formatted for it; the quorum and replication take this
    // identity (cluster id, directory id, initial voters) from here.
    let identity = match &config.cluster {
        Some(cluster) => Some(
            cluster_identity::load(&config.data_dir, cluster)
                .map_err(|e| anyhow::anyhow!(error_chain(&e)))?,
        ),
        None => None,
    };
    if let Some(identity) = &identity {
        tracing::info!(
            cluster_id = %identity.cluster_id,
            node = identity.node_id,
            directory_id = %identity.directory_id,
            "cluster identity loaded"
        );
    }
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let http_state = http::HttpState::default();
    let ready = Arc::clone(&http_state.ready);
    let http_listener = TcpListener::bind(config.http_listen)
        .await
        .with_context(|| format!("binding HTTP port {}", config.http_listen))?;
    config.http_listen = http_listener.local_addr()?;
    // Bound before the logs are opened so that port 0 resolves to a real port that can be advertised; they are
    // not served until the broker is open (early clients wait in the accept backlog).
    let mut kafka_listeners = Vec::with_capacity(config.listeners.len());
    for listener in &mut config.listeners {
        let bound = TcpListener::bind(listener.bind).await.with_context(|| {
            format!(
                "binding Kafka listener {} on {}",
                listener.name, listener.bind
            )
        })?;
        listener.bind = bound.local_addr()?;
        if listener.advertised_port == 0 {
            listener.advertised_port = i32::from(listener.bind.port());
        }
        kafka_listeners.push(bound);
    }
    if let Some(primary) = config.listeners.first().cloned() {
        config.set_listen(primary.bind);
        config.set_advertised(primary.advertised_host, primary.advertised_port);
    }
    // The metadata quorum's RPC port, bound now so that a port clash fails the start and port 0 gets its real
    // port; the quorum's RPC server takes this listener over.
    let mut controller_listener = match config.controller_listen {
        Some(addr) => {
            let name = config
                .controller_listener_name
                .as_deref()
                .unwrap_or("CONTROLLER");
            let bound = TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding controller listener {name} on {addr}"))?;
            let local = bound.local_addr()?;
            config.controller_listen = Some(local);
            tracing::info!(listener = name, addr = %local, "controller listener bound");
            Some(bound)
        }
        None => None,
    };
    if let Some(path) = &addresses_file {
        let mut text = String::new();
        if let Some(primary) = config.listeners.first() {
            text.push_str(&format!("kafka={}\n", primary.bind));
        }
        for listener in &config.listeners {
            text.push_str(&format!("listener.{}={}\n", listener.name, listener.bind));
        }
        if let Some(addr) = config.controller_listen {
            text.push_str(&format!("controller={addr}\n"));
        }
        text.push_str(&format!("http={}\n", config.http_listen));
        tributary_broker::durable::write_atomically(path, text.as_bytes())
            .with_context(|| format!("writing bound addresses to {}", path.display()))?;
    }
    let http_task = tokio::spawn(http::serve(
        http_listener,
        http_state.clone(),
        shutdown_rx.clone(),
    ));

    let broker = match (&config.cluster, identity) {
        (Some(cluster), Some(identity)) => {
            let setup =
                cluster_setup(&config, cluster, identity, controller_listener.take()).await?;
            Broker::open_cluster(config.clone(), setup)
                .await
                .map_err(|e| anyhow::anyhow!(error_chain(&e)))?
        }
        _ => {
            let open_config = config.clone();
            tokio::task::spawn_blocking(move || Broker::open(open_config))
                .await?
                .map_err(|e| anyhow::anyhow!(error_chain(&e)))?
        }
    };
    let _ = http_state.broker.set(Arc::clone(&broker));
    let mut server_tasks = Vec::with_capacity(kafka_listeners.len());
    for listener in kafka_listeners {
        server_tasks.push(tokio::spawn(server::serve(
            listener,
            Arc::clone(&broker),
            shutdown_rx.clone(),
        )));
    }
    let background = tokio::spawn(Arc::clone(&broker).run(shutdown_rx.clone()));
    match &broker.cluster {
        // A cluster member is ready once registered, caught up with the metadata and unfenced; it stops
        // being ready when fenced.
        Some(member) => {
            let mut state = member.state();
            let ready = Arc::clone(&ready);
            tokio::spawn(async move {
                loop {
                    let in_service = state.borrow_and_update().in_service();
                    ready.store(in_service, Ordering::Release);
                    if state.changed().await.is_err() {
                        return;
                    }
                }
            });
        }
        None => ready.store(true, Ordering::Release),
    }
    tracing::info!(
        listen = %config.listen,
        listeners = config.listeners.len(),
        advertised = %format!("{}:{}", config.advertised_host, config.advertised_port),
        http = %config.http_listen,
        data_dir = %config.data_dir.display(),
        startup_ms = started.elapsed().as_millis() as u64,
        "broker ready"
    );

    let mut sigterm = tokio::signal::unix::signal(SignalKind::terminate())?;
    tokio::select! {
        _ = sigterm.recv() => tracing::info!("SIGTERM received; shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt received; shutting down"),
    }
    ready.store(false, Ordering::Release);
    // Leaderships move away while clients can still reach this broker and learn the new leaders.
    broker.prepare_shutdown(CONTROLLED_SHUTDOWN_TIMEOUT).await;
    let _ = shutdown_tx.send(true);
    for task in server_tasks {
        let _ = task.await;
    }
    drop(controller_listener);
    let _ = background.await;
    let _ = http_task.await;
    tokio::task::spawn_blocking(move || broker.shutdown())
        .await?
        .map_err(|e| anyhow::anyhow!(error_chain(&e)))?;
    tracing::info!("shutdown complete");
    Ok(())
}
