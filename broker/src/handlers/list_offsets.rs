//! ListOffsets (key 2): earliest, latest, max-timestamp and by-timestamp offset lookups.

use kafka_protocol::{
    messages::{
        list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse},
        ListOffsetsRequest, ListOffsetsResponse,
    },
    ResponseError,
};

use super::{code, epoch_check_error, not_served_code, RequestContext};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

pub async fn handle(ctx: &RequestContext<'_>, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(-1);
                    let partition = match ctx.broker.replicas.leader(&name, p.partition_index) {
                        Ok(partition) => partition,
                        Err(e) => return response.with_error_code(not_served_code(&e)),
                    };
                    if let Err(e) = partition.check_leader_epoch(p.current_leader_epoch) {
                        return response.with_error_code(code(epoch_check_error(&e)));
                    }
                    let response = match ctx.image.partition(&name, p.partition_index) {
                        Some(registration) if ctx.version >= 4 => {
                            response.with_leader_epoch(registration.leader_epoch)
                        }
                        _ => response,
                    };
                    match p.timestamp {
                        LATEST => response.with_offset(partition.high_watermark()),
                        EARLIEST | EARLIEST_LOCAL => response.with_offset(partition.log_start_offset()),
                        // Nothing is tiered: Kafka answers "no offset" for a topic without remote storage.
                        LATEST_TIERED => response,
                        MAX_TIMESTAMP => match partition.max_timestamp_and_offset() {
                            Some((timestamp, offset)) => response.with_timestamp(timestamp).with_offset(offset),
                            None => response,
                        },
                        timestamp if timestamp >= 0 => match partition.offset_for_timestamp(timestamp) {
                            Ok(Some((offset, found))) => response.with_offset(offset).with_timestamp(found),
                            Ok(None) => response,
                            Err(e) => {
                                tracing::error!(topic = %name, partition = p.partition_index, error = %crate::error_chain(&e), "timestamp lookup failed");
                                response.with_error_code(code(ResponseError::KafkaStorageError))
                            }
                        },
                        _ => response.with_error_code(code(ResponseError::InvalidRequest)),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default().with_name(topic.name).with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
