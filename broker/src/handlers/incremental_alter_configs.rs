//! IncrementalAlterConfigs (key 44): SET, DELETE, APPEND and SUBTRACT on topic configs and on the broker's
//! cluster-wide topic defaults. Every change in a resource is validated before any is applied.

use std::collections::BTreeMap;

use kafka_protocol::{
    messages::{
        incremental_alter_configs_response::AlterConfigsResourceResponse,
        IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    },
    ResponseError,
};

use super::{
    code,
    describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC},
    message, topic_error_code,
};
use crate::{
    config::{
        broker_key_to_topic_key, scale_value, topic_config_def, validate_topic_config,
        ConfigValueType,
    },
    handlers::RequestContext,
};

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// One requested change, with the name already mapped to the stored (topic-level) config name and the value
/// already converted to that name's unit.
struct Op {
    requested: String,
    key: &'static str,
    operation: i8,
    value: Option<String>,
}

/// Applies the operations to a copy of `current`.
fn apply_ops(
    current: &BTreeMap<String, String>,
    ops: &[Op],
) -> Result<BTreeMap<String, String>, String> {
    let mut next = current.clone();
    for op in ops {
        let name = &op.requested;
        let def = topic_config_def(op.key).ok_or_else(|| format!("unknown config {name:?}"))?;
        match op.operation {
            SET => {
                let value = op
                    .value
                    .clone()
                    .ok_or_else(|| format!("SET of {name} needs a value"))?;
                validate_topic_config(op.key, &value).map_err(|e| e.to_string())?;
                next.insert(op.key.to_owned(), value);
            }
            DELETE => {
                next.remove(op.key);
            }
            APPEND | SUBTRACT => {
                if def.value_type != ConfigValueType::List {
                    return Err(format!(
                        "{name} is not a list; APPEND and SUBTRACT apply to lists only"
                    ));
                }
                let value = op
                    .value
                    .clone()
                    .ok_or_else(|| format!("{name} needs a value"))?;
                let base = next
                    .get(op.key)
                    .cloned()
                    .unwrap_or_else(|| def.default.to_owned());
                let mut items: Vec<String> = base
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect();
                for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if op.operation == APPEND && !items.iter().any(|i| i == item) {
                        items.push(item.to_owned());
                    } else if op.operation == SUBTRACT {
                        items.retain(|i| i != item);
                    }
                }
                let joined = items.join(",");
                validate_topic_config(op.key, &joined).map_err(|e| e.to_string())?;
                next.insert(op.key.to_owned(), joined);
            }
            other => return Err(format!("unknown config operation {other}")),
        }
    }
    Ok(next)
}

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let broker = ctx.broker;
    let node_id = broker.config.node_id.to_string();
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let name = resource.resource_name.to_string();
        let response = AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        let image = broker.image();
        let outcome: Result<(), (i16, String)> = match resource.resource_type {
            RESOURCE_TOPIC => match image.topics.get(&name) {
                None => Err((
                    code(ResponseError::UnknownTopicOrPartition),
                    format!("topic {name:?} does not exist"),
                )),
                Some(topic) => {
                    let ops: Result<Vec<Op>, String> = resource
                        .configs
                        .iter()
                        .map(|c| {
                            let requested = c.name.to_string();
                            let def = topic_config_def(&requested)
                                .ok_or_else(|| format!("unknown topic config {requested:?}"))?;
                            Ok(Op {
                                requested,
                                key: def.name,
                                operation: c.config_operation,
                                value: c.value.as_ref().map(ToString::to_string),
                            })
                        })
                        .collect();
                    match ops.and_then(|ops| apply_ops(&topic.configs, &ops)) {
                        Ok(_) if request.validate_only => Ok(()),
                        Ok(next) => broker
                            .controller
                            .set_topic_configs(&name, next)
                            .await
                            .map_err(|e| (topic_error_code(&e), e.to_string())),
                        Err(text) => Err((code(ResponseError::InvalidConfig), text)),
                    }
                }
            },
            RESOURCE_BROKER if name.is_empty() || name == node_id => {
                let ops: Result<Vec<Op>, String> = resource
                    .configs
                    .iter()
                    .map(|c| {
                        let requested = c.name.to_string();
                        let (key, scale) =
                            broker_key_to_topic_key(&requested).ok_or_else(|| {
                                format!("broker config {requested:?} cannot be changed dynamically")
                            })?;
                        let value = match &c.value {
                            Some(v) => Some(scale_value(v, scale).ok_or_else(|| {
                                format!("{requested} must be an integer, got {v:?}")
                            })?),
                            None => None,
                        };
                        Ok(Op {
                            requested,
                            key,
                            operation: c.config_operation,
                            value,
                        })
                    })
                    .collect();
                match ops.and_then(|ops| apply_ops(&image.broker_configs, &ops)) {
                    Ok(_) if request.validate_only => Ok(()),
                    Ok(next) => broker
                        .controller
                        .set_broker_configs(next)
                        .await
                        .map_err(|e| (topic_error_code(&e), e.to_string())),
                    Err(text) => Err((code(ResponseError::InvalidConfig), text)),
                }
            }
            RESOURCE_BROKER => Err((
                code(ResponseError::InvalidRequest),
                format!("this is broker {node_id}, not {name:?}"),
            )),
            other => Err((
                code(ResponseError::InvalidRequest),
                format!("resource type {other} is not supported"),
            )),
        };
        responses.push(match outcome {
            Ok(()) => response,
            Err((error, text)) => response
                .with_error_code(error)
                .with_error_message(message(text)),
        });
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn op(key: &'static str, operation: i8, value: Option<&str>) -> Op {
        Op {
            requested: key.to_owned(),
            key,
            operation,
            value: value.map(str::to_owned),
        }
    }

    #[test]
    fn set_delete_append_subtract() {
        let current = BTreeMap::from([("retention.ms".to_owned(), "1000".to_owned())]);
        let next = apply_ops(
            &current,
            &[
                op("retention.ms", DELETE, None),
                op("segment.bytes", SET, Some("2048")),
                op("cleanup.policy", APPEND, Some("compact")),
            ],
        )
        .unwrap();
        assert_eq!(next.get("retention.ms"), None);
        assert_eq!(next["segment.bytes"], "2048");
        assert_eq!(next["cleanup.policy"], "delete,compact");
        let next = apply_ops(&next, &[op("cleanup.policy", SUBTRACT, Some("delete"))]).unwrap();
        assert_eq!(next["cleanup.policy"], "compact");
    }

    #[test]
    fn invalid_values_and_list_ops_on_scalars_are_refused() {
        let current = BTreeMap::new();
        assert!(apply_ops(&current, &[op("retention.ms", SET, Some("soon"))]).is_err());
        assert!(apply_ops(&current, &[op("retention.ms", APPEND, Some("1"))]).is_err());
        assert!(
            apply_ops(&current, &[op("cleanup.policy", SUBTRACT, Some("delete"))]).is_err(),
            "an empty policy is invalid"
        );
    }
}
