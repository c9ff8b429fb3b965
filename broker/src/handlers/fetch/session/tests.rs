#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::FetchableTopicResponse;

use super::*;

fn target(topic: &str, index: i32, fetch_offset: i64) -> FetchTarget {
    FetchTarget {
        topic: Some(topic.to_owned()),
        topic_id: Uuid::nil(),
        index,
        fetch_offset,
        max_bytes: 1 << 20,
        current_leader_epoch: -1,
        last_fetched_epoch: -1,
        log_start_offset: -1,
    }
}

fn request(session_id: i32, epoch: i32, partitions: Vec<FetchTarget>) -> SessionRequest<'static> {
    SessionRequest {
        version: 12,
        session_id,
        epoch,
        follower: false,
        partitions,
        forgotten: &[],
    }
}

/// The answer a read would give: every target with the given high watermark, `with_records` having data.
fn answer(targets: &[FetchTarget], high_watermark: i64, with_records: &[i32]) -> FetchResponse {
    let topics = targets
        .iter()
        .map(|t| {
            let records = if with_records.contains(&t.index) {
                Bytes::from_static(b"batch")
            } else {
                Bytes::new()
            };
            FetchableTopicResponse::default()
                .with_topic(kafka_protocol::messages::TopicName(
                    kafka_protocol::protocol::StrBytes::from_string(
                        t.topic.clone().unwrap_or_default(),
                    ),
                ))
                .with_partitions(vec![PartitionData::default()
                    .with_partition_index(t.index)
                    .with_high_watermark(high_watermark)
                    .with_log_start_offset(0)
                    .with_records(Some(records))])
        })
        .collect();
    FetchResponse::default().with_responses(topics)
}

fn answered(response: &FetchResponse) -> Vec<i32> {
    response
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.partition_index))
        .collect()
}

/// Opens a session on `cache` for partitions 0..count of `events` at time `now`; returns its id.
fn new_session(cache: &FetchSessionCache, count: i32, follower: bool, now: i64) -> i32 {
    let partitions: Vec<_> = (0..count).map(|i| target("events", i, 0)).collect();
    let mut req = request(NO_SESSION, INITIAL_EPOCH, partitions);
    req.follower = follower;
    let (context, targets) = cache.open(req, now, |_| None);
    let mut response = answer(&targets, 0, &[]);
    assert!(cache.close(context, &targets, &mut response, now));
    response.session_id
}

#[test]
fn an_incremental_fetch_reads_the_whole_session_and_answers_what_changed() {
    let cache = FetchSessionCache::new(10, FetchSessionMetrics::default());
    let id = new_session(&cache, 3, false, 0);
    assert_ne!(
        id, NO_SESSION,
        "a full fetch with epoch 0 creates a session"
    );

    // Only partition 1 moved on; the request names it alone.
    let (context, targets) = cache.open(request(id, 1, vec![target("events", 1, 5)]), 1, |_| None);
    assert_eq!(context, FetchContext::Incremental { id, next_epoch: 2 });
    let offsets: Vec<(i32, i64)> = targets.iter().map(|t| (t.index, t.fetch_offset)).collect();
    assert_eq!(offsets, vec![(0, 0), (1, 5), (2, 0)]);

    let mut response = answer(&targets, 0, &[2]);
    assert!(cache.close(context, &targets, &mut response, 1));
    assert_eq!(
        answered(&response),
        vec![2],
        "only the partition with records"
    );
    assert_eq!(response.session_id, id);

    // A high watermark change must be told once, then not again.
    let (context, targets) = cache.open(request(id, 2, Vec::new()), 2, |_| None);
    assert_eq!(
        targets.iter().map(|t| t.index).collect::<Vec<_>>(),
        vec![0, 1, 2],
        "partition 2 returned records, so it moved to the end (already there)"
    );
    let mut response = answer(&targets, 7, &[]);
    cache.close(context, &targets, &mut response, 2);
    assert_eq!(answered(&response), vec![0, 1, 2]);
    let (context, targets) = cache.open(request(id, 3, Vec::new()), 3, |_| None);
    let mut response = answer(&targets, 7, &[]);
    cache.close(context, &targets, &mut response, 3);
    assert!(answered(&response).is_empty(), "nothing changed");
}

#[test]
fn partitions_that_returned_records_move_to_the_end() {
    let cache = FetchSessionCache::new(10, FetchSessionMetrics::default());
    let id = new_session(&cache, 3, false, 0);
    let (context, targets) = cache.open(request(id, 1, Vec::new()), 1, |_| None);
    let mut response = answer(&targets, 0, &[0]);
    cache.close(context, &targets, &mut response, 1);
    let (_, targets) = cache.open(request(id, 2, Vec::new()), 2, |_| None);
    assert_eq!(
        targets.iter().map(|t| t.index).collect::<Vec<_>>(),
        vec![1, 2, 0]
    );
}

#[test]
fn errors_are_always_answered_and_resent_when_they_clear() {
    let cache = FetchSessionCache::new(10, FetchSessionMetrics::default());
    let id = new_session(&cache, 1, false, 0);
    for epoch in 1..=2 {
        let (context, targets) = cache.open(request(id, epoch, Vec::new()), 1, |_| None);
        let mut response = answer(&targets, 0, &[]);
        response.responses[0].partitions[0].error_code = 6;
        cache.close(context, &targets, &mut response, 1);
        assert_eq!(answered(&response), vec![0], "an error at epoch {epoch}");
    }
    let (context, targets) = cache.open(request(id, 3, Vec::new()), 1, |_| None);
    let mut response = answer(&targets, 0, &[]);
    cache.close(context, &targets, &mut response, 1);
    assert_eq!(
        answered(&response),
        vec![0],
        "the same high watermark as before the error is sent again"
    );
}

#[test]
fn forgotten_partitions_leave_and_an_emptied_session_closes() {
    let cache = FetchSessionCache::new(10, FetchSessionMetrics::default());
    let id = new_session(&cache, 2, false, 0);
    let forgotten = [(TopicKey::Name("events".into()), 0)];
    let mut req = request(id, 1, Vec::new());
    req.forgotten = &forgotten;
    let (_, targets) = cache.open(req, 1, |_| None);
    assert_eq!(targets.iter().map(|t| t.index).collect::<Vec<_>>(), vec![1]);

    let forgotten = [(TopicKey::Name("events".into()), 1)];
    let mut req = request(id, 2, Vec::new());
    req.forgotten = &forgotten;
    let (context, targets) = cache.open(req, 2, |_| None);
    assert_eq!(context, FetchContext::Sessionless);
    assert!(targets.is_empty());
    assert!(cache.is_empty(), "a session without partitions is closed");
}

#[test]
fn session_errors() {
    let cache = FetchSessionCache::new(10, FetchSessionMetrics::default());
    let (context, _) = cache.open(request(12345, 1, Vec::new()), 0, |_| None);
    assert_eq!(
        context,
        FetchContext::Error(ResponseError::FetchSessionIdNotFound)
    );
    let (context, _) = cache.open(request(NO_SESSION, 1, Vec::new()), 0, |_| None);
    assert_eq!(
        context,
        FetchContext::Error(ResponseError::FetchSessionIdNotFound),
        "an incremental fetch without a session id"
    );
    let id = new_session(&cache, 1, false, 0);
    let (context, _) = cache.open(request(id, 5, Vec::new()), 0, |_| None);
    assert_eq!(
        context,
        FetchContext::Error(ResponseError::InvalidFetchSessionEpoch)
    );
    let mut v13 = request(id, 1, Vec::new());
    v13.version = 13;
    let (context, _) = cache.open(v13, 0, |_| None);
    assert_eq!(
        context,
        FetchContext::Error(ResponseError::FetchSessionTopicIdError),
        "a session by name continued by topic id"
    );
    let mut response = FetchResponse::default();
    assert!(!cache.close(context, std::iter::empty(), &mut response, 0));
    assert_eq!(
        response.error_code,
        ResponseError::FetchSessionTopicIdError.code()
    );
    assert_eq!(response.session_id, NO_SESSION);
}

#[test]
fn a_duplicate_request_is_refused_when_its_answer_is_final() {
    let cache = FetchSessionCache::new(10, FetchSessionMetrics::default());
    let id = new_session(&cache, 1, false, 0);
    let (first, targets) = cache.open(request(id, 1, Vec::new()), 1, |_| None);
    // The same request again, while the first waits: it carries an epoch the session has left.
    let (second, _) = cache.open(request(id, 1, Vec::new()), 1, |_| None);
    assert_eq!(
        second,
        FetchContext::Error(ResponseError::InvalidFetchSessionEpoch)
    );
    let (_third, _) = cache.open(request(id, 2, Vec::new()), 1, |_| None);
    let mut response = answer(&targets, 0, &[0]);
    assert!(!cache.close(first, &targets, &mut response, 1));
    assert_eq!(
        response.error_code,
        ResponseError::InvalidFetchSessionEpoch.code()
    );
    assert!(response.responses.is_empty());
}

#[test]
fn full_fetches_close_the_session_they_name() {
    let cache = FetchSessionCache::new(10, FetchSessionMetrics::default());
    let id = new_session(&cache, 1, false, 0);
    let (context, _) = cache.open(request(id, FINAL_EPOCH, Vec::new()), 1, |_| None);
    assert_eq!(context, FetchContext::Sessionless);
    assert!(cache.is_empty());

    let id = new_session(&cache, 1, false, 0);
    let (context, targets) = cache.open(
        request(id, INITIAL_EPOCH, vec![target("events", 0, 0)]),
        1,
        |_| None,
    );
    let mut response = answer(&targets, 0, &[]);
    cache.close(context, &targets, &mut response, 1);
    assert_ne!(
        response.session_id, id,
        "a new session replaces the old one"
    );
    assert_eq!(cache.len(), 1);
}

#[test]
fn topic_id_sessions_resolve_names_learned_later() {
    let cache = FetchSessionCache::new(10, FetchSessionMetrics::default());
    let topic_id = Uuid::new_v4();
    let unknown = FetchTarget {
        topic: None,
        topic_id,
        ..target("", 0, 0)
    };
    let mut req = request(NO_SESSION, INITIAL_EPOCH, vec![unknown]);
    req.version = 13;
    let (context, targets) = cache.open(req, 0, |_| None);
    let mut response = answer(&targets, -1, &[]);
    response.responses[0].topic_id = topic_id;
    response.responses[0].partitions[0].error_code = ResponseError::UnknownTopicId.code();
    cache.close(context, &targets, &mut response, 0);
    let id = response.session_id;
    let mut req = request(id, 1, Vec::new());
    req.version = 13;
    let (_, targets) = cache.open(req, 1, |asked| {
        (asked == topic_id).then(|| "created-late".to_owned())
    });
    assert_eq!(targets[0].topic.as_deref(), Some("created-late"));
}

#[test]
fn a_full_cache_makes_room_only_as_kafka_does() {
    let cache = FetchSessionCache::new(2, FetchSessionMetrics::default());
    assert_ne!(new_session(&cache, 1, false, 0), NO_SESSION);
    let large = new_session(&cache, 5, false, 0);
    assert_eq!(cache.len(), 2);

    // Young sessions give way to no consumer's session, however large.
    assert_eq!(new_session(&cache, 10, false, 1_000), NO_SESSION);
    // A follower's session may push out a consumer's, the smallest first.
    let follower = new_session(&cache, 1, true, 1_000);
    assert_ne!(follower, NO_SESSION);
    assert_eq!(cache.evictions(), 1);
    let survivors = |cache: &FetchSessionCache| {
        let mut ids: Vec<i32> = cache.lock().by_id.keys().copied().collect();
        ids.sort_unstable();
        ids
    };
    let mut expected = vec![large, follower];
    expected.sort_unstable();
    assert_eq!(
        survivors(&cache),
        expected,
        "the smaller consumer session went"
    );

    // Once sessions are old (but used recently), a larger one may replace a smaller one, never an equal one.
    let now = EVICTION_MS + 10_000;
    for (id, epoch) in [(large, 1), (follower, 1)] {
        let (context, targets) = cache.open(request(id, epoch, Vec::new()), now, |_| None);
        let mut response = answer(&targets, 0, &[]);
        cache.close(context, &targets, &mut response, now);
    }
    assert_eq!(
        new_session(&cache, 5, false, now),
        NO_SESSION,
        "same size as the smallest consumer session"
    );
    let larger = new_session(&cache, 6, false, now);
    assert_ne!(larger, NO_SESSION);
    let mut expected = vec![larger, follower];
    expected.sort_unstable();
    assert_eq!(survivors(&cache), expected);

    // A session idle for longer than the eviction time goes first, whatever its worth.
    let later = now + EVICTION_MS + 1;
    let (context, targets) = cache.open(request(larger, 1, Vec::new()), later, |_| None);
    let mut response = answer(&targets, 0, &[]);
    cache.close(context, &targets, &mut response, later);
    let tiny = new_session(&cache, 1, false, later);
    assert_ne!(tiny, NO_SESSION);
    let mut expected = vec![larger, tiny];
    expected.sort_unstable();
    assert_eq!(
        survivors(&cache),
        expected,
        "the idle follower session went"
    );
}

#[test]
fn no_slots_means_no_sessions() {
    let cache = FetchSessionCache::new(0, FetchSessionMetrics::default());
    assert_eq!(new_session(&cache, 1, true, 0), NO_SESSION);
}

#[test]
fn the_gauges_follow_sessions_and_their_partitions() {
    let metrics = FetchSessionMetrics::default();
    let cache = FetchSessionCache::new(10, metrics.clone());
    let id = new_session(&cache, 3, false, 0);
    new_session(&cache, 2, false, 0);
    assert_eq!((metrics.sessions.get(), metrics.partitions.get()), (2, 5));
    let forgotten = [(TopicKey::Name("events".into()), 0)];
    let mut req = request(id, 1, vec![target("events", 7, 0)]);
    req.forgotten = &forgotten;
    cache.open(req, 1, |_| None);
    assert_eq!(
        metrics.partitions.get(),
        5,
        "one partition added, one forgotten"
    );
    cache.open(request(id, FINAL_EPOCH, Vec::new()), 2, |_| None);
    assert_eq!((metrics.sessions.get(), metrics.partitions.get()), (1, 2));
}
