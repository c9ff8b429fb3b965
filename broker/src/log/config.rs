//! Per-partition log settings, mirroring Kafka's topic configs, and the durability choice.
//!
//! Pure data: this module must never touch the disk or know about any particular partition.

/// How a partition's log behaves. Field comments name the Kafka topic config each one mirrors.
///
/// Not `Eq`: `min_cleanable_dirty_ratio` is a float.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll to a new segment before one would grow past this. Default 1 GiB.
    pub segment_bytes: u64,
    /// `segment.ms`: roll once this long has passed since the segment's first append. Default 7 days.
    pub segment_ms: i64,
    /// `retention.ms`: delete segments whose newest timestamp is older than this; -1 = unlimited. Default 7 days.
    pub retention_ms: i64,
    /// `retention.bytes`: delete oldest segments while the log stays at least this big; -1 = unlimited.
    pub retention_bytes: i64,
    /// `max.message.bytes`: largest batch (including its 12-byte prefix) accepted. Default 1048588.
    pub max_message_bytes: u32,
    /// `index.interval.bytes`: bytes appended between sparse index entries. Default 4096.
    pub index_interval_bytes: u32,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`: how far in the past a CreateTime record may be. Default unlimited.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: how far in the future a CreateTime record may be. Default one hour,
    /// as in Kafka 4.x.
    pub timestamp_after_max_ms: i64,
    /// `flush.messages` / `flush.ms`, as one explicit choice.
    pub flush: FlushPolicy,
    /// `cleanup.policy` contains `delete`: retention.ms / retention.bytes apply. Default true.
    pub delete: bool,
    /// `cleanup.policy` contains `compact`: the log cleaner keeps the latest record per key. Default false.
    pub compact: bool,
    /// `delete.retention.ms`: how long a tombstone stays readable before compaction may drop it. Default 1 day.
    pub delete_retention_ms: i64,
    /// `min.cleanable.dirty.ratio`: clean once dirty bytes / cleanable bytes reaches this. Default 0.5.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: a segment whose newest timestamp is younger than this is not cleaned. Default 0.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a compacted log whose oldest dirty record is older than this is cleaned
    /// whatever its dirty ratio. Default unlimited.
    pub max_compaction_lag_ms: i64,
    /// `segment.jitter.ms`: up to this much is taken off `segment.ms` for each segment, so the segments of
    /// many partitions created together do not all roll at the same moment. Default 0.
    pub segment_jitter_ms: i64,
    /// `segment.index.bytes`: roll before the offset or time index of the active segment grows past this.
    /// Default 10 MiB.
    pub segment_index_bytes: u32,
    /// `min.insync.replicas`: acks=all needs at least this many in-sync replicas, and the high watermark
    /// does not move with fewer. Not used by the log itself; the partition reads it. Default 1.
    pub min_insync_replicas: usize,
    /// `compression.type` with its codec's level: the codec a leader stores produced batches in. Not used by
    /// the log itself, which stores what it is given; the partition recompresses. Default `producer`.
    pub compression: TopicCompression,
    /// `max.decompressed.message.bytes`: the most the broker reads of a batch's decompressed records when
    /// it must read them (recompression, record checks, timestamp lookups). Default 2147483639.
    pub max_decompressed_bytes: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
            index_interval_bytes: 4096,
            timestamp_type: TimestampType::CreateTime,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: 3_600_000,
            flush: FlushPolicy::EveryBatch,
            delete: true,
            compact: false,
            delete_retention_ms: 24 * 60 * 60 * 1000,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            segment_jitter_ms: 0,
            segment_index_bytes: 10 * 1024 * 1024,
            min_insync_replicas: 1,
            compression: TopicCompression::Producer,
            max_decompressed_bytes: 2_147_483_639,
        }
    }
}

/// `compression.type` (Kafka's `BrokerCompressionType`) with the level of its codec
/// (`compression.gzip.level`, `compression.lz4.level`, `compression.zstd.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TopicCompression {
    /// Keep each batch's codec as the producer sent it.
    #[default]
    Producer,
    Uncompressed,
    /// 1..=9, or -1 for zlib's default (6).
    Gzip {
        level: i32,
    },
    Snappy,
    /// 1..=17; 9 is Kafka's default and means LZ4's fast mode, any other level its high-compression mode.
    Lz4 {
        level: i32,
    },
    /// -131072..=22, default 3.
    Zstd {
        level: i32,
    },
}

impl TopicCompression {
    /// The codec id (batch attribute bits 0-2) batches are stored with; `None` for `producer`.
    pub fn codec_id(self) -> Option<u8> {
        match self {
            TopicCompression::Producer => None,
            TopicCompression::Uncompressed => Some(0),
            TopicCompression::Gzip { .. } => Some(1),
            TopicCompression::Snappy => Some(2),
            TopicCompression::Lz4 { .. } => Some(3),
            TopicCompression::Zstd { .. } => Some(4),
        }
    }
}

/// `message.timestamp.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// Keep the producer's timestamps.
    #[default]
    CreateTime,
    /// Stamp every batch with the broker's clock at append.
    LogAppendTime,
}

/// When appended data is fsynced, which is also when the recovery point advances.
///
/// The default is [`FlushPolicy::EveryBatch`]: an acknowledged append survives power loss on a single broker.
/// Kafka's own default is [`FlushPolicy::Os`] (rely on replication and the page cache); choose it explicitly
/// when replicas provide the durability. With `EveryBatch` the *caller* fsyncs before acknowledging, through
/// `Log::active_segment_handle` + `Log::mark_flushed`, outside its lock, so concurrent appends share one
/// fsync (group commit); `Log::append` itself does not fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlushPolicy {
    /// fsync before every acknowledgement, done by the caller with group commit (`flush.messages=1`).
    #[default]
    EveryBatch,
    /// fsync once `messages` records have been appended since the last flush, or `ms` have passed.
    Interval { messages: u64, ms: u64 },
    /// Never fsync on append; only on roll and close (`flush.messages` and `flush.ms` unset).
    Os,
}

/// Kafka's "unset" value for `flush.messages` and `flush.ms`.
const KAFKA_UNSET: i64 = i64::MAX;

impl FlushPolicy {
    /// Builds the policy from Kafka's `flush.messages` and `flush.ms` values.
    pub fn from_kafka(flush_messages: i64, flush_ms: i64) -> FlushPolicy {
        if flush_messages == 1 {
            FlushPolicy::EveryBatch
        } else if flush_messages == KAFKA_UNSET && flush_ms == KAFKA_UNSET {
            FlushPolicy::Os
        } else {
            // Kafka rejects values < 0 (flush.ms) / < 1 (flush.messages); clamp so a bad value still flushes.
            FlushPolicy::Interval {
                messages: flush_messages.max(1) as u64,
                ms: flush_ms.max(0) as u64,
            }
        }
    }

    /// The `(flush.messages, flush.ms)` pair Kafka would show for this policy.
    pub fn to_kafka(self) -> (i64, i64) {
        match self {
            FlushPolicy::EveryBatch => (1, KAFKA_UNSET),
            FlushPolicy::Os => (KAFKA_UNSET, KAFKA_UNSET),
            FlushPolicy::Interval { messages, ms } => (
                i64::try_from(messages).unwrap_or(KAFKA_UNSET),
                i64::try_from(ms).unwrap_or(KAFKA_UNSET),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_policy_maps_kafka_values_both_ways() {
        assert_eq!(
            FlushPolicy::from_kafka(1, i64::MAX),
            FlushPolicy::EveryBatch
        );
        assert_eq!(FlushPolicy::from_kafka(i64::MAX, i64::MAX), FlushPolicy::Os);
        assert_eq!(
            FlushPolicy::from_kafka(100, i64::MAX),
            FlushPolicy::Interval {
                messages: 100,
                ms: i64::MAX as u64
            }
        );
        assert_eq!(
            FlushPolicy::from_kafka(i64::MAX, 1000),
            FlushPolicy::Interval {
                messages: i64::MAX as u64,
                ms: 1000
            }
        );
        for p in [
            FlushPolicy::EveryBatch,
            FlushPolicy::Os,
            FlushPolicy::Interval {
                messages: 5,
                ms: 10,
            },
        ] {
            let (m, ms) = p.to_kafka();
            assert_eq!(FlushPolicy::from_kafka(m, ms), p);
        }
    }
}
