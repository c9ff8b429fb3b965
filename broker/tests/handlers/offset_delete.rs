//! OffsetDelete (key 47).

use kafka_protocol::{
    messages::{
        offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic},
        OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest,
    },
    ResponseError,
};
use tributary_broker::testing::TestBroker;

use crate::{
    code, commit_request, commit_simple, create_topic, group_broker, group_id, stable_group,
    topic_name,
};

fn request(group: &str, topics: &[(&str, &[i32])]) -> OffsetDeleteRequest {
    OffsetDeleteRequest::default()
        .with_group_id(group_id(group))
        .with_topics(
            topics
                .iter()
                .map(|(t, ps)| {
                    OffsetDeleteRequestTopic::default()
                        .with_name(topic_name(t))
                        .with_partitions(
                            ps.iter()
                                .map(|p| {
                                    OffsetDeleteRequestPartition::default().with_partition_index(*p)
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

fn codes(response: &OffsetDeleteResponse) -> Vec<(String, i32, i16)> {
    response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.to_string(), p.partition_index, p.error_code))
        })
        .collect()
}

async fn committed(broker: &TestBroker, group: &str) -> Vec<(String, i32)> {
    let response = broker
        .call(
            OffsetFetchRequest::default()
                .with_group_id(group_id(group))
                .with_topics(None),
            7,
        )
        .await;
    response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.to_string(), p.partition_index))
        })
        .collect()
}

#[tokio::test]
async fn deletes_the_offsets_of_an_empty_group() {
    let broker = group_broker().start().await;
    create_topic(&broker, "events", 2).await;
    commit_simple(&broker, "g", &[("events", 0, 1), ("events", 1, 2)]).await;
    let response = broker.call(request("g", &[("events", &[0])]), 0).await;
    assert_eq!(response.error_code, 0);
    assert_eq!(codes(&response), vec![("events".into(), 0, 0)]);
    assert_eq!(
        committed(&broker, "g").await,
        vec![("events".into(), 1)],
        "only partition 0 was deleted"
    );
}

#[tokio::test]
async fn offsets_of_topics_the_members_subscribe_to_stay() {
    let broker = group_broker().start().await;
    create_topic(&broker, "events", 1).await;
    create_topic(&broker, "other", 1).await;
    let (member, generation) = stable_group(&broker, "g").await;
    let commit = commit_request(
        "g",
        generation,
        &member,
        &[("events", 0, 1), ("other", 0, 1)],
    );
    assert!(broker
        .call(commit, 8)
        .await
        .topics
        .iter()
        .all(|t| t.partitions.iter().all(|p| p.error_code == 0)));
    let response = broker
        .call(request("g", &[("events", &[0]), ("other", &[0])]), 0)
        .await;
    assert_eq!(
        codes(&response),
        vec![
            (
                "events".into(),
                0,
                code(ResponseError::GroupSubscribedToTopic)
            ),
            ("other".into(), 0, 0)
        ],
        "the member subscribes to events (see its JoinGroup metadata)"
    );
    assert_eq!(committed(&broker, "g").await, vec![("events".into(), 0)]);
}

#[tokio::test]
async fn an_unknown_group_is_not_found() {
    let broker = group_broker().start().await;
    let response = broker.call(request("ghost", &[("events", &[0])]), 0).await;
    assert_eq!(response.error_code, code(ResponseError::GroupIdNotFound));
    assert!(response.topics.is_empty());
}
