//! The narrow hook through which parts outside replication learn that this broker took over or gave up the
//! leadership of a partition: the group coordinator loads and unloads the groups of a `__consumer_offsets`
//! partition on it. Replication knows nothing of who listens; a listener must return at once (it is called
//! while a metadata delta is applied) and never call back into the replica manager from the callback.

/// Told about every local replica's leadership, in the order the metadata changed it. Calls may repeat
/// (a registration replays the current state), so implementations must be idempotent.
pub trait LeadershipListener: Send + Sync + std::fmt::Debug {
    /// This broker now leads `topic`-`partition` in `leader_epoch`; the partition already serves as leader.
    fn became_leader(&self, topic: &str, partition: i32, leader_epoch: i32);
    /// This broker no longer leads `topic`-`partition`: it follows, the partition has no leader, or the
    /// replica was deleted or moved away.
    fn stopped_leading(&self, topic: &str, partition: i32);
}

/// One leadership event, collected while a delta is applied and delivered after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum LeadershipEvent {
    Leader {
        topic: String,
        partition: i32,
        leader_epoch: i32,
    },
    NotLeader {
        topic: String,
        partition: i32,
    },
}

impl LeadershipEvent {
    pub(super) fn deliver(&self, listener: &dyn LeadershipListener) {
        match self {
            LeadershipEvent::Leader {
                topic,
                partition,
                leader_epoch,
            } => listener.became_leader(topic, *partition, *leader_epoch),
            LeadershipEvent::NotLeader { topic, partition } => {
                listener.stopped_leading(topic, *partition)
            }
        }
    }
}
