//! Prometheus metrics of the operator (`tributary_operator_*`): reconciles by kind and result, errors by category,
//! reconcile latency, reconciles in flight, objects each controller's cache holds, and whether this replica leads.
//!
//! This module owns the metric names and labels and their text encoding; it never decides anything. The registry
//! is shared by every controller through a cheap `Metrics` handle.
//!
//! Queue depth: kube-runtime does not expose the length of its scheduler queue, so what stands for it is the
//! reconcile backlog, read from the controllers' caches at scrape time: objects whose latest spec
//! (`metadata.generation`) no status describes yet (`status.observedGeneration` behind or missing). It counts
//! work the operator has not done, whether queued, waiting for a retry, or in flight.

use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::Instant,
};

use kube::{runtime::reflector::Store, Resource};

use crate::crd::{KafkaCluster, Topic};
use prometheus_client::{
    encoding::{prometheus_text, text, EncodeLabelSet},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{exponential_buckets, Histogram},
    },
    registry::Registry,
};

/// The two text formats `/metrics` answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text exposition 0.0.4: the default, and what `promtool check metrics` parses.
    PrometheusText,
    /// OpenMetrics 1.0 text, for scrapers that ask for it (Prometheus does).
    OpenMetrics,
}

impl Format {
    /// Picks the format from an HTTP `Accept` header: OpenMetrics only when asked for, since plain-text consumers
    /// (curl, promtool) do not understand its `# EOF` line and counter naming.
    pub fn negotiate(accept: Option<&str>) -> Self {
        match accept {
            Some(accept) if accept.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::PrometheusText,
        }
    }

    /// The `Content-Type` of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::PrometheusText => prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    kind: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    kind: String,
    category: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

/// Reads `(objects, objects behind their spec)` from a controller's reflector store at scrape time.
type StoreCounts = Box<dyn Fn() -> (usize, usize) + Send + Sync>;

/// A managed object whose status says which generation of its spec it describes.
pub trait ObservedGeneration {
    /// Whether the latest spec has not been reconciled into the status yet.
    fn is_behind(&self) -> bool;
}

impl ObservedGeneration for KafkaCluster {
    fn is_behind(&self) -> bool {
        self.status.as_ref().and_then(|s| s.observed_generation) != self.metadata.generation
    }
}

impl ObservedGeneration for Topic {
    fn is_behind(&self) -> bool {
        self.status.as_ref().and_then(|s| s.observed_generation) != self.metadata.generation
    }
}

struct Inner {
    registry: Registry,
    reconciles: Family<ResultLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    duration: Family<KindLabels, Histogram>,
    in_flight: Family<KindLabels, Gauge>,
    managed: Family<KindLabels, Gauge>,
    backlog: Family<KindLabels, Gauge>,
    leader: Gauge,
    stores: Mutex<Vec<(String, StoreCounts)>>,
}

/// Handle on the operator's metrics; clones share one registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn duration_histogram() -> Histogram {
    // 5 ms .. ~41 s: a reconcile is a handful of API calls; the top buckets catch a slow or throttled API server.
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

impl Metrics {
    /// A fresh registry with every operator metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let reconciles = Family::<ResultLabels, Counter>::default();
        registry.register(
            "tributary_operator_reconciles",
            "Reconciles finished, by kind of object and result (success or error)",
            reconciles.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "tributary_operator_reconcile_errors",
            "Failed reconciles, by kind of object and error category",
            errors.clone(),
        );
        let duration =
            Family::<KindLabels, Histogram>::new_with_constructor(duration_histogram as fn() -> _);
        let duration_metric = duration.clone();
        registry.register(
            "tributary_operator_reconcile_duration_seconds",
            "Time one reconcile took, by kind of object",
            duration_metric,
        );
        let in_flight = Family::<KindLabels, Gauge>::default();
        registry.register(
            "tributary_operator_reconciles_in_flight",
            "Reconciles running now, by kind of object",
            in_flight.clone(),
        );
        let managed = Family::<KindLabels, Gauge>::default();
        registry.register(
            "tributary_operator_managed_objects",
            "Objects of each watched kind in the controller's cache",
            managed.clone(),
        );
        let backlog = Family::<KindLabels, Gauge>::default();
        registry.register(
            "tributary_operator_reconcile_backlog",
            "Objects of each kind whose latest spec no reconcile has described yet (status.observedGeneration behind \
             metadata.generation): queued, retrying or in flight",
            backlog.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "tributary_operator_leader",
            "1 when this replica holds the leader-election Lease (or runs without leader election), else 0",
            leader.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .set(1);
        registry.register(
            "tributary_operator_build_info",
            "Always 1; the version label says which operator runs",
            build,
        );
        Self {
            inner: Arc::new(Inner {
                registry,
                reconciles,
                errors,
                duration: duration.clone(),
                in_flight,
                managed,
                backlog,
                leader,
                stores: Mutex::default(),
            }),
        }
    }

    /// Runs `reconcile` for an object of `kind`, recording its duration, its result and (on failure) the error's
    /// category as `category` names it.
    pub async fn instrument<T, E, F>(
        &self,
        kind: &str,
        category: fn(&E) -> &'static str,
        reconcile: F,
    ) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
    {
        let labels = KindLabels {
            kind: kind.to_owned(),
        };
        let in_flight = self.inner.in_flight.get_or_create(&labels).clone();
        // A guard, so a reconcile future dropped mid-way (shutdown, lost leadership) still leaves the gauge right.
        let _guard = InFlight::enter(in_flight);
        let started = Instant::now();
        let result = reconcile.await;
        self.inner
            .duration
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        let outcome = match &result {
            Ok(_) => "success",
            Err(error) => {
                self.inner
                    .errors
                    .get_or_create(&ErrorLabels {
                        kind: kind.to_owned(),
                        category: category(error).to_owned(),
                    })
                    .inc();
                "error"
            }
        };
        self.inner
            .reconciles
            .get_or_create(&ResultLabels {
                kind: kind.to_owned(),
                result: outcome.to_owned(),
            })
            .inc();
        result
    }

    /// Reports, at every scrape, the objects in `store` as the managed objects of `kind` and those behind their
    /// spec as its reconcile backlog.
    pub fn watch_store<K>(&self, kind: &str, store: Store<K>)
    where
        K: Resource<DynamicType = ()> + ObservedGeneration + Clone + Send + Sync + 'static,
    {
        let labels = KindLabels {
            kind: kind.to_owned(),
        };
        // Present (as 0) before the first scrape that finds objects.
        self.inner.managed.get_or_create(&labels).set(0);
        self.inner.backlog.get_or_create(&labels).set(0);
        let counts = move || {
            let objects = store.state();
            let behind = objects.iter().filter(|o| o.is_behind()).count();
            (objects.len(), behind)
        };
        self.inner
            .stores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((kind.to_owned(), Box::new(counts)));
    }

    /// Records whether this replica leads.
    pub fn set_leader(&self, leader: bool) {
        self.inner.leader.set(i64::from(leader));
    }

    /// The metrics in `format`.
    pub fn encode(&self, format: Format) -> String {
        for (kind, counts) in self
            .inner
            .stores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let (objects, behind) = counts();
            let labels = KindLabels { kind: kind.clone() };
            let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
            self.inner
                .managed
                .get_or_create(&labels)
                .set(gauge(objects));
            self.inner.backlog.get_or_create(&labels).set(gauge(behind));
        }
        let mut text = String::new();
        // Writing into a String cannot fail; an encoder error would be a bug in a metric type.
        let encoded = match format {
            Format::PrometheusText => prometheus_text::encode(&mut text, &self.inner.registry),
            Format::OpenMetrics => text::encode(&mut text, &self.inner.registry),
        };
        if let Err(error) = encoded {
            tracing::error!(error = %error, "cannot encode metrics");
        }
        text
    }
}

/// Counts one reconcile in flight for as long as it lives.
struct InFlight(Gauge);

impl InFlight {
    fn enter(gauge: Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Failed;

    fn category(_: &Failed) -> &'static str {
        "ApplyStatefulSetFailed"
    }

    #[tokio::test]
    async fn reconciles_are_counted_by_result_and_category() {
        let metrics = Metrics::new();
        let ok: Result<(), Failed> = metrics
            .instrument("KafkaCluster", category, async { Ok(()) })
            .await;
        assert!(ok.is_ok());
        let failed: Result<(), Failed> = metrics
            .instrument("KafkaCluster", category, async { Err(Failed) })
            .await;
        assert!(failed.is_err());
        metrics.set_leader(true);
        let text = metrics.encode(Format::PrometheusText);
        for line in [
            "tributary_operator_reconciles_total{kind=\"KafkaCluster\",result=\"success\"} 1",
            "tributary_operator_reconciles_total{kind=\"KafkaCluster\",result=\"error\"} 1",
            "tributary_operator_reconcile_errors_total{kind=\"KafkaCluster\",category=\"ApplyStatefulSetFailed\"} 1",
            "tributary_operator_reconcile_duration_seconds_count{kind=\"KafkaCluster\"} 2",
            "tributary_operator_reconciles_in_flight{kind=\"KafkaCluster\"} 0",
            "tributary_operator_leader 1",
            "# TYPE tributary_operator_reconciles_total counter",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in:\n{text}"
            );
        }
        let open_metrics = metrics.encode(Format::OpenMetrics);
        assert!(open_metrics.ends_with("# EOF\n"), "{open_metrics}");
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
            )),
            Format::OpenMetrics
        );
        assert_eq!(Format::negotiate(Some("*/*")), Format::PrometheusText);
    }

    #[tokio::test]
    async fn a_reconcile_dropped_mid_way_leaves_nothing_in_flight() {
        let metrics = Metrics::new();
        let pending = metrics.instrument(
            "Topic",
            category,
            std::future::pending::<Result<(), Failed>>(),
        );
        // Poll once so the guard exists, then drop the future as a shutdown would.
        let _ = tokio::time::timeout(std::time::Duration::from_millis(10), pending).await;
        assert!(metrics
            .encode(Format::PrometheusText)
            .lines()
            .any(|l| l == "tributary_operator_reconciles_in_flight{kind=\"Topic\"} 0"));
    }

    #[test]
    fn backlog_counts_objects_whose_spec_the_status_does_not_describe_yet() {
        use kube::runtime::{reflector::store::Writer, watcher};

        let mut writer = Writer::<Topic>::default();
        let reconciled = {
            let mut topic = crate::crd::Topic::test().named("done");
            topic.metadata.generation = Some(2);
            topic.status = Some(crate::crd::TopicStatus {
                observed_generation: Some(2),
                ..Default::default()
            });
            topic
        };
        let edited = {
            let mut topic = reconciled.clone().named("edited");
            topic.metadata.generation = Some(3);
            topic
        };
        let new = {
            let mut topic = crate::crd::Topic::test().named("new");
            topic.metadata.generation = Some(1);
            topic
        };
        for topic in [reconciled, edited, new] {
            writer.apply_watcher_event(&watcher::Event::Apply(topic));
        }
        let metrics = Metrics::new();
        metrics.watch_store("Topic", writer.as_reader());
        let text = metrics.encode(Format::PrometheusText);
        for line in [
            "tributary_operator_managed_objects{kind=\"Topic\"} 3",
            "tributary_operator_reconcile_backlog{kind=\"Topic\"} 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        }
    }
}
