//! Change governance (issue 28, docs/api.md "Change requests, schedules and overrides"): an
//! environment's protection, change requests and their approvals, and break-glass overrides.
//! Each handler calls `server::ops::governance` or `server::ops::change_requests`, which
//! authorize the caller.

use super::CONFIGS;
use crate::api::extract::{governed, optional_json, Json, QueryParams};
use crate::model::{
    ChangeComment, ChangeRequestQuery, ConfigPath, NewChangeRequest, OverrideQuery, Protection,
};
use crate::server::auth::Actor;
use crate::server::ops::change_requests as requests;
use crate::server::{ops, AppState};
use crate::{Error, Result};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/environments/{env}/protection",
            get(get_protection).put(put_protection),
        )
        .route(
            &format!("{CONFIGS}/{{key}}/change-requests"),
            post(create_request),
        )
        .route("/change-requests", get(list_requests))
        .route("/change-requests/{id}", get(get_request))
        .route("/change-requests/{id}/approve", post(approve))
        .route("/change-requests/{id}/reject", post(reject))
        .route("/change-requests/{id}/withdraw", post(withdraw))
        .route("/change-requests/{id}/apply", post(apply_now))
        .route("/overrides", get(list_overrides))
        .route("/overrides/{id}/review", post(review_override))
}

async fn get_protection(
    State(state): State<AppState>,
    actor: Actor,
    Path(env): Path<String>,
) -> Result<impl IntoResponse> {
    Ok(Json(
        ops::governance::protection(&state, &actor, &env).await?,
    ))
}

async fn put_protection(
    State(state): State<AppState>,
    actor: Actor,
    Path(env): Path<String>,
    Json(body): Json<Protection>,
) -> Result<impl IntoResponse> {
    Ok(Json(
        ops::governance::protect(&state, &actor, &env, body).await?,
    ))
}

async fn create_request(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<ConfigPath>,
    Json(body): Json<serde_json::Value>,
) -> Result<impl IntoResponse> {
    // `apply_at` read like a direct action's, so a bad one names its field.
    let (mut body, governed) = governed::<NewChangeRequest>(body)?;
    if governed.break_glass.is_some() {
        return Err(Error::invalid(
            "override",
            "An override goes with POST /api/v1/change-requests/{id}/apply, or with the action \
             itself.",
        ));
    }
    body.apply_at = governed.apply_at;
    let request = requests::create(&state, &actor, &path, body).await?;
    Ok((StatusCode::CREATED, Json(request)))
}

async fn list_requests(
    State(state): State<AppState>,
    actor: Actor,
    QueryParams(query): QueryParams<ChangeRequestQuery>,
) -> Result<impl IntoResponse> {
    Ok(Json(requests::list(&state, &actor, query).await?))
}

async fn get_request(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse> {
    Ok(Json(requests::get(&state, &actor, id).await?))
}

async fn approve(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<impl IntoResponse> {
    let comment: ChangeComment = optional_json(&body)?;
    no_override(&comment)?;
    Ok(Json(requests::approve(&state, &actor, id, comment).await?))
}

async fn reject(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<impl IntoResponse> {
    let comment: ChangeComment = optional_json(&body)?;
    no_override(&comment)?;
    Ok(Json(requests::reject(&state, &actor, id, comment).await?))
}

async fn withdraw(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<impl IntoResponse> {
    let comment: ChangeComment = optional_json(&body)?;
    no_override(&comment)?;
    Ok(Json(requests::withdraw(&state, &actor, id, comment).await?))
}

async fn apply_now(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<impl IntoResponse> {
    let body: ChangeComment = optional_json(&body)?;
    Ok(Json(requests::apply_now(&state, &actor, id, body).await?))
}

/// An override belongs to `apply` only.
fn no_override(body: &ChangeComment) -> Result<()> {
    match body.break_glass {
        Some(_) => Err(Error::invalid(
            "override",
            "An override goes with POST /api/v1/change-requests/{id}/apply.",
        )),
        None => Ok(()),
    }
}

async fn list_overrides(
    State(state): State<AppState>,
    actor: Actor,
    QueryParams(query): QueryParams<OverrideQuery>,
) -> Result<impl IntoResponse> {
    Ok(Json(requests::overrides(&state, &actor, query).await?))
}

async fn review_override(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse> {
    Ok(Json(requests::review(&state, &actor, id).await?))
}
