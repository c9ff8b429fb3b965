//! DescribeQuorum (what `kafka-metadata-quorum.sh describe` sends), asked of any broker: the active
//! controller's view of the metadata quorum, its voters and observers and how far each has replicated, and a
//! new leader with a higher epoch once the old one is killed.

use kafka_protocol::messages::{DescribeQuorumRequest, DescribeQuorumResponse};

use super::fixture::*;

fn describe(node: &Node, version: i16) -> DescribeQuorumResponse {
    call_over_tcp(
        node.kafka_port,
        &DescribeQuorumRequest::default(),
        version,
        Duration::from_secs(20),
    )
    .unwrap_or_else(|e| panic!("DescribeQuorum v{version}: {e:?}\n{}", node.log_text()))
}

fn ids(states: &[kafka_protocol::messages::describe_quorum_response::ReplicaState]) -> Vec<i32> {
    let mut ids: Vec<i32> = states.iter().map(|s| s.replica_id.0).collect();
    ids.sort_unstable();
    ids
}

#[test]
fn any_broker_describes_the_metadata_quorum_and_its_next_leader() {
    let mut cluster = start_cluster(4, 3);
    assert_eq!(create_topic(cluster.node(1), "t", 3, 3), 0);
    // Every voter and the observer caught up with the high watermark, as the leader tracks them.
    cluster.wait_until("every member caught up", Duration::from_secs(15), |c| {
        let response = describe(c.node(4), 2);
        let partition = &response.topics[0].partitions[0];
        response.error_code == 0
            && partition
                .current_voters
                .iter()
                .chain(&partition.observers)
                .all(|s| {
                    s.log_end_offset >= partition.high_watermark && s.last_caught_up_timestamp > 0
                })
    });
    let response = describe(cluster.node(4), 2);
    assert_eq!(
        response.topics[0].topic_name.0.as_str(),
        "__cluster_metadata"
    );
    let partition = &response.topics[0].partitions[0];
    let leader = partition.leader_id.0;
    let described = cluster.node(2).call(DescribeClusterRequest::default(), 0);
    assert_eq!(
        leader, described.controller_id.0,
        "the quorum leader is the active controller"
    );
    assert_eq!(ids(&partition.current_voters), [1, 2, 3]);
    assert_eq!(
        ids(&partition.observers),
        [4],
        "broker 4 follows without voting"
    );
    assert!(partition.high_watermark > 0);
    let mut endpoints: Vec<i32> = response.nodes.iter().map(|n| n.node_id.0).collect();
    endpoints.sort_unstable();
    assert_eq!(
        endpoints,
        [1, 2, 3],
        "v2 lists the voters' controller endpoints"
    );
    assert!(response.nodes.iter().all(|n| n
        .listeners
        .iter()
        .any(|l| l.name.as_str() == "CONTROLLER" && l.port > 0)));
    for version in [0, 1] {
        let older = describe(cluster.node(3), version);
        assert_eq!(
            older.topics[0].partitions[0].leader_id.0, leader,
            "v{version} agrees"
        );
        assert!(older.nodes.is_empty());
    }

    let epoch = partition.leader_epoch;
    cluster.node(leader).kill();
    let survivor = if leader == 1 { 2 } else { 1 };
    cluster.wait_until("a new quorum leader", Duration::from_secs(20), |c| {
        let response = describe(c.node(survivor), 2);
        response.error_code == 0 && {
            let p = &response.topics[0].partitions[0];
            p.leader_id.0 != leader && p.leader_epoch > epoch
        }
    });
}

#[test]
fn a_single_node_says_it_has_no_quorum() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let response = runtime.block_on(async {
        let broker = tributary_broker::testing::TestBroker::start().await;
        broker.call(DescribeQuorumRequest::default(), 2).await
    });
    assert_eq!(response.error_code, 42, "INVALID_REQUEST");
    assert!(response.topics.is_empty());
}
