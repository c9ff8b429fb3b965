//! Where a follower truncates its log after a leader change, from the leader's answer to "where does my
//! latest epoch end?" (OffsetForLeaderEpoch, or a Fetch response's `diverging_epoch`): KIP-101 with the
//! KIP-279 refinement that survives two fast leader changes. Pure: the caller asks the leader, truncates
//! and asks again until the step is final.

use crate::log::{UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET};

/// One step of the truncation dialogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TruncationStep {
    /// Truncate to this offset; the logs agree below it.
    Final(i64),
    /// Truncate to this offset and ask the leader again with the (now older) latest epoch: the leader
    /// answered with an epoch this follower does not have.
    Again(i64),
}

impl TruncationStep {
    pub fn offset(self) -> i64 {
        match self {
            TruncationStep::Final(offset) | TruncationStep::Again(offset) => offset,
        }
    }
}

/// Kafka's `getOffsetTruncationState`. `leader` is the leader's (epoch, end offset) for the follower's
/// latest epoch; `own_end_for_epoch` answers the same question on the follower's own epoch cache.
pub fn truncation_step(
    leader: (i32, i64),
    own_end_for_epoch: impl Fn(i32) -> (i32, i64),
    own_log_end: i64,
    own_high_watermark: i64,
) -> TruncationStep {
    let (leader_epoch, leader_end) = leader;
    if leader_end == UNDEFINED_EPOCH_OFFSET {
        // The leader knows no epoch at or below ours: all we can trust is what was committed.
        return TruncationStep::Final(own_high_watermark.min(own_log_end));
    }
    if leader_epoch == UNDEFINED_EPOCH {
        return TruncationStep::Final(leader_end.min(own_log_end));
    }
    let (own_epoch, own_end) = own_end_for_epoch(leader_epoch);
    if own_epoch == UNDEFINED_EPOCH {
        // No epoch of ours is that old: the leader's answer is below everything we could compare.
        return TruncationStep::Final(leader_end.min(own_log_end));
    }
    if own_epoch != leader_epoch {
        // We never had the leader's epoch: cut to where our older epoch ends and ask again (KIP-279).
        return TruncationStep::Again(own_end.min(own_log_end));
    }
    TruncationStep::Final(own_end.min(leader_end).min(own_log_end))
}
