//! `/audit`: searching the audit log, and the actors found in it.

use crate::api::extract::{Json, QueryParams};
use crate::model::AuditQuery;
use crate::server::auth::Actor;
use crate::server::{ops, AppState};
use crate::Result;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/audit", get(search_audit))
        .route("/audit/actors", get(audit_actors))
}

async fn search_audit(
    State(state): State<AppState>,
    actor: Actor,
    QueryParams(query): QueryParams<AuditQuery>,
) -> Result<impl IntoResponse> {
    Ok(Json(ops::audit::search(&state, &actor, &query).await?))
}

async fn audit_actors(State(state): State<AppState>, actor: Actor) -> Result<impl IntoResponse> {
    let actors = ops::audit::actors(&state, &actor).await?;
    Ok(Json(json!({ "actors": actors })))
}
