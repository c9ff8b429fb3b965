//! The Kafka wire protocol as this broker speaks it: request framing, header decoding, the table of supported
//! API versions, dispatch to the handlers and response encoding.
//!
//! Message types and their codec come from the `kafka-protocol` crate; nothing here encodes a message field
//! by hand. Must never let one bad request affect another connection: decoding failures close only the
//! connection they arrived on.

pub mod splice;
mod versions;

use std::{sync::Arc, time::Instant};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::{
    messages::{ApiKey, RequestHeader, ResponseHeader},
    protocol::{Decodable, Encodable},
};
pub use splice::{ResponseFrame, SendfileSlice, SpliceBuf};
pub use versions::{supported_versions, SUPPORTED_APIS};

use crate::{broker::Broker, handlers};

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("request frame of {size} bytes exceeds socket.request.max.bytes ({max})")]
    FrameTooLarge { size: usize, max: usize },
    #[error("request frame of {size} bytes is shorter than a request header")]
    FrameTooShort { size: i32 },
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("unsupported version {version} of {api:?}")]
    UnsupportedVersion { api: ApiKey, version: i16 },
    #[error("decoding {api:?} v{version} request header")]
    DecodeHeader {
        api: ApiKey,
        version: i16,
        source: anyhow::Error,
    },
    #[error("decoding {api:?} v{version} request body")]
    DecodeBody {
        api: ApiKey,
        version: i16,
        source: anyhow::Error,
    },
    #[error("encoding {api:?} v{version} response")]
    Encode {
        api: ApiKey,
        version: i16,
        source: anyhow::Error,
    },
}

/// The fixed prefix of every request header: api key, api version, correlation id.
pub const MIN_HEADER_BYTES: usize = 8;

/// What a request needs to know about where it came from.
#[derive(Debug)]
pub struct RequestContext<'a> {
    pub broker: &'a Arc<Broker>,
    /// The client's address as Kafka reports it in group descriptions (`/127.0.0.1`).
    pub client_host: String,
    pub header: &'a RequestHeader,
    pub version: i16,
    /// When the request was taken up, for the request latency metric.
    pub received: Instant,
}

/// Checks a frame length read off the wire before any buffer is allocated for it.
pub fn check_frame_size(size: i32, max: usize) -> Result<usize, ProtocolError> {
    if size < MIN_HEADER_BYTES as i32 {
        return Err(ProtocolError::FrameTooShort { size });
    }
    let size = size as usize;
    if size > max {
        return Err(ProtocolError::FrameTooLarge { size, max });
    }
    Ok(size)
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

/// Handles one request frame (without its length prefix). Everything the request does happens before this
/// returns; only a produce's wait for durability may be left in the returned [`Pending`], so the connection can
/// read the next request meanwhile and later requests share the same fsync.
pub async fn handle_frame(broker: &Arc<Broker>, frame: BytesMut) -> Result<Pending, ProtocolError> {
    handle_frame_from(broker, frame, None).await
}

/// [`handle_frame`] for a request from a known peer.
pub async fn handle_frame_from(
    broker: &Arc<Broker>,
    frame: BytesMut,
    peer: Option<std::net::SocketAddr>,
) -> Result<Pending, ProtocolError> {
    if frame.len() < MIN_HEADER_BYTES {
        return Err(ProtocolError::FrameTooShort {
            size: frame.len() as i32,
        });
    }
    let mut body = frame.freeze();
    let raw_key = i16::from_be_bytes([body[0], body[1]]);
    let version = i16::from_be_bytes([body[2], body[3]]);
    let correlation_id = i32::from_be_bytes([body[4], body[5], body[6], body[7]]);
    let api = ApiKey::try_from(raw_key).map_err(|()| ProtocolError::UnknownApiKey(raw_key))?;
    let Some(range) = supported_versions(api) else {
        return Err(ProtocolError::UnknownApiKey(raw_key));
    };
    let received = Instant::now();
    if !range.contains(&version) || !versions::decodable(api, version) {
        // Answered with an error code (ApiVersions) or by closing the connection: an error either way.
        broker.metrics.request_finished(api, received, true);
        if api == ApiKey::ApiVersions {
            // Clients send their newest ApiVersions first; the answer must be v0-shaped so any client can read
            // the supported ranges and retry with a version both sides know.
            return encode(
                api,
                0,
                correlation_id,
                handlers::api_versions::unsupported_version_response(),
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
        client_host: peer.map(|p| format!("/{}", p.ip())).unwrap_or_default(),
        header: &header,
        version,
        received,
    };
    handlers::dispatch(&ctx, api, &mut body).await
}

/// Decodes a request body. Trailing bytes are tolerated, as Apache Kafka does: librdkafka, for one, sends
/// fields that Metadata v11+ no longer has, and refusing them would cut off every librdkafka client.
pub fn decode_body<T: Decodable>(
    api: ApiKey,
    version: i16,
    body: &mut Bytes,
) -> Result<T, ProtocolError> {
    let request = T::decode(body, version).map_err(|source| ProtocolError::DecodeBody {
        api,
        version,
        source,
    })?;
    if body.has_remaining() {
        tracing::trace!(
            ?api,
            version,
            trailing = body.remaining(),
            "ignoring trailing request bytes"
        );
    }
    Ok(request)
}

/// Encodes a response header and body. `slices` are the log slices whose placeholders the body carries, in
/// encoding order (see [`SpliceBuf`]).
pub fn encode<T: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    response: T,
    slices: Vec<SendfileSlice>,
) -> Result<ResponseFrame, ProtocolError> {
    let header_version = if api == ApiKey::ApiVersions {
        0
    } else {
        api.response_header_version(version)
    };
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let err = |source| ProtocolError::Encode {
        api,
        version,
        source,
    };
    let size = header.compute_size(header_version).map_err(err)?
        + response.compute_size(version).map_err(err)?;
    let mut buf = SpliceBuf::new(size, slices);
    header.encode(&mut buf, header_version).map_err(err)?;
    response.encode(&mut buf, version).map_err(err)?;
    buf.finish(size).map_err(err)
}
