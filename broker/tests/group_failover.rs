//! Group coordinators fail over with their `__consumer_offsets` partition, across three brokers replicating
//! over TCP (see `testing::replicated`): the new leader answers COORDINATOR_LOAD_IN_PROGRESS until it has
//! loaded the shard and then the committed offsets and leader epochs, never stale or empty ones; the old
//! leader answers NOT_COORDINATOR, parked requests included; FindCoordinator follows; and a commit is
//! acknowledged only once the in-sync replicas have it.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use kafka_protocol::{
    messages::{
        find_coordinator_request::FindCoordinatorRequest,
        join_group_request::JoinGroupRequestProtocol,
        offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic},
        offset_fetch_request::{
            OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
        },
        sync_group_request::SyncGroupRequestAssignment,
        GroupId, HeartbeatRequest, JoinGroupRequest, ListGroupsRequest, OffsetCommitRequest,
        OffsetFetchRequest, SyncGroupRequest, TopicName,
    },
    protocol::StrBytes,
    ResponseError,
};
use tributary_broker::{
    cluster::{image::PartitionChange, store::MetadataChange},
    group::OFFSETS_TOPIC,
    testing::replicated::ReplicatedCluster,
};

/// Commits without membership (generation -1), as a consumer that assigns partitions itself.
const GROUP: &str = "failover-group";
/// A classic group with a member; the same shard, as there is one.
const MEMBERS: &str = "failover-members";
const TOPIC: &str = "orders";

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

/// One partition of `__consumer_offsets`, so every group lives in shard 0.
const PROPS: &[(&str, &str)] = &[
    ("offsets.topic.num.partitions", "1"),
    ("group.initial.rebalance.delay.ms", "0"),
    ("replica.fetch.wait.max.ms", "100"),
    ("replica.fetch.backoff.ms", "50"),
];

async fn cluster(extra: &[(&str, &str)]) -> ReplicatedCluster {
    let props: Vec<(&str, &str)> = PROPS.iter().chain(extra).copied().collect();
    let cluster = ReplicatedCluster::start(3, &props).await;
    cluster.create_topic(
        OFFSETS_TOPIC,
        &[vec![1, 2, 3]],
        &[("cleanup.policy", "compact")],
    );
    // Commits name a partition that exists, as Kafka requires.
    cluster.create_topic(TOPIC, &[vec![1, 2, 3]], &[]);
    cluster
}

/// The per-partition error of a v8 commit of `offset` (with `leader_epoch`) for `TOPIC`-0 by a group that
/// assigns its partitions itself.
async fn commit(cluster: &ReplicatedCluster, broker: i32, offset: i64, leader_epoch: i32) -> i16 {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s(TOPIC)))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(leader_epoch)
                .with_committed_metadata(Some(s("meta")))])]);
    let response = cluster.call(broker, request, 8).await;
    response.topics[0].partitions[0].error_code
}

/// A v8 OffsetFetch of `TOPIC`-0: Err(group error) or (offset, leader epoch, metadata).
async fn fetch_v8(cluster: &ReplicatedCluster, broker: i32) -> Result<(i64, i32, String), i16> {
    let request =
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(s(GROUP)))
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(TopicName(s(TOPIC)))
                .with_partition_indexes(vec![0])]))]);
    let response = cluster.call(broker, request, 8).await;
    let group = &response.groups[0];
    if group.error_code != 0 {
        return Err(group.error_code);
    }
    let partition = &group.topics[0].partitions[0];
    assert_eq!(
        partition.error_code, 0,
        "partition error without a group error"
    );
    Ok((
        partition.committed_offset,
        partition.committed_leader_epoch,
        partition
            .metadata
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
    ))
}

/// A v5 OffsetFetch (top-level error, leader epoch field): Err(error) or (offset, leader epoch).
async fn fetch_v5(cluster: &ReplicatedCluster, broker: i32) -> Result<(i64, i32), i16> {
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(s(TOPIC)))
            .with_partition_indexes(vec![0])]));
    let response = cluster.call(broker, request, 5).await;
    if response.error_code != 0 {
        return Err(response.error_code);
    }
    let partition = &response.topics[0].partitions[0];
    Ok((partition.committed_offset, partition.committed_leader_epoch))
}

async fn coordinator_of(cluster: &ReplicatedCluster, broker: i32) -> (i16, i32) {
    let response = cluster
        .call(
            broker,
            FindCoordinatorRequest::default().with_key(s(GROUP)),
            3,
        )
        .await;
    (response.error_code, response.node_id.0)
}

fn join_request(member_id: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(s(MEMBERS)))
        .with_session_timeout_ms(30_000)
        .with_rebalance_timeout_ms(30_000)
        .with_member_id(s(member_id))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(bytes::Bytes::from_static(b"subscription"))])
}

fn move_leadership(cluster: &ReplicatedCluster, leader: i32, isr: Vec<i32>) {
    cluster.fan_out().submit(&MetadataChange::ChangePartition {
        topic: OFFSETS_TOPIC.to_owned(),
        partition: 0,
        change: PartitionChange {
            leader: Some(leader),
            isr: Some(isr),
            ..PartitionChange::default()
        },
    });
}

const NOT_COORDINATOR: i16 = 16;
const LOAD_IN_PROGRESS: i16 = 14;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_moves_with_its_offsets_partition_and_keeps_its_offsets_and_epochs() {
    assert_eq!(ResponseError::NotCoordinator.code(), NOT_COORDINATOR);
    assert_eq!(
        ResponseError::CoordinatorLoadInProgress.code(),
        LOAD_IN_PROGRESS
    );
    // A long lag time: a paused follower stays in the ISR, so the new leader's high watermark waits for it.
    let mut cluster = cluster(&[
        ("replica.lag.time.max.ms", "30000"),
        ("offsets.commit.timeout.ms", "1000"),
    ])
    .await;
    assert_eq!(coordinator_of(&cluster, 3).await, (0, 1));
    assert_eq!(
        commit(&cluster, 2, 10, 3).await,
        NOT_COORDINATOR,
        "a follower of the offsets partition took a commit"
    );
    assert_eq!(commit(&cluster, 1, 42, 7).await, 0);
    assert_eq!(fetch_v8(&cluster, 1).await, Ok((42, 7, "meta".to_owned())));
    assert_eq!(
        fetch_v5(&cluster, 1).await,
        Ok((42, 7)),
        "OffsetFetch v5 must return the committed leader epoch"
    );

    // A classic member joins on broker 1, leads generation 1 and syncs (which stores the group); a second
    // one's join then parks until the first rejoins, which it never does.
    let first = cluster.call(1, join_request(""), 3).await;
    assert_eq!(first.error_code, 0);
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(s(MEMBERS)))
        .with_generation_id(first.generation_id)
        .with_member_id(first.member_id.clone())
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(first.member_id.clone())
            .with_assignment(bytes::Bytes::from_static(b"assignment"))]);
    assert_eq!(cluster.call(1, sync, 3).await.error_code, 0);
    let parked = {
        let broker = std::sync::Arc::clone(cluster.broker(1));
        let frame = tributary_broker::testing::request_frame(&join_request(""), 3, 99).unwrap();
        tokio::spawn(async move {
            let pending = tributary_broker::handlers::handle_frame(
                &broker,
                bytes::BytesMut::from(&frame[..]),
            )
            .await
            .unwrap();
            let bytes = pending.resolve().await.unwrap().unwrap().to_vec().unwrap();
            tributary_broker::testing::decode_response::<JoinGroupRequest>(
                bytes::Bytes::from(bytes).split_off(4),
                3,
                99,
            )
            .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !parked.is_finished(),
        "the second join did not wait for the rebalance"
    );

    // Broker 3 stops copying (and stays in the ISR), so a commit times out on broker 1: broker 2 has the
    // record, but nobody's high watermark covers it.
    cluster.pause_replication(3).await;
    assert_eq!(
        commit(&cluster, 1, 44, 9).await,
        ResponseError::RequestTimedOut.code()
    );
    assert_eq!(fetch_v8(&cluster, 1).await, Ok((42, 7, "meta".to_owned())));
    let log_end = |broker: i32| {
        cluster
            .broker(broker)
            .replicas
            .partition(OFFSETS_TOPIC, 0)
            .unwrap()
            .log_end_offset()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while log_end(2) < log_end(1) {
        assert!(
            Instant::now() < deadline,
            "broker 2 never copied the commit"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Broker 2 takes the lead (as the controller would elect it from the ISR).
    move_leadership(&cluster, 2, vec![2, 3]);

    let answer = tokio::time::timeout(Duration::from_secs(5), parked)
        .await
        .expect("the parked join was not answered when the shard moved")
        .unwrap();
    assert_eq!(answer.error_code, NOT_COORDINATOR, "parked join");
    assert_eq!(fetch_v8(&cluster, 1).await, Err(NOT_COORDINATOR));
    assert_eq!(commit(&cluster, 1, 50, 8).await, NOT_COORDINATOR);
    let heartbeat = HeartbeatRequest::default()
        .with_group_id(GroupId(s(MEMBERS)))
        .with_generation_id(first.generation_id)
        .with_member_id(first.member_id.clone());
    assert_eq!(
        cluster.call(1, heartbeat.clone(), 3).await.error_code,
        NOT_COORDINATOR
    );
    for broker in 1..=3 {
        assert_eq!(coordinator_of(&cluster, broker).await, (0, 2));
    }

    // Broker 2 cannot have loaded: the commit it holds is not committed until broker 3, in the ISR, has
    // it, and broker 3 does not fetch.
    assert_eq!(fetch_v8(&cluster, 2).await, Err(LOAD_IN_PROGRESS));
    assert_eq!(commit(&cluster, 2, 50, 8).await, LOAD_IN_PROGRESS);
    let listed = cluster.call(2, ListGroupsRequest::default(), 4).await;
    assert_eq!(
        listed.error_code, LOAD_IN_PROGRESS,
        "ListGroups while loading"
    );
    // Kafka answers heartbeats blindly while the group loads.
    assert_eq!(cluster.call(2, heartbeat.clone(), 3).await.error_code, 0);
    cluster.resume_replication(3);

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match fetch_v8(&cluster, 2).await {
            // The commit that timed out is in the new leader's log and now committed, Kafka's outcome
            // too (a timed-out commit may still take effect). Never the older 42, never nothing.
            Ok(found) => {
                assert_eq!(
                    found,
                    (44, 9, "meta".to_owned()),
                    "loaded offsets are stale"
                );
                break;
            }
            Err(code) => assert_eq!(code, LOAD_IN_PROGRESS, "neither loading nor loaded"),
        }
        assert!(Instant::now() < deadline, "broker 2 never loaded the shard");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fetch_v5(&cluster, 2).await, Ok((44, 9)));
    // The member of generation 1 was restored from its stored record and keeps its session; the second
    // member's join never reached the log, so there is no rebalance to report.
    assert_eq!(cluster.call(2, heartbeat, 3).await.error_code, 0);
    assert_eq!(commit(&cluster, 2, 43, 8).await, 0);
    assert_eq!(fetch_v8(&cluster, 2).await, Ok((43, 8, "meta".to_owned())));

    // And back: broker 1 reloads, with broker 2's commit.
    move_leadership(&cluster, 1, vec![1, 2, 3]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match fetch_v8(&cluster, 1).await {
            Ok(found) => {
                assert_eq!(
                    found,
                    (43, 8, "meta".to_owned()),
                    "reloaded offsets are stale"
                );
                break;
            }
            Err(code) => assert_eq!(code, LOAD_IN_PROGRESS, "neither loading nor loaded"),
        }
        assert!(
            Instant::now() < deadline,
            "broker 1 never reloaded the shard"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fetch_v8(&cluster, 2).await, Err(NOT_COORDINATOR));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_is_acknowledged_only_once_the_in_sync_replicas_have_it() {
    let mut cluster = cluster(&[
        ("replica.lag.time.max.ms", "30000"),
        ("offsets.commit.timeout.ms", "500"),
    ])
    .await;
    assert_eq!(commit(&cluster, 1, 5, 1).await, 0);
    cluster.pause_replication(2).await;
    cluster.pause_replication(3).await;
    assert_eq!(
        commit(&cluster, 1, 6, 1).await,
        ResponseError::RequestTimedOut.code(),
        "a commit the followers do not have was acknowledged"
    );
    assert_eq!(
        fetch_v8(&cluster, 1).await,
        Ok((5, 1, "meta".to_owned())),
        "an unreplicated commit is visible"
    );
    cluster.resume_replication(2);
    cluster.resume_replication(3);
    assert_eq!(commit(&cluster, 1, 7, 1).await, 0);
    assert_eq!(fetch_v8(&cluster, 1).await, Ok((7, 1, "meta".to_owned())));
}
