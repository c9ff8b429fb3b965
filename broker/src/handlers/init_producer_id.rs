//! InitProducerId (key 22): hands out producer ids for idempotent producers. Transactions are not
//! implemented, so a transactional id is refused rather than half-supported.

use kafka_protocol::{
    messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId},
    ResponseError,
};

use super::code;
use crate::handlers::RequestContext;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if request.transactional_id.is_some() {
        return response.with_error_code(code(ResponseError::TransactionalIdAuthorizationFailed));
    }
    match ctx.broker.controller.allocate_producer_id().await {
        Ok(id) => response
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        // Retriable for every client, as Kafka answers while its broker fetches a block.
        Err(e) => {
            tracing::debug!(error = %e, "no producer id to hand out yet");
            response.with_error_code(code(ResponseError::CoordinatorLoadInProgress))
        }
    }
}
