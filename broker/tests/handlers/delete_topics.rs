//! DeleteTopics (key 20).

use kafka_protocol::{
    messages::{delete_topics_request::DeleteTopicState, DeleteTopicsRequest},
    ResponseError,
};
use tributary_broker::testing::TestBroker;
use uuid::Uuid;

use crate::{batch, code, create_topic, fetch, produce, topic_name};

#[tokio::test]
async fn deletes_by_name_and_a_recreated_topic_starts_empty() {
    let broker = TestBroker::start().await;
    let old_id = create_topic(&broker, "doomed", 1).await;
    assert_eq!(
        produce(&broker, "doomed", 0, batch(&["a", "b"]))
            .await
            .error_code,
        0
    );
    let response = broker
        .call(
            DeleteTopicsRequest::default().with_topic_names(vec![topic_name("doomed")]),
            5,
        )
        .await;
    assert_eq!(response.responses[0].error_code, 0);
    let after = produce(&broker, "doomed", 0, batch(&["c"])).await;
    assert_eq!(
        after.error_code,
        code(ResponseError::UnknownTopicOrPartition),
        "produce to a deleted topic"
    );
    let new_id = create_topic(&broker, "doomed", 1).await;
    assert_ne!(new_id, old_id, "a re-created topic gets a new id");
    let data = fetch(&broker, "doomed", 0, 0).await;
    assert_eq!(data.high_watermark, 0, "the old records must not come back");
}

#[tokio::test]
async fn v6_deletes_by_name_or_id_and_reports_the_id() {
    let broker = TestBroker::start().await;
    let by_name = create_topic(&broker, "by-name", 1).await;
    let by_id = create_topic(&broker, "by-id", 1).await;
    let request = DeleteTopicsRequest::default().with_topics(vec![
        DeleteTopicState::default().with_name(Some(topic_name("by-name"))),
        DeleteTopicState::default()
            .with_name(None)
            .with_topic_id(by_id),
    ]);
    let response = broker.call(request, 6).await;
    let results = &response.responses;
    assert_eq!(
        (results[0].error_code, results[0].topic_id),
        (0, by_name),
        "by name: its id is reported"
    );
    assert_eq!(results[1].error_code, 0, "by id");
    assert_eq!(
        results[1].name.as_ref().map(|n| n.0.to_string()),
        Some("by-id".to_owned()),
        "by id: its name is reported"
    );
}

#[tokio::test]
async fn unknown_names_and_ids_are_errors_of_their_entry_only() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "real", 1).await;
    let request = DeleteTopicsRequest::default().with_topics(vec![
        DeleteTopicState::default().with_name(Some(topic_name("ghost"))),
        DeleteTopicState::default()
            .with_name(None)
            .with_topic_id(Uuid::new_v4()),
        DeleteTopicState::default().with_name(Some(topic_name("real"))),
    ]);
    let results = broker.call(request, 6).await.responses;
    assert_eq!(
        results[0].error_code,
        code(ResponseError::UnknownTopicOrPartition)
    );
    assert!(
        results[0].error_message.is_some(),
        "v5+ explain the refusal"
    );
    assert_eq!(results[1].error_code, code(ResponseError::UnknownTopicId));
    assert_eq!(results[2].error_code, 0, "the real topic is deleted anyway");
}

#[tokio::test]
async fn every_version_deletes() {
    let broker = TestBroker::start().await;
    for version in 1..=5 {
        let name = format!("v{version}");
        create_topic(&broker, &name, 1).await;
        let response = broker
            .call(
                DeleteTopicsRequest::default().with_topic_names(vec![topic_name(&name)]),
                version,
            )
            .await;
        assert_eq!(
            response.responses[0].error_code, 0,
            "DeleteTopics v{version}"
        );
        let again = broker
            .call(
                DeleteTopicsRequest::default().with_topic_names(vec![topic_name(&name)]),
                version,
            )
            .await;
        assert_eq!(
            again.responses[0].error_code,
            code(ResponseError::UnknownTopicOrPartition),
            "v{version}: deleting twice"
        );
    }
}
