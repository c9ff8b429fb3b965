//! The Kafka listener: accepts connections and serves each one's requests in order.
//!
//! A bad frame (too large, too short, undecodable) closes that connection with a log line and nothing else;
//! a panic in a handler ends only its connection's task. Must never let one client stall another.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use bytes::BytesMut;
use tokio::{
    io::AsyncReadExt,
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinSet,
};

use crate::{
    broker::{error_chain, Broker},
    protocol::{check_frame_size, handle_frame},
};

/// How long in-flight requests get to finish after shutdown starts.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Accepts connections until `shutdown` turns true, then waits (bounded) for open connections to finish the
/// request they are serving.
pub async fn serve(
    listener: TcpListener,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(connection(stream, peer, Arc::clone(&broker), shutdown.clone()));
                }
                Err(e) => {
                    // Usually EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "closing connections that did not finish in time"
        );
        connections.abort_all();
    }
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "could not set TCP_NODELAY");
    }
    let max = broker.config.max_request_bytes;
    loop {
        let size = tokio::select! {
            read = stream.read_i32() => match read {
                Ok(size) => size,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "connection read failed");
                    return;
                }
            },
            _ = shutdown.changed() => return,
        };
        let size = match check_frame_size(size, max) {
            Ok(size) => size,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection");
                return;
            }
        };
        let mut frame = BytesMut::zeroed(size);
        if let Err(e) = stream.read_exact(&mut frame).await {
            tracing::debug!(%peer, error = %e, "connection closed mid-request");
            return;
        }
        match handle_frame(&broker, frame).await {
            Ok(Some(response)) => {
                if let Err(e) = response.write_to(&mut stream).await {
                    tracing::debug!(%peer, error = %e, "writing response failed");
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%peer, error = %error_chain(&e), "closing connection after a bad request");
                return;
            }
        }
    }
}
