//! LeaveGroup (key 13): members leave (v3+: several at once, by member id or static instance id).

use kafka_protocol::messages::{
    leave_group_response::MemberResponse, LeaveGroupRequest, LeaveGroupResponse,
};

use super::error_code;
use crate::{group::LeavingMember, handlers::RequestContext};

pub async fn handle(ctx: &RequestContext<'_>, request: LeaveGroupRequest) -> LeaveGroupResponse {
    let leaving: Vec<LeavingMember> = if ctx.version >= 3 {
        request
            .members
            .iter()
            .map(|m| LeavingMember {
                member_id: m.member_id.to_string(),
                instance_id: m.group_instance_id.as_ref().map(ToString::to_string),
            })
            .collect()
    } else {
        vec![LeavingMember {
            member_id: request.member_id.to_string(),
            instance_id: None,
        }]
    };
    let result = ctx.broker.groups.leave(&request.group_id.0, &leaving);
    if ctx.version < 3 || (result.members.is_empty() && result.error.is_some()) {
        return LeaveGroupResponse::default().with_error_code(error_code(result.error));
    }
    let members = request
        .members
        .into_iter()
        .zip(result.members)
        .map(|(m, outcome)| {
            MemberResponse::default()
                .with_member_id(m.member_id)
                .with_group_instance_id(m.group_instance_id)
                .with_error_code(error_code(outcome.err()))
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}
