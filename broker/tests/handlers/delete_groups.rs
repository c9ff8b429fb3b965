//! DeleteGroups (key 42).

use kafka_protocol::{
    messages::{DeleteGroupsRequest, OffsetFetchRequest},
    ResponseError,
};

use crate::{code, commit_simple, create_topic, group_broker, group_id, group_state, stable_group};

async fn delete(
    broker: &tributary_broker::testing::TestBroker,
    groups: &[&str],
    version: i16,
) -> Vec<i16> {
    let request = DeleteGroupsRequest::default()
        .with_groups_names(groups.iter().map(|g| group_id(g)).collect());
    broker
        .call(request, version)
        .await
        .results
        .iter()
        .map(|r| r.error_code)
        .collect()
}

#[tokio::test]
async fn deletes_empty_groups_with_their_offsets_for_good() {
    let mut broker = group_broker().start().await;
    create_topic(&broker, "events", 1).await;
    for version in 0..=2 {
        let group = format!("g{version}");
        commit_simple(&broker, &group, &[("events", 0, 5)]).await;
        assert_eq!(
            delete(&broker, &[&group], version).await,
            vec![0],
            "DeleteGroups v{version}"
        );
        assert_eq!(group_state(&broker, &group).await, "Dead", "v{version}");
    }
    broker.restart().await;
    let response = broker
        .call(
            OffsetFetchRequest::default()
                .with_group_id(group_id("g0"))
                .with_topics(None),
            7,
        )
        .await;
    assert!(
        response.topics.is_empty(),
        "deleted offsets came back after a restart: {:?}",
        response.topics
    );
    assert_eq!(group_state(&broker, "g0").await, "Dead");
}

#[tokio::test]
async fn groups_with_members_and_unknown_groups_are_refused_one_by_one() {
    let broker = group_broker().start().await;
    create_topic(&broker, "events", 1).await;
    stable_group(&broker, "busy").await;
    commit_simple(&broker, "idle", &[("events", 0, 1)]).await;
    let codes = delete(&broker, &["busy", "ghost", "idle"], 2).await;
    assert_eq!(
        codes,
        vec![
            code(ResponseError::NonEmptyGroup),
            code(ResponseError::GroupIdNotFound),
            0
        ]
    );
    assert_eq!(group_state(&broker, "busy").await, "Stable");
}
