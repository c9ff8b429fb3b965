//! CreateTopics (key 19): creates topics with partition counts, replication factor and config overrides.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::{
    messages::{
        create_topics_response::{CreatableTopicConfigs, CreatableTopicResult},
        CreateTopicsRequest, CreateTopicsResponse,
    },
    protocol::StrBytes,
    ResponseError,
};

use super::{code, message, topic_error_code, RequestContext};
use crate::{
    cluster::controller::{AssignmentProblem, Placement, TopicError},
    config::{
        creation_defaults::{DEFAULT_REPLICATION_FACTOR, NUM_PARTITIONS},
        effective_topic_config, TOPIC_CONFIGS,
    },
};

/// From this version a client understands THROTTLING_QUOTA_EXCEEDED (KIP-599).
const STRICT_QUOTA_VERSION: i16 = 6;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let broker = ctx.broker;
    let config = &broker.config;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for topic in &request.topics {
        *seen.entry(topic.name.0.to_string()).or_default() += 1;
    }
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let result = CreatableTopicResult::default()
            .with_name(topic.name.clone())
            .with_num_partitions(-1)
            .with_replication_factor(-1);
        if seen.get(&name).copied().unwrap_or(0) > 1 {
            results.push(
                result
                    .with_error_code(code(ResponseError::InvalidRequest))
                    .with_error_message(message(format!(
                        "topic {name:?} appears more than once in the request"
                    ))),
            );
            continue;
        }
        let created = async {
            let placement = if topic.assignments.is_empty() {
                let dynamic = &broker.image().broker_configs;
                Placement::Spread {
                    partitions: if topic.num_partitions == -1 {
                        NUM_PARTITIONS.resolve_i32(dynamic, config.num_partitions)
                    } else {
                        topic.num_partitions
                    },
                    replication_factor: if topic.replication_factor == -1 {
                        DEFAULT_REPLICATION_FACTOR
                            .resolve_i16(dynamic, config.default_replication_factor)
                    } else {
                        topic.replication_factor
                    },
                }
            } else {
                if topic.num_partitions != -1 || topic.replication_factor != -1 {
                    return Err(TopicError::AssignmentsWithCounts);
                }
                if let Some((index, _)) = topic
                    .assignments
                    .iter()
                    .enumerate()
                    .find(|(i, a)| usize::try_from(a.partition_index).ok() != Some(*i))
                {
                    return Err(TopicError::InvalidAssignment {
                        partition: i32::try_from(index).unwrap_or(i32::MAX),
                        problem: AssignmentProblem::NotDense,
                    });
                }
                Placement::Assigned(
                    topic
                        .assignments
                        .iter()
                        .map(|a| a.broker_ids.iter().map(|id| id.0).collect())
                        .collect(),
                )
            };
            let mut configs = BTreeMap::new();
            for entry in &topic.configs {
                let Some(value) = &entry.value else {
                    return Err(TopicError::NullConfig {
                        key: entry.name.to_string(),
                    });
                };
                configs.insert(entry.name.to_string(), value.to_string());
            }
            if !request.validate_only {
                let partitions = match &placement {
                    Placement::Spread { partitions, .. } => *partitions,
                    Placement::Assigned(assignments) => {
                        i32::try_from(assignments.len()).unwrap_or(i32::MAX)
                    }
                };
                ctx.take_mutations(partitions, ctx.version >= STRICT_QUOTA_VERSION)?;
            }
            broker
                .controller
                .create_topic(&name, placement, configs, request.validate_only)
                .await
        }
        .await;
        match created {
            Ok(meta) => {
                let image = broker.image();
                let configs = TOPIC_CONFIGS
                    .iter()
                    .map(|def| {
                        let (value, source) = effective_topic_config(
                            def,
                            &meta.configs,
                            &image.broker_configs,
                            &config.topic_defaults,
                        );
                        CreatableTopicConfigs::default()
                            .with_name(StrBytes::from_static_str(def.name))
                            .with_value(Some(StrBytes::from_string(value.to_owned())))
                            .with_config_source(source as i8)
                    })
                    .collect();
                results.push(
                    result
                        .with_topic_id(if ctx.version >= 7 {
                            meta.id
                        } else {
                            uuid::Uuid::nil()
                        })
                        .with_num_partitions(if ctx.version >= 5 {
                            meta.partition_count()
                        } else {
                            -1
                        })
                        .with_replication_factor(if ctx.version >= 5 {
                            meta.replication_factor
                        } else {
                            -1
                        })
                        .with_configs((ctx.version >= 5).then_some(configs)),
                );
            }
            Err(e) => results.push(
                result
                    .with_error_code(topic_error_code(&e))
                    .with_error_message(message(e.to_string())),
            ),
        }
    }
    CreateTopicsResponse::default().with_topics(results)
}
