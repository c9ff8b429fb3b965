//! SyncGroup (key 14): the leader hands in the assignment; every member waits for and receives its own.

use kafka_protocol::{
    messages::{SyncGroupRequest, SyncGroupResponse},
    protocol::StrBytes,
};

use super::error_code;
use crate::{
    group::{MemberAssignment, SyncRequest},
    handlers::RequestContext,
};

pub async fn handle(ctx: &RequestContext<'_>, request: SyncGroupRequest) -> SyncGroupResponse {
    let sync = SyncRequest {
        group_id: request.group_id.0.to_string(),
        generation: request.generation_id,
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.map(|i| i.to_string()),
        protocol_type: request.protocol_type.map(|t| t.to_string()),
        protocol_name: request.protocol_name.map(|n| n.to_string()),
        assignments: request
            .assignments
            .into_iter()
            .map(|a| MemberAssignment {
                member_id: a.member_id.to_string(),
                assignment: a.assignment,
            })
            .collect(),
    };
    let result = ctx.broker.groups.sync(sync).await;
    let v5 = ctx.version >= 5;
    SyncGroupResponse::default()
        .with_error_code(error_code(result.error))
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
