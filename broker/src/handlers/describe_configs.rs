//! DescribeConfigs (key 32): effective topic configs with their sources, and on the broker resource the
//! topic defaults under their broker-level names and the creation defaults, plus this broker's own dynamic
//! configs (the replication throttle rates when set, `tributary.broker.draining` and
//! `tributary.broker.filling`).

use std::collections::BTreeMap;

use kafka_protocol::{
    messages::{
        describe_configs_response::{
            DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
        },
        DescribeConfigsRequest, DescribeConfigsResponse,
    },
    protocol::StrBytes,
    ResponseError,
};

use super::{code, message};
use crate::{
    cluster::image::{MetadataImage, NodeId},
    config::{
        creation_defaults::CREATION_DEFAULTS, effective_topic_config, BrokerConfig, ConfigSource,
        ConfigValueType, TopicConfigDef, BROKER_FLAGS, DRAINING_CONFIG, NODE_CONFIGS,
        TOPIC_CONFIGS,
    },
    handlers::RequestContext,
};

pub(crate) const RESOURCE_TOPIC: i8 = 2;
pub(crate) const RESOURCE_BROKER: i8 = 4;

struct Layers<'a> {
    topic: &'a BTreeMap<String, String>,
    dynamic: &'a BTreeMap<String, String>,
    statik: &'a BTreeMap<String, String>,
}

fn entry(
    version: i16,
    def: &TopicConfigDef,
    name: &'static str,
    layers: &Layers<'_>,
    synonyms: bool,
    docs: bool,
    read_only: bool,
) -> DescribeConfigsResourceResult {
    let (value, source) = effective_topic_config(def, layers.topic, layers.dynamic, layers.statik);
    let mut synonym_list = Vec::new();
    if synonyms {
        let candidates = [
            (
                layers.topic.get(def.name),
                def.name,
                ConfigSource::TopicOverride,
            ),
            (
                layers.dynamic.get(def.name),
                def.broker_name,
                ConfigSource::DynamicDefaultBroker,
            ),
            (
                layers.statik.get(def.name),
                def.broker_name,
                ConfigSource::StaticBroker,
            ),
            (
                Some(&def.default.to_owned()),
                def.broker_name,
                ConfigSource::Default,
            ),
        ];
        for (value, synonym_name, source) in candidates {
            // A topic-only config (no broker-level name) has no broker synonyms.
            if synonym_name.is_empty() {
                continue;
            }
            if let Some(value) = value {
                synonym_list.push(
                    DescribeConfigsSynonym::default()
                        .with_name(StrBytes::from_static_str(synonym_name))
                        .with_value(Some(StrBytes::from_string(value.clone())))
                        .with_source(source as i8),
                );
            }
        }
    }
    DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_static_str(name))
        .with_value(Some(StrBytes::from_string(value.to_owned())))
        .with_config_source(source as i8)
        .with_read_only(read_only)
        .with_config_type(if version >= 3 {
            def.value_type as i8
        } else {
            0
        })
        .with_synonyms(synonym_list)
        .with_documentation((docs && version >= 3).then(|| StrBytes::from_static_str(def.doc)))
}

/// The creation defaults (`default.replication.factor`...): the cluster-wide dynamic value when one is set,
/// else this broker's own, with Kafka's synonym chain.
fn creation_entries(
    version: i16,
    image: &MetadataImage,
    config: &BrokerConfig,
    wanted: impl Fn(&str) -> bool,
    synonyms: bool,
    docs: bool,
) -> Vec<DescribeConfigsResourceResult> {
    CREATION_DEFAULTS
        .iter()
        .filter(|default| wanted(default.name))
        .map(|default| {
            let configured = default.configured(config);
            let statik = if configured == default.kafka_default {
                ConfigSource::Default
            } else {
                ConfigSource::StaticBroker
            };
            let dynamic = image
                .broker_configs
                .get(default.name)
                .and_then(|v| default.parse(v));
            let chain: Vec<(i64, ConfigSource)> = dynamic
                .map(|v| (v, ConfigSource::DynamicDefaultBroker))
                .into_iter()
                .chain([(configured, statik)])
                .chain(
                    (statik == ConfigSource::StaticBroker)
                        .then_some((default.kafka_default, ConfigSource::Default)),
                )
                .collect();
            let (value, source) = chain[0];
            let synonym_list = if synonyms {
                chain
                    .iter()
                    .map(|(value, source)| {
                        DescribeConfigsSynonym::default()
                            .with_name(StrBytes::from_static_str(default.name))
                            .with_value(Some(StrBytes::from_string(value.to_string())))
                            .with_source(*source as i8)
                    })
                    .collect()
            } else {
                Vec::new()
            };
            DescribeConfigsResourceResult::default()
                .with_name(StrBytes::from_static_str(default.name))
                .with_value(Some(StrBytes::from_string(value.to_string())))
                .with_config_source(source as i8)
                .with_config_type(if version >= 3 {
                    ConfigValueType::Int as i8
                } else {
                    0
                })
                .with_synonyms(synonym_list)
                .with_documentation(
                    (docs && version >= 3).then(|| StrBytes::from_static_str(default.doc)),
                )
        })
        .collect()
}

const RATE_DOC: &str = "bytes per second; see the replication throttle (KIP-73)";

/// One per-broker config or operation flag: a dynamic value (per broker or its cluster-wide default) is its
/// own only synonym; a default has none.
fn dynamic_entry(
    version: i16,
    docs: bool,
    name: &'static str,
    value: String,
    source: ConfigSource,
    value_type: ConfigValueType,
    doc: &'static str,
) -> DescribeConfigsResourceResult {
    let synonyms = if matches!(
        source,
        ConfigSource::DynamicBroker | ConfigSource::DynamicDefaultBroker
    ) {
        vec![DescribeConfigsSynonym::default()
            .with_name(StrBytes::from_static_str(name))
            .with_value(Some(StrBytes::from_string(value.clone())))
            .with_source(source as i8)]
    } else {
        Vec::new()
    };
    DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_static_str(name))
        .with_value(Some(StrBytes::from_string(value)))
        .with_config_source(source as i8)
        .with_config_type(if version >= 3 { value_type as i8 } else { 0 })
        .with_synonyms(synonyms)
        .with_documentation((docs && version >= 3).then(|| StrBytes::from_static_str(doc)))
}

/// The cluster-wide defaults of the per-broker rates that are set (`--entity-default`), for the default
/// broker resource.
fn rate_defaults(
    version: i16,
    image: &MetadataImage,
    wanted: impl Fn(&str) -> bool,
    docs: bool,
) -> Vec<DescribeConfigsResourceResult> {
    NODE_CONFIGS
        .iter()
        .filter(|name| wanted(name))
        .filter_map(|name| {
            let value = image.broker_configs.get(*name)?;
            Some(dynamic_entry(
                version,
                docs,
                name,
                value.clone(),
                ConfigSource::DynamicDefaultBroker,
                ConfigValueType::Long,
                RATE_DOC,
            ))
        })
        .collect()
}

/// What the per-broker dynamic configs of broker `id` say: each rate that is set (Kafka's
/// DYNAMIC_BROKER_CONFIG), else its cluster-wide default (DYNAMIC_DEFAULT_BROKER_CONFIG; unset means
/// unlimited, so nothing is listed), and the operation flags (draining,
/// filling), a default `false` when not set since they are stored only while true.
fn node_entries(
    version: i16,
    image: &MetadataImage,
    id: NodeId,
    wanted: impl Fn(&str) -> bool,
    docs: bool,
) -> Vec<DescribeConfigsResourceResult> {
    let configs = image.node_configs.get(&id);
    let described = |name, value, source, value_type, doc| {
        dynamic_entry(version, docs, name, value, source, value_type, doc)
    };
    let mut out: Vec<_> = NODE_CONFIGS
        .iter()
        .filter(|name| wanted(name))
        .filter_map(|name| {
            let (value, source) = match configs.and_then(|c| c.get(*name)) {
                Some(own) => (own, ConfigSource::DynamicBroker),
                None => (
                    image.broker_configs.get(*name)?,
                    ConfigSource::DynamicDefaultBroker,
                ),
            };
            Some(described(
                name,
                value.clone(),
                source,
                ConfigValueType::Long,
                RATE_DOC,
            ))
        })
        .collect();
    for flag in BROKER_FLAGS.iter().filter(|flag| wanted(flag)) {
        let set = configs
            .and_then(|c| c.get(*flag))
            .is_some_and(|v| v == "true");
        out.push(described(
            flag,
            set.to_string(),
            if set {
                ConfigSource::DynamicBroker
            } else {
                ConfigSource::Default
            },
            ConfigValueType::Boolean,
            if *flag == DRAINING_CONFIG {
                "true while the controller moves every replica off this broker and places nothing new on it"
            } else {
                "true while the controller moves replicas onto this broker until replica counts are even"
            },
        ));
    }
    out
}

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let broker = ctx.broker;
    let image = &ctx.image;
    let node_id = broker.config.node_id.to_string();
    let empty = BTreeMap::new();
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let name = resource.resource_name.to_string();
            let wanted = |key: &str| {
                resource
                    .configuration_keys
                    .as_ref()
                    .is_none_or(|keys| keys.iter().any(|k| &**k == key))
            };
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            match resource.resource_type {
                RESOURCE_TOPIC => {
                    let Some(topic) = image.topics.get(&name) else {
                        return result
                            .with_error_code(code(ResponseError::UnknownTopicOrPartition))
                            .with_error_message(message(format!("topic {name:?} does not exist")));
                    };
                    let layers = Layers {
                        topic: &topic.configs,
                        dynamic: &image.broker_configs,
                        statik: &broker.config.topic_defaults,
                    };
                    let configs = TOPIC_CONFIGS
                        .iter()
                        .filter(|def| wanted(def.name))
                        .map(|def| {
                            entry(
                                ctx.version,
                                def,
                                def.name,
                                &layers,
                                request.include_synonyms,
                                request.include_documentation,
                                false,
                            )
                        })
                        .collect();
                    result.with_configs(configs)
                }
                RESOURCE_BROKER if name.is_empty() || name == node_id => {
                    let layers = Layers {
                        topic: &empty,
                        dynamic: &image.broker_configs,
                        statik: &broker.config.topic_defaults,
                    };
                    let mut configs: Vec<_> = TOPIC_CONFIGS
                        .iter()
                        .filter(|def| !def.broker_name.is_empty() && wanted(def.broker_name))
                        .map(|def| {
                            entry(
                                ctx.version,
                                def,
                                def.broker_name,
                                &layers,
                                request.include_synonyms,
                                request.include_documentation,
                                false,
                            )
                        })
                        .collect();
                    configs.extend(creation_entries(
                        ctx.version,
                        image,
                        &broker.config,
                        wanted,
                        request.include_synonyms,
                        request.include_documentation,
                    ));
                    // The empty name is the cluster-wide default resource: no per-broker values there.
                    if name.is_empty() {
                        configs.extend(rate_defaults(
                            ctx.version,
                            image,
                            wanted,
                            request.include_documentation,
                        ));
                    } else {
                        configs.extend(node_entries(
                            ctx.version,
                            image,
                            broker.config.node_id,
                            wanted,
                            request.include_documentation,
                        ));
                    }
                    result.with_configs(configs)
                }
                RESOURCE_BROKER => result
                    .with_error_code(code(ResponseError::InvalidRequest))
                    .with_error_message(message(format!("this is broker {node_id}, not {name:?}"))),
                other => result
                    .with_error_code(code(ResponseError::InvalidRequest))
                    .with_error_message(message(format!("resource type {other} is not supported"))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}
