//! The fast path's answers (src/server/fast.rs): `resolve` and OFREP
//! (docs/ofrep.md#the-fast-path) for a bearer token, from memory.
//!
//! Each is the router's answer, byte for byte but the date, the request id
//! and the span id: the same steps (the bearer token from the token cache, the
//! authorization, the context, the evaluation and its pre-serialized parts),
//! the same headers in the same order (the route's, the security headers,
//! `traceparent`, `x-request-id`, then what hyper adds), and the same request
//! metrics. Only successes (200, 304) are answered here; anything else —
//! no bearer token, a cookie, a refusal, an error, a config not in memory,
//! `explain` — is declined, and the router answers it. A token seen for the
//! first time is read from the database first, as the router reads it.

use super::headers::{if_none_match, Headers};
use super::ofrep::{self, BULK_ROUTE, SINGLE_ROUTE};
use super::rest::resolve::{resolve_context, ResolveQuery, RESOLVE_ROUTE, RESOLVE_VARY};
use crate::model::ConfigPath;
use crate::server::auth::{
    bearer_secret, cached_token_actor, token_actor, Actor, SECURITY_HEADERS,
};
use crate::server::fast::{end_head, header, status_line, Outcome, Request, Responder};
use crate::server::trace::{answered_outside, new_request_id, trace_of, traceparent};
use crate::server::{ops, AppState};
use axum::extract::Query;
use axum::http::{StatusCode, Uri};
use std::time::Instant;

/// The fast path's [`Responder`].
pub struct Answers {
    state: AppState,
}

impl Answers {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// An answer before its common headers: status, the route's own headers, body.
struct Answer<'a> {
    route: &'static str,
    status: StatusCode,
    headers: [Option<(&'static str, &'a [u8])>; 3],
    body: &'a [u8],
}

impl Responder for Answers {
    fn max_body(&self) -> usize {
        ofrep::BODY_LIMIT
    }

    fn respond(&self, request: &Request<'_>, out: &mut Vec<u8>) -> Outcome {
        let started = Instant::now();
        let headers = request.headers;
        // A cookie may authenticate, and the session layer answers it: the router's.
        if headers.value("cookie").is_some() {
            return Outcome::Declined;
        }
        let Some(secret) = headers.value("authorization").and_then(bearer_secret) else {
            return Outcome::Declined;
        };
        let actor = match cached_token_actor(&self.state, secret) {
            Some(Ok(actor)) => actor,
            Some(Err(_)) => return Outcome::Declined,
            None => {
                // First seen: read as the router reads it, which keeps it in memory.
                // The catalog is waited for too: a token is often first used right
                // after a release, and the request is asked about only once more.
                let (state, secret) = (self.state.clone(), secret.to_string());
                return Outcome::Later(Box::pin(async move {
                    if token_actor(&state, &secret).await.is_ok() {
                        let _ = state.hub.catalog().fresh().await;
                    }
                }));
            }
        };
        if self.state.hub.catalog().fresh_now().is_none() {
            let state = self.state.clone();
            return Outcome::Later(Box::pin(async move {
                let _ = state.hub.catalog().fresh().await;
            }));
        }
        // A NUL is refused by the router (see `nul::refuse_in_target`), with its message.
        if request.target.contains("%00") {
            return Outcome::Declined;
        }
        // Parsed as hyper parses it: what hyper refuses is not answered here.
        let Ok(uri) = request.target.parse::<Uri>() else {
            return Outcome::Declined;
        };
        let path = uri.path();
        let method = request.method;
        let mut scratch = Scratch::default();
        let answer = if method == "GET" {
            match resolve_path(path) {
                Some(config) if request.body.is_empty() => {
                    self.resolve(&actor, &config, &uri, headers, &mut scratch)
                }
                _ => None,
            }
        } else if method == "POST" && path == BULK_ROUTE {
            self.bulk(&actor, headers, request.body, &mut scratch)
        } else if method == "POST" {
            match path
                .strip_prefix("/ofrep/v1/evaluate/flags/")
                .filter(|k| segment(k))
            {
                Some(key) => self.single(&actor, key, headers, request.body, &mut scratch),
                None => None,
            }
        } else {
            None
        };
        let Some(answer) = answer else {
            return Outcome::Declined;
        };
        write(
            out,
            &answer,
            headers,
            request.close,
            method,
            started,
            &self.state,
        );
        Outcome::Answered
    }
}

/// What an answer's headers and body borrow from.
#[derive(Default)]
struct Scratch {
    etag: String,
    body: Vec<u8>,
    resolved: Option<crate::server::hub::Answer>,
}

impl Answers {
    /// `GET …/configs/{key}/resolve`, as `rest::resolve::resolve` answers it.
    fn resolve<'s>(
        &self,
        actor: &Actor,
        config: &ConfigPath,
        uri: &Uri,
        headers: &[httparse::Header<'_>],
        scratch: &'s mut Scratch,
    ) -> Option<Answer<'s>> {
        let Query(query) = Query::<ResolveQuery>::try_from_uri(uri).ok()?;
        if query.explain {
            return None;
        }
        let ctx = resolve_context(&query, headers).ok()?;
        let resolved = ops::configs::resolve_now(&self.state, actor, config, &ctx)?.ok()?;
        let fresh = !if_none_match(headers, &resolved.etag);
        let resolved = scratch.resolved.insert(resolved);
        let etag = Some(("etag", resolved.etag.as_bytes()));
        let vary = Some(("vary", RESOLVE_VARY.as_bytes()));
        Some(if fresh {
            Answer {
                route: RESOLVE_ROUTE,
                status: StatusCode::OK,
                headers: [Some(("content-type", b"application/json")), etag, vary],
                body: &resolved.body,
            }
        } else {
            Answer {
                route: RESOLVE_ROUTE,
                status: StatusCode::NOT_MODIFIED,
                headers: [etag, vary, None],
                body: b"",
            }
        })
    }

    /// `POST /ofrep/v1/evaluate/flags/{key}`, as `ofrep::single` answers it.
    fn single<'s>(
        &self,
        actor: &Actor,
        key: &str,
        headers: &[httparse::Header<'_>],
        body: &[u8],
        scratch: &'s mut Scratch,
    ) -> Option<Answer<'s>> {
        let (namespace, env) = ofrep::scope(actor, headers).ok()?;
        let ctx = ofrep::context(body).ok()?;
        let release_seq = self.state.hub.catalog().fresh_now()?;
        let answer =
            ofrep::single_held(&self.state, &namespace, &env, key, &ctx, release_seq)?.ok()?;
        if answer.status != StatusCode::OK {
            return None;
        }
        scratch.body = answer.body;
        Some(Answer {
            route: SINGLE_ROUTE,
            status: StatusCode::OK,
            headers: [Some(("content-type", b"application/json")), None, None],
            body: &scratch.body,
        })
    }

    /// `POST /ofrep/v1/evaluate/flags`, as `ofrep::bulk` answers it.
    fn bulk<'s>(
        &self,
        actor: &Actor,
        headers: &[httparse::Header<'_>],
        body: &[u8],
        scratch: &'s mut Scratch,
    ) -> Option<Answer<'s>> {
        let (namespace, env) = ofrep::scope(actor, headers).ok()?;
        let ctx = ofrep::context(body).ok()?;
        // Whether a proxy's forwarded headers are believed depends on the peer,
        // which the router knows: with trusted proxies, those requests are its.
        let trusted_proxies = !self.state.config.trusted_proxies.is_empty();
        if trusted_proxies
            && ["x-forwarded-host", "x-forwarded-proto"]
                .into_iter()
                .any(|name| headers.value(name).is_some())
        {
            return None;
        }
        let release_seq = self.state.hub.catalog().fresh_now()?;
        let answer = ofrep::bulk_held(
            &self.state,
            headers,
            false,
            &namespace,
            &env,
            &ctx,
            release_seq,
        )
        .ok()?;
        scratch.etag = answer.etag;
        let etag = Some(("etag", scratch.etag.as_bytes()));
        Some(match answer.body {
            Some(body) => {
                scratch.body = body;
                Answer {
                    route: BULK_ROUTE,
                    status: StatusCode::OK,
                    headers: [Some(("content-type", b"application/json")), etag, None],
                    body: &scratch.body,
                }
            }
            None => Answer {
                route: BULK_ROUTE,
                status: StatusCode::NOT_MODIFIED,
                headers: [etag, None, None],
                body: b"",
            },
        })
    }
}

/// The whole answer into `out`, counted and traced as the router's middleware does.
fn write(
    out: &mut Vec<u8>,
    answer: &Answer<'_>,
    headers: &[httparse::Header<'_>],
    close: bool,
    method: &str,
    started: Instant,
    state: &AppState,
) {
    status_line(out, answer.status);
    for (name, value) in answer.headers.iter().flatten() {
        header(out, name, value);
    }
    for (name, value) in SECURITY_HEADERS {
        header(out, name, value.as_bytes());
    }
    let (trace_id, flags) = trace_of(headers.values("traceparent"));
    header(out, "traceparent", traceparent(&trace_id, flags).as_bytes());
    // The caller's request id, kept as it is (the router keeps it), or a new one.
    let new_id;
    let request_id = match headers.value("x-request-id") {
        Some(id) => id,
        None => {
            new_id = new_request_id();
            new_id.as_bytes()
        }
    };
    header(out, "x-request-id", request_id);
    end_head(out, answer.status, answer.body.len(), close);
    out.extend_from_slice(answer.body);
    let elapsed = started.elapsed();
    state
        .metrics
        .request(method, answer.route, answer.status.as_u16(), elapsed);
    state.metrics.fast_path_request();
    answered_outside(
        method,
        answer.route,
        &String::from_utf8_lossy(request_id),
        &trace_id,
        answer.status.as_u16(),
        elapsed,
    );
}

/// The config of a resolve path (`/api/v1/namespaces/{ns}/envs/{env}/configs/{key}/resolve`).
fn resolve_path(path: &str) -> Option<ConfigPath> {
    let rest = path.strip_prefix("/api/v1/namespaces/")?;
    let (namespace, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix("envs/")?;
    let (env, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix("configs/")?;
    let key = rest.strip_suffix("/resolve")?;
    [namespace, env, key]
        .into_iter()
        .all(segment)
        .then(|| ConfigPath::new(namespace, env, key))
}

/// A path parameter the fast path reads as it is: one segment, nothing to
/// percent-decode (the router decodes those).
fn segment(value: &str) -> bool {
    !value.is_empty() && !value.contains(['/', '%'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_resolve_paths_only() {
        assert_eq!(
            resolve_path("/api/v1/namespaces/shop/envs/prod/configs/app.json/resolve"),
            Some(ConfigPath::new("shop", "prod", "app.json"))
        );
        for other in [
            "/api/v1/namespaces/shop/envs/prod/configs/app.json",
            "/api/v1/namespaces/shop/envs/prod/configs/app.json/resolve/",
            "/api/v1/namespaces/shop/envs/prod/configs/a/b/resolve",
            "/api/v1/namespaces/shop/envs/prod/configs//resolve",
            "/api/v1/namespaces/sh%6Fp/envs/prod/configs/app.json/resolve",
            "/api/v1/namespaces/shop/envs/prod/lanes/app.json/resolve",
        ] {
            assert_eq!(resolve_path(other), None, "{other}");
        }
    }
}
