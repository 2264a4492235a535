//! A namespace's configs in an environment, their versions, diffs and releases.

use super::CONFIGS;
use crate::api::extract::{optional_message, ContentJson, Json, QueryParams};
use crate::model::{ConfigPath, EnvPath, NewConfig, NewVersion, VersionsQuery};
use crate::server::auth::Actor;
use crate::server::{ops, AppState};
use crate::{Error, Result};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
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
    let message = optional_message(&body)?;
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

/// A version's route: its config and its number (parsed in the handler, for the error).
#[derive(Deserialize)]
struct VersionPath {
    #[serde(flatten)]
    config: ConfigPath,
    n: String,
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
    Json(body): Json<serde_json::Value>,
) -> Result<impl IntoResponse> {
    let (body, governed) = crate::api::extract::governed::<ReleaseBody>(body)?;
    let done =
        ops::configs::release(&state, &actor, &path, body.version, body.message, &governed).await?;
    Ok(crate::api::extract::outcome(done, StatusCode::CREATED))
}

async fn list_releases(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<ConfigPath>,
) -> Result<impl IntoResponse> {
    Ok(Json(ops::configs::releases(&state, &actor, &path).await?))
}
