//! Plan templates (docs/plans.md): an environment's named plans and its default; each calls
//! `server::ops::templates`, which authorizes the caller.

use crate::api::extract::{Json, QueryParams};
use crate::model::{DefaultTemplate, NewPlanTemplate};
use crate::server::auth::Actor;
use crate::server::{ops, AppState};
use crate::Result;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, put};
use axum::Router;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/rollout-templates",
            get(list_templates).post(create_template),
        )
        .route("/rollout-templates/{name}", delete(delete_template))
        .route(
            "/environments/{env}/default-template",
            put(set_default_template),
        )
}

#[derive(Deserialize)]
struct EnvQuery {
    env: String,
}

async fn list_templates(
    State(state): State<AppState>,
    actor: Actor,
    QueryParams(query): QueryParams<EnvQuery>,
) -> Result<impl IntoResponse> {
    Ok(Json(
        ops::templates::list(&state, &actor, &query.env).await?,
    ))
}

async fn create_template(
    State(state): State<AppState>,
    actor: Actor,
    QueryParams(query): QueryParams<EnvQuery>,
    Json(body): Json<NewPlanTemplate>,
) -> Result<impl IntoResponse> {
    let template = ops::templates::create(&state, &actor, &query.env, body).await?;
    Ok((StatusCode::CREATED, Json(template)))
}

async fn delete_template(
    State(state): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<EnvQuery>,
) -> Result<StatusCode> {
    ops::templates::delete(&state, &actor, &query.env, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_default_template(
    State(state): State<AppState>,
    actor: Actor,
    Path(env): Path<String>,
    Json(body): Json<DefaultTemplate>,
) -> Result<impl IntoResponse> {
    Ok(Json(
        ops::templates::set_default(&state, &actor, &env, body).await?,
    ))
}
