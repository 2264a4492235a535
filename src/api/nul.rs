//! The NUL character (U+0000) is refused wherever a client sends text: PostgreSQL cannot
//! store it in a text column and SQLite's full-text index stops reading at it, so one
//! answer (400) on both engines beats a stored value one engine loses and the other fails
//! on with a 500.

use crate::Error;

/// The message for a NUL in `field`.
pub fn refused(field: &str) -> Error {
    Error::invalid(
        field,
        format!("{field} contains a NUL character (%00 or \\u0000); remove it."),
    )
}

/// The message for a NUL in a JSON body.
pub fn refused_in_body() -> Error {
    Error::new(
        crate::ErrorCode::Invalid,
        "The request body has a string with a NUL character (\\u0000); remove it.",
    )
}

/// Answers 400 to a request whose path or query decodes to a NUL, naming where.
pub async fn refuse_in_target(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let uri = request.uri();
    match in_target(uri.path(), uri.query()) {
        Some(field) => refused(&field).into_response(),
        None => next.run(request).await,
    }
}

/// Refuses a NUL in a server function's arguments (the dashboard's calls send them in the
/// body, url-encoded or as JSON) with the same 400 as everywhere else, in the server
/// function error shape the dashboard reads; and bounds that body like a REST body carrying
/// config content (413 above it). Other requests pass untouched.
pub async fn refuse_in_server_fn_body(
    axum::extract::State(state): axum::extract::State<crate::server::AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = request.uri().path().to_owned();
    if request.method() != axum::http::Method::POST || !is_server_fn(&path) {
        return next.run(request).await;
    }
    let form = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let (parts, body) = request.into_parts();
    let bytes = match super::body::read(body, super::body::content_limit(&state.config)).await {
        Ok(bytes) => bytes,
        Err(error) => return server_fn_error(&path, error),
    };
    let nul = if form {
        escapes_nul_bytes(&bytes)
    } else {
        in_json(&bytes)
    };
    if nul {
        return server_fn_error(&path, refused_in_body());
    }
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}

/// Whether `path` is one of the dashboard's server functions.
fn is_server_fn(path: &str) -> bool {
    static PATHS: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    PATHS
        .get_or_init(|| {
            leptos::server_fn::axum::server_fn_paths()
                .map(|(p, _)| p)
                .collect()
        })
        .contains(path)
}

/// `error` as a server function answers it: its status, the error header, the error as JSON.
fn server_fn_error(path: &str, error: Error) -> axum::response::Response {
    use leptos::server_fn::error::{FromServerFnError, SERVER_FN_ERROR_HEADER};
    let status = axum::http::StatusCode::from_u16(error.status)
        .unwrap_or(axum::http::StatusCode::BAD_REQUEST);
    axum::response::Response::builder()
        .status(status)
        .header(SERVER_FN_ERROR_HEADER, path)
        .header(axum::http::header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(error.ser()))
        .expect("a valid response")
}

/// The first place in a request target (path and query, as sent) that decodes to a NUL:
/// `path`, or the name of the query parameter.
pub fn in_target(path: &str, query: Option<&str>) -> Option<String> {
    if escapes_nul(path) {
        return Some("path".into());
    }
    query?.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (escapes_nul(name) || escapes_nul(value)).then(|| {
            if name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') && !name.is_empty() {
                name.to_string()
            } else {
                "query".to_string()
            }
        })
    })
}

/// Whether percent-decoding `text` gives a NUL (`%00`; a raw NUL is no valid URI).
fn escapes_nul(text: &str) -> bool {
    escapes_nul_bytes(text.as_bytes())
}

fn escapes_nul_bytes(bytes: &[u8]) -> bool {
    bytes.contains(&0) || bytes.windows(3).any(|w| w == b"%00")
}

/// Whether a JSON document has a NUL in a string (or a key): JSON writes one only as the
/// escape `\u0000` (a raw control character is invalid JSON, refused by the parser).
pub fn in_json(bytes: &[u8]) -> bool {
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => in_string = !in_string,
            b'\\' if in_string => {
                if bytes[i + 1..].starts_with(b"u0000") {
                    return true;
                }
                // The escaped character, whatever it is, is skipped.
                i += 1;
            }
            0 => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::{in_json, in_target};

    #[test]
    fn json_escapes_of_nul_are_found_and_escaped_backslashes_are_not() {
        assert!(in_json(br#"{"a":"x\u0000y"}"#));
        assert!(in_json(br#"{"a\u0000":1}"#));
        assert!(in_json(br#"["\\\u0000"]"#));
        assert!(!in_json(br#"{"a":"x\\u0000y"}"#));
        assert!(!in_json(br#"{"a":"\"\\","b":"u0000"}"#));
        assert!(in_json(br#"{"a":"\u00001"}"#));
        assert!(!in_json(br#"{"a":"\u0001"}"#));
        assert!(!in_json(b""));
        assert!(!in_json(br#""\"#));
    }

    #[test]
    fn targets_name_the_parameter_that_holds_a_nul() {
        assert_eq!(in_target("/api/v1/x%00", None).as_deref(), Some("path"));
        assert_eq!(
            in_target("/api/v1/audit", Some("actor=a&q=b%00c")).as_deref(),
            Some("q")
        );
        assert_eq!(
            in_target("/x", Some("we%00ird=1")).as_deref(),
            Some("query")
        );
        assert_eq!(in_target("/x", Some("q=%2500")), None);
        assert_eq!(in_target("/x%2500", Some("a=b")), None);
        assert_eq!(in_target("/x", None), None);
    }
}
