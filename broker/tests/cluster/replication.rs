//! Replicated partitions: failover without loss, min.insync.replicas, ISR rejoin, the high-watermark checkpoint, restarts.

use super::fixture::*;

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
    // The survivor may publish the election before the preferred leader has applied it (a client would
    // get NOT_LEADER_OR_FOLLOWER and retry), and a new leader's high watermark only reaches the tail once
    // its followers have fetched again.
    cluster.wait_until(
        "the preferred leader serves every acknowledged record",
        Duration::from_secs(10),
        |c| c.node(leader).read_all("ledger", 0) == Ok(acknowledged.clone()),
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
    assert_eq!(create_topic_on(cluster.node(2), "narrow", &[1, 4, 5]), 0);
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
    assert_eq!(create_topic_on(cluster.node(2), "kept", &[1, 4, 5]), 0);
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
    assert_eq!(create_topic_on(cluster.node(2), "stale", &[1, 2, 3]), 0);
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

#[test]
fn an_unclean_election_happens_only_where_the_topic_allows_it_and_the_old_leader_truncates() {
    // Voters 1-3 keep the metadata quorum; the topic lives on the two brokers that do not vote.
    let mut cluster = start_cluster(5, 3);
    assert_eq!(create_topic_on(cluster.node(1), "lossy", &[4, 5]), 0);
    // Every node, the replicas included, has the topic: its leader takes writes only once it has applied it.
    cluster.wait_until("a full ISR everywhere", Duration::from_secs(10), |c| {
        c.running().all(|n| isr_of(n, "lossy").len() == 2)
    });
    let leader = leader_of(&mut cluster, 1, "lossy", 0);
    let follower = if leader == 4 { 5 } else { 4 };
    assert_eq!(cluster.node(leader).produce("lossy", 0, -1, "on-both").0, 0);
    cluster.node(follower).kill();
    cluster.wait_until(
        "the ISR shrinks to the leader",
        Duration::from_secs(30),
        |c| isr_of(c.node(1), "lossy") == vec![leader],
    );
    // acks=1: min.insync.replicas=2 refuses acks=all now. Only the leader holds this record.
    assert_eq!(
        cluster
            .node(leader)
            .produce("lossy", 0, 1, "only-on-leader")
            .0,
        0
    );
    cluster.node(leader).kill();
    cluster.wait_until(
        "the leader fenced, nobody leads",
        Duration::from_secs(30),
        |c| leader_of(c, 1, "lossy", 0) == -1,
    );
    cluster.node(follower).start();
    cluster.wait_until(
        "the follower back in service",
        Duration::from_secs(30),
        |c| {
            c.node(1)
                .metadata("lossy")
                .brokers
                .iter()
                .any(|b| b.node_id.0 == follower)
        },
    );
    // unclean.leader.election.enable is false by default: the partition waits for its ISR.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        leader_of(&mut cluster, 1, "lossy", 0),
        -1,
        "no leader from outside the ISR by default"
    );
    assert_eq!(
        alter_config(
            cluster.node(1),
            2,
            "lossy",
            "unclean.leader.election.enable",
            Some("true")
        ),
        (0, String::new())
    );
    cluster.wait_until(
        "the follower leads, uncleanly",
        Duration::from_secs(10),
        |c| leader_of(c, 1, "lossy", 0) == follower && isr_of(c.node(1), "lossy") == vec![follower],
    );
    // Alone in the ISR, below min.insync.replicas=2, the new leader takes acks=1 writes but does not move
    // the high watermark: nothing it serves can be taken back by the next election.
    assert_eq!(cluster.node(follower).produce("lossy", 0, 1, "after").0, 0);
    assert_eq!(cluster.node(follower).read_all("lossy", 0), Ok(Vec::new()));
    // The old leader comes back, truncates what only it had, and rejoins the ISR.
    cluster.node(leader).start();
    cluster.wait_until("both in the ISR again", Duration::from_secs(30), |c| {
        isr_of(c.node(1), "lossy").len() == 2
    });
    let expected = vec!["on-both".to_owned(), "after".to_owned()];
    cluster.wait_until(
        "whoever leads serves the new leader's log",
        Duration::from_secs(10),
        |c| {
            let now = leader_of(c, 1, "lossy", 0);
            now > 0 && c.node(now).read_all("lossy", 0) == Ok(expected.clone())
        },
    );
    // The old leader leads again (its log must be the new one): it may not have heard the high watermark
    // before the other went down, and alone in the ISR it does not move it, so the other comes back too.
    cluster.node(follower).kill();
    cluster.wait_until("the old leader leads", Duration::from_secs(30), |c| {
        leader_of(c, 1, "lossy", 0) == leader
    });
    cluster.node(follower).start();
    cluster.wait_until(
        "the old leader's log is the new leader's",
        Duration::from_secs(30),
        |c| c.node(leader).read_all("lossy", 0) == Ok(expected.clone()),
    );
}
