//! The openraft configuration recommended for the metadata quorum. Must not read broker configuration
//! itself: the caller passes what it has, so the defaults stay in one place.

use std::sync::Arc;

use openraft::{Config, ConfigError, SnapshotPolicy};

/// Name of the Raft cluster in openraft's logs and metrics.
pub const METADATA_CLUSTER_NAME: &str = "tributary-metadata";
/// Entries applied since the last snapshot before openraft builds a new one.
pub const SNAPSHOT_EVERY_ENTRIES: u64 = 1000;

/// Timers follow KRaft's: an election after `election_timeout_ms` (`controller.quorum.election.timeout.ms`,
/// 1000) to twice that of silence (openraft draws a new timeout per campaign, so ties resolve), a
/// heartbeat five times as often, and PreVote so that a paused or partitioned voter does not depose a
/// healthy leader when it returns.
pub fn metadata_quorum_config(election_timeout_ms: u64) -> Result<Arc<Config>, ConfigError> {
    let election_timeout_ms = election_timeout_ms.max(100);
    let config = Config {
        cluster_name: METADATA_CLUSTER_NAME.to_owned(),
        heartbeat_interval: election_timeout_ms / 5,
        election_timeout_min: election_timeout_ms,
        election_timeout_max: election_timeout_ms * 2,
        enable_pre_vote: Some(true),
        // Metadata commands are small; 300 per AppendEntries keeps a request well under a megabyte.
        max_payload_entries: 300,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(SNAPSHOT_EVERY_ENTRIES),
        // Keep a snapshot's worth of entries, so a briefly lagging follower catches up from the log.
        max_in_snapshot_log_to_keep: SNAPSHOT_EVERY_ENTRIES,
        // A follower further behind than this gets the snapshot; it must exceed the snapshot interval or a
        // snapshot would not fix the lag.
        replication_lag_threshold: 2 * SNAPSHOT_EVERY_ENTRIES,
        // Installing the snapshot (a JSON image and an fsync) can take a while on a busy disk.
        install_snapshot_timeout: 10_000,
        // A member whose disk was replaced comes back with an empty log: a broker (learner) always may, and a
        // voter of a dynamic quorum only after its old incarnation was removed (it refuses to start before).
        // Without this the leader treats the lost entries as a bug: it panics in a debug build, and in a
        // release build never replicates to that member again, so the broker could not rejoin until the
        // leader restarted. The reset never lowers what the quorum has committed.
        allow_log_reversion: Some(true),
        ..Config::default()
    };
    Ok(Arc::new(config.validate()?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_recommended_config_is_valid() {
        let config = metadata_quorum_config(1000).unwrap();
        assert_eq!(config.enable_pre_vote, Some(true));
        assert!(config.election_timeout_min > config.heartbeat_interval);
    }
}
