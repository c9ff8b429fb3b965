//! Behaviour tests for `Log` as a whole: what a producer, a consumer and a restart rely on.
#![allow(clippy::unwrap_used)]

use std::{fs::OpenOptions, os::unix::fs::FileExt, path::Path};

use proptest::prelude::*;

use super::{
    batch::testing::{batch, batch_with},
    segment::segment_path,
    *,
};

fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 150,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

fn open(dir: &Path, config: LogConfig) -> Log {
    Log::open(dir, config, 0, true).unwrap().0
}

fn slice_bytes(s: &ReadSlice) -> Vec<u8> {
    let mut buf = vec![0u8; s.len];
    s.file.read_exact_at(&mut buf, s.position).unwrap();
    buf
}

/// (base, last) offsets of the batches in `bytes`, which must all be valid.
fn offsets(bytes: &[u8]) -> Vec<(i64, i64)> {
    validate_batches(bytes, u32::MAX)
        .unwrap()
        .iter()
        .map(|h| (h.base_offset, h.last_offset))
        .collect()
}

/// Appends `n` batches of 3 records; batch i has timestamp 1000 * (i + 1). Returns the stored bytes of each.
fn fill(log: &mut Log, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut b = batch(
                &[b"value-aaaaaaaa", b"value-bbbbbbbb", b"value-cccccccc"],
                1000 * (i as i64 + 1),
            );
            log.append(&mut b, 5_000).unwrap();
            b
        })
        .collect()
}

fn last_segment_path(dir: &Path, log: &Log) -> std::path::PathBuf {
    segment_path(dir, log.active.base_offset(), "log")
}

#[test]
fn append_assigns_offsets_and_reads_back_across_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config());
    let stored = fill(&mut log, 40);
    let batch_len = stored[0].len();
    assert_eq!(log.log_end_offset(), 120);
    assert!(
        log.segment_count() >= 4,
        "1 KiB segments must roll, got {}",
        log.segment_count()
    );
    assert_eq!(log.size_bytes(), (40 * batch_len) as u64);
    for offset in 0..120 {
        let slice = log.read(offset, 1).unwrap();
        let i = (offset / 3) as usize;
        assert_eq!(
            slice.first_batch_base_offset,
            3 * i as i64,
            "offset {offset}"
        );
        assert_eq!(
            slice_bytes(&slice),
            stored[i],
            "offset {offset} must return its whole batch"
        );
    }
}

#[test]
fn read_returns_whole_batches_within_max_bytes_but_at_least_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        dir.path(),
        LogConfig {
            segment_bytes: 1 << 20,
            ..small_config()
        },
    );
    let stored = fill(&mut log, 5);
    let len = stored[0].len();
    assert_eq!(log.read(4, 1).unwrap().len, len, "min one batch");
    let two = log.read(4, 2 * len + len - 1).unwrap();
    assert_eq!(offsets(&slice_bytes(&two)), vec![(3, 5), (6, 8)]);
    let all = log.read(0, usize::MAX).unwrap();
    assert_eq!(slice_bytes(&all), stored.concat());
}

#[test]
fn read_outside_log_is_out_of_range_and_at_end_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config());
    fill(&mut log, 2);
    assert!(matches!(
        log.read(7, 100),
        Err(LogError::OffsetOutOfRange {
            offset: 7,
            log_start: 0,
            log_end: 6
        })
    ));
    assert!(matches!(
        log.read(-1, 100),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    let end = log.read(6, 100).unwrap();
    assert_eq!((end.len, end.first_batch_base_offset), (0, 6));
}

#[test]
fn clean_reopen_does_not_scan_and_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config());
    let stored = fill(&mut log, 30);
    let segments = log.segment_count();
    log.close().unwrap();
    let (log, report) = Log::open(dir.path(), small_config(), 0, true).unwrap();
    assert_eq!(report.segments_scanned, 0);
    assert_eq!(report.indexes_rebuilt, 0);
    assert_eq!(
        (
            log.log_end_offset(),
            log.segment_count(),
            log.recovery_point()
        ),
        (90, segments, 90)
    );
    assert_eq!(slice_bytes(&log.read(44, 1).unwrap()), stored[14]);
    assert_eq!(log.max_timestamp_and_offset(), Some((30_000, 89)));
}

#[test]
fn unclean_reopen_scans_segments_from_the_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config());
    fill(&mut log, 30);
    let segments = log.segment_count();
    let last_base = log.active.base_offset();
    drop(log);
    let (log, report) = Log::open(dir.path(), small_config(), 0, false).unwrap();
    assert_eq!(report.segments_scanned, segments);
    assert_eq!((report.bytes_truncated, log.log_end_offset()), (0, 90));
    drop(log);
    let (_, report) = Log::open(dir.path(), small_config(), last_base + 1, false).unwrap();
    assert_eq!(
        report.segments_scanned, 1,
        "only the segment holding the recovery point"
    );
}

#[test]
fn torn_tail_is_truncated_on_unclean_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        dir.path(),
        LogConfig {
            flush: FlushPolicy::Os,
            ..small_config()
        },
    );
    let stored = fill(&mut log, 30);
    let path = last_segment_path(dir.path(), &log);
    drop(log);
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    let len = file.metadata().unwrap().len();
    file.set_len(len - 5).unwrap();
    let (log, report) = Log::open(dir.path(), small_config(), 0, false).unwrap();
    assert_eq!(report.bytes_truncated, (stored[29].len() - 5) as u64);
    assert_eq!(log.log_end_offset(), 87);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        len - stored[29].len() as u64
    );
    assert_eq!(slice_bytes(&log.read(86, 1).unwrap()), stored[28]);
}

#[test]
fn corrupt_batch_in_last_segment_drops_it_and_everything_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config());
    let stored = fill(&mut log, 30);
    let active_base = log.active.base_offset();
    let path = last_segment_path(dir.path(), &log);
    let len = stored[0].len() as u64;
    let batches_in_last = (90 - active_base) / 3;
    assert!(
        batches_in_last >= 3,
        "test needs a batch in the middle of the last segment"
    );
    let victim = 1u64; // second batch of the last segment
    drop(log);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let at = victim * len + len - 3; // inside its records
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, at).unwrap();
    file.write_all_at(&[byte[0] ^ 0x40], at).unwrap();
    let (log, report) = Log::open(dir.path(), small_config(), 0, false).unwrap();
    let kept_end = active_base + 3 * victim as i64;
    assert_eq!(log.log_end_offset(), kept_end);
    assert_eq!(
        report.bytes_truncated,
        (batches_in_last as u64 - victim) * len
    );
    for offset in 0..kept_end {
        assert_eq!(
            slice_bytes(&log.read(offset, 1).unwrap()),
            stored[(offset / 3) as usize]
        );
    }
}

#[test]
fn corrupt_batch_in_earlier_segment_removes_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config());
    let stored = fill(&mut log, 30);
    let segments = log.segment_count();
    drop(log);
    let path = segment_path(dir.path(), 0, "log");
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&[0xff], stored[0].len() as u64 + 30)
        .unwrap(); // second batch's header, inside the CRC
    let (log, report) = Log::open(dir.path(), small_config(), 0, false).unwrap();
    assert_eq!((log.log_end_offset(), log.segment_count()), (3, 1));
    assert_eq!(report.segments_removed, segments - 1);
    let mut files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "00000000000000000000.index",
            "00000000000000000000.log",
            "00000000000000000000.timeindex"
        ]
    );
}

#[test]
fn missing_or_corrupt_indexes_are_rebuilt_identically() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config());
    fill(&mut log, 30);
    log.close().unwrap();
    let index = segment_path(dir.path(), 0, "index");
    let second_base = {
        let (log, _) = Log::open(dir.path(), small_config(), 0, true).unwrap();
        *log.segments.keys().nth(1).unwrap()
    };
    let timeindex = segment_path(dir.path(), second_base, "timeindex");
    let (index_before, time_before) = (
        std::fs::read(&index).unwrap(),
        std::fs::read(&timeindex).unwrap(),
    );
    assert!(
        !index_before.is_empty() && !time_before.is_empty(),
        "test needs non-empty indexes"
    );
    std::fs::remove_file(&index).unwrap();
    std::fs::write(&timeindex, [1, 2, 3, 4, 5]).unwrap();
    let (log, report) = Log::open(dir.path(), small_config(), 90, true).unwrap();
    assert_eq!(report.indexes_rebuilt, 2);
    assert_eq!(report.bytes_truncated, 0);
    assert_eq!(std::fs::read(&index).unwrap(), index_before);
    // The sealed segment's extra final entry is written again at close, not by a rebuild.
    assert!(time_before.starts_with(&std::fs::read(&timeindex).unwrap()));
    assert_eq!(log.read(40, 1).unwrap().first_batch_base_offset, 39);
}

#[test]
fn time_retention_deletes_expired_segments_and_rolls_a_fully_expired_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        dir.path(),
        LogConfig {
            retention_ms: 10_000,
            ..small_config()
        },
    );
    fill(&mut log, 30); // timestamps 1000..=30000
    let bases: Vec<i64> = log.segments.keys().copied().collect();
    let second_max_ts = log.segments[&bases[1]].max_timestamp_and_offset().0;
    // Everything in the first two segments is older than now - retention.
    let deleted = log.apply_retention(second_max_ts + 10_001).unwrap();
    assert_eq!(deleted, 2);
    assert_eq!(log.log_start_offset(), bases[2]);
    assert!(!segment_path(dir.path(), bases[0], "log").exists());
    assert!(matches!(
        log.read(0, 10),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(
        log.read(bases[2], 1).unwrap().first_batch_base_offset,
        bases[2]
    );

    let remaining = log.segment_count();
    let deleted = log.apply_retention(30_000 + 10_001).unwrap();
    assert_eq!(deleted, remaining, "every non-empty segment expired");
    assert_eq!(
        (
            log.segment_count(),
            log.log_start_offset(),
            log.log_end_offset()
        ),
        (1, 90, 90)
    );
    assert_eq!(log.size_bytes(), 0);
    let mut b = batch(&[b"after"], 50_000);
    assert_eq!(log.append(&mut b, 50_000).unwrap().first_offset, 90);
}

#[test]
fn size_retention_keeps_the_log_at_least_retention_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config());
    fill(&mut log, 30);
    let sizes: Vec<u64> = log.all_segments().map(|s| s.size()).collect();
    let total: u64 = sizes.iter().sum();
    // Allow exactly the total minus the first segment and a bit: only the first segment can go.
    log.set_config(LogConfig {
        retention_bytes: (total - sizes[0] - 1) as i64,
        ..small_config()
    });
    assert_eq!(log.apply_retention(0).unwrap(), 1);
    assert_eq!(log.size_bytes(), total - sizes[0]);
    assert_eq!(
        log.log_start_offset(),
        log.segments.keys().next().copied().unwrap()
    );
    assert_eq!(log.apply_retention(0).unwrap(), 0, "nothing more breaches");
}

#[test]
fn offset_for_timestamp_finds_first_batch_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config());
    fill(&mut log, 30);
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 1000)));
    assert_eq!(log.offset_for_timestamp(1000).unwrap(), Some((0, 1000)));
    assert_eq!(log.offset_for_timestamp(1001).unwrap(), Some((3, 2000)));
    assert_eq!(
        log.offset_for_timestamp(25_500).unwrap(),
        Some((75, 26_000))
    );
    assert_eq!(
        log.offset_for_timestamp(30_000).unwrap(),
        Some((87, 30_000))
    );
    assert_eq!(log.offset_for_timestamp(30_001).unwrap(), None);
    // Out-of-order timestamps: the first batch reaching the target wins, not the last.
    let mut late = batch(&[b"x"], 500);
    log.append(&mut late, 0).unwrap();
    assert_eq!(log.offset_for_timestamp(400).unwrap(), Some((0, 1000)));
}

#[test]
fn log_append_time_rewrites_timestamp_and_crc() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        dir.path(),
        LogConfig {
            timestamp_type: TimestampType::LogAppendTime,
            ..small_config()
        },
    );
    let mut b = batch(&[b"a", b"b"], 1);
    let info = log.append(&mut b, 777_000).unwrap();
    assert_eq!(
        info,
        AppendInfo {
            first_offset: 0,
            last_offset: 1,
            max_timestamp: 777_000,
            log_append_time: Some(777_000),
            log_start_offset: 0
        }
    );
    let stored = slice_bytes(&log.read(0, 1000).unwrap());
    assert_eq!(
        stored, b,
        "the caller's buffer holds exactly what was stored"
    );
    let h = validate_batches(&stored, u32::MAX).expect("crc must be valid after the rewrite")[0];
    assert!(h.is_log_append_time());
    assert_eq!(h.max_timestamp, 777_000);
}

#[test]
fn invalid_batches_are_rejected_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        dir.path(),
        LogConfig {
            max_message_bytes: 200,
            ..small_config()
        },
    );
    fill(&mut log, 1);
    let (end, size) = (log.log_end_offset(), log.size_bytes());
    let good = batch(&[b"ok"], 5);
    let mut bad_crc = good.clone();
    let n = bad_crc.len();
    bad_crc[n - 1] ^= 1;
    let mut two = [good.clone(), bad_crc.clone()].concat();
    let before = two.clone();
    assert!(matches!(
        log.append(&mut two, 0),
        Err(LogError::CorruptRecord(BatchError::CrcMismatch { .. }))
    ));
    assert_eq!(two, before, "rejected buffer must not be rewritten");
    let mut big = batch(&[&[7u8; 300]], 5);
    assert!(matches!(
        log.append(&mut big, 0),
        Err(LogError::MessageTooLarge { max: 200, .. })
    ));
    let mut bad_count = good.clone();
    bad_count[60] = 2; // recordCount 2 with lastOffsetDelta 0
    assert!(matches!(
        log.append(&mut bad_count, 0),
        Err(LogError::CorruptRecord(_))
    ));
    assert_eq!((log.log_end_offset(), log.size_bytes()), (end, size));
}

#[test]
fn truncate_to_cuts_at_batch_boundaries_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config());
    let stored = fill(&mut log, 30);
    log.truncate_to(40).unwrap(); // inside batch 39..=41
    assert_eq!(log.log_end_offset(), 39);
    assert_eq!(slice_bytes(&log.read(38, 1).unwrap()), stored[12]);
    let mut b = batch(&[b"new"], 1);
    assert_eq!(log.append(&mut b, 0).unwrap().first_offset, 39);
    log.close().unwrap();
    let (log, _) = Log::open(dir.path(), small_config(), 0, false).unwrap();
    assert_eq!(log.log_end_offset(), 40);
    let mut log = log;
    log.truncate_to(0).unwrap();
    assert_eq!(
        (log.log_end_offset(), log.segment_count(), log.size_bytes()),
        (0, 1, 0)
    );
}

#[test]
fn batch_headers_expose_producer_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config());
    fill(&mut log, 20);
    let mut b = batch_with(&[b"p", b"q"], 9, 4242, 3, 17);
    log.append(&mut b, 0).unwrap();
    let headers: Vec<BatchHeader> = log.batch_headers(10).collect::<Result<_, _>>().unwrap();
    assert_eq!(headers.len(), 21 - 3);
    assert_eq!(
        headers[0].base_offset, 9,
        "starts at the batch containing offset 10"
    );
    let last = headers.last().unwrap();
    assert_eq!(
        (
            last.base_offset,
            last.last_offset,
            last.producer_id,
            last.producer_epoch,
            last.base_sequence
        ),
        (60, 61, 4242, 3, 17)
    );
}

#[test]
fn flush_policy_controls_the_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        dir.path(),
        LogConfig {
            flush: FlushPolicy::Os,
            segment_bytes: 1 << 20,
            ..small_config()
        },
    );
    fill(&mut log, 2);
    assert_eq!(log.recovery_point(), 0);
    let (file, end) = log.active_segment_handle();
    file.sync_data().unwrap();
    log.mark_flushed(end);
    assert_eq!(log.recovery_point(), 6);
    log.set_config(LogConfig {
        flush: FlushPolicy::Interval {
            messages: 6,
            ms: u64::MAX,
        },
        ..log.config().clone()
    });
    fill(&mut log, 1);
    assert_eq!(log.recovery_point(), 6);
    fill(&mut log, 1);
    assert_eq!(log.recovery_point(), 12);
    log.set_config(LogConfig {
        flush: FlushPolicy::EveryBatch,
        ..log.config().clone()
    });
    fill(&mut log, 1);
    assert_eq!(
        log.recovery_point(),
        12,
        "EveryBatch leaves the fsync to the caller's group commit"
    );
    let (file, end) = log.active_segment_handle();
    file.sync_data().unwrap();
    log.mark_flushed(end);
    assert_eq!(log.recovery_point(), 15);
}

#[test]
fn segment_ms_rolls_after_first_append_ages() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        dir.path(),
        LogConfig {
            segment_ms: 1000,
            segment_bytes: 1 << 20,
            ..small_config()
        },
    );
    let mut b = batch(&[b"a"], 0);
    log.append(&mut b, 10_000).unwrap();
    let mut b = batch(&[b"a"], 0);
    log.append(&mut b, 11_000).unwrap();
    assert_eq!(log.segment_count(), 1);
    let mut b = batch(&[b"a"], 0);
    log.append(&mut b, 11_001).unwrap();
    assert_eq!((log.segment_count(), log.active.base_offset()), (2, 2));
}

#[test]
fn segment_index_bytes_rolls_before_an_index_outgrows_it() {
    let dir = tempfile::tempdir().unwrap();
    let unbounded = LogConfig {
        segment_bytes: 1 << 20,
        index_interval_bytes: 1,
        ..small_config()
    };
    let mut log = open(dir.path(), unbounded.clone());
    fill(&mut log, 6);
    assert_eq!(log.segment_count(), 1, "10 MiB of index is far away");
    let dir = tempfile::tempdir().unwrap();
    // Room for three 8-byte offset entries and two 12-byte time entries.
    let mut log = open(
        dir.path(),
        LogConfig {
            segment_index_bytes: 24,
            ..unbounded
        },
    );
    fill(&mut log, 6);
    assert!(log.segment_count() > 1, "rolled on a full index");
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("index" | "timeindex")
        ) {
            let len = std::fs::metadata(&path).unwrap().len();
            assert!(len <= 24, "{} holds {len} bytes", path.display());
        }
    }
}

#[test]
fn segment_jitter_takes_a_stable_share_of_segment_ms_per_segment() {
    assert_eq!(roll_jitter_ms(0, 0), 0);
    assert_eq!(roll_jitter_ms(12_345, -5), 0);
    let jitters: Vec<i64> = (0..64)
        .map(|base| roll_jitter_ms(base * 1000, 10_000))
        .collect();
    assert!(jitters.iter().all(|j| (0..10_000).contains(j)));
    assert_eq!(
        jitters,
        (0..64)
            .map(|base| roll_jitter_ms(base * 1000, 10_000))
            .collect::<Vec<_>>()
    );
    let distinct: std::collections::BTreeSet<_> = jitters.iter().collect();
    assert!(distinct.len() > 32, "spread, not one value: {distinct:?}");

    let dir = tempfile::tempdir().unwrap();
    let jitter = roll_jitter_ms(0, 1000);
    let mut log = open(
        dir.path(),
        LogConfig {
            segment_ms: 1000,
            segment_jitter_ms: 1000,
            segment_bytes: 1 << 20,
            ..small_config()
        },
    );
    let mut b = batch(&[b"a"], 0);
    log.append(&mut b, 10_000).unwrap();
    let mut b = batch(&[b"a"], 0);
    log.append(&mut b, 10_000 + 1000 - jitter).unwrap();
    assert_eq!(
        log.segment_count(),
        1,
        "not older than segment.ms - jitter yet"
    );
    let mut b = batch(&[b"a"], 0);
    log.append(&mut b, 10_000 + 1000 - jitter + 1).unwrap();
    assert_eq!(log.segment_count(), 2);
}

#[test]
fn kafka_protocol_encoded_batches_append_and_decode() {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType as KTs,
    };
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        dir.path(),
        LogConfig {
            timestamp_type: TimestampType::LogAppendTime,
            ..small_config()
        },
    );
    fill(&mut log, 1);
    let records: Vec<Record> = (0..4)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: KTs::Creation,
            offset: i,
            sequence: i as i32, // the encoder starts a new batch when offset - sequence changes
            timestamp: 42,
            key: None,
            value: Some(bytes::Bytes::from(format!("v{i}"))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
    let info = log.append(&mut buf, 99).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (3, 6));
    let mut stored = bytes::Bytes::from(slice_bytes(&log.read(3, 1).unwrap()));
    let set = RecordBatchDecoder::decode(&mut stored).unwrap();
    assert_eq!(
        set.records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![3, 4, 5, 6]
    );
    // kafka-protocol's decoder ignores maxTimestamp, so check the header for the rewritten time.
    assert!(set
        .records
        .iter()
        .all(|r| r.timestamp_type == KTs::LogAppend));
    let h = log.batch_headers(3).next().unwrap().unwrap();
    assert_eq!((h.max_timestamp, h.record_count), (99, 4));
}

#[test]
fn delete_records_before_moves_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config());
    fill(&mut log, 30);
    let second = *log.segments.keys().nth(1).unwrap();
    log.delete_records_before(second + 1).unwrap();
    assert_eq!(log.log_start_offset(), second + 1);
    assert_eq!(log.segments.keys().next().copied(), Some(second));
    assert!(matches!(
        log.read(second, 1),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert!(matches!(
        log.delete_records_before(91),
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn stray_files_are_removed_and_odd_segment_names_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config());
    fill(&mut log, 2);
    log.close().unwrap();
    std::fs::write(dir.path().join("00000000000000000000.log.deleted"), b"x").unwrap();
    std::fs::write(dir.path().join("00000000000000000077.index"), b"").unwrap();
    std::fs::write(dir.path().join("leader-epoch-checkpoint"), b"0\n0\n").unwrap();
    let (log, report) = Log::open(dir.path(), small_config(), 0, true).unwrap();
    assert_eq!((report.stray_files_removed, log.log_end_offset()), (2, 6));
    assert!(
        dir.path().join("leader-epoch-checkpoint").exists(),
        "files we do not own are left alone"
    );
    drop(log);
    std::fs::write(dir.path().join("12.log"), b"").unwrap();
    let err = Log::open(dir.path(), small_config(), 0, true).unwrap_err();
    assert!(
        matches!(&err, LogError::UnexpectedFile { path } if path.ends_with("12.log")),
        "{err:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_or_change_the_log(mut junk in proptest::collection::vec(any::<u8>(), 0..400)) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), small_config());
        fill(&mut log, 2);
        let _ = log.append(&mut junk, 0);
        prop_assert_eq!((log.log_end_offset(), log.size_bytes()), (6, 2 * batch(&[b"value-aaaaaaaa", b"value-bbbbbbbb", b"value-cccccccc"], 0).len() as u64));
    }

    #[test]
    fn a_flipped_byte_is_rejected_unless_outside_the_crc(at in 0usize..100, bit in 0u8..8) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), small_config());
        let mut b = batch(&[b"some value", b"another"], 5);
        let at = at % b.len();
        b[at] ^= 1 << bit;
        let result = log.append(&mut b, 0);
        // baseOffset (0..8) and partitionLeaderEpoch (12..16) are outside the CRC and get overwritten or kept.
        let outside_crc = at < 8 || (12..16).contains(&at);
        prop_assert_eq!(result.is_ok(), outside_crc, "byte {} bit {}", at, bit);
        prop_assert_eq!(log.log_end_offset(), if outside_crc { 2 } else { 0 });
    }
}
