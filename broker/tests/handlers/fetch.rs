//! Fetch (key 1).

use std::time::{Duration, Instant};

use kafka_protocol::{
    messages::{
        fetch_request::{FetchPartition, FetchTopic, ForgottenTopic},
        FetchRequest, FetchResponse,
    },
    ResponseError,
};
use tributary_broker::testing::{request_frame, TestBroker, TestError};
use uuid::Uuid;

use crate::{
    batch, code, create_topic, fetch, fetch_request, produce, records_of, topic_name, values_of,
};

#[tokio::test]
async fn serves_records_with_the_partition_offsets() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "events", 1).await;
    produce(&broker, "events", 0, batch(&["a", "b"])).await;
    let data = fetch(&broker, "events", 0, 0).await;
    assert_eq!(data.error_code, 0);
    assert_eq!(values_of(&data), vec!["a", "b"]);
    assert_eq!(data.high_watermark, 2);
    assert_eq!(
        data.last_stable_offset, 2,
        "no transactions: everything is stable"
    );
    assert_eq!(data.log_start_offset, 0);
    assert_eq!(data.preferred_read_replica.0, -1, "read from the leader");
    let offsets: Vec<i64> = records_of(&data).iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![0, 1]);
}

#[tokio::test]
async fn an_offset_inside_a_batch_returns_the_whole_batch() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "events", 1).await;
    produce(&broker, "events", 0, batch(&["a", "b", "c"])).await;
    let data = fetch(&broker, "events", 0, 1).await;
    // The client skips the records before its offset; an empty answer would stall it.
    assert_eq!(values_of(&data), vec!["a", "b", "c"]);
}

#[tokio::test]
async fn offsets_past_the_end_are_out_of_range_and_the_end_itself_is_empty() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "events", 1).await;
    produce(&broker, "events", 0, batch(&["a"])).await;
    let at_end = fetch(&broker, "events", 0, 1).await;
    assert_eq!(at_end.error_code, 0);
    assert!(records_of(&at_end).is_empty());
    let past = fetch(&broker, "events", 0, 2).await;
    assert_eq!(past.error_code, code(ResponseError::OffsetOutOfRange));
    assert_eq!(
        past.high_watermark, 1,
        "the error still says where the log ends"
    );
    let negative = fetch(&broker, "events", 0, -1).await;
    assert_eq!(negative.error_code, code(ResponseError::OffsetOutOfRange));
}

#[tokio::test]
async fn unknown_partitions_fail_alone() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "events", 1).await;
    produce(&broker, "events", 0, batch(&["a"])).await;
    let request = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(topic_name("events"))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(3)
                        .with_partition_max_bytes(1 << 20),
                    FetchPartition::default()
                        .with_partition(0)
                        .with_partition_max_bytes(1 << 20),
                ]),
            FetchTopic::default()
                .with_topic(topic_name("ghost"))
                .with_partitions(vec![
                    FetchPartition::default().with_partition_max_bytes(1 << 20)
                ]),
        ]);
    let response = broker.call(request, 12).await;
    let events = &response.responses[0].partitions;
    assert_eq!(
        events[0].error_code,
        code(ResponseError::UnknownTopicOrPartition)
    );
    assert_eq!(
        (events[1].error_code, values_of(&events[1])),
        (0, vec!["a".to_owned()])
    );
    assert_eq!(
        response.responses[1].partitions[0].error_code,
        code(ResponseError::UnknownTopicOrPartition)
    );
}

#[tokio::test]
async fn v13_and_later_fetch_by_topic_id() {
    let broker = TestBroker::start().await;
    let id = create_topic(&broker, "events", 1).await;
    produce(&broker, "events", 0, batch(&["a"])).await;
    let by_id = |topic_id| {
        FetchRequest::default()
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic_id(topic_id)
                .with_partitions(vec![
                    FetchPartition::default().with_partition_max_bytes(1 << 20)
                ])])
    };
    for version in 13..=17 {
        let response = broker.call(by_id(id), version).await;
        let topic = &response.responses[0];
        assert_eq!(topic.topic_id, id, "v{version} answers with the topic id");
        assert_eq!(values_of(&topic.partitions[0]), vec!["a"], "v{version}");
        let unknown = broker.call(by_id(Uuid::new_v4()), version).await;
        assert_eq!(
            unknown.responses[0].partitions[0].error_code,
            code(ResponseError::UnknownTopicId),
            "v{version}"
        );
    }
}

#[tokio::test]
async fn every_version_from_4_reads_and_v3_is_refused() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "events", 1).await;
    produce(&broker, "events", 0, batch(&["a"])).await;
    for version in 4..=12 {
        let response = broker.call(fetch_request("events", 0, 0), version).await;
        assert_eq!(
            values_of(&response.responses[0].partitions[0]),
            vec!["a"],
            "Fetch v{version}"
        );
    }
    // The codec cannot encode v3 any more: send v4 bytes labelled v3.
    let mut frame = request_frame(&fetch_request("events", 0, 0), 4, 1).unwrap();
    frame[2..4].copy_from_slice(&3i16.to_be_bytes());
    let refused = broker.call_frame(&frame).await;
    assert!(
        matches!(refused, Err(TestError::Closed(_))),
        "Fetch v3: {refused:?}"
    );
}

/// A fetch of partitions 0..count of `topic` from offset 0, answered at once.
fn fetch_all(topic: &str, count: i32) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(
                (0..count)
                    .map(|p| {
                        FetchPartition::default()
                            .with_partition(p)
                            .with_partition_max_bytes(1 << 20)
                    })
                    .collect(),
            )])
}

/// (partition, values) of every partition an answer carries, in answer order.
fn answered(response: &FetchResponse) -> Vec<(i32, Vec<String>)> {
    response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| (p.partition_index, values_of(p)))
        .collect()
}

#[tokio::test]
async fn full_fetches_without_a_session_are_answered_in_full() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "events", 1).await;
    produce(&broker, "events", 0, batch(&["a"])).await;
    // (0, -1) is the sessionless fetch of the Java client and of followers; franz-go sends (-1, -1).
    for session_id in [0, -1] {
        let response = broker
            .call(
                fetch_request("events", 0, 0)
                    .with_session_id(session_id)
                    .with_session_epoch(-1),
                12,
            )
            .await;
        assert_eq!(response.error_code, 0, "session id {session_id}, epoch -1");
        assert_eq!(response.session_id, 0, "epoch -1 asks for no session");
        assert_eq!(
            answered(&response),
            vec![(0, vec!["a".to_owned()])],
            "session id {session_id}"
        );
    }
}

#[tokio::test]
async fn an_incremental_session_answers_only_what_changed() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "events", 3).await;
    produce(&broker, "events", 0, batch(&["a"])).await;
    let full = broker
        .call(fetch_all("events", 3).with_session_epoch(0), 12)
        .await;
    assert_eq!(full.error_code, 0);
    let id = full.session_id;
    assert!(id > 0, "epoch 0 creates a session: {id}");
    assert_eq!(
        answered(&full),
        vec![(0, vec!["a".to_owned()]), (1, vec![]), (2, vec![])],
        "the first fetch of a session is full"
    );

    // Partition 0 moves its offset past "a"; nothing else is named.
    let moved = FetchTopic::default()
        .with_topic(topic_name("events"))
        .with_partitions(vec![FetchPartition::default()
            .with_partition(0)
            .with_fetch_offset(1)
            .with_partition_max_bytes(1 << 20)]);
    let quiet = broker
        .call(
            FetchRequest::default()
                .with_max_wait_ms(0)
                .with_session_id(id)
                .with_session_epoch(1)
                .with_topics(vec![moved]),
            12,
        )
        .await;
    assert_eq!((quiet.error_code, quiet.session_id), (0, id));
    assert!(
        quiet.responses.is_empty(),
        "nothing new anywhere: {:?}",
        answered(&quiet)
    );

    produce(&broker, "events", 2, batch(&["c"])).await;
    let incremental = |epoch| {
        FetchRequest::default()
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_session_id(id)
            .with_session_epoch(epoch)
    };
    let news = broker.call(incremental(2), 12).await;
    assert_eq!(
        answered(&news),
        vec![(2, vec!["c".to_owned()])],
        "only partition 2 has new records; partition 0 reads from the offset the session remembers"
    );
    assert_eq!(news.responses[0].partitions[0].high_watermark, 1);

    produce(&broker, "events", 0, batch(&["b"])).await;
    let from_cached_offset = broker.call(incremental(3), 12).await;
    assert_eq!(
        answered(&from_cached_offset),
        vec![(0, vec!["b".to_owned()]), (2, vec!["c".to_owned()])],
        "partition 0 from its cached offset 1; partition 2 again from offset 0, as no request moved it"
    );

    let stale = broker.call(incremental(3), 12).await;
    assert_eq!(
        stale.error_code,
        code(ResponseError::InvalidFetchSessionEpoch)
    );
    assert!(stale.responses.is_empty());
    let unknown = broker
        .call(incremental(1).with_session_id(id.wrapping_add(1)), 12)
        .await;
    assert_eq!(
        unknown.error_code,
        code(ResponseError::FetchSessionIdNotFound)
    );
    assert_eq!(unknown.session_id, 0);
}

#[tokio::test]
async fn forgotten_partitions_leave_the_session() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "events", 2).await;
    let id = broker
        .call(fetch_all("events", 2).with_session_epoch(0), 12)
        .await
        .session_id;
    assert!(id > 0);
    let forget = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_session_id(id)
        .with_session_epoch(1)
        .with_forgotten_topics_data(vec![ForgottenTopic::default()
            .with_topic(topic_name("events"))
            .with_partitions(vec![1])]);
    assert_eq!(broker.call(forget, 12).await.error_code, 0);
    produce(&broker, "events", 0, batch(&["a"])).await;
    produce(&broker, "events", 1, batch(&["b"])).await;
    let next = broker
        .call(
            FetchRequest::default()
                .with_max_wait_ms(0)
                .with_session_id(id)
                .with_session_epoch(2),
            12,
        )
        .await;
    assert_eq!(
        answered(&next),
        vec![(0, vec!["a".to_owned()])],
        "partition 1 was forgotten"
    );
}

#[tokio::test]
async fn topic_id_sessions_forget_by_topic_id() {
    let broker = TestBroker::start().await;
    let events = create_topic(&broker, "events", 1).await;
    let other = create_topic(&broker, "other", 1).await;
    let by_id = |topic_id| {
        FetchTopic::default()
            .with_topic_id(topic_id)
            .with_partitions(vec![
                FetchPartition::default().with_partition_max_bytes(1 << 20)
            ])
    };
    let full = broker
        .call(
            FetchRequest::default()
                .with_max_wait_ms(0)
                .with_max_bytes(1 << 20)
                .with_session_epoch(0)
                .with_topics(vec![by_id(events), by_id(other)]),
            17,
        )
        .await;
    let id = full.session_id;
    assert!(id > 0);
    let forget = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_session_id(id)
        .with_session_epoch(1)
        .with_forgotten_topics_data(vec![ForgottenTopic::default()
            .with_topic_id(other)
            .with_partitions(vec![0])]);
    assert_eq!(broker.call(forget, 17).await.error_code, 0);
    produce(&broker, "events", 0, batch(&["a"])).await;
    produce(&broker, "other", 0, batch(&["b"])).await;
    let next = broker
        .call(
            FetchRequest::default()
                .with_max_wait_ms(0)
                .with_max_bytes(1 << 20)
                .with_session_id(id)
                .with_session_epoch(2),
            17,
        )
        .await;
    assert_eq!(next.responses.len(), 1, "only events is left");
    assert_eq!(next.responses[0].topic_id, events);
    assert_eq!(values_of(&next.responses[0].partitions[0]), vec!["a"]);
    let by_name = broker
        .call(
            FetchRequest::default()
                .with_max_wait_ms(0)
                .with_session_id(id)
                .with_session_epoch(3),
            12,
        )
        .await;
    assert_eq!(
        by_name.error_code,
        code(ResponseError::FetchSessionTopicIdError),
        "a topic-id session continued at a version without topic ids"
    );
}

#[tokio::test]
async fn a_full_fetch_naming_a_session_closes_it() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "events", 1).await;
    let id = broker
        .call(fetch_request("events", 0, 0).with_session_epoch(0), 12)
        .await
        .session_id;
    assert!(id > 0);
    let closing = broker
        .call(
            fetch_request("events", 0, 0)
                .with_session_id(id)
                .with_session_epoch(-1),
            12,
        )
        .await;
    assert_eq!((closing.error_code, closing.session_id), (0, 0));
    assert_eq!(closing.responses[0].partitions.len(), 1, "answered in full");
    let gone = broker
        .call(
            FetchRequest::default()
                .with_max_wait_ms(0)
                .with_session_id(id)
                .with_session_epoch(1),
            12,
        )
        .await;
    assert_eq!(gone.error_code, code(ResponseError::FetchSessionIdNotFound));
}

#[tokio::test]
async fn the_session_cache_is_bounded_by_its_slots() {
    let broker = TestBroker::builder()
        .property("max.incremental.fetch.session.cache.slots", "1")
        .start()
        .await;
    create_topic(&broker, "events", 2).await;
    let first = broker
        .call(fetch_all("events", 2).with_session_epoch(0), 12)
        .await;
    assert!(first.session_id > 0);
    let second = broker
        .call(fetch_all("events", 2).with_session_epoch(0), 12)
        .await;
    assert_eq!(second.error_code, 0);
    assert_eq!(
        second.session_id, 0,
        "no room: a young session of the same size is not evicted"
    );
    assert_eq!(
        second.responses[0].partitions.len(),
        2,
        "still answered in full"
    );
    let still = broker
        .call(
            FetchRequest::default()
                .with_max_wait_ms(0)
                .with_session_id(first.session_id)
                .with_session_epoch(1),
            12,
        )
        .await;
    assert_eq!(still.error_code, 0, "the first session is still there");
}

#[tokio::test]
async fn the_first_batch_is_served_even_when_larger_than_the_limits() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "events", 2).await;
    let big = "x".repeat(2_000);
    produce(&broker, "events", 0, batch(&[&big])).await;
    produce(&broker, "events", 1, batch(&[&big])).await;
    let request = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(100)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name("events"))
            .with_partitions(vec![
                FetchPartition::default()
                    .with_partition(0)
                    .with_partition_max_bytes(100),
                FetchPartition::default()
                    .with_partition(1)
                    .with_partition_max_bytes(100),
            ])]);
    let response = broker.call(request, 12).await;
    let partitions = &response.responses[0].partitions;
    assert_eq!(
        values_of(&partitions[0]).len(),
        1,
        "progress past a batch larger than the limits"
    );
    assert!(
        values_of(&partitions[1]).is_empty(),
        "the rest waits for the next fetch"
    );
    assert_eq!(partitions[1].error_code, 0);
}

#[tokio::test]
async fn a_long_poll_returns_when_data_arrives_or_the_wait_is_over() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "events", 1).await;
    let waiting = fetch_request("events", 0, 0)
        .with_max_wait_ms(200)
        .with_min_bytes(1);
    let started = Instant::now();
    let empty = broker.call(waiting.clone(), 12).await;
    assert!(records_of(&empty.responses[0].partitions[0]).is_empty());
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "answered before max_wait_ms without data"
    );

    let long = fetch_request("events", 0, 0)
        .with_max_wait_ms(8_000)
        .with_min_bytes(1);
    let started = Instant::now();
    let (fetched, _) = tokio::join!(broker.call(long, 12), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        produce(&broker, "events", 0, batch(&["late"])).await
    });
    assert_eq!(values_of(&fetched.responses[0].partitions[0]), vec!["late"]);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "the fetch waited for max_wait_ms although data arrived"
    );
}
