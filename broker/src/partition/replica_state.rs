//! What a leader knows about its followers (Kafka's `Replica` state on the leader): each follower's last
//! fetch offset and when it was last caught up, the in-sync replica set the metadata committed and the one
//! this leader has proposed, and from those the high watermark and the ISR changes to propose.
//!
//! Pure bookkeeping: no I/O, no clock (times are passed in), no locks. The partition keeps one of these per
//! leadership behind its leadership mutex.

use std::collections::{BTreeMap, BTreeSet};

use crate::cluster::image::NodeId;

/// Progress of one follower as the leader saw it in its fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerProgress {
    /// The follower's fetch offset: its log end offset after it fsynced what it had (see
    /// `replication::fetcher`), so everything below is durable on that follower.
    pub fetch_offset: i64,
    /// Last time the follower's fetch offset reached the leader's log end offset (Kafka's
    /// `lastCaughtUpTimeMs`).
    pub last_caught_up_ms: i64,
    /// When the previous fetch arrived and what the leader's log end offset was then.
    pub last_fetch_ms: i64,
    pub last_fetch_leader_end: i64,
}

/// A leader's view of its replicas for one leader epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaSet {
    pub local: NodeId,
    pub replicas: Vec<NodeId>,
    /// The ISR the metadata committed.
    pub isr: Vec<NodeId>,
    /// An ISR this leader proposed and the controller has not yet answered; the committed ISR applies
    /// until the metadata says otherwise.
    pub pending_isr: Option<Vec<NodeId>>,
    /// Followers that fetched in this leadership, by broker id; a follower that has not fetched is unknown
    /// and holds back the high watermark if it is in the ISR.
    pub followers: BTreeMap<NodeId, FollowerProgress>,
    /// Before this time fetches propose no expansion (see [`EXPANSION_RETRY_MS`]).
    pub expansion_retry_at_ms: i64,
}

/// How long after a refused proposal a follower's fetches may propose its expansion again. Fetches come
/// every few milliseconds under load; a refusal the metadata has not yet caught up with (a broker just
/// unfenced, a partition epoch about to change) must not turn into a request to the controller for each.
/// A new registration ends the wait at once.
const EXPANSION_RETRY_MS: i64 = 1_000;

/// An ISR this leader wants the controller to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrChange {
    pub new_isr: Vec<NodeId>,
    pub shrunk: Vec<NodeId>,
    pub expanded: Vec<NodeId>,
}

impl ReplicaSet {
    pub fn new(local: NodeId, replicas: Vec<NodeId>, isr: Vec<NodeId>, now_ms: i64) -> Self {
        // A new leader gives every in-sync follower a full lag window from now, as Kafka does, so it is not
        // shrunk out before it had a chance to fetch.
        let followers = isr
            .iter()
            .filter(|id| **id != local)
            .map(|id| {
                (
                    *id,
                    FollowerProgress {
                        fetch_offset: -1,
                        last_caught_up_ms: now_ms,
                        last_fetch_ms: now_ms,
                        last_fetch_leader_end: -1,
                    },
                )
            })
            .collect();
        Self {
            local,
            replicas,
            isr,
            pending_isr: None,
            followers,
            expansion_retry_at_ms: 0,
        }
    }

    /// Takes a new committed registration for the same leadership: follower progress is kept, a pending
    /// proposal is settled.
    pub fn update(&mut self, replicas: Vec<NodeId>, isr: Vec<NodeId>) {
        self.followers.retain(|id, _| replicas.contains(id));
        self.replicas = replicas;
        self.isr = isr;
        self.pending_isr = None;
        self.expansion_retry_at_ms = 0;
    }

    /// The controller refused the pending proposal: forget it, and hold off fetch-driven expansions for
    /// a moment.
    pub fn refused(&mut self, now_ms: i64) {
        self.pending_isr = None;
        self.expansion_retry_at_ms = now_ms.saturating_add(EXPANSION_RETRY_MS);
    }

    /// True when the partition has a replica besides this leader: only then does the high watermark wait
    /// for anyone, or for the leader's own fsync.
    pub fn is_replicated(&self) -> bool {
        self.replicas.iter().any(|id| *id != self.local)
    }

    /// The ISR the high watermark must respect: while a change is pending, the committed and the proposed
    /// sets together (the maximal ISR), because either may be the one the controller ends up committing.
    pub fn maximal_isr(&self) -> BTreeSet<NodeId> {
        let mut all: BTreeSet<NodeId> = self.isr.iter().copied().collect();
        if let Some(pending) = &self.pending_isr {
            all.extend(pending.iter().copied());
        }
        all
    }

    /// Records a follower fetch at `fetch_offset` when the leader's log end offset is `leader_end`, and
    /// updates its caught-up time the way Kafka's `Replica.updateFetchState` does: caught up now if it
    /// reached the current end, or caught up as of its previous fetch if it reached the end of that time.
    pub fn record_fetch(
        &mut self,
        replica: NodeId,
        fetch_offset: i64,
        leader_end: i64,
        now_ms: i64,
    ) {
        if !self.replicas.contains(&replica) || replica == self.local {
            return;
        }
        let entry = self.followers.entry(replica).or_insert(FollowerProgress {
            fetch_offset: -1,
            last_caught_up_ms: 0,
            last_fetch_ms: now_ms,
            last_fetch_leader_end: -1,
        });
        if fetch_offset >= leader_end {
            entry.last_caught_up_ms = entry.last_caught_up_ms.max(now_ms);
        } else if entry.last_fetch_leader_end >= 0 && fetch_offset >= entry.last_fetch_leader_end {
            entry.last_caught_up_ms = entry.last_caught_up_ms.max(entry.last_fetch_ms);
        }
        entry.fetch_offset = fetch_offset;
        entry.last_fetch_ms = now_ms;
        entry.last_fetch_leader_end = leader_end;
    }

    /// Members of the committed ISR this leader still counts as in sync: itself, and followers caught up
    /// within `lag_max_ms`, i.e. the ISR minus those it would shrink out now. acks=all is refused when
    /// these are fewer than `min.insync.replicas` even while the shrink cannot be committed (two of three
    /// combined nodes down leaves no controller quorum), rather than timing out.
    pub fn in_sync_now(&self, now_ms: i64, lag_max_ms: i64) -> usize {
        self.isr
            .iter()
            .filter(|id| {
                **id == self.local
                    || self
                        .followers
                        .get(id)
                        .is_some_and(|p| now_ms.saturating_sub(p.last_caught_up_ms) <= lag_max_ms)
            })
            .count()
    }

    /// The offset every member of the maximal ISR has durably stored, given the leader's own durable offset;
    /// `None` when it must not move: a member has not fetched yet, or the committed ISR is smaller than
    /// `min_insync` (strict min ISR, KIP-966: acknowledged data must be on at least that many replicas).
    pub fn committed_offset(&self, leader_durable: i64, min_insync: usize) -> Option<i64> {
        if self.isr.len() < min_insync {
            return None;
        }
        let mut committed = leader_durable;
        for member in self.maximal_isr() {
            if member == self.local {
                continue;
            }
            let progress = self.followers.get(&member)?;
            if progress.fetch_offset < 0 {
                return None;
            }
            committed = committed.min(progress.fetch_offset);
        }
        Some(committed)
    }

    /// Whether out-of-sync `replica` may join the ISR now (Kafka's `Partition.isFollowerInSync`): its
    /// durable fetch offset reached the high watermark, so it holds everything committed, and the start of
    /// this leader's epoch, so it holds what earlier leaders wrote and this one kept. Deliberately no
    /// condition on how recently it was caught up to the log end: a follower that restarted has no such
    /// time (or a stale one), and while producers keep writing it may never be at the very end at the
    /// moment someone looks, although it stays within a fetch of it.
    fn may_join(&self, replica: NodeId, high_watermark: i64, epoch_start: i64) -> bool {
        replica != self.local
            && self.replicas.contains(&replica)
            && !self.isr.contains(&replica)
            && self.followers.get(&replica).is_some_and(|p| {
                p.fetch_offset >= 0
                    && p.fetch_offset >= high_watermark
                    && p.fetch_offset >= epoch_start
            })
    }

    /// The ISR change that adds `replica` alone, if it may join now (see [`ReplicaSet::may_join`]), its
    /// broker is `eligible`, no other change is pending and no refusal is too recent. Evaluated on each
    /// of its fetches, as Kafka's `maybeExpandIsr` is, so a follower rejoins within a fetch of catching up
    /// rather than at the next periodic check, which may also find it a moment behind the high watermark
    /// each time.
    pub fn expansion(
        &self,
        replica: NodeId,
        high_watermark: i64,
        epoch_start: i64,
        now_ms: i64,
        eligible: impl Fn(NodeId) -> bool,
    ) -> Option<IsrChange> {
        if self.pending_isr.is_some()
            || now_ms < self.expansion_retry_at_ms
            || !self.may_join(replica, high_watermark, epoch_start)
            || !eligible(replica)
        {
            return None;
        }
        let new_isr = self
            .replicas
            .iter()
            .copied()
            .filter(|id| self.isr.contains(id) || *id == replica)
            .collect();
        Some(IsrChange {
            new_isr,
            shrunk: Vec::new(),
            expanded: vec![replica],
        })
    }

    /// The ISR change to propose now, if any. Shrink: in-sync followers not caught up within `lag_max_ms`.
    /// Expand: out-of-sync replicas that may join (see [`ReplicaSet::may_join`]) and whose broker
    /// `eligible` accepts (registered and unfenced).
    pub fn isr_change(
        &self,
        now_ms: i64,
        lag_max_ms: i64,
        high_watermark: i64,
        epoch_start: i64,
        eligible: impl Fn(NodeId) -> bool,
    ) -> Option<IsrChange> {
        if self.pending_isr.is_some() {
            return None;
        }
        let shrunk: Vec<NodeId> = self
            .isr
            .iter()
            .copied()
            .filter(|id| *id != self.local)
            .filter(|id| {
                self.followers
                    .get(id)
                    .is_none_or(|p| now_ms.saturating_sub(p.last_caught_up_ms) > lag_max_ms)
            })
            .collect();
        let expanded: Vec<NodeId> = self
            .replicas
            .iter()
            .copied()
            .filter(|id| self.may_join(*id, high_watermark, epoch_start))
            .filter(|id| eligible(*id))
            .collect();
        if shrunk.is_empty() && expanded.is_empty() {
            return None;
        }
        let new_isr = self
            .replicas
            .iter()
            .copied()
            .filter(|id| (self.isr.contains(id) && !shrunk.contains(id)) || expanded.contains(id))
            .collect();
        Some(IsrChange {
            new_isr,
            shrunk,
            expanded,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn followers_past_the_lag_time_no_longer_count_as_in_sync() {
        let mut set = ReplicaSet::new(1, vec![1, 2, 3], vec![1, 2, 3], 0);
        assert_eq!(
            set.in_sync_now(1_000, 5_000),
            3,
            "a new leader gives a full window"
        );
        set.record_fetch(2, 10, 10, 4_000);
        assert_eq!(set.in_sync_now(8_000, 5_000), 2, "3 never fetched");
        assert_eq!(set.in_sync_now(10_000, 5_000), 1, "2 fell behind too");
        set.isr = vec![1];
        set.record_fetch(3, 10, 10, 10_000);
        assert_eq!(set.in_sync_now(10_000, 5_000), 1, "only ISR members count");
    }

    #[test]
    fn the_high_watermark_waits_for_every_member_of_the_maximal_isr() {
        let mut set = ReplicaSet::new(1, vec![1, 2, 3], vec![1, 2], 0);
        assert_eq!(set.committed_offset(10, 1), None, "2 has not fetched");
        set.record_fetch(2, 7, 10, 5);
        assert_eq!(set.committed_offset(10, 1), Some(7));
        assert_eq!(
            set.committed_offset(5, 1),
            Some(5),
            "the leader's durable offset caps it"
        );
        set.pending_isr = Some(vec![1, 2, 3]);
        assert_eq!(
            set.committed_offset(10, 1),
            None,
            "3 is in the proposed ISR"
        );
        set.record_fetch(3, 4, 10, 6);
        assert_eq!(set.committed_offset(10, 1), Some(4));
        assert_eq!(
            set.committed_offset(10, 3),
            None,
            "committed ISR below min.insync"
        );
    }

    #[test]
    fn lagging_followers_shrink_and_caught_up_ones_expand() {
        let mut set = ReplicaSet::new(1, vec![1, 2, 3], vec![1, 2, 3], 0);
        set.record_fetch(2, 10, 10, 100);
        set.record_fetch(3, 4, 10, 100);
        assert_eq!(set.isr_change(200, 500, 4, 0, |_| true), None);
        set.record_fetch(2, 10, 10, 650);
        let change = set.isr_change(700, 500, 4, 0, |_| true).expect("3 lags");
        assert_eq!((change.new_isr, change.shrunk), (vec![1, 2], vec![3]));
        set.update(vec![1, 2, 3], vec![1, 2]);
        // 3 reaches the leader end it saw at its previous fetch: caught up as of then.
        set.record_fetch(3, 10, 12, 800);
        set.record_fetch(3, 12, 12, 900);
        assert_eq!(set.isr_change(950, 500, 12, 0, |_| false), None, "fenced");
        let change = set
            .isr_change(950, 500, 12, 0, |_| true)
            .expect("3 caught up");
        assert_eq!((change.new_isr, change.expanded), (vec![1, 2, 3], vec![3]));
        set.pending_isr = Some(vec![1, 2, 3]);
        assert_eq!(
            set.isr_change(950, 500, 12, 0, |_| true),
            None,
            "one at a time"
        );
    }

    #[test]
    fn a_restarted_follower_joins_once_it_reaches_the_high_watermark_while_writes_continue() {
        // 3 was shrunk out while it was down; the leader keeps no caught-up time for it that is recent.
        let mut set = ReplicaSet::new(1, vec![1, 2, 3], vec![1, 2], 0);
        set.record_fetch(2, 100, 100, 60_000);
        // Each of its fetches finds the leader a little further on (producers keep writing), so it is
        // never at the leader's end when it fetches, and no fetch came before to be caught up as of.
        set.record_fetch(3, 100, 103, 60_010);
        let high_watermark = 100;
        let change = set
            .isr_change(60_020, 5_000, high_watermark, 50, |_| true)
            .expect("3 holds everything committed");
        assert_eq!((change.new_isr, change.expanded), (vec![1, 2, 3], vec![3]));
        let change = set
            .expansion(3, high_watermark, 50, 60_020, |_| true)
            .expect("the same on its fetch");
        assert_eq!((change.new_isr, change.shrunk), (vec![1, 2, 3], vec![]));
    }

    #[test]
    fn a_follower_joins_only_with_everything_committed_and_this_epoch_and_a_live_broker() {
        let mut set = ReplicaSet::new(1, vec![1, 2, 3], vec![1, 2], 0);
        assert_eq!(
            set.expansion(3, 0, 0, 30, |_| true),
            None,
            "3 never fetched"
        );
        set.record_fetch(3, 99, 120, 10);
        assert_eq!(
            set.expansion(3, 100, 0, 30, |_| true),
            None,
            "below the high watermark"
        );
        set.record_fetch(3, 100, 120, 20);
        assert_eq!(
            set.expansion(3, 100, 110, 30, |_| true),
            None,
            "below the start of this leader's epoch"
        );
        assert_eq!(set.expansion(3, 100, 100, 30, |id| id != 3), None, "fenced");
        assert_eq!(
            set.expansion(2, 100, 100, 30, |_| true),
            None,
            "2 is in the ISR"
        );
        assert_eq!(
            set.expansion(1, 100, 100, 30, |_| true),
            None,
            "the leader itself"
        );
        assert!(set.expansion(3, 100, 100, 30, |_| true).is_some());
        set.pending_isr = Some(vec![1]);
        assert_eq!(
            set.expansion(3, 100, 100, 30, |_| true),
            None,
            "another change is pending"
        );
    }

    #[test]
    fn after_a_refusal_fetches_wait_a_moment_or_for_new_metadata() {
        let mut set = ReplicaSet::new(1, vec![1, 2, 3], vec![1, 2], 0);
        set.record_fetch(3, 100, 100, 10);
        set.pending_isr = Some(vec![1, 2, 3]);
        set.refused(20);
        assert_eq!(set.pending_isr, None);
        assert_eq!(set.expansion(3, 100, 0, 500, |_| true), None, "too soon");
        assert!(set
            .expansion(3, 100, 0, 20 + EXPANSION_RETRY_MS, |_| true)
            .is_some());
        set.refused(2_000);
        set.update(vec![1, 2, 3], vec![1, 2]);
        assert!(
            set.expansion(3, 100, 0, 2_001, |_| true).is_some(),
            "a new registration may have settled what the controller refused"
        );
    }
}
