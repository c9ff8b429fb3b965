//! AlterPartitionReassignments (key 45, v0-1): starts moves of partitions to new replicas, or cancels
//! them (null replicas), as `kafka-reassign-partitions.sh --execute`/`--cancel` and Cruise Control send.
//! v1 adds `allow_replication_factor_change` (KIP-860). Decided by the active controller
//! (`cluster::controller::reassignment`), whichever broker the client reached.

use kafka_protocol::{
    messages::{
        alter_partition_reassignments_response::{
            ReassignablePartitionResponse, ReassignableTopicResponse,
        },
        AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, TopicName,
    },
    protocol::StrBytes,
    ResponseError,
};

use super::{code, message, topic_error_code, RequestContext};
use crate::cluster::controller::reassignment::{ReassignmentError, ReassignmentRequest};

fn error_code(error: &ReassignmentError) -> i16 {
    code(match error {
        ReassignmentError::UnknownTopicOrPartition { .. } => ResponseError::UnknownTopicOrPartition,
        ReassignmentError::InvalidAssignment(_) => ResponseError::InvalidReplicaAssignment,
        ReassignmentError::ReplicationFactorChange { .. } => {
            ResponseError::InvalidReplicationFactor
        }
        ReassignmentError::NoReassignmentInProgress => ResponseError::NoReassignmentInProgress,
    })
}

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    // v0 has no such field and always allowed it; the codec reads it as true there.
    let allow_replication_factor_change = request.allow_replication_factor_change;
    let response = AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(allow_replication_factor_change);
    let requests: Vec<ReassignmentRequest> = request
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(|p| ReassignmentRequest {
                topic: topic.name.0.to_string(),
                partition: p.partition_index,
                target: p
                    .replicas
                    .as_ref()
                    .map(|replicas| replicas.iter().map(|b| b.0).collect()),
            })
        })
        .collect();
    let outcomes = match ctx
        .broker
        .controller
        .alter_partition_reassignments(requests, allow_replication_factor_change)
        .await
    {
        Ok(outcomes) => outcomes,
        Err(e) => {
            tracing::warn!(error = %crate::error_chain(&e), "AlterPartitionReassignments failed");
            return response
                .with_error_code(topic_error_code(&e))
                .with_error_message(message(e.to_string()));
        }
    };
    let mut responses: Vec<ReassignableTopicResponse> = Vec::new();
    for (topic, partition, outcome) in outcomes {
        let result = ReassignablePartitionResponse::default().with_partition_index(partition);
        let result = match outcome {
            Ok(()) => result,
            Err(e) => result
                .with_error_code(error_code(&e))
                .with_error_message(message(e.to_string())),
        };
        match responses.last_mut().filter(|t| t.name.0.as_str() == topic) {
            Some(entry) => entry.partitions.push(result),
            None => responses.push(
                ReassignableTopicResponse::default()
                    .with_name(TopicName(StrBytes::from_string(topic)))
                    .with_partitions(vec![result]),
            ),
        }
    }
    response.with_responses(responses)
}
