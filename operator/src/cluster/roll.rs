//! Rolling restarts, one broker at a time. The StatefulSet uses the `OnDelete` strategy, so a changed pod
//! template (a new image, changed broker properties) restarts nothing by itself: each reconcile decides here
//! whether one outdated pod may go now, and the reconciler deletes it. A pod goes only when every broker is
//! Ready (registered and caught up, which `/readyz` means), none is on its way out or back, and no partition
//! is under-replicated, so a restart never takes away the last in-sync copy a partition has beyond its
//! leader; brokers that are not the active controller go first, highest ordinal first, and the active
//! controller last, so the metadata quorum changes leader once. Pure: the caller lists the pods and reads the
//! cluster metadata.

use crate::{crd::PendingRestart, kafka_admin::ClusterMetadata};

/// One broker pod as the reconciler sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodState {
    pub name: String,
    pub ordinal: i32,
    /// Its `controller-revision-hash` label: the StatefulSet revision it was created from.
    pub revision: Option<String>,
    pub ready: bool,
    /// It has a deletion timestamp (it is shutting down).
    pub terminating: bool,
    /// Its broker-properties hash annotation.
    pub config_hash: Option<String>,
    /// Its broker container's image.
    pub image: Option<String>,
}

/// What the StatefulSet asks for now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    pub update_revision: String,
    pub replicas: i32,
    pub config_hash: String,
    pub image: String,
}

/// What the cluster metadata says, as far as a restart needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollView {
    /// Partitions whose ISR is smaller than their replica list.
    pub under_replicated: usize,
    /// The active controller's id, if the brokers know one.
    pub controller: Option<i32>,
}

impl RollView {
    pub fn of(metadata: &ClusterMetadata) -> Self {
        Self {
            under_replicated: metadata
                .topics
                .values()
                .flat_map(|partitions| partitions.values())
                .filter(|p| p.isr.len() < p.replicas.len())
                .count(),
            controller: (metadata.controller_id >= 0).then_some(metadata.controller_id),
        }
    }
}

/// What a reconcile does about outdated pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RollStep {
    /// Every pod runs the current template.
    Idle,
    /// Outdated pods wait: why.
    Wait(String),
    /// Delete this pod now (the StatefulSet recreates it from the current template).
    Restart(String),
}

/// The outdated pods with why each must restart, in the order they will.
pub fn pending(
    pods: &[PodState],
    desired: &Desired,
    controller: Option<i32>,
) -> Vec<PendingRestart> {
    let mut outdated: Vec<&PodState> = pods
        .iter()
        .filter(|p| p.revision.as_deref() != Some(desired.update_revision.as_str()))
        .collect();
    outdated.sort_by_key(|p| (Some(p.ordinal) == controller, std::cmp::Reverse(p.ordinal)));
    outdated
        .into_iter()
        .map(|p| {
            let mut reasons = Vec::new();
            if p.image.as_deref() != Some(desired.image.as_str()) {
                reasons.push(format!("image changes to {}", desired.image));
            }
            if p.config_hash.as_deref() != Some(desired.config_hash.as_str()) {
                reasons.push("broker configuration changed".to_owned());
            }
            if reasons.is_empty() {
                reasons.push("pod template changed".to_owned());
            }
            PendingRestart {
                pod: p.name.clone(),
                reason: reasons.join("; "),
            }
        })
        .collect()
}

/// The next step of a rolling restart; `view` is only consulted when a pod is outdated.
pub fn step(pods: &[PodState], desired: &Desired, view: Result<&RollView, &str>) -> RollStep {
    let controller = view.ok().and_then(|v| v.controller);
    let queue = pending(pods, desired, controller);
    let Some(next) = queue.first() else {
        return RollStep::Idle;
    };
    if let Some(leaving) = pods.iter().find(|p| p.terminating) {
        return RollStep::Wait(format!(
            "waiting for pod {} to stop and come back",
            leaving.name
        ));
    }
    if pods.len() < usize::try_from(desired.replicas).unwrap_or(0) {
        return RollStep::Wait(format!(
            "waiting for all {} pods to exist ({} do)",
            desired.replicas,
            pods.len()
        ));
    }
    if let Some(unready) = pods.iter().find(|p| !p.ready) {
        return RollStep::Wait(format!(
            "waiting for broker {} to be ready (registered and caught up)",
            unready.ordinal
        ));
    }
    let view = match view {
        Ok(view) => view,
        Err(error) => {
            return RollStep::Wait(format!("cannot read the cluster metadata: {error}"));
        }
    };
    if view.under_replicated > 0 {
        return RollStep::Wait(format!(
            "waiting for {} under-replicated partitions to catch up",
            view.under_replicated
        ));
    }
    RollStep::Restart(next.pod.clone())
}

#[cfg(test)]
mod tests;
