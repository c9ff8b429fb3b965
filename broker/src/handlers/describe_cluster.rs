//! DescribeCluster (key 60, v0-2): the brokers and the controller, from the request's metadata image.
//!
//! Answered as a Kafka 4.x broker listener answers it: v1's `endpoint_type` (KIP-919) must be 1 (brokers);
//! 2 (controllers) is MISMATCHED_ENDPOINT_TYPE, because controller endpoints are only described by a
//! controller listener, and any other value UNSUPPORTED_ENDPOINT_TYPE. v2's `include_fenced_brokers`
//! (KIP-1073) adds the registered but fenced brokers, each entry saying whether it is fenced.

use kafka_protocol::{
    messages::{
        describe_cluster_response::DescribeClusterBroker, BrokerId, DescribeClusterRequest,
        DescribeClusterResponse,
    },
    protocol::StrBytes,
    ResponseError,
};

use super::{code, message, RequestContext, CLIENT_LISTENER, CLUSTER_OPERATIONS};

/// KIP-919's endpoint types.
const ENDPOINT_TYPE_BROKERS: i8 = 1;
const ENDPOINT_TYPE_CONTROLLERS: i8 = 2;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    match request.endpoint_type {
        ENDPOINT_TYPE_BROKERS => {}
        ENDPOINT_TYPE_CONTROLLERS => {
            return refused(
                ResponseError::MismatchedEndpointType,
                "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of \
                 type CONTROLLER",
            )
        }
        other => {
            return refused(
                ResponseError::UnsupportedEndpointType,
                &format!("Unsupported endpoint type {other}"),
            )
        }
    }
    let image = &ctx.image;
    let brokers: Vec<DescribeClusterBroker> = image
        .brokers
        .values()
        .filter(|b| request.include_fenced_brokers || !b.fenced)
        .filter_map(|b| Some((b, b.endpoint(CLIENT_LISTENER)?)))
        .map(|(b, endpoint)| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.id))
                .with_host(StrBytes::from_string(endpoint.host.clone()))
                .with_port(endpoint.port)
                .with_rack(b.rack.clone().map(StrBytes::from_string))
                .with_is_fenced(b.fenced)
        })
        .collect();
    // Kafka answers -1 rather than name a controller that is not among the brokers it lists.
    let controller = ctx
        .broker
        .active_controller(image)
        .filter(|id| brokers.iter().any(|b| b.broker_id.0 == *id))
        .unwrap_or(-1);
    DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(image.cluster_id.clone()))
        .with_controller_id(BrokerId(controller))
        .with_endpoint_type(ENDPOINT_TYPE_BROKERS)
        .with_cluster_authorized_operations(if request.include_cluster_authorized_operations {
            CLUSTER_OPERATIONS
        } else {
            super::OPERATIONS_NOT_REQUESTED
        })
        .with_brokers(brokers)
}

/// Kafka's answer to a request it will not serve: the error alone, every other field at its default.
fn refused(error: ResponseError, text: &str) -> DescribeClusterResponse {
    DescribeClusterResponse::default()
        .with_error_code(code(error))
        .with_error_message(message(text))
}
