//! The fixture: formatted `tributary-broker` processes on loopback, Kafka requests over TCP, and the
//! bounded waits every test uses. Re-exports what the tests need, so each module takes `use super::fixture::*`.

pub(crate) use std::{
    collections::{BTreeMap, BTreeSet},
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub(crate) use bytes::Bytes;
pub(crate) use kafka_protocol::{
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
pub(crate) use tributary_broker::{
    log::builder::BatchBuilder,
    testing::{call_over_tcp, small_disk::SmallDisk},
};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_tributary-broker");

pub(crate) const CLUSTER_ID: &str = "4L6g3nShT-eMCtK--X86sw";

/// Short enough that a killed broker is fenced within the test's patience, long enough to survive a busy
/// two-core machine (heartbeats every 250 ms).
pub(crate) const SESSION_TIMEOUT_MS: u64 = 3000;

/// A port that is free now, below the kernel's ephemeral range (32768-60999 on these machines). The voter
/// list must name every controller port before any node starts, so these cannot be port 0; and a port from
/// the ephemeral range can be taken by some client connection while its node is down, so that the node
/// fails to restart on it (seen as "node exited" flakes). A collision fails loudly (bind error in the
/// log), never silently.
pub(crate) fn free_port() -> u16 {
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

pub(crate) struct Node {
    pub(crate) id: i32,
    pub(crate) dir: PathBuf,
    pub(crate) properties: PathBuf,
    pub(crate) kafka_port: u16,
    pub(crate) child: Option<Child>,
    pub(crate) http_port: u16,
    pub(crate) run: usize,
}

/// Fields drop in order: the brokers stop before their small disks are unmounted and the root removed.
pub(crate) struct Cluster {
    pub(crate) nodes: Vec<Node>,
    pub(crate) _disks: Vec<SmallDisk>,
    pub(crate) _root: tempfile::TempDir,
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
    pub(crate) fn log_path(&self) -> PathBuf {
        self.dir
            .with_file_name(format!("broker-{}-{}.log", self.id, self.run))
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub(crate) fn start(&mut self) {
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

    pub(crate) fn assert_alive(&mut self) {
        if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
            panic!(
                "node {} exited with {status}; log:\n{}",
                self.id,
                self.log_text()
            );
        }
    }

    pub(crate) fn ready(&self) -> bool {
        http_status(self.http_port, "/readyz") == Some(200)
    }

    /// Waits (at most `limit`) for the node to exit on its own, as a node refused at start does.
    pub(crate) fn wait_for_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "node {} kept running; log:\n{}",
                self.id,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub(crate) fn call<R: Request>(&self, request: R, version: i16) -> R::Response {
        call_over_tcp(self.kafka_port, &request, version, Duration::from_secs(20)).unwrap()
    }

    /// Produces one record to `topic`-`partition`: `(error code, base offset)`.
    pub(crate) fn produce(
        &self,
        topic: &str,
        partition: i32,
        acks: i16,
        value: &str,
    ) -> (i16, i64) {
        produce_at(self.kafka_port, topic, partition, acks, value)
    }

    /// Every record value of `topic`-`partition` a consumer can read (up to the high watermark), from 0.
    pub(crate) fn read_all(&self, topic: &str, partition: i32) -> Result<Vec<String>, i16> {
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

    /// The port of the node's controller listener, from its properties.
    pub(crate) fn controller_port(&self) -> Option<u16> {
        let properties = std::fs::read_to_string(&self.properties).unwrap();
        let listeners = properties
            .lines()
            .find_map(|l| l.strip_prefix("listeners="))?;
        listeners
            .split(',')
            .find_map(|l| l.strip_prefix("CONTROLLER://"))?
            .rsplit_once(':')?
            .1
            .parse()
            .ok()
    }

    /// The `directory.id` that `format` wrote into the node's `meta.properties`.
    pub(crate) fn directory_id(&self) -> String {
        let meta = std::fs::read_to_string(self.dir.join("meta.properties")).unwrap();
        meta.lines()
            .find_map(|l| l.strip_prefix("directory.id="))
            .unwrap()
            .to_owned()
    }

    pub(crate) fn metadata(&self, topic: &str) -> MetadataResponse {
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
pub(crate) fn produce_at(
    port: u16,
    topic: &str,
    partition: i32,
    acks: i16,
    value: &str,
) -> (i16, i64) {
    try_produce_at(port, topic, partition, acks, value).unwrap()
}

/// [`produce_at`], `None` when the broker cannot be reached or answers nothing decodable.
pub(crate) fn try_produce_at(
    port: u16,
    topic: &str,
    partition: i32,
    acks: i16,
    value: &str,
) -> Option<(i16, i64)> {
    let batch = BatchBuilder::new()
        .record(None, Some(Bytes::from(value.to_owned())))
        .build()
        .ok()?;
    let request = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch))])]);
    let response = call_over_tcp(port, &request, 9, Duration::from_secs(20)).ok()?;
    let answer = response.responses.first()?.partition_responses.first()?;
    Some((answer.error_code, answer.base_offset))
}

pub(crate) fn bound_port(path: &Path, key: &str) -> Option<u16> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))?;
    line.rsplit_once(':')?.1.parse().ok()
}

/// The body of `GET path` on `port` (HTTP/1.0, so the server closes when done).
pub(crate) fn http_body(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

pub(crate) fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

/// Formats and starts `size` nodes with ids 1..=size, the first `voters` of them combined-mode voters and
/// the rest brokers only, then waits until every one is ready.
pub(crate) fn start_cluster(size: i32, voters: i32) -> Cluster {
    start_cluster_with(size, voters, |_| String::new(), |_| Vec::new())
}

/// [`start_cluster`] with `extra(node id)` appended to each node's `server.properties`, and some nodes'
/// data directories on small disks of their own: `disks` mounts them under the root it is given, as
/// (node id, disk).
pub(crate) fn start_cluster_with(
    size: i32,
    voters: i32,
    extra: impl Fn(i32) -> String,
    disks: impl FnOnce(&Path) -> Vec<(i32, SmallDisk)>,
) -> Cluster {
    start_cluster_configured(size, voters, QuorumSetup::StaticVoters, extra, disks)
}

/// How the nodes find the metadata quorum, as Kafka offers it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum QuorumSetup {
    /// `controller.quorum.voters` in every node's properties.
    StaticVoters,
    /// `controller.quorum.bootstrap.servers`, with the voters recorded once by `format
    /// --initial-controllers` (KIP-853's way).
    Bootstrap,
    /// [`QuorumSetup::Bootstrap`], and the nodes after the voters up to this id have the controller role too
    /// but are formatted with `--no-initial-controllers`: they follow the quorum as observers until
    /// AddRaftVoter makes them voters.
    BootstrapWithSpareControllers(i32),
    /// [`QuorumSetup::StaticVoters`] with the voters `process.roles=controller` only: the brokers are the
    /// other nodes.
    SeparateControllers,
}

impl QuorumSetup {
    fn is_dynamic(self) -> bool {
        matches!(
            self,
            Self::Bootstrap | Self::BootstrapWithSpareControllers(_)
        )
    }

    /// Whether node `id` has the broker role.
    fn is_broker(self, id: i32, voters: i32) -> bool {
        self != Self::SeparateControllers || id > voters
    }

    /// Whether node `id` has the controller role.
    fn is_controller(self, id: i32, voters: i32) -> bool {
        match self {
            Self::BootstrapWithSpareControllers(last) => id <= voters.max(last),
            _ => id <= voters,
        }
    }
}

/// `tributary-broker format -t CLUSTER_ID -c properties` with the voter flags `voters`.
pub(crate) fn format_node(properties: &Path, voters: &[&str]) {
    let formatted = Command::new(BIN)
        .args(["format", "-t", CLUSTER_ID, "-c"])
        .arg(properties)
        .args(voters)
        .output()
        .unwrap();
    assert!(
        formatted.status.success(),
        "format failed: {}",
        String::from_utf8_lossy(&formatted.stderr)
    );
}

/// [`start_cluster`] with the quorum set up as `quorum` says.
pub(crate) fn start_cluster_as(size: i32, voters: i32, quorum: QuorumSetup) -> Cluster {
    start_cluster_configured(size, voters, quorum, |_| String::new(), |_| Vec::new())
}

pub(crate) fn start_cluster_configured(
    size: i32,
    voters: i32,
    quorum: QuorumSetup,
    extra: impl Fn(i32) -> String,
    disks: impl FnOnce(&Path) -> Vec<(i32, SmallDisk)>,
) -> Cluster {
    start_cluster_joined_later(size, voters, quorum, extra, disks, &[])
}

/// [`start_cluster_configured`] with the nodes `later` formatted but not started: each joins the running
/// cluster for the first time when the test calls its [`Node::start`], as a scaled-up broker does.
pub(crate) fn start_cluster_joined_later(
    size: i32,
    voters: i32,
    quorum: QuorumSetup,
    extra: impl Fn(i32) -> String,
    disks: impl FnOnce(&Path) -> Vec<(i32, SmallDisk)>,
    later: &[i32],
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
        QuorumSetup::StaticVoters | QuorumSetup::SeparateControllers => {
            format!("controller.quorum.voters={voter_list}")
        }
        QuorumSetup::Bootstrap | QuorumSetup::BootstrapWithSpareControllers(_) => format!(
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
        let (roles, listeners, advertised) = if !quorum.is_broker(id, voters) {
            (
                "controller",
                format!("CONTROLLER://127.0.0.1:{controller}"),
                String::new(),
            )
        } else if quorum.is_controller(id, voters) {
            (
                "broker,controller",
                format!("PLAINTEXT://127.0.0.1:{kafka},CONTROLLER://127.0.0.1:{controller}"),
                format!("advertised.listeners=PLAINTEXT://127.0.0.1:{kafka}"),
            )
        } else {
            (
                "broker",
                format!("PLAINTEXT://127.0.0.1:{kafka}"),
                format!("advertised.listeners=PLAINTEXT://127.0.0.1:{kafka}"),
            )
        };
        std::fs::write(
            &properties,
            format!(
                "process.roles={roles}\n\
                 node.id={id}\n\
                 {quorum_line}\n\
                 listeners={listeners}\n\
                 {advertised}\n\
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
        // Broker-only nodes and spare controllers are formatted without voters, as with kafka-storage.sh.
        format_node(
            &properties,
            &if quorum.is_dynamic() && id <= voters {
                vec!["--initial-controllers", initial_controllers.as_str()]
            } else if quorum.is_dynamic() && quorum.is_controller(id, voters) {
                vec!["--no-initial-controllers"]
            } else {
                Vec::new()
            },
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
    for node in nodes.iter_mut().filter(|n| !later.contains(&n.id)) {
        node.start();
    }
    let mut cluster = Cluster {
        nodes,
        _disks: disks.into_iter().map(|(_, disk)| disk).collect(),
        _root: root,
    };
    cluster.wait_until(
        "every started broker is ready",
        Duration::from_secs(30),
        |c| c.running().all(Node::ready),
    );
    cluster
}

impl Cluster {
    pub(crate) fn node(&mut self, id: i32) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.id == id).unwrap()
    }

    pub(crate) fn running(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.child.is_some())
    }

    pub(crate) fn wait_until(
        &mut self,
        what: &str,
        limit: Duration,
        mut done: impl FnMut(&mut Self) -> bool,
    ) {
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

pub(crate) fn broker_ids(metadata: &MetadataResponse) -> BTreeSet<i32> {
    metadata.brokers.iter().map(|b| b.node_id.0).collect()
}

/// Creates `name` with one partition on `replicas` (the first is the preferred leader) through `node`: the
/// CreateTopics error code.
pub(crate) fn create_topic_on(node: &Node, name: &str, replicas: &[i32]) -> i16 {
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.to_owned())))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(vec![
                kafka_protocol::messages::create_topics_request::CreatableReplicaAssignment::default()
                    .with_partition_index(0)
                    .with_broker_ids(replicas.iter().map(|id| (*id).into()).collect()),
            ])])
        .with_timeout_ms(30_000);
    node.call(request, 5).topics[0].error_code
}

pub(crate) fn create_topic(
    node: &Node,
    name: &str,
    partitions: i32,
    replication_factor: i16,
) -> i16 {
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.to_owned())))
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor)])
        .with_timeout_ms(30_000);
    node.call(request, 5).topics[0].error_code
}

/// The leader of `topic`-`partition` as `node` sees it.
pub(crate) fn leader_of(cluster: &mut Cluster, node: i32, topic: &str, partition: i32) -> i32 {
    let metadata = cluster.node(node).metadata(topic);
    metadata.topics[0].partitions[usize::try_from(partition).unwrap()]
        .leader_id
        .0
}

/// The coordinator of `group` as `node` answers FindCoordinator (-1 while there is none).
pub(crate) fn coordinator_of(node: &Node, group: &str) -> (i16, i32) {
    let request = kafka_protocol::messages::FindCoordinatorRequest::default()
        .with_key(StrBytes::from_string(group.to_owned()))
        .with_key_type(0);
    let response = node.call(request, 3);
    (response.error_code, response.node_id.0)
}

/// `group`'s committed offset and leader epoch of `topic`-0 at `node`: `Err(code)` on a group error.
pub(crate) fn committed_at(node: &Node, group: &str, topic: &str) -> Result<(i64, i32), i16> {
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

pub(crate) fn isr_of(node: &Node, topic: &str) -> Vec<i32> {
    let metadata = node.metadata(topic);
    metadata.topics[0]
        .partitions
        .first()
        .map(|p| p.isr_nodes.iter().map(|b| b.0).collect())
        .unwrap_or_default()
}

pub(crate) fn replicas_of(node: &Node, topic: &str) -> Vec<i32> {
    let metadata = node.metadata(topic);
    metadata.topics[0]
        .partitions
        .first()
        .map(|p| p.replica_nodes.iter().map(|b| b.0).collect())
        .unwrap_or_default()
}

/// AlterPartitionReassignments (v1, replication factor changes allowed) of `topic`-`partition` to
/// `target` through `node`; `None` cancels its move. The (top-level, partition) error codes.
pub(crate) fn reassign(
    node: &Node,
    topic: &str,
    partition: i32,
    target: Option<&[i32]>,
) -> (i16, i16) {
    use kafka_protocol::messages::{
        alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic},
        AlterPartitionReassignmentsRequest,
    };
    let request = AlterPartitionReassignmentsRequest::default().with_topics(vec![
        ReassignableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partitions(vec![ReassignablePartition::default()
                .with_partition_index(partition)
                .with_replicas(
                    target.map(|t| t.iter().map(|id| (*id).into()).collect()),
                )]),
    ]);
    let response = node.call(request, 1);
    let partition = response
        .responses
        .first()
        .and_then(|t| t.partitions.first())
        .map_or(-1, |p| p.error_code);
    (response.error_code, partition)
}

/// One partition move as ListPartitionReassignments reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Moving {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) replicas: Vec<i32>,
    pub(crate) adding: Vec<i32>,
    pub(crate) removing: Vec<i32>,
}

/// Every move in progress, as `node` lists them (ListPartitionReassignments v0, all topics).
pub(crate) fn moves(node: &Node) -> Vec<Moving> {
    let request = kafka_protocol::messages::ListPartitionReassignmentsRequest::default();
    let response = node.call(request, 0);
    assert_eq!(response.error_code, 0, "ListPartitionReassignments failed");
    let ids =
        |brokers: &[kafka_protocol::messages::BrokerId]| brokers.iter().map(|b| b.0).collect();
    response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| Moving {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                replicas: ids(&p.replicas),
                adding: ids(&p.adding_replicas),
                removing: ids(&p.removing_replicas),
            })
        })
        .collect()
}

/// An acks=all writer of `topic`-0 on its own thread that follows the partition's leadership: each record
/// is sent to the leader the brokers name, and retried (with the same value) until acknowledged, so that
/// a move of the leader costs retries but never a record. Bounded by `max_records` and 120 s.
pub(crate) struct Writer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<String>>,
}

impl Writer {
    pub(crate) fn start(cluster: &Cluster, topic: &str, max_records: usize) -> Self {
        let ports: BTreeMap<i32, u16> =
            cluster.nodes.iter().map(|n| (n.id, n.kafka_port)).collect();
        let topic = topic.to_owned();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut acknowledged = Vec::new();
            let mut leader_port = None;
            'records: for i in 0..max_records {
                let value = format!("{topic}-{i}");
                loop {
                    if stopping.load(std::sync::atomic::Ordering::Relaxed)
                        || started.elapsed() > Duration::from_secs(120)
                    {
                        break 'records;
                    }
                    let Some(port) = leader_port.or_else(|| find_leader(&ports, &topic)) else {
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    };
                    match try_produce_at(port, &topic, 0, -1, &value) {
                        Some((0, _)) => {
                            leader_port = Some(port);
                            acknowledged.push(value);
                            break;
                        }
                        _ => {
                            leader_port = None;
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            acknowledged
        });
        Self { stop, thread }
    }

    /// Stops the writer: every value it had acknowledged, in order.
    pub(crate) fn finish(self) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// The Kafka port of the leader of `topic`-0 as the first answering broker names it.
fn find_leader(ports: &BTreeMap<i32, u16>, topic: &str) -> Option<u16> {
    let request = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
            TopicName(StrBytes::from_string(topic.to_owned())),
        ))]))
        .with_allow_auto_topic_creation(false);
    ports.values().find_map(|port| {
        let response: MetadataResponse =
            call_over_tcp(*port, &request, 12, Duration::from_secs(5)).ok()?;
        let leader = response.topics.first()?.partitions.first()?.leader_id.0;
        ports.get(&leader).copied()
    })
}

/// The bytes of `node`'s segment files of `topic`-0, in offset order (None when it has no copy).
pub(crate) fn segment_bytes(node: &Node, topic: &str) -> Option<Vec<u8>> {
    let dir = node.dir.join(format!("{topic}-0"));
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    segments.sort();
    let mut bytes = Vec::new();
    for segment in segments {
        bytes.extend(std::fs::read(segment).ok()?);
    }
    Some(bytes)
}

/// Every value of `acknowledged` appears in `log`, in the same order (a retried record that was written
/// but not acknowledged may appear in between).
pub(crate) fn assert_kept_in_order(acknowledged: &[String], log: &[String], what: &str) {
    let mut rest = log.iter();
    for value in acknowledged {
        assert!(
            rest.any(|v| v == value),
            "{what}: acknowledged {value} is missing or out of order ({} acknowledged, {} in the log)",
            acknowledged.len(),
            log.len()
        );
    }
}

/// IncrementalAlterConfigs of one `key` on resource (`resource_type`, `name`) through `node`: SET `value`,
/// or DELETE when None. The resource's error code and message.
pub(crate) fn alter_config(
    node: &Node,
    resource_type: i8,
    name: &str,
    key: &'static str,
    value: Option<&str>,
) -> (i16, String) {
    use kafka_protocol::messages::{
        incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig},
        IncrementalAlterConfigsRequest,
    };
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_owned()))
            .with_configs(vec![AlterableConfig::default()
                .with_name(StrBytes::from_static_str(key))
                .with_config_operation(if value.is_some() { 0 } else { 1 })
                .with_value(value.map(|v| StrBytes::from_string(v.to_owned())))]),
    ]);
    let response = node.call(request, 1);
    let resource = &response.responses[0];
    (
        resource.error_code,
        resource
            .error_message
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
    )
}
