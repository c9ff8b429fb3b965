//! DescribeClientQuotas (key 48, v0-1): the quota entities that match a filter, with their values, from the
//! request's metadata image (Kafka's `ClientQuotasImage.describe`).
//!
//! A filter component names an entity type and matches it exactly (`match_type` 0 with a name), as the
//! default (1), or by any name (2). Without `strict`, an entity may name types the filter does not; with it,
//! the entity must name exactly the filter's types. A malformed filter fails the whole request with
//! INVALID_REQUEST (or UNSUPPORTED_VERSION for an unknown entity type), as Kafka answers.

use kafka_protocol::{
    messages::{
        describe_client_quotas_response::{EntityData, EntryData, ValueData},
        DescribeClientQuotasRequest, DescribeClientQuotasResponse,
    },
    protocol::StrBytes,
    ResponseError,
};

use super::{code, message, RequestContext};
use crate::quota::{EntityName, QuotaEntity, CLIENT_ID, IP, USER};

const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_SPECIFIED: i8 = 2;

/// One filter component, checked.
#[derive(Debug)]
enum Component {
    /// The entity names this type with this name (`EntityName::Default` for match type DEFAULT).
    Exact(&'static str, EntityName),
    /// The entity names this type, with any name.
    Specified(&'static str),
}

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    let components = match parse_filter(&request) {
        Ok(components) => components,
        Err((error, text)) => {
            return DescribeClientQuotasResponse::default()
                .with_error_code(code(error))
                .with_error_message(message(text))
                .with_entries(None)
        }
    };
    let entries = ctx
        .image
        .client_quotas
        .iter()
        .filter(|(entity, _)| matches(entity, &components, request.strict))
        .map(|(entity, values)| {
            EntryData::default()
                .with_entity(
                    entity
                        .components()
                        .into_iter()
                        .map(|(kind, name)| {
                            EntityData::default()
                                .with_entity_type(StrBytes::from_static_str(kind))
                                .with_entity_name(name.map(|n| StrBytes::from_string(n.to_owned())))
                        })
                        .collect(),
                )
                .with_values(
                    values
                        .iter()
                        .map(|(key, value)| {
                            ValueData::default()
                                .with_key(StrBytes::from_string(key.clone()))
                                .with_value(*value)
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeClientQuotasResponse::default().with_entries(Some(entries))
}

fn parse_filter(
    request: &DescribeClientQuotasRequest,
) -> Result<Vec<Component>, (ResponseError, String)> {
    let invalid = |text: String| (ResponseError::InvalidRequest, text);
    let mut components: Vec<Component> = Vec::new();
    for component in &request.components {
        let kind: &'static str = match component.entity_type.as_str() {
            "" => return Err(invalid("Invalid empty entity type.".to_owned())),
            USER => USER,
            CLIENT_ID => CLIENT_ID,
            IP => IP,
            other => {
                return Err((
                    ResponseError::UnsupportedVersion,
                    format!("Unsupported entity type {other}"),
                ))
            }
        };
        if components.iter().any(|c| c.kind() == kind) {
            return Err(invalid(format!(
                "Entity type {kind} cannot appear more than once in the filter."
            )));
        }
        let name = component._match.as_ref().map(|m| m.as_str());
        components.push(match (component.match_type, name) {
            (MATCH_EXACT, Some(name)) => Component::Exact(kind, EntityName::Named(name.to_owned())),
            (MATCH_EXACT, None) => {
                return Err(invalid(
                    "Request specified MATCH_TYPE_EXACT, but set match string to null.".to_owned(),
                ))
            }
            (MATCH_DEFAULT, None) => Component::Exact(kind, EntityName::Default),
            (MATCH_DEFAULT, Some(_)) => {
                return Err(invalid(
                    "Request specified MATCH_TYPE_DEFAULT, but also specified a match string."
                        .to_owned(),
                ))
            }
            (MATCH_SPECIFIED, None) => Component::Specified(kind),
            (MATCH_SPECIFIED, Some(_)) => {
                return Err(invalid(
                    "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string."
                        .to_owned(),
                ))
            }
            (other, _) => return Err(invalid(format!("Unknown match type {other}"))),
        });
    }
    let has = |kind| components.iter().any(|c| c.kind() == kind);
    if has(IP) && (has(USER) || has(CLIENT_ID)) {
        return Err(invalid(
            "Invalid entity filter component combination. IP filter component should not be used \
             with user or clientId filter component."
                .to_owned(),
        ));
    }
    Ok(components)
}

impl Component {
    fn kind(&self) -> &'static str {
        match self {
            Component::Exact(kind, _) | Component::Specified(kind) => kind,
        }
    }
}

fn name_of<'a>(entity: &'a QuotaEntity, kind: &str) -> Option<&'a EntityName> {
    match kind {
        USER => entity.user.as_ref(),
        CLIENT_ID => entity.client_id.as_ref(),
        _ => entity.ip.as_ref(),
    }
}

fn matches(entity: &QuotaEntity, components: &[Component], strict: bool) -> bool {
    if strict && entity.len() != components.len() {
        return false;
    }
    components.iter().all(|component| match component {
        Component::Exact(kind, name) => name_of(entity, kind) == Some(name),
        Component::Specified(kind) => name_of(entity, kind).is_some(),
    })
}
