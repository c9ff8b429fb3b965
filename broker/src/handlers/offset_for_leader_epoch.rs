//! OffsetForLeaderEpoch (key 23, v2-4): the end offset of a leader epoch in this leader's epoch cache, so
//! a follower can truncate a divergent tail after a leader change (KIP-101, KIP-279) and a consumer can
//! validate its position (KIP-320). Followers and consumers alike must ask the leader; Kafka's debugging
//! replica id -2, which may read a follower, is honoured too.

use kafka_protocol::{
    messages::{
        offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult},
        OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
    },
    ResponseError,
};

use super::{code, epoch_check_error, RequestContext};

/// Kafka's replica id for tools that may read any replica.
const DEBUGGING_REPLICA_ID: i32 = -2;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let any_replica = ctx.version >= 3 && request.replica_id.0 == DEBUGGING_REPLICA_ID;
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.topic.0.to_string();
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let answer = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    let Some(partition) = ctx.broker.replicas.partition(&name, p.partition) else {
                        return answer
                            .with_error_code(code(ResponseError::UnknownTopicOrPartition));
                    };
                    if let Err(e) = partition.check_leader_epoch(p.current_leader_epoch) {
                        return answer.with_error_code(code(epoch_check_error(&e)));
                    }
                    if !any_replica && !partition.is_leader() {
                        return answer.with_error_code(code(ResponseError::NotLeaderOrFollower));
                    }
                    let (epoch, end_offset) = partition.end_offset_for_epoch(p.leader_epoch);
                    answer.with_leader_epoch(epoch).with_end_offset(end_offset)
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
