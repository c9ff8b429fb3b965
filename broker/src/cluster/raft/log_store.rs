//! The durable Raft log and vote of the metadata quorum: openraft's storage-v2 [`RaftLogStorage`] over one
//! directory (`<data_dir>/__cluster_metadata-0/`, KRaft's name).
//!
//! On disk: `quorum-state` holds the vote and the committed log id (JSON, replaced atomically by
//! [`write_atomically`]), and `entries.log` is an append-only file of records, each
//! `[body length: u32 LE][CRC32C of body: u32 LE][body: JSON]`. A body is an entry, or the purge marker that
//! starts a file rewritten by [`RaftLogStorage::purge`]. Every change is fsynced before it is acknowledged:
//! `save_vote` and `save_committed` return after the temp file, the rename and the directory are synced;
//! `append` calls its [`IOFlushed`] after `fdatasync`; `truncate_after` cuts the file and syncs it; `purge`
//! rewrites the file atomically. On open, an incomplete or checksum-failed last record (a write torn by a
//! crash, never acknowledged) is cut off; a bad record followed by more data is reported as
//! [`LogStoreError::Corrupt`], never dropped.
//!
//! Every entry is also kept in memory: the metadata log is small, and snapshots let openraft purge it.
//! Thread-safety: the store is driven by openraft's one log task; readers share an in-memory view behind a
//! lock that is never held across I/O. Must never interpret entries: that is the state machine's job.

use std::{
    collections::BTreeMap,
    fmt::Debug,
    fs::{self, File, OpenOptions},
    io::{self, Write},
    ops::RangeBounds,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
};

use openraft::{
    storage::{IOFlushed, RaftLogStorage},
    type_config::alias::{EntryOf, LogIdOf, VoteOf},
    LogState, OptionalSend, RaftLogReader,
};
use serde::{Deserialize, Serialize};

use super::types::TypeConfig;
use crate::durable::{self, write_atomically, DurableWriteError};

/// The directory of the metadata log under a broker's data directory, as KRaft names it.
pub const METADATA_LOG_DIR: &str = "__cluster_metadata-0";
const ENTRIES_FILE: &str = "entries.log";
const QUORUM_STATE_FILE: &str = "quorum-state";
const HEADER_LEN: usize = 8;
/// A record longer than this is a corrupt length, not an entry: metadata commands are kilobytes.
const MAX_RECORD_LEN: usize = 64 << 20;

type Entry = EntryOf<TypeConfig>;
type LogId = LogIdOf<TypeConfig>;
type Vote = VoteOf<TypeConfig>;

/// The step of the metadata log store that failed.
#[derive(Debug, thiserror::Error)]
pub enum LogStoreError {
    #[error("creating directory {path}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("reading {path}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is corrupt at byte {position}: {reason}")]
    Corrupt {
        path: PathBuf,
        position: u64,
        reason: String,
    },
    #[error("quorum state {path} is not valid")]
    DecodeQuorumState {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cutting the torn tail of {path} at byte {position}")]
    TruncateTail {
        path: PathBuf,
        position: u64,
        source: io::Error,
    },
    #[error("opening {path}")]
    Open { path: PathBuf, source: io::Error },
    #[error("appending to {path}")]
    Append { path: PathBuf, source: io::Error },
    #[error("syncing {path}")]
    Sync { path: PathBuf, source: io::Error },
    #[error("truncating {path} at byte {position}")]
    Truncate {
        path: PathBuf,
        position: u64,
        source: io::Error,
    },
    #[error("encoding a log record")]
    Encode(#[source] serde_json::Error),
    #[error("writing the quorum state")]
    SaveQuorumState(#[source] DurableWriteError),
    #[error("rewriting the log after a purge")]
    Rewrite(#[source] DurableWriteError),
    #[error("the log store's blocking task did not finish")]
    Join(#[source] tokio::task::JoinError),
}

impl From<LogStoreError> for io::Error {
    fn from(error: LogStoreError) -> Self {
        let kind = match &error {
            LogStoreError::Corrupt { .. } | LogStoreError::DecodeQuorumState { .. } => {
                io::ErrorKind::InvalidData
            }
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, error)
    }
}

/// What `quorum-state` holds. Both fields default, so a file from an older layout still loads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct QuorumState {
    #[serde(default)]
    vote: Option<Vote>,
    #[serde(default)]
    committed: Option<LogId>,
}

/// One record of `entries.log`.
#[derive(Debug, Deserialize)]
enum LogRecord {
    /// Everything up to and including this log id was purged (the first record of a rewritten file).
    Purged(LogId),
    Entry(Entry),
}

/// [`LogRecord`] borrowed, for encoding without a copy; the same JSON shape.
#[derive(Serialize)]
enum LogRecordRef<'a> {
    Purged(&'a LogId),
    Entry(&'a Entry),
}

fn encode_record(buf: &mut Vec<u8>, record: &LogRecordRef<'_>) -> Result<(), LogStoreError> {
    let body = serde_json::to_vec(record).map_err(LogStoreError::Encode)?;
    // serde_json never yields an empty body, and MAX_RECORD_LEN keeps the length in a u32.
    let len = u32::try_from(body.len())
        .ok()
        .filter(|len| (*len as usize) <= MAX_RECORD_LEN)
        .ok_or_else(|| {
            LogStoreError::Encode(serde::ser::Error::custom(format!(
                "a log record of {} bytes is over the {MAX_RECORD_LEN}-byte limit",
                body.len()
            )))
        })?;
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    buf.extend_from_slice(&body);
    Ok(())
}

/// The records of a log file up to its first bad one.
#[derive(Debug)]
struct Scan {
    /// Each record with the byte position it starts at.
    records: Vec<(u64, LogRecord)>,
    /// Bytes of good records; the file is cut here when `torn` says why.
    valid_len: u64,
    torn: Option<&'static str>,
}

/// A bad record that is not the file's tail: `(position, reason)`.
type Corruption = (u64, String);

/// Reads records until the end or the first bad one. A bad record is a torn tail (a write that a crash
/// interrupted, which was never acknowledged) when it is incomplete, when it is the last record, or when
/// everything from it on is zeros (blocks allocated but never written). Anything else is corruption.
fn scan(bytes: &[u8]) -> Result<Scan, Corruption> {
    let mut records = Vec::new();
    let mut pos = 0usize;
    let torn = loop {
        let rest = &bytes[pos..];
        if rest.is_empty() {
            break None;
        }
        let Some((header, after_header)) = rest.split_first_chunk::<HEADER_LEN>() else {
            break Some("incomplete record header");
        };
        let [l0, l1, l2, l3, c0, c1, c2, c3] = *header;
        let len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
        let crc = u32::from_le_bytes([c0, c1, c2, c3]);
        let all_zero = rest.iter().all(|b| *b == 0);
        if len == 0 || len > MAX_RECORD_LEN {
            if all_zero {
                break Some("zero-filled tail");
            }
            return Err((pos as u64, format!("impossible record length {len}")));
        }
        let Some(body) = after_header.get(..len) else {
            break Some("incomplete record");
        };
        if crc32c::crc32c(body) != crc {
            if after_header.len() == len || all_zero {
                break Some("checksum mismatch in the last record");
            }
            return Err((pos as u64, "checksum mismatch".to_owned()));
        }
        let record = serde_json::from_slice(body)
            .map_err(|e| (pos as u64, format!("checksummed record is not valid: {e}")))?;
        records.push((pos as u64, record));
        pos += HEADER_LEN + len;
    };
    Ok(Scan {
        records,
        valid_len: pos as u64,
        torn,
    })
}

/// What readers see: the entries, the purge point, the vote and the committed id, as they are durable.
#[derive(Debug, Default)]
struct LogView {
    entries: BTreeMap<u64, Entry>,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
}

/// The files and where each entry starts in `entries.log`. Only the log task uses it.
#[derive(Debug)]
struct LogWriter {
    dir: PathBuf,
    entries_path: PathBuf,
    quorum_path: PathBuf,
    file: File,
    len: u64,
    positions: BTreeMap<u64, u64>,
    quorum: QuorumState,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read_view(view: &RwLock<LogView>) -> std::sync::RwLockReadGuard<'_, LogView> {
    view.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write_view(view: &RwLock<LogView>) -> std::sync::RwLockWriteGuard<'_, LogView> {
    view.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn open_append(path: &Path) -> Result<File, LogStoreError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| LogStoreError::Open {
            path: path.to_path_buf(),
            source,
        })
}

impl LogWriter {
    fn save_quorum(&mut self, next: QuorumState) -> Result<(), LogStoreError> {
        let bytes = serde_json::to_vec(&next).map_err(LogStoreError::Encode)?;
        write_atomically(&self.quorum_path, &bytes).map_err(LogStoreError::SaveQuorumState)?;
        self.quorum = next;
        Ok(())
    }

    fn append(&mut self, view: &RwLock<LogView>, entries: Vec<Entry>) -> Result<(), LogStoreError> {
        let mut buf = Vec::new();
        let mut positions = Vec::with_capacity(entries.len());
        for entry in &entries {
            positions.push((entry.log_id.index(), self.len + buf.len() as u64));
            encode_record(&mut buf, &LogRecordRef::Entry(entry))?;
        }
        if let Err(source) = self.file.write_all(&buf) {
            // Cut a partial write off, so the file matches what the store believes it holds.
            let _ = self.file.set_len(self.len);
            return Err(LogStoreError::Append {
                path: self.entries_path.clone(),
                source,
            });
        }
        self.file
            .sync_data()
            .map_err(|source| LogStoreError::Sync {
                path: self.entries_path.clone(),
                source,
            })?;
        self.len += buf.len() as u64;
        self.positions.extend(positions);
        write_view(view)
            .entries
            .extend(entries.into_iter().map(|e| (e.log_id.index(), e)));
        Ok(())
    }

    fn truncate_after(
        &mut self,
        view: &RwLock<LogView>,
        last: Option<LogId>,
    ) -> Result<(), LogStoreError> {
        let first_removed = last.map_or(0, |id| id.index() + 1);
        let Some(&position) = self.positions.range(first_removed..).next().map(|(_, p)| p) else {
            return Ok(());
        };
        let truncate = |source| LogStoreError::Truncate {
            path: self.entries_path.clone(),
            position,
            source,
        };
        self.file.set_len(position).map_err(truncate)?;
        self.file.sync_all().map_err(truncate)?;
        self.len = position;
        self.positions.split_off(&first_removed);
        write_view(view).entries.split_off(&first_removed);
        Ok(())
    }

    /// Rewrites `entries.log` as the purge marker plus the entries after it, atomically: a crash leaves the
    /// old file or the new one.
    fn purge(&mut self, view: &RwLock<LogView>, upto: LogId) -> Result<(), LogStoreError> {
        let mut buf = Vec::new();
        let mut positions = BTreeMap::new();
        encode_record(&mut buf, &LogRecordRef::Purged(&upto))?;
        {
            let view = read_view(view);
            if view.last_purged.as_ref() >= Some(&upto) {
                return Ok(());
            }
            for (index, entry) in view.entries.range(upto.index() + 1..) {
                positions.insert(*index, buf.len() as u64);
                encode_record(&mut buf, &LogRecordRef::Entry(entry))?;
            }
        }
        write_atomically(&self.entries_path, &buf).map_err(LogStoreError::Rewrite)?;
        self.file = open_append(&self.entries_path)?;
        self.len = buf.len() as u64;
        self.positions = positions;
        let mut view = write_view(view);
        view.entries = view.entries.split_off(&(upto.index() + 1));
        view.last_purged = Some(upto);
        Ok(())
    }
}

/// The metadata quorum's Raft log and vote, persistent in one directory. See the module doc for the format.
#[derive(Debug, Clone)]
pub struct MetadataLogStore {
    writer: Arc<Mutex<LogWriter>>,
    view: Arc<RwLock<LogView>>,
}

/// A reader of the log for openraft's replication tasks; reads memory only.
#[derive(Debug, Clone)]
pub struct MetadataLogReader {
    view: Arc<RwLock<LogView>>,
}

impl MetadataLogStore {
    /// Opens (or creates) the log in `dir`, cutting a torn tail off `entries.log`. Corruption anywhere else
    /// is an error: the node must not vote or serve with a log it cannot trust.
    pub fn open(dir: &Path) -> Result<Self, LogStoreError> {
        fs::create_dir_all(dir).map_err(|source| LogStoreError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let entries_path = dir.join(ENTRIES_FILE);
        let quorum_path = dir.join(QUORUM_STATE_FILE);
        for path in [&entries_path, &quorum_path] {
            // A temp file is a replacement that never got renamed: the target still holds the truth.
            let _ = fs::remove_file(durable::temp_path(path));
        }

        let quorum = match fs::read(&quorum_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| {
                LogStoreError::DecodeQuorumState {
                    path: quorum_path.clone(),
                    source,
                }
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => QuorumState::default(),
            Err(source) => {
                return Err(LogStoreError::Read {
                    path: quorum_path,
                    source,
                })
            }
        };

        let existed = entries_path.exists();
        let bytes = match fs::read(&entries_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(LogStoreError::Read {
                    path: entries_path,
                    source,
                })
            }
        };
        let corrupt = |position, reason| LogStoreError::Corrupt {
            path: entries_path.clone(),
            position,
            reason,
        };
        let scan = scan(&bytes).map_err(|(position, reason)| corrupt(position, reason))?;
        let file = open_append(&entries_path)?;
        if let Some(reason) = scan.torn {
            tracing::warn!(
                path = %entries_path.display(),
                position = scan.valid_len,
                dropped_bytes = bytes.len() as u64 - scan.valid_len,
                reason,
                "cutting the torn tail off the metadata log"
            );
            let cut = |source| LogStoreError::TruncateTail {
                path: entries_path.clone(),
                position: scan.valid_len,
                source,
            };
            file.set_len(scan.valid_len).map_err(cut)?;
            file.sync_all().map_err(cut)?;
        }
        if !existed {
            durable::sync_dir(dir).map_err(|source| LogStoreError::Sync {
                path: dir.to_path_buf(),
                source,
            })?;
        }

        let mut view = LogView {
            vote: quorum.vote,
            committed: quorum.committed,
            ..LogView::default()
        };
        let mut positions = BTreeMap::new();
        for (position, record) in scan.records {
            match record {
                LogRecord::Purged(upto) => {
                    view.entries = view.entries.split_off(&(upto.index() + 1));
                    positions = positions.split_off(&(upto.index() + 1));
                    view.last_purged = Some(upto);
                }
                LogRecord::Entry(entry) => {
                    let index = entry.log_id.index();
                    let previous = view
                        .entries
                        .keys()
                        .next_back()
                        .copied()
                        .or(view.last_purged.as_ref().map(|id| id.index()));
                    if previous.is_some_and(|p| p.checked_add(1) != Some(index)) {
                        return Err(corrupt(
                            position,
                            format!("entry {index} does not follow entry {previous:?}"),
                        ));
                    }
                    positions.insert(index, position);
                    view.entries.insert(index, entry);
                }
            }
        }
        tracing::debug!(
            path = %dir.display(),
            entries = view.entries.len(),
            last_purged = ?view.last_purged,
            "opened the metadata log"
        );
        Ok(Self {
            writer: Arc::new(Mutex::new(LogWriter {
                dir: dir.to_path_buf(),
                entries_path,
                quorum_path,
                file,
                len: scan.valid_len,
                positions,
                quorum,
            })),
            view: Arc::new(RwLock::new(view)),
        })
    }

    /// The directory the log lives in.
    pub fn dir(&self) -> PathBuf {
        lock(&self.writer).dir.clone()
    }

    /// Runs `op` on the writer off the async runtime: every write ends in an fsync.
    async fn blocking<T, F>(&self, op: F) -> Result<T, LogStoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut LogWriter, &RwLock<LogView>) -> Result<T, LogStoreError> + Send + 'static,
    {
        let writer = Arc::clone(&self.writer);
        let view = Arc::clone(&self.view);
        tokio::task::spawn_blocking(move || op(&mut lock(&writer), &view))
            .await
            .map_err(LogStoreError::Join)?
    }
}

impl RaftLogReader<TypeConfig> for MetadataLogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        Ok(read_view(&self.view)
            .entries
            .range(range)
            .map(|(_, entry)| entry.clone())
            .collect())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(read_view(&self.view).vote)
    }
}

impl RaftLogReader<TypeConfig> for MetadataLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        self.get_log_reader().await.try_get_log_entries(range).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(read_view(&self.view).vote)
    }
}

impl RaftLogStorage<TypeConfig> for MetadataLogStore {
    type LogReader = MetadataLogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let view = read_view(&self.view);
        let last_log_id = view
            .entries
            .values()
            .next_back()
            .map(|entry| entry.log_id)
            .or_else(|| view.last_purged);
        Ok(LogState {
            last_purged_log_id: view.last_purged,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        MetadataLogReader {
            view: Arc::clone(&self.view),
        }
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let vote = *vote;
        self.blocking(move |writer, view| {
            let next = QuorumState {
                vote: Some(vote),
                ..writer.quorum.clone()
            };
            writer.save_quorum(next)?;
            write_view(view).vote = Some(vote);
            Ok(())
        })
        .await?;
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        if read_view(&self.view).committed == committed {
            return Ok(());
        }
        self.blocking(move |writer, view| {
            let next = QuorumState {
                committed,
                ..writer.quorum.clone()
            };
            writer.save_quorum(next)?;
            write_view(view).committed = committed;
            Ok(())
        })
        .await?;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(read_view(&self.view).committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        match self
            .blocking(move |writer, view| writer.append(view, entries))
            .await
        {
            Ok(()) => {
                // Only now, after the fsync: openraft counts this node's vote for the entries from here.
                callback.io_completed(Ok(()));
                Ok(())
            }
            Err(error) => {
                let error = io::Error::from(error);
                callback.io_completed(Err(io::Error::new(error.kind(), error.to_string())));
                Err(error)
            }
        }
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        self.blocking(move |writer, view| writer.truncate_after(view, last_log_id))
            .await?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        self.blocking(move |writer, view| writer.purge(view, log_id))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
