//! Group coordination and producer ids across failures and without a quorum.

use super::fixture::*;

#[test]
fn committed_offsets_survive_the_loss_of_their_coordinator() {
    let mut cluster = start_cluster(3, 3);
    assert_eq!(create_topic(cluster.node(1), "orders", 1, 3), 0);
    // The offsets topic is created on first use, replicated 3 ways; the coordinator answers once loaded.
    cluster.wait_until(
        "a coordinator for the group",
        Duration::from_secs(20),
        |c| {
            let (error, id) = coordinator_of(c.node(1), "billing");
            error == 0 && id > 0
        },
    );
    let (_, coordinator) = coordinator_of(cluster.node(1), "billing");
    let commit = kafka_protocol::messages::OffsetCommitRequest::default()
        .with_group_id(kafka_protocol::messages::GroupId(StrBytes::from_static_str("billing")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            kafka_protocol::messages::offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("orders")))
                .with_partitions(vec![
                    kafka_protocol::messages::offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(42)
                        .with_committed_leader_epoch(0),
                ]),
        ]);
    cluster.wait_until("the commit is acknowledged", Duration::from_secs(20), |c| {
        c.node(coordinator).call(commit.clone(), 8).topics[0].partitions[0].error_code == 0
    });
    cluster.node(coordinator).kill();
    let survivor = if coordinator == 1 { 2 } else { 1 };
    cluster.wait_until(
        "a new coordinator serves the commit",
        Duration::from_secs(30),
        |c| {
            let (error, id) = coordinator_of(c.node(survivor), "billing");
            error == 0
                && id != coordinator
                && committed_at(c.node(id), "billing", "orders") == Ok((42, 0))
        },
    );
}

/// Without a metadata quorum `__consumer_offsets` cannot be created: FindCoordinator says
/// COORDINATOR_NOT_AVAILABLE within a couple of seconds (the client retries) rather than holding the
/// connection for the controller's whole timeout.
#[test]
fn find_coordinator_without_a_quorum_answers_promptly() {
    let mut cluster = start_cluster(3, 3);
    cluster.node(2).kill();
    cluster.node(3).kill();
    for attempt in 0..2 {
        let started = Instant::now();
        let (error, _) = coordinator_of(cluster.node(1), "lonely");
        assert_eq!(error, 15, "COORDINATOR_NOT_AVAILABLE (attempt {attempt})");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "attempt {attempt} took {:?}",
            started.elapsed()
        );
    }
}

/// A broker with no producer id block and no reachable controller answers InitProducerId with a retriable
/// error within a couple of seconds; Kafka's clients treat the UNKNOWN_SERVER_ERROR that used to come after
/// the controller's 15 s timeout as fatal.
#[test]
fn init_producer_id_without_a_quorum_answers_a_retriable_error_promptly() {
    let mut cluster = start_cluster(3, 3);
    cluster.node(2).kill();
    cluster.node(3).kill();
    let started = Instant::now();
    let response = cluster.node(1).call(
        kafka_protocol::messages::InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id((-1).into())
            .with_producer_epoch(-1),
        4,
    );
    assert_eq!(response.error_code, 14, "COORDINATOR_LOAD_IN_PROGRESS");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
}
