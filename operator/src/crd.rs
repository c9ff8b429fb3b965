//! Custom resource types (`KafkaCluster`, `Topic`, group `tributary.dev`, version `v1alpha1`) and the rendering of
//! their CustomResourceDefinitions.
//!
//! The YAML under `crds/` is generated from these types by the `crdgen` binary and never edited by hand; a unit
//! test fails when it is stale. This module must never hold reconcile logic.

mod kafka_cluster;
mod topic;

use std::path::{Path, PathBuf};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use self::{
    kafka_cluster::{
        KafkaCluster, KafkaClusterSpec, KafkaClusterStatus, Listeners, PendingRestart,
        PodTemplateOverrides, QuorumMode, RemovalState, RemovingBroker, Storage, DEFAULT_HTTP_PORT,
        DEFAULT_KAFKA_PORT,
    },
    topic::{ClusterRef, DeletionPolicy, Topic, TopicSpec, TopicStatus},
};

/// API group of every Tributary custom resource.
pub const GROUP: &str = "tributary.dev";

/// The command that regenerates `crds/`.
pub const REGENERATE_COMMAND: &str = "cargo run -p tributary-operator --bin crdgen";

/// Rendering a CRD to YAML failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot render the {name} CustomResourceDefinition as YAML")]
pub struct RenderError {
    name: String,
    #[source]
    source: serde_saphyr::SerializeError,
}

/// One generated file of `crds/`.
#[derive(Debug)]
pub struct GeneratedCrd {
    /// File name inside `crds/`.
    pub file_name: &'static str,
    /// The definition.
    pub crd: CustomResourceDefinition,
}

/// Every CRD the operator serves, with the file it is written to.
pub fn generated_crds() -> Vec<GeneratedCrd> {
    vec![
        GeneratedCrd {
            file_name: "kafkacluster.yaml",
            crd: KafkaCluster::crd(),
        },
        GeneratedCrd {
            file_name: "topic.yaml",
            crd: Topic::crd(),
        },
    ]
}

/// The text of a generated CRD file: a DO NOT EDIT header, then the YAML document.
pub fn render(crd: &CustomResourceDefinition) -> Result<String, RenderError> {
    let name = crd.metadata.name.clone().unwrap_or_default();
    let yaml = serde_saphyr::to_string(crd).map_err(|source| RenderError { name, source })?;
    Ok(format!(
        "# Generated from the Rust types in operator/src/crd/ by `{REGENERATE_COMMAND}` — DO NOT EDIT.\n---\n{yaml}"
    ))
}

/// The `crds/` directory of this repository.
pub fn crds_dir() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).join("crds")
}

#[cfg(test)]
mod cel_tests;

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn crds_directory_is_up_to_date() {
        for generated in generated_crds() {
            let path = crds_dir().join(generated.file_name);
            let expected = render(&generated.crd).expect("render CRD");
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                on_disk == expected,
                "crds/{} is stale (or missing): run `{REGENERATE_COMMAND}` and commit the result",
                generated.file_name
            );
        }
    }

    #[test]
    fn rendered_yaml_reads_back_as_the_same_crd() {
        for generated in generated_crds() {
            let text = render(&generated.crd).expect("render CRD");
            let parsed: CustomResourceDefinition =
                serde_saphyr::from_str(&text).expect("generated YAML parses");
            assert_eq!(
                parsed, generated.crd,
                "{} does not round-trip through YAML",
                generated.file_name
            );
        }
    }

    fn schema(crd: &CustomResourceDefinition) -> Value {
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        serde_json::to_value(
            version
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref()),
        )
        .expect("schema")
    }

    fn rules(schema: &Value) -> Vec<String> {
        schema["x-kubernetes-validations"]
            .as_array()
            .map(|rules| {
                rules
                    .iter()
                    .filter_map(|r| r["rule"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn kafka_cluster_crd_has_names_status_columns_and_rules() {
        let crd = KafkaCluster::crd();
        assert_eq!(crd.spec.group, GROUP);
        assert_eq!(
            crd.spec.names.short_names.as_deref(),
            Some(&["kc".to_owned()][..])
        );
        let version = &crd.spec.versions[0];
        assert!(
            version
                .subresources
                .as_ref()
                .is_some_and(|s| s.status.is_some()),
            "status subresource missing"
        );
        let columns: Vec<_> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert!(
            columns.contains(&"Brokers") && columns.contains(&"Ready"),
            "printer columns: {columns:?}"
        );

        let schema = schema(&crd);
        let spec = &schema["properties"]["spec"];
        assert_eq!(rules(&spec["properties"]["brokers"]), ["self >= 1"]);
        assert!(
            spec["properties"]["brokers"]["description"]
                .as_str()
                .is_some_and(|d| d.contains("Broker ids")),
            "doc comments must become descriptions"
        );
        assert!(rules(&spec["properties"]["storage"])
            .iter()
            .any(|r| r.contains("oldSelf.size")));
        let conditions = &schema["properties"]["status"]["properties"]["conditions"];
        assert_eq!(conditions["x-kubernetes-list-type"], "map");
    }

    #[test]
    fn topic_crd_rejects_shrinking_partitions_and_zero_replication() {
        let crd = Topic::crd();
        assert_eq!(
            crd.spec.names.short_names.as_deref(),
            Some(&["kt".to_owned()][..])
        );
        let schema = schema(&crd);
        let spec = &schema["properties"]["spec"];
        let partitions = rules(&spec["properties"]["partitions"]);
        assert!(
            partitions.contains(&"self >= oldSelf".to_owned()),
            "partitions rules: {partitions:?}"
        );
        assert!(
            partitions.contains(&"self >= 1".to_owned()),
            "partitions rules: {partitions:?}"
        );
        assert_eq!(
            rules(&spec["properties"]["replicationFactor"]),
            ["self >= 1"]
        );
        assert_eq!(
            spec["properties"]["deletionPolicy"]["enum"],
            serde_json::json!(["Delete", "Orphan"])
        );
    }
}
