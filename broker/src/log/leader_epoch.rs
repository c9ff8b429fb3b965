//! The leader epoch cache of one partition (Kafka's `LeaderEpochFileCache`): which leader epoch started at
//! which offset, kept in the partition directory as `leader-epoch-checkpoint` in Kafka's text format
//! (`0`, the entry count, then one `epoch start_offset` line per entry).
//!
//! It answers OffsetForLeaderEpoch (the end offset of an epoch), which is how a follower finds where its log
//! diverged from the leader's after a leader change (KIP-101, KIP-279). It is storage only: it never decides
//! who leads. It must stay consistent with the log, so every log truncation truncates it too (the suffix on
//! `truncate_to`, the prefix when the log start offset moves). Not synchronized: the partition keeps it under
//! the same lock as the log.

use std::{
    fs,
    path::{Path, PathBuf},
};

use crate::durable::{write_atomically, DurableWriteError};

/// The checkpoint file's name inside a partition directory, as Kafka names it.
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";
/// Kafka's "no epoch" and "no offset" answers of OffsetForLeaderEpoch.
pub const UNDEFINED_EPOCH: i32 = -1;
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

const FORMAT_VERSION: &str = "0";

#[derive(Debug, thiserror::Error)]
pub enum LeaderEpochError {
    #[error("writing the leader epoch checkpoint")]
    Write(#[source] DurableWriteError),
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} line {line}: {reason}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// One epoch and the first offset written in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

/// Epochs in increasing order of both epoch and start offset.
#[derive(Debug)]
pub struct LeaderEpochCache {
    path: PathBuf,
    entries: Vec<EpochEntry>,
    /// Whether the checkpoint file exists. Until it does, the cache describes a log whose epochs can all be
    /// read back from its batches (a missing file is rebuilt from them), so its first entry need not be
    /// written: that saves two fsyncs per new partition, which made creating thousands of partitions slow.
    on_disk: bool,
}

impl LeaderEpochCache {
    /// Reads the checkpoint in `dir`; `Ok(None)` when there is none (a log from before epochs were kept, or
    /// a lost file), so the caller rebuilds it from the batches' epochs.
    pub fn load(dir: &Path) -> Result<Option<Self>, LeaderEpochError> {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(LeaderEpochError::Read { path, source }),
        };
        let corrupt = |line: usize, reason: String| LeaderEpochError::Corrupt {
            path: path.clone(),
            line,
            reason,
        };
        let mut lines = text.lines();
        if lines.next().map(str::trim) != Some(FORMAT_VERSION) {
            return Err(corrupt(1, "unknown format version".to_owned()));
        }
        let count: usize = lines
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| corrupt(2, "no entry count".to_owned()))?;
        let mut entries = Vec::with_capacity(count.min(1024));
        for (i, line) in lines.enumerate() {
            let mut fields = line.split_whitespace();
            let (Some(epoch), Some(offset), None) = (fields.next(), fields.next(), fields.next())
            else {
                return Err(corrupt(i + 3, "expected `epoch start_offset`".to_owned()));
            };
            let (Ok(epoch), Ok(start_offset)) = (epoch.parse::<i32>(), offset.parse::<i64>())
            else {
                return Err(corrupt(i + 3, "not an epoch and an offset".to_owned()));
            };
            if entries.last().is_some_and(|last: &EpochEntry| {
                last.epoch >= epoch || last.start_offset > start_offset
            }) {
                return Err(corrupt(i + 3, "entries are not increasing".to_owned()));
            }
            entries.push(EpochEntry {
                epoch,
                start_offset,
            });
        }
        if entries.len() != count {
            return Err(corrupt(
                2,
                format!("says {count} entries, has {}", entries.len()),
            ));
        }
        Ok(Some(Self {
            path,
            entries,
            on_disk: true,
        }))
    }

    /// An empty cache for `dir`, written to disk on its first change.
    pub fn empty(dir: &Path) -> Self {
        Self {
            path: dir.join(LEADER_EPOCH_CHECKPOINT),
            entries: Vec::new(),
            on_disk: false,
        }
    }

    /// Rebuilds the cache from the epochs stamped on the log's batches, `(partitionLeaderEpoch, base_offset)`
    /// in log order, and writes it.
    pub fn rebuild(
        dir: &Path,
        batches: impl IntoIterator<Item = (i32, i64)>,
    ) -> Result<Self, LeaderEpochError> {
        let mut cache = Self::empty(dir);
        for (epoch, base_offset) in batches {
            cache.push(epoch, base_offset);
        }
        if !cache.entries.is_empty() {
            cache.persist()?;
        }
        Ok(cache)
    }

    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// The newest epoch, if any.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Adds an entry in memory when `epoch` is newer than every one known; returns whether it did.
    fn push(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 {
            return false;
        }
        match self.entries.last() {
            Some(last) if last.epoch >= epoch => false,
            Some(last) if last.start_offset > start_offset => {
                // An epoch cannot start before an older one; the log would be inconsistent. Kafka logs and
                // ignores such an assignment; so do we.
                tracing::warn!(path = %self.path.display(), epoch, start_offset, last_epoch = last.epoch,
                    last_start = last.start_offset, "ignoring a leader epoch that starts before the previous one");
                false
            }
            _ => {
                self.entries.push(EpochEntry {
                    epoch,
                    start_offset,
                });
                true
            }
        }
    }

    /// Records that `epoch` starts at `start_offset` (a new leader's log end offset, or the first batch of a
    /// newer epoch a follower appends), durably. Older or equal epochs change nothing.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<(), LeaderEpochError> {
        if self.push(epoch, start_offset) {
            // The first epoch of a log that starts at 0, with no file yet: the batches it stamps say the
            // same thing after a crash, so writing it now would only cost fsyncs.
            let derivable = !self.on_disk && self.entries.len() == 1 && start_offset == 0;
            if !derivable {
                self.persist()?;
            }
        }
        Ok(())
    }

    /// Forgets every epoch that starts at or after `end_offset` (the log was truncated to it).
    pub fn truncate_from_end(&mut self, end_offset: i64) -> Result<(), LeaderEpochError> {
        let keep = self
            .entries
            .iter()
            .take_while(|e| e.start_offset < end_offset)
            .count();
        if keep < self.entries.len() {
            self.entries.truncate(keep);
            self.persist()?;
        }
        Ok(())
    }

    /// The log now starts at `start_offset`: epochs wholly before it go, and the epoch containing it starts
    /// there, as Kafka's `truncateFromStart` does.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> Result<(), LeaderEpochError> {
        let below = self
            .entries
            .iter()
            .take_while(|e| e.start_offset < start_offset)
            .count();
        if below == 0 {
            return Ok(());
        }
        let containing = self.entries[below - 1];
        let starts_there = self
            .entries
            .get(below)
            .is_some_and(|e| e.start_offset == start_offset);
        self.entries.drain(..below);
        if !starts_there {
            self.entries.insert(
                0,
                EpochEntry {
                    epoch: containing.epoch,
                    start_offset,
                },
            );
        }
        self.persist()
    }

    /// OffsetForLeaderEpoch: `(epoch, end_offset)` for `requested`, with `log_end` the log end offset.
    /// The answer is the largest epoch <= `requested` and the offset where the next epoch starts (the log
    /// end offset for the latest epoch). A requested epoch newer than any known, or none known at all, is
    /// UNDEFINED; one older than the oldest known answers `requested` and the oldest epoch's start, so the
    /// follower truncates everything it wrote before this log's first epoch (Kafka's rules).
    pub fn end_offset_for(&self, requested: i32, log_end: i64) -> (i32, i64) {
        if requested == UNDEFINED_EPOCH {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end);
        }
        let Some(higher) = self.entries.iter().find(|e| e.epoch > requested) else {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        };
        match self.entries.iter().rev().find(|e| e.epoch <= requested) {
            Some(floor) => (floor.epoch, higher.start_offset),
            None => (requested, higher.start_offset),
        }
    }

    fn persist(&mut self) -> Result<(), LeaderEpochError> {
        let mut text = format!("{FORMAT_VERSION}\n{}\n", self.entries.len());
        for e in &self.entries {
            text.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
        }
        write_atomically(&self.path, text.as_bytes()).map_err(LeaderEpochError::Write)?;
        self.on_disk = true;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> (tempfile::TempDir, LeaderEpochCache) {
        let dir = tempfile::tempdir().unwrap();
        let cache = LeaderEpochCache::rebuild(dir.path(), entries.iter().copied()).unwrap();
        (dir, cache)
    }

    #[test]
    fn end_offsets_follow_kafkas_rules() {
        let (_dir, cache) = cache(&[(1, 0), (3, 10), (5, 20)]);
        assert_eq!(
            cache.end_offset_for(5, 30),
            (5, 30),
            "latest epoch ends at LEO"
        );
        assert_eq!(cache.end_offset_for(3, 30), (3, 20));
        assert_eq!(
            cache.end_offset_for(4, 30),
            (3, 20),
            "largest epoch <= 4 is 3"
        );
        assert_eq!(
            cache.end_offset_for(0, 30),
            (0, 0),
            "older than all: first start"
        );
        assert_eq!(
            cache.end_offset_for(6, 30),
            (-1, -1),
            "newer than all: undefined"
        );
        assert_eq!(cache.end_offset_for(-1, 30), (-1, -1));
        let (_dir, empty) = self::cache(&[]);
        assert_eq!(empty.end_offset_for(0, 5), (-1, -1));
    }

    #[test]
    fn the_checkpoint_survives_reopen_and_follows_truncation() {
        let (dir, mut cache) = cache(&[(0, 0), (0, 5), (2, 7)]);
        assert_eq!(cache.entries().len(), 2, "one entry per epoch");
        cache.assign(4, 12).unwrap();
        cache.assign(3, 15).unwrap();
        let reopened = LeaderEpochCache::load(dir.path()).unwrap().unwrap();
        assert_eq!(reopened.entries(), cache.entries());
        cache.truncate_from_end(12).unwrap();
        assert_eq!(cache.latest_epoch(), Some(2));
        cache.truncate_from_start(3).unwrap();
        assert_eq!(
            cache.entries(),
            [
                EpochEntry {
                    epoch: 0,
                    start_offset: 3
                },
                EpochEntry {
                    epoch: 2,
                    start_offset: 7
                }
            ]
        );
        let reopened = LeaderEpochCache::load(dir.path()).unwrap().unwrap();
        assert_eq!(reopened.entries(), cache.entries());
        let missing = tempfile::tempdir().unwrap();
        assert!(LeaderEpochCache::load(missing.path()).unwrap().is_none());
    }

    #[test]
    fn a_corrupt_checkpoint_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(LEADER_EPOCH_CHECKPOINT), "0\n2\n1 0\n").unwrap();
        assert!(matches!(
            LeaderEpochCache::load(dir.path()),
            Err(LeaderEpochError::Corrupt { .. })
        ));
    }
}
