//! Durable small-file writes, written once for every caller: the metadata snapshot, offset checkpoints, the
//! cleaner checkpoint, `partition.metadata` and the clean shutdown marker.
//!
//! A replaced file is written to a temporary sibling, fsynced, renamed over the target and the directory is
//! fsynced, so after a crash a reader finds the old content or the new one, never a torn mix, and a rename
//! that was reported done survives power loss. A leaf: imports nothing else of the crate.

use std::{
    fs::{self, File},
    io::{self, Write},
    path::{Path, PathBuf},
};

/// The step of a durable write that failed, naming the file it was working on.
#[derive(Debug, thiserror::Error)]
pub enum DurableWriteError {
    #[error("writing {path}")]
    Write { path: PathBuf, source: io::Error },
    #[error("syncing {path}")]
    Sync { path: PathBuf, source: io::Error },
    #[error("renaming {from} to {to}")]
    Rename {
        from: PathBuf,
        to: PathBuf,
        source: io::Error,
    },
    #[error("syncing directory {path}")]
    SyncDir { path: PathBuf, source: io::Error },
}

/// The temporary sibling a replacement is written to: the file name with `.tmp` appended, so two targets
/// that differ only in their extension never share one.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Replaces `path` with `bytes` atomically and durably (temp file, fsync, rename, fsync directory).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), DurableWriteError> {
    let tmp = temp_path(path);
    let write = |source| DurableWriteError::Write {
        path: tmp.clone(),
        source,
    };
    let mut file = File::create(&tmp).map_err(write)?;
    file.write_all(bytes).map_err(write)?;
    file.sync_all().map_err(|source| DurableWriteError::Sync {
        path: tmp.clone(),
        source,
    })?;
    drop(file);
    fs::rename(&tmp, path).map_err(|source| DurableWriteError::Rename {
        from: tmp.clone(),
        to: path.to_path_buf(),
        source,
    })?;
    sync_parent(path)
}

/// Creates an empty file (a marker) and makes its existence durable.
pub fn create_marker(path: &Path) -> Result<(), DurableWriteError> {
    File::create(path)
        .and_then(|file| file.sync_all())
        .map_err(|source| DurableWriteError::Write {
            path: path.to_path_buf(),
            source,
        })?;
    sync_parent(path)
}

/// Fsyncs a directory, so that entries created, renamed or removed in it survive power loss.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn sync_parent(path: &Path) -> Result<(), DurableWriteError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    sync_dir(dir).map_err(|source| DurableWriteError::SyncDir {
        path: dir.to_path_buf(),
        source,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_whole_file_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomically(&path, b"first, and longer").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["state.json"], "temp file left behind: {names:?}");
    }

    #[test]
    fn a_failed_write_names_the_file_and_keeps_the_old_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint");
        write_atomically(&path, b"old").unwrap();
        // A directory where the temp file must go makes the write fail before the rename.
        fs::create_dir(temp_path(&path)).unwrap();
        let err = write_atomically(&path, b"new").unwrap_err();
        assert!(
            matches!(&err, DurableWriteError::Write { path: p, .. } if p.ends_with("checkpoint.tmp")),
            "unexpected error {err:?}"
        );
        assert_eq!(fs::read(&path).unwrap(), b"old");
    }

    #[test]
    fn temp_names_keep_the_extension() {
        assert_eq!(
            temp_path(Path::new("/d/tributary-metadata.json")),
            Path::new("/d/tributary-metadata.json.tmp")
        );
    }
}
