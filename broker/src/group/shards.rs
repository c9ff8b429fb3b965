//! Which `__consumer_offsets` partitions (shards) this coordinator serves, and loading and unloading them
//! as this broker gains and loses their leadership.
//!
//! A shard is *loading* from the moment this broker became its partition's leader until its groups and
//! offsets are rebuilt from the log, *loaded* afterwards, and absent when another broker leads it. Requests
//! of a loading shard's groups get COORDINATOR_LOAD_IN_PROGRESS, of an absent one's NOT_COORDINATOR.
//!
//! The load point. Kafka's coordinator reads the new leader's whole log, up to its log end: a leader's log
//! is authoritative, followers truncate to it, so its tail above the high watermark will be committed
//! unless the leadership ends first. We read the same records, but only once they *are* committed: the
//! load first waits until the high watermark reaches the log end offset the leader had when it took over
//! (its epoch start), then reads up to the high watermark. Why not read up to the high watermark at the
//! moment of taking over: a follower's high watermark lags the leader's by a fetch round trip, so an
//! offset the old leader acknowledged may still sit above it, and the new coordinator would answer a stale
//! offset. Why not serve the log end at once as Kafka does: a record above the high watermark can still be
//! lost if this leader fails before its followers copy it, and a client would see an offset go back. The
//! cost is a load that waits for the followers (or for the ISR to shrink to those that keep up), which
//! clients see as COORDINATOR_LOAD_IN_PROGRESS and retry. While loading no write of the shard is accepted,
//! so the log does not grow past the epoch start and the read sees everything.
//!
//! In-flight requests. Unloading a shard answers its parked joins and syncs with NOT_COORDINATOR and
//! forgets its groups; a commit waiting for replication learns of the lost leadership from the partition
//! (NOT_COORDINATOR) and, if its record was committed anyway, leaves the cache alone: the next leader
//! loads the record from the log. Every load has a generation; work started under one generation never
//! touches the state of another.

use std::{collections::HashMap, ops::Range, sync::Arc, time::Instant};

use kafka_protocol::{records::RecordBatchDecoder, ResponseError};

use super::{
    offsets::{apply, OffsetsLogError},
    records::{partition_for, OffsetsKey},
    Group, GroupCoordinator, GroupState,
};
use crate::error_chain;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShardStatus {
    Loading,
    Loaded,
}

#[derive(Debug, Clone, Copy)]
struct Shard {
    status: ShardStatus,
    /// The leadership the shard's state belongs to; `None` for the shards a standalone broker loads at
    /// start, before the replica manager reports epochs (the first one reported is adopted).
    leader_epoch: Option<i32>,
    generation: u64,
}

/// Proof that a shard was loaded when a request started: which leadership to write in and which load to
/// update afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ShardToken {
    pub(super) partition: i32,
    pub(super) leader_epoch: Option<i32>,
    generation: u64,
}

/// The state of every shard this coordinator serves or loads.
#[derive(Debug, Default)]
pub(super) struct Shards {
    shards: HashMap<i32, Shard>,
    next_generation: u64,
}

impl Shards {
    /// Whether requests of `partition`'s groups may be served now.
    pub(super) fn check(&self, partition: i32) -> Result<ShardToken, ResponseError> {
        match self.shards.get(&partition) {
            Some(shard) if shard.status == ShardStatus::Loaded => Ok(ShardToken {
                partition,
                leader_epoch: shard.leader_epoch,
                generation: shard.generation,
            }),
            Some(_) => Err(ResponseError::CoordinatorLoadInProgress),
            None => Err(ResponseError::NotCoordinator),
        }
    }

    /// True while the load `token` was taken from is still the shard's current, loaded state.
    pub(super) fn is_current(&self, token: ShardToken) -> bool {
        self.shards
            .get(&token.partition)
            .is_some_and(|s| s.status == ShardStatus::Loaded && s.generation == token.generation)
    }

    pub(super) fn any_loading(&self) -> bool {
        self.shards
            .values()
            .any(|s| s.status == ShardStatus::Loading)
    }

    fn is_loading(&self, partition: i32, generation: u64) -> bool {
        self.shards
            .get(&partition)
            .is_some_and(|s| s.status == ShardStatus::Loading && s.generation == generation)
    }

    fn next_generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }
}

impl GroupCoordinator {
    /// The shard (offsets partition) of `group_id`.
    pub(super) fn shard_of(&self, group_id: &str) -> i32 {
        partition_for(group_id, self.config.offsets_partitions)
    }

    /// This broker leads `__consumer_offsets`-`partition` in `leader_epoch`: start loading its shard,
    /// unless the shard already belongs to this leadership. A different epoch reloads, because another
    /// broker may have led in between and this broker may not have seen it (deltas can skip states).
    /// Returns at once; the load runs as a task.
    pub fn shard_led(self: &Arc<Self>, partition: i32, leader_epoch: i32) {
        if !(0..self.config.offsets_partitions).contains(&partition) {
            return;
        }
        let generation = {
            let mut state = self.lock();
            if let Some(shard) = state.shards.shards.get_mut(&partition) {
                if shard.leader_epoch.is_none_or(|e| e == leader_epoch) {
                    shard.leader_epoch = Some(leader_epoch);
                    return;
                }
            }
            self.unload_locked(&mut state, partition);
            let generation = state.shards.next_generation();
            state.shards.shards.insert(
                partition,
                Shard {
                    status: ShardStatus::Loading,
                    leader_epoch: Some(leader_epoch),
                    generation,
                },
            );
            generation
        };
        tracing::info!(
            partition,
            leader_epoch,
            "loading group coordinator shard: this broker leads it"
        );
        let coordinator = Arc::clone(self);
        let load = async move {
            coordinator
                .load_shard(partition, leader_epoch, generation)
                .await
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(load);
            }
            Err(_) => {
                // Every caller runs on the runtime (metadata is applied by its tasks); without one there is
                // nobody to wait for replication, so the shard stays unserved rather than half-loaded.
                tracing::error!(
                    partition,
                    "no async runtime to load a group coordinator shard on"
                );
                self.abandon_load(partition, generation);
            }
        }
    }

    /// This broker no longer leads `__consumer_offsets`-`partition`: its groups are forgotten and their
    /// parked requests answered with NOT_COORDINATOR.
    pub fn shard_lost(&self, partition: i32) {
        let mut state = self.lock();
        if self.unload_locked(&mut state, partition) {
            tracing::info!(
                partition,
                "unloaded group coordinator shard: this broker no longer leads it"
            );
        }
    }

    /// Drops `partition`'s shard and groups; true if there was one.
    fn unload_locked(&self, state: &mut super::CoordinatorState, partition: i32) -> bool {
        let existed = state.shards.shards.remove(&partition).is_some();
        let partitions = self.config.offsets_partitions;
        state.groups.retain(|id, group| {
            if partition_for(id, partitions) != partition {
                return true;
            }
            for member in group.members.values_mut() {
                member.answer_waiters_with(ResponseError::NotCoordinator);
            }
            false
        });
        existed
    }

    fn abandon_load(&self, partition: i32, generation: u64) {
        let mut state = self.lock();
        if state.shards.is_loading(partition, generation) {
            state.shards.shards.remove(&partition);
        }
    }

    async fn load_shard(self: Arc<Self>, partition: i32, leader_epoch: i32, generation: u64) {
        let started = Instant::now();
        if let Err(e) = self.log.wait_until_caught_up(partition, leader_epoch).await {
            tracing::info!(partition, leader_epoch, error = %error_chain(&e), "group coordinator shard not loaded");
            self.abandon_load(partition, generation);
            return;
        }
        let reader = Arc::clone(&self);
        let read = tokio::task::spawn_blocking(move || reader.read_shard(partition)).await;
        let (groups, records) = match read {
            Ok(Ok(read)) => read,
            Ok(Err(e)) => {
                tracing::error!(partition, error = %error_chain(&e), "loading a group coordinator shard failed");
                self.abandon_load(partition, generation);
                return;
            }
            Err(e) => {
                tracing::error!(partition, error = %e, "loading a group coordinator shard panicked");
                self.abandon_load(partition, generation);
                return;
            }
        };
        let mut state = self.lock();
        if !state.shards.is_loading(partition, generation) {
            // Unloaded or superseded while reading.
            return;
        }
        let count = groups.len();
        state.groups.extend(groups);
        if let Some(shard) = state.shards.shards.get_mut(&partition) {
            shard.status = ShardStatus::Loaded;
        }
        drop(state);
        tracing::info!(
            partition,
            leader_epoch,
            groups = count,
            records,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "group coordinator shard loaded"
        );
    }

    /// Rebuilds every shard from `__consumer_offsets` and serves them all: a standalone broker leads every
    /// partition (or will, once it creates the topic). Runs once at start, before clients connect. Shards
    /// whose partition turns out to be led elsewhere are unloaded when the replica manager says so.
    pub fn load(&self) -> Result<usize, OffsetsLogError> {
        let started = Instant::now();
        let mut loaded = HashMap::new();
        let mut applied = 0;
        for index in 0..self.config.offsets_partitions {
            let (groups, records) = self.read_shard(index)?;
            loaded.extend(groups);
            applied += records;
        }
        let mut state = self.lock();
        let count = loaded.len();
        state.groups.extend(loaded);
        for index in 0..self.config.offsets_partitions {
            let generation = state.shards.next_generation();
            state.shards.shards.insert(
                index,
                Shard {
                    status: ShardStatus::Loaded,
                    leader_epoch: None,
                    generation,
                },
            );
        }
        drop(state);
        tracing::info!(
            groups = count,
            records = applied,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "group state loaded"
        );
        Ok(applied)
    }

    /// The groups of one shard as its log (up to the high watermark) describes them, and how many records
    /// were applied. Reads from disk: call from a blocking thread.
    fn read_shard(&self, index: i32) -> Result<(HashMap<String, Group>, usize), OffsetsLogError> {
        let mut groups = HashMap::new();
        let mut applied = 0usize;
        let Some(Range { start, end }) = self.log.readable_range(index) else {
            return Ok((groups, applied));
        };
        let mut offset = start;
        while offset < end {
            let mut buf = self.log.read(index, offset, 1 << 20)?;
            if buf.is_empty() {
                break;
            }
            let sets = RecordBatchDecoder::decode_all(&mut buf).map_err(|source| {
                OffsetsLogError::Decode {
                    partition: index,
                    offset,
                    source,
                }
            })?;
            let mut next = offset;
            for record in sets.into_iter().flat_map(|s| s.records) {
                next = next.max(record.offset + 1);
                // Whole batches come back: skip records before the offset asked for and at or above the
                // high watermark (not committed yet).
                if record.offset < offset || record.offset >= end {
                    continue;
                }
                let Some(key) = record.key.clone() else {
                    continue;
                };
                match OffsetsKey::decode(key) {
                    Ok(key) => {
                        apply(&mut groups, key, record.value);
                        applied += 1;
                    }
                    Err(e) => {
                        tracing::warn!(partition = index, offset = record.offset, error = %e, "skipping unreadable offsets record")
                    }
                }
            }
            if next <= offset {
                break;
            }
            offset = next;
        }
        groups.retain(|_, g| {
            !(g.state == GroupState::Empty && g.offsets.is_empty() && g.generation == 0)
        });
        Ok((groups, applied))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use tokio::sync::watch;

    use super::*;
    use crate::{
        clock::ManualClock,
        group::{
            offsets::BoxFuture, GroupConfig, JoinRequest, OffsetsLog, Protocol, TopicPartitions,
        },
    };

    /// An empty `__consumer_offsets` whose new leaders catch up when the test says so; writes fail.
    #[derive(Debug)]
    struct GatedLog {
        caught_up: watch::Sender<bool>,
    }

    impl OffsetsLog for GatedLog {
        fn ensure_topic(&self, _: i32) -> BoxFuture<'_, Result<(), OffsetsLogError>> {
            Box::pin(async { Ok(()) })
        }
        fn append_durably(
            &self,
            partition: i32,
            _: Option<i32>,
            _: bytes::BytesMut,
        ) -> BoxFuture<'_, Result<(), OffsetsLogError>> {
            Box::pin(async move { Err(OffsetsLogError::NotHosted(partition)) })
        }
        fn wait_until_caught_up(
            &self,
            _: i32,
            _: i32,
        ) -> BoxFuture<'_, Result<(), OffsetsLogError>> {
            let mut caught_up = self.caught_up.subscribe();
            Box::pin(async move {
                let _ = caught_up.wait_for(|c| *c).await;
                Ok(())
            })
        }
        fn readable_range(&self, _: i32) -> Option<Range<i64>> {
            None
        }
        fn read(&self, partition: i32, _: i64, _: usize) -> Result<Bytes, OffsetsLogError> {
            Err(OffsetsLogError::NotHosted(partition))
        }
    }

    /// One shard (every group in partition 0), nothing loaded; and the gate of its log.
    fn coordinator() -> (Arc<GroupCoordinator>, watch::Sender<bool>) {
        let (caught_up, _) = watch::channel(false);
        let coordinator = Arc::new(GroupCoordinator::new(
            GroupConfig {
                initial_rebalance_delay_ms: 0,
                offsets_partitions: 1,
                ..GroupConfig::default()
            },
            Arc::new(GatedLog {
                caught_up: caught_up.clone(),
            }),
            Arc::new(ManualClock::default()),
        ));
        (coordinator, caught_up)
    }

    fn join(member_id: &str) -> JoinRequest {
        JoinRequest {
            group_id: "g".into(),
            member_id: member_id.into(),
            instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            protocol_type: "consumer".into(),
            protocols: vec![Protocol {
                name: "range".into(),
                metadata: Bytes::from_static(b"meta"),
            }],
            require_known_member: false,
        }
    }

    fn fetch(c: &GroupCoordinator) -> Result<(), ResponseError> {
        c.fetch(
            "g",
            Some(vec![TopicPartitions {
                topic: "t".into(),
                partitions: vec![0],
            }]),
        )
        .map(|_| ())
    }

    #[tokio::test]
    async fn a_led_shard_answers_load_in_progress_until_its_leader_caught_up() {
        let (c, caught_up) = coordinator();
        assert_eq!(fetch(&c), Err(ResponseError::NotCoordinator));
        c.shard_led(0, 5);
        assert!(c.is_loading());
        assert_eq!(fetch(&c), Err(ResponseError::CoordinatorLoadInProgress));
        assert_eq!(
            c.join(join("")).await.error,
            Some(ResponseError::CoordinatorLoadInProgress)
        );
        assert_eq!(
            c.heartbeat("g", 1, "m", None),
            Ok(()),
            "Kafka answers heartbeats blindly while loading"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            fetch(&c),
            Err(ResponseError::CoordinatorLoadInProgress),
            "loaded before the high watermark covered the epoch start"
        );
        caught_up.send_replace(true);
        let deadline = Instant::now() + Duration::from_secs(5);
        while fetch(&c).is_err() {
            assert!(Instant::now() < deadline, "the shard never loaded");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!c.is_loading());
        // The same leadership again (a replay, an ISR change) keeps the state; a new epoch reloads it.
        c.shard_led(0, 5);
        assert_eq!(fetch(&c), Ok(()));
        caught_up.send_replace(false);
        c.shard_led(0, 6);
        assert_eq!(fetch(&c), Err(ResponseError::CoordinatorLoadInProgress));
        c.shard_lost(0);
        assert_eq!(fetch(&c), Err(ResponseError::NotCoordinator));
    }

    #[tokio::test]
    async fn a_lost_shard_answers_parked_and_later_requests_with_not_coordinator() {
        let (c, _) = coordinator();
        c.load().unwrap();
        let first = c.join(join("")).await;
        assert_eq!(first.error, None);
        // A second member's join parks until the first rejoins.
        let parked = {
            let c = Arc::clone(&c);
            tokio::spawn(async move { c.join(join("")).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!parked.is_finished());
        c.shard_lost(0);
        let answer = tokio::time::timeout(Duration::from_secs(5), parked)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(answer.error, Some(ResponseError::NotCoordinator));
        assert_eq!(
            c.heartbeat("g", first.generation, &first.member_id, None),
            Err(ResponseError::NotCoordinator)
        );
        assert_eq!(fetch(&c), Err(ResponseError::NotCoordinator));
        assert!(
            c.list().is_empty(),
            "the lost shard's groups are still listed"
        );
    }
}
