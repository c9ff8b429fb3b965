//! Builds every Kubernetes object a KafkaCluster needs from a `ValidatedKafkaCluster`. Pure: no I/O, no clock, no
//! randomness, so the same spec always yields byte-identical objects and server-side apply is a no-op when nothing
//! changed.
//!
//! Objects: a ConfigMap with the broker properties, a headless Service (stable per-broker DNS names), a bootstrap
//! Service, the StatefulSet and a PodDisruptionBudget (at most one broker down).
//!
//! The brokers form one KRaft-style cluster: node.id is the pod ordinal, the [`Topology`]'s voters (decided when
//! the cluster was created, see [`super::voters`]) are `broker,controller` voters of the metadata quorum and the
//! others `broker`s. Each pod reads its own complete
//! `server.properties` (`broker-<ordinal>.properties` in the ConfigMap, picked with `$(NODE_ID)` as the other
//! per-pod flags are), and an init container formats its volume once with the cluster id.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        apps::v1::{
            StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
            StatefulSetUpdateStrategy,
        },
        core::v1::{
            Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvVar,
            EnvVarSource, HTTPGetAction, ObjectFieldSelector, PersistentVolumeClaim,
            PersistentVolumeClaimSpec, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
            SeccompProfile, SecurityContext, Service, ServicePort, ServiceSpec, Volume,
            VolumeMount, VolumeResourceRequirements,
        },
        policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec},
    },
    apimachinery::pkg::{
        apis::meta::v1::LabelSelector, apis::meta::v1::ObjectMeta, util::intstr::IntOrString,
    },
};

use super::{
    validate::ValidatedKafkaCluster,
    voters::{Topology, Voters, MAX_VOTERS},
};
use crate::crd::QuorumMode;

/// Name of the broker container.
pub const CONTAINER_NAME: &str = "broker";
/// Name of the per-broker volume claim template (PVCs are `data-<cluster>-<ordinal>`).
pub const DATA_VOLUME: &str = "data";
/// Where the broker's data volume is mounted.
pub const DATA_DIR: &str = "/var/lib/tributary/data";
/// Where the broker ConfigMap is mounted.
pub const CONFIG_DIR: &str = "/etc/tributary";
/// Port of the controller (metadata quorum) listener on every broker.
pub const CONTROLLER_PORT: i32 = 9093;
/// Name of the init container that formats a broker's volume.
pub const FORMAT_CONTAINER_NAME: &str = "format";
/// Key in the ConfigMap (and file in [`CONFIG_DIR`]) of a forming dynamic quorum's initial voters, Kafka's
/// `--initial-controllers` list, which the format init container reads (`--initial-controllers-file`).
pub const INITIAL_CONTROLLERS_FILE: &str = "initial-controllers";
/// Pod annotation holding a hash of the broker properties: the broker reads them only at start, so a change must
/// roll the pods; anything else (such as the broker count) must not.
pub const CONFIG_HASH_ANNOTATION: &str = "tributary.dev/config-hash";
/// Label the StatefulSet controller puts on each pod with its ordinal; it becomes the broker id.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
/// Group of the broker pods' volumes: the uid and gid the broker image runs as (distroless `nonroot`, see
/// broker/Dockerfile), so a fresh volume is writable by the broker.
pub const BROKER_FS_GROUP: i64 = 65532;
/// Broker properties a Tributary broker takes live as cluster-wide dynamic configs (Kafka's cluster-wide
/// dynamic broker configs that are topic defaults, the broker's `broker_key_to_topic_key` list, the
/// cluster-wide defaults of the replication throttle rates, and the creation defaults Tributary also takes
/// live): a change of these in `spec.brokerConfig`, or of the
/// operator's replication defaults with the broker count, is sent with IncrementalAlterConfigs and restarts
/// nothing. They stay in the properties files too, so a broker that restarts for another reason starts with
/// them.
pub const LIVE_BROKER_CONFIGS: &[&str] = &[
    // Cluster-wide defaults of the per-broker replication throttle: they bound every move, the drains and
    // fills of scaling included.
    "leader.replication.throttled.rate",
    "follower.replication.throttled.rate",
    "num.partitions",
    "default.replication.factor",
    "offsets.topic.replication.factor",
    "log.segment.bytes",
    "log.roll.ms",
    "log.roll.hours",
    "log.retention.ms",
    "log.retention.minutes",
    "log.retention.hours",
    "log.retention.bytes",
    "message.max.bytes",
    "log.index.interval.bytes",
    "log.message.timestamp.type",
    "log.message.timestamp.before.max.ms",
    "log.message.timestamp.after.max.ms",
    "log.flush.interval.messages",
    "log.flush.interval.ms",
    "log.cleanup.policy",
    "min.insync.replicas",
    "log.cleaner.delete.retention.ms",
    "log.cleaner.min.cleanable.ratio",
    "log.cleaner.min.compaction.lag.ms",
    "compression.type",
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.zstd.level",
    "log.segment.delete.delay.ms",
    "log.local.retention.bytes",
    "log.local.retention.ms",
    "log.cleaner.max.compaction.lag.ms",
    "log.preallocate",
    "log.index.size.max.bytes",
    "log.roll.jitter.ms",
    "log.roll.jitter.hours",
    "max.decompressed.message.bytes",
    "log.remote.copy.lag.bytes",
    "log.remote.copy.lag.ms",
];

/// What is applied live: the operator's replication defaults for the running broker count, and the live part
/// of `spec.brokerConfig` over them.
pub fn live_broker_config(
    cluster: &ValidatedKafkaCluster,
    topology: &Topology,
) -> BTreeMap<String, String> {
    let mut live = replication_defaults(topology);
    live.extend(
        cluster
            .broker_config
            .iter()
            .filter(|(key, _)| LIVE_BROKER_CONFIGS.contains(&key.as_str()))
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    live
}

/// From three brokers a partition survives one loss with acks=all; below that, every broker holds every
/// partition and one in-sync replica is enough. The brokers that run count, not spec.brokers: a blocked
/// scale-down changes nothing the brokers see. All three are taken live, so the broker count never rolls the
/// brokers.
fn replication_defaults(topology: &Topology) -> BTreeMap<String, String> {
    let replication = topology.brokers.clamp(1, 3);
    let min_insync = if topology.brokers >= 3 { 2 } else { 1 };
    BTreeMap::from([
        (
            "default.replication.factor".to_owned(),
            replication.to_string(),
        ),
        (
            "offsets.topic.replication.factor".to_owned(),
            replication.to_string(),
        ),
        ("min.insync.replicas".to_owned(), min_insync.to_string()),
    ])
}

/// Field manager of everything the operator applies.
pub const FIELD_MANAGER: &str = "tributary-operator";

/// Every object a KafkaCluster should have, in the order they are applied.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredObjects {
    /// Broker properties (`server.properties`).
    pub config_map: ConfigMap,
    /// Headless Service: `<pod>.<cluster>-brokers.<ns>.svc` for every broker, ready or not.
    pub headless_service: Service,
    /// ClusterIP Service over ready brokers that clients bootstrap from.
    pub bootstrap_service: Service,
    /// The brokers.
    pub stateful_set: StatefulSet,
    /// At most one broker voluntarily disrupted at a time.
    pub pod_disruption_budget: PodDisruptionBudget,
}

/// Names of the objects built for a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectNames {
    /// StatefulSet and PodDisruptionBudget: the cluster's name.
    pub stateful_set: String,
    /// `<cluster>-config`.
    pub config_map: String,
    /// `<cluster>-brokers`.
    pub headless_service: String,
    /// `<cluster>-bootstrap`.
    pub bootstrap_service: String,
}

impl ObjectNames {
    /// The names for the cluster called `cluster`.
    pub fn new(cluster: &str) -> Self {
        Self {
            stateful_set: cluster.to_owned(),
            config_map: format!("{cluster}-config"),
            headless_service: format!("{cluster}-brokers"),
            bootstrap_service: format!("{cluster}-bootstrap"),
        }
    }
}

/// `host:port` of the bootstrap Service, as clients inside the cluster reach it.
pub fn bootstrap_address(cluster: &ValidatedKafkaCluster) -> String {
    let names = ObjectNames::new(&cluster.name);
    format!(
        "{}.{}.svc:{}",
        names.bootstrap_service, cluster.namespace, cluster.kafka_port
    )
}

/// Labels that select the broker pods of `cluster`; they never change for the life of the cluster.
pub fn selector_labels(cluster: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "tributary".to_owned()),
        ("app.kubernetes.io/instance".to_owned(), cluster.to_owned()),
        (
            "app.kubernetes.io/component".to_owned(),
            "broker".to_owned(),
        ),
    ])
}

/// [`selector_labels`] as a label selector string (`k=v,k=v`): for listing the brokers' pods, and the scale
/// subresource's `status.selector`.
pub fn pod_selector(cluster: &str) -> String {
    selector_labels(cluster)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn labels(cluster: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(cluster);
    labels.insert(
        "app.kubernetes.io/managed-by".to_owned(),
        FIELD_MANAGER.to_owned(),
    );
    labels
}

fn metadata(cluster: &ValidatedKafkaCluster, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(cluster.namespace.clone()),
        labels: Some(labels(&cluster.name)),
        owner_references: Some(vec![cluster.owner_reference.clone()]),
        ..ObjectMeta::default()
    }
}

/// Key in the ConfigMap of the properties of the broker with `ordinal`.
pub fn config_file(ordinal: i32) -> String {
    format!("broker-{ordinal}.properties")
}

/// The cluster id: Kafka's form (22 characters of unpadded base64url of 16 bytes) of the KafkaCluster's uid. The
/// uid is fixed for the object's life, so the id survives operator restarts without being stored anywhere, and
/// the build stays pure (no randomness). A uid that is not a UUID (never from an API server) is hashed instead.
pub fn cluster_id(uid: &str) -> String {
    let bytes = match uuid::Uuid::parse_str(uid) {
        Ok(uuid) => *uuid.as_bytes(),
        Err(_) => hashed_uuid(uid, &format!("{uid}/cluster-id")),
    };
    kafka_uuid_text(bytes)
}

/// 16 bytes from the FNV-1a hashes of `first` and `second`: a stable id for names that must not be stored.
fn hashed_uuid(first: &str, second: &str) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&fnv1a(first.as_bytes()).to_be_bytes());
    bytes[8..].copy_from_slice(&fnv1a(second.as_bytes()).to_be_bytes());
    bytes
}

/// Kafka's printed form of a UUID: 22 characters of unpadded base64url.
fn kafka_uuid_text(bytes: [u8; 16]) -> String {
    base64::engine::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}

/// The directory id the voter with `ordinal` formats with while a dynamic quorum forms: Kafka's form of 16
/// bytes derived from the KafkaCluster's uid, so the list is the same in every reconcile without being
/// stored. Only the first formation uses it; a directory formatted later gets a random one, so a voter whose
/// disk was replaced is told apart from the one it replaces.
pub fn initial_directory_id(uid: &str, ordinal: i32) -> String {
    kafka_uuid_text(hashed_uuid(
        &format!("{uid}/directory/{ordinal}"),
        &format!("{ordinal}/directory/{uid}"),
    ))
}

/// The `--initial-controllers` list of a dynamic quorum forming with `voters`.
fn initial_controllers(
    cluster: &ValidatedKafkaCluster,
    names: &ObjectNames,
    voters: &Voters,
) -> String {
    voters
        .ids()
        .map(|id| {
            format!(
                "{id}@{}:{CONTROLLER_PORT}:{}",
                pod_host(cluster, names, id),
                initial_directory_id(&cluster.owner_reference.uid, id)
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The controller listener (`host`, `port`) the broker with `ordinal` advertises.
pub fn controller_endpoint(cluster: &ValidatedKafkaCluster, ordinal: i32) -> (String, u16) {
    let host = pod_host(cluster, &ObjectNames::new(&cluster.name), ordinal);
    (host, u16::try_from(CONTROLLER_PORT).unwrap_or(9093))
}

/// Stable DNS name of the broker pod with `ordinal`, from the headless Service.
fn pod_host(cluster: &ValidatedKafkaCluster, names: &ObjectNames, ordinal: i32) -> String {
    format!(
        "{}-{ordinal}.{}.{}.svc",
        names.stateful_set, names.headless_service, cluster.namespace
    )
}

/// Builds every desired object of `cluster`, running the brokers and voters of `topology` (which may run more
/// brokers than `spec.brokers`: see [`super::scale`]).
pub fn build(cluster: &ValidatedKafkaCluster, topology: &Topology) -> DesiredObjects {
    let names = ObjectNames::new(&cluster.name);
    let mut data: BTreeMap<String, String> = (0..topology.brokers)
        .map(|ordinal| {
            (
                config_file(ordinal),
                node_properties(cluster, topology, ordinal),
            )
        })
        .collect();
    if topology.mode == QuorumMode::Forming {
        // Read only by the format init container: withdrawing it once formed restarts nothing.
        data.insert(
            INITIAL_CONTROLLERS_FILE.to_owned(),
            initial_controllers(cluster, &names, &topology.voters),
        );
    }
    // Every pod's file is pod 0's with only the ordinal's own lines changed (node.id, roles, advertised host),
    // so pod 0's file is what a roll must follow. Keys the brokers take live (the user's and the operator's
    // replication defaults) are applied through IncrementalAlterConfigs (see `live_broker_config`), so a change
    // of one alone must not roll the pods.
    let mut restart_relevant = node_config(cluster, topology, 0);
    restart_relevant.retain(|key, _| !LIVE_BROKER_CONFIGS.contains(&key.as_str()));
    let rolled_by = render_properties("", &restart_relevant);
    DesiredObjects {
        config_map: ConfigMap {
            metadata: metadata(cluster, &names.config_map),
            data: Some(data),
            ..ConfigMap::default()
        },
        headless_service: headless_service(cluster, &names),
        bootstrap_service: bootstrap_service(cluster, &names),
        stateful_set: stateful_set(cluster, &names, topology, &rolled_by),
        pod_disruption_budget: PodDisruptionBudget {
            metadata: metadata(cluster, &names.stateful_set),
            spec: Some(PodDisruptionBudgetSpec {
                max_unavailable: Some(IntOrString::Int(1)),
                selector: Some(LabelSelector {
                    match_labels: Some(selector_labels(&cluster.name)),
                    ..LabelSelector::default()
                }),
                ..PodDisruptionBudgetSpec::default()
            }),
            ..PodDisruptionBudget::default()
        },
    }
}

fn service_port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name.to_owned()),
        port,
        target_port: Some(IntOrString::String(name.to_owned())),
        protocol: Some("TCP".to_owned()),
        ..ServicePort::default()
    }
}

fn headless_service(cluster: &ValidatedKafkaCluster, names: &ObjectNames) -> Service {
    Service {
        metadata: metadata(cluster, &names.headless_service),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            // Brokers must resolve each other before they are Ready: readiness needs the cluster to form.
            publish_not_ready_addresses: Some(true),
            selector: Some(selector_labels(&cluster.name)),
            ports: Some(vec![
                service_port("kafka", cluster.kafka_port),
                service_port("controller", CONTROLLER_PORT),
                service_port("http", cluster.http_port),
            ]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn bootstrap_service(cluster: &ValidatedKafkaCluster, names: &ObjectNames) -> Service {
    Service {
        metadata: metadata(cluster, &names.bootstrap_service),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(selector_labels(&cluster.name)),
            ports: Some(vec![service_port("kafka", cluster.kafka_port)]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn env_from_field(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field_path.to_owned(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn http_probe(path: &str, period_seconds: i32, failure_threshold: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String("http".to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period_seconds),
        failure_threshold: Some(failure_threshold),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

/// The pod's own properties file, picked by its ordinal.
fn pod_config_path() -> String {
    format!("{CONFIG_DIR}/broker-$(NODE_ID).properties")
}

fn security_context() -> SecurityContext {
    // Pod Security "restricted": the broker writes only to its data volume.
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            ..Capabilities::default()
        }),
        ..SecurityContext::default()
    }
}

fn volume_mounts() -> Vec<VolumeMount> {
    vec![
        VolumeMount {
            name: DATA_VOLUME.to_owned(),
            mount_path: DATA_DIR.to_owned(),
            ..VolumeMount::default()
        },
        VolumeMount {
            name: "config".to_owned(),
            mount_path: CONFIG_DIR.to_owned(),
            read_only: Some(true),
            ..VolumeMount::default()
        },
    ]
}

fn node_id_env() -> EnvVar {
    env_from_field("NODE_ID", &format!("metadata.labels['{POD_INDEX_LABEL}']"))
}

/// Formats the broker's volume for the cluster before the broker starts; a formatted volume is left as it is
/// (`--ignore-formatted`), so restarts and rolls pass straight through. In a dynamic quorum every pod gets the
/// same flags: the initial voters find themselves in the initial-controllers file while the quorum forms, and
/// every other pod (and every pod once the file is withdrawn) joins the quorum.
fn format_container(cluster: &ValidatedKafkaCluster, topology: &Topology) -> Container {
    let mut args = vec![
        "format".to_owned(),
        format!(
            "--cluster-id={}",
            cluster_id(cluster.owner_reference.uid.as_str())
        ),
        format!("--config={}", pod_config_path()),
        "--ignore-formatted".to_owned(),
    ];
    if topology.is_dynamic() {
        args.push(format!(
            "--initial-controllers-file={CONFIG_DIR}/{INITIAL_CONTROLLERS_FILE}"
        ));
    }
    Container {
        name: FORMAT_CONTAINER_NAME.to_owned(),
        image: Some(cluster.image.clone()),
        image_pull_policy: cluster.image_pull_policy.clone(),
        command: Some(vec!["tributary-broker".to_owned()]),
        // `--cluster-id=` with `=`: an id may start with `-`.
        args: Some(args),
        env: Some(vec![node_id_env()]),
        resources: cluster.resources.clone(),
        security_context: Some(security_context()),
        volume_mounts: Some(volume_mounts()),
        // A broker that stops on a fatal error says why in its last log lines: Kubernetes keeps them as the
        // termination message (`kubectl describe pod` shows it), and the operator reads a replaced voter's ids
        // there (see `voters::parse_replaced_voter`).
        termination_message_policy: Some("FallbackToLogsOnError".to_owned()),
        ..Container::default()
    }
}

fn broker_container(cluster: &ValidatedKafkaCluster, names: &ObjectNames) -> Container {
    let advertised = format!(
        "$(POD_NAME).{}.{}.svc:{}",
        names.headless_service, cluster.namespace, cluster.kafka_port
    );
    // Kubernetes expands $(VAR) in args from the container's env, so no shell is needed in the image. The
    // flags repeat what the pod's properties file says, so a pod runner that rewrites addresses in flags can
    // run the pod elsewhere.
    let args = vec![
        "--node-id=$(NODE_ID)".to_owned(),
        format!("--listen=0.0.0.0:{}", cluster.kafka_port),
        format!("--advertised-listener={advertised}"),
        format!("--data-dir={DATA_DIR}"),
        format!("--http-listen=0.0.0.0:{}", cluster.http_port),
        format!("--config={}", pod_config_path()),
    ];
    let mut env = vec![env_from_field("POD_NAME", "metadata.name"), node_id_env()];
    env.extend(cluster.pod_template.env.iter().cloned());
    Container {
        name: CONTAINER_NAME.to_owned(),
        image: Some(cluster.image.clone()),
        image_pull_policy: cluster.image_pull_policy.clone(),
        command: Some(vec!["tributary-broker".to_owned()]),
        args: Some(args),
        env: Some(env),
        ports: Some(vec![
            ContainerPort {
                name: Some("kafka".to_owned()),
                container_port: cluster.kafka_port,
                protocol: Some("TCP".to_owned()),
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some("controller".to_owned()),
                container_port: CONTROLLER_PORT,
                protocol: Some("TCP".to_owned()),
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some("http".to_owned()),
                container_port: cluster.http_port,
                protocol: Some("TCP".to_owned()),
                ..ContainerPort::default()
            },
        ]),
        // Ready means registered and caught up, so rollouts and the PodDisruptionBudget wait for it.
        readiness_probe: Some(http_probe("/readyz", 5, 3)),
        liveness_probe: Some(http_probe("/healthz", 10, 6)),
        resources: cluster.resources.clone(),
        security_context: Some(security_context()),
        volume_mounts: Some(volume_mounts()),
        // A broker that stops on a fatal error says why in its last log lines: Kubernetes keeps them as the
        // termination message (`kubectl describe pod` shows it), and the operator reads a replaced voter's ids
        // there (see `voters::parse_replaced_voter`).
        termination_message_policy: Some("FallbackToLogsOnError".to_owned()),
        ..Container::default()
    }
}

fn non_empty<T: Clone>(items: &[T]) -> Option<Vec<T>> {
    (!items.is_empty()).then(|| items.to_vec())
}

fn non_empty_map(map: &BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!map.is_empty()).then(|| map.clone())
}

fn stateful_set(
    cluster: &ValidatedKafkaCluster,
    names: &ObjectNames,
    topology: &Topology,
    properties: &str,
) -> StatefulSet {
    let overrides = &cluster.pod_template;
    // The user's labels first, so the operator's (which the selector uses) win on conflict.
    let mut pod_labels = overrides.labels.clone();
    pod_labels.extend(labels(&cluster.name));
    // Annotation-based Prometheus discovery scrapes every broker's /metrics; the user's annotations win, so
    // `prometheus.io/scrape: "false"` turns it off.
    let mut pod_annotations = BTreeMap::from([
        ("prometheus.io/scrape".to_owned(), "true".to_owned()),
        (
            "prometheus.io/port".to_owned(),
            cluster.http_port.to_string(),
        ),
        ("prometheus.io/path".to_owned(), "/metrics".to_owned()),
    ]);
    pod_annotations.extend(overrides.annotations.clone());
    pod_annotations.insert(
        CONFIG_HASH_ANNOTATION.to_owned(),
        format!("{:016x}", fnv1a(properties.as_bytes())),
    );

    let retain_or_delete = |delete: bool| Some(if delete { "Delete" } else { "Retain" }.to_owned());
    let claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(DATA_VOLUME.to_owned()),
            labels: Some(labels(&cluster.name)),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            storage_class_name: cluster.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    cluster.storage_size.clone(),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    };

    StatefulSet {
        metadata: metadata(cluster, &names.stateful_set),
        spec: Some(StatefulSetSpec {
            replicas: Some(topology.brokers),
            service_name: Some(names.headless_service.clone()),
            selector: LabelSelector {
                match_labels: Some(selector_labels(&cluster.name)),
                ..LabelSelector::default()
            },
            // Brokers start together: with OrderedReady broker 0 would wait for a quorum that cannot form until the
            // others start. (Immutable after creation.)
            pod_management_policy: Some("Parallel".to_owned()),
            // One broker at a time, each waiting for the previous to be Ready (caught up). The operator's own roll
            // state machine (active controller last) replaces this later.
            // The operator restarts outdated pods itself (cluster/roll.rs), one at a time and only while no
            // partition is under-replicated, the active controller last; RollingUpdate would only wait for Ready.
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".to_owned()),
                ..StatefulSetUpdateStrategy::default()
            }),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: retain_or_delete(cluster.delete_claims_on_delete),
                    when_scaled: retain_or_delete(cluster.delete_claims_on_scale_down),
                },
            ),
            volume_claim_templates: Some(vec![claim]),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(pod_annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    init_containers: Some(vec![format_container(cluster, topology)]),
                    containers: vec![broker_container(cluster, names)],
                    volumes: Some(vec![Volume {
                        name: "config".to_owned(),
                        config_map: Some(ConfigMapVolumeSource {
                            name: names.config_map.clone(),
                            ..ConfigMapVolumeSource::default()
                        }),
                        ..Volume::default()
                    }]),
                    // The broker flushes and hands over leadership on SIGTERM; give it time before SIGKILL.
                    termination_grace_period_seconds: Some(
                        cluster.termination_grace_period_seconds,
                    ),
                    enable_service_links: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        fs_group: Some(BROKER_FS_GROUP),
                        // Re-own a volume only when its root is not the broker's group yet: large volumes restart fast.
                        fs_group_change_policy: Some("OnRootMismatch".to_owned()),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".to_owned(),
                            ..SeccompProfile::default()
                        }),
                        ..PodSecurityContext::default()
                    }),
                    node_selector: non_empty_map(&overrides.node_selector),
                    tolerations: non_empty(&overrides.tolerations),
                    affinity: overrides.affinity.clone(),
                    topology_spread_constraints: non_empty(&overrides.topology_spread_constraints),
                    priority_class_name: overrides.priority_class_name.clone(),
                    service_account_name: overrides.service_account_name.clone(),
                    image_pull_secrets: non_empty(&overrides.image_pull_secrets),
                    ..PodSpec::default()
                }),
            },
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

/// The complete `server.properties` of the broker with `ordinal`, in key order: the operator's replication
/// defaults for the running broker count, the user's `spec.brokerConfig` over them, and the node's identity (which
/// validation keeps the user from setting).
pub fn node_properties(
    cluster: &ValidatedKafkaCluster,
    topology: &Topology,
    ordinal: i32,
) -> String {
    render_properties(
        &format!(
            "# Generated by tributary-operator for broker {ordinal} of KafkaCluster {}/{}: the operator's \
             defaults, spec.brokerConfig, then this broker's identity.\n",
            cluster.namespace, cluster.name
        ),
        &node_config(cluster, topology, ordinal),
    )
}

/// The properties of [`node_properties`].
fn node_config(
    cluster: &ValidatedKafkaCluster,
    topology: &Topology,
    ordinal: i32,
) -> BTreeMap<String, String> {
    let names = ObjectNames::new(&cluster.name);
    // In a dynamic quorum every broker runs a controller, voter or observer, so that any of them can be made a
    // voter without a restart.
    let is_controller = topology.is_dynamic() || topology.voters.contains(ordinal);
    let mut config = replication_defaults(topology);
    config.extend(cluster.broker_config.clone());
    let host = pod_host(cluster, &names, ordinal);
    let quorum = if topology.is_dynamic() {
        // Pods 0 to 2 whether or not they run yet: any one that answers tells the others who votes, and a list
        // that does not follow the broker count keeps scaling from rolling the brokers.
        (
            "controller.quorum.bootstrap.servers",
            (0..MAX_VOTERS)
                .map(|v| format!("{}:{CONTROLLER_PORT}", pod_host(cluster, &names, v)))
                .collect::<Vec<_>>()
                .join(","),
        )
    } else {
        (
            "controller.quorum.voters",
            topology
                .voters
                .ids()
                .map(|v| format!("{v}@{}:{CONTROLLER_PORT}", pod_host(cluster, &names, v)))
                .collect::<Vec<_>>()
                .join(","),
        )
    };
    let mut advertised = format!("PLAINTEXT://{host}:{}", cluster.kafka_port);
    if is_controller {
        advertised.push_str(&format!(",CONTROLLER://{host}:{CONTROLLER_PORT}"));
    }
    let roles = if is_controller {
        "broker,controller"
    } else {
        "broker"
    };
    config.extend(
        [
            ("process.roles", roles.to_owned()),
            ("node.id", ordinal.to_string()),
            (quorum.0, quorum.1),
            (
                "listeners",
                format!(
                    "PLAINTEXT://0.0.0.0:{},CONTROLLER://0.0.0.0:{CONTROLLER_PORT}",
                    cluster.kafka_port
                ),
            ),
            ("advertised.listeners", advertised),
            ("controller.listener.names", "CONTROLLER".to_owned()),
            ("inter.broker.listener.name", "PLAINTEXT".to_owned()),
            ("log.dirs", DATA_DIR.to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    if !is_controller {
        // A broker-only node must not listen on the controller listener; it only connects to it.
        config.insert(
            "listeners".to_owned(),
            format!("PLAINTEXT://0.0.0.0:{}", cluster.kafka_port),
        );
    }
    config
}

/// `header` and then `config` in key order, escaped as Java properties.
pub fn render_properties(header: &str, config: &BTreeMap<String, String>) -> String {
    let mut text = header.to_owned();
    for (key, value) in config {
        escape_properties(&mut text, key, true);
        text.push('=');
        escape_properties(&mut text, value, false);
        text.push('\n');
    }
    text
}

fn escape_properties(out: &mut String, text: &str, is_key: bool) {
    for (i, c) in text.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{c}' => out.push_str("\\f"),
            '=' | ':' | '#' | '!' if is_key => {
                out.push('\\');
                out.push(c);
            }
            ' ' if is_key || i == 0 => out.push_str("\\ "),
            c => out.push(c),
        }
    }
}

/// 64-bit FNV-1a: a hash that is stable across Rust versions and platforms (unlike `DefaultHasher`), so the
/// config-hash annotation does not change (and roll the cluster) when the operator is rebuilt.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests;
