//! DescribeGroups (key 15): state, protocol and members (with metadata and assignment) of groups.

use kafka_protocol::{
    messages::{
        describe_groups_response::{DescribedGroup, DescribedGroupMember},
        DescribeGroupsRequest, DescribeGroupsResponse,
    },
    protocol::StrBytes,
    ResponseError,
};

use crate::handlers::RequestContext;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let groups = request
        .groups
        .into_iter()
        .map(|id| {
            let described = DescribedGroup::default()
                .with_group_id(id.clone())
                .with_authorized_operations(i32::MIN);
            match ctx.broker.groups.describe(&id.0) {
                // NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS: the client looks the coordinator up again
                // or retries.
                Err(e) => described.with_error_code(e.code()),
                Ok(Some(group)) => {
                    let members = group
                        .members
                        .into_iter()
                        .map(|member| {
                            DescribedGroupMember::default()
                                .with_member_id(StrBytes::from_string(member.member_id))
                                .with_group_instance_id(if ctx.version >= 4 {
                                    member.instance_id.map(StrBytes::from_string)
                                } else {
                                    None
                                })
                                .with_client_id(StrBytes::from_string(member.client_id))
                                .with_client_host(StrBytes::from_string(member.client_host))
                                .with_member_metadata(member.metadata)
                                .with_member_assignment(member.assignment)
                        })
                        .collect();
                    described
                        .with_group_state(StrBytes::from_static_str(group.state.name()))
                        .with_protocol_type(StrBytes::from_string(group.protocol_type))
                        .with_protocol_data(StrBytes::from_string(group.protocol))
                        .with_members(members)
                }
                // Kafka answers an unknown group as Dead (v6 adds an explicit error code).
                Ok(None) if ctx.version >= 6 => described
                    .with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_group_state(StrBytes::from_static_str("Dead")),
                Ok(None) => described.with_group_state(StrBytes::from_static_str("Dead")),
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
