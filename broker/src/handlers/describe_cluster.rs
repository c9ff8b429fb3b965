//! DescribeCluster (key 60): this broker as the whole cluster and its controller.

use kafka_protocol::{
    messages::{
        describe_cluster_response::DescribeClusterBroker, BrokerId, DescribeClusterRequest,
        DescribeClusterResponse,
    },
    protocol::StrBytes,
};

use crate::protocol::RequestContext;

pub async fn handle(
    ctx: &RequestContext<'_>,
    _request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let config = &ctx.broker.config;
    DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(
            ctx.broker.metadata.image().cluster_id.clone(),
        ))
        .with_controller_id(BrokerId(config.node_id))
        .with_endpoint_type(1)
        .with_cluster_authorized_operations(i32::MIN)
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(BrokerId(config.node_id))
            .with_host(StrBytes::from_string(config.advertised_host.clone()))
            .with_port(config.advertised_port)])
}
