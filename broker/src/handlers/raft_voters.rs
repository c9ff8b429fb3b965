//! AddRaftVoter (key 80, v0) and RemoveRaftVoter (key 81, v0), KIP-853: what `kafka-metadata-quorum.sh
//! add-controller` and `remove-controller` send, so the metadata quorum follows the fleet. Any broker answers,
//! forwarding to the active controller. A quorum formed with static `controller.quorum.voters` answers
//! UNSUPPORTED_VERSION, as Kafka does at kraft.version 0. Unlike Kafka, a removal that would leave the quorum
//! without a majority that follows the leader is refused with INVALID_REQUEST.

use std::time::Duration;

use kafka_protocol::{
    messages::{
        AddRaftVoterRequest, AddRaftVoterResponse, RemoveRaftVoterRequest, RemoveRaftVoterResponse,
    },
    protocol::StrBytes,
    ResponseError,
};

use super::{code, message, topic_error_code, RequestContext};
use crate::cluster::{controller::calls::ControllerCall, raft::quorum::VoterChangeError};

/// The wait Kafka's admin client asks for when the request gives none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The error code and message of a voter change's outcome.
async fn outcome(
    ctx: &RequestContext<'_>,
    cluster_id: Option<&StrBytes>,
    call: ControllerCall,
) -> (i16, Option<StrBytes>) {
    let mismatch = cluster_id
        .map(|id| id.as_str().to_owned())
        .filter(|id| *id != ctx.broker.image().cluster_id);
    if let Some(id) = mismatch {
        return (
            code(ResponseError::InconsistentClusterId),
            message(format!(
                "the request names cluster {id}, this is another cluster"
            )),
        );
    }
    match ctx.broker.controller.change_voters(call).await {
        Ok(Ok(())) => (0, None),
        Ok(Err(refusal)) => {
            let error = match &refusal {
                VoterChangeError::StaticQuorum(_) => ResponseError::UnsupportedVersion,
                VoterChangeError::AlreadyVoter(_) => ResponseError::DuplicateVoter,
                VoterChangeError::NotVoter(_) => ResponseError::VoterNotFound,
                VoterChangeError::NotReady(_) => ResponseError::RequestTimedOut,
                VoterChangeError::Unsafe(_) => ResponseError::InvalidRequest,
            };
            (code(error), message(refusal.to_string()))
        }
        Err(e) => {
            tracing::warn!(error = %crate::error_chain(&e), "voter change failed");
            (topic_error_code(&e), message(e.to_string()))
        }
    }
}

fn directory_id(id: uuid::Uuid) -> Option<String> {
    (!id.is_nil()).then(|| crate::cluster_identity::uuid_text(&id))
}

pub mod add {
    use super::*;

    pub async fn handle(
        ctx: &RequestContext<'_>,
        request: AddRaftVoterRequest,
    ) -> AddRaftVoterResponse {
        let timeout = u64::try_from(request.timeout_ms)
            .ok()
            .filter(|ms| *ms > 0)
            .map_or(DEFAULT_TIMEOUT, Duration::from_millis);
        let listeners = request
            .listeners
            .iter()
            .map(|l| format!("{}:{}", l.host.as_str(), l.port))
            .collect();
        let call = ControllerCall::AddRaftVoter {
            id: request.voter_id,
            directory_id: directory_id(request.voter_directory_id),
            listeners,
            timeout,
        };
        let (error_code, error_message) = outcome(ctx, request.cluster_id.as_ref(), call).await;
        AddRaftVoterResponse::default()
            .with_error_code(error_code)
            .with_error_message(error_message)
    }
}

pub mod remove {
    use super::*;

    pub async fn handle(
        ctx: &RequestContext<'_>,
        request: RemoveRaftVoterRequest,
    ) -> RemoveRaftVoterResponse {
        let call = ControllerCall::RemoveRaftVoter {
            id: request.voter_id,
            directory_id: directory_id(request.voter_directory_id),
        };
        let (error_code, error_message) = outcome(ctx, request.cluster_id.as_ref(), call).await;
        RemoveRaftVoterResponse::default()
            .with_error_code(error_code)
            .with_error_message(error_message)
    }
}
