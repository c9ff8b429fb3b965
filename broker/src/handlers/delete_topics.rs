//! DeleteTopics (key 20): deletes topics by name or (v6+) by id.

use kafka_protocol::{
    messages::{
        delete_topics_response::DeletableTopicResult, DeleteTopicsRequest, DeleteTopicsResponse,
        TopicName,
    },
    protocol::StrBytes,
    ResponseError,
};

use super::{code, message, topic_error_code};
use crate::handlers::RequestContext;

/// From this version a client understands THROTTLING_QUOTA_EXCEEDED (KIP-599).
const STRICT_QUOTA_VERSION: i16 = 5;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let broker = ctx.broker;
    // v0-5 list names; v6 lists (name or id) pairs.
    let targets: Vec<(Option<String>, uuid::Uuid)> = if ctx.version >= 6 {
        request
            .topics
            .into_iter()
            .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::with_capacity(targets.len());
    for (name, id) in targets {
        let name = match name {
            Some(name) => Some(name),
            None => ctx.image.topic_by_id(id).map(|t| t.name.clone()),
        };
        let result = DeletableTopicResult::default()
            .with_name(name.clone().map(|n| TopicName(StrBytes::from_string(n))))
            .with_topic_id(id);
        let Some(name) = name else {
            responses.push(result.with_error_code(code(ResponseError::UnknownTopicId)));
            continue;
        };
        let partitions = ctx
            .image
            .topics
            .get(&name)
            .map_or(0, |t| t.partition_count());
        let deleted = match ctx.take_mutations(partitions, ctx.version >= STRICT_QUOTA_VERSION) {
            Ok(()) => broker.controller.delete_topic(&name).await,
            Err(e) => Err(e),
        };
        match deleted {
            Ok(deleted_id) => responses.push(result.with_topic_id(if ctx.version >= 6 {
                deleted_id
            } else {
                uuid::Uuid::nil()
            })),
            Err(e) => responses.push(
                result
                    .with_error_code(topic_error_code(&e))
                    .with_error_message(if ctx.version >= 5 {
                        message(e.to_string())
                    } else {
                        None
                    }),
            ),
        }
    }
    DeleteTopicsResponse::default().with_responses(responses)
}
