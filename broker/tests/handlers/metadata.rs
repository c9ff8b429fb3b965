//! Metadata (key 3).

use kafka_protocol::{
    messages::{
        metadata_request::MetadataRequestTopic, BrokerId, FindCoordinatorRequest, MetadataRequest,
        MetadataResponse,
    },
    ResponseError,
};
use tributary_broker::testing::{TestBroker, TestCluster};
use uuid::Uuid;

use crate::{code, create_topic, s, topic_name};

fn request(topics: &[&str], allow_auto_create: bool) -> MetadataRequest {
    MetadataRequest::default()
        .with_topics(Some(
            topics
                .iter()
                .map(|t| MetadataRequestTopic::default().with_name(Some(topic_name(t))))
                .collect(),
        ))
        .with_allow_auto_topic_creation(allow_auto_create)
}

fn topic_names(response: &MetadataResponse) -> Vec<String> {
    let mut names: Vec<String> = response
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn describes_the_broker_and_every_partition_it_leads() {
    let broker = TestBroker::builder()
        .node_id(7)
        .property("advertised.listeners", "PLAINTEXT://broker-7.test:19092")
        .start()
        .await;
    create_topic(&broker, "orders", 3).await;
    let response = broker.call(request(&["orders"], false), 12).await;
    assert_eq!(response.brokers.len(), 1);
    let me = &response.brokers[0];
    assert_eq!(
        (me.node_id, &*me.host, me.port),
        (BrokerId(7), "broker-7.test", 19092),
        "clients connect to the advertised listener"
    );
    assert_eq!(response.controller_id, BrokerId(7));
    assert_eq!(
        response.cluster_id.as_ref().map(|c| c.len()),
        Some(22),
        "a Kafka-style cluster id"
    );
    let topic = &response.topics[0];
    assert_eq!(topic.error_code, 0);
    assert!(!topic.is_internal);
    assert_eq!(topic.partitions.len(), 3);
    for (index, partition) in topic.partitions.iter().enumerate() {
        assert_eq!(partition.partition_index, index as i32);
        assert_eq!(partition.leader_id, BrokerId(7), "partition {index} leader");
        assert_eq!(
            partition.leader_epoch, 0,
            "partition {index} leader epoch (v7+)"
        );
        assert_eq!(partition.replica_nodes, vec![BrokerId(7)]);
        assert_eq!(partition.isr_nodes, vec![BrokerId(7)]);
    }
}

#[tokio::test]
async fn topic_ids_are_reported_from_v10_and_can_be_looked_up_from_v12() {
    let broker = TestBroker::start().await;
    let id = create_topic(&broker, "orders", 1).await;
    assert_ne!(id, Uuid::nil());
    let v9 = broker.call(request(&["orders"], false), 9).await;
    assert_eq!(v9.topics[0].topic_id, Uuid::nil(), "v9 has no topic ids");
    for version in [10, 11, 12] {
        let response = broker.call(request(&["orders"], false), version).await;
        assert_eq!(response.topics[0].topic_id, id, "v{version} topic id");
    }
    let by_id = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default()
            .with_name(None)
            .with_topic_id(id)]))
        .with_allow_auto_topic_creation(false);
    let response = broker.call(by_id, 12).await;
    assert_eq!(
        response.topics[0].name.as_ref().map(|n| n.0.to_string()),
        Some("orders".to_owned()),
        "a topic looked up by id is answered with its name"
    );
    let unknown = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default()
            .with_name(None)
            .with_topic_id(Uuid::new_v4())]))
        .with_allow_auto_topic_creation(false);
    let response = broker.call(unknown, 12).await;
    assert_eq!(
        response.topics[0].error_code,
        code(ResponseError::UnknownTopicId)
    );
}

#[tokio::test]
async fn null_means_all_topics_from_v1_and_an_empty_list_means_all_only_in_v0() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "a", 1).await;
    create_topic(&broker, "b", 1).await;
    let all = broker
        .call(MetadataRequest::default().with_topics(None), 12)
        .await;
    assert_eq!(topic_names(&all), vec!["a", "b"]);
    let v0 = broker
        .call(MetadataRequest::default().with_topics(Some(Vec::new())), 0)
        .await;
    assert_eq!(
        topic_names(&v0),
        vec!["a", "b"],
        "v0: an empty list asks for every topic"
    );
    let v1 = broker
        .call(MetadataRequest::default().with_topics(Some(Vec::new())), 1)
        .await;
    assert!(v1.topics.is_empty(), "v1+: an empty list asks for no topic");
}

#[tokio::test]
async fn missing_topics_are_created_only_when_the_request_and_the_broker_allow_it() {
    let broker = TestBroker::builder()
        .property("num.partitions", "2")
        .start()
        .await;
    let refused = broker.call(request(&["not-yet"], false), 12).await;
    assert_eq!(
        refused.topics[0].error_code,
        code(ResponseError::UnknownTopicOrPartition),
        "allow_auto_topic_creation=false"
    );
    let created = broker.call(request(&["not-yet"], true), 12).await;
    assert_eq!(created.topics[0].error_code, 0);
    assert_eq!(created.topics[0].partitions.len(), 2, "num.partitions");
    assert_ne!(created.topics[0].topic_id, Uuid::nil());
    // v0-3 have no allow flag and always allowed it.
    let old = broker
        .call(
            MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(topic_name("old-client")))
            ])),
            3,
        )
        .await;
    assert_eq!(old.topics[0].error_code, 0, "v3 auto-creates");

    let strict = TestBroker::builder()
        .property("auto.create.topics.enable", "false")
        .start()
        .await;
    let response = strict.call(request(&["nope"], true), 12).await;
    assert_eq!(
        response.topics[0].error_code,
        code(ResponseError::UnknownTopicOrPartition),
        "auto.create.topics.enable=false wins over the request"
    );
    let all = strict
        .call(MetadataRequest::default().with_topics(None), 12)
        .await;
    assert!(all.topics.is_empty(), "nothing was created");
}

#[tokio::test]
async fn invalid_topic_names_are_refused_not_created() {
    let broker = TestBroker::start().await;
    let response = broker.call(request(&["bad name", ".."], true), 12).await;
    for topic in &response.topics {
        assert_eq!(
            topic.error_code,
            code(ResponseError::InvalidTopicException),
            "{:?}",
            topic.name
        );
    }
}

#[tokio::test]
async fn the_offsets_topic_is_internal() {
    let broker = TestBroker::builder()
        .property("offsets.topic.num.partitions", "2")
        .start()
        .await;
    broker
        .call(FindCoordinatorRequest::default().with_key(s("g")), 3)
        .await;
    let response = broker
        .call(request(&["__consumer_offsets"], false), 12)
        .await;
    assert_eq!(response.topics[0].error_code, 0);
    assert!(
        response.topics[0].is_internal,
        "__consumer_offsets is internal"
    );
    assert_eq!(
        response.topics[0].partitions.len(),
        2,
        "offsets.topic.num.partitions"
    );
}

#[tokio::test]
async fn brokers_of_a_test_cluster_answer_with_their_own_node_id() {
    let cluster = TestCluster::start(3).await;
    assert_eq!(cluster.node_ids(), vec![1, 2, 3]);
    for node_id in cluster.node_ids() {
        let response = cluster
            .broker(node_id)
            .call(MetadataRequest::default().with_topics(None), 12)
            .await;
        assert_eq!(response.brokers[0].node_id, BrokerId(node_id));
        assert_eq!(response.controller_id, BrokerId(node_id));
    }
}

#[tokio::test]
async fn authorized_operations_are_reported_only_when_asked_for() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "orders", 1).await;
    let plain = broker.call(request(&["orders"], false), 10).await;
    assert_eq!(plain.topics[0].topic_authorized_operations, i32::MIN);
    assert_eq!(plain.cluster_authorized_operations, i32::MIN);
    let asked = broker
        .call(
            request(&["orders"], false)
                .with_include_topic_authorized_operations(true)
                .with_include_cluster_authorized_operations(true),
            10,
        )
        .await;
    // No authorizer: everything the resource type supports, the same bits DescribeTopicPartitions reports.
    assert_eq!(asked.topics[0].topic_authorized_operations, 3576);
    assert_eq!(asked.cluster_authorized_operations, 8096);
}
