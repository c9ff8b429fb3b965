//! The replication throttle (KIP-73, Kafka's `ReplicationQuotaManager`): one byte-rate meter per side
//! (leader: bytes this broker sends to followers; follower: bytes its fetchers receive), and the decision
//! whether a partition is held back from one fetch.
//!
//! A partition is throttled on a side when its topic's `leader.replication.throttled.replicas` (or
//! `follower.…`) lists (partition, this broker) or is `*`, or, when the topic has no list of that side and
//! this broker has a rate on it, while the partition moves (a reassignment, or a drain or fill the controller
//! started). Kafka throttles only
//! listed replicas; Tributary also bounds every move by the one broker rate, as Redpanda's learner recovery
//! rate does, because the controller's own moves have no list and a drain must not starve producers. An
//! explicit list, even an empty one, wins. Its bytes are always recorded; it is held back
//! only while the replica it is fetched for is out of the ISR and this broker's measured rate exceeds its
//! `leader.replication.throttled.rate` (or `follower.…`), a per-broker dynamic config. No rate = no limit.
//! In-sync replicas are never held back (that would shrink the ISR, as Kafka's comment says), but their
//! bytes count, so the total replication traffic of throttled partitions stays near the rate.
//!
//! Decisions read the metadata image they are given, so a change of the configs applies at the next fetch.
//! Must never block: the meter is behind a short mutex taken once per fetch, never across I/O.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

use crate::{
    cluster::image::{MetadataImage, NodeId},
    config::{
        FOLLOWER_THROTTLED_RATE, FOLLOWER_THROTTLED_REPLICAS, LEADER_THROTTLED_RATE,
        LEADER_THROTTLED_REPLICAS,
    },
};

/// Which end of replication a quota meters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Leader,
    Follower,
}

impl Side {
    pub fn label(self) -> &'static str {
        match self {
            Side::Leader => "leader",
            Side::Follower => "follower",
        }
    }

    fn rate_config(self) -> &'static str {
        match self {
            Side::Leader => LEADER_THROTTLED_RATE,
            Side::Follower => FOLLOWER_THROTTLED_RATE,
        }
    }

    fn replicas_config(self) -> &'static str {
        match self {
            Side::Leader => LEADER_THROTTLED_REPLICAS,
            Side::Follower => FOLLOWER_THROTTLED_REPLICAS,
        }
    }
}

/// One sample of a [`RateMeter`].
#[derive(Debug, Clone, Copy)]
struct Sample {
    start_ms: i64,
    last_event_ms: i64,
    bytes: u64,
}

impl Sample {
    fn new(now_ms: i64) -> Self {
        Self {
            start_ms: now_ms,
            last_event_ms: now_ms,
            bytes: 0,
        }
    }
}

/// A byte rate over a sliding window of `windows` samples of `window` each, with Kafka's `SimpleRate`
/// semantics: the bytes of every sample that saw an event within the last `windows × window`, divided by
/// the time since the oldest such sample started, but never by less than one sample's span (so a burst at
/// the start is not divided by a few milliseconds). One extra sample is kept for the one that overlaps the
/// window's start, as Kafka's `SampledStat` does. Not thread-safe; times are passed in.
#[derive(Debug, Clone)]
pub struct RateMeter {
    window_ms: i64,
    windows: usize,
    samples: Vec<Sample>,
    current: usize,
}

impl RateMeter {
    pub fn new(windows: usize, window: Duration) -> Self {
        Self {
            window_ms: i64::try_from(window.as_millis()).unwrap_or(i64::MAX).max(1),
            windows: windows.max(1),
            samples: Vec::new(),
            current: 0,
        }
    }

    /// Adds `bytes` at `now_ms`, starting a new sample when the current one has run its span.
    pub fn record(&mut self, bytes: u64, now_ms: i64) {
        if self.samples.is_empty() {
            self.samples.push(Sample::new(now_ms));
            self.current = 0;
        }
        if now_ms.saturating_sub(self.samples[self.current].start_ms) >= self.window_ms {
            self.current = (self.current + 1) % (self.windows + 1);
            if self.current >= self.samples.len() {
                self.samples.push(Sample::new(now_ms));
            } else {
                self.samples[self.current] = Sample::new(now_ms);
            }
        }
        let sample = &mut self.samples[self.current];
        sample.bytes = sample.bytes.saturating_add(bytes);
        sample.last_event_ms = now_ms;
    }

    /// Bytes per second at `now_ms`.
    pub fn rate(&mut self, now_ms: i64) -> f64 {
        let expire_ms = self.window_ms.saturating_mul(self.windows as i64);
        for sample in &mut self.samples {
            if now_ms.saturating_sub(sample.last_event_ms) >= expire_ms {
                *sample = Sample::new(now_ms);
            }
        }
        let total: u64 = self.samples.iter().map(|s| s.bytes).sum();
        let oldest = self
            .samples
            .iter()
            .map(|s| s.start_ms)
            .min()
            .unwrap_or(now_ms);
        let elapsed_ms = now_ms.saturating_sub(oldest).max(self.window_ms);
        total as f64 * 1000.0 / elapsed_ms as f64
    }
}

/// Whether a `*.replication.throttled.replicas` value lists `partition` on `broker`: `*` lists every
/// partition on every broker, otherwise `partition:broker` pairs separated by commas (Kafka's
/// `ConfigHandler.parseThrottledPartitions`). Malformed pairs list nothing; values are validated when they
/// are stored (`config::validate_topic_config`).
pub fn lists_replica(value: &str, partition: i32, broker: NodeId) -> bool {
    let value = value.trim();
    if value == "*" {
        return true;
    }
    value.split(',').any(|pair| {
        pair.split_once(':').is_some_and(|(p, b)| {
            p.trim().parse::<i32>() == Ok(partition) && b.trim().parse::<NodeId>() == Ok(broker)
        })
    })
}

/// What a scrape reports of one side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuotaStats {
    pub side: Side,
    /// Bytes of throttled partitions sent (leader) or received (follower) since start.
    pub throttled_bytes: u64,
    /// Partitions left out of a fetch response (leader) or request (follower) by the throttle.
    pub held_back: u64,
    /// The measured rate over the quota window, in bytes per second.
    pub rate: f64,
}

/// The throttle of one side on this broker. Thread-safe.
#[derive(Debug)]
pub struct ReplicationQuota {
    side: Side,
    /// Origin of the meter's times: monotonic, so a wall-clock step never empties or inflates the window.
    origin: Instant,
    meter: Mutex<RateMeter>,
    throttled_bytes: AtomicU64,
    held_back: AtomicU64,
}

impl ReplicationQuota {
    /// `windows` samples of `window` each: `replication.quota.window.num` and
    /// `replication.quota.window.size.seconds`.
    pub fn new(side: Side, windows: usize, window: Duration) -> Self {
        Self {
            side,
            origin: Instant::now(),
            meter: Mutex::new(RateMeter::new(windows, window)),
            throttled_bytes: AtomicU64::new(0),
            held_back: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> i64 {
        i64::try_from(self.origin.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    fn meter(&self) -> std::sync::MutexGuard<'_, RateMeter> {
        self.meter
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// This broker's limit for this side in bytes/s, None when none is set (or it does not parse: the
    /// value was validated when stored, so only a hand-edited image gets here).
    pub fn limit(&self, image: &MetadataImage, local: NodeId) -> Option<u64> {
        let name = self.side.rate_config();
        // This broker's own rate, else the cluster-wide default (`--entity-default`), as Kafka resolves it.
        image
            .node_configs
            .get(&local)
            .and_then(|configs| configs.get(name))
            .or_else(|| image.broker_configs.get(name))?
            .trim()
            .parse()
            .ok()
    }

    /// The measured rate, in bytes per second.
    pub fn rate(&self) -> f64 {
        let now = self.now_ms();
        self.meter().rate(now)
    }

    /// Counts bytes of throttled partitions, whether or not they were held back before.
    pub fn record(&self, bytes: u64) {
        if bytes == 0 {
            return;
        }
        let now = self.now_ms();
        self.meter().record(bytes, now);
        self.throttled_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts partitions the throttle left out of one fetch.
    pub fn held_back(&self, partitions: u64) {
        self.held_back.fetch_add(partitions, Ordering::Relaxed);
    }

    pub fn stats(&self) -> QuotaStats {
        QuotaStats {
            side: self.side,
            throttled_bytes: self.throttled_bytes.load(Ordering::Relaxed),
            held_back: self.held_back.load(Ordering::Relaxed),
            rate: self.rate(),
        }
    }

    /// The decisions for one fetch, against `image` as this broker `local` sees it.
    pub fn check<'a>(&'a self, image: &'a MetadataImage, local: NodeId) -> ThrottleCheck<'a> {
        let limit = self.limit(image, local);
        // Kafka's check is `rate > bound`: a rate exactly at the limit may still send.
        let exceeded = limit.is_some_and(|limit| self.rate() > limit as f64);
        ThrottleCheck {
            quota: self,
            image,
            local,
            limited: limit.is_some(),
            exceeded,
        }
    }
}

/// One fetch's throttle decisions on one side: one image and one reading of the meter, so every partition
/// of the fetch is judged alike (as Kafka records only after the whole response is built).
#[derive(Debug)]
pub struct ThrottleCheck<'a> {
    quota: &'a ReplicationQuota,
    image: &'a MetadataImage,
    local: NodeId,
    /// This broker has a rate on this side.
    limited: bool,
    exceeded: bool,
}

impl ThrottleCheck<'_> {
    /// The topic's throttled replicas of this side list `topic`-`partition` on this broker, or the topic has
    /// no such list, this broker has a rate and the partition is moving: its bytes are recorded. (With no
    /// rate an unlisted move is not metered, so its bytes do not hold back a throttle set after it.)
    pub fn throttled(&self, topic: &str, partition: i32) -> bool {
        let Some(metadata) = self.image.topics.get(topic) else {
            return false;
        };
        match metadata.configs.get(self.quota.side.replicas_config()) {
            Some(value) => lists_replica(value, partition, self.local),
            None => {
                self.limited
                    && metadata
                        .partition(partition)
                        .is_some_and(|p| p.is_reassigning())
            }
        }
    }

    /// Kafka's `shouldLeaderThrottle` / `shouldFollowerThrottle`: leave `topic`-`partition` out of this
    /// fetch. `replica_in_sync`: the replica it is fetched for (the follower) is in the ISR.
    pub fn holds_back(&self, topic: &str, partition: i32, replica_in_sync: bool) -> bool {
        self.exceeded && !replica_in_sync && self.throttled(topic, partition)
    }

    pub fn quota(&self) -> &ReplicationQuota {
        self.quota
    }
}

/// Both sides' throttles of this broker.
#[derive(Debug)]
pub struct ReplicationQuotas {
    pub leader: ReplicationQuota,
    pub follower: ReplicationQuota,
}

impl ReplicationQuotas {
    pub fn new(windows: usize, window: Duration) -> Self {
        Self {
            leader: ReplicationQuota::new(Side::Leader, windows, window),
            follower: ReplicationQuota::new(Side::Follower, windows, window),
        }
    }
}

impl Default for ReplicationQuotas {
    /// Kafka's defaults: 11 samples of 1 s.
    fn default() -> Self {
        Self::new(11, Duration::from_secs(1))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::cluster::image::{PartitionRegistration, TopicMetadata};

    const KIB: u64 = 1024;

    #[test]
    fn a_burst_is_divided_by_at_least_one_sample() {
        let mut meter = RateMeter::new(11, Duration::from_secs(1));
        assert_eq!(meter.rate(0), 0.0);
        meter.record(100 * KIB, 10);
        // 10 ms after the first byte the rate is still taken over a whole second, not 10 ms.
        assert_eq!(meter.rate(20), (100 * KIB) as f64);
        // Later, over the time since the oldest sample started.
        assert_eq!(meter.rate(4_010), (100 * KIB) as f64 / 4.0);
    }

    #[test]
    fn the_rate_follows_a_steady_stream_and_forgets_what_left_the_window() {
        let mut meter = RateMeter::new(11, Duration::from_secs(1));
        // 50 KiB every 100 ms = 500 KiB/s for 20 s.
        for step in 0..200 {
            meter.record(50 * KIB, step * 100);
        }
        let rate = meter.rate(20_000);
        assert!(
            (rate - (500 * KIB) as f64).abs() < (30 * KIB) as f64,
            "steady 500 KiB/s measured as {rate}"
        );
        // Eleven seconds without bytes empty the window.
        assert_eq!(meter.rate(31_000), 0.0);
        meter.record(KIB, 31_000);
        assert_eq!(meter.rate(31_500), KIB as f64);
    }

    #[test]
    fn a_pause_lowers_the_rate_until_it_is_under_a_limit() {
        let mut meter = RateMeter::new(11, Duration::from_secs(1));
        let limit = (256 * KIB) as f64;
        meter.record(1024 * KIB, 0);
        assert!(meter.rate(1) > limit);
        assert!(
            meter.rate(3_900) > limit,
            "1 MiB over 3.9 s is above 256 KiB/s"
        );
        assert!(meter.rate(4_000) <= limit, "1 MiB over 4 s is at the limit");
    }

    #[test]
    fn throttled_replica_lists_follow_kafka() {
        // Kafka's DynamicConfigChangeTest cases.
        let list = "0:101,0:102,1:101,1:102";
        assert!(lists_replica(list, 0, 102));
        assert!(lists_replica(list, 1, 102));
        assert!(!lists_replica(list, 2, 102));
        assert!(!lists_replica(list, 0, 103));
        assert!(lists_replica("*", 7, 5));
        assert!(lists_replica("* ", 7, 5));
        assert!(!lists_replica(" ", 0, 102));
        assert!(!lists_replica("", 0, 102));
        assert!(lists_replica("6:102 ", 6, 102));
        assert!(lists_replica(" 6:102", 6, 102));
        assert!(lists_replica("1 : 2 , 6 : 102", 6, 102));
        assert!(!lists_replica("6102", 6, 102), "not a pair");
        assert!(!lists_replica("x:102", 6, 102));
    }

    fn image(topic_configs: &[(&str, &str)], node_configs: &[(&str, &str)]) -> MetadataImage {
        let mut image = MetadataImage::default();
        image.topics.insert(
            "t".into(),
            TopicMetadata {
                name: "t".into(),
                id: uuid::Uuid::nil(),
                partitions: Vec::new(),
                replication_factor: 1,
                configs: topic_configs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
        );
        let configs: BTreeMap<String, String> = node_configs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        image.node_configs.insert(1, configs);
        image
    }

    #[test]
    fn only_listed_out_of_sync_replicas_over_the_rate_are_held_back() {
        let quotas = ReplicationQuotas::default();
        let image = image(
            &[
                (LEADER_THROTTLED_REPLICAS, "0:1,1:2"),
                (FOLLOWER_THROTTLED_REPLICAS, "*"),
            ],
            &[(LEADER_THROTTLED_RATE, "1000")],
        );
        assert_eq!(quotas.leader.limit(&image, 1), Some(1000));
        assert_eq!(quotas.follower.limit(&image, 1), None, "no follower rate");
        assert_eq!(quotas.leader.limit(&image, 2), None, "another broker's");

        let under = quotas.leader.check(&image, 1);
        assert!(under.throttled("t", 0));
        assert!(!under.throttled("t", 1), "1:2 is on broker 2");
        assert!(!under.throttled("other", 0));
        assert!(!under.holds_back("t", 0, false), "nothing sent yet");

        quotas.leader.record(5_000);
        let over = quotas.leader.check(&image, 1);
        assert!(over.holds_back("t", 0, false));
        assert!(
            !over.holds_back("t", 0, true),
            "in-sync replicas never wait"
        );
        assert!(!over.holds_back("t", 1, false), "not listed here");
        assert_eq!(quotas.leader.stats().throttled_bytes, 5_000);

        // The follower side lists everything but has no rate: unthrottled, bytes still counted.
        quotas.follower.record(1 << 30);
        let follower = quotas.follower.check(&image, 1);
        assert!(follower.throttled("t", 3));
        assert!(!follower.holds_back("t", 3, false));

        // A cluster-wide default (`--entity-default`) applies where a broker has no rate of its own.
        let mut defaulted = image.clone();
        defaulted
            .broker_configs
            .insert(FOLLOWER_THROTTLED_RATE.to_owned(), "2000".to_owned());
        defaulted
            .broker_configs
            .insert(LEADER_THROTTLED_RATE.to_owned(), "9".to_owned());
        assert_eq!(quotas.follower.limit(&defaulted, 1), Some(2000));
        assert_eq!(quotas.follower.limit(&defaulted, 2), Some(2000));
        assert_eq!(
            quotas.leader.limit(&defaulted, 1),
            Some(1000),
            "its own wins"
        );

        // Deleting the rate lifts the throttle at the next check.
        let lifted = self::image(&[(LEADER_THROTTLED_REPLICAS, "0:1")], &[]);
        assert!(!quotas.leader.check(&lifted, 1).holds_back("t", 0, false));
    }

    #[test]
    fn a_moving_partition_is_throttled_unless_its_topic_lists_replicas() {
        let quotas = ReplicationQuotas::default();
        let mut image = image(&[], &[(LEADER_THROTTLED_RATE, "1000")]);
        let mut moving = PartitionRegistration::new(vec![1, 2, 4, 3]);
        moving.adding_replicas = vec![4];
        moving.removing_replicas = vec![3];
        let topic = image.topics.get_mut("t").expect("topic t");
        topic.partitions = vec![PartitionRegistration::new(vec![1, 2, 3]), moving];
        quotas.leader.record(5_000);

        let check = quotas.leader.check(&image, 1);
        assert!(!check.throttled("t", 0), "not moving, not listed");
        assert!(check.throttled("t", 1), "a move with no list is throttled");
        assert!(check.holds_back("t", 1, false));
        assert!(
            !check.holds_back("t", 1, true),
            "in-sync replicas never wait"
        );

        let follower = quotas.follower.check(&image, 1);
        assert!(
            !follower.throttled("t", 1),
            "no follower rate: an unlisted move is not even metered"
        );

        // A list of the topic's own is what Kafka's tools set; it decides alone, even empty.
        for list in ["0:1", ""] {
            let topic = image.topics.get_mut("t").expect("topic t");
            topic
                .configs
                .insert(LEADER_THROTTLED_REPLICAS.to_owned(), list.to_owned());
            assert!(
                !quotas.leader.check(&image, 1).throttled("t", 1),
                "list {list:?}"
            );
        }
    }
}
