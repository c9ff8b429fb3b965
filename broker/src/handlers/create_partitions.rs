//! CreatePartitions (key 37): grows a topic's partition count; it never shrinks.

use kafka_protocol::messages::{
    create_partitions_response::CreatePartitionsTopicResult, CreatePartitionsRequest,
    CreatePartitionsResponse,
};

use super::{message, topic_error_code, RequestContext};

/// From this version a client understands THROTTLING_QUOTA_EXCEEDED (KIP-599).
const STRICT_QUOTA_VERSION: i16 = 3;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        // An empty list is what clients send when they leave placement to the controller.
        let assignments = topic
            .assignments
            .as_ref()
            .filter(|a| !a.is_empty())
            .map(|assignments| {
                assignments
                    .iter()
                    .map(|a| a.broker_ids.iter().map(|id| id.0).collect())
                    .collect()
            });
        let added = ctx
            .image
            .topics
            .get(&name)
            .map_or(0, |t| topic.count - t.partition_count());
        let throttled = if request.validate_only {
            Ok(())
        } else {
            ctx.take_mutations(added, ctx.version >= STRICT_QUOTA_VERSION)
        };
        let created = match throttled {
            Ok(()) => {
                ctx.broker
                    .controller
                    .create_partitions(&name, topic.count, assignments, request.validate_only)
                    .await
            }
            Err(e) => Err(e),
        };
        match created {
            Ok(()) => results.push(result),
            Err(e) => results.push(
                result
                    .with_error_code(topic_error_code(&e))
                    .with_error_message(message(e.to_string())),
            ),
        }
    }
    CreatePartitionsResponse::default().with_results(results)
}
