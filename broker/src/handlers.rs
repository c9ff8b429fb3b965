//! One handler per Kafka API (one file each), and the dispatch from API key to handler.
//!
//! A handler gets the decoded request and the [`RequestContext`], and returns the response message. A failure
//! that concerns one topic or partition becomes that entry's error code while the rest of the response
//! succeeds; only a request that cannot be decoded at all closes the connection.

pub mod alter_client_quotas;
pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_topics;
pub mod describe_client_quotas;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_quorum;
pub mod describe_topic_partitions;
pub mod elect_leaders;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod raft_voters;
pub mod sync_group;
pub mod unregister_broker;

mod dispatch;
mod errors;
mod throttle;

use std::{sync::Arc, time::Instant};

use bytes::Bytes;
use dispatch::busy_time;
pub use dispatch::{
    encode, handle_frame, handle_frame_from, handle_request, DeferredResponse, Handled, Pending,
    RequestContext,
};
use errors::ResponseErrors;
use kafka_protocol::{messages::ApiKey, protocol::StrBytes, ResponseError};
use throttle::Throttled;

pub(crate) use crate::broker::CLIENT_LISTENER;
use crate::{
    cluster::{
        controller::TopicError,
        image::{MetadataImage, NO_LEADER},
    },
    partition::EpochCheck,
    protocol::{decode_body, ProtocolError},
    quota::manager::QuotaKind,
    replication::manager::NotServed,
};

async fn route(
    ctx: &RequestContext<'_>,
    api: ApiKey,
    body: &mut Bytes,
) -> Result<Pending, ProtocolError> {
    let version = ctx.version;
    let correlation_id = ctx.header.correlation_id;
    let metrics = &ctx.broker.metrics;
    macro_rules! simple {
        ($module:ident) => {{
            let request = decode_body(api, version, body)?;
            let (mut response, busy) =
                busy_time(ctx.quotas_enabled(), $module::handle(ctx, request)).await;
            ctx.record_request_time(api, busy);
            response.raise_throttle(ctx.throttle_time_ms());
            let failed = response.has_error();
            let frame = encode(api, version, correlation_id, response, Vec::new())?;
            metrics.request_finished(api, ctx.received, failed);
            Ok(Pending::Ready(Some(frame)))
        }};
    }
    match api {
        ApiKey::ApiVersions => simple!(api_versions),
        ApiKey::Metadata => simple!(metadata),
        ApiKey::ListOffsets => simple!(list_offsets),
        ApiKey::CreateTopics => simple!(create_topics),
        ApiKey::DeleteTopics => simple!(delete_topics),
        ApiKey::CreatePartitions => simple!(create_partitions),
        ApiKey::DescribeConfigs => simple!(describe_configs),
        ApiKey::AlterConfigs => simple!(alter_configs),
        ApiKey::IncrementalAlterConfigs => simple!(incremental_alter_configs),
        ApiKey::DescribeCluster => simple!(describe_cluster),
        ApiKey::DescribeClientQuotas => simple!(describe_client_quotas),
        ApiKey::AlterClientQuotas => simple!(alter_client_quotas),
        ApiKey::DescribeTopicPartitions => simple!(describe_topic_partitions),
        ApiKey::InitProducerId => simple!(init_producer_id),
        ApiKey::FindCoordinator => simple!(find_coordinator),
        ApiKey::JoinGroup => simple!(join_group),
        ApiKey::SyncGroup => simple!(sync_group),
        ApiKey::Heartbeat => simple!(heartbeat),
        ApiKey::LeaveGroup => simple!(leave_group),
        ApiKey::OffsetCommit => simple!(offset_commit),
        ApiKey::OffsetFetch => simple!(offset_fetch),
        ApiKey::DescribeGroups => simple!(describe_groups),
        ApiKey::ListGroups => simple!(list_groups),
        ApiKey::DeleteGroups => simple!(delete_groups),
        ApiKey::OffsetDelete => simple!(offset_delete),
        ApiKey::OffsetForLeaderEpoch => simple!(offset_for_leader_epoch),
        ApiKey::ElectLeaders => simple!(elect_leaders),
        ApiKey::DescribeLogDirs => simple!(describe_log_dirs),
        ApiKey::AlterPartitionReassignments => simple!(alter_partition_reassignments),
        ApiKey::ListPartitionReassignments => simple!(list_partition_reassignments),
        ApiKey::UnregisterBroker => simple!(unregister_broker),
        ApiKey::DescribeQuorum => simple!(describe_quorum),
        ApiKey::AddRaftVoter => {
            use raft_voters::add;
            simple!(add)
        }
        ApiKey::RemoveRaftVoter => {
            use raft_voters::remove;
            simple!(remove)
        }
        ApiKey::Produce => {
            let request_bytes = body.len();
            let request = decode_body(api, version, body)?;
            let started = Instant::now();
            let appended = produce::append(ctx, request);
            if ctx.quotas_enabled() {
                ctx.add_throttle(ctx.broker.quotas.record_bytes(
                    &ctx.image.client_quotas,
                    QuotaKind::Produce,
                    ctx.quota_client(),
                    request_bytes,
                ));
                ctx.record_request_time(api, started.elapsed());
            }
            let throttle_time_ms = ctx.throttle_time_ms();
            match appended {
                Some(appended) => {
                    let broker = Arc::clone(ctx.broker);
                    let received = ctx.received;
                    Ok(Pending::Deferred(Box::pin(async move {
                        let mut response = appended.acknowledge(&broker.metrics).await;
                        response.raise_throttle(throttle_time_ms);
                        let failed = response.has_error();
                        let result = encode(api, version, correlation_id, response, Vec::new());
                        broker
                            .metrics
                            .request_finished(api, received, failed || result.is_err());
                        result.map(Some)
                    })))
                }
                None => {
                    // acks=0: no response, so nothing to tell success from failure by.
                    metrics.request_finished(api, ctx.received, false);
                    Ok(Pending::Ready(None))
                }
            }
        }
        ApiKey::Fetch => {
            let mut request: kafka_protocol::messages::FetchRequest =
                decode_body(api, version, body)?;
            // Followers are brokers: the replication throttle meters them, client quotas never do.
            let consumer = ctx.quotas_enabled() && fetch::replica_id(&request, version).is_none();
            if consumer {
                if let Some(max) = ctx
                    .broker
                    .quotas
                    .max_fetch_bytes(&ctx.image.client_quotas, ctx.quota_client())
                {
                    request.max_bytes = request
                        .max_bytes
                        .min(i32::try_from(max).unwrap_or(i32::MAX))
                        .max(1);
                }
            }
            let ((mut response, slices), busy) =
                busy_time(consumer, fetch::handle(ctx, request)).await;
            if consumer {
                ctx.record_request_time(api, busy);
                // The encoded size counts the log slices sent with sendfile, whose placeholders it sizes.
                let bytes = crate::protocol::response_size(api, version, &response)?;
                ctx.add_throttle(ctx.broker.quotas.record_bytes(
                    &ctx.image.client_quotas,
                    QuotaKind::Fetch,
                    ctx.quota_client(),
                    bytes,
                ));
                response.raise_throttle(ctx.throttle_time_ms());
            }
            let failed = response.has_error();
            let frame = encode(api, version, correlation_id, response, slices)?;
            metrics.request_finished(api, ctx.received, failed);
            Ok(Pending::Ready(Some(frame)))
        }
        other => Err(ProtocolError::UnsupportedVersion {
            api: other,
            version,
        }),
    }
}

/// Kafka's "authorized operations not requested" sentinel.
pub(crate) const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

/// What Kafka reports as a principal's authorized operations when no authorizer is configured (as here):
/// every operation the resource type supports, one bit per `AclOperation` code.
const fn operations(codes: &[u8]) -> i32 {
    let mut bits = 0;
    let mut i = 0;
    while i < codes.len() {
        bits |= 1 << codes[i];
        i += 1;
    }
    bits
}

/// READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS (Kafka's `AclEntry`).
pub(crate) const TOPIC_OPERATIONS: i32 = operations(&[3, 4, 5, 6, 7, 8, 10, 11]);
/// CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE.
pub(crate) const CLUSTER_OPERATIONS: i32 = operations(&[5, 7, 8, 9, 10, 11, 12]);

/// A client-visible error message.
pub(crate) fn message(text: impl Into<String>) -> Option<StrBytes> {
    Some(StrBytes::from_string(text.into()))
}

pub(crate) const NONE: i16 = 0;

pub(crate) fn code(error: ResponseError) -> i16 {
    error.code()
}

/// The wire code of an optional error: NONE when there is none.
pub(crate) fn error_code(error: Option<ResponseError>) -> i16 {
    error.map_or(NONE, code)
}

/// The Kafka error code for a refused topic operation.
pub(crate) fn topic_error_code(error: &TopicError) -> i16 {
    code(match error {
        TopicError::InvalidNameLength { .. } | TopicError::InvalidNameCharacter { .. } => {
            ResponseError::InvalidTopicException
        }
        TopicError::AlreadyExists(_) => ResponseError::TopicAlreadyExists,
        TopicError::Unknown(_) => ResponseError::UnknownTopicOrPartition,
        TopicError::InvalidPartitionCount(_)
        | TopicError::PartitionsNotIncreasing { .. }
        | TopicError::AssignmentsWithCounts => ResponseError::InvalidPartitions,
        TopicError::ReplicationFactorTooLarge { .. } | TopicError::ReplicationFactorTooSmall(_) => {
            ResponseError::InvalidReplicationFactor
        }
        TopicError::InvalidAssignment { .. } => ResponseError::InvalidReplicaAssignment,
        TopicError::NullConfig { .. } | TopicError::InvalidConfig(_) => {
            ResponseError::InvalidConfig
        }
        TopicError::ThrottlingQuotaExceeded { .. } => ResponseError::ThrottlingQuotaExceeded,
        TopicError::Metadata(_) | TopicError::Apply(_) | TopicError::Internal(_) => {
            ResponseError::UnknownServerError
        }
        TopicError::ControllerUnavailable(_) => ResponseError::RequestTimedOut,
    })
}

/// A partition's leader as the image knows it: the KIP-951 hints of NOT_LEADER_OR_FOLLOWER answers.
pub(crate) struct LeaderHint {
    pub leader: i32,
    pub epoch: i32,
    /// The leader's client endpoint (host, port, rack), when it is live.
    pub endpoint: Option<(String, i32, Option<String>)>,
}

/// The leader of `topic`-`index` in `image`; None when the image has no leader.
pub(crate) fn leader_hint(image: &MetadataImage, topic: &str, index: i32) -> Option<LeaderHint> {
    let registration = image.partition(topic, index)?;
    if registration.leader == NO_LEADER {
        return None;
    }
    let endpoint = image.live_broker(registration.leader).and_then(|b| {
        b.endpoint(CLIENT_LISTENER)
            .map(|e| (e.host.clone(), e.port, b.rack.clone()))
    });
    Some(LeaderHint {
        leader: registration.leader,
        epoch: registration.leader_epoch,
        endpoint,
    })
}

/// Defines `current_leader(image, topic, index, endpoints)` for a response's `NodeEndpoint` and
/// `LeaderIdAndEpoch` types: the KIP-951
/// hints of a NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH answer, the leader's id and epoch, with its
/// endpoint added to the response's `node_endpoints` once. Produce (v10+) and Fetch (v12+/v16+) carry
/// the same fields as distinct generated types, hence a macro rather than a function.
macro_rules! kip951_current_leader {
    ($endpoint:ty, $leader:ty) => {
        fn current_leader(
            image: &$crate::cluster::image::MetadataImage,
            topic: &str,
            index: i32,
            endpoints: &mut Vec<$endpoint>,
        ) -> $leader {
            let Some(hint) = $crate::handlers::leader_hint(image, topic, index) else {
                return <$leader>::default();
            };
            if let Some((host, port, rack)) = hint.endpoint {
                if !endpoints.iter().any(|e| e.node_id.0 == hint.leader) {
                    endpoints.push(
                        <$endpoint>::default()
                            .with_node_id(kafka_protocol::messages::BrokerId(hint.leader))
                            .with_host(kafka_protocol::protocol::StrBytes::from_string(host))
                            .with_port(port)
                            .with_rack(rack.map(kafka_protocol::protocol::StrBytes::from_string)),
                    );
                }
            }
            <$leader>::default()
                .with_leader_id(kafka_protocol::messages::BrokerId(hint.leader))
                .with_leader_epoch(hint.epoch)
        }
    };
}
pub(crate) use kip951_current_leader;

/// The Kafka error for a request whose `current_leader_epoch` does not match this replica's.
pub(crate) fn epoch_check_error(check: &EpochCheck) -> ResponseError {
    match check {
        EpochCheck::Fenced { .. } => ResponseError::FencedLeaderEpoch,
        EpochCheck::Unknown { .. } => ResponseError::UnknownLeaderEpoch,
    }
}

/// The Kafka error code for a partition this broker cannot serve as leader.
pub(crate) fn not_served_code(error: &NotServed) -> i16 {
    code(match error {
        NotServed::UnknownTopicOrPartition { .. } => ResponseError::UnknownTopicOrPartition,
        NotServed::NotLeader { .. } => ResponseError::NotLeaderOrFollower,
    })
}
