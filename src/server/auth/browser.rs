//! Browser rules: hardening headers, and the same-origin rule for
//! cookie-authenticated mutations.

use crate::server::SESSION_COOKIE;
use crate::Error;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// What the dashboard's pages need and nothing more (see docs/api.md): the
/// hydration script and the resources streamed with a page are inline
/// scripts, the front end is WebAssembly, the live pages use EventSource.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

/// Browser hardening headers (lowercase name, value), in the order every response carries them.
pub const SECURITY_HEADERS: [(&str, &str); 3] = [
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
];

/// Browser hardening headers on every response ([`SECURITY_HEADERS`]).
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers
            .entry(HeaderName::from_static(name))
            .or_insert(HeaderValue::from_static(value));
    }
    response
}

/// Refuses state-changing requests that a browser sent from another origin.
/// Only a request with an `Authorization` header and no session cookie passes
/// unchecked: whatever else it carries, a request with the cookie may be
/// authenticated by it (server functions know no other credential).
pub async fn same_origin(request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let not_by_cookie = request.headers().contains_key(header::AUTHORIZATION)
        && !has_session_cookie(request.headers());
    if safe || not_by_cookie {
        return next.run(request).await;
    }
    let headers = request.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            headers
                .get(header::REFERER)
                .and_then(|r| r.to_str().ok())
                .and_then(origin_of_url)
        });
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site");
    let allowed = match (&origin, host) {
        _ if cross_site => false,
        (Some(origin), Some(host)) => origin_host(origin) == Some(host),
        (Some(_), None) => false,
        // No Origin at all: not a browser (browsers send it on every POST).
        (None, _) => true,
    };
    if allowed {
        next.run(request).await
    } else {
        Error::forbidden("Cross-origin request refused: this server accepts cookie-authenticated changes only from its own pages.")
            .into_response()
    }
}

/// Whether any `Cookie` header names the session cookie.
fn has_session_cookie(headers: &HeaderMap) -> bool {
    headers.get_all(header::COOKIE).iter().any(|value| {
        value.as_bytes().split(|b| *b == b';').any(|pair| {
            let name = pair.split(|b| *b == b'=').next().unwrap_or_default();
            name.trim_ascii() == SESSION_COOKIE.as_bytes()
        })
    })
}

/// `http://host:port/path` → `http://host:port`.
fn origin_of_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next()?;
    Some(format!("{scheme}://{host}"))
}

fn origin_host(origin: &str) -> Option<&str> {
    let (_, host) = origin.split_once("://")?;
    Some(host.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        assert!(!has_session_cookie(&headers));
        headers.insert(header::COOKIE, "x=1; graycast_session_x=2".parse().unwrap());
        assert!(!has_session_cookie(&headers));
        headers.append(
            header::COOKIE,
            "x=1;  graycast_session=abc".parse().unwrap(),
        );
        assert!(has_session_cookie(&headers));
    }

    // The gate is held across awaits on purpose: the checks block on it in
    // their blocking threads until the test opens it.

    #[test]
    fn origin_parsing() {
        assert_eq!(
            origin_of_url("http://127.0.0.1:8080/login?x").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin_host("http://127.0.0.1:8080"), Some("127.0.0.1:8080"));
        assert_eq!(origin_host("null"), None);
    }
}
