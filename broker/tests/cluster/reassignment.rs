//! Moving replicas (KIP-455) under acks=all writes: off the leader, replication factor up and down, and a
//! move that cannot finish, cancelled. Four brokers: three voters and one that only follows the metadata.

use super::fixture::*;

/// Waits until every running broker's metadata shows `topic`-0 on `replicas` with all of them in sync and
/// nothing moving.
fn wait_settled_on(cluster: &mut Cluster, topic: &str, replicas: &[i32], limit: Duration) {
    let wanted: BTreeSet<i32> = replicas.iter().copied().collect();
    cluster.wait_until(&format!("{topic} settled on {replicas:?}"), limit, |c| {
        c.running().all(|n| {
            replicas_of(n, topic) == replicas
                && isr_of(n, topic).into_iter().collect::<BTreeSet<_>>() == wanted
                && moves(n).is_empty()
        })
    });
}

/// Waits until the replicas on `nodes` hold byte-identical logs of `topic`-0 (the followers have fetched
/// everything once writes stopped), and returns that log's size.
fn wait_identical_logs(cluster: &mut Cluster, topic: &str, nodes: &[i32]) -> usize {
    let mut size = 0;
    cluster.wait_until(
        &format!("identical copies of {topic} on {nodes:?}"),
        Duration::from_secs(20),
        |c| {
            let copies: Vec<Option<Vec<u8>>> = nodes
                .iter()
                .map(|id| segment_bytes(c.node(*id), topic))
                .collect();
            size = copies[0].as_ref().map_or(0, Vec::len);
            copies[0].is_some() && copies.iter().all(|c| c == &copies[0])
        },
    );
    size
}

/// Sets `topic`'s min.insync.replicas through `node` (IncrementalAlterConfigs).
fn set_min_insync(node: &Node, topic: &str, value: i32) {
    let (error, message) = alter_config(
        node,
        2,
        topic,
        "min.insync.replicas",
        Some(&value.to_string()),
    );
    assert_eq!(error, 0, "setting min.insync.replicas: {message}");
}

#[test]
fn moving_a_partition_off_its_leader_loses_nothing_acknowledged() {
    let mut cluster = start_cluster(4, 3);
    assert_eq!(create_topic_on(cluster.node(1), "moving", &[1, 2, 3]), 0);
    wait_settled_on(&mut cluster, "moving", &[1, 2, 3], Duration::from_secs(15));
    assert_eq!(leader_of(&mut cluster, 2, "moving", 0), 1);
    let epoch_before = cluster.node(2).metadata("moving").topics[0].partitions[0].leader_epoch;

    let writer = Writer::start(&cluster, "moving", 5_000);
    std::thread::sleep(Duration::from_millis(1500));
    // Through the broker that does not vote: the call is forwarded to the active controller.
    assert_eq!(
        reassign(cluster.node(4), "moving", 0, Some(&[2, 3, 4])),
        (0, 0)
    );
    wait_settled_on(&mut cluster, "moving", &[2, 3, 4], Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(1000));
    let acknowledged = writer.finish();
    assert!(
        acknowledged.len() > 20,
        "only {} writes acknowledged",
        acknowledged.len()
    );

    let metadata = cluster.node(3).metadata("moving");
    let partition = &metadata.topics[0].partitions[0];
    assert_eq!(
        partition.leader_id.0, 2,
        "the target's first replica leads once the old leader leaves"
    );
    assert!(
        partition.leader_epoch > epoch_before,
        "a new leader means a new leader epoch"
    );
    cluster.wait_until("broker 1 deletes its copy", Duration::from_secs(10), |c| {
        !c.node(1).dir.join("moving-0").exists()
    });
    let log = cluster.node(2).read_all("moving", 0).unwrap();
    assert_kept_in_order(&acknowledged, &log, "after the move");
    // The new replica holds what the others hold, batch for batch.
    let size = wait_identical_logs(&mut cluster, "moving", &[2, 3, 4]);
    eprintln!(
        "moved [1,2,3] -> [2,3,4] under acks=all: {} acknowledged, {} in the log, {size} log bytes on each replica",
        acknowledged.len(),
        log.len()
    );
    // The new set serves acks=all on its own.
    assert_eq!(cluster.node(2).produce("moving", 0, -1, "after").0, 0);
}

#[test]
fn replication_factor_grows_and_shrinks_and_a_stuck_move_is_cancelled() {
    let mut cluster = start_cluster(4, 3);

    // RF 1 -> 3, then 3 -> 1 on a replica that did not lead.
    assert_eq!(create_topic_on(cluster.node(1), "growing", &[4]), 0);
    // One replica: below min.insync.replicas=2, so acks=1 until the replicas are added.
    cluster.wait_until("broker 4 leads growing", Duration::from_secs(15), |c| {
        c.node(4).produce("growing", 0, 1, "single-0").0 == 0
    });
    let mut acknowledged = vec!["single-0".to_owned()];
    for i in 1..20 {
        let value = format!("single-{i}");
        assert_eq!(cluster.node(4).produce("growing", 0, 1, &value).0, 0);
        acknowledged.push(value);
    }
    assert_eq!(
        reassign(cluster.node(2), "growing", 0, Some(&[4, 1, 2])),
        (0, 0)
    );
    wait_settled_on(&mut cluster, "growing", &[4, 1, 2], Duration::from_secs(30));
    let writer = Writer::start(&cluster, "growing", 5_000);
    std::thread::sleep(Duration::from_millis(1000));
    // One replica cannot satisfy min.insync.replicas=2: the high watermark would stay where the move
    // left it (strict min ISR), hiding the last acknowledged records. An operator lowers it first.
    set_min_insync(cluster.node(1), "growing", 1);
    assert_eq!(reassign(cluster.node(3), "growing", 0, Some(&[2])), (0, 0));
    wait_settled_on(&mut cluster, "growing", &[2], Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    acknowledged.extend(writer.finish());
    assert_eq!(leader_of(&mut cluster, 1, "growing", 0), 2);
    cluster.wait_until(
        "brokers 4 and 1 delete their copies",
        Duration::from_secs(10),
        |c| !c.node(4).dir.join("growing-0").exists() && !c.node(1).dir.join("growing-0").exists(),
    );
    let log = cluster.node(2).read_all("growing", 0).unwrap();
    assert_kept_in_order(&acknowledged, &log, "after RF 1 -> 3 -> 1");

    // A move to a broker that is down cannot finish; it is listed, and cancelling reverts it.
    assert_eq!(create_topic_on(cluster.node(1), "stuck", &[1, 2, 3]), 0);
    wait_settled_on(&mut cluster, "stuck", &[1, 2, 3], Duration::from_secs(15));
    assert_eq!(cluster.node(1).produce("stuck", 0, -1, "before").0, 0);
    cluster.node(4).kill();
    assert_eq!(
        reassign(cluster.node(2), "stuck", 0, Some(&[1, 2, 4])),
        (0, 0)
    );
    let pending = Moving {
        topic: "stuck".into(),
        partition: 0,
        replicas: vec![1, 2, 4, 3],
        adding: vec![4],
        removing: vec![3],
    };
    cluster.wait_until(
        "every broker lists the move",
        Duration::from_secs(10),
        |c| c.running().all(|n| moves(n) == [pending.clone()]),
    );
    assert_eq!(
        replicas_of(cluster.node(1), "stuck"),
        [1, 2, 4, 3],
        "Metadata shows the full replica set"
    );
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        moves(cluster.node(3)),
        [pending],
        "still pending while broker 4 is down"
    );
    assert_eq!(cluster.node(1).produce("stuck", 0, -1, "during").0, 0);

    // Kafka's errors for what cannot be done.
    assert_eq!(
        reassign(cluster.node(1), "stuck", 0, Some(&[1, 1])).1,
        39,
        "INVALID_REPLICA_ASSIGNMENT"
    );
    assert_eq!(
        reassign(cluster.node(1), "stuck", 0, Some(&[1, 9])).1,
        39,
        "an unregistered broker"
    );
    assert_eq!(
        reassign(cluster.node(1), "stuck", 0, Some(&[])).1,
        39,
        "no replicas"
    );
    assert_eq!(
        reassign(cluster.node(1), "stuck", 5, Some(&[1])).1,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    assert_eq!(reassign(cluster.node(1), "nowhere", 0, None).1, 3);

    assert_eq!(reassign(cluster.node(3), "stuck", 0, None), (0, 0));
    wait_settled_on(&mut cluster, "stuck", &[1, 2, 3], Duration::from_secs(15));
    assert_eq!(
        reassign(cluster.node(3), "stuck", 0, None).1,
        85,
        "NO_REASSIGNMENT_IN_PROGRESS"
    );
    assert_eq!(leader_of(&mut cluster, 2, "stuck", 0), 1);
    assert_eq!(cluster.node(1).produce("stuck", 0, -1, "after").0, 0);
    assert_eq!(
        cluster.node(1).read_all("stuck", 0).unwrap(),
        ["before", "during", "after"]
    );
    assert!(
        cluster.node(3).dir.join("stuck-0").exists(),
        "the replica that stays keeps its copy"
    );
}
