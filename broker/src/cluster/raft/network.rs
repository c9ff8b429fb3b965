//! Raft RPCs between controllers, carried by the controller listener's protocol ([`crate::cluster::rpc`]).
//! The client side is openraft's network (one [`PeerNetwork`] per target node, calls sequential, as
//! openraft drives them); the server side hands each request to the local [`MetadataRaft`].

use std::{future::Future, sync::Arc, time::Duration};

use openraft::{
    errors::{NetworkError, RPCError, RaftError, ReplicationClosed, StreamingError, Unreachable},
    network::{v2::RaftNetworkV2, RPCOption, RaftNetworkFactory},
    raft::{
        AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
        TransferLeaderResponse, VoteRequest, VoteResponse,
    },
    type_config::alias::{SnapshotMetaOf, SnapshotOf, VoteOf},
    OptionalSend,
};
use serde::{Deserialize, Serialize};

use super::types::{MetadataRaft, MetadataSnapshotData, QuorumNode, RaftNodeId, TypeConfig};
use crate::cluster::rpc::{RpcClient, RpcError, RpcIdentity, RpcRequest, RpcResponse};

/// A Raft request as it crosses the controller listener. Opaque outside `cluster/raft/`.
#[derive(Debug, Serialize, Deserialize)]
pub struct RaftRpc(RaftRequest);

#[derive(Debug, Serialize, Deserialize)]
enum RaftRequest {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<TypeConfig>),
    PreVote(VoteRequest<TypeConfig>),
    Snapshot {
        vote: VoteOf<TypeConfig>,
        meta: SnapshotMetaOf<TypeConfig>,
        data: MetadataSnapshotData,
    },
    TransferLeader(TransferLeaderRequest<TypeConfig>),
}

/// The answer to a [`RaftRpc`].
#[derive(Debug, Serialize, Deserialize)]
pub struct RaftRpcReply(RaftReply);

#[derive(Debug, Serialize, Deserialize)]
enum RaftReply {
    Append(Result<AppendEntriesResponse<TypeConfig>, RaftError<TypeConfig>>),
    Vote(Result<VoteResponse<TypeConfig>, RaftError<TypeConfig>>),
    /// Fatal errors of the receiving node travel as text: the sender can only back off.
    Snapshot(Result<SnapshotResponse<TypeConfig>, String>),
    TransferLeader(Result<TransferLeaderResponse<TypeConfig>, String>),
}

/// Answers one Raft request with the local node.
pub async fn serve(raft: &MetadataRaft, request: RaftRpc) -> RaftRpcReply {
    RaftRpcReply(match request.0 {
        RaftRequest::Append(rpc) => RaftReply::Append(raft.append_entries(rpc).await),
        RaftRequest::Vote(rpc) => RaftReply::Vote(raft.vote(rpc).await),
        RaftRequest::PreVote(rpc) => RaftReply::Vote(raft.pre_vote(rpc).await),
        RaftRequest::Snapshot { vote, meta, data } => {
            let snapshot = SnapshotOf::<TypeConfig, MetadataSnapshotData> {
                meta,
                snapshot: data,
            };
            RaftReply::Snapshot(
                raft.install_full_snapshot(vote, snapshot)
                    .await
                    .map_err(|e| e.to_string()),
            )
        }
        RaftRequest::TransferLeader(rpc) => RaftReply::TransferLeader(
            raft.handle_transfer_leader(rpc)
                .await
                .map_err(|e| e.to_string()),
        ),
    })
}

/// openraft's network factory: a [`PeerNetwork`] per target, each with its own connection.
#[derive(Debug, Clone)]
pub struct MetadataNetwork {
    identity: Arc<RpcIdentity>,
}

impl MetadataNetwork {
    pub fn new(identity: Arc<RpcIdentity>) -> Self {
        Self { identity }
    }
}

impl RaftNetworkFactory<TypeConfig> for MetadataNetwork {
    type Network = PeerNetwork;

    async fn new_client(&mut self, target: RaftNodeId, node: &QuorumNode) -> Self::Network {
        PeerNetwork {
            target,
            client: RpcClient::new(node.controller_addr.clone(), Arc::clone(&self.identity)),
        }
    }
}

#[derive(Debug)]
pub struct PeerNetwork {
    target: RaftNodeId,
    client: RpcClient,
}

impl PeerNetwork {
    async fn call(
        &mut self,
        request: RaftRequest,
        timeout: Duration,
    ) -> Result<RaftReply, RpcError> {
        match self
            .client
            .call(&RpcRequest::Raft(RaftRpc(request)), timeout)
            .await?
        {
            RpcResponse::Raft(RaftRpcReply(reply)) => Ok(reply),
            _ => Err(RpcError::UnexpectedReply {
                addr: self.client.addr().to_owned(),
            }),
        }
    }
}

fn rpc_error(error: &RpcError) -> RPCError<TypeConfig> {
    if error.is_unreachable() {
        RPCError::Unreachable(Unreachable::new(error))
    } else {
        RPCError::Network(NetworkError::new(error))
    }
}

fn mismatched(target: RaftNodeId) -> RPCError<TypeConfig> {
    RPCError::Network(NetworkError::from_string(format!(
        "node {target} answered a different kind of Raft request"
    )))
}

/// A remote Raft error (the peer's node is shutting down, say) is reported like an unreachable node: the
/// leader backs off and tries again.
fn remote_error(target: RaftNodeId, error: &RaftError<TypeConfig>) -> RPCError<TypeConfig> {
    RPCError::Unreachable(Unreachable::from_string(format!(
        "node {target} failed the request: {error}"
    )))
}

impl RaftNetworkV2<TypeConfig> for PeerNetwork {
    type SnapshotData = MetadataSnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self
            .call(RaftRequest::Append(rpc), option.soft_ttl())
            .await
            .map_err(|e| rpc_error(&e))?
        {
            RaftReply::Append(Ok(response)) => Ok(response),
            RaftReply::Append(Err(e)) => Err(remote_error(self.target, &e)),
            _ => Err(mismatched(self.target)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self
            .call(RaftRequest::Vote(rpc), option.soft_ttl())
            .await
            .map_err(|e| rpc_error(&e))?
        {
            RaftReply::Vote(Ok(response)) => Ok(response),
            RaftReply::Vote(Err(e)) => Err(remote_error(self.target, &e)),
            _ => Err(mismatched(self.target)),
        }
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self
            .call(RaftRequest::PreVote(rpc), option.soft_ttl())
            .await
            .map_err(|e| rpc_error(&e))?
        {
            RaftReply::Vote(Ok(response)) => Ok(response),
            RaftReply::Vote(Err(e)) => Err(remote_error(self.target, &e)),
            _ => Err(mismatched(self.target)),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<TypeConfig>,
        snapshot: SnapshotOf<TypeConfig, Self::SnapshotData>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let request = RaftRequest::Snapshot {
            vote,
            meta: snapshot.meta,
            data: snapshot.snapshot,
        };
        // A snapshot is one frame; give it the hard limit rather than the per-request one.
        let sent = self.call(request, option.hard_ttl());
        tokio::pin!(cancel);
        let reply = tokio::select! {
            closed = &mut cancel => return Err(StreamingError::Closed(closed)),
            reply = sent => reply,
        };
        match reply.map_err(|e| match rpc_error(&e) {
            RPCError::Unreachable(u) => StreamingError::Unreachable(u),
            RPCError::Network(n) => StreamingError::Network(n),
            _ => StreamingError::Network(NetworkError::new(&e)),
        })? {
            RaftReply::Snapshot(Ok(response)) => Ok(response),
            RaftReply::Snapshot(Err(e)) => {
                Err(StreamingError::Unreachable(Unreachable::from_string(
                    format!("node {} could not install the snapshot: {e}", self.target),
                )))
            }
            _ => Err(StreamingError::Network(NetworkError::from_string(format!(
                "node {} answered a different kind of Raft request",
                self.target
            )))),
        }
    }

    async fn transfer_leader(
        &mut self,
        rpc: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self
            .call(RaftRequest::TransferLeader(rpc), option.soft_ttl())
            .await
            .map_err(|e| rpc_error(&e))?
        {
            RaftReply::TransferLeader(Ok(response)) => Ok(response),
            RaftReply::TransferLeader(Err(e)) => Err(RPCError::Unreachable(
                Unreachable::from_string(format!("node {} failed: {e}", self.target)),
            )),
            _ => Err(mismatched(self.target)),
        }
    }
}
