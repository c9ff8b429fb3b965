//! AlterConfigs (key 33): the non-incremental form, which replaces a resource's whole set of overrides.

use kafka_protocol::{
    messages::{
        alter_configs_request::{AlterConfigsResource, AlterableConfig},
        alter_configs_response::AlterConfigsResourceResponse,
        describe_configs_request::DescribeConfigsResource,
        incremental_alter_configs_request as incremental, AlterConfigsRequest,
        DescribeConfigsRequest, IncrementalAlterConfigsRequest,
    },
    ResponseError,
};
use tributary_broker::testing::TestBroker;

use crate::{code, create_topic, create_topic_with, s};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

fn resource(kind: i8, name: &str, configs: &[(&str, Option<&str>)]) -> AlterConfigsResource {
    AlterConfigsResource::default()
        .with_resource_type(kind)
        .with_resource_name(s(name))
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    AlterableConfig::default()
                        .with_name(s(k))
                        .with_value(v.map(s))
                })
                .collect(),
        )
}

async fn alter(
    broker: &TestBroker,
    resources: Vec<AlterConfigsResource>,
    validate_only: bool,
    version: i16,
) -> Vec<AlterConfigsResourceResponse> {
    let request = AlterConfigsRequest::default()
        .with_resources(resources)
        .with_validate_only(validate_only);
    broker.call(request, version).await.responses
}

/// (value, is_default) of a topic's configs, as DescribeConfigs reports them.
async fn topic_configs(broker: &TestBroker, topic: &str, names: &[&str]) -> Vec<(String, bool)> {
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(TOPIC)
            .with_resource_name(s(topic))
            .with_configuration_keys(Some(names.iter().map(|n| s(n)).collect()))]);
    let response = broker.call(request, 4).await;
    names
        .iter()
        .map(|name| {
            let entry = response.results[0]
                .configs
                .iter()
                .find(|c| &*c.name == *name)
                .unwrap_or_else(|| panic!("{name} described"));
            (
                entry.value.as_deref().unwrap_or_default().to_owned(),
                entry.config_source == 5,
            )
        })
        .collect()
}

#[tokio::test]
async fn the_named_configs_replace_every_override_of_a_topic() {
    let broker = TestBroker::start().await;
    for version in 0..=2 {
        let topic = format!("tuned-v{version}");
        create_topic_with(
            &broker,
            &topic,
            1,
            &[("retention.ms", "1000"), ("segment.bytes", "2048")],
        )
        .await;
        let results = alter(
            &broker,
            vec![resource(
                TOPIC,
                &topic,
                &[
                    ("cleanup.policy", Some("compact")),
                    ("retention.ms", Some("5000")),
                ],
            )],
            false,
            version,
        )
        .await;
        assert_eq!(
            (results[0].error_code, results[0].resource_name.as_str()),
            (0, topic.as_str()),
            "v{version}: {:?}",
            results[0].error_message
        );
        assert_eq!(
            topic_configs(
                &broker,
                &topic,
                &["cleanup.policy", "retention.ms", "segment.bytes"]
            )
            .await,
            vec![
                ("compact".to_owned(), false),
                ("5000".to_owned(), false),
                ("1073741824".to_owned(), true)
            ],
            "v{version}: segment.bytes was not named, so it went back to its default"
        );
    }
    let cleared = alter(&broker, vec![resource(TOPIC, "tuned-v0", &[])], false, 1).await;
    assert_eq!(cleared[0].error_code, 0);
    assert_eq!(
        topic_configs(&broker, "tuned-v0", &["cleanup.policy", "retention.ms"]).await,
        vec![("delete".to_owned(), true), ("604800000".to_owned(), true)],
        "no configs at all: every override goes"
    );
}

#[tokio::test]
async fn validate_only_and_invalid_values_change_nothing() {
    let broker = TestBroker::start().await;
    create_topic_with(&broker, "kept", 1, &[("retention.ms", "1000")]).await;
    let checked = alter(
        &broker,
        vec![resource(TOPIC, "kept", &[("segment.bytes", Some("4096"))])],
        true,
        1,
    )
    .await;
    assert_eq!(checked[0].error_code, 0);
    let invalid = alter(
        &broker,
        vec![resource(
            TOPIC,
            "kept",
            &[
                ("segment.bytes", Some("4096")),
                ("retention.ms", Some("soon")),
            ],
        )],
        false,
        1,
    )
    .await;
    assert_eq!(invalid[0].error_code, code(ResponseError::InvalidConfig));
    let unknown = alter(
        &broker,
        vec![resource(TOPIC, "kept", &[("no.such.config", Some("1"))])],
        false,
        1,
    )
    .await;
    assert_eq!(unknown[0].error_code, code(ResponseError::InvalidConfig));
    assert_eq!(
        topic_configs(&broker, "kept", &["retention.ms", "segment.bytes"]).await,
        vec![("1000".to_owned(), false), ("1073741824".to_owned(), true)]
    );
}

/// Kafka's messages (checked on Kafka 4.4.0, which logs them for a request with a duplicated resource but
/// then never answers it: an IllegalStateException in its forwarding path; this broker answers).
#[tokio::test]
async fn each_resource_fails_alone_with_kafkas_errors() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "twice", 1).await;
    create_topic(&broker, "fine", 1).await;
    let results = alter(
        &broker,
        vec![
            resource(TOPIC, "twice", &[("retention.ms", Some("1"))]),
            resource(TOPIC, "ghost", &[("retention.ms", Some("1"))]),
            resource(
                TOPIC,
                "fine",
                &[("retention.ms", Some("1")), ("retention.ms", Some("2"))],
            ),
            resource(TOPIC, "fine", &[]),
            resource(TOPIC, "twice", &[("retention.ms", Some("2"))]),
            resource(BROKER, "42", &[("log.retention.ms", Some("1"))]),
            resource(BROKER, "one", &[("log.retention.ms", Some("1"))]),
            resource(BROKER, "", &[("log.retention.ms", None)]),
            resource(3, "group", &[("retention.ms", Some("1"))]),
        ],
        false,
        2,
    )
    .await;
    let outcomes: Vec<(i16, Option<String>)> = results
        .iter()
        .map(|r| {
            (
                r.error_code,
                r.error_message.as_ref().map(ToString::to_string),
            )
        })
        .collect();
    let invalid = |text: &str| (code(ResponseError::InvalidRequest), Some(text.to_owned()));
    assert_eq!(
        outcomes,
        vec![
            invalid("Each resource must appear at most once."),
            (
                code(ResponseError::UnknownTopicOrPartition),
                Some("The topic 'ghost' does not exist.".to_owned())
            ),
            invalid("Each resource must appear at most once."),
            invalid("Each resource must appear at most once."),
            invalid("Each resource must appear at most once."),
            invalid("Unexpected broker id, expected 1, but received 42"),
            invalid("Node id must be an integer, but it is: one"),
            invalid("Null value not supported for : log.retention.ms"),
            invalid("Unknown resource type 3"),
        ]
    );
    let duplicate_key = alter(
        &broker,
        vec![
            resource(
                TOPIC,
                "fine",
                &[("retention.ms", Some("1")), ("retention.ms", Some("2"))],
            ),
            resource(TOPIC, "twice", &[("retention.ms", Some("3"))]),
        ],
        false,
        2,
    )
    .await;
    assert_eq!(
        (
            duplicate_key[0].error_code,
            duplicate_key[0].error_message.as_deref()
        ),
        (
            code(ResponseError::InvalidRequest),
            Some("Error due to duplicate config keys")
        )
    );
    assert_eq!(
        duplicate_key[1].error_code, 0,
        "the other resource is applied"
    );
    assert_eq!(
        topic_configs(&broker, "twice", &["retention.ms"]).await,
        vec![("3".to_owned(), false)]
    );
    assert_eq!(
        topic_configs(&broker, "fine", &["retention.ms"]).await,
        vec![("604800000".to_owned(), true)]
    );
}

#[tokio::test]
async fn the_broker_resource_replaces_the_cluster_wide_defaults() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "inherits", 1).await;
    let set = |name: &str, value: &str| {
        incremental::AlterableConfig::default()
            .with_name(s(name))
            .with_config_operation(0)
            .with_value(Some(s(value)))
    };
    let incremental = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental::AlterConfigsResource::default()
            .with_resource_type(BROKER)
            .with_resource_name(s(""))
            .with_configs(vec![
                set("log.retention.hours", "1"),
                set("log.cleanup.policy", "compact"),
            ]),
    ]);
    assert_eq!(broker.call(incremental, 1).await.responses[0].error_code, 0);
    assert_eq!(
        topic_configs(&broker, "inherits", &["cleanup.policy", "retention.ms"]).await,
        vec![("compact".to_owned(), false), ("3600000".to_owned(), false)]
    );
    let results = alter(
        &broker,
        vec![resource(BROKER, "1", &[("log.retention.ms", Some("5000"))])],
        false,
        1,
    )
    .await;
    assert_eq!(results[0].error_code, 0, "{:?}", results[0].error_message);
    assert_eq!(
        topic_configs(&broker, "inherits", &["cleanup.policy", "retention.ms"]).await,
        vec![("delete".to_owned(), true), ("5000".to_owned(), false)],
        "log.cleanup.policy was not named, so the cluster-wide default is gone"
    );
    let refused = alter(
        &broker,
        vec![resource(
            BROKER,
            "",
            &[("auto.create.topics.enable", Some("false"))],
        )],
        false,
        1,
    )
    .await;
    assert_eq!(
        (refused[0].error_code, refused[0].error_message.as_deref()),
        (
            code(ResponseError::InvalidRequest),
            Some("Cannot update these configs dynamically: [auto.create.topics.enable]")
        ),
        "as Kafka 4.4 answers"
    );
}
