//! Replication across three brokers over real TCP on 127.0.0.1 (see `testing::replicated`): acks=all
//! waits for the followers, followers hold the leader's batches byte for byte, consumers never see data
//! above the high watermark, a lagging follower leaves the ISR and rejoins, min.insync.replicas refuses
//! writes, and a new leader makes the old one truncate its divergent tail.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::{
    messages::{
        fetch_request::{FetchPartition, FetchTopic},
        produce_request::{PartitionProduceData, TopicProduceData},
        produce_response::PartitionProduceResponse,
        FetchRequest, MetadataRequest, OffsetForLeaderEpochRequest, ProduceRequest, TopicName,
    },
    protocol::StrBytes,
    ResponseError,
};
use tributary_broker::{
    cluster::{image::PartitionChange, store::MetadataChange},
    log::builder::BatchBuilder,
    testing::replicated::ReplicatedCluster,
};

const TOPIC: &str = "replicated";

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

fn batch(value: &str) -> Bytes {
    BatchBuilder::new()
        .record(None, Some(Bytes::from(value.to_owned())))
        .build()
        .unwrap()
}

async fn produce(
    cluster: &ReplicatedCluster,
    broker: i32,
    acks: i16,
    value: &str,
) -> PartitionProduceResponse {
    let request = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(TOPIC))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch(value)))])]);
    let response = cluster.call(broker, request, 11).await;
    response.responses[0].partition_responses[0].clone()
}

/// (error, high watermark, values) of a consumer fetch from `offset`.
async fn consume(cluster: &ReplicatedCluster, broker: i32, offset: i64) -> (i16, i64, Vec<String>) {
    let request = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(TOPIC))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])]);
    let response = cluster.call(broker, request, 12).await;
    let data = &response.responses[0].partitions[0];
    let mut bytes = data.records.clone().unwrap_or_default();
    let values = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut bytes)
        .unwrap()
        .into_iter()
        .flat_map(|set| set.records)
        .map(|r| String::from_utf8(r.value.unwrap_or_default().to_vec()).unwrap())
        .collect();
    (data.error_code, data.high_watermark, values)
}

async fn isr(cluster: &ReplicatedCluster, broker: i32) -> Vec<i32> {
    let request = MetadataRequest::default().with_topics(None);
    let response = cluster.call(broker, request, 12).await;
    let topic = response
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(TOPIC))
        .unwrap();
    topic.partitions[0].isr_nodes.iter().map(|b| b.0).collect()
}

/// Polls `check` every 50 ms for up to 20 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn log_bytes(cluster: &ReplicatedCluster, broker: i32) -> Bytes {
    let partition = cluster.broker(broker).replicas.partition(TOPIC, 0).unwrap();
    let end = partition.log_end_offset();
    if end == partition.log_start_offset() {
        return Bytes::new();
    }
    partition.read(0, usize::MAX).unwrap().read_bytes().unwrap()
}

const FAST: &[(&str, &str)] = &[
    ("replica.lag.time.max.ms", "1000"),
    ("replica.fetch.wait.max.ms", "100"),
    ("replica.fetch.backoff.ms", "50"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_waits_for_the_isr_which_shrinks_and_expands_with_follower_progress() {
    let mut cluster = ReplicatedCluster::start(3, FAST).await;
    cluster.create_topic(TOPIC, &[vec![1, 2, 3]], &[]);
    let written = produce(&cluster, 1, -1, "a").await;
    assert_eq!((written.error_code, written.base_offset), (0, 0));
    let (error, hw, values) = consume(&cluster, 1, 0).await;
    assert_eq!((error, hw, values), (0, 1, vec!["a".to_owned()]));
    for follower in [2, 3] {
        assert_eq!(
            log_bytes(&cluster, follower),
            log_bytes(&cluster, 1),
            "broker {follower} holds the leader's batch byte for byte"
        );
    }
    // A follower refuses produce and points at the leader (KIP-951).
    let refused = produce(&cluster, 2, -1, "x").await;
    assert_eq!(
        refused.error_code,
        ResponseError::NotLeaderOrFollower.code()
    );
    assert_eq!(refused.current_leader.leader_id.0, 1);

    // 3 stops fetching: acks=all waits until the leader has shrunk it out of the ISR.
    cluster.pause_replication(3).await;
    let started = Instant::now();
    let written = produce(&cluster, 1, -1, "b").await;
    assert_eq!(written.error_code, 0, "acknowledged once the ISR is [1, 2]");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "acknowledged before the lagging follower left the ISR"
    );
    // The leader's partition takes the new ISR before its image is published (the publisher hands a change
    // to the replica manager first), so the acknowledgement can beat the Metadata answer by a moment.
    eventually("the leader's image has the ISR change", || async {
        isr(&cluster, 1).await == [1, 2]
    })
    .await;
    // The fixture fans the change out to the other brokers right after the leader applied it.
    eventually("every broker got the ISR change", || async {
        isr(&cluster, 3).await == [1, 2]
    })
    .await;
    // 3 catches up and rejoins.
    cluster.resume_replication(3);
    eventually("3 rejoins the ISR", || async {
        isr(&cluster, 1).await == [1, 2, 3]
    })
    .await;
    assert_eq!(log_bytes(&cluster, 3), log_bytes(&cluster, 1));

    // min.insync.replicas=2 with only the leader left: NOT_ENOUGH_REPLICAS before any append.
    cluster.fan_out().submit(&MetadataChange::SetTopicConfigs {
        name: TOPIC.to_owned(),
        configs: [("min.insync.replicas".to_owned(), "2".to_owned())].into(),
    });
    cluster.pause_replication(2).await;
    cluster.pause_replication(3).await;
    eventually("the ISR shrinks to the leader", || async {
        isr(&cluster, 1).await == [1]
    })
    .await;
    let end_before = cluster
        .broker(1)
        .replicas
        .partition(TOPIC, 0)
        .unwrap()
        .log_end_offset();
    let refused = produce(&cluster, 1, -1, "c").await;
    assert_eq!(refused.error_code, ResponseError::NotEnoughReplicas.code());
    assert_eq!(
        cluster
            .broker(1)
            .replicas
            .partition(TOPIC, 0)
            .unwrap()
            .log_end_offset(),
        end_before,
        "nothing was appended"
    );
    // acks=1 is still taken, but consumers do not see it: the high watermark cannot move below min ISR.
    assert_eq!(produce(&cluster, 1, 1, "d").await.error_code, 0);
    let (_, hw, values) = consume(&cluster, 1, 0).await;
    assert_eq!((hw, values.len()), (2, 2), "d is above the high watermark");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_makes_the_old_one_truncate_its_divergent_tail() {
    let mut cluster = ReplicatedCluster::start(
        3,
        &[
            ("replica.lag.time.max.ms", "30000"),
            ("replica.fetch.wait.max.ms", "100"),
            ("replica.fetch.backoff.ms", "50"),
        ],
    )
    .await;
    cluster.create_topic(TOPIC, &[vec![1, 2, 3]], &[]);
    assert_eq!(produce(&cluster, 1, -1, "m1").await.error_code, 0);
    cluster.pause_replication(2).await;
    cluster.pause_replication(3).await;
    // Broker 1 takes m2 with acks=1; no follower has it, so consumers do not see it.
    assert_eq!(produce(&cluster, 1, 1, "m2").await.error_code, 0);
    let (error, hw, values) = consume(&cluster, 1, 0).await;
    assert_eq!((error, hw, values), (0, 1, vec!["m1".to_owned()]));
    // Broker 2 becomes leader with a new epoch (the controller would elect it from the ISR).
    cluster.fan_out().submit(&MetadataChange::ChangePartition {
        topic: TOPIC.to_owned(),
        partition: 0,
        change: PartitionChange {
            leader: Some(2),
            isr: Some(vec![2, 3]),
            ..PartitionChange::default()
        },
    });
    cluster.resume_replication(2);
    cluster.resume_replication(3);
    assert_eq!(produce(&cluster, 2, -1, "m3").await.error_code, 0);
    let old_leader = cluster.broker(1).replicas.partition(TOPIC, 0).unwrap();
    eventually("broker 1 truncates m2 and copies m3", || async {
        log_bytes(&cluster, 1) == log_bytes(&cluster, 2)
    })
    .await;
    assert_eq!(old_leader.log_end_offset(), 2);
    let (_, _, values) = consume(&cluster, 2, 0).await;
    assert_eq!(values, ["m1", "m3"]);
    // The epoch cache agrees too, and OffsetForLeaderEpoch answers from it (epoch 0 ends where 1 starts).
    // A consumer's replica id (-1); the default, -2, is Kafka's debugging id that may read a follower.
    let request = OffsetForLeaderEpochRequest::default().with_replica_id((-1).into()).with_topics(vec![
        kafka_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
            .with_topic(name(TOPIC))
            .with_partitions(vec![
                kafka_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(1)
                    .with_leader_epoch(0),
            ]),
    ]);
    let answer = cluster.call(2, request.clone(), 4).await;
    let end = &answer.topics[0].partitions[0];
    assert_eq!(
        (end.error_code, end.leader_epoch, end.end_offset),
        (0, 0, 1)
    );
    let answer = cluster.call(1, request, 4).await;
    assert_eq!(
        answer.topics[0].partitions[0].error_code,
        ResponseError::NotLeaderOrFollower.code()
    );
    assert_eq!(
        old_leader.epoch_entries(),
        cluster
            .broker(2)
            .replicas
            .partition(TOPIC, 0)
            .unwrap()
            .epoch_entries()
    );
}
