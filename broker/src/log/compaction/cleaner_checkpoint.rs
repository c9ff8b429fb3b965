//! The cleaner checkpoint of one partition (`cleaner-offset-checkpoint` in its directory): how far the log
//! has been cleaned and when each offset range was first cleaned, which gives tombstones their delete horizon.
//!
//! Format, text lines: version `0`; the first dirty offset; the earliest delete horizon of a retained
//! tombstone, or -1; the number of clean marks; one `end_offset cleaned_at_ms` line per mark, ends ascending.
//! Writes are atomic (temp file, fsync, rename, fsync directory). This module must never decide what to clean.

use std::{fs, io, path::Path};

use super::super::LogError;

/// Name of the per-partition cleaner checkpoint file.
pub const CLEANER_CHECKPOINT: &str = "cleaner-offset-checkpoint";

/// The persisted cleaner state of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CleanerCheckpoint {
    /// Kafka's first dirty offset: every record below it has been through a clean.
    pub(crate) first_dirty_offset: i64,
    /// The earliest delete horizon of a tombstone kept by the last clean, or -1.
    pub(crate) tombstone_expiry_ms: i64,
    /// When each range of offsets was first cleaned, ends ascending.
    pub(crate) marks: Vec<CleanMark>,
}

/// Offsets below `end_offset` (and at or above the previous mark's) were first cleaned at `cleaned_at_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CleanMark {
    pub(crate) end_offset: i64,
    pub(crate) cleaned_at_ms: i64,
}

/// When the record at `offset` was first cleaned: its mark, or `now_ms` if this clean is the first.
pub(super) fn first_cleaned_at(marks: &[CleanMark], offset: i64, now_ms: i64) -> i64 {
    marks
        .iter()
        .find(|m| m.end_offset > offset)
        .map_or(now_ms, |m| m.cleaned_at_ms)
}

impl CleanerCheckpoint {
    pub(crate) const NONE: CleanerCheckpoint = CleanerCheckpoint {
        first_dirty_offset: 0,
        tombstone_expiry_ms: -1,
        marks: Vec::new(),
    };

    /// Reads the checkpoint of partition directory `dir`; missing or unparseable is [`CleanerCheckpoint::NONE`]
    /// (a corrupt file is logged: it only costs a full re-clean).
    pub(crate) fn read(dir: &Path) -> Result<CleanerCheckpoint, LogError> {
        let path = dir.join(CLEANER_CHECKPOINT);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Self::NONE),
            Err(source) => {
                return Err(LogError::ReadFile {
                    path,
                    position: 0,
                    source,
                })
            }
        };
        match Self::parse(&path, &text) {
            Ok(c) => Ok(c),
            Err(error) => {
                tracing::warn!(%error, "ignoring unreadable cleaner checkpoint; the log will be re-cleaned");
                Ok(Self::NONE)
            }
        }
    }

    pub(super) fn parse(path: &Path, text: &str) -> Result<CleanerCheckpoint, LogError> {
        let err = |line: usize, reason: &str| LogError::CorruptCleanerCheckpoint {
            path: path.to_path_buf(),
            line,
            reason: reason.to_owned(),
        };
        let mut lines = text.lines();
        if lines.next() != Some("0") {
            return Err(err(1, "unknown version"));
        }
        let mut line = |n: usize| lines.next().ok_or_else(|| err(n, "missing"));
        let number = |n: usize, text: &str| -> Result<i64, LogError> {
            text.trim().parse().map_err(|_| err(n, "not an integer"))
        };
        let first_dirty_offset = number(2, line(2)?)?;
        let tombstone_expiry_ms = number(3, line(3)?)?;
        let count = number(4, line(4)?)?;
        let mut marks = Vec::new();
        for n in 5..5 + count.max(0) as usize {
            let text = line(n)?;
            let (end, at) = text
                .split_once(' ')
                .ok_or_else(|| err(n, "expected `end_offset cleaned_at_ms`"))?;
            let mark = CleanMark {
                end_offset: number(n, end)?,
                cleaned_at_ms: number(n, at)?,
            };
            if marks
                .last()
                .is_some_and(|m: &CleanMark| m.end_offset >= mark.end_offset)
            {
                return Err(err(n, "end offsets do not ascend"));
            }
            marks.push(mark);
        }
        Ok(CleanerCheckpoint {
            first_dirty_offset,
            tombstone_expiry_ms,
            marks,
        })
    }

    pub(crate) fn write(&self, dir: &Path) -> Result<(), LogError> {
        let path = dir.join(CLEANER_CHECKPOINT);
        let mut text = format!(
            "0\n{}\n{}\n{}\n",
            self.first_dirty_offset,
            self.tombstone_expiry_ms,
            self.marks.len()
        );
        for m in &self.marks {
            text.push_str(&format!("{} {}\n", m.end_offset, m.cleaned_at_ms));
        }
        crate::durable::write_atomically(&path, text.as_bytes())
            .map_err(|source| LogError::WriteCleanerCheckpoint { path, source })
    }
}
