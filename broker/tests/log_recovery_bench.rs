//! Benchmark, not a test: writes an unflushed log (default 1 GiB, `TRIBUTARY_BENCH_MB` to change), then times
//! an unclean open that CRC-checks every batch and rebuilds the indexes. Run with
//! `cargo test --release --test log_recovery_bench -- --ignored --nocapture`.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tributary_broker::log::{FlushPolicy, Log, LogConfig};

#[test]
#[ignore]
fn unclean_recovery_throughput() {
    let mb: u64 = std::env::var("TRIBUTARY_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let records: Vec<Record> = (0..100)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: i as i32,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(bytes::Bytes::from(vec![b'v'; 160])),
            headers: Default::default(),
        })
        .collect();
    let mut template = bytes::BytesMut::new();
    RecordBatchEncoder::encode(
        &mut template,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush: FlushPolicy::Os,
        ..LogConfig::default()
    };
    let (mut log, _) = Log::open(dir.path(), config.clone(), 0, true).unwrap();
    let started = Instant::now();
    while log.size_bytes() < mb << 20 {
        let mut batch = template.clone();
        log.append(&mut batch, 0).unwrap();
    }
    let (bytes, end) = (log.size_bytes(), log.log_end_offset());
    eprintln!(
        "wrote {} MiB ({end} records) in {:?}",
        bytes >> 20,
        started.elapsed()
    );
    drop(log); // no close: the next open must recover

    let started = Instant::now();
    let (log, report) = Log::open(dir.path(), config, 0, false).unwrap();
    let took = started.elapsed();
    assert_eq!(log.log_end_offset(), end);
    assert_eq!(report.bytes_truncated, 0);
    eprintln!(
        "recovered {} segments, {} MiB in {took:?} ({:.0} MiB/s)",
        report.segments_scanned,
        bytes >> 20,
        (bytes >> 20) as f64 / took.as_secs_f64()
    );
}
