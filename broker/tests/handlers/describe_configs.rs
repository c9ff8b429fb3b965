//! DescribeConfigs (key 32).

use kafka_protocol::{
    messages::{
        describe_configs_request::DescribeConfigsResource,
        describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult},
        incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig},
        DescribeConfigsRequest, IncrementalAlterConfigsRequest,
    },
    ResponseError,
};
use tributary_broker::testing::TestBroker;

use crate::{code, create_topic, create_topic_with, s};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

/// Every topic config the broker implements; anything else is refused when set.
const TOPIC_CONFIGS: &[&str] = &[
    "cleanup.policy",
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.type",
    "compression.zstd.level",
    "delete.retention.ms",
    "errors.deadletterqueue.group.enable",
    "file.delete.delay.ms",
    "flush.messages",
    "flush.ms",
    "follower.replication.throttled.replicas",
    "index.interval.bytes",
    "leader.replication.throttled.replicas",
    "local.retention.bytes",
    "local.retention.ms",
    "max.compaction.lag.ms",
    "max.decompressed.message.bytes",
    "max.message.bytes",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.type",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "min.insync.replicas",
    "preallocate",
    "remote.copy.lag.bytes",
    "remote.copy.lag.ms",
    "remote.log.copy.disable",
    "remote.log.delete.on.disable",
    "remote.storage.enable",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.index.bytes",
    "segment.jitter.ms",
    "segment.ms",
    "unclean.leader.election.enable",
];

fn resource(kind: i8, name: &str, keys: Option<&[&str]>) -> DescribeConfigsResource {
    DescribeConfigsResource::default()
        .with_resource_type(kind)
        .with_resource_name(s(name))
        .with_configuration_keys(keys.map(|k| k.iter().map(|k| s(k)).collect()))
}

async fn describe(
    broker: &TestBroker,
    resources: Vec<DescribeConfigsResource>,
    version: i16,
) -> Vec<DescribeConfigsResult> {
    let request = DescribeConfigsRequest::default()
        .with_resources(resources)
        .with_include_synonyms(true)
        .with_include_documentation(version >= 3);
    broker.call(request, version).await.results
}

fn entry<'a>(result: &'a DescribeConfigsResult, name: &str) -> &'a DescribeConfigsResourceResult {
    result
        .configs
        .iter()
        .find(|c| &*c.name == name)
        .unwrap_or_else(|| panic!("{name} not described"))
}

fn value(result: &DescribeConfigsResult, name: &str) -> String {
    entry(result, name)
        .value
        .as_deref()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_topic_lists_every_config_with_its_default() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "plain", 1).await;
    for version in 1..=4 {
        let results = describe(&broker, vec![resource(TOPIC, "plain", None)], version).await;
        let result = &results[0];
        assert_eq!(result.error_code, 0, "v{version}");
        let mut names: Vec<&str> = result.configs.iter().map(|c| &*c.name).collect();
        names.sort();
        assert_eq!(names, TOPIC_CONFIGS, "v{version}");
        assert_eq!(
            value(result, "retention.ms"),
            "604800000",
            "v{version}: Kafka's default"
        );
        assert_eq!(value(result, "cleanup.policy"), "delete");
        assert_eq!(
            value(result, "flush.messages"),
            "1",
            "acknowledged writes are fsynced"
        );
        assert!(!entry(result, "retention.ms").read_only);
    }
}

#[tokio::test]
async fn configuration_keys_select_what_is_described() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "plain", 1).await;
    let results = describe(
        &broker,
        vec![resource(TOPIC, "plain", Some(&["segment.bytes", "nope"]))],
        4,
    )
    .await;
    let names: Vec<&str> = results[0].configs.iter().map(|c| &*c.name).collect();
    assert_eq!(names, vec!["segment.bytes"]);
}

#[tokio::test]
async fn types_and_documentation_from_v3() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "plain", 1).await;
    let v3 = describe(&broker, vec![resource(TOPIC, "plain", None)], 3).await;
    // Kafka's ConfigType ids: LONG 5, LIST 7, STRING 2, INT 3, DOUBLE 6.
    assert_eq!(entry(&v3[0], "retention.ms").config_type, 5);
    assert_eq!(entry(&v3[0], "cleanup.policy").config_type, 7);
    assert_eq!(entry(&v3[0], "segment.bytes").config_type, 3);
    assert!(entry(&v3[0], "retention.ms")
        .documentation
        .as_ref()
        .is_some_and(|d| !d.is_empty()));
}

#[tokio::test]
async fn each_layer_reports_its_own_value_and_source() {
    let broker = TestBroker::builder()
        .property("log.retention.hours", "2")
        .start()
        .await;
    create_topic_with(&broker, "layered", 1, &[("retention.ms", "1000")]).await;
    create_topic(&broker, "plain", 1).await;
    let alter = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(BROKER)
            .with_resource_name(s(""))
            .with_configs(vec![AlterableConfig::default()
                .with_name(s("log.segment.bytes"))
                .with_config_operation(0)
                .with_value(Some(s("2097152")))]),
    ]);
    assert_eq!(broker.call(alter, 1).await.responses[0].error_code, 0);
    let results = describe(
        &broker,
        vec![
            resource(TOPIC, "layered", None),
            resource(TOPIC, "plain", None),
        ],
        4,
    )
    .await;
    let (layered, plain) = (&results[0], &results[1]);
    let topic_override = entry(layered, "retention.ms");
    assert_eq!(
        (
            value(layered, "retention.ms").as_str(),
            topic_override.config_source
        ),
        ("1000", 1)
    );
    let names: Vec<&str> = topic_override.synonyms.iter().map(|s| &*s.name).collect();
    assert_eq!(
        names,
        vec!["retention.ms", "log.retention.ms", "log.retention.ms"],
        "synonyms in precedence order: the override, the static broker value, the default"
    );
    let statik = entry(plain, "retention.ms");
    assert_eq!(
        value(plain, "retention.ms"),
        "7200000",
        "log.retention.hours=2 in milliseconds"
    );
    let dynamic = entry(plain, "segment.bytes");
    assert_eq!(
        value(plain, "segment.bytes"),
        "2097152",
        "the dynamic broker default"
    );
    let default = entry(plain, "cleanup.policy");
    let sources = [
        topic_override.config_source,
        dynamic.config_source,
        statik.config_source,
        default.config_source,
    ];
    let mut distinct = sources.to_vec();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        4,
        "every layer has its own source: {sources:?}"
    );
}

#[tokio::test]
async fn config_sources_use_kafkas_ids() {
    let broker = TestBroker::builder()
        .property("log.retention.hours", "2")
        .start()
        .await;
    create_topic(&broker, "plain", 1).await;
    let alter = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(BROKER)
            .with_resource_name(s(""))
            .with_configs(vec![AlterableConfig::default()
                .with_name(s("log.segment.bytes"))
                .with_config_operation(0)
                .with_value(Some(s("2097152")))]),
    ]);
    assert_eq!(broker.call(alter, 1).await.responses[0].error_code, 0);
    let results = describe(&broker, vec![resource(TOPIC, "plain", None)], 4).await;
    assert_eq!(
        entry(&results[0], "segment.bytes").config_source,
        3,
        "DYNAMIC_DEFAULT_BROKER_CONFIG"
    );
    assert_eq!(
        entry(&results[0], "retention.ms").config_source,
        4,
        "STATIC_BROKER_CONFIG"
    );
    assert_eq!(
        entry(&results[0], "cleanup.policy").config_source,
        5,
        "DEFAULT_CONFIG"
    );
}

#[tokio::test]
async fn the_broker_resource_uses_broker_names() {
    let broker = TestBroker::builder().node_id(3).start().await;
    for name in ["", "3"] {
        let results = describe(&broker, vec![resource(BROKER, name, None)], 4).await;
        assert_eq!(results[0].error_code, 0, "broker {name:?}");
        assert_eq!(
            value(&results[0], "log.retention.ms"),
            "604800000",
            "broker {name:?}"
        );
        assert_eq!(value(&results[0], "message.max.bytes"), "1048588");
    }
}

#[tokio::test]
async fn the_broker_resource_shows_its_dynamic_per_broker_configs() {
    let broker = TestBroker::builder().node_id(3).start().await;
    let described = |results: &[DescribeConfigsResult], name: &str| {
        results[0]
            .configs
            .iter()
            .find(|c| &*c.name == name)
            .map(|c| {
                (
                    c.value.as_deref().unwrap_or_default().to_owned(),
                    c.config_source,
                )
            })
    };
    let results = describe(&broker, vec![resource(BROKER, "3", None)], 4).await;
    assert_eq!(
        described(&results, "leader.replication.throttled.rate"),
        None,
        "no rate set: unthrottled, nothing to show"
    );
    assert_eq!(
        described(&results, "tributary.broker.draining"),
        Some(("false".to_owned(), 5)),
        "DEFAULT_CONFIG"
    );

    let alter = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(BROKER)
            .with_resource_name(s("3"))
            .with_configs(vec![
                AlterableConfig::default()
                    .with_name(s("leader.replication.throttled.rate"))
                    .with_config_operation(0)
                    .with_value(Some(s("1048576"))),
                AlterableConfig::default()
                    .with_name(s("tributary.broker.draining"))
                    .with_config_operation(0)
                    .with_value(Some(s("true"))),
            ]),
    ]);
    let response = broker.call(alter, 1).await;
    assert_eq!(
        response.responses[0].error_code, 0,
        "{:?}",
        response.responses[0].error_message
    );
    let results = describe(&broker, vec![resource(BROKER, "3", None)], 4).await;
    assert_eq!(
        described(&results, "leader.replication.throttled.rate"),
        Some(("1048576".to_owned(), 2)),
        "DYNAMIC_BROKER_CONFIG"
    );
    let rate = entry(&results[0], "leader.replication.throttled.rate");
    assert_eq!(rate.config_type, 5, "LONG");
    assert_eq!(rate.synonyms.len(), 1);
    assert_eq!(rate.synonyms[0].source, 2);
    assert_eq!(
        described(&results, "follower.replication.throttled.rate"),
        None
    );
    assert_eq!(
        described(&results, "tributary.broker.draining"),
        Some(("true".to_owned(), 2))
    );
    assert_eq!(
        described(&results, "tributary.broker.filling"),
        Some(("false".to_owned(), 5)),
        "not filling"
    );
    let selected = describe(
        &broker,
        vec![resource(
            BROKER,
            "3",
            Some(&["leader.replication.throttled.rate"]),
        )],
        4,
    )
    .await;
    assert_eq!(selected[0].configs.len(), 1, "only the key asked for");
    // The cluster-wide default resource has no per-broker values.
    let defaults = describe(&broker, vec![resource(BROKER, "", None)], 4).await;
    assert_eq!(
        described(&defaults, "leader.replication.throttled.rate"),
        None
    );
    assert_eq!(described(&defaults, "tributary.broker.draining"), None);
}

#[tokio::test]
async fn unknown_resources_fail_alone() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "plain", 1).await;
    let results = describe(
        &broker,
        vec![
            resource(TOPIC, "ghost", None),
            resource(BROKER, "99", None),
            resource(3, "some-group", None),
            resource(TOPIC, "plain", Some(&["retention.ms"])),
        ],
        4,
    )
    .await;
    assert_eq!(
        results[0].error_code,
        code(ResponseError::UnknownTopicOrPartition)
    );
    assert_eq!(
        results[1].error_code,
        code(ResponseError::InvalidRequest),
        "another broker's id"
    );
    assert_eq!(
        results[2].error_code,
        code(ResponseError::InvalidRequest),
        "an unsupported resource type"
    );
    for refused in &results[..3] {
        assert!(
            refused.error_message.is_some(),
            "{:?} says why",
            refused.resource_name
        );
    }
    assert_eq!(results[3].error_code, 0);
}
