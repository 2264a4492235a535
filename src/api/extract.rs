//! The REST API's extractors: JSON bodies and query strings with errors in the API's shape
//! (`{"error": {"code", "message", "field"}}`), and the path of a lane.

use super::body::{self, JSON_BODY_LIMIT};
use super::nul;
use crate::model::{ConfigPath, LaneId};
use crate::server::AppState;
use crate::{Error, Result};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;

/// `axum::Json` with errors in the API's shape: 413 for a body over the
/// limit ([`JSON_BODY_LIMIT`]), 408 for one that does not arrive in time, 400 for a
/// string with a NUL character (see [`nul`]).
pub struct Json<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self> {
        let (parts, body) = request.into_parts();
        let bytes = body::read(body, JSON_BODY_LIMIT).await?;
        if nul::in_json(&bytes) {
            return Err(nul::refused_in_body());
        }
        let request = Request::from_parts(parts, axum::body::Body::from(bytes));
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(body::too_large(JSON_BODY_LIMIT))
            }
            Err(e) => Err(body::timed_out(&e).unwrap_or_else(|| e.into())),
        }
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// JSON bodies carrying config content: limited by [`body::content_limit`] instead of
/// axum's fixed default, so content a little over the limit reaches the operation and
/// gets its precise 413.
pub struct ContentJson<T>(pub T);

impl<T: serde::de::DeserializeOwned> FromRequest<AppState> for ContentJson<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &AppState) -> Result<Self> {
        let limit = body::content_limit(&state.config);
        let declared = request
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|len| len > limit) {
            return Err(body::too_large(limit));
        }
        let bytes = body::read(request.into_body(), limit).await?;
        if nul::in_json(&bytes) {
            return Err(nul::refused_in_body());
        }
        serde_json::from_slice(&bytes)
            .map(ContentJson)
            .map_err(Error::invalid_json)
    }
}

/// `axum::extract::Query` with errors in the API's shape.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Error))]
pub struct QueryParams<T>(pub T);

/// A lane's route: its config and its id (parsed by [`lane_id`], for the error).
#[derive(Deserialize)]
pub(crate) struct LanePath {
    #[serde(flatten)]
    pub(crate) config: ConfigPath,
    pub(crate) id: String,
}

pub(crate) fn lane_id(id: &str) -> Result<LaneId> {
    id.parse().map_err(|message| Error::invalid("id", message))
}

/// An optional JSON body, taken as bytes: no body (or only whitespace) counts as `{}`,
/// `T::default()`.
pub fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(Error::invalid_json)
}

/// The `message` of an optional `{message?}` body (deleting a config, promoting or
/// aborting a lane).
pub fn optional_message(body: &[u8]) -> Result<Option<String>> {
    #[derive(Default, Deserialize)]
    struct MessageBody {
        #[serde(default)]
        message: Option<String>,
    }
    optional_json::<MessageBody>(body).map(|b| b.message)
}
