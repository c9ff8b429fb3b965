//! The operator process around the controllers: command line, logging, the HTTP side port (`/metrics`, `/healthz`,
//! `/readyz`), leader election and shutdown.
//!
//! Lifecycle: serve HTTP -> (with `--leader-elect`) wait for the Lease as a standby -> run the controllers until
//! SIGTERM/Ctrl-C -> release the Lease -> exit 0. When leadership is lost the controllers are dropped at once and
//! the process exits non-zero so Kubernetes restarts it as a fresh standby. This module never reconciles anything.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use anyhow::Context as _;
use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::IntoResponse,
    routing::get,
    Router,
};
use clap::{Parser, ValueEnum};
use kube::Client;
use tracing_subscriber::EnvFilter;

use crate::{
    controller,
    leader::{LeaderElector, Timing},
    metrics::{Format, Metrics},
};

/// How long a stopping leader tries to release its Lease.
const RELEASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for log collectors).
    Json,
    /// Human-readable lines.
    Text,
}

/// Command line of `tributary-operator`. Every flag can also be set through the environment variable it names.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "tributary-operator",
    version,
    about = "Kubernetes operator for Tributary"
)]
pub struct Args {
    /// Address of the HTTP side port serving /metrics, /healthz and /readyz.
    #[arg(long, env = "TRIBUTARY_METRICS_LISTEN", default_value = "0.0.0.0:8080")]
    pub metrics_listen: SocketAddr,

    /// Watch only this namespace (default: every namespace).
    #[arg(long, env = "TRIBUTARY_WATCH_NAMESPACE")]
    pub namespace: Option<String>,

    /// Take part in Lease-based leader election, so only one replica acts at a time.
    #[arg(long, env = "TRIBUTARY_LEADER_ELECT", default_value_t = false)]
    pub leader_elect: bool,

    /// Name of the leader-election Lease.
    #[arg(
        long,
        env = "TRIBUTARY_LEADER_ELECTION_ID",
        default_value = "tributary-operator"
    )]
    pub leader_election_id: String,

    /// Namespace of the leader-election Lease (default: POD_NAMESPACE, else the client's default namespace).
    #[arg(long, env = "POD_NAMESPACE")]
    pub leader_election_namespace: Option<String>,

    /// Log format.
    #[arg(long, env = "TRIBUTARY_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Log filter, such as `info` or `info,tributary_operator=debug` (default: RUST_LOG, else `info`).
    #[arg(long, env = "TRIBUTARY_LOG_LEVEL")]
    pub log_level: Option<String>,

    /// Name of this replica, reported as the Event instance and part of the leader-election identity.
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,

    /// Reach every KafkaCluster's brokers at this `host:port` instead of its bootstrap Service (an operator
    /// outside the cluster network, tests, benchmarks).
    #[arg(long, env = "TRIBUTARY_BOOTSTRAP_OVERRIDE")]
    pub bootstrap_override: Option<String>,
}

/// Installs the global tracing subscriber.
pub fn init_logging(args: &Args) -> anyhow::Result<()> {
    let filter = match &args.log_level {
        Some(level) => EnvFilter::try_new(level).context("invalid --log-level")?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match args.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
    Ok(())
}

/// What the HTTP handlers read.
#[derive(Clone, Debug)]
struct HttpState {
    metrics: Metrics,
    ready: Arc<AtomicBool>,
}

async fn metrics(State(state): State<HttpState>, headers: HeaderMap) -> impl IntoResponse {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let format = Format::negotiate(accept);
    (
        [(header::CONTENT_TYPE, format.content_type())],
        state.metrics.encode(format),
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<HttpState>) -> (StatusCode, &'static str) {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    }
}

/// Binds the side port and serves it in the background.
async fn serve_http(address: SocketAddr, state: HttpState) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    let local = listener.local_addr().unwrap_or(address);
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state);
    tracing::info!(address = %local, "serving /metrics, /healthz and /readyz");
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(error = %error, "HTTP side port failed");
        }
    });
    Ok(())
}

/// Resolves when SIGTERM or Ctrl-C arrives.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, "cannot listen for SIGTERM; only Ctrl-C stops the operator");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Runs the operator until a shutdown signal (`Ok`) or lost leadership (`Err`).
pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .context("cannot build a Kubernetes client")?;
    let metrics = Metrics::new();
    let ready = Arc::new(AtomicBool::new(false));
    serve_http(
        args.metrics_listen,
        HttpState {
            metrics: metrics.clone(),
            ready: ready.clone(),
        },
    )
    .await?;

    let version = client
        .apiserver_version()
        .await
        .context("cannot reach the Kubernetes API server")?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        apiserver = %version.git_version,
        namespace = args.namespace.as_deref().unwrap_or("<all>"),
        leader_elect = args.leader_elect,
        "tributary-operator starting"
    );
    // Ready means: the API server answers and this replica either acts or stands by for the Lease.
    ready.store(true, Ordering::Relaxed);

    let config = controller::Config {
        instance: args.pod_name.clone(),
        namespace: args.namespace.clone(),
        bootstrap_override: args.bootstrap_override.clone(),
        metrics: metrics.clone(),
    };
    if !args.leader_elect {
        metrics.set_leader(true);
        controller::run(client, config).await;
        tracing::info!("tributary-operator stopped");
        return Ok(());
    }

    let namespace = args
        .leader_election_namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let identity = format!(
        "{}_{}",
        args.pod_name.as_deref().unwrap_or("tributary-operator"),
        uuid::Uuid::new_v4()
    );
    let mut elector = LeaderElector::new(
        client.clone(),
        &namespace,
        &args.leader_election_id,
        &identity,
        Timing::default(),
    );
    tracing::info!(lease = %args.leader_election_id, namespace = %namespace, identity = %identity, "standing by for leadership");
    tokio::select! {
        () = elector.acquire() => {}
        () = shutdown_signal() => {
            tracing::info!("tributary-operator stopped before becoming leader");
            return Ok(());
        }
    }
    tracing::info!(lease = %args.leader_election_id, identity = %identity, "became leader");
    metrics.set_leader(true);

    // The controllers stop on SIGTERM themselves (`shutdown_on_signal`); losing the Lease drops them mid-flight.
    let outcome = tokio::select! {
        () = controller::run(client, config) => Ok(()),
        lost = elector.hold() => Err(lost),
    };
    metrics.set_leader(false);
    match outcome {
        Ok(()) => {
            // Bounded: an unreachable API server must not hold the pod past its grace period; the Lease then
            // expires on its own.
            match tokio::time::timeout(RELEASE_TIMEOUT, elector.release()).await {
                Ok(Ok(())) => {
                    tracing::info!(lease = %args.leader_election_id, "released the leader-election Lease")
                }
                Ok(Err(error)) => {
                    tracing::warn!(error = %error, "cannot release the leader-election Lease; it expires on its own")
                }
                Err(_) => tracing::warn!(
                    "releasing the leader-election Lease timed out; it expires on its own"
                ),
            }
            tracing::info!("tributary-operator stopped");
            Ok(())
        }
        Err(lost) => {
            tracing::error!(error = %lost, "lost leadership; exiting so a fresh replica stands by");
            Err(anyhow::Error::new(lost).context("lost leadership"))
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn flags_parse_as_the_chart_passes_them() {
        let args = Args::try_parse_from([
            "tributary-operator",
            "--metrics-listen=0.0.0.0:8080",
            "--log-format=json",
            "--log-level=info",
            "--namespace=apps",
            "--leader-elect",
            "--leader-election-id=tributary-operator",
        ])
        .expect("the chart's arguments parse");
        assert_eq!(
            args.metrics_listen,
            "0.0.0.0:8080".parse().expect("address")
        );
        assert_eq!(args.log_format, LogFormat::Json);
        assert_eq!(args.namespace.as_deref(), Some("apps"));
        assert!(args.leader_elect);
        assert_eq!(args.leader_election_id, "tributary-operator");
    }

    #[test]
    fn a_bad_log_format_is_refused() {
        assert!(Args::try_parse_from(["tributary-operator", "--log-format=xml"]).is_err());
    }
}
