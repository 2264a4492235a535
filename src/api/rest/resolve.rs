//! `GET …/configs/{key}/resolve`: the config as one subscriber gets it.

use crate::api::extract::{Json, QueryParams};
use crate::api::headers::{if_none_match, Headers};
use crate::domain::lane::parse_labels;
use crate::domain::Context;
use crate::model::ConfigPath;
use crate::server::auth::Actor;
use crate::server::{ops, AppState};
use crate::{Error, Result};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

/// The resolve route, as the request metrics name it.
pub(crate) const RESOLVE_ROUTE: &str = "/api/v1/namespaces/{ns}/envs/{env}/configs/{key}/resolve";
/// The request headers a resolve answer depends on: shared caches must key on them.
pub(crate) const RESOLVE_VARY: &str = "X-Client-Id, X-User-Id, X-Labels";

pub fn router() -> Router<AppState> {
    Router::new().route(&RESOLVE_ROUTE["/api/v1".len()..], get(resolve))
}

#[derive(Deserialize)]
pub(crate) struct ResolveQuery {
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    labels: Option<String>,
    #[serde(default)]
    pub(crate) explain: bool,
}

/// The context of a resolve request: `labels` plus `client_id` and `user_id`
/// (which win over labels of the same name). Each of the three comes from the
/// query when present there, else from its header (`X-Labels`, `X-Client-Id`,
/// `X-User-Id`); empty values count as absent.
pub(crate) fn resolve_context(
    query: &ResolveQuery,
    headers: &(impl Headers + ?Sized),
) -> Result<Context> {
    let pick = |from_query: &Option<String>, name: &str| -> Result<Option<String>> {
        let value = match from_query {
            Some(value) => Some(value.clone()),
            None => headers
                .text(name)
                .map(|v| {
                    v.map(str::to_string).map_err(|()| {
                        Error::bad_request(format!("The {name} header is not visible ASCII."))
                    })
                })
                .transpose()?,
        };
        Ok(value
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty()))
    };
    let mut ctx = match pick(&query.labels, "x-labels")? {
        Some(labels) => parse_labels(&labels).map_err(|m| Error::invalid("labels", m))?,
        None => Context::new(),
    };
    for (key, value) in [
        ("client_id", pick(&query.client_id, "x-client-id")?),
        ("user_id", pick(&query.user_id, "x-user-id")?),
    ] {
        if let Some(value) = value {
            ctx.insert(key.to_string(), value);
        }
    }
    Ok(ctx)
}

/// The config as this subscriber gets it (the first matching gray lane's
/// version, else the stable release), with a strong ETag that names the
/// version, the lane and the checksum; a matching `If-None-Match` gets 304
/// without a body. `explain=true` (viewer and up) adds why, and is never
/// answered with 304.
async fn resolve(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<ConfigPath>,
    QueryParams(query): QueryParams<ResolveQuery>,
    headers: HeaderMap,
) -> Result<axum::response::Response> {
    let ctx = resolve_context(&query, &headers)?;
    let vary = (header::VARY, HeaderValue::from_static(RESOLVE_VARY));
    if query.explain {
        let explanation = ops::lanes::explain(&state, &actor, &path, &ctx, None).await?;
        let resolved = ops::configs::resolve_stored(&state, &actor, &path, &ctx).await?;
        let etag = crate::server::hub::etag(resolved.version, resolved.lane, &resolved.checksum);
        let etag = HeaderValue::from_str(&etag).map_err(Error::internal)?;
        let mut body = serde_json::to_value(&resolved).map_err(Error::internal)?;
        body["explain"] = serde_json::to_value(&explanation).map_err(Error::internal)?;
        return Ok(([(header::ETAG, etag), vary], Json(body)).into_response());
    }
    let answer = ops::configs::resolve(&state, &actor, &path, &ctx).await?;
    let etag = HeaderValue::from_str(&answer.etag).map_err(Error::internal)?;
    if if_none_match(&headers, &answer.etag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag), vary]).into_response());
    }
    let json = (
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(([(header::ETAG, etag), vary, json], answer.body).into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_resolve_route_is_the_configs_route_s() {
        assert_eq!(
            super::RESOLVE_ROUTE,
            format!("/api/v1{}/{{key}}/resolve", super::super::CONFIGS)
        );
    }
}
