//! KRaft property tests: real Kafka 4 combined-mode files parse into the expected [`ClusterConfig`], and each
//! invalid combination is refused with a message that names what to fix.

#![allow(clippy::unwrap_used)]

use std::{collections::BTreeMap, net::SocketAddr, path::Path};

use super::*;

fn fixture(n: usize) -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kraft")
        .join(format!("server-{n}.properties"));
    BrokerConfig::load_properties_file(&path).unwrap()
}

fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A valid combined-mode node 1 with static voters; tests change one thing at a time.
fn combined() -> BTreeMap<String, String> {
    props(&[
        ("process.roles", "broker,controller"),
        ("node.id", "1"),
        (
            "controller.quorum.voters",
            "1@localhost:9093,2@localhost:9193,3@localhost:9293",
        ),
        ("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
        ("controller.listener.names", "CONTROLLER"),
    ])
}

fn parse(props: &BTreeMap<String, String>) -> Result<BrokerConfig, ConfigError> {
    let mut config = BrokerConfig::dev_defaults();
    config.apply_properties(props)?;
    Ok(config)
}

fn error(props: &BTreeMap<String, String>) -> String {
    match parse(props) {
        Ok(config) => panic!("accepted {props:?} as {:?}", config.cluster),
        Err(e) => crate::error_chain(&e),
    }
}

fn with(mut base: BTreeMap<String, String>, key: &str, value: &str) -> BTreeMap<String, String> {
    base.insert(key.to_owned(), value.to_owned());
    base
}

fn without(mut base: BTreeMap<String, String>, key: &str) -> BTreeMap<String, String> {
    base.remove(key);
    base
}

#[test]
fn kafka_combined_mode_files_configure_a_three_node_cluster() {
    let voters: Vec<QuorumVoter> = [(1, 9093), (2, 9193), (3, 9293)]
        .into_iter()
        .map(|(id, port)| QuorumVoter {
            id,
            host: "localhost".to_owned(),
            port,
        })
        .collect();
    for n in 1..=3 {
        let config = parse(&fixture(n)).unwrap();
        let port = 9000 + 100 * n as u16 - 8;
        assert_eq!(config.node_id, n as i32);
        assert_eq!(
            config.data_dir,
            Path::new(&format!("/tmp/kraft-combined-logs-{n}"))
        );
        let any: SocketAddr = ([0, 0, 0, 0], port).into();
        assert_eq!(config.listen, any, "node {n}");
        assert_eq!(
            (config.advertised_host.as_str(), config.advertised_port),
            ("localhost", i32::from(port))
        );
        assert_eq!(
            config.listeners,
            vec![ListenerConfig {
                name: "PLAINTEXT".to_owned(),
                bind: any,
                advertised_host: "localhost".to_owned(),
                advertised_port: i32::from(port),
                security_protocol: SecurityProtocol::Plaintext,
            }]
        );
        assert_eq!(
            config.controller_listen,
            Some(([0, 0, 0, 0], port + 1).into())
        );
        assert_eq!(
            config.controller_listener_name.as_deref(),
            Some("CONTROLLER")
        );
        assert_eq!(
            config
                .topic_defaults
                .get("retention.ms")
                .map(String::as_str),
            Some("604800000")
        );
        let cluster = config.cluster.unwrap();
        assert_eq!(
            cluster,
            ClusterConfig {
                node_id: n as i32,
                roles: ProcessRoles::BrokerAndController,
                quorum: QuorumConfig::StaticVoters(voters.clone()),
                controller_listener_names: vec!["CONTROLLER".to_owned()],
                inter_broker_listener_name: "PLAINTEXT".to_owned(),
                controller_advertised: Some(("localhost".to_owned(), port + 1)),
                broker_session_timeout_ms: 9_000,
                broker_heartbeat_interval_ms: 2_000,
                replica_lag_time_max_ms: 30_000,
                min_insync_replicas: 1,
                offsets_topic_replication_factor: 3,
                unclean_leader_election_enable: false,
                auto_leader_rebalance_enable: true,
                leader_imbalance_check_interval_seconds: 300,
                partition_autobalancing: PartitionAutobalancing::NodeAdd,
                election_timeout_ms: 1_000,
                fetch_timeout_ms: 2_000,
                replica_fetch_max_bytes: 1_048_576,
                replica_fetch_wait_max_ms: 500,
                num_replica_fetchers: 1,
            }
        );
    }
}

#[test]
fn kafka_standalone_file_with_bootstrap_servers_parses() {
    // Kafka 4's own config/server.properties: one combined node found through bootstrap servers (KIP-853).
    let config = parse(&props(&[
        ("process.roles", "broker,controller"),
        ("node.id", "1"),
        ("controller.quorum.bootstrap.servers", "localhost:9093"),
        ("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
        ("inter.broker.listener.name", "PLAINTEXT"),
        (
            "advertised.listeners",
            "PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093",
        ),
        ("controller.listener.names", "CONTROLLER"),
        (
            "listener.security.protocol.map",
            "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
        ),
        ("log.dirs", "/tmp/kraft-combined-logs"),
        ("num.network.threads", "3"),
        ("socket.send.buffer.bytes", "102400"),
        ("share.coordinator.state.topic.replication.factor", "1"),
        ("transaction.state.log.min.isr", "1"),
        ("group.initial.rebalance.delay.ms", "0"),
        ("offsets.topic.replication.factor", "1"),
    ]))
    .unwrap();
    let cluster = config.cluster.unwrap();
    assert_eq!(
        cluster.quorum,
        QuorumConfig::Bootstrap(vec![("localhost".to_owned(), 9093)])
    );
    assert_eq!(cluster.offsets_topic_replication_factor, 1);
    assert_eq!(cluster.static_voters(), None);
    assert_eq!(config.group.initial_rebalance_delay_ms, 0);
}

#[test]
fn broker_only_and_controller_only_nodes() {
    let broker = parse(&props(&[
        ("process.roles", "broker"),
        ("node.id", "4"),
        ("controller.quorum.voters", "1@c1:9093,2@c2:9093,3@c3:9093"),
        ("listeners", "PLAINTEXT://10.0.0.4:9092"),
        ("controller.listener.names", "CONTROLLER"),
    ]))
    .unwrap();
    assert_eq!(broker.cluster.as_ref().unwrap().roles, ProcessRoles::Broker);
    assert_eq!(broker.controller_listen, None);
    assert_eq!(broker.advertised_host, "10.0.0.4");

    let controller = parse(&props(&[
        ("process.roles", "controller"),
        ("node.id", "1"),
        ("controller.quorum.voters", "1@c1:9093"),
        ("listeners", "CONTROLLER://127.0.0.1:9093"),
        ("controller.listener.names", "CONTROLLER"),
    ]))
    .unwrap();
    assert!(controller.listeners.is_empty());
    assert_eq!(
        controller.controller_listen,
        Some("127.0.0.1:9093".parse().unwrap())
    );
}

#[test]
fn several_client_listeners_put_the_inter_broker_one_first() {
    let config = parse(&with(
        with(
            with(
                without(combined(), "advertised.listeners"),
                "listeners",
                "EXTERNAL://127.0.0.1:19092,INTERNAL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
            ),
            "listener.security.protocol.map",
            "EXTERNAL:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
        ),
        "inter.broker.listener.name",
        "internal",
    ))
    .unwrap();
    let names: Vec<&str> = config.listeners.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["INTERNAL", "EXTERNAL"]);
    assert_eq!(config.listen, "127.0.0.1:9092".parse().unwrap());
    // advertised.listeners has no entry for these: they advertise their bind host.
    assert_eq!(config.listeners[1].advertised_host, "127.0.0.1");
    assert_eq!(config.listeners[1].advertised_port, 19092);
}

#[test]
fn flags_after_the_file_keep_the_cluster_checks() {
    let mut config = parse(&combined()).unwrap();
    config.set_node_id(2).unwrap();
    assert_eq!(config.cluster.as_ref().unwrap().node_id, 2);
    let err = config.set_node_id(7).unwrap_err().to_string();
    assert_eq!(
        err,
        "node.id 7 has process.roles=broker,controller but is not in controller.quorum.voters"
    );
    assert_eq!(config.node_id, 2, "a refused id must not be kept");
    config.set_listen("127.0.0.5:0".parse().unwrap());
    config.set_advertised("b5".to_owned(), 9999);
    assert_eq!(config.listeners[0].bind, "127.0.0.5:0".parse().unwrap());
    assert_eq!(config.listeners[0].advertised_host, "b5");
    assert_eq!(config.advertised_port, 9999);
}

#[test]
fn single_node_mode_is_unchanged_without_process_roles() {
    let config = parse(&BTreeMap::new()).unwrap();
    assert!(config.cluster.is_none());
    assert_eq!(config.listeners.len(), 1);
    assert_eq!(config.listen, "127.0.0.1:9092".parse().unwrap());
    // An old single-listener file still works, without the KRaft checks.
    let config = parse(&props(&[("listeners", "127.0.0.3:9092")])).unwrap();
    assert!(config.cluster.is_none());
    assert_eq!(config.listen, "127.0.0.3:9092".parse().unwrap());
    assert_eq!(config.advertised_host, "127.0.0.3");
    // Kafka-only keys a stock file contains are accepted.
    let config = parse(&props(&[
        ("num.io.threads", "8"),
        ("socket.receive.buffer.bytes", "102400"),
        ("transaction.state.log.replication.factor", "1"),
        ("share.coordinator.state.topic.min.isr", "1"),
        ("num.recovery.threads.per.data.dir", "1"),
    ]))
    .unwrap();
    assert!(config.cluster.is_none());
}

#[test]
fn cluster_settings_override_kafka_defaults() {
    let config = parse(&with(
        with(
            with(
                with(combined(), "min.insync.replicas", "2"),
                "unclean.leader.election.enable",
                "true",
            ),
            "replica.lag.time.max.ms",
            "10000",
        ),
        "default.replication.factor",
        "3",
    ))
    .unwrap();
    let cluster = config.cluster.unwrap();
    assert_eq!(cluster.min_insync_replicas, 2);
    assert!(cluster.unclean_leader_election_enable);
    assert_eq!(
        config
            .topic_defaults
            .get("unclean.leader.election.enable")
            .map(String::as_str),
        Some("true"),
        "the static default DescribeConfigs reports for topics"
    );
    assert_eq!(cluster.replica_lag_time_max_ms, 10_000);
    assert_eq!(config.default_replication_factor, 3);
}

#[test]
fn invalid_combinations_say_what_to_fix() {
    let cases: Vec<(BTreeMap<String, String>, &str)> = vec![
        (
            with(combined(), "process.roles", "broker,leader"),
            r#"invalid value "broker,leader" for process.roles: roles are broker, controller or both"#,
        ),
        (
            with(combined(), "process.roles", "broker,broker"),
            r#"invalid value "broker,broker" for process.roles: a role is listed twice"#,
        ),
        (
            without(combined(), "node.id"),
            "node.id is required when process.roles is set",
        ),
        (
            with(combined(), "node.id", "9"),
            "node.id 9 has process.roles=broker,controller but is not in controller.quorum.voters",
        ),
        (
            with(with(combined(), "process.roles", "broker"), "listeners", "PLAINTEXT://:9092"),
            "node.id 1 is in controller.quorum.voters but process.roles=broker has no controller role",
        ),
        (
            without(combined(), "controller.quorum.voters"),
            "process.roles is set but neither controller.quorum.voters nor controller.quorum.bootstrap.servers is",
        ),
        (
            with(combined(), "controller.quorum.voters", "1@localhost:9093,1@other:9093"),
            "controller.quorum.voters lists node 1 twice",
        ),
        (
            with(combined(), "controller.quorum.voters", "1:localhost:9093"),
            r#"invalid value "1:localhost:9093" for controller.quorum.voters: expected id@host:port entries with ids >= 0"#,
        ),
        (
            with(combined(), "controller.quorum.bootstrap.servers", "localhost"),
            r#"invalid value "localhost" for controller.quorum.bootstrap.servers: expected host:port entries"#,
        ),
        (
            without(combined(), "controller.listener.names"),
            "controller.listener.names is required with process.roles=broker,controller",
        ),
        (
            with(combined(), "controller.listener.names", "RAFT"),
            "controller.listener.names names RAFT, which is not in listeners; a controller must listen on it",
        ),
        (
            with(without(combined(), "advertised.listeners"), "listeners", "CONTROLLER://:9093"),
            "listeners has no listener outside controller.listener.names; the broker role needs one for clients",
        ),
        (
            with(combined(), "inter.broker.listener.name", "CONTROLLER"),
            "inter.broker.listener.name CONTROLLER is a controller listener; brokers reach each other on a broker listener",
        ),
        (
            with(combined(), "inter.broker.listener.name", "INTERNAL"),
            "inter.broker.listener.name INTERNAL is not in listeners",
        ),
        (
            with(
                with(
                    with(combined(), "process.roles", "broker"),
                    "node.id",
                    "4",
                ),
                "listeners",
                "PLAINTEXT://:9092,CONTROLLER://:9093",
            ),
            "listener CONTROLLER is in controller.listener.names; a node with process.roles=broker must not listen on it",
        ),
        (
            with(
                with(
                    with(combined(), "process.roles", "broker"),
                    "node.id",
                    "4",
                ),
                "listeners",
                "PLAINTEXT://:9092",
            )
            .into_iter()
            .chain([(
                "advertised.listeners".to_owned(),
                "PLAINTEXT://b4:9092,CONTROLLER://b4:9093".to_owned(),
            )])
            .collect(),
            "advertised.listeners names listener CONTROLLER, which is not in listeners",
        ),
        (
            with(combined(), "process.roles", "controller"),
            "listener PLAINTEXT is not in controller.listener.names; a node with process.roles=controller listens only on controller listeners",
        ),
        (
            with(combined(), "listeners", "PLAINTEXT://:9092,CONTROLLER://:9092"),
            "listeners PLAINTEXT and CONTROLLER both use port 9092; each listener needs its own port",
        ),
        (
            with(combined(), "listeners", "PLAINTEXT://:9092,PLAINTEXT://:9094,CONTROLLER://:9093"),
            "listeners lists listener PLAINTEXT twice",
        ),
        (
            with(combined(), "listeners", "SSL://:9092,PLAINTEXT://:9094,CONTROLLER://:9093"),
            "listener SSL uses security protocol SSL, which is not supported yet; only PLAINTEXT listeners are",
        ),
        (
            with(
                with(combined(), "listeners", "CLIENT://:9094,PLAINTEXT://:9092,CONTROLLER://:9093"),
                "listener.security.protocol.map",
                "CLIENT:SASL_SSL,PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            ),
            "listener CLIENT uses security protocol SASL_SSL, which is not supported yet; only PLAINTEXT listeners are",
        ),
        (
            with(combined(), "listeners", "PLAINTEXT://:9092,CONTROLLER://:9093,REPLICATION://:9094"),
            "listener REPLICATION has no security protocol: add REPLICATION:PLAINTEXT to listener.security.protocol.map",
        ),
        (
            with(combined(), "listener.security.protocol.map", "PLAINTEXT:TLS"),
            r#"invalid value "PLAINTEXT:TLS" for listener.security.protocol.map: protocols are PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"#,
        ),
        (
            with(combined(), "advertised.listeners", "EXTERNAL://b1:9092"),
            "advertised.listeners names listener EXTERNAL, which is not in listeners",
        ),
        (
            with(combined(), "advertised.listeners", "PLAINTEXT://0.0.0.0:9092"),
            r#"invalid value "PLAINTEXT://0.0.0.0:9092" for advertised.listeners: 0.0.0.0 and :: cannot be advertised; name a host clients can reach"#,
        ),
        (
            with(combined(), "log.dirs", "/data/a,/data/b"),
            r#"log.dirs "/data/a,/data/b" names several directories: JBOD not supported; use one directory"#,
        ),
        (
            with(combined(), "min.insync.replicas", "0"),
            r#"invalid value "0" for min.insync.replicas: min.insync.replicas must be an integer >= 1, got "0""#,
        ),
        (
            with(combined(), "broker.heartbeat.interval.ms", "9000"),
            "broker.heartbeat.interval.ms 9000 must be below broker.session.timeout.ms 9000",
        ),
        (
            with(combined(), "unclean.leader.election.enable", "yes"),
            r#"invalid value "yes" for unclean.leader.election.enable: expected true or false"#,
        ),
    ];
    for (props, expected) in cases {
        assert_eq!(error(&props), expected, "for {props:?}");
    }
}

#[test]
fn jbod_is_refused_in_single_node_mode_too() {
    let err = error(&props(&[("log.dirs", "/a, /b")]));
    assert!(err.contains("JBOD not supported"), "{err}");
    let config = parse(&props(&[("log.dirs", "/a,")])).unwrap();
    assert_eq!(config.data_dir, Path::new("/a"));
}
