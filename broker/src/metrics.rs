//! Broker metrics for Prometheus, served at `/metrics` on the HTTP side port.
//!
//! Owns the metric handles that the request path updates (per-API request counts, errors and latency,
//! connections, the produce and fetch waiting gauges; storage health lives in [`crate::storage_health`]), the per-partition traffic
//! counters that [`crate::partition::Partition`] holds, and the encoding of everything in the Prometheus text
//! format (0.0.4, what `promtool check metrics` reads) or OpenMetrics (what Prometheus asks for).
//!
//! Everything that can be read from broker state — log sizes, offsets, consumer group lag — is computed at
//! scrape time by [`collector::BrokerCollector`] instead of being kept up to date on every append. Must never
//! take a lock shared by all partitions on the hot path: request metrics are pre-created per API (an atomic
//! add, plus one short per-API histogram lock), partition counters are relaxed atomics in the partition.

pub mod collector;

use std::{
    fmt,
    sync::atomic::{AtomicU64, Ordering},
    time::Instant,
};

use kafka_protocol::messages::ApiKey;
use prometheus_client::{
    collector::Collector,
    encoding::{prometheus_text, text},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
};

/// Every metric name starts with this (`tributary_requests_total`).
pub const PREFIX: &str = "tributary";

/// Request latency buckets, in seconds: from a cached metadata answer (well under a millisecond) to a fetch
/// that long-polled for Kafka's default `fetch.max.wait.ms` (0.5 s) and beyond.
const REQUEST_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// fsync latency buckets, in seconds: from a battery-backed cache (tens of microseconds) to a stalled disk.
pub(crate) const FSYNC_BUCKETS: [f64; 14] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5,
];

/// The two text formats `/metrics` can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text exposition 0.0.4: the default, and what `promtool check metrics` parses.
    PrometheusText,
    /// OpenMetrics 1.0 text, for scrapers that ask for it in `Accept` (Prometheus does).
    OpenMetrics,
}

impl Format {
    /// Picks the format from an HTTP `Accept` header: OpenMetrics only when asked for, since plain-text
    /// consumers (curl, promtool, older scrapers) do not understand its `# EOF` and counter naming.
    pub fn negotiate(accept: Option<&str>) -> Self {
        match accept {
            Some(accept) if accept.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::PrometheusText,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::PrometheusText => prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Traffic counters of one partition. Bumped on the hot path with relaxed atomic adds (the values are only
/// ever read as a whole at scrape time, so no ordering with other memory is needed).
#[derive(Debug, Default)]
pub struct PartitionCounters {
    produced_bytes: AtomicU64,
    produced_records: AtomicU64,
    fetched_bytes: AtomicU64,
    fetched_records: AtomicU64,
}

/// A point-in-time copy of [`PartitionCounters`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    pub produced_bytes: u64,
    pub produced_records: u64,
    pub fetched_bytes: u64,
    pub fetched_records: u64,
}

impl PartitionCounters {
    /// A batch was appended (retries of a batch already written are not counted again).
    pub fn produced(&self, bytes: u64, records: u64) {
        self.produced_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.produced_records.fetch_add(records, Ordering::Relaxed);
    }

    /// Batches went into a fetch response.
    pub fn fetched(&self, bytes: u64, records: u64) {
        self.fetched_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.fetched_records.fetch_add(records, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Traffic {
        Traffic {
            produced_bytes: self.produced_bytes.load(Ordering::Relaxed),
            produced_records: self.produced_records.load(Ordering::Relaxed),
            fetched_bytes: self.fetched_bytes.load(Ordering::Relaxed),
            fetched_records: self.fetched_records.load(Ordering::Relaxed),
        }
    }
}

/// The metrics of one Kafka API, created once at start-up so a request never looks its series up.
#[derive(Debug, Clone)]
struct ApiMetrics {
    requests: Counter,
    errors: Counter,
    duration: Histogram,
}

type ApiLabels = [(&'static str, String); 1];

/// Keeps a gauge raised while it lives: the waiting queues and open connections are counted by guards, so a
/// request or connection that ends any way at all (including a cancelled future) is taken off.
#[derive(Debug)]
pub struct GaugeGuard(Gauge);

impl GaugeGuard {
    fn raise(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The broker's metrics registry and the handles the request path updates. Thread-safe; shared through the
/// broker.
#[derive(Debug)]
pub struct BrokerMetrics {
    registry: Registry,
    /// Indexed by API key; `None` for APIs this broker does not implement.
    apis: Vec<Option<ApiMetrics>>,
    connections_open: Gauge,
    connections_accepted: Counter,
    produce_waiting: Gauge,
    produce_recompressed: Counter,
    fetch_waiting: Gauge,
    fetch_sessions: FetchSessionMetrics,
}

/// Kafka's `NumIncrementalFetchSessions`, `NumIncrementalFetchPartitionsCached` and
/// `IncrementalFetchSessionEvictionsPerSec` (as a counter), kept up to date by the fetch session cache.
#[derive(Debug, Clone, Default)]
pub struct FetchSessionMetrics {
    pub sessions: Gauge,
    pub partitions: Gauge,
    pub evictions: Counter,
}

impl BrokerMetrics {
    /// Registers every metric, with request series for each of `implemented` (the APIs the broker
    /// implements); `register_more` adds metrics owned elsewhere (the storage health), `collector` the series
    /// computed from broker state at scrape time.
    pub fn new(
        implemented: &[ApiKey],
        register_more: impl FnOnce(&mut Registry),
        collector: impl Collector,
    ) -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let requests = Family::<ApiLabels, Counter>::default();
        let errors = Family::<ApiLabels, Counter>::default();
        let durations = Family::<ApiLabels, Histogram, _>::new_with_constructor(|| {
            Histogram::new(REQUEST_BUCKETS)
        });
        let mut apis = vec![None; 0];
        for api in implemented {
            let labels = [("api", api_name(*api))];
            let index = *api as usize;
            if apis.len() <= index {
                apis.resize(index + 1, None);
            }
            apis[index] = Some(ApiMetrics {
                requests: requests.get_or_create_owned(&labels),
                errors: errors.get_or_create_owned(&labels),
                duration: durations.get_or_create_owned(&labels),
            });
        }
        registry.register("requests", "Kafka requests handled, by API", requests);
        registry.register(
            "request_errors",
            "Kafka requests whose response carried a non-zero error code, or that failed and closed their \
             connection, by API",
            errors,
        );
        registry.register_with_unit(
            "request_duration",
            "Time from a request being read to its response being ready (a produce includes its fsync), by API",
            Unit::Seconds,
            durations,
        );
        let connections_open = Gauge::default();
        registry.register(
            "connections_open",
            "Kafka client connections open now",
            connections_open.clone(),
        );
        let connections_accepted = Counter::default();
        registry.register(
            "connections_accepted",
            "Kafka client connections accepted since start",
            connections_accepted.clone(),
        );
        let produce_waiting = Gauge::default();
        registry.register(
            "produce_waiting_requests",
            "Produce requests written to the log and waiting for their fsync before being acknowledged",
            produce_waiting.clone(),
        );
        let produce_recompressed = Counter::default();
        registry.register(
            "produce_recompressed_batches",
            "Produced batches stored in their topic's compression.type instead of the producer's codec",
            produce_recompressed.clone(),
        );
        let fetch_waiting = Gauge::default();
        registry.register(
            "fetch_waiting_requests",
            "Fetch requests parked in long poll, waiting for data or their max wait",
            fetch_waiting.clone(),
        );
        let fetch_sessions = FetchSessionMetrics::default();
        registry.register(
            "fetch_sessions",
            "Incremental fetch sessions (KIP-227) cached now",
            fetch_sessions.sessions.clone(),
        );
        registry.register(
            "fetch_session_partitions",
            "Partitions held by the cached fetch sessions",
            fetch_sessions.partitions.clone(),
        );
        registry.register(
            "fetch_session_evictions",
            "Fetch sessions evicted to make room for new ones since start",
            fetch_sessions.evictions.clone(),
        );
        register_more(&mut registry);
        registry.register_collector(Box::new(collector));
        Self {
            registry,
            apis,
            connections_open,
            connections_accepted,
            produce_waiting,
            produce_recompressed,
            fetch_waiting,
            fetch_sessions,
        }
    }

    /// The fetch session cache's series, for the cache to update.
    pub fn fetch_session_metrics(&self) -> FetchSessionMetrics {
        self.fetch_sessions.clone()
    }

    /// Counts a finished request of `api` that started at `started`; `failed` when its response carried an
    /// error code or it could not be answered at all.
    pub fn request_finished(&self, api: ApiKey, started: Instant, failed: bool) {
        let Some(Some(metrics)) = self.apis.get(api as usize) else {
            return;
        };
        metrics.requests.inc();
        if failed {
            metrics.errors.inc();
        }
        metrics.duration.observe(started.elapsed().as_secs_f64());
    }

    /// Counts an accepted connection; it is open until the guard drops.
    pub fn connection_opened(&self) -> GaugeGuard {
        self.connections_accepted.inc();
        GaugeGuard::raise(&self.connections_open)
    }

    /// A produce waits for its fsync until the guard drops.
    pub fn produce_waiting(&self) -> GaugeGuard {
        GaugeGuard::raise(&self.produce_waiting)
    }

    /// A produced batch was rebuilt in its topic's `compression.type`.
    pub fn batch_recompressed(&self) {
        self.produce_recompressed.inc();
    }

    /// A fetch is parked in long poll until the guard drops.
    pub fn fetch_waiting(&self) -> GaugeGuard {
        GaugeGuard::raise(&self.fetch_waiting)
    }

    /// Renders every metric in `format`.
    pub fn encode(&self, format: Format) -> Result<String, fmt::Error> {
        let mut out = String::with_capacity(16 * 1024);
        match format {
            Format::PrometheusText => prometheus_text::encode(&mut out, &self.registry)?,
            Format::OpenMetrics => text::encode(&mut out, &self.registry)?,
        }
        Ok(out)
    }
}

/// The API's name as Kafka spells it (`Produce`, `OffsetCommit`), used as the `api` label.
pub fn api_name(api: ApiKey) -> String {
    format!("{api:?}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use crate::metrics::collector::{BrokerCollector, Snapshot};

    pub(crate) fn test_metrics(collector: BrokerCollector) -> BrokerMetrics {
        BrokerMetrics::new(
            &[ApiKey::Produce, ApiKey::Fetch, ApiKey::OffsetCommit],
            |_| {},
            collector,
        )
    }

    #[test]
    fn accept_header_picks_the_format() {
        assert_eq!(Format::negotiate(None), Format::PrometheusText);
        assert_eq!(Format::negotiate(Some("*/*")), Format::PrometheusText);
        // What Prometheus 2.42 sends.
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                          version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert!(Format::PrometheusText
            .content_type()
            .starts_with("text/plain; version=0.0.4"));
    }

    #[test]
    fn requests_are_counted_per_api_with_kafka_names() {
        let metrics = test_metrics(BrokerCollector::fixed(Snapshot::default(), true));
        let started = Instant::now();
        metrics.request_finished(ApiKey::Produce, started, false);
        metrics.request_finished(ApiKey::Produce, started, true);
        metrics.request_finished(ApiKey::OffsetCommit, started, false);
        // Not implemented, so not counted: a label per unknown key would be unbounded.
        metrics.request_finished(ApiKey::AlterPartition, started, true);
        let text = metrics.encode(Format::PrometheusText).unwrap();
        assert!(
            text.contains("tributary_requests_total{api=\"Produce\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("tributary_request_errors_total{api=\"Produce\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("tributary_requests_total{api=\"OffsetCommit\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("tributary_request_errors_total{api=\"OffsetCommit\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("tributary_request_duration_seconds_count{api=\"Produce\"} 2\n"),
            "{text}"
        );
        assert!(!text.contains("AlterPartition"), "{text}");
        assert!(!text.contains("# EOF"), "{text}");
        let open = metrics.encode(Format::OpenMetrics).unwrap();
        assert!(open.ends_with("# EOF\n"), "{open}");
    }

    #[test]
    fn recompressed_batches_are_counted() {
        let metrics = test_metrics(BrokerCollector::fixed(Snapshot::default(), true));
        let text = metrics.encode(Format::PrometheusText).unwrap();
        assert!(
            text.contains("tributary_produce_recompressed_batches_total 0\n"),
            "{text}"
        );
        metrics.batch_recompressed();
        metrics.batch_recompressed();
        let text = metrics.encode(Format::PrometheusText).unwrap();
        assert!(
            text.contains("tributary_produce_recompressed_batches_total 2\n"),
            "{text}"
        );
    }

    #[test]
    fn guards_take_gauges_back_down() {
        let metrics = test_metrics(BrokerCollector::fixed(Snapshot::default(), true));
        let connection = metrics.connection_opened();
        let waiting = metrics.fetch_waiting();
        let text = metrics.encode(Format::PrometheusText).unwrap();
        assert!(text.contains("tributary_connections_open 1\n"), "{text}");
        assert!(
            text.contains("tributary_fetch_waiting_requests 1\n"),
            "{text}"
        );
        drop((connection, waiting));
        let text = metrics.encode(Format::PrometheusText).unwrap();
        assert!(text.contains("tributary_connections_open 0\n"), "{text}");
        assert!(
            text.contains("tributary_connections_accepted_total 1\n"),
            "{text}"
        );
        assert!(
            text.contains("tributary_fetch_waiting_requests 0\n"),
            "{text}"
        );
    }
}
