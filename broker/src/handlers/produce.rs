//! Produce (key 0): appends each partition's record batch, bytes as the producer sent them (offsets assigned
//! in the batch header), then answers according to `acks`. With the default flush policy a write is
//! acknowledged only after it is fsynced; concurrent producers share fsyncs (group commit). acks=1 means "in
//! the leader's log, fsynced"; acks=all also waits until the high watermark covers the batch, i.e. every
//! in-sync replica holds it durably, within the request's timeout, and is refused up front when the ISR is
//! smaller than `min.insync.replicas`. A topic whose `compression.type` names a codec gets batches in any
//! other codec rebuilt in it first (`partition::recompress`), as Kafka does.

use std::{sync::Arc, time::Duration};

use bytes::BytesMut;
use kafka_protocol::{
    messages::{
        produce_response::{
            BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
            TopicProduceResponse,
        },
        ProduceRequest, ProduceResponse, TopicName,
    },
    ResponseError,
};

use self::record_validation::{validate_records, RecordErrorKind, RecordErrors};
use super::{code, message, not_served_code, RequestContext};

pub mod record_validation;

/// Error messages exist in Produce responses from v8 on.
fn versioned_message(
    version: i16,
    text: impl Into<String>,
) -> Option<kafka_protocol::protocol::StrBytes> {
    if version >= 8 {
        message(text)
    } else {
        None
    }
}
use crate::{
    clock::now_ms,
    error_chain,
    log::{FlushPolicy, LogError},
    metrics::BrokerMetrics,
    partition::{
        producer_state::ProducerStateError, recompress::RecompressError, HighWatermarkWait,
        Partition, PartitionError,
    },
    replication::manager::NotServed,
};

/// The Kafka error code and message for a failed append.
pub(crate) fn partition_error(error: &PartitionError) -> (ResponseError, String) {
    let kind = match error {
        PartitionError::Log(LogError::MessageTooLarge { .. }) => ResponseError::MessageTooLarge,
        PartitionError::Log(LogError::CorruptRecord(_)) | PartitionError::MalformedBatch(_) => {
            ResponseError::CorruptMessage
        }
        PartitionError::Log(LogError::OffsetOutOfRange { .. }) => ResponseError::OffsetOutOfRange,
        PartitionError::BatchCount(_) | PartitionError::KeylessRecordInCompactedTopic => {
            ResponseError::InvalidRecord
        }
        PartitionError::Recompress(
            RecompressError::UnknownCodec { .. }
            | RecompressError::Decompress { .. }
            | RecompressError::Records { .. },
        ) => ResponseError::InvalidRecord,
        PartitionError::Recompress(
            RecompressError::DecompressedTooLarge { .. } | RecompressError::RebuiltTooLarge { .. },
        ) => ResponseError::MessageTooLarge,
        PartitionError::Recompress(RecompressError::Compress { .. }) => {
            ResponseError::UnknownServerError
        }
        PartitionError::Producer(ProducerStateError::FencedEpoch { .. }) => {
            ResponseError::InvalidProducerEpoch
        }
        PartitionError::Producer(ProducerStateError::OutOfOrder { .. }) => {
            ResponseError::OutOfOrderSequenceNumber
        }
        // Produce never appends in a fixed epoch; the coordinator does, and maps this itself.
        PartitionError::EpochChanged { .. } => ResponseError::NotLeaderOrFollower,
        PartitionError::Flush { .. }
        | PartitionError::NoRoom { .. }
        | PartitionError::LeaderEpoch { .. } => ResponseError::KafkaStorageError,
        PartitionError::Log(
            LogError::CreateDir { .. }
            | LogError::ListDir { .. }
            | LogError::SyncDir { .. }
            | LogError::RemoveDir { .. }
            | LogError::OpenFile { .. }
            | LogError::ReadFile { .. }
            | LogError::WriteFile { .. }
            | LogError::SyncFile { .. }
            | LogError::TruncateFile { .. }
            | LogError::RemoveFile { .. }
            | LogError::RenameFile { .. }
            | LogError::WriteCleanerCheckpoint { .. },
        ) => ResponseError::KafkaStorageError,
        PartitionError::Log(
            LogError::EncodeBatch { .. }
            | LogError::CorruptCleanerCheckpoint { .. }
            | LogError::CorruptSegment { .. }
            | LogError::UnexpectedFile { .. }
            | LogError::UnexpectedAppendOffset { .. },
        ) => ResponseError::KafkaStorageError,
    };
    (kind, error_chain(error))
}

/// The answer for a batch with refused records: INVALID_RECORD or INVALID_TIMESTAMP, and from v8 which
/// records and why (KIP-467) with Kafka's summary as the error message; Kafka reports the log start offset.
fn refused_records(
    response: PartitionProduceResponse,
    refused: &RecordErrors,
    log_start_offset: i64,
    version: i16,
) -> PartitionProduceResponse {
    let error = match refused.kind {
        RecordErrorKind::InvalidRecord => ResponseError::InvalidRecord,
        RecordErrorKind::InvalidTimestamp => ResponseError::InvalidTimestamp,
    };
    let response = response.with_error_code(code(error));
    let response = if version >= 5 {
        response.with_log_start_offset(log_start_offset)
    } else {
        response
    };
    if version < 8 {
        return response;
    }
    response
        .with_error_message(message(refused.to_string()))
        .with_record_errors(
            refused
                .errors
                .iter()
                .map(|e| {
                    BatchIndexAndErrorMessage::default()
                        .with_batch_index(e.batch_index)
                        .with_batch_index_error_message(message(e.message.clone()))
                })
                .collect(),
        )
}

/// A produce whose batches are in the log and whose acknowledgement may still wait for fsyncs.
#[derive(Debug)]
pub struct Appended {
    response: ProduceResponse,
    /// (partition slot, topic slot, partition, offset that must be durable).
    pending_flushes: Vec<(usize, usize, Arc<Partition>, i64)>,
    /// acks=all: (partition slot, topic slot, partition, offset the high watermark must reach).
    pending_replication: Vec<(usize, usize, Arc<Partition>, i64)>,
    /// The request's `timeout_ms`: how long acks=all waits for the in-sync replicas.
    timeout: Duration,
    version: i16,
}

impl Appended {
    /// Waits for the fsyncs this produce needs (shared with concurrent producers) and returns the response;
    /// a partition whose fsync failed reports KAFKA_STORAGE_ERROR instead of an acknowledgement.
    pub async fn acknowledge(mut self, metrics: &BrokerMetrics) -> ProduceResponse {
        // Counted as waiting only when there is an fsync to wait for.
        let _waiting = (!self.pending_flushes.is_empty()).then(|| metrics.produce_waiting());
        let flushes = self
            .pending_flushes
            .iter()
            .map(|(_, _, partition, offset)| partition.flush_until(*offset));
        let results = futures_util::future::join_all(flushes).await;
        for ((partition_slot, topic_slot, partition, _), result) in
            self.pending_flushes.iter().zip(results)
        {
            if let Err(e) = result {
                let (kind, text) = partition_error(&e);
                // The partition reported the failure to the storage health, which logs it once.
                tracing::debug!(topic = %partition.topic, partition = partition.index, error = %text, "fsync failed; write not acknowledged");
                let slot =
                    &mut self.response.responses[*topic_slot].partition_responses[*partition_slot];
                slot.error_code = code(kind);
                slot.error_message = versioned_message(self.version, text);
            }
        }
        if self.pending_replication.is_empty() {
            return self.response;
        }
        let _waiting = metrics.produce_waiting();
        let waits = self
            .pending_replication
            .iter()
            .map(|(_, _, partition, offset)| {
                tokio::time::timeout(self.timeout, partition.wait_for_high_watermark(*offset))
            });
        let results = futures_util::future::join_all(waits).await;
        for ((partition_slot, topic_slot, _, _), result) in
            self.pending_replication.iter().zip(results)
        {
            let slot =
                &mut self.response.responses[*topic_slot].partition_responses[*partition_slot];
            if slot.error_code != 0 {
                continue;
            }
            let error = match result {
                Ok(Ok(())) => continue,
                Ok(Err(HighWatermarkWait::NotEnoughReplicas)) => {
                    ResponseError::NotEnoughReplicasAfterAppend
                }
                Ok(Err(HighWatermarkWait::NotLeader)) => ResponseError::NotLeaderOrFollower,
                Err(_elapsed) => ResponseError::RequestTimedOut,
            };
            slot.error_code = code(error);
        }
        self.response
    }
}

/// Appends every partition's batch now, in request order, and returns what the acknowledgement must wait for;
/// `None` for acks=0 (no response at all).
pub fn append(ctx: &RequestContext<'_>, request: ProduceRequest) -> Option<Appended> {
    let acks = request.acks;
    let refuse_all = if !matches!(acks, -1..=1) {
        Some(ResponseError::InvalidRequiredAcks)
    } else if request.transactional_id.is_some() {
        // Transactions are not implemented; refusing is better than writing records no one can commit.
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else {
        None
    };
    let now = now_ms();
    let mut pending_flushes = Vec::new();
    let mut pending_replication = Vec::new();
    let mut node_endpoints: Vec<NodeEndpoint> = Vec::new();
    let mut responses = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for data in topic.partition_data {
            let response = PartitionProduceResponse::default()
                .with_index(data.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            if let Some(error) = refuse_all {
                partitions.push(response.with_error_code(code(error)));
                continue;
            }
            let partition = match ctx.broker.replicas.leader(&name, data.index) {
                Ok(partition) => partition,
                Err(e) => {
                    let response = response.with_error_code(not_served_code(&e));
                    let not_leader = matches!(e, NotServed::NotLeader { .. });
                    partitions.push(if not_leader && ctx.version >= 10 {
                        response.with_current_leader(current_leader(
                            &ctx.image,
                            &name,
                            data.index,
                            &mut node_endpoints,
                        ))
                    } else {
                        response
                    });
                    continue;
                }
            };
            let in_sync = (acks == -1)
                .then(|| partition.isr_in_sync_now(now, ctx.broker.replicas.lag_time_max_ms()));
            if let Some(in_sync) = in_sync.filter(|n| *n < partition.min_insync_replicas()) {
                partitions.push(
                    response
                        .with_error_code(code(ResponseError::NotEnoughReplicas))
                        .with_error_message(versioned_message(
                            ctx.version,
                            format!(
                                "{in_sync} in-sync replicas ({} in the ISR), min.insync.replicas is {}",
                                partition.isr_len(),
                                partition.min_insync_replicas()
                            ),
                        )),
                );
                continue;
            }
            let Some(records) = data.records else {
                partitions.push(
                    response
                        .with_error_code(code(ResponseError::CorruptMessage))
                        .with_error_message(versioned_message(ctx.version, "records are null")),
                );
                continue;
            };
            if let Err(refused) =
                validate_records(&records, &partition.log_config(), &name, data.index, now)
            {
                tracing::debug!(topic = %name, partition = data.index, error = %refused, "records refused");
                partitions.push(refused_records(
                    response,
                    &refused,
                    partition.log_start_offset(),
                    ctx.version,
                ));
                continue;
            }
            // The request buffer is shared; the batch needs its own copy to have offsets written into it.
            let mut batch = BytesMut::from(&records[..]);
            match partition.append(&mut batch, now) {
                Ok(outcome) => {
                    if outcome.recompressed {
                        ctx.broker.metrics.batch_recompressed();
                    }
                    if acks != 0
                        && partition.flush_policy() == FlushPolicy::EveryBatch
                        && !outcome.duplicate
                    {
                        pending_flushes.push((
                            partitions.len(),
                            responses.len(),
                            partition.clone(),
                            outcome.last_offset + 1,
                        ));
                    }
                    if acks == -1 {
                        pending_replication.push((
                            partitions.len(),
                            responses.len(),
                            partition.clone(),
                            outcome.last_offset + 1,
                        ));
                    }
                    partitions.push(
                        response
                            .with_base_offset(outcome.base_offset)
                            .with_log_append_time_ms(outcome.log_append_time)
                            .with_log_start_offset(if ctx.version >= 5 {
                                outcome.log_start_offset
                            } else {
                                -1
                            }),
                    );
                }
                Err(e) => {
                    let (kind, text) = partition_error(&e);
                    tracing::debug!(topic = %name, partition = data.index, error = %text, "produce refused");
                    partitions.push(
                        response
                            .with_error_code(code(kind))
                            .with_error_message(versioned_message(ctx.version, text)),
                    );
                }
            }
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(TopicName(name.into()))
                .with_topic_id(topic.topic_id)
                .with_partition_responses(partitions),
        );
    }
    if acks == 0 {
        return None;
    }
    let response = ProduceResponse::default().with_responses(responses);
    Some(Appended {
        response: if ctx.version >= 10 {
            response.with_node_endpoints(node_endpoints)
        } else {
            response
        },
        pending_flushes,
        pending_replication,
        timeout: Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0)),
        version: ctx.version,
    })
}

super::kip951_current_leader!(NodeEndpoint, LeaderIdAndEpoch);
