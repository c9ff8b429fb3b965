//! FindCoordinator (key 10): a group's coordinator is the leader of its `__consumer_offsets` partition, from
//! the metadata image. Creates `__consumer_offsets` on first use, waiting for it only briefly.
//! Transactions are not implemented, so transaction coordinators are reported as unavailable.

use kafka_protocol::{
    messages::{
        find_coordinator_response::Coordinator, BrokerId, FindCoordinatorRequest,
        FindCoordinatorResponse,
    },
    protocol::StrBytes,
    ResponseError,
};

use super::{code, RequestContext, CLIENT_LISTENER};
use crate::{
    cluster::image::MetadataImage,
    group::{records::partition_for, OFFSETS_TOPIC},
};

const GROUP: i8 = 0;

/// How long a lookup waits for `__consumer_offsets` to be created: on a healthy cluster that takes
/// milliseconds, so clients find their coordinator on the first try.
const OFFSETS_TOPIC_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// The coordinator of `group`: the leader of its `__consumer_offsets` partition, as (node, host, port).
fn coordinator(image: &MetadataImage, group: &str, partitions: i32) -> Option<(i32, String, i32)> {
    let registration = image.partition(OFFSETS_TOPIC, partition_for(group, partitions))?;
    let leader = image.live_broker(registration.leader)?;
    let endpoint = leader.endpoint(CLIENT_LISTENER)?;
    Some((leader.id, endpoint.host.clone(), endpoint.port))
}

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let groups = &ctx.broker.groups;
    let refused = if request.key_type != GROUP {
        Some("transactions are not supported".to_owned())
    } else if ctx.image.topics.contains_key(OFFSETS_TOPIC) {
        None
    } else {
        match groups
            .create_offsets_topic_within(OFFSETS_TOPIC_PATIENCE)
            .await
        {
            Ok(true) => None,
            Ok(false) => Some(format!("{OFFSETS_TOPIC} is being created")),
            Err(text) => Some(text),
        }
    };
    // The offsets topic may have been created just now, after this request's image was taken.
    let image = if ctx.image.topics.contains_key(OFFSETS_TOPIC) {
        std::sync::Arc::clone(&ctx.image)
    } else {
        ctx.broker.image()
    };
    let answer = |key: &str| -> (i16, Option<StrBytes>, i32, StrBytes, i32) {
        let found = match &refused {
            Some(text) => Err(text.clone()),
            None => coordinator(&image, key, groups.config.offsets_partitions)
                .ok_or_else(|| format!("the {OFFSETS_TOPIC} partition of {key:?} has no leader")),
        };
        match found {
            Ok((node, host, port)) => (0, None, node, StrBytes::from_string(host), port),
            Err(text) => (
                code(ResponseError::CoordinatorNotAvailable),
                Some(StrBytes::from_string(text)),
                -1,
                StrBytes::from_string(ctx.broker.config.advertised_host.clone()),
                -1,
            ),
        }
    };
    if ctx.version >= 4 {
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let (error_code, error_message, node, host, port) = answer(&key);
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(BrokerId(node))
                    .with_host(host)
                    .with_port(port)
                    .with_error_code(error_code)
                    .with_error_message(error_message)
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let (error_code, error_message, node, host, port) = answer(&request.key);
    FindCoordinatorResponse::default()
        .with_error_code(error_code)
        .with_error_message(if ctx.version >= 1 {
            error_message
        } else {
            None
        })
        .with_node_id(BrokerId(node))
        .with_host(host)
        .with_port(port)
}
