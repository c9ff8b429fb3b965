//! Heartbeat (key 12): keeps a member's session alive and tells it when a rebalance started.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::error_code;
use crate::handlers::RequestContext;

pub async fn handle(ctx: &RequestContext<'_>, request: HeartbeatRequest) -> HeartbeatResponse {
    let outcome = ctx.broker.groups.heartbeat(
        &request.group_id.0,
        request.generation_id,
        &request.member_id,
        request.group_instance_id.as_deref(),
    );
    HeartbeatResponse::default().with_error_code(error_code(outcome.err()))
}
