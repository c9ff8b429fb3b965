//! DescribeTopicPartitions (key 75, v0).

use kafka_protocol::{
    messages::{
        describe_topic_partitions_request::{Cursor, TopicRequest},
        BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse,
    },
    ResponseError,
};
use tributary_broker::{
    cluster::store::MetadataChange,
    testing::{replicated::ReplicatedCluster, TestBroker},
};
use uuid::Uuid;

use crate::{code, create_topic, topic_name};

/// What Kafka reports as a topic's authorized operations without an authorizer: READ, WRITE, CREATE,
/// DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS and ALTER_CONFIGS as bits 3-8, 10 and 11.
const ALL_TOPIC_OPERATIONS: i32 = 3576;

fn request(topics: &[&str]) -> DescribeTopicPartitionsRequest {
    DescribeTopicPartitionsRequest::default().with_topics(
        topics
            .iter()
            .map(|t| TopicRequest::default().with_name(topic_name(t)))
            .collect(),
    )
}

fn name_of(
    topic: &kafka_protocol::messages::describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic,
) -> String {
    topic
        .name
        .as_ref()
        .map(|n| n.0.to_string())
        .unwrap_or_default()
}

/// (topic, partition) of every partition in a response, in order.
fn listed(response: &DescribeTopicPartitionsResponse) -> Vec<(String, i32)> {
    response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (name_of(t), p.partition_index))
        })
        .collect()
}

fn cursor_of(response: &DescribeTopicPartitionsResponse) -> Option<(String, i32)> {
    response
        .next_cursor
        .as_ref()
        .map(|c| (c.topic_name.0.to_string(), c.partition_index))
}

#[tokio::test]
async fn named_topics_come_back_in_name_order_with_their_partitions_and_errors() {
    let broker = TestBroker::builder().node_id(3).start().await;
    let orders = create_topic(&broker, "orders", 2).await;
    let audit = create_topic(&broker, "audit", 1).await;
    let response = broker
        .call(request(&["orders", "missing", "audit", "bad/name"]), 0)
        .await;
    let names: Vec<String> = response.topics.iter().map(name_of).collect();
    assert_eq!(names, ["audit", "bad/name", "missing", "orders"]);
    let by_name = |name: &str| response.topics.iter().find(|t| name_of(t) == name).unwrap();
    assert_eq!(
        by_name("bad/name").error_code,
        code(ResponseError::InvalidTopicException)
    );
    let missing = by_name("missing");
    assert_eq!(
        missing.error_code,
        code(ResponseError::UnknownTopicOrPartition)
    );
    assert_eq!(missing.topic_id, Uuid::nil());
    assert!(missing.partitions.is_empty());
    for (name, id, count) in [("audit", audit, 1), ("orders", orders, 2)] {
        let topic = by_name(name);
        assert_eq!(topic.error_code, 0, "{name}");
        assert_eq!(topic.topic_id, id, "{name}: the id CreateTopics returned");
        assert!(!topic.is_internal);
        assert_eq!(topic.topic_authorized_operations, ALL_TOPIC_OPERATIONS);
        assert_eq!(topic.partitions.len(), count, "{name}");
        for (index, partition) in topic.partitions.iter().enumerate() {
            assert_eq!(partition.error_code, 0);
            assert_eq!(partition.partition_index, index as i32);
            assert_eq!(partition.leader_id, BrokerId(3));
            assert_eq!(partition.leader_epoch, 0);
            assert_eq!(partition.replica_nodes, [BrokerId(3)]);
            assert_eq!(partition.isr_nodes, [BrokerId(3)]);
            assert!(partition.offline_replicas.is_empty());
            assert_eq!(
                partition.eligible_leader_replicas,
                Some(Vec::new()),
                "no ELR"
            );
            assert_eq!(partition.last_known_elr, Some(Vec::new()));
        }
    }
    assert_eq!(response.next_cursor, None, "everything fit");
}

#[tokio::test]
async fn pages_cover_every_partition_once_and_the_cursor_says_where_the_next_starts() {
    let broker = TestBroker::start().await;
    for (name, partitions) in [("beta", 2), ("alpha", 3), ("gamma", 1)] {
        create_topic(&broker, name, partitions).await;
    }
    let all: Vec<(String, i32)> = [("alpha", 3), ("beta", 2), ("gamma", 1)]
        .iter()
        .flat_map(|(t, n)| (0..*n).map(|p| ((*t).to_owned(), p)))
        .collect();
    let everything = broker.call(request(&[]), 0).await;
    assert_eq!(listed(&everything), all, "no topics named: every topic");

    for limit in 1..=7 {
        let mut seen = Vec::new();
        let mut cursor = None;
        for page in 0.. {
            assert!(page <= 6, "limit {limit}: more pages than partitions");
            let response = broker
                .call(
                    request(&[])
                        .with_response_partition_limit(limit)
                        .with_cursor(cursor.clone()),
                    0,
                )
                .await;
            let partitions = listed(&response);
            assert!(
                partitions.len() <= limit as usize,
                "limit {limit}: page of {partitions:?}"
            );
            seen.extend(partitions);
            match cursor_of(&response) {
                Some((topic, partition)) => {
                    cursor = Some(
                        Cursor::default()
                            .with_topic_name(topic_name(&topic))
                            .with_partition_index(partition),
                    )
                }
                None => break,
            }
        }
        assert_eq!(seen, all, "limit {limit}");
    }

    // Kafka's two cursor shapes: inside a topic that did not fit, and at partition 0 of the next topic once
    // the limit is used up exactly.
    let page = broker
        .call(request(&[]).with_response_partition_limit(2), 0)
        .await;
    assert_eq!(cursor_of(&page), Some(("alpha".to_owned(), 2)));
    let page = broker
        .call(request(&[]).with_response_partition_limit(3), 0)
        .await;
    assert_eq!(listed(&page).len(), 3);
    assert_eq!(cursor_of(&page), Some(("beta".to_owned(), 0)));
}

#[tokio::test]
async fn a_cursor_on_a_topic_that_was_not_named_refuses_the_request() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "orders", 1).await;
    let response = broker
        .call(
            request(&["orders"]).with_cursor(Some(
                Cursor::default()
                    .with_topic_name(topic_name("audit"))
                    .with_partition_index(0),
            )),
            0,
        )
        .await;
    assert_eq!(response.topics.len(), 1);
    assert_eq!(
        response.topics[0].error_code,
        code(ResponseError::InvalidRequest)
    );
    assert!(response.topics[0].partitions.is_empty());
}

#[tokio::test]
async fn a_fenced_replica_is_offline_and_a_fenced_leader_is_not_reported() {
    let cluster = ReplicatedCluster::start(2, &[]).await;
    cluster.create_topic("orders", &[vec![1, 2], vec![2, 1]], &[]);
    cluster.fan_out().submit(&MetadataChange::FenceBroker {
        id: 2,
        fenced: true,
    });
    let response = cluster.call(1, request(&["orders"]), 0).await;
    let partitions = &response.topics[0].partitions;
    assert_eq!(partitions[0].leader_id, BrokerId(1));
    assert_eq!(
        partitions[1].leader_id,
        BrokerId(-1),
        "the fenced leader of partition 1"
    );
    assert_eq!(partitions[1].leader_epoch, 0);
    for partition in partitions {
        assert_eq!(partition.offline_replicas, [BrokerId(2)]);
        assert_eq!(
            partition.replica_nodes.len(),
            2,
            "replicas are not filtered"
        );
    }
}
