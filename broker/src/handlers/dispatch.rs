//! From a request frame to its response: the request context, header decoding, routing by API key, and
//! encoding the answer (with the sendfile slices a fetch carries), counted in the per-API request metrics.
//!
//! Everything a request does happens before [`handle_frame`] returns; only a produce's wait for durability
//! may be left in the returned [`Pending`], so the connection can read the next request meanwhile and later
//! requests share the same fsync.

use std::{sync::Arc, time::Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    messages::{ApiKey, RequestHeader},
    protocol::{Decodable, Encodable},
};

use super::*;
use crate::{
    broker::Broker,
    cluster::image::MetadataImage,
    protocol::{
        decodable, encode_response, response_size, supported_versions, ProtocolError, RequestPrefix,
    },
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
            .map(|frame| Pending::Ready(Some(frame)));
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
    };
    dispatch(&ctx, api, &mut body).await
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
