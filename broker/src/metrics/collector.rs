//! The series computed from broker state at scrape time: per-partition traffic and log figures, consumer
//! group lag from committed offsets, and the replication throttle's meters.
//!
//! A scrape takes a [`Snapshot`] (one short lock per partition and one on the group map) and encodes it; nothing
//! here runs on the request path. Lag comes from the committed offsets the coordinator keeps, not from live
//! members, so a group whose consumers are all gone still reports how far behind it is. With
//! `metrics.partition.level=false` the partition series are summed per topic, bounding the series count by
//! topics instead of partitions.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{counter::ConstCounter, gauge::ConstGauge, MetricType},
    registry::Unit,
};

use super::Traffic;

/// One hosted partition as a scrape sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionSample {
    pub topic: String,
    pub partition: i32,
    pub traffic: Traffic,
    pub size_bytes: u64,
    pub segments: u64,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
}

/// One committed offset of a consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// One side (`leader` or `follower`) of the replication throttle (KIP-73) as a scrape sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThrottleSample {
    pub side: &'static str,
    /// Bytes of throttled partitions sent (leader) or received (follower) since start.
    pub throttled_bytes: u64,
    /// Partitions the throttle left out of a fetch response (leader) or request (follower).
    pub held_back: u64,
    /// The rate measured over the quota window, bytes per second.
    pub rate: i64,
    /// This broker's configured rate for the side; None when unthrottled.
    pub limit: Option<i64>,
}

/// One quota type's throttling since start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuotaThrottleSample {
    /// `produce`, `fetch`, `request` or `controller_mutation`.
    pub quota: &'static str,
    pub throttled_requests: u64,
    pub throttle_time_ms: u64,
}

/// Client quota throttling (Kafka's per-client `throttle-time` sensors, summed per quota type).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientQuotaSample {
    pub throttles: Vec<QuotaThrottleSample>,
    /// Connections closed for exceeding their IP's connection_creation_rate.
    pub connections_throttled: u64,
}

/// Everything a scrape reports from broker state.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub partitions: Vec<PartitionSample>,
    pub committed: Vec<CommittedOffset>,
    pub replication_throttle: Vec<ThrottleSample>,
    pub client_quotas: ClientQuotaSample,
}

/// How far a group is behind: log end offset minus committed offset. Never negative: a commit past the end
/// (possible after the log was truncated or the topic re-created) means nothing is left to consume.
pub fn lag(log_end_offset: i64, committed: i64) -> i64 {
    log_end_offset.saturating_sub(committed).max(0)
}

/// Lag of every committed offset whose partition is hosted here, keyed by (group, topic, partition).
/// Offsets of partitions this broker does not host (a deleted topic) are left out: their end is unknown.
pub fn lags(snapshot: &Snapshot) -> BTreeMap<(String, String, i32), i64> {
    let ends: HashMap<(&str, i32), i64> = snapshot
        .partitions
        .iter()
        .map(|p| ((p.topic.as_str(), p.partition), p.log_end_offset))
        .collect();
    snapshot
        .committed
        .iter()
        .filter_map(|c| {
            let end = ends.get(&(c.topic.as_str(), c.partition))?;
            Some((
                (c.group.clone(), c.topic.clone(), c.partition),
                lag(*end, c.offset),
            ))
        })
        .collect()
}

/// Per-topic sums of the partition figures that add up (traffic, size, segments); offsets do not.
pub fn per_topic(partitions: &[PartitionSample]) -> BTreeMap<String, PartitionSample> {
    let mut topics: BTreeMap<String, PartitionSample> = BTreeMap::new();
    for p in partitions {
        let t = topics
            .entry(p.topic.clone())
            .or_insert_with(|| PartitionSample {
                topic: p.topic.clone(),
                ..PartitionSample::default()
            });
        t.traffic.produced_bytes += p.traffic.produced_bytes;
        t.traffic.produced_records += p.traffic.produced_records;
        t.traffic.fetched_bytes += p.traffic.fetched_bytes;
        t.traffic.fetched_records += p.traffic.fetched_records;
        t.size_bytes += p.size_bytes;
        t.segments += p.segments;
    }
    topics
}

/// Takes a snapshot of the live broker at scrape time; `None` while it is not serving.
pub type SnapshotFn = Box<dyn Fn() -> Option<Snapshot> + Send + Sync>;

/// Where a collector gets its snapshot: the live broker, or a fixed one (tests).
enum Source {
    Live(SnapshotFn),
    Fixed(Box<Snapshot>),
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Live(_) => f.write_str("Live"),
            Source::Fixed(snapshot) => f.debug_tuple("Fixed").field(snapshot).finish(),
        }
    }
}

/// Encodes the scrape-time series from snapshots of broker state it gets from outside: metrics know
/// nothing of partitions or groups.
#[derive(Debug)]
pub struct BrokerCollector {
    source: Source,
    partition_level: bool,
}

impl BrokerCollector {
    pub fn new(snapshot: SnapshotFn, partition_level: bool) -> Self {
        Self {
            source: Source::Live(snapshot),
            partition_level,
        }
    }

    /// A collector that always reports `snapshot`.
    pub fn fixed(snapshot: Snapshot, partition_level: bool) -> Self {
        Self {
            source: Source::Fixed(Box::new(snapshot)),
            partition_level,
        }
    }

    fn snapshot(&self) -> Option<Snapshot> {
        match &self.source {
            Source::Live(take) => take(),
            Source::Fixed(snapshot) => Some(snapshot.as_ref().clone()),
        }
    }
}

type Labels = Vec<(&'static str, String)>;

/// One metric family: a descriptor and its samples, in the order they are written. A family whose
/// unit is seconds carries whole milliseconds in its samples.
struct Series<'a> {
    name: &'a str,
    help: &'a str,
    unit: Option<Unit>,
    kind: MetricType,
    samples: Vec<(Labels, i64)>,
}

impl Series<'_> {
    fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), fmt::Error> {
        let mut family =
            encoder.encode_descriptor(self.name, self.help, self.unit.as_ref(), self.kind)?;
        for (labels, value) in &self.samples {
            let sample = family.encode_family(labels)?;
            match (self.kind, &self.unit) {
                // Prometheus wants base units; keeping whole milliseconds in the sample lets every
                // family share one integer type and still export fractional seconds.
                (MetricType::Counter, Some(Unit::Seconds)) => {
                    ConstCounter::new(u64::try_from(*value).unwrap_or(0) as f64 / 1000.0)
                        .encode(sample)?
                }
                (MetricType::Counter, _) => {
                    ConstCounter::new(u64::try_from(*value).unwrap_or(0)).encode(sample)?
                }
                (_, Some(Unit::Seconds)) => {
                    ConstGauge::new(*value as f64 / 1000.0).encode(sample)?
                }
                _ => ConstGauge::new(*value).encode(sample)?,
            }
        }
        Ok(())
    }
}

fn counter_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Builds every scrape-time family from a snapshot. Pure, so the label rendering and the sums are tested
/// without a broker.
fn families(snapshot: &Snapshot, partition_level: bool) -> Vec<Series<'static>> {
    let per_topic;
    let samples: Vec<(&PartitionSample, Labels)> = if partition_level {
        snapshot
            .partitions
            .iter()
            .map(|p| {
                let labels = vec![
                    ("topic", p.topic.clone()),
                    ("partition", p.partition.to_string()),
                ];
                (p, labels)
            })
            .collect()
    } else {
        per_topic = self::per_topic(&snapshot.partitions);
        per_topic
            .values()
            .map(|t| (t, vec![("topic", t.topic.clone())]))
            .collect()
    };
    let series = |name, help, unit, kind, value: &dyn Fn(&PartitionSample) -> i64| Series {
        name,
        help,
        unit,
        kind,
        samples: samples.iter().map(|(p, l)| (l.clone(), value(p))).collect(),
    };
    let mut out = vec![
        series(
            "partition_produced",
            "Record batch bytes appended by producers, per partition (or topic).",
            Some(Unit::Bytes),
            MetricType::Counter,
            &|p| counter_value(p.traffic.produced_bytes),
        ),
        series(
            "partition_produced_records",
            "Records appended by producers, per partition (or topic).",
            None,
            MetricType::Counter,
            &|p| counter_value(p.traffic.produced_records),
        ),
        series(
            "partition_fetched",
            "Record batch bytes sent in fetch responses, per partition (or topic).",
            Some(Unit::Bytes),
            MetricType::Counter,
            &|p| counter_value(p.traffic.fetched_bytes),
        ),
        series(
            "partition_fetched_records",
            "Records in the batches sent in fetch responses, per partition (or topic).",
            None,
            MetricType::Counter,
            &|p| counter_value(p.traffic.fetched_records),
        ),
        series(
            "log_size",
            "Size of the log's segment files, per partition (or topic).",
            Some(Unit::Bytes),
            MetricType::Gauge,
            &|p| counter_value(p.size_bytes),
        ),
        series(
            "log_segments",
            "Number of segments in the log, per partition (or topic).",
            None,
            MetricType::Gauge,
            &|p| counter_value(p.segments),
        ),
    ];
    let lags = lags(snapshot);
    if partition_level {
        out.push(series(
            "log_start_offset",
            "First offset still in the log.",
            None,
            MetricType::Gauge,
            &|p| p.log_start_offset,
        ));
        out.push(series(
            "log_end_offset",
            "Offset the next appended record will get.",
            None,
            MetricType::Gauge,
            &|p| p.log_end_offset,
        ));
        out.push(series(
            "high_watermark",
            "Offset up to which records are committed and visible to consumers.",
            None,
            MetricType::Gauge,
            &|p| p.high_watermark,
        ));
        out.push(Series {
            name: "consumer_group_lag",
            help: "Log end offset minus the group's committed offset, from committed offsets (groups with no \
                   member online included).",
            unit: None,
            kind: MetricType::Gauge,
            samples: lags
                .iter()
                .map(|((group, topic, partition), lag)| {
                    (
                        vec![
                            ("group", group.clone()),
                            ("topic", topic.clone()),
                            ("partition", partition.to_string()),
                        ],
                        *lag,
                    )
                })
                .collect(),
        });
    } else {
        let mut summed: BTreeMap<(&str, &str), i64> = BTreeMap::new();
        for ((group, topic, _), lag) in &lags {
            *summed.entry((group, topic)).or_default() += lag;
        }
        out.push(Series {
            name: "consumer_group_lag",
            help: "Log end offset minus the group's committed offset, summed over the topic's partitions, from \
                   committed offsets (groups with no member online included).",
            unit: None,
            kind: MetricType::Gauge,
            samples: summed
                .into_iter()
                .map(|((group, topic), lag)| {
                    (
                        vec![("group", group.to_owned()), ("topic", topic.to_owned())],
                        lag,
                    )
                })
                .collect(),
        });
    }
    out.extend(throttle_families(&snapshot.replication_throttle));
    out.extend(client_quota_families(&snapshot.client_quotas));
    out
}

fn client_quota_families(sample: &ClientQuotaSample) -> Vec<Series<'static>> {
    let per_kind = |value: &dyn Fn(&QuotaThrottleSample) -> i64| {
        sample
            .throttles
            .iter()
            .map(|t| (vec![("quota", t.quota.to_owned())], value(t)))
            .collect()
    };
    vec![
        Series {
            name: "client_quota_throttled_requests",
            help: "Requests that earned a client quota throttle (producer_byte_rate, consumer_byte_rate, \
                   request_percentage, controller_mutation_rate), by quota type.",
            unit: None,
            kind: MetricType::Counter,
            samples: per_kind(&|t| counter_value(t.throttled_requests)),
        },
        Series {
            name: "client_quota_throttle",
            help: "Sum of the throttle times (throttle_time_ms) client quotas imposed, by quota type.",
            unit: Some(Unit::Seconds),
            kind: MetricType::Counter,
            samples: per_kind(&|t| counter_value(t.throttle_time_ms)),
        },
        Series {
            name: "client_quota_throttled_connections",
            help: "Connections closed after a delay because their IP exceeded its \
                   connection_creation_rate.",
            unit: None,
            kind: MetricType::Counter,
            samples: vec![(Vec::new(), counter_value(sample.connections_throttled))],
        },
    ]
}

fn throttle_families(sides: &[ThrottleSample]) -> Vec<Series<'static>> {
    let series = |name, help, unit, kind, value: &dyn Fn(&ThrottleSample) -> Option<i64>| Series {
        name,
        help,
        unit,
        kind,
        samples: sides
            .iter()
            .filter_map(|s| Some((vec![("side", s.side.to_owned())], value(s)?)))
            .collect(),
    };
    vec![
        series(
            "replication_throttled",
            "Bytes of partitions listed in the topic's leader.replication.throttled.replicas (side=leader, \
             sent) or follower.replication.throttled.replicas (side=follower, received) for this broker, or \
             moving while their topic has no such list and this broker has a rate on that side.",
            Some(Unit::Bytes),
            MetricType::Counter,
            &|s| Some(counter_value(s.throttled_bytes)),
        ),
        series(
            "replication_throttle_held_back_partitions",
            "Partitions the replication throttle left out of a fetch: without data in a response to an \
             out-of-sync follower (leader), or out of this broker's own fetch request (follower).",
            None,
            MetricType::Counter,
            &|s| Some(counter_value(s.held_back)),
        ),
        series(
            "replication_throttled_rate",
            "Bytes per second of throttled partitions over the quota window (replication.quota.window.num \
             samples of replication.quota.window.size.seconds), as compared with the limit.",
            None,
            MetricType::Gauge,
            &|s| Some(s.rate),
        ),
        series(
            "replication_throttle_limit",
            "This broker's leader.replication.throttled.rate or follower.replication.throttled.rate in \
             bytes per second; absent when the side is unthrottled.",
            None,
            MetricType::Gauge,
            &|s| s.limit,
        ),
    ]
}

impl Collector for BrokerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let Some(snapshot) = self.snapshot() else {
            return Ok(());
        };
        for series in families(&snapshot, self.partition_level) {
            series.encode(&mut encoder)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::metrics::Format;

    fn sample(topic: &str, partition: i32, end: i64, bytes: u64) -> PartitionSample {
        PartitionSample {
            topic: topic.to_owned(),
            partition,
            traffic: Traffic {
                produced_bytes: bytes,
                produced_records: 10,
                fetched_bytes: bytes / 2,
                fetched_records: 5,
            },
            size_bytes: bytes,
            segments: 1,
            log_start_offset: 0,
            log_end_offset: end,
            high_watermark: end,
        }
    }

    fn committed(group: &str, topic: &str, partition: i32, offset: i64) -> CommittedOffset {
        CommittedOffset {
            group: group.to_owned(),
            topic: topic.to_owned(),
            partition,
            offset,
        }
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            partitions: vec![sample("orders", 0, 10, 1000), sample("orders", 1, 7, 500)],
            committed: vec![
                committed("billing", "orders", 0, 4),
                committed("billing", "orders", 1, 7),
                // Past the end (the log was truncated): nothing left, not a negative lag.
                committed("audit", "orders", 1, 9),
                // A topic not hosted here: no end offset to compare with.
                committed("billing", "gone", 0, 3),
            ],
            replication_throttle: vec![
                ThrottleSample {
                    side: "leader",
                    throttled_bytes: 3 << 20,
                    held_back: 12,
                    rate: 262_144,
                    limit: Some(262_144),
                },
                ThrottleSample {
                    side: "follower",
                    ..ThrottleSample::default()
                },
            ],
            client_quotas: ClientQuotaSample {
                throttles: vec![QuotaThrottleSample {
                    quota: "produce",
                    throttled_requests: 3,
                    throttle_time_ms: 1500,
                }],
                connections_throttled: 2,
            },
        }
    }

    #[test]
    fn client_quota_series_render_per_quota_type() {
        let metrics =
            crate::metrics::tests::test_metrics(BrokerCollector::fixed(snapshot(), false));
        let text = metrics.encode(Format::PrometheusText).unwrap();
        for line in [
            "tributary_client_quota_throttled_requests_total{quota=\"produce\"} 3\n",
            "tributary_client_quota_throttle_seconds_total{quota=\"produce\"} 1.5\n",
            "tributary_client_quota_throttled_connections_total 2\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn throttle_series_render_per_side_and_omit_an_unset_limit() {
        let metrics =
            crate::metrics::tests::test_metrics(BrokerCollector::fixed(snapshot(), false));
        let text = metrics.encode(Format::PrometheusText).unwrap();
        for line in [
            "# TYPE tributary_replication_throttled_bytes_total counter\n",
            "tributary_replication_throttled_bytes_total{side=\"leader\"} 3145728\n",
            "tributary_replication_throttled_bytes_total{side=\"follower\"} 0\n",
            "tributary_replication_throttle_held_back_partitions_total{side=\"leader\"} 12\n",
            "tributary_replication_throttled_rate{side=\"leader\"} 262144\n",
            "tributary_replication_throttle_limit{side=\"leader\"} 262144\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(
            !text.contains("tributary_replication_throttle_limit{side=\"follower\"}"),
            "{text}"
        );
    }

    #[test]
    fn lag_is_end_minus_committed_and_never_negative() {
        assert_eq!(lag(10, 4), 6);
        assert_eq!(lag(10, 10), 0);
        assert_eq!(lag(7, 9), 0);
        assert_eq!(lag(i64::MAX, -1), i64::MAX);
        let lags = lags(&snapshot());
        let expected: BTreeMap<_, _> = [
            (("audit".to_owned(), "orders".to_owned(), 1), 0),
            (("billing".to_owned(), "orders".to_owned(), 0), 6),
            (("billing".to_owned(), "orders".to_owned(), 1), 0),
        ]
        .into_iter()
        .collect();
        assert_eq!(lags, expected);
    }

    #[test]
    fn topic_sums_add_traffic_and_size() {
        let topics = per_topic(&snapshot().partitions);
        let orders = &topics["orders"];
        assert_eq!(orders.traffic.produced_bytes, 1500);
        assert_eq!(orders.traffic.produced_records, 20);
        assert_eq!(orders.traffic.fetched_bytes, 750);
        assert_eq!(orders.size_bytes, 1500);
        assert_eq!(orders.segments, 2);
    }

    #[test]
    fn partition_series_render_with_topic_and_partition_labels() {
        let metrics = crate::metrics::tests::test_metrics(BrokerCollector::fixed(snapshot(), true));
        let text = metrics.encode(Format::PrometheusText).unwrap();
        for line in [
            "# TYPE tributary_partition_produced_bytes_total counter\n",
            "tributary_partition_produced_bytes_total{topic=\"orders\",partition=\"0\"} 1000\n",
            "tributary_partition_produced_records_total{topic=\"orders\",partition=\"1\"} 10\n",
            "tributary_partition_fetched_bytes_total{topic=\"orders\",partition=\"1\"} 250\n",
            "tributary_log_size_bytes{topic=\"orders\",partition=\"0\"} 1000\n",
            "tributary_log_end_offset{topic=\"orders\",partition=\"1\"} 7\n",
            "tributary_high_watermark{topic=\"orders\",partition=\"0\"} 10\n",
            "# TYPE tributary_consumer_group_lag gauge\n",
            "tributary_consumer_group_lag{group=\"billing\",topic=\"orders\",partition=\"0\"} 6\n",
            "tributary_consumer_group_lag{group=\"audit\",topic=\"orders\",partition=\"1\"} 0\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("group=\"billing\",topic=\"gone\""), "{text}");
    }

    #[test]
    fn topic_level_drops_the_partition_label() {
        let metrics =
            crate::metrics::tests::test_metrics(BrokerCollector::fixed(snapshot(), false));
        let text = metrics.encode(Format::PrometheusText).unwrap();
        assert!(!text.contains("partition=\""), "{text}");
        for line in [
            "tributary_partition_produced_bytes_total{topic=\"orders\"} 1500\n",
            "tributary_log_segments{topic=\"orders\"} 2\n",
            "tributary_consumer_group_lag{group=\"billing\",topic=\"orders\"} 6\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("tributary_log_end_offset"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        let mut snap = Snapshot::default();
        snap.partitions.push(sample("t", 0, 5, 1));
        snap.committed
            .push(committed("we\"ird\\group\n", "t", 0, 1));
        let metrics = crate::metrics::tests::test_metrics(BrokerCollector::fixed(snap, true));
        let text = metrics.encode(Format::PrometheusText).unwrap();
        assert!(
            text.contains("group=\"we\\\"ird\\\\group\\n\",topic=\"t\",partition=\"0\"} 4\n"),
            "{text}"
        );
    }
}
