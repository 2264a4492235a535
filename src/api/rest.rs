//! HTTP API v1 (docs/api.md): JSON in and out, errors as
//! `{"error": {"code", "message", "field"}}`.

use super::extract::{lane_id, ContentJson, Json, LanePath, QueryParams};
use super::headers::{visible_ascii, Headers};
use crate::domain::lane::parse_labels;
use crate::domain::Context;
use crate::model::{
    AuditQuery, ConfigPath, EnvPath, LaneUpdate, NewConfig, NewLane, NewNamespace, NewToken,
    NewUser, NewVersion, UserUpdate, VersionsQuery,
};
use crate::server::auth::Actor;
use crate::server::{ops, AppState};
use crate::{Error, Result};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{delete, get, patch, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use tower_sessions::Session;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/me", get(me))
        .route("/tokens", get(list_tokens).post(create_token))
        .route("/tokens/{id}", delete(revoke_token))
        .route("/users", get(list_users).post(create_user))
        .route("/users/{id}", patch(update_user))
        .route(
            "/environments",
            get(list_environments).post(create_environment),
        )
        .route("/audit", get(search_audit))
        .route("/audit/actors", get(audit_actors))
        .route("/namespaces", get(list_namespaces).post(create_namespace))
        .route(CONFIGS, get(list_configs).post(create_config))
        .route(
            &format!("{CONFIGS}/{{key}}"),
            get(get_config).delete(delete_config),
        )
        .route(
            &format!("{CONFIGS}/{{key}}/versions"),
            get(list_versions).post(save_version),
        )
        .route(
            &format!("{CONFIGS}/{{key}}/versions/{{n}}"),
            get(get_version),
        )
        .route(&format!("{CONFIGS}/{{key}}/diff"), get(diff_versions))
        .route(&format!("{CONFIGS}/{{key}}/release"), post(release))
        .route(&format!("{CONFIGS}/{{key}}/releases"), get(list_releases))
        .route(&RESOLVE_ROUTE["/api/v1".len()..], get(resolve))
        .route(
            &format!("{CONFIGS}/{{key}}/lanes"),
            get(list_lanes).post(create_lane),
        )
        .route(
            &format!("{CONFIGS}/{{key}}/lanes/preview"),
            post(preview_lane),
        )
        .route(
            &format!("{CONFIGS}/{{key}}/lanes/{{id}}"),
            patch(update_lane),
        )
        .route(
            &format!("{CONFIGS}/{{key}}/lanes/{{id}}/preview"),
            post(preview_lane_change),
        )
        .route(
            &format!("{CONFIGS}/{{key}}/lanes/{{id}}/promote"),
            post(promote_lane),
        )
        .route(
            &format!("{CONFIGS}/{{key}}/lanes/{{id}}/abort"),
            post(abort_lane),
        )
        .merge(super::plans::router())
        .route("/rollout-probe/prometheus", post(probe_prometheus))
        .fallback(|| async { Error::not_found("No such API route; see docs/api.md.") })
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    session: Session,
    axum::Extension(client): axum::Extension<crate::server::auth::Client>,
    Json(body): Json<LoginBody>,
) -> Result<Json<Value>> {
    let user = ops::auth::login(
        &state,
        &session,
        client.addr,
        &body.username,
        &body.password,
    )
    .await?;
    Ok(Json(json!({ "user": user })))
}

async fn logout(State(state): State<AppState>, session: Session) -> Result<StatusCode> {
    ops::auth::logout(&state, &session).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller: a signed-in user, or the token's identity.
async fn me(State(state): State<AppState>, actor: Actor) -> Result<Json<Value>> {
    let user = ops::auth::user_of(&state, &actor).await?;
    Ok(Json(json!({
        "user": user,
        "actor": { "name": actor.name, "role": actor.role, "env": actor.env, "namespace": actor.namespace },
    })))
}

async fn list_tokens(State(state): State<AppState>, actor: Actor) -> Result<impl IntoResponse> {
    Ok(Json(ops::tokens::list(&state, &actor).await?))
}

async fn create_token(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<NewToken>,
) -> Result<impl IntoResponse> {
    let created = ops::tokens::create(&state, &actor, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn revoke_token(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse> {
    Ok(Json(ops::tokens::revoke(&state, &actor, id).await?))
}

async fn list_users(State(state): State<AppState>, actor: Actor) -> Result<impl IntoResponse> {
    Ok(Json(ops::users::list(&state, &actor).await?))
}

async fn create_user(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<NewUser>,
) -> Result<impl IntoResponse> {
    let user = ops::users::create(&state, &actor, body).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

async fn update_user(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
    Json(body): Json<UserUpdate>,
) -> Result<impl IntoResponse> {
    Ok(Json(ops::users::update(&state, &actor, id, body).await?))
}

async fn list_environments(
    State(state): State<AppState>,
    actor: Actor,
) -> Result<impl IntoResponse> {
    Ok(Json(ops::environments::list(&state, &actor).await?))
}

#[derive(Deserialize)]
struct NameBody {
    name: String,
}

async fn create_environment(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<NameBody>,
) -> Result<impl IntoResponse> {
    let env = ops::environments::create(&state, &actor, &body.name).await?;
    Ok((StatusCode::CREATED, Json(env)))
}

async fn audit_actors(State(state): State<AppState>, actor: Actor) -> Result<impl IntoResponse> {
    let actors = ops::audit::actors(&state, &actor).await?;
    Ok(Json(serde_json::json!({ "actors": actors })))
}

async fn search_audit(
    State(state): State<AppState>,
    actor: Actor,
    QueryParams(query): QueryParams<AuditQuery>,
) -> Result<impl IntoResponse> {
    Ok(Json(ops::audit::search(&state, &actor, &query).await?))
}

pub(crate) const CONFIGS: &str = "/namespaces/{ns}/envs/{env}/configs";

#[derive(Deserialize)]
struct NamespaceSearch {
    #[serde(default)]
    q: Option<String>,
}

async fn list_namespaces(
    State(state): State<AppState>,
    actor: Actor,
    QueryParams(query): QueryParams<NamespaceSearch>,
) -> Result<impl IntoResponse> {
    Ok(Json(
        ops::namespaces::list(&state, &actor, query.q.as_deref()).await?,
    ))
}

async fn create_namespace(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<NewNamespace>,
) -> Result<impl IntoResponse> {
    let namespace = ops::namespaces::create(&state, &actor, body).await?;
    Ok((StatusCode::CREATED, Json(namespace)))
}

async fn list_configs(
    State(state): State<AppState>,
    actor: Actor,
    Path(at): Path<EnvPath>,
) -> Result<impl IntoResponse> {
    Ok(Json(ops::configs::list(&state, &actor, &at).await?))
}

async fn create_config(
    State(state): State<AppState>,
    actor: Actor,
    Path(at): Path<EnvPath>,
    ContentJson(body): ContentJson<NewConfig>,
) -> Result<impl IntoResponse> {
    let config = ops::configs::create(&state, &actor, &at, body).await?;
    Ok((StatusCode::CREATED, Json(config)))
}

async fn get_config(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<ConfigPath>,
) -> Result<impl IntoResponse> {
    Ok(Json(ops::configs::get(&state, &actor, &path).await?))
}

/// 204; the body, optional, is `{message?}` as for promote and abort.
async fn delete_config(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<ConfigPath>,
    body: axum::body::Bytes,
) -> Result<StatusCode> {
    let message = message_of(&body)?;
    ops::configs::delete(&state, &actor, &path, message).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One page of versions, newest first, without their contents (`?before=n&limit=m`).
async fn list_versions(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<ConfigPath>,
    QueryParams(query): QueryParams<VersionsQuery>,
) -> Result<impl IntoResponse> {
    Ok(Json(
        ops::history::versions(&state, &actor, &path, &query).await?,
    ))
}

async fn save_version(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<ConfigPath>,
    ContentJson(body): ContentJson<NewVersion>,
) -> Result<impl IntoResponse> {
    let version = ops::configs::save_version(&state, &actor, &path, body).await?;
    Ok((StatusCode::CREATED, Json(version)))
}

async fn get_version(
    State(state): State<AppState>,
    actor: Actor,
    Path(VersionPath { config: path, n }): Path<VersionPath>,
) -> Result<impl IntoResponse> {
    let n: i64 = n.parse().map_err(|_| {
        Error::invalid(
            "version",
            format!("{} is not a version number.", crate::error::quoted(&n)),
        )
    })?;
    Ok(Json(ops::configs::version(&state, &actor, &path, n).await?))
}

/// A version's route: its config and its number (parsed in the handler, for the error).
#[derive(Deserialize)]
struct VersionPath {
    #[serde(flatten)]
    config: ConfigPath,
    n: String,
}

#[derive(Deserialize)]
struct DiffQuery {
    from: i64,
    to: i64,
    #[serde(default)]
    ignore_whitespace: bool,
}

async fn diff_versions(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<ConfigPath>,
    QueryParams(query): QueryParams<DiffQuery>,
) -> Result<impl IntoResponse> {
    let diff = ops::configs::diff(
        &state,
        &actor,
        &path,
        query.from,
        query.to,
        query.ignore_whitespace,
    )
    .await?;
    Ok(Json(diff))
}

#[derive(Deserialize)]
struct ReleaseBody {
    version: i64,
    #[serde(default)]
    message: Option<String>,
}

async fn release(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<ConfigPath>,
    Json(body): Json<ReleaseBody>,
) -> Result<impl IntoResponse> {
    let event = ops::configs::release(&state, &actor, &path, body.version, body.message).await?;
    Ok((StatusCode::CREATED, Json(event)))
}

async fn list_releases(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<ConfigPath>,
) -> Result<impl IntoResponse> {
    Ok(Json(ops::configs::releases(&state, &actor, &path).await?))
}

/// The resolve route, as the request metrics name it.
pub(crate) const RESOLVE_ROUTE: &str = "/api/v1/namespaces/{ns}/envs/{env}/configs/{key}/resolve";
/// The request headers a resolve answer depends on: shared caches must key on them.
pub(crate) const RESOLVE_VARY: &str = "X-Client-Id, X-User-Id, X-Labels";

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

/// Whether `If-None-Match` names `etag` (or `*`); it compares weakly: `W/"x"` matches `"x"`.
pub(crate) fn if_none_match(headers: &(impl Headers + ?Sized), etag: &str) -> bool {
    headers
        .values("if-none-match")
        .filter_map(visible_ascii)
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

async fn list_lanes(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<ConfigPath>,
) -> Result<impl IntoResponse> {
    Ok(Json(ops::lanes::list(&state, &actor, &path).await?))
}

async fn create_lane(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<ConfigPath>,
    Json(body): Json<NewLane>,
) -> Result<impl IntoResponse> {
    let lane = ops::lanes::create(&state, &actor, &path, body).await?;
    Ok((StatusCode::CREATED, Json(lane)))
}

async fn update_lane(
    State(state): State<AppState>,
    actor: Actor,
    Path(LanePath { config: path, id }): Path<LanePath>,
    Json(body): Json<LaneUpdate>,
) -> Result<impl IntoResponse> {
    let id = lane_id(&id)?;
    Ok(Json(
        ops::lanes::update(&state, &actor, &path, id, body).await?,
    ))
}

#[derive(Deserialize)]
struct MessageBody {
    #[serde(default)]
    message: Option<String>,
}

/// The `message` of an optional `{message?}` body: no body counts as `{}`.
fn message_of(body: &[u8]) -> Result<Option<String>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice::<MessageBody>(body)
        .map(|b| b.message)
        .map_err(Error::invalid_json)
}

async fn promote_lane(
    State(state): State<AppState>,
    actor: Actor,
    Path(LanePath { config: path, id }): Path<LanePath>,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse> {
    let id = lane_id(&id)?;
    let message = message_of(&body)?;
    Ok(Json(
        ops::lanes::promote(&state, &actor, &path, id, message).await?,
    ))
}

async fn abort_lane(
    State(state): State<AppState>,
    actor: Actor,
    Path(LanePath { config: path, id }): Path<LanePath>,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse> {
    let id = lane_id(&id)?;
    let message = message_of(&body)?;
    Ok(Json(
        ops::lanes::abort(&state, &actor, &path, id, message).await?,
    ))
}

async fn preview_lane(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<ConfigPath>,
    Json(body): Json<NewLane>,
) -> Result<impl IntoResponse> {
    Ok(Json(
        ops::lanes::preview(&state, &actor, &path, body).await?,
    ))
}

async fn preview_lane_change(
    State(state): State<AppState>,
    actor: Actor,
    Path(LanePath { config: path, id }): Path<LanePath>,
    Json(body): Json<LaneUpdate>,
) -> Result<impl IntoResponse> {
    let id = lane_id(&id)?;
    Ok(Json(
        ops::lanes::preview_change(&state, &actor, &path, id, body).await?,
    ))
}

/// "Test query now" for a Prometheus guard: `{value?, samples, series?, error?}`.
async fn probe_prometheus(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<crate::domain::plan::probe::QueryTestRequest>,
) -> Result<impl IntoResponse> {
    Ok(Json(
        ops::probes::test_prometheus(&state, &actor, body).await?,
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_resolve_route_is_the_configs_route_s() {
        assert_eq!(
            super::RESOLVE_ROUTE,
            format!("/api/v1{}/{{key}}/resolve", super::CONFIGS)
        );
    }
}
