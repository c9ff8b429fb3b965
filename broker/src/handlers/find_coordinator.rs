//! FindCoordinator (key 10): this broker coordinates every group. Creates `__consumer_offsets` on first use.
//! Transactions are not implemented, so transaction coordinators are reported as unavailable.

use kafka_protocol::{
    messages::{
        find_coordinator_response::Coordinator, BrokerId, FindCoordinatorRequest,
        FindCoordinatorResponse,
    },
    protocol::StrBytes,
    ResponseError,
};

use super::code;
use crate::protocol::RequestContext;

const GROUP: i8 = 0;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let config = &ctx.broker.config;
    let error = if request.key_type != GROUP {
        Some((
            ResponseError::CoordinatorNotAvailable,
            "transactions are not supported".to_owned(),
        ))
    } else {
        ctx.broker
            .groups
            .ensure_offsets_topic()
            .await
            .err()
            .map(|e| (ResponseError::CoordinatorNotAvailable, e))
    };
    let (error_code, error_message) = match &error {
        Some((e, text)) => (code(*e), Some(StrBytes::from_string(text.clone()))),
        None => (0, None),
    };
    let host = StrBytes::from_string(config.advertised_host.clone());
    let node = BrokerId(if error.is_some() { -1 } else { config.node_id });
    let port = if error.is_some() {
        -1
    } else {
        config.advertised_port
    };
    if ctx.version >= 4 {
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(node)
                    .with_host(host.clone())
                    .with_port(port)
                    .with_error_code(error_code)
                    .with_error_message(error_message.clone())
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    FindCoordinatorResponse::default()
        .with_error_code(error_code)
        .with_error_message(if ctx.version >= 1 {
            error_message
        } else {
            None
        })
        .with_node_id(node)
        .with_host(host)
        .with_port(port)
}
