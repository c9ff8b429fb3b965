//! Builds one RecordBatch v2 the way a producer would, with kafka-protocol's encoder: for records the broker
//! writes itself (`__consumer_offsets`) and for tests that need real batches.
//!
//! It always yields exactly one batch, because Produce v3+ and the log accept one batch per partition. It must
//! never be used on the append path to rewrite what a producer sent.

use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    indexmap::IndexMap,
    protocol::StrBytes,
    records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType},
};

#[derive(Debug, thiserror::Error)]
pub enum BatchBuildError {
    #[error("a record batch needs at least one record")]
    Empty,
    #[error("encoding a record batch of {records} records")]
    Encode {
        records: usize,
        source: anyhow::Error,
    },
}

/// One record to put in the batch. Without a timestamp it gets the batch's.
#[derive(Debug, Clone, Default)]
pub struct BatchRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    pub timestamp: Option<i64>,
}

impl BatchRecord {
    pub fn new(key: Option<Bytes>, value: Option<Bytes>) -> Self {
        Self {
            key,
            value,
            ..Self::default()
        }
    }

    pub fn header(mut self, name: impl Into<String>, value: Option<Bytes>) -> Self {
        self.headers.push((name.into(), value));
        self
    }

    pub fn timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }
}

/// A builder for one batch: not idempotent, uncompressed and stamped with the current time unless told
/// otherwise.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    records: Vec<BatchRecord>,
    timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    compression: Compression,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchBuilder {
    pub fn new() -> Self {
        Self {
            records: Vec::new(),
            timestamp: now_ms(),
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            compression: Compression::None,
        }
    }

    pub fn record(self, key: Option<Bytes>, value: Option<Bytes>) -> Self {
        self.push(BatchRecord::new(key, value))
    }

    pub fn push(mut self, record: BatchRecord) -> Self {
        self.records.push(record);
        self
    }

    /// The timestamp of every record that has none of its own.
    pub fn timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// Makes the batch idempotent: its records get sequences `base_sequence`, `base_sequence + 1`, ...
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Encodes the batch with base offset 0 (the log assigns the real one on append).
    pub fn build(&self) -> Result<Bytes, BatchBuildError> {
        if self.records.is_empty() {
            return Err(BatchBuildError::Empty);
        }
        let records: Vec<Record> = self
            .records
            .iter()
            .enumerate()
            .map(|(i, r)| Record {
                transactional: false,
                control: false,
                partition_leader_epoch: -1,
                producer_id: self.producer_id,
                producer_epoch: self.producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // The encoder starts a new batch whenever offset - sequence changes: sequences that advance with
                // the offsets keep every record in one batch. Without a producer id the base sequence stays -1
                // (Kafka's "no sequence"), and the sequence means nothing to readers.
                sequence: self.base_sequence.wrapping_add(i as i32),
                timestamp: r.timestamp.unwrap_or(self.timestamp),
                key: r.key.clone(),
                value: r.value.clone(),
                headers: r
                    .headers
                    .iter()
                    .map(|(name, value)| (StrBytes::from_string(name.clone()), value.clone()))
                    .collect::<IndexMap<_, _>>(),
                delete_horizon: false,
            })
            .collect();
        let mut batch = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut batch,
            records.iter(),
            &RecordEncodeOptions {
                version: 2,
                compression: self.compression,
            },
        )
        .map_err(|source| BatchBuildError::Encode {
            records: records.len(),
            source,
        })?;
        Ok(batch.freeze())
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use kafka_protocol::records::RecordBatchDecoder;

    use super::*;
    use crate::log::validate_batches;

    #[test]
    fn many_records_make_one_valid_batch() {
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let batch = BatchBuilder::new()
                .timestamp(1_000)
                .compression(compression)
                .record(
                    Some(Bytes::from_static(b"k0")),
                    Some(Bytes::from_static(b"v0")),
                )
                .push(
                    BatchRecord::new(None, Some(Bytes::from_static(b"v1")))
                        .header("h", Some(Bytes::from_static(b"x")))
                        .timestamp(2_000),
                )
                .record(Some(Bytes::from_static(b"k2")), None)
                .build()
                .unwrap();
            let headers = validate_batches(&batch, 1 << 20).unwrap();
            assert_eq!(headers.len(), 1, "{compression:?}: one batch");
            let header = headers[0];
            assert_eq!((header.record_count, header.last_offset), (3, 2));
            assert_eq!((header.producer_id, header.base_sequence), (-1, -1));
            assert_eq!(header.max_timestamp, 2_000);
            assert_eq!(header.compression(), compression as u8);
            let set = RecordBatchDecoder::decode(&mut batch.clone()).unwrap();
            assert_eq!(
                set.records[1]
                    .headers
                    .get(&b"h"[..])
                    .cloned()
                    .flatten()
                    .as_deref(),
                Some(&b"x"[..])
            );
            assert_eq!(set.records[2].value, None, "a tombstone stays null");
        }
    }

    #[test]
    fn idempotent_batches_carry_the_producer_and_wrap_sequences() {
        let batch = BatchBuilder::new()
            .producer(42, 3, i32::MAX)
            .record(None, Some(Bytes::from_static(b"a")))
            .record(None, Some(Bytes::from_static(b"b")))
            .build()
            .unwrap();
        let headers = validate_batches(&batch, 1 << 20).unwrap();
        assert_eq!(
            headers.len(),
            1,
            "a sequence wrapping past i32::MAX must not split the batch"
        );
        assert_eq!(
            (
                headers[0].producer_id,
                headers[0].producer_epoch,
                headers[0].base_sequence
            ),
            (42, 3, i32::MAX)
        );
    }

    #[test]
    fn an_empty_batch_is_refused() {
        assert!(matches!(
            BatchBuilder::new().build(),
            Err(BatchBuildError::Empty)
        ));
    }
}
