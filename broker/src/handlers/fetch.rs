//! Fetch (key 1): long-polling reads. Each partition's answer starts at the batch containing the requested
//! offset (the client skips records before it) and holds whole batches, within the per-partition and total
//! byte limits; the first partition with data always gets at least one batch. Record bytes are not copied:
//! they go from the segment file to the socket with sendfile (see `protocol::splice`).
//!
//! Two kinds of fetchers: consumers (replica id -1) read up to the high watermark and never get a record
//! above it; followers (replica id >= 0: `replica_id` before v15, `replica_state.replica_id` from v15) read up
//! to the log end offset, and their fetch offset is recorded as their progress. A follower fsyncs what it
//! appended before it fetches again, so its fetch offset is durable on it: that is how it reports durability
//! over Kafka's Fetch without a new field. A follower whose `last_fetched_epoch` disagrees with this leader's
//! epoch cache gets `diverging_epoch` instead of records (KIP-595's truncation without a round trip).
//! A follower out of the ISR gets no records (and no error) for partitions the replication throttle holds
//! back (`replication::quota`); the bytes of throttled partitions that do go out are metered.
//!
//! Fetch sessions (KIP-227, `session`): a full fetch may open one, and an incremental fetch then reads every
//! partition of its session but is answered only with those that changed. Followers here fetch without one.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use kafka_protocol::{
    messages::{
        fetch_response::{
            EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
        },
        BrokerId, FetchRequest, FetchResponse, TopicName,
    },
    protocol::StrBytes,
    ResponseError,
};
use uuid::Uuid;

use self::session::{FetchContext, FetchTarget, SessionRequest, TopicKey};
use super::{code, epoch_check_error, RequestContext};
use crate::{
    broker::Broker,
    cluster::image::MetadataImage,
    log::LogError,
    partition::{Partition, PartitionError},
    replication::quota::ThrottleCheck,
    server::splice::{placeholder, SendfileSlice},
};

pub mod session;

/// Waits longer than this are cut short so a client with a huge `max_wait_ms` cannot pin a connection.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// The partitions of one topic, in the order they are read and answered.
struct Wanted {
    topic: Option<String>,
    topic_id: Uuid,
    partitions: Vec<FetchTarget>,
}

/// Why a hosted partition answers with an error before any read.
enum Refused {
    Unknown,
    /// Not the leader: the error and the leader hint to send.
    NotLeader(ResponseError),
    Epoch(ResponseError),
}

/// The follower's broker id, or None for a consumer.
pub(crate) fn replica_id(request: &FetchRequest, version: i16) -> Option<i32> {
    let id = if version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    (id >= 0).then_some(id)
}

/// The partitions a request names, with the names of topics named by id (v13+) resolved.
fn requested(request: &mut FetchRequest, by_id: bool, image: &MetadataImage) -> Vec<FetchTarget> {
    let mut targets = Vec::new();
    for t in std::mem::take(&mut request.topics) {
        let topic = if by_id {
            image.topic_by_id(t.topic_id).map(|m| m.name.clone())
        } else {
            Some(t.topic.0.to_string())
        };
        targets.extend(t.partitions.into_iter().map(|p| FetchTarget {
            topic: topic.clone(),
            topic_id: t.topic_id,
            index: p.partition,
            fetch_offset: p.fetch_offset,
            max_bytes: p.partition_max_bytes.max(0) as usize,
            current_leader_epoch: p.current_leader_epoch,
            last_fetched_epoch: p.last_fetched_epoch,
            log_start_offset: p.log_start_offset,
        }));
    }
    targets
}

/// Consecutive partitions of one topic become one topic of the response, as Kafka groups them: a topic may
/// appear twice in an incremental answer when the session's order interleaves it with another.
fn group_by_topic(targets: Vec<FetchTarget>) -> Vec<Wanted> {
    let mut wanted: Vec<Wanted> = Vec::new();
    for target in targets {
        match wanted.last_mut() {
            Some(last) if last.topic == target.topic && last.topic_id == target.topic_id => {
                last.partitions.push(target)
            }
            _ => wanted.push(Wanted {
                topic: target.topic.clone(),
                topic_id: target.topic_id,
                partitions: vec![target],
            }),
        }
    }
    wanted
}

pub async fn handle(
    ctx: &RequestContext<'_>,
    mut request: FetchRequest,
) -> (FetchResponse, Vec<SendfileSlice>) {
    let by_id = ctx.version >= 13;
    let follower = replica_id(&request, ctx.version);
    let image = &ctx.image;
    let forgotten: Vec<(TopicKey, i32)> = request
        .forgotten_topics_data
        .iter()
        .flat_map(|t| {
            let key = if by_id {
                TopicKey::Id(t.topic_id)
            } else {
                TopicKey::Name(t.topic.0.to_string())
            };
            t.partitions.iter().map(move |p| (key.clone(), *p))
        })
        .collect();
    let sessions = &ctx.broker.fetch_sessions;
    let (context, targets) = sessions.open(
        SessionRequest {
            version: ctx.version,
            session_id: request.session_id,
            epoch: request.session_epoch,
            follower: follower.is_some(),
            partitions: requested(&mut request, by_id, image),
            forgotten: &forgotten,
        },
        crate::clock::now_ms(),
        |id| image.topic_by_id(id).map(|m| m.name.clone()),
    );
    if let FetchContext::Error(_) = context {
        let mut response = FetchResponse::default();
        sessions.close(context, std::iter::empty(), &mut response, 0);
        return (response, Vec::new());
    }
    let wanted = group_by_topic(targets);
    let now = crate::clock::now_ms();
    let partitions: Vec<Vec<Result<Arc<Partition>, Refused>>> = wanted
        .iter()
        .map(|w| {
            w.partitions
                .iter()
                .map(|p| {
                    let partition = w
                        .topic
                        .as_deref()
                        .and_then(|t| ctx.broker.replicas.partition(t, p.index))
                        .ok_or(Refused::Unknown)?;
                    if let Err(e) = partition.check_leader_epoch(p.current_leader_epoch) {
                        return Err(Refused::Epoch(epoch_check_error(&e)));
                    }
                    if !partition.is_leader() {
                        return Err(Refused::NotLeader(ResponseError::NotLeaderOrFollower));
                    }
                    if let Some(replica) = follower {
                        record_follower_progress(
                            ctx.broker,
                            &partition,
                            replica,
                            p.fetch_offset,
                            now,
                        );
                    }
                    Ok(partition)
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
            .filter_map(|p| p.as_ref().ok())
            .map(|p| Box::pin(p.data_arrived()))
            .collect();
        // Read the meter anew for each build: a long poll may outlast the rate's excess.
        let throttle = follower.map(|replica| {
            (
                replica,
                ctx.broker
                    .replicas
                    .quotas()
                    .leader
                    .check(image, ctx.broker.replicas.local_id()),
            )
        });
        let Built {
            mut response,
            slices,
            sent,
            has_error,
            held_back,
        } = build(
            &Build {
                version: ctx.version,
                by_id,
                follower: follower.is_some(),
                image,
                throttle: throttle.as_ref(),
            },
            &wanted,
            &partitions,
            max_bytes,
        );
        let bytes: u64 = sent.iter().map(|s| s.bytes).sum();
        let now = Instant::now();
        if bytes >= min_bytes as u64 || has_error || now >= deadline || arrivals.is_empty() {
            let read = wanted.iter().flat_map(|w| &w.partitions);
            if !sessions.close(context, read, &mut response, crate::clock::now_ms()) {
                return (response, Vec::new());
            }
            // Only the answer that goes out counts, not those built and dropped while long-polling.
            let quota = &ctx.broker.replicas.quotas().leader;
            for sent in sent {
                sent.partition.counters.fetched(sent.bytes, sent.records);
                if sent.throttled {
                    quota.record(sent.bytes);
                }
            }
            if held_back > 0 {
                quota.held_back(held_back);
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

/// Records a follower's fetch offset on the leader. The follower fsynced everything below it; if this
/// leader has not fsynced that far itself (acks=0/1 writes under the default flush policy wait for no one),
/// it does so now, since the high watermark needs the leader's own copy durable too.
fn record_follower_progress(
    broker: &Broker,
    partition: &Arc<Partition>,
    replica: i32,
    offset: i64,
    now_ms: i64,
) {
    broker
        .replicas
        .record_follower_fetch(partition, replica, offset, now_ms);
    if partition.needs_flush_for(offset) {
        let partition = Arc::clone(partition);
        tokio::spawn(async move {
            if let Err(e) = partition.flush_until(offset).await {
                tracing::error!(topic = %partition.topic, partition = partition.index, error = %crate::error_chain(&e), "leader fsync for a follower's progress failed");
            }
        });
    }
}

/// What a built response sends from one partition.
struct Sent<'a> {
    partition: &'a Partition,
    bytes: u64,
    records: u64,
    /// Listed in the topic's `leader.replication.throttled.replicas` on this broker: the bytes count
    /// towards the leader-side replication throttle.
    throttled: bool,
}

struct Built<'a> {
    response: FetchResponse,
    slices: Vec<SendfileSlice>,
    sent: Vec<Sent<'a>>,
    has_error: bool,
    /// Partitions left without data by the replication throttle.
    held_back: u64,
}

struct Build<'a> {
    version: i16,
    by_id: bool,
    follower: bool,
    image: &'a MetadataImage,
    /// For a follower's fetch: its broker id and the leader-side throttle decisions.
    throttle: Option<&'a (i32, ThrottleCheck<'a>)>,
}

super::kip951_current_leader!(NodeEndpoint, LeaderIdAndEpoch);

fn build<'a>(
    how: &Build<'_>,
    wanted: &[Wanted],
    partitions: &'a [Vec<Result<Arc<Partition>, Refused>>],
    max_bytes: usize,
) -> Built<'a> {
    let (version, by_id) = (how.version, how.by_id);
    let mut slices = Vec::new();
    let mut sent = Vec::new();
    let mut total = 0usize;
    let mut has_error = false;
    let mut held_back = 0;
    let mut endpoints = Vec::new();
    let mut responses = Vec::with_capacity(wanted.len());
    for (w, hosted) in wanted.iter().zip(partitions) {
        let mut out = Vec::with_capacity(w.partitions.len());
        for (wanted_partition, partition) in w.partitions.iter().zip(hosted) {
            let (index, offset, partition_max) = (
                wanted_partition.index,
                wanted_partition.fetch_offset,
                wanted_partition.max_bytes,
            );
            let data = PartitionData::default()
                .with_partition_index(index)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
                .with_preferred_read_replica(BrokerId(-1))
                .with_records(Some(Bytes::new()));
            let partition = match partition {
                Ok(partition) => partition,
                Err(Refused::Unknown) => {
                    has_error = true;
                    let error = if by_id {
                        ResponseError::UnknownTopicId
                    } else {
                        ResponseError::UnknownTopicOrPartition
                    };
                    out.push(data.with_error_code(code(error)));
                    continue;
                }
                Err(Refused::NotLeader(error) | Refused::Epoch(error)) => {
                    has_error = true;
                    let current_leader =
                        w.topic.as_deref().map_or_else(Default::default, |topic| {
                            current_leader(how.image, topic, index, &mut endpoints)
                        });
                    let data = data.with_error_code(code(*error));
                    out.push(if version >= 12 {
                        data.with_current_leader(current_leader)
                    } else {
                        data
                    });
                    continue;
                }
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
            // Followers read up to the log end, consumers up to the high watermark.
            let upper = if how.follower {
                partition.log_end_offset()
            } else {
                high_watermark
            };
            if how.follower && version >= 12 && wanted_partition.last_fetched_epoch >= 0 {
                let requested = wanted_partition.last_fetched_epoch;
                let (epoch, end_offset) = partition.end_offset_for_epoch(requested);
                if epoch != requested || end_offset < offset {
                    out.push(
                        data.with_diverging_epoch(
                            EpochEndOffset::default()
                                .with_epoch(epoch)
                                .with_end_offset(end_offset),
                        ),
                    );
                    continue;
                }
            }
            if offset > upper || offset < partition.log_start_offset() {
                has_error = true;
                out.push(data.with_error_code(code(ResponseError::OffsetOutOfRange)));
                continue;
            }
            let budget = partition_max.min(max_bytes.saturating_sub(total));
            if offset == upper || budget == 0 {
                out.push(data);
                continue;
            }
            // Kafka's shouldLeaderThrottle: an out-of-sync follower of a throttled partition gets no data,
            // and no error, while this broker sends more than its leader.replication.throttled.rate.
            let throttled = how.throttle.is_some_and(|(replica, check)| {
                let in_sync = how
                    .image
                    .partition(&partition.topic, index)
                    .is_some_and(|r| r.isr.contains(replica));
                if check.holds_back(&partition.topic, index, in_sync) {
                    held_back += 1;
                    return true;
                }
                false
            });
            if throttled {
                out.push(data);
                continue;
            }
            let counted = how
                .throttle
                .is_some_and(|(_, check)| check.throttled(&partition.topic, index));
            match partition.read_below(offset, budget, upper) {
                // Only the first partition with data may exceed the limits (to make progress past a batch
                // larger than the limit); later ones wait for the next fetch.
                Ok(slice) if slice.len > 0 && (total == 0 || slice.len <= budget) => {
                    total += slice.len;
                    sent.push(Sent {
                        partition: partition.as_ref(),
                        bytes: slice.len as u64,
                        records: slice.records,
                        throttled: counted,
                    });
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
    let response = FetchResponse::default().with_responses(responses);
    let response = if version >= 16 {
        response.with_node_endpoints(endpoints)
    } else {
        response
    };
    Built {
        response,
        slices,
        sent,
        has_error,
        held_back,
    }
}
