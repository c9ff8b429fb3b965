//! Kafka's offset checkpoint files (`recovery-point-offset-checkpoint`, `log-start-offset-checkpoint`,
//! `replication-offset-checkpoint`): a version line `0`, a count line, then one `topic partition offset` line per partition.
//!
//! Writes are atomic (temp file, fsync, rename, fsync directory). This module must never interpret the
//! offsets it stores.

use std::{
    fmt, fs, io,
    path::{Path, PathBuf},
};

use thiserror::Error;

const VERSION: &str = "0";

pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
pub const LOG_START_CHECKPOINT: &str = "log-start-offset-checkpoint";
/// Every partition's high watermark, as Kafka's ReplicaManager keeps it per log directory.
pub const REPLICATION_OFFSET_CHECKPOINT: &str = "replication-offset-checkpoint";
pub const CLEAN_SHUTDOWN_MARKER: &str = ".kafka_cleanshutdown";

/// A partition's identity as used for directory names and checkpoint lines.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    /// Parses `<topic>-<partition>`; topics may themselves contain `-`, so the last one splits.
    pub fn from_dir_name(name: &str) -> Option<Self> {
        let (topic, partition) = name.rsplit_once('-')?;
        let partition: i32 = partition.parse().ok()?;
        (!topic.is_empty() && partition >= 0).then(|| TopicPartition::new(topic, partition))
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

#[derive(Debug, Error)]
pub enum CheckpointError {
    #[error("reading checkpoint {path}")]
    Read { path: PathBuf, source: io::Error },
    #[error("checkpoint {path} line {line}: {reason}")]
    Parse {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("writing checkpoint {path}")]
    Write {
        path: PathBuf,
        source: crate::durable::DurableWriteError,
    },
}

impl CheckpointError {
    /// Short label for metrics.
    pub fn category(&self) -> &'static str {
        match self {
            CheckpointError::Parse { .. } => "corrupt_checkpoint",
            _ => "io",
        }
    }
}

/// Reads a checkpoint file; a missing file is an empty checkpoint (first start).
pub fn read_checkpoint(path: &Path) -> Result<Vec<(TopicPartition, i64)>, CheckpointError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CheckpointError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let parse_err = |line: usize, reason: String| CheckpointError::Parse {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut lines = text.lines();
    match lines.next() {
        Some(VERSION) => {}
        other => return Err(parse_err(1, format!("unsupported version {other:?}"))),
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| parse_err(2, "missing or invalid entry count".into()))?;
    let mut entries = Vec::with_capacity(count);
    for (i, line) in lines.enumerate() {
        let n = i + 3;
        let mut fields = line.split(' ');
        let (Some(topic), Some(partition), Some(offset), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(parse_err(n, "expected `topic partition offset`".into()));
        };
        let partition = partition
            .parse()
            .map_err(|_| parse_err(n, format!("bad partition {partition:?}")))?;
        let offset = offset
            .parse()
            .map_err(|_| parse_err(n, format!("bad offset {offset:?}")))?;
        entries.push((TopicPartition::new(topic, partition), offset));
    }
    if entries.len() != count {
        return Err(parse_err(
            2,
            format!("count says {count} entries, file has {}", entries.len()),
        ));
    }
    Ok(entries)
}

/// Replaces the checkpoint at `path` atomically.
pub fn write_checkpoint(
    path: &Path,
    entries: &[(TopicPartition, i64)],
) -> Result<(), CheckpointError> {
    let mut text = format!("{VERSION}\n{}\n", entries.len());
    for (tp, offset) in entries {
        text.push_str(&format!("{} {} {offset}\n", tp.topic, tp.partition));
    }
    crate::durable::write_atomically(path, text.as_bytes()).map_err(|source| {
        CheckpointError::Write {
            path: path.to_path_buf(),
            source,
        }
    })?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trips_in_kafka_text_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recovery-point-offset-checkpoint");
        assert!(
            read_checkpoint(&path).unwrap().is_empty(),
            "missing file reads as empty"
        );
        let entries = vec![
            (TopicPartition::new("orders", 0), 42),
            (TopicPartition::new("my-topic", 12), 7),
        ];
        write_checkpoint(&path, &entries).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "0\n2\norders 0 42\nmy-topic 12 7\n"
        );
        assert_eq!(read_checkpoint(&path).unwrap(), entries);
        assert!(!path.with_extension("tmp").exists());
    }

    #[test]
    fn malformed_checkpoints_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        for bad in [
            "1\n0\n",
            "0\n2\nt 0 1\n",
            "0\n1\nt x 1\n",
            "0\n1\nt 0\n",
            "",
        ] {
            fs::write(&path, bad).unwrap();
            assert!(
                matches!(read_checkpoint(&path), Err(CheckpointError::Parse { .. })),
                "accepted {bad:?}"
            );
        }
    }
}
