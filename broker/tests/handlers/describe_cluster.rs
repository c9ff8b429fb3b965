//! DescribeCluster (key 60).

use kafka_protocol::{
    messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse, MetadataRequest},
    ResponseError,
};
use tributary_broker::{
    cluster::store::MetadataChange,
    testing::{replicated::ReplicatedCluster, TestBroker, TestCluster},
};

use crate::code;

#[tokio::test]
async fn describes_this_broker_as_the_cluster_and_its_controller() {
    let broker = TestBroker::builder()
        .node_id(4)
        .property("advertised.listeners", "PLAINTEXT://b4.test:29092")
        .start()
        .await;
    let metadata = broker
        .call(MetadataRequest::default().with_topics(None), 12)
        .await;
    for version in 0..=2 {
        let response = broker
            .call(DescribeClusterRequest::default(), version)
            .await;
        assert_eq!(response.error_code, 0, "v{version}");
        assert_eq!(
            Some(&response.cluster_id),
            metadata.cluster_id.as_ref(),
            "v{version}: same id as Metadata"
        );
        assert_eq!(response.controller_id, BrokerId(4));
        assert_eq!(response.brokers.len(), 1);
        let me = &response.brokers[0];
        assert_eq!(
            (me.broker_id, &*me.host, me.port),
            (BrokerId(4), "b4.test", 29092),
            "v{version}"
        );
        assert_eq!(
            response.cluster_authorized_operations,
            i32::MIN,
            "not requested"
        );
    }
    let v1 = broker.call(DescribeClusterRequest::default(), 1).await;
    assert_eq!(v1.endpoint_type, 1, "v1: the brokers' endpoints");
}

#[tokio::test]
async fn the_cluster_id_survives_a_restart() {
    let mut broker = TestBroker::start().await;
    let before = broker
        .call(DescribeClusterRequest::default(), 1)
        .await
        .cluster_id;
    broker.restart().await;
    let after = broker
        .call(DescribeClusterRequest::default(), 1)
        .await
        .cluster_id;
    assert_eq!(before, after);
}

#[tokio::test]
async fn brokers_of_a_test_cluster_are_distinct() {
    let cluster = TestCluster::start(2).await;
    for broker in cluster.brokers() {
        let response = broker.call(DescribeClusterRequest::default(), 1).await;
        assert_eq!(response.controller_id, BrokerId(broker.node_id()));
        assert_eq!(response.brokers[0].broker_id, BrokerId(broker.node_id()));
    }
}

#[tokio::test]
async fn asking_a_broker_for_controller_endpoints_is_an_error() {
    let broker = TestBroker::start().await;
    for version in 1..=2 {
        let response = broker
            .call(
                DescribeClusterRequest::default().with_endpoint_type(2),
                version,
            )
            .await;
        assert_eq!(
            response.error_code,
            code(ResponseError::MismatchedEndpointType),
            "v{version}: controllers are described by a controller listener (KIP-919)"
        );
        assert!(response.brokers.is_empty());
        assert!(response.error_message.is_some());
    }
}

#[tokio::test]
async fn an_unknown_endpoint_type_is_unsupported() {
    let broker = TestBroker::start().await;
    for endpoint_type in [0, 3, -1] {
        let response = broker
            .call(
                DescribeClusterRequest::default().with_endpoint_type(endpoint_type),
                1,
            )
            .await;
        assert_eq!(
            response.error_code,
            code(ResponseError::UnsupportedEndpointType),
            "endpoint type {endpoint_type}"
        );
    }
}

#[tokio::test]
async fn cluster_operations_are_reported_when_asked_for() {
    let broker = TestBroker::start().await;
    let response = broker
        .call(
            DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
            1,
        )
        .await;
    // No authorizer: every CLUSTER operation Kafka knows (CREATE, ALTER, DESCRIBE, CLUSTER_ACTION,
    // DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE as bits 5, 7-12), as Kafka reports without one.
    assert_eq!(response.cluster_authorized_operations, 8096);
}

#[tokio::test]
async fn v2_lists_fenced_brokers_only_when_asked_and_marks_them() {
    let cluster = ReplicatedCluster::start(3, &[]).await;
    cluster.fan_out().submit(&MetadataChange::FenceBroker {
        id: 3,
        fenced: true,
    });
    let listed = |response: &DescribeClusterResponse| -> Vec<(i32, bool)> {
        response
            .brokers
            .iter()
            .map(|b| (b.broker_id.0, b.is_fenced))
            .collect()
    };
    let live_only = cluster.call(1, DescribeClusterRequest::default(), 2).await;
    assert_eq!(listed(&live_only), [(1, false), (2, false)]);
    let with_fenced = cluster
        .call(
            1,
            DescribeClusterRequest::default().with_include_fenced_brokers(true),
            2,
        )
        .await;
    assert_eq!(with_fenced.error_code, 0);
    assert_eq!(listed(&with_fenced), [(1, false), (2, false), (3, true)]);
    let fenced = &with_fenced.brokers[2];
    assert_ne!(
        fenced.port, 0,
        "a fenced broker is listed with its endpoint"
    );
}
