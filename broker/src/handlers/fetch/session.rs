//! Fetch sessions (KIP-227): the broker remembers, per session, which partitions a fetcher reads and what it
//! last told it about them, so an incremental fetch names only the partitions whose request changed and its
//! answer carries only the partitions with something new (records, high watermark, log start offset, an
//! error, a diverging epoch).
//!
//! The (session id, epoch) pair of a request selects the kind of fetch, as in Kafka's `FetchManager`:
//! epoch 0 or -1 is a full fetch (any session it names is closed first); epoch 0 also asks for a new
//! session, epoch -1 does not. Any other epoch is incremental and must name a cached session and carry its
//! next epoch. The cache holds at most `max.incremental.fetch.session.cache.slots` sessions; a new one
//! takes the place of one that was idle for two minutes, or else of a less valuable one (Kafka's rules, see
//! [`Sessions::try_evict`]).
//!
//! Thread-safety: one mutex over all sessions, never held across an await: a fetch takes it once before it
//! reads (to apply its request to the session) and once when its answer is final (to prune the answer and
//! remember what it said). Unlike Kafka the cache is not sharded: the lock is held for map operations only.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};

use indexmap::IndexMap;
use kafka_protocol::{
    messages::{fetch_response::PartitionData, FetchResponse},
    ResponseError,
};
use uuid::Uuid;

use crate::metrics::FetchSessionMetrics;

/// A session unused for this long may be evicted by any new one (Kafka's
/// `MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS`); a younger one only by a more valuable one.
pub const EVICTION_MS: i64 = 120_000;

/// The session id of a fetch without a session.
pub const NO_SESSION: i32 = 0;
/// The epoch of a full fetch that asks for a new session.
const INITIAL_EPOCH: i32 = 0;
/// The epoch of a full fetch that wants no session.
const FINAL_EPOCH: i32 = -1;

/// How a session names a topic: by id from Fetch v13 on, by name before. A session is one or the other.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TopicKey {
    Id(Uuid),
    Name(String),
}

/// One partition a fetch reads, as requested or as remembered by a session.
#[derive(Debug, Clone)]
pub struct FetchTarget {
    /// The topic's name, or None for a topic id this broker does not know (answered UNKNOWN_TOPIC_ID).
    pub topic: Option<String>,
    pub topic_id: Uuid,
    pub index: i32,
    pub fetch_offset: i64,
    pub max_bytes: usize,
    pub current_leader_epoch: i32,
    pub last_fetched_epoch: i32,
    /// The fetcher's own log start offset (followers); kept so a cached request is the one it sent.
    pub log_start_offset: i64,
}

impl FetchTarget {
    pub fn key(&self, uses_topic_ids: bool) -> (TopicKey, i32) {
        let topic = if uses_topic_ids {
            TopicKey::Id(self.topic_id)
        } else {
            TopicKey::Name(self.topic.clone().unwrap_or_default())
        };
        (topic, self.index)
    }
}

/// A partition of a session: the request parameters last sent and what the last answer told the fetcher.
#[derive(Debug)]
struct CachedPartition {
    target: FetchTarget,
    /// -1 until an answer without error has been sent, so the partition is sent again once an error clears.
    high_watermark: i64,
    log_start_offset: i64,
}

impl CachedPartition {
    fn new(target: FetchTarget) -> Self {
        Self {
            target,
            high_watermark: -1,
            log_start_offset: -1,
        }
    }

    /// Whether an incremental answer must carry this partition's `data`; when `remember`, records what it
    /// tells the fetcher.
    fn must_respond(&mut self, data: &PartitionData, remember: bool) -> bool {
        let mut must = has_records(data);
        if self.high_watermark != data.high_watermark {
            must = true;
            if remember {
                self.high_watermark = data.high_watermark;
            }
        }
        if self.log_start_offset != data.log_start_offset {
            must = true;
            if remember {
                self.log_start_offset = data.log_start_offset;
            }
        }
        if data.preferred_read_replica.0 >= 0 {
            must = true;
        }
        if data.error_code != 0 {
            must = true;
            if remember {
                self.high_watermark = -1;
            }
        }
        if data.diverging_epoch.epoch != -1 || data.diverging_epoch.end_offset != -1 {
            must = true;
        }
        must
    }
}

fn has_records(data: &PartitionData) -> bool {
    data.records.as_ref().is_some_and(|r| !r.is_empty())
}

#[derive(Debug)]
struct FetchSession {
    id: i32,
    /// Created by a follower: only another follower's session, or age, can push it out.
    privileged: bool,
    uses_topic_ids: bool,
    created_ms: i64,
    last_used_ms: i64,
    /// The epoch the next incremental request must carry.
    epoch: i32,
    /// In fetch order: partitions that just returned records move to the end, so a response size limit
    /// does not starve the partitions after them.
    partitions: IndexMap<(TopicKey, i32), CachedPartition>,
}

/// What a fetch request asked of the session cache, decided before it reads anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchContext {
    /// A full fetch without a session: answered in full with session id 0.
    Sessionless,
    /// A full fetch asking for a session: answered in full, with a new session's id when one fits.
    Full {
        privileged: bool,
        uses_topic_ids: bool,
    },
    /// An incremental fetch in session `id`, whose epoch is now `next_epoch`.
    Incremental { id: i32, next_epoch: i32 },
    /// A session error: answered with this top-level error, no partitions and session id 0.
    Error(ResponseError),
}

/// The sessions of one broker.
#[derive(Debug)]
pub struct FetchSessionCache {
    max_slots: usize,
    sessions: Mutex<Sessions>,
}

#[derive(Debug)]
struct Sessions {
    by_id: HashMap<i32, FetchSession>,
    /// Partitions over all sessions.
    partitions: usize,
    metrics: FetchSessionMetrics,
}

/// The next epoch after `epoch`; wraps to 1 (0 means "new session").
fn next_epoch(epoch: i32) -> i32 {
    if epoch < 0 {
        FINAL_EPOCH
    } else if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

/// What a fetch request carries that concerns its session.
#[derive(Debug)]
pub struct SessionRequest<'a> {
    pub version: i16,
    pub session_id: i32,
    pub epoch: i32,
    pub follower: bool,
    pub partitions: Vec<FetchTarget>,
    pub forgotten: &'a [(TopicKey, i32)],
}

impl FetchSessionCache {
    pub fn new(max_slots: usize, metrics: FetchSessionMetrics) -> Self {
        Self {
            max_slots,
            sessions: Mutex::new(Sessions {
                by_id: HashMap::new(),
                partitions: 0,
                metrics,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Sessions> {
        // A panic while holding the lock leaves at worst a stale session; the cache stays usable.
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sessions cached now.
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sessions evicted to make room for new ones since the broker started.
    pub fn evictions(&self) -> u64 {
        self.lock().metrics.evictions.get()
    }

    /// Applies a request to the cache. Returns its context and the partitions to read, in order: the
    /// request's for a full fetch, the whole session's for an incremental one (the names of topic ids
    /// unknown when cached resolved again with `resolve`).
    pub fn open(
        &self,
        request: SessionRequest<'_>,
        now_ms: i64,
        resolve: impl Fn(Uuid) -> Option<String>,
    ) -> (FetchContext, Vec<FetchTarget>) {
        let uses_topic_ids = request.version >= 13;
        let mut sessions = self.lock();
        if request.epoch == INITIAL_EPOCH || request.epoch == FINAL_EPOCH {
            if request.session_id != NO_SESSION {
                sessions.remove(request.session_id);
            }
            let context = if request.epoch == FINAL_EPOCH {
                FetchContext::Sessionless
            } else {
                FetchContext::Full {
                    privileged: request.follower,
                    uses_topic_ids,
                }
            };
            return (context, request.partitions);
        }
        let Some(session) = sessions.by_id.get_mut(&request.session_id) else {
            return (
                FetchContext::Error(ResponseError::FetchSessionIdNotFound),
                Vec::new(),
            );
        };
        if session.epoch != request.epoch {
            return (
                FetchContext::Error(ResponseError::InvalidFetchSessionEpoch),
                Vec::new(),
            );
        }
        if session.uses_topic_ids != uses_topic_ids {
            return (
                FetchContext::Error(ResponseError::FetchSessionTopicIdError),
                Vec::new(),
            );
        }
        let size_before = session.partitions.len();
        for target in &request.partitions {
            let key = target.key(uses_topic_ids);
            match session.partitions.get_mut(&key) {
                Some(cached) => {
                    let known_name = cached.target.topic.take();
                    cached.target = FetchTarget {
                        topic: target.topic.clone().or(known_name),
                        ..target.clone()
                    };
                }
                None => {
                    session
                        .partitions
                        .insert(key, CachedPartition::new(target.clone()));
                }
            }
        }
        for key in request.forgotten {
            session.partitions.shift_remove(key);
        }
        let size_after = session.partitions.len();
        if session.partitions.is_empty() {
            let id = session.id;
            sessions.partitions = sessions.partitions + size_after - size_before;
            sessions.remove(id);
            return (FetchContext::Sessionless, request.partitions);
        }
        session.epoch = next_epoch(session.epoch);
        let context = FetchContext::Incremental {
            id: session.id,
            next_epoch: session.epoch,
        };
        let targets = session
            .partitions
            .values_mut()
            .map(|cached| {
                if cached.target.topic.is_none() {
                    cached.target.topic = resolve(cached.target.topic_id);
                }
                cached.target.clone()
            })
            .collect();
        sessions.partitions = sessions.partitions + size_after - size_before;
        sessions.touch(request.session_id, now_ms);
        sessions.publish();
        (context, targets)
    }

    /// Completes the answer to a fetch opened with `context` that read `targets` (in response order): sets
    /// its session id, creates the session a full fetch asked for, or prunes an incremental answer to what
    /// changed. Returns false when the answer was replaced by a session error (its records must not be sent).
    pub fn close<'t>(
        &self,
        context: FetchContext,
        targets: impl IntoIterator<Item = &'t FetchTarget>,
        response: &mut FetchResponse,
        now_ms: i64,
    ) -> bool {
        match context {
            FetchContext::Sessionless => {
                response.session_id = NO_SESSION;
                true
            }
            FetchContext::Error(error) => {
                *response = session_error(error, NO_SESSION);
                false
            }
            FetchContext::Full {
                privileged,
                uses_topic_ids,
            } => {
                let answered = response.responses.iter().flat_map(|t| &t.partitions);
                let partitions = targets
                    .into_iter()
                    .zip(answered)
                    .map(|(target, data)| {
                        let mut cached = CachedPartition::new(target.clone());
                        cached.high_watermark = data.high_watermark;
                        cached.log_start_offset = data.log_start_offset;
                        (target.key(uses_topic_ids), cached)
                    })
                    .collect();
                response.session_id = self.lock().try_create(
                    self.max_slots,
                    now_ms,
                    privileged,
                    uses_topic_ids,
                    partitions,
                );
                true
            }
            FetchContext::Incremental { id, next_epoch } => {
                let mut sessions = self.lock();
                response.session_id = id;
                let Some(session) = sessions.by_id.get_mut(&id) else {
                    // Evicted while this fetch waited: the full answer is still right for the fetcher,
                    // whose next incremental fetch learns the session is gone.
                    return true;
                };
                if session.epoch != next_epoch {
                    // Another request with the same epoch came in meanwhile (a duplicate).
                    *response = session_error(ResponseError::InvalidFetchSessionEpoch, id);
                    return false;
                }
                let uses_topic_ids = session.uses_topic_ids;
                let mut moved_to_end = Vec::new();
                for topic in &mut response.responses {
                    let topic_key = if uses_topic_ids {
                        TopicKey::Id(topic.topic_id)
                    } else {
                        TopicKey::Name(topic.topic.0.to_string())
                    };
                    topic.partitions.retain(|data| {
                        let key = (topic_key.clone(), data.partition_index);
                        let Some(cached) = session.partitions.get_mut(&key) else {
                            return true;
                        };
                        let must = cached.must_respond(data, true);
                        if must && has_records(data) {
                            moved_to_end.push(key);
                        }
                        must
                    });
                }
                response.responses.retain(|t| !t.partitions.is_empty());
                for key in moved_to_end {
                    if let Some(cached) = session.partitions.shift_remove(&key) {
                        session.partitions.insert(key, cached);
                    }
                }
                true
            }
        }
    }
}

fn session_error(error: ResponseError, session_id: i32) -> FetchResponse {
    FetchResponse::default()
        .with_error_code(error.code())
        .with_session_id(session_id)
}

impl Sessions {
    fn touch(&mut self, id: i32, now_ms: i64) {
        if let Some(session) = self.by_id.get_mut(&id) {
            session.last_used_ms = now_ms;
        }
    }

    /// Creates a session when there is room or room can be made; returns its id, or 0.
    fn try_create(
        &mut self,
        max_slots: usize,
        now_ms: i64,
        privileged: bool,
        uses_topic_ids: bool,
        partitions: IndexMap<(TopicKey, i32), CachedPartition>,
    ) -> i32 {
        if max_slots == 0 {
            return NO_SESSION;
        }
        if self.by_id.len() >= max_slots && !self.try_evict(privileged, partitions.len(), now_ms) {
            return NO_SESSION;
        }
        let id = self.new_session_id();
        self.partitions += partitions.len();
        self.by_id.insert(
            id,
            FetchSession {
                id,
                privileged,
                uses_topic_ids,
                created_ms: now_ms,
                last_used_ms: now_ms,
                epoch: next_epoch(INITIAL_EPOCH),
                partitions,
            },
        );
        tracing::debug!(session = id, privileged, "created a fetch session");
        self.publish();
        id
    }

    /// Random, so that a fetcher holding an id from before a restart does not land in someone else's
    /// session; positive and unused.
    fn new_session_id(&self) -> i32 {
        loop {
            let id = (Uuid::new_v4().as_u128() as i32) & i32::MAX;
            if id != NO_SESSION && !self.by_id.contains_key(&id) {
                return id;
            }
        }
    }

    /// Makes room for a new session of `size` partitions, as Kafka's `FetchSessionCacheShard.tryEvict`
    /// decides: the least recently used session goes if it was idle longer than [`EVICTION_MS`]; otherwise
    /// the least valuable evictable one goes if the new one is worth more. Value orders by (privileged,
    /// partitions, id); a session is evictable by anyone once older than [`EVICTION_MS`], and by a follower's
    /// new session also while young if it is not a follower's. Kafka keeps these orders in sorted maps
    /// updated on each use; this scans, which costs a pass over at most `max_slots` sessions, and only when
    /// the cache is full.
    fn try_evict(&mut self, privileged: bool, size: usize, now_ms: i64) -> bool {
        let Some(least_recent) = self
            .by_id
            .values()
            .min_by_key(|s| (s.last_used_ms, s.id))
            .map(|s| (s.id, s.last_used_ms))
        else {
            return false;
        };
        if now_ms - least_recent.1 > EVICTION_MS {
            self.evict(least_recent.0);
            return true;
        }
        let old = |s: &FetchSession| now_ms - s.created_ms > EVICTION_MS;
        let Some(candidate) = self
            .by_id
            .values()
            .filter(|s| old(s) || (privileged && !s.privileged))
            .map(|s| (s.privileged, s.partitions.len(), s.id))
            .min()
        else {
            return false;
        };
        // An equal session never gives way (the new one's id counts as 0).
        if (privileged, size, 0) < candidate {
            return false;
        }
        self.evict(candidate.2);
        true
    }

    fn remove(&mut self, id: i32) -> Option<FetchSession> {
        let session = self.by_id.remove(&id)?;
        self.partitions -= session.partitions.len();
        self.publish();
        Some(session)
    }

    fn publish(&self) {
        self.metrics.sessions.set(self.by_id.len() as i64);
        self.metrics.partitions.set(self.partitions as i64);
    }

    fn evict(&mut self, id: i32) {
        if let Some(session) = self.remove(id) {
            self.metrics.evictions.inc();
            tracing::debug!(
                session = id,
                partitions = session.partitions.len(),
                privileged = session.privileged,
                "evicted a fetch session"
            );
        }
    }
}

#[cfg(test)]
mod tests;
