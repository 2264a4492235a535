//! HTTP API v1 (PRODUCT.md section 3): JSON in and out, errors as
//! `{"error": {"code", "message", "field"}}`.

use crate::model::{
    AuditQuery, NewConfig, NewNamespace, NewToken, NewUser, NewVersion, UserUpdate,
};
use crate::server::auth::Actor;
use crate::server::{ops, AppState};
use crate::{Error, Result};
use axum::extract::{FromRequest, FromRequestParts, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
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
        .route(
            "/environments",
            get(list_environments).post(create_environment),
        )
        .route("/audit", get(search_audit))
        .route("/namespaces", get(list_namespaces).post(create_namespace))
        .route(CONFIGS, get(list_configs).post(create_config))
        .route(&format!("{CONFIGS}/{{key}}"), get(get_config))
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
        .route(&format!("{CONFIGS}/{{key}}/resolve"), get(resolve))
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
    Json(body): Json<LoginBody>,
) -> Result<Json<Value>> {
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

async fn create_token(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<NewToken>,
) -> Result<impl IntoResponse> {
    let created = ops::tokens::create(&state.db, &actor, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn revoke_token(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse> {
    Ok(Json(ops::tokens::revoke(&state.db, &actor, id).await?))
}

async fn list_users(State(state): State<AppState>, actor: Actor) -> Result<impl IntoResponse> {
    Ok(Json(ops::users::list(&state, &actor).await?))
}

async fn create_user(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<NewUser>,
) -> Result<impl IntoResponse> {
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

async fn search_audit(
    State(state): State<AppState>,
    actor: Actor,
    QueryParams(query): QueryParams<AuditQuery>,
) -> Result<impl IntoResponse> {
    Ok(Json(ops::audit::search(&state, &actor, &query).await?))
}

/// JSON bodies carrying config content: limited by `max_content_bytes`
/// (with room for JSON escaping) instead of axum's fixed default, so content
/// a little over the limit reaches the operation and gets its precise 413.
pub struct ContentJson<T>(pub T);

impl<T: serde::de::DeserializeOwned> FromRequest<AppState> for ContentJson<T> {
    type Rejection = Error;

    async fn from_request(request: axum::extract::Request, state: &AppState) -> Result<Self> {
        // `\u0000` is the longest escape: six bytes for one content byte.
        let limit = state
            .config
            .max_content_bytes
            .saturating_mul(6)
            .saturating_add(64 * 1024);
        let too_large =
            || Error::too_large(format!("The request body is larger than {limit} bytes."));
        let declared = request
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|len| len > limit) {
            return Err(too_large());
        }
        // The only other failure is a broken connection, whose client hears nothing anyway.
        let bytes = axum::body::to_bytes(request.into_body(), limit)
            .await
            .map_err(|_| too_large())?;
        serde_json::from_slice(&bytes)
            .map(ContentJson)
            .map_err(|e| {
                Error::bad_request(format!(
                    "The request body is not valid JSON for this route: {e}"
                ))
            })
    }
}

const CONFIGS: &str = "/namespaces/{ns}/envs/{env}/configs";

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
    Path((ns, env)): Path<(String, String)>,
) -> Result<impl IntoResponse> {
    Ok(Json(ops::configs::list(&state, &actor, &ns, &env).await?))
}

async fn create_config(
    State(state): State<AppState>,
    actor: Actor,
    Path((ns, env)): Path<(String, String)>,
    ContentJson(body): ContentJson<NewConfig>,
) -> Result<impl IntoResponse> {
    let config = ops::configs::create(&state, &actor, &ns, &env, body).await?;
    Ok((StatusCode::CREATED, Json(config)))
}

async fn get_config(
    State(state): State<AppState>,
    actor: Actor,
    Path((ns, env, key)): Path<(String, String, String)>,
) -> Result<impl IntoResponse> {
    Ok(Json(
        ops::configs::get(&state, &actor, &ns, &env, &key).await?,
    ))
}

async fn list_versions(
    State(state): State<AppState>,
    actor: Actor,
    Path((ns, env, key)): Path<(String, String, String)>,
) -> Result<impl IntoResponse> {
    Ok(Json(
        ops::configs::versions(&state, &actor, &ns, &env, &key).await?,
    ))
}

async fn save_version(
    State(state): State<AppState>,
    actor: Actor,
    Path((ns, env, key)): Path<(String, String, String)>,
    ContentJson(body): ContentJson<NewVersion>,
) -> Result<impl IntoResponse> {
    let version = ops::configs::save_version(&state, &actor, &ns, &env, &key, body).await?;
    Ok((StatusCode::CREATED, Json(version)))
}

async fn get_version(
    State(state): State<AppState>,
    actor: Actor,
    Path((ns, env, key, n)): Path<(String, String, String, String)>,
) -> Result<impl IntoResponse> {
    let n: i64 = n
        .parse()
        .map_err(|_| Error::invalid("version", format!("{n:?} is not a version number.")))?;
    Ok(Json(
        ops::configs::version(&state, &actor, &ns, &env, &key, n).await?,
    ))
}

#[derive(Deserialize)]
struct DiffQuery {
    from: i64,
    to: i64,
}

async fn diff_versions(
    State(state): State<AppState>,
    actor: Actor,
    Path((ns, env, key)): Path<(String, String, String)>,
    QueryParams(query): QueryParams<DiffQuery>,
) -> Result<impl IntoResponse> {
    let diff = ops::configs::diff(&state, &actor, &ns, &env, &key, query.from, query.to).await?;
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
    Path((ns, env, key)): Path<(String, String, String)>,
    Json(body): Json<ReleaseBody>,
) -> Result<impl IntoResponse> {
    let event =
        ops::configs::release(&state, &actor, &ns, &env, &key, body.version, body.message).await?;
    Ok((StatusCode::CREATED, Json(event)))
}

async fn list_releases(
    State(state): State<AppState>,
    actor: Actor,
    Path((ns, env, key)): Path<(String, String, String)>,
) -> Result<impl IntoResponse> {
    Ok(Json(
        ops::configs::releases(&state, &actor, &ns, &env, &key).await?,
    ))
}

/// The config as this subscriber gets it, with a strong ETag (the quoted
/// checksum); a matching `If-None-Match` gets 304 without a body. The context
/// (`client_id`, `user_id`, `labels`) matters only once gray lanes exist.
async fn resolve(
    State(state): State<AppState>,
    actor: Actor,
    Path((ns, env, key)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<axum::response::Response> {
    let resolved = ops::configs::resolve(&state, &actor, &ns, &env, &key).await?;
    let etag = format!("\"{}\"", resolved.checksum);
    let etag_value = HeaderValue::from_str(&etag).map_err(Error::internal)?;
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        // If-None-Match compares weakly: `W/"x"` matches `"x"`.
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag);
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response());
    }
    Ok(([(header::ETAG, etag_value)], Json(resolved)).into_response())
}
