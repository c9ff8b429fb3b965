//! A broker that runs out of disk space.

use super::fixture::*;

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
    assert_eq!(create_topic_on(cluster.node(1), "spill", &[3, 1, 2]), 0);
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
