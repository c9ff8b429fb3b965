//! Filling a broker (`tributary.broker.filling`): a broker that joins a cluster with partitions for the
//! first time gets its even share of replicas and preferred leaderships, moved under acks=all writes with
//! nothing acknowledged lost; with `tributary.partition.autobalancing.mode=off` it stays empty until
//! someone sets the flag on it.

use super::fixture::*;

const INVALID_REQUEST: i16 = 42;
const INVALID_CONFIG: i16 = 40;

/// Replicas per broker and preferred leaderships per broker over every topic, as `node` sees them.
fn holdings(node: &Node) -> (BTreeMap<i32, usize>, BTreeMap<i32, usize>) {
    let metadata = node.call(MetadataRequest::default().with_topics(None), 12);
    let mut replicas = BTreeMap::new();
    let mut preferred = BTreeMap::new();
    for topic in &metadata.topics {
        for p in &topic.partitions {
            for id in &p.replica_nodes {
                *replicas.entry(id.0).or_insert(0) += 1;
            }
            if let Some(first) = p.replica_nodes.first() {
                *preferred.entry(first.0).or_insert(0) += 1;
            }
        }
    }
    (replicas, preferred)
}

fn start_with_broker_4_later(extra: &'static str) -> Cluster {
    start_cluster_joined_later(
        4,
        3,
        QuorumSetup::StaticVoters,
        move |_| extra.to_owned(),
        |_| Vec::new(),
        &[4],
    )
}

#[test]
fn a_broker_joining_for_the_first_time_gets_its_share_and_nothing_acknowledged_is_lost() {
    let started = Instant::now();
    let mut cluster = start_with_broker_4_later("");
    assert_eq!(create_topic_on(cluster.node(1), "ledger", &[1, 2, 3]), 0);
    assert_eq!(create_topic(cluster.node(1), "spread", 6, 3), 0);
    cluster.wait_until("every replica in sync", Duration::from_secs(15), |c| {
        isr_of(c.node(2), "ledger").len() == 3
    });
    let writer = Writer::start(&cluster, "ledger", 5_000);
    std::thread::sleep(Duration::from_millis(500));

    let joined = Instant::now();
    cluster.node(4).start();
    // 21 replicas over 4 brokers: 5 each at least, and preferred leaderships 7 / 4 = 1 at least.
    cluster.wait_until(
        "broker 4 holds its share and nothing is moving",
        Duration::from_secs(45),
        |c| {
            let node = c.node(1);
            let (replicas, _) = holdings(node);
            replicas.get(&4).copied().unwrap_or(0) >= 5 && moves(node).is_empty()
        },
    );
    let filled_in = joined.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let acknowledged = writer.finish();
    let (replicas, preferred) = holdings(cluster.node(2));
    assert_eq!(replicas.values().sum::<usize>(), 21, "{replicas:?}");
    assert!(
        replicas.values().all(|n| *n == 5 || *n == 6),
        "replica counts even out: {replicas:?}"
    );
    assert!(
        preferred.get(&4).copied().unwrap_or(0) >= 1,
        "broker 4 is preferred leader somewhere: {preferred:?}"
    );
    assert!(
        acknowledged.len() > 20,
        "only {} writes acknowledged",
        acknowledged.len()
    );
    let leader = leader_of(&mut cluster, 1, "ledger", 0);
    let log = cluster.node(leader).read_all("ledger", 0).unwrap();
    assert_kept_in_order(&acknowledged, &log, "after filling broker 4");

    // Done means the flag is gone: setting it again on a balanced broker moves nothing.
    assert_eq!(
        alter_config(
            cluster.node(3),
            4,
            "4",
            "tributary.broker.filling",
            Some("true")
        ),
        (0, String::new())
    );
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        moves(cluster.node(1)).is_empty(),
        "a balanced broker gets nothing more"
    );
    assert_eq!(holdings(cluster.node(1)).0, replicas);
    eprintln!(
        "filled broker 4 with {} replicas in {filled_in:?} under acks=all ({} acknowledged); {:?} in all",
        replicas[&4],
        acknowledged.len(),
        started.elapsed()
    );
}

#[test]
fn with_autobalancing_off_a_new_broker_is_filled_only_when_asked() {
    let mut cluster = start_with_broker_4_later("tributary.partition.autobalancing.mode=off\n");
    assert_eq!(create_topic(cluster.node(1), "spread", 4, 3), 0);
    cluster.node(4).start();
    cluster.wait_until("broker 4 is ready", Duration::from_secs(20), |c| {
        c.node(4).ready()
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        holdings(cluster.node(1)).0.get(&4),
        None,
        "nothing moves by itself"
    );

    assert_eq!(
        alter_config(
            cluster.node(1),
            4,
            "9",
            "tributary.broker.filling",
            Some("true")
        )
        .0,
        INVALID_REQUEST,
        "an unregistered broker"
    );
    assert_eq!(
        alter_config(
            cluster.node(1),
            4,
            "4",
            "tributary.broker.filling",
            Some("yes")
        )
        .0,
        INVALID_CONFIG,
        "not a boolean"
    );
    // Through broker 2, for broker 4: the flag is accepted for any registered broker.
    assert_eq!(
        alter_config(
            cluster.node(2),
            4,
            "4",
            "tributary.broker.filling",
            Some("true")
        ),
        (0, String::new())
    );
    // 12 replicas over 4 brokers.
    cluster.wait_until(
        "broker 4 holds 3 replicas, nothing moving",
        Duration::from_secs(30),
        |c| {
            let node = c.node(1);
            holdings(node).0.get(&4) == Some(&3) && moves(node).is_empty()
        },
    );
    let (replicas, _) = holdings(cluster.node(3));
    assert!(replicas.values().all(|n| *n == 3), "{replicas:?}");
}

/// UnregisterBroker v0 of `broker` through `node`: the error code and message.
fn unregister(node: &Node, broker: i32) -> (i16, String) {
    let request =
        kafka_protocol::messages::UnregisterBrokerRequest::default().with_broker_id(broker.into());
    let response = node.call(request, 0);
    (
        response.error_code,
        response
            .error_message
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

/// Scale-down and back up at the broker level: drain broker 4, stop it, unregister it (refused while it
/// runs, holds replicas or votes), and start it again: it registers as a new broker and is filled.
#[test]
fn a_drained_stopped_broker_is_unregistered_and_returns_as_a_new_broker() {
    const BROKER_ID_NOT_REGISTERED: i16 = 102;
    let mut cluster = start_cluster(4, 3);
    assert_eq!(create_topic(cluster.node(1), "spread", 4, 3), 0);
    cluster.wait_until("broker 4 holds replicas", Duration::from_secs(15), |c| {
        holdings(c.node(1)).0.get(&4).copied().unwrap_or(0) > 0
    });
    let (refused, why) = unregister(cluster.node(2), 4);
    assert_eq!(refused, INVALID_REQUEST, "{why}");
    assert!(why.contains("running"), "a running broker: {why}");
    let (refused, why) = unregister(cluster.node(2), 1);
    assert_eq!(refused, INVALID_REQUEST, "{why}");
    assert!(why.contains("voter"), "a voter: {why}");
    assert_eq!(unregister(cluster.node(2), 9).0, BROKER_ID_NOT_REGISTERED);

    assert_eq!(
        alter_config(
            cluster.node(1),
            4,
            "4",
            "tributary.broker.draining",
            Some("true")
        ),
        (0, String::new())
    );
    cluster.wait_until("broker 4 holds nothing", Duration::from_secs(30), |c| {
        let node = c.node(1);
        !holdings(node).0.contains_key(&4) && moves(node).is_empty()
    });
    cluster.node(4).kill();
    cluster.wait_until("broker 4 is fenced", Duration::from_secs(15), |c| {
        !broker_ids(&c.node(1).metadata("spread")).contains(&4)
    });
    assert_eq!(unregister(cluster.node(3), 4), (0, String::new()));
    assert_eq!(unregister(cluster.node(3), 4).0, BROKER_ID_NOT_REGISTERED);

    // Back with the same id: a first registration again, so it is filled, and no longer draining.
    cluster.node(4).start();
    cluster.wait_until("broker 4 is filled again", Duration::from_secs(30), |c| {
        let node = c.node(1);
        holdings(node).0.get(&4) == Some(&3) && moves(node).is_empty()
    });
}
