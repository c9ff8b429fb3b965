//! DescribeQuorum (what `kafka-metadata-quorum.sh describe` sends), asked of any broker: the active
//! controller's view of the metadata quorum, its voters and observers and how far each has replicated, and a
//! new leader with a higher epoch once the old one is killed.

use kafka_protocol::messages::{DescribeQuorumRequest, DescribeQuorumResponse};

use super::fixture::*;

fn describe(node: &Node, version: i16) -> DescribeQuorumResponse {
    call_over_tcp(
        node.kafka_port,
        &DescribeQuorumRequest::default(),
        version,
        Duration::from_secs(20),
    )
    .unwrap_or_else(|e| panic!("DescribeQuorum v{version}: {e:?}\n{}", node.log_text()))
}

fn ids(states: &[kafka_protocol::messages::describe_quorum_response::ReplicaState]) -> Vec<i32> {
    let mut ids: Vec<i32> = states.iter().map(|s| s.replica_id.0).collect();
    ids.sort_unstable();
    ids
}

#[test]
fn any_broker_describes_the_metadata_quorum_and_its_next_leader() {
    let mut cluster = start_cluster(4, 3);
    assert_eq!(create_topic(cluster.node(1), "t", 3, 3), 0);
    // Every voter and the observer caught up with the high watermark, as the leader tracks them.
    cluster.wait_until("every member caught up", Duration::from_secs(15), |c| {
        let response = describe(c.node(4), 2);
        let partition = &response.topics[0].partitions[0];
        response.error_code == 0
            && partition
                .current_voters
                .iter()
                .chain(&partition.observers)
                .all(|s| {
                    s.log_end_offset >= partition.high_watermark && s.last_caught_up_timestamp > 0
                })
    });
    let response = describe(cluster.node(4), 2);
    assert_eq!(
        response.topics[0].topic_name.0.as_str(),
        "__cluster_metadata"
    );
    let partition = &response.topics[0].partitions[0];
    let leader = partition.leader_id.0;
    let described = cluster.node(2).call(DescribeClusterRequest::default(), 0);
    assert_eq!(
        leader, described.controller_id.0,
        "the quorum leader is the active controller"
    );
    assert_eq!(ids(&partition.current_voters), [1, 2, 3]);
    assert_eq!(
        ids(&partition.observers),
        [4],
        "broker 4 follows without voting"
    );
    assert!(partition.high_watermark > 0);
    let mut endpoints: Vec<i32> = response.nodes.iter().map(|n| n.node_id.0).collect();
    endpoints.sort_unstable();
    assert_eq!(
        endpoints,
        [1, 2, 3, 4],
        "v2 lists the members' controller endpoints, the observer's too (what AddRaftVoter must name)"
    );
    assert!(response.nodes.iter().all(|n| n
        .listeners
        .iter()
        .any(|l| l.name.as_str() == "CONTROLLER" && l.port > 0)));
    for version in [0, 1] {
        let older = describe(cluster.node(3), version);
        assert_eq!(
            older.topics[0].partitions[0].leader_id.0, leader,
            "v{version} agrees"
        );
        assert!(older.nodes.is_empty());
    }

    // A quorum formed with static controller.quorum.voters keeps its voters, as Kafka's at kraft.version 0.
    let directory = cluster.node(1).directory_id();
    let (code, message) = remove_voter(cluster.node(2), 1, &directory);
    assert_eq!(code, 35, "UNSUPPORTED_VERSION: {message}");
    assert!(
        message.contains("static controller.quorum.voters"),
        "{message}"
    );
    let port = cluster.node(3).controller_port().unwrap();
    let directory_3 = cluster.node(3).directory_id();
    let (code, _) = add_voter(cluster.node(2), 3, &directory_3, port);
    assert_eq!(code, 35);
    assert_eq!(members(cluster.node(1)).0, [1, 2, 3]);

    let epoch = partition.leader_epoch;
    cluster.node(leader).kill();
    let survivor = if leader == 1 { 2 } else { 1 };
    cluster.wait_until("a new quorum leader", Duration::from_secs(20), |c| {
        let response = describe(c.node(survivor), 2);
        response.error_code == 0 && {
            let p = &response.topics[0].partitions[0];
            p.leader_id.0 != leader && p.leader_epoch > epoch
        }
    });
}

/// AddRaftVoter v0 of node `id` (its controller listener on `port`, `directory` its directory id) through
/// `node`: the error code and message.
fn add_voter(node: &Node, id: i32, directory: &str, port: u16) -> (i16, String) {
    use kafka_protocol::messages::{add_raft_voter_request::Listener, AddRaftVoterRequest};
    let request = AddRaftVoterRequest::default()
        .with_cluster_id(Some(StrBytes::from_static_str(CLUSTER_ID)))
        .with_timeout_ms(10_000)
        .with_voter_id(id)
        .with_voter_directory_id(uuid(directory))
        .with_listeners(vec![Listener::default()
            .with_name(StrBytes::from_static_str("CONTROLLER"))
            .with_host(StrBytes::from_static_str("127.0.0.1"))
            .with_port(port)]);
    let response = call_over_tcp(node.kafka_port, &request, 0, Duration::from_secs(30)).unwrap();
    (
        response.error_code,
        response
            .error_message
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

/// RemoveRaftVoter v0 of voter `id` through `node`: the error code and message.
fn remove_voter(node: &Node, id: i32, directory: &str) -> (i16, String) {
    let request = kafka_protocol::messages::RemoveRaftVoterRequest::default()
        .with_cluster_id(Some(StrBytes::from_static_str(CLUSTER_ID)))
        .with_voter_id(id)
        .with_voter_directory_id(uuid(directory));
    let response = call_over_tcp(node.kafka_port, &request, 0, Duration::from_secs(30)).unwrap();
    (
        response.error_code,
        response
            .error_message
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

/// Kafka's text form of a directory id (base64url, 22 characters) as the wire's Uuid; "" is the nil one.
fn uuid(text: &str) -> uuid::Uuid {
    if text.is_empty() {
        return uuid::Uuid::nil();
    }
    tributary_broker::cluster_identity::parse_uuid_text(text).unwrap()
}

/// (voters, observers) as `node` describes the quorum, each sorted.
fn members(node: &Node) -> (Vec<i32>, Vec<i32>) {
    let response = describe(node, 2);
    assert_eq!(response.error_code, 0, "{:?}", response.error_message);
    let partition = &response.topics[0].partitions[0];
    (ids(&partition.current_voters), ids(&partition.observers))
}

fn quorum_leader(node: &Node) -> i32 {
    describe(node, 2).topics[0].partitions[0].leader_id.0
}

/// KIP-853 on a quorum formed through `controller.quorum.bootstrap.servers`: a fourth controller that was
/// formatted with `--no-initial-controllers` follows the log as an observer, becomes a voter, and the leader
/// removes itself (handing leadership over first); a removal that would leave no working majority is refused;
/// a restarted removed voter comes back as an observer; and the quorum keeps committing throughout.
#[test]
fn voters_are_added_and_removed_at_run_time() {
    let mut cluster = start_cluster_as(4, 3, QuorumSetup::BootstrapWithSpareControllers(4));
    cluster.wait_until(
        "node 4 follows as an observer",
        Duration::from_secs(15),
        |c| members(c.node(1)) == (vec![1, 2, 3], vec![4]),
    );
    let directory_4 = cluster.node(4).directory_id();
    let port_4 = cluster.node(4).controller_port().unwrap();

    let (code, message) = add_voter(cluster.node(2), 4, &directory_4, 1);
    assert_eq!(
        code, 42,
        "a listener the node does not follow on: INVALID_REQUEST ({message})"
    );
    let other_directory = cluster.node(3).directory_id();
    let (code, message) = add_voter(cluster.node(2), 4, &other_directory, port_4);
    assert_eq!(
        code, 42,
        "another directory id: INVALID_REQUEST ({message})"
    );
    let started = Instant::now();
    let (code, message) = add_voter(cluster.node(2), 4, &directory_4, port_4);
    assert_eq!(code, 0, "AddRaftVoter: {message}");
    eprintln!("voter 4 added in {:?}", started.elapsed());
    assert_eq!(members(cluster.node(4)), (vec![1, 2, 3, 4], vec![]));
    let (code, message) = add_voter(cluster.node(3), 4, &directory_4, port_4);
    assert_eq!(code, 126, "DUPLICATE_VOTER: {message}");
    assert_eq!(create_topic(cluster.node(4), "after-add", 1, 3), 0);

    // The leader removes itself: it hands leadership to a following voter, which removes it.
    let leader = quorum_leader(cluster.node(1));
    let leader_directory = cluster.node(leader).directory_id();
    let started = Instant::now();
    let (code, message) = remove_voter(cluster.node(4), leader, &leader_directory);
    assert_eq!(code, 0, "RemoveRaftVoter of the leader: {message}");
    eprintln!("leader {leader} removed in {:?}", started.elapsed());
    let remaining: Vec<i32> = (1..=4).filter(|id| *id != leader).collect();
    assert_eq!(members(cluster.node(4)), (remaining.clone(), vec![leader]));
    assert_ne!(quorum_leader(cluster.node(4)), leader);
    let (code, message) = remove_voter(cluster.node(4), leader, &leader_directory);
    assert_eq!(code, 127, "VOTER_NOT_FOUND: {message}");
    assert_eq!(
        create_topic(cluster.node(leader), "after-remove", 1, 3),
        0,
        "the removed voter still serves as a broker"
    );

    // With one of the three voters down, removing another would leave one of two following: refused.
    let down = remaining[0];
    let (alive, other) = (remaining[1], remaining[2]);
    cluster.node(down).kill();
    let (code, message) = remove_voter(cluster.node(alive), other, "");
    assert_eq!(code, 42, "an unsafe removal: INVALID_REQUEST ({message})");
    assert!(message.contains("could not commit"), "{message}");
    assert_eq!(create_topic(cluster.node(alive), "one-voter-down", 1, 2), 0);

    // The removed voter restarts with the initial voter set it was formatted with: the log's set wins.
    cluster.node(leader).kill();
    cluster.node(leader).start();
    cluster.node(down).start();
    cluster.wait_until(
        "both restarted nodes are back",
        Duration::from_secs(30),
        |c| c.node(leader).ready() && c.node(down).ready(),
    );
    cluster.wait_until(
        "the quorum as the log records it",
        Duration::from_secs(15),
        |c| members(c.node(leader)) == (remaining.clone(), vec![leader]),
    );
    assert_eq!(create_topic(cluster.node(down), "after-restart", 1, 3), 0);

    // A voter whose disk is wiped and formatted anew must not vote with an empty log in its old place: it
    // refuses to start until the old voter (its old directory id) is removed, then joins and is added again.
    let current = quorum_leader(cluster.node(leader));
    let wiped = *remaining.iter().find(|id| **id != current).unwrap();
    let old_directory = cluster.node(wiped).directory_id();
    let node = cluster.node(wiped);
    node.kill();
    std::fs::remove_dir_all(&node.dir).unwrap();
    format_node(&node.properties, &["--no-initial-controllers"]);
    node.start();
    node.wait_for_exit(Duration::from_secs(20));
    let log = node.log_text();
    assert!(
        log.contains(&format!(
            "counts node {wiped} with directory id {old_directory} as a voter"
        )),
        "{log}"
    );
    // The last line is what Kubernetes keeps as the termination message; tributary-operator reads the ids there.
    let formatted = cluster.node(wiped).directory_id();
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("Error: ")
            && last.ends_with(&format!(
                "[replaced-voter id={wiped} old-directory-id={old_directory} directory-id={formatted}]"
            )),
        "{last}"
    );
    let (code, message) = remove_voter(cluster.node(current), wiped, &old_directory);
    assert_eq!(code, 0, "removing the wiped voter: {message}");
    cluster.node(wiped).start();
    let new_directory = cluster.node(wiped).directory_id();
    let port = cluster.node(wiped).controller_port().unwrap();
    cluster.wait_until(
        "the reformatted node follows as an observer",
        Duration::from_secs(30),
        |c| c.node(wiped).ready() && members(c.node(current)).1.contains(&wiped),
    );
    let (code, message) = add_voter(cluster.node(current), wiped, &old_directory, port);
    assert_eq!(
        code, 42,
        "the old directory id: INVALID_REQUEST ({message})"
    );
    let (code, message) = add_voter(cluster.node(current), wiped, &new_directory, port);
    assert_eq!(code, 0, "adding the reformatted node: {message}");
    assert_eq!(members(cluster.node(current)).0, remaining);
}

#[test]
fn a_single_node_says_it_has_no_quorum() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let response = runtime.block_on(async {
        let broker = tributary_broker::testing::TestBroker::start().await;
        broker.call(DescribeQuorumRequest::default(), 2).await
    });
    assert_eq!(response.error_code, 42, "INVALID_REQUEST");
    assert!(response.topics.is_empty());
}

/// A controller-only node (`process.roles=controller`, formatted with `--no-initial-controllers`) asks to
/// follow a dynamic quorum's log, since it never registers as a broker, and is then added as a voter.
#[test]
fn a_controller_only_node_joins_a_dynamic_quorum_and_is_added() {
    let mut cluster = start_cluster_joined_later(
        4,
        3,
        QuorumSetup::BootstrapWithSpareControllers(4),
        |_| String::new(),
        |_| Vec::new(),
        &[4],
    );
    let node = cluster.node(4);
    let port = node.controller_port().unwrap();
    let properties: String = std::fs::read_to_string(&node.properties)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("advertised.listeners="))
        .map(|l| match l {
            l if l.starts_with("process.roles=") => "process.roles=controller\n".to_owned(),
            l if l.starts_with("listeners=") => {
                format!("listeners=CONTROLLER://127.0.0.1:{port}\n")
            }
            l => format!("{l}\n"),
        })
        .collect();
    std::fs::write(&node.properties, properties).unwrap();
    node.start();
    cluster.wait_until(
        "the controller-only node follows as an observer",
        Duration::from_secs(20),
        |c| c.node(4).ready() && members(c.node(1)) == (vec![1, 2, 3], vec![4]),
    );
    let directory = cluster.node(4).directory_id();
    let (code, message) = add_voter(cluster.node(2), 4, &directory, port);
    assert_eq!(code, 0, "AddRaftVoter: {message}");
    assert_eq!(members(cluster.node(3)), (vec![1, 2, 3, 4], vec![]));
    assert_eq!(
        broker_ids(&cluster.node(1).metadata("none")),
        BTreeSet::from([1, 2, 3]),
        "the controller-only voter is no broker"
    );
}
