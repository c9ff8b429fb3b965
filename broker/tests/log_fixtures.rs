//! Black-box recovery tests against checked-in segment files, so a change to the writer cannot hide a change
//! in what the reader accepts. Regenerate with
//! `TRIBUTARY_WRITE_FIXTURES=1 cargo test --test log_fixtures -- --ignored write_fixtures`.
#![allow(clippy::unwrap_used)]

use std::{os::unix::fs::FileExt, path::PathBuf};

use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tributary_broker::log::{validate_batches, Log, LogConfig};

const SEGMENT: &str = "00000000000000000000.log";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// One batch of `n` records encoded by kafka-protocol, as a Java-compatible producer would send it.
fn producer_batch(n: i64, first_sequence: i32, timestamp: i64) -> bytes::BytesMut {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: 1000,
            producer_epoch: 0,
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: first_sequence + i as i32,
            timestamp,
            key: Some(bytes::Bytes::from(format!("key-{i}"))),
            value: Some(bytes::Bytes::from(format!("value-{i}-{}", "x".repeat(40)))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf
}

/// Copies a fixture's segment into a fresh partition directory (without its indexes).
fn stage(name: &str) -> (tempfile::TempDir, Vec<u8>) {
    let bytes = std::fs::read(fixtures().join(name).join(SEGMENT)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(SEGMENT), &bytes).unwrap();
    (dir, bytes)
}

/// Fixture layout: batches of 3, 4 and 5 records (offsets 0-2, 3-6, 7-11).
#[test]
#[ignore]
fn write_fixtures() {
    if std::env::var_os("TRIBUTARY_WRITE_FIXTURES").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = Log::open(dir.path(), LogConfig::default(), 0, true).unwrap();
    for (n, seq, ts) in [
        (3, 0, 1_700_000_000_000),
        (4, 3, 1_700_000_001_000),
        (5, 7, 1_700_000_002_000),
    ] {
        log.append(&mut producer_batch(n, seq, ts), 0).unwrap();
    }
    log.close().unwrap();
    let good = std::fs::read(dir.path().join(SEGMENT)).unwrap();
    let sizes: Vec<usize> = validate_batches(&good, u32::MAX)
        .unwrap()
        .iter()
        .map(|h| h.size as usize)
        .collect();
    let write = |name: &str, bytes: &[u8]| {
        std::fs::create_dir_all(fixtures().join(name)).unwrap();
        std::fs::write(fixtures().join(name).join(SEGMENT), bytes).unwrap();
    };
    write("torn-tail", &good[..good.len() - 7]);
    let mut flipped = good.clone();
    flipped[sizes[0] + sizes[1] / 2] ^= 0x01;
    write("corrupt-middle", &flipped);
    write("intact", &good);
}

#[test]
fn torn_tail_fixture_recovers_first_two_batches() {
    let (dir, bytes) = stage("torn-tail");
    let (log, report) = Log::open(dir.path(), LogConfig::default(), 0, false).unwrap();
    assert_eq!(log.log_end_offset(), 7);
    let kept = std::fs::metadata(dir.path().join(SEGMENT)).unwrap().len();
    assert_eq!(report.bytes_truncated, bytes.len() as u64 - kept);
    let kept_batches = validate_batches(&bytes[..kept as usize], u32::MAX).unwrap();
    assert_eq!(
        kept_batches
            .iter()
            .map(|h| (h.base_offset, h.last_offset))
            .collect::<Vec<_>>(),
        vec![(0, 2), (3, 6)]
    );
    assert!(dir.path().join("00000000000000000000.index").exists());
}

#[test]
fn corrupt_middle_fixture_keeps_only_the_first_batch() {
    let (dir, bytes) = stage("corrupt-middle");
    let (log, report) = Log::open(dir.path(), LogConfig::default(), 0, false).unwrap();
    assert_eq!(log.log_end_offset(), 3);
    let first = validate_batches(&bytes[..report_kept(&dir)], u32::MAX).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(
        report.bytes_truncated as usize,
        bytes.len() - first[0].size as usize
    );
    let slice = log.read(2, 1).unwrap();
    let mut buf = vec![0u8; slice.len];
    slice.file.read_exact_at(&mut buf, slice.position).unwrap();
    assert_eq!(buf, bytes[..first[0].size as usize]);
}

#[test]
fn intact_fixture_without_indexes_opens_clean_and_rebuilds_them() {
    let (dir, _) = stage("intact");
    let (log, report) = Log::open(dir.path(), LogConfig::default(), 0, true).unwrap();
    assert_eq!(
        (
            log.log_end_offset(),
            report.indexes_rebuilt,
            report.bytes_truncated
        ),
        (12, 1, 0)
    );
    assert_eq!(
        log.offset_for_timestamp(1_700_000_000_500).unwrap(),
        Some((3, 1_700_000_001_000))
    );
    let headers: Vec<_> = log.batch_headers(0).map(|h| h.unwrap()).collect();
    assert_eq!(
        headers
            .iter()
            .map(|h| (h.producer_id, h.base_sequence))
            .collect::<Vec<_>>(),
        vec![(1000, 0), (1000, 3), (1000, 7)]
    );
}

fn report_kept(dir: &tempfile::TempDir) -> usize {
    std::fs::metadata(dir.path().join(SEGMENT)).unwrap().len() as usize
}
