//! DescribeQuorum (key 55, v0-2): the metadata quorum as its leader (the active controller) sees it, what
//! `kafka-metadata-quorum.sh describe --status / --replication` prints: leader and epoch, the high watermark
//! of `__cluster_metadata`, each voter's and observer's log end offset and when it last acknowledged the
//! leader, and (v2) the voters' controller endpoints. Offsets are the metadata log's entry indexes. Any
//! broker answers, forwarding to the active controller; a single node without a quorum answers
//! INVALID_REQUEST.

use std::time::{SystemTime, UNIX_EPOCH};

use kafka_protocol::{
    messages::{
        describe_quorum_response::{Listener, Node, PartitionData, ReplicaState, TopicData},
        BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName,
    },
    protocol::StrBytes,
    ResponseError,
};

use super::{code, message, topic_error_code, RequestContext};
use crate::cluster::raft::quorum::{QuorumDescription, QuorumMember};

const METADATA_TOPIC: &str = "__cluster_metadata";

pub async fn handle(
    ctx: &RequestContext<'_>,
    _request: DescribeQuorumRequest,
) -> DescribeQuorumResponse {
    match ctx.broker.controller.describe_quorum().await {
        Ok(Some(description)) => response(
            &description,
            ctx.version,
            ctx.broker
                .config
                .controller_listener_name
                .as_deref()
                .unwrap_or("CONTROLLER"),
        ),
        Ok(None) => DescribeQuorumResponse::default()
            .with_error_code(code(ResponseError::InvalidRequest))
            .with_error_message(if ctx.version >= 2 {
                message("this broker runs as a single node without a metadata quorum".to_owned())
            } else {
                None
            }),
        Err(e) => {
            tracing::warn!(error = %crate::error_chain(&e), "DescribeQuorum failed");
            DescribeQuorumResponse::default()
                .with_error_code(topic_error_code(&e))
                .with_error_message(if ctx.version >= 2 {
                    message(e.to_string())
                } else {
                    None
                })
        }
    }
}

/// v0 has no timestamps and v0-1 no endpoints: fields a version lacks must stay at their defaults.
fn response(
    description: &QuorumDescription,
    version: i16,
    listener: &str,
) -> DescribeQuorumResponse {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let state = |member: &QuorumMember| {
        let acked = member.since_ack.map_or(-1, |ago| {
            now_ms
                - i64::try_from(ago.as_millis())
                    .unwrap_or(i64::MAX)
                    .min(now_ms)
        });
        let log_end = member
            .log_end
            .map_or(-1, |end| i64::try_from(end).unwrap_or(i64::MAX));
        let caught_up = member
            .log_end
            .is_some_and(|end| end >= description.high_watermark);
        let state = ReplicaState::default()
            .with_replica_id(BrokerId(member.id))
            .with_log_end_offset(log_end);
        let state = match member
            .directory_id
            .as_deref()
            .and_then(crate::cluster_identity::parse_uuid_text)
        {
            Some(directory) if version >= 2 => state.with_replica_directory_id(directory),
            _ => state,
        };
        if version >= 1 {
            state
                .with_last_fetch_timestamp(acked)
                .with_last_caught_up_timestamp(if caught_up { acked } else { -1 })
        } else {
            state
        }
    };
    let partition = PartitionData::default()
        .with_partition_index(0)
        .with_leader_id(BrokerId(description.leader))
        .with_leader_epoch(i32::try_from(description.term).unwrap_or(i32::MAX))
        .with_high_watermark(i64::try_from(description.high_watermark).unwrap_or(i64::MAX))
        .with_current_voters(description.voters.iter().map(state).collect())
        .with_observers(description.observers.iter().map(state).collect());
    let nodes = if version < 2 {
        Vec::new()
    } else {
        // Observers too: an operator adding one as a voter must name the controller listener it follows on.
        description
            .voters
            .iter()
            .chain(&description.observers)
            .filter_map(|voter| {
                let (host, port) = voter.controller_addr.as_deref()?.rsplit_once(':')?;
                Some(
                    Node::default()
                        .with_node_id(BrokerId(voter.id))
                        .with_listeners(vec![Listener::default()
                            .with_name(StrBytes::from_string(listener.to_owned()))
                            .with_host(StrBytes::from_string(host.to_owned()))
                            .with_port(port.parse().ok()?)]),
                )
            })
            .collect()
    };
    DescribeQuorumResponse::default()
        .with_topics(vec![TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
            .with_partitions(vec![partition])])
        .with_nodes(nodes)
}
