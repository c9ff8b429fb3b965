//! Leader election on a `coordination.k8s.io/v1` Lease, with client-go's semantics, so two operator replicas never
//! both act.
//!
//! - Every write is a `replace` carrying the `resourceVersion` that was read: two candidates racing for a free or
//!   expired Lease cannot both win (the second gets 409 Conflict).
//! - Expiry is judged on this process's monotonic clock, from the moment it last saw the Lease record change, never
//!   by comparing the holder's `renewTime` with the local wall clock, so clock skew between nodes does not matter.
//! - The holder renews every `retry_period`; when no renewal has succeeded for `renew_deadline` (shorter than
//!   `lease_duration`), or the Lease shows another holder, leadership is lost and the caller must stop acting at
//!   once (the binary exits non-zero, as controller-runtime does, and Kubernetes restarts it).
//! - On shutdown the holder releases the Lease (no holder, 1 s duration), so a standby takes over at once.
//!
//! Why not a crate: `kube-leader-election` 0.44 requires kube 4; `kube-lease-manager` 0.13 supports kube 5 but takes
//! over an expired Lease with an unguarded merge patch followed by an apply, which leaves a window for two holders,
//! and a holder whose renewals fail keeps reporting leadership until a renewal succeeds.
//!
//! This module only manages the Lease; it never starts or stops controllers.

use std::time::Duration;

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::Timestamp,
};
use kube::{api::PostParams, Api, Client};
use tokio::time::Instant;

/// Timing of the election (client-go's defaults for controllers).
#[derive(Clone, Debug)]
pub struct Timing {
    /// How long a Lease stays valid after its last observed change.
    pub lease_duration: Duration,
    /// How long the holder keeps acting without a successful renewal (shorter than `lease_duration`).
    pub renew_deadline: Duration,
    /// Interval between renewals (holder) and attempts (candidates).
    pub retry_period: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Why leadership ended.
#[derive(Debug, thiserror::Error)]
pub enum Lost {
    /// Another candidate holds the Lease now.
    #[error("the Lease is held by {holder}")]
    TakenBy { holder: String },
    /// No renewal succeeded within the renew deadline.
    #[error("no renewal succeeded within {deadline:?}")]
    RenewDeadline {
        deadline: Duration,
        #[source]
        last_error: Option<kube::Error>,
    },
}

/// The last Lease record seen, and when (on the monotonic clock) it was first seen.
#[derive(Debug)]
struct Observed {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    lease_duration: Duration,
    at: Instant,
}

/// One candidate for leadership of one Lease.
#[derive(Debug)]
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: Timing,
    observed: Option<Observed>,
}

impl LeaderElector {
    /// A candidate called `identity` (unique per process) for the Lease `namespace/name`.
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        timing: Timing,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
            timing,
            observed: None,
        }
    }

    /// This candidate's identity (the Lease's `holderIdentity` while it leads).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Waits until this candidate holds the Lease. API errors are logged and retried; cancel the future to give up.
    pub async fn acquire(&mut self) {
        let mut reported_holder: Option<String> = None;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => return,
                Ok(false) => {
                    let holder = self.observed.as_ref().and_then(|o| o.holder.clone());
                    if holder != reported_holder {
                        tracing::info!(
                            lease = %self.name,
                            holder = holder.as_deref().unwrap_or_default(),
                            "waiting for the leader-election Lease"
                        );
                        reported_holder = holder;
                    }
                }
                Err(error) => {
                    tracing::warn!(lease = %self.name, error = %error, "cannot acquire the leader-election Lease");
                }
            }
            tokio::time::sleep(self.timing.retry_period).await;
        }
    }

    /// Renews the Lease until leadership is lost; returns why. Cancel the future (and call [`Self::release`]) to
    /// step down.
    pub async fn hold(&mut self) -> Lost {
        let mut renewed = Instant::now();
        let mut last_error = None;
        loop {
            tokio::time::sleep(self.timing.retry_period).await;
            let deadline = renewed + self.timing.renew_deadline;
            let attempt = tokio::time::timeout_at(deadline, self.try_acquire_or_renew()).await;
            match attempt {
                Ok(Ok(true)) => {
                    renewed = Instant::now();
                    last_error = None;
                }
                Ok(Ok(false)) => {
                    let holder = self
                        .observed
                        .as_ref()
                        .and_then(|o| o.holder.clone())
                        .unwrap_or_default();
                    return Lost::TakenBy { holder };
                }
                Ok(Err(error)) => {
                    tracing::warn!(lease = %self.name, error = %error, "cannot renew the leader-election Lease");
                    last_error = Some(error);
                }
                Err(_elapsed) => {}
            }
            if Instant::now() >= deadline {
                return Lost::RenewDeadline {
                    deadline: self.timing.renew_deadline,
                    last_error,
                };
            }
        }
    }

    /// Gives the Lease up if this candidate holds it, so another takes over without waiting for it to expire.
    pub async fn release(&mut self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        let now = MicroTime(Timestamp::now());
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.acquire_time = Some(now.clone());
        spec.renew_time = Some(now);
        // The resourceVersion read above guards the write: a Lease taken over meanwhile is left alone.
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await?;
        self.observed = None;
        Ok(())
    }

    /// One round of client-go's `tryAcquireOrRenew`: `Ok(true)` when this candidate holds the Lease afterwards.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now = MicroTime(Timestamp::now());
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(now.clone(), now, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.observe(&created);
                    Ok(true)
                }
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                Err(error) => Err(error),
            };
        };
        self.observe(&lease);
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty());
        let mine = holder == Some(self.identity.as_str());
        if let (Some(_), false) = (holder, mine) {
            if !self.observed_expired() {
                return Ok(false);
            }
        }
        let transitions = spec.lease_transitions.unwrap_or(0);
        lease.spec = Some(if mine {
            self.spec(
                spec.acquire_time.unwrap_or_else(|| now.clone()),
                now,
                transitions,
            )
        } else {
            self.spec(now.clone(), now, transitions.saturating_add(1))
        });
        // `lease.metadata.resourceVersion` is the one just read: a concurrent writer makes this a 409.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(stored) => {
                self.observe(&stored);
                Ok(true)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(error),
        }
    }

    fn spec(&self, acquire: MicroTime, renew: MicroTime, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.timing.lease_duration.as_secs()).unwrap_or(i32::MAX),
            ),
            acquire_time: Some(acquire),
            renew_time: Some(renew),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// Records `lease`; the expiry clock restarts only when the record changed.
    fn observe(&mut self, lease: &Lease) {
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.filter(|h| !h.is_empty());
        let lease_duration = Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
        );
        let unchanged = self.observed.as_ref().is_some_and(|o| {
            o.holder == holder
                && o.renew_time == spec.renew_time
                && o.lease_duration == lease_duration
        });
        if !unchanged {
            self.observed = Some(Observed {
                holder,
                renew_time: spec.renew_time,
                lease_duration,
                at: Instant::now(),
            });
        }
    }

    fn observed_expired(&self) -> bool {
        self.observed
            .as_ref()
            .is_none_or(|o| o.at + o.lease_duration <= Instant::now())
    }
}
