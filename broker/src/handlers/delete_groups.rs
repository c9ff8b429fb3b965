//! DeleteGroups (key 42): deletes groups that have no members, with their committed offsets.

use kafka_protocol::messages::{
    delete_groups_response::DeletableGroupResult, DeleteGroupsRequest, DeleteGroupsResponse,
};

use super::error_code;
use crate::handlers::RequestContext;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group in request.groups_names {
        let outcome = ctx.broker.groups.delete_group(&group.0).await;
        results.push(
            DeletableGroupResult::default()
                .with_group_id(group)
                .with_error_code(error_code(outcome.err())),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
