//! `/namespaces`: listing (with a search) and creating namespaces.

use crate::api::extract::{Json, QueryParams};
use crate::model::NewNamespace;
use crate::server::auth::Actor;
use crate::server::{ops, AppState};
use crate::Result;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new().route("/namespaces", get(list_namespaces).post(create_namespace))
}

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
