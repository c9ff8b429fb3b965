//! LeaveGroup (key 13): members leave (v3+: several at once, by member id or static instance id).

use kafka_protocol::messages::{
    leave_group_response::MemberResponse, LeaveGroupRequest, LeaveGroupResponse,
};

use crate::handlers::RequestContext;

pub async fn handle(ctx: &RequestContext<'_>, request: LeaveGroupRequest) -> LeaveGroupResponse {
    let leaving: Vec<(String, Option<String>)> = if ctx.version >= 3 {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(ToString::to_string),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let (error, per_member) = ctx.broker.groups.leave(&request.group_id.0, &leaving);
    if ctx.version < 3 {
        return LeaveGroupResponse::default().with_error_code(error);
    }
    let members = request
        .members
        .into_iter()
        .zip(per_member)
        .map(|(m, code)| {
            MemberResponse::default()
                .with_member_id(m.member_id)
                .with_group_instance_id(m.group_instance_id)
                .with_error_code(code)
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}
