//! Fetch (key 1): long-polling reads. Each partition's answer starts at the batch containing the requested
//! offset (the client skips records before it) and holds whole batches, within the per-partition and total
//! byte limits; the first partition with data always gets at least one batch. Record bytes are not copied:
//! they go from the segment file to the socket with sendfile (see `protocol::splice`).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use kafka_protocol::{
    messages::{
        fetch_response::{FetchableTopicResponse, PartitionData},
        BrokerId, FetchRequest, FetchResponse, TopicName,
    },
    protocol::StrBytes,
    ResponseError,
};
use uuid::Uuid;

use super::code;
use crate::{
    handlers::RequestContext,
    log::LogError,
    partition::{Partition, PartitionError},
    server::splice::{placeholder, SendfileSlice},
};

/// Waits longer than this are cut short so a client with a huge `max_wait_ms` cannot pin a connection.
const MAX_WAIT: Duration = Duration::from_secs(30);

struct Wanted {
    topic: Option<String>,
    topic_id: Uuid,
    partitions: Vec<(i32, i64, usize)>,
}

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: FetchRequest,
) -> (FetchResponse, Vec<SendfileSlice>) {
    if request.session_id != 0 {
        // No fetch session is ever created (we answer session id 0), so an incremental fetch names one we
        // do not know; the client falls back to full fetches.
        return (
            FetchResponse::default().with_error_code(code(ResponseError::FetchSessionIdNotFound)),
            Vec::new(),
        );
    }
    let by_id = ctx.version >= 13;
    let image = &ctx.image;
    let wanted: Vec<Wanted> = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = if by_id {
                image.topic_by_id(t.topic_id).map(|m| m.name.clone())
            } else {
                Some(t.topic.0.to_string())
            };
            Wanted {
                topic,
                topic_id: t.topic_id,
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| {
                        (
                            p.partition,
                            p.fetch_offset,
                            p.partition_max_bytes.max(0) as usize,
                        )
                    })
                    .collect(),
            }
        })
        .collect();
    let partitions: Vec<Vec<Option<Arc<Partition>>>> = wanted
        .iter()
        .map(|w| {
            w.partitions
                .iter()
                .map(|(index, _, _)| {
                    w.topic
                        .as_deref()
                        .and_then(|t| ctx.broker.replicas.leader(t, *index).ok())
                })
                .collect()
        })
        .collect();
    let max_bytes = (request.max_bytes.max(0) as usize)
        .min(ctx.broker.config.fetch_max_bytes)
        .min(crate::server::splice::MAX_PLACEHOLDER_BYTES);
    let min_bytes = request.min_bytes.max(0) as usize;
    let deadline =
        Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64).min(MAX_WAIT);
    loop {
        // Register for wake-ups before reading, so an append between the read and the wait is not missed.
        let arrivals: Vec<_> = partitions
            .iter()
            .flatten()
            .flatten()
            .map(|p| Box::pin(p.data_arrived()))
            .collect();
        let (response, slices, sent, has_error) =
            build(ctx.version, by_id, &wanted, &partitions, max_bytes);
        let bytes: u64 = sent.iter().map(|(_, bytes, _)| bytes).sum();
        let now = Instant::now();
        if bytes >= min_bytes as u64 || has_error || now >= deadline || arrivals.is_empty() {
            // Only the answer that goes out counts, not those built and dropped while long-polling.
            for (partition, bytes, records) in sent {
                partition.counters.fetched(bytes, records);
            }
            return (response, slices);
        }
        drop(response);
        let _waiting = ctx.broker.metrics.fetch_waiting();
        tokio::select! {
            _ = futures_util::future::select_all(arrivals) => {}
            _ = tokio::time::sleep_until(deadline.into()) => {}
        }
    }
}

/// What a built response sends from each partition: (partition, bytes, records).
type Sent<'a> = Vec<(&'a Partition, u64, u64)>;

fn build<'a>(
    version: i16,
    by_id: bool,
    wanted: &[Wanted],
    partitions: &'a [Vec<Option<Arc<Partition>>>],
    max_bytes: usize,
) -> (FetchResponse, Vec<SendfileSlice>, Sent<'a>, bool) {
    let mut slices = Vec::new();
    let mut sent = Vec::new();
    let mut total = 0usize;
    let mut has_error = false;
    let mut responses = Vec::with_capacity(wanted.len());
    for (w, hosted) in wanted.iter().zip(partitions) {
        let mut out = Vec::with_capacity(w.partitions.len());
        for (&(index, offset, partition_max), partition) in w.partitions.iter().zip(hosted) {
            let data = PartitionData::default()
                .with_partition_index(index)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
                .with_preferred_read_replica(BrokerId(-1))
                .with_records(Some(Bytes::new()));
            let Some(partition) = partition else {
                has_error = true;
                let error = if by_id {
                    ResponseError::UnknownTopicId
                } else {
                    ResponseError::UnknownTopicOrPartition
                };
                out.push(data.with_error_code(code(error)));
                continue;
            };
            let high_watermark = partition.high_watermark();
            let data = data
                .with_high_watermark(high_watermark)
                .with_last_stable_offset(high_watermark)
                .with_log_start_offset(if by_id || version >= 5 {
                    partition.log_start_offset()
                } else {
                    -1
                });
            if offset > high_watermark || offset < partition.log_start_offset() {
                has_error = true;
                out.push(data.with_error_code(code(ResponseError::OffsetOutOfRange)));
                continue;
            }
            let budget = partition_max.min(max_bytes.saturating_sub(total));
            if offset == high_watermark || budget == 0 {
                out.push(data);
                continue;
            }
            match partition.read(offset, budget) {
                // Only the first partition with data may exceed the limits (to make progress past a batch
                // larger than the limit); later ones wait for the next fetch.
                Ok(slice) if slice.len > 0 && (total == 0 || slice.len <= budget) => {
                    total += slice.len;
                    sent.push((partition.as_ref(), slice.len as u64, slice.records));
                    out.push(data.with_records(Some(placeholder(slice.len))));
                    slices.push(SendfileSlice {
                        file: slice.file,
                        position: slice.position,
                        len: slice.len,
                    });
                }
                Ok(_) => out.push(data),
                Err(PartitionError::Log(LogError::OffsetOutOfRange { .. })) => {
                    has_error = true;
                    out.push(data.with_error_code(code(ResponseError::OffsetOutOfRange)));
                }
                Err(e) => {
                    has_error = true;
                    tracing::error!(topic = %partition.topic, partition = index, offset, error = %crate::error_chain(&e), "fetch read failed");
                    out.push(data.with_error_code(code(ResponseError::KafkaStorageError)));
                }
            }
        }
        let name = w
            .topic
            .clone()
            .map(|t| TopicName(StrBytes::from_string(t)))
            .unwrap_or_default();
        responses.push(
            FetchableTopicResponse::default()
                .with_topic(name)
                .with_topic_id(w.topic_id)
                .with_partitions(out),
        );
    }
    (
        FetchResponse::default().with_responses(responses),
        slices,
        sent,
        has_error,
    )
}
