//! UnregisterBroker (key 64, v0): forgets a decommissioned broker (`kafka-cluster.sh unregister --id N`),
//! decided by the active controller. Unlike Kafka, which forgets any broker it is asked to, a broker that
//! still runs, still holds replicas or votes in the metadata quorum is refused with INVALID_REQUEST and a
//! message saying what to do first: forgetting it would hide copies that are still needed.

use kafka_protocol::{
    messages::{UnregisterBrokerRequest, UnregisterBrokerResponse},
    ResponseError,
};

use super::{code, message, topic_error_code, RequestContext};
use crate::cluster::controller::liveness::UnregisterOutcome;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: UnregisterBrokerRequest,
) -> UnregisterBrokerResponse {
    let id = request.broker_id.0;
    let response = UnregisterBrokerResponse::default();
    match ctx.broker.controller.unregister_broker(id).await {
        Ok(UnregisterOutcome::Unregistered) => response,
        Ok(UnregisterOutcome::NotRegistered) => response
            .with_error_code(code(ResponseError::BrokerIdNotRegistered))
            .with_error_message(message(format!("Broker {id} is not registered."))),
        Ok(UnregisterOutcome::Refused(why)) => response
            .with_error_code(code(ResponseError::InvalidRequest))
            .with_error_message(message(why)),
        Err(e) => {
            tracing::warn!(broker = id, error = %crate::error_chain(&e), "UnregisterBroker failed");
            response
                .with_error_code(topic_error_code(&e))
                .with_error_message(message(e.to_string()))
        }
    }
}
