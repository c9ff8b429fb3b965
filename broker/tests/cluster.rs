//! A three-broker cluster of real `tributary-broker` processes, configured the way Apache Kafka's KRaft
//! combined-mode nodes are (`server.properties` with Kafka's names, `format -t ID -c FILE` first): the
//! brokers form one cluster with one metadata quorum, admin calls work on any broker, and a killed broker is
//! fenced and its leaderships move to the in-sync replicas. Loopback only; every wait is bounded.
#![allow(clippy::unwrap_used)]

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use bytes::Bytes;
use kafka_protocol::{
    messages::{
        create_topics_request::CreatableTopic,
        fetch_request::{FetchPartition, FetchTopic},
        metadata_request::MetadataRequestTopic,
        produce_request::{PartitionProduceData, TopicProduceData},
        CreateTopicsRequest, DescribeClusterRequest, FetchRequest, MetadataRequest,
        MetadataResponse, ProduceRequest, TopicName,
    },
    protocol::{Request, StrBytes},
};
use tributary_broker::{
    log::builder::BatchBuilder,
    testing::{call_over_tcp, small_disk::SmallDisk},
};

const BIN: &str = env!("CARGO_BIN_EXE_tributary-broker");
const CLUSTER_ID: &str = "4L6g3nShT-eMCtK--X86sw";
/// Short enough that a killed broker is fenced within the test's patience, long enough to survive a busy
/// two-core machine (heartbeats every 250 ms).
const SESSION_TIMEOUT_MS: u64 = 3000;

/// A port that is free now, below the kernel's ephemeral range (32768-60999 on these machines). The voter
/// list must name every controller port before any node starts, so these cannot be port 0; and a port from
/// the ephemeral range can be taken by some client connection while its node is down, so that the node
/// fails to restart on it (seen as "node exited" flakes). A collision fails loudly (bind error in the
/// log), never silently.
fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(7919) % 12_000;
    for _ in 0..12_000 {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = u16::try_from(20_000 + (seed + n) % 12_000).unwrap();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000-31999");
}

struct Node {
    id: i32,
    dir: PathBuf,
    properties: PathBuf,
    kafka_port: u16,
    child: Option<Child>,
    http_port: u16,
    run: usize,
}

/// Fields drop in order: the brokers stop before their small disks are unmounted and the root removed.
struct Cluster {
    nodes: Vec<Node>,
    _disks: Vec<SmallDisk>,
    _root: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Node {
    fn log_path(&self) -> PathBuf {
        self.dir
            .with_file_name(format!("broker-{}-{}.log", self.id, self.run))
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn start(&mut self) {
        self.run += 1;
        let addresses = self
            .dir
            .with_file_name(format!("addresses-{}-{}", self.id, self.run));
        let child = Command::new(BIN)
            .arg("--config")
            .arg(&self.properties)
            .args(["--http-listen", "127.0.0.1:0"])
            .arg("--bound-addresses-file")
            .arg(&addresses)
            .env("RUST_LOG", "info,openraft=warn")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.log_path()).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        self.http_port = loop {
            if let Some(port) = bound_port(&addresses, "http") {
                break port;
            }
            self.assert_alive();
            assert!(
                Instant::now() < deadline,
                "node {} wrote no addresses; log:\n{}",
                self.id,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
    }

    fn assert_alive(&mut self) {
        if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
            panic!(
                "node {} exited with {status}; log:\n{}",
                self.id,
                self.log_text()
            );
        }
    }

    fn ready(&self) -> bool {
        http_status(self.http_port, "/readyz") == Some(200)
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn call<R: Request>(&self, request: R, version: i16) -> R::Response {
        call_over_tcp(self.kafka_port, &request, version, Duration::from_secs(20)).unwrap()
    }

    /// Produces one record to `topic`-`partition`: `(error code, base offset)`.
    fn produce(&self, topic: &str, partition: i32, acks: i16, value: &str) -> (i16, i64) {
        produce_at(self.kafka_port, topic, partition, acks, value)
    }

    /// Every record value of `topic`-`partition` a consumer can read (up to the high watermark), from 0.
    fn read_all(&self, topic: &str, partition: i32) -> Result<Vec<String>, i16> {
        let mut values = Vec::new();
        loop {
            let request = FetchRequest::default()
                .with_replica_id((-1).into())
                .with_max_wait_ms(0)
                .with_max_bytes(1 << 20)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
                    .with_partitions(vec![FetchPartition::default()
                        .with_partition(partition)
                        .with_fetch_offset(i64::try_from(values.len()).unwrap())
                        .with_partition_max_bytes(1 << 20)])]);
            let response = self.call(request, 11);
            let data = &response.responses[0].partitions[0];
            if data.error_code != 0 {
                return Err(data.error_code);
            }
            let mut bytes = data.records.clone().unwrap_or_default();
            let batch: Vec<String> =
                kafka_protocol::records::RecordBatchDecoder::decode_all(&mut bytes)
                    .unwrap()
                    .into_iter()
                    .flat_map(|set| set.records)
                    .map(|r| String::from_utf8(r.value.unwrap_or_default().to_vec()).unwrap())
                    .collect();
            if batch.is_empty() {
                return Ok(values);
            }
            values.extend(batch);
        }
    }

    fn metadata(&self, topic: &str) -> MetadataResponse {
        let request = MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
                TopicName(StrBytes::from_string(topic.to_owned())),
            ))]))
            .with_allow_auto_topic_creation(false);
        self.call(request, 12)
    }
}

/// Produces one record to `topic`-`partition` of the broker at `port` (usable from a writer thread that
/// holds no `Node`): `(error code, base offset)`.
fn produce_at(port: u16, topic: &str, partition: i32, acks: i16, value: &str) -> (i16, i64) {
    let batch = BatchBuilder::new()
        .record(None, Some(Bytes::from(value.to_owned())))
        .build()
        .unwrap();
    let request = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch))])]);
    let response = call_over_tcp(port, &request, 9, Duration::from_secs(20)).unwrap();
    let answer = &response.responses[0].partition_responses[0];
    (answer.error_code, answer.base_offset)
}

fn bound_port(path: &Path, key: &str) -> Option<u16> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))?;
    line.rsplit_once(':')?.1.parse().ok()
}

fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

/// Formats and starts `size` nodes with ids 1..=size, the first `voters` of them combined-mode voters and
/// the rest brokers only, then waits until every one is ready.
fn start_cluster(size: i32, voters: i32) -> Cluster {
    start_cluster_with(size, voters, |_| String::new(), |_| Vec::new())
}

/// [`start_cluster`] with `extra(node id)` appended to each node's `server.properties`, and some nodes'
/// data directories on small disks of their own: `disks` mounts them under the root it is given, as
/// (node id, disk).
fn start_cluster_with(
    size: i32,
    voters: i32,
    extra: impl Fn(i32) -> String,
    disks: impl FnOnce(&Path) -> Vec<(i32, SmallDisk)>,
) -> Cluster {
    start_cluster_configured(size, voters, QuorumSetup::StaticVoters, extra, disks)
}

/// How the nodes find the metadata quorum, as Kafka offers it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum QuorumSetup {
    /// `controller.quorum.voters` in every node's properties.
    StaticVoters,
    /// `controller.quorum.bootstrap.servers`, with the voters recorded once by `format
    /// --initial-controllers` (KIP-853's way).
    Bootstrap,
}

fn start_cluster_configured(
    size: i32,
    voters: i32,
    quorum: QuorumSetup,
    extra: impl Fn(i32) -> String,
    disks: impl FnOnce(&Path) -> Vec<(i32, SmallDisk)>,
) -> Cluster {
    let root = tempfile::tempdir().unwrap();
    let disks = disks(root.path());
    let ports: Vec<(u16, u16)> = (0..size).map(|_| (free_port(), free_port())).collect();
    let controllers = &ports[..usize::try_from(voters).unwrap()];
    let voter_list = controllers
        .iter()
        .enumerate()
        .map(|(i, (_, controller))| format!("{}@127.0.0.1:{controller}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let quorum_line = match quorum {
        QuorumSetup::StaticVoters => format!("controller.quorum.voters={voter_list}"),
        QuorumSetup::Bootstrap => format!(
            "controller.quorum.bootstrap.servers={}",
            controllers
                .iter()
                .map(|(_, controller)| format!("127.0.0.1:{controller}"))
                .collect::<Vec<_>>()
                .join(",")
        ),
    };
    let initial_controllers = controllers
        .iter()
        .enumerate()
        .map(|(i, (_, controller))| {
            let directory = Command::new(BIN).arg("random-uuid").output().unwrap();
            let directory = String::from_utf8(directory.stdout).unwrap();
            format!("{}@127.0.0.1:{controller}:{}", i + 1, directory.trim())
        })
        .collect::<Vec<_>>()
        .join(",");
    let mut nodes = Vec::new();
    for (i, (kafka, controller)) in ports.iter().enumerate() {
        let id = i32::try_from(i).unwrap() + 1;
        let dir = disks.iter().find(|(node, _)| *node == id).map_or_else(
            || root.path().join(format!("node-{id}")),
            |(_, disk)| disk.path().to_path_buf(),
        );
        let properties = root.path().join(format!("server-{id}.properties"));
        let (roles, listeners) = if id <= voters {
            (
                "broker,controller",
                format!("PLAINTEXT://127.0.0.1:{kafka},CONTROLLER://127.0.0.1:{controller}"),
            )
        } else {
            ("broker", format!("PLAINTEXT://127.0.0.1:{kafka}"))
        };
        std::fs::write(
            &properties,
            format!(
                "process.roles={roles}\n\
                 node.id={id}\n\
                 {quorum_line}\n\
                 listeners={listeners}\n\
                 advertised.listeners=PLAINTEXT://127.0.0.1:{kafka}\n\
                 controller.listener.names=CONTROLLER\n\
                 inter.broker.listener.name=PLAINTEXT\n\
                 listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n\
                 log.dirs={}\n\
                 num.partitions=1\n\
                 default.replication.factor=3\n\
                 min.insync.replicas=2\n\
                 offsets.topic.replication.factor=3\n\
                 group.initial.rebalance.delay.ms=0\n\
                 broker.session.timeout.ms={SESSION_TIMEOUT_MS}\n\
                 broker.heartbeat.interval.ms=250\n\
                 leader.imbalance.check.interval.seconds=1\n\
                 {}",
                dir.display(),
                extra(id)
            ),
        )
        .unwrap();
        let formatted = Command::new(BIN)
            .args(["format", "-t", CLUSTER_ID, "-c"])
            .arg(&properties)
            // Broker-only nodes are formatted without voters, as with kafka-storage.sh.
            .args(if quorum == QuorumSetup::Bootstrap && id <= voters {
                vec!["--initial-controllers", initial_controllers.as_str()]
            } else {
                Vec::new()
            })
            .output()
            .unwrap();
        assert!(
            formatted.status.success(),
            "format failed: {}",
            String::from_utf8_lossy(&formatted.stderr)
        );
        nodes.push(Node {
            id,
            dir,
            properties,
            kafka_port: *kafka,
            child: None,
            http_port: 0,
            run: 0,
        });
    }
    for node in &mut nodes {
        node.start();
    }
    let mut cluster = Cluster {
        nodes,
        _disks: disks.into_iter().map(|(_, disk)| disk).collect(),
        _root: root,
    };
    cluster.wait_until("every broker is ready", Duration::from_secs(30), |c| {
        c.nodes.iter().all(Node::ready)
    });
    cluster
}

impl Cluster {
    fn node(&mut self, id: i32) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.id == id).unwrap()
    }

    fn running(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.child.is_some())
    }

    fn wait_until(&mut self, what: &str, limit: Duration, mut done: impl FnMut(&mut Self) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(self) {
            for node in self.nodes.iter_mut().filter(|n| n.child.is_some()) {
                node.assert_alive();
            }
            if Instant::now() > deadline {
                let logs: String = self
                    .nodes
                    .iter()
                    .map(|n| format!("--- node {} ---\n{}\n", n.id, n.log_text()))
                    .collect();
                panic!("waited {limit:?} for: {what}\n{logs}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn broker_ids(metadata: &MetadataResponse) -> BTreeSet<i32> {
    metadata.brokers.iter().map(|b| b.node_id.0).collect()
}

fn create_topic(node: &Node, name: &str, partitions: i32, replication_factor: i16) -> i16 {
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.to_owned())))
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor)])
        .with_timeout_ms(30_000);
    node.call(request, 5).topics[0].error_code
}

#[test]
fn three_brokers_form_one_cluster_and_fail_over() {
    let mut cluster = start_cluster(3, 3);

    // One cluster: every broker lists all three, and names the same controller.
    for node in cluster.running() {
        let metadata = node.metadata("none-yet");
        assert_eq!(
            broker_ids(&metadata),
            BTreeSet::from([1, 2, 3]),
            "brokers listed by node {}",
            node.id
        );
        assert_eq!(metadata.cluster_id.as_deref(), Some(CLUSTER_ID));
        let described = node.call(DescribeClusterRequest::default(), 0);
        assert!(
            [1, 2, 3].contains(&described.controller_id.0),
            "controller {:?}",
            described.controller_id
        );
    }

    // A topic created through one broker (forwarded to the active controller) is placed on all three. The
    // broker that took the call sees it as soon as the call returns; the others within a heartbeat or two.
    assert_eq!(create_topic(cluster.node(2), "orders", 3, 3), 0);
    assert_eq!(cluster.node(2).metadata("orders").topics[0].error_code, 0);
    cluster.wait_until("every broker sees the topic", Duration::from_secs(5), |c| {
        c.running()
            .all(|n| n.metadata("orders").topics[0].error_code == 0)
    });
    for node in cluster.running() {
        let metadata = node.metadata("orders");
        let topic = &metadata.topics[0];
        assert_eq!(topic.error_code, 0, "orders on node {}", node.id);
        assert_eq!(topic.partitions.len(), 3);
        let leaders: BTreeSet<i32> = topic.partitions.iter().map(|p| p.leader_id.0).collect();
        assert_eq!(leaders, BTreeSet::from([1, 2, 3]), "leaders spread evenly");
        for partition in &topic.partitions {
            assert_eq!(partition.replica_nodes.len(), 3);
            assert_eq!(partition.isr_nodes.len(), 3);
        }
    }
    assert_eq!(
        create_topic(cluster.node(3), "too-wide", 1, 4),
        38,
        "RF 4 > 3 brokers: INVALID_REPLICATION_FACTOR"
    );

    // kill -9 the leader of partition 0: after the session timeout it is fenced, its partitions get new
    // leaders (with a bumped epoch) from the ISR, and it leaves the broker list.
    let before = cluster.node(1).metadata("orders").topics[0].partitions[0].clone();
    let victim = before.leader_id.0;
    cluster.node(victim).kill();
    let survivor = if victim == 1 { 2 } else { 1 };
    cluster.wait_until(
        "the killed broker is fenced",
        Duration::from_secs(20),
        |c| !broker_ids(&c.node(survivor).metadata("orders")).contains(&victim),
    );
    let after = cluster.node(survivor).metadata("orders");
    let partition = &after.topics[0].partitions[0];
    assert_ne!(partition.leader_id.0, victim);
    assert!(partition.leader_epoch > before.leader_epoch);
    assert!(!partition.isr_nodes.iter().any(|id| id.0 == victim));
    assert_eq!(
        partition
            .offline_replicas
            .iter()
            .map(|id| id.0)
            .collect::<Vec<_>>(),
        [victim]
    );

    // The two left still take admin calls (a majority of the quorum is up).
    assert_eq!(
        create_topic(cluster.node(survivor), "while-degraded", 1, 2),
        0
    );

    // The killed broker comes back, registers again and is listed again.
    cluster.node(victim).start();
    cluster.wait_until(
        "the restarted broker is back",
        Duration::from_secs(30),
        |c| c.node(victim).ready() && broker_ids(&c.node(survivor).metadata("orders")).len() == 3,
    );
    assert_eq!(
        cluster.node(victim).metadata("while-degraded").topics[0].error_code,
        0
    );
}

#[test]
fn replicas_are_placed_on_distinct_racks() {
    // Two racks of unequal size: rack-b's only broker must hold a replica of every RF-2 partition, which
    // placing replicas on consecutive broker ids would miss (partitions on [1, 2]).
    let rack = |id: i32| if id == 3 { "rack-b" } else { "rack-a" };
    let mut cluster = start_cluster_with(
        3,
        3,
        |id| format!("broker.rack={}\n", rack(id)),
        |_| Vec::new(),
    );
    assert_eq!(create_topic(cluster.node(1), "zoned", 6, 2), 0);
    cluster.wait_until("every broker sees the topic", Duration::from_secs(5), |c| {
        c.running()
            .all(|n| n.metadata("zoned").topics[0].error_code == 0)
    });
    for node in cluster.running() {
        let metadata = node.metadata("zoned");
        let racks: BTreeMap<i32, String> = metadata
            .brokers
            .iter()
            .map(|b| (b.node_id.0, b.rack.as_deref().unwrap_or("").to_owned()))
            .collect();
        assert_eq!(
            racks,
            (1..=3).map(|id| (id, rack(id).to_owned())).collect(),
            "racks listed by node {}",
            node.id
        );
        let topic = &metadata.topics[0];
        assert_eq!(topic.partitions.len(), 6);
        let mut leaders = BTreeMap::new();
        for partition in &topic.partitions {
            let on: BTreeSet<&str> = partition
                .replica_nodes
                .iter()
                .map(|id| racks[&id.0].as_str())
                .collect();
            assert_eq!(
                on,
                BTreeSet::from(["rack-a", "rack-b"]),
                "partition {} has replicas {:?}",
                partition.partition_index,
                partition.replica_nodes
            );
            *leaders.entry(partition.leader_id.0).or_insert(0) += 1;
        }
        assert_eq!(
            leaders,
            BTreeMap::from([(1, 2), (2, 2), (3, 2)]),
            "leaders spread over every broker"
        );
    }
}

#[test]
fn a_broker_that_does_not_vote_follows_the_metadata_log() {
    let mut cluster = start_cluster(4, 3);
    assert_eq!(create_topic(cluster.node(1), "wide", 4, 4), 0);
    cluster.wait_until(
        "the broker-only node sees the topic",
        Duration::from_secs(5),
        |c| c.node(4).metadata("wide").topics[0].error_code == 0,
    );
    let metadata = cluster.node(4).metadata("wide");
    assert_eq!(broker_ids(&metadata), BTreeSet::from([1, 2, 3, 4]));
    let leaders: BTreeSet<i32> = metadata.topics[0]
        .partitions
        .iter()
        .map(|p| p.leader_id.0)
        .collect();
    assert_eq!(leaders, BTreeSet::from([1, 2, 3, 4]));
    // It forwards admin calls like any broker, and survives a restart (it rejoins as a learner).
    assert_eq!(create_topic(cluster.node(4), "from-four", 1, 3), 0);
    cluster.node(4).kill();
    cluster.node(4).start();
    cluster.wait_until(
        "the broker-only node is back",
        Duration::from_secs(30),
        |c| c.node(4).ready(),
    );
    assert_eq!(
        cluster.node(4).metadata("from-four").topics[0].error_code,
        0
    );
}

/// The leader of `topic`-`partition` as `node` sees it.
fn leader_of(cluster: &mut Cluster, node: i32, topic: &str, partition: i32) -> i32 {
    let metadata = cluster.node(node).metadata(topic);
    metadata.topics[0].partitions[usize::try_from(partition).unwrap()]
        .leader_id
        .0
}

#[test]
fn acknowledged_records_survive_the_loss_of_their_leader() {
    let mut cluster = start_cluster(3, 3);
    assert_eq!(create_topic(cluster.node(1), "ledger", 1, 3), 0);
    cluster.wait_until("a leader with a full ISR", Duration::from_secs(10), |c| {
        c.running().all(|n| {
            let metadata = n.metadata("ledger");
            metadata.topics[0].error_code == 0
                && metadata.topics[0].partitions[0].isr_nodes.len() == 3
        })
    });
    let leader = leader_of(&mut cluster, 1, "ledger", 0);
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let value = format!("r{i}");
        let (error, offset) = cluster.node(leader).produce("ledger", 0, -1, &value);
        assert_eq!(error, 0, "acks=all produce {i}");
        assert_eq!(offset, i64::from(i), "offsets are dense");
        acknowledged.push(value);
    }
    // Every acknowledged record is on every ISR member: kill the leader, the new one serves all of them.
    cluster.node(leader).kill();
    let survivor = if leader == 1 { 2 } else { 1 };
    cluster.wait_until("a new leader", Duration::from_secs(20), |c| {
        let now = leader_of(c, survivor, "ledger", 0);
        now != leader && now >= 0
    });
    let new_leader = leader_of(&mut cluster, survivor, "ledger", 0);
    // The new leader's high watermark reaches the old one's once the other follower has fetched from it
    // (Kafka's rule: a new leader does not advance it on its own); until then the tail is not yet visible.
    cluster.wait_until(
        "the new leader serves every acknowledged record",
        Duration::from_secs(10),
        |c| c.node(new_leader).read_all("ledger", 0) == Ok(acknowledged.clone()),
    );
    // With two of three in the ISR (min.insync.replicas=2) acks=all still works on the new leader.
    let (error, offset) = cluster
        .node(new_leader)
        .produce("ledger", 0, -1, "after-failover");
    assert_eq!((error, offset), (0, 20));
    acknowledged.push("after-failover".to_owned());

    // The old leader comes back as a follower, catches up and rejoins the ISR.
    cluster.node(leader).start();
    cluster.wait_until(
        "the old leader back in the ISR",
        Duration::from_secs(30),
        |c| {
            c.node(survivor).metadata("ledger").topics[0].partitions[0]
                .isr_nodes
                .len()
                == 3
        },
    );
    // auto.leader.rebalance.enable: the preferred replica (the first of the assignment, the original
    // leader) leads again once it is back in sync.
    cluster.wait_until(
        "the preferred leader leads again",
        Duration::from_secs(10),
        |c| leader_of(c, survivor, "ledger", 0) == leader,
    );
    assert_eq!(
        cluster.node(leader).read_all("ledger", 0),
        Ok(acknowledged.clone())
    );

    // Both other replicas down. With three voters that also loses the metadata quorum, so nobody can
    // take them out of the ISR: acks=all is never acknowledged (it times out waiting for them, as in
    // Kafka), and consumers see only what was acknowledged before.
    let remaining = leader;
    for id in [1, 2, 3].into_iter().filter(|id| *id != remaining) {
        cluster.node(id).kill();
    }
    let (error, _) = cluster
        .node(remaining)
        .produce("ledger", 0, -1, "not-acknowledged");
    assert!(
        [7, 19, 20].contains(&error),
        "acks=all without its ISR answered {error}"
    );
    assert_eq!(
        cluster.node(remaining).read_all("ledger", 0),
        Ok(acknowledged)
    );
}

#[test]
fn acks_all_is_refused_once_the_isr_is_below_min_insync_replicas() {
    // Three voters and two brokers that do not vote; the topic lives on voter 1 and the two others, so
    // losing those two leaves the metadata quorum intact and the controller shrinks the ISR.
    let mut cluster = start_cluster(5, 3);
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("narrow")))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(vec![
                kafka_protocol::messages::create_topics_request::CreatableReplicaAssignment::default()
                    .with_partition_index(0)
                    .with_broker_ids(vec![1.into(), 4.into(), 5.into()]),
            ])])
        .with_timeout_ms(30_000);
    assert_eq!(cluster.node(2).call(request, 5).topics[0].error_code, 0);
    cluster.wait_until("node 1 leads narrow", Duration::from_secs(10), |c| {
        c.node(1).metadata("narrow").topics[0].error_code == 0
    });
    assert_eq!(cluster.node(1).produce("narrow", 0, -1, "kept").0, 0);
    cluster.node(4).kill();
    cluster.node(5).kill();
    cluster.wait_until(
        "the ISR shrinks to the leader",
        Duration::from_secs(30),
        |c| {
            c.node(1).metadata("narrow").topics[0].partitions[0]
                .isr_nodes
                .len()
                == 1
        },
    );
    let (error, _) = cluster.node(1).produce("narrow", 0, -1, "refused");
    assert_eq!(error, 19, "NOT_ENOUGH_REPLICAS");
    assert_eq!(
        cluster.node(1).read_all("narrow", 0),
        Ok(vec!["kept".to_owned()])
    );
}

#[test]
fn a_changed_voter_set_is_refused_with_a_clear_error() {
    let mut cluster = start_cluster(3, 3);
    let node = cluster.node(3);
    node.kill();
    let properties = std::fs::read_to_string(&node.properties).unwrap();
    let changed: String = properties
        .lines()
        .map(
            |line| match line.strip_prefix("controller.quorum.voters=") {
                Some(voters) => format!("controller.quorum.voters={voters},9@127.0.0.1:1\n"),
                None => format!("{line}\n"),
            },
        )
        .collect();
    std::fs::write(&node.properties, changed).unwrap();
    node.start();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = node.child.as_mut().unwrap().try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "node 3 kept running; log:\n{}",
            node.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    let log = node.log_text();
    assert!(
        log.contains("names voters [1, 2, 3, 9], but this node's metadata log was formed by voters [1, 2, 3]"),
        "log:\n{log}"
    );
}

/// The coordinator of `group` as `node` answers FindCoordinator (-1 while there is none).
fn coordinator_of(node: &Node, group: &str) -> (i16, i32) {
    let request = kafka_protocol::messages::FindCoordinatorRequest::default()
        .with_key(StrBytes::from_string(group.to_owned()))
        .with_key_type(0);
    let response = node.call(request, 3);
    (response.error_code, response.node_id.0)
}

/// `group`'s committed offset and leader epoch of `topic`-0 at `node`: `Err(code)` on a group error.
fn committed_at(node: &Node, group: &str, topic: &str) -> Result<(i64, i32), i16> {
    let request = kafka_protocol::messages::OffsetFetchRequest::default()
        .with_group_id(kafka_protocol::messages::GroupId(StrBytes::from_string(
            group.to_owned(),
        )))
        .with_topics(Some(vec![
            kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partition_indexes(vec![0]),
        ]));
    let response = node.call(request, 7);
    if response.error_code != 0 {
        return Err(response.error_code);
    }
    let partition = &response.topics[0].partitions[0];
    if partition.error_code != 0 {
        return Err(partition.error_code);
    }
    Ok((partition.committed_offset, partition.committed_leader_epoch))
}

#[test]
fn committed_offsets_survive_the_loss_of_their_coordinator() {
    let mut cluster = start_cluster(3, 3);
    assert_eq!(create_topic(cluster.node(1), "orders", 1, 3), 0);
    // The offsets topic is created on first use, replicated 3 ways; the coordinator answers once loaded.
    cluster.wait_until(
        "a coordinator for the group",
        Duration::from_secs(20),
        |c| {
            let (error, id) = coordinator_of(c.node(1), "billing");
            error == 0 && id > 0
        },
    );
    let (_, coordinator) = coordinator_of(cluster.node(1), "billing");
    let commit = kafka_protocol::messages::OffsetCommitRequest::default()
        .with_group_id(kafka_protocol::messages::GroupId(StrBytes::from_static_str("billing")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            kafka_protocol::messages::offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("orders")))
                .with_partitions(vec![
                    kafka_protocol::messages::offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(42)
                        .with_committed_leader_epoch(0),
                ]),
        ]);
    cluster.wait_until("the commit is acknowledged", Duration::from_secs(20), |c| {
        c.node(coordinator).call(commit.clone(), 8).topics[0].partitions[0].error_code == 0
    });
    cluster.node(coordinator).kill();
    let survivor = if coordinator == 1 { 2 } else { 1 };
    cluster.wait_until(
        "a new coordinator serves the commit",
        Duration::from_secs(30),
        |c| {
            let (error, id) = coordinator_of(c.node(survivor), "billing");
            error == 0
                && id != coordinator
                && committed_at(c.node(id), "billing", "orders") == Ok((42, 0))
        },
    );
}

/// Node 3's data directory is a small disk of its own. When it fills up as leader, its produce answers are
/// KAFKA_STORAGE_ERROR at once, the controller moves the leadership to an in-sync replica and takes node 3
/// out of the ISR, and producers carry on there with acks=all. Once space is freed node 3 catches up and
/// rejoins the ISR. Node 3 is a voter throughout: the storage reserve keeps its metadata log writable.
#[test]
fn a_broker_out_of_space_hands_its_leaderships_over_and_rejoins_when_space_is_freed() {
    const DISK: u64 = 24 << 20;
    let mut mounted = Ok(());
    let mut cluster = start_cluster_with(
        3,
        3,
        |_| String::new(),
        |root| match SmallDisk::mount(&root.join("disk-3"), DISK) {
            Ok(disk) => vec![(3, disk)],
            Err(why) => {
                mounted = Err(why);
                Vec::new()
            }
        },
    );
    if let Err(why) = mounted {
        eprintln!("skipped: {why}");
        return;
    }
    // About 4 MiB above the reserve (5 % of 24 MiB) stay free for partition data on node 3.
    cluster._disks[0].fill("ballast", 18 << 20).unwrap();
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("spill")))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(vec![
                kafka_protocol::messages::create_topics_request::CreatableReplicaAssignment::default()
                    .with_partition_index(0)
                    .with_broker_ids(vec![3.into(), 1.into(), 2.into()]),
            ])])
        .with_timeout_ms(30_000);
    assert_eq!(cluster.node(1).call(request, 5).topics[0].error_code, 0);
    cluster.wait_until("node 3 leads spill", Duration::from_secs(10), |c| {
        leader_of(c, 1, "spill", 0) == 3
    });
    let value = "v".repeat(256 << 10);
    let mut acknowledged = 0usize;
    let mut refused_by_3 = false;
    let mut first_refusal: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged < 24 {
        assert!(
            Instant::now() < deadline,
            "{acknowledged} acknowledged in 60 s"
        );
        let leader = leader_of(&mut cluster, 1, "spill", 0);
        let started = Instant::now();
        let (error, offset) = cluster.node(leader).produce("spill", 0, -1, &value);
        match error {
            0 => {
                assert_eq!(offset, i64::try_from(acknowledged).unwrap());
                acknowledged += 1;
                if let Some(refused) = first_refusal.take() {
                    eprintln!(
                        "writes resumed on node {leader} {:?} after node 3's first refusal",
                        refused.elapsed()
                    );
                }
            }
            56 => {
                first_refusal.get_or_insert_with(Instant::now);
                assert_eq!(leader, 3, "only node 3 is short of space");
                assert!(
                    started.elapsed() < Duration::from_secs(2),
                    "refused at once"
                );
                refused_by_3 = true;
            }
            // The leadership moved under the request, or the ISR is being shrunk: retry as a client does.
            6 | 19 | 20 => std::thread::sleep(Duration::from_millis(100)),
            other => panic!("produce to node {leader} failed with {other}"),
        }
    }
    assert!(refused_by_3, "node 3 never ran out of space");
    let partition = &cluster.node(1).metadata("spill").topics[0].partitions[0];
    assert_ne!(partition.leader_id.0, 3);
    assert!(
        !partition.isr_nodes.iter().any(|id| id.0 == 3),
        "node 3 left the ISR: {:?}",
        partition.isr_nodes
    );
    assert!(broker_ids(&cluster.node(1).metadata("spill")).contains(&3));
    assert!(cluster
        .node(3)
        .log_text()
        .contains("data directory is out of space"));

    cluster._disks[0].free("ballast").unwrap();
    cluster.wait_until("node 3 rejoins the ISR", Duration::from_secs(30), |c| {
        c.node(1).metadata("spill").topics[0].partitions[0]
            .isr_nodes
            .len()
            == 3
    });
    // The preferred leader (node 3) takes the partition back about now: read from whoever leads, once its
    // high watermark covers what the previous leader acknowledged.
    let mut read = Vec::new();
    cluster.wait_until(
        "every acknowledged record readable from the leader",
        Duration::from_secs(10),
        |c| {
            let leader = leader_of(c, 1, "spill", 0);
            read = c.node(leader).read_all("spill", 0).unwrap_or_default();
            read.len() >= acknowledged
        },
    );
    assert_eq!(read.len(), acknowledged);
    assert!(read.iter().all(|v| *v == value));
}

/// Without a metadata quorum `__consumer_offsets` cannot be created: FindCoordinator says
/// COORDINATOR_NOT_AVAILABLE within a couple of seconds (the client retries) rather than holding the
/// connection for the controller's whole timeout.
#[test]
fn find_coordinator_without_a_quorum_answers_promptly() {
    let mut cluster = start_cluster(3, 3);
    cluster.node(2).kill();
    cluster.node(3).kill();
    for attempt in 0..2 {
        let started = Instant::now();
        let (error, _) = coordinator_of(cluster.node(1), "lonely");
        assert_eq!(error, 15, "COORDINATOR_NOT_AVAILABLE (attempt {attempt})");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "attempt {attempt} took {:?}",
            started.elapsed()
        );
    }
}

/// A broker with no producer id block and no reachable controller answers InitProducerId with a retriable
/// error within a couple of seconds; Kafka's clients treat the UNKNOWN_SERVER_ERROR that used to come after
/// the controller's 15 s timeout as fatal.
#[test]
fn init_producer_id_without_a_quorum_answers_a_retriable_error_promptly() {
    let mut cluster = start_cluster(3, 3);
    cluster.node(2).kill();
    cluster.node(3).kill();
    let started = Instant::now();
    let response = cluster.node(1).call(
        kafka_protocol::messages::InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id((-1).into())
            .with_producer_epoch(-1),
        4,
    );
    assert_eq!(response.error_code, 14, "COORDINATOR_LOAD_IN_PROGRESS");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
}

/// The same cluster found through `controller.quorum.bootstrap.servers` and `format --initial-controllers`
/// (Kafka 3.9+'s way, KIP-853) instead of static voters: one quorum, a broker-only node following it, and a
/// killed leader's partition moving on.
#[test]
fn a_cluster_formed_through_bootstrap_servers_and_initial_controllers() {
    let mut cluster = start_cluster_configured(
        4,
        3,
        QuorumSetup::Bootstrap,
        |_| String::new(),
        |_| Vec::new(),
    );
    for node in 1..=4 {
        assert_eq!(
            broker_ids(&cluster.node(node).metadata("none")),
            BTreeSet::from([1, 2, 3, 4]),
            "node {node} sees every broker"
        );
    }
    assert_eq!(create_topic(cluster.node(4), "booted", 1, 3), 0);
    cluster.wait_until("booted has a leader", Duration::from_secs(10), |c| {
        c.node(1).metadata("booted").topics[0].error_code == 0 && leader_of(c, 1, "booted", 0) > 0
    });
    let leader = leader_of(&mut cluster, 1, "booted", 0);
    assert_eq!(cluster.node(leader).produce("booted", 0, -1, "kept").0, 0);
    cluster.node(leader).kill();
    let survivor = if leader == 1 { 2 } else { 1 };
    cluster.wait_until("a new leader", Duration::from_secs(20), |c| {
        let now = leader_of(c, survivor, "booted", 0);
        now > 0 && now != leader
    });
    let now = leader_of(&mut cluster, survivor, "booted", 0);
    cluster.wait_until("the record is readable", Duration::from_secs(10), |c| {
        c.node(now).read_all("booted", 0) == Ok(vec!["kept".to_owned()])
    });
}

fn isr_of(node: &Node, topic: &str) -> Vec<i32> {
    let metadata = node.metadata(topic);
    metadata.topics[0]
        .partitions
        .first()
        .map(|p| p.isr_nodes.iter().map(|b| b.0).collect())
        .unwrap_or_default()
}

#[test]
fn a_restarted_follower_rejoins_the_isr_soon_while_writes_continue() {
    // A long lag time: the leader's periodic ISR check runs every 30 s, so a rejoin well within that
    // must come from the follower's own fetches, as in Kafka.
    let mut cluster = start_cluster_with(
        3,
        3,
        |_| "replica.lag.time.max.ms=60000\n".to_owned(),
        |_| Vec::new(),
    );
    assert_eq!(create_topic(cluster.node(1), "stream", 1, 3), 0);
    cluster.wait_until("a leader with a full ISR", Duration::from_secs(10), |c| {
        c.running().all(|n| {
            let metadata = n.metadata("stream");
            metadata.topics[0].error_code == 0
                && metadata.topics[0].partitions[0].isr_nodes.len() == 3
        })
    });
    let leader = leader_of(&mut cluster, 1, "stream", 0);
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let leader_port = cluster.node(leader).kafka_port;

    // One writer at ~50 records/s for the whole test (bounded in count and time), acks=1 so that it
    // keeps writing whatever the ISR is; it records when each acknowledgement came.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut acknowledged = Vec::new();
            for i in 0..3_000 {
                if stop.load(std::sync::atomic::Ordering::Relaxed)
                    || started.elapsed() > Duration::from_secs(90)
                {
                    break;
                }
                if produce_at(leader_port, "stream", 0, 1, &format!("w{i}")).0 == 0 {
                    acknowledged.push(Instant::now());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            acknowledged
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let killed = Instant::now();
    cluster.node(follower).kill();
    cluster.wait_until(
        "the killed follower is out of the ISR",
        Duration::from_secs(20),
        |c| !isr_of(c.node(leader), "stream").contains(&follower),
    );
    std::thread::sleep(Duration::from_secs(1));
    // From the restart, not from ready: registration, unfencing and catching up all count.
    let restarted = Instant::now();
    cluster.node(follower).start();
    cluster.wait_until(
        "the restarted follower back in the ISR",
        Duration::from_secs(40),
        |c| isr_of(c.node(leader), "stream").len() == 3,
    );
    let rejoined = restarted.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acknowledged = writer.join().unwrap();
    let missed = acknowledged
        .iter()
        .filter(|at| **at >= killed && at.duration_since(restarted) <= rejoined)
        .count();
    eprintln!(
        "rejoined the ISR {rejoined:?} after the restart; {missed} writes acknowledged between the kill and the rejoin"
    );
    assert!(
        rejoined < Duration::from_secs(10),
        "the restarted follower took {rejoined:?} to rejoin the ISR"
    );
    assert!(
        missed >= 10,
        "only {missed} writes while the follower was away: nothing to catch up"
    );
}

#[test]
fn a_restarted_leader_serves_what_was_committed_before_its_followers_fetch() {
    // Voters 1-3, brokers 4 and 5; the topic lives on 1, 4 and 5, so 1 can be restarted alone as leader
    // while its followers stay down and the metadata quorum stays up.
    let mut cluster = start_cluster_with(
        5,
        3,
        |_| "replica.high.watermark.checkpoint.interval.ms=100\n".to_owned(),
        |_| Vec::new(),
    );
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("kept")))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(vec![
                kafka_protocol::messages::create_topics_request::CreatableReplicaAssignment::default()
                    .with_partition_index(0)
                    .with_broker_ids(vec![1.into(), 4.into(), 5.into()]),
            ])])
        .with_timeout_ms(30_000);
    assert_eq!(cluster.node(2).call(request, 5).topics[0].error_code, 0);
    cluster.wait_until("1 leads with a full ISR", Duration::from_secs(10), |c| {
        [1, 2].into_iter().all(|n| {
            c.node(n).metadata("kept").topics[0].error_code == 0
                && leader_of(c, n, "kept", 0) == 1
                && isr_of(c.node(n), "kept").len() == 3
        })
    });
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let value = format!("k{i}");
        assert_eq!(cluster.node(1).produce("kept", 0, -1, &value).0, 0);
        acknowledged.push(value);
    }
    let checkpoint = cluster.node(1).dir.join("replication-offset-checkpoint");
    cluster.wait_until(
        "the leader checkpoints high watermark 20",
        Duration::from_secs(10),
        |_| {
            std::fs::read_to_string(&checkpoint)
                .is_ok_and(|text| text.lines().any(|l| l == "kept 0 20"))
        },
    );
    // Followers first, so the ISR shrinks to 1 and 1 stays the one replica that may lead.
    cluster.node(4).kill();
    cluster.node(5).kill();
    cluster.wait_until(
        "the ISR shrinks to the leader",
        Duration::from_secs(30),
        |c| isr_of(c.node(2), "kept") == [1],
    );
    cluster.node(1).kill();
    cluster.wait_until("1 is fenced", Duration::from_secs(20), |c| {
        !broker_ids(&c.node(2).metadata("kept")).contains(&1)
    });
    cluster.node(1).start();
    cluster.wait_until("1 leads again", Duration::from_secs(30), |c| {
        c.node(1).ready() && leader_of(c, 2, "kept", 0) == 1 && leader_of(c, 1, "kept", 0) == 1
    });
    // 4 and 5 are down: nothing but the checkpoint says that the 20 records were committed.
    cluster.wait_until(
        "the restarted leader serves the acknowledged records",
        Duration::from_secs(10),
        |c| c.node(1).read_all("kept", 0) == Ok(acknowledged.clone()),
    );
}

/// A restarted node replays its own metadata log, which may be stale: it must not take writes as the
/// leader that log names until it is back in service (registered, caught up, unfenced). Here it never
/// is, since it restarts alone and finds no quorum; with acks=1 the write would otherwise be acknowledged
/// on a replica the rest of the cluster may already have replaced.
#[test]
fn a_restarted_node_leads_nothing_before_it_is_back_in_service() {
    let mut cluster = start_cluster(3, 3);
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("stale")))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(vec![
                kafka_protocol::messages::create_topics_request::CreatableReplicaAssignment::default()
                    .with_partition_index(0)
                    .with_broker_ids(vec![1.into(), 2.into(), 3.into()]),
            ])])
        .with_timeout_ms(30_000);
    assert_eq!(cluster.node(2).call(request, 5).topics[0].error_code, 0);
    cluster.wait_until("node 1 leads stale", Duration::from_secs(10), |c| {
        c.node(1).metadata("stale").topics[0].error_code == 0 && leader_of(c, 1, "stale", 0) == 1
    });
    assert_eq!(cluster.node(1).produce("stale", 0, 1, "before").0, 0);
    for node in 1..=3 {
        cluster.node(node).kill();
    }
    cluster.node(1).start();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut answers = BTreeSet::new();
    while Instant::now() < deadline {
        let node = cluster.node(1);
        node.assert_alive();
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", node.kafka_port)) {
            drop(stream);
            answers.insert(node.produce("stale", 0, 1, "while out of service").0);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!answers.is_empty(), "node 1 never listened");
    assert_eq!(answers, BTreeSet::from([6]), "NOT_LEADER_OR_FOLLOWER only");
}

/// Two of three combined nodes down: no controller quorum, so the ISR cannot shrink, yet acks=all is
/// refused with NOT_ENOUGH_REPLICAS once the followers are past `replica.lag.time.max.ms` (instead of
/// every write timing out), and consumers see nothing above the high watermark.
#[test]
fn acks_all_is_refused_without_a_quorum_once_the_followers_lag() {
    let mut cluster = start_cluster_with(
        3,
        3,
        |_| "replica.lag.time.max.ms=1500\n".to_owned(),
        |_| Vec::new(),
    );
    assert_eq!(create_topic(cluster.node(1), "alone", 1, 3), 0);
    cluster.wait_until("alone has a full ISR", Duration::from_secs(10), |c| {
        let metadata = c.node(1).metadata("alone");
        metadata.topics[0].error_code == 0 && metadata.topics[0].partitions[0].isr_nodes.len() == 3
    });
    let leader = leader_of(&mut cluster, 1, "alone", 0);
    assert_eq!(cluster.node(leader).produce("alone", 0, -1, "kept").0, 0);
    for node in (1..=3).filter(|n| *n != leader) {
        cluster.node(node).kill();
    }
    cluster.wait_until(
        "acks=all refused with NOT_ENOUGH_REPLICAS",
        Duration::from_secs(15),
        |c| {
            let started = Instant::now();
            let (error, _) = c.node(leader).produce("alone", 0, -1, "refused");
            assert!(
                error == 19 || error == 7,
                "NOT_ENOUGH_REPLICAS or REQUEST_TIMED_OUT, got {error}"
            );
            error == 19 && started.elapsed() < Duration::from_secs(2)
        },
    );
    assert_eq!(
        cluster.node(leader).read_all("alone", 0),
        Ok(vec!["kept".to_owned()])
    );
}
