//! CreatePartitions (key 37): grows a topic's partition count; it never shrinks.

use kafka_protocol::{
    messages::{
        create_partitions_response::CreatePartitionsTopicResult, CreatePartitionsRequest,
        CreatePartitionsResponse,
    },
    ResponseError,
};

use super::{code, message, topic_error_code};
use crate::protocol::RequestContext;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let node_id = ctx.broker.config.node_id;
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        if let Some(assignments) = &topic.assignments {
            if !assignments
                .iter()
                .all(|a| a.broker_ids.len() == 1 && a.broker_ids[0].0 == node_id)
            {
                results.push(
                    result
                        .with_error_code(code(ResponseError::InvalidReplicaAssignment))
                        .with_error_message(message(format!(
                            "new partitions can only be placed on broker {node_id}"
                        ))),
                );
                continue;
            }
        }
        match ctx
            .broker
            .create_partitions(&name, topic.count, request.validate_only)
            .await
        {
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
