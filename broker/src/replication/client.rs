//! A minimal Kafka client connection for broker-to-broker requests (the follower fetcher's Fetch and
//! OffsetForLeaderEpoch): one request at a time, fixed versions, kafka-protocol codecs. Peers are Tributary
//! brokers, whose advertised versions are known, so there is no version negotiation; the operator's
//! pipelined admin client (`operator/src/kafka_admin/connection.rs`) is the one to move into `protocol/`
//! when both crates need more than this.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::{
    messages::{RequestHeader, ResponseHeader},
    protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

/// Responses larger than this are refused rather than allocated.
const MAX_RESPONSE_BYTES: usize = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connecting to {address}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    #[error("no answer from {address} within {timeout:?}")]
    Timeout { address: String, timeout: Duration },
    #[error("talking to {address}")]
    Io {
        address: String,
        source: std::io::Error,
    },
    #[error("encoding a request to {address}")]
    Encode {
        address: String,
        source: anyhow::Error,
    },
    #[error("decoding the response from {address}: {reason}")]
    Decode { address: String, reason: String },
}

/// A TCP connection to the first address `address` resolves to, bound to `bind_source` first.
async fn open(address: &str, bind_source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(ip) = bind_source else {
        return TcpStream::connect(address).await;
    };
    let target = tokio::net::lookup_host(address)
        .await?
        .next()
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the name resolves to no address",
            )
        })?;
    let socket = if target.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if ip.is_ipv4() == target.is_ipv4() {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    socket.connect(target).await
}

/// One connection to a peer broker.
#[derive(Debug)]
pub struct Connection {
    address: String,
    stream: TcpStream,
    client_id: StrBytes,
    correlation_id: i32,
}

impl Connection {
    /// Connects to `address` (host:port), from `bind_source` (port 0) when given and of the same family.
    pub async fn connect(
        address: String,
        bind_source: Option<IpAddr>,
        client_id: &'static str,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let stream = match tokio::time::timeout(timeout, open(&address, bind_source)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => return Err(ClientError::Connect { address, source }),
            Err(_) => return Err(ClientError::Timeout { address, timeout }),
        };
        let _ = stream.set_nodelay(true);
        Ok(Self {
            address,
            stream,
            client_id: StrBytes::from_static_str(client_id),
            correlation_id: 0,
        })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// Sends `request` as `version` and waits (at most `timeout`) for its response.
    pub async fn call<R: Request>(
        &mut self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, ClientError> {
        let address = self.address.clone();
        match tokio::time::timeout(timeout, self.exchange(request, version)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout { address, timeout }),
        }
    }

    async fn exchange<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, ClientError> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let correlation_id = self.correlation_id;
        let encode = |source| ClientError::Encode {
            address: self.address.clone(),
            source,
        };
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let mut frame = BytesMut::new();
        frame.extend_from_slice(&[0; 4]);
        header
            .encode(&mut frame, R::header_version(version))
            .map_err(encode)?;
        request.encode(&mut frame, version).map_err(encode)?;
        let size = i32::try_from(frame.len() - 4).unwrap_or(i32::MAX);
        frame[..4].copy_from_slice(&size.to_be_bytes());
        let io = |source| ClientError::Io {
            address: self.address.clone(),
            source,
        };
        self.stream.write_all(&frame).await.map_err(io)?;
        let size = self.stream.read_i32().await.map_err(io)?;
        let size = usize::try_from(size)
            .ok()
            .filter(|s| *s <= MAX_RESPONSE_BYTES)
            .ok_or_else(|| ClientError::Decode {
                address: self.address.clone(),
                reason: format!("response size {size}"),
            })?;
        let mut body = vec![0u8; size];
        self.stream.read_exact(&mut body).await.map_err(io)?;
        let mut body = Bytes::from(body);
        let decode = |reason: String| ClientError::Decode {
            address: self.address.clone(),
            reason,
        };
        let header = ResponseHeader::decode(&mut body, R::Response::header_version(version))
            .map_err(|e| decode(format!("header: {e}")))?;
        if header.correlation_id != correlation_id {
            return Err(decode(format!(
                "correlation id {} answers {correlation_id}",
                header.correlation_id
            )));
        }
        let response =
            R::Response::decode(&mut body, version).map_err(|e| decode(format!("body: {e}")))?;
        if body.has_remaining() {
            return Err(decode(format!("{} bytes after the body", body.remaining())));
        }
        Ok(response)
    }
}
