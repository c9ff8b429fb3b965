//! ListOffsets (key 2).

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tributary_broker::{
    log::builder::{BatchBuilder, BatchRecord},
    testing::TestBroker,
};

use crate::{code, create_topic, list_offset, produce};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

/// Three records stamped 1000, 2000 and 3000 in one batch, then one stamped 500 (out of order, as producers
/// may send).
async fn timed_topic(broker: &TestBroker) {
    create_topic(broker, "timed", 1).await;
    let record = |ts: i64| {
        BatchRecord::new(
            Some(Bytes::from_static(b"k")),
            Some(Bytes::from(ts.to_string())),
        )
        .timestamp(ts)
    };
    let first = BatchBuilder::new()
        .push(record(1_000))
        .push(record(2_000))
        .push(record(3_000))
        .build()
        .unwrap();
    assert_eq!(produce(broker, "timed", 0, first).await.error_code, 0);
    let late = BatchBuilder::new().push(record(500)).build().unwrap();
    assert_eq!(produce(broker, "timed", 0, late).await.error_code, 0);
}

#[tokio::test]
async fn earliest_and_latest() {
    let broker = TestBroker::start().await;
    timed_topic(&broker).await;
    for version in 1..=10 {
        let earliest = list_offset(&broker, "timed", 0, EARLIEST, version).await;
        assert_eq!(
            (earliest.error_code, earliest.offset),
            (0, 0),
            "v{version} earliest"
        );
        let latest = list_offset(&broker, "timed", 0, LATEST, version).await;
        assert_eq!(
            (latest.error_code, latest.offset),
            (0, 4),
            "v{version} latest is the next offset"
        );
        assert_eq!(
            latest.timestamp, -1,
            "v{version}: no timestamp for earliest/latest"
        );
    }
}

#[tokio::test]
async fn leader_epochs_are_reported_from_v4() {
    let broker = TestBroker::start().await;
    timed_topic(&broker).await;
    assert_eq!(
        list_offset(&broker, "timed", 0, LATEST, 4)
            .await
            .leader_epoch,
        0
    );
    assert_eq!(
        list_offset(&broker, "timed", 0, LATEST, 10)
            .await
            .leader_epoch,
        0
    );
}

#[tokio::test]
async fn a_timestamp_finds_the_first_record_at_or_after_it() {
    let broker = TestBroker::start().await;
    timed_topic(&broker).await;
    let hit = list_offset(&broker, "timed", 0, 1_500, 9).await;
    assert_eq!(
        (hit.error_code, hit.offset, hit.timestamp),
        (0, 1, 2_000),
        "inside the first batch"
    );
    let exact = list_offset(&broker, "timed", 0, 1_000, 9).await;
    assert_eq!((exact.offset, exact.timestamp), (0, 1_000));
    let none = list_offset(&broker, "timed", 0, 10_000, 9).await;
    assert_eq!(
        (none.error_code, none.offset, none.timestamp),
        (0, -1, -1),
        "nothing that late"
    );
}

#[tokio::test]
async fn special_timestamps_of_newer_versions() {
    let broker = TestBroker::start().await;
    timed_topic(&broker).await;
    let max = list_offset(&broker, "timed", 0, MAX_TIMESTAMP, 7).await;
    assert_eq!(
        (max.error_code, max.offset, max.timestamp),
        (0, 2, 3_000),
        "v7+: the record with the max timestamp"
    );
    let local = list_offset(&broker, "timed", 0, EARLIEST_LOCAL, 8).await;
    assert_eq!(
        (local.error_code, local.offset),
        (0, 0),
        "v8+: nothing is tiered, so local = earliest"
    );
    let tiered = list_offset(&broker, "timed", 0, LATEST_TIERED, 9).await;
    assert_eq!(
        (tiered.error_code, tiered.offset),
        (0, -1),
        "v9+: no tiered offset without remote storage"
    );
    let nonsense = list_offset(&broker, "timed", 0, -42, 9).await;
    assert_eq!(nonsense.error_code, code(ResponseError::InvalidRequest));
}

#[tokio::test]
async fn unknown_partitions_are_errors_without_a_leader_epoch() {
    let broker = TestBroker::start().await;
    timed_topic(&broker).await;
    for (topic, partition) in [("timed", 5), ("ghost", 0)] {
        let response = list_offset(&broker, topic, partition, LATEST, 9).await;
        assert_eq!(
            response.error_code,
            code(ResponseError::UnknownTopicOrPartition),
            "{topic}-{partition}"
        );
        assert_eq!(
            (response.offset, response.leader_epoch),
            (-1, -1),
            "{topic}-{partition}"
        );
    }
}

#[tokio::test]
async fn an_empty_partition_has_earliest_equal_to_latest() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "empty", 1).await;
    assert_eq!(
        list_offset(&broker, "empty", 0, EARLIEST, 9).await.offset,
        0
    );
    assert_eq!(list_offset(&broker, "empty", 0, LATEST, 9).await.offset, 0);
    let max = list_offset(&broker, "empty", 0, MAX_TIMESTAMP, 9).await;
    assert_eq!((max.error_code, max.offset, max.timestamp), (0, -1, -1));
}
