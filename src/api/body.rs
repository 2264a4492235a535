//! Reading a request body whole: how large it may be, and the answers when it is too large
//! (413) or does not arrive in time (408).

use crate::server::limits::BodyTimeout;
use crate::server::ServeConfig;
use crate::{Error, ErrorCode, Result};
use axum::body::{Body, Bytes};

/// Largest JSON body of a route without config content (axum's default).
pub const JSON_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// Largest body that carries config content: `max_content_bytes` with room for its encoding
/// (a JSON escape takes at most six bytes for one content byte, `\u0000`; a url-encoded byte three),
/// so content a little over the limit reaches the operation and gets its precise 413.
pub fn content_limit(config: &ServeConfig) -> usize {
    config
        .max_content_bytes
        .saturating_mul(6)
        .saturating_add(64 * 1024)
}

/// The whole `body`, at most `limit` bytes. The failures: the body timeout, a body over
/// `limit`, and a broken connection, whose client hears nothing anyway.
pub async fn read(body: Body, limit: usize) -> Result<Bytes> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|e| timed_out(&e).unwrap_or_else(|| too_large(limit)))
}

/// The 413 of a body over `limit` bytes.
pub fn too_large(limit: usize) -> Error {
    Error::too_large(format!("The request body is larger than {limit} bytes."))
}

/// The 408 when `error` (a body that could not be read) is the body timeout.
pub fn timed_out(error: &(dyn std::error::Error + 'static)) -> Option<Error> {
    BodyTimeout::behind(error).map(|t| {
        Error::new(
            ErrorCode::RequestTimeout,
            format!("{t}; send the whole body at once."),
        )
    })
}
