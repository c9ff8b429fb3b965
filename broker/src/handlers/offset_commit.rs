//! OffsetCommit (key 8): stores committed offsets (with leader epoch and metadata) for a group.
//!
//! As Kafka does, a partition that does not exist in the metadata (unknown topic, or an index beyond the
//! topic's partition count) is answered UNKNOWN_TOPIC_OR_PARTITION and never reaches the group
//! coordinator; when no partition of the request exists, the group is not consulted at all.

use kafka_protocol::{
    messages::{
        offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic},
        OffsetCommitRequest, OffsetCommitResponse,
    },
    ResponseError,
};

use super::error_code;
use crate::{group::CommitEntry, handlers::RequestContext};

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let exists = |topic: &str, partition: i32| ctx.image.partition(topic, partition).is_some();
    let entries: Vec<CommitEntry> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .filter(|p| exists(&t.name.0, p.partition_index))
                .map(move |p| CommitEntry {
                    topic: t.name.0.to_string(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    // v6 added the leader epoch; older commits carry none.
                    leader_epoch: if ctx.version >= 6 {
                        p.committed_leader_epoch
                    } else {
                        -1
                    },
                    metadata: p.committed_metadata.as_ref().map(ToString::to_string),
                })
        })
        .collect();
    let outcomes = if entries.is_empty() {
        Vec::new()
    } else {
        ctx.broker
            .groups
            .commit(
                &request.group_id.0,
                request.generation_id_or_member_epoch,
                &request.member_id,
                request.group_instance_id.as_deref(),
                entries,
            )
            .await
    };
    let mut outcomes = outcomes.into_iter();
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let error = if exists(&t.name.0, p.partition_index) {
                        outcomes.next().and_then(Result::err)
                    } else {
                        Some(ResponseError::UnknownTopicOrPartition)
                    };
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error_code(error))
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
