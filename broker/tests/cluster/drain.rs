//! Draining a broker (`tributary.broker.draining` on broker resource "<id>"): under acks=all writes the
//! controller moves every replica and leadership off it, losing nothing acknowledged; a drain that would
//! leave a partition nowhere to go is refused with POLICY_VIOLATION and stores nothing.

use super::fixture::*;

const POLICY_VIOLATION: i16 = 44;
const INVALID_REQUEST: i16 = 42;

/// IncrementalAlterConfigs of `tributary.broker.draining` on broker resource `broker` through `node`:
/// SET `value`, or DELETE when None. The resource's error code and message.
fn set_draining(node: &Node, broker: i32, value: Option<&str>) -> (i16, String) {
    alter_config(
        node,
        4,
        &broker.to_string(),
        "tributary.broker.draining",
        value,
    )
}

/// AlterConfigs (legacy, key 33) of only `tributary.broker.draining` on broker resource `broker` through
/// `node`: the resource's error code.
fn legacy_set_draining(node: &Node, broker: i32, value: &str) -> i16 {
    use kafka_protocol::messages::{
        alter_configs_request::{AlterConfigsResource, AlterableConfig},
        AlterConfigsRequest,
    };
    let request =
        AlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(StrBytes::from_string(broker.to_string()))
            .with_configs(vec![AlterableConfig::default()
                .with_name(StrBytes::from_static_str("tributary.broker.draining"))
                .with_value(Some(StrBytes::from_string(value.to_owned())))])]);
    node.call(request, 1).responses[0].error_code
}

/// (replicas on `broker`, partitions `broker` leads) over `topics`-0 as `node` sees them.
fn held_by(node: &Node, topics: &[&str], broker: i32) -> (usize, usize) {
    let mut replicas = 0;
    let mut leads = 0;
    for topic in topics {
        let metadata = node.metadata(topic);
        for p in &metadata.topics[0].partitions {
            replicas += p.replica_nodes.iter().filter(|b| b.0 == broker).count();
            leads += usize::from(p.leader_id.0 == broker);
        }
    }
    (replicas, leads)
}

#[test]
fn draining_a_broker_moves_everything_off_it_and_loses_nothing_acknowledged() {
    let started = Instant::now();
    let mut cluster = start_cluster(4, 3);
    let topics: [(&str, &[i32]); 4] = [
        ("led-by-2", &[2, 1, 3]),
        ("follows-2", &[1, 2]),
        ("three-on-4", &[3, 4, 2]),
        ("not-on-2", &[4, 1]),
    ];
    for (name, replicas) in topics {
        assert_eq!(
            create_topic_on(cluster.node(1), name, replicas),
            0,
            "create {name}"
        );
    }
    let names: Vec<&str> = topics.iter().map(|(n, _)| *n).collect();
    cluster.wait_until("every replica in sync", Duration::from_secs(15), |c| {
        topics
            .iter()
            .all(|(n, r)| isr_of(c.node(3), n).len() == r.len())
    });
    assert_eq!(leader_of(&mut cluster, 1, "led-by-2", 0), 2);

    let writer = Writer::start(&cluster, "led-by-2", 5_000);
    std::thread::sleep(Duration::from_millis(1000));
    let (unknown, text) = set_draining(cluster.node(1), 9, Some("true"));
    assert_eq!(
        unknown, INVALID_REQUEST,
        "draining an unregistered broker: {text}"
    );
    // Through broker 4, not 2 itself: any broker accepts the drain of any registered broker.
    assert_eq!(
        set_draining(cluster.node(4), 2, Some("true")),
        (0, String::new())
    );
    cluster.wait_until(
        "broker 2 holds no replica and leads nothing, nothing moving",
        Duration::from_secs(30),
        |c| {
            let node = c.node(1);
            held_by(node, &names, 2) == (0, 0) && moves(node).is_empty()
        },
    );
    std::thread::sleep(Duration::from_millis(500));
    let acknowledged = writer.finish();
    assert!(
        acknowledged.len() > 20,
        "only {} writes acknowledged",
        acknowledged.len()
    );
    let leader = leader_of(&mut cluster, 1, "led-by-2", 0);
    assert_ne!(leader, 2, "broker 2 handed its leadership away");
    let log = cluster.node(leader).read_all("led-by-2", 0).unwrap();
    assert_kept_in_order(&acknowledged, &log, "after draining broker 2");
    assert_eq!(
        replicas_of(cluster.node(3), "not-on-2"),
        [4, 1],
        "a partition without a replica on 2 is not moved"
    );
    for (name, replicas) in topics {
        assert_eq!(
            replicas_of(cluster.node(3), name).len(),
            replicas.len(),
            "{name} keeps its RF"
        );
    }

    // With 2 draining only 1, 3 and 4 remain: an RF 3 partition on 3 cannot leave it, as in a
    // three-broker cluster.
    let on_3 = held_by(cluster.node(1), &names, 3).0;
    let (refused, why) = set_draining(cluster.node(1), 3, Some("true"));
    assert_eq!(
        refused, POLICY_VIOLATION,
        "draining 3 must be refused: {why}"
    );
    assert!(
        why.contains("led-by-2-0") || why.contains("three-on-4-0"),
        "the refusal names the partition: {why}"
    );
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        moves(cluster.node(1)).is_empty(),
        "a refused drain moves nothing"
    );
    assert_eq!(
        held_by(cluster.node(1), &names, 3).0,
        on_3,
        "3 keeps its replicas"
    );
    // Legacy AlterConfigs takes the flag alone for any registered broker too.
    assert_eq!(legacy_set_draining(cluster.node(1), 3, "false"), 0);
    assert_eq!(
        legacy_set_draining(cluster.node(1), 9, "false"),
        INVALID_REQUEST
    );
    // Undraining (DELETE) is accepted and moves nothing back.
    assert_eq!(set_draining(cluster.node(2), 2, None), (0, String::new()));
    eprintln!(
        "drained broker 2 under acks=all: {} acknowledged, {} in the log, {:?} in all",
        acknowledged.len(),
        log.len(),
        started.elapsed()
    );
}
