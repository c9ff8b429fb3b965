//! This broker as a member of a cluster: it answers the controller listener (Raft RPCs, and controller calls
//! when it is the active controller), registers itself, heartbeats, and shuts down in a controlled way.
//!
//! The broker side of KIP-631's lifecycle: register (fenced, new epoch) -> heartbeat every
//! `broker.heartbeat.interval.ms` with the index of the metadata it has applied -> the controller unfences
//! it once that index reaches its registration -> on SIGTERM, heartbeat `want_shut_down` until the
//! controller has moved its leaderships away.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{net::TcpListener, sync::watch};

use super::{
    controller::{calls::Heartbeat, CallOutput, Controller, ControllerCall},
    image::BrokerRegistration,
    raft::quorum::MetadataQuorum,
    rpc::{self, RpcHandler, RpcIdentity, RpcRequest, RpcResponse},
};
use crate::storage_health::StorageHealth;

/// Where this broker stands with the active controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemberState {
    /// The broker epoch of the current registration, once registered.
    pub epoch: Option<i64>,
    /// Fenced brokers lead nothing and are not offered to clients; a new registration starts fenced.
    pub fenced: bool,
    /// A controller-only node (`process.roles=controller`), which never registers as a broker, serves
    /// once it follows a metadata quorum that has a leader.
    pub controller_serving: bool,
}

impl MemberState {
    pub fn in_service(&self) -> bool {
        (self.epoch.is_some() && !self.fenced) || self.controller_serving
    }
}

/// What this broker's heartbeats are made of besides its registration.
#[derive(Debug)]
pub struct HeartbeatSettings {
    /// `broker.heartbeat.interval.ms`.
    pub interval: Duration,
    /// Reported in every heartbeat; a change is reported at once.
    pub storage: Arc<StorageHealth>,
}

/// How this node follows the metadata log, as it tells the controller when it registers.
#[derive(Debug, Clone)]
pub struct MetadataFollowing {
    /// Set on a node that may not vote (or not yet): the controller-protocol address the leader replicates
    /// the metadata log to, as to a learner.
    pub addr: Option<String>,
    /// This node's metadata log directory id.
    pub directory_id: String,
    /// False on a controller-only node: it follows the log and may vote, but never registers as a broker,
    /// so no replica is placed on it and it is not offered to clients.
    pub broker: bool,
}

#[derive(Debug)]
pub struct ClusterMember {
    quorum: Arc<MetadataQuorum>,
    controller: Arc<Controller>,
    identity: Arc<RpcIdentity>,
    registration: BrokerRegistration,
    following: MetadataFollowing,
    heartbeats: HeartbeatSettings,
    state: watch::Sender<MemberState>,
    /// Taken by [`ClusterMember::serve`].
    listener: std::sync::Mutex<Option<TcpListener>>,
}

impl ClusterMember {
    pub fn new(
        quorum: Arc<MetadataQuorum>,
        controller: Arc<Controller>,
        identity: Arc<RpcIdentity>,
        registration: BrokerRegistration,
        following: MetadataFollowing,
        heartbeats: HeartbeatSettings,
        listener: TcpListener,
    ) -> Self {
        Self {
            quorum,
            controller,
            identity,
            registration,
            following,
            heartbeats,
            state: watch::Sender::new(MemberState::default()),
            listener: std::sync::Mutex::new(Some(listener)),
        }
    }

    pub fn quorum(&self) -> &Arc<MetadataQuorum> {
        &self.quorum
    }

    pub fn state(&self) -> watch::Receiver<MemberState> {
        self.state.subscribe()
    }

    /// Serves the controller listener until `shutdown`.
    pub async fn serve(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        let listener = self
            .listener
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(listener) = listener {
            let identity = Arc::clone(&self.identity);
            rpc::serve(listener, identity, self, shutdown).await;
        }
    }

    /// Registers, then heartbeats until `shutdown`; registers again whenever the controller no longer knows
    /// this incarnation (it was fenced and re-registered by a newer one, or the log was rebuilt).
    pub async fn run_lifecycle(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut interval = tokio::time::interval(self.heartbeats.interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut storage = self.heartbeats.storage.subscribe();
        loop {
            // Biased, and every call raced against shutdown: a heartbeat to an unreachable controller retries
            // for seconds, and a stopping broker must not wait for it. A full disk is reported at once, so
            // leaderships leave this broker before producers time out.
            tokio::select! {
                biased;
                _ = shutdown.changed() => return,
                _ = interval.tick() => {}
                changed = storage.changed() => if changed.is_err() { return },
            }
            if *shutdown.borrow() {
                return;
            }
            let step = self.lifecycle_step();
            tokio::select! {
                biased;
                _ = shutdown.changed() => return,
                () = step => {}
            }
        }
    }

    async fn lifecycle_step(&self) {
        if !self.following.broker {
            self.controller_step().await;
            return;
        }
        let state = *self.state.borrow();
        let Some(epoch) = state.epoch else {
            self.register().await;
            return;
        };
        match self.heartbeat(epoch, false).await {
            Ok((true, is_fenced, _)) => {
                if is_fenced != state.fenced {
                    tracing::info!(epoch, fenced = is_fenced, "broker fencing changed");
                }
                self.state.send_replace(MemberState {
                    epoch: Some(epoch),
                    fenced: is_fenced,
                    controller_serving: false,
                });
            }
            Ok((false, _, _)) => {
                tracing::warn!(
                    epoch,
                    "the controller no longer knows this registration; registering again"
                );
                self.state.send_replace(MemberState::default());
            }
            Err(e) => {
                tracing::warn!(error = %crate::error_chain(&e), "heartbeat failed");
            }
        }
    }

    /// A controller-only node's lifecycle: one that does not vote asks the active controller to replicate
    /// the log to it (a broker asks by registering), and the node serves while its quorum has a leader.
    async fn controller_step(&self) {
        let voter = self.quorum.voters().contains(&self.identity.node_id);
        if !voter && !self.quorum.follows_log() {
            if let Some(addr) = &self.following.addr {
                let asked = self
                    .controller
                    .call(ControllerCall::FollowMetadataLog {
                        id: self.identity.node_id,
                        addr: addr.clone(),
                        directory_id: Some(self.following.directory_id.clone()),
                    })
                    .await;
                if let Err(e) = asked {
                    tracing::warn!(error = %crate::error_chain(&e), "asking to follow the metadata log failed; will retry");
                }
            }
        }
        let serving = self.quorum.leader().is_some() && (voter || self.quorum.follows_log());
        if serving != self.state.borrow().controller_serving {
            tracing::info!(
                serving,
                "controller-only node: following a quorum with a leader"
            );
            self.state.send_replace(MemberState {
                controller_serving: serving,
                ..MemberState::default()
            });
        }
    }

    async fn register(&self) {
        match self
            .controller
            .call(ControllerCall::RegisterBroker {
                registration: self.registration.clone(),
                metadata_addr: self.following.addr.clone(),
                directory_id: Some(self.following.directory_id.clone()),
            })
            .await
        {
            Ok(CallOutput::Registered { epoch }) => {
                tracing::info!(epoch, "registered with the controller");
                self.state.send_replace(MemberState {
                    epoch: Some(epoch),
                    fenced: true,
                    controller_serving: false,
                });
            }
            Ok(other) => tracing::warn!(answer = ?other, "unexpected answer to registration"),
            Err(e) => {
                tracing::warn!(error = %crate::error_chain(&e), "registration failed; will retry")
            }
        }
    }

    /// One heartbeat: `(registered, is_fenced, should_shut_down)`.
    async fn heartbeat(
        &self,
        epoch: i64,
        want_shut_down: bool,
    ) -> Result<(bool, bool, bool), super::controller::TopicError> {
        let call = ControllerCall::BrokerHeartbeat(Heartbeat {
            id: self.registration.id,
            epoch,
            metadata_offset: self.quorum.applied_index(),
            want_shut_down,
            storage_full: self.heartbeats.storage.is_full(),
        });
        match self.controller.call(call).await? {
            CallOutput::Heartbeat {
                registered,
                is_fenced,
                should_shut_down,
            } => Ok((registered, is_fenced, should_shut_down)),
            other => Err(super::controller::TopicError::Internal(format!(
                "unexpected answer to a heartbeat: {other:?}"
            ))),
        }
    }

    /// Controlled shutdown: asks the controller to move this broker's leaderships away and take it out of
    /// the ISRs, waits (at most `timeout`) until it has, then hands over metadata leadership if this node
    /// holds it. The broker stops afterwards either way; a broker that cannot reach the controller is
    /// fenced after its session times out, as if it had crashed.
    pub async fn controlled_shutdown(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        if let Some(epoch) = self.state.borrow().epoch {
            while Instant::now() < deadline {
                match tokio::time::timeout(
                    deadline.saturating_duration_since(Instant::now()),
                    self.heartbeat(epoch, true),
                )
                .await
                {
                    Ok(Ok((_, _, true))) => {
                        tracing::info!("controlled shutdown: leaderships moved away");
                        break;
                    }
                    Ok(Ok(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %crate::error_chain(&e), "controlled shutdown heartbeat failed");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(_) => break,
                }
            }
        }
        self.quorum
            .resign(deadline.saturating_duration_since(Instant::now()))
            .await;
    }
}

impl RpcHandler for ClusterMember {
    fn handle(
        &self,
        request: RpcRequest,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = RpcResponse> + Send + '_>> {
        Box::pin(async move {
            match request {
                RpcRequest::Raft(rpc) => RpcResponse::Raft(self.quorum.serve(rpc).await),
                RpcRequest::Controller(call) => {
                    RpcResponse::Controller(self.controller.execute(call).await)
                }
                RpcRequest::DescribeVoters => RpcResponse::Voters(self.quorum.voter_addresses()),
                RpcRequest::DescribeVoterDirectories => {
                    RpcResponse::VoterDirectories(self.quorum.voter_directories())
                }
            }
        })
    }

    fn peer_connected(&self, node: i32) {
        self.controller.peer_connected(node);
    }

    fn peer_disconnected(&self, node: i32) {
        self.controller.peer_disconnected(node);
    }
}
