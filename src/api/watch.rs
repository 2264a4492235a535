//! Delivery routes: the watch stream, reports, and instances (also live).

use crate::model::{EnvPath, InstancesQuery, Report, HEARTBEAT_HEADER, SYNCED_COMMENT};
use crate::server::auth::Actor;
use crate::server::clock::{Clock, Ticker};
use crate::server::hub::{Owner, Subscription};
use crate::server::instances::Change;
use crate::server::listen::LiveHandoff;
use crate::server::ops::{self, instances::WatchQuery};
use crate::server::outlet::{Live, Outlet};
use crate::server::AppState;
use crate::Result;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use futures_util::stream::{self, Stream, StreamExt};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::extract::{Json, QueryParams};

/// How long the live instances view waits for more changes before sending.
const DEBOUNCE: Duration = Duration::from_millis(200);

const INSTANCES: &str = "/namespaces/{ns}/envs/{env}/instances";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/watch", get(watch))
        .route("/report", post(report))
        .route(INSTANCES, get(instances))
        .route(&format!("{INSTANCES}/stream"), get(instances_stream))
}

const PING: Bytes = Bytes::from_static(b": ping\n\n");

/// An SSE response of `body`, which ends when the server begins to shut down.
fn event_stream(
    body: impl Stream<Item = Bytes> + Send + 'static,
    mut closing: tokio::sync::watch::Receiver<bool>,
) -> Response {
    let closed = async move {
        let _ = closing.wait_for(|closing| *closing).await;
    };
    let body = body.take_until(closed).map(Ok::<_, Infallible>);
    sse_response(Body::from_stream(body))
}

/// A response with the headers of an SSE stream.
fn sse_response(body: Body) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Reverse proxies (nginx) must not buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

fn heartbeat(clock: &Clock, every: Duration) -> Ticker {
    clock.ticker(every, every)
}

/// A watch stream's heartbeat: the first ping comes after a random part of
/// the interval, so streams opened together (every instance after a deploy or
/// a server restart) do not all ping, and mark themselves seen, at once.
fn spread_heartbeat(clock: &Clock, every: Duration) -> Ticker {
    use rand::Rng;
    let millis = every.as_millis().clamp(1, u64::MAX as u128) as u64;
    let first = Duration::from_millis(rand::thread_rng().gen_range(1..=millis));
    clock.ticker(first, every)
}

/// `GET /api/v1/watch`: the SSE stream of what this subscriber gets.
async fn watch(
    State(state): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    outlet: Option<Extension<Arc<Outlet>>>,
    QueryParams(query): QueryParams<WatchQuery>,
) -> Result<Response> {
    let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let outlet = outlet.map(|Extension(outlet)| outlet);
    let subscription = ops::instances::watch(&state, &actor, query, last_event_id, outlet).await?;
    let Subscription {
        mut initial,
        queue,
        guard,
    } = subscription;
    // After what the subscriber is owed at connect: `: synced`.
    initial.push(Bytes::from(format!(": {SYNCED_COMMENT}\n\n")));
    let ticker = spread_heartbeat(&state.clock, state.config.heartbeat);
    let Some(queue) = queue else {
        // A lean connection (src/server/listen.rs): the hub writes into its
        // socket, and the connection carries the stream on from here.
        let live = Live {
            initial,
            heartbeat: ticker,
            on_ping: Box::new(move || guard.seen()),
        };
        let mut response = sse_response(Body::empty());
        response.extensions_mut().insert(LiveHandoff::new(live));
        return Ok(with_heartbeat(response, state.config.heartbeat));
    };
    let live = stream::unfold(
        (queue, guard, ticker),
        |(mut queue, guard, mut ticker)| async move {
            tokio::select! {
                frame = queue.recv() => frame.map(|f| (f, (queue, guard, ticker))),
                _ = ticker.tick() => {
                    guard.seen();
                    Some((PING, (queue, guard, ticker)))
                }
            }
        },
    );
    let response = event_stream(stream::iter(initial).chain(live), state.closing.subscribe());
    Ok(with_heartbeat(response, state.config.heartbeat))
}

/// Tells the client how often to expect a ping ([`HEARTBEAT_HEADER`]).
fn with_heartbeat(mut response: Response, every: Duration) -> Response {
    response
        .headers_mut()
        .insert(HEARTBEAT_HEADER, HeaderValue::from(heartbeat_secs(every)));
    response
}

/// Whole seconds, rounded up: a client never expects pings more often than they come.
fn heartbeat_secs(every: Duration) -> u64 {
    (every.as_millis().div_ceil(1000) as u64).max(1)
}

/// `POST /api/v1/report`.
async fn report(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<Report>,
) -> Result<StatusCode> {
    ops::instances::report(&state, &actor, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET …/instances`: one page of the list.
async fn instances(
    State(state): State<AppState>,
    actor: Actor,
    Path(at): Path<EnvPath>,
    QueryParams(query): QueryParams<InstancesQuery>,
) -> Result<impl IntoResponse> {
    Ok(Json(
        ops::instances::instances(&state, &actor, &at, &query).await?,
    ))
}

/// The live instances view as an SSE stream: the list's first page as one `instances` event
/// now, then what changes, at most one round per [`DEBOUNCE`]: an `instance` event per
/// instance that connected, disconnected, was handed a version or reported (as the list shows
/// it now), `removed` for one forgotten after the retention period, and `changed` when only
/// something else did (a release event was delivered, a rollout plan moved). So an event's
/// size does not grow with the number of instances. A stream that falls behind the changes
/// gets a fresh `instances` event.
async fn instances_stream(
    State(state): State<AppState>,
    actor: Actor,
    Path(at): Path<EnvPath>,
) -> Result<Response> {
    let changes = state.instances.changes();
    // Subscribed before the check below, so a close after it is seen.
    let mut closed = state.hub.closed_owners();
    let first_page = InstancesQuery::default();
    let first = ops::instances::instances(&state, &actor, &at, &first_page).await?;
    ops::instances::still_authorized(&state, &actor).await?;
    let first = frame("instances", &first);
    let owner = Owner::of(&actor);
    // Ends when the caller's token is revoked or its user changes (they
    // reconnect and are authorized afresh); a lagging receiver ends it too.
    let revoked = async move {
        loop {
            match closed.recv().await {
                Ok(o) if Some(o) != owner => continue,
                Err(RecvError::Closed) => std::future::pending::<()>().await,
                Ok(_) | Err(RecvError::Lagged(_)) => return,
            }
        }
    };
    let feed = InstancesFeed {
        state: state.clone(),
        scope: EnvPath::new(at.namespace, at.env),
        changes,
        ticker: heartbeat(&state.clock, state.config.heartbeat),
        due: VecDeque::new(),
    };
    // A read that fails ends the stream: the browser reconnects and starts from a fresh page.
    let live = stream::unfold(feed, |mut feed| async move {
        let frame = feed.next().await?;
        Some((frame, feed))
    });
    Ok(event_stream(
        stream::once(async { first })
            .chain(live)
            .take_until(revoked),
        state.closing.subscribe(),
    ))
}

/// What one live instances view has yet to send.
struct InstancesFeed {
    state: AppState,
    scope: EnvPath,
    changes: tokio::sync::broadcast::Receiver<Change>,
    ticker: Ticker,
    /// Changed instances not sent yet, by client id.
    due: VecDeque<String>,
}

impl InstancesFeed {
    /// Instances sent per read (and per frame).
    const CHUNK: usize = InstancesQuery::DEFAULT_LIMIT as usize;

    /// The next frame; `None` ends the stream.
    async fn next(&mut self) -> Option<Bytes> {
        let EnvPath { namespace, env } = &self.scope;
        loop {
            if !self.due.is_empty() {
                let chunk = self.due.len().min(Self::CHUNK);
                let ids: Vec<String> = self.due.drain(..chunk).collect();
                return self.instances(&ids).await;
            }
            let mut ids = std::collections::BTreeSet::new();
            let (mut other, mut lagged) = (false, false);
            let mut take = |change: Result<Change, ()>| match change {
                Ok(Change::Instances(scope, changed)) if scope == self.scope => {
                    ids.extend(changed.iter().cloned());
                }
                Ok(Change::Other(scope)) if scope == self.scope => other = true,
                Ok(_) => {}
                Err(()) => lagged = true,
            };
            tokio::select! {
                change = self.changes.recv() => match change {
                    Ok(change) if change.at() != &self.scope => continue,
                    Ok(change) => take(Ok(change)),
                    Err(RecvError::Lagged(_)) => take(Err(())),
                    Err(RecvError::Closed) => return None,
                },
                _ = self.ticker.tick() => return Some(PING),
            }
            tokio::time::sleep(DEBOUNCE).await;
            // Everything that arrived meanwhile goes in this round.
            loop {
                match self.changes.try_recv() {
                    Ok(change) => take(Ok(change)),
                    Err(TryRecvError::Lagged(_)) => take(Err(())),
                    Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                }
            }
            if lagged {
                let page = match self
                    .state
                    .instances
                    .page(namespace, env, &InstancesQuery::default(), None)
                    .await
                {
                    Ok(page) => page,
                    Err(e) => {
                        tracing::error!(error = e.detail(), "cannot list instances");
                        return None;
                    }
                };
                return Some(frame("instances", &page));
            }
            if !ids.is_empty() {
                self.due = ids.into_iter().collect();
                continue;
            }
            if other {
                return Some(Bytes::from_static(b"event: changed\ndata: {}\n\n"));
            }
        }
    }

    /// `instance` events for those of `ids` listed, `removed` for the others.
    async fn instances(&self, ids: &[String]) -> Option<Bytes> {
        let EnvPath { namespace, env } = &self.scope;
        let found = match self.state.instances.listed(namespace, env, ids).await {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(error = e.detail(), "cannot list instances");
                return None;
            }
        };
        let mut out = Vec::new();
        let mut found = found.into_iter().peekable();
        for id in ids {
            match found.next_if(|i| &i.client_id == id) {
                Some(instance) => out.extend_from_slice(&frame("instance", &instance)),
                None => out
                    .extend_from_slice(&frame("removed", &serde_json::json!({ "client_id": id }))),
            }
        }
        Some(Bytes::from(out))
    }
}

/// One SSE event named `event` carrying `data` as JSON.
fn frame(event: &str, data: &impl serde::Serialize) -> Bytes {
    let data = serde_json::to_string(data).unwrap_or_else(|_| "null".into());
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_announced_heartbeat_is_rounded_up_to_whole_seconds() {
        assert_eq!(heartbeat_secs(Duration::from_secs(15)), 15);
        assert_eq!(heartbeat_secs(Duration::from_millis(1500)), 2);
        assert_eq!(heartbeat_secs(Duration::from_millis(200)), 1);
    }
}
