//! Metadata (key 3): brokers, controller and topic/partition leadership; creates missing topics when the
//! request allows it and `auto.create.topics.enable` is on. Everything in one response comes from one
//! metadata image.

use std::sync::Arc;

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

use super::{code, RequestContext, CLUSTER_OPERATIONS, OPERATIONS_NOT_REQUESTED, TOPIC_OPERATIONS};
use crate::cluster::{
    controller::{validate_topic_name, Placement, TopicError},
    image::{MetadataImage, NodeId, TopicMetadata, NO_LEADER},
};
use crate::config::creation_defaults::{DEFAULT_REPLICATION_FACTOR, NUM_PARTITIONS};

/// One partition as clients see it, from one image: shared by Metadata and DescribeTopicPartitions so the
/// two never disagree about a leader or a replica.
pub(super) struct PartitionView {
    pub(super) index: i32,
    /// The leader when it is live; clients get -1 otherwise.
    pub(super) live_leader: Option<NodeId>,
    pub(super) leader_epoch: i32,
    pub(super) replicas: Vec<BrokerId>,
    pub(super) isr: Vec<BrokerId>,
    /// Replicas on brokers that are fenced or not registered.
    pub(super) offline: Vec<BrokerId>,
}

impl PartitionView {
    pub(super) fn leader_id(&self) -> BrokerId {
        BrokerId(self.live_leader.unwrap_or(NO_LEADER))
    }
}

/// The views of `topic`'s partitions `from..`.
pub(super) fn partition_views<'a>(
    image: &'a MetadataImage,
    topic: &'a TopicMetadata,
    from: usize,
) -> impl Iterator<Item = PartitionView> + 'a {
    let ids = |ids: &[NodeId]| ids.iter().copied().map(BrokerId).collect::<Vec<_>>();
    topic
        .partitions
        .iter()
        .enumerate()
        .skip(from)
        .map(move |(index, registration)| PartitionView {
            index: i32::try_from(index).unwrap_or(i32::MAX),
            live_leader: image
                .live_broker(registration.leader)
                .map(|_| registration.leader),
            leader_epoch: registration.leader_epoch,
            replicas: ids(&registration.replicas),
            isr: ids(&registration.isr),
            offline: ids(&registration.offline_replicas(image)),
        })
}

/// Whether Kafka lists `name` as an internal topic.
pub(super) fn is_internal(name: &str) -> bool {
    name == crate::group::OFFSETS_TOPIC
}

fn topic_response(
    image: &MetadataImage,
    topic: &TopicMetadata,
    version: i16,
    operations: i32,
) -> MetadataResponseTopic {
    let partitions = partition_views(image, topic, 0)
        .map(|view| {
            MetadataResponsePartition::default()
                .with_partition_index(view.index)
                .with_error_code(if view.live_leader.is_some() {
                    0
                } else {
                    code(ResponseError::LeaderNotAvailable)
                })
                .with_leader_id(view.leader_id())
                .with_leader_epoch(if version >= 7 { view.leader_epoch } else { -1 })
                .with_replica_nodes(view.replicas)
                .with_isr_nodes(view.isr)
                .with_offline_replicas(view.offline)
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(if version >= 10 { topic.id } else { Uuid::nil() })
        .with_partitions(partitions)
        .with_is_internal(is_internal(&topic.name))
        .with_topic_authorized_operations(operations)
}

fn error_topic(name: Option<String>, id: Uuid, error: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(name.map(|n| TopicName(StrBytes::from_string(n))))
        .with_topic_id(id)
        .with_error_code(code(error))
        .with_topic_authorized_operations(OPERATIONS_NOT_REQUESTED)
}

/// What to answer for one requested topic, decided before the answer is built from one image.
enum Answer {
    Topic(String),
    Error(Option<String>, ResponseError),
}

pub async fn handle(ctx: &RequestContext<'_>, request: MetadataRequest) -> MetadataResponse {
    let broker = ctx.broker;
    let config = &broker.config;
    // v0 has no null: an empty list means every topic. From v1 on, null means every topic.
    let requested = match request.topics {
        Some(topics) if !(ctx.version == 0 && topics.is_empty()) => Some(topics),
        _ => None,
    };
    let mut image = Arc::clone(&ctx.image);
    let answers: Option<Vec<Answer>> = match requested {
        None => None,
        Some(requested) => {
            let mut answers = Vec::with_capacity(requested.len());
            let mut created_any = false;
            for wanted in requested {
                let name = wanted.name.as_ref().map(|n| n.0.to_string());
                let found = match &name {
                    Some(name) => image.topics.get(name),
                    None => image.topic_by_id(wanted.topic_id),
                };
                if let Some(topic) = found {
                    answers.push(Answer::Topic(topic.name.clone()));
                    continue;
                }
                let Some(name) = name else {
                    answers.push(Answer::Error(None, ResponseError::UnknownTopicId));
                    continue;
                };
                if validate_topic_name(&name).is_err() {
                    answers.push(Answer::Error(
                        Some(name),
                        ResponseError::InvalidTopicException,
                    ));
                    continue;
                }
                // v0-v3 have no allow flag and always allowed auto-creation.
                let allowed = request.allow_auto_topic_creation || ctx.version < 4;
                if !(allowed && config.auto_create_topics) {
                    answers.push(Answer::Error(
                        Some(name),
                        ResponseError::UnknownTopicOrPartition,
                    ));
                    continue;
                }
                let placement = Placement::Spread {
                    partitions: NUM_PARTITIONS
                        .resolve_i32(&image.broker_configs, config.num_partitions),
                    replication_factor: DEFAULT_REPLICATION_FACTOR
                        .resolve_i16(&image.broker_configs, config.default_replication_factor),
                };
                let created = broker
                    .controller
                    .create_topic(&name, placement, Default::default(), false)
                    .await;
                match created {
                    // Another request may have created it meanwhile.
                    Ok(_) | Err(TopicError::AlreadyExists(_)) => {
                        created_any = true;
                        answers.push(Answer::Topic(name));
                    }
                    Err(e) => {
                        tracing::warn!(topic = %name, error = %crate::error_chain(&e), "auto-creating topic failed");
                        answers.push(Answer::Error(Some(name), ResponseError::UnknownServerError));
                    }
                }
            }
            if created_any {
                // The answer comes from one image: the first that has every topic this request created.
                image = broker.image();
            }
            Some(answers)
        }
    };
    // No authorizer: every operation is allowed, which is what Kafka reports without one.
    let topic_operations = if request.include_topic_authorized_operations {
        TOPIC_OPERATIONS
    } else {
        OPERATIONS_NOT_REQUESTED
    };
    let topics = match answers {
        None => image
            .topics
            .values()
            .map(|t| topic_response(&image, t, ctx.version, topic_operations))
            .collect(),
        Some(answers) => answers
            .into_iter()
            .map(|answer| match answer {
                Answer::Topic(name) => match image.topics.get(&name) {
                    Some(topic) => topic_response(&image, topic, ctx.version, topic_operations),
                    None => error_topic(Some(name), Uuid::nil(), ResponseError::LeaderNotAvailable),
                },
                Answer::Error(name, error) => error_topic(name, Uuid::nil(), error),
            })
            .collect(),
    };
    let brokers = image
        .live_endpoints(super::CLIENT_LISTENER)
        .map(|(b, endpoint)| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.id))
                .with_host(StrBytes::from_string(endpoint.host.clone()))
                .with_port(endpoint.port)
                .with_rack(b.rack.clone().map(StrBytes::from_string))
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(StrBytes::from_string(image.cluster_id.clone())))
        .with_controller_id(BrokerId(ctx.broker.active_controller(&image).unwrap_or(-1)))
        .with_topics(topics)
        .with_cluster_authorized_operations(if request.include_cluster_authorized_operations {
            CLUSTER_OPERATIONS
        } else {
            OPERATIONS_NOT_REQUESTED
        })
}
