//! Trigger URLs (docs/api.md, "Triggers"): making, listing, disabling, rotating and deleting
//! them; each calls `server::ops::triggers`, which authorizes the caller. The URLs themselves
//! are served by `api::hooks`.

use crate::api::extract::{Json, QueryParams};
use crate::api::headers::origin;
use crate::model::{NewTrigger, TriggerQuery, TriggerUpdate};
use crate::server::auth::Actor;
use crate::server::{ops, AppState};
use crate::{Error, Result};
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, patch, post};
use axum::Router;
use std::net::SocketAddr;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/triggers", get(list_triggers).post(create_trigger))
        .route(
            "/triggers/{id}",
            patch(update_trigger).delete(delete_trigger),
        )
        .route("/triggers/{id}/rotate", post(rotate_trigger))
}

/// The origin the request came to, for a trigger's URL when the server has no `--public-url`:
/// a trusted proxy's forwarded host and scheme, else the request's `Host`.
struct RequestOrigin(Option<String>);

impl FromRequestParts<AppState> for RequestOrigin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let forwarded = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .is_some_and(|peer| state.config.trusted_proxies.contains(&peer.0.ip()));
        Ok(Self(origin(&parts.headers, forwarded)))
    }
}

/// A trigger's id from the path: one that is no number names no trigger.
fn trigger_id(id: &str) -> Result<i64> {
    id.parse()
        .map_err(|_| Error::not_found(format!("There is no trigger {}.", crate::error::quoted(id))))
}

async fn list_triggers(
    State(state): State<AppState>,
    actor: Actor,
    QueryParams(query): QueryParams<TriggerQuery>,
) -> Result<impl IntoResponse> {
    Ok(Json(ops::triggers::list(&state, &actor, query).await?))
}

async fn create_trigger(
    State(state): State<AppState>,
    actor: Actor,
    RequestOrigin(origin): RequestOrigin,
    Json(body): Json<NewTrigger>,
) -> Result<impl IntoResponse> {
    let created = ops::triggers::create(&state, &actor, body, origin.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn update_trigger(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Json(body): Json<TriggerUpdate>,
) -> Result<impl IntoResponse> {
    let id = trigger_id(&id)?;
    Ok(Json(ops::triggers::update(&state, &actor, id, body).await?))
}

async fn rotate_trigger(
    State(state): State<AppState>,
    actor: Actor,
    RequestOrigin(origin): RequestOrigin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse> {
    let id = trigger_id(&id)?;
    Ok(Json(
        ops::triggers::rotate(&state, &actor, id, origin.as_deref()).await?,
    ))
}

async fn delete_trigger(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let id = trigger_id(&id)?;
    ops::triggers::delete(&state, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
