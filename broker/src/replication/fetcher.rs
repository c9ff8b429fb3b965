//! Follower fetchers (Kafka's `ReplicaFetcherThread`): one task per source broker, for every partition this
//! broker follows from it. Each round it first settles divergent tails by epoch (OffsetForLeaderEpoch with
//! its latest epoch, repeated until the step is final: KIP-101/279), then sends one Fetch (v12, so the
//! leader can answer `diverging_epoch`) for all its partitions from their log end offsets, appends what comes
//! back with [`Partition::append_as_follower`] and fsyncs it before the next Fetch. That fsync is the
//! durability report: the next fetch offset is durable here, and the leader counts it as such in the high
//! watermark. Partitions the replication throttle holds back (`super::quota`) are left out of a round's
//! Fetch.
//!
//! The replica manager says what to follow ([`FetchAssignments`]); a task ends when its source has nothing
//! left to serve, and reconnects with backoff on any failure. Single-node brokers follow nothing, so no task
//! ever runs. Must never append to a partition that leads, or under an epoch the metadata moved past.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use kafka_protocol::{
    messages::{
        fetch_request::{FetchPartition, FetchTopic},
        offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic},
        BrokerId, FetchRequest, OffsetForLeaderEpochRequest, TopicName,
    },
    protocol::StrBytes,
    ResponseError,
};
use tokio::{sync::watch, task::JoinHandle};

use super::{
    client::{ClientError, Connection},
    manager::ReplicaManager,
    truncation::{truncation_step, TruncationStep},
};
use crate::{
    cluster::image::NodeId, config::ReplicationConfig, error_chain, partition::Partition,
    storage_health::is_storage_error,
};

/// Fetch v12: the first with `last_fetched_epoch`/`diverging_epoch`, still naming topics.
const FETCH_VERSION: i16 = 12;
const OFFSET_FOR_LEADER_EPOCH_VERSION: i16 = 4;
const CLIENT_ID: &str = "tributary-replica-fetcher";
/// Rounds of OffsetForLeaderEpoch per partition before giving up until the next fetch round.
const MAX_TRUNCATION_ROUNDS: usize = 16;

/// One partition to follow: the leader epoch the metadata gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Followed {
    leader_epoch: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Source {
    /// `host:port` of the leader's inter-broker listener; None while it is unregistered.
    address: Option<String>,
    partitions: BTreeMap<(String, i32), Followed>,
}

/// What this broker follows, by source broker. Written by the replica manager as it applies metadata,
/// read by the fetcher tasks. Thread-safe; the lock is never held across I/O.
#[derive(Debug)]
pub struct FetchAssignments {
    sources: Mutex<BTreeMap<NodeId, Source>>,
    changed: watch::Sender<u64>,
}

impl Default for FetchAssignments {
    fn default() -> Self {
        Self {
            sources: Mutex::new(BTreeMap::new()),
            changed: watch::Sender::new(0),
        }
    }
}

impl FetchAssignments {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeId, Source>> {
        self.sources
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Follows `topic`-`index` from `leader` under `leader_epoch`, at `address`.
    pub fn follow(
        &self,
        topic: &str,
        index: i32,
        leader: NodeId,
        leader_epoch: i32,
        address: Option<String>,
    ) {
        let key = (topic.to_owned(), index);
        {
            let mut sources = self.lock();
            for (id, source) in sources.iter_mut() {
                if *id != leader {
                    source.partitions.remove(&key);
                }
            }
            let source = sources.entry(leader).or_default();
            source.address = address;
            source.partitions.insert(key, Followed { leader_epoch });
            sources.retain(|_, s| !s.partitions.is_empty());
        }
        self.bump();
    }

    /// Stops following `topic`-`index` (it leads here now, lost its leader, or was deleted).
    pub fn stop(&self, topic: &str, index: i32) {
        let key = (topic.to_owned(), index);
        let removed = {
            let mut sources = self.lock();
            let removed = sources
                .values_mut()
                .any(|s| s.partitions.remove(&key).is_some());
            sources.retain(|_, s| !s.partitions.is_empty());
            removed
        };
        if removed {
            self.bump();
        }
    }

    /// Updates the address of a source broker (it registered again with other endpoints).
    pub fn set_address(&self, source: NodeId, address: Option<String>) {
        let changed = {
            let mut sources = self.lock();
            match sources.get_mut(&source) {
                Some(s) if s.address != address => {
                    s.address = address;
                    true
                }
                _ => false,
            }
        };
        if changed {
            self.bump();
        }
    }

    /// Ticks on every change of what is followed from whom.
    fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn source_ids(&self) -> Vec<NodeId> {
        self.lock().keys().copied().collect()
    }

    /// Whether `topic`-`index` is followed from anyone, and from whom.
    pub fn leader_of(&self, topic: &str, index: i32) -> Option<NodeId> {
        let key = (topic.to_owned(), index);
        self.lock()
            .iter()
            .find(|(_, s)| s.partitions.contains_key(&key))
            .map(|(id, _)| *id)
    }

    fn source(&self, id: NodeId) -> Option<Source> {
        self.lock().get(&id).cloned()
    }
}

/// Starts and stops one fetcher task per source broker as the assignments change, until `shutdown`.
pub async fn run(
    replicas: Arc<ReplicaManager>,
    config: ReplicationConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let assignments = replicas.fetch_assignments();
    let mut changed = assignments.changed.subscribe();
    let mut running: BTreeMap<NodeId, JoinHandle<()>> = BTreeMap::new();
    loop {
        let sources = assignments.source_ids();
        running.retain(|id, task| {
            let keep = sources.contains(id) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        for source in sources {
            running.entry(source).or_insert_with(|| {
                tokio::spawn(fetcher(
                    Arc::clone(&replicas),
                    config.clone(),
                    source,
                    shutdown.clone(),
                ))
            });
        }
        tokio::select! {
            _ = changed.changed() => {}
            // A task that ended on its own (nothing left to follow) is restarted if work came back.
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => break,
        }
    }
    for (_, task) in running {
        task.abort();
        let _ = task.await;
    }
}

/// Where one followed partition stands in this fetcher.
#[derive(Debug)]
struct FetchState {
    leader_epoch: i32,
    /// The divergent tail (if any) has been cut for this leader epoch.
    truncated: bool,
}

/// How a fetcher round ended.
#[derive(Debug, PartialEq, Eq)]
enum RoundOutcome {
    Progress,
    /// Every partition was refused or waiting for metadata.
    Idle,
    /// What this source serves changed while the Fetch was waiting at the leader; its answer would not carry
    /// the new partitions or epochs, so it is abandoned with its connection.
    Interrupted,
}

/// A follower partition this fetcher may touch: hosted, not leading, under the epoch it fetches for.
fn follower_partition(
    replicas: &ReplicaManager,
    key: &(String, i32),
    leader_epoch: i32,
) -> Option<Arc<Partition>> {
    replicas
        .partition(&key.0, key.1)
        .filter(|p| !p.is_leader() && p.leader_epoch() == leader_epoch)
}

async fn fetcher(
    replicas: Arc<ReplicaManager>,
    config: ReplicationConfig,
    source_id: NodeId,
    shutdown: watch::Receiver<bool>,
) {
    let local = replicas.local_id();
    let backoff = Duration::from_millis(config.fetch_backoff_ms.max(10));
    let call_timeout = Duration::from_millis(u64::try_from(config.fetch_wait_max_ms).unwrap_or(0))
        + Duration::from_secs(30);
    let mut connection: Option<Connection> = None;
    let mut assignment_changes = replicas.fetch_assignments().subscribe();
    let mut states: BTreeMap<(String, i32), FetchState> = BTreeMap::new();
    tracing::info!(
        broker = local,
        source = source_id,
        "replica fetcher started"
    );
    loop {
        if *shutdown.borrow() {
            return;
        }
        assignment_changes.borrow_and_update();
        let Some(source) = replicas.fetch_assignments().source(source_id) else {
            tracing::info!(
                broker = local,
                source = source_id,
                "replica fetcher stopped: nothing to follow"
            );
            return;
        };
        states.retain(|key, _| source.partitions.contains_key(key));
        for (key, followed) in &source.partitions {
            let state = states.entry(key.clone()).or_insert(FetchState {
                leader_epoch: followed.leader_epoch,
                truncated: false,
            });
            if state.leader_epoch != followed.leader_epoch {
                tracing::debug!(broker = local, source = source_id, topic = %key.0, partition = key.1,
                    leader_epoch = followed.leader_epoch, "following a new leader epoch");
                *state = FetchState {
                    leader_epoch: followed.leader_epoch,
                    truncated: false,
                };
            }
        }
        let Some(address) = source.address.clone() else {
            tokio::time::sleep(backoff).await;
            continue;
        };
        if connection.as_ref().is_none_or(|c| c.address() != address) {
            match Connection::connect(
                address.clone(),
                config.bind_source,
                CLIENT_ID,
                Duration::from_secs(5),
            )
            .await
            {
                Ok(c) => connection = Some(c),
                Err(e) => {
                    tracing::warn!(broker = local, source = source_id, error = %error_chain(&e), "cannot reach the leader; retrying");
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            }
        }
        let Some(conn) = connection.as_mut() else {
            continue;
        };
        let watched = Watched {
            source_id,
            source: &source,
            changes: &mut assignment_changes,
        };
        match round(
            &replicas,
            &config,
            local,
            conn,
            &mut states,
            call_timeout,
            watched,
        )
        .await
        {
            Ok(RoundOutcome::Progress) => {}
            Ok(RoundOutcome::Idle) => {
                // Do not spin.
                tokio::time::sleep(backoff.min(Duration::from_millis(100))).await;
            }
            Ok(RoundOutcome::Interrupted) => {
                // A partition that just got a new leader here must not wait out the long poll
                // (replica.fetch.wait.max.ms) of a Fetch sent before it: the new leader's high watermark, and
                // so every acks=all produce after a failover, waits on this follower's first fetch.
                connection = None;
            }
            Err(e) => {
                tracing::warn!(broker = local, source = source_id, error = %error_chain(&e), "replica fetch failed; reconnecting");
                connection = None;
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

/// What a round's Fetch was built from, to notice that it went stale while waiting at the leader.
struct Watched<'a> {
    source_id: NodeId,
    source: &'a Source,
    changes: &'a mut watch::Receiver<u64>,
}

/// One fetcher round: truncation where needed, then one Fetch.
async fn round(
    replicas: &ReplicaManager,
    config: &ReplicationConfig,
    local: NodeId,
    conn: &mut Connection,
    states: &mut BTreeMap<(String, i32), FetchState>,
    call_timeout: Duration,
    watched: Watched<'_>,
) -> Result<RoundOutcome, ClientError> {
    for (key, state) in states.iter_mut().filter(|(_, s)| !s.truncated) {
        let Some(partition) = follower_partition(replicas, key, state.leader_epoch) else {
            continue;
        };
        state.truncated =
            truncate_by_epoch(conn, local, &partition, state.leader_epoch, call_timeout).await?;
    }
    let image = replicas.current_image();
    let throttle = replicas.quotas().follower.check(&image, local);
    let mut held_back = 0;
    let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
    for (key, state) in states.iter().filter(|(_, s)| s.truncated) {
        let Some(partition) = follower_partition(replicas, key, state.leader_epoch) else {
            continue;
        };
        // Kafka's shouldFollowerThrottle: while this broker fetches more than its
        // follower.replication.throttled.rate, throttled partitions out of the ISR wait.
        let in_sync = image
            .partition(&key.0, key.1)
            .is_some_and(|r| r.isr.contains(&local));
        if throttle.holds_back(&key.0, key.1, in_sync) {
            held_back += 1;
            continue;
        }
        topics.entry(&key.0).or_default().push(
            FetchPartition::default()
                .with_partition(key.1)
                .with_current_leader_epoch(state.leader_epoch)
                .with_fetch_offset(partition.log_end_offset())
                .with_last_fetched_epoch(partition.latest_epoch().unwrap_or(-1))
                .with_log_start_offset(partition.log_start_offset())
                .with_partition_max_bytes(config.fetch_max_bytes),
        );
    }
    if held_back > 0 {
        throttle.quota().held_back(held_back);
    }
    if topics.is_empty() {
        return Ok(RoundOutcome::Idle);
    }
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(local))
        .with_max_wait_ms(config.fetch_wait_max_ms)
        .with_min_bytes(config.fetch_min_bytes)
        .with_max_bytes(config.fetch_response_max_bytes)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(
            topics
                .into_iter()
                .map(|(topic, partitions)| {
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let call = conn.call(&request, FETCH_VERSION, call_timeout);
    tokio::pin!(call);
    let response = loop {
        tokio::select! {
            response = &mut call => break response?,
            // The sender lives as long as the replica manager this task holds, so the branch stays enabled.
            Ok(()) = watched.changes.changed() => {
                let now = replicas.fetch_assignments().source(watched.source_id);
                if now.as_ref() != Some(watched.source) {
                    return Ok(RoundOutcome::Interrupted);
                }
            }
        }
    };
    let mut progress = response.error_code == 0;
    for topic in response.responses {
        let name = topic.topic.0.to_string();
        for data in topic.partitions {
            let key = (name.clone(), data.partition_index);
            let Some(state) = states.get_mut(&key) else {
                continue;
            };
            let Some(partition) = follower_partition(replicas, &key, state.leader_epoch) else {
                continue;
            };
            if data.error_code != 0 {
                progress = false;
                tracing::debug!(topic = %name, partition = key.1, error = ?ResponseError::try_from_code(data.error_code), "leader refused a replica fetch");
                continue;
            }
            if data.diverging_epoch.epoch >= 0 || data.diverging_epoch.end_offset >= 0 {
                let step = truncation_step(
                    (data.diverging_epoch.epoch, data.diverging_epoch.end_offset),
                    |e| partition.end_offset_for_epoch(e),
                    partition.log_end_offset(),
                    partition.high_watermark(),
                );
                truncate(&partition, step.offset());
                state.truncated = matches!(step, TruncationStep::Final(_));
                continue;
            }
            match data.records.filter(|r| !r.is_empty()) {
                Some(records) => {
                    if throttle.throttled(&name, key.1) {
                        // Counted whether in sync or not, as Kafka does, so the total stays near the rate.
                        throttle.quota().record(records.len() as u64);
                    }
                    let now = crate::clock::now_ms();
                    match partition.append_as_follower(&records, data.high_watermark, now) {
                        Ok(_) => {
                            // The fsync that makes the next fetch offset durable here.
                            if let Err(e) = partition.flush_until(partition.log_end_offset()).await
                            {
                                if !is_storage_error(&e) {
                                    tracing::error!(topic = %name, partition = key.1, error = %error_chain(&e), "follower fsync failed");
                                }
                                state.truncated = false;
                                progress = false;
                            }
                        }
                        Err(e) => {
                            // Storage failures are logged (once per episode) where they happen.
                            if !is_storage_error(&e) {
                                tracing::error!(topic = %name, partition = key.1, error = %error_chain(&e), "follower append failed; truncating by epoch again");
                            }
                            state.truncated = false;
                            progress = false;
                        }
                    }
                }
                None => partition.set_follower_high_watermark(data.high_watermark),
            }
        }
    }
    Ok(if progress {
        RoundOutcome::Progress
    } else {
        RoundOutcome::Idle
    })
}

fn truncate(partition: &Partition, offset: i64) {
    if let Err(e) = partition.truncate_to(offset) {
        tracing::error!(topic = %partition.topic, partition = partition.index, offset, error = %error_chain(&e), "truncation failed");
    }
}

/// Cuts a divergent tail: asks the leader where this replica's latest epoch ends and truncates there,
/// again with the older epoch while the step says so. Ok(false) when the leader refused (not leader yet,
/// epoch mismatch): the next round retries.
async fn truncate_by_epoch(
    conn: &mut Connection,
    local: NodeId,
    partition: &Partition,
    leader_epoch: i32,
    call_timeout: Duration,
) -> Result<bool, ClientError> {
    for _ in 0..MAX_TRUNCATION_ROUNDS {
        let Some(epoch) = partition.latest_epoch() else {
            return Ok(true);
        };
        let request = OffsetForLeaderEpochRequest::default()
            .with_replica_id(BrokerId(local))
            .with_topics(vec![OffsetForLeaderTopic::default()
                .with_topic(TopicName(StrBytes::from_string(partition.topic.clone())))
                .with_partitions(vec![OffsetForLeaderPartition::default()
                    .with_partition(partition.index)
                    .with_current_leader_epoch(leader_epoch)
                    .with_leader_epoch(epoch)])]);
        let response = conn
            .call(&request, OFFSET_FOR_LEADER_EPOCH_VERSION, call_timeout)
            .await?;
        let Some(answer) = response
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .find(|p| p.partition == partition.index)
        else {
            return Ok(false);
        };
        if answer.error_code != 0 {
            return Ok(false);
        }
        let step = truncation_step(
            (answer.leader_epoch, answer.end_offset),
            |e| partition.end_offset_for_epoch(e),
            partition.log_end_offset(),
            partition.high_watermark(),
        );
        truncate(partition, step.offset());
        if let TruncationStep::Final(_) = step {
            return Ok(true);
        }
    }
    Ok(false)
}
