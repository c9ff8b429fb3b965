//! IncrementalAlterConfigs (key 44): SET, DELETE, APPEND and SUBTRACT on topic configs and on the broker's
//! cluster-wide topic defaults, creation defaults (`config::creation_defaults`) and per-broker rate
//! defaults. Every change in a resource is validated before any is applied.
//!
//! The resource-level steps here also serve AlterConfigs (key 33, `alter_configs`), which replaces a
//! resource's whole set of overrides: its SETs applied to an empty set instead of the current one.

use std::collections::BTreeMap;

use kafka_protocol::{
    messages::{
        incremental_alter_configs_request::AlterableConfig,
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
    broker::Broker,
    cluster::controller::{drain, TopicError},
    config::{
        broker_key_to_topic_key,
        creation_defaults::{creation_default, CreationDefault},
        scale_value, topic_config_def, validate_node_config, validate_topic_config,
        ConfigValueType, TopicConfigError, BROKER_FLAGS, DRAINING_CONFIG, NODE_CONFIGS,
    },
    handlers::RequestContext,
};

pub(super) const SET: i8 = 0;

/// Whether `name` is one of the per-broker operation flags any broker accepts for any registered broker.
pub(super) fn is_broker_flag(name: &str) -> bool {
    BROKER_FLAGS.contains(&name)
}
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// Why a resource's changes were refused. The text is the client's error message.
#[derive(Debug, thiserror::Error)]
pub(super) enum AlterConfigsError {
    #[error("The topic '{0}' does not exist.")]
    UnknownTopic(String),
    #[error("this is broker {node_id}, not {name:?}")]
    OtherBroker { node_id: i32, name: String },
    #[error("resource type {0} is not supported")]
    UnsupportedResourceType(i8),
    /// Kafka's words and code (INVALID_REQUEST, not INVALID_CONFIG), checked on Kafka 4.4.
    #[error("Cannot update these configs dynamically: [{0}]")]
    NotDynamic(String),
    /// A broker-level value in hours or minutes that cannot be scaled to milliseconds.
    #[error("{name} must be an integer, got {value:?}")]
    NotScalable { name: String, value: String },
    #[error("unknown config {0:?}")]
    UnknownConfig(String),
    #[error("SET of {0} needs a value")]
    SetWithoutValue(String),
    #[error("{0} is not a list; APPEND and SUBTRACT apply to lists only")]
    NotAList(String),
    #[error("{0} needs a value")]
    ListOpWithoutValue(String),
    #[error("unknown config operation {0}")]
    UnknownOperation(i8),
    #[error(transparent)]
    InvalidValue(#[from] TopicConfigError),
    #[error("{name} must be an integer from {} to {}, got {value:?}", .default.min, .default.max)]
    CreationDefaultOutOfRange {
        name: String,
        value: String,
        default: CreationDefault,
    },
    #[error("Broker {0} is not registered.")]
    UnknownBroker(String),
    #[error("{name} must be true or false, got {value:?}")]
    NotABoolean { name: String, value: String },
    /// POLICY_VIOLATION: draining a broker whose partitions have nowhere to go.
    #[error("{0}")]
    DrainRefused(String),
    #[error(transparent)]
    Store(#[from] TopicError),
}

impl AlterConfigsError {
    pub(super) fn code(&self) -> i16 {
        match self {
            AlterConfigsError::UnknownTopic(_) => code(ResponseError::UnknownTopicOrPartition),
            AlterConfigsError::OtherBroker { .. }
            | AlterConfigsError::UnsupportedResourceType(_)
            | AlterConfigsError::NotDynamic(_)
            | AlterConfigsError::UnknownBroker(_) => code(ResponseError::InvalidRequest),
            AlterConfigsError::NotABoolean { .. }
            | AlterConfigsError::CreationDefaultOutOfRange { .. } => {
                code(ResponseError::InvalidConfig)
            }
            AlterConfigsError::DrainRefused(_) => code(ResponseError::PolicyViolation),
            AlterConfigsError::NotScalable { .. }
            | AlterConfigsError::UnknownConfig(_)
            | AlterConfigsError::SetWithoutValue(_)
            | AlterConfigsError::NotAList(_)
            | AlterConfigsError::ListOpWithoutValue(_)
            | AlterConfigsError::UnknownOperation(_)
            | AlterConfigsError::InvalidValue(_) => code(ResponseError::InvalidConfig),
            AlterConfigsError::Store(e) => topic_error_code(e),
        }
    }
}

/// One requested change of a config, as the client named it.
#[derive(Debug, Clone)]
pub(super) struct ConfigChange {
    pub(super) name: String,
    pub(super) operation: i8,
    pub(super) value: Option<String>,
}

impl From<&AlterableConfig> for ConfigChange {
    fn from(config: &AlterableConfig) -> Self {
        Self {
            name: config.name.to_string(),
            operation: config.config_operation,
            value: config.value.as_ref().map(ToString::to_string),
        }
    }
}

/// What the changes apply to: the resource's current overrides (IncrementalAlterConfigs), or nothing, so
/// that overrides not named go back to their defaults (AlterConfigs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Base {
    Current,
    Empty,
}

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
) -> Result<BTreeMap<String, String>, AlterConfigsError> {
    let mut next = current.clone();
    for op in ops {
        let name = &op.requested;
        if let Some(default) = creation_default(op.key) {
            apply_scalar(&mut next, op, |value| {
                default
                    .parse(value)
                    .map(|parsed| parsed.to_string())
                    .ok_or_else(|| AlterConfigsError::CreationDefaultOutOfRange {
                        name: op.requested.clone(),
                        value: value.to_owned(),
                        default,
                    })
            })?;
            continue;
        }
        if NODE_CONFIGS.contains(&op.key) {
            apply_scalar(&mut next, op, |value| {
                validate_node_config(op.key, value)?;
                Ok(value.trim().to_owned())
            })?;
            continue;
        }
        let def = topic_config_def(op.key)
            .ok_or_else(|| AlterConfigsError::UnknownConfig(name.clone()))?;
        match op.operation {
            SET => {
                let value = op
                    .value
                    .clone()
                    .ok_or_else(|| AlterConfigsError::SetWithoutValue(name.clone()))?;
                validate_topic_config(op.key, &value)?;
                next.insert(op.key.to_owned(), value);
            }
            DELETE => {
                next.remove(op.key);
            }
            APPEND | SUBTRACT => {
                if def.value_type != ConfigValueType::List {
                    return Err(AlterConfigsError::NotAList(name.clone()));
                }
                let value = op
                    .value
                    .clone()
                    .ok_or_else(|| AlterConfigsError::ListOpWithoutValue(name.clone()))?;
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
                validate_topic_config(op.key, &joined)?;
                next.insert(op.key.to_owned(), joined);
            }
            other => return Err(AlterConfigsError::UnknownOperation(other)),
        }
    }
    Ok(next)
}

/// SET or DELETE of a cluster-wide value that is not a topic default (a creation default such as
/// `default.replication.factor`, or the default of a per-broker rate): `checked` gives the value to store.
fn apply_scalar(
    next: &mut BTreeMap<String, String>,
    op: &Op,
    checked: impl Fn(&str) -> Result<String, AlterConfigsError>,
) -> Result<(), AlterConfigsError> {
    match op.operation {
        SET => {
            let value = op
                .value
                .as_deref()
                .ok_or_else(|| AlterConfigsError::SetWithoutValue(op.requested.clone()))?;
            next.insert(op.key.to_owned(), checked(value)?);
        }
        DELETE => {
            next.remove(op.key);
        }
        APPEND | SUBTRACT => return Err(AlterConfigsError::NotAList(op.requested.clone())),
        other => return Err(AlterConfigsError::UnknownOperation(other)),
    }
    Ok(())
}

/// Changes one topic's config overrides.
pub(super) async fn alter_topic(
    broker: &Broker,
    name: &str,
    configs: &[ConfigChange],
    base: Base,
    validate_only: bool,
) -> Result<(), AlterConfigsError> {
    let image = broker.image();
    let topic = image
        .topics
        .get(name)
        .ok_or_else(|| AlterConfigsError::UnknownTopic(name.to_owned()))?;
    let ops = configs
        .iter()
        .map(|c| {
            let requested = c.name.clone();
            let def =
                topic_config_def(&requested).ok_or_else(|| TopicConfigError::UnknownName {
                    name: requested.clone(),
                })?;
            Ok(Op {
                requested,
                key: def.name,
                operation: c.operation,
                value: c.value.clone(),
            })
        })
        .collect::<Result<Vec<Op>, AlterConfigsError>>()?;
    let next = apply_ops(base_of(&topic.configs, base), &ops)?;
    if !validate_only {
        broker.controller.set_topic_configs(name, next).await?;
    }
    Ok(())
}

/// Changes the cluster-wide topic defaults, named by their broker-level names.
pub(super) async fn alter_broker(
    broker: &Broker,
    configs: &[ConfigChange],
    base: Base,
    validate_only: bool,
) -> Result<(), AlterConfigsError> {
    let image = broker.image();
    let ops = configs
        .iter()
        .map(|c| {
            let requested = c.name.clone();
            // Stored under their own names: a creation default, or the cluster-wide default of a
            // per-broker rate (`kafka-configs.sh --entity-type brokers --entity-default`).
            let own_name = creation_default(&requested)
                .map(|default| default.name)
                .or_else(|| NODE_CONFIGS.iter().copied().find(|n| *n == requested));
            if let Some(key) = own_name {
                return Ok(Op {
                    requested,
                    key,
                    operation: c.operation,
                    value: c.value.clone(),
                });
            }
            let (key, scale) = broker_key_to_topic_key(&requested)
                .ok_or_else(|| AlterConfigsError::NotDynamic(requested.clone()))?;
            let value =
                match &c.value {
                    Some(v) => Some(scale_value(v, scale).ok_or_else(|| {
                        AlterConfigsError::NotScalable {
                            name: requested.clone(),
                            value: v.to_string(),
                        }
                    })?),
                    None => None,
                };
            Ok(Op {
                requested,
                key,
                operation: c.operation,
                value,
            })
        })
        .collect::<Result<Vec<Op>, AlterConfigsError>>()?;
    let next = apply_ops(base_of(&image.broker_configs, base), &ops)?;
    if !validate_only {
        broker.controller.set_broker_configs(next).await?;
    }
    Ok(())
}

/// Changes broker resource `id` (this broker): its per-broker configs ([`NODE_CONFIGS`], the replication
/// throttle rates) and the cluster-wide topic defaults, every change validated before any is stored.
async fn alter_this_broker(
    broker: &Broker,
    id: i32,
    configs: &[ConfigChange],
    validate_only: bool,
) -> Result<(), AlterConfigsError> {
    let (own, shared): (Vec<ConfigChange>, Vec<ConfigChange>) = configs
        .iter()
        .cloned()
        .partition(|c| NODE_CONFIGS.contains(&c.name.as_str()));
    let image = broker.image();
    let current = image.node_configs.get(&id).cloned().unwrap_or_default();
    let mut next = current.clone();
    for change in &own {
        match change.operation {
            SET => {
                let value = change
                    .value
                    .clone()
                    .ok_or_else(|| AlterConfigsError::SetWithoutValue(change.name.clone()))?;
                validate_node_config(&change.name, &value)?;
                next.insert(change.name.clone(), value);
            }
            DELETE => {
                next.remove(&change.name);
            }
            APPEND | SUBTRACT => return Err(AlterConfigsError::NotAList(change.name.clone())),
            other => return Err(AlterConfigsError::UnknownOperation(other)),
        }
    }
    if !shared.is_empty() {
        // Validates them all before the per-broker part is stored.
        alter_broker(broker, &shared, Base::Current, true).await?;
    }
    if validate_only {
        return Ok(());
    }
    if next != current {
        broker.controller.set_node_configs(id, next).await?;
    }
    if !shared.is_empty() {
        alter_broker(broker, &shared, Base::Current, false).await?;
    }
    Ok(())
}

/// Changes the operation flags ([`BROKER_FLAGS`]: draining, filling) of broker resource `name`, any
/// registered broker: a drained broker may be down, so this broker writes them through the controller for
/// it. SET "true" of the drain flag is refused (nothing stored) when one of its partitions has too few
/// other brokers to move to; "false" or DELETE stops new moves and is stored as the flag's absence.
pub(super) async fn alter_broker_flags(
    broker: &Broker,
    name: &str,
    changes: &[ConfigChange],
    validate_only: bool,
) -> Result<(), AlterConfigsError> {
    let image = broker.image();
    let id = name
        .parse::<i32>()
        .ok()
        .filter(|id| image.brokers.contains_key(id))
        .ok_or_else(|| AlterConfigsError::UnknownBroker(name.to_owned()))?;
    let is_set = |flag: &str| {
        image
            .node_configs
            .get(&id)
            .and_then(|c| c.get(flag))
            .is_some_and(|v| v == "true")
    };
    let mut flags: BTreeMap<&str, bool> = BROKER_FLAGS.iter().map(|f| (*f, is_set(f))).collect();
    for change in changes {
        let Some(flag) = flags.get_mut(change.name.as_str()) else {
            return Err(AlterConfigsError::UnknownConfig(change.name.clone()));
        };
        *flag = match change.operation {
            SET => {
                let value = change
                    .value
                    .clone()
                    .ok_or_else(|| AlterConfigsError::SetWithoutValue(change.name.clone()))?;
                match value.trim().to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(AlterConfigsError::NotABoolean {
                            name: change.name.clone(),
                            value,
                        })
                    }
                }
            }
            DELETE => false,
            APPEND | SUBTRACT => return Err(AlterConfigsError::NotAList(change.name.clone())),
            other => return Err(AlterConfigsError::UnknownOperation(other)),
        };
    }
    if flags[DRAINING_CONFIG] && !is_set(DRAINING_CONFIG) {
        if let Some(why) = drain::refusal(&image, id) {
            return Err(AlterConfigsError::DrainRefused(why));
        }
    }
    let mut next = image.node_configs.get(&id).cloned().unwrap_or_default();
    for (flag, on) in flags {
        if on {
            next.insert(flag.to_owned(), "true".to_owned());
        } else {
            next.remove(flag);
        }
    }
    if validate_only || image.node_configs.get(&id).cloned().unwrap_or_default() == next {
        return Ok(());
    }
    broker.controller.set_node_configs(id, next).await?;
    Ok(())
}

/// A broker resource whose changes include an operation flag ([`BROKER_FLAGS`]): the others (this broker only) are
/// validated with it before either is stored.
async fn alter_broker_and_flags(
    broker: &Broker,
    node_id: i32,
    name: &str,
    flags: &[ConfigChange],
    rest: &[ConfigChange],
    validate_only: bool,
) -> Result<(), AlterConfigsError> {
    if !rest.is_empty() {
        if name != node_id.to_string() {
            return Err(AlterConfigsError::OtherBroker {
                node_id,
                name: name.to_owned(),
            });
        }
        alter_this_broker(broker, node_id, rest, true).await?;
    }
    alter_broker_flags(broker, name, flags, validate_only).await?;
    if !rest.is_empty() && !validate_only {
        alter_this_broker(broker, node_id, rest, false).await?;
    }
    Ok(())
}

fn base_of(current: &BTreeMap<String, String>, base: Base) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    match base {
        Base::Current => current,
        Base::Empty => &EMPTY,
    }
}

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let broker = ctx.broker;
    let node_id = broker.config.node_id;
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let name = resource.resource_name.to_string();
        let response = AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        let changes: Vec<ConfigChange> = resource.configs.iter().map(ConfigChange::from).collect();
        let outcome = match resource.resource_type {
            RESOURCE_TOPIC => {
                alter_topic(
                    broker,
                    &name,
                    &changes,
                    Base::Current,
                    request.validate_only,
                )
                .await
            }
            RESOURCE_BROKER if name.is_empty() => {
                alter_broker(broker, &changes, Base::Current, request.validate_only).await
            }
            RESOURCE_BROKER if changes.iter().any(|c| is_broker_flag(&c.name)) => {
                let (flags, rest): (Vec<ConfigChange>, Vec<ConfigChange>) = changes
                    .iter()
                    .cloned()
                    .partition(|c| is_broker_flag(&c.name));
                alter_broker_and_flags(broker, node_id, &name, &flags, &rest, request.validate_only)
                    .await
            }
            RESOURCE_BROKER if name == node_id.to_string() => {
                alter_this_broker(broker, node_id, &changes, request.validate_only).await
            }
            RESOURCE_BROKER => Err(AlterConfigsError::OtherBroker { node_id, name }),
            other => Err(AlterConfigsError::UnsupportedResourceType(other)),
        };
        responses.push(match outcome {
            Ok(()) => response,
            Err(e) => response
                .with_error_code(e.code())
                .with_error_message(message(e.to_string())),
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
        assert!(matches!(
            apply_ops(&current, &[op("retention.ms", SET, Some("soon"))]),
            Err(AlterConfigsError::InvalidValue(
                TopicConfigError::NotAnInteger { .. }
            ))
        ));
        let err = apply_ops(&current, &[op("retention.ms", APPEND, Some("1"))]).unwrap_err();
        assert_eq!(
            (err.code(), err.to_string().as_str()),
            (
                ResponseError::InvalidConfig.code(),
                "retention.ms is not a list; APPEND and SUBTRACT apply to lists only"
            )
        );
        assert!(
            matches!(
                apply_ops(&current, &[op("cleanup.policy", SUBTRACT, Some("delete"))]),
                Err(AlterConfigsError::InvalidValue(
                    TopicConfigError::InvalidCleanupPolicy { .. }
                ))
            ),
            "an empty policy is invalid"
        );
    }
}
