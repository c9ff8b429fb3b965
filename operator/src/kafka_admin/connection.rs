//! One pipelined Kafka connection: requests are framed and written in order, a reader task matches responses to
//! their callers by correlation id, so concurrent reconciles share a socket without waiting for each other.
//!
//! This module knows framing and version negotiation only; it never interprets a response's content.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicI32, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::{
    messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader},
    protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes, VersionRange},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        tcp::{OwnedReadHalf, OwnedWriteHalf},
        TcpStream,
    },
    sync::oneshot,
    task::JoinHandle,
};

use super::Error;

/// Largest response accepted. Admin responses are small; a larger length prefix means a broken or hostile peer.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// The client id brokers see in their logs and request metrics.
const CLIENT_ID: &str = "tributary-operator";

type Pending = Arc<Mutex<HashMap<i32, oneshot::Sender<Bytes>>>>;

/// A connection to one broker. Safe to share between tasks; a failed connection reports itself closed and is
/// replaced by its owner.
#[derive(Debug)]
pub(super) struct Connection {
    address: String,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: Pending,
    next_correlation_id: AtomicI32,
    closed: Arc<AtomicBool>,
    versions: HashMap<i16, VersionRange>,
    reader: JoinHandle<()>,
    request_timeout: Duration,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Connection {
    /// Connects to `address` and learns which API versions the broker supports.
    pub(super) async fn open(
        address: &str,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Result<Self, Error> {
        let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(address))
            .await
            .map_err(|_| Error::Connect {
                address: address.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
            })?
            .map_err(|source| Error::Connect {
                address: address.to_owned(),
                source,
            })?;
        // Admin requests are small and latency-bound.
        let _ = stream.set_nodelay(true);
        let (read_half, write_half) = stream.into_split();
        let pending: Pending = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        let reader = tokio::spawn(read_responses(
            read_half,
            pending.clone(),
            closed.clone(),
            address.to_owned(),
        ));
        let mut connection = Self {
            address: address.to_owned(),
            writer: tokio::sync::Mutex::new(write_half),
            pending,
            next_correlation_id: AtomicI32::new(0),
            closed,
            versions: HashMap::new(),
            reader,
            request_timeout,
        };
        connection.versions = connection.negotiate().await?;
        Ok(connection)
    }

    /// Whether the socket failed; a closed connection answers every request with an error.
    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Sends `request` at the highest version both sides support and waits for its response.
    pub(super) async fn send<R: Request>(&self, request: &R) -> Result<R::Response, Error> {
        let api = api_name(R::KEY);
        let broker = self.versions.get(&R::KEY).ok_or(Error::UnsupportedApi {
            api,
            address: self.address.clone(),
        })?;
        let common = R::VERSIONS.intersect(broker);
        if common.is_empty() {
            return Err(Error::UnsupportedApi {
                api,
                address: self.address.clone(),
            });
        }
        self.send_at(request, common.max).await
    }

    async fn send_at<R: Request>(&self, request: &R, version: i16) -> Result<R::Response, Error> {
        let api = api_name(R::KEY);
        let codec = |source: anyhow::Error| Error::Codec {
            api,
            source: source.into(),
        };
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        let header_version = R::header_version(version);
        let size = header
            .compute_size(header_version)
            .and_then(|h| Ok(h + request.compute_size(version)?))
            .map_err(codec)?;
        let mut frame = BytesMut::with_capacity(4 + size);
        frame.put_i32(i32::try_from(size).map_err(|e| codec(e.into()))?);
        header.encode(&mut frame, header_version).map_err(codec)?;
        request.encode(&mut frame, version).map_err(codec)?;

        let (reply, response) = oneshot::channel();
        self.lock_pending().insert(correlation_id, reply);
        let _forget_on_exit = ForgetOnDrop {
            pending: &self.pending,
            correlation_id,
        };
        if self.is_closed() {
            return Err(self.closed_error());
        }
        {
            let mut writer = self.writer.lock().await;
            if let Err(source) = writer.write_all(&frame).await {
                self.closed.store(true, Ordering::Release);
                return Err(Error::Io {
                    address: self.address.clone(),
                    source,
                });
            }
        }
        let mut body = tokio::time::timeout(self.request_timeout, response)
            .await
            .map_err(|_| Error::Timeout {
                api,
                address: self.address.clone(),
            })?
            .map_err(|_| self.closed_error())?;
        let response_header_version = R::Response::header_version(version);
        kafka_protocol::messages::ResponseHeader::decode(&mut body, response_header_version)
            .map_err(codec)?;
        R::Response::decode(&mut body, version).map_err(codec)
    }

    /// ApiVersions at v3 (flexible); a broker too old for it answers v0-shaped, and then v0 is used.
    async fn negotiate(&self) -> Result<HashMap<i16, VersionRange>, Error> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str(CLIENT_ID))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let response: ApiVersionsResponse = match self.send_at(&request, 3).await {
            Ok(response) if response.error_code == 0 => response,
            Ok(_) | Err(Error::Codec { .. }) => self.send_at(&request, 0).await?,
            Err(other) => return Err(other),
        };
        if response.error_code != 0 {
            return Err(Error::Broker {
                api: "ApiVersions",
                code: response.error_code,
                message: None,
            });
        }
        Ok(response
            .api_keys
            .iter()
            .map(|api| {
                (
                    api.api_key,
                    VersionRange {
                        min: api.min_version,
                        max: api.max_version,
                    },
                )
            })
            .collect())
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<i32, oneshot::Sender<Bytes>>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn closed_error(&self) -> Error {
        Error::Io {
            address: self.address.clone(),
            source: std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "connection closed"),
        }
    }
}

/// Removes a request's reply slot when its caller gives up (timeout, cancellation), so slots never leak.
struct ForgetOnDrop<'a> {
    pending: &'a Pending,
    correlation_id: i32,
}

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.correlation_id);
    }
}

/// Reads frames until the socket fails, handing each to the caller waiting for its correlation id. On exit every
/// waiting caller sees its reply channel closed.
async fn read_responses(
    mut reader: OwnedReadHalf,
    pending: Pending,
    closed: Arc<AtomicBool>,
    address: String,
) {
    let outcome: Result<(), String> = async {
        loop {
            let length = match reader.read_i32().await {
                Ok(length) => length,
                Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Err("broker closed the connection".to_owned())
                }
                Err(error) => return Err(error.to_string()),
            };
            let length = usize::try_from(length)
                .ok()
                .filter(|l| (4..=MAX_RESPONSE_BYTES).contains(l))
                .ok_or_else(|| format!("invalid response length {length}"))?;
            let mut body = BytesMut::zeroed(length);
            reader
                .read_exact(&mut body)
                .await
                .map_err(|e| e.to_string())?;
            let body = body.freeze();
            // Peeked, not consumed: the caller decodes the whole response header.
            let correlation_id = (&body[..4]).get_i32();
            let waiter = pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&correlation_id);
            // A reply nobody waits for (its caller timed out) is dropped.
            if let Some(waiter) = waiter {
                let _ = waiter.send(body);
            }
        }
    }
    .await;
    closed.store(true, Ordering::Release);
    if let Err(reason) = outcome {
        tracing::debug!(address = %address, reason = %reason, "Kafka admin connection closed");
    }
    pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clear();
}

fn api_name(key: i16) -> &'static str {
    match ApiKey::try_from(key) {
        Ok(ApiKey::ApiVersions) => "ApiVersions",
        Ok(ApiKey::Metadata) => "Metadata",
        Ok(ApiKey::CreateTopics) => "CreateTopics",
        Ok(ApiKey::CreatePartitions) => "CreatePartitions",
        Ok(ApiKey::DescribeConfigs) => "DescribeConfigs",
        Ok(ApiKey::IncrementalAlterConfigs) => "IncrementalAlterConfigs",
        Ok(ApiKey::DeleteTopics) => "DeleteTopics",
        Ok(ApiKey::UnregisterBroker) => "UnregisterBroker",
        Ok(ApiKey::AlterPartitionReassignments) => "AlterPartitionReassignments",
        _ => "Other",
    }
}
