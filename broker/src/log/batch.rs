//! RecordBatch v2 framing: parsing the 61-byte header, validating batches as a producer sent them, and the
//! only in-place rewrites the log is allowed to make (base offset, LogAppendTime, CRC), plus the header fix-up
//! of a batch whose records section a leader rebuilt with another codec (`partition::recompress`).
//!
//! This module owns the byte layout. It must never re-encode, decompress or otherwise touch the records
//! section of a batch: the bytes a producer sent are the bytes a consumer reads.

pub mod builder;

use thiserror::Error;

/// Bytes before the `batchLength` field's coverage starts: baseOffset (8) + batchLength (4).
pub const LOG_OVERHEAD: usize = 12;
/// Size of the fixed RecordBatch v2 header, up to and including `recordCount`.
pub const HEADER_LEN: usize = 61;
/// The only record format the log accepts.
pub const MAGIC_V2: i8 = 2;

const LENGTH_OFFSET: usize = 8;
const LEADER_EPOCH_OFFSET: usize = 12;
const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const LAST_OFFSET_DELTA_OFFSET: usize = 23;
const BASE_TIMESTAMP_OFFSET: usize = 27;
const MAX_TIMESTAMP_OFFSET: usize = 35;
const PRODUCER_ID_OFFSET: usize = 43;
const PRODUCER_EPOCH_OFFSET: usize = 51;
const BASE_SEQUENCE_OFFSET: usize = 53;
const RECORD_COUNT_OFFSET: usize = 57;

/// Attribute bit set when the batch's timestamps were assigned by the broker.
pub const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
/// Attribute bit for batches written inside a transaction.
pub const TRANSACTIONAL_BIT: i16 = 1 << 4;
/// Attribute bit for control batches (transaction markers).
pub const CONTROL_BIT: i16 = 1 << 5;

/// Why a batch was rejected. Positions are byte offsets into the buffer that was validated.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BatchError {
    #[error("empty record set")]
    Empty,
    #[error("batch at byte {position} is truncated: needs {needed} bytes, {available} available")]
    Truncated {
        position: usize,
        needed: usize,
        available: usize,
    },
    #[error("batch at byte {position} has invalid batchLength {length}")]
    InvalidLength { position: usize, length: i32 },
    #[error("batch at byte {position} has magic {magic}, only v2 is supported")]
    UnsupportedMagic { position: usize, magic: i8 },
    #[error("batch at byte {position} has record count {count}")]
    InvalidRecordCount { position: usize, count: i32 },
    #[error(
        "batch at byte {position} has lastOffsetDelta {last_offset_delta} but {count} records"
    )]
    OffsetDeltaMismatch {
        position: usize,
        last_offset_delta: i32,
        count: i32,
    },
    #[error(
        "batch at byte {position} fails its crc: stored {stored:#010x}, computed {computed:#010x}"
    )]
    CrcMismatch {
        position: usize,
        stored: u32,
        computed: u32,
    },
    #[error("batch at byte {position} records section is inconsistent: {reason}")]
    RecordsMismatch {
        position: usize,
        reason: &'static str,
    },
    #[error("batch at byte {position} is {size} bytes, larger than the {max} byte limit")]
    TooLarge {
        position: usize,
        size: usize,
        max: u32,
    },
}

impl BatchError {
    /// Short label for metrics.
    pub fn category(&self) -> &'static str {
        match self {
            BatchError::TooLarge { .. } => "too_large",
            BatchError::CrcMismatch { .. } => "crc",
            _ => "malformed",
        }
    }
}

/// The fixed header of one batch, plus where it sits (in a segment file or in a validated buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub last_offset: i64,
    pub partition_leader_epoch: i32,
    pub max_timestamp: i64,
    pub base_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
    pub attributes: i16,
    pub crc: u32,
    /// Byte position of the batch's first byte (its baseOffset field).
    pub position: u64,
    /// Whole batch size in bytes, including the 12-byte offset/length prefix.
    pub size: u32,
}

impl BatchHeader {
    /// Compression codec id from attribute bits 0-2 (0 = none).
    pub fn compression(&self) -> u8 {
        (self.attributes & 0x07) as u8
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Reads the batch length prefix: returns the whole batch size (prefix included).
///
/// `prefix` must hold at least [`LOG_OVERHEAD`] bytes; the declared length is checked only for being able
/// to hold a v2 header, not against any buffer.
pub fn batch_size_from_prefix(prefix: &[u8], position: usize) -> Result<usize, BatchError> {
    if prefix.len() < LOG_OVERHEAD {
        return Err(BatchError::Truncated {
            position,
            needed: LOG_OVERHEAD,
            available: prefix.len(),
        });
    }
    let length = be_i32(prefix, LENGTH_OFFSET);
    if length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
        return Err(BatchError::InvalidLength { position, length });
    }
    Ok(LOG_OVERHEAD + length as usize)
}

/// Parses the header fields of the batch starting at `buf[0]`. Checks only that the header is present and the
/// magic is 2; see [`check_batch`] for full validation.
pub fn parse_header(buf: &[u8], position: u64) -> Result<BatchHeader, BatchError> {
    let pos = position as usize;
    if buf.len() < HEADER_LEN {
        return Err(BatchError::Truncated {
            position: pos,
            needed: HEADER_LEN,
            available: buf.len(),
        });
    }
    let size = batch_size_from_prefix(buf, pos)?;
    let magic = buf[MAGIC_OFFSET] as i8;
    if magic != MAGIC_V2 {
        return Err(BatchError::UnsupportedMagic {
            position: pos,
            magic,
        });
    }
    let base_offset = be_i64(buf, 0);
    let last_offset_delta = be_i32(buf, LAST_OFFSET_DELTA_OFFSET);
    Ok(BatchHeader {
        base_offset,
        last_offset: base_offset.wrapping_add(i64::from(last_offset_delta)),
        partition_leader_epoch: be_i32(buf, LEADER_EPOCH_OFFSET),
        max_timestamp: be_i64(buf, MAX_TIMESTAMP_OFFSET),
        base_timestamp: be_i64(buf, BASE_TIMESTAMP_OFFSET),
        producer_id: be_i64(buf, PRODUCER_ID_OFFSET),
        producer_epoch: be_i16(buf, PRODUCER_EPOCH_OFFSET),
        base_sequence: be_i32(buf, BASE_SEQUENCE_OFFSET),
        record_count: be_i32(buf, RECORD_COUNT_OFFSET),
        attributes: be_i16(buf, ATTRIBUTES_OFFSET),
        crc: be_u32(buf, CRC_OFFSET),
        position,
        // Cannot overflow: batchLength is an i32.
        size: size as u32,
    })
}

/// Fully validates exactly one batch occupying all of `buf`: header, record count vs lastOffsetDelta, CRC32C.
pub fn check_batch(buf: &[u8], position: u64) -> Result<BatchHeader, BatchError> {
    check_batch_inner(buf, position, true)
}

/// [`check_batch`] for a batch already in a segment: compaction removes records from the middle of a batch,
/// so lastOffsetDelta may exceed recordCount - 1 (offsets keep their gaps), but never fall below it.
pub(crate) fn check_stored_batch(buf: &[u8], position: u64) -> Result<BatchHeader, BatchError> {
    check_batch_inner(buf, position, false)
}

fn check_batch_inner(
    buf: &[u8],
    position: u64,
    contiguous: bool,
) -> Result<BatchHeader, BatchError> {
    let header = parse_header(buf, position)?;
    let pos = position as usize;
    if header.size as usize != buf.len() {
        return Err(BatchError::Truncated {
            position: pos,
            needed: header.size as usize,
            available: buf.len(),
        });
    }
    if header.record_count <= 0 {
        return Err(BatchError::InvalidRecordCount {
            position: pos,
            count: header.record_count,
        });
    }
    let last_offset_delta = be_i32(buf, LAST_OFFSET_DELTA_OFFSET);
    // Producers always send contiguous relative offsets; a mismatch means the header lies about the batch.
    let expected = i64::from(header.record_count) - 1;
    let delta = i64::from(last_offset_delta);
    if delta < expected || (contiguous && delta != expected) {
        return Err(BatchError::OffsetDeltaMismatch {
            position: pos,
            last_offset_delta,
            count: header.record_count,
        });
    }
    let computed = crc32c::crc32c(&buf[ATTRIBUTES_OFFSET..]);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            position: pos,
            stored: header.crc,
            computed,
        });
    }
    Ok(header)
}

/// Validates a producer's record set: one or more concatenated v2 batches that must exactly fill `buf`, each no
/// larger than `max_batch_bytes`. Returns the headers with positions relative to `buf`.
pub fn validate_batches(buf: &[u8], max_batch_bytes: u32) -> Result<Vec<BatchHeader>, BatchError> {
    if buf.is_empty() {
        return Err(BatchError::Empty);
    }
    let mut headers = Vec::new();
    let mut pos = 0usize;
    while pos < buf.len() {
        let rest = &buf[pos..];
        let size = batch_size_from_prefix(rest, pos)?;
        if size > rest.len() {
            return Err(BatchError::Truncated {
                position: pos,
                needed: size,
                available: rest.len(),
            });
        }
        if size > max_batch_bytes as usize {
            return Err(BatchError::TooLarge {
                position: pos,
                size,
                max: max_batch_bytes,
            });
        }
        let header = check_batch(&rest[..size], pos as u64)?;
        if header.compression() == 0 {
            check_uncompressed_records(&rest[HEADER_LEN..size], header.record_count, pos)?;
        }
        headers.push(header);
        pos += size;
    }
    Ok(headers)
}

/// Zigzag varint as used inside v2 records; `None` if it runs past `buf` or over `max_bytes`.
fn read_varint(buf: &[u8], at: &mut usize, max_bytes: usize) -> Option<i64> {
    let mut raw = 0u64;
    for i in 0..max_bytes {
        let b = *buf.get(*at)?;
        *at += 1;
        raw |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    None
}

/// For an uncompressed batch, checks what Kafka's validator checks without decoding payloads: exactly
/// `count` length-prefixed records fill the section and their offset deltas are 0, 1, 2, ...
fn check_uncompressed_records(
    records: &[u8],
    count: i32,
    position: usize,
) -> Result<(), BatchError> {
    let mismatch = |reason| BatchError::RecordsMismatch { position, reason };
    let mut at = 0usize;
    for expected_delta in 0..i64::from(count) {
        let len =
            read_varint(records, &mut at, 5).ok_or_else(|| mismatch("unreadable record length"))?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| at.checked_add(l))
            .filter(|&end| end <= records.len())
            .ok_or_else(|| mismatch("record runs past the batch"))?;
        let body = &records[at..end];
        let mut p = 1; // attributes byte
        read_varint(body, &mut p, 10).ok_or_else(|| mismatch("unreadable timestamp delta"))?;
        let delta =
            read_varint(body, &mut p, 5).ok_or_else(|| mismatch("unreadable offset delta"))?;
        if delta != expected_delta {
            return Err(mismatch("offset deltas are not 0, 1, 2, ..."));
        }
        at = end;
    }
    if at != records.len() {
        return Err(mismatch("bytes left after the last record"));
    }
    Ok(())
}

/// Overwrites the baseOffset of the batch at `batch[0]`. baseOffset is outside the CRC, so no recompute.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Overwrites partitionLeaderEpoch (outside the CRC).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[LEADER_EPOCH_OFFSET..LEADER_EPOCH_OFFSET + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Marks the batch as LogAppendTime with `now_ms` as its maxTimestamp and recomputes the CRC, as Kafka does.
/// Record-level timestamp deltas are left alone: consumers ignore them for LogAppendTime batches.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attributes = be_i16(batch, ATTRIBUTES_OFFSET) | TIMESTAMP_TYPE_BIT;
    batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Completes a batch whose records section was rewritten behind a copy of its original header: sets
/// batchLength to the buffer's size, the codec bits (0-2) of the attributes to `codec`, and recomputes the
/// CRC. Every other header field is left as it was. `batch` must hold at least [`HEADER_LEN`] bytes and at
/// most `i32::MAX`.
pub fn finish_rebuilt_batch(batch: &mut [u8], codec: u8) {
    let length = i32::try_from(batch.len() - LOG_OVERHEAD).unwrap_or(i32::MAX);
    batch[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&length.to_be_bytes());
    let attributes = (be_i16(batch, ATTRIBUTES_OFFSET) & !0x07) | i16::from(codec & 0x07);
    batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Test and benchmark helper that writes valid uncompressed v2 batches.
#[cfg(test)]
pub(crate) mod testing {
    fn put_varint(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            if z < 0x80 {
                out.push(z as u8);
                return;
            }
            out.push((z as u8 & 0x7f) | 0x80);
            z >>= 7;
        }
    }

    /// One uncompressed batch of `values`, every record stamped `timestamp`. baseOffset is 0.
    pub(crate) fn batch(values: &[&[u8]], timestamp: i64) -> Vec<u8> {
        batch_with(values, timestamp, -1, -1, -1)
    }

    pub(crate) fn batch_with(
        values: &[&[u8]],
        timestamp: i64,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
    ) -> Vec<u8> {
        let mut records = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let mut r = Vec::new();
            r.push(0u8); // record attributes
            put_varint(&mut r, 0); // timestamp delta
            put_varint(&mut r, i as i64); // offset delta
            put_varint(&mut r, -1); // null key
            put_varint(&mut r, v.len() as i64);
            r.extend_from_slice(v);
            put_varint(&mut r, 0); // no headers
            put_varint(&mut records, r.len() as i64);
            records.extend_from_slice(&r);
        }
        let mut b = Vec::new();
        b.extend_from_slice(&0i64.to_be_bytes());
        b.extend_from_slice(&((super::HEADER_LEN - 12 + records.len()) as i32).to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
        b.push(2);
        b.extend_from_slice(&0u32.to_be_bytes()); // crc placeholder
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&(values.len() as i32 - 1).to_be_bytes());
        b.extend_from_slice(&timestamp.to_be_bytes());
        b.extend_from_slice(&timestamp.to_be_bytes());
        b.extend_from_slice(&producer_id.to_be_bytes());
        b.extend_from_slice(&producer_epoch.to_be_bytes());
        b.extend_from_slice(&base_sequence.to_be_bytes());
        b.extend_from_slice(&(values.len() as i32).to_be_bytes());
        b.extend_from_slice(&records);
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{testing::batch, *};

    #[test]
    fn valid_batches_parse_with_positions() {
        let mut buf = batch(&[b"a", b"b", b"c"], 1000);
        let first_len = buf.len();
        buf.extend(batch(&[b"d"], 2000));
        let headers = validate_batches(&buf, 1 << 20).unwrap();
        assert_eq!(headers.len(), 2);
        assert_eq!(headers[0].record_count, 3);
        assert_eq!(headers[0].last_offset, 2);
        assert_eq!(headers[0].size as usize, first_len);
        assert_eq!(headers[1].position as usize, first_len);
        assert_eq!(headers[1].max_timestamp, 2000);
    }

    #[test]
    fn rejects_each_kind_of_damage() {
        let good = batch(&[b"hello"], 5);
        let mut crc = good.clone();
        let last = crc.len() - 1;
        crc[last] ^= 1;
        assert!(matches!(
            validate_batches(&crc, 1 << 20),
            Err(BatchError::CrcMismatch { .. })
        ));
        let mut magic = good.clone();
        magic[16] = 1;
        assert!(matches!(
            validate_batches(&magic, 1 << 20),
            Err(BatchError::UnsupportedMagic { magic: 1, .. })
        ));
        assert!(matches!(
            validate_batches(&good[..good.len() - 1], 1 << 20),
            Err(BatchError::Truncated { .. })
        ));
        assert_eq!(
            validate_batches(&good, 10),
            Err(BatchError::TooLarge {
                position: 0,
                size: good.len(),
                max: 10
            })
        );
        assert_eq!(validate_batches(&[], 10), Err(BatchError::Empty));
    }

    #[test]
    fn uncompressed_records_must_match_the_header() {
        let good = batch(&[b"a", b"bb"], 5);
        // Claim one record (lastOffsetDelta 0, count 1) over a two-record body, with a fresh CRC.
        let mut lying = good.clone();
        lying[23..27].copy_from_slice(&0i32.to_be_bytes());
        lying[57..61].copy_from_slice(&1i32.to_be_bytes());
        let crc = crc32c::crc32c(&lying[21..]);
        lying[17..21].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(
            validate_batches(&lying, 1 << 20),
            Err(BatchError::RecordsMismatch {
                position: 0,
                reason: "bytes left after the last record"
            })
        );
        // A compressed batch's records are opaque, so the same lie is not detectable and is accepted.
        let mut compressed = lying.clone();
        compressed[22] |= 1;
        let crc = crc32c::crc32c(&compressed[21..]);
        compressed[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(validate_batches(&compressed, 1 << 20).is_ok());
    }

    #[test]
    fn log_append_time_rewrite_keeps_crc_valid() {
        let mut b = batch(&[b"x", b"y"], 5);
        set_log_append_time(&mut b, 123_456);
        let h = validate_batches(&b, 1 << 20).unwrap()[0];
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 123_456);
        assert_eq!(h.base_timestamp, 5, "base timestamp is untouched");
    }

    #[test]
    fn helper_batches_decode_with_kafka_protocol() {
        let mut b = batch(&[b"x", b"yy"], 77);
        set_base_offset(&mut b, 40);
        set_log_append_time(&mut b, 99);
        let mut bytes = bytes::Bytes::from(b);
        let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes).unwrap();
        let offsets: Vec<i64> = set.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![40, 41]);
        assert_eq!(set.records[1].value.as_deref(), Some(&b"yy"[..]));
        assert_eq!(
            set.records[0].timestamp_type,
            kafka_protocol::records::TimestampType::LogAppend
        );
    }
}
