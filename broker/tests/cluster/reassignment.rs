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

/// The value of the sample `series` (name and labels, as scraped) on `node`'s /metrics, if present.
fn metric(node: &Node, series: &str) -> Option<f64> {
    http_body(node.http_port, "/metrics")
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Writes `count` records of `size` bytes to `topic`-0 with acks=all through `node`: the values, in order.
fn fill(node: &Node, topic: &str, count: usize, size: usize) -> Vec<String> {
    let padding = "x".repeat(size);
    (0..count)
        .map(|i| {
            let value = format!("{topic}-fill-{i}-{padding}");
            assert_eq!(node.produce(topic, 0, -1, &value).0, 0, "fill record {i}");
            value
        })
        .collect()
}

/// Waits until `topic`-0 is on `replicas` everywhere (see [`wait_settled_on`]) and returns how long that
/// took since `since`.
fn settle_time(cluster: &mut Cluster, topic: &str, replicas: &[i32], since: Instant) -> Duration {
    wait_settled_on(cluster, topic, replicas, Duration::from_secs(30));
    since.elapsed()
}

const THROTTLE: u64 = 256 * 1024;
const FILL_RECORDS: usize = 96;
const FILL_SIZE: usize = 32 * 1024;

#[test]
fn a_throttled_move_runs_at_the_rate_while_in_sync_writes_go_on() {
    let mut cluster = start_cluster(4, 3);
    // For comparison: the same data moved with no throttle.
    assert_eq!(create_topic_on(cluster.node(1), "free", &[1, 2, 3]), 0);
    wait_settled_on(&mut cluster, "free", &[1, 2, 3], Duration::from_secs(15));
    fill(cluster.node(1), "free", FILL_RECORDS, FILL_SIZE);
    let started = Instant::now();
    assert_eq!(
        reassign(cluster.node(1), "free", 0, Some(&[1, 2, 4])),
        (0, 0)
    );
    let unthrottled = settle_time(&mut cluster, "free", &[1, 2, 4], started);
    eprintln!(
        "{} bytes moved unthrottled in {unthrottled:?}",
        FILL_RECORDS * FILL_SIZE
    );
    throttled_move(
        &mut cluster,
        &[
            (1, "leader.replication.throttled.rate", "leader"),
            (4, "follower.replication.throttled.rate", "follower"),
        ],
    );
}

#[test]
fn the_leader_alone_throttles_a_move() {
    let mut cluster = start_cluster(4, 3);
    throttled_move(
        &mut cluster,
        &[(1, "leader.replication.throttled.rate", "leader")],
    );
}

/// Moves `slow`-0 (new, filled with ~3 MiB) from [1, 2, 3] to [1, 2, 4] under acks=all writes with a
/// [`THROTTLE`] on each (broker, rate config, side) of `rates`: the move is still going at the lower bound
/// the rate implies while writes commit, each throttling broker held the partition back and metered it,
/// and once the rates are deleted the move ends with nothing acknowledged lost.
fn throttled_move(cluster: &mut Cluster, rates: &[(i32, &'static str, &'static str)]) {
    let fill_bytes = (FILL_RECORDS * FILL_SIZE) as u64;
    assert_eq!(create_topic_on(cluster.node(1), "slow", &[1, 2, 3]), 0);
    wait_settled_on(cluster, "slow", &[1, 2, 3], Duration::from_secs(15));
    let mut acknowledged = fill(cluster.node(1), "slow", FILL_RECORDS, FILL_SIZE);
    // No byte of `slow` is metered before this: each meter's window starts later.
    let origin = Instant::now();
    // What kafka-reassign-partitions.sh --throttle sets: the current replicas throttled as leaders, the
    // new one as follower, and a rate on each broker involved (set through that broker).
    for (key, value) in [
        ("leader.replication.throttled.replicas", "0:1,0:2,0:3"),
        ("follower.replication.throttled.replicas", "0:4"),
    ] {
        let (error, message) = alter_config(cluster.node(1), 2, "slow", key, Some(value));
        assert_eq!(error, 0, "setting {key}: {message}");
    }
    let rate = THROTTLE.to_string();
    for (id, key, _) in rates {
        let (error, message) =
            alter_config(cluster.node(*id), 4, &id.to_string(), key, Some(&rate));
        assert_eq!(error, 0, "setting {key} on {id}: {message}");
    }
    // The rates come after the topic configs in the metadata log: once a broker shows its rate, it has both.
    cluster.wait_until("the throttle is in force", Duration::from_secs(10), |c| {
        rates.iter().all(|(id, _, side)| {
            metric(
                c.node(*id),
                &format!("tributary_replication_throttle_limit{{side=\"{side}\"}}"),
            ) == Some(THROTTLE as f64)
        })
    });

    let writer = Writer::start(cluster, "slow", 5_000);
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    assert_eq!(
        reassign(cluster.node(1), "slow", 0, Some(&[1, 2, 4])),
        (0, 0)
    );
    // A throttling broker lets one fetch (replica.fetch.max.bytes, 1 MiB) through while its meter is
    // under the rate, and then no more than the rate over the time since its window started (after
    // `origin`): the move cannot end sooner.
    let one_fetch = 1024 * 1024;
    let lower_bound = Duration::from_secs_f64((fill_bytes - one_fetch) as f64 / THROTTLE as f64);
    // Each look counts only if it was answered before the bound: a stalled call may see the move done.
    let (mut looks, mut copied) = (0, 0);
    while origin.elapsed() < lower_bound - Duration::from_millis(200) {
        // Node 1 took the reassignment and had applied it when the call returned; another broker answers
        // from its own image, which may not have it yet right after the call.
        let listed = moves(cluster.node(1)).len();
        copied = segment_bytes(cluster.node(4), "slow").map_or(0, |b| b.len()) as u64;
        let answered = origin.elapsed();
        if answered < lower_bound {
            looks += 1;
            assert_eq!(
                listed, 1,
                "the throttled move ended by {answered:?}, before the {lower_bound:?} its rate allows"
            );
            assert!(
                copied < fill_bytes,
                "broker 4 holds {copied} of {fill_bytes} bytes by {answered:?}"
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        looks > 0,
        "no look at the move was answered within {lower_bound:?}"
    );
    assert!(
        copied > 0,
        "the throttled copy made no progress in {lower_bound:?}"
    );
    // Acks=all kept working: the in-sync followers were never held back.
    let before = high_watermark(cluster, "slow");
    std::thread::sleep(Duration::from_millis(500));
    let acknowledged_while_throttled = high_watermark(cluster, "slow") - before;
    assert!(
        acknowledged_while_throttled > 5,
        "only {acknowledged_while_throttled} writes committed in 0.5 s during the throttled move"
    );
    // Whichever side reaches its limit first holds the partition back (with both, the follower usually
    // does, so the leader never has to); each meters what it moved.
    let mut held_back = Vec::new();
    for (id, _, side) in rates {
        held_back.push(
            metric(
                cluster.node(*id),
                &format!(
                    "tributary_replication_throttle_held_back_partitions_total{{side=\"{side}\"}}"
                ),
            )
            .unwrap_or(0.0),
        );
        let metered = metric(
            cluster.node(*id),
            &format!("tributary_replication_throttled_bytes_total{{side=\"{side}\"}}"),
        )
        .unwrap_or(0.0);
        // The leader meters what it sent to every follower; the new follower what it received.
        assert!(
            metered >= copied as f64,
            "broker {id} metered {metered} throttled bytes ({side} side), broker 4 holds {copied}"
        );
    }
    assert!(
        held_back.iter().any(|n| *n > 0.0),
        "no throttling broker held the partition back: {held_back:?}"
    );
    let throttled_for = started.elapsed();

    // Lifting the throttle (what --verify does once the move is done) lets the move finish at full speed.
    for (id, key, _) in rates {
        let (error, message) = alter_config(cluster.node(*id), 4, &id.to_string(), key, None);
        assert_eq!(error, 0, "deleting {key} on {id}: {message}");
    }
    let lifted = Instant::now();
    let total = settle_time(cluster, "slow", &[1, 2, 4], started);
    let after_lift = lifted.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    acknowledged.extend(writer.finish());
    let log = cluster.node(1).read_all("slow", 0).unwrap();
    assert_kept_in_order(&acknowledged, &log, "after the throttled move");
    let size = wait_identical_logs(cluster, "slow", &[1, 2, 4]);
    let sides: Vec<&str> = rates.iter().map(|(_, _, side)| *side).collect();
    eprintln!(
        "{fill_bytes} bytes at {THROTTLE} B/s on {sides:?}: {copied} bytes copied after \
         {throttled_for:?} of moving (lower bound {lower_bound:?} from the throttle's start), done \
         {after_lift:?} after lifting, {total:?} in all; partitions held back {held_back:?}; {} \
         acknowledged, {size} log bytes on each replica",
        acknowledged.len()
    );
}

/// The high watermark of `topic`-0 on its leader, broker 1: how far acks=all writes are committed.
fn high_watermark(cluster: &Cluster, topic: &str) -> i64 {
    use kafka_protocol::messages::{
        list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
        ListOffsetsRequest,
    };
    let request = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-1)])]);
    let leader = cluster.nodes.iter().find(|n| n.id == 1).unwrap();
    let response = leader.call(request, 1);
    response.topics[0].partitions[0].offset
}
