//! Where a response carries the client quota throttle (`throttle_time_ms`), so the dispatcher can report
//! the throttle a request earned whatever its API. DescribeQuorum has no such field: its throttle is only
//! applied by holding the connection.

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

/// A response that can report a throttle.
pub(crate) trait Throttled {
    /// Raises the response's `throttle_time_ms` to at least `ms` (a handler may have set one already).
    fn raise_throttle(&mut self, ms: i32);
}

macro_rules! throttled {
    ($($response:ty),* $(,)?) => {
        $(impl Throttled for $response {
            fn raise_throttle(&mut self, ms: i32) {
                self.throttle_time_ms = self.throttle_time_ms.max(ms);
            }
        })*
    };
}

throttled!(
    AddRaftVoterResponse,
    AlterClientQuotasResponse,
    AlterConfigsResponse,
    AlterPartitionReassignmentsResponse,
    ApiVersionsResponse,
    CreatePartitionsResponse,
    CreateTopicsResponse,
    DeleteGroupsResponse,
    DeleteTopicsResponse,
    DescribeClientQuotasResponse,
    DescribeClusterResponse,
    DescribeConfigsResponse,
    DescribeGroupsResponse,
    DescribeLogDirsResponse,
    DescribeTopicPartitionsResponse,
    ElectLeadersResponse,
    FetchResponse,
    FindCoordinatorResponse,
    HeartbeatResponse,
    IncrementalAlterConfigsResponse,
    InitProducerIdResponse,
    JoinGroupResponse,
    LeaveGroupResponse,
    ListGroupsResponse,
    ListOffsetsResponse,
    ListPartitionReassignmentsResponse,
    MetadataResponse,
    OffsetCommitResponse,
    OffsetDeleteResponse,
    OffsetFetchResponse,
    OffsetForLeaderEpochResponse,
    ProduceResponse,
    RemoveRaftVoterResponse,
    SyncGroupResponse,
    UnregisterBrokerResponse,
);

impl Throttled for DescribeQuorumResponse {
    fn raise_throttle(&mut self, _ms: i32) {}
}
