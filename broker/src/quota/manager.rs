//! Enforcing client quotas: one meter per (quota kind, [`MeterKey`]), and the throttle time a request earns
//! when its meter is over the quota the metadata sets (Kafka's `ClientQuotaManager`,
//! `ClientRequestQuotaManager`, `ControllerMutationQuotaManager` and the per-IP part of
//! `ConnectionQuotas`).
//!
//! Byte rates and request time are Kafka's `Rate` over `quota.window.num` samples of
//! `quota.window.size.seconds`: a meter is over quota once its rate exceeds the bound, and the throttle is
//! the delay that brings the rate back to the bound, `(rate - bound) / bound × window`. Controller mutations
//! use Kafka's token bucket (a burst of `bound × controller.quota.window.num × size` partitions). The caller
//! reports the throttle in the response's `throttle_time_ms` and stops reading the connection for that long
//! (KIP-219), so a client that ignores the field is held back too.
//!
//! Fast when no quota is set (one empty-map check); never blocks: meters sit behind one short mutex taken
//! once per request, never across I/O.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

use super::{
    resolve, resolve_ip, ClientQuotas, MeterKey, CONSUMER_BYTE_RATE, CONTROLLER_MUTATION_RATE,
    PRODUCER_BYTE_RATE, REQUEST_PERCENTAGE,
};

/// Kafka's quota window settings (`quota.window.num`, `quota.window.size.seconds`,
/// `controller.quota.window.num`, `controller.quota.window.size.seconds`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientQuotaConfig {
    pub window_num: usize,
    pub window_size_seconds: u64,
    pub controller_window_num: usize,
    pub controller_window_size_seconds: u64,
}

impl Default for ClientQuotaConfig {
    fn default() -> Self {
        Self {
            window_num: 11,
            window_size_seconds: 1,
            controller_window_num: 11,
            controller_window_size_seconds: 1,
        }
    }
}

/// What a meter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaKind {
    /// Produced bytes (`producer_byte_rate`).
    Produce,
    /// Fetched bytes of consumers (`consumer_byte_rate`); followers are never metered.
    Fetch,
    /// Time spent handling the client's requests, in percent of one thread (`request_percentage`).
    Request,
    /// Partitions created or deleted (`controller_mutation_rate`).
    ControllerMutation,
}

impl QuotaKind {
    pub const ALL: [QuotaKind; 4] = [
        QuotaKind::Produce,
        QuotaKind::Fetch,
        QuotaKind::Request,
        QuotaKind::ControllerMutation,
    ];

    fn key(self) -> &'static str {
        match self {
            QuotaKind::Produce => PRODUCER_BYTE_RATE,
            QuotaKind::Fetch => CONSUMER_BYTE_RATE,
            QuotaKind::Request => REQUEST_PERCENTAGE,
            QuotaKind::ControllerMutation => CONTROLLER_MUTATION_RATE,
        }
    }

    /// Kafka's quota type names, used as the metric label.
    pub fn label(self) -> &'static str {
        match self {
            QuotaKind::Produce => "produce",
            QuotaKind::Fetch => "fetch",
            QuotaKind::Request => "request",
            QuotaKind::ControllerMutation => "controller_mutation",
        }
    }

    fn index(self) -> usize {
        match self {
            QuotaKind::Produce => 0,
            QuotaKind::Fetch => 1,
            QuotaKind::Request => 2,
            QuotaKind::ControllerMutation => 3,
        }
    }
}

/// One sample of a [`SampledRate`].
#[derive(Debug, Clone, Copy)]
struct Sample {
    start_ms: i64,
    value: f64,
}

/// Kafka's `Rate` over a `SampledStat`: the sum of the live samples divided by the time since the oldest
/// started, but never by less than `samples - 1` windows, so a new meter does not read a first burst as a
/// huge rate. Times are passed in.
#[derive(Debug, Clone)]
pub(crate) struct SampledRate {
    samples: Vec<Sample>,
    current: usize,
    num: usize,
    window_ms: i64,
}

impl SampledRate {
    pub(crate) fn new(num: usize, window: Duration) -> Self {
        Self {
            samples: Vec::new(),
            current: 0,
            num: num.max(1),
            window_ms: i64::try_from(window.as_millis()).unwrap_or(i64::MAX).max(1),
        }
    }

    pub(crate) fn record(&mut self, value: f64, now_ms: i64) {
        if self.samples.is_empty() {
            self.samples.push(Sample {
                start_ms: now_ms,
                value: 0.0,
            });
            self.current = 0;
        }
        if now_ms.saturating_sub(self.samples[self.current].start_ms) >= self.window_ms {
            self.current = (self.current + 1) % self.num;
            let fresh = Sample {
                start_ms: now_ms,
                value: 0.0,
            };
            if self.current >= self.samples.len() {
                self.samples.push(fresh);
            } else {
                self.samples[self.current] = fresh;
            }
        }
        self.samples[self.current].value += value;
    }

    fn purge(&mut self, now_ms: i64) {
        let expire_ms = self.window_ms.saturating_mul(self.num as i64);
        for sample in &mut self.samples {
            if now_ms.saturating_sub(sample.start_ms) >= expire_ms {
                *sample = Sample {
                    start_ms: now_ms,
                    value: 0.0,
                };
            }
        }
    }

    /// The span the rate divides by (Kafka's `Rate.windowSize`).
    pub(crate) fn window_size_ms(&self, now_ms: i64) -> i64 {
        let oldest = self
            .samples
            .iter()
            .map(|s| s.start_ms)
            .min()
            .unwrap_or(now_ms);
        let mut elapsed = now_ms.saturating_sub(oldest);
        let full = elapsed / self.window_ms;
        let min_full = self.num as i64 - 1;
        if full < min_full {
            elapsed += (min_full - full) * self.window_ms;
        }
        elapsed.max(1)
    }

    /// Units per second at `now_ms`.
    pub(crate) fn rate(&mut self, now_ms: i64) -> f64 {
        self.purge(now_ms);
        let total: f64 = self.samples.iter().map(|s| s.value).sum();
        total * 1000.0 / self.window_size_ms(now_ms) as f64
    }

    /// The delay that brings the rate back to `bound` if nothing more is recorded: Kafka's
    /// `QuotaUtils.throttleTime`. Zero when within the bound.
    pub(crate) fn throttle(&mut self, bound: f64, now_ms: i64) -> Duration {
        let rate = self.rate(now_ms);
        if rate <= bound || bound <= 0.0 {
            return Duration::ZERO;
        }
        let ms = (rate - bound) / bound * self.window_size_ms(now_ms) as f64;
        Duration::from_millis(ms.round().max(0.0) as u64)
    }
}

/// Kafka's `TokenBucket`: starts full at `bound × samples × window`, refills at `bound` per second, and each
/// mutation takes its partitions out; a negative balance is the quota violated.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    tokens: f64,
    last_ms: i64,
    burst_seconds: f64,
}

impl TokenBucket {
    pub(crate) fn new(bound: f64, samples: usize, window: Duration, now_ms: i64) -> Self {
        let burst_seconds = samples as f64 * window.as_secs_f64();
        Self {
            tokens: bound * burst_seconds,
            last_ms: now_ms,
            burst_seconds,
        }
    }

    fn refill(&mut self, bound: f64, now_ms: i64) {
        let elapsed = now_ms.saturating_sub(self.last_ms).max(0) as f64 / 1000.0;
        self.tokens = (self.tokens + bound * elapsed).min(bound * self.burst_seconds);
        self.last_ms = now_ms;
    }

    pub(crate) fn tokens(&mut self, bound: f64, now_ms: i64) -> f64 {
        self.refill(bound, now_ms);
        self.tokens
    }

    pub(crate) fn take(&mut self, permits: f64, bound: f64, now_ms: i64) {
        self.refill(bound, now_ms);
        self.tokens -= permits;
    }

    /// How long until the balance is back to zero (Kafka's `-tokens / bound × 1000`).
    pub(crate) fn throttle(&mut self, bound: f64, now_ms: i64) -> Duration {
        let tokens = self.tokens(bound, now_ms);
        if tokens >= 0.0 || bound <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_millis((-tokens / bound * 1000.0).round() as u64)
    }
}

#[derive(Debug)]
enum Meter {
    Rate(SampledRate),
    Bucket(TokenBucket),
}

#[derive(Debug)]
struct MeterSlot {
    meter: Meter,
    last_used_ms: i64,
}

/// Meters not used for this long are dropped (Kafka expires quota sensors after an hour).
const METER_EXPIRY_MS: i64 = 3_600_000;
/// How often idle meters are looked for.
const EXPIRY_CHECK_MS: i64 = 60_000;

#[derive(Debug, Default)]
struct Meters {
    clients: HashMap<(QuotaKind, MeterKey), MeterSlot>,
    ips: HashMap<IpAddr, MeterSlot>,
    last_expiry_ms: i64,
}

impl Meters {
    fn expire(&mut self, now_ms: i64) {
        if now_ms.saturating_sub(self.last_expiry_ms) < EXPIRY_CHECK_MS {
            return;
        }
        self.last_expiry_ms = now_ms;
        self.clients
            .retain(|_, slot| now_ms.saturating_sub(slot.last_used_ms) < METER_EXPIRY_MS);
        self.ips
            .retain(|_, slot| now_ms.saturating_sub(slot.last_used_ms) < METER_EXPIRY_MS);
    }
}

/// Per kind: requests throttled and their throttle time, for the metrics.
#[derive(Debug, Default)]
struct KindStats {
    throttled: AtomicU64,
    throttle_ms: AtomicU64,
}

/// What a scrape reports of one quota kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleStats {
    pub kind: QuotaKind,
    pub throttled_requests: u64,
    pub throttle_time_ms: u64,
}

/// Who a request is metered as.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    pub user: &'a str,
    pub client_id: &'a str,
}

/// The broker's client quota meters. Thread-safe.
#[derive(Debug)]
pub struct ClientQuotaManager {
    config: ClientQuotaConfig,
    epoch: Instant,
    meters: Mutex<Meters>,
    stats: [KindStats; 4],
    connections_throttled: AtomicU64,
}

impl ClientQuotaManager {
    pub fn new(config: ClientQuotaConfig) -> Self {
        Self {
            config,
            epoch: Instant::now(),
            meters: Mutex::new(Meters::default()),
            stats: Default::default(),
            connections_throttled: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> i64 {
        i64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    fn window(&self, kind: QuotaKind) -> (usize, Duration) {
        match kind {
            QuotaKind::ControllerMutation => (
                self.config.controller_window_num,
                Duration::from_secs(self.config.controller_window_size_seconds),
            ),
            _ => (
                self.config.window_num,
                Duration::from_secs(self.config.window_size_seconds),
            ),
        }
    }

    /// Runs `f` on the meter of `kind` for `client` when a quota applies, with the bound and time.
    fn with_meter<T>(
        &self,
        quotas: &ClientQuotas,
        kind: QuotaKind,
        client: Client<'_>,
        now_ms: i64,
        f: impl FnOnce(&mut Meter, f64) -> T,
    ) -> Option<T> {
        if quotas.is_empty() {
            return None;
        }
        let (key, bound) = resolve(quotas, kind.key(), client.user, client.client_id)?;
        let (samples, window) = self.window(kind);
        let mut meters = self.meters.lock().unwrap_or_else(|p| p.into_inner());
        meters.expire(now_ms);
        let slot = meters
            .clients
            .entry((kind, key))
            .or_insert_with(|| MeterSlot {
                meter: match kind {
                    QuotaKind::ControllerMutation => {
                        Meter::Bucket(TokenBucket::new(bound, samples, window, now_ms))
                    }
                    _ => Meter::Rate(SampledRate::new(samples, window)),
                },
                last_used_ms: now_ms,
            });
        slot.last_used_ms = now_ms;
        Some(f(&mut slot.meter, bound))
    }

    fn count(&self, kind: QuotaKind, throttle: Duration) -> Duration {
        if !throttle.is_zero() {
            let stats = &self.stats[kind.index()];
            stats.throttled.fetch_add(1, Ordering::Relaxed);
            stats
                .throttle_ms
                .fetch_add(throttle.as_millis() as u64, Ordering::Relaxed);
        }
        throttle
    }

    /// Records `bytes` produced or fetched by `client` and returns the throttle it earned.
    pub fn record_bytes(
        &self,
        quotas: &ClientQuotas,
        kind: QuotaKind,
        client: Client<'_>,
        bytes: usize,
    ) -> Duration {
        let now_ms = self.now_ms();
        let throttle = self
            .with_meter(quotas, kind, client, now_ms, |meter, bound| match meter {
                Meter::Rate(rate) => {
                    rate.record(bytes as f64, now_ms);
                    rate.throttle(bound, now_ms)
                }
                Meter::Bucket(_) => Duration::ZERO,
            })
            .unwrap_or_default();
        self.count(kind, throttle)
    }

    /// The throttle `client` is under before anything more is recorded: a consumer over its byte rate gets
    /// an empty fetch for this long instead of more data.
    pub fn current_throttle(
        &self,
        quotas: &ClientQuotas,
        kind: QuotaKind,
        client: Client<'_>,
    ) -> Duration {
        let now_ms = self.now_ms();
        let throttle = self
            .with_meter(quotas, kind, client, now_ms, |meter, bound| match meter {
                Meter::Rate(rate) => rate.throttle(bound, now_ms),
                Meter::Bucket(bucket) => bucket.throttle(bound, now_ms),
            })
            .unwrap_or_default();
        self.count(kind, throttle)
    }

    /// The most bytes one fetch of `client` may return: a whole quota window's worth (Kafka's
    /// `getMaxValueInQuotaWindow`), so one response cannot overshoot the quota by much.
    pub fn max_fetch_bytes(&self, quotas: &ClientQuotas, client: Client<'_>) -> Option<usize> {
        if quotas.is_empty() {
            return None;
        }
        let (_, bound) = resolve(quotas, CONSUMER_BYTE_RATE, client.user, client.client_id)?;
        let span = self.config.window_num.saturating_sub(1).max(1) as f64
            * self.config.window_size_seconds as f64;
        Some((bound * span).min(i32::MAX as f64) as usize)
    }

    /// Records the time spent handling one request of `client` and returns the throttle it earned, at most
    /// one window (Kafka bounds request-time throttles so).
    pub fn record_request_time(
        &self,
        quotas: &ClientQuotas,
        client: Client<'_>,
        busy: Duration,
    ) -> Duration {
        let now_ms = self.now_ms();
        // Percent of one thread for one second: 1 s busy is 100.
        let percent_seconds = busy.as_secs_f64() * 100.0;
        let cap = Duration::from_secs(self.config.window_size_seconds);
        let throttle = self
            .with_meter(
                quotas,
                QuotaKind::Request,
                client,
                now_ms,
                |meter, bound| match meter {
                    Meter::Rate(rate) => {
                        rate.record(percent_seconds, now_ms);
                        rate.throttle(bound, now_ms).min(cap)
                    }
                    Meter::Bucket(_) => Duration::ZERO,
                },
            )
            .unwrap_or_default();
        self.count(QuotaKind::Request, throttle)
    }

    /// Takes `partitions` mutations of `client` from its token bucket. Strict (CreateTopics v6+,
    /// CreatePartitions v3+, DeleteTopics v5+): refused with the throttle while the bucket is already
    /// negative, otherwise taken even if that makes it negative. Permissive (older versions): always taken.
    pub fn record_mutations(
        &self,
        quotas: &ClientQuotas,
        client: Client<'_>,
        partitions: u32,
        strict: bool,
    ) -> Result<(), Duration> {
        let now_ms = self.now_ms();
        let outcome = self.with_meter(
            quotas,
            QuotaKind::ControllerMutation,
            client,
            now_ms,
            |meter, bound| match meter {
                Meter::Bucket(bucket) => {
                    let throttle = bucket.throttle(bound, now_ms);
                    if strict && !throttle.is_zero() {
                        return Err(throttle);
                    }
                    bucket.take(f64::from(partitions), bound, now_ms);
                    Ok(())
                }
                Meter::Rate(_) => Ok(()),
            },
        );
        match outcome {
            Some(Err(throttle)) => Err(self.count(QuotaKind::ControllerMutation, throttle)),
            _ => Ok(()),
        }
    }

    /// The throttle owed for mutations so far (the response's `throttle_time_ms` after mutating).
    pub fn mutation_throttle(&self, quotas: &ClientQuotas, client: Client<'_>) -> Duration {
        self.current_throttle(quotas, QuotaKind::ControllerMutation, client)
    }

    /// Counts a new connection from `ip`; Some(delay) when it exceeds the IP's `connection_creation_rate`:
    /// the connection is then closed after that delay and not counted (Kafka's `ConnectionQuotas`).
    pub fn admit_connection(&self, quotas: &ClientQuotas, ip: IpAddr) -> Option<Duration> {
        if quotas.is_empty() {
            return None;
        }
        let bound = resolve_ip(quotas, &canonical_ip(ip).to_string())?;
        let now_ms = self.now_ms();
        let mut meters = self.meters.lock().unwrap_or_else(|p| p.into_inner());
        meters.expire(now_ms);
        let (samples, window) = self.window(QuotaKind::Request);
        let slot = meters.ips.entry(ip).or_insert_with(|| MeterSlot {
            meter: Meter::Rate(SampledRate::new(samples, window)),
            last_used_ms: now_ms,
        });
        slot.last_used_ms = now_ms;
        let Meter::Rate(rate) = &mut slot.meter else {
            return None;
        };
        rate.record(1.0, now_ms);
        let throttle = rate.throttle(bound, now_ms);
        if throttle.is_zero() {
            return None;
        }
        rate.record(-1.0, now_ms);
        self.connections_throttled.fetch_add(1, Ordering::Relaxed);
        Some(throttle)
    }

    pub fn stats(&self) -> Vec<ThrottleStats> {
        QuotaKind::ALL
            .iter()
            .map(|kind| {
                let stats = &self.stats[kind.index()];
                ThrottleStats {
                    kind: *kind,
                    throttled_requests: stats.throttled.load(Ordering::Relaxed),
                    throttle_time_ms: stats.throttle_ms.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// Connections closed for exceeding their IP's `connection_creation_rate`.
    pub fn connections_throttled(&self) -> u64 {
        self.connections_throttled.load(Ordering::Relaxed)
    }
}

/// An IPv4 address mapped into IPv6 is named by its IPv4 form, as quota entities name it.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}
