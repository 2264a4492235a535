//! HTTP API v1 (PRODUCT.md section 3): JSON in and out, errors as
//! `{"error": {"code", "message", "field"}}`.

use crate::model::{AuditQuery, NewToken, NewUser, UserUpdate};
use crate::server::auth::Actor;
use crate::server::{ops, AppState};
use crate::{Error, Result};
use axum::extract::{FromRequest, FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, patch, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use tower_sessions::Session;

/// `axum::Json` with errors in the API's shape.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(Error))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Query` with errors in the API's shape.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Error))]
pub struct QueryParams<T>(pub T);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/me", get(me))
        .route("/tokens", get(list_tokens).post(create_token))
        .route("/tokens/{id}", delete(revoke_token))
        .route("/users", get(list_users).post(create_user))
        .route("/users/{id}", patch(update_user))
        .route("/environments", get(list_environments).post(create_environment))
        .route("/audit", get(search_audit))
        .fallback(|| async { Error::not_found("No such API route; see docs/api.md.") })
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

async fn login(State(state): State<AppState>, session: Session, Json(body): Json<LoginBody>) -> Result<Json<Value>> {
    let user = ops::auth::login(&state, &session, &body.username, &body.password).await?;
    Ok(Json(json!({ "user": user })))
}

async fn logout(State(state): State<AppState>, session: Session) -> Result<StatusCode> {
    ops::auth::logout(&state, &session).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller: a signed-in user, or the token's identity.
async fn me(State(state): State<AppState>, actor: Actor) -> Result<Json<Value>> {
    let user = match actor.user_id {
        Some(id) => crate::server::db::users::find(&state.db, id).await?,
        None => None,
    };
    Ok(Json(json!({
        "user": user,
        "actor": { "name": actor.name, "role": actor.role, "env": actor.env, "namespace": actor.namespace },
    })))
}

async fn list_tokens(State(state): State<AppState>, actor: Actor) -> Result<impl IntoResponse> {
    Ok(Json(ops::tokens::list(&state.db, &actor).await?))
}

async fn create_token(State(state): State<AppState>, actor: Actor, Json(body): Json<NewToken>) -> Result<impl IntoResponse> {
    let created = ops::tokens::create(&state.db, &actor, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn revoke_token(State(state): State<AppState>, actor: Actor, Path(id): Path<i64>) -> Result<impl IntoResponse> {
    Ok(Json(ops::tokens::revoke(&state.db, &actor, id).await?))
}

async fn list_users(State(state): State<AppState>, actor: Actor) -> Result<impl IntoResponse> {
    Ok(Json(ops::users::list(&state, &actor).await?))
}

async fn create_user(State(state): State<AppState>, actor: Actor, Json(body): Json<NewUser>) -> Result<impl IntoResponse> {
    let user = ops::users::create(&state.db, &actor, body).await?;
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

async fn list_environments(State(state): State<AppState>, actor: Actor) -> Result<impl IntoResponse> {
    Ok(Json(ops::environments::list(&state, &actor).await?))
}

#[derive(Deserialize)]
struct NameBody {
    name: String,
}

async fn create_environment(State(state): State<AppState>, actor: Actor, Json(body): Json<NameBody>) -> Result<impl IntoResponse> {
    let env = ops::environments::create(&state, &actor, &body.name).await?;
    Ok((StatusCode::CREATED, Json(env)))
}

async fn search_audit(State(state): State<AppState>, actor: Actor, QueryParams(query): QueryParams<AuditQuery>) -> Result<impl IntoResponse> {
    Ok(Json(ops::audit::search(&state, &actor, &query).await?))
}

