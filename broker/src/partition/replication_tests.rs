//! Leader and follower replicas of one partition in one process, with records moved by the real code
//! paths: the leader's read, the follower's `append_as_follower` and fsync, the leader's record of the
//! follower's fetch; truncation by epoch as the fetcher does it.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;

use super::*;
use crate::{
    log::builder::BatchBuilder,
    replication::truncation::{truncation_step, TruncationStep},
};

struct Replica {
    _dir: tempfile::TempDir,
    partition: Partition,
    id: NodeId,
}

fn open_in(dir: tempfile::TempDir, id: NodeId, config: LogConfig) -> Replica {
    open_with(dir, id, config, LogStartState::default())
}

fn open_with(
    dir: tempfile::TempDir,
    id: NodeId,
    config: LogConfig,
    start: LogStartState,
) -> Replica {
    let (partition, _) = Partition::open(
        "t",
        Uuid::nil(),
        0,
        dir.path(),
        config,
        start,
        std::sync::Arc::new(crate::storage_health::StorageHealth::new(dir.path())),
    )
    .unwrap();
    Replica {
        _dir: dir,
        partition,
        id,
    }
}

fn replica(id: NodeId) -> Replica {
    open_in(tempfile::tempdir().unwrap(), id, LogConfig::default())
}

fn registration(leader: NodeId, epoch: i32, isr: &[NodeId]) -> PartitionRegistration {
    PartitionRegistration {
        replicas: vec![1, 2, 3],
        isr: isr.to_vec(),
        leader,
        leader_epoch: epoch,
        partition_epoch: epoch,
        adding_replicas: Vec::new(),
        removing_replicas: Vec::new(),
    }
}

fn batch(values: &[&str]) -> Vec<u8> {
    values
        .iter()
        .fold(BatchBuilder::new(), |b, v| {
            b.record(None, Some(Bytes::copy_from_slice(v.as_bytes())))
        })
        .build()
        .unwrap()
        .to_vec()
}

fn idempotent_batch(producer_id: i64, first_seq: i32, values: &[&str]) -> Vec<u8> {
    values
        .iter()
        .fold(
            BatchBuilder::new().producer(producer_id, 0, first_seq),
            |b, v| b.record(None, Some(Bytes::copy_from_slice(v.as_bytes()))),
        )
        .build()
        .unwrap()
        .to_vec()
}

async fn produce(leader: &Replica, values: &[&str]) -> AppendOutcome {
    let mut records = batch(values);
    let outcome = leader.partition.append(&mut records, 1_000).unwrap();
    leader
        .partition
        .flush_until(outcome.last_offset + 1)
        .await
        .unwrap();
    outcome
}

/// One follower fetch round as the fetcher and the fetch handler do it: the leader records the fetch
/// offset (the follower's durable log end), returns what follows, the follower appends and fsyncs.
async fn fetch_once(leader: &Replica, follower: &Replica, now_ms: i64) -> usize {
    let offset = follower.partition.log_end_offset();
    assert!(leader
        .partition
        .record_follower_fetch(follower.id, offset, now_ms));
    if offset >= leader.partition.log_end_offset() {
        follower
            .partition
            .set_follower_high_watermark(leader.partition.high_watermark());
        return 0;
    }
    let slice = leader.partition.read(offset, 1 << 20).unwrap();
    let bytes = slice.read_bytes().unwrap();
    follower
        .partition
        .append_as_follower(&bytes, leader.partition.high_watermark(), now_ms)
        .unwrap();
    follower
        .partition
        .flush_until(follower.partition.log_end_offset())
        .await
        .unwrap();
    bytes.len()
}

/// Fetches until nothing moves (bounded).
async fn catch_up(leader: &Replica, follower: &Replica, now_ms: i64) {
    for _ in 0..10 {
        if fetch_once(leader, follower, now_ms).await == 0 {
            return;
        }
    }
    panic!("follower {} did not catch up in 10 fetches", follower.id);
}

/// The follower's truncation dialogue with the leader, as the fetcher runs it on become-follower.
fn truncate_by_epoch(leader: &Replica, follower: &Replica) {
    for _ in 0..10 {
        let Some(epoch) = follower.partition.latest_epoch() else {
            return;
        };
        let answer = leader.partition.end_offset_for_epoch(epoch);
        let step = truncation_step(
            answer,
            |e| follower.partition.end_offset_for_epoch(e),
            follower.partition.log_end_offset(),
            follower.partition.high_watermark(),
        );
        follower.partition.truncate_to(step.offset()).unwrap();
        if let TruncationStep::Final(_) = step {
            return;
        }
    }
    panic!("truncation did not converge in 10 rounds");
}

fn whole_log(replica: &Replica) -> Bytes {
    let p = &replica.partition;
    if p.log_end_offset() == p.log_start_offset() {
        return Bytes::new();
    }
    p.read(p.log_start_offset(), usize::MAX)
        .unwrap()
        .read_bytes()
        .unwrap()
}

fn values(replica: &Replica) -> Vec<String> {
    let mut buf = whole_log(replica);
    let mut out = Vec::new();
    while !buf.is_empty() {
        let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf).unwrap();
        out.extend(
            set.records
                .iter()
                .map(|r| String::from_utf8(r.value.clone().unwrap_or_default().to_vec()).unwrap()),
        );
    }
    out
}

#[tokio::test]
async fn followers_hold_the_leaders_batches_byte_for_byte_and_the_high_watermark_waits_for_them() {
    let (leader, f2, f3) = (replica(1), replica(2), replica(3));
    leader
        .partition
        .become_leader(1, &registration(1, 4, &[1, 2, 3]), 0)
        .unwrap();
    f2.partition.become_follower(1, 4, 4);
    f3.partition.become_follower(1, 4, 4);
    produce(&leader, &["a", "b"]).await;
    produce(&leader, &["c"]).await;
    assert_eq!(
        leader.partition.high_watermark(),
        0,
        "nothing is committed before the followers have it"
    );
    let header = parse_header(&whole_log(&leader), 0).unwrap();
    assert_eq!(
        header.partition_leader_epoch, 4,
        "the leader stamps its epoch"
    );
    catch_up(&leader, &f2, 10).await;
    assert_eq!(
        leader.partition.high_watermark(),
        0,
        "3 is in the ISR and has not fetched"
    );
    assert!(
        leader.partition.read_below(0, 1 << 20, 0).unwrap().len == 0,
        "a consumer sees nothing above the high watermark"
    );
    catch_up(&leader, &f3, 10).await;
    assert_eq!(leader.partition.high_watermark(), 3);
    assert_eq!(whole_log(&f2), whole_log(&leader));
    assert_eq!(whole_log(&f3), whole_log(&leader));
    assert_eq!(
        f2.partition.epoch_entries(),
        leader.partition.epoch_entries()
    );
    fetch_once(&leader, &f2, 20).await;
    assert_eq!(
        f2.partition.high_watermark(),
        3,
        "the follower learns the leader's high watermark on its next fetch"
    );
    // A straddling consumer read stops below the high watermark.
    produce(&leader, &["d", "e"]).await;
    catch_up(&leader, &f2, 30).await;
    let below = leader.partition.read_below(0, 1 << 20, 3).unwrap();
    let mut bytes = below.read_bytes().unwrap();
    let mut seen = 0;
    while !bytes.is_empty() {
        seen += kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes)
            .unwrap()
            .records
            .len();
    }
    assert_eq!(seen, 3, "the batch at 3..=4 is above the high watermark");
}

/// Kafka's effectiveMinIsr: min.insync.replicas above the replication factor counts as the replication factor,
/// so raising the cluster's setting (as the operator does when a cluster grows to three brokers) leaves
/// smaller topics writable.
#[tokio::test]
async fn min_insync_above_the_replication_factor_counts_as_the_replication_factor() {
    let leader = replica(1);
    leader.partition.set_config(LogConfig {
        min_insync_replicas: 2,
        ..LogConfig::default()
    });
    let single = PartitionRegistration {
        replicas: vec![1],
        isr: vec![1],
        leader: 1,
        leader_epoch: 0,
        partition_epoch: 0,
        adding_replicas: Vec::new(),
        removing_replicas: Vec::new(),
    };
    leader.partition.become_leader(1, &single, 0).unwrap();
    assert_eq!(leader.partition.min_insync_replicas(), 1);
    let outcome = produce(&leader, &["a"]).await;
    assert_eq!(
        leader
            .partition
            .wait_for_high_watermark(outcome.last_offset + 1)
            .await,
        Ok(()),
        "an acks=all write to an RF 1 partition under min.insync.replicas=2 is committed"
    );
    assert_eq!(leader.partition.high_watermark(), 1);
    // Three replicas: the setting applies as configured.
    leader
        .partition
        .become_leader(1, &registration(1, 1, &[1]), 10)
        .unwrap();
    assert_eq!(leader.partition.min_insync_replicas(), 2);
}

#[tokio::test]
async fn the_high_watermark_uses_the_maximal_isr_and_respects_min_insync() {
    let (leader, f2, f3) = (replica(1), replica(2), replica(3));
    let config = LogConfig {
        min_insync_replicas: 2,
        ..LogConfig::default()
    };
    leader.partition.set_config(config);
    leader
        .partition
        .become_leader(1, &registration(1, 0, &[1, 2]), 0)
        .unwrap();
    produce(&leader, &["a"]).await;
    catch_up(&leader, &f3, 10).await;
    catch_up(&leader, &f2, 10).await;
    assert_eq!(leader.partition.high_watermark(), 1);
    // 3 caught up: the leader proposes to add it; while that is pending, 3 counts for the high watermark.
    let proposal = leader
        .partition
        .propose_isr_change(20, 30_000, |_| true)
        .expect("3 is caught up");
    assert_eq!(proposal.change.new_isr, vec![1, 2, 3]);
    assert_eq!(proposal.partition_epoch, 0);
    produce(&leader, &["b"]).await;
    catch_up(&leader, &f2, 30).await;
    assert_eq!(
        leader.partition.high_watermark(),
        1,
        "the pending ISR member 3 does not have offset 1 yet"
    );
    catch_up(&leader, &f3, 30).await;
    assert_eq!(leader.partition.high_watermark(), 2);
    // The ISR shrinks below min.insync.replicas: the high watermark stops, an acks=all wait fails.
    leader
        .partition
        .become_leader(1, &registration(1, 0, &[1]), 40)
        .unwrap();
    let outcome = produce(&leader, &["c"]).await;
    assert_eq!(leader.partition.high_watermark(), 2);
    assert_eq!(
        leader
            .partition
            .wait_for_high_watermark(outcome.last_offset + 1)
            .await,
        Err(HighWatermarkWait::NotEnoughReplicas)
    );
}

#[tokio::test]
async fn a_lagging_follower_is_proposed_out_after_the_lag_time() {
    let (leader, f2, f3) = (replica(1), replica(2), replica(3));
    leader
        .partition
        .become_leader(1, &registration(1, 0, &[1, 2, 3]), 0)
        .unwrap();
    produce(&leader, &["a"]).await;
    catch_up(&leader, &f2, 100).await;
    assert_eq!(
        leader.partition.propose_isr_change(200, 500, |_| true),
        None
    );
    fetch_once(&leader, &f2, 600).await;
    let proposal = leader
        .partition
        .propose_isr_change(700, 500, |_| true)
        .expect("3 never fetched");
    assert_eq!(proposal.change.shrunk, vec![3]);
    leader.partition.clear_pending_isr(750);
    catch_up(&leader, &f3, 800).await;
    assert_eq!(
        leader.partition.propose_isr_change(900, 500, |_| true),
        None,
        "3 caught up again before the controller answered"
    );
}

#[tokio::test]
async fn two_fast_failovers_leave_identical_logs_kip_279() {
    let (a, b) = (replica(1), replica(2));
    // Epoch 1, A leads: m1 reaches B, m2 does not.
    a.partition
        .become_leader(1, &registration(1, 1, &[1, 2]), 0)
        .unwrap();
    b.partition.become_follower(1, 1, 1);
    produce(&a, &["m1"]).await;
    catch_up(&a, &b, 10).await;
    produce(&a, &["m2"]).await;
    // Epoch 2: B leads and writes m3 at offset 1; it fails before A follows.
    b.partition
        .become_leader(2, &registration(2, 2, &[2]), 20)
        .unwrap();
    produce(&b, &["m3"]).await;
    // Epoch 3: A leads again (it never saw epoch 2) and writes m4.
    a.partition
        .become_leader(1, &registration(1, 3, &[1]), 30)
        .unwrap();
    produce(&a, &["m4"]).await;
    assert_eq!(values(&a), ["m1", "m2", "m4"]);
    assert_eq!(values(&b), ["m1", "m3"]);
    // B follows A: epoch 2 is unknown to A, whose answer (1, 2) makes B cut m3 at offset 1.
    b.partition.become_follower(1, 3, 3);
    assert_eq!(a.partition.end_offset_for_epoch(2), (1, 2));
    truncate_by_epoch(&a, &b);
    assert_eq!(b.partition.log_end_offset(), 1, "m3 is gone");
    catch_up(&a, &b, 40).await;
    assert_eq!(values(&b), ["m1", "m2", "m4"]);
    assert_eq!(whole_log(&b), whole_log(&a));
    assert_eq!(b.partition.epoch_entries(), a.partition.epoch_entries());
}

#[tokio::test]
async fn an_idempotent_retry_to_a_new_leader_is_a_duplicate_and_truncation_forgets_cut_batches() {
    let (a, b) = (replica(1), replica(2));
    a.partition
        .become_leader(1, &registration(1, 0, &[1, 2]), 0)
        .unwrap();
    b.partition.become_follower(1, 0, 0);
    let mut first = idempotent_batch(7, 0, &["x", "y"]);
    a.partition.append(&mut first, 1).unwrap();
    catch_up(&a, &b, 10).await;
    let mut second = idempotent_batch(7, 2, &["z"]);
    a.partition.append(&mut second, 2).unwrap();
    catch_up(&a, &b, 20).await;
    // B takes over; the producer retries its first batch there.
    b.partition
        .become_leader(2, &registration(2, 1, &[2]), 30)
        .unwrap();
    let mut retry = idempotent_batch(7, 0, &["x", "y"]);
    let outcome = b.partition.append(&mut retry, 3).unwrap();
    assert!(
        outcome.duplicate,
        "the replicated producer state knows seq 0-1"
    );
    assert_eq!((outcome.base_offset, outcome.last_offset), (0, 1));
    // Truncating the second batch away makes its retry a new append, not a duplicate or a gap.
    b.partition.become_follower(1, 2, 2);
    b.partition.truncate_to(2).unwrap();
    b.partition
        .become_leader(2, &registration(2, 3, &[2]), 40)
        .unwrap();
    let mut retry = idempotent_batch(7, 2, &["z"]);
    let outcome = b.partition.append(&mut retry, 4).unwrap();
    assert!(!outcome.duplicate);
    assert_eq!(outcome.base_offset, 2);
}

#[tokio::test]
async fn the_epoch_cache_survives_reopen_and_is_rebuilt_when_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let a = open_in(dir, 1, LogConfig::default());
    a.partition
        .become_leader(1, &registration(1, 2, &[1]), 0)
        .unwrap();
    produce(&a, &["a"]).await;
    a.partition
        .become_leader(1, &registration(1, 5, &[1]), 0)
        .unwrap();
    produce(&a, &["b"]).await;
    let entries = a.partition.epoch_entries();
    assert_eq!(
        entries
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect::<Vec<_>>(),
        [(2, 0), (5, 1)]
    );
    let Replica {
        _dir, partition, ..
    } = a;
    partition.flush_now().unwrap();
    partition.into_log().close().unwrap();
    let reopened = open_in(_dir, 1, LogConfig::default());
    assert_eq!(reopened.partition.epoch_entries(), entries);
    let Replica {
        _dir, partition, ..
    } = reopened;
    partition.into_log().close().unwrap();
    std::fs::remove_file(path.join(crate::log::LEADER_EPOCH_CHECKPOINT)).unwrap();
    let rebuilt = open_in(_dir, 1, LogConfig::default());
    assert_eq!(
        rebuilt.partition.epoch_entries(),
        entries,
        "rebuilt from the batches' epochs"
    );
    assert_eq!(rebuilt.partition.end_offset_for_epoch(3), (2, 1));
}

#[test]
fn a_follower_append_must_start_at_its_log_end() {
    let (a, b) = (replica(1), replica(2));
    a.partition
        .become_leader(1, &registration(1, 0, &[1]), 0)
        .unwrap();
    let mut records = batch(&["a"]);
    a.partition.append(&mut records, 1).unwrap();
    let mut records = batch(&["b"]);
    a.partition.append(&mut records, 1).unwrap();
    let second = a.partition.read(1, 1 << 20).unwrap().read_bytes().unwrap();
    assert!(
        b.partition.append_as_follower(&second, 0, 1).is_ok(),
        "a gap (as compaction leaves) is accepted"
    );
    assert!(matches!(
        b.partition.append_as_follower(&second, 0, 1),
        Err(PartitionError::Log(LogError::UnexpectedAppendOffset {
            found: 1,
            log_end: 2
        }))
    ));
}

/// Closes `replica` and opens its directory again as a restart would, with `checkpointed` as the
/// `replication-offset-checkpoint` entry.
fn restart(replica: Replica, checkpointed: Option<i64>) -> Replica {
    let Replica {
        _dir,
        partition,
        id,
    } = replica;
    partition.flush_now().unwrap();
    partition.into_log().close().unwrap();
    let start = LogStartState {
        high_watermark: checkpointed,
        ..LogStartState::default()
    };
    open_with(_dir, id, LogConfig::default(), start)
}

fn values_below_high_watermark(replica: &Replica) -> Vec<String> {
    let hw = replica.partition.high_watermark();
    let slice = replica.partition.read_below(0, 1 << 20, hw).unwrap();
    if slice.len == 0 {
        return Vec::new();
    }
    let mut bytes = slice.read_bytes().unwrap();
    kafka_protocol::records::RecordBatchDecoder::decode_all(&mut bytes)
        .unwrap()
        .into_iter()
        .flat_map(|set| set.records)
        .map(|r| String::from_utf8(r.value.unwrap_or_default().to_vec()).unwrap())
        .collect()
}

#[tokio::test]
async fn a_restarted_replica_starts_from_its_checkpointed_high_watermark_within_its_log() {
    let (leader, f2) = (replica(1), replica(2));
    leader
        .partition
        .become_leader(1, &registration(1, 0, &[1, 2]), 0)
        .unwrap();
    produce(&leader, &["a", "b"]).await;
    catch_up(&leader, &f2, 10).await;
    // Written on the leader only: not committed, so not in the checkpoint.
    produce(&leader, &["c"]).await;
    assert_eq!(leader.partition.high_watermark(), 2);
    assert_eq!(leader.partition.high_watermark_to_checkpoint(), Some(2));

    let leader = restart(leader, Some(2));
    assert_eq!(leader.partition.log_end_offset(), 3);
    assert_eq!(
        leader.partition.high_watermark_to_checkpoint(),
        Some(2),
        "before its first role the recovered log end is not trusted; the checkpoint is carried over"
    );
    leader
        .partition
        .become_leader(1, &registration(1, 1, &[1, 2]), 0)
        .unwrap();
    assert_eq!(
        leader.partition.high_watermark(),
        2,
        "a restarted leader serves what was committed before any follower fetched, and no more"
    );
    assert_eq!(values_below_high_watermark(&leader), ["a", "b"]);

    // A checkpoint above what the log still holds (a tail lost with the page cache) is capped at the log
    // end; without an entry the replica starts from its log start, as before.
    let leader = restart(leader, Some(10));
    leader.partition.become_follower(2, 2, 2);
    assert_eq!(leader.partition.high_watermark(), 3);
    let leader = restart(leader, None);
    leader
        .partition
        .become_leader(1, &registration(1, 3, &[1, 2]), 0)
        .unwrap();
    assert_eq!(leader.partition.high_watermark(), 0);
    assert_eq!(leader.partition.high_watermark_to_checkpoint(), Some(0));

    // A partition with one replica keeps the single-node rule: everything recovered is committed.
    let single = restart(leader, Some(1));
    let alone = PartitionRegistration {
        replicas: vec![1],
        isr: vec![1],
        leader: 1,
        leader_epoch: 4,
        partition_epoch: 4,
        adding_replicas: Vec::new(),
        removing_replicas: Vec::new(),
    };
    single.partition.become_leader(1, &alone, 0).unwrap();
    assert_eq!(single.partition.high_watermark(), 3);
}
