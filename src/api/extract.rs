//! The REST API's extractors: JSON bodies and query strings with errors in the API's shape
//! (`{"error": {"code", "message", "field"}}`), optional bodies, and the path of a lane.

use super::body::{self, JSON_BODY_LIMIT};
use super::nul;
use crate::model::{ConfigPath, LaneId};
use crate::server::AppState;
use crate::{Error, Result};
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
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

/// A lane's route, `{CONFIGS}/{key}/lanes/{id}/…`: its config and its id. Handlers take it
/// as it is (not as `Path<LanePath>`): an id that is not a lane id then answers like any
/// invalid field, 400 on `id` with [`LaneId`]'s sentence, instead of axum's plain text.
#[derive(Deserialize)]
pub struct LanePath {
    #[serde(flatten)]
    pub config: ConfigPath,
    #[serde(deserialize_with = "lane_id")]
    pub id: LaneId,
}

impl<S: Send + Sync> FromRequestParts<S> for LanePath {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match Path::<Self>::from_request_parts(parts, state).await {
            Ok(Path(path)) => Ok(path),
            Err(PathRejection::FailedToDeserializePathParams(e)) => match e.kind() {
                ErrorKind::DeserializeError { key, message, .. } if key == "id" => {
                    Err(Error::invalid("id", message.as_str()).into_response())
                }
                _ => Err(e.into_response()),
            },
            // Nothing the client sent: axum's own answer (a 500).
            Err(other) => Err(other.into_response()),
        }
    }
}

/// A lane id from the path's text. The error comes from within the visitor, so axum
/// reports it with its key (`id`).
fn lane_id<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<LaneId, D::Error> {
    struct Id;
    impl serde::de::Visitor<'_> for Id {
        type Value = LaneId;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a lane id")
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<LaneId, E> {
            text.parse().map_err(E::custom)
        }
    }
    deserializer.deserialize_str(Id)
}

/// An optional JSON body, taken as bytes: no body (or only whitespace) counts as `{}`,
/// `T::default()`.
pub fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(Error::invalid_json)
}

/// Splits what governs a widening action (`apply_at`, `override`) off its JSON body and reads
/// the rest as the action's own body (docs/api.md, "Change requests, schedules and overrides").
pub fn governed<T: serde::de::DeserializeOwned>(
    mut body: serde_json::Value,
) -> Result<(T, crate::model::Governed)> {
    let mut governed = crate::model::Governed::default();
    if let Some(object) = body.as_object_mut() {
        if let Some(value) = object.remove("apply_at").filter(|v| !v.is_null()) {
            governed.apply_at = Some(serde_json::from_value(value).map_err(|e| {
                Error::invalid(
                    "apply_at",
                    format!("apply_at is not an RFC 3339 time (2026-12-24T18:00:00Z): {e}"),
                )
            })?);
        }
        if let Some(value) = object.remove("override").filter(|v| !v.is_null()) {
            governed.break_glass = Some(serde_json::from_value(value).map_err(|e| {
                Error::invalid(
                    "override",
                    format!("override is {{\"reason\": \"…\"}}: {e}"),
                )
            })?);
        }
    }
    let body = serde_json::from_value(body).map_err(Error::invalid_json)?;
    Ok((body, governed))
}

/// Like [`governed`], for an optional body (promoting a lane).
pub fn optional_governed<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
) -> Result<(T, crate::model::Governed)> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Default::default());
    }
    governed(serde_json::from_slice(body).map_err(Error::invalid_json)?)
}

/// What a governed action answers: `done` with `status`, or 202 with the scheduled change
/// request.
pub fn outcome<T: serde::Serialize>(
    outcome: crate::server::ops::governance::Outcome<T>,
    status: axum::http::StatusCode,
) -> axum::response::Response {
    use crate::server::ops::governance::Outcome;
    use axum::response::IntoResponse;
    match outcome {
        Outcome::Done(t) => (status, Json(t)).into_response(),
        Outcome::Scheduled(request) => {
            (axum::http::StatusCode::ACCEPTED, Json(request)).into_response()
        }
    }
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
