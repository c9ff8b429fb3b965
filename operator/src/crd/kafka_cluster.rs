//! The `KafkaCluster` custom resource: what a platform team writes to get a set of Tributary brokers.
//!
//! This module owns the shape of the API (and so the generated CRD schema, its descriptions, printer columns and
//! CEL rules). It must never hold reconcile logic: code after `cluster::validate` reads a
//! `ValidatedKafkaCluster`, not these raw types.

// `#[derive(KubeSchema)]` emits a `pub` copy of each struct inside a function body, which trips the lint.
#![allow(unreachable_pub)]
// Clippy reads the repeated `printcolumn(type_ = ...)` arguments of `#[kube]` as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{
        Affinity, EnvVar, LocalObjectReference, ResourceRequirements, Toleration,
        TopologySpreadConstraint,
    },
    apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::Condition},
};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Default port of the Kafka listener.
pub const DEFAULT_KAFKA_PORT: i32 = 9092;
/// Default port of the broker's HTTP side port (`/metrics`, `/healthz`, `/readyz`).
pub const DEFAULT_HTTP_PORT: i32 = 9644;

/// A Tributary cluster: a StatefulSet of brokers with stable identities and volumes, the Services that make them
/// reachable, and a PodDisruptionBudget that lets at most one broker be down at a time.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tributary.dev",
    version = "v1alpha1",
    kind = "KafkaCluster",
    namespaced,
    status = "KafkaClusterStatus",
    shortname = "kc",
    category = "tributary",
    doc = "A Tributary (Kafka-compatible) broker cluster.",
    derive = "PartialEq",
    // `kubectl scale kafkacluster/NAME --replicas=N` edits spec.brokers; the operator drains brokers before it
    // removes them, so a scale-down through this path is as safe as an edit of the spec.
    scale(
        spec_replicas_path = ".spec.brokers",
        status_replicas_path = ".status.brokers",
        label_selector_path = ".status.selector"
    ),
    printcolumn(
        name = "Brokers",
        type_ = "integer",
        json_path = ".spec.brokers",
        description = "desired brokers"
    ),
    printcolumn(
        name = "Ready",
        type_ = "integer",
        json_path = ".status.readyBrokers",
        description = "ready brokers"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "whether the cluster is ready"
    ),
    printcolumn(
        name = "Bootstrap",
        type_ = "string",
        json_path = ".status.bootstrapAddress",
        description = "address Kafka clients bootstrap from",
        priority = "1"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct KafkaClusterSpec {
    /// Number of brokers. Broker ids are the pod ordinals 0..brokers-1.
    #[x_kube(validation = Rule::new("self >= 1").message("a cluster needs at least one broker"))]
    pub brokers: i32,

    /// Container image of the broker (it must contain the `tributary-broker` binary).
    #[schemars(length(min = 1))]
    pub image: String,

    /// Image pull policy of the broker container (Always, IfNotPresent or Never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,

    /// Persistent storage of each broker: one PersistentVolumeClaim per broker.
    pub storage: Storage,

    /// Compute resources of the broker container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Broker configuration, as Kafka property names (for example `log.retention.hours: "168"`). The operator sets
    /// `node.id` (`broker.id`), `listeners`, `advertised.listeners`, `log.dirs` (`log.dir`) and `http.listener` from
    /// each pod's identity; those keys are refused here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub broker_config: BTreeMap<String, String>,

    /// Ports the brokers listen on.
    #[serde(default)]
    pub listeners: Listeners,

    /// Overrides applied to the broker pod template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template: Option<PodTemplateOverrides>,
}

/// Per-broker persistent storage.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.size == oldSelf.size").message("storage.size cannot be changed after creation (volume expansion is not supported yet)"),
    validation = Rule::new("has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)").message("storage.storageClassName cannot be changed after creation"),
)]
pub struct Storage {
    /// Size of each broker's volume, for example `10Gi`.
    pub size: Quantity,

    /// StorageClass of the volumes; the cluster's default StorageClass when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,

    /// Delete a broker's volume when the cluster is scaled down past it. Default: keep it.
    #[serde(default)]
    pub delete_claims_on_scale_down: bool,

    /// Delete the volumes when the KafkaCluster is deleted. Default: keep them.
    #[serde(default)]
    pub delete_claims_on_delete: bool,

    /// Percent of each remaining broker's disk that a scale-down leaves free once the data of the removed
    /// brokers has moved onto it; a scale-down that would leave less is refused (NotEnoughDisk). Default 10.
    #[serde(default = "default_scale_down_free_space_percent")]
    #[schemars(range(min = 0, max = 90))]
    pub scale_down_free_space_percent: u8,
}

fn default_scale_down_free_space_percent() -> u8 {
    10
}

/// Ports of the broker.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.kafka != self.http").message("the kafka and http ports must differ"))]
pub struct Listeners {
    /// Port of the Kafka protocol listener.
    #[serde(default = "default_kafka_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub kafka: i32,

    /// Port of the HTTP side port that serves `/metrics`, `/healthz` and `/readyz`.
    #[serde(default = "default_http_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub http: i32,
}

impl Default for Listeners {
    fn default() -> Self {
        Self {
            kafka: DEFAULT_KAFKA_PORT,
            http: DEFAULT_HTTP_PORT,
        }
    }
}

fn default_kafka_port() -> i32 {
    DEFAULT_KAFKA_PORT
}

fn default_http_port() -> i32 {
    DEFAULT_HTTP_PORT
}

/// The parts of the broker pod template a user may override.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplateOverrides {
    /// Extra labels on the broker pods (the operator's own labels win on conflict).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,

    /// Extra annotations on the broker pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,

    /// Node selector of the broker pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,

    /// Tolerations of the broker pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,

    /// Affinity of the broker pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,

    /// Topology spread constraints of the broker pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,

    /// Priority class of the broker pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,

    /// Service account of the broker pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,

    /// Secrets used to pull the broker image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,

    /// Extra environment variables of the broker container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,

    /// Seconds a broker gets to shut down cleanly (flush, hand over leadership) before it is killed. Default 120.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub termination_grace_period_seconds: Option<i64>,
}

/// Observed state of a KafkaCluster.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct KafkaClusterStatus {
    /// Standard conditions: `Ready`, `Reconciling`, `Degraded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Number of brokers whose pods are Ready (registered and caught up).
    #[serde(default)]
    pub ready_brokers: i32,

    /// `host:port` that Kafka clients bootstrap from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_address: Option<String>,

    /// Broker ids of the metadata quorum's voters. In a dynamic quorum (`quorumMode` Forming or Formed) every
    /// broker runs a controller and the operator keeps the voters at the lowest three broker ids (all brokers
    /// when fewer), adding and removing voters as the cluster scales (KIP-853); this is the set last read from
    /// the quorum. In a static one (clusters created by operators before dynamic quorums) the voters were fixed
    /// when the cluster was created, and spec.brokers cannot go below the highest voter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quorum_voters: Vec<i32>,

    /// How the metadata quorum is configured: `Forming` (a new dynamic quorum whose first voters are still
    /// formatting), `Formed` (dynamic: `controller.quorum.bootstrap.servers`, voters follow the fleet), or
    /// `Static` (`controller.quorum.voters`, fixed voters). Unset with recorded voters means Static.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum_mode: Option<QuorumMode>,

    /// Brokers that run (the StatefulSet's replicas): above `spec.brokers` while brokers are drained before
    /// their removal. The scale subresource's replica count.
    #[serde(default)]
    pub brokers: i32,

    /// Label selector of the broker pods, for the scale subresource (and so `kubectl scale` and autoscalers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,

    /// Brokers above `spec.brokers` on their way out, highest ids first: `Draining` (marked
    /// `tributary.broker.draining`, replicas moving off), `Drained` (holds none: the StatefulSet shrinks once
    /// every one is), `Removed` (stopped and unregistered from the cluster metadata). Kept here, not in the
    /// operator's memory, so an operator restarted mid-way resumes where it was.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing_brokers: Vec<RemovingBroker>,

    /// Broker pods that still run an older pod template, in the order they will be restarted (one at a time,
    /// each once every broker is Ready and no partition is under-replicated; the active controller last).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_restarts: Vec<PendingRestart>,

    /// The keys of `spec.brokerConfig` the brokers take live (log retention, segment size, compression,
    /// `min.insync.replicas`, `default.replication.factor`...) over the operator's replication defaults for the
    /// broker count, as last applied through IncrementalAlterConfigs, cluster-wide: a change of these restarts
    /// no broker, and a key removed from the spec is deleted on the brokers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub live_broker_config: BTreeMap<String, String>,
}

/// A broker pod waiting for its restart.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PendingRestart {
    /// Pod name.
    pub pod: String,
    /// Why it must restart (a new image, changed broker configuration).
    pub reason: String,
}

/// One broker being removed by a scale-down.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RemovingBroker {
    /// Broker id (pod ordinal).
    pub id: i32,
    /// `Draining`, `Drained` or `Removed`.
    pub state: RemovalState,
    /// Partition replicas it still holds, as the cluster metadata last said.
    pub replicas: i32,
}

/// How a cluster's metadata quorum is configured; see `status.quorumMode`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuorumMode {
    /// Fixed voters (`controller.quorum.voters`, Kafka's kraft.version 0).
    Static,
    /// A new dynamic quorum: its first voters format with the operator's initial-controllers list, which is
    /// withdrawn once each of them has joined.
    Forming,
    /// A dynamic quorum (`controller.quorum.bootstrap.servers`, kraft.version 1) whose voters the operator
    /// changes with AddRaftVoter and RemoveRaftVoter.
    Formed,
}

/// Where a broker being removed is.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemovalState {
    /// Marked draining: the controller moves its replicas and leaderships to the brokers that stay.
    Draining,
    /// Holds no replica; its pod goes when every broker being removed is drained.
    Drained,
    /// Its pod is gone and the cluster metadata no longer lists it.
    Removed,
}
