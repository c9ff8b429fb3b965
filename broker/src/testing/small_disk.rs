//! A small file system of its own for a test's data directory: a tmpfs of a given size, so a test can fill
//! the disk without filling the machine's. Mounting needs root (CI and these machines run tests as root);
//! elsewhere [`SmallDisk::mount`] says so and the test decides what to do.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// A mounted tmpfs, unmounted (lazily, so a process still holding files there cannot keep it) on drop.
#[derive(Debug)]
pub struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `bytes` at `path` (created if missing).
    pub fn mount(path: &Path, bytes: u64) -> Result<Self, String> {
        std::fs::create_dir_all(path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount -t tmpfs at {} failed (it needs root): {}",
                path.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a file of `bytes` at `name` that takes room until [`SmallDisk::free`] removes it.
    pub fn fill(&self, name: &str, bytes: usize) -> std::io::Result<()> {
        std::fs::write(self.path.join(name), vec![0x5a; bytes])
    }

    pub fn free(&self, name: &str) -> std::io::Result<()> {
        std::fs::remove_file(self.path.join(name))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
