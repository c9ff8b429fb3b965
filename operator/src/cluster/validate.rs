//! Validation of a `KafkaCluster`: the only code that reads the raw spec. It yields a `ValidatedKafkaCluster`
//! (defaults filled in, invariants checked) or every problem found, so a bad spec becomes one Condition and one
//! Event that tell the user all they must fix. It must never do I/O.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::ResourceRequirements,
    apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::OwnerReference},
};
use kube::{Resource, ResourceExt};

use crate::crd::{KafkaCluster, PodTemplateOverrides};

/// Longest KafkaCluster name: the StatefulSet is named after the cluster and its pods get a
/// `controller-revision-hash` label `<name>-<hash>` that must stay within 63 characters.
pub const MAX_NAME_LEN: usize = 52;

/// Broker properties the operator sets from the pod's identity; a user value would break the cluster.
pub const RESERVED_BROKER_CONFIG: &[&str] = &[
    "node.id",
    "broker.id",
    "listeners",
    "advertised.listeners",
    "log.dirs",
    "log.dir",
    "http.listener",
    // The cluster's shape: roles, quorum and listener names follow from the pod ordinal and the broker count.
    "process.roles",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "controller.listener.names",
    "inter.broker.listener.name",
    "listener.security.protocol.map",
];

/// Reserved broker properties that say who votes in the metadata quorum: setting one asks for another voter set,
/// which is fixed when the cluster is created (see `cluster::voters`).
pub const VOTER_SET_CONFIG: &[&str] = &[
    "process.roles",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
];

/// Default grace period for a broker to shut down cleanly.
pub const DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS: i64 = 120;

/// A KafkaCluster whose spec has been checked; later pipeline steps read only this.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidatedKafkaCluster {
    /// Name of the KafkaCluster (and of its StatefulSet).
    pub name: String,
    /// Namespace of the KafkaCluster and of everything built for it.
    pub namespace: String,
    /// `metadata.generation` that was validated.
    pub generation: Option<i64>,
    /// Controller owner reference to the KafkaCluster, put on every built object.
    pub owner_reference: OwnerReference,
    /// Number of brokers (at least 1).
    pub brokers: i32,
    /// Broker image.
    pub image: String,
    /// Image pull policy, if set.
    pub image_pull_policy: Option<String>,
    /// Volume size of each broker (a positive quantity).
    pub storage_size: Quantity,
    /// StorageClass of the volumes, if set.
    pub storage_class_name: Option<String>,
    /// Delete a broker's volume when the cluster scales down past it.
    pub delete_claims_on_scale_down: bool,
    /// Delete the volumes when the cluster is deleted.
    pub delete_claims_on_delete: bool,
    /// Percent of each remaining broker's disk a scale-down leaves free.
    pub scale_down_free_space_percent: u8,
    /// Resources of the broker container.
    pub resources: Option<ResourceRequirements>,
    /// User broker properties (none of them reserved).
    pub broker_config: BTreeMap<String, String>,
    /// Kafka listener port.
    pub kafka_port: i32,
    /// HTTP side port.
    pub http_port: i32,
    /// Pod template overrides (empty when unset).
    pub pod_template: PodTemplateOverrides,
    /// Grace period of a broker's shutdown.
    pub termination_grace_period_seconds: i64,
}

/// One thing wrong with a KafkaCluster spec.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The object has no namespace (KafkaCluster is namespaced; the API server always sets it).
    #[error("metadata.namespace is missing")]
    MissingNamespace,
    /// The object has no uid yet, so nothing can be owned by it.
    #[error("metadata.uid is missing")]
    MissingUid,
    /// The name is too long for the StatefulSet and its pods.
    #[error("metadata.name {name:?} has {len} characters; at most {MAX_NAME_LEN} fit the StatefulSet's pod labels")]
    NameTooLong { name: String, len: usize },
    /// Fewer than one broker.
    #[error("spec.brokers is {0}; a cluster needs at least 1 broker")]
    TooFewBrokers(i32),
    /// No image.
    #[error("spec.image is empty")]
    EmptyImage,
    /// A listener port outside 1..=65535.
    #[error("spec.listeners.{listener} is {port}; ports run from 1 to 65535")]
    PortOutOfRange { listener: &'static str, port: i32 },
    /// Both listeners on one port.
    #[error("spec.listeners.kafka and spec.listeners.http are both {0}; they must differ")]
    SamePort(i32),
    /// A listener on the port of the controller (metadata quorum) listener.
    #[error("spec.listeners.{listener} is {port}, the port of the brokers' controller listener; choose another")]
    ControllerPort { listener: &'static str, port: i32 },
    /// The storage size is not a positive Kubernetes quantity.
    #[error("spec.storage.size {0:?} is not a positive quantity such as 10Gi")]
    BadStorageSize(String),
    /// A broker property the operator owns.
    #[error("spec.brokerConfig.{0} is set by the operator from each pod's identity; remove it")]
    ReservedBrokerConfig(String),
    /// A broker property that would change the metadata quorum's voter set.
    #[error(
        "spec.brokerConfig.{0} would change the metadata quorum's voters, which are fixed when the cluster is \
         created (status.quorumVoters); changing the voter set is not supported yet, remove it"
    )]
    VoterSetConfig(String),
    /// A negative termination grace period.
    #[error("spec.podTemplate.terminationGracePeriodSeconds is {0}; it cannot be negative")]
    NegativeGracePeriod(i64),
}

/// A KafkaCluster spec that cannot be reconciled, with every problem found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    /// What is wrong, in spec order.
    pub problems: Vec<Problem>,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid KafkaCluster: ")?;
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Invalid {}

/// Checks a KafkaCluster and fills in defaults.
pub fn validate(cluster: &KafkaCluster) -> Result<ValidatedKafkaCluster, Invalid> {
    let spec = &cluster.spec;
    let mut problems = Vec::new();

    let name = cluster.name_any();
    if name.len() > MAX_NAME_LEN {
        problems.push(Problem::NameTooLong {
            len: name.len(),
            name: name.clone(),
        });
    }
    let namespace = cluster.namespace();
    if namespace.is_none() {
        problems.push(Problem::MissingNamespace);
    }
    let owner_reference = cluster.controller_owner_ref(&());
    if owner_reference.is_none() {
        problems.push(Problem::MissingUid);
    }
    if spec.brokers < 1 {
        problems.push(Problem::TooFewBrokers(spec.brokers));
    }
    if spec.image.trim().is_empty() {
        problems.push(Problem::EmptyImage);
    }
    for (listener, port) in [
        ("kafka", spec.listeners.kafka),
        ("http", spec.listeners.http),
    ] {
        if !(1..=65535).contains(&port) {
            problems.push(Problem::PortOutOfRange { listener, port });
        }
    }
    for (listener, port) in [
        ("kafka", spec.listeners.kafka),
        ("http", spec.listeners.http),
    ] {
        if port == super::build::CONTROLLER_PORT {
            problems.push(Problem::ControllerPort { listener, port });
        }
    }
    if spec.listeners.kafka == spec.listeners.http {
        problems.push(Problem::SamePort(spec.listeners.kafka));
    }
    if !is_positive_quantity(&spec.storage.size.0) {
        problems.push(Problem::BadStorageSize(spec.storage.size.0.clone()));
    }
    for key in spec.broker_config.keys() {
        if VOTER_SET_CONFIG.contains(&key.trim()) {
            problems.push(Problem::VoterSetConfig(key.clone()));
        } else if RESERVED_BROKER_CONFIG.contains(&key.trim()) {
            problems.push(Problem::ReservedBrokerConfig(key.clone()));
        }
    }
    let pod_template = spec.pod_template.clone().unwrap_or_default();
    let termination_grace_period_seconds = pod_template
        .termination_grace_period_seconds
        .unwrap_or(DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS);
    if termination_grace_period_seconds < 0 {
        problems.push(Problem::NegativeGracePeriod(
            termination_grace_period_seconds,
        ));
    }

    match (namespace, owner_reference) {
        (Some(namespace), Some(owner_reference)) if problems.is_empty() => {
            Ok(ValidatedKafkaCluster {
                name,
                namespace,
                generation: cluster.meta().generation,
                owner_reference,
                brokers: spec.brokers,
                image: spec.image.clone(),
                image_pull_policy: spec.image_pull_policy.clone(),
                storage_size: spec.storage.size.clone(),
                storage_class_name: spec.storage.storage_class_name.clone(),
                delete_claims_on_scale_down: spec.storage.delete_claims_on_scale_down,
                delete_claims_on_delete: spec.storage.delete_claims_on_delete,
                scale_down_free_space_percent: spec.storage.scale_down_free_space_percent,
                resources: spec.resources.clone(),
                broker_config: spec.broker_config.clone(),
                kafka_port: spec.listeners.kafka,
                http_port: spec.listeners.http,
                pod_template,
                termination_grace_period_seconds,
            })
        }
        _ => Err(Invalid { problems }),
    }
}

/// Whether `text` is a Kubernetes quantity (`<number><suffix>`, decimal or binary SI suffix, or an exponent)
/// greater than zero.
fn is_positive_quantity(text: &str) -> bool {
    const SUFFIXES: &[&str] = &[
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E", "",
    ];
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(number_end);
    let suffix_ok = SUFFIXES.contains(&suffix)
        || suffix.strip_prefix(['e', 'E']).is_some_and(|exp| {
            exp.trim_start_matches(['+', '-'])
                .chars()
                .all(|c| c.is_ascii_digit())
                && !exp.is_empty()
        });
    let digits = number.strip_prefix('+').unwrap_or(number);
    let well_formed = !digits.is_empty()
        && digits.chars().filter(|c| *c == '.').count() <= 1
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.chars().any(|c| c.is_ascii_digit());
    well_formed && suffix_ok && digits.chars().any(|c| ('1'..='9').contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_spec_validates_with_defaults() {
        let valid = validate(&KafkaCluster::test()).expect("fixture is valid");
        assert_eq!(valid.brokers, 3);
        assert_eq!(valid.kafka_port, 9092);
        assert_eq!(valid.http_port, 9644);
        assert_eq!(
            valid.termination_grace_period_seconds,
            DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS
        );
        assert_eq!(valid.owner_reference.controller, Some(true));
        assert_eq!(valid.owner_reference.kind, "KafkaCluster");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let cluster = KafkaCluster::test()
            .brokers(0)
            .image("")
            .storage_size("ten gigs")
            .broker_config("node.id", "7")
            .broker_config("log.retention.hours", "1");
        let invalid = validate(&cluster).expect_err("spec is invalid");
        assert_eq!(
            invalid.problems,
            vec![
                Problem::TooFewBrokers(0),
                Problem::EmptyImage,
                Problem::BadStorageSize("ten gigs".into()),
                Problem::ReservedBrokerConfig("node.id".into()),
            ]
        );
        let message = invalid.to_string();
        assert!(
            message.contains("spec.brokers is 0") && message.contains("spec.brokerConfig.node.id"),
            "{message}"
        );
    }

    #[test]
    fn names_too_long_for_pod_labels_are_refused() {
        let cluster = KafkaCluster::test().name(&"x".repeat(MAX_NAME_LEN + 1));
        let invalid = validate(&cluster).expect_err("name is too long");
        assert!(
            matches!(invalid.problems[..], [Problem::NameTooLong { len: 53, .. }]),
            "{invalid}"
        );
        assert!(validate(&KafkaCluster::test().name(&"x".repeat(MAX_NAME_LEN))).is_ok());
    }

    #[test]
    fn listeners_must_be_distinct_valid_ports() {
        let invalid = validate(&KafkaCluster::test().ports(9092, 9092)).expect_err("same port");
        assert_eq!(invalid.problems, vec![Problem::SamePort(9092)]);
        let invalid = validate(&KafkaCluster::test().ports(0, 70000)).expect_err("out of range");
        assert_eq!(
            invalid.problems,
            vec![
                Problem::PortOutOfRange {
                    listener: "kafka",
                    port: 0
                },
                Problem::PortOutOfRange {
                    listener: "http",
                    port: 70000
                },
            ]
        );
    }

    #[test]
    fn the_controller_port_and_the_cluster_shape_are_the_operators() {
        let invalid =
            validate(&KafkaCluster::test().ports(9093, 9644)).expect_err("controller port");
        assert_eq!(
            invalid.problems,
            vec![Problem::ControllerPort {
                listener: "kafka",
                port: 9093
            }]
        );
        let cluster = KafkaCluster::test()
            .broker_config("process.roles", "broker")
            .broker_config("controller.quorum.voters", "1@x:9093");
        let invalid = validate(&cluster).expect_err("reserved keys");
        assert_eq!(
            invalid.problems,
            vec![
                Problem::VoterSetConfig("controller.quorum.voters".into()),
                Problem::VoterSetConfig("process.roles".into()),
            ]
        );
        assert!(
            invalid
                .to_string()
                .contains("changing the voter set is not supported yet"),
            "{invalid}"
        );
        let listener = KafkaCluster::test().broker_config("controller.listener.names", "X");
        assert_eq!(
            validate(&listener).expect_err("reserved key").problems,
            vec![Problem::ReservedBrokerConfig(
                "controller.listener.names".into()
            )]
        );
        // Replication defaults stay the user's to change.
        assert!(validate(&KafkaCluster::test().broker_config("min.insync.replicas", "1")).is_ok());
    }

    #[test]
    fn an_object_not_yet_stored_cannot_own_anything() {
        let mut cluster = KafkaCluster::test();
        cluster.metadata.uid = None;
        assert_eq!(
            validate(&cluster).expect_err("no uid").problems,
            vec![Problem::MissingUid]
        );
    }

    #[test]
    fn storage_sizes_are_positive_quantities() {
        for good in ["10Gi", "1", "500M", "1.5Ti", "1e9", "0.5Gi", "+2Gi"] {
            assert!(is_positive_quantity(good), "{good} should be accepted");
        }
        for bad in [
            "", "0", "0Gi", "Gi", "-1Gi", "10 Gi", "10gb", "1..5Gi", "1e", ".",
        ] {
            assert!(!is_positive_quantity(bad), "{bad:?} should be refused");
        }
    }
}
