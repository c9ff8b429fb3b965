//! Tests of the pure build step on inline KafkaCluster YAML, as a user would write it.

use k8s_openapi::{
    api::{apps::v1::StatefulSet, core::v1::Container},
    apimachinery::pkg::util::intstr::IntOrString,
};
use kube::Resource;

use super::*;
use crate::{
    cluster::{
        validate::validate,
        voters::{Topology, Voters},
    },
    crd::{KafkaCluster, KafkaClusterSpec},
};

/// The objects of a cluster created as `valid` says (the voter set of a new cluster).
fn build_new(valid: &ValidatedKafkaCluster) -> DesiredObjects {
    build(valid, &Topology::new_cluster(valid.brokers))
}

const MINIMAL: &str = r#"
apiVersion: tributary.dev/v1alpha1
kind: KafkaCluster
metadata:
  name: demo
  namespace: kafka
  uid: 0b7e2f8c-52a4-4a4f-8d3a-7c1f6a9e2d10
  generation: 4
spec:
  brokers: 3
  image: ghcr.io/example/tributary:0.1.0
  storage:
    size: 20Gi
"#;

const FULL: &str = r#"
apiVersion: tributary.dev/v1alpha1
kind: KafkaCluster
metadata:
  name: events
  namespace: streaming
  uid: 5d1c0e1a-2b3f-4c5d-8e9f-0a1b2c3d4e5f
spec:
  brokers: 5
  image: ghcr.io/example/tributary:0.2.0
  imagePullPolicy: IfNotPresent
  storage:
    size: 100Gi
    storageClassName: fast-ssd
    deleteClaimsOnScaleDown: true
    deleteClaimsOnDelete: true
  resources:
    requests: {cpu: "2", memory: 4Gi}
    limits: {memory: 4Gi}
  brokerConfig:
    log.retention.hours: "168"
    min.insync.replicas: "2"
  listeners:
    kafka: 9094
    http: 9644
  podTemplate:
    labels:
      team: payments
      app.kubernetes.io/instance: hijack
    annotations:
      prometheus.io/scrape: "true"
    nodeSelector:
      disktype: ssd
    tolerations:
    - key: dedicated
      operator: Equal
      value: kafka
      effect: NoSchedule
    affinity:
      podAntiAffinity:
        requiredDuringSchedulingIgnoredDuringExecution:
        - topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              app.kubernetes.io/instance: events
    priorityClassName: kafka-critical
    serviceAccountName: tributary
    env:
    - name: RUST_LOG
      value: debug
    terminationGracePeriodSeconds: 300
"#;

fn cluster(yaml: &str) -> KafkaCluster {
    serde_saphyr::from_str(yaml).expect("fixture YAML is a KafkaCluster")
}

fn built(yaml: &str) -> DesiredObjects {
    build_new(&validate(&cluster(yaml)).expect("fixture is valid"))
}

fn sts_spec(objects: &DesiredObjects) -> &StatefulSetSpec {
    objects
        .stateful_set
        .spec
        .as_ref()
        .expect("StatefulSet has a spec")
}

fn pod_spec(sts: &StatefulSet) -> &PodSpec {
    sts.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("pod template has a spec")
}

fn broker(sts: &StatefulSet) -> &Container {
    let containers = &pod_spec(sts).containers;
    containers
        .iter()
        .find(|c| c.name == CONTAINER_NAME)
        .expect("broker container")
}

fn env_field_path<'a>(container: &'a Container, name: &str) -> Option<&'a str> {
    container
        .env
        .iter()
        .flatten()
        .find(|e| e.name == name)
        .and_then(|e| e.value_from.as_ref()?.field_ref.as_ref())
        .map(|f| f.field_path.as_str())
}

#[test]
fn every_object_is_owned_by_the_cluster_and_lives_in_its_namespace() {
    let objects = built(MINIMAL);
    let metas = [
        &objects.config_map.metadata,
        &objects.headless_service.metadata,
        &objects.bootstrap_service.metadata,
        &objects.stateful_set.metadata,
        &objects.pod_disruption_budget.metadata,
    ];
    for meta in metas {
        let name = meta.name.as_deref().unwrap_or("?");
        assert_eq!(meta.namespace.as_deref(), Some("kafka"), "{name} namespace");
        let owners = meta.owner_references.as_deref().unwrap_or_default();
        assert!(
            matches!(owners, [o] if o.kind == "KafkaCluster" && o.name == "demo"
                && o.uid == "0b7e2f8c-52a4-4a4f-8d3a-7c1f6a9e2d10" && o.controller == Some(true)
                && o.api_version == "tributary.dev/v1alpha1"),
            "{name} owner references: {owners:?}"
        );
        let labels = meta.labels.as_ref().expect("labels");
        assert_eq!(
            labels.get("app.kubernetes.io/instance").map(String::as_str),
            Some("demo"),
            "{name}"
        );
    }
    let names: Vec<_> = metas.iter().filter_map(|m| m.name.as_deref()).collect();
    assert_eq!(
        names,
        [
            "demo-config",
            "demo-brokers",
            "demo-bootstrap",
            "demo",
            "demo"
        ]
    );
}

#[test]
fn statefulset_runs_one_broker_per_replica_with_identity_from_the_pod() {
    let objects = built(MINIMAL);
    let spec = sts_spec(&objects);
    assert_eq!(spec.replicas, Some(3));
    assert_eq!(
        spec.service_name.as_deref(),
        Some("demo-brokers"),
        "pods get DNS names from the headless Service"
    );
    assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
    assert_eq!(
        spec.selector.match_labels.as_ref(),
        Some(&selector_labels("demo"))
    );

    let broker = broker(&objects.stateful_set);
    assert_eq!(
        broker.image.as_deref(),
        Some("ghcr.io/example/tributary:0.1.0")
    );
    assert_eq!(
        broker.command.as_deref(),
        Some(&["tributary-broker".to_owned()][..])
    );
    assert_eq!(
        broker.args.as_deref().unwrap_or_default(),
        [
            "--node-id=$(NODE_ID)",
            "--listen=0.0.0.0:9092",
            "--advertised-listener=$(POD_NAME).demo-brokers.kafka.svc:9092",
            "--data-dir=/var/lib/tributary/data",
            "--http-listen=0.0.0.0:9644",
            "--config=/etc/tributary/broker-$(NODE_ID).properties",
        ]
    );
    // $(VAR) in args only expands for variables defined earlier in env.
    assert_eq!(env_field_path(broker, "POD_NAME"), Some("metadata.name"));
    assert_eq!(
        env_field_path(broker, "NODE_ID"),
        Some("metadata.labels['apps.kubernetes.io/pod-index']")
    );
}

#[test]
fn probes_use_readyz_and_healthz_on_the_http_port() {
    let objects = built(FULL);
    let broker = broker(&objects.stateful_set);
    let path_and_port = |probe: Option<&Probe>| {
        let get = probe.and_then(|p| p.http_get.as_ref()).expect("HTTP probe");
        (get.path.clone(), get.port.clone())
    };
    let http = IntOrString::String("http".into());
    assert_eq!(
        path_and_port(broker.readiness_probe.as_ref()),
        (Some("/readyz".into()), http.clone())
    );
    assert_eq!(
        path_and_port(broker.liveness_probe.as_ref()),
        (Some("/healthz".into()), http)
    );
    let http_port = broker
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some("http"))
        .expect("http port");
    assert_eq!(http_port.container_port, 9644);
    assert!(broker
        .args
        .iter()
        .flatten()
        .any(|a| a == "--http-listen=0.0.0.0:9644"));
    assert!(broker
        .args
        .iter()
        .flatten()
        .any(|a| a == "--advertised-listener=$(POD_NAME).events-brokers.streaming.svc:9094"));
}

#[test]
fn volumes_come_from_spec_storage_and_are_kept_by_default() {
    let objects = built(MINIMAL);
    let spec = sts_spec(&objects);
    let policy = spec
        .persistent_volume_claim_retention_policy
        .as_ref()
        .expect("retention policy");
    assert_eq!(
        policy.when_deleted.as_deref(),
        Some("Retain"),
        "volumes outlive a deleted cluster by default"
    );
    assert_eq!(
        policy.when_scaled.as_deref(),
        Some("Retain"),
        "volumes outlive a scale-down by default"
    );
    let claims = spec.volume_claim_templates.as_deref().unwrap_or_default();
    assert_eq!(claims.len(), 1);
    let claim = claims[0].spec.as_ref().expect("claim spec");
    assert_eq!(claims[0].metadata.name.as_deref(), Some(DATA_VOLUME));
    assert_eq!(
        claim.storage_class_name, None,
        "the default StorageClass when none is named"
    );
    let storage = claim
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"));
    assert_eq!(storage.map(|q| q.0.as_str()), Some("20Gi"));
    let mounts = broker(&objects.stateful_set)
        .volume_mounts
        .clone()
        .unwrap_or_default();
    assert!(
        mounts
            .iter()
            .any(|m| m.name == DATA_VOLUME && m.mount_path == DATA_DIR),
        "data volume mounted: {mounts:?}"
    );

    let objects = built(FULL);
    let spec = sts_spec(&objects);
    let policy = spec
        .persistent_volume_claim_retention_policy
        .as_ref()
        .expect("retention policy");
    assert_eq!(
        (
            policy.when_deleted.as_deref(),
            policy.when_scaled.as_deref()
        ),
        (Some("Delete"), Some("Delete"))
    );
    let claims = spec.volume_claim_templates.as_deref().unwrap_or_default();
    assert_eq!(
        claims[0]
            .spec
            .as_ref()
            .and_then(|s| s.storage_class_name.as_deref()),
        Some("fast-ssd")
    );
}

#[test]
fn services_give_stable_broker_names_and_a_bootstrap_address() {
    let objects = built(MINIMAL);
    let headless = objects
        .headless_service
        .spec
        .as_ref()
        .expect("headless spec");
    assert_eq!(headless.cluster_ip.as_deref(), Some("None"));
    assert_eq!(
        headless.publish_not_ready_addresses,
        Some(true),
        "brokers must find each other before Ready"
    );
    assert_eq!(headless.selector.as_ref(), Some(&selector_labels("demo")));
    let bootstrap = objects
        .bootstrap_service
        .spec
        .as_ref()
        .expect("bootstrap spec");
    assert_ne!(bootstrap.cluster_ip.as_deref(), Some("None"));
    assert_ne!(
        bootstrap.publish_not_ready_addresses,
        Some(true),
        "clients bootstrap only from ready brokers"
    );
    let ports = bootstrap.ports.as_deref().unwrap_or_default();
    assert!(
        matches!(ports, [p] if p.port == 9092 && p.target_port == Some(IntOrString::String("kafka".into())))
    );
    let valid = validate(&cluster(MINIMAL)).expect("valid");
    assert_eq!(bootstrap_address(&valid), "demo-bootstrap.kafka.svc:9092");
}

#[test]
fn at_most_one_broker_is_disrupted() {
    let objects = built(MINIMAL);
    let pdb = objects
        .pod_disruption_budget
        .spec
        .as_ref()
        .expect("pdb spec");
    assert_eq!(pdb.max_unavailable, Some(IntOrString::Int(1)));
    assert_eq!(pdb.min_available, None);
    assert_eq!(
        pdb.selector.as_ref().and_then(|s| s.match_labels.as_ref()),
        Some(&selector_labels("demo"))
    );
}

#[test]
fn broker_config_becomes_every_brokers_server_properties() {
    let objects = built(FULL);
    let data = objects.config_map.data.as_ref().expect("config data");
    for ordinal in 0..5 {
        let text = data.get(&config_file(ordinal)).expect("a file per broker");
        assert!(
            text.contains("\nlog.dirs=/var/lib/tributary/data\nlog.retention.hours=168\n"),
            "{text}"
        );
        // The user's value wins over the operator's default for five brokers (2).
        assert!(text.contains("\nmin.insync.replicas=2\n"), "{text}");
        assert!(
            text.contains("\nlisteners=PLAINTEXT://0.0.0.0:9094"),
            "{text}"
        );
    }
    let volumes = pod_spec(&objects.stateful_set)
        .volumes
        .clone()
        .unwrap_or_default();
    assert!(
        volumes.iter().any(|v| v
            .config_map
            .as_ref()
            .is_some_and(|c| c.name == "events-config")),
        "ConfigMap mounted: {volumes:?}"
    );
}

#[test]
fn properties_are_escaped() {
    let config = BTreeMap::from([
        (
            "weird key=x".to_owned(),
            " leading space\\and\nnewline".to_owned(),
        ),
        (
            "sasl.jaas.config".to_owned(),
            "a b=c; # not a comment".to_owned(),
        ),
    ]);
    assert_eq!(
        render_properties("# header\n", &config),
        "# header\n\
         sasl.jaas.config=a b=c; # not a comment\n\
         weird\\ key\\=x=\\ leading space\\\\and\\nnewline\n"
    );
}

/// The properties of broker `ordinal` as the broker reads them: key -> value.
fn node_config(objects: &DesiredObjects, ordinal: i32) -> BTreeMap<String, String> {
    let data = objects.config_map.data.as_ref().expect("config data");
    let text = data
        .get(&config_file(ordinal))
        .unwrap_or_else(|| panic!("no {} in {:?}", config_file(ordinal), data.keys()));
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn with_brokers(brokers: i32) -> DesiredObjects {
    let mut cluster = cluster(MINIMAL);
    cluster.spec.brokers = brokers;
    build_new(&validate(&cluster).expect("valid"))
}

/// A cluster of `brokers` whose static quorum was formed with `voters` (by an operator before dynamic
/// quorums).
fn static_cluster(brokers: i32, voters: Voters) -> DesiredObjects {
    let mut cluster = cluster(MINIMAL);
    cluster.spec.brokers = brokers;
    let topology = Topology {
        brokers,
        voters,
        mode: QuorumMode::Static,
    };
    build(&validate(&cluster).expect("valid"), &topology)
}

const VOTERS_OF_3: &str =
    "0@demo-0.demo-brokers.kafka.svc:9093,1@demo-1.demo-brokers.kafka.svc:9093,\
                           2@demo-2.demo-brokers.kafka.svc:9093";

const BOOTSTRAP_SERVERS: &str =
    "demo-0.demo-brokers.kafka.svc:9093,demo-1.demo-brokers.kafka.svc:9093,\
                                 demo-2.demo-brokers.kafka.svc:9093";

/// The initial-controllers list of MINIMAL's cluster forming with voters `0..n`.
fn initial_controllers_of(n: i32) -> String {
    (0..n)
        .map(|id| {
            format!(
                "{id}@demo-{id}.demo-brokers.kafka.svc:9093:{}",
                initial_directory_id("0b7e2f8c-52a4-4a4f-8d3a-7c1f6a9e2d10", id)
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn one_broker_is_a_one_voter_cluster_with_single_replicas() {
    let objects = with_brokers(1);
    let data = objects.config_map.data.as_ref().expect("config data");
    assert_eq!(
        data.keys().collect::<Vec<_>>(),
        ["broker-0.properties", INITIAL_CONTROLLERS_FILE]
    );
    assert_eq!(data[INITIAL_CONTROLLERS_FILE], initial_controllers_of(1));
    let config = node_config(&objects, 0);
    let get = |key: &str| config.get(key).map(String::as_str);
    assert_eq!(get("process.roles"), Some("broker,controller"));
    assert_eq!(get("node.id"), Some("0"));
    assert_eq!(
        get("controller.quorum.bootstrap.servers"),
        Some(BOOTSTRAP_SERVERS)
    );
    assert_eq!(get("controller.quorum.voters"), None);
    assert_eq!(get("default.replication.factor"), Some("1"));
    assert_eq!(get("offsets.topic.replication.factor"), Some("1"));
    assert_eq!(get("min.insync.replicas"), Some("1"));
}

#[test]
fn three_brokers_are_all_voters_with_replication_three() {
    let objects = with_brokers(3);
    for ordinal in 0..3 {
        let config = node_config(&objects, ordinal);
        let host = format!("demo-{ordinal}.demo-brokers.kafka.svc");
        let expected = BTreeMap::from([
            ("process.roles", "broker,controller".to_owned()),
            ("node.id", ordinal.to_string()),
            (
                "controller.quorum.bootstrap.servers",
                BOOTSTRAP_SERVERS.to_owned(),
            ),
            (
                "listeners",
                "PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093".to_owned(),
            ),
            (
                "advertised.listeners",
                format!("PLAINTEXT://{host}:9092,CONTROLLER://{host}:9093"),
            ),
            ("controller.listener.names", "CONTROLLER".to_owned()),
            ("inter.broker.listener.name", "PLAINTEXT".to_owned()),
            ("log.dirs", "/var/lib/tributary/data".to_owned()),
            ("default.replication.factor", "3".to_owned()),
            ("offsets.topic.replication.factor", "3".to_owned()),
            ("min.insync.replicas", "2".to_owned()),
        ]);
        let expected: BTreeMap<String, String> = expected
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(config, expected, "broker {ordinal}");
    }
}

#[test]
fn five_brokers_form_a_quorum_of_three_voters_and_two_observers() {
    let objects = with_brokers(5);
    let data = objects.config_map.data.as_ref().expect("config data");
    assert_eq!(data[INITIAL_CONTROLLERS_FILE], initial_controllers_of(3));
    for ordinal in 0..5 {
        let config = node_config(&objects, ordinal);
        let get = |key: &str| config.get(key).map(String::as_str);
        // Any of them can become a voter without a restart.
        assert_eq!(get("process.roles"), Some("broker,controller"));
        assert_eq!(
            get("controller.quorum.bootstrap.servers"),
            Some(BOOTSTRAP_SERVERS)
        );
        assert!(get("listeners").is_some_and(|l| l.contains("CONTROLLER://")));
    }
    // Once formed the list is withdrawn, and nothing a broker reads at start changes.
    let formed = build(
        &validate(&cluster(MINIMAL).brokers(5)).expect("valid"),
        &Topology {
            mode: QuorumMode::Formed,
            ..Topology::new_cluster(5)
        },
    );
    let formed_data = formed.config_map.data.as_ref().expect("config data");
    assert!(!formed_data.contains_key(INITIAL_CONTROLLERS_FILE));
    assert_eq!(config_hash(&formed), config_hash(&objects));
    assert_eq!(
        formed.stateful_set.spec, objects.stateful_set.spec,
        "withdrawing the list restarts nothing"
    );
}

#[test]
fn five_brokers_of_a_static_quorum_keep_three_voters_and_add_brokers() {
    let objects = static_cluster(5, Voters::of_new_cluster(3));
    for ordinal in 0..5 {
        let config = node_config(&objects, ordinal);
        let get = |key: &str| config.get(key).map(String::as_str);
        assert_eq!(get("node.id"), Some(ordinal.to_string().as_str()));
        assert_eq!(get("controller.quorum.voters"), Some(VOTERS_OF_3));
        assert_eq!(get("min.insync.replicas"), Some("2"));
        if ordinal < 3 {
            assert_eq!(get("process.roles"), Some("broker,controller"));
        } else {
            let host = format!("demo-{ordinal}.demo-brokers.kafka.svc");
            assert_eq!(get("process.roles"), Some("broker"), "broker {ordinal}");
            // A broker-only node neither listens on nor advertises the controller listener.
            assert_eq!(get("listeners"), Some("PLAINTEXT://0.0.0.0:9092"));
            assert_eq!(
                get("advertised.listeners"),
                Some(format!("PLAINTEXT://{host}:9092").as_str())
            );
            assert_eq!(get("controller.listener.names"), Some("CONTROLLER"));
        }
    }
    // The first three brokers' files are the same whether the cluster has three brokers or five.
    let three = static_cluster(3, Voters::of_new_cluster(3));
    for ordinal in 0..3 {
        assert_eq!(node_config(&objects, ordinal), node_config(&three, ordinal));
    }
}

#[test]
fn the_cluster_id_comes_from_the_uid_in_kafkas_form() {
    let id = cluster_id("0b7e2f8c-52a4-4a4f-8d3a-7c1f6a9e2d10");
    assert_eq!(id, "C34vjFKkSk-NOnwfap4tEA");
    assert_eq!(cluster_id("not-a-uuid").len(), 22);
    assert_ne!(cluster_id("not-a-uuid"), cluster_id("not-a-uuid-either"));
}

#[test]
fn an_init_container_formats_the_volume_once_before_the_broker_starts() {
    let objects = built(MINIMAL);
    let pod = pod_spec(&objects.stateful_set);
    let init = pod.init_containers.as_deref().unwrap_or_default();
    let [format] = init else {
        panic!("expected one init container, got {init:?}");
    };
    assert_eq!(format.name, FORMAT_CONTAINER_NAME);
    assert_eq!(
        format.image.as_deref(),
        Some("ghcr.io/example/tributary:0.1.0")
    );
    assert_eq!(
        format.command.as_deref(),
        Some(&["tributary-broker".to_owned()][..])
    );
    assert_eq!(
        format.args.as_deref().unwrap_or_default(),
        [
            "format",
            "--cluster-id=C34vjFKkSk-NOnwfap4tEA",
            "--config=/etc/tributary/broker-$(NODE_ID).properties",
            "--ignore-formatted",
            "--initial-controllers-file=/etc/tributary/initial-controllers",
        ]
    );
    // A static quorum's brokers format without it: their voters are in their properties.
    let static_format = pod_spec(&static_cluster(3, Voters::of_new_cluster(3)).stateful_set)
        .init_containers
        .as_deref()
        .unwrap_or_default()[0]
        .args
        .clone()
        .unwrap_or_default();
    assert_eq!(static_format.len(), 4, "{static_format:?}");
    assert_eq!(
        env_field_path(format, "NODE_ID"),
        Some("metadata.labels['apps.kubernetes.io/pod-index']")
    );
    assert_eq!(
        format.volume_mounts,
        broker(&objects.stateful_set).volume_mounts
    );
    assert_eq!(
        format.security_context,
        broker(&objects.stateful_set).security_context
    );
}

#[test]
fn the_controller_port_is_on_the_pods_and_the_headless_service() {
    let objects = built(MINIMAL);
    let headless = objects
        .headless_service
        .spec
        .as_ref()
        .expect("headless spec");
    let ports: Vec<(Option<&str>, i32)> = headless
        .ports
        .iter()
        .flatten()
        .map(|p| (p.name.as_deref(), p.port))
        .collect();
    assert_eq!(
        ports,
        [
            (Some("kafka"), 9092),
            (Some("controller"), 9093),
            (Some("http"), 9644)
        ]
    );
    let container_ports = broker(&objects.stateful_set)
        .ports
        .clone()
        .unwrap_or_default();
    assert!(
        container_ports
            .iter()
            .any(|p| p.name.as_deref() == Some("controller") && p.container_port == 9093),
        "{container_ports:?}"
    );
    // Clients bootstrap from Kafka listeners only.
    let bootstrap = objects
        .bootstrap_service
        .spec
        .as_ref()
        .expect("bootstrap spec");
    assert_eq!(bootstrap.ports.as_ref().map(Vec::len), Some(1));
}

#[test]
fn scaling_a_static_cluster_does_not_roll() {
    // The replication defaults follow the broker count live, and a static quorum keeps its voters: nothing in
    // pod 0's file that needs a restart changes.
    let scaled = created_then_scaled;
    assert_eq!(config_hash(&scaled(1, 1)), config_hash(&scaled(1, 2)));
    assert_eq!(config_hash(&scaled(3, 3)), config_hash(&scaled(3, 4)));
    assert_eq!(config_hash(&scaled(3, 3)), config_hash(&scaled(3, 9)));
    assert_eq!(config_hash(&scaled(1, 3)), config_hash(&scaled(1, 5)));
}

/// The objects of a static cluster created with `created` brokers and now running `brokers`.
fn created_then_scaled(created: i32, brokers: i32) -> DesiredObjects {
    static_cluster(brokers, Voters::of_new_cluster(created))
}

#[test]
fn scaling_a_formed_dynamic_quorum_past_three_brokers_does_not_roll() {
    let formed = |brokers: i32| {
        build(
            &validate(&cluster(MINIMAL).brokers(brokers)).expect("valid"),
            &Topology {
                brokers,
                voters: Voters::of_new_cluster(3),
                mode: QuorumMode::Formed,
            },
        )
    };
    assert_eq!(config_hash(&formed(3)), config_hash(&formed(5)));
    assert_eq!(node_config(&formed(3), 0), node_config(&formed(9), 0));
}

#[test]
fn brokers_added_to_a_running_static_cluster_do_not_vote() {
    const VOTER_0: &str = "0@demo-0.demo-brokers.kafka.svc:9093";
    for (created, brokers, voters) in [
        (1, 2, VOTER_0),
        (1, 5, VOTER_0),
        (3, 5, VOTERS_OF_3),
        (5, 7, VOTERS_OF_3),
    ] {
        let objects = created_then_scaled(created, brokers);
        assert_eq!(sts_spec(&objects).replicas, Some(brokers));
        for ordinal in 0..brokers {
            let config = node_config(&objects, ordinal);
            let get = |key: &str| config.get(key).map(String::as_str);
            let what =
                format!("broker {ordinal} of a cluster created with {created}, now {brokers}");
            assert_eq!(get("controller.quorum.voters"), Some(voters), "{what}");
            let voter = ordinal < created.min(3);
            assert_eq!(
                get("process.roles"),
                Some(if voter { "broker,controller" } else { "broker" }),
                "{what}"
            );
            assert_eq!(
                get("listeners").is_some_and(|l| l.contains("CONTROLLER://")),
                voter,
                "{what}: only voters listen on the controller port"
            );
        }
    }
    // The replication defaults follow the brokers that run, whoever votes.
    let config = node_config(&created_then_scaled(1, 3), 0);
    assert_eq!(
        config.get("default.replication.factor").map(String::as_str),
        Some("3")
    );
    assert_eq!(
        config.get("min.insync.replicas").map(String::as_str),
        Some("2")
    );
}

#[test]
fn every_running_broker_has_its_properties_during_a_blocked_scale_down() {
    // spec.brokers 3 but five run (the scale-down is blocked): brokers 3 and 4 still find their files when they
    // restart, and their replication defaults do not change.
    let valid = validate(&cluster(MINIMAL)).expect("valid");
    let topology = Topology {
        brokers: 5,
        ..Topology::new_cluster(3)
    };
    let objects = build(&valid, &topology);
    assert_eq!(sts_spec(&objects).replicas, Some(5));
    let data = objects.config_map.data.as_ref().expect("config data");
    assert!(
        (0..5).all(|ordinal| data.contains_key(&config_file(ordinal))),
        "{:?}",
        data.keys()
    );
    assert_eq!(node_config(&objects, 4), node_config(&with_brokers(5), 4));
}

#[test]
fn pod_template_overrides_apply_but_never_replace_operator_labels() {
    let objects = built(FULL);
    let template = &sts_spec(&objects).template;
    let meta = template.metadata.as_ref().expect("template metadata");
    let labels = meta.labels.as_ref().expect("labels");
    assert_eq!(labels.get("team").map(String::as_str), Some("payments"));
    assert_eq!(
        labels.get("app.kubernetes.io/instance").map(String::as_str),
        Some("events"),
        "selector label kept"
    );
    let annotations = meta.annotations.as_ref().expect("annotations");
    assert_eq!(
        annotations.get("prometheus.io/scrape").map(String::as_str),
        Some("true")
    );

    let pod = pod_spec(&objects.stateful_set);
    assert_eq!(
        pod.node_selector
            .as_ref()
            .and_then(|n| n.get("disktype"))
            .map(String::as_str),
        Some("ssd")
    );
    assert_eq!(pod.tolerations.as_ref().map(Vec::len), Some(1));
    assert!(pod
        .affinity
        .as_ref()
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .is_some());
    assert_eq!(pod.priority_class_name.as_deref(), Some("kafka-critical"));
    assert_eq!(pod.service_account_name.as_deref(), Some("tributary"));
    assert_eq!(pod.termination_grace_period_seconds, Some(300));

    let broker = broker(&objects.stateful_set);
    let env: Vec<_> = broker
        .env
        .iter()
        .flatten()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(env, ["POD_NAME", "NODE_ID", "RUST_LOG"]);
    assert_eq!(broker.image_pull_policy.as_deref(), Some("IfNotPresent"));
    let memory = broker
        .resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.get("memory"));
    assert_eq!(memory.map(|q| q.0.as_str()), Some("4Gi"));
}

#[test]
fn graceful_shutdown_has_a_default_grace_period() {
    let objects = built(MINIMAL);
    assert_eq!(
        pod_spec(&objects.stateful_set).termination_grace_period_seconds,
        Some(120)
    );
}

#[test]
fn broker_pods_are_restricted_and_own_their_volumes() {
    let objects = built(MINIMAL);
    let pod = pod_spec(&objects.stateful_set)
        .security_context
        .as_ref()
        .expect("pod security context");
    assert_eq!(pod.run_as_non_root, Some(true));
    assert_eq!(
        pod.fs_group,
        Some(BROKER_FS_GROUP),
        "a fresh volume must be writable by the image's user"
    );
    assert_eq!(
        pod.seccomp_profile.as_ref().map(|p| p.type_.as_str()),
        Some("RuntimeDefault")
    );
    let container = broker(&objects.stateful_set)
        .security_context
        .as_ref()
        .expect("container security context");
    assert_eq!(
        broker(&objects.stateful_set)
            .termination_message_policy
            .as_deref(),
        Some("FallbackToLogsOnError"),
        "a fatal error's last log lines become the termination message (replaced voters are read there)"
    );
    assert_eq!(container.allow_privilege_escalation, Some(false));
    assert_eq!(container.read_only_root_filesystem, Some(true));
    assert_eq!(
        container.capabilities.as_ref().and_then(|c| c.drop.clone()),
        Some(vec!["ALL".to_owned()])
    );
}

/// The operator's replication defaults follow the running broker count live: growing a dynamic-quorum cluster
/// from one broker to three must not restart the first.
#[test]
fn the_broker_count_rolls_nothing_and_moves_the_replication_defaults_live() {
    let mut one = cluster(MINIMAL);
    one.spec.brokers = 1;
    let one = validate(&one).expect("valid");
    let grow = |brokers| Topology {
        brokers,
        ..Topology::new_cluster(1)
    };
    assert!(grow(1).is_dynamic(), "new clusters form a dynamic quorum");
    assert_eq!(
        config_hash(&build(&one, &grow(3))),
        config_hash(&build(&one, &grow(1))),
        "1 -> 3 brokers must not roll pod 0"
    );
    let defaults = |brokers| {
        let live = live_broker_config(&one, &grow(brokers));
        [
            "default.replication.factor",
            "offsets.topic.replication.factor",
            "min.insync.replicas",
        ]
        .map(|key| live.get(key).cloned().unwrap_or_default())
    };
    assert_eq!(defaults(1), ["1", "1", "1"]);
    assert_eq!(defaults(2), ["2", "2", "1"]);
    assert_eq!(defaults(3), ["3", "3", "2"]);
    assert_eq!(defaults(5), ["3", "3", "2"]);

    let mut pinned = cluster(MINIMAL);
    pinned.spec.brokers = 1;
    pinned
        .spec
        .broker_config
        .insert("min.insync.replicas".into(), "1".into());
    let pinned = validate(&pinned).expect("valid");
    assert_eq!(
        live_broker_config(&pinned, &grow(3)).get("min.insync.replicas"),
        Some(&"1".to_owned()),
        "the spec's value wins over the operator's default"
    );
    let file = &build(&one, &grow(3)).config_map.data.expect("data")[&config_file(0)];
    assert!(
        file.contains("default.replication.factor=3\n"),
        "a broker that restarts anyway starts with the current defaults: {file}"
    );
}

#[test]
fn a_throttle_rate_in_the_spec_is_applied_live() {
    let base = cluster(MINIMAL);
    let mut throttled = base.clone();
    throttled.spec.broker_config.insert(
        "follower.replication.throttled.rate".into(),
        "10485760".into(),
    );
    let throttled = validate(&throttled).expect("valid");
    assert_eq!(
        config_hash(&build_new(&throttled)),
        config_hash(&build_new(&validate(&base).expect("valid"))),
        "a rate must not roll the pods"
    );
    assert_eq!(
        live_broker_config(&throttled, &Topology::new_cluster(3))
            .get("follower.replication.throttled.rate"),
        Some(&"10485760".to_owned()),
        "it is the cluster-wide default rate, set live"
    );
}

fn config_hash(objects: &DesiredObjects) -> String {
    let meta = sts_spec(objects)
        .template
        .metadata
        .as_ref()
        .expect("template metadata");
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(CONFIG_HASH_ANNOTATION))
        .cloned()
        .expect("config hash")
}

#[test]
fn only_a_config_change_rolls_the_pods() {
    let base = cluster(MINIMAL);
    let before = build_new(&validate(&base).expect("valid"));

    let mut scaled = base.clone();
    scaled.spec.brokers = 7;
    let after_scale = build_new(&validate(&scaled).expect("valid"));
    assert_eq!(
        sts_spec(&after_scale).template,
        sts_spec(&before).template,
        "scaling must not change the pod template"
    );

    let mut live = base.clone();
    live.spec
        .broker_config
        .insert("log.retention.hours".into(), "24".into());
    let after_live = build_new(&validate(&live).expect("valid"));
    assert_eq!(
        config_hash(&after_live),
        config_hash(&before),
        "a config the brokers take live must not roll the pods"
    );
    assert_eq!(
        live_broker_config(&validate(&live).expect("valid"), &Topology::new_cluster(3))
            .get("log.retention.hours"),
        Some(&"24".to_owned()),
        "it is applied live instead"
    );

    let mut reconfigured = base;
    reconfigured
        .spec
        .broker_config
        .insert("replica.lag.time.max.ms".into(), "20000".into());
    let after_config = build_new(&validate(&reconfigured).expect("valid"));
    assert_ne!(
        config_hash(&after_config),
        config_hash(&before),
        "a broker config change that needs a restart must roll the pods"
    );
}

#[test]
fn building_twice_gives_identical_objects() {
    let valid = validate(&cluster(FULL)).expect("valid");
    assert_eq!(build_new(&valid), build_new(&valid));
    // The fixture builder and the YAML agree on what a minimal cluster is.
    let from_builder: KafkaClusterSpec = KafkaCluster::test().spec;
    assert_eq!(from_builder.listeners, cluster(MINIMAL).spec.listeners);
    assert_eq!(cluster(MINIMAL).meta().generation, Some(4));
}

#[test]
fn broker_pods_carry_prometheus_scrape_annotations_unless_the_user_overrides_them() {
    let cluster = KafkaCluster::test().ports(9092, 9644);
    let objects = build_new(&validate(&cluster).expect("valid"));
    let template = &sts_spec(&objects).template;
    let annotations = template
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.as_ref())
        .expect("annotations");
    assert_eq!(
        annotations.get("prometheus.io/scrape").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        annotations.get("prometheus.io/port").map(String::as_str),
        Some("9644")
    );
    assert_eq!(
        annotations.get("prometheus.io/path").map(String::as_str),
        Some("/metrics")
    );

    let mut opted_out = KafkaCluster::test();
    opted_out
        .spec
        .pod_template
        .get_or_insert_with(Default::default)
        .annotations
        .insert("prometheus.io/scrape".into(), "false".into());
    let objects = build_new(&validate(&opted_out).expect("valid"));
    let annotations = sts_spec(&objects)
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.clone())
        .expect("annotations");
    assert_eq!(
        annotations.get("prometheus.io/scrape").map(String::as_str),
        Some("false")
    );
}
