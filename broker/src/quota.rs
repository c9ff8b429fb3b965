//! Client quotas (Kafka's KIP-13, KIP-55, KIP-124, KIP-257, KIP-599, KIP-612): what they are, how they are
//! stored in the metadata, validated, and resolved to the one quota that applies to a request.
//!
//! A quota belongs to an entity: a user, a client id, a user with a client id, or an IP address, where
//! each name can also be the default (`<default>`, a null name on the wire). The metadata keeps every
//! entity's values ([`ClientQuotas`], changed only through the controller); [`resolve`] picks, for one
//! (user, client id), the entity whose value applies and the key under which usage is metered, with the
//! precedence of Kafka's `DefaultQuotaCallback`. The meters and throttling live in [`manager`].
//!
//! Without SASL every connection's principal is Kafka's `ANONYMOUS` user, so user quotas apply to
//! `user=ANONYMOUS` and to the default user. Pure: reads the image it is given, never does I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod manager;

#[cfg(test)]
mod tests;

/// Kafka's entity types on the wire.
pub const USER: &str = "user";
pub const CLIENT_ID: &str = "client-id";
pub const IP: &str = "ip";

/// The principal of every connection while the broker has no authentication (Kafka's
/// `KafkaPrincipal.ANONYMOUS`).
pub const ANONYMOUS_USER: &str = "ANONYMOUS";

/// Quota keys (Kafka's `QuotaConfig`).
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
pub const REQUEST_PERCENTAGE: &str = "request_percentage";
pub const CONTROLLER_MUTATION_RATE: &str = "controller_mutation_rate";
pub const CONNECTION_CREATION_RATE: &str = "connection_creation_rate";

/// How a quota key's value is typed, which decides what Kafka accepts for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueType {
    Long,
    Int,
    Double,
}

/// The keys a user / client-id entity may carry.
const USER_CLIENT_KEYS: &[(&str, ValueType)] = &[
    (PRODUCER_BYTE_RATE, ValueType::Long),
    (CONSUMER_BYTE_RATE, ValueType::Long),
    (REQUEST_PERCENTAGE, ValueType::Double),
    (CONTROLLER_MUTATION_RATE, ValueType::Double),
];

/// The keys an IP entity may carry.
const IP_KEYS: &[(&str, ValueType)] = &[(CONNECTION_CREATION_RATE, ValueType::Int)];

/// One component of an entity's name: a name, or the default for its type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EntityName {
    Default,
    Named(String),
}

impl EntityName {
    /// From the wire, where the default is a null name.
    pub fn from_wire(name: Option<&str>) -> Self {
        name.map_or(EntityName::Default, |n| EntityName::Named(n.to_owned()))
    }

    pub fn to_wire(&self) -> Option<&str> {
        match self {
            EntityName::Default => None,
            EntityName::Named(name) => Some(name),
        }
    }

    fn named(name: &str) -> Self {
        EntityName::Named(name.to_owned())
    }
}

/// A quota entity: which of the three types it names, and how. A valid entity has a user and/or a client
/// id, or an IP alone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct QuotaEntity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<EntityName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<EntityName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<EntityName>,
}

impl QuotaEntity {
    pub fn user(name: EntityName) -> Self {
        Self {
            user: Some(name),
            ..Self::default()
        }
    }

    pub fn client(name: EntityName) -> Self {
        Self {
            client_id: Some(name),
            ..Self::default()
        }
    }

    pub fn user_client(user: EntityName, client_id: EntityName) -> Self {
        Self {
            user: Some(user),
            client_id: Some(client_id),
            ip: None,
        }
    }

    pub fn ip(name: EntityName) -> Self {
        Self {
            ip: Some(name),
            ..Self::default()
        }
    }

    /// The entity's (type, name) components as the wire lists them.
    pub fn components(&self) -> Vec<(&'static str, Option<&str>)> {
        [
            (USER, &self.user),
            (CLIENT_ID, &self.client_id),
            (IP, &self.ip),
        ]
        .into_iter()
        .filter_map(|(kind, name)| name.as_ref().map(|n| (kind, n.to_wire())))
        .collect()
    }

    /// How many types the entity names.
    pub fn len(&self) -> usize {
        self.components().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Builds an entity from wire components, refusing what Kafka's controller refuses.
    pub fn from_components<'a>(
        components: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<Self, QuotaError> {
        let mut entity = QuotaEntity::default();
        for (kind, name) in components {
            let slot = match kind {
                USER => &mut entity.user,
                CLIENT_ID => &mut entity.client_id,
                IP => &mut entity.ip,
                other => return Err(QuotaError::UnknownEntityType(other.to_owned())),
            };
            if slot.is_some() {
                return Err(QuotaError::DuplicateEntityType(kind.to_owned()));
            }
            if name == Some("") {
                return Err(QuotaError::EmptyName(kind.to_owned()));
            }
            *slot = Some(EntityName::from_wire(name));
        }
        if entity.is_empty() {
            return Err(QuotaError::EmptyEntity);
        }
        if entity.ip.is_some() && (entity.user.is_some() || entity.client_id.is_some()) {
            return Err(QuotaError::IpCombined);
        }
        if let Some(EntityName::Named(ip)) = &entity.ip {
            if ip.parse::<std::net::IpAddr>().is_err() {
                return Err(QuotaError::InvalidIp(ip.clone()));
            }
        }
        Ok(entity)
    }

    fn keys(&self) -> &'static [(&'static str, ValueType)] {
        if self.ip.is_some() {
            IP_KEYS
        } else {
            USER_CLIENT_KEYS
        }
    }
}

impl std::fmt::Display for QuotaEntity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .components()
            .into_iter()
            .map(|(kind, name)| format!("{kind}={}", name.unwrap_or("<default>")))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// Every entity's quota values, as the metadata stores them. Serialized as a list because JSON object
/// keys must be strings.
pub type ClientQuotas = BTreeMap<QuotaEntity, BTreeMap<String, f64>>;

/// A refused quota entity or value; every one is Kafka's INVALID_REQUEST with this text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuotaError {
    #[error("invalid empty client quota entity")]
    EmptyEntity,
    #[error("unhandled client quota entity type: {0}")]
    UnknownEntityType(String),
    #[error("invalid client quota entity, duplicate entity entry {0}")]
    DuplicateEntityType(String),
    #[error("empty {0} not supported")]
    EmptyName(String),
    #[error(
        "invalid quota entity combination: an ip entity cannot be combined with user or client-id"
    )]
    IpCombined,
    #[error("{0} is not a valid IP address")]
    InvalidIp(String),
    #[error("invalid configuration key {key} for entity {entity}")]
    UnknownKey { key: String, entity: String },
    #[error("quota {0} must be greater than 0")]
    NotPositive(String),
    #[error("{0} cannot be a fractional value")]
    Fractional(String),
    #[error("proposed value for {0} is too large")]
    TooLarge(String),
    #[error("duplicate quota key {0}")]
    DuplicateKey(String),
}

/// Checks one value for `key` on `entity` as Kafka's `ClientQuotaControlManager` does.
pub fn validate_value(entity: &QuotaEntity, key: &str, value: f64) -> Result<(), QuotaError> {
    let Some((_, kind)) = entity.keys().iter().find(|(k, _)| *k == key) else {
        return Err(QuotaError::UnknownKey {
            key: key.to_owned(),
            entity: entity.to_string(),
        });
    };
    if value.is_nan() || value <= 0.0 {
        return Err(QuotaError::NotPositive(key.to_owned()));
    }
    let max = match kind {
        ValueType::Double => return Ok(()),
        ValueType::Int => f64::from(i32::MAX),
        ValueType::Long => i64::MAX as f64,
    };
    if value > max || !value.is_finite() {
        return Err(QuotaError::TooLarge(key.to_owned()));
    }
    if (value % 1.0).abs() > 1e-6 {
        return Err(QuotaError::Fractional(key.to_owned()));
    }
    Ok(())
}

/// One entity's requested changes: a new value, or None to remove the key.
pub type Alteration = BTreeMap<String, Option<f64>>;

/// Applies validated alterations to `quotas`: set values replace, removals drop the key, and an entity left
/// without values disappears (Kafka's `ClientQuotaControlManager.replay`).
pub fn apply_alterations(quotas: &mut ClientQuotas, alterations: &[(QuotaEntity, Alteration)]) {
    for (entity, ops) in alterations {
        let values = quotas.entry(entity.clone()).or_default();
        for (key, value) in ops {
            match value {
                Some(v) => {
                    values.insert(key.clone(), *v);
                }
                None => {
                    values.remove(key);
                }
            }
        }
        if values.is_empty() {
            quotas.remove(entity);
        }
    }
}

/// Under which (user, client id) usage is metered: clients that resolve to the same quota entity share one
/// meter, as Kafka's quota metric tags do. An empty string means the component is not part of the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MeterKey {
    pub user: String,
    pub client_id: String,
}

/// The quota for `key` that applies to a request from `user` with `client_id`, and the meter it is counted
/// in; None when no entity sets `key` for them. Precedence (Kafka's `DefaultQuotaCallback`):
/// user+client, user+default client, user, default user+client, default user+default client, default
/// user, client, default client.
pub fn resolve(
    quotas: &ClientQuotas,
    key: &str,
    user: &str,
    client_id: &str,
) -> Option<(MeterKey, f64)> {
    let has = |entity: &QuotaEntity| quotas.get(entity).and_then(|v| v.get(key)).copied();
    let u = || EntityName::named(user);
    let c = || EntityName::named(client_id);
    let both = (user.to_owned(), client_id.to_owned());
    let user_only = (user.to_owned(), String::new());
    let client_only = (String::new(), client_id.to_owned());
    let candidates = [
        (QuotaEntity::user_client(u(), c()), &both),
        (QuotaEntity::user_client(u(), EntityName::Default), &both),
        (QuotaEntity::user(u()), &user_only),
        (QuotaEntity::user_client(EntityName::Default, c()), &both),
        (
            QuotaEntity::user_client(EntityName::Default, EntityName::Default),
            &both,
        ),
        (QuotaEntity::user(EntityName::Default), &user_only),
    ];
    let (tag_user, tag_client) = candidates
        .iter()
        .find(|(entity, _)| has(entity).is_some())
        .map_or(&client_only, |(_, tags)| *tags)
        .clone();
    // The limit is looked up again from the tags alone, as Kafka does, so a key with an empty part skips
    // the entities that need it.
    let limit = if !tag_user.is_empty() && !tag_client.is_empty() {
        has(&QuotaEntity::user_client(u(), c()))
            .or_else(|| has(&QuotaEntity::user_client(u(), EntityName::Default)))
            .or_else(|| has(&QuotaEntity::user_client(EntityName::Default, c())))
            .or_else(|| {
                has(&QuotaEntity::user_client(
                    EntityName::Default,
                    EntityName::Default,
                ))
            })
    } else if !tag_user.is_empty() {
        has(&QuotaEntity::user(u())).or_else(|| has(&QuotaEntity::user(EntityName::Default)))
    } else if !tag_client.is_empty() {
        has(&QuotaEntity::client(c())).or_else(|| has(&QuotaEntity::client(EntityName::Default)))
    } else {
        None
    }?;
    Some((
        MeterKey {
            user: tag_user,
            client_id: tag_client,
        },
        limit,
    ))
}

/// The `connection_creation_rate` for connections from `ip`: its own entity, else the default IP entity.
pub fn resolve_ip(quotas: &ClientQuotas, ip: &str) -> Option<f64> {
    let get = |entity: QuotaEntity| {
        quotas
            .get(&entity)
            .and_then(|v| v.get(CONNECTION_CREATION_RATE))
            .copied()
    };
    get(QuotaEntity::ip(EntityName::named(ip)))
        .or_else(|| get(QuotaEntity::ip(EntityName::Default)))
}

/// Serde for [`ClientQuotas`] inside the metadata image: a list of `{entity, values}`.
pub mod serde_entries {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{ClientQuotas, QuotaEntity};

    #[derive(Serialize, Deserialize)]
    struct Entry {
        entity: QuotaEntity,
        values: BTreeMap<String, f64>,
    }

    pub fn serialize<S: Serializer>(
        quotas: &ClientQuotas,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let entries: Vec<Entry> = quotas
            .iter()
            .map(|(entity, values)| Entry {
                entity: entity.clone(),
                values: values.clone(),
            })
            .collect();
        entries.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<ClientQuotas, D::Error> {
        let entries = Vec::<Entry>::deserialize(deserializer)?;
        Ok(entries.into_iter().map(|e| (e.entity, e.values)).collect())
    }
}
