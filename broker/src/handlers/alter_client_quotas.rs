//! AlterClientQuotas (key 49, v0-1): sets and removes quota values of entities, through the controller
//! (Kafka's `ClientQuotaControlManager.alterClientQuotas`).
//!
//! Each entry is validated on its own (entity types and names, keys the entity type may carry, values
//! positive and whole for byte and connection rates); an entry that fails gets INVALID_REQUEST with the
//! reason, and the valid entries are applied together in one metadata change. `validate_only` checks and
//! changes nothing. Removing a key that is not set is not an error.

use std::collections::BTreeMap;

use kafka_protocol::{
    messages::{
        alter_client_quotas_request::EntryData as RequestEntry,
        alter_client_quotas_response::{EntityData, EntryData},
        AlterClientQuotasRequest, AlterClientQuotasResponse,
    },
    ResponseError,
};

use super::{code, message, topic_error_code, RequestContext};
use crate::quota::{validate_value, Alteration, QuotaEntity, QuotaError};

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    let mut outcomes: Vec<Result<(), (i16, String)>> = Vec::with_capacity(request.entries.len());
    let mut alterations: Vec<(QuotaEntity, Alteration)> = Vec::new();
    for entry in &request.entries {
        match validate(entry) {
            Ok(alteration) if alterations.iter().any(|(e, _)| *e == alteration.0) => {
                outcomes.push(Err((
                    code(ResponseError::InvalidRequest),
                    format!("ignoring duplicate entity {}", alteration.0),
                )));
            }
            Ok(alteration) => {
                alterations.push(alteration);
                outcomes.push(Ok(()));
            }
            Err(e) => outcomes.push(Err((code(ResponseError::InvalidRequest), e.to_string()))),
        }
    }
    if !request.validate_only && !alterations.is_empty() {
        let entities: Vec<String> = alterations.iter().map(|(e, _)| e.to_string()).collect();
        if let Err(e) = ctx.broker.controller.alter_client_quotas(alterations).await {
            tracing::warn!(error = %crate::error_chain(&e), "client quota change failed");
            let failed = (topic_error_code(&e), crate::error_chain(&e));
            for outcome in outcomes.iter_mut().filter(|o| o.is_ok()) {
                *outcome = Err(failed.clone());
            }
        } else {
            tracing::info!(entities = ?entities, "client quotas changed");
        }
    }
    let entries = request
        .entries
        .iter()
        .zip(outcomes)
        .map(|(entry, outcome)| {
            let (error_code, error_message) = match outcome {
                Ok(()) => (0, None),
                Err((error, text)) => (error, message(text)),
            };
            EntryData::default()
                .with_error_code(error_code)
                .with_error_message(error_message)
                .with_entity(
                    entry
                        .entity
                        .iter()
                        .map(|e| {
                            EntityData::default()
                                .with_entity_type(e.entity_type.clone())
                                .with_entity_name(e.entity_name.clone())
                        })
                        .collect(),
                )
        })
        .collect();
    AlterClientQuotasResponse::default().with_entries(entries)
}

fn validate(entry: &RequestEntry) -> Result<(QuotaEntity, Alteration), QuotaError> {
    let entity = QuotaEntity::from_components(entry.entity.iter().map(|e| {
        (
            e.entity_type.as_str(),
            e.entity_name.as_ref().map(|n| n.as_str()),
        )
    }))?;
    let mut alteration: Alteration = BTreeMap::new();
    for op in &entry.ops {
        let key = op.key.as_str();
        if alteration.contains_key(key) {
            return Err(QuotaError::DuplicateKey(key.to_owned()));
        }
        let value = if op.remove {
            None
        } else {
            validate_value(&entity, key, op.value)?;
            Some(op.value)
        };
        alteration.insert(key.to_owned(), value);
    }
    Ok((entity, alteration))
}
