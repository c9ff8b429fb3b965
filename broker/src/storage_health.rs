//! The broker's view of its data directory as a place to write: fsync latency, writes that failed, and
//! whether the directory is out of space.
//!
//! Partition data never takes the last of the disk: a write that would leave less than a reserve free
//! ([`reserve_for`]: 5 % of the file system, at most 64 MiB) is refused as if the disk were full. The reserve
//! is for what must keep working on a full disk: the metadata log (a Raft voter that cannot append stops
//! voting), checkpoints, the clean-shutdown marker, group metadata. Redpanda keeps such a reserve too
//! (`storage_min_free_bytes`); Kafka keeps none and takes the whole log directory offline instead.
//!
//! A full disk must not look like a slow broker. Every partition write that fails is counted here; the
//! first failure of a partition is logged with its cause, later ones only counted until the partition writes
//! again (a producer retrying at full speed would otherwise flood the log). A failure for lack of space
//! (ENOSPC, or EDQUOT under a quota) marks the directory full: a cluster member then tells the controller in
//! its next heartbeat (sent at once), which takes this broker's replicas out of the ISRs and moves their
//! leadership elsewhere. While full, a probe tries every second to write a few MiB in the directory; once it
//! can, the directory is marked writable again and the broker's replicas rejoin the ISRs by catching up.

use std::{
    collections::BTreeSet,
    error::Error as StdError,
    fs::File,
    io::{self, Write},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
};
use tokio::sync::watch;

use crate::{error_chain, metrics::FSYNC_BUCKETS};

/// How much the probe must be able to write before the directory counts as writable again: room for a
/// couple of maximum-size batches (`message.max.bytes` is 1 MiB by default), so a broker that rejoins is
/// not full again with its first write.
const PROBE_BYTES: usize = 2 * 1024 * 1024;
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
const PROBE_FILE: &str = ".storage-probe";
/// How long a measurement of the free space stands in for a new one, minus what was written since.
const FREE_SPACE_RECHECK_MS: u64 = 100;
const MAX_RESERVE_BYTES: u64 = 64 * 1024 * 1024;

/// The bytes partition data leaves free on a file system of `total` bytes.
pub fn reserve_for(total: u64) -> u64 {
    (total / 20).min(MAX_RESERVE_BYTES)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FailureLabels {
    reason: FailureReason,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, prometheus_client::encoding::EncodeLabelValue,
)]
#[allow(non_camel_case_types)]
enum FailureReason {
    no_space,
    io,
}

#[derive(Debug)]
pub struct StorageHealth {
    dir: PathBuf,
    fsync_duration: Histogram,
    write_failures: Family<FailureLabels, Counter>,
    full_gauge: Gauge,
    full: watch::Sender<bool>,
    /// Partitions whose last write failed (already logged); `any_failing` lets successful writes skip the lock.
    failing: Mutex<BTreeSet<(String, i32)>>,
    any_failing: AtomicBool,
    /// Bytes partitions may still write before the free space is measured again (free minus reserve at the
    /// last measurement, minus what was written since), and when that was, in ms since `created`.
    budget: AtomicI64,
    measured_at_ms: AtomicU64,
    created: Instant,
}

/// The I/O errors in `error`'s cause chain, outermost first.
fn io_causes<'a>(error: &'a (dyn StdError + 'static)) -> impl Iterator<Item = &'a io::Error> {
    std::iter::successors(Some(error), |e: &&'a (dyn StdError + 'static)| {
        (*e).source()
    })
    .filter_map(|e| e.downcast_ref::<io::Error>())
}

/// True when `error` or one of its causes is an I/O error for lack of space (or of quota).
pub fn is_out_of_space(error: &(dyn StdError + 'static)) -> bool {
    io_causes(error).any(|io| {
        matches!(
            io.kind(),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
        )
    })
}

/// True when `error` or one of its causes is an I/O error: a write the disk refused, rather than a request
/// the broker refused (bad batch, fenced producer, ...), which is not the directory's health.
pub fn is_storage_error(error: &(dyn StdError + 'static)) -> bool {
    io_causes(error).next().is_some()
}

impl StorageHealth {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            fsync_duration: Histogram::new(FSYNC_BUCKETS.iter().copied()),
            write_failures: Family::default(),
            full_gauge: Gauge::default(),
            full: watch::Sender::new(false),
            failing: Mutex::new(BTreeSet::new()),
            any_failing: AtomicBool::new(false),
            budget: AtomicI64::new(0),
            measured_at_ms: AtomicU64::new(u64::MAX),
            created: Instant::now(),
        }
    }

    /// Fails with a StorageFull error when writing `incoming` bytes of partition data would eat into the
    /// reserve. Usually a subtraction: the file system is asked again only every 100 ms or when the budget
    /// runs out. A file system that cannot be asked does not stop writes.
    pub fn check_room(&self, incoming: usize) -> io::Result<()> {
        let incoming = i64::try_from(incoming).unwrap_or(i64::MAX);
        let now = u64::try_from(self.created.elapsed().as_millis()).unwrap_or(u64::MAX);
        let measured = self.measured_at_ms.load(Ordering::Acquire);
        if measured != u64::MAX
            && now.saturating_sub(measured) < FREE_SPACE_RECHECK_MS
            && self.budget.fetch_sub(incoming, Ordering::AcqRel) >= incoming
        {
            return Ok(());
        }
        let Ok((available, total)) = free_space(&self.dir) else {
            return Ok(());
        };
        let reserve = reserve_for(total);
        let budget = i64::try_from(available.saturating_sub(reserve)).unwrap_or(i64::MAX);
        self.budget.store(budget - incoming, Ordering::Release);
        self.measured_at_ms.store(now, Ordering::Release);
        if budget < incoming {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "{available} bytes free in {}, {reserve} of them kept in reserve for the metadata log \
                     and checkpoints; a write of {incoming} bytes does not fit",
                    self.dir.display()
                ),
            ));
        }
        Ok(())
    }

    pub fn observe_fsync(&self, seconds: f64) {
        self.fsync_duration.observe(seconds);
    }

    pub fn is_full(&self) -> bool {
        *self.full.borrow()
    }

    /// Turns true when the directory runs out of space and false when the probe can write again.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.full.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<(String, i32)>> {
        self.failing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A write to `topic`-`partition` failed with `error`. Errors that are not I/O (invalid batches and the
    /// like) are the request's fault and ignored here.
    pub fn write_failed(&self, topic: &str, partition: i32, error: &(dyn StdError + 'static)) {
        if !is_storage_error(error) {
            return;
        }
        let no_space = is_out_of_space(error);
        let reason = if no_space {
            FailureReason::no_space
        } else {
            FailureReason::io
        };
        self.write_failures
            .get_or_create(&FailureLabels { reason })
            .inc();
        let first = self.lock().insert((topic.to_owned(), partition));
        self.any_failing.store(true, Ordering::Release);
        if first {
            tracing::error!(
                topic,
                partition,
                dir = %self.dir.display(),
                out_of_space = no_space,
                error = %error_chain(error),
                "write to partition failed; answering KAFKA_STORAGE_ERROR until it succeeds again"
            );
        }
        if no_space && !self.full.send_replace(true) {
            self.full_gauge.set(1);
            tracing::error!(dir = %self.dir.display(), "data directory is out of space");
        }
    }

    /// A write to `topic`-`partition` succeeded: if it had been failing, that is over.
    pub fn write_succeeded(&self, topic: &str, partition: i32) {
        if !self.any_failing.load(Ordering::Acquire) {
            return;
        }
        let mut failing = self.lock();
        if failing.remove(&(topic.to_owned(), partition)) {
            tracing::info!(topic, partition, "partition writes again");
        }
        if failing.is_empty() {
            self.any_failing.store(false, Ordering::Release);
        }
    }

    /// While the directory is marked full, tries every second to write [`PROBE_BYTES`] in it, and marks it
    /// writable once that works. Runs until `shutdown` turns true.
    pub async fn run_probe(self: std::sync::Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut full = self.subscribe();
        loop {
            while !*full.borrow_and_update() {
                tokio::select! {
                    changed = full.changed() => if changed.is_err() { return },
                    _ = shutdown.changed() => return,
                }
            }
            tokio::select! {
                () = tokio::time::sleep(PROBE_INTERVAL) => {}
                _ = shutdown.changed() => return,
            }
            let dir = self.dir.clone();
            let probe = tokio::task::spawn_blocking(move || probe_write(&dir))
                .await
                .unwrap_or_else(|join| Err(io::Error::other(join)));
            match probe {
                Ok(()) => {
                    self.full_gauge.set(0);
                    self.full.send_replace(false);
                    tracing::info!(dir = %self.dir.display(), probe_bytes = PROBE_BYTES, "data directory has space again");
                }
                Err(e) if is_out_of_space(&e) => {}
                Err(e) => {
                    tracing::warn!(dir = %self.dir.display(), error = %e, "storage probe failed");
                }
            }
        }
    }

    /// Registers the storage metrics in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register_with_unit(
            "log_flush_duration",
            "Duration of partition log fsyncs made by the flush policy (group commit and interval flushes)",
            Unit::Seconds,
            self.fsync_duration.clone(),
        );
        registry.register(
            "storage_write_failures",
            "Partition writes (appends, fsyncs) the data directory refused, by reason (no_space: ENOSPC or \
             EDQUOT; io: any other I/O error); each answered KAFKA_STORAGE_ERROR",
            self.write_failures.clone(),
        );
        registry.register(
            "storage_full",
            "1 while the data directory is out of space (set by a write that failed for lack of space, \
             cleared when a probe can write again), else 0",
            self.full_gauge.clone(),
        );
    }
}

/// (available bytes, total bytes) of the file system holding `dir`.
// The field types differ between libc targets (u64 here, u32 on some).
#[allow(clippy::useless_conversion)]
pub(crate) fn free_space(dir: &Path) -> io::Result<(u64, u64)> {
    let stats = nix::sys::statvfs::statvfs(dir).map_err(io::Error::from)?;
    let fragment = u64::from(stats.fragment_size());
    let (available, blocks) = (
        u64::from(stats.blocks_available()),
        u64::from(stats.blocks()),
    );
    Ok((available * fragment, blocks * fragment))
}

/// Fails unless [`PROBE_BYTES`] fit above the reserve and can really be written (and removed) in `dir`: the
/// free space alone does not show a quota.
fn probe_write(dir: &Path) -> io::Result<()> {
    let (available, total) = free_space(dir)?;
    let needed = reserve_for(total) + PROBE_BYTES as u64;
    if available < needed {
        return Err(io::Error::new(
            io::ErrorKind::StorageFull,
            format!("{available} bytes free, {needed} needed"),
        ));
    }
    let path = dir.join(PROBE_FILE);
    let result = (|| {
        let mut file = File::create(&path)?;
        let chunk = vec![0u8; 64 * 1024];
        for _ in 0..PROBE_BYTES / chunk.len() {
            file.write_all(&chunk)?;
        }
        // Some file systems only find out at writeback that the blocks are not there.
        file.sync_data()
    })();
    let removed = std::fs::remove_file(&path);
    result?;
    removed
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("writing segment")]
    struct Wrapped(#[source] io::Error);

    #[test]
    fn out_of_space_is_found_in_the_cause_chain() {
        let enospc = Wrapped(io::Error::from_raw_os_error(nix::libc::ENOSPC));
        assert!(is_out_of_space(&enospc));
        let edquot = Wrapped(io::Error::from_raw_os_error(nix::libc::EDQUOT));
        assert!(is_out_of_space(&edquot));
        let eio = Wrapped(io::Error::from_raw_os_error(nix::libc::EIO));
        assert!(!is_out_of_space(&eio));
        assert!(is_storage_error(&eio));
    }

    #[test]
    fn a_full_disk_marks_the_directory_full_until_the_probe_writes() {
        let dir = tempfile::tempdir().unwrap();
        let health = StorageHealth::new(dir.path());
        let full = Wrapped(io::Error::from_raw_os_error(nix::libc::ENOSPC));
        health.write_failed("t", 0, &full);
        health.write_failed("t", 0, &full);
        assert!(health.is_full());
        assert_eq!(
            health
                .write_failures
                .get_or_create(&FailureLabels {
                    reason: FailureReason::no_space
                })
                .get(),
            2
        );
        assert_eq!(health.full_gauge.get(), 1);
        health.write_succeeded("t", 0);
        assert!(
            health.is_full(),
            "one small write fitting does not clear it; the probe does"
        );
        assert!(!health.any_failing.load(Ordering::Acquire));
        probe_write(dir.path()).unwrap();
        assert!(!dir.path().join(PROBE_FILE).exists());
    }

    #[test]
    fn the_reserve_is_five_percent_and_at_most_64_mib() {
        assert_eq!(reserve_for(40 * 1024 * 1024), 2 * 1024 * 1024);
        assert_eq!(reserve_for(1 << 40), MAX_RESERVE_BYTES);
    }

    #[test]
    fn writes_that_would_eat_into_the_reserve_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let health = StorageHealth::new(dir.path());
        let (available, total) = free_space(dir.path()).unwrap();
        let room = usize::try_from(available - reserve_for(total)).unwrap();
        health.check_room(1024).unwrap();
        let refused = health.check_room(room + 1).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::StorageFull);
        assert!(refused.to_string().contains("reserve"), "{refused}");
        health.check_room(1024).unwrap();
    }

    #[test]
    fn request_errors_are_not_storage_failures() {
        let dir = tempfile::tempdir().unwrap();
        let health = StorageHealth::new(dir.path());
        health.write_failed("t", 0, &std::fmt::Error);
        assert!(!health.any_failing.load(Ordering::Acquire));
        assert!(!health.is_full());
    }
}
