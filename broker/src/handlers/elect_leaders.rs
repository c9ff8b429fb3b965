//! ElectLeaders (key 43, v0-2): preferred-leader elections (type 0, what `kafka-leader-election.sh
//! --election-type PREFERRED` and Cruise Control send) and unclean elections (type 1, an admin's explicit
//! choice to accept losing what only the old ISR held). Decided by the active controller.

use kafka_protocol::{
    messages::{
        elect_leaders_response::{PartitionResult, ReplicaElectionResult},
        ElectLeadersRequest, ElectLeadersResponse,
    },
    ResponseError,
};

use super::{code, message, topic_error_code, RequestContext};
use crate::cluster::controller::elections::{ElectionOutcome, ElectionType};

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: ElectLeadersRequest,
) -> ElectLeadersResponse {
    let election_type = match (ctx.version, request.election_type) {
        (0, _) | (_, 0) => ElectionType::Preferred,
        (_, 1) => ElectionType::Unclean,
        (_, _) => {
            return ElectLeadersResponse::default()
                .with_error_code(code(ResponseError::InvalidRequest));
        }
    };
    let partitions = request.topic_partitions.map(|topics| {
        topics
            .into_iter()
            .flat_map(|t| {
                let name = t.topic.0.to_string();
                t.partitions.into_iter().map(move |p| (name.clone(), p))
            })
            .collect::<Vec<_>>()
    });
    let outcomes = match ctx
        .broker
        .controller
        .elect_leaders(election_type, partitions)
        .await
    {
        Ok(outcomes) => outcomes,
        Err(e) => {
            tracing::warn!(error = %crate::error_chain(&e), "ElectLeaders failed");
            return ElectLeadersResponse::default().with_error_code(topic_error_code(&e));
        }
    };
    let mut by_topic: Vec<ReplicaElectionResult> = Vec::new();
    for (topic, partition, outcome) in outcomes {
        let (error, text) = match outcome {
            ElectionOutcome::Elected(_) => (None, None),
            ElectionOutcome::NotNeeded => (Some(ResponseError::ElectionNotNeeded), None),
            ElectionOutcome::PreferredNotAvailable => (
                Some(ResponseError::PreferredLeaderNotAvailable),
                Some("the preferred replica is not live and in sync"),
            ),
            ElectionOutcome::EligibleNotAvailable => (
                Some(ResponseError::EligibleLeadersNotAvailable),
                Some("no live replica can lead"),
            ),
            ElectionOutcome::UnknownPartition => {
                (Some(ResponseError::UnknownTopicOrPartition), None)
            }
        };
        let result = PartitionResult::default()
            .with_partition_id(partition)
            .with_error_code(error.map_or(0, code))
            .with_error_message(text.and_then(message));
        match by_topic.last_mut().filter(|t| t.topic.0.as_str() == topic) {
            Some(entry) => entry.partition_result.push(result),
            None => by_topic.push(
                ReplicaElectionResult::default()
                    .with_topic(kafka_protocol::messages::TopicName(
                        kafka_protocol::protocol::StrBytes::from_string(topic),
                    ))
                    .with_partition_result(vec![result]),
            ),
        }
    }
    ElectLeadersResponse::default().with_replica_election_results(by_topic)
}
