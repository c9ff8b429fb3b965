//! In-process brokers for tests: [`TestBroker`] opens a real broker on a temporary data directory and talks to
//! it with real request frames (kafka-protocol messages in, kafka-protocol messages out), without sockets;
//! [`TestCluster`] starts several. This module exists for tests (this crate's and others'); production code
//! never uses it.
//!
//! Tests must reach the broker only through this API and kafka-protocol message types, so they keep passing
//! while the internals change. Every line that touches broker internals is in the private `internals` module
//! at the end of this file; adapting the fixture to a refactor means editing only that module.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::atomic::{AtomicI32, Ordering},
    time::Duration,
};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::{
    messages::{ApiKey, RequestHeader, ResponseHeader},
    protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes},
};
use tempfile::TempDir;
use tokio::task::JoinHandle;

pub mod replicated;
pub mod small_disk;

/// The client id of every request the fixture sends (Kafka reports it in DescribeGroups, and group member ids
/// start with it).
pub const CLIENT_ID: &str = "tributary-test";

/// How long one call may take before it counts as hung; bounded so a broken broker fails a test instead of
/// hanging it.
const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How often group sessions and rebalance deadlines are checked, as the broker binary does.
const GROUP_TICK: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum TestError {
    #[error("creating a temporary data directory")]
    TempDir(#[source] std::io::Error),
    #[error("opening the broker: {0}")]
    Open(String),
    #[error("shutting the broker down: {0}")]
    Shutdown(String),
    #[error("the broker is not running (a restart failed)")]
    Stopped,
    #[error("encoding {api} v{version}")]
    Encode {
        api: String,
        version: i16,
        source: anyhow::Error,
    },
    /// What a client sees as a closed connection: the broker gave up on the request.
    #[error("the broker closed the connection: {0}")]
    Closed(String),
    #[error("the broker sent no response")]
    NoResponse,
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("decoding {api} v{version} response: {reason}")]
    Decode {
        api: String,
        version: i16,
        reason: String,
    },
}

fn api_name(key: i16) -> String {
    ApiKey::try_from(key)
        .map(|api| format!("{api:?}"))
        .unwrap_or_else(|()| format!("API key {key}"))
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A request frame as a client sends it, without the 4-byte size prefix: the header in the version the API
/// key and version call for, then the body.
pub fn request_frame<R: Request>(
    request: &R,
    version: i16,
    correlation_id: i32,
) -> Result<BytesMut, TestError> {
    let err = |source| TestError::Encode {
        api: api_name(R::KEY),
        version,
        source,
    };
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    let mut frame = BytesMut::new();
    header
        .encode(&mut frame, R::header_version(version))
        .map_err(err)?;
    request.encode(&mut frame, version).map_err(err)?;
    Ok(frame)
}

/// Decodes a response frame (without its size prefix) the way a client does, strictly: the correlation id must
/// match and the body must be consumed exactly.
pub fn decode_response<R: Request>(
    mut frame: Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<R::Response, TestError> {
    let err = |reason: String| TestError::Decode {
        api: api_name(R::KEY),
        version,
        reason,
    };
    let header = ResponseHeader::decode(&mut frame, R::Response::header_version(version))
        .map_err(|e| err(format!("header: {e}")))?;
    if header.correlation_id != correlation_id {
        return Err(err(format!(
            "correlation id {} answers a request sent with {correlation_id}",
            header.correlation_id
        )));
    }
    let response =
        R::Response::decode(&mut frame, version).map_err(|e| err(format!("body: {e}")))?;
    if frame.has_remaining() {
        return Err(err(format!(
            "{} bytes left after the body",
            frame.remaining()
        )));
    }
    Ok(response)
}

/// Sends `request` to a broker process listening on 127.0.0.1:`port` over a new connection and waits (at most
/// `timeout`) for the answer: for tests that run the broker binary rather than [`TestBroker`].
pub fn call_over_tcp<R: Request>(
    port: u16,
    request: &R,
    version: i16,
    timeout: Duration,
) -> Result<R::Response, TestError> {
    use std::io::{Read, Write};
    let frame = request_frame(request, version, 7)?;
    let closed = |e: std::io::Error| TestError::Closed(e.to_string());
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(closed)?;
    stream.set_read_timeout(Some(timeout)).map_err(closed)?;
    let size = u32::try_from(frame.len()).unwrap_or(u32::MAX);
    stream.write_all(&size.to_be_bytes()).map_err(closed)?;
    stream.write_all(&frame).map_err(closed)?;
    let mut size = [0; 4];
    stream.read_exact(&mut size).map_err(closed)?;
    let mut body = vec![0; u32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).map_err(closed)?;
    decode_response::<R>(Bytes::from(body), version, 7)
}

/// Settings of a [`TestBroker`] before it starts. Broker settings are Kafka broker property names, so tests
/// do not depend on how the broker stores its configuration.
#[derive(Debug, Clone)]
pub struct TestBrokerBuilder {
    properties: BTreeMap<String, String>,
    node_id: i32,
    call_timeout: Duration,
}

impl TestBrokerBuilder {
    /// A Kafka broker property (`server.properties` name). `log.dirs` belongs to the fixture.
    pub fn property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let (key, value) = (key.into(), value.into());
        if key == "node.id" || key == "broker.id" {
            if let Ok(id) = value.trim().parse() {
                self.node_id = id;
            }
        }
        self.properties.insert(key, value);
        self
    }

    pub fn node_id(self, node_id: i32) -> Self {
        self.property("node.id", node_id.to_string())
    }

    /// `group.initial.rebalance.delay.ms`: 0 lets a new group's first rebalance complete at once.
    pub fn group_initial_rebalance_delay_ms(self, ms: u64) -> Self {
        self.property("group.initial.rebalance.delay.ms", ms.to_string())
    }

    /// How long one call may take before it fails with [`TestError::Timeout`].
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Starts the broker. Must run inside a tokio runtime (group timers run as a task on it).
    pub async fn start(self) -> TestBroker {
        match self.try_start().await {
            Ok(broker) => broker,
            Err(e) => panic!("starting a test broker: {}", chain(&e)),
        }
    }

    pub async fn try_start(mut self) -> Result<TestBroker, TestError> {
        let dir = tempfile::Builder::new()
            .prefix("tributary-test-")
            .tempdir()
            .map_err(TestError::TempDir)?;
        self.properties.insert(
            "log.dirs".to_owned(),
            dir.path().to_string_lossy().into_owned(),
        );
        self.properties
            .insert("node.id".to_owned(), self.node_id.to_string());
        let mut broker = TestBroker {
            broker: None,
            timers: None,
            properties: self.properties,
            node_id: self.node_id,
            call_timeout: self.call_timeout,
            correlation_id: AtomicI32::new(1),
            dir,
        };
        broker.open()?;
        Ok(broker)
    }
}

/// One broker with its own temporary data directory (removed on drop), served in-process: every call goes
/// through the same frame entry point as a request read off a socket. Group session and rebalance timers run
/// as on a real broker. Calls may run concurrently (`tokio::join!`); restart needs `&mut`, so none is in
/// flight then.
#[derive(Debug)]
pub struct TestBroker {
    broker: Option<internals::Handle>,
    timers: Option<JoinHandle<()>>,
    properties: BTreeMap<String, String>,
    node_id: i32,
    call_timeout: Duration,
    correlation_id: AtomicI32,
    dir: TempDir,
}

impl TestBroker {
    /// A broker with the broker's own defaults (Kafka's, where they exist) and node id 1.
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    pub fn builder() -> TestBrokerBuilder {
        TestBrokerBuilder {
            properties: BTreeMap::new(),
            node_id: 1,
            call_timeout: DEFAULT_CALL_TIMEOUT,
        }
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Sends `request` as API version `version` and decodes the answer; panics (failing the test) with the
    /// reason if there is none, e.g. because the broker closed the connection.
    pub async fn call<R: Request>(&self, request: R, version: i16) -> R::Response {
        match self.try_call(request, version).await {
            Ok(response) => response,
            Err(e) => panic!(
                "{} v{version} to broker {}: {}",
                api_name(R::KEY),
                self.node_id,
                chain(&e)
            ),
        }
    }

    /// [`Self::call`] that returns the failure instead, for requests the broker should refuse.
    pub async fn try_call<R: Request>(
        &self,
        request: R,
        version: i16,
    ) -> Result<R::Response, TestError> {
        let correlation_id = self.correlation_id.fetch_add(1, Ordering::Relaxed);
        let frame = request_frame(&request, version, correlation_id)?;
        let response = self.call_frame(frame).await?.ok_or(TestError::NoResponse)?;
        decode_response::<R>(response, version, correlation_id)
    }

    /// Sends raw frame bytes (without the size prefix) and returns the raw response (without its size prefix);
    /// `Ok(None)` when the broker sends no response (Produce with acks=0), `Err(Closed)` when it would close
    /// the connection.
    pub async fn call_frame(&self, frame: impl AsRef<[u8]>) -> Result<Option<Bytes>, TestError> {
        let broker = self.broker.as_ref().ok_or(TestError::Stopped)?;
        let frame = BytesMut::from(frame.as_ref());
        let answered = internals::handle(broker, frame);
        let response = tokio::time::timeout(self.call_timeout, answered)
            .await
            .map_err(|_| TestError::Timeout(self.call_timeout))?
            .map_err(TestError::Closed)?;
        let Some(response) = response else {
            return Ok(None);
        };
        let mut response = Bytes::from(response);
        if response.len() < 4 {
            return Err(TestError::Closed(format!(
                "a {}-byte response has no size prefix",
                response.len()
            )));
        }
        let size = response.get_i32();
        if usize::try_from(size).ok() != Some(response.len()) {
            return Err(TestError::Closed(format!(
                "the size prefix says {size} bytes but {} follow",
                response.len()
            )));
        }
        Ok(Some(response))
    }

    /// Shuts the broker down cleanly and opens it again on the same data directory, as a restart of the
    /// process would.
    pub async fn restart(&mut self) {
        if let Err(e) = self.try_restart().await {
            panic!("restarting broker {}: {}", self.node_id, chain(&e));
        }
    }

    pub async fn try_restart(&mut self) -> Result<(), TestError> {
        self.stop_timers().await;
        if let Some(broker) = self.broker.take() {
            internals::shutdown(broker).map_err(TestError::Shutdown)?;
        }
        self.open()
    }

    fn open(&mut self) -> Result<(), TestError> {
        let broker = internals::open(&self.properties).map_err(TestError::Open)?;
        let ticking = broker.clone();
        self.timers = Some(tokio::spawn(async move {
            let mut interval = tokio::time::interval(GROUP_TICK);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                internals::tick(&ticking).await;
            }
        }));
        self.broker = Some(broker);
        Ok(())
    }

    async fn stop_timers(&mut self) {
        if let Some(timers) = self.timers.take() {
            timers.abort();
            // Waits until the task let go of its broker handle, so shutdown can close every log.
            let _ = timers.await;
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(timers) = self.timers.take() {
            timers.abort();
        }
    }
}

/// Settings of a [`TestCluster`]: the same broker settings for every broker.
#[derive(Debug, Clone)]
pub struct TestClusterBuilder {
    size: usize,
    broker: TestBrokerBuilder,
}

impl TestClusterBuilder {
    pub fn property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.broker = self.broker.property(key, value);
        self
    }

    pub fn group_initial_rebalance_delay_ms(mut self, ms: u64) -> Self {
        self.broker = self.broker.group_initial_rebalance_delay_ms(ms);
        self
    }

    pub async fn start(self) -> TestCluster {
        match self.try_start().await {
            Ok(cluster) => cluster,
            Err(e) => panic!("starting a test cluster: {}", chain(&e)),
        }
    }

    pub async fn try_start(self) -> Result<TestCluster, TestError> {
        let mut brokers = Vec::with_capacity(self.size);
        for node_id in (1..).take(self.size) {
            brokers.push(self.broker.clone().node_id(node_id).try_start().await?);
        }
        Ok(TestCluster { brokers })
    }
}

/// N brokers in one process with node ids 1..=N. Today they are independent single-node brokers; the type
/// is where cluster membership will live once brokers form a cluster.
#[derive(Debug)]
pub struct TestCluster {
    brokers: Vec<TestBroker>,
}

impl TestCluster {
    pub async fn start(size: usize) -> Self {
        Self::builder(size).start().await
    }

    pub fn builder(size: usize) -> TestClusterBuilder {
        TestClusterBuilder {
            size,
            broker: TestBroker::builder(),
        }
    }

    pub fn brokers(&self) -> &[TestBroker] {
        &self.brokers
    }

    pub fn node_ids(&self) -> Vec<i32> {
        self.brokers.iter().map(TestBroker::node_id).collect()
    }

    /// The broker with `node_id`; panics if there is none.
    pub fn broker(&self, node_id: i32) -> &TestBroker {
        self.brokers
            .iter()
            .find(|b| b.node_id == node_id)
            .unwrap_or_else(|| panic!("no broker with node id {node_id} in {:?}", self.node_ids()))
    }

    pub async fn restart(&mut self, node_id: i32) {
        let ids = self.node_ids();
        match self.brokers.iter_mut().find(|b| b.node_id == node_id) {
            Some(broker) => broker.restart().await,
            None => panic!("no broker with node id {node_id} in {ids:?}"),
        }
    }
}

/// The fixture's only contact with broker internals: opening from Kafka properties, the frame entry point,
/// the group timers and clean shutdown.
mod internals {
    use std::{collections::BTreeMap, sync::Arc};

    use bytes::BytesMut;

    use super::chain;
    use crate::{broker::Broker, config::BrokerConfig, handlers::handle_frame};

    pub(super) type Handle = Arc<Broker>;

    pub(super) fn open(properties: &BTreeMap<String, String>) -> Result<Handle, String> {
        let mut config = BrokerConfig::dev_defaults();
        config.apply_properties(properties).map_err(|e| chain(&e))?;
        Broker::open(config).map_err(|e| chain(&e))
    }

    /// The response frame with its size prefix, `None` when there is none.
    pub(super) async fn handle(
        broker: &Handle,
        frame: BytesMut,
    ) -> Result<Option<Vec<u8>>, String> {
        let pending = handle_frame(broker, frame).await.map_err(|e| chain(&e))?;
        let response = pending.resolve().await.map_err(|e| chain(&e))?;
        response
            .map(|r| r.to_vec())
            .transpose()
            .map_err(|e| chain(&e))
    }

    pub(super) async fn tick(broker: &Handle) {
        broker.groups.tick().await;
    }

    pub(super) fn shutdown(broker: Handle) -> Result<(), String> {
        broker.shutdown().map_err(|e| chain(&e))
    }
}
