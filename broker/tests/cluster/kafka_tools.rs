//! Apache Kafka's own command-line tools from the kafka-tools jar against a Tributary cluster, unchanged:
//! `kafka-reassign-partitions.sh` (`ReassignPartitionsCommand`: `--generate`, `--execute`, `--verify`), then
//! `kafka-metadata-quorum.sh describe` (`MetadataQuorumCommand`) and `kafka-configs.sh` on a broker's drain
//! flag (`ConfigCommand`); and `kafka-metadata-quorum.sh add-controller` / `remove-controller` (KIP-853) on a
//! quorum formed through `controller.quorum.bootstrap.servers`. Needs Java and the jars that `hack/kafka-ref.sh classpath` resolves, so it is
//! ignored in the plain `cargo test` stage and run with `--ignored` in the clients stage of `hack/test.sh`;
//! there a missing Java fails it loudly.

use super::fixture::*;

/// The repository root (the tests run from the crate directory).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The output of `hack/kafka-ref.sh ARG`, panicking with its error output when it fails.
fn kafka_ref(arg: &str) -> String {
    let output = Command::new("bash")
        .arg(repo().join("hack/kafka-ref.sh"))
        .arg(arg)
        .output()
        .unwrap_or_else(|e| panic!("running hack/kafka-ref.sh {arg}: {e}"));
    assert!(
        output.status.success(),
        "hack/kafka-ref.sh {arg} failed (the Kafka jars are needed for this test):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

struct Tool {
    classpath: String,
    log4j: String,
    bootstrap: String,
}

impl Tool {
    fn new(bootstrap: String) -> Self {
        let java = Command::new("java").arg("-version").output();
        assert!(
            java.is_ok_and(|o| o.status.success()),
            "java is not installed: this test runs Kafka's own reassignment tool"
        );
        Self {
            classpath: kafka_ref("classpath"),
            log4j: kafka_ref("log4j"),
            bootstrap,
        }
    }

    /// Runs the reassignment command with `args`: (success, stdout, stderr).
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        self.run_class(
            "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
            args,
        )
    }

    /// Runs kafka-configs.sh (ConfigCommand) with `args`, which must succeed: its stdout.
    fn configs(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run_class("org.apache.kafka.tools.ConfigCommand", args);
        assert!(ok, "kafka-configs {args:?} failed:\n{out}\n{err}");
        out
    }

    /// Runs Kafka's command-line tool `class` against the cluster with `args`: (success, stdout, stderr).
    fn run_class(&self, class: &str, args: &[&str]) -> (bool, String, String) {
        let output = Command::new("java")
            .args(["-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"])
            .arg(format!("-Dlog4j2.configurationFile={}", self.log4j))
            .arg("-Dkafka.ref.log.level=WARN")
            .arg("-cp")
            .arg(&self.classpath)
            .arg(class)
            .args(["--bootstrap-server", &self.bootstrap])
            .args(args)
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

#[test]
#[ignore = "needs Java and the Kafka jars (hack/kafka-ref.sh); run by hack/test.sh's clients stage"]
fn kafka_reassign_partitions_generates_executes_and_verifies() {
    let mut cluster = start_cluster(4, 3);
    let tool = Tool::new(format!("127.0.0.1:{}", cluster.node(4).kafka_port));
    assert_eq!(create_topic_on(cluster.node(1), "tooled", &[1, 2, 3]), 0);
    cluster.wait_until("tooled fully in sync", Duration::from_secs(15), |c| {
        c.running().all(|n| isr_of(n, "tooled").len() == 3)
    });
    for i in 0..10 {
        assert_eq!(
            cluster.node(1).produce("tooled", 0, -1, &format!("v{i}")).0,
            0
        );
    }
    let work = tempfile::tempdir().unwrap();
    let topics = work.path().join("topics.json");
    std::fs::write(&topics, r#"{"version":1,"topics":[{"topic":"tooled"}]}"#).unwrap();

    let (ok, out, err) = tool.run(&[
        "--generate",
        "--topics-to-move-json-file",
        topics.to_str().unwrap(),
        "--broker-list",
        "2,3,4",
    ]);
    assert!(ok, "--generate failed:\n{out}\n{err}");
    let proposed = out
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or_else(|| panic!("--generate proposed nothing:\n{out}"));
    assert!(
        out.contains(r#""replicas":[1,2,3]"#),
        "--generate shows the current assignment:\n{out}"
    );
    let plan = work.path().join("plan.json");
    std::fs::write(&plan, proposed).unwrap();

    // --throttle sets the rates on the brokers and the throttled replicas on the topic; they are enforced
    // (50 MB/s does not slow this small move) and --verify clears them once the move is done.
    let (ok, out, err) = tool.run(&[
        "--execute",
        "--reassignment-json-file",
        plan.to_str().unwrap(),
        "--throttle",
        "50000000",
    ]);
    assert!(ok, "--execute failed:\n{out}\n{err}");
    assert!(
        out.contains("Successfully started partition reassignment"),
        "--execute output:\n{out}\n{err}"
    );

    assert!(
        !topic_config(
            cluster.node(3),
            "tooled",
            "leader.replication.throttled.replicas"
        )
        .is_empty(),
        "--execute --throttle names the throttled replicas"
    );
    // Each broker describes the rate the tool set on it, as a dynamic broker config (until --verify).
    assert_eq!(
        broker_config(cluster.node(4), "follower.replication.throttled.rate"),
        Some(("50000000".to_owned(), 2)),
        "broker 4 describes its follower throttle"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let verified = loop {
        let (ok, out, err) = tool.run(&[
            "--verify",
            "--reassignment-json-file",
            plan.to_str().unwrap(),
        ]);
        assert!(ok, "--verify failed:\n{out}\n{err}");
        if out.contains("Reassignment of partition tooled-0 is completed") {
            break out;
        }
        assert!(
            Instant::now() < deadline,
            "the move never completed; last --verify:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        verified.contains("Clearing broker-level throttles")
            && verified.contains("Clearing topic-level throttles"),
        "--verify clears the throttles once done:\n{verified}"
    );
    for key in [
        "leader.replication.throttled.replicas",
        "follower.replication.throttled.replicas",
    ] {
        assert_eq!(
            topic_config(cluster.node(3), "tooled", key),
            "",
            "{key} cleared"
        );
    }
    let replicas: BTreeSet<i32> = replicas_of(cluster.node(2), "tooled").into_iter().collect();
    assert_eq!(replicas, BTreeSet::from([2, 3, 4]));
    cluster.wait_until("broker 1 deletes its copy", Duration::from_secs(10), |c| {
        !c.node(1).dir.join("tooled-0").exists()
    });
    // Broker 2's view of the leader may be ahead of the leader's own; a client would retry.
    let values: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
    cluster.wait_until(
        "the leader serves every record",
        Duration::from_secs(10),
        |c| {
            let leader = leader_of(c, 2, "tooled", 0);
            leader > 0 && c.node(leader).read_all("tooled", 0) == Ok(values.clone())
        },
    );

    // kafka-metadata-quorum.sh (MetadataQuorumCommand) describes the quorum through the same cluster.
    let quorum = |what: &str| {
        let (ok, out, err) = tool.run_class(
            "org.apache.kafka.tools.MetadataQuorumCommand",
            &["describe", what],
        );
        assert!(
            ok,
            "kafka-metadata-quorum describe {what} failed:\n{out}\n{err}"
        );
        out
    };
    let status = quorum("--status");
    for expected in [
        "LeaderId:",
        "HighWatermark:",
        "CurrentVoters:",
        "CurrentObservers:",
    ] {
        assert!(
            status.contains(expected),
            "--status lacks {expected}:\n{status}"
        );
    }
    let voters = status_line(&status, "CurrentVoters:");
    for id in 1..=3 {
        assert!(
            voters.contains(&format!("\"id\": {id}")),
            "voter {id} in {voters}"
        );
    }
    let replication = quorum("--replication");
    assert!(
        replication
            .lines()
            .any(|l| l.trim_start().starts_with('4') && l.contains("Observer")),
        "broker 4 is an observer:\n{replication}"
    );
    eprintln!("kafka-metadata-quorum describe --status:\n{status}");

    // kafka-configs.sh (ConfigCommand) sets, describes and clears the drain flag of a broker.
    let broker_4 = ["--entity-type", "brokers", "--entity-name", "4"];
    tool.configs(
        &[
            &["--alter"][..],
            &broker_4,
            &["--add-config", "tributary.broker.draining=true"],
        ]
        .concat(),
    );
    let described = tool.configs(&[&["--describe"][..], &broker_4].concat());
    assert!(
        described.contains("tributary.broker.draining=true"),
        "kafka-configs --describe shows the flag:\n{described}"
    );
    tool.configs(
        &[
            &["--alter"][..],
            &broker_4,
            &["--delete-config", "tributary.broker.draining"],
        ]
        .concat(),
    );
    let described = tool.configs(&[&["--describe"][..], &broker_4].concat());
    assert!(
        !described.contains("tributary.broker.draining=true"),
        "the flag is cleared:\n{described}"
    );

    // --entity-default: a creation default and a throttle rate, cluster-wide, which every broker then uses.
    let defaults = ["--entity-type", "brokers", "--entity-default"];
    tool.configs(
        &[
            &["--alter"][..],
            &defaults,
            &[
                "--add-config",
                "default.replication.factor=2,follower.replication.throttled.rate=1048576",
            ],
        ]
        .concat(),
    );
    let described = tool.configs(&[&["--describe"][..], &defaults].concat());
    assert!(
        described.contains("default.replication.factor=2")
            && described.contains("follower.replication.throttled.rate=1048576"),
        "kafka-configs --describe --entity-default:\n{described}"
    );
    assert_eq!(
        broker_config(cluster.node(3), "follower.replication.throttled.rate"),
        Some(("1048576".to_owned(), 3)),
        "broker 3 takes the default rate (a dynamic default broker config)"
    );
    assert_eq!(
        broker_config(cluster.node(2), "default.replication.factor"),
        Some(("2".to_owned(), 3))
    );
    tool.configs(
        &[
            &["--alter"][..],
            &defaults,
            &[
                "--delete-config",
                "default.replication.factor,follower.replication.throttled.rate",
            ],
        ]
        .concat(),
    );
    assert_eq!(
        broker_config(cluster.node(3), "follower.replication.throttled.rate"),
        None,
        "no rate left"
    );
}

#[test]
#[ignore = "needs Java and the Kafka jars (hack/kafka-ref.sh); run by hack/test.sh's clients stage"]
fn kafka_metadata_quorum_adds_and_removes_controllers() {
    let mut cluster = start_cluster_as(4, 3, QuorumSetup::BootstrapWithSpareControllers(4));
    let tool = Tool::new(format!("127.0.0.1:{}", cluster.node(1).kafka_port));
    let quorum = |args: &[&str]| {
        let (ok, out, err) = tool.run_class("org.apache.kafka.tools.MetadataQuorumCommand", args);
        assert!(ok, "kafka-metadata-quorum {args:?} failed:\n{out}\n{err}");
        out
    };
    cluster.wait_until(
        "node 4 follows the log as an observer",
        Duration::from_secs(15),
        |_| {
            let status = quorum(&["describe", "--status"]);
            status_line(&status, "CurrentObservers:").contains("\"id\": 4")
        },
    );

    // add-controller reads node 4's own server.properties: node.id, the controller listener and the
    // directory id in its meta.properties.
    let properties = cluster.node(4).properties.display().to_string();
    let added = quorum(&["--command-config", &properties, "add-controller"]);
    let directory_4 = cluster.node(4).directory_id();
    assert!(
        added.contains("Added controller 4") && added.contains(&directory_4),
        "{added}"
    );
    let status = quorum(&["describe", "--status"]);
    let voters = status_line(&status, "CurrentVoters:");
    for id in 1..=4 {
        assert!(
            voters.contains(&format!("\"id\": {id}")),
            "voter {id} in {voters}"
        );
    }
    assert!(
        voters.contains(&format!("\"directoryId\": \"{directory_4}\"")),
        "the new voter's directory id in {voters}"
    );

    let directory_1 = cluster.node(1).directory_id();
    let removed = quorum(&[
        "remove-controller",
        "--controller-id",
        "1",
        "--controller-directory-id",
        &directory_1,
    ]);
    assert!(removed.contains("Removed KRaft controller 1"), "{removed}");
    let status = quorum(&["describe", "--status"]);
    let voters = status_line(&status, "CurrentVoters:");
    assert!(!voters.contains("\"id\": 1,"), "1 is no voter: {voters}");
    let observers = status_line(&status, "CurrentObservers:");
    assert!(
        observers.contains("\"id\": 1"),
        "1 still follows: {observers}"
    );
    eprintln!("kafka-metadata-quorum describe --status after the changes:\n{status}");

    // The quorum without voter 1 still commits: a topic created through node 1, which stays a broker.
    assert_eq!(
        create_topic(cluster.node(1), "after-controller-changes", 1, 3),
        0
    );
}

/// The line of `kafka-metadata-quorum describe --status` output that starts with `label` ("" when none does).
fn status_line<'a>(status: &'a str, label: &str) -> &'a str {
    status
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_default()
}

/// The value of topic config `key` of `topic` as `node` describes it.
fn topic_config(node: &Node, topic: &str, key: &str) -> String {
    use kafka_protocol::messages::{
        describe_configs_request::DescribeConfigsResource, DescribeConfigsRequest,
    };
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_string(topic.to_owned()))
            .with_configuration_keys(Some(vec![StrBytes::from_string(key.to_owned())]))]);
    let response = node.call(request, 4);
    let result = &response.results[0];
    assert_eq!(result.error_code, 0, "DescribeConfigs of {topic}");
    result
        .configs
        .iter()
        .find(|c| c.name.as_str() == key)
        .and_then(|c| c.value.as_ref())
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// `key` of `node`'s own broker resource as DescribeConfigs shows it: (value, config source).
fn broker_config(node: &Node, key: &str) -> Option<(String, i8)> {
    use kafka_protocol::messages::{
        describe_configs_request::DescribeConfigsResource, DescribeConfigsRequest,
    };
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(StrBytes::from_string(node.id.to_string()))
            .with_configuration_keys(Some(vec![StrBytes::from_string(key.to_owned())]))]);
    let response = node.call(request, 4);
    let result = &response.results[0];
    assert_eq!(
        result.error_code, 0,
        "DescribeConfigs of broker {}",
        node.id
    );
    result
        .configs
        .iter()
        .find(|c| c.name.as_str() == key)
        .map(|c| {
            (
                c.value.as_deref().unwrap_or_default().to_owned(),
                c.config_source,
            )
        })
}

/// Whether a new connection to `port` is answered (an ApiVersions v0 round trip) or closed unanswered.
fn connection_answered(port: u16) -> bool {
    let request = kafka_protocol::messages::ApiVersionsRequest::default();
    call_over_tcp(port, &request, 0, Duration::from_secs(5)).is_ok()
}

#[test]
#[ignore = "needs Java and the Kafka jars (hack/kafka-ref.sh); run by hack/test.sh's clients stage"]
fn kafka_configs_sets_client_quotas_and_kafkas_producer_is_held_to_them() {
    // Two one-second windows, so a quota is felt after a second's worth of bytes rather than ten.
    let mut cluster = start_cluster_with(
        2,
        1,
        |_| "quota.window.num=2\nquota.window.size.seconds=1\n".to_owned(),
        |_| Vec::new(),
    );
    // Node 2 does not vote: its quota changes are forwarded to the controller on node 1.
    let tool = Tool::new(format!("127.0.0.1:{}", cluster.node(2).kafka_port));
    let throttled = ["--entity-type", "clients", "--entity-name", "throttled"];
    tool.configs(
        &[
            &["--alter"][..],
            &throttled,
            &[
                "--add-config",
                "producer_byte_rate=100000,request_percentage=200",
            ],
        ]
        .concat(),
    );
    let described = tool.configs(&[&["--describe"][..], &throttled].concat());
    assert!(
        described.contains("producer_byte_rate=100000.0")
            && described.contains("request_percentage=200.0"),
        "kafka-configs --describe on the client:\n{described}"
    );
    tool.configs(&[
        "--alter",
        "--entity-type",
        "users",
        "--entity-default",
        "--entity-type",
        "clients",
        "--entity-default",
        "--add-config",
        "consumer_byte_rate=5000000",
    ]);
    let all = tool.configs(&[
        "--describe",
        "--entity-type",
        "users",
        "--entity-default",
        "--entity-type",
        "clients",
        "--entity-default",
    ]);
    assert!(
        all.contains("consumer_byte_rate=5000000.0"),
        "defaults:\n{all}"
    );

    // Kafka's own producer (ProducerPerformance) under the quota: 600 KB at 100 KB/s cannot take less than
    // about 4 s (one window's worth may go at once); without the quota it takes well under one.
    assert_eq!(create_topic_on(cluster.node(1), "quota-perf", &[1]), 0);
    cluster.wait_until("quota-perf led", Duration::from_secs(15), |c| {
        c.running().all(|n| !isr_of(n, "quota-perf").is_empty())
    });
    let perf = |client_id: &str| {
        let started = Instant::now();
        let (ok, out, err) = tool.run_class(
            "org.apache.kafka.tools.ProducerPerformance",
            &[
                "--topic",
                "quota-perf",
                "--num-records",
                "600",
                "--record-size",
                "1000",
                "--throughput",
                "-1",
                "--producer-props",
                "acks=1",
                &format!("client.id={client_id}"),
                "linger.ms=5",
            ],
        );
        assert!(ok, "ProducerPerformance failed:\n{out}\n{err}");
        (started.elapsed(), out)
    };
    let (free, _) = perf("unthrottled");
    let (held, out) = perf("throttled");
    eprintln!("600 KB: {free:?} without a quota, {held:?} at producer_byte_rate=100000\n{out}");
    assert!(
        held >= free + Duration::from_secs(3),
        "the throttled producer took {held:?}, the free one {free:?}:\n{out}"
    );
    let produce_throttles = |node: &Node| {
        http_body(node.http_port, "/metrics")
            .lines()
            .find(|l| {
                l.starts_with("tributary_client_quota_throttled_requests_total{quota=\"produce\"}")
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(
        produce_throttles(cluster.node(1)) > 0.0,
        "the leader counted throttled produce requests"
    );

    // A connection_creation_rate on the default IP: a burst of new connections is cut; removing the
    // quota lets them all through again.
    let port = cluster.node(1).kafka_port;
    tool.configs(&[
        "--alter",
        "--entity-type",
        "ips",
        "--entity-default",
        "--add-config",
        "connection_creation_rate=2",
    ]);
    let answered = (0..8).filter(|_| connection_answered(port)).count();
    assert!(
        answered < 8,
        "8 connections at once over 2/s: {answered} answered"
    );
    tool.configs(&[
        "--alter",
        "--entity-type",
        "ips",
        "--entity-default",
        "--delete-config",
        "connection_creation_rate",
    ]);
    let answered = (0..8).filter(|_| connection_answered(port)).count();
    assert_eq!(answered, 8, "without the quota every connection is served");
}
