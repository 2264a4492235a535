//! Request tracing: every request gets a request id (`x-request-id`, kept when
//! the caller sends one) and a W3C trace id (from a valid `traceparent`, else
//! new), both in its span and in its response; the audit entries it writes
//! keep the trace id (see `db::audit::NewEntry`).

use crate::server::db::audit;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use tracing::field::Empty;
use tracing::Span;

pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps every route (and the fallback) of `router`: request id, the request
/// span, the trace context, and the request id echoed in the response.
pub fn traced(router: Router) -> Router {
    router.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, RandomRequestId))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(request_span)
                    .on_request(())
                    .on_response(finished)
                    // An internal error is logged once, by the error itself.
                    .on_failure(()),
            )
            .layer(middleware::from_fn(trace_context)),
    )
}

/// A request id: 128 random bits in hex, from the thread's generator (a UUID
/// from the operating system would cost a system call on every request).
#[derive(Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&new_request_id())
            .ok()
            .map(RequestId::new)
    }
}

/// A new request id: what a request without `x-request-id` is given.
pub fn new_request_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn request_span(request: &Request) -> Span {
    // The matched route template, not the raw path: one name per route.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        route = %route,
        request_id = %request_id,
        trace_id = Empty,
        status = Empty,
        latency_ms = Empty,
    )
}

/// Records the outcome in the span; the access line itself is a debug event
/// (`RUST_LOG=graycast::server::trace=debug`), so busy fleets stay quiet.
fn finished<B>(response: &axum::http::Response<B>, latency: Duration, span: &Span) {
    span.record("status", response.status().as_u16());
    span.record("latency_ms", latency.as_millis() as u64);
    tracing::debug!("answered");
}

/// Takes the caller's trace id or starts a trace, runs the request with it
/// (audit entries read it), and answers `traceparent` with the server's span.
async fn trace_context(request: Request, next: Next) -> Response {
    let values = request.headers().get_all(&TRACEPARENT);
    let (trace_id, flags) = trace_of(values.iter().map(HeaderValue::as_bytes));
    Span::current().record("trace_id", tracing::field::display(&trace_id));
    let header = traceparent(&trace_id, flags);
    let mut response = audit::with_trace_id(trace_id, next.run(request)).await;
    if let Ok(value) = HeaderValue::from_str(&header) {
        response.headers_mut().insert(TRACEPARENT, value);
    }
    response
}

/// The trace id and flags a request continues, given its `traceparent`
/// values: the caller's when it sent exactly one valid header, else a new,
/// sampled trace (the audit trail records it).
pub fn trace_of<'a>(mut values: impl Iterator<Item = &'a [u8]>) -> (String, u8) {
    // Several `traceparent` headers are as unusable as a malformed one.
    let incoming = match (values.next(), values.next()) {
        (Some(value), None) => std::str::from_utf8(value).ok().and_then(parse_traceparent),
        _ => None,
    };
    incoming.unwrap_or_else(|| (hex::encode(rand::random::<[u8; 16]>()), 0x01))
}

/// The `traceparent` the server answers with: the trace, and a new span id for its part.
pub fn traceparent(trace_id: &str, flags: u8) -> String {
    let span_id = hex::encode(rand::random::<[u8; 8]>());
    format!("00-{trace_id}-{span_id}-{flags:02x}")
}

/// What the request span and [`finished`] record, for a request answered
/// outside the router (src/server/fast.rs): the same span and debug line, made
/// only when that line would be written.
pub fn answered_outside(
    method: &str,
    route: &str,
    request_id: &str,
    trace_id: &str,
    status: u16,
    latency: Duration,
) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let span = tracing::info_span!(
        "request",
        method = %method,
        route = %route,
        request_id = %request_id,
        trace_id = %trace_id,
        status = status,
        latency_ms = latency.as_millis() as u64,
    );
    span.in_scope(|| tracing::debug!("answered"));
}

/// The trace id and trace flags of a valid W3C `traceparent`
/// (`00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, lowercase, ids
/// not all zeros); a later version may append fields after a `-`.
fn parse_traceparent(value: &str) -> Option<(String, u8)> {
    let b = value.as_bytes();
    if !value.is_ascii() || b.len() < 55 || [b[2], b[35], b[52]] != [b'-'; 3] {
        return None;
    }
    let (version, trace_id, parent_id, flags) =
        (&value[..2], &value[3..35], &value[36..52], &value[53..55]);
    let lower_hex = |s: &str| s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    let zeros = |s: &str| s.bytes().all(|c| c == b'0');
    let length = match version {
        "00" => b.len() == 55,
        _ => b.len() == 55 || b[55] == b'-',
    };
    let valid = length
        && version != "ff"
        && [version, trace_id, parent_id, flags]
            .into_iter()
            .all(lower_hex)
        && !zeros(trace_id)
        && !zeros(parent_id);
    // Only the sampled bit is defined for version 00, which the answer uses.
    let flags = u8::from_str_radix(flags, 16).ok()? & 0x01;
    valid.then(|| (trace_id.to_string(), flags))
}
