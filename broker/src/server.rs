//! The Kafka listener: accepts connections and serves each one's requests in order.
//!
//! A bad frame (too large, too short, undecodable) closes that connection with a log line and nothing else;
//! a panic in a handler ends only its connection's task. Must never let one client stall another.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use bytes::BytesMut;
use tokio::{
    io::AsyncReadExt,
    net::{tcp::OwnedWriteHalf, TcpListener, TcpStream},
    sync::{mpsc, watch},
    task::JoinSet,
};

pub mod splice;

use crate::{
    broker::Broker,
    error_chain,
    handlers::{handle_request, Handled, Pending},
    protocol::check_frame_size,
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
                    if let Some(delay) = broker
                        .quotas
                        .admit_connection(&broker.image().client_quotas, peer.ip())
                    {
                        // Kafka's answer to a connection over its IP's connection_creation_rate: accepted,
                        // then closed after the throttle, so a reconnect loop is slowed rather than fed.
                        tracing::debug!(%peer, delay_ms = delay.as_millis() as u64, "connection over its IP's connection_creation_rate; closing it");
                        connections.spawn(async move {
                            tokio::time::sleep(delay).await;
                            drop(stream);
                        });
                        continue;
                    }
                    let open = broker.metrics.connection_opened();
                    let served = connection(stream, peer, Arc::clone(&broker), shutdown.clone());
                    // The guard lives as long as the task, however the connection ends (even aborted).
                    connections.spawn(async move {
                        let _open = open;
                        served.await;
                    });
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

/// Requests read ahead of their responses on one connection. Clients keep at most five in flight; the bound
/// gives backpressure if one does not.
const MAX_PENDING_RESPONSES: usize = 16;

/// Serves one connection. Requests are read and executed strictly in order; a produce's acknowledgement may
/// wait for its fsync while the next requests are read (their data then shares that fsync), and responses are
/// written in request order by a separate task.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "could not set TCP_NODELAY");
    }
    let (mut reader, writer) = stream.into_split();
    let (responses, pending) = mpsc::channel(MAX_PENDING_RESPONSES);
    let writer_task = tokio::spawn(write_responses(writer, pending, peer));
    let max = broker.config.max_request_bytes;
    loop {
        let size = tokio::select! {
            read = reader.read_i32() => match read {
                Ok(size) => size,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "connection read failed");
                    break;
                }
            },
            _ = shutdown.changed() => break,
        };
        let size = match check_frame_size(size, max) {
            Ok(size) => size,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection");
                break;
            }
        };
        let mut frame = BytesMut::zeroed(size);
        if let Err(e) = reader.read_exact(&mut frame).await {
            tracing::debug!(%peer, error = %e, "connection closed mid-request");
            break;
        }
        match handle_request(&broker, frame, Some(peer)).await {
            Ok(Handled { pending, throttle }) => {
                if responses.send(pending).await.is_err() {
                    break; // the writer gave up: the socket is gone
                }
                if !throttle.is_zero() {
                    // KIP-219: the response goes out now, and the connection is not read until the client
                    // quota throttle has passed, so a client that ignores throttle_time_ms is held back too.
                    tokio::select! {
                        _ = tokio::time::sleep(throttle) => {}
                        _ = shutdown.changed() => break,
                    }
                }
            }
            Err(e) => {
                tracing::warn!(%peer, error = %error_chain(&e), "closing connection after a bad request");
                break;
            }
        }
    }
    // Answer what was already executed, then close.
    drop(responses);
    let _ = writer_task.await;
}

async fn write_responses(
    mut writer: OwnedWriteHalf,
    mut pending: mpsc::Receiver<Pending>,
    peer: SocketAddr,
) {
    while let Some(next) = pending.recv().await {
        let frame = match next.resolve().await {
            Ok(Some(frame)) => frame,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(%peer, error = %error_chain(&e), "closing connection: response could not be built");
                return;
            }
        };
        if let Err(e) = frame.write_to(&mut writer).await {
            tracing::debug!(%peer, error = %e, "writing response failed");
            return;
        }
    }
}
