//! The I/O half of the KafkaCluster pipeline: validate and build (pure), then server-side apply of every desired
//! object in a fixed order, then the status. An invalid spec is not an error of the controller: it becomes a
//! `Degraded` condition and a Warning Event, and the reconcile waits for the next change.

use std::{collections::BTreeMap, sync::Arc};

use k8s_openapi::{
    api::{
        apps::v1::StatefulSet,
        core::v1::{ConfigMap, Pod, Service},
        policy::v1::PodDisruptionBudget,
    },
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
    NamespaceResourceScope,
};
use kube::{
    api::{DeleteParams, ListParams, Patch, PatchParams},
    runtime::{
        controller::Action,
        events::{Event, EventType},
    },
    Api, Resource, ResourceExt,
};
use serde::{de::DeserializeOwned, Serialize};

use super::{
    build::{
        bootstrap_address, build, controller_endpoint, live_broker_config, pod_selector,
        ObjectNames, CONFIG_HASH_ANNOTATION, CONTAINER_NAME, FIELD_MANAGER, POD_INDEX_LABEL,
    },
    offsets_topic::{self, OffsetsTopicView, OFFSETS_TOPIC},
    roll::{pending, step, Desired, PodState, RollStep, RollView},
    scale::{self, ClusterView, ScaleLimits, ScalePlan},
    status::{self, Outcome, REASON_INVALID_SPEC},
    validate::validate,
    voters::{self, Topology, VoterChange, VotersSource},
};
use crate::{
    controller::Context,
    crd::{KafkaCluster, KafkaClusterStatus, PendingRestart, QuorumMode, RemovalState},
    kafka_admin::{AdminClient, ConfigChange, QuorumDescription, DRAINING_FLAG},
};

/// A reconcile step that failed; the controller retries with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object has no namespace (KafkaCluster is namespaced, so the API server always sets one).
    #[error("KafkaCluster {name} has no namespace")]
    MissingNamespace { name: String },
    /// Reading the running StatefulSet failed.
    #[error("cannot read StatefulSet {name}")]
    GetStatefulSet { name: String, source: kube::Error },
    /// Reading the running brokers' ConfigMap (for their voter set) failed.
    #[error("cannot read ConfigMap {name}")]
    GetConfigMap { name: String, source: kube::Error },
    /// Server-side apply of the broker ConfigMap failed.
    #[error("cannot apply ConfigMap {name}")]
    ApplyConfigMap { name: String, source: kube::Error },
    /// Server-side apply of a Service failed.
    #[error("cannot apply Service {name}")]
    ApplyService { name: String, source: kube::Error },
    /// Server-side apply of the StatefulSet failed.
    #[error("cannot apply StatefulSet {name}")]
    ApplyStatefulSet { name: String, source: kube::Error },
    /// Server-side apply of the PodDisruptionBudget failed.
    #[error("cannot apply PodDisruptionBudget {name}")]
    ApplyPodDisruptionBudget { name: String, source: kube::Error },
    /// Reading the KafkaCluster itself failed.
    #[error("cannot read KafkaCluster {name}")]
    GetCluster { name: String, source: kube::Error },
    /// Writing the KafkaCluster status failed.
    #[error("cannot write the status of KafkaCluster {name}")]
    PatchStatus { name: String, source: kube::Error },
    /// Listing the broker pods (for a rolling restart) failed.
    #[error("cannot list the pods of KafkaCluster {name}")]
    ListPods { name: String, source: kube::Error },
    /// Deleting a pod to restart it failed.
    #[error("cannot delete pod {name} to restart it")]
    DeletePod { name: String, source: kube::Error },
    /// A call to the cluster's brokers that a scale-down needs failed.
    #[error("cannot {what}")]
    BrokerCall {
        what: String,
        source: crate::kafka_admin::Error,
    },
}

impl Error {
    /// Short category, used as Event reason and metric label.
    pub fn category(&self) -> &'static str {
        match self {
            Error::MissingNamespace { .. } => "MissingNamespace",
            Error::GetStatefulSet { .. } => "GetStatefulSetFailed",
            Error::GetConfigMap { .. } => "GetConfigMapFailed",
            Error::ApplyConfigMap { .. } => "ApplyConfigMapFailed",
            Error::ApplyService { .. } => "ApplyServiceFailed",
            Error::ApplyStatefulSet { .. } => "ApplyStatefulSetFailed",
            Error::ApplyPodDisruptionBudget { .. } => "ApplyPodDisruptionBudgetFailed",
            Error::GetCluster { .. } => "GetClusterFailed",
            Error::PatchStatus { .. } => "PatchStatusFailed",
            Error::BrokerCall { .. } => "BrokerCallFailed",
            Error::ListPods { .. } => "ListPodsFailed",
            Error::DeletePod { .. } => "DeletePodFailed",
        }
    }
}

/// The body of a server-side apply of the status subresource: only the fields this manager owns.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusApply<'a> {
    api_version: String,
    kind: String,
    status: &'a KafkaClusterStatus,
}

/// Requeue interval while the cluster is not Ready yet.
const REQUEUE_NOT_READY: std::time::Duration = std::time::Duration::from_secs(15);
/// Requeue interval of a Ready cluster (a resync; changes arrive through watches).
const REQUEUE_READY: std::time::Duration = std::time::Duration::from_secs(300);
/// Requeue interval while brokers are drained or removed: progress shows in the cluster metadata, which no
/// watch reports.
const REQUEUE_REMOVING: std::time::Duration = std::time::Duration::from_secs(3);
/// Requeue interval of a blocked scale-down: what blocks it (a topic's replication factor, an unreachable
/// cluster) can change without any Kubernetes object changing.
const REQUEUE_BLOCKED: std::time::Duration = std::time::Duration::from_secs(10);

/// Reconciles one KafkaCluster.
pub async fn reconcile(cluster: Arc<KafkaCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = cluster.name_any();
    let namespace = cluster
        .namespace()
        .ok_or_else(|| Error::MissingNamespace { name: name.clone() })?;
    let clusters: Api<KafkaCluster> = Api::namespaced(ctx.client.clone(), &namespace);
    // The status carries the scale-down's state, and the watch cache that handed us `cluster` can lag behind
    // this operator's own last status write: a pod event may start this reconcile before the update arrives.
    // Decided from that stale copy, a finished drain would be forgotten before its brokers are unregistered.
    let Some(cluster) = clusters
        .get_opt(&name)
        .await
        .map_err(|source| Error::GetCluster {
            name: name.clone(),
            source,
        })?
        .map(Arc::new)
    else {
        return Ok(Action::await_change());
    };
    let now = Time(Timestamp::now());

    let valid = match validate(&cluster) {
        Ok(valid) => valid,
        Err(invalid) => {
            tracing::warn!(cluster = %name, namespace = %namespace, error = %invalid, "invalid KafkaCluster spec");
            let event = Event {
                type_: EventType::Warning,
                reason: REASON_INVALID_SPEC.to_owned(),
                note: Some(invalid.to_string()),
                action: "Validate".to_owned(),
                secondary: None,
            };
            ctx.publish(cluster.as_ref(), &event).await;
            let outcome = Outcome::Invalid {
                generation: cluster.meta().generation,
                invalid: &invalid,
            };
            let next = status::status(cluster.status.as_ref(), &outcome, &now);
            patch_status(&clusters, &cluster, &next).await?;
            // Nothing to retry: the next edit of the spec triggers a new reconcile.
            return Ok(Action::await_change());
        }
    };

    let client = &ctx.client;
    let stateful_sets = Api::<StatefulSet>::namespaced(client.clone(), &namespace);
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), &namespace);

    // Dereference: what is read before building is how many brokers run now and who votes. The voters are
    // recorded in the status; only when it does not say are they read back from the running brokers' ConfigMap.
    let recorded = cluster
        .status
        .as_ref()
        .map(|s| s.quorum_voters.as_slice())
        .unwrap_or_default();
    let running_config = if recorded.is_empty() {
        let name = ObjectNames::new(&valid.name).config_map;
        config_maps
            .get_opt(&name)
            .await
            .map_err(|source| Error::GetConfigMap { name, source })?
            .and_then(|cm| cm.data)
    } else {
        None
    };
    let recorded_mode = cluster.status.as_ref().and_then(|s| s.quorum_mode);
    let (mut voters, mut mode, source) = voters::decide(
        recorded,
        recorded_mode,
        running_config.as_ref(),
        valid.brokers,
    );
    if source != VotersSource::Status {
        tracing::info!(cluster = %name, namespace = %namespace, voters = %voters, mode = ?mode, source = ?source, "metadata quorum voters decided");
    }
    let running = stateful_sets
        .get_opt(&valid.name)
        .await
        .map_err(|source| Error::GetStatefulSet {
            name: valid.name.clone(),
            source,
        })?
        .and_then(|sts| sts.spec?.replicas);
    let previous_removing = cluster
        .status
        .as_ref()
        .map(|s| s.removing_brokers.clone())
        .unwrap_or_default();
    let admin = ctx.admin.get(
        ctx.bootstrap_override
            .as_deref()
            .unwrap_or(&bootstrap_address(&valid)),
    );
    // A dynamic quorum says who votes; until its brokers answer, the record stands.
    let quorum = if mode == QuorumMode::Static || running.unwrap_or(0) == 0 {
        None
    } else {
        match admin.describe_quorum().await {
            Ok(quorum) => Some(quorum),
            Err(e) => {
                tracing::debug!(cluster = %name, error = %crate::controller::error_chain(&e), "quorum not described");
                None
            }
        }
    };
    if let Some(quorum) = &quorum {
        if mode == QuorumMode::Forming && quorum.view.formed_with(&voters) {
            tracing::info!(cluster = %name, namespace = %namespace, voters = %voters, "metadata quorum formed; initial-controllers list withdrawn");
            mode = QuorumMode::Formed;
        }
        if mode == QuorumMode::Formed {
            if let Some(observed) = quorum.view.voter_ids() {
                voters = observed;
            }
        }
    }
    let view = if scale::needs_cluster_view(valid.brokers, running, &previous_removing) {
        match admin.cluster_metadata().await {
            Ok(metadata) => {
                let mut view = ClusterView::of(&metadata);
                if scale::needs_disk_view(valid.brokers, running, &previous_removing) {
                    view.disks = log_dir_usages(&ctx, &metadata).await;
                }
                Ok(view)
            }
            Err(e) => Err(crate::controller::error_chain(&e)),
        }
    } else {
        Err("not needed".to_owned())
    };
    let limits = ScaleLimits {
        min_insync_replicas: valid
            .broker_config
            .get("min.insync.replicas")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(1),
        free_space_percent: valid.scale_down_free_space_percent,
    };
    let mut plan = scale::plan(
        valid.brokers,
        running,
        voters,
        mode,
        &previous_removing,
        view.as_ref().map_err(String::as_str),
        limits,
    );
    carry_out(&admin, &mut plan, &name).await?;
    let voters_changing = match (&quorum, mode) {
        (Some(quorum), QuorumMode::Formed) => {
            // Blocked, nothing leaves: the voters stay where the brokers stay.
            let running = running.unwrap_or(0);
            let staying = if plan.blocked.is_some() {
                running
            } else {
                valid.brokers
            };
            change_voters(&ctx, &cluster, &valid, &admin, quorum, staying, running).await
        }
        _ => false,
    };
    let ScalePlan {
        topology,
        removing,
        blocked: scale_down_blocked,
        offsets_topic_first,
        ..
    } = plan;
    let objects = build(&valid, &topology);
    if let Some(blocked) = &scale_down_blocked {
        tracing::warn!(
            cluster = %name,
            namespace = %namespace,
            requested = blocked.requested,
            running = blocked.running,
            reason = blocked.blocked_by().reason(),
            "scale-down blocked"
        );
        let event = Event {
            type_: EventType::Warning,
            reason: status::SCALE_DOWN_BLOCKED.to_owned(),
            note: Some(blocked.to_string()),
            action: "Scale".to_owned(),
            secondary: None,
        };
        ctx.publish(cluster.as_ref(), &event).await;
    }

    // Order matters: the pods mount the ConfigMap and take their DNS names from the headless Service, so both exist
    // before the StatefulSet creates pods; the PodDisruptionBudget guards pods that exist.
    apply(&config_maps, &objects.config_map)
        .await
        .map_err(|(name, source)| Error::ApplyConfigMap { name, source })?;
    for service in [&objects.headless_service, &objects.bootstrap_service] {
        apply(
            &Api::<Service>::namespaced(client.clone(), &namespace),
            service,
        )
        .await
        .map_err(|(name, source)| Error::ApplyService { name, source })?;
    }
    let stateful_set = apply(&stateful_sets, &objects.stateful_set)
        .await
        .map_err(|(name, source)| Error::ApplyStatefulSet { name, source })?;
    apply(
        &Api::<PodDisruptionBudget>::namespaced(client.clone(), &namespace),
        &objects.pod_disruption_budget,
    )
    .await
    .map_err(|(name, source)| Error::ApplyPodDisruptionBudget { name, source })?;
    let scaling_down = removing.iter().any(|b| b.state != RemovalState::Removed);
    let (pending_restarts, roll_progress) = roll(
        &ctx,
        &cluster,
        &valid,
        &stateful_set,
        &objects.stateful_set,
        &admin,
        scaling_down,
    )
    .await?;

    let blocked = scale_down_blocked.is_some();
    // Steady or growing, or about to shrink: never mid-drain, where it already fits what stays.
    let offsets_topic_moving = !blocked
        && (!scaling_down || offsets_topic_first)
        && keep_offsets_topic(&ctx, &cluster, &valid, &topology, &stateful_set, &admin).await;
    let outcome = Outcome::Applied {
        cluster: &valid,
        stateful_set: &stateful_set,
        voters: &topology.voters,
        scale_down_blocked,
        removing: &removing,
        pending_restarts: &pending_restarts,
        roll_progress: roll_progress.as_deref(),
    };
    let mut next = status::status(cluster.status.as_ref(), &outcome, &now);
    next.quorum_mode = Some(topology.mode);
    next.live_broker_config =
        apply_live_config(&ctx, &cluster, &valid, &topology, &stateful_set, &admin).await;
    let ready = status::is_ready(&next);
    patch_status(&clusters, &cluster, &next).await?;
    tracing::debug!(cluster = %name, namespace = %namespace, ready, ready_brokers = next.ready_brokers, "reconciled");
    Ok(Action::requeue(
        if scaling_down
            || voters_changing
            || offsets_topic_moving
            || offsets_topic_first
            || !pending_restarts.is_empty()
        {
            REQUEUE_REMOVING
        } else if blocked {
            REQUEUE_BLOCKED
        } else if ready {
            REQUEUE_READY
        } else {
            REQUEUE_NOT_READY
        },
    ))
}

/// Brings the cluster-wide dynamic broker configs to the operator's replication defaults for the running
/// broker count and the live part of `spec.brokerConfig` over them (deletes first, so
/// a key replaced by another spelling of the same setting, `log.retention.hours` by `log.retention.ms`, ends
/// set), and returns what is applied now: the spec's on success, the status's record otherwise (retried on the
/// next reconcile; a cluster whose brokers are not up yet is not asked).
async fn apply_live_config(
    ctx: &Context,
    cluster: &KafkaCluster,
    valid: &super::ValidatedKafkaCluster,
    topology: &Topology,
    applied: &StatefulSet,
    admin: &AdminClient,
) -> BTreeMap<String, String> {
    let recorded = cluster
        .status
        .as_ref()
        .map(|s| s.live_broker_config.clone())
        .unwrap_or_default();
    let desired = live_broker_config(valid, topology);
    let any_ready = any_broker_ready(applied);
    if desired == recorded || !any_ready {
        return recorded;
    }
    let deletes: Vec<ConfigChange> = recorded
        .keys()
        .filter(|key| !desired.contains_key(*key))
        .map(|name| ConfigChange::Delete { name: name.clone() })
        .collect();
    let sets: Vec<ConfigChange> = desired
        .iter()
        .filter(|(key, value)| recorded.get(*key) != Some(*value))
        .map(|(name, value)| ConfigChange::Set {
            name: name.clone(),
            value: value.clone(),
        })
        .collect();
    let mut result = Ok(());
    for changes in [&deletes, &sets] {
        if result.is_ok() && !changes.is_empty() {
            result = admin.alter_cluster_broker_config(changes).await;
        }
    }
    match result {
        Ok(()) => {
            let described: Vec<String> = deletes
                .iter()
                .chain(&sets)
                .map(|change| match change {
                    ConfigChange::Set { name, value } => format!("{name}={value}"),
                    ConfigChange::Delete { name } => format!("{name} (removed)"),
                })
                .collect();
            tracing::info!(cluster = %valid.name, changes = %described.join(", "), "broker config applied live");
            let event = Event {
                type_: EventType::Normal,
                reason: "BrokerConfigApplied".to_owned(),
                note: Some(format!(
                    "applied live, no restart: {}",
                    described.join(", ")
                )),
                action: "Configure".to_owned(),
                secondary: None,
            };
            ctx.publish(cluster, &event).await;
            desired
        }
        Err(error) => {
            tracing::warn!(cluster = %valid.name, error = %crate::controller::error_chain(&error),
                "cannot apply the live broker config yet; will retry");
            recorded
        }
    }
}

/// Whether a broker pod of the StatefulSet is Ready, so the brokers can be asked anything.
fn any_broker_ready(applied: &StatefulSet) -> bool {
    applied
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
        > 0
}

/// Keeps `__consumer_offsets` at the replication factor the operator configures, within the brokers that stay
/// (see [`super::offsets_topic`]); `true` while a move of it runs or was just started. Errors are logged and
/// retried on the next reconcile: the topic stays usable meanwhile.
async fn keep_offsets_topic(
    ctx: &Context,
    cluster: &KafkaCluster,
    valid: &super::ValidatedKafkaCluster,
    topology: &Topology,
    applied: &StatefulSet,
    admin: &AdminClient,
) -> bool {
    if !any_broker_ready(applied) {
        return false;
    }
    let metadata = match admin.cluster_metadata().await {
        Ok(metadata) => metadata,
        Err(error) => {
            tracing::debug!(cluster = %valid.name, error = %crate::controller::error_chain(&error),
                "cannot read the offsets topic yet");
            return false;
        }
    };
    let Some(view) = OffsetsTopicView::of(&metadata) else {
        return false;
    };
    if view.moving {
        return true;
    }
    let factor = offsets_topic::wanted_factor(&live_broker_config(valid, topology), valid.brokers);
    let Some(targets) = offsets_topic::targets(&metadata, factor, valid.brokers) else {
        // Fewer live brokers than the factor: once they register.
        return false;
    };
    if targets.is_empty() {
        return false;
    }
    match admin
        .alter_partition_reassignments(OFFSETS_TOPIC, &targets)
        .await
    {
        Ok(()) => {
            let note = format!(
                "{OFFSETS_TOPIC}: replication factor {} -> {factor} on {} brokers ({} partitions reassigned; new \
                 replicas catch up before they count)",
                view.replication_factor,
                valid.brokers,
                targets.len()
            );
            tracing::info!(cluster = %valid.name, from = view.replication_factor, to = factor,
                partitions = targets.len(), "reassigning the offsets topic");
            let event = Event {
                type_: EventType::Normal,
                reason: "OffsetsTopicReassigned".to_owned(),
                note: Some(note),
                action: "Reassign".to_owned(),
                secondary: None,
            };
            ctx.publish(cluster, &event).await;
            true
        }
        Err(error) => {
            tracing::warn!(cluster = %valid.name, error = %crate::controller::error_chain(&error),
                "cannot reassign the offsets topic yet; will retry");
            false
        }
    }
}

/// One step of a rolling restart (see [`super::roll`]): the outdated pods in restart order, and what the roll
/// is doing or waiting for. Held back while brokers are being removed.
async fn roll(
    ctx: &Context,
    cluster: &KafkaCluster,
    valid: &super::ValidatedKafkaCluster,
    applied: &StatefulSet,
    built: &StatefulSet,
    admin: &AdminClient,
    hold: bool,
) -> Result<(Vec<PendingRestart>, Option<String>), Error> {
    let Some(update_revision) = applied
        .status
        .as_ref()
        .and_then(|s| s.update_revision.clone())
    else {
        return Ok((Vec::new(), None));
    };
    let desired = Desired {
        update_revision,
        replicas: applied.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0),
        config_hash: built
            .spec
            .as_ref()
            .and_then(|s| {
                s.template
                    .metadata
                    .as_ref()?
                    .annotations
                    .as_ref()?
                    .get(CONFIG_HASH_ANNOTATION)
                    .cloned()
            })
            .unwrap_or_default(),
        image: valid.image.clone(),
    };
    let pods_api = Api::<Pod>::namespaced(ctx.client.clone(), &valid.namespace);
    let selector = pod_selector(&valid.name);
    let pods = pods_api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| Error::ListPods {
            name: valid.name.clone(),
            source,
        })?;
    let states: Vec<PodState> = pods.items.iter().map(pod_state).collect();
    let outdated = pending(&states, &desired, None);
    if outdated.is_empty() {
        return Ok((Vec::new(), None));
    }
    if hold {
        return Ok((
            outdated,
            Some("waiting for the scale-down to finish".to_owned()),
        ));
    }
    let view = admin
        .cluster_metadata()
        .await
        .map(|metadata| RollView::of(&metadata))
        .map_err(|e| crate::controller::error_chain(&e));
    let queue = pending(
        &states,
        &desired,
        view.as_ref().ok().and_then(|v| v.controller),
    );
    match step(&states, &desired, view.as_ref().map_err(String::as_str)) {
        RollStep::Idle => Ok((Vec::new(), None)),
        RollStep::Wait(why) => Ok((queue, Some(why))),
        RollStep::Restart(pod) => {
            pods_api
                .delete(&pod, &DeleteParams::default())
                .await
                .map_err(|source| Error::DeletePod {
                    name: pod.clone(),
                    source,
                })?;
            let reason = queue
                .iter()
                .find(|p| p.pod == pod)
                .map(|p| p.reason.clone())
                .unwrap_or_default();
            tracing::info!(cluster = %valid.name, pod = %pod, reason = %reason, "restarting broker");
            let event = Event {
                type_: EventType::Normal,
                reason: "RestartingBroker".to_owned(),
                note: Some(format!("restarting {pod}: {reason}")),
                action: "Roll".to_owned(),
                secondary: None,
            };
            ctx.publish(cluster, &event).await;
            Ok((queue, Some(format!("restarting {pod}"))))
        }
    }
}

fn pod_state(pod: &Pod) -> PodState {
    let name = pod.name_any();
    let labels = pod.labels();
    let ordinal = labels
        .get(POD_INDEX_LABEL)
        .and_then(|v| v.parse().ok())
        .or_else(|| name.rsplit('-').next()?.parse().ok())
        .unwrap_or(-1);
    let ready = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    PodState {
        ordinal,
        revision: labels.get("controller-revision-hash").cloned(),
        ready,
        terminating: pod.metadata.deletion_timestamp.is_some(),
        config_hash: pod.annotations().get(CONFIG_HASH_ANNOTATION).cloned(),
        image: pod.spec.as_ref().and_then(|s| {
            s.containers
                .iter()
                .find(|c| c.name == CONTAINER_NAME)?
                .image
                .clone()
        }),
        name,
    }
}

/// The broker calls of a scale plan: drain marks set and cleared (a failure fails the reconcile, which is
/// retried with the status unchanged, so nothing is forgotten), and drained brokers unregistered (one that is
/// refused, its pod still shutting down, stays `Drained` for the next reconcile).
/// How long a broker may take to describe its log directory before a scale-down goes on without it.
const LOG_DIR_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Each live broker's log directory, asked of the broker itself (DescribeLogDirs answers for its own only),
/// all at once; a broker that does not answer in time is left out, and the disk check with it.
async fn log_dir_usages(
    ctx: &Context,
    metadata: &crate::kafka_admin::ClusterMetadata,
) -> BTreeMap<i32, crate::kafka_admin::LogDirUsage> {
    let asks = metadata.brokers.iter().map(|(id, address)| {
        let admin = ctx.admin.get(address);
        async move {
            let usage = tokio::time::timeout(LOG_DIR_TIMEOUT, admin.log_dir_usage()).await;
            match usage {
                Ok(Ok(usage)) => Some((*id, usage)),
                Ok(Err(e)) => {
                    tracing::warn!(broker = id, %address, error = %crate::controller::error_chain(&e), "DescribeLogDirs failed; the scale-down's disk check is skipped");
                    None
                }
                Err(_) => {
                    tracing::warn!(broker = id, %address, "DescribeLogDirs timed out; the scale-down's disk check is skipped");
                    None
                }
            }
        }
    });
    futures_util::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Makes the next voter change the quorum needs (see [`voters::voter_change`]); whether one was made or is
/// due, so the reconcile comes back soon. A refused change is logged and tried again then.
async fn change_voters(
    ctx: &Context,
    cluster: &KafkaCluster,
    valid: &super::ValidatedKafkaCluster,
    admin: &AdminClient,
    quorum: &QuorumDescription,
    staying: i32,
    running: i32,
) -> bool {
    let replaced = replaced_voters(ctx, valid).await;
    let replacement = voters::replacement_change(&quorum.view, &replaced);
    let replacing = replacement.is_some();
    let Some(change) = replacement.or_else(|| voters::voter_change(&quorum.view, staying, running))
    else {
        // A wanted voter that has not caught up yet is waited for.
        let voting: std::collections::BTreeSet<i32> =
            quorum.view.voters.iter().map(|v| v.id).collect();
        return voting != voters::wanted_voters(staying, running);
    };
    let name = &valid.name;
    let (result, note) = match &change {
        VoterChange::Add { id, directory_id } => {
            let endpoint = quorum
                .endpoints
                .get(id)
                .map(|(host, port)| (host.clone(), *port))
                .unwrap_or_else(|| controller_endpoint(valid, *id));
            let result = admin
                .add_raft_voter(
                    *id,
                    directory_id,
                    "CONTROLLER",
                    (endpoint.0.as_str(), endpoint.1),
                )
                .await;
            (
                result,
                format!("broker {id} added to the metadata quorum's voters"),
            )
        }
        VoterChange::Remove { id, directory_id } if replacing => (
            admin.remove_raft_voter(*id, directory_id).await,
            format!(
                "broker {id}'s earlier incarnation (directory {directory_id}) removed from the metadata \
                 quorum's voters: its volume was replaced, so it rejoins as an observer and votes again once \
                 caught up"
            ),
        ),
        VoterChange::Remove { id, directory_id } => (
            admin.remove_raft_voter(*id, directory_id).await,
            format!("broker {id} removed from the metadata quorum's voters"),
        ),
    };
    match result {
        Ok(()) => {
            tracing::info!(cluster = %name, change = ?change, "{note}");
            let event = Event {
                type_: EventType::Normal,
                reason: "VotersChanged".to_owned(),
                note: Some(note),
                action: "Scale".to_owned(),
                secondary: None,
            };
            ctx.publish(cluster, &event).await;
        }
        Err(error) => {
            tracing::warn!(cluster = %name, change = ?change, error = %crate::controller::error_chain(&error),
                "voter change refused; will retry");
        }
    }
    true
}

/// The brokers whose last termination message says they were formatted anew while the quorum still counts
/// their old incarnation (see [`voters::parse_replaced_voter`]); a pod speaks only for its own broker id. A
/// pod that cannot be listed reports nothing, and the next reconcile looks again.
async fn replaced_voters(
    ctx: &Context,
    valid: &super::ValidatedKafkaCluster,
) -> Vec<voters::ReplacedVoter> {
    let selector = pod_selector(&valid.name);
    let pods = match Api::<Pod>::namespaced(ctx.client.clone(), &valid.namespace)
        .list(&ListParams::default().labels(&selector))
        .await
    {
        Ok(pods) => pods.items,
        Err(error) => {
            tracing::debug!(cluster = %valid.name, error = %error, "pods not listed for replaced voters");
            return Vec::new();
        }
    };
    pods.iter()
        .filter_map(|pod| {
            let ordinal = pod_state(pod).ordinal;
            let message = pod
                .status
                .as_ref()?
                .container_statuses
                .as_ref()?
                .iter()
                .find(|c| c.name == CONTAINER_NAME)?
                .last_state
                .as_ref()?
                .terminated
                .as_ref()?
                .message
                .as_deref()?;
            voters::parse_replaced_voter(message).filter(|r| r.id == ordinal)
        })
        .collect()
}

async fn carry_out(admin: &AdminClient, plan: &mut ScalePlan, cluster: &str) -> Result<(), Error> {
    let call = |what: String| move |source| Error::BrokerCall { what, source };
    for id in &plan.undrain {
        admin
            .set_broker_flag(*id, DRAINING_FLAG, false)
            .await
            .map_err(call(format!("clear the drain mark of broker {id}")))?;
        tracing::info!(
            cluster,
            broker = id,
            "scale-down cancelled for this broker: drain mark cleared"
        );
    }
    for id in &plan.drain {
        admin
            .set_broker_flag(*id, DRAINING_FLAG, true)
            .await
            .map_err(call(format!("mark broker {id} draining")))?;
    }
    for id in &plan.unregister {
        match admin.unregister_broker(*id).await {
            Ok(_) => {
                tracing::info!(cluster, broker = id, "removed broker unregistered");
                for broker in plan.removing.iter_mut().filter(|b| b.id == *id) {
                    broker.state = RemovalState::Removed;
                }
            }
            Err(error) => {
                tracing::info!(cluster, broker = id, error = %crate::controller::error_chain(&error),
                    "drained broker not unregistered yet; will retry")
            }
        }
    }
    Ok(())
}

/// Server-side applies `object` under the operator's field manager (forcing conflicts: the operator owns these
/// objects) and returns it as stored.
async fn apply<K>(api: &Api<K>, object: &K) -> Result<K, (String, kube::Error)>
where
    K: Resource<Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    let name = object.name_any();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(object))
        .await
        .map_err(|source| (name, source))
}

async fn patch_status(
    api: &Api<KafkaCluster>,
    cluster: &KafkaCluster,
    next: &KafkaClusterStatus,
) -> Result<(), Error> {
    if cluster.status.as_ref() == Some(next) {
        return Ok(());
    }
    let name = cluster.name_any();
    let body = StatusApply {
        api_version: KafkaCluster::api_version(&()).into_owned(),
        kind: KafkaCluster::kind(&()).into_owned(),
        status: next,
    };
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch_status(&name, &params, &Patch::Apply(&body))
        .await
        .map_err(|source| Error::PatchStatus { name, source })?;
    Ok(())
}
