//! `tributary-broker`: a single-node broker. With no arguments it listens on 127.0.0.1:9092 and keeps its
//! data in `./data`.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{atomic::Ordering, Arc},
    time::Instant,
};

use anyhow::Context;
use clap::Parser;
use tokio::{net::TcpListener, signal::unix::SignalKind, sync::watch};
use tributary_broker::{broker::Broker, config::BrokerConfig, error_chain, http, server};

/// Kafka-wire-compatible streaming broker.
#[derive(Debug, Parser)]
#[command(version, about)]
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
    /// Once both listeners are bound, write their addresses to this file (`kafka=127.0.0.1:PORT` and
    /// `http=127.0.0.1:PORT`, one per line, replaced atomically). With port 0 for `--listen` or
    /// `--http-listen` this is how a script learns the ports the kernel chose, without racing for a free one.
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
        config.listen = listen;
        listen_changed = true;
    }
    if let Some(advertised) = &args.advertised_listener {
        let (host, port) = advertised
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
            .with_context(|| format!("--advertised-listener {advertised:?} is not host:port"))?;
        config.advertised_host = host;
        config.advertised_port = i32::from(port);
    } else if listen_changed {
        config.advertised_host = if config.listen.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            config.listen.ip().to_string()
        };
        config.advertised_port = i32::from(config.listen.port());
    }
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(id) = args.node_id {
        config.node_id = id;
    }
    if let Some(addr) = args.http_listen {
        config.http_listen = addr;
    }
    Ok(config)
}

fn main() -> anyhow::Result<()> {
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
    let args = Args::parse();
    let config = build_config(&args)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(config, args.bound_addresses_file))
}

async fn run(mut config: BrokerConfig, addresses_file: Option<PathBuf>) -> anyhow::Result<()> {
    let started = Instant::now();
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let http_state = http::HttpState::default();
    let ready = Arc::clone(&http_state.ready);
    let http_listener = TcpListener::bind(config.http_listen)
        .await
        .with_context(|| format!("binding HTTP port {}", config.http_listen))?;
    config.http_listen = http_listener.local_addr()?;
    // Bound before the logs are opened so that port 0 resolves to a real port that can be advertised; it is
    // not served until the broker is open (early clients wait in the accept backlog).
    let kafka_listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding Kafka port {}", config.listen))?;
    config.listen = kafka_listener.local_addr()?;
    if config.advertised_port == 0 {
        config.advertised_port = i32::from(config.listen.port());
    }
    if let Some(path) = &addresses_file {
        let text = format!("kafka={}\nhttp={}\n", config.listen, config.http_listen);
        tributary_broker::durable::write_atomically(path, text.as_bytes())
            .with_context(|| format!("writing bound addresses to {}", path.display()))?;
    }
    let http_task = tokio::spawn(http::serve(
        http_listener,
        http_state.clone(),
        shutdown_rx.clone(),
    ));

    let open_config = config.clone();
    let broker = tokio::task::spawn_blocking(move || Broker::open(open_config))
        .await?
        .map_err(|e| anyhow::anyhow!(error_chain(&e)))?;
    let _ = http_state.broker.set(Arc::clone(&broker));
    let server_task = tokio::spawn(server::serve(
        kafka_listener,
        Arc::clone(&broker),
        shutdown_rx.clone(),
    ));
    let background = tokio::spawn(Arc::clone(&broker).run(shutdown_rx.clone()));
    ready.store(true, Ordering::Release);
    tracing::info!(
        listen = %config.listen,
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
    let _ = shutdown_tx.send(true);
    let _ = server_task.await;
    let _ = background.await;
    let _ = http_task.await;
    tokio::task::spawn_blocking(move || broker.shutdown())
        .await?
        .map_err(|e| anyhow::anyhow!(error_chain(&e)))?;
    tracing::info!("shutdown complete");
    Ok(())
}
