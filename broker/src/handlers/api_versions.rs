//! ApiVersions (key 18): the versions of every implemented API. The answer to an unsupported ApiVersions
//! version is built here too and is always v0-shaped.

use kafka_protocol::{
    messages::{api_versions_response::ApiVersion, ApiVersionsRequest, ApiVersionsResponse},
    ResponseError,
};

use super::RequestContext;
use super::{code, NONE};
use crate::protocol::SUPPORTED_APIS;

fn api_list() -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .map(|(api, range)| {
            ApiVersion::default()
                .with_api_key(*api as i16)
                .with_min_version(*range.start())
                .with_max_version(*range.end())
        })
        .collect()
}

pub async fn handle(
    _ctx: &RequestContext<'_>,
    _request: ApiVersionsRequest,
) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(NONE)
        .with_api_keys(api_list())
}

pub fn unsupported_version_response() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(code(ResponseError::UnsupportedVersion))
        .with_api_keys(api_list())
}
