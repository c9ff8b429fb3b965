//! The HTTP side port: `/healthz` (the process is alive), `/readyz` (log recovery finished and the Kafka
//! listener is up) and `/metrics` (Prometheus). Served from before recovery starts, so an orchestrator sees a
//! live-but-not-ready broker; `/metrics` answers 503 until the broker's logs are open.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc, OnceLock,
};

use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use tokio::{net::TcpListener, sync::watch};

use crate::{
    broker::Broker,
    metrics::{BrokerMetrics, Format},
};

/// What the side port reads: readiness, and the broker once it is open.
#[derive(Debug, Clone, Default)]
pub struct HttpState {
    pub ready: Arc<AtomicBool>,
    pub broker: Arc<OnceLock<Arc<Broker>>>,
}

pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.changed().await;
        })
        .await
}

async fn readyz(State(state): State<HttpState>) -> (StatusCode, &'static str) {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn metrics(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    let Some(broker) = state.broker.get() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "broker is starting: metrics are served once its logs are open\n",
        )
            .into_response();
    };
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    render(&broker.metrics, Format::negotiate(accept))
}

/// Encodes the metrics. No I/O: a scrape reads in-memory state, holding each partition's lock only for a few
/// loads, so it runs on the async runtime like any other handler.
fn render(metrics: &BrokerMetrics, format: Format) -> Response {
    match metrics.encode(format) {
        Ok(body) => ([(header::CONTENT_TYPE, format.content_type())], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "encoding metrics failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "encoding metrics failed\n",
            )
                .into_response()
        }
    }
}
