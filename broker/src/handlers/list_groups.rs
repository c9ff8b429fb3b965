//! ListGroups (key 16): every group this broker coordinates, optionally filtered by state (v4+) and type
//! (v5+); COORDINATOR_LOAD_IN_PROGRESS next to them while a shard is still loading, as Kafka answers.

use kafka_protocol::{
    messages::{list_groups_response::ListedGroup, GroupId, ListGroupsRequest, ListGroupsResponse},
    protocol::StrBytes,
    ResponseError,
};

use crate::handlers::RequestContext;

pub async fn handle(ctx: &RequestContext<'_>, request: ListGroupsRequest) -> ListGroupsResponse {
    let states: Vec<String> = request
        .states_filter
        .iter()
        .map(|s| s.to_lowercase())
        .collect();
    let types: Vec<String> = request
        .types_filter
        .iter()
        .map(|s| s.to_lowercase())
        .collect();
    let loading = ctx.broker.groups.is_loading();
    let groups = ctx
        .broker
        .groups
        .list()
        .into_iter()
        .filter(|g| states.is_empty() || states.contains(&g.state.name().to_lowercase()))
        // Every group here is a classic group.
        .filter(|_| types.is_empty() || types.iter().any(|t| t == "classic"))
        .map(|g| {
            ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(g.group_id)))
                .with_protocol_type(StrBytes::from_string(g.protocol_type))
                .with_group_state(if ctx.version >= 4 {
                    StrBytes::from_static_str(g.state.name())
                } else {
                    StrBytes::default()
                })
                .with_group_type(if ctx.version >= 5 {
                    StrBytes::from_static_str("classic")
                } else {
                    StrBytes::default()
                })
        })
        .collect();
    ListGroupsResponse::default()
        .with_error_code(if loading {
            ResponseError::CoordinatorLoadInProgress.code()
        } else {
            0
        })
        .with_groups(groups)
}
