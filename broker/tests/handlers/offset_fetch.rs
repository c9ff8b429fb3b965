//! OffsetFetch (key 9).

use kafka_protocol::messages::{
    offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
    },
    OffsetFetchRequest,
};

use crate::{commit_simple, create_topic, group_broker, group_id, topic_name};

fn topics(name: &str, partitions: &[i32]) -> Option<Vec<OffsetFetchRequestTopic>> {
    Some(vec![OffsetFetchRequestTopic::default()
        .with_name(topic_name(name))
        .with_partition_indexes(partitions.to_vec())])
}

#[tokio::test]
async fn returns_offsets_with_metadata_and_leader_epoch_and_minus_one_where_nothing_is_committed() {
    let broker = group_broker().start().await;
    create_topic(&broker, "events", 2).await;
    commit_simple(&broker, "g", &[("events", 0, 11)]).await;
    for version in 1..=7 {
        let response = broker
            .call(
                OffsetFetchRequest::default()
                    .with_group_id(group_id("g"))
                    .with_topics(topics("events", &[0, 1])),
                version,
            )
            .await;
        let partitions = &response.topics[0].partitions;
        assert_eq!(
            (
                partitions[0].partition_index,
                partitions[0].committed_offset
            ),
            (0, 11),
            "v{version}"
        );
        assert_eq!(
            partitions[0].metadata.as_deref(),
            Some("meta"),
            "v{version}: metadata round-trips"
        );
        assert_eq!(partitions[0].error_code, 0);
        if version >= 5 {
            assert_eq!(
                partitions[0].committed_leader_epoch, 3,
                "v{version}: the committed leader epoch"
            );
        }
        assert_eq!(
            (
                partitions[1].partition_index,
                partitions[1].committed_offset
            ),
            (1, -1),
            "v{version}: nothing committed"
        );
        assert_eq!(partitions[1].committed_leader_epoch, -1);
        if version >= 2 {
            assert_eq!(response.error_code, 0, "v{version}");
        }
    }
}

#[tokio::test]
async fn null_topics_return_everything_the_group_committed() {
    let broker = group_broker().start().await;
    create_topic(&broker, "a", 2).await;
    create_topic(&broker, "b", 1).await;
    commit_simple(&broker, "g", &[("a", 1, 1), ("a", 0, 2), ("b", 0, 3)]).await;
    let response = broker
        .call(
            OffsetFetchRequest::default()
                .with_group_id(group_id("g"))
                .with_topics(None),
            7,
        )
        .await;
    let all: Vec<(String, i32, i64)> = response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.to_string(), p.partition_index, p.committed_offset))
        })
        .collect();
    assert_eq!(
        all,
        vec![("a".into(), 0, 2), ("a".into(), 1, 1), ("b".into(), 0, 3)],
        "sorted by topic, then partition"
    );
    let unknown = broker
        .call(
            OffsetFetchRequest::default()
                .with_group_id(group_id("ghost"))
                .with_topics(None),
            7,
        )
        .await;
    assert!(
        unknown.topics.is_empty(),
        "a group that never committed has nothing"
    );
    assert_eq!(unknown.error_code, 0);
}

#[tokio::test]
async fn v8_fetches_several_groups_at_once() {
    let broker = group_broker().start().await;
    create_topic(&broker, "events", 1).await;
    commit_simple(&broker, "one", &[("events", 0, 1)]).await;
    commit_simple(&broker, "two", &[("events", 0, 2)]).await;
    let request = OffsetFetchRequest::default().with_groups(vec![
        OffsetFetchRequestGroup::default()
            .with_group_id(group_id("one"))
            .with_topics(None),
        OffsetFetchRequestGroup::default()
            .with_group_id(group_id("two"))
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(topic_name("events"))
                .with_partition_indexes(vec![0])])),
        OffsetFetchRequestGroup::default()
            .with_group_id(group_id("none"))
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(topic_name("events"))
                .with_partition_indexes(vec![0])])),
    ]);
    let response = broker.call(request, 8).await;
    let offsets: Vec<(String, i64, i32)> = response
        .groups
        .iter()
        .map(|g| {
            let p = &g.topics[0].partitions[0];
            (
                g.group_id.0.to_string(),
                p.committed_offset,
                p.committed_leader_epoch,
            )
        })
        .collect();
    assert_eq!(
        offsets,
        vec![
            ("one".into(), 1, 3),
            ("two".into(), 2, 3),
            ("none".into(), -1, -1)
        ]
    );
    assert!(response.groups.iter().all(|g| g.error_code == 0));
}
