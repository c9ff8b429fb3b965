//! OffsetFetch (key 9): committed offsets with their leader epoch and metadata; -1 where nothing is committed.
//! v8+ asks for several groups at once.

use kafka_protocol::{
    messages::{
        offset_fetch_response::{
            OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
            OffsetFetchResponseTopic, OffsetFetchResponseTopics,
        },
        GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName,
    },
    protocol::StrBytes,
    ResponseError,
};

use super::code;
use crate::{
    group::{records::OffsetValue, TopicPartitions},
    handlers::RequestContext,
};

/// (offset, leader epoch, metadata) as the response reports them.
fn fields(value: Option<OffsetValue>) -> (i64, i32, Option<StrBytes>) {
    match value {
        Some(v) => (
            v.offset,
            v.leader_epoch,
            Some(StrBytes::from_string(v.metadata)),
        ),
        None => (-1, -1, Some(StrBytes::default())),
    }
}

/// A coordinator error before v8, as Kafka's `OffsetFetchRequest.getErrorResponse` builds it: v2+ carry
/// it at the top level; v0-1 have no such field, so every requested partition carries it.
fn refused(
    version: i16,
    error: ResponseError,
    wanted: Option<Vec<TopicPartitions>>,
) -> OffsetFetchResponse {
    if version >= 2 {
        return OffsetFetchResponse::default().with_error_code(code(error));
    }
    let topics = wanted
        .unwrap_or_default()
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .into_iter()
                .map(|partition| {
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(partition)
                        .with_committed_offset(-1)
                        .with_metadata(Some(StrBytes::default()))
                        .with_error_code(code(error))
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(StrBytes::from_string(t.topic)))
                .with_partitions(partitions)
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}

pub async fn handle(ctx: &RequestContext<'_>, request: OffsetFetchRequest) -> OffsetFetchResponse {
    let groups = &ctx.broker.groups;
    let with_epoch = ctx.version >= 5;
    if ctx.version >= 8 {
        let results = request
            .groups
            .into_iter()
            .map(|g| {
                let wanted = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| TopicPartitions {
                            topic: t.name.0.to_string(),
                            partitions: t.partition_indexes,
                        })
                        .collect()
                });
                let fetched = match groups.fetch(&g.group_id.0, wanted) {
                    Ok(fetched) => fetched,
                    Err(e) => {
                        return OffsetFetchResponseGroup::default()
                            .with_group_id(GroupId(g.group_id.0))
                            .with_error_code(code(e))
                    }
                };
                let topics = fetched
                    .into_iter()
                    .map(|topic| {
                        let partitions = topic
                            .partitions
                            .into_iter()
                            .map(|p| {
                                let (offset, epoch, metadata) = fields(p.committed);
                                OffsetFetchResponsePartitions::default()
                                    .with_partition_index(p.partition)
                                    .with_committed_offset(offset)
                                    .with_committed_leader_epoch(epoch)
                                    .with_metadata(metadata)
                            })
                            .collect();
                        OffsetFetchResponseTopics::default()
                            .with_name(TopicName(StrBytes::from_string(topic.topic)))
                            .with_partitions(partitions)
                    })
                    .collect();
                OffsetFetchResponseGroup::default()
                    .with_group_id(GroupId(g.group_id.0))
                    .with_topics(topics)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(results);
    }
    let wanted = request.topics.map(|ts| {
        ts.into_iter()
            .map(|t| TopicPartitions {
                topic: t.name.0.to_string(),
                partitions: t.partition_indexes,
            })
            .collect()
    });
    let fetched = match groups.fetch(&request.group_id.0, wanted.clone()) {
        Ok(fetched) => fetched,
        Err(e) => return refused(ctx.version, e, wanted),
    };
    let topics = fetched
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let (offset, epoch, metadata) = fields(p.committed);
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(p.partition)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(if with_epoch { epoch } else { -1 })
                        .with_metadata(metadata)
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.topic)))
                .with_partitions(partitions)
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}
