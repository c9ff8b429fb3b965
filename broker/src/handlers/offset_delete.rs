//! OffsetDelete (key 47): deletes a group's committed offsets for topics its members do not subscribe to.

use kafka_protocol::messages::{
    offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic},
    OffsetDeleteRequest, OffsetDeleteResponse, TopicName,
};

use super::{code, error_code};
use crate::{group::TopicPartitions, handlers::RequestContext};

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|t| TopicPartitions {
            topic: t.name.0.to_string(),
            partitions: t
                .partitions
                .into_iter()
                .map(|p| p.partition_index)
                .collect(),
        })
        .collect();
    match ctx
        .broker
        .groups
        .delete_offsets(&request.group_id.0, topics)
        .await
    {
        Err(error) => OffsetDeleteResponse::default().with_error_code(code(error)),
        Ok(results) => OffsetDeleteResponse::default().with_topics(
            results
                .into_iter()
                .map(|topic| {
                    OffsetDeleteResponseTopic::default()
                        .with_name(TopicName(topic.topic.into()))
                        .with_partitions(
                            topic
                                .partitions
                                .into_iter()
                                .map(|p| {
                                    OffsetDeleteResponsePartition::default()
                                        .with_partition_index(p.partition)
                                        .with_error_code(error_code(p.outcome.err()))
                                })
                                .collect(),
                        )
                })
                .collect(),
        ),
    }
}
