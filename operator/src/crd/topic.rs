//! The `Topic` custom resource: one Kafka topic, declared in Kubernetes and created on a KafkaCluster.
//!
//! This module owns the shape of the API only; it must never talk to brokers.

// `#[derive(KubeSchema)]` emits a `pub` copy of each struct inside a function body, which trips the lint.
#![allow(unreachable_pub)]
// Clippy reads the repeated `printcolumn(type_ = ...)` arguments of `#[kube]` as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Kafka topic on a KafkaCluster in the same namespace.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tributary.dev",
    version = "v1alpha1",
    kind = "Topic",
    namespaced,
    status = "TopicStatus",
    shortname = "kt",
    category = "tributary",
    doc = "A Kafka topic managed by the Tributary operator.",
    derive = "PartialEq",
    printcolumn(
        name = "Cluster",
        type_ = "string",
        json_path = ".spec.clusterRef.name",
        description = "KafkaCluster"
    ),
    printcolumn(
        name = "Partitions",
        type_ = "integer",
        json_path = ".spec.partitions",
        description = "partitions"
    ),
    printcolumn(
        name = "Replication",
        type_ = "integer",
        json_path = ".spec.replicationFactor",
        description = "replication factor"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "whether the topic exists as declared"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.clusterRef.name == oldSelf.clusterRef.name").message("clusterRef cannot be changed; create a new Topic instead"),
    validation = Rule::new("has(self.topicName) == has(oldSelf.topicName) && (!has(self.topicName) || self.topicName == oldSelf.topicName)").message("topicName cannot be changed; create a new Topic instead"),
)]
pub struct TopicSpec {
    /// The KafkaCluster (in this namespace) that holds the topic.
    pub cluster_ref: ClusterRef,

    /// Name of the topic in Kafka. Defaults to `metadata.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[a-zA-Z0-9._-]+$"))]
    pub topic_name: Option<String>,

    /// Number of partitions. It can grow, never shrink (Kafka cannot remove partitions).
    #[x_kube(
        validation = Rule::new("self >= 1").message("a topic needs at least one partition"),
        validation = Rule::new("self >= oldSelf").message("partitions cannot be decreased"),
    )]
    pub partitions: i32,

    /// Number of replicas of each partition.
    #[x_kube(validation = Rule::new("self >= 1").message("replicationFactor must be at least 1"))]
    pub replication_factor: i32,

    /// Topic configuration, as Kafka property names (for example `cleanup.policy: compact`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,

    /// What happens to the Kafka topic when this Topic is deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// A reference to a KafkaCluster in the same namespace.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ClusterRef {
    /// Name of the KafkaCluster.
    #[schemars(length(min = 1))]
    pub name: String,
}

/// What happens to the Kafka topic when its Topic resource is deleted.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeletionPolicy {
    /// Delete the topic and its data from the cluster.
    #[default]
    Delete,
    /// Leave the topic in the cluster; only the Kubernetes resource goes away.
    Orphan,
}

/// Observed state of a Topic.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TopicStatus {
    /// Standard conditions: `Ready`, plus specific ones such as `Conflict`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Kafka's topic id (a UUID, base64 as Kafka tools print it) once the topic exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<String>,
}
