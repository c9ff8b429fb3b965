//! IncrementalAlterConfigs (key 44).

use kafka_protocol::{
    messages::{
        create_topics_request::CreatableTopic,
        describe_configs_request::DescribeConfigsResource,
        incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig},
        incremental_alter_configs_response::AlterConfigsResourceResponse,
        metadata_request::MetadataRequestTopic,
        CreateTopicsRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest,
        MetadataRequest,
    },
    ResponseError,
};
use tributary_broker::testing::TestBroker;

use crate::{batch, code, create_topic, produce, s, topic_name};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

fn op(name: &str, operation: i8, value: Option<&str>) -> AlterableConfig {
    AlterableConfig::default()
        .with_name(s(name))
        .with_config_operation(operation)
        .with_value(value.map(s))
}

fn on(kind: i8, name: &str, ops: Vec<AlterableConfig>) -> AlterConfigsResource {
    AlterConfigsResource::default()
        .with_resource_type(kind)
        .with_resource_name(s(name))
        .with_configs(ops)
}

async fn alter(
    broker: &TestBroker,
    resources: Vec<AlterConfigsResource>,
    validate_only: bool,
) -> Vec<AlterConfigsResourceResponse> {
    let request = IncrementalAlterConfigsRequest::default()
        .with_resources(resources)
        .with_validate_only(validate_only);
    broker.call(request, 1).await.responses
}

async fn topic_config(broker: &TestBroker, topic: &str, name: &str) -> String {
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(TOPIC)
            .with_resource_name(s(topic))
            .with_configuration_keys(Some(vec![s(name)]))]);
    let response = broker.call(request, 4).await;
    response.results[0].configs[0]
        .value
        .as_deref()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn set_delete_append_and_subtract_on_a_topic() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "tuned", 1).await;
    for version in 0..=1 {
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![on(
            TOPIC,
            "tuned",
            vec![op("retention.ms", SET, Some("1000"))],
        )]);
        assert_eq!(
            broker.call(request, version).await.responses[0].error_code,
            0,
            "v{version}"
        );
    }
    assert_eq!(topic_config(&broker, "tuned", "retention.ms").await, "1000");
    let results = alter(
        &broker,
        vec![on(TOPIC, "tuned", vec![op("retention.ms", DELETE, None)])],
        false,
    )
    .await;
    assert_eq!(results[0].error_code, 0);
    assert_eq!(
        topic_config(&broker, "tuned", "retention.ms").await,
        "604800000",
        "back to the default"
    );
    let results = alter(
        &broker,
        vec![on(
            TOPIC,
            "tuned",
            vec![op("cleanup.policy", APPEND, Some("compact"))],
        )],
        false,
    )
    .await;
    assert_eq!(results[0].error_code, 0);
    assert_eq!(
        topic_config(&broker, "tuned", "cleanup.policy").await,
        "delete,compact"
    );
    let results = alter(
        &broker,
        vec![on(
            TOPIC,
            "tuned",
            vec![op("cleanup.policy", SUBTRACT, Some("delete"))],
        )],
        false,
    )
    .await;
    assert_eq!(results[0].error_code, 0);
    assert_eq!(
        topic_config(&broker, "tuned", "cleanup.policy").await,
        "compact"
    );
}

#[tokio::test]
async fn a_change_takes_effect_on_the_open_log() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "tuned", 1).await;
    let results = alter(
        &broker,
        vec![on(
            TOPIC,
            "tuned",
            vec![op("max.message.bytes", SET, Some("100"))],
        )],
        false,
    )
    .await;
    assert_eq!(results[0].error_code, 0);
    let written = produce(&broker, "tuned", 0, batch(&[&"x".repeat(200)])).await;
    assert_eq!(written.error_code, code(ResponseError::MessageTooLarge));
}

#[tokio::test]
async fn invalid_changes_leave_the_whole_resource_unchanged() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "tuned", 1).await;
    let cases = [
        vec![
            op("retention.ms", SET, Some("1000")),
            op("retention.ms", SET, Some("soon")),
        ],
        vec![
            op("segment.ms", SET, Some("1000")),
            op("no.such.config", SET, Some("1")),
        ],
        vec![op("retention.ms", APPEND, Some("1"))],
        vec![op("cleanup.policy", SUBTRACT, Some("delete"))],
        vec![op("retention.ms", SET, None)],
        vec![op("retention.ms", 9, Some("1"))],
    ];
    for ops in cases {
        let described = format!(
            "{:?}",
            ops.iter()
                .map(|o| (o.name.to_string(), o.config_operation))
                .collect::<Vec<_>>()
        );
        let results = alter(&broker, vec![on(TOPIC, "tuned", ops)], false).await;
        assert_eq!(
            results[0].error_code,
            code(ResponseError::InvalidConfig),
            "{described}"
        );
        assert!(results[0].error_message.is_some(), "{described} says why");
    }
    assert_eq!(
        topic_config(&broker, "tuned", "retention.ms").await,
        "604800000"
    );
    assert_eq!(
        topic_config(&broker, "tuned", "segment.ms").await,
        "604800000"
    );
    assert_eq!(
        topic_config(&broker, "tuned", "cleanup.policy").await,
        "delete"
    );
}

/// Kafka 4's topic configs that have no feature behind them here are stored at their off value and refused,
/// with the reason, when turned on; the others take effect or are stored as Kafka stores them.
#[tokio::test]
async fn every_kafka_topic_config_is_known_and_features_missing_here_are_refused_when_on() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "tuned", 1).await;
    let accepted = [
        ("segment.index.bytes", "4096"),
        ("segment.jitter.ms", "1000"),
        ("max.compaction.lag.ms", "60000"),
        ("file.delete.delay.ms", "0"),
        ("local.retention.ms", "-2"),
        ("compression.zstd.level", "9"),
        ("remote.log.copy.disable", "true"),
        ("unclean.leader.election.enable", "false"),
        ("unclean.leader.election.enable", "true"),
        ("preallocate", "false"),
    ];
    for (name, value) in accepted {
        let results = alter(
            &broker,
            vec![on(TOPIC, "tuned", vec![op(name, SET, Some(value))])],
            false,
        )
        .await;
        assert_eq!(
            results[0].error_code, 0,
            "{name}={value}: {:?}",
            results[0].error_message
        );
        assert_eq!(topic_config(&broker, "tuned", name).await, value, "{name}");
    }
    for (name, why) in [
        ("remote.storage.enable", "no tiered storage"),
        ("preallocate", "not preallocated"),
    ] {
        let results = alter(
            &broker,
            vec![on(TOPIC, "tuned", vec![op(name, SET, Some("true"))])],
            false,
        )
        .await;
        assert_eq!(
            results[0].error_code,
            code(ResponseError::InvalidConfig),
            "{name}"
        );
        let message = results[0]
            .error_message
            .as_deref()
            .unwrap_or_default()
            .to_string();
        assert!(message.contains(why), "{name}: {message}");
        assert_eq!(
            topic_config(&broker, "tuned", name).await,
            "false",
            "{name}"
        );
    }
}

#[tokio::test]
async fn validate_only_changes_nothing() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "tuned", 1).await;
    let results = alter(
        &broker,
        vec![on(
            TOPIC,
            "tuned",
            vec![op("retention.ms", SET, Some("1000"))],
        )],
        true,
    )
    .await;
    assert_eq!(results[0].error_code, 0);
    assert_eq!(
        topic_config(&broker, "tuned", "retention.ms").await,
        "604800000"
    );
}

#[tokio::test]
async fn broker_defaults_apply_to_topics_without_an_override() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "inherits", 1).await;
    let results = alter(
        &broker,
        vec![on(
            BROKER,
            "",
            vec![
                op("log.retention.hours", SET, Some("1")),
                op("log.cleanup.policy", SET, Some("compact")),
            ],
        )],
        false,
    )
    .await;
    assert_eq!(results[0].error_code, 0, "{:?}", results[0].error_message);
    assert_eq!(
        topic_config(&broker, "inherits", "retention.ms").await,
        "3600000",
        "hours become milliseconds"
    );
    assert_eq!(
        topic_config(&broker, "inherits", "cleanup.policy").await,
        "compact"
    );
    let results = alter(
        &broker,
        vec![on(
            BROKER,
            "1",
            vec![op("log.retention.hours", DELETE, None)],
        )],
        false,
    )
    .await;
    assert_eq!(results[0].error_code, 0, "by this broker's id");
    assert_eq!(
        topic_config(&broker, "inherits", "retention.ms").await,
        "604800000"
    );
}

#[tokio::test]
async fn unknown_resources_and_static_broker_configs_are_refused() {
    let broker = TestBroker::start().await;
    let results = alter(
        &broker,
        vec![
            on(TOPIC, "ghost", vec![op("retention.ms", SET, Some("1"))]),
            on(BROKER, "42", vec![op("log.retention.ms", SET, Some("1"))]),
            on(
                BROKER,
                "",
                vec![op("auto.create.topics.enable", SET, Some("false"))],
            ),
            on(3, "group", vec![op("retention.ms", SET, Some("1"))]),
        ],
        false,
    )
    .await;
    assert_eq!(
        results[0].error_code,
        code(ResponseError::UnknownTopicOrPartition)
    );
    assert_eq!(
        results[1].error_code,
        code(ResponseError::InvalidRequest),
        "another broker"
    );
    assert_eq!(
        (results[2].error_code, results[2].error_message.as_deref()),
        (
            code(ResponseError::InvalidRequest),
            Some("Cannot update these configs dynamically: [auto.create.topics.enable]")
        ),
        "not a dynamic config: Kafka 4.4 answers INVALID_REQUEST"
    );
    assert_eq!(
        results[3].error_code,
        code(ResponseError::InvalidRequest),
        "unsupported resource type"
    );
}

/// Tributary takes the creation defaults live, cluster-wide (Kafka only from server.properties), so an
/// operator can make them follow the broker count without a restart.
#[tokio::test]
async fn creation_defaults_are_cluster_wide_dynamic_configs() {
    let broker = TestBroker::start().await;
    let results = alter(
        &broker,
        vec![on(BROKER, "", vec![op("num.partitions", SET, Some("3"))])],
        false,
    )
    .await;
    assert_eq!(results[0].error_code, 0, "{:?}", results[0].error_message);
    let created = broker
        .call(
            CreateTopicsRequest::default()
                .with_timeout_ms(5_000)
                .with_topics(vec![CreatableTopic::default()
                    .with_name(topic_name("unsized"))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1)]),
            7,
        )
        .await;
    assert_eq!(created.topics[0].error_code, 0);
    assert_eq!(created.topics[0].num_partitions, 3, "CreateTopics with -1");
    let metadata = broker
        .call(
            MetadataRequest::default()
                .with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(topic_name("auto")))
                ]))
                .with_allow_auto_topic_creation(true),
            12,
        )
        .await;
    assert_eq!(metadata.topics[0].partitions.len(), 3, "auto-created");

    let describe = |keys: Vec<&str>| {
        DescribeConfigsRequest::default()
            .with_include_synonyms(true)
            .with_resources(vec![DescribeConfigsResource::default()
                .with_resource_type(BROKER)
                .with_resource_name(s("1"))
                .with_configuration_keys(Some(keys.into_iter().map(s).collect()))])
    };
    let described = broker.call(describe(vec!["num.partitions"]), 4).await;
    let entry = &described.results[0].configs[0];
    let synonyms: Vec<(String, i8)> = entry
        .synonyms
        .iter()
        .map(|s| (s.value.as_deref().unwrap_or_default().to_owned(), s.source))
        .collect();
    assert_eq!(
        (entry.value.as_deref(), entry.config_source, synonyms),
        (Some("3"), 3, vec![("3".to_owned(), 3), ("1".to_owned(), 5)]),
        "dynamic default broker config over the built-in default"
    );

    let refused = alter(
        &broker,
        vec![
            on(
                BROKER,
                "",
                vec![op("default.replication.factor", SET, Some("0"))],
            ),
            on(BROKER, "", vec![op("num.partitions", APPEND, Some("4"))]),
        ],
        false,
    )
    .await;
    assert_eq!(
        (refused[0].error_code, refused[0].error_message.as_deref()),
        (
            code(ResponseError::InvalidConfig),
            Some("default.replication.factor must be an integer from 1 to 32767, got \"0\"")
        )
    );
    assert_eq!(refused[1].error_code, code(ResponseError::InvalidConfig));

    let results = alter(
        &broker,
        vec![on(BROKER, "", vec![op("num.partitions", DELETE, None)])],
        false,
    )
    .await;
    assert_eq!(results[0].error_code, 0);
    let described = broker.call(describe(vec!["num.partitions"]), 4).await;
    let entry = &described.results[0].configs[0];
    assert_eq!(
        (entry.value.as_deref(), entry.config_source),
        (Some("1"), 5)
    );
}

/// The replication throttle rates are per-broker configs with a cluster-wide default, as in Kafka
/// (`kafka-configs.sh --entity-type brokers --entity-default`).
#[tokio::test]
async fn throttle_rates_have_a_cluster_wide_default() {
    let broker = TestBroker::start().await;
    let rate = "follower.replication.throttled.rate";
    let results = alter(
        &broker,
        vec![on(BROKER, "", vec![op(rate, SET, Some("4096"))])],
        false,
    )
    .await;
    assert_eq!(results[0].error_code, 0, "{:?}", results[0].error_message);
    let described = |name: &'static str| {
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(BROKER)
            .with_resource_name(s(name))
            .with_configuration_keys(Some(vec![s(rate)]))])
    };
    let seen = |response: kafka_protocol::messages::DescribeConfigsResponse| {
        let entry = &response.results[0].configs;
        entry.first().map(|e| {
            (
                e.value.as_deref().unwrap_or_default().to_owned(),
                e.config_source,
            )
        })
    };
    assert_eq!(
        seen(broker.call(described(""), 4).await),
        Some(("4096".to_owned(), 3)),
        "the default resource"
    );
    assert_eq!(
        seen(broker.call(described("1"), 4).await),
        Some(("4096".to_owned(), 3)),
        "a broker without a rate of its own takes the default"
    );
    let results = alter(
        &broker,
        vec![on(BROKER, "1", vec![op(rate, SET, Some("100"))])],
        false,
    )
    .await;
    assert_eq!(results[0].error_code, 0);
    assert_eq!(
        seen(broker.call(described("1"), 4).await),
        Some(("100".to_owned(), 2)),
        "its own rate wins"
    );
    let refused = alter(
        &broker,
        vec![on(BROKER, "", vec![op(rate, SET, Some("-1"))])],
        false,
    )
    .await;
    assert_eq!(refused[0].error_code, code(ResponseError::InvalidConfig));
    let results = alter(
        &broker,
        vec![
            on(BROKER, "", vec![op(rate, DELETE, None)]),
            on(BROKER, "1", vec![op(rate, DELETE, None)]),
        ],
        false,
    )
    .await;
    assert!(results.iter().all(|r| r.error_code == 0));
    assert_eq!(seen(broker.call(described("1"), 4).await), None, "no limit");
}
