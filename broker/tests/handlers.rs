//! Handler tests for every API the broker implements, one module per API, all through the in-process
//! `testing` fixture: real request frames in, real responses out, decoded with kafka-protocol. They pin the
//! behaviour a Kafka client relies on (happy paths, per-topic and per-partition error codes, the fields that
//! differ between versions), so a refactor of the internals can be checked against them.
//!
//! Tests reach the broker only through the fixture's API and kafka-protocol message types. A test marked
//! `#[ignore = "bug: ..."]` describes what Apache Kafka answers where this broker answers differently today.
#![allow(clippy::unwrap_used)]

// An inline module so that `mod produce;` resolves to tests/handlers/produce.rs without #[path].
mod handlers {
    mod alter_configs;
    mod api_versions;
    mod client_quotas;
    mod create_partitions;
    mod create_topics;
    mod delete_groups;
    mod delete_topics;
    mod describe_cluster;
    mod describe_configs;
    mod describe_groups;
    mod describe_topic_partitions;
    mod elect_leaders;
    mod fetch;
    mod find_coordinator;
    mod heartbeat;
    mod incremental_alter_configs;
    mod init_producer_id;
    mod join_group;
    mod leave_group;
    mod list_groups;
    mod list_offsets;
    mod metadata;
    mod offset_commit;
    mod offset_delete;
    mod offset_fetch;
    mod produce;
    mod sync_group;
}

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::{
    messages::{
        create_topics_request::{CreatableTopic, CreatableTopicConfig},
        fetch_request::{FetchPartition, FetchTopic},
        fetch_response::PartitionData,
        join_group_request::JoinGroupRequestProtocol,
        list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
        list_offsets_response::ListOffsetsPartitionResponse,
        offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic},
        produce_request::{PartitionProduceData, TopicProduceData},
        produce_response::PartitionProduceResponse,
        sync_group_request::SyncGroupRequestAssignment,
        ConsumerProtocolSubscription, CreateTopicsRequest, DescribeGroupsRequest, FetchRequest,
        GroupId, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, ListOffsetsRequest,
        OffsetCommitRequest, OffsetCommitResponse, ProduceRequest, SyncGroupRequest,
        SyncGroupResponse, TopicName,
    },
    protocol::{Encodable, StrBytes},
    records::{Record, RecordBatchDecoder},
    ResponseError,
};
use tributary_broker::{
    log::builder::BatchBuilder,
    testing::{TestBroker, TestBrokerBuilder},
};
use uuid::Uuid;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

fn topic_name(name: &str) -> TopicName {
    TopicName(s(name))
}

fn group_id(name: &str) -> GroupId {
    GroupId(s(name))
}

fn code(error: ResponseError) -> i16 {
    error.code()
}

/// A test must not wait forever for a condition that should come true on its own.
async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn create_topic_with(
    broker: &TestBroker,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> Uuid {
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(5_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(partitions)
            .with_replication_factor(1)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(s(k))
                            .with_value(Some(s(v)))
                    })
                    .collect(),
            )]);
    let response = broker.call(request, 7).await;
    let result = &response.topics[0];
    assert_eq!(
        result.error_code, 0,
        "creating topic {name}: {:?}",
        result.error_message
    );
    result.topic_id
}

async fn create_topic(broker: &TestBroker, name: &str, partitions: i32) -> Uuid {
    create_topic_with(broker, name, partitions, &[]).await
}

/// One uncompressed batch whose records have keys `k0`, `k1`, ... and the given values.
fn batch(values: &[&str]) -> Bytes {
    values
        .iter()
        .enumerate()
        .fold(BatchBuilder::new(), |b, (i, v)| {
            b.record(
                Some(Bytes::from(format!("k{i}"))),
                Some(Bytes::from(v.to_string())),
            )
        })
        .build()
        .unwrap()
}

fn produce_request(topic: &str, partition: i32, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
}

async fn produce(
    broker: &TestBroker,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> PartitionProduceResponse {
    let response = broker
        .call(produce_request(topic, partition, records), 9)
        .await;
    response.responses[0].partition_responses[0].clone()
}

fn fetch_request(topic: &str, partition: i32, offset: i64) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])])
}

async fn fetch(broker: &TestBroker, topic: &str, partition: i32, offset: i64) -> PartitionData {
    let response = broker
        .call(fetch_request(topic, partition, offset), 12)
        .await;
    assert_eq!(response.error_code, 0, "fetch failed as a whole");
    response.responses[0].partitions[0].clone()
}

fn records_of(data: &PartitionData) -> Vec<Record> {
    let mut bytes = data.records.clone().unwrap_or_default();
    RecordBatchDecoder::decode_all(&mut bytes)
        .unwrap()
        .into_iter()
        .flat_map(|set| set.records)
        .collect()
}

fn values_of(data: &PartitionData) -> Vec<String> {
    records_of(data)
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

async fn list_offset(
    broker: &TestBroker,
    topic: &str,
    partition: i32,
    timestamp: i64,
    version: i16,
) -> ListOffsetsPartitionResponse {
    let request = ListOffsetsRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(timestamp)])]);
    broker.call(request, version).await.topics[0].partitions[0].clone()
}

/// A broker for group tests: rebalances complete as soon as every member joined, and `__consumer_offsets` has
/// one partition so it is created quickly.
fn group_broker() -> TestBrokerBuilder {
    TestBroker::builder()
        .group_initial_rebalance_delay_ms(0)
        .property("offsets.topic.num.partitions", "1")
}

/// Consumer protocol subscription metadata, as a Java consumer sends it in JoinGroup.
fn subscription(topics: &[&str]) -> Bytes {
    let version: i16 = 1;
    let subscription =
        ConsumerProtocolSubscription::default().with_topics(topics.iter().map(|t| s(t)).collect());
    let mut buf = bytes::BytesMut::new();
    buf.extend_from_slice(&version.to_be_bytes());
    subscription.encode(&mut buf, version).unwrap();
    buf.freeze()
}

fn join_request(group: &str, member_id: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(group_id(group))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(s(member_id))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(subscription(&["events"]))])
}

/// Joins a new member the way a v4+ client does: MEMBER_ID_REQUIRED first, then again with that id. Returns
/// the second answer (the group's first rebalance completes at once when this member is alone).
async fn join_new_member(broker: &TestBroker, group: &str) -> JoinGroupResponse {
    let first = broker.call(join_request(group, ""), 9).await;
    assert_eq!(
        first.error_code,
        code(ResponseError::MemberIdRequired),
        "a v4+ join without member id must be asked to come back with one"
    );
    broker.call(join_request(group, &first.member_id), 9).await
}

async fn sync(
    broker: &TestBroker,
    group: &str,
    generation: i32,
    member_id: &str,
    assignments: &[(&str, &[u8])],
) -> SyncGroupResponse {
    let request = SyncGroupRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id(generation)
        .with_member_id(s(member_id))
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s("range")))
        .with_assignments(
            assignments
                .iter()
                .map(|(member, assignment)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(s(member))
                        .with_assignment(Bytes::copy_from_slice(assignment))
                })
                .collect(),
        );
    broker.call(request, 5).await
}

/// A group with one member in Stable state: (member id, generation).
async fn stable_group(broker: &TestBroker, group: &str) -> (String, i32) {
    let joined = join_new_member(broker, group).await;
    assert_eq!(joined.error_code, 0, "join of the only member");
    let member = joined.member_id.to_string();
    let synced = sync(
        broker,
        group,
        joined.generation_id,
        &member,
        &[(&member, b"assignment")],
    )
    .await;
    assert_eq!(synced.error_code, 0, "sync of the only member");
    (member, joined.generation_id)
}

async fn group_state(broker: &TestBroker, group: &str) -> String {
    let response = broker
        .call(
            DescribeGroupsRequest::default().with_groups(vec![group_id(group)]),
            5,
        )
        .await;
    response.groups[0].group_state.to_string()
}

fn heartbeat_request(group: &str, generation: i32, member_id: &str) -> HeartbeatRequest {
    HeartbeatRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id(generation)
        .with_member_id(s(member_id))
}

fn commit_request(
    group: &str,
    generation: i32,
    member_id: &str,
    offsets: &[(&str, i32, i64)],
) -> OffsetCommitRequest {
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for (topic, partition, offset) in offsets {
        let entry = OffsetCommitRequestPartition::default()
            .with_partition_index(*partition)
            .with_committed_offset(*offset)
            .with_committed_leader_epoch(3)
            .with_committed_metadata(Some(s("meta")));
        match topics.iter_mut().find(|t| &*t.name.0 == *topic) {
            Some(t) => t.partitions.push(entry),
            None => topics.push(
                OffsetCommitRequestTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(vec![entry]),
            ),
        }
    }
    OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member_id))
        .with_topics(topics)
}

/// Commits offsets as a "simple" consumer (no group membership, generation -1) and checks they were accepted.
async fn commit_simple(broker: &TestBroker, group: &str, offsets: &[(&str, i32, i64)]) {
    let response: OffsetCommitResponse =
        broker.call(commit_request(group, -1, "", offsets), 8).await;
    for topic in &response.topics {
        for partition in &topic.partitions {
            assert_eq!(
                partition.error_code, 0,
                "commit of {}-{} refused",
                &*topic.name.0, partition.partition_index
            );
        }
    }
}
