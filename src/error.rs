//! The one error type of the whole server, shared with the dashboard so server
//! functions carry the same `code`, `message` and `field` as the REST API.

use serde::{Deserialize, Serialize};
use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error a caller can act on. Internal failures reach the caller only as an
/// opaque `internal` error; their cause stays on the server and is logged once,
/// where the error becomes a response (`into_response`, or the serialization of
/// a server function's error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Error {
    pub status: u16,
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `approval_required` and `stale`: the change request the refused action concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_request: Option<i64>,
    /// For a 429: seconds until a retry can succeed (the `Retry-After` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u32>,
    /// For `frozen`: when the freeze ends (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<crate::domain::time::Timestamp>,
    /// An internal error's cause with its chain, for the log; never sent.
    /// A server function's error (answered over HTTP, or rendered into a page)
    /// becomes a response by being serialized, so that is where it is logged.
    #[serde(skip_deserializing, skip_serializing_if = "log_cause")]
    cause: Option<String>,
}

/// What went wrong, in one word a program can match on (the `code` of every
/// error body); each has its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Invalid,
    InvalidContent,
    Unauthorized,
    InvalidCredentials,
    Forbidden,
    NotFound,
    RequestTimeout,
    Conflict,
    /// A widening action in a protected environment: it became a change request (409).
    ApprovalRequired,
    /// A change request's stable release, lanes or version changed since it was made (409).
    Stale,
    /// A widening action during a freeze window of its environment.
    Frozen,
    TooLarge,
    Unprocessable,
    TooManyRequests,
    Internal,
    Busy,
    /// The database cannot be reached (it stopped, or the network to it is down).
    Unavailable,
    /// The dashboard could not reach the server (never sent by the server).
    Network,
    /// A code this build does not know (a newer server's).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Invalid => "invalid",
            Self::InvalidContent => "invalid_content",
            Self::Unauthorized => "unauthorized",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::RequestTimeout => "request_timeout",
            Self::Conflict => "conflict",
            Self::ApprovalRequired => "approval_required",
            Self::Stale => "stale",
            Self::Frozen => "frozen",
            Self::TooLarge => "too_large",
            Self::Unprocessable => "unprocessable",
            Self::TooManyRequests => "too_many_requests",
            Self::Internal => "internal",
            Self::Busy => "busy",
            Self::Unavailable => "unavailable",
            Self::Network => "network",
            Self::Unknown => "unknown",
        }
    }

    /// The HTTP status an error with this code is answered with.
    pub fn status(self) -> u16 {
        match self {
            Self::BadRequest | Self::Invalid => 400,
            Self::Unauthorized | Self::InvalidCredentials => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::RequestTimeout => 408,
            Self::Conflict | Self::ApprovalRequired | Self::Stale | Self::Frozen => 409,
            Self::TooLarge => 413,
            Self::InvalidContent | Self::Unprocessable => 422,
            Self::TooManyRequests => 429,
            Self::Internal | Self::Unknown => 500,
            Self::Busy | Self::Unavailable => 503,
            Self::Network => 0,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Logs an internal error's cause and always skips it (see `Error`'s `cause`).
fn log_cause(cause: &Option<String>) -> bool {
    #[cfg(feature = "ssr")]
    if let Some(cause) = cause {
        tracing::error!(error = %cause, "internal error");
    }
    #[cfg(not(feature = "ssr"))]
    let _ = cause;
    true
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status: code.status(),
            code,
            message: message.into(),
            field: None,
            change_request: None,
            retry_after: None,
            until: None,
            cause: None,
        }
    }

    /// Names the request field the error is about.
    pub fn on_field(mut self, field: &str) -> Self {
        self.field = Some(field.to_string());
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Invalid, message).on_field(field)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            ErrorCode::Unauthorized,
            "Sign in or send a valid API token (Authorization: Bearer …).",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    /// 409 `approval_required`: the action became change request `id`.
    pub fn approval_required(id: i64, message: impl Into<String>) -> Self {
        let mut error = Self::new(ErrorCode::ApprovalRequired, message);
        error.change_request = Some(id);
        error
    }

    /// 409 `stale`: change request `id` is no longer what was approved.
    pub fn stale(id: i64, message: impl Into<String>) -> Self {
        let mut error = Self::new(ErrorCode::Stale, message);
        error.change_request = Some(id);
        error
    }

    /// 409 `frozen`: a freeze window holds until `until` (sent as the body's `until`).
    pub fn frozen(message: impl Into<String>, until: crate::domain::time::Timestamp) -> Self {
        let mut error = Self::new(ErrorCode::Frozen, message);
        error.until = Some(until);
        error
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::TooLarge, message)
    }

    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unprocessable, message)
    }

    pub fn too_many_requests(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::TooManyRequests, message)
    }

    /// A 429 that tells when to come back (at least one second).
    pub fn retry_in(message: impl Into<String>, wait: std::time::Duration) -> Self {
        let mut error = Self::too_many_requests(message);
        error.retry_after = Some(wait.as_secs_f64().ceil().clamp(1.0, f64::from(u32::MAX)) as u32);
        error
    }

    /// A 503: the database cannot be reached now; the cause goes to the log.
    pub fn unavailable(cause: impl fmt::Display) -> Self {
        let mut error = Self::new(
            ErrorCode::Unavailable,
            "The database cannot be reached right now; nothing was changed. Try again shortly.",
        );
        error.cause = Some(format!("{cause:#}"));
        error.retry_after = Some(5);
        error
    }

    /// An opaque error for the caller that keeps the real cause (with its
    /// chain, `{:#}`) for the log.
    pub fn internal(cause: impl fmt::Display) -> Self {
        let mut error = Self::new(
            ErrorCode::Internal,
            "Something went wrong on the server; it has been logged.",
        );
        error.cause = Some(format!("{cause:#}"));
        error
    }

    /// What the server logs or a command prints: an internal error's cause,
    /// else the message.
    pub fn detail(&self) -> &str {
        self.cause.as_deref().unwrap_or(&self.message)
    }
}

pub use crate::domain::quote::{quoted, QUOTE_CHARS};

/// How much of a JSON or query-string parser's message an error passes on (see [`elided`]).
#[cfg(feature = "ssr")]
const REJECTION_CHARS: usize = 300;

/// A message written by a library that may repeat the input (a JSON or query-string parser's),
/// cut to `max` characters by taking out its middle: the start says what failed, the end
/// usually where.
pub fn elided(message: &str, max: usize) -> String {
    let count = message.chars().count();
    if count <= max {
        return message.to_string();
    }
    let keep = max.saturating_sub(1) / 2;
    let head: String = message.chars().take(keep).collect();
    let tail: String = message.chars().skip(count - keep).collect();
    format!("{head}…{tail}")
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl leptos::server_fn::error::FromServerFnError for Error {
    type Encoder = leptos::server_fn::codec::JsonEncoding;

    fn from_server_fn_error(value: leptos::server_fn::error::ServerFnErrorErr) -> Self {
        use leptos::server_fn::error::ServerFnErrorErr as E;
        match value {
            E::Request(m) => Self::new(
                ErrorCode::Network,
                format!("Could not reach the server: {m}"),
            ),
            E::Args(m) | E::MissingArg(m) | E::Deserialization(m) | E::Serialization(m) => {
                Self::bad_request(m)
            }
            other => Self::internal(other),
        }
    }
}

#[cfg(feature = "ssr")]
impl Error {
    /// For start-up and the CLI, where no response logs the error: a process
    /// error that says what failed (an internal error's cause, else the message).
    pub fn into_process(self) -> anyhow::Error {
        anyhow::Error::msg(self.detail().to_string())
    }
}

#[cfg(feature = "ssr")]
mod server_impls {
    use super::Error;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};

    impl IntoResponse for Error {
        fn into_response(self) -> Response {
            // The one place a REST error is logged (inside the request's span).
            super::log_cause(&self.cause);
            let status =
                StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut error = serde_json::json!({
                "code": self.code, "message": self.message, "field": self.field
            });
            if let Some(id) = self.change_request {
                error["change_request"] = id.into();
            }
            if let Some(until) = self.until {
                error["until"] = serde_json::Value::from(until.to_string());
            }
            let body = serde_json::json!({ "error": error });
            let mut response = (status, axum::Json(body)).into_response();
            if status == StatusCode::TOO_MANY_REQUESTS || self.retry_after.is_some() {
                response.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from(self.retry_after.unwrap_or(60)),
                );
            }
            response
        }
    }

    impl Error {
        /// 400 for a request body the route cannot read; the parser's message may quote the
        /// body, so it is cut (see [`super::elided`]).
        pub fn invalid_json(e: impl std::fmt::Display) -> Self {
            Error::bad_request(format!(
                "The request body is not valid JSON for this route: {}",
                super::elided(&e.to_string(), super::REJECTION_CHARS)
            ))
        }
    }

    impl From<axum::extract::rejection::JsonRejection> for Error {
        fn from(e: axum::extract::rejection::JsonRejection) -> Self {
            Error::invalid_json(e.body_text())
        }
    }

    impl From<axum::extract::rejection::QueryRejection> for Error {
        fn from(e: axum::extract::rejection::QueryRejection) -> Self {
            Error::bad_request(format!(
                "Invalid query string: {}",
                super::elided(&e.body_text(), super::REJECTION_CHARS)
            ))
        }
    }
}
