//! `POST /hooks/{token}`: a trigger URL (docs/api.md, "Triggers"). The token is the
//! credential: no session, no bearer token, and any body of any type (an Alertmanager or
//! Grafana notification), of which the audit keeps an excerpt. Mounted outside the session and
//! same-origin layers (`api::router`), which are for the dashboard's cookie.

use crate::api::body;
use crate::api::extract::Json;
use crate::server::auth::Client;
use crate::server::ops::triggers::{self, MAX_HOOK_BODY_BYTES};
use crate::server::AppState;
use crate::Result;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Extension, Router};

pub fn router() -> Router<AppState> {
    Router::new().route(&format!("{}/{{token}}", triggers::HOOKS), post(fire))
}

async fn fire(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    Path(token): Path<String>,
    request: Body,
) -> Result<impl IntoResponse> {
    let body = body::read(request, MAX_HOOK_BODY_BYTES).await?;
    Ok(Json(
        triggers::fire(&state, &token, client.addr, &body).await?,
    ))
}
