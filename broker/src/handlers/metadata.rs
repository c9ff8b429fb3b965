//! Metadata (key 3): brokers, controller and topic/partition leadership; creates missing topics when the
//! request allows it and `auto.create.topics.enable` is on.

use kafka_protocol::{
    messages::{
        metadata_response::{
            MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
        },
        BrokerId, MetadataRequest, MetadataResponse, TopicName,
    },
    protocol::StrBytes,
    ResponseError,
};
use uuid::Uuid;

use super::code;
use crate::{
    broker::{validate_topic_name, TopicError},
    metadata::TopicMetadata,
    protocol::RequestContext,
};

/// Kafka's "authorized operations not requested" sentinel.
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

fn topic_response(topic: &TopicMetadata, node_id: i32, version: i16) -> MetadataResponseTopic {
    let partitions = (0..topic.partitions)
        .map(|index| {
            MetadataResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(BrokerId(node_id))
                .with_leader_epoch(if version >= 7 { 0 } else { -1 })
                .with_replica_nodes(vec![BrokerId(node_id)])
                .with_isr_nodes(vec![BrokerId(node_id)])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(if version >= 10 { topic.id } else { Uuid::nil() })
        .with_partitions(partitions)
        .with_is_internal(topic.name == crate::group::OFFSETS_TOPIC)
        .with_topic_authorized_operations(OPERATIONS_NOT_REQUESTED)
}

fn error_topic(name: Option<String>, id: Uuid, error: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(name.map(|n| TopicName(StrBytes::from_string(n))))
        .with_topic_id(id)
        .with_error_code(code(error))
        .with_topic_authorized_operations(OPERATIONS_NOT_REQUESTED)
}

pub async fn handle(ctx: &RequestContext<'_>, request: MetadataRequest) -> MetadataResponse {
    let broker = ctx.broker;
    let config = &broker.config;
    let node_id = config.node_id;
    // v0 has no null: an empty list means every topic. From v1 on, null means every topic.
    let requested = match request.topics {
        Some(topics) if !(ctx.version == 0 && topics.is_empty()) => Some(topics),
        _ => None,
    };
    let topics = match requested {
        None => broker
            .metadata
            .image()
            .topics
            .values()
            .map(|t| topic_response(t, node_id, ctx.version))
            .collect(),
        Some(requested) => {
            let mut out = Vec::with_capacity(requested.len());
            for wanted in requested {
                let image = broker.metadata.image();
                let name = wanted.name.as_ref().map(|n| n.0.to_string());
                let found = match &name {
                    Some(name) => image.topics.get(name),
                    None => image.topic_by_id(wanted.topic_id),
                };
                if let Some(topic) = found {
                    out.push(topic_response(topic, node_id, ctx.version));
                    continue;
                }
                let Some(name) = name else {
                    out.push(error_topic(
                        None,
                        wanted.topic_id,
                        ResponseError::UnknownTopicId,
                    ));
                    continue;
                };
                if validate_topic_name(&name).is_err() {
                    out.push(error_topic(
                        Some(name),
                        Uuid::nil(),
                        ResponseError::InvalidTopicException,
                    ));
                    continue;
                }
                // v0-v3 have no allow flag and always allowed auto-creation.
                let allowed = request.allow_auto_topic_creation || ctx.version < 4;
                if !(allowed && config.auto_create_topics) {
                    out.push(error_topic(
                        Some(name),
                        Uuid::nil(),
                        ResponseError::UnknownTopicOrPartition,
                    ));
                    continue;
                }
                let created = broker
                    .create_topic(
                        &name,
                        config.num_partitions,
                        config.default_replication_factor,
                        Default::default(),
                        false,
                    )
                    .await;
                match created {
                    Ok(topic) => out.push(topic_response(&topic, node_id, ctx.version)),
                    // Another request created it meanwhile.
                    Err(TopicError::AlreadyExists(_)) => {
                        match broker.metadata.image().topics.get(&name) {
                            Some(topic) => out.push(topic_response(topic, node_id, ctx.version)),
                            None => out.push(error_topic(
                                Some(name),
                                Uuid::nil(),
                                ResponseError::LeaderNotAvailable,
                            )),
                        }
                    }
                    Err(e) => {
                        tracing::warn!(topic = %name, error = %e, "auto-creating topic failed");
                        out.push(error_topic(
                            Some(name),
                            Uuid::nil(),
                            ResponseError::UnknownServerError,
                        ));
                    }
                }
            }
            out
        }
    };
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(node_id))
            .with_host(StrBytes::from_string(config.advertised_host.clone()))
            .with_port(config.advertised_port)])
        .with_cluster_id(Some(StrBytes::from_string(
            broker.metadata.image().cluster_id.clone(),
        )))
        .with_controller_id(BrokerId(node_id))
        .with_topics(topics)
        .with_cluster_authorized_operations(OPERATIONS_NOT_REQUESTED)
}
