//! Record-level checks of a produced batch, as Kafka's `LogValidator` makes them before an append (here
//! before `Partition::append`, against the broker's clock and the partition's config at that moment): a
//! compacted topic refuses records without a key, and a CreateTime topic refuses timestamps outside
//! [now - `message.timestamp.before.max.ms`, now + `message.timestamp.after.max.ms`]. Each refused record is
//! named by its index in the batch (KIP-467), and one refused record fails the whole batch.
//!
//! Scanning a batch (and decompressing it, as a stream: memory does not follow the compression ratio) costs
//! CPU, so it happens only when a check needs the records:
//! always for compacted topics, and for timestamps only when the batch header's timestamps say a record may
//! be out of range (its max timestamp for the upper bound; any finite lower bound needs every record). A
//! batch whose header understates its max timestamp is trusted, as the log trusts the header elsewhere.
//! Pure: reads the bytes and the config, changes nothing.

use std::{fmt, ops::ControlFlow};

use crate::{
    log::{parse_header, LogConfig, TimestampType, CONTROL_BIT},
    partition::recompress::scan_records,
};

/// Which Kafka error a refused batch gets: INVALID_TIMESTAMP when any record's timestamp was refused,
/// INVALID_RECORD otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordErrorKind {
    InvalidRecord,
    InvalidTimestamp,
}

/// One refused record: its index in the batch and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub batch_index: i32,
    pub message: String,
}

/// Every refused record of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordErrors {
    pub kind: RecordErrorKind,
    pub errors: Vec<RecordError>,
}

impl fmt::Display for RecordErrors {
    /// Kafka's partition-level `error_message` for the same refusal, word for word.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            RecordErrorKind::InvalidTimestamp => {
                f.write_str("One or more records have been rejected due to invalid timestamp")
            }
            RecordErrorKind::InvalidRecord => {
                write!(
                    f,
                    "One or more records have been rejected due to {} record errors in total, and only \
                     showing the first three errors at most: [",
                    self.errors.len()
                )?;
                for (i, e) in self.errors.iter().take(3).enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(
                        f,
                        "RecordError(batchIndex={}, message='{}')",
                        e.batch_index, e.message
                    )?;
                }
                f.write_str("]")
            }
        }
    }
}

/// The timestamp range a CreateTime record must fall in, as Kafka computes it.
#[derive(Debug, Clone, Copy)]
struct TimestampBounds {
    now_ms: i64,
    before_max_ms: i64,
    after_max_ms: i64,
}

impl TimestampBounds {
    fn refuses(&self, timestamp: i64) -> bool {
        let behind = i128::from(self.now_ms) - i128::from(timestamp);
        behind > i128::from(self.before_max_ms) || -behind > i128::from(self.after_max_ms)
    }

    /// Kafka's message, including its bounds as Java's long arithmetic prints them (wrapping).
    fn message(&self, timestamp: i64, offset: i64) -> String {
        format!(
            "Timestamp {timestamp} of message with offset {offset} is out of range. The timestamp should be within [{}, {}]",
            self.now_ms.wrapping_sub(self.before_max_ms),
            self.now_ms.wrapping_add(self.after_max_ms)
        )
    }
}

/// Checks the records of the single batch in `records` for `topic`-`partition` under `config`.
pub fn validate_records(
    records: &[u8],
    config: &LogConfig,
    topic: &str,
    partition: i32,
    now_ms: i64,
) -> Result<(), RecordErrors> {
    // Malformed batches are the log's to refuse, with a precise reason.
    let Ok(header) = parse_header(records, 0) else {
        return Ok(());
    };
    let create_time = config.timestamp_type == TimestampType::CreateTime;
    let bounds = TimestampBounds {
        now_ms,
        before_max_ms: config.timestamp_before_max_ms,
        after_max_ms: config.timestamp_after_max_ms,
    };
    let check_timestamps = create_time
        && (config.timestamp_before_max_ms != i64::MAX
            || bounds.refuses(header.max_timestamp)
            || bounds.refuses(header.base_timestamp));
    // A producer must never claim LogAppendTime; Kafka refuses such records unless they carry a CreateTime
    // timestamp it can check instead.
    let claims_append_time = header.is_log_append_time();
    if !config.compact && !check_timestamps && !claims_append_time {
        return Ok(());
    }
    if header.attributes & CONTROL_BIT != 0 {
        return Ok(());
    }
    let mut errors = Vec::new();
    let mut timestamp_refused = false;
    let scanned = scan_records(records, &header, config.max_decompressed_bytes, |record| {
        let (batch_index, offset, timestamp) = (record.index, record.offset, record.timestamp);
        if config.compact && record.key_len < 0 {
            errors.push(RecordError {
                batch_index,
                message: format!(
                    "Compacted topic cannot accept message without key in topic partition \
                     {topic}-{partition}"
                ),
            });
        } else if create_time && timestamp != -1 {
            if check_timestamps && bounds.refuses(timestamp) {
                timestamp_refused = true;
                errors.push(RecordError {
                    batch_index,
                    message: bounds.message(timestamp, offset),
                });
            }
        } else if claims_append_time {
            timestamp_refused = true;
            errors.push(RecordError {
                batch_index,
                message: format!(
                    "Invalid timestamp type in message DefaultRecord(offset={}, timestamp={}, key={} \
                     bytes, value={} bytes). Producer should not set timestamp type to LogAppendTime.",
                    offset,
                    timestamp,
                    record.key_len.max(0),
                    record.value_len.max(0)
                ),
            });
        }
        ControlFlow::Continue(())
    });
    // Records that cannot be read are judged elsewhere: broken framing by the log, and records over
    // max.decompressed.message.bytes by the append when it must read them (compacted topics, recompression);
    // otherwise such a batch is stored as sent, its timestamps unchecked past that bound, which is what keeps
    // this check's work finite.
    if scanned.is_err() || errors.is_empty() {
        return Ok(());
    }
    Err(RecordErrors {
        kind: if timestamp_refused {
            RecordErrorKind::InvalidTimestamp
        } else {
            RecordErrorKind::InvalidRecord
        },
        errors,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::log::builder::{BatchBuilder, BatchRecord};

    const NOW: i64 = 1_700_000_000_000;

    fn batch(records: &[(Option<&str>, i64)]) -> Vec<u8> {
        records
            .iter()
            .fold(BatchBuilder::new(), |b, (key, timestamp)| {
                b.push(
                    BatchRecord::new(
                        key.map(|k| Bytes::from(k.to_owned())),
                        Some(Bytes::from_static(b"v")),
                    )
                    .timestamp(*timestamp),
                )
            })
            .build()
            .unwrap()
            .to_vec()
    }

    fn compacted() -> LogConfig {
        LogConfig {
            compact: true,
            ..LogConfig::default()
        }
    }

    #[test]
    fn keyless_records_of_a_compacted_topic_are_named_by_index() {
        let records = batch(&[(Some("a"), NOW), (None, NOW), (Some("b"), NOW), (None, NOW)]);
        let refused = validate_records(&records, &compacted(), "t", 0, NOW).unwrap_err();
        assert_eq!(refused.kind, RecordErrorKind::InvalidRecord);
        let indexes: Vec<i32> = refused.errors.iter().map(|e| e.batch_index).collect();
        assert_eq!(indexes, vec![1, 3]);
        assert_eq!(
            refused.errors[0].message,
            "Compacted topic cannot accept message without key in topic partition t-0"
        );
        assert_eq!(
            refused.to_string(),
            "One or more records have been rejected due to 2 record errors in total, and only showing the \
             first three errors at most: [RecordError(batchIndex=1, message='Compacted topic cannot accept \
             message without key in topic partition t-0'), RecordError(batchIndex=3, message='Compacted \
             topic cannot accept message without key in topic partition t-0')]"
        );
        assert!(validate_records(&records, &LogConfig::default(), "t", 0, NOW).is_ok());
    }

    #[test]
    fn compressed_records_are_judged_as_uncompressed_ones() {
        use kafka_protocol::records::Compression;
        let hour = 3_600_000;
        let bounded = LogConfig {
            compact: true,
            timestamp_before_max_ms: hour,
            ..LogConfig::default()
        };
        for compression in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let records = [(Some("a"), NOW), (None, NOW), (Some("b"), NOW - 2 * hour)]
                .iter()
                .fold(
                    BatchBuilder::new().compression(compression),
                    |b, (key, ts)| {
                        b.push(
                            BatchRecord::new(key.map(|k| Bytes::from(k.to_owned())), None)
                                .timestamp(*ts),
                        )
                    },
                )
                .build()
                .unwrap()
                .to_vec();
            let refused = validate_records(&records, &bounded, "t", 0, NOW).unwrap_err();
            let indexes: Vec<i32> = refused.errors.iter().map(|e| e.batch_index).collect();
            assert_eq!(indexes, vec![1, 2], "{compression:?}");
            assert_eq!(
                refused.kind,
                RecordErrorKind::InvalidTimestamp,
                "{compression:?}"
            );
            assert!(
                refused.errors[1].message.starts_with(&format!(
                    "Timestamp {} of message with offset 2 ",
                    NOW - 2 * hour
                )),
                "{compression:?}: {}",
                refused.errors[1].message
            );
        }
    }

    #[test]
    fn timestamps_beyond_the_bounds_are_refused() {
        let hour = 3_600_000;
        let records = batch(&[
            (Some("a"), NOW),
            (Some("b"), NOW - 2 * hour),
            (Some("c"), NOW + 2 * hour),
        ]);
        let default = LogConfig::default();
        let refused = validate_records(&records, &default, "t", 0, NOW).unwrap_err();
        assert_eq!(refused.kind, RecordErrorKind::InvalidTimestamp);
        assert_eq!(
            refused.errors,
            vec![RecordError {
                batch_index: 2,
                message: format!(
                    "Timestamp {} of message with offset 2 is out of range. The timestamp should be within \
                     [{}, {}]",
                    NOW + 2 * hour,
                    NOW.wrapping_sub(i64::MAX),
                    NOW + hour
                ),
            }],
            "Kafka 4.x: after.max.ms defaults to one hour, before.max.ms to unlimited"
        );
        assert_eq!(
            refused.to_string(),
            "One or more records have been rejected due to invalid timestamp"
        );
        let bounded = LogConfig {
            timestamp_before_max_ms: hour,
            ..LogConfig::default()
        };
        let refused = validate_records(&records, &bounded, "t", 0, NOW).unwrap_err();
        let indexes: Vec<i32> = refused.errors.iter().map(|e| e.batch_index).collect();
        assert_eq!(indexes, vec![1, 2]);
        let append_time = LogConfig {
            timestamp_type: TimestampType::LogAppendTime,
            ..LogConfig::default()
        };
        assert!(
            validate_records(&records, &append_time, "t", 0, NOW).is_ok(),
            "LogAppendTime topics replace the timestamps instead"
        );
    }
}
