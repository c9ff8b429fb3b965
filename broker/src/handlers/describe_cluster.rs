//! DescribeCluster (key 60): the live brokers and the controller, from the request's metadata image.

use kafka_protocol::{
    messages::{
        describe_cluster_response::DescribeClusterBroker, BrokerId, DescribeClusterRequest,
        DescribeClusterResponse,
    },
    protocol::StrBytes,
};

use super::{RequestContext, CLIENT_LISTENER};

pub async fn handle(
    ctx: &RequestContext<'_>,
    _request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let image = &ctx.image;
    let brokers = image
        .live_endpoints(CLIENT_LISTENER)
        .map(|(b, endpoint)| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.id))
                .with_host(StrBytes::from_string(endpoint.host.clone()))
                .with_port(endpoint.port)
                .with_rack(b.rack.clone().map(StrBytes::from_string))
        })
        .collect();
    DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(image.cluster_id.clone()))
        .with_controller_id(BrokerId(ctx.broker.active_controller(image).unwrap_or(-1)))
        .with_endpoint_type(1)
        .with_cluster_authorized_operations(i32::MIN)
        .with_brokers(brokers)
}
