//! DescribeClientQuotas (key 48) and AlterClientQuotas (key 49), and the throttles the quotas impose on
//! produce, fetch, request time and topic mutations (reported in `throttle_time_ms`).

use kafka_protocol::{
    messages::{
        alter_client_quotas_request::{EntityData, EntryData, OpData},
        create_topics_request::CreatableTopic,
        describe_client_quotas_request::ComponentData,
        AlterClientQuotasRequest, CreateTopicsRequest, DescribeClientQuotasRequest,
        DescribeClientQuotasResponse, MetadataRequest,
    },
    ResponseError,
};
use tributary_broker::testing::{TestBroker, CLIENT_ID};

use crate::{batch, code, create_topic, fetch_request, produce_request, s, topic_name};

const EXACT: i8 = 0;
const DEFAULT: i8 = 1;
const SPECIFIED: i8 = 2;

fn entry(entity: &[(&str, Option<&str>)], ops: &[(&str, Option<f64>)]) -> EntryData {
    EntryData::default()
        .with_entity(
            entity
                .iter()
                .map(|(kind, name)| {
                    EntityData::default()
                        .with_entity_type(s(kind))
                        .with_entity_name(name.map(s))
                })
                .collect(),
        )
        .with_ops(
            ops.iter()
                .map(|(key, value)| {
                    OpData::default()
                        .with_key(s(key))
                        .with_value(value.unwrap_or(0.0))
                        .with_remove(value.is_none())
                })
                .collect(),
        )
}

/// Alters and returns each entry's (error code, message).
async fn alter(
    broker: &TestBroker,
    entries: Vec<EntryData>,
    validate_only: bool,
) -> Vec<(i16, Option<String>)> {
    let request = AlterClientQuotasRequest::default()
        .with_entries(entries)
        .with_validate_only(validate_only);
    broker
        .call(request, 1)
        .await
        .entries
        .into_iter()
        .map(|e| (e.error_code, e.error_message.map(|m| m.to_string())))
        .collect()
}

async fn set(broker: &TestBroker, entity: &[(&str, Option<&str>)], ops: &[(&str, Option<f64>)]) {
    let outcome = alter(broker, vec![entry(entity, ops)], false).await;
    assert_eq!(outcome, vec![(0, None)], "altering {entity:?}");
}

async fn describe(
    broker: &TestBroker,
    components: &[(&str, i8, Option<&str>)],
    strict: bool,
) -> DescribeClientQuotasResponse {
    let request = DescribeClientQuotasRequest::default()
        .with_components(
            components
                .iter()
                .map(|(kind, match_type, name)| {
                    ComponentData::default()
                        .with_entity_type(s(kind))
                        .with_match_type(*match_type)
                        .with_match(name.map(s))
                })
                .collect(),
        )
        .with_strict(strict);
    broker.call(request, 1).await
}

/// The described entities as "type=name,..." strings with their values, sorted.
fn described(response: &DescribeClientQuotasResponse) -> Vec<String> {
    assert_eq!(response.error_code, 0, "{:?}", response.error_message);
    let mut out: Vec<String> = response
        .entries
        .as_ref()
        .expect("entries")
        .iter()
        .map(|e| {
            let entity: Vec<String> = e
                .entity
                .iter()
                .map(|c| {
                    format!(
                        "{}={}",
                        c.entity_type,
                        c.entity_name.as_ref().map_or("<default>", |n| n.as_str())
                    )
                })
                .collect();
            let values: Vec<String> = e
                .values
                .iter()
                .map(|v| format!("{}:{}", v.key, v.value))
                .collect();
            format!("{} {}", entity.join(","), values.join(","))
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn quotas_are_altered_described_by_filter_and_kept_across_a_restart() {
    let mut broker = TestBroker::start().await;
    set(
        &broker,
        &[("client-id", Some("app"))],
        &[("producer_byte_rate", Some(1024.0))],
    )
    .await;
    set(
        &broker,
        &[("user", None), ("client-id", None)],
        &[
            ("consumer_byte_rate", Some(2048.0)),
            ("request_percentage", Some(12.5)),
        ],
    )
    .await;
    set(
        &broker,
        &[("ip", None)],
        &[("connection_creation_rate", Some(10.0))],
    )
    .await;

    assert_eq!(
        described(&describe(&broker, &[], false).await),
        [
            "client-id=app producer_byte_rate:1024",
            "ip=<default> connection_creation_rate:10",
            "user=<default>,client-id=<default> consumer_byte_rate:2048,request_percentage:12.5",
        ]
    );
    assert_eq!(
        described(&describe(&broker, &[("client-id", EXACT, Some("app"))], false).await),
        ["client-id=app producer_byte_rate:1024"]
    );
    assert_eq!(
        described(&describe(&broker, &[("client-id", DEFAULT, None)], false).await),
        ["user=<default>,client-id=<default> consumer_byte_rate:2048,request_percentage:12.5"]
    );
    // Strict: the entity must name exactly the filter's types.
    assert_eq!(
        described(&describe(&broker, &[("client-id", SPECIFIED, None)], true).await),
        ["client-id=app producer_byte_rate:1024"]
    );
    assert_eq!(
        described(&describe(&broker, &[("client-id", SPECIFIED, None)], false).await).len(),
        2
    );

    // Removing a key; the entity goes once it has no values.
    set(
        &broker,
        &[("client-id", Some("app"))],
        &[("producer_byte_rate", None)],
    )
    .await;
    broker.restart().await;
    assert_eq!(
        described(&describe(&broker, &[("client-id", SPECIFIED, None)], true).await),
        Vec::<String>::new()
    );
    assert_eq!(
        described(&describe(&broker, &[], false).await).len(),
        2,
        "kept across the restart"
    );
}

#[tokio::test]
async fn malformed_filters_fail_the_whole_describe() {
    let broker = TestBroker::start().await;
    for (components, error) in [
        (
            vec![("client-id", EXACT, None)],
            ResponseError::InvalidRequest,
        ),
        (
            vec![("client-id", DEFAULT, Some("x"))],
            ResponseError::InvalidRequest,
        ),
        (
            vec![("user", SPECIFIED, None), ("user", DEFAULT, None)],
            ResponseError::InvalidRequest,
        ),
        (
            vec![("ip", SPECIFIED, None), ("user", SPECIFIED, None)],
            ResponseError::InvalidRequest,
        ),
        (
            vec![("group", SPECIFIED, None)],
            ResponseError::UnsupportedVersion,
        ),
    ] {
        let response = describe(&broker, &components, false).await;
        assert_eq!(response.error_code, code(error), "{components:?}");
        assert!(response.error_message.is_some(), "{components:?}");
    }
}

#[tokio::test]
async fn invalid_entries_are_refused_one_by_one_and_validate_only_changes_nothing() {
    let broker = TestBroker::start().await;
    let outcome = alter(
        &broker,
        vec![
            entry(
                &[("client-id", Some("a"))],
                &[("producer_byte_rate", Some(10.5))],
            ),
            entry(
                &[("client-id", Some("b"))],
                &[("connection_creation_rate", Some(1.0))],
            ),
            entry(
                &[("ip", Some("127.0.0.1")), ("user", Some("u"))],
                &[("connection_creation_rate", Some(1.0))],
            ),
            entry(
                &[("ip", Some("nonsense"))],
                &[("connection_creation_rate", Some(1.0))],
            ),
            entry(
                &[("client-id", Some("c"))],
                &[("request_percentage", Some(-1.0))],
            ),
            entry(&[], &[("producer_byte_rate", Some(1.0))]),
            entry(
                &[("client-id", Some("ok"))],
                &[("producer_byte_rate", Some(100.0))],
            ),
        ],
        false,
    )
    .await;
    let invalid = code(ResponseError::InvalidRequest);
    for (i, (error, text)) in outcome.iter().enumerate().take(6) {
        assert_eq!(*error, invalid, "entry {i}: {text:?}");
        assert!(text.is_some(), "entry {i} says why");
    }
    assert_eq!(outcome[6], (0, None), "the valid entry is applied");
    assert_eq!(
        described(&describe(&broker, &[], false).await),
        ["client-id=ok producer_byte_rate:100"]
    );

    let outcome = alter(
        &broker,
        vec![entry(
            &[("client-id", Some("new"))],
            &[("producer_byte_rate", Some(5.0))],
        )],
        true,
    )
    .await;
    assert_eq!(outcome, vec![(0, None)]);
    assert_eq!(
        described(&describe(&broker, &[], false).await).len(),
        1,
        "validate_only stored nothing"
    );
}

#[tokio::test]
async fn a_producer_over_its_byte_rate_is_told_to_back_off_and_others_are_not() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "quota-produce", 1).await;
    let value = "x".repeat(1000);
    let values: Vec<&str> = (0..20).map(|_| value.as_str()).collect();
    let records = batch(&values);

    // Unthrottled while no quota applies to this client.
    set(
        &broker,
        &[("client-id", Some("someone-else"))],
        &[("producer_byte_rate", Some(1000.0))],
    )
    .await;
    let response = broker
        .call(produce_request("quota-produce", 0, records.clone()), 9)
        .await;
    assert_eq!(response.throttle_time_ms, 0);

    // ~20 KB against 1000 B/s measured over (at least) 10 of 11 one-second windows: about 10 s owed.
    set(
        &broker,
        &[("client-id", Some(CLIENT_ID))],
        &[("producer_byte_rate", Some(1000.0))],
    )
    .await;
    let response = broker
        .call(produce_request("quota-produce", 0, records), 9)
        .await;
    let partition = &response.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, 0, "the records are still written");
    assert!(
        (5_000..=15_000).contains(&response.throttle_time_ms),
        "throttle_time_ms {}",
        response.throttle_time_ms
    );
}

#[tokio::test]
async fn a_consumer_over_its_byte_rate_is_throttled_and_capped_to_one_window_of_bytes() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "quota-fetch", 1).await;
    let value = "y".repeat(1000);
    let values: Vec<&str> = (0..20).map(|_| value.as_str()).collect();
    for _ in 0..5 {
        broker
            .call(produce_request("quota-fetch", 0, batch(&values)), 9)
            .await;
    }
    // 2000 B/s: one fetch may carry at most 10 windows' worth, 20000 bytes (four 20 KB batches would not fit).
    set(
        &broker,
        &[("user", None)],
        &[("consumer_byte_rate", Some(2000.0))],
    )
    .await;
    let response = broker
        .call(
            fetch_request("quota-fetch", 0, 0).with_max_bytes(50 << 20),
            12,
        )
        .await;
    let records = response.responses[0].partitions[0]
        .records
        .clone()
        .unwrap_or_default();
    assert!(!records.is_empty(), "the first batch is always returned");
    assert!(
        records.len() < 2 * 20_500,
        "capped to the quota window: {} bytes",
        records.len()
    );
    assert!(response.throttle_time_ms > 0, "over 2000 B/s after ~20 KB");
}

#[tokio::test]
async fn topic_mutations_beyond_the_burst_are_refused_with_throttling_quota_exceeded() {
    let broker = TestBroker::start().await;
    // 1 partition/s over 11 windows: a burst of 11 partitions.
    set(
        &broker,
        &[("client-id", Some(CLIENT_ID))],
        &[("controller_mutation_rate", Some(1.0))],
    )
    .await;
    let create = |name: &str, partitions: i32| {
        CreateTopicsRequest::default()
            .with_topics(vec![CreatableTopic::default()
                .with_name(topic_name(name))
                .with_num_partitions(partitions)
                .with_replication_factor(1)])
            .with_timeout_ms(5_000)
    };
    // Accepted while tokens remain, even though it overdraws them.
    let first = broker.call(create("burst", 20), 7).await;
    assert_eq!(first.topics[0].error_code, 0);
    assert!(
        first.throttle_time_ms > 0,
        "overdrawn by 9: {}",
        first.throttle_time_ms
    );
    // Strict (v6+): refused while overdrawn.
    let second = broker.call(create("refused", 1), 7).await;
    assert_eq!(
        second.topics[0].error_code,
        code(ResponseError::ThrottlingQuotaExceeded),
        "{:?}",
        second.topics[0].error_message
    );
    assert!(second.throttle_time_ms > 0);
    // Permissive (v5): done, and throttled.
    let old = broker.call(create("permissive", 1), 5).await;
    assert_eq!(old.topics[0].error_code, 0);
    assert!(old.throttle_time_ms > 0);
}

#[tokio::test]
async fn request_time_over_request_percentage_is_throttled_at_most_one_window() {
    let broker = TestBroker::start().await;
    set(
        &broker,
        &[("client-id", Some(CLIENT_ID))],
        &[("request_percentage", Some(0.000_01))],
    )
    .await;
    let mut throttles = Vec::new();
    for _ in 0..5 {
        let response = broker
            .call(MetadataRequest::default().with_topics(None), 12)
            .await;
        throttles.push(response.throttle_time_ms);
    }
    assert!(throttles.iter().any(|t| *t > 0), "{throttles:?}");
    assert!(
        throttles.iter().all(|t| *t <= 1_000),
        "bounded by one window: {throttles:?}"
    );
}
