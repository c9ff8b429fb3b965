//! Whether a response carries an error: any non-zero error code, at the top level or in any topic,
//! partition, group or member entry. Drives `tributary_request_errors_total`; one request counts once however
//! many of its entries failed.
//!
//! Expected answers that are error codes on the wire (MEMBER_ID_REQUIRED on a first JoinGroup,
//! REBALANCE_IN_PROGRESS on a Heartbeat, UNKNOWN_TOPIC_OR_PARTITION for a topic a client probes) count too,
//! as they do in Kafka's own per-API error metrics.

use kafka_protocol::messages::{
    AddRaftVoterResponse, AlterClientQuotasResponse, AlterConfigsResponse,
    AlterPartitionReassignmentsResponse, ApiVersionsResponse, CreatePartitionsResponse,
    CreateTopicsResponse, DeleteGroupsResponse, DeleteTopicsResponse, DescribeClientQuotasResponse,
    DescribeClusterResponse, DescribeConfigsResponse, DescribeGroupsResponse,
    DescribeLogDirsResponse, DescribeQuorumResponse, DescribeTopicPartitionsResponse,
    ElectLeadersResponse, FetchResponse, FindCoordinatorResponse, HeartbeatResponse,
    IncrementalAlterConfigsResponse, InitProducerIdResponse, JoinGroupResponse, LeaveGroupResponse,
    ListGroupsResponse, ListOffsetsResponse, ListPartitionReassignmentsResponse, MetadataResponse,
    OffsetCommitResponse, OffsetDeleteResponse, OffsetFetchResponse, OffsetForLeaderEpochResponse,
    ProduceResponse, RemoveRaftVoterResponse, SyncGroupResponse, UnregisterBrokerResponse,
};

/// A response that can say whether it carries an error code.
pub(crate) trait ResponseErrors {
    fn has_error(&self) -> bool;
}

/// Responses whose only error code is the top-level one.
macro_rules! top_level_only {
    ($($response:ty),* $(,)?) => {
        $(impl ResponseErrors for $response {
            fn has_error(&self) -> bool {
                self.error_code != 0
            }
        })*
    };
}

top_level_only!(
    ApiVersionsResponse,
    DescribeClusterResponse,
    DescribeClientQuotasResponse,
    InitProducerIdResponse,
    JoinGroupResponse,
    SyncGroupResponse,
    HeartbeatResponse,
    ListGroupsResponse,
    ListPartitionReassignmentsResponse,
    UnregisterBrokerResponse,
    DescribeQuorumResponse,
    AddRaftVoterResponse,
    RemoveRaftVoterResponse,
);

/// Responses that are a list of entries with one error code each.
macro_rules! per_entry {
    ($($response:ty => $list:ident),* $(,)?) => {
        $(impl ResponseErrors for $response {
            fn has_error(&self) -> bool {
                self.$list.iter().any(|entry| entry.error_code != 0)
            }
        })*
    };
}

per_entry!(
    CreateTopicsResponse => topics,
    DeleteTopicsResponse => responses,
    CreatePartitionsResponse => results,
    DescribeConfigsResponse => results,
    AlterConfigsResponse => responses,
    AlterClientQuotasResponse => entries,
    IncrementalAlterConfigsResponse => responses,
    DescribeGroupsResponse => groups,
    DeleteGroupsResponse => results,
    DescribeTopicPartitionsResponse => topics,
);

impl ResponseErrors for MetadataResponse {
    fn has_error(&self) -> bool {
        self.error_code != 0
            || self
                .topics
                .iter()
                .any(|t| t.error_code != 0 || t.partitions.iter().any(|p| p.error_code != 0))
    }
}

impl ResponseErrors for ListOffsetsResponse {
    fn has_error(&self) -> bool {
        self.topics
            .iter()
            .any(|t| t.partitions.iter().any(|p| p.error_code != 0))
    }
}

impl ResponseErrors for FindCoordinatorResponse {
    fn has_error(&self) -> bool {
        self.error_code != 0 || self.coordinators.iter().any(|c| c.error_code != 0)
    }
}

impl ResponseErrors for LeaveGroupResponse {
    fn has_error(&self) -> bool {
        self.error_code != 0 || self.members.iter().any(|m| m.error_code != 0)
    }
}

impl ResponseErrors for OffsetCommitResponse {
    fn has_error(&self) -> bool {
        self.topics
            .iter()
            .any(|t| t.partitions.iter().any(|p| p.error_code != 0))
    }
}

impl ResponseErrors for OffsetFetchResponse {
    fn has_error(&self) -> bool {
        self.error_code != 0
            || self
                .topics
                .iter()
                .any(|t| t.partitions.iter().any(|p| p.error_code != 0))
            || self.groups.iter().any(|g| {
                g.error_code != 0
                    || g.topics
                        .iter()
                        .any(|t| t.partitions.iter().any(|p| p.error_code != 0))
            })
    }
}

impl ResponseErrors for OffsetDeleteResponse {
    fn has_error(&self) -> bool {
        self.error_code != 0
            || self
                .topics
                .iter()
                .any(|t| t.partitions.iter().any(|p| p.error_code != 0))
    }
}

impl ResponseErrors for ProduceResponse {
    fn has_error(&self) -> bool {
        self.responses
            .iter()
            .any(|t| t.partition_responses.iter().any(|p| p.error_code != 0))
    }
}

impl ResponseErrors for ElectLeadersResponse {
    fn has_error(&self) -> bool {
        self.error_code != 0
            || self
                .replica_election_results
                .iter()
                .flat_map(|t| &t.partition_result)
                .any(|p| p.error_code != 0)
    }
}

impl ResponseErrors for AlterPartitionReassignmentsResponse {
    fn has_error(&self) -> bool {
        self.error_code != 0
            || self
                .responses
                .iter()
                .flat_map(|t| &t.partitions)
                .any(|p| p.error_code != 0)
    }
}

impl ResponseErrors for DescribeLogDirsResponse {
    fn has_error(&self) -> bool {
        self.error_code != 0 || self.results.iter().any(|r| r.error_code != 0)
    }
}

impl ResponseErrors for OffsetForLeaderEpochResponse {
    fn has_error(&self) -> bool {
        self.topics
            .iter()
            .flat_map(|t| &t.partitions)
            .any(|p| p.error_code != 0)
    }
}

impl ResponseErrors for FetchResponse {
    fn has_error(&self) -> bool {
        self.error_code != 0
            || self
                .responses
                .iter()
                .any(|t| t.partitions.iter().any(|p| p.error_code != 0))
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{
        fetch_response::{FetchableTopicResponse, PartitionData},
        produce_response::{PartitionProduceResponse, TopicProduceResponse},
    };

    use super::*;

    #[test]
    fn nested_error_codes_are_found() {
        let ok = ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
            .with_partition_responses(vec![PartitionProduceResponse::default(); 2])]);
        assert!(!ok.has_error());
        let mut failed = ok.clone();
        failed.responses[0].partition_responses[1].error_code = 6;
        assert!(failed.has_error());

        let fetch =
            FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
                .with_partitions(vec![
                    PartitionData::default(),
                    PartitionData::default().with_error_code(1),
                ])]);
        assert!(fetch.has_error());
        assert!(!FetchResponse::default().has_error());
        assert!(FetchResponse::default().with_error_code(70).has_error());
        assert!(HeartbeatResponse::default().with_error_code(27).has_error());
    }
}
