//! JoinGroup (key 11): joins a member to a group and waits for the rebalance to complete.

use kafka_protocol::{
    messages::{join_group_response::JoinGroupResponseMember, JoinGroupRequest, JoinGroupResponse},
    protocol::StrBytes,
};

use super::error_code;
use crate::{
    group::{JoinRequest, Protocol},
    handlers::RequestContext,
};

pub async fn handle(ctx: &RequestContext<'_>, request: JoinGroupRequest) -> JoinGroupResponse {
    let join = JoinRequest {
        group_id: request.group_id.0.to_string(),
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.map(|i| i.to_string()),
        client_id: ctx
            .header
            .client_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        client_host: ctx.client_host.clone(),
        session_timeout_ms: request.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if ctx.version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| Protocol {
                name: p.name.to_string(),
                metadata: p.metadata,
            })
            .collect(),
        require_known_member: ctx.version >= 4,
    };
    let result = ctx.broker.groups.join(join).await;
    let members = result
        .members
        .into_iter()
        .map(|member| {
            JoinGroupResponseMember::default()
                .with_member_id(StrBytes::from_string(member.member_id))
                .with_group_instance_id(if ctx.version >= 5 {
                    member.instance_id.map(StrBytes::from_string)
                } else {
                    None
                })
                .with_metadata(member.metadata)
        })
        .collect();
    JoinGroupResponse::default()
        .with_error_code(error_code(result.error))
        .with_generation_id(result.generation)
        .with_protocol_type(if ctx.version >= 7 {
            result.protocol_type.map(StrBytes::from_string)
        } else {
            None
        })
        .with_protocol_name(result.protocol_name.map(StrBytes::from_string).or(
            if ctx.version >= 7 {
                None
            } else {
                Some(StrBytes::default())
            },
        ))
        .with_leader(StrBytes::from_string(result.leader))
        .with_member_id(StrBytes::from_string(result.member_id))
        .with_members(members)
}
