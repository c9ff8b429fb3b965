//! The controller listener's private protocol: Raft RPCs between controllers, and the controller calls
//! (registration, heartbeats, forwarded admin operations) that any broker sends to the active controller.
//!
//! Frames are a 4-byte big-endian length and a JSON body. Each connection opens with a [`Hello`] naming the
//! cluster id, so a broker formatted for another cluster is refused with a clear error instead of joining.
//! Requests on one connection are answered in order, one at a time; a malformed frame closes that
//! connection with a log line and nothing else. Kafka clients never speak this protocol (the data plane
//! between brokers is Kafka's own Fetch), so JSON's cost is paid only on metadata-sized messages.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinSet,
};

use super::{
    controller::{calls::CallReply, ControllerCall},
    raft::network::{RaftRpc, RaftRpcReply},
};

/// Large enough for a metadata snapshot of a big cluster; anything larger is a bug or an attack.
pub const MAX_FRAME_BYTES: usize = 256 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("connecting to controller listener {addr}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connecting to controller listener {addr} timed out")]
    ConnectTimeout { addr: String },
    #[error("controller connection to {addr} failed")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("frame of {0} bytes is larger than the {MAX_FRAME_BYTES}-byte limit")]
    FrameTooLarge(usize),
    #[error("malformed controller frame")]
    Malformed(#[source] serde_json::Error),
    #[error("encoding a controller frame")]
    Encode(#[source] serde_json::Error),
    #[error("{addr} refused the connection: {reason}")]
    Refused { addr: String, reason: String },
    #[error("no answer from {addr} within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("{addr} answered a different kind of request")]
    UnexpectedReply { addr: String },
}

impl RpcError {
    /// Whether the peer could not be reached at all (openraft backs off on these rather than retrying).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. } | Self::ConnectTimeout { .. } | Self::Refused { .. }
        )
    }
}

/// The first frame on every connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    pub cluster_id: String,
    pub node_id: i32,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum RpcRequest {
    Raft(RaftRpc),
    Controller(ControllerCall),
    /// The voters of the metadata quorum as the asked node knows them: how a broker configured with
    /// `controller.quorum.bootstrap.servers` (and no voters of its own) finds the quorum.
    DescribeVoters,
    /// The voters' metadata log directory ids (KIP-853), where known: how a controller that joins through
    /// the bootstrap servers tells whether the quorum still counts an earlier incarnation of it as a voter.
    DescribeVoterDirectories,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum RpcResponse {
    Raft(RaftRpcReply),
    Controller(CallReply),
    /// The hello was refused (another cluster); the connection closes after it.
    Refused(String),
    /// The hello was accepted.
    Welcome,
    /// Node id -> controller listener address; empty while the node knows no membership yet.
    Voters(std::collections::BTreeMap<crate::cluster::image::NodeId, String>),
    /// Voter id -> its directory id, None where the membership does not record one.
    VoterDirectories(std::collections::BTreeMap<crate::cluster::image::NodeId, Option<String>>),
}

async fn write_frame<T: Serialize>(stream: &mut TcpStream, value: &T) -> Result<(), FrameError> {
    let body = serde_json::to_vec(value).map_err(FrameError::Encode)?;
    if body.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(body.len()));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
    frame.extend_from_slice(&body);
    stream.write_all(&frame).await.map_err(FrameError::Io)
}

async fn read_frame<T: DeserializeOwned>(stream: &mut TcpStream) -> Result<T, FrameError> {
    let length = stream.read_u32().await.map_err(FrameError::Io)? as usize;
    if length > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(length));
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.map_err(FrameError::Io)?;
    serde_json::from_slice(&body).map_err(FrameError::Malformed)
}

#[derive(Debug, thiserror::Error)]
enum FrameError {
    #[error(transparent)]
    Io(std::io::Error),
    #[error("frame of {0} bytes is larger than the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("malformed frame")]
    Malformed(#[source] serde_json::Error),
    #[error("encoding frame")]
    Encode(#[source] serde_json::Error),
}

impl FrameError {
    fn at(self, addr: &str) -> RpcError {
        match self {
            Self::Io(source) => RpcError::Io {
                addr: addr.to_owned(),
                source,
            },
            Self::TooLarge(n) => RpcError::FrameTooLarge(n),
            Self::Malformed(e) => RpcError::Malformed(e),
            Self::Encode(e) => RpcError::Encode(e),
        }
    }
}

/// Who this node is on the controller protocol.
#[derive(Debug, Clone)]
pub struct RpcIdentity {
    pub cluster_id: String,
    pub node_id: i32,
    /// Outbound connections bind to this address (with port 0) when set, so that faults injected between
    /// loopback addresses (`ip rule ... blackhole`) see each broker's own source address.
    pub bind_source: Option<std::net::IpAddr>,
}

/// One connection to one peer's controller listener, opened on first use and reopened after any error.
/// Calls are sequential: the owner holds `&mut self` for the duration of a call.
#[derive(Debug)]
pub struct RpcClient {
    addr: String,
    identity: Arc<RpcIdentity>,
    stream: Option<TcpStream>,
}

impl RpcClient {
    pub fn new(addr: String, identity: Arc<RpcIdentity>) -> Self {
        Self {
            addr,
            identity,
            stream: None,
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `request` and waits at most `timeout` for its answer. Any failure drops the connection, so a
    /// late answer can never be taken for the next request's.
    pub async fn call(
        &mut self,
        request: &RpcRequest,
        timeout: Duration,
    ) -> Result<RpcResponse, RpcError> {
        let result = tokio::time::timeout(timeout, self.call_inner(request)).await;
        match result {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => {
                self.stream = None;
                Err(e)
            }
            Err(_) => {
                self.stream = None;
                Err(RpcError::Timeout {
                    addr: self.addr.clone(),
                    timeout,
                })
            }
        }
    }

    async fn call_inner(&mut self, request: &RpcRequest) -> Result<RpcResponse, RpcError> {
        if self.stream.is_none() {
            self.stream = Some(self.connect().await?);
        }
        let addr = self.addr.clone();
        let Some(stream) = self.stream.as_mut() else {
            return Err(RpcError::ConnectTimeout { addr });
        };
        write_frame(stream, request)
            .await
            .map_err(|e| e.at(&addr))?;
        read_frame(stream).await.map_err(|e| e.at(&addr))
    }

    async fn connect(&self) -> Result<TcpStream, RpcError> {
        let addr = self.addr.clone();
        let connect = async {
            let target = tokio::net::lookup_host(&addr)
                .await
                .map_err(|source| RpcError::Connect {
                    addr: addr.clone(),
                    source,
                })?
                .next()
                .ok_or_else(|| RpcError::Connect {
                    addr: addr.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "the name resolves to no address",
                    ),
                })?;
            let socket = if target.is_ipv4() {
                tokio::net::TcpSocket::new_v4()
            } else {
                tokio::net::TcpSocket::new_v6()
            }
            .map_err(|source| RpcError::Connect {
                addr: addr.clone(),
                source,
            })?;
            if let Some(ip) = self.identity.bind_source {
                if ip.is_ipv4() == target.is_ipv4() {
                    socket
                        .bind(SocketAddr::new(ip, 0))
                        .map_err(|source| RpcError::Connect {
                            addr: addr.clone(),
                            source,
                        })?;
                }
            }
            socket
                .connect(target)
                .await
                .map_err(|source| RpcError::Connect {
                    addr: addr.clone(),
                    source,
                })
        };
        let mut stream = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| RpcError::ConnectTimeout { addr: addr.clone() })??;
        let _ = stream.set_nodelay(true);
        let hello = Hello {
            cluster_id: self.identity.cluster_id.clone(),
            node_id: self.identity.node_id,
        };
        write_frame(&mut stream, &hello)
            .await
            .map_err(|e| e.at(&addr))?;
        match read_frame(&mut stream).await.map_err(|e| e.at(&addr))? {
            RpcResponse::Welcome => Ok(stream),
            RpcResponse::Refused(reason) => {
                tracing::error!(peer = %addr, %reason, "controller listener refused this node");
                Err(RpcError::Refused { addr, reason })
            }
            _ => Err(RpcError::UnexpectedReply { addr }),
        }
    }
}

/// What answers requests arriving on the controller listener.
pub trait RpcHandler: Send + Sync + std::fmt::Debug + 'static {
    fn handle(
        &self,
        request: RpcRequest,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = RpcResponse> + Send + '_>>;

    /// Node `node` opened a connection here (its hello was accepted).
    fn peer_connected(&self, _node: i32) {}

    /// A connection of node `node` ended, for whatever reason.
    fn peer_disconnected(&self, _node: i32) {}
}

/// Reports a node's connection as ended however [`connection`] returns.
struct PeerConnection {
    handler: Arc<dyn RpcHandler>,
    node: i32,
}

impl PeerConnection {
    fn open(handler: Arc<dyn RpcHandler>, node: i32) -> Self {
        handler.peer_connected(node);
        Self { handler, node }
    }
}

impl Drop for PeerConnection {
    fn drop(&mut self) {
        self.handler.peer_disconnected(self.node);
    }
}

/// Serves the controller listener until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    identity: Arc<RpcIdentity>,
    handler: Arc<dyn RpcHandler>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(connection(stream, peer, Arc::clone(&identity), Arc::clone(&handler)));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "controller listener accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    connections.shutdown().await;
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    identity: Arc<RpcIdentity>,
    handler: Arc<dyn RpcHandler>,
) {
    let hello: Hello = match read_frame(&mut stream).await {
        Ok(hello) => hello,
        Err(e) => {
            tracing::warn!(%peer, error = %crate::error_chain(&e), "closing controller connection: bad hello");
            return;
        }
    };
    if hello.cluster_id != identity.cluster_id {
        let reason = format!(
            "node {} belongs to cluster {:?} but this is cluster {:?} (check the -t id given to `tributary-broker format`)",
            hello.node_id, hello.cluster_id, identity.cluster_id
        );
        tracing::error!(%peer, %reason, "refusing a node of another cluster");
        let _ = write_frame(&mut stream, &RpcResponse::Refused(reason)).await;
        return;
    }
    if write_frame(&mut stream, &RpcResponse::Welcome)
        .await
        .is_err()
    {
        return;
    }
    let _peer = PeerConnection::open(Arc::clone(&handler), hello.node_id);
    loop {
        let request: RpcRequest = match read_frame(&mut stream).await {
            Ok(request) => request,
            Err(FrameError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return,
            Err(e) => {
                tracing::warn!(%peer, node = hello.node_id, error = %crate::error_chain(&e), "closing controller connection");
                return;
            }
        };
        let response = handler.handle(request).await;
        if let Err(e) = write_frame(&mut stream, &response).await {
            tracing::debug!(%peer, error = %crate::error_chain(&e), "controller connection closed while answering");
            return;
        }
    }
}

/// The voters as the bootstrap servers tell them: their controller addresses and, where the answering node
/// says, their directory ids.
#[derive(Debug, Clone)]
pub struct DiscoveredVoters {
    pub addresses: std::collections::BTreeMap<crate::cluster::image::NodeId, String>,
    pub directories:
        Option<std::collections::BTreeMap<crate::cluster::image::NodeId, Option<String>>>,
}

/// Asks the controllers at `bootstrap` (`controller.quorum.bootstrap.servers`), in turn, for the quorum's
/// voters until one knows them, for at most `patience`: a broker that does not vote may start before the
/// controllers have formed the quorum.
pub async fn discover_voters(
    bootstrap: &[(String, u16)],
    identity: Arc<RpcIdentity>,
    patience: Duration,
) -> Result<DiscoveredVoters, String> {
    let deadline = tokio::time::Instant::now() + patience;
    let mut last_error = String::from("no controller.quorum.bootstrap.servers");
    loop {
        for (host, port) in bootstrap {
            let mut client = RpcClient::new(format!("{host}:{port}"), Arc::clone(&identity));
            match client
                .call(&RpcRequest::DescribeVoters, Duration::from_secs(2))
                .await
            {
                Ok(RpcResponse::Voters(addresses)) if !addresses.is_empty() => {
                    let directories = match client
                        .call(
                            &RpcRequest::DescribeVoterDirectories,
                            Duration::from_secs(2),
                        )
                        .await
                    {
                        Ok(RpcResponse::VoterDirectories(directories)) => Some(directories),
                        _ => None,
                    };
                    return Ok(DiscoveredVoters {
                        addresses,
                        directories,
                    });
                }
                Ok(RpcResponse::Voters(_)) => {
                    last_error = format!("{host}:{port} knows no voters yet");
                }
                Ok(RpcResponse::Refused(reason)) => return Err(format!("{host}:{port}: {reason}")),
                Ok(other) => last_error = format!("{host}:{port} answered {other:?}"),
                Err(e) => last_error = crate::error_chain(&e),
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(last_error);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
