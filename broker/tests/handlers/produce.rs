//! Produce (key 0).

use bytes::Bytes;
use kafka_protocol::{
    messages::{
        fetch_response::PartitionData,
        produce_request::{PartitionProduceData, TopicProduceData},
        InitProducerIdRequest, ProduceRequest, TransactionalId,
    },
    records::{Compression, RecordBatchDecoder},
    ResponseError,
};
use tributary_broker::{
    log::{builder::BatchBuilder, finish_rebuilt_batch},
    testing::{request_frame, TestBroker, TestError},
};

use crate::{
    batch, code, create_topic, create_topic_with, fetch, list_offset, produce, produce_request, s,
    topic_name, values_of,
};

#[tokio::test]
async fn appends_batches_at_increasing_offsets_and_serves_them_back() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "events", 1).await;
    let first = produce(&broker, "events", 0, batch(&["a", "b", "c"])).await;
    assert_eq!((first.error_code, first.base_offset), (0, 0));
    assert_eq!(
        first.log_append_time_ms, -1,
        "CreateTime topics report no append time"
    );
    assert_eq!(first.log_start_offset, 0, "v5+ report the log start offset");
    let second = produce(&broker, "events", 0, batch(&["d"])).await;
    assert_eq!(
        second.base_offset, 3,
        "the next batch starts after the first's three records"
    );
    let data = fetch(&broker, "events", 0, 0).await;
    assert_eq!(values_of(&data), vec!["a", "b", "c", "d"]);
}

#[tokio::test]
async fn every_supported_version_appends_and_v0_to_v2_are_refused() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "events", 1).await;
    for version in 3..=12 {
        let response = broker
            .call(produce_request("events", 0, batch(&["x"])), version)
            .await;
        let partition = &response.responses[0].partition_responses[0];
        assert_eq!(partition.error_code, 0, "Produce v{version}");
        assert_eq!(
            partition.base_offset,
            i64::from(version - 3),
            "Produce v{version}"
        );
    }
    // Advertised (as Kafka 4 does) but refused: the record format they carry is gone.
    let mut frame = request_frame(&produce_request("events", 0, batch(&["x"])), 3, 1).unwrap();
    frame[2..4].copy_from_slice(&2i16.to_be_bytes());
    assert!(
        matches!(broker.call_frame(&frame).await, Err(TestError::Closed(_))),
        "Produce v2 must close the connection"
    );
}

#[tokio::test]
async fn unknown_topics_and_partitions_fail_alone() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "events", 1).await;
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(topic_name("events"))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(7)
                        .with_records(Some(batch(&["lost"]))),
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch(&["kept"]))),
                ]),
            TopicProduceData::default()
                .with_name(topic_name("ghost"))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch(&["lost"])))]),
        ]);
    let response = broker.call(request, 9).await;
    let events = &response.responses[0].partition_responses;
    assert_eq!(
        events[0].error_code,
        code(ResponseError::UnknownTopicOrPartition),
        "partition 7"
    );
    assert_eq!(events[0].base_offset, -1);
    assert_eq!(
        (events[1].error_code, events[1].base_offset),
        (0, 0),
        "partition 0 is written anyway"
    );
    let ghost = &response.responses[1].partition_responses[0];
    assert_eq!(
        ghost.error_code,
        code(ResponseError::UnknownTopicOrPartition)
    );
    assert_eq!(
        values_of(&fetch(&broker, "events", 0, 0).await),
        vec!["kept"]
    );
}

#[tokio::test]
async fn acks_zero_gets_no_response_but_is_written() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "events", 1).await;
    let result = broker
        .try_call(
            produce_request("events", 0, batch(&["quiet"])).with_acks(0),
            9,
        )
        .await;
    assert!(
        matches!(result, Err(TestError::NoResponse)),
        "acks=0 must not be answered: {result:?}"
    );
    assert_eq!(
        list_offset(&broker, "events", 0, -1, 9).await.offset,
        1,
        "the record was written"
    );
}

#[tokio::test]
async fn invalid_acks_and_transactional_produce_are_refused_for_every_partition() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "events", 1).await;
    let response = broker
        .call(produce_request("events", 0, batch(&["x"])).with_acks(2), 9)
        .await;
    assert_eq!(
        response.responses[0].partition_responses[0].error_code,
        code(ResponseError::InvalidRequiredAcks)
    );
    let transactional = produce_request("events", 0, batch(&["x"]))
        .with_transactional_id(Some(TransactionalId(s("tx"))));
    let response = broker.call(transactional, 9).await;
    assert_eq!(
        response.responses[0].partition_responses[0].error_code,
        code(ResponseError::TransactionalIdAuthorizationFailed),
        "transactions are not implemented"
    );
    assert_eq!(
        list_offset(&broker, "events", 0, -1, 9).await.offset,
        0,
        "nothing was written"
    );
}

#[tokio::test]
async fn damaged_batches_are_refused_with_a_message_from_v8() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "events", 1).await;
    let mut damaged = batch(&["hello"]).to_vec();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    for (version, has_message) in [(7, false), (8, true), (12, true)] {
        let response = broker
            .call(
                produce_request("events", 0, Bytes::from(damaged.clone())),
                version,
            )
            .await;
        let partition = &response.responses[0].partition_responses[0];
        assert_eq!(
            partition.error_code,
            code(ResponseError::CorruptMessage),
            "v{version}: bad crc"
        );
        assert_eq!(
            partition.error_message.is_some(),
            has_message,
            "v{version} error message"
        );
    }
    let mut two = batch(&["a"]).to_vec();
    two.extend_from_slice(&batch(&["b"]));
    let response = broker
        .call(produce_request("events", 0, Bytes::from(two)), 9)
        .await;
    assert_eq!(
        response.responses[0].partition_responses[0].error_code,
        code(ResponseError::InvalidRecord),
        "Produce v3+ carries exactly one batch per partition"
    );
    let null_records = ProduceRequest::default()
        .with_acks(-1)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name("events"))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(None)])]);
    let response = broker.call(null_records, 9).await;
    assert_eq!(
        response.responses[0].partition_responses[0].error_code,
        code(ResponseError::CorruptMessage)
    );
    assert_eq!(
        list_offset(&broker, "events", 0, -1, 9).await.offset,
        0,
        "nothing was written"
    );
}

#[tokio::test]
async fn topic_configs_limit_what_is_accepted() {
    let broker = TestBroker::start().await;
    create_topic_with(&broker, "small", 1, &[("max.message.bytes", "100")]).await;
    create_topic_with(&broker, "compacted", 1, &[("cleanup.policy", "compact")]).await;
    let big = batch(&[&"x".repeat(200)]);
    assert_eq!(
        produce(&broker, "small", 0, big).await.error_code,
        code(ResponseError::MessageTooLarge)
    );
    let keyless = BatchBuilder::new()
        .record(None, Some(Bytes::from_static(b"v")))
        .build()
        .unwrap();
    assert_eq!(
        produce(&broker, "compacted", 0, keyless).await.error_code,
        code(ResponseError::InvalidRecord),
        "a compacted topic cannot keep a record without a key"
    );
    assert_eq!(
        produce(&broker, "compacted", 0, batch(&["keyed"]))
            .await
            .error_code,
        0
    );
}

/// KIP-467 (Produce v8+): the refused records by index, Kafka's messages word for word (checked against
/// Kafka 4.4.0), the partition's log start offset, and nothing written.
#[tokio::test]
async fn refused_records_are_named_by_batch_index_from_v8() {
    let broker = TestBroker::start().await;
    create_topic_with(&broker, "compacted", 1, &[("cleanup.policy", "compact")]).await;
    let mixed = BatchBuilder::new()
        .record(
            Some(Bytes::from_static(b"k")),
            Some(Bytes::from_static(b"v")),
        )
        .record(None, Some(Bytes::from_static(b"v")))
        .record(
            Some(Bytes::from_static(b"k2")),
            Some(Bytes::from_static(b"v")),
        )
        .record(None, Some(Bytes::from_static(b"x")))
        .build()
        .unwrap();
    let keyless =
        "Compacted topic cannot accept message without key in topic partition compacted-0";
    for version in [8, 12] {
        let response = broker
            .call(produce_request("compacted", 0, mixed.clone()), version)
            .await;
        let partition = &response.responses[0].partition_responses[0];
        assert_eq!(partition.error_code, code(ResponseError::InvalidRecord));
        let errors: Vec<(i32, Option<String>)> = partition
            .record_errors
            .iter()
            .map(|e| {
                (
                    e.batch_index,
                    e.batch_index_error_message
                        .as_ref()
                        .map(ToString::to_string),
                )
            })
            .collect();
        assert_eq!(
            errors,
            vec![(1, Some(keyless.to_owned())), (3, Some(keyless.to_owned()))],
            "v{version}"
        );
        assert_eq!(
            partition.error_message.as_deref(),
            Some(
                format!(
                    "One or more records have been rejected due to 2 record errors in total, and only \
                     showing the first three errors at most: [RecordError(batchIndex=1, message='{keyless}'), \
                     RecordError(batchIndex=3, message='{keyless}')]"
                )
                .as_str()
            ),
            "v{version}"
        );
        assert_eq!(
            (partition.base_offset, partition.log_start_offset),
            (-1, 0),
            "v{version}"
        );
    }
    let v7 = broker.call(produce_request("compacted", 0, mixed), 7).await;
    let partition = &v7.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, code(ResponseError::InvalidRecord));
    assert!(partition.record_errors.is_empty() && partition.error_message.is_none());
    assert_eq!(list_offset(&broker, "compacted", 0, -1, 9).await.offset, 0);
}

#[tokio::test]
async fn timestamps_out_of_range_are_refused_per_record() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "events", 1).await;
    create_topic_with(
        &broker,
        "recent",
        1,
        &[("message.timestamp.before.max.ms", "60000")],
    )
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let hour = 3_600_000;
    let stamped = |timestamps: &[i64]| {
        timestamps
            .iter()
            .fold(BatchBuilder::new(), |b, ts| {
                b.push(
                    tributary_broker::log::builder::BatchRecord::new(
                        Some(Bytes::from_static(b"k")),
                        Some(Bytes::from_static(b"v")),
                    )
                    .timestamp(*ts),
                )
            })
            .build()
            .unwrap()
    };
    let batch_of_three = stamped(&[now, now - 2 * hour, now + 2 * hour]);
    // Kafka 4.x defaults: one hour into the future at most, any age in the past.
    let refused = broker
        .call(produce_request("events", 0, batch_of_three.clone()), 9)
        .await;
    let partition = &refused.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, code(ResponseError::InvalidTimestamp));
    assert_eq!(
        partition.error_message.as_deref(),
        Some("One or more records have been rejected due to invalid timestamp")
    );
    let indexes: Vec<i32> = partition
        .record_errors
        .iter()
        .map(|e| e.batch_index)
        .collect();
    assert_eq!(indexes, vec![2], "only the record two hours ahead");
    let text = partition.record_errors[0]
        .batch_index_error_message
        .as_deref()
        .unwrap_or_default();
    assert!(
        text.starts_with(&format!(
            "Timestamp {} of message with offset 2 is out of range. The timestamp should be within [",
            now + 2 * hour
        )),
        "{text}"
    );
    let refused = broker
        .call(produce_request("recent", 0, batch_of_three), 9)
        .await;
    let indexes: Vec<i32> = refused.responses[0].partition_responses[0]
        .record_errors
        .iter()
        .map(|e| e.batch_index)
        .collect();
    assert_eq!(indexes, vec![1, 2], "before.max.ms bounds the past too");
    assert_eq!(
        produce(&broker, "events", 0, stamped(&[now, now - 2 * hour]))
            .await
            .error_code,
        0
    );
}

#[tokio::test]
async fn log_append_time_topics_report_the_time_they_stamped() {
    let broker = TestBroker::start().await;
    create_topic_with(
        &broker,
        "stamped",
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    )
    .await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let old = BatchBuilder::new()
        .timestamp(1_000)
        .record(
            Some(Bytes::from_static(b"k")),
            Some(Bytes::from_static(b"v")),
        )
        .build()
        .unwrap();
    let response = produce(&broker, "stamped", 0, old).await;
    assert_eq!(response.error_code, 0);
    assert!(
        response.log_append_time_ms >= before,
        "append time {} < {before}",
        response.log_append_time_ms
    );
}

#[tokio::test]
async fn compressed_batches_are_stored_as_sent() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "zipped", 1).await;
    for compression in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let zipped = BatchBuilder::new()
            .compression(compression)
            .record(
                Some(Bytes::from_static(b"k")),
                Some(Bytes::from(format!("{compression:?}"))),
            )
            .build()
            .unwrap();
        assert_eq!(
            produce(&broker, "zipped", 0, zipped).await.error_code,
            0,
            "{compression:?}"
        );
    }
    let values = values_of(&fetch(&broker, "zipped", 0, 0).await);
    assert_eq!(values, vec!["Gzip", "Snappy", "Lz4", "Zstd"]);
}

/// The codec of each batch in a fetch answer and the values of its records.
fn codecs_and_values(data: &PartitionData) -> Vec<(Compression, Vec<String>)> {
    let mut bytes = data.records.clone().unwrap_or_default();
    RecordBatchDecoder::decode_all(&mut bytes)
        .unwrap()
        .into_iter()
        .map(|set| {
            let values = set
                .records
                .iter()
                .map(|r| {
                    String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned()
                })
                .collect();
            (set.compression, values)
        })
        .collect()
}

fn batch_in(compression: Compression, values: &[&str]) -> Bytes {
    values
        .iter()
        .fold(BatchBuilder::new().compression(compression), |b, v| {
            b.record(
                Some(Bytes::from_static(b"k")),
                Some(Bytes::from(v.to_string())),
            )
        })
        .build()
        .unwrap()
}

#[tokio::test]
async fn compression_type_recompresses_batches_in_another_codec() {
    let broker = TestBroker::builder()
        .property("compression.type", "lz4")
        .start()
        .await;
    create_topic_with(&broker, "zstd", 2, &[("compression.type", "zstd")]).await;
    create_topic(&broker, "broker-default", 1).await;
    for (codec, values) in [
        (Compression::Gzip, &["gzip-1", "gzip-2"][..]),
        (Compression::Zstd, &["zstd"][..]),
        (Compression::None, &["plain"][..]),
    ] {
        let response = produce(&broker, "zstd", 0, batch_in(codec, values)).await;
        assert_eq!(
            response.error_code, 0,
            "{codec:?}: {:?}",
            response.error_message
        );
    }
    assert_eq!(
        codecs_and_values(&fetch(&broker, "zstd", 0, 0).await),
        vec![
            (
                Compression::Zstd,
                vec!["gzip-1".to_owned(), "gzip-2".to_owned()]
            ),
            (Compression::Zstd, vec!["zstd".to_owned()]),
            (Compression::Zstd, vec!["plain".to_owned()]),
        ],
        "every batch is stored as zstd with its records"
    );
    let response = produce(
        &broker,
        "broker-default",
        0,
        batch_in(Compression::Snappy, &["s"]),
    )
    .await;
    assert_eq!(response.error_code, 0);
    assert_eq!(
        codecs_and_values(&fetch(&broker, "broker-default", 0, 0).await),
        vec![(Compression::Lz4, vec!["s".to_owned()])],
        "a topic without an override takes the broker's compression.type"
    );

    // A gzip batch whose records are not gzip (its CRC is right) is refused alone; the other partition is
    // written.
    let mut broken = batch_in(Compression::None, &["not gzip"]).to_vec();
    finish_rebuilt_batch(&mut broken, Compression::Gzip as u8);
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name("zstd"))
            .with_partition_data(vec![
                PartitionProduceData::default()
                    .with_index(1)
                    .with_records(Some(Bytes::from(broken))),
                PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch_in(Compression::Snappy, &["after"]))),
            ])]);
    let response = broker.call(request, 9).await;
    let partitions = &response.responses[0].partition_responses;
    assert_eq!(
        partitions[0].error_code,
        code(ResponseError::InvalidRecord),
        "{:?}",
        partitions[0].error_message
    );
    let text = partitions[0].error_message.as_deref().unwrap_or_default();
    assert!(text.contains("decompressing the gzip records"), "{text}");
    assert_eq!(
        (partitions[1].error_code, partitions[1].base_offset),
        (0, 4)
    );
    assert_eq!(
        codecs_and_values(&fetch(&broker, "zstd", 1, 0).await),
        Vec::new(),
        "nothing was written for the refused batch"
    );
    assert_eq!(
        codecs_and_values(&fetch(&broker, "zstd", 0, 4).await),
        vec![(Compression::Zstd, vec!["after".to_owned()])]
    );
}

#[tokio::test]
async fn idempotent_producers_are_deduplicated_and_checked_for_order_and_epoch() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "exactly-once", 1).await;
    let init = broker
        .call(
            InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000),
            4,
        )
        .await;
    let (id, epoch) = (init.producer_id.0, init.producer_epoch);
    let sequenced = |epoch: i16, sequence: i32, value: &str| {
        BatchBuilder::new()
            .producer(id, epoch, sequence)
            .record(
                Some(Bytes::from_static(b"k")),
                Some(Bytes::from(value.to_owned())),
            )
            .record(
                Some(Bytes::from_static(b"k")),
                Some(Bytes::from(value.to_owned())),
            )
            .build()
            .unwrap()
    };
    let first = produce(&broker, "exactly-once", 0, sequenced(epoch, 0, "a")).await;
    assert_eq!((first.error_code, first.base_offset), (0, 0));
    let retry = produce(&broker, "exactly-once", 0, sequenced(epoch, 0, "a")).await;
    assert_eq!(
        (retry.error_code, retry.base_offset),
        (0, 0),
        "a retried batch is answered with its original offset"
    );
    assert_eq!(
        list_offset(&broker, "exactly-once", 0, -1, 9).await.offset,
        2,
        "the retry was not written"
    );
    let gap = produce(&broker, "exactly-once", 0, sequenced(epoch, 5, "b")).await;
    assert_eq!(
        gap.error_code,
        code(ResponseError::OutOfOrderSequenceNumber)
    );
    let next = produce(&broker, "exactly-once", 0, sequenced(epoch, 2, "b")).await;
    assert_eq!((next.error_code, next.base_offset), (0, 2));
    let bumped = produce(&broker, "exactly-once", 0, sequenced(epoch + 1, 0, "c")).await;
    assert_eq!(bumped.error_code, 0, "a new epoch starts at sequence 0");
    let fenced = produce(&broker, "exactly-once", 0, sequenced(epoch, 4, "d")).await;
    assert_eq!(fenced.error_code, code(ResponseError::InvalidProducerEpoch));
}

#[tokio::test]
async fn producer_state_survives_a_restart() {
    let mut broker = TestBroker::start().await;
    create_topic(&broker, "durable", 1).await;
    let sequenced = BatchBuilder::new()
        .producer(4242, 0, 0)
        .record(
            Some(Bytes::from_static(b"k")),
            Some(Bytes::from_static(b"v")),
        )
        .build()
        .unwrap();
    assert_eq!(
        produce(&broker, "durable", 0, sequenced.clone())
            .await
            .error_code,
        0
    );
    broker.restart().await;
    let retry = produce(&broker, "durable", 0, sequenced).await;
    assert_eq!(
        (retry.error_code, retry.base_offset),
        (0, 0),
        "the retry after a restart is a duplicate"
    );
    assert_eq!(values_of(&fetch(&broker, "durable", 0, 0).await), vec!["v"]);
}
