//! Behaviour of compaction as a consumer and a restart see it: exact keys, values and offsets.
#![allow(clippy::unwrap_used)]

use std::{collections::BTreeMap, os::unix::fs::FileExt, path::Path};

use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    protocol::StrBytes,
    records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType as RecordTimestampType,
    },
};

use super::super::{batch, segment::segment_path, Log, LogConfig, ReadSlice};
use super::*;

mod crash;

const DAY: i64 = 24 * 60 * 60 * 1000;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 600,
        index_interval_bytes: 100,
        retention_ms: -1,
        compact: true,
        delete_retention_ms: DAY,
        ..LogConfig::default()
    }
}

fn open(dir: &Path) -> Log {
    Log::open(dir, config(), 0, true).unwrap().0
}

/// Reopens after a crash: every segment is scanned.
fn reopen_after_crash(dir: &Path) -> (Log, super::super::RecoveryReport) {
    Log::open(dir, config(), 0, false).unwrap()
}

fn record(offset: i64, key: Option<&str>, value: Option<&str>, ts: i64) -> Record {
    let mut r = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 3,
        producer_id: 77,
        producer_epoch: 2,
        timestamp_type: RecordTimestampType::Creation,
        offset,
        sequence: 100 + offset as i32,
        timestamp: ts,
        key: key.map(|k| Bytes::from(k.to_owned())),
        value: value.map(|v| Bytes::from(v.to_owned())),
        headers: Default::default(),
    };
    r.headers.insert(
        StrBytes::from_static_str("h"),
        Some(Bytes::from(format!("hdr-{offset}"))),
    );
    r
}

fn encode(records: &[Record], compression: Compression) -> Vec<u8> {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.to_vec()
}

/// Appends one batch of (key, value) pairs, all stamped `ts`; returns the first offset.
fn put_batch(
    log: &mut Log,
    pairs: &[(&str, Option<&str>)],
    ts: i64,
    compression: Compression,
) -> i64 {
    let records: Vec<Record> = pairs
        .iter()
        .enumerate()
        .map(|(i, (k, v))| record(i as i64, Some(k), *v, ts))
        .collect();
    let mut bytes = encode(&records, compression);
    log.append(&mut bytes, ts).unwrap().first_offset
}

fn put(log: &mut Log, key: &str, value: Option<&str>, ts: i64) -> i64 {
    put_batch(log, &[(key, value)], ts, Compression::None)
}

/// One record as a consumer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    offset: i64,
    key: Option<String>,
    value: Option<String>,
    timestamp: i64,
    compression: u8,
    record: Record,
}

fn text(b: &Option<Bytes>) -> Option<String> {
    b.as_ref().map(|b| String::from_utf8(b.to_vec()).unwrap())
}

fn slice_bytes(s: &ReadSlice) -> Vec<u8> {
    let mut buf = vec![0u8; s.len];
    s.file.read_exact_at(&mut buf, s.position).unwrap();
    buf
}

fn decode_slice(bytes: &[u8]) -> Vec<Seen> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let h = batch::parse_header(&bytes[pos..], pos as u64).unwrap();
        let raw = &bytes[pos..pos + h.size as usize];
        batch::check_stored_batch(raw, 0).unwrap();
        let set = RecordBatchDecoder::decode(&mut Bytes::copy_from_slice(raw)).unwrap();
        assert_eq!(set.records.len(), h.record_count as usize);
        assert_eq!(
            set.records.last().unwrap().offset,
            h.last_offset,
            "a batch's lastOffsetDelta must point at its last record"
        );
        for r in set.records {
            out.push(Seen {
                offset: r.offset,
                key: text(&r.key),
                value: text(&r.value),
                timestamp: r.timestamp,
                compression: h.compression(),
                record: r,
            });
        }
        pos += h.size as usize;
    }
    out
}

/// Every record from the log start to the end, fetched the way a consumer does (read, advance past the last
/// batch returned).
fn read_all(log: &Log) -> Vec<Seen> {
    let mut out: Vec<Seen> = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let slice = log.read(offset, 700).unwrap();
        if slice.len == 0 {
            break;
        }
        let bytes = slice_bytes(&slice);
        let mut pos = 0;
        while pos < bytes.len() {
            let h = batch::parse_header(&bytes[pos..], 0).unwrap();
            offset = h.last_offset + 1;
            pos += h.size as usize;
        }
        out.extend(decode_slice(&bytes));
    }
    let offsets: Vec<i64> = out.iter().map(|s| s.offset).collect();
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "offsets must strictly ascend: {offsets:?}"
    );
    out
}

/// (key, value) pairs in offset order.
fn pairs(seen: &[Seen]) -> Vec<(i64, String, Option<String>)> {
    seen.iter()
        .map(|s| (s.offset, s.key.clone().unwrap_or_default(), s.value.clone()))
        .collect()
}

fn leftover_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap"))
        .collect()
}

/// The scenario most tests share: keys k0..k4 overwritten 12 times each, k3 deleted by a tombstone at
/// offset 58, ts = 1000 + offset, all in inactive segments; then k5 at offset 60 in the active segment. Returns the model: key -> (offset, value) of its latest record.
fn overwrite_scenario(log: &mut Log) -> BTreeMap<String, (i64, Option<String>)> {
    let mut model = BTreeMap::new();
    for i in 0..60i64 {
        let key = format!("k{}", i % 5);
        let value = if i == 58 { None } else { Some(format!("v{i}")) };
        let offset = put(log, &key, value.as_deref(), 1000 + i);
        assert_eq!(offset, i);
        model.insert(key, (offset, value));
    }
    // Keeps the tombstone out of the active segment.
    log.roll().unwrap();
    put(log, "k5", Some("v60"), 1060);
    model.insert("k5".into(), (60, Some("v60".into())));
    model
}

#[test]
fn log_compaction_keeps_the_latest_record_per_key_and_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    let model = overwrite_scenario(&mut log);
    assert!(
        log.segment_count() >= 4,
        "scenario must span several segments"
    );
    let (start, end) = (log.log_start_offset(), log.log_end_offset());

    let report = log.clean_now(1000 + 58 + DAY).unwrap().unwrap();
    assert_eq!(report.outcome, CleanOutcome::Installed);
    assert_eq!(report.first_dirty_offset, 0);
    assert_eq!(report.first_uncleanable_offset, 60);
    assert_eq!(report.stats.tombstones_removed, 0);
    assert_eq!(log.cleaner_checkpoint(), 60);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (start, end));

    // Inactive part: the latest record of every key, the tombstone still there (not yet past the horizon).
    let expected = vec![
        (55, "k0".to_owned(), Some("v55".to_owned())),
        (56, "k1".to_owned(), Some("v56".to_owned())),
        (57, "k2".to_owned(), Some("v57".to_owned())),
        (58, "k3".to_owned(), None),
        (59, "k4".to_owned(), Some("v59".to_owned())),
        (60, "k5".to_owned(), Some("v60".to_owned())),
    ];
    let seen = read_all(&log);
    assert_eq!(pairs(&seen), expected);
    assert_eq!(seen[0].timestamp, 1055, "timestamps are kept");
    assert_eq!(
        seen[0]
            .record
            .headers
            .get(&StrBytes::from_static_str("h"))
            .cloned()
            .flatten(),
        Some(Bytes::from("hdr-0")),
        "headers are kept"
    );
    // The model agrees with what a consumer reading from the start ends up with.
    let mut consumer = BTreeMap::new();
    for (offset, k, v) in pairs(&seen) {
        consumer.insert(k, (offset, v));
    }
    assert_eq!(consumer, model);

    // Nothing new is dirty and the tombstone's horizon (first clean + delete.retention.ms) is ahead.
    assert!(log.compaction_plan(1000 + 58 + 2 * DAY - 1).is_none());
    // At the horizon the tombstone alone makes a clean due, and it goes.
    let report = log.clean_now(1000 + 58 + 2 * DAY).unwrap().unwrap();
    assert_eq!(report.stats.tombstones_removed, 1);
    let after: Vec<_> = expected.iter().filter(|p| p.1 != "k3").cloned().collect();
    assert_eq!(pairs(&read_all(&log)), after);
    assert!(leftover_files(dir.path()).is_empty());

    // Everything survives a restart, including the cleaner checkpoint.
    drop(log);
    let (log, report) = reopen_after_crash(dir.path());
    assert_eq!(
        report.bytes_truncated, 0,
        "compacted batches must pass recovery"
    );
    assert_eq!(pairs(&read_all(&log)), after);
    assert_eq!(log.cleaner_checkpoint(), 60);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (start, end));
}

#[test]
fn log_compaction_reencodes_partial_batches_with_their_codec() {
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path());
        // Offsets 0-3: a, b, c, d; then 4-5: b, x. Survivors of the first batch: 0, 2, 3 (a gap at 1).
        put_batch(
            &mut log,
            &[
                ("a", Some("a0")),
                ("b", Some("b1")),
                ("c", Some("c2")),
                ("d", Some("d3")),
            ],
            5000,
            codec,
        );
        put_batch(
            &mut log,
            &[("b", Some("b4")), ("x", Some("x5"))],
            6000,
            codec,
        );
        log.roll().unwrap();
        put(&mut log, "z", Some("z"), 7000);
        let before_second = log.read(4, 1).unwrap();
        log.clean_now(8000).unwrap().unwrap();

        let seen = read_all(&log);
        assert_eq!(
            pairs(&seen),
            vec![
                (0, "a".into(), Some("a0".into())),
                (2, "c".into(), Some("c2".into())),
                (3, "d".into(), Some("d3".into())),
                (4, "b".into(), Some("b4".into())),
                (5, "x".into(), Some("x5".into())),
                (6, "z".into(), Some("z".into())),
            ],
            "{codec:?}"
        );
        for s in &seen[..5] {
            assert_eq!(s.compression, codec as u8, "{codec:?} codec is kept");
            assert_eq!(s.record.producer_id, 77);
            assert_eq!(s.record.producer_epoch, 2);
            assert_eq!(s.record.partition_leader_epoch, 3);
        }
        // Sequence numbers follow the offsets inside each original batch.
        let sequences: Vec<i32> = seen.iter().map(|s| s.record.sequence).collect();
        assert_eq!(sequences[..4], [100, 102, 103, 100], "{codec:?}");
        assert_eq!(seen[3].timestamp, 6000, "{codec:?}");
        // The fully retained second batch is copied byte for byte.
        assert_eq!(
            slice_bytes(&log.read(4, 1).unwrap()),
            slice_bytes(&before_second),
            "{codec:?}"
        );

        // A batch with an offset gap passes the recovery scan of an unclean restart.
        drop(log);
        let (log, report) = reopen_after_crash(dir.path());
        assert_eq!(report.bytes_truncated, 0, "{codec:?}");
        assert_eq!(read_all(&log), seen, "{codec:?}");
    }
}

#[test]
fn log_compaction_encoder_keeps_offset_gaps_as_deltas() {
    let records = vec![
        record(10, Some("a"), Some("1"), 1),
        record(13, Some("b"), Some("2"), 2),
        record(17, Some("c"), None, 3),
    ];
    for codec in [Compression::None, Compression::Zstd] {
        let bytes = encode(&records, codec);
        let h = batch::parse_header(&bytes, 0).unwrap();
        assert_eq!((h.base_offset, h.last_offset, h.record_count), (10, 17, 3));
        assert_eq!(h.size as usize, bytes.len(), "one batch");
        batch::check_stored_batch(&bytes, 0).unwrap();
        assert!(
            batch::check_batch(&bytes, 0).is_err(),
            "a producer may not send gaps"
        );
        let offsets: Vec<i64> = decode_slice(&bytes).iter().map(|s| s.offset).collect();
        assert_eq!(offsets, vec![10, 13, 17]);
    }
}

#[test]
fn log_compaction_read_at_a_removed_offset_returns_the_next_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    overwrite_scenario(&mut log);
    log.clean_now(2000).unwrap().unwrap();
    for offset in 0..=55 {
        let slice = log.read(offset, 1).unwrap();
        assert_eq!(slice.first_batch_base_offset, 55, "read at {offset}");
    }
    assert_eq!(log.read(57, 1).unwrap().first_batch_base_offset, 57);
    assert_eq!(
        log.read(0, 1).unwrap().len,
        slice_bytes(&log.read(55, 1).unwrap()).len()
    );
    assert!(log.read(-1, 1).is_err());
}

#[test]
fn log_compaction_appends_during_execute_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    overwrite_scenario(&mut log);
    let plan = log.compaction_plan(2000).unwrap();
    // The lock is free while the plan executes: producers keep appending and the log keeps rolling.
    let segments_before = log.segment_count();
    for i in 61..100 {
        assert_eq!(put(&mut log, "k1", Some(&format!("v{i}")), 1000 + i), i);
    }
    assert!(log.segment_count() > segments_before, "appends must roll");
    let cleaned = plan.execute().unwrap();
    put(&mut log, "k2", Some("v100"), 1100);
    let report = log.install_cleaned(cleaned).unwrap();
    assert_eq!(report.outcome, CleanOutcome::Installed);
    assert_eq!(log.log_end_offset(), 101);
    let seen = pairs(&read_all(&log));
    assert_eq!(
        seen[..5].iter().map(|p| p.0).collect::<Vec<_>>(),
        vec![55, 56, 57, 58, 59]
    );
    let tail: Vec<i64> = seen[5..].iter().map(|p| p.0).collect();
    assert_eq!(
        tail,
        (60..101).collect::<Vec<_>>(),
        "uncleaned appends untouched"
    );
    // Next clean picks up the new dirty range.
    log.roll().unwrap();
    log.clean_now(3000).unwrap().unwrap();
    let keys: Vec<_> = pairs(&read_all(&log));
    assert_eq!(
        keys,
        vec![
            (55, "k0".into(), Some("v55".into())),
            (58, "k3".into(), None),
            (59, "k4".into(), Some("v59".into())),
            (60, "k5".into(), Some("v60".into())),
            (99, "k1".into(), Some("v99".into())),
            (100, "k2".into(), Some("v100".into())),
        ]
    );
}

#[test]
fn log_compaction_fetch_holding_an_old_file_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    overwrite_scenario(&mut log);
    let before = log.read(0, 200).unwrap();
    let bytes_before = slice_bytes(&before);
    // Segment holding offset 20 is left without live records: it is removed, not replaced.
    let removed = log.read(20, 200).unwrap();
    let removed_before = slice_bytes(&removed);
    log.clean_now(2000).unwrap().unwrap();
    assert!(log.read(20, 1).unwrap().first_batch_base_offset > 20);
    // The in-flight fetches still hold the replaced and the removed segments' inodes.
    let again = slice_bytes(&before);
    assert_eq!(again, bytes_before);
    let seen = decode_slice(&again);
    assert_eq!(seen[0].offset, 0);
    assert_eq!(seen[0].value.as_deref(), Some("v0"));
    assert_eq!(slice_bytes(&removed), removed_before);
    assert_eq!(decode_slice(&removed_before)[0].offset, 20);
}

#[test]
fn log_compaction_stale_plan_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    overwrite_scenario(&mut log);
    let all_before = pairs(&read_all(&log));
    let cleaned = log.compaction_plan(2000).unwrap().execute().unwrap();
    log.truncate_to(30).unwrap();
    let report = log.install_cleaned(cleaned).unwrap();
    assert_eq!(report.outcome, CleanOutcome::Stale);
    assert!(leftover_files(dir.path()).is_empty());
    assert_eq!(pairs(&read_all(&log)), all_before[..30].to_vec());
    assert_eq!(log.cleaner_checkpoint(), 0);
    // A truncation that cuts and refills a planned segment in place (same file, same size) is caught too.
    log.roll().unwrap();
    let plan = log.compaction_plan(2000).unwrap();
    let last_inactive = *log.segments.keys().next_back().unwrap();
    let end = log.log_end_offset();
    log.truncate_to(end - 1).unwrap();
    put(&mut log, "k9", Some("v29"), 1000);
    assert_eq!(
        log.active.base_offset(),
        last_inactive,
        "the same segment is active again"
    );
    log.roll().unwrap();
    let cleaned = plan.execute().unwrap();
    assert_eq!(
        log.install_cleaned(cleaned).unwrap().outcome,
        CleanOutcome::Stale
    );
    assert!(leftover_files(dir.path()).is_empty());
    // A dropped, never installed result also cleans up after itself.
    log.roll().unwrap();
    drop(log.compaction_plan(2000).unwrap().execute().unwrap());
    assert!(leftover_files(dir.path()).is_empty());
}

#[test]
fn log_compaction_truncation_below_the_checkpoint_makes_data_dirty_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    overwrite_scenario(&mut log);
    log.clean_now(2000).unwrap().unwrap();
    assert_eq!(log.cleaner_checkpoint(), 60);
    log.truncate_to(57).unwrap();
    let end = log.log_end_offset();
    assert_eq!(end, 57);
    assert_eq!(log.cleaner_checkpoint(), end);
    drop(log);
    assert_eq!(open(dir.path()).cleaner_checkpoint(), end, "persisted");
}

#[test]
fn log_compaction_is_due_by_dirty_ratio_and_lag_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    overwrite_scenario(&mut log);
    let mut cfg = config();
    cfg.compact = false;
    log.set_config(cfg.clone());
    assert!(log.compaction_plan(2000).is_none(), "compact is off");
    cfg.compact = true;
    cfg.min_compaction_lag_ms = 100;
    log.set_config(cfg.clone());
    // At 1130, a segment holding a record stamped after 1030 (offset > 30) is too young to clean.
    let plan = log.compaction_plan(1130).unwrap();
    assert!(plan.first_uncleanable_offset() > 0);
    assert!(plan.first_uncleanable_offset() <= 31);
    let end = plan.first_uncleanable_offset();
    log.install_cleaned(plan.execute().unwrap()).unwrap();
    assert_eq!(log.cleaner_checkpoint(), end);
    let seen = read_all(&log);
    assert!(
        seen.iter().any(|s| s.offset == end),
        "the first young segment is untouched"
    );
    // After one clean with the lag met the whole inactive range is clean; a small dirty tail is below the ratio.
    cfg.min_compaction_lag_ms = 0;
    log.set_config(cfg.clone());
    log.clean_now(2000).unwrap().unwrap();
    log.roll().unwrap();
    assert!(
        log.compaction_plan(2000).is_none(),
        "1 dirty record of 6 is below 0.5"
    );
    cfg.max_compaction_lag_ms = 1;
    log.set_config(cfg.clone());
    assert!(
        log.compaction_plan(2001).is_some(),
        "below the ratio, but waiting longer than max.compaction.lag.ms"
    );
    cfg.max_compaction_lag_ms = i64::MAX;
    log.set_config(cfg.clone());
    assert!(log.compaction_plan(2001).is_none());
    cfg.min_cleanable_dirty_ratio = 0.1;
    log.set_config(cfg);
    assert!(log.compaction_plan(2000).is_some());
}

#[test]
fn log_compaction_policy_without_delete_skips_retention() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    overwrite_scenario(&mut log);
    let mut cfg = config();
    cfg.retention_ms = 1;
    cfg.delete = false;
    log.set_config(cfg.clone());
    assert_eq!(log.apply_retention(i64::MAX / 2).unwrap(), 0);
    assert_eq!(log.log_start_offset(), 0);
    cfg.delete = true;
    log.set_config(cfg);
    assert!(log.apply_retention(i64::MAX / 2).unwrap() > 0);
}

#[test]
fn log_compaction_empty_segments_are_removed_except_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    overwrite_scenario(&mut log);
    let before = log.segment_count();
    log.clean_now(2000).unwrap().unwrap();
    assert!(log.segment_count() < before);
    assert_eq!(log.log_start_offset(), 0);
    assert!(
        segment_path(dir.path(), 0, "log").exists(),
        "first segment stays"
    );
    drop(log);
    let log = open(dir.path());
    assert_eq!(log.log_start_offset(), 0, "log start survives a restart");
    // Retention can still delete past the empty first segment.
    let mut log = log;
    let mut cfg = config();
    cfg.retention_ms = 10;
    log.set_config(cfg);
    assert!(log.apply_retention(1_000_000).unwrap() >= 2);
    assert!(log.log_start_offset() > 0);
}

#[test]
fn log_compaction_keeps_no_sequence_and_log_append_time_batches_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    let mut cfg = config();
    cfg.timestamp_type = crate::log::TimestampType::LogAppendTime;
    log.set_config(cfg);
    // A non-idempotent producer: no producer id, no sequence.
    let records: Vec<Record> = [("a", "1"), ("b", "2"), ("a", "3"), ("c", "4")]
        .iter()
        .enumerate()
        .map(|(i, (k, v))| {
            let mut r = record(i as i64, Some(k), Some(v), 500);
            r.producer_id = -1;
            r.producer_epoch = -1;
            // The encoder derives base_sequence from the first record; the rest must follow the offsets.
            r.sequence = -1 + i as i32;
            r
        })
        .collect();
    let mut bytes = encode(&records, Compression::Lz4);
    let produced = batch::parse_header(&bytes, 0).unwrap();
    assert_eq!(
        (produced.base_sequence, produced.size as usize),
        (-1, bytes.len())
    );
    log.append(&mut bytes, 9000).unwrap();
    log.roll().unwrap();
    put(&mut log, "z", Some("z"), 9500);
    log.clean_now(10_000).unwrap().unwrap();

    let slice = log.read(0, 1).unwrap();
    let raw = slice_bytes(&slice);
    let h = batch::parse_header(&raw, 0).unwrap();
    assert_eq!((h.base_offset, h.last_offset, h.record_count), (1, 3, 3));
    assert_eq!(h.base_sequence, -1, "no sequence stays no sequence");
    assert_eq!(h.producer_id, -1);
    assert!(h.is_log_append_time(), "LogAppendTime attribute is kept");
    assert_eq!(h.max_timestamp, 9000, "the broker's append time is kept");
    assert_eq!(h.compression(), Compression::Lz4 as u8);
    let kept: Vec<_> = decode_slice(&raw).into_iter().map(|s| s.offset).collect();
    assert_eq!(kept, vec![1, 2, 3]);
}

#[test]
fn log_compaction_tombstone_lives_delete_retention_ms_after_its_first_clean() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    put(&mut log, "a", Some("1"), 0);
    // A producer clock far behind: the tombstone's own timestamp is already older than delete.retention.ms.
    put(&mut log, "a", None, 0);
    put(&mut log, "b", Some("2"), 0);
    log.roll().unwrap();
    let t1 = 10 * DAY;
    let report = log.clean_now(t1).unwrap().unwrap();
    assert_eq!(
        report.stats.tombstones_removed, 0,
        "a first clean never drops a tombstone"
    );
    assert_eq!(
        pairs(&read_all(&log)),
        vec![(1, "a".into(), None), (2, "b".into(), Some("2".into()))]
    );
    // The horizon survives a restart (it lives in the checkpoint).
    drop(log);
    let mut log = open(dir.path());
    log.set_config(LogConfig {
        min_cleanable_dirty_ratio: 0.01,
        ..config()
    });
    put(&mut log, "b", Some("3"), 0);
    log.roll().unwrap();
    log.clean_now(t1 + DAY - 1).unwrap().unwrap();
    assert_eq!(
        pairs(&read_all(&log)),
        vec![(1, "a".into(), None), (3, "b".into(), Some("3".into()))],
        "one ms before the horizon the tombstone stays"
    );
    let report = log.clean_now(t1 + DAY).unwrap().unwrap();
    assert_eq!(report.stats.tombstones_removed, 1);
    assert_eq!(
        pairs(&read_all(&log)),
        vec![(3, "b".into(), Some("3".into()))]
    );
    // Its mark is pruned: only the second clean's range is remembered.
    assert_eq!(
        log.cleaner.marks,
        vec![CleanMark {
            end_offset: 4,
            cleaned_at_ms: t1 + DAY - 1
        }]
    );
    // Truncation into a range compaction emptied keeps the requested log end (offsets are never reused)
    // and clips the marks along with the first dirty offset.
    log.truncate_to(2).unwrap();
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(log.cleaner.first_dirty_offset, 2);
    assert_eq!(log.cleaner.marks[0].end_offset, 2);
    assert_eq!(put(&mut log, "c", Some("4"), 0), 2);
    drop(log);
    let log = reopen_after_crash(dir.path()).0;
    assert_eq!(log.log_end_offset(), 3);
    assert_eq!(
        pairs(&read_all(&log)),
        vec![(2, "c".into(), Some("4".into()))]
    );
}

#[test]
fn log_compaction_checkpoint_round_trips_and_rejects_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = CleanerCheckpoint {
        first_dirty_offset: 42,
        tombstone_expiry_ms: 7,
        marks: vec![
            CleanMark {
                end_offset: 10,
                cleaned_at_ms: 100,
            },
            CleanMark {
                end_offset: 42,
                cleaned_at_ms: 200,
            },
        ],
    };
    checkpoint.write(dir.path()).unwrap();
    assert_eq!(CleanerCheckpoint::read(dir.path()).unwrap(), checkpoint);
    let path = dir.path().join(CLEANER_CHECKPOINT);
    for garbage in [
        "",
        "1\n5\n-1\n0\n",
        "0\nx\n-1\n0\n",
        "0\n5\n-1\n2\n3 1\n",
        "0\n5\n-1\n2\n3 1\n3 2\n",
    ] {
        std::fs::write(&path, garbage).unwrap();
        assert!(
            CleanerCheckpoint::parse(&path, garbage).is_err(),
            "{garbage:?}"
        );
        assert_eq!(
            CleanerCheckpoint::read(dir.path()).unwrap(),
            CleanerCheckpoint::NONE
        );
    }
}

#[test]
fn log_compaction_delete_records_passes_an_empty_first_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    overwrite_scenario(&mut log);
    log.clean_now(2000).unwrap().unwrap();
    let bases: Vec<i64> = log.segments.keys().copied().collect();
    assert_eq!(
        log.segments[&0].size(),
        0,
        "the first segment is left empty"
    );
    let second = bases[1];
    log.delete_records_before(second).unwrap();
    assert_eq!(log.log_start_offset(), second);
    assert!(
        !log.segments.contains_key(&0),
        "the empty segment below the new start is deleted"
    );
    assert_eq!(read_all(&log).first().map(|s| s.offset), Some(55));
}
