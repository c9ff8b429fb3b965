//! FindCoordinator (key 10).

use kafka_protocol::{
    messages::{
        metadata_request::MetadataRequestTopic, BrokerId, FindCoordinatorRequest, MetadataRequest,
    },
    ResponseError,
};
use tributary_broker::testing::TestBroker;

use crate::{code, group_broker, s, topic_name};

#[tokio::test]
async fn this_broker_coordinates_every_group_in_every_version() {
    let broker = group_broker()
        .node_id(5)
        .property("advertised.listeners", "PLAINTEXT://b5.test:9095")
        .start()
        .await;
    for version in 0..=3 {
        let response = broker
            .call(
                FindCoordinatorRequest::default().with_key(s("group-a")),
                version,
            )
            .await;
        assert_eq!(response.error_code, 0, "v{version}");
        assert_eq!(
            (response.node_id, &*response.host, response.port),
            (BrokerId(5), "b5.test", 9095),
            "v{version}"
        );
        if version >= 1 {
            assert_eq!(
                response.error_message, None,
                "v{version}: no message on success"
            );
        }
    }
    for version in 4..=6 {
        let request = FindCoordinatorRequest::default().with_coordinator_keys(vec![s("a"), s("b")]);
        let response = broker.call(request, version).await;
        let keys: Vec<&str> = response.coordinators.iter().map(|c| &*c.key).collect();
        assert_eq!(keys, vec!["a", "b"], "v{version}: one answer per key");
        for coordinator in &response.coordinators {
            assert_eq!(
                (
                    coordinator.error_code,
                    coordinator.node_id,
                    coordinator.port
                ),
                (0, BrokerId(5), 9095)
            );
        }
    }
}

#[tokio::test]
async fn the_first_lookup_creates_the_offsets_topic() {
    let broker = group_broker().start().await;
    let metadata = || {
        MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(topic_name("__consumer_offsets")))
            ]))
            .with_allow_auto_topic_creation(false)
    };
    let before = broker.call(metadata(), 12).await;
    assert_eq!(
        before.topics[0].error_code,
        code(ResponseError::UnknownTopicOrPartition)
    );
    broker
        .call(FindCoordinatorRequest::default().with_key(s("g")), 3)
        .await;
    let after = broker.call(metadata(), 12).await;
    assert_eq!(
        after.topics[0].error_code, 0,
        "__consumer_offsets exists after FindCoordinator"
    );
}

#[tokio::test]
async fn transaction_coordinators_are_not_available() {
    let broker = TestBroker::start().await;
    let v3 = broker
        .call(
            FindCoordinatorRequest::default()
                .with_key(s("tx"))
                .with_key_type(1),
            3,
        )
        .await;
    assert_eq!(v3.error_code, code(ResponseError::CoordinatorNotAvailable));
    assert!(v3.error_message.is_some());
    assert_eq!((v3.node_id, v3.port), (BrokerId(-1), -1));
    let v4 = broker
        .call(
            FindCoordinatorRequest::default()
                .with_coordinator_keys(vec![s("tx")])
                .with_key_type(1),
            4,
        )
        .await;
    assert_eq!(
        v4.coordinators[0].error_code,
        code(ResponseError::CoordinatorNotAvailable)
    );
    assert_eq!(v4.coordinators[0].node_id, BrokerId(-1));
}
