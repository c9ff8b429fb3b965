//! ListPartitionReassignments (key 46, v0): the partitions with a move in progress, with their full
//! replica set and the replicas being added and removed; of every topic, or of the partitions asked
//! (unknown ones are left out, as in Kafka). Answered from this broker's metadata image, which every
//! broker follows, so any broker answers it.

use kafka_protocol::{
    messages::{
        list_partition_reassignments_response::{
            OngoingPartitionReassignment, OngoingTopicReassignment,
        },
        BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
    },
    protocol::StrBytes,
};

use super::RequestContext;
use crate::cluster::controller::reassignment::ongoing;

fn brokers(ids: &[i32]) -> Vec<BrokerId> {
    ids.iter().map(|id| BrokerId(*id)).collect()
}

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let image = ctx.broker.image();
    let wanted: Option<Vec<(String, Vec<i32>)>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let topics = ongoing(&image, wanted.as_deref())
        .into_iter()
        .map(|(name, partitions)| {
            OngoingTopicReassignment::default()
                .with_name(TopicName(StrBytes::from_string(name)))
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|p| {
                            OngoingPartitionReassignment::default()
                                .with_partition_index(p.partition)
                                .with_replicas(brokers(&p.replicas))
                                .with_adding_replicas(brokers(&p.adding))
                                .with_removing_replicas(brokers(&p.removing))
                        })
                        .collect(),
                )
        })
        .collect();
    ListPartitionReassignmentsResponse::default().with_topics(topics)
}
