//! `compression.type` on the leader's append path: batches in another codec are rebuilt in the topic's, with
//! every header field and record byte kept; matching codecs, `producer` and followers keep the bytes as sent;
//! broken or oversized compressed batches are refused before anything is written.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};

use bytes::Bytes;
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder};

use super::recompress::{scan_records, ScannedRecord};
use super::*;
use crate::log::{
    builder::BatchBuilder, check_batch, finish_rebuilt_batch, TimestampType, TopicCompression,
    CONTROL_BIT, HEADER_LEN, TIMESTAMP_TYPE_BIT,
};

const BASE_TIMESTAMP: i64 = 1_700_000_000_000;

fn open(config: LogConfig) -> (tempfile::TempDir, Partition) {
    let dir = tempfile::tempdir().unwrap();
    let (partition, _) = Partition::open(
        "t",
        Uuid::nil(),
        0,
        dir.path(),
        config,
        LogStartState::default(),
        Arc::new(StorageHealth::new(dir.path())),
    )
    .unwrap();
    (dir, partition)
}

fn topic(compression: TopicCompression) -> LogConfig {
    LogConfig {
        compression,
        ..LogConfig::default()
    }
}

fn stored(partition: &Partition) -> Vec<u8> {
    partition
        .read(0, 1 << 24)
        .unwrap()
        .read_bytes()
        .unwrap()
        .to_vec()
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

type RawRecord<'a> = (
    Option<&'a [u8]>,
    Option<&'a [u8]>,
    &'a [(&'a str, Option<&'a [u8]>)],
);

/// A records section as a producer writes it: offset deltas 0, 1, ..., timestamp deltas 10 ms apart.
/// Written by hand so that it can hold what kafka-protocol's `Record` cannot, such as a header key twice.
fn raw_records(records: &[RawRecord<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (key, value, headers)) in records.iter().enumerate() {
        let mut r = vec![0u8];
        put_varint(&mut r, 10 * i as i64);
        put_varint(&mut r, i as i64);
        put_bytes(&mut r, *key);
        put_bytes(&mut r, *value);
        put_varint(&mut r, headers.len() as i64);
        for (name, value) in *headers {
            put_bytes(&mut r, Some(name.as_bytes()));
            put_bytes(&mut r, *value);
        }
        put_varint(&mut out, r.len() as i64);
        out.extend_from_slice(&r);
    }
    out
}

fn sample_records() -> Vec<u8> {
    raw_records(&[
        (
            Some(b"k0"),
            Some(b"v0"),
            &[("h", Some(b"1")), ("h", Some(b"2"))],
        ),
        (None, Some(b"no key"), &[]),
        (Some(b"k2"), None, &[("empty", None)]),
    ])
}

/// An idempotent batch of `count` records whose records section is `payload` in codec `codec`.
fn batch_around(codec: u8, payload: &[u8], count: i32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // batchLength, set below
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.push(2);
    b.extend_from_slice(&0u32.to_be_bytes()); // crc, set below
    b.extend_from_slice(&i16::from(codec).to_be_bytes());
    b.extend_from_slice(&(count - 1).to_be_bytes());
    b.extend_from_slice(&BASE_TIMESTAMP.to_be_bytes());
    b.extend_from_slice(&(BASE_TIMESTAMP + 10 * i64::from(count - 1)).to_be_bytes());
    b.extend_from_slice(&42i64.to_be_bytes());
    b.extend_from_slice(&7i16.to_be_bytes());
    b.extend_from_slice(&100i32.to_be_bytes());
    b.extend_from_slice(&count.to_be_bytes());
    b.extend_from_slice(payload);
    finish_rebuilt_batch(&mut b, codec);
    b
}

fn gzip(raw: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(raw).unwrap();
    e.finish().unwrap()
}

fn gunzip(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(payload)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn lz4(raw: &[u8]) -> Vec<u8> {
    let mut e = lz4::EncoderBuilder::new().build(Vec::new()).unwrap();
    e.write_all(raw).unwrap();
    let (out, result) = e.finish();
    result.unwrap();
    out
}

/// The fields a consumer reads from each record of `batch`, decoded by kafka-protocol.
fn decoded(batch: &[u8]) -> Vec<Record> {
    RecordBatchDecoder::decode(&mut Bytes::copy_from_slice(batch))
        .unwrap()
        .records
}

#[test]
fn a_gzip_batch_in_a_zstd_topic_is_stored_as_zstd_with_every_byte_of_its_records() {
    let raw = sample_records();
    let mut sent = batch_around(1, &gzip(&raw), 3);
    let original = sent.clone();
    let (_dir, partition) = open(topic(TopicCompression::Zstd { level: 3 }));
    let outcome = partition.append(&mut sent, 1_000).unwrap();
    assert!(outcome.recompressed, "gzip into a zstd topic is rebuilt");
    assert_eq!((outcome.base_offset, outcome.last_offset), (0, 2));
    let stored = stored(&partition);
    let header = check_batch(&stored, 0).expect("the rebuilt batch is valid, CRC included");
    assert_eq!(header.compression(), 4, "stored as zstd");
    let before = parse_header(&original, 0).unwrap();
    assert_eq!(
        header.attributes & !0x07,
        before.attributes & !0x07,
        "only the codec bits change"
    );
    assert_eq!(
        (
            header.producer_id,
            header.producer_epoch,
            header.base_sequence,
            header.record_count,
            header.last_offset,
            header.base_timestamp,
            header.max_timestamp,
        ),
        (42, 7, 100, 3, 2, BASE_TIMESTAMP, BASE_TIMESTAMP + 20),
        "producer, offsets and timestamps are the producer's"
    );
    assert_eq!(
        stored[..HEADER_LEN][27..],
        original[..HEADER_LEN][27..],
        "the header from the timestamps on is copied as it was"
    );
    let records = zstd::decode_all(&stored[HEADER_LEN..]).unwrap();
    assert_eq!(
        records, raw,
        "the records, duplicate header keys included, are the producer's bytes"
    );
    assert_eq!(sent, original, "the caller's buffer is not the one stored");
}

#[test]
fn every_codec_is_rebuilt_into_every_other_and_read_back_by_another_decoder() {
    let codecs = [
        (Compression::None, TopicCompression::Uncompressed),
        (Compression::Gzip, TopicCompression::Gzip { level: 9 }),
        (Compression::Snappy, TopicCompression::Snappy),
        (Compression::Lz4, TopicCompression::Lz4 { level: 9 }),
        (Compression::Lz4, TopicCompression::Lz4 { level: 12 }),
        (Compression::Zstd, TopicCompression::Zstd { level: -5 }),
    ];
    // Big enough for several snappy and lz4 blocks.
    let big = Bytes::from((0..200_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>());
    for (source, _) in codecs {
        let sent = BatchBuilder::new()
            .timestamp(BASE_TIMESTAMP)
            .producer(9, 1, 5)
            .compression(source)
            .record(Some(Bytes::from_static(b"a")), Some(big.clone()))
            .record(None, None)
            .push(
                crate::log::builder::BatchRecord::new(None, Some(Bytes::from_static(b"c")))
                    .header("trace", Some(Bytes::from_static(b"x")))
                    .timestamp(BASE_TIMESTAMP + 5),
            )
            .build()
            .unwrap();
        let header = parse_header(&sent, 0).unwrap();
        for (_, target) in codecs {
            let config = LogConfig {
                compression: target,
                ..LogConfig::default()
            };
            let what = format!("{source:?} into {target:?}");
            let Some(plan) = Recompression::plan(&config, header.attributes) else {
                assert_eq!(source as u8, target.codec_id().unwrap(), "{what}: skipped");
                continue;
            };
            let rebuilt = plan.rebuild(&sent, &header).unwrap();
            let rebuilt_header = check_batch(&rebuilt, 0).unwrap();
            assert_eq!(
                rebuilt_header.compression(),
                target.codec_id().unwrap(),
                "{what}"
            );
            assert_eq!(decoded(&rebuilt), decoded(&sent), "{what}");
        }
    }
}

#[test]
fn a_batch_in_the_topics_codec_and_any_batch_under_producer_are_stored_byte_identical() {
    for (codec, config) in [
        (
            Compression::Zstd,
            topic(TopicCompression::Zstd { level: 19 }),
        ),
        (Compression::Gzip, LogConfig::default()),
        (Compression::None, topic(TopicCompression::Uncompressed)),
    ] {
        let sent = BatchBuilder::new()
            .compression(codec)
            .record(
                Some(Bytes::from_static(b"k")),
                Some(Bytes::from_static(b"v")),
            )
            .build()
            .unwrap()
            .to_vec();
        let (_dir, partition) = open(config.clone());
        let outcome = partition.append(&mut sent.clone(), 1_000).unwrap();
        assert!(
            !outcome.recompressed,
            "{codec:?} under {:?}",
            config.compression
        );
        assert_eq!(
            stored(&partition),
            sent,
            "{codec:?} under {:?}",
            config.compression
        );
    }
}

#[test]
fn an_uncompressed_topic_stores_what_an_uncompressed_producer_would_have_sent() {
    let build = |compression| {
        BatchBuilder::new()
            .timestamp(BASE_TIMESTAMP)
            .compression(compression)
            .record(
                Some(Bytes::from_static(b"k")),
                Some(Bytes::from_static(b"v")),
            )
            .record(None, Some(Bytes::from_static(b"w")))
            .build()
            .unwrap()
            .to_vec()
    };
    let (_dir, partition) = open(topic(TopicCompression::Uncompressed));
    let outcome = partition
        .append(&mut build(Compression::Lz4), 1_000)
        .unwrap();
    assert!(outcome.recompressed);
    assert_eq!(stored(&partition), build(Compression::None));
}

#[test]
fn control_batches_are_never_rebuilt() {
    let config = topic(TopicCompression::Zstd { level: 3 });
    assert!(Recompression::plan(&config, CONTROL_BIT).is_none());
    assert!(Recompression::plan(&config, CONTROL_BIT | 1).is_none());
    assert!(Recompression::plan(&config, 1).is_some());
    assert!(Recompression::plan(&LogConfig::default(), 1).is_none());
}

#[test]
fn a_log_append_time_topic_stamps_the_rebuilt_batch() {
    let (_dir, partition) = open(LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..topic(TopicCompression::Snappy)
    });
    let mut sent = batch_around(1, &gzip(&sample_records()), 3);
    partition.append(&mut sent, 5_000).unwrap();
    let header = check_batch(&stored(&partition), 0).unwrap();
    assert_eq!(header.compression(), 2);
    assert_ne!(header.attributes & TIMESTAMP_TYPE_BIT, 0);
    assert_eq!(header.max_timestamp, 5_000);
}

#[test]
fn followers_store_the_leaders_codec_whatever_their_own_config_says() {
    let leader_batch = batch_around(1, &gzip(&sample_records()), 3);
    let (_dir, follower) = open(topic(TopicCompression::Zstd { level: 3 }));
    follower
        .append_as_follower(&leader_batch, 0, 1_000)
        .unwrap();
    assert_eq!(stored(&follower), leader_batch);
}

#[test]
fn raw_snappy_as_librdkafka_sends_it_is_read() {
    let raw = sample_records();
    let payload = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
    let mut sent = batch_around(2, &payload, 3);
    let (_dir, partition) = open(topic(TopicCompression::Gzip { level: -1 }));
    partition.append(&mut sent, 1_000).unwrap();
    let stored = stored(&partition);
    assert_eq!(parse_header(&stored, 0).unwrap().compression(), 1);
    assert_eq!(gunzip(&stored[HEADER_LEN..]), raw);
}

#[test]
fn broken_compressed_batches_are_refused_and_nothing_is_written() {
    let raw = sample_records();
    let mut with_junk = raw.clone();
    with_junk.extend_from_slice(b"junk");
    let lz4_payload = lz4(&raw);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "not gzip at all",
            batch_around(1, b"definitely not gzip", 3),
        ),
        ("a truncated gzip stream", {
            let g = gzip(&raw);
            batch_around(1, &g[..g.len() - 6], 3)
        }),
        (
            "more records declared than sent",
            batch_around(1, &gzip(&raw), 4),
        ),
        (
            "bytes after the last record",
            batch_around(1, &gzip(&with_junk), 3),
        ),
        (
            "a truncated lz4 frame",
            batch_around(3, &lz4_payload[..lz4_payload.len() - 4], 3),
        ),
        ("snappy that is not snappy", batch_around(2, &[0xff; 32], 3)),
        ("an unknown codec id", batch_around(6, &raw, 3)),
    ];
    let (_dir, partition) = open(topic(TopicCompression::Zstd { level: 3 }));
    for (what, mut sent) in cases {
        let err = partition.append(&mut sent, 1_000).unwrap_err();
        assert!(
            matches!(
                err,
                PartitionError::Recompress(
                    RecompressError::Decompress { .. }
                        | RecompressError::Records { .. }
                        | RecompressError::UnknownCodec { .. }
                )
            ),
            "{what}: {err:?}"
        );
        assert_eq!(partition.log_end_offset(), 0, "{what}: nothing written");
    }
    // The same checks hold for an uncompressed batch bound for a compressed topic.
    let mut lying = batch_around(0, &raw, 2);
    assert!(partition.append(&mut lying, 1_000).is_err());
    let mut good = batch_around(1, &gzip(&raw), 3);
    assert!(
        partition.append(&mut good, 1_000).is_ok(),
        "and the next batch is taken"
    );
}

/// The zstd records section of one record with `key` and a value of `len` zero bytes: a few KiB that
/// expand to `len`.
fn zstd_of_one_record_of_zeros(key: Option<&[u8]>, len: usize) -> Vec<u8> {
    let zeros = vec![0u8; len];
    zstd::encode_all(&raw_records(&[(key, Some(&zeros), &[])])[..], 3).unwrap()
}

#[test]
fn a_zip_bomb_stops_at_max_decompressed_bytes_and_max_message_bytes() {
    let payload = zstd_of_one_record_of_zeros(None, 8 << 20);
    assert!(payload.len() < 4096, "8 MiB of zeros is a small zstd batch");
    let (_dir, partition) = open(LogConfig {
        max_decompressed_bytes: 1 << 20,
        ..topic(TopicCompression::Gzip { level: 1 })
    });
    let err = partition
        .append(&mut batch_around(4, &payload, 1), 1_000)
        .unwrap_err();
    assert!(
        matches!(
            err,
            PartitionError::Recompress(RecompressError::DecompressedTooLarge { max: 1_048_576 })
        ),
        "{err:?}"
    );
    // Uncompressed, the same records would be a batch over max.message.bytes: refused as Kafka does.
    let (_dir, partition) = open(topic(TopicCompression::Uncompressed));
    let err = partition
        .append(&mut batch_around(4, &payload, 1), 1_000)
        .unwrap_err();
    assert!(
        matches!(
            err,
            PartitionError::Recompress(RecompressError::RebuiltTooLarge { max: 1_048_588, .. })
        ),
        "{err:?}"
    );
    assert_eq!(partition.log_end_offset(), 0);
}

#[test]
fn a_scan_sees_each_records_deltas_and_lengths_and_stops_when_told() {
    let raw = raw_records(&[
        (Some(b"k0"), Some(b"value-0"), &[("h", Some(b"1"))]),
        (None, Some(b"v1"), &[]),
        (Some(b"key-2"), None, &[]),
    ]);
    let batch = batch_around(1, &gzip(&raw), 3);
    let header = crate::log::parse_header(&batch, 0).unwrap();
    let mut seen = Vec::new();
    scan_records(&batch, &header, u32::MAX, |r| {
        seen.push(*r);
        ControlFlow::Continue(())
    })
    .unwrap();
    // batch_around's base offset is 0 and raw_records spaces timestamps 10 ms apart.
    let expected = |index, key_len, value_len| ScannedRecord {
        index,
        offset: i64::from(index),
        timestamp: BASE_TIMESTAMP + 10 * i64::from(index),
        key_len,
        value_len,
    };
    assert_eq!(
        seen,
        [expected(0, 2, 7), expected(1, -1, 2), expected(2, 5, -1)]
    );
    let mut visits = 0;
    scan_records(&batch, &header, u32::MAX, |_| {
        visits += 1;
        ControlFlow::Break(())
    })
    .unwrap();
    assert_eq!(visits, 1);
}

#[test]
fn a_compacted_topic_reads_a_zip_bomb_as_a_stream_and_stops_at_max_decompressed_bytes() {
    // 16 MiB of one keyed record in a few KiB of zstd: reading it whole to look for keyless records would
    // hold all of it (and a bigger one would take the broker down); the scan holds only its buffers.
    let payload = zstd_of_one_record_of_zeros(Some(b"k"), 16 << 20);
    let compacted = |max_decompressed_bytes| LogConfig {
        compact: true,
        max_decompressed_bytes,
        ..LogConfig::default()
    };
    let (_dir, partition) = open(compacted(1 << 20));
    let err = partition
        .append(&mut batch_around(4, &payload, 1), 1_000)
        .unwrap_err();
    assert!(
        matches!(
            err,
            PartitionError::Recompress(RecompressError::DecompressedTooLarge { max: 1_048_576 })
        ),
        "{err:?}"
    );
    assert_eq!(partition.log_end_offset(), 0);
    // Under Kafka's default bound the keyed record is read through and stored as sent.
    let (_dir, partition) = open(compacted(LogConfig::default().max_decompressed_bytes));
    partition
        .append(&mut batch_around(4, &payload, 1), 1_000)
        .unwrap();
    assert_eq!(partition.log_end_offset(), 1);
    // A keyless record behind a keyed one in a compressed batch is still found.
    let raw = raw_records(&[(Some(b"k"), Some(b"v"), &[]), (None, Some(b"v"), &[])]);
    let err = partition
        .append(&mut batch_around(1, &gzip(&raw), 2), 1_000)
        .unwrap_err();
    assert!(
        matches!(err, PartitionError::KeylessRecordInCompactedTopic),
        "{err:?}"
    );
}
