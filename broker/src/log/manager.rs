//! The data directory: one `<topic>-<partition>` directory per log, the recovery-point and log-start
//! checkpoints, and the `.kafka_cleanshutdown` marker that tells the next start whether to scan.
//!
//! The manager opens, creates and deletes logs and records their offsets; it must never hold logs (callers own
//! and lock them) and must never know about Kafka protocol types.

use std::{
    collections::HashMap,
    fmt, fs, io,
    path::{Path, PathBuf},
};

use thiserror::Error;

use super::{
    read_checkpoint, sync_dir, write_checkpoint, CheckpointError, Log, LogConfig, LogError,
    RecoveryReport,
};

pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
pub const LOG_START_CHECKPOINT: &str = "log-start-offset-checkpoint";
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
pub enum ManagerError {
    #[error("creating data directory {path}")]
    CreateDataDir { path: PathBuf, source: io::Error },
    #[error("listing data directory {path}")]
    ListDataDir { path: PathBuf, source: io::Error },
    #[error("opening log {tp}")]
    OpenLog {
        tp: TopicPartition,
        source: LogError,
    },
    #[error("log {tp} already exists")]
    LogExists { tp: TopicPartition },
    #[error("creating log {tp}")]
    CreateLog {
        tp: TopicPartition,
        source: LogError,
    },
    #[error("closing log {tp}")]
    CloseLog {
        tp: TopicPartition,
        source: LogError,
    },
    #[error("deleting log {tp}")]
    DeleteLog {
        tp: TopicPartition,
        source: LogError,
    },
    #[error("checkpointing offsets")]
    Checkpoint(#[from] CheckpointError),
    #[error("writing clean shutdown marker {path}")]
    WriteMarker { path: PathBuf, source: io::Error },
    #[error("removing clean shutdown marker {path}")]
    RemoveMarker { path: PathBuf, source: io::Error },
}

impl ManagerError {
    /// Short label for metrics.
    pub fn category(&self) -> &'static str {
        match self {
            ManagerError::LogExists { .. } => "log_exists",
            ManagerError::OpenLog { source, .. }
            | ManagerError::CreateLog { source, .. }
            | ManagerError::CloseLog { source, .. }
            | ManagerError::DeleteLog { source, .. } => source.category(),
            ManagerError::Checkpoint(e) => e.category(),
            _ => "io",
        }
    }
}

/// Owns a data directory's layout and bookkeeping files. Holds no locks and no logs; safe to share behind
/// `&` as long as callers serialize `checkpoint` calls.
#[derive(Debug)]
pub struct LogManager {
    data_dir: PathBuf,
}

type Opened = Vec<(TopicPartition, Log, RecoveryReport)>;

impl LogManager {
    /// Opens every partition log under `data_dir` (created if missing), recovering them if the previous run did
    /// not shut down cleanly, then removes the clean-shutdown marker so a later crash is detected.
    pub fn open(
        data_dir: &Path,
        config_for: impl Fn(&str) -> LogConfig,
    ) -> Result<(LogManager, Opened), ManagerError> {
        fs::create_dir_all(data_dir).map_err(|source| ManagerError::CreateDataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let marker = data_dir.join(CLEAN_SHUTDOWN_MARKER);
        let clean = marker.exists();
        let recovery_points: HashMap<_, _> =
            read_checkpoint(&data_dir.join(RECOVERY_POINT_CHECKPOINT))?
                .into_iter()
                .collect();
        let log_starts: HashMap<_, _> = read_checkpoint(&data_dir.join(LOG_START_CHECKPOINT))?
            .into_iter()
            .collect();
        let list_err = |source| ManagerError::ListDataDir {
            path: data_dir.to_path_buf(),
            source,
        };
        let mut dirs = Vec::new();
        for entry in fs::read_dir(data_dir).map_err(list_err)? {
            let entry = entry.map_err(list_err)?;
            if !entry.file_type().map_err(list_err)?.is_dir() {
                continue;
            }
            let name = entry.file_name();
            match name.to_str().and_then(TopicPartition::from_dir_name) {
                Some(tp) => dirs.push((tp, entry.path())),
                None => {
                    tracing::warn!(dir = %entry.path().display(), "ignoring directory that is not a partition log")
                }
            }
        }
        dirs.sort();
        let mut opened = Vec::with_capacity(dirs.len());
        for (tp, dir) in dirs {
            let recovery_point = recovery_points.get(&tp).copied().unwrap_or(0);
            let open = |tp: &TopicPartition| {
                let (mut log, report) =
                    Log::open(&dir, config_for(&tp.topic), recovery_point, clean)?;
                if let Some(&start) = log_starts.get(tp) {
                    log.delete_records_before(start.min(log.log_end_offset()))?;
                }
                Ok((log, report))
            };
            let (log, report) = open(&tp).map_err(|source| ManagerError::OpenLog {
                tp: tp.clone(),
                source,
            })?;
            if !clean {
                tracing::info!(topic = %tp.topic, partition = tp.partition, ?report, "recovered log");
            }
            opened.push((tp, log, report));
        }
        match fs::remove_file(&marker) {
            Ok(()) => fsync_dir(data_dir).map_err(|source| ManagerError::RemoveMarker {
                path: marker.clone(),
                source,
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(ManagerError::RemoveMarker {
                    path: marker,
                    source,
                })
            }
        }
        Ok((
            LogManager {
                data_dir: data_dir.to_path_buf(),
            },
            opened,
        ))
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn log_dir(&self, tp: &TopicPartition) -> PathBuf {
        self.data_dir.join(tp.to_string())
    }

    /// Creates a new, empty log. Fails if the partition directory already exists.
    pub fn create_log(&self, tp: &TopicPartition, config: LogConfig) -> Result<Log, ManagerError> {
        let dir = self.log_dir(tp);
        if dir.exists() {
            return Err(ManagerError::LogExists { tp: tp.clone() });
        }
        let create = || {
            let (log, _) = Log::open(&dir, config, 0, true)?;
            sync_dir(&self.data_dir)?;
            Ok(log)
        };
        create().map_err(|source| ManagerError::CreateLog {
            tp: tp.clone(),
            source,
        })
    }

    /// Deletes a log's directory. Its checkpoint lines disappear at the next `checkpoint` that omits it.
    pub fn delete_log(&self, tp: &TopicPartition, log: Log) -> Result<(), ManagerError> {
        log.delete().map_err(|source| ManagerError::DeleteLog {
            tp: tp.clone(),
            source,
        })
    }

    /// Writes both checkpoint files from `(partition, recovery_point, log_start_offset)` rows.
    pub fn checkpoint(&self, rows: &[(TopicPartition, i64, i64)]) -> Result<(), ManagerError> {
        let recovery: Vec<_> = rows.iter().map(|(tp, rp, _)| (tp.clone(), *rp)).collect();
        let starts: Vec<_> = rows
            .iter()
            .map(|(tp, _, start)| (tp.clone(), *start))
            .collect();
        write_checkpoint(&self.data_dir.join(RECOVERY_POINT_CHECKPOINT), &recovery)?;
        write_checkpoint(&self.data_dir.join(LOG_START_CHECKPOINT), &starts)?;
        Ok(())
    }

    /// Clean shutdown: closes (fsyncs) every log, checkpoints their offsets, then writes the marker. If any
    /// step fails the marker is not written, so the next start recovers.
    pub fn close_all(self, logs: Vec<(TopicPartition, Log)>) -> Result<(), ManagerError> {
        let mut rows = Vec::with_capacity(logs.len());
        for (tp, log) in logs {
            rows.push((tp.clone(), log.log_end_offset(), log.log_start_offset()));
            log.close()
                .map_err(|source| ManagerError::CloseLog { tp, source })?;
        }
        self.checkpoint(&rows)?;
        let marker = self.data_dir.join(CLEAN_SHUTDOWN_MARKER);
        let write_err = |source| ManagerError::WriteMarker {
            path: marker.clone(),
            source,
        };
        fs::File::create(&marker)
            .and_then(|f| f.sync_all())
            .map_err(write_err)?;
        fsync_dir(&self.data_dir).map_err(write_err)
    }
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}
