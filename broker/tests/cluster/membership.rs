//! One cluster from Kafka-style configuration: membership, placement, learners, the voter set, bootstrap servers.

use super::fixture::*;

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
fn a_killed_broker_is_fenced_once_its_connections_closed_not_after_its_whole_session() {
    // A session far longer than the wait below: only the closed connections can get the broker fenced.
    let mut cluster = start_cluster_with(
        3,
        3,
        |_| "broker.session.timeout.ms=120000\n".to_owned(),
        |_| Vec::new(),
    );
    assert_eq!(create_topic(cluster.node(1), "orders", 3, 3), 0);
    let controller = cluster.node(1).metadata("orders").controller_id.0;
    assert!(controller > 0, "an active controller is known");
    let victim = if controller == 3 { 2 } else { 3 };
    let survivor = 6 - controller - victim;
    cluster.wait_until(
        "every broker listed and the topic placed",
        Duration::from_secs(10),
        |c| {
            let metadata = c.node(survivor).metadata("orders");
            broker_ids(&metadata).len() == 3 && metadata.topics[0].error_code == 0
        },
    );
    let killed = Instant::now();
    cluster.node(victim).kill();
    cluster.wait_until(
        "the killed broker is fenced",
        Duration::from_secs(20),
        |c| !broker_ids(&c.node(survivor).metadata("orders")).contains(&victim),
    );
    let fenced_after = killed.elapsed();
    let log = cluster.node(controller).log_text();
    assert!(
        log.contains("broker closed its connections to the controller and has not come back"),
        "fenced for its closed connections:\n{log}"
    );
    assert!(
        !log.contains("broker missed its heartbeats"),
        "not by the session timeout:\n{log}"
    );
    eprintln!("killed broker fenced {fenced_after:?} after kill -9 (session timeout 120 s)");
    // The brokers that stay keep a connection and heartbeat: none of them is fenced.
    std::thread::sleep(Duration::from_secs(2));
    let listed = broker_ids(&cluster.node(survivor).metadata("orders"));
    assert_eq!(listed, BTreeSet::from([controller, survivor]));
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
    let status = node.wait_for_exit(Duration::from_secs(20));
    assert!(!status.success());
    let log = node.log_text();
    assert!(
        log.contains("names voters [1, 2, 3, 9], but this node's metadata log was formed by voters [1, 2, 3]"),
        "log:\n{log}"
    );
}

/// The same cluster found through `controller.quorum.bootstrap.servers` and `format --initial-controllers`
/// (Kafka 3.9+'s way, KIP-853) instead of static voters: one quorum, a broker-only node following it, and a
/// killed leader's partition moving on.
#[test]
fn a_cluster_formed_through_bootstrap_servers_and_initial_controllers() {
    let mut cluster = start_cluster_as(4, 3, QuorumSetup::Bootstrap);
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

/// Kafka's separate controllers: three `process.roles=controller` nodes run the metadata quorum and hold no
/// data, two brokers hold the partitions. Clients see only the brokers (the controller id they are told is a
/// broker, which forwards, as in KIP-590), and losing the active controller changes nothing for them.
#[test]
fn controller_only_nodes_run_the_quorum_and_the_brokers_hold_the_data() {
    use kafka_protocol::messages::DescribeQuorumRequest;
    let mut cluster = start_cluster_as(5, 3, QuorumSetup::SeparateControllers);
    assert_eq!(
        broker_ids(&cluster.node(4).metadata("none")),
        BTreeSet::from([4, 5]),
        "the controllers are no brokers"
    );
    let described = cluster.node(4).call(DescribeClusterRequest::default(), 0);
    assert!(
        [4, 5].contains(&described.controller_id.0),
        "clients are told a broker as controller, not {}",
        described.controller_id.0
    );
    let quorum_leader = |node: &Node| {
        let response = node.call(DescribeQuorumRequest::default(), 1);
        response.topics[0].partitions[0].leader_id.0
    };
    let leader = quorum_leader(cluster.node(5));
    assert!((1..=3).contains(&leader), "quorum leader {leader}");

    assert_eq!(create_topic(cluster.node(5), "split", 1, 2), 0);
    cluster.wait_until("split has a leader", Duration::from_secs(10), |c| {
        c.node(4).metadata("split").topics[0].error_code == 0 && leader_of(c, 4, "split", 0) > 0
    });
    let mut replicas = replicas_of(cluster.node(4), "split");
    replicas.sort_unstable();
    assert_eq!(replicas, [4, 5], "the data is on the brokers only");
    let partition_leader = leader_of(&mut cluster, 4, "split", 0);
    assert_eq!(
        cluster
            .node(partition_leader)
            .produce("split", 0, -1, "before")
            .0,
        0
    );

    cluster.node(leader).kill();
    cluster.wait_until("a new quorum leader", Duration::from_secs(20), |c| {
        let now = quorum_leader(c.node(4));
        now != leader && (1..=3).contains(&now)
    });
    assert_eq!(create_topic(cluster.node(4), "after", 1, 2), 0);
    let partition_leader = leader_of(&mut cluster, 5, "split", 0);
    assert_eq!(
        cluster
            .node(partition_leader)
            .produce("split", 0, -1, "after")
            .0,
        0
    );
    assert_eq!(
        cluster.node(partition_leader).read_all("split", 0),
        Ok(vec!["before".to_owned(), "after".to_owned()])
    );
}
