//! ElectLeaders (key 43).

use kafka_protocol::{
    messages::{elect_leaders_request::TopicPartitions, ElectLeadersRequest},
    ResponseError,
};
use tributary_broker::testing::TestBroker;

use crate::{code, create_topic, topic_name};

#[tokio::test]
async fn a_preferred_election_where_the_preferred_replica_leads_is_not_needed() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "elected", 2).await;
    for version in 0..=2 {
        let request = ElectLeadersRequest::default()
            .with_election_type(0)
            .with_timeout_ms(5_000)
            .with_topic_partitions(Some(vec![TopicPartitions::default()
                .with_topic(topic_name("elected"))
                .with_partitions(vec![0, 1, 7])]));
        let response = broker.call(request, version).await;
        assert_eq!(response.error_code, 0);
        let results = &response.replica_election_results[0].partition_result;
        let codes: Vec<(i32, i16)> = results
            .iter()
            .map(|r| (r.partition_id, r.error_code))
            .collect();
        assert_eq!(
            codes,
            [
                (0, code(ResponseError::ElectionNotNeeded)),
                (1, code(ResponseError::ElectionNotNeeded)),
                (7, code(ResponseError::UnknownTopicOrPartition)),
            ],
            "v{version}"
        );
    }
}

#[tokio::test]
async fn an_unclean_election_of_a_led_partition_is_not_needed_and_unknown_types_are_refused() {
    let broker = TestBroker::start().await;
    create_topic(&broker, "led", 1).await;
    let request = ElectLeadersRequest::default()
        .with_election_type(1)
        .with_timeout_ms(5_000)
        .with_topic_partitions(None);
    let response = broker.call(request, 2).await;
    let results = &response.replica_election_results;
    let led = results
        .iter()
        .find(|t| t.topic == topic_name("led"))
        .unwrap();
    assert_eq!(
        led.partition_result[0].error_code,
        code(ResponseError::ElectionNotNeeded)
    );
    let bad = ElectLeadersRequest::default()
        .with_election_type(5)
        .with_timeout_ms(5_000);
    assert_eq!(
        broker.call(bad, 2).await.error_code,
        code(ResponseError::InvalidRequest)
    );
}
