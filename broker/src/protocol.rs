//! The Kafka wire protocol as this broker speaks it: request framing, the fixed header prefix, the table of
//! supported API versions, and body decoding and response encoding on the `kafka-protocol` codec.
//!
//! Only the wire: it imports nothing else of the crate (dispatch and the request context live with the
//! handlers, the socket and its sendfile splice with the server). Nothing here encodes a message field by
//! hand. Decoding failures are errors for the one connection they arrived on.

mod versions;

use bytes::{Buf, Bytes};
use kafka_protocol::{
    messages::{ApiKey, ResponseHeader},
    protocol::{buf::ByteBufMut, Decodable, Encodable},
};
pub use versions::{decodable, supported_versions, SUPPORTED_APIS};

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

/// The fixed prefix every request starts with, read before the header version is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPrefix {
    pub api_key: i16,
    pub version: i16,
    pub correlation_id: i32,
}

impl RequestPrefix {
    /// Reads the prefix of a frame (without its length); `None` when the frame is too short for one.
    pub fn read(frame: &[u8]) -> Option<Self> {
        let prefix = frame.get(..MIN_HEADER_BYTES)?;
        Some(Self {
            api_key: i16::from_be_bytes([prefix[0], prefix[1]]),
            version: i16::from_be_bytes([prefix[2], prefix[3]]),
            correlation_id: i32::from_be_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]),
        })
    }
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

/// The response header version: ApiVersions answers with a v0 header at every version, so that a client
/// whose request version was refused can still read the answer.
pub fn response_header_version(api: ApiKey, version: i16) -> i16 {
    if api == ApiKey::ApiVersions {
        0
    } else {
        api.response_header_version(version)
    }
}

/// The size of the encoded response header and body (without the frame's length prefix).
pub fn response_size<T: Encodable>(
    api: ApiKey,
    version: i16,
    response: &T,
) -> Result<usize, ProtocolError> {
    let err = |source| ProtocolError::Encode {
        api,
        version,
        source,
    };
    let header_version = response_header_version(api, version);
    Ok(ResponseHeader::default()
        .compute_size(header_version)
        .map_err(err)?
        + response.compute_size(version).map_err(err)?)
}

/// Encodes a response header and body into `buf`.
pub fn encode_response<T: Encodable, B: ByteBufMut>(
    buf: &mut B,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &T,
) -> Result<(), ProtocolError> {
    let err = |source| ProtocolError::Encode {
        api,
        version,
        source,
    };
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(buf, response_header_version(api, version))
        .map_err(err)?;
    response.encode(buf, version).map_err(err)
}
