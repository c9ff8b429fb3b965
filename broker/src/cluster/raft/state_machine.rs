//! The metadata quorum's state machine: the [`MetadataImage`] that committed entries of the metadata log
//! build, through the same deterministic [`apply_change`] as the single-node store, and its snapshots.
//!
//! State: the image, the last applied log id and the last membership. It is not written on every apply: a
//! restart loads the newest snapshot and openraft re-applies the committed entries after it (the log store
//! keeps the committed id). A snapshot is the JSON of `{last_applied, membership, image}`, written durably as
//! `<index:020>-<term:010>.checkpoint` (KRaft's `<end offset>-<epoch>` name: with `offset = index - 1` the
//! exclusive end offset of a snapshot is its last index) in the same directory as the log; older ones are
//! removed. The same bytes are the snapshot openraft ships to a lagging node.
//!
//! Everything here must be deterministic: every replica applies the same entries to the same image and must
//! reach the same image, so apply never reads a clock, a random number or local configuration.

use std::{
    fmt::Debug,
    fs, io,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use futures_util::{Stream, TryStreamExt};
use openraft::{
    storage::{EntryResponder, RaftStateMachine},
    type_config::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf},
    EntryPayload, OptionalSend, RaftSnapshotBuilder,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::types::{CommandOutcome, MetadataCommand, MetadataSnapshotData, Rejection, TypeConfig};
use crate::{
    cluster::{
        image::MetadataImage,
        store::{apply_change, MetadataChange, MetadataError},
    },
    durable::{write_atomically, DurableWriteError},
};

type LogId = LogIdOf<TypeConfig>;
type StoredMembership = StoredMembershipOf<TypeConfig>;
type SnapshotMeta = SnapshotMetaOf<TypeConfig>;
type Snapshot = SnapshotOf<TypeConfig, MetadataSnapshotData>;

const SNAPSHOT_SUFFIX: &str = ".checkpoint";

/// Whoever follows the committed metadata (the broker's publisher). It gets every image that an applied
/// entry produced, in log order, and the restored image on open and after a snapshot is installed (which
/// may skip entries: compute deltas against the image it got last). Called on the state machine's task,
/// before the proposer gets its outcome, so it must be quick and must not wait on the Raft.
pub trait CommittedImageListener: Send + Sync + Debug {
    fn committed(&self, index: u64, image: Arc<MetadataImage>);
}

/// The current image and the index of the last entry applied to it (`None` before any), for cheap reads.
#[derive(Debug, Clone)]
pub struct AppliedImage {
    pub applied_index: Option<u64>,
    pub image: Arc<MetadataImage>,
}

/// The step of the state machine that failed.
#[derive(Debug, thiserror::Error)]
pub enum StateMachineError {
    #[error("creating directory {path}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("listing snapshots in {path}")]
    ListSnapshots { path: PathBuf, source: io::Error },
    #[error("reading snapshot {path}")]
    ReadSnapshot { path: PathBuf, source: io::Error },
    #[error("snapshot {path} is not valid")]
    DecodeSnapshot {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("a received snapshot is not valid")]
    DecodeReceived(#[source] serde_json::Error),
    #[error("a received snapshot says it ends at {content:?}, its metadata at {meta:?}")]
    ReceivedMismatch {
        meta: Option<String>,
        content: Option<String>,
    },
    #[error("encoding a snapshot")]
    Encode(#[source] serde_json::Error),
    #[error("writing a snapshot")]
    Write(#[source] DurableWriteError),
    #[error("the snapshot's blocking task did not finish")]
    Join(#[source] tokio::task::JoinError),
}

impl From<StateMachineError> for io::Error {
    fn from(error: StateMachineError) -> Self {
        let kind = match &error {
            StateMachineError::DecodeSnapshot { .. }
            | StateMachineError::DecodeReceived(_)
            | StateMachineError::ReceivedMismatch { .. } => io::ErrorKind::InvalidData,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, error)
    }
}

/// A snapshot as stored and shipped.
#[derive(Debug, Deserialize)]
struct SnapshotContent {
    last_applied: Option<LogId>,
    membership: StoredMembership,
    image: MetadataImage,
}

/// [`SnapshotContent`] borrowed, for encoding without copying the image; the same JSON shape.
#[derive(Serialize)]
struct SnapshotContentRef<'a> {
    last_applied: &'a Option<LogId>,
    membership: &'a StoredMembership,
    image: &'a MetadataImage,
}

/// Applies one entry's changes in order, all or none. `Ok(None)` means the command had no changes.
///
/// Kafka's broker epoch rule: a registration's epoch is the log index of its entry, so it is deterministic
/// and grows with every registration. `apply_change` numbers epochs itself (old epoch + 1), so the index is
/// stamped on the registration it produced.
pub fn apply_command(
    image: &MetadataImage,
    index: u64,
    command: MetadataCommand,
) -> Result<Option<MetadataImage>, MetadataError> {
    let mut next: Option<MetadataImage> = None;
    for change in command.changes {
        let registered = match &change {
            MetadataChange::RegisterBroker(registration) => Some(registration.id),
            _ => None,
        };
        let mut after = apply_change(next.as_ref().unwrap_or(image), change)?;
        if let Some(broker) = registered.and_then(|id| after.brokers.get_mut(&id)) {
            broker.epoch = i64::try_from(index).unwrap_or(i64::MAX);
        }
        next = Some(after);
    }
    Ok(next)
}

fn snapshot_name(last: &LogId) -> String {
    format!(
        "{:020}-{:010}{SNAPSHOT_SUFFIX}",
        last.index(),
        last.committed_leader_id().term
    )
}

/// `(index, term)` of a snapshot file name, `None` for other files.
fn parse_snapshot_name(name: &str) -> Option<(u64, u64)> {
    let (index, term) = name.strip_suffix(SNAPSHOT_SUFFIX)?.split_once('-')?;
    Some((index.parse().ok()?, term.parse().ok()?))
}

/// The newest snapshot, shared by the state machine and its builders (a build runs on its own task).
#[derive(Debug)]
struct SnapshotStore {
    dir: PathBuf,
    current: Option<(SnapshotMeta, MetadataSnapshotData)>,
}

impl SnapshotStore {
    /// Makes `data` the current snapshot, durably, unless a newer one is current already; removes the rest.
    fn save(
        &mut self,
        meta: SnapshotMeta,
        data: MetadataSnapshotData,
    ) -> Result<(), StateMachineError> {
        if self
            .current
            .as_ref()
            .is_some_and(|(current, _)| current.last_log_id > meta.last_log_id)
        {
            return Ok(());
        }
        // A snapshot of nothing restores nothing: kept in memory only, so no file name stands for it.
        if let Some(last) = &meta.last_log_id {
            let name = snapshot_name(last);
            write_atomically(&self.dir.join(&name), &data).map_err(StateMachineError::Write)?;
            self.remove_others(&name);
        }
        self.current = Some((meta, data));
        Ok(())
    }

    /// Removes every snapshot file but `keep`. Best effort: a leftover is only disk space, and open picks
    /// the newest anyway.
    fn remove_others(&self, keep: &str) {
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name != keep && parse_snapshot_name(name).is_some() {
                if let Err(error) = fs::remove_file(entry.path()) {
                    tracing::warn!(file = name, %error, "could not remove an old metadata snapshot");
                }
            }
        }
    }
}

/// The metadata quorum's state machine. Owned by openraft's state machine task; the broker reads the image
/// through the [`watch::Receiver`] that [`MetadataStateMachine::open`] returns.
#[derive(Debug)]
pub struct MetadataStateMachine {
    last_applied: Option<LogId>,
    membership: StoredMembership,
    image: Arc<MetadataImage>,
    listener: Arc<dyn CommittedImageListener>,
    published: watch::Sender<AppliedImage>,
    snapshots: Arc<Mutex<SnapshotStore>>,
}

fn lock(store: &Mutex<SnapshotStore>) -> std::sync::MutexGuard<'_, SnapshotStore> {
    store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MetadataStateMachine {
    /// Opens the state machine in `dir` (the metadata log's directory): the newest snapshot if there is one,
    /// otherwise `initial`, the image before the first entry. `initial` must be the same on every voter
    /// (its cluster id in particular), or replicas that replay the log from the start diverge. The listener
    /// gets the opened image at once (index 0 when there is no snapshot).
    pub fn open(
        dir: &Path,
        initial: MetadataImage,
        listener: Arc<dyn CommittedImageListener>,
    ) -> Result<(Self, watch::Receiver<AppliedImage>), StateMachineError> {
        fs::create_dir_all(dir).map_err(|source| StateMachineError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let list = |source| StateMachineError::ListSnapshots {
            path: dir.to_path_buf(),
            source,
        };
        let mut newest: Option<((u64, u64), PathBuf)> = None;
        for entry in fs::read_dir(dir).map_err(list)? {
            let entry = entry.map_err(list)?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(".tmp") && name.contains(SNAPSHOT_SUFFIX) {
                // A snapshot write that never got renamed; the previous snapshot is still in place.
                let _ = fs::remove_file(entry.path());
            } else if let Some(key) = parse_snapshot_name(name) {
                if newest.as_ref().is_none_or(|(best, _)| key > *best) {
                    newest = Some((key, entry.path()));
                }
            }
        }

        let mut current = None;
        let (last_applied, membership, image) = match newest {
            Some((_, path)) => {
                let data = fs::read(&path).map_err(|source| StateMachineError::ReadSnapshot {
                    path: path.clone(),
                    source,
                })?;
                let content: SnapshotContent = serde_json::from_slice(&data).map_err(|source| {
                    StateMachineError::DecodeSnapshot {
                        path: path.clone(),
                        source,
                    }
                })?;
                tracing::info!(
                    path = %path.display(),
                    last_applied = ?content.last_applied,
                    "loaded the metadata snapshot"
                );
                let meta = SnapshotMeta {
                    last_log_id: content.last_applied,
                    last_membership: content.membership.clone(),
                };
                current = Some((meta, data));
                (content.last_applied, content.membership, content.image)
            }
            None => (None, StoredMembership::default(), initial),
        };

        let image = Arc::new(image);
        let applied_index = last_applied.as_ref().map(|id| id.index());
        let (published, receiver) = watch::channel(AppliedImage {
            applied_index,
            image: Arc::clone(&image),
        });
        listener.committed(applied_index.unwrap_or(0), Arc::clone(&image));
        Ok((
            Self {
                last_applied,
                membership,
                image,
                listener,
                published,
                snapshots: Arc::new(Mutex::new(SnapshotStore {
                    dir: dir.to_path_buf(),
                    current,
                })),
            },
            receiver,
        ))
    }

    /// Another handle on the current image and applied index.
    pub fn subscribe(&self) -> watch::Receiver<AppliedImage> {
        self.published.subscribe()
    }

    /// Publishes the applied state; tells the listener when `image_changed`.
    fn publish(&self, image_changed: bool) {
        let applied_index = self.last_applied.as_ref().map(|id| id.index());
        if image_changed {
            self.listener
                .committed(applied_index.unwrap_or(0), Arc::clone(&self.image));
        }
        // send_replace: the state machine keeps publishing when no broker reader is left.
        self.published.send_replace(AppliedImage {
            applied_index,
            image: Arc::clone(&self.image),
        });
    }
}

/// Builds a snapshot of the state at the time it was created, while the state machine goes on applying.
#[derive(Debug)]
pub struct MetadataSnapshotBuilder {
    last_applied: Option<LogId>,
    membership: StoredMembership,
    image: Arc<MetadataImage>,
    snapshots: Arc<Mutex<SnapshotStore>>,
}

impl RaftSnapshotBuilder<TypeConfig> for MetadataSnapshotBuilder {
    type SnapshotData = MetadataSnapshotData;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let data = serde_json::to_vec(&SnapshotContentRef {
            last_applied: &self.last_applied,
            membership: &self.membership,
            image: &self.image,
        })
        .map_err(StateMachineError::Encode)?;
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
        };
        let snapshots = Arc::clone(&self.snapshots);
        let (saved_meta, saved_data) = (meta.clone(), data.clone());
        tokio::task::spawn_blocking(move || lock(&snapshots).save(saved_meta, saved_data))
            .await
            .map_err(StateMachineError::Join)??;
        tracing::info!(last_applied = ?meta.last_log_id, bytes = data.len(), "built a metadata snapshot");
        Ok(Snapshot {
            meta,
            snapshot: data,
        })
    }
}

impl RaftStateMachine<TypeConfig> for MetadataStateMachine {
    type SnapshotData = MetadataSnapshotData;
    type SnapshotBuilder = MetadataSnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        while let Some((entry, responder)) = entries.try_next().await? {
            let index = entry.log_id.index();
            let mut image_changed = false;
            let result = match entry.payload {
                EntryPayload::Blank => Ok(()),
                EntryPayload::Normal(command) => match apply_command(&self.image, index, command) {
                    Ok(Some(next)) => {
                        self.image = Arc::new(next);
                        image_changed = true;
                        Ok(())
                    }
                    Ok(None) => Ok(()),
                    Err(error) => {
                        tracing::debug!(
                            index,
                            error = %crate::error_chain(&error),
                            "metadata command rejected; the image is unchanged"
                        );
                        Err(Rejection::from_metadata_error(&error))
                    }
                },
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), membership);
                    Ok(())
                }
            };
            self.last_applied = Some(entry.log_id);
            // The listener first: a proposer that has its outcome finds the image published.
            self.publish(image_changed);
            if let Some(responder) = responder {
                responder.send(CommandOutcome { index, result });
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        MetadataSnapshotBuilder {
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            image: Arc::clone(&self.image),
            snapshots: Arc::clone(&self.snapshots),
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Self::SnapshotData,
    ) -> Result<(), io::Error> {
        let content: SnapshotContent =
            serde_json::from_slice(&snapshot).map_err(StateMachineError::DecodeReceived)?;
        if content.last_applied != meta.last_log_id {
            return Err(StateMachineError::ReceivedMismatch {
                meta: meta.last_log_id.as_ref().map(ToString::to_string),
                content: content.last_applied.as_ref().map(ToString::to_string),
            }
            .into());
        }
        let snapshots = Arc::clone(&self.snapshots);
        let saved_meta = meta.clone();
        tokio::task::spawn_blocking(move || lock(&snapshots).save(saved_meta, snapshot))
            .await
            .map_err(StateMachineError::Join)??;
        tracing::info!(last_applied = ?meta.last_log_id, "installed a metadata snapshot");
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.image = Arc::new(content.image);
        self.publish(true);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        Ok(lock(&self.snapshots)
            .current
            .as_ref()
            .map(|(meta, data)| Snapshot {
                meta: meta.clone(),
                snapshot: data.clone(),
            }))
    }
}

#[cfg(test)]
mod tests;
