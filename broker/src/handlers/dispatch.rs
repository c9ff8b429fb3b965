//! From a request frame to its response: the request context, header decoding, routing by API key, and
//! encoding the answer (with the sendfile slices a fetch carries), counted in the per-API request metrics.
//!
//! Everything a request does happens before [`handle_frame`] returns; only a produce's wait for durability
//! may be left in the returned [`Pending`], so the connection can read the next request meanwhile and later
//! requests share the same fsync.

use std::{
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    messages::{ApiKey, RequestHeader},
    protocol::{Decodable, Encodable},
};

use super::*;
use crate::{
    broker::Broker,
    cluster::{controller::TopicError, image::MetadataImage},
    protocol::{
        decodable, encode_response, response_size, supported_versions, ProtocolError, RequestPrefix,
    },
    quota::{manager::Client, ANONYMOUS_USER},
    server::splice::{ResponseFrame, SendfileSlice, SpliceBuf},
};

/// What a request needs to know about where it came from, and the one metadata image it is answered from.
#[derive(Debug)]
pub struct RequestContext<'a> {
    pub broker: &'a Arc<Broker>,
    /// The metadata as of the moment the request was taken up. Leader, ISR, epochs, coordinator and
    /// controller are answered from it alone, so one response never mixes two versions of the metadata.
    pub image: Arc<MetadataImage>,
    /// The client's address as Kafka reports it in group descriptions (`/127.0.0.1`).
    pub client_host: String,
    pub header: &'a RequestHeader,
    pub version: i16,
    /// When the request was taken up, for the request latency metric.
    pub received: Instant,
    /// The client quota throttle this request earned so far (ms), the largest of its quotas.
    pub throttle_ms: AtomicU64,
}

impl RequestContext<'_> {
    /// Who the request is metered as for client quotas.
    pub fn quota_client(&self) -> Client<'_> {
        Client {
            user: ANONYMOUS_USER,
            client_id: self.header.client_id.as_ref().map_or("", |id| id.as_str()),
        }
    }

    /// Raises the throttle the response reports and the connection waits out.
    pub fn add_throttle(&self, throttle: Duration) {
        let ms = u64::try_from(throttle.as_millis()).unwrap_or(u64::MAX);
        self.throttle_ms.fetch_max(ms, Ordering::Relaxed);
    }

    pub fn throttle(&self) -> Duration {
        Duration::from_millis(self.throttle_ms.load(Ordering::Relaxed))
    }

    /// The throttle as the wire's `throttle_time_ms`.
    pub fn throttle_time_ms(&self) -> i32 {
        i32::try_from(self.throttle_ms.load(Ordering::Relaxed)).unwrap_or(i32::MAX)
    }

    /// Whether any client quota is set; when none is, nothing is metered.
    pub fn quotas_enabled(&self) -> bool {
        !self.image.client_quotas.is_empty()
    }

    /// Takes `partitions` created or deleted from the client's `controller_mutation_rate` (KIP-599):
    /// refused while the quota is used up when `strict` (the request versions whose clients know
    /// THROTTLING_QUOTA_EXCEEDED), otherwise counted and throttled afterwards.
    pub fn take_mutations(&self, partitions: i32, strict: bool) -> Result<(), TopicError> {
        if !self.quotas_enabled() || partitions <= 0 {
            return Ok(());
        }
        let quotas = &self.image.client_quotas;
        let client = self.quota_client();
        let manager = &self.broker.quotas;
        let outcome = manager.record_mutations(quotas, client, partitions.unsigned_abs(), strict);
        let throttle = match outcome {
            Err(throttle) => throttle,
            Ok(()) => manager.mutation_throttle(quotas, client),
        };
        self.add_throttle(throttle);
        outcome.map_err(|throttle| TopicError::ThrottlingQuotaExceeded {
            throttle_ms: u64::try_from(throttle.as_millis()).unwrap_or(u64::MAX),
        })
    }

    /// Counts `busy` against the client's `request_percentage` (Kafka exempts ApiVersions, and followers
    /// are brokers, not clients).
    pub fn record_request_time(&self, api: ApiKey, busy: Duration) {
        if api == ApiKey::ApiVersions || !self.quotas_enabled() {
            return;
        }
        let throttle = self.broker.quotas.record_request_time(
            &self.image.client_quotas,
            self.quota_client(),
            busy,
        );
        self.add_throttle(throttle);
    }
}

/// A handled request: what goes back, and how long the connection must wait before reading the next request
/// (the client quota throttle, KIP-219).
#[derive(Debug)]
pub struct Handled {
    pub pending: Pending,
    pub throttle: Duration,
}

/// Runs `future`, also measuring the time spent inside its polls (the work a request costs, not its waits
/// for a long-poll fetch or a rebalance) when `measure` is set.
pub(crate) async fn busy_time<F: Future>(measure: bool, future: F) -> (F::Output, Duration) {
    if !measure {
        return (future.await, Duration::ZERO);
    }
    let mut future = Box::pin(future);
    let mut busy = Duration::ZERO;
    let output = std::future::poll_fn(|cx| {
        let started = Instant::now();
        let polled = future.as_mut().poll(cx);
        busy += started.elapsed();
        polled
    })
    .await;
    (output, busy)
}

/// A response still being completed (a produce waiting for its fsync). Its request's effects have already
/// happened; only the acknowledgement waits.
pub type DeferredResponse = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Option<ResponseFrame>, ProtocolError>> + Send>,
>;

/// What a handled request gives back, in request order. `Ready(None)`: no response (Produce with acks=0).
pub enum Pending {
    Ready(Option<ResponseFrame>),
    Deferred(DeferredResponse),
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pending::Ready(frame) => f.debug_tuple("Ready").field(frame).finish(),
            Pending::Deferred(_) => f.write_str("Deferred"),
        }
    }
}

impl Pending {
    /// Waits for the response (tests and callers that do not pipeline).
    pub async fn resolve(self) -> Result<Option<ResponseFrame>, ProtocolError> {
        match self {
            Pending::Ready(frame) => Ok(frame),
            Pending::Deferred(future) => future.await,
        }
    }
}

/// Encodes a response into a frame ready for the socket; `slices` are the log slices whose placeholders the
/// body carries, in encoding order (see [`SpliceBuf`]).
pub fn encode<T: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    response: T,
    slices: Vec<SendfileSlice>,
) -> Result<ResponseFrame, ProtocolError> {
    let size = response_size(api, version, &response)?;
    let mut buf = SpliceBuf::new(size, slices);
    encode_response(&mut buf, api, version, correlation_id, &response)?;
    buf.finish(size).map_err(|source| ProtocolError::Encode {
        api,
        version,
        source,
    })
}

/// Handles one request frame (without its length prefix).
pub async fn handle_frame(broker: &Arc<Broker>, frame: BytesMut) -> Result<Pending, ProtocolError> {
    handle_frame_from(broker, frame, None).await
}

/// [`handle_frame`] for a request from a known peer.
pub async fn handle_frame_from(
    broker: &Arc<Broker>,
    frame: BytesMut,
    peer: Option<std::net::SocketAddr>,
) -> Result<Pending, ProtocolError> {
    handle_request(broker, frame, peer)
        .await
        .map(|handled| handled.pending)
}

/// Handles one request frame from `peer`, with the throttle its client quotas impose.
pub async fn handle_request(
    broker: &Arc<Broker>,
    frame: BytesMut,
    peer: Option<std::net::SocketAddr>,
) -> Result<Handled, ProtocolError> {
    let unthrottled = |pending| Handled {
        pending,
        throttle: Duration::ZERO,
    };
    let Some(prefix) = RequestPrefix::read(&frame) else {
        return Err(ProtocolError::FrameTooShort {
            size: frame.len() as i32,
        });
    };
    let mut body = frame.freeze();
    let RequestPrefix {
        api_key: raw_key,
        version,
        correlation_id,
    } = prefix;
    let api = ApiKey::try_from(raw_key).map_err(|()| ProtocolError::UnknownApiKey(raw_key))?;
    let Some(range) = supported_versions(api) else {
        return Err(ProtocolError::UnknownApiKey(raw_key));
    };
    let received = Instant::now();
    if !range.contains(&version) || !decodable(api, version) {
        // Answered with an error code (ApiVersions) or by closing the connection: an error either way.
        broker.metrics.request_finished(api, received, true);
        if api == ApiKey::ApiVersions {
            // Clients send their newest ApiVersions first; the answer must be v0-shaped so any client can read
            // the supported ranges and retry with a version both sides know.
            return encode(
                api,
                0,
                correlation_id,
                api_versions::unsupported_version_response(),
                Vec::new(),
            )
            .map(|frame| unthrottled(Pending::Ready(Some(frame))));
        }
        return Err(ProtocolError::UnsupportedVersion { api, version });
    }
    let header_version = api.request_header_version(version);
    let header = RequestHeader::decode(&mut body, header_version).map_err(|source| {
        broker.metrics.request_finished(api, received, true);
        ProtocolError::DecodeHeader {
            api,
            version,
            source,
        }
    })?;
    let ctx = RequestContext {
        broker,
        image: broker.image(),
        client_host: peer.map(|p| format!("/{}", p.ip())).unwrap_or_default(),
        header: &header,
        version,
        received,
        throttle_ms: AtomicU64::new(0),
    };
    let pending = dispatch(&ctx, api, &mut body).await?;
    Ok(Handled {
        pending,
        throttle: ctx.throttle(),
    })
}

/// Routes a request to its handler and encodes the answer, counting it in the per-API request metrics: a
/// request that fails here (undecodable, unencodable) counts as an error, and its connection closes.
async fn dispatch(
    ctx: &RequestContext<'_>,
    api: ApiKey,
    body: &mut Bytes,
) -> Result<Pending, ProtocolError> {
    let result = route(ctx, api, body).await;
    if result.is_err() {
        ctx.broker.metrics.request_finished(api, ctx.received, true);
    }
    result
}
