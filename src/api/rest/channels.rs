//! Notification channels (docs/api.md, "Notification channels"): each route calls
//! `server::ops::channels`, which authorizes the caller.

use crate::api::extract::{Json, QueryParams};
use crate::model::NewChannel;
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
        .route(
            "/notification-channels",
            get(list_channels).post(create_channel),
        )
        .route(
            "/notification-channels/{id}",
            get(get_channel).delete(delete_channel),
        )
        .route("/notification-channels/{id}/test", post(test_channel))
        .route("/notification-channels/{id}/deliveries", get(deliveries))
        .route(
            "/notification-channels/{id}/deliveries/{delivery}",
            get(delivery),
        )
}

/// An id in the path; one that is no number names no channel.
fn id(text: &str) -> Result<i64> {
    text.parse()
        .map_err(|_| Error::not_found(format!("There is no notification channel {text}.")))
}

async fn create_channel(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<NewChannel>,
) -> Result<impl IntoResponse> {
    let channel = ops::channels::create(&state, &actor, body).await?;
    Ok((StatusCode::CREATED, Json(channel)))
}

async fn list_channels(State(state): State<AppState>, actor: Actor) -> Result<impl IntoResponse> {
    Ok(Json(ops::channels::list(&state, &actor).await?))
}

async fn get_channel(
    State(state): State<AppState>,
    actor: Actor,
    Path(channel): Path<String>,
) -> Result<impl IntoResponse> {
    Ok(Json(
        ops::channels::get(&state, &actor, id(&channel)?).await?,
    ))
}

async fn delete_channel(
    State(state): State<AppState>,
    actor: Actor,
    Path(channel): Path<String>,
) -> Result<StatusCode> {
    ops::channels::delete(&state, &actor, id(&channel)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn test_channel(
    State(state): State<AppState>,
    actor: Actor,
    Path(channel): Path<String>,
) -> Result<impl IntoResponse> {
    let delivery = ops::channels::test(&state, &actor, id(&channel)?).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Paging {
    before: Option<i64>,
    limit: Option<i64>,
}

async fn deliveries(
    State(state): State<AppState>,
    actor: Actor,
    Path(channel): Path<String>,
    QueryParams(paging): QueryParams<Paging>,
) -> Result<impl IntoResponse> {
    Ok(Json(
        ops::channels::deliveries(&state, &actor, id(&channel)?, paging.before, paging.limit)
            .await?,
    ))
}

async fn delivery(
    State(state): State<AppState>,
    actor: Actor,
    Path((channel, delivery)): Path<(String, String)>,
) -> Result<impl IntoResponse> {
    let delivery = delivery
        .parse()
        .map_err(|_| Error::not_found(format!("There is no delivery {delivery}.")))?;
    Ok(Json(
        ops::channels::delivery(&state, &actor, id(&channel)?, delivery).await?,
    ))
}
