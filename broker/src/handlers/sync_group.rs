//! SyncGroup (key 14): the leader hands in the assignment; every member waits for and receives its own.

use kafka_protocol::{
    messages::{SyncGroupRequest, SyncGroupResponse},
    protocol::StrBytes,
};

use crate::handlers::RequestContext;

pub async fn handle(ctx: &RequestContext<'_>, request: SyncGroupRequest) -> SyncGroupResponse {
    let assignments = request
        .assignments
        .into_iter()
        .map(|a| (a.member_id.to_string(), a.assignment))
        .collect();
    let protocol_type = request.protocol_type.as_ref().map(ToString::to_string);
    let protocol_name = request.protocol_name.as_ref().map(ToString::to_string);
    let result = ctx
        .broker
        .groups
        .sync(
            &request.group_id.0,
            request.generation_id,
            &request.member_id,
            request.group_instance_id.as_deref(),
            (protocol_type.as_deref(), protocol_name.as_deref()),
            assignments,
        )
        .await;
    let v5 = ctx.version >= 5;
    SyncGroupResponse::default()
        .with_error_code(result.error)
        .with_protocol_type(if v5 {
            result.protocol_type.map(StrBytes::from_string)
        } else {
            None
        })
        .with_protocol_name(if v5 {
            result.protocol_name.map(StrBytes::from_string)
        } else {
            None
        })
        .with_assignment(result.assignment)
}
