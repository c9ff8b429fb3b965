//! AlterConfigs (key 33), the non-incremental form that older admin clients (kafka-python's
//! `alter_configs`, for one) have: each resource's configs *replace* its overrides, so a config not named
//! goes back to its default. Topic configs and the broker's cluster-wide topic defaults, with the
//! validation and storage of IncrementalAlterConfigs (`incremental_alter_configs`).
//!
//! Checked first, per resource, with Kafka's messages (`ConfigAdminManager.preprocess`): a resource named
//! twice, a config named twice, a null value, a broker resource naming another broker, an unknown resource
//! type are INVALID_REQUEST; nothing of such a resource is applied, the other resources still are.

use std::collections::{HashMap, HashSet};

use kafka_protocol::{
    messages::{
        alter_configs_request::AlterConfigsResource,
        alter_configs_response::AlterConfigsResourceResponse, AlterConfigsRequest,
        AlterConfigsResponse,
    },
    ResponseError,
};

use super::{
    code,
    describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC},
    incremental_alter_configs::{
        alter_broker, alter_broker_flags, alter_topic, is_broker_flag, Base, ConfigChange, SET,
    },
    message, RequestContext,
};
/// Whether a resource's configs are operation flags (draining, filling) and nothing else: those alone are
/// accepted for any broker.
fn only_broker_flags<'a>(mut names: impl Iterator<Item = &'a str>) -> bool {
    let mut any = false;
    names.all(|name| {
        any = true;
        is_broker_flag(name)
    }) && any
}

/// A resource refused before any change is looked at, with Kafka's error message.
fn preprocess(resource: &AlterConfigsResource, node_id: i32) -> Result<(), String> {
    let mut names = HashSet::new();
    if !resource.configs.iter().all(|c| names.insert(&c.name)) {
        return Err("Error due to duplicate config keys".to_owned());
    }
    let nulls: Vec<&str> = resource
        .configs
        .iter()
        .filter(|c| c.value.is_none())
        .map(|c| c.name.as_str())
        .collect();
    if !nulls.is_empty() {
        return Err(format!(
            "Null value not supported for : {}",
            nulls.join(", ")
        ));
    }
    match resource.resource_type {
        RESOURCE_TOPIC => Ok(()),
        RESOURCE_BROKER if resource.resource_name.is_empty() => Ok(()),
        RESOURCE_BROKER => match resource.resource_name.parse::<i32>() {
            Ok(id) if id == node_id => Ok(()),
            // Operation flags alone are accepted for any broker (checked to be registered later).
            Ok(_) if only_broker_flags(resource.configs.iter().map(|c| c.name.as_str())) => Ok(()),
            Ok(_) => Err(format!(
                "Unexpected broker id, expected {node_id}, but received {}",
                resource.resource_name
            )),
            Err(_) => Err(format!(
                "Node id must be an integer, but it is: {}",
                resource.resource_name
            )),
        },
        other => Err(format!("Unknown resource type {other}")),
    }
}

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let broker = ctx.broker;
    let node_id = broker.config.node_id;
    let mut seen: HashMap<(i8, &str), usize> = HashMap::new();
    for resource in &request.resources {
        *seen
            .entry((resource.resource_type, resource.resource_name.as_str()))
            .or_default() += 1;
    }
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in &request.resources {
        let response = AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        let invalid = |text: String| {
            response
                .clone()
                .with_error_code(code(ResponseError::InvalidRequest))
                .with_error_message(message(text))
        };
        if seen[&(resource.resource_type, resource.resource_name.as_str())] > 1 {
            responses.push(invalid(
                "Each resource must appear at most once.".to_owned(),
            ));
            continue;
        }
        if let Err(text) = preprocess(resource, node_id) {
            responses.push(invalid(text));
            continue;
        }
        let changes: Vec<ConfigChange> = resource
            .configs
            .iter()
            .map(|c| ConfigChange {
                name: c.name.to_string(),
                operation: SET,
                value: c.value.as_ref().map(ToString::to_string),
            })
            .collect();
        let outcome = if resource.resource_type == RESOURCE_BROKER
            && !resource.resource_name.is_empty()
            && only_broker_flags(changes.iter().map(|c| c.name.as_str()))
        {
            // Only operation flags: accepted for any registered broker, as IncrementalAlterConfigs does.
            alter_broker_flags(
                broker,
                &resource.resource_name,
                &changes,
                request.validate_only,
            )
            .await
        } else if resource.resource_type == RESOURCE_TOPIC {
            alter_topic(
                broker,
                &resource.resource_name,
                &changes,
                Base::Empty,
                request.validate_only,
            )
            .await
        } else {
            alter_broker(broker, &changes, Base::Empty, request.validate_only).await
        };
        responses.push(match outcome {
            Ok(()) => response,
            Err(e) => response
                .with_error_code(e.code())
                .with_error_message(message(e.to_string())),
        });
    }
    AlterConfigsResponse::default().with_responses(responses)
}
