//! OpenFeature Remote Evaluation Protocol (docs/ofrep.md):
//! any OpenFeature SDK's OFREP provider reads graycast. Flag key = config key;
//! answered from memory like `resolve`, with OFREP's bodies and error codes.

use super::headers::{if_none_match, origin, Headers};
use crate::domain::format::{ValueError, MAX_VALUE_BYTES};
use crate::domain::percent_encode;
use crate::domain::Context;
use crate::model::Role;
use crate::server::auth::Actor;
use crate::server::hub::{ConfigState, Reason};
use crate::server::AppState;
use crate::Error;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;

/// Largest request body.
pub const BODY_LIMIT: usize = 64 * 1024;
/// Most context attributes, and the longest name and value (in bytes).
pub const MAX_ATTRIBUTES: usize = 64;
pub const MAX_NAME_LEN: usize = 128;
pub const MAX_VALUE_LEN: usize = 1024;
/// Most bytes the values of one bulk answer take together: as much as one
/// value may ([`MAX_VALUE_BYTES`]), so any one flag fits. Flags past it
/// answer an error that says to evaluate them alone.
pub const MAX_BULK_VALUE_BYTES: usize = MAX_VALUE_BYTES;

/// The two routes, as the router and the request metrics name them.
pub(crate) const BULK_ROUTE: &str = "/ofrep/v1/evaluate/flags";
pub(crate) const SINGLE_ROUTE: &str = "/ofrep/v1/evaluate/flags/{key}";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(BULK_ROUTE, post(bulk))
        .route(SINGLE_ROUTE, post(single))
}

/// An OFREP failure: its status, `errorCode` and `errorDetails`.
#[derive(Debug)]
pub(crate) struct Failure {
    status: StatusCode,
    code: &'static str,
    details: String,
}

impl Failure {
    fn new(status: StatusCode, code: &'static str, details: impl Into<String>) -> Self {
        Self {
            status,
            code,
            details: details.into(),
        }
    }

    fn parse(details: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "PARSE_ERROR", details)
    }

    fn context(details: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_CONTEXT", details)
    }

    /// The body: with `key` for a single flag, without for bulk.
    fn into_response(self, key: Option<&str>) -> Response {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Body<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            key: Option<&'a str>,
            error_code: &'a str,
            error_details: &'a str,
        }
        let body = Body {
            key,
            error_code: self.code,
            error_details: &self.details,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(60));
        }
        response
    }
}

/// API errors (authentication, limits, internal) keep their status; the
/// body takes OFREP's shape with code `GENERAL`.
impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let status =
            StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(error = %error.detail(), "internal error");
        }
        Self::new(status, "GENERAL", error.message)
    }
}

/// The namespace and environment asked about: `X-Graycast-Namespace` and
/// `X-Graycast-Env` when sent (within the token's limits, else 403), else the
/// token's own limits; neither: 400.
pub(crate) fn scope(
    actor: &Actor,
    headers: &(impl Headers + ?Sized),
) -> Result<(String, String), Failure> {
    let header = |name: &str| -> Result<Option<String>, Failure> {
        headers
            .text(name)
            .map(|v| {
                v.map(|s| s.trim().to_string()).map_err(|()| {
                    Failure::parse(format!("The {name} header is not visible ASCII."))
                })
            })
            .transpose()
            .map(|v| v.filter(|s| !s.is_empty()))
    };
    let namespace = header("x-graycast-namespace")?.or_else(|| actor.namespace.clone());
    let env = header("x-graycast-env")?.or_else(|| actor.env.clone());
    let (Some(namespace), Some(env)) = (namespace, env) else {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "GENERAL",
            "Name the namespace and environment: send the X-Graycast-Namespace and \
             X-Graycast-Env headers, or use a token limited to one namespace and environment.",
        ));
    };
    actor.require(Role::Subscriber, crate::model::Scope::of(&namespace, &env))?;
    Ok((namespace, env))
}

/// Reads the body (at most [`BODY_LIMIT`]).
async fn body(request: Request) -> Result<Bytes, Failure> {
    axum::body::to_bytes(request.into_body(), BODY_LIMIT)
        .await
        .map_err(|e| match super::body::timed_out(&e) {
            Some(timeout) => Failure::from(timeout),
            None if over_limit(&e) => Failure::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "GENERAL",
                format!("The request body is larger than {BODY_LIMIT} bytes."),
            ),
            None => Failure::parse(format!("Could not read the request body: {e}")),
        })
}

/// Maps the body's `context`: `targetingKey` → `client_id`; strings as they
/// are, numbers and booleans as their text; `null`, objects and arrays are
/// skipped (a selector compares text, so they could never match). The
/// `targetingKey` itself must be a string or a number (OFREP says string).
pub(crate) fn context(bytes: &[u8]) -> Result<Context, Failure> {
    let body: Value = serde_json::from_slice(bytes)
        .map_err(|e| Failure::parse(format!("The body is not JSON: {e}.")))?;
    let Some(context) = body.get("context") else {
        return Err(Failure::parse(
            r#"The body has no "context"; send {"context": {"targetingKey": "…"}}."#,
        ));
    };
    map_context(context)
}

/// Whether reading a body failed on its length limit.
fn over_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

fn map_context(context: &Value) -> Result<Context, Failure> {
    let Value::Object(attributes) = context else {
        return Err(Failure::context("The context is not a JSON object."));
    };
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(Failure::context(format!(
            "The context has {} attributes; at most {MAX_ATTRIBUTES} are allowed.",
            attributes.len()
        )));
    }
    let mut ctx = Context::new();
    let mut targeting_key = None;
    for (name, value) in attributes {
        if name.len() > MAX_NAME_LEN {
            return Err(Failure::context(format!(
                "A context attribute name is longer than {MAX_NAME_LEN} bytes."
            )));
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ if name == "targetingKey" => {
                return Err(Failure::context(format!(
                    "targetingKey is {}; it must be a string (or a number): the instance's or \
                     user's id.",
                    json_kind(value)
                )))
            }
            Value::Bool(b) => b.to_string(),
            Value::Null | Value::Object(_) | Value::Array(_) => continue,
        };
        if text.len() > MAX_VALUE_LEN {
            return Err(Failure::context(format!(
                "The context attribute {name} is longer than {MAX_VALUE_LEN} bytes."
            )));
        }
        if name == "targetingKey" {
            targeting_key = Some(text);
        } else {
            ctx.insert(name.clone(), text);
        }
    }
    match targeting_key.filter(|k| !k.is_empty()) {
        Some(key) => {
            ctx.insert("client_id".into(), key);
            Ok(ctx)
        }
        None => Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "TARGETING_KEY_MISSING",
            "The context has no targetingKey; set it to the instance's or user's id \
             (it becomes the client_id).",
        )),
    }
}

/// `a boolean`, `an object`, … for an error message.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One flag's evaluation (`value` absent when nothing resolves: the code
/// default applies).
#[derive(Serialize)]
struct Evaluated<'a> {
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a RawValue>,
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
    metadata: Metadata<'a>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lane: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checksum: Option<&'a str>,
    release_seq: i64,
}

/// A flag whose value cannot be served: a stored version its parser no
/// longer reads (a server fault), a value past [`MAX_VALUE_BYTES`], or one
/// past what is left of [`MAX_BULK_VALUE_BYTES`]; told per flag.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FlagError<'a> {
    key: &'a str,
    error_code: &'static str,
    error_details: String,
}

/// Nothing resolves: no value (the code default applies), `DEFAULT`.
fn unresolved(key: &str, release_seq: i64) -> Evaluated<'_> {
    Evaluated {
        key,
        value: None,
        reason: Reason::Default.as_str(),
        variant: None,
        metadata: Metadata {
            version: None,
            lane: None,
            checksum: None,
            release_seq,
        },
    }
}

/// One flag of a bulk answer.
#[derive(Serialize)]
#[serde(untagged)]
enum Flag<'a> {
    Evaluated(Evaluated<'a>),
    Error(FlagError<'a>),
}

fn evaluate<'a>(
    config: &'a ConfigState,
    ctx: &Context,
    release_seq: i64,
) -> Result<Evaluated<'a>, FlagError<'a>> {
    let key = config.key();
    let Some(evaluation) = config.evaluate(ctx) else {
        return Ok(unresolved(key, release_seq));
    };
    let served = evaluation.served;
    let version = served.version;
    let value = served.value(config.format()).map_err(|error| FlagError {
        key,
        error_code: "GENERAL",
        error_details: match error {
            ValueError::Unparsable(why) => format!("Version {version} does not parse: {why}"),
            ValueError::TooLarge => format!(
                "Version {version} is larger than {} MiB as a JSON value, more than an \
                     OFREP answer carries; read its content with GET …/configs/{key}/resolve, \
                     or make it smaller.",
                MAX_VALUE_BYTES / (1024 * 1024)
            ),
        },
    })?;
    Ok(Evaluated {
        key,
        value: Some(value),
        reason: evaluation.reason.as_str(),
        variant: Some(format!("v{}", served.version)),
        metadata: Metadata {
            version: Some(served.version),
            lane: evaluation.lane,
            checksum: Some(&served.checksum),
            release_seq,
        },
    })
}

fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => json_bytes(status, bytes),
        Err(e) => Failure::from(Error::internal(e)).into_response(None),
    }
}

fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

/// `POST /ofrep/v1/evaluate/flags/{key}`.
async fn single(
    State(state): State<AppState>,
    actor: Result<Actor, Error>,
    Path(key): Path<String>,
    request: Request,
) -> Response {
    match evaluate_single(&state, actor, &key, request).await {
        Ok(response) => response,
        Err(failure) => failure.into_response(Some(&key)),
    }
}

async fn evaluate_single(
    state: &AppState,
    actor: Result<Actor, Error>,
    key: &str,
    request: Request,
) -> Result<Response, Failure> {
    let actor = actor?;
    let (namespace, env) = scope(&actor, request.headers())?;
    let ctx = context(&body(request).await?)?;
    let release_seq = state.hub.catalog().fresh().await?;
    match single_held(state, &namespace, &env, key, &ctx, release_seq) {
        Some(Ok(answer)) => return Ok(json_bytes(answer.status, answer.body)),
        Some(Err(e)) => return Ok(Failure::from(Error::internal(e)).into_response(None)),
        None => {}
    }
    // Not held: nothing was ever released or laned, or it does not exist.
    let mut conn = state.db.acquire().await.map_err(Error::from)?;
    let path = crate::model::ConfigPath::new(&namespace, &env, key);
    if crate::server::db::configs::find(&mut *conn, &path)
        .await
        .map_err(Error::from)?
        .is_some()
    {
        return Ok(json_response(StatusCode::OK, &unresolved(key, release_seq)));
    }
    Err(Failure::new(
        StatusCode::NOT_FOUND,
        "FLAG_NOT_FOUND",
        format!("There is no config {key} in {namespace}/{env}."),
    ))
}

/// A serialized JSON answer.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

/// One flag's answer from the catalog at `release_seq`; `None` when the
/// config is not held.
pub(crate) fn single_held(
    state: &AppState,
    namespace: &str,
    env: &str,
    key: &str,
    ctx: &Context,
    release_seq: i64,
) -> Option<serde_json::Result<Answer>> {
    let config = state.hub.catalog().config(namespace, env, key)?;
    let (status, body) = match evaluate(&config, ctx, release_seq) {
        Ok(evaluated) => (StatusCode::OK, serde_json::to_vec(&evaluated)),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::to_vec(&error),
        ),
    };
    Some(body.map(|body| Answer { status, body }))
}

/// `POST /ofrep/v1/evaluate/flags`: every config of the namespace and
/// environment, with an ETag of the release sequence, the scope and the
/// canonical context; a matching `If-None-Match` gets 304.
async fn bulk(
    State(state): State<AppState>,
    actor: Result<Actor, Error>,
    request: Request,
) -> Response {
    match evaluate_bulk(&state, actor, request).await {
        Ok(response) => response,
        Err(failure) => failure.into_response(None),
    }
}

async fn evaluate_bulk(
    state: &AppState,
    actor: Result<Actor, Error>,
    request: Request,
) -> Result<Response, Failure> {
    let actor = actor?;
    let headers = request.headers().clone();
    let forwarded = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|peer| state.config.trusted_proxies.contains(&peer.0.ip()));
    let (namespace, env) = scope(&actor, &headers)?;
    let ctx = context(&body(request).await?)?;
    let release_seq = state.hub.catalog().fresh().await?;
    let answer = bulk_held(
        state,
        &headers,
        forwarded,
        &namespace,
        &env,
        &ctx,
        release_seq,
    )?;
    let etag = HeaderValue::from_str(&answer.etag).map_err(Error::internal)?;
    let mut response = match answer.body {
        None => (StatusCode::NOT_MODIFIED, Body::empty()).into_response(),
        Some(body) => json_bytes(StatusCode::OK, body),
    };
    response.headers_mut().insert(header::ETAG, etag);
    Ok(response)
}

/// A bulk answer: its ETag, and its body unless `If-None-Match` named the ETag (304).
pub(crate) struct BulkAnswer {
    pub etag: String,
    pub body: Option<Vec<u8>>,
}

/// The bulk answer from the catalog at `release_seq`. `forwarded`: the peer
/// is a trusted proxy (`ServeConfig::trusted_proxies`), whose forwarded
/// headers name the stream's host and scheme.
pub(crate) fn bulk_held(
    state: &AppState,
    headers: &(impl Headers + ?Sized),
    forwarded: bool,
    namespace: &str,
    env: &str,
    ctx: &Context,
    release_seq: i64,
) -> Result<BulkAnswer, Failure> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Bulk<'a> {
        flags: Vec<Flag<'a>>,
        metadata: BulkMetadata,
        event_streams: [EventStream; 1],
    }
    #[derive(Serialize)]
    struct BulkMetadata {
        release_seq: i64,
    }
    #[derive(Serialize)]
    struct EventStream {
        r#type: &'static str,
        url: String,
    }
    let etag = bulk_etag(release_seq, namespace, env, ctx);
    if if_none_match(headers, &etag) {
        return Ok(BulkAnswer { etag, body: None });
    }
    let configs = state.hub.catalog().configs(namespace, env);
    let client_id = ctx.get("client_id").map(String::as_str).unwrap_or_default();
    // Bounded in total: each value is bounded, and so are they together.
    let mut value_bytes = 0;
    let flags = configs
        .iter()
        .map(|config| match evaluate(config, ctx, release_seq) {
            Ok(evaluated) => {
                let bytes = evaluated.value.map_or(0, |value| value.get().len());
                if value_bytes + bytes > MAX_BULK_VALUE_BYTES {
                    let key = evaluated.key;
                    return Flag::Error(FlagError {
                        key,
                        error_code: "GENERAL",
                        error_details: format!(
                            "The values of this bulk answer would take more than {} MiB; \
                             evaluate {key} alone (POST {BULK_ROUTE}/{key}).",
                            MAX_BULK_VALUE_BYTES / (1024 * 1024)
                        ),
                    });
                }
                value_bytes += bytes;
                Flag::Evaluated(evaluated)
            }
            Err(error) => Flag::Error(error),
        })
        .collect();
    let bulk = Bulk {
        flags,
        metadata: BulkMetadata { release_seq },
        event_streams: [EventStream {
            r#type: "sse",
            url: watch_url(headers, forwarded, namespace, env, client_id),
        }],
    };
    let body = serde_json::to_vec(&bulk).map_err(Error::internal)?;
    Ok(BulkAnswer {
        etag,
        body: Some(body),
    })
}

/// Strong, and the same on every node: the release sequence, the scope and
/// the context's sorted `name=value` pairs (each length-prefixed, so no two
/// contexts hash alike by moving a separator).
fn bulk_etag(release_seq: i64, namespace: &str, env: &str, ctx: &Context) -> String {
    let mut hash = Sha256::new();
    for part in [namespace, env]
        .into_iter()
        .chain(ctx.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]))
    {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    let digest = hex::encode(hash.finalize());
    format!("\"r{release_seq}-{}\"", &digest[..32])
}

/// The watch stream of this namespace and environment for this client:
/// absolute when the request names a valid host ([`origin`]), else a path
/// (relative to the URL the client called).
fn watch_url(
    headers: &(impl Headers + ?Sized),
    forwarded: bool,
    namespace: &str,
    env: &str,
    client_id: &str,
) -> String {
    let path = format!(
        "/api/v1/watch?namespace={}&env={}&client_id={}",
        percent_encode(namespace),
        percent_encode(env),
        percent_encode(client_id)
    );
    match origin(headers, forwarded) {
        Some(origin) => format!("{origin}{path}"),
        None => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn context_maps_targeting_key_and_text() {
        let ctx = map_context(&json!({
            "targetingKey": "pod-1", "region": "beijing", "n": 3, "beta": true,
            "skip": null, "nested": {"a": 1}, "list": [1]
        }))
        .unwrap();
        let pairs: Vec<_> = ctx.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            pairs,
            ["beta=true", "client_id=pod-1", "n=3", "region=beijing"]
        );
        let code = |v: Value| map_context(&v).unwrap_err().code;
        assert_eq!(code(json!({"region": "x"})), "TARGETING_KEY_MISSING");
        assert_eq!(code(json!({"targetingKey": ""})), "TARGETING_KEY_MISSING");
        assert_eq!(code(json!({"targetingKey": {"a": 1}})), "INVALID_CONTEXT");
        for key in [json!(true), json!(null), json!(["a"])] {
            assert_eq!(code(json!({ "targetingKey": key })), "INVALID_CONTEXT");
        }
        let details = map_context(&json!({"targetingKey": false}))
            .unwrap_err()
            .details;
        assert!(
            details.starts_with("targetingKey is a boolean;"),
            "{details}"
        );
        let ctx = map_context(&json!({"targetingKey": 42})).unwrap();
        assert_eq!(ctx.get("client_id").map(String::as_str), Some("42"));
        assert_eq!(code(json!([1])), "INVALID_CONTEXT");
        assert_eq!(
            code(json!({"targetingKey": "k", "v": "x".repeat(2000)})),
            "INVALID_CONTEXT"
        );
    }

    #[test]
    fn forwarded_headers_count_only_from_a_trusted_proxy() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("node-1:8080"));
        headers.insert(
            "x-forwarded-host",
            HeaderValue::from_static("graycast.example"),
        );
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let url = |headers: &axum::http::HeaderMap, forwarded| {
            watch_url(headers, forwarded, "shop", "prod", "pod 1")
        };
        let path = "/api/v1/watch?namespace=shop&env=prod&client_id=pod%201";
        assert_eq!(url(&headers, false), format!("http://node-1:8080{path}"));
        assert_eq!(
            url(&headers, true),
            format!("https://graycast.example{path}")
        );
        // The nearest proxy's entry, and a bad one falls back to Host.
        headers.insert(
            "x-forwarded-host",
            HeaderValue::from_static("spoofed.example, graycast.example"),
        );
        assert_eq!(
            url(&headers, true),
            format!("https://graycast.example{path}")
        );
        headers.insert("x-forwarded-host", HeaderValue::from_static("a b"));
        assert_eq!(url(&headers, true), format!("https://node-1:8080{path}"));
        // A bad Host: the path alone.
        headers.insert("host", HeaderValue::from_static("evil.example/x?"));
        assert_eq!(url(&headers, false), path);
    }

    #[test]
    fn etag_depends_on_sequence_scope_and_context() {
        let ctx = |pairs: &[(&str, &str)]| -> Context {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let a = bulk_etag(5, "shop", "prod", &ctx(&[("client_id", "a")]));
        assert_eq!(a, bulk_etag(5, "shop", "prod", &ctx(&[("client_id", "a")])));
        assert!(a.starts_with("\"r5-"), "{a}");
        assert_ne!(a, bulk_etag(6, "shop", "prod", &ctx(&[("client_id", "a")])));
        assert_ne!(a, bulk_etag(5, "shop", "dev", &ctx(&[("client_id", "a")])));
        assert_ne!(a, bulk_etag(5, "shop", "prod", &ctx(&[("client_id", "b")])));
        assert_ne!(
            bulk_etag(1, "s", "p", &ctx(&[("a", "b=c")])),
            bulk_etag(1, "s", "p", &ctx(&[("a=b", "c")]))
        );
    }
}
