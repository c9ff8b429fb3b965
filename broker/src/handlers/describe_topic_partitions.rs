//! DescribeTopicPartitions (key 75, KIP-966): the partitions of named topics (or of every topic), in
//! topic-name order and in pages of at most `response_partition_limit` partitions, with a cursor where the
//! next page starts. Partition state comes from the same view Metadata answers from, out of the one image
//! of the request. There are no eligible leader replicas here, so both ELR lists are always empty.
//!
//! Paging follows Kafka's broker: a topic that does not fit whole ends the page with a cursor at its first
//! partition left out; once the limit is used up exactly, the cursor names the next topic at partition 0.

use kafka_protocol::{
    messages::{
        describe_topic_partitions_response::{
            Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
        },
        DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
    },
    protocol::StrBytes,
    ResponseError,
};
use uuid::Uuid;

use super::{
    code,
    metadata::{is_internal, partition_views},
    RequestContext, TOPIC_OPERATIONS,
};
use crate::cluster::{controller::validate_topic_name, image::MetadataImage};

/// Kafka's `max.request.partition.size.limit` default: the most partitions one response carries, whatever
/// the request asks for.
const MAX_PARTITIONS_PER_RESPONSE: i32 = 2000;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    describe(&ctx.image, request)
}

fn describe(
    image: &MetadataImage,
    request: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let every_topic = request.topics.is_empty();
    let cursor = request
        .cursor
        .as_ref()
        .map(|c| (c.topic_name.0.to_string(), c.partition_index));
    let cursor_topic = cursor.as_ref().map_or("", |(name, _)| name.as_str());
    let mut names: Vec<String> = if every_topic {
        image.topics.keys().cloned().collect()
    } else {
        request
            .topics
            .iter()
            .map(|t| t.name.0.to_string())
            .collect()
    };
    // Topics before the cursor were on earlier pages.
    names.retain(|name| name.as_str() >= cursor_topic);
    names.sort_unstable();
    names.dedup();
    if let Some((topic, _)) = &cursor {
        if !every_topic && names.binary_search(topic).is_err() {
            return refused(&request, ResponseError::InvalidRequest);
        }
    }

    let mut response = DescribeTopicPartitionsResponse::default();
    let mut remaining = request
        .response_partition_limit
        .min(MAX_PARTITIONS_PER_RESPONSE);
    for name in names {
        if remaining == 0 {
            response.next_cursor = Some(cursor_at(&name, 0));
            break;
        }
        if remaining < 0 {
            continue;
        }
        let Some(topic) = image.topics.get(&name) else {
            let error = if validate_topic_name(&name).is_ok() {
                ResponseError::UnknownTopicOrPartition
            } else {
                ResponseError::InvalidTopicException
            };
            response
                .topics
                .push(error_topic(&name, error).with_topic_authorized_operations(TOPIC_OPERATIONS));
            continue;
        };
        let start = match &cursor {
            Some((cursor_topic, index)) if *cursor_topic == name => *index,
            _ => 0,
        };
        let count = topic.partition_count();
        let end = count.min(start.saturating_add(remaining));
        let partitions: Vec<_> = partition_views(image, topic, usize::try_from(start).unwrap_or(0))
            .take_while(|view| view.index < end)
            .map(|view| {
                DescribeTopicPartitionsResponsePartition::default()
                    .with_partition_index(view.index)
                    .with_leader_id(view.leader_id())
                    .with_leader_epoch(view.leader_epoch)
                    .with_replica_nodes(view.replicas)
                    .with_isr_nodes(view.isr)
                    .with_offline_replicas(view.offline)
                    .with_eligible_leader_replicas(Some(Vec::new()))
                    .with_last_known_elr(Some(Vec::new()))
            })
            .collect();
        let returned = i32::try_from(partitions.len()).unwrap_or(i32::MAX);
        response.topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                .with_topic_id(topic.id)
                .with_is_internal(is_internal(&name))
                .with_partitions(partitions)
                .with_topic_authorized_operations(TOPIC_OPERATIONS),
        );
        if end < count {
            response.next_cursor = Some(cursor_at(&name, end));
            break;
        }
        remaining -= returned;
    }
    response
}

fn cursor_at(topic: &str, partition: i32) -> Cursor {
    Cursor::default()
        .with_topic_name(TopicName(StrBytes::from_string(topic.to_owned())))
        .with_partition_index(partition)
}

fn error_topic(name: &str, error: ResponseError) -> DescribeTopicPartitionsResponseTopic {
    DescribeTopicPartitionsResponseTopic::default()
        .with_error_code(code(error))
        .with_name(Some(TopicName(StrBytes::from_string(name.to_owned()))))
        .with_topic_id(Uuid::nil())
        .with_is_internal(is_internal(name))
}

/// The whole request refused, as Kafka answers a request it throws on: every requested topic with `error`.
fn refused(
    request: &DescribeTopicPartitionsRequest,
    error: ResponseError,
) -> DescribeTopicPartitionsResponse {
    DescribeTopicPartitionsResponse::default().with_topics(
        request
            .topics
            .iter()
            .map(|t| error_topic(&t.name.0, error).with_is_internal(false))
            .collect(),
    )
}
