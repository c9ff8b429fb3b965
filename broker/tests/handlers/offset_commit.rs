//! OffsetCommit (key 8).

use kafka_protocol::{
    messages::{
        offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic},
        OffsetCommitRequest, OffsetFetchRequest,
    },
    ResponseError,
};

use crate::{
    code, commit_request, commit_simple, create_topic, group_broker, group_id, join_new_member, s,
    stable_group, topic_name,
};

fn codes(response: &kafka_protocol::messages::OffsetCommitResponse) -> Vec<i16> {
    response
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

async fn committed(
    broker: &tributary_broker::testing::TestBroker,
    group: &str,
) -> Vec<(String, i32, i64)> {
    let response = broker
        .call(
            OffsetFetchRequest::default()
                .with_group_id(group_id(group))
                .with_topics(None),
            7,
        )
        .await;
    let mut all: Vec<_> = response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.to_string(), p.partition_index, p.committed_offset))
        })
        .collect();
    all.sort();
    all
}

#[tokio::test]
async fn a_simple_consumer_commits_without_membership_in_every_version() {
    let broker = group_broker().start().await;
    create_topic(&broker, "events", 2).await;
    for version in 2..=8 {
        let group = format!("simple{version}");
        let partition = OffsetCommitRequestPartition::default()
            .with_partition_index(1)
            .with_committed_offset(42)
            .with_committed_leader_epoch(if version >= 6 { 3 } else { -1 })
            .with_committed_metadata(Some(s("m")));
        let mut request = OffsetCommitRequest::default()
            .with_group_id(group_id(&group))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(topic_name("events"))
                .with_partitions(vec![partition])]);
        if version <= 4 {
            request = request.with_retention_time_ms(-1);
        }
        let response = broker.call(request, version).await;
        assert_eq!(codes(&response), vec![0], "OffsetCommit v{version}");
        assert_eq!(
            committed(&broker, &group).await,
            vec![("events".to_owned(), 1, 42)],
            "v{version}"
        );
    }
}

#[tokio::test]
async fn a_member_commits_with_its_generation() {
    let broker = group_broker().start().await;
    create_topic(&broker, "events", 1).await;
    let (member, generation) = stable_group(&broker, "g").await;
    let ok = broker
        .call(
            commit_request("g", generation, &member, &[("events", 0, 7)]),
            8,
        )
        .await;
    assert_eq!(codes(&ok), vec![0]);
    let cases = [
        (
            "an old generation",
            commit_request("g", generation - 1, &member, &[("events", 0, 8)]),
            ResponseError::IllegalGeneration,
        ),
        (
            "an unknown member",
            commit_request("g", generation, "stranger", &[("events", 0, 8)]),
            ResponseError::UnknownMemberId,
        ),
        (
            "a generation of a group that does not exist",
            commit_request("ghost", 1, "m", &[("events", 0, 8)]),
            ResponseError::IllegalGeneration,
        ),
        (
            "an empty group id",
            commit_request("", -1, "", &[("events", 0, 8)]),
            ResponseError::InvalidGroupId,
        ),
    ];
    for (what, request, error) in cases {
        assert_eq!(
            codes(&broker.call(request, 8).await),
            vec![code(error)],
            "{what}"
        );
    }
    assert_eq!(
        committed(&broker, "g").await,
        vec![("events".to_owned(), 0, 7)],
        "refused commits stored nothing"
    );
}

#[tokio::test]
async fn commits_wait_while_the_group_completes_a_rebalance() {
    let broker = group_broker().start().await;
    create_topic(&broker, "events", 1).await;
    let joined = join_new_member(&broker, "g").await;
    let response = broker
        .call(
            commit_request(
                "g",
                joined.generation_id,
                &joined.member_id,
                &[("events", 0, 1)],
            ),
            8,
        )
        .await;
    assert_eq!(
        codes(&response),
        vec![code(ResponseError::RebalanceInProgress)],
        "no assignment yet"
    );
    // librdkafka's 0113 v_commit_during_rebalance: a commit of the previous generation while the next one
    // completes is answered as stale, not as "wait".
    let response = broker
        .call(
            commit_request(
                "g",
                joined.generation_id - 1,
                &joined.member_id,
                &[("events", 0, 1)],
            ),
            8,
        )
        .await;
    assert_eq!(
        codes(&response),
        vec![code(ResponseError::IllegalGeneration)],
        "an old generation is refused as old even while the group completes a rebalance"
    );
}

#[tokio::test]
async fn oversized_metadata_fails_only_its_partition() {
    let broker = group_broker().start().await;
    create_topic(&broker, "events", 2).await;
    let mut request = commit_request("g", -1, "", &[("events", 0, 1), ("events", 1, 2)]);
    request.topics[0].partitions[0].committed_metadata = Some(s(&"m".repeat(4097)));
    let response = broker.call(request, 8).await;
    assert_eq!(
        codes(&response),
        vec![code(ResponseError::OffsetMetadataTooLarge), 0],
        "offset.metadata.max.bytes is 4096"
    );
    assert_eq!(
        committed(&broker, "g").await,
        vec![("events".to_owned(), 1, 2)]
    );
}

#[tokio::test]
async fn committed_offsets_survive_a_restart() {
    let mut broker = group_broker().start().await;
    create_topic(&broker, "events", 2).await;
    commit_simple(&broker, "durable", &[("events", 0, 5), ("events", 1, 9)]).await;
    broker.restart().await;
    assert_eq!(
        committed(&broker, "durable").await,
        vec![("events".to_owned(), 0, 5), ("events".to_owned(), 1, 9)]
    );
}

/// Kafka's KafkaApis checks every partition against the metadata before the group coordinator sees it.
#[tokio::test]
async fn commits_for_unknown_topics_or_partitions_are_refused_per_partition() {
    let broker = group_broker().start().await;
    create_topic(&broker, "events", 1).await;
    let response = broker
        .call(
            commit_request(
                "g",
                -1,
                "",
                &[("ghost", 0, 1), ("events", 5, 1), ("events", 0, 7)],
            ),
            8,
        )
        .await;
    assert_eq!(
        codes(&response),
        vec![
            code(ResponseError::UnknownTopicOrPartition),
            code(ResponseError::UnknownTopicOrPartition),
            0
        ],
        "ghost-0, events-5 (beyond the partition count), events-0"
    );
    assert_eq!(
        committed(&broker, "g").await,
        vec![("events".to_owned(), 0, 7)],
        "only the existing partition was stored"
    );
}

#[tokio::test]
async fn unknown_partitions_fail_before_the_group_is_consulted() {
    let broker = group_broker().start().await;
    create_topic(&broker, "events", 1).await;
    let (member, generation) = stable_group(&broker, "members").await;
    let response = broker
        .call(
            commit_request(
                "members",
                generation + 1,
                &member,
                &[("ghost", 0, 1), ("events", 0, 1)],
            ),
            8,
        )
        .await;
    assert_eq!(
        codes(&response),
        vec![
            code(ResponseError::UnknownTopicOrPartition),
            code(ResponseError::IllegalGeneration)
        ],
        "the unknown topic is refused as such, the known one by the group"
    );
    // Nothing that exists: the group is not consulted, so even an empty group id is no error of its own.
    let response = broker
        .call(commit_request("", -1, "", &[("ghost", 0, 1)]), 8)
        .await;
    assert_eq!(
        codes(&response),
        vec![code(ResponseError::UnknownTopicOrPartition)]
    );
}
