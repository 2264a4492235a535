//! The watch stream as a long-lived, self-healing subscription.

use super::rules::KeyRules;
use super::sse::{SseEvent, SseFrame, SseParser};
use super::{check, Client, ClientError};
use graycast_domain::model::{
    Deleted, Report, ReportStatus, Resolved, Rules, HEARTBEAT_HEADER, SYNCED_COMMENT,
};
use graycast_domain::Context;
use rand::Rng;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Where a [`Watcher`] is in its life. `Connected` means the server accepted the stream (HTTP
/// 200) and it is open; `Reconnecting` covers the backoff pause and the following attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchState {
    /// Created, not started yet.
    Idle,
    /// First connection attempt.
    Connecting,
    Connected,
    /// The stream ended or an attempt failed; waiting out the backoff or trying again.
    Reconnecting,
    /// Closed by [`Watcher::close`], by dropping the updates, or by an error that retrying cannot
    /// fix (see [`Watcher::error`]).
    Closed,
}

/// Which events the stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WatchMode {
    /// `config` events: the version resolved for this subscriber.
    #[default]
    Config,
    /// `rules` events: stable release and every active lane, to evaluate per request.
    Rules,
}

/// Exponential backoff with full jitter: attempt `n` waits a random time in
/// `0..=min(max, base × 2ⁿ)`, so a fleet that lost its server does not come back in lockstep.
/// With several servers, `n` counts full rounds of the list: each failure moves on to the next
/// server after a wait of the same round, and the ceiling doubles once every server failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The upper bound of the wait before attempt `attempt` (0-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// A random wait in `0..=ceiling(attempt)`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt).as_millis() as u64;
        Duration::from_millis(rand::thread_rng().gen_range(0..=ceiling))
    }
}

/// What to watch and how.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub namespace: String,
    pub env: String,
    /// This instance's identity (e.g. the pod name): the default stickiness key of lanes.
    pub client_id: String,
    /// Only these keys; `None` for every config of the namespace and environment.
    pub keys: Option<Vec<String>>,
    /// Instance labels that lane selectors are evaluated against.
    pub labels: Context,
    pub mode: WatchMode,
    /// Resume after this event: the server sends only what changed since.
    pub last_event_id: Option<String>,
    pub backoff: Backoff,
    /// A stream silent (not even a `: ping`) for this long is considered dead and reopened.
    /// Never less than three of the heartbeat intervals the server announces on the stream
    /// (`graycast-heartbeat-secs`), so a server with a long `--heartbeat-secs` is not taken
    /// for dead between its pings.
    pub idle_timeout: Duration,
}

impl WatchOptions {
    pub fn new(namespace: &str, env: &str, client_id: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            env: env.to_string(),
            client_id: client_id.to_string(),
            keys: None,
            labels: Context::new(),
            mode: WatchMode::Config,
            last_event_id: None,
            backoff: Backoff::default(),
            idle_timeout: Duration::from_secs(45),
        }
    }

    pub fn keys(mut self, keys: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.keys = Some(keys.into_iter().map(Into::into).collect());
        self
    }

    pub fn labels(mut self, labels: Context) -> Self {
        self.labels = labels;
        self
    }

    pub fn mode(mut self, mode: WatchMode) -> Self {
        self.mode = mode;
        self
    }

    pub fn resume_from(mut self, last_event_id: Option<String>) -> Self {
        self.last_event_id = last_event_id;
        self
    }

    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }
}

/// One change delivered by the watch stream. `id` is the event's `id:` (the global release-event
/// sequence number), which the watcher also remembers to resume from.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// The version resolved for this subscriber (mode `config`).
    Config {
        id: Option<String>,
        config: Resolved,
    },
    /// The config no longer exists.
    Deleted {
        id: Option<String>,
        namespace: String,
        env: String,
        key: String,
    },
    /// The stable release and active lanes of a key (mode `rules`), ready to evaluate.
    Rules { id: Option<String>, rules: KeyRules },
}

impl Update {
    pub fn id(&self) -> Option<&str> {
        match self {
            Update::Config { id, .. } | Update::Deleted { id, .. } | Update::Rules { id, .. } => {
                id.as_deref()
            }
        }
    }

    pub fn key(&self) -> &str {
        match self {
            Update::Config { config, .. } => &config.key,
            Update::Deleted { key, .. } => key,
            Update::Rules { rules, .. } => &rules.key,
        }
    }

    /// Decodes one SSE event; `Ok(None)` for event types this SDK does not know.
    fn decode(event: SseEvent) -> Result<Option<Update>, String> {
        let SseEvent { event, id, data } = event;
        let invalid = |e: serde_json::Error| format!("{event} event {id:?} is malformed: {e}");
        Ok(Some(match event.as_str() {
            "config" => Update::Config {
                config: serde_json::from_str::<Resolved>(&data).map_err(invalid)?,
                id,
            },
            "deleted" => {
                let deleted: Deleted = serde_json::from_str(&data).map_err(invalid)?;
                Update::Deleted {
                    id,
                    namespace: deleted.namespace,
                    env: deleted.env,
                    key: deleted.key,
                }
            }
            "rules" => {
                let rules: Rules = serde_json::from_str(&data).map_err(invalid)?;
                Update::Rules {
                    rules: KeyRules::from_rules(rules)?,
                    id,
                }
            }
            _ => return Ok(None),
        }))
    }
}

/// A watch stream that keeps itself open: it connects, hands every event to [`Watcher::next`]
/// (or the [`futures_util::Stream`] impl), and when the stream breaks it waits with backoff
/// and reconnects with `Last-Event-ID` so nothing is missed and nothing is sent twice. With
/// several servers it reconnects to the next one when the stream broke or an attempt failed
/// in a way another node may not (see [`ClientError::fails_over`]).
pub struct Watcher {
    updates: mpsc::Receiver<Update>,
    synced: watch::Receiver<u64>,
    failures: watch::Receiver<u32>,
    heartbeats: watch::Receiver<u64>,
    state: watch::Receiver<WatchState>,
    last_event_id: watch::Receiver<Option<String>>,
    error: Arc<Mutex<Option<String>>>,
    stop: watch::Sender<bool>,
    client: Client,
    options: WatchOptions,
}

impl Watcher {
    pub(super) fn start(client: Client, options: WatchOptions) -> Self {
        let (updates_tx, updates) = mpsc::channel(256);
        let (synced_tx, synced) = watch::channel(0);
        let (failures_tx, failures) = watch::channel(0);
        let (heartbeats_tx, heartbeats) = watch::channel(0);
        let (state_tx, state) = watch::channel(WatchState::Idle);
        let (last_tx, last_event_id) = watch::channel(options.last_event_id.clone());
        let (stop, stop_rx) = watch::channel(false);
        let error = Arc::new(Mutex::new(None));
        let task = Task {
            client: client.clone(),
            options: options.clone(),
            updates: updates_tx,
            synced: synced_tx,
            failures: failures_tx,
            heartbeats: heartbeats_tx,
            state: state_tx,
            last_event_id: last_tx,
            error: error.clone(),
            stop: stop_rx,
        };
        tokio::spawn(task.run());
        Self {
            updates,
            synced,
            failures,
            heartbeats,
            state,
            last_event_id,
            error,
            stop,
            client,
            options,
        }
    }

    /// The next update; `None` once the watcher is closed and every update was taken.
    pub async fn next(&mut self) -> Option<Update> {
        self.updates.recv().await
    }

    pub fn state(&self) -> WatchState {
        *self.state.borrow()
    }

    /// How many connections have caught up: the count goes up when the server
    /// has sent everything owed at a connect (the `: synced` comment), and every
    /// update before that is already waiting in [`Watcher::next`].
    pub fn synced(&self) -> watch::Receiver<u64> {
        self.synced.clone()
    }

    /// How many connections in a row have broken or failed to open since the last one that the
    /// server accepted (0 while connected): a count that reaches the number of servers means
    /// every server of the list failed once.
    pub fn failures(&self) -> watch::Receiver<u32> {
        self.failures.clone()
    }

    /// How many heartbeats (`: ping` comments) the server has sent, over every
    /// connection: a sign the stream is alive while no config changes.
    pub fn heartbeats(&self) -> watch::Receiver<u64> {
        self.heartbeats.clone()
    }

    /// An update that is already waiting, without waiting for one.
    pub fn try_next(&mut self) -> Option<Update> {
        self.updates.try_recv().ok()
    }

    /// A receiver that sees every state change (e.g. `states.wait_for(|s| *s == Connected)`).
    pub fn states(&self) -> watch::Receiver<WatchState> {
        self.state.clone()
    }

    /// The id of the last event received, which the next connection resumes from.
    pub fn last_event_id(&self) -> Option<String> {
        self.last_event_id.borrow().clone()
    }

    /// Why the watcher closed itself (e.g. the token was refused), if it did.
    pub fn error(&self) -> Option<String> {
        self.error.lock().expect("watcher error lock").clone()
    }

    /// Stops the stream; the state becomes `Closed`. Updates already received stay readable.
    pub fn close(&self) {
        let _ = self.stop.send(true);
    }

    /// Reports what this instance did with `version` of `key` (`POST /api/v1/report`).
    pub async fn report(
        &self,
        key: &str,
        version: i64,
        status: ReportStatus,
        message: Option<String>,
    ) -> Result<(), ClientError> {
        self.client
            .report(&Report {
                client_id: self.options.client_id.clone(),
                namespace: self.options.namespace.clone(),
                env: self.options.env.clone(),
                key: key.to_string(),
                version,
                status,
                message,
            })
            .await
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.close();
    }
}

impl futures_util::Stream for Watcher {
    type Item = Update;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Update>> {
        self.updates.poll_recv(cx)
    }
}

/// How one connection ended.
enum Ended {
    /// Closed on purpose, or nobody takes updates any more.
    Stopped,
    /// Retrying cannot help (e.g. 401, 403, unknown namespace).
    Fatal(String),
    /// Worth retrying; `connected` says whether the server had accepted the stream, and
    /// `fails_over` whether the next server should be tried (not for a 408 or 429, which are
    /// about this client, not the node).
    Broken {
        connected: bool,
        why: String,
        fails_over: bool,
    },
}

impl Ended {
    /// The server failed: it could not be reached, answered 5xx, or the stream ended or
    /// stalled (a stream carries no goodbye, so every end counts).
    fn failed(connected: bool, why: impl Into<String>) -> Self {
        Ended::Broken {
            connected,
            why: why.into(),
            fails_over: true,
        }
    }
}

struct Task {
    client: Client,
    options: WatchOptions,
    updates: mpsc::Sender<Update>,
    synced: watch::Sender<u64>,
    failures: watch::Sender<u32>,
    heartbeats: watch::Sender<u64>,
    state: watch::Sender<WatchState>,
    last_event_id: watch::Sender<Option<String>>,
    error: Arc<Mutex<Option<String>>>,
    stop: watch::Receiver<bool>,
}

impl Task {
    async fn run(mut self) {
        self.state.send_replace(WatchState::Connecting);
        let servers = self.client.servers.len() as u32;
        // Connections in a row that broke or failed to open; a success resets it.
        let mut failures = 0u32;
        loop {
            let (index, server) = self.client.servers.current();
            let server = server.to_string();
            match self.connection(&server).await {
                Ended::Stopped => break,
                Ended::Fatal(why) => {
                    tracing::error!(namespace = %self.options.namespace, env = %self.options.env, %server, "watch stopped: {why}");
                    *self.error.lock().expect("watcher error lock") = Some(why);
                    break;
                }
                Ended::Broken {
                    connected,
                    why,
                    fails_over,
                } => {
                    if connected {
                        failures = 0;
                    }
                    if fails_over {
                        self.client.servers.move_on(index, &why);
                    }
                    // The backoff grows once per full round of the server list.
                    let delay = self.options.backoff.delay(failures / servers);
                    failures = failures.saturating_add(1);
                    self.failures.send_replace(failures);
                    self.state.send_replace(WatchState::Reconnecting);
                    tracing::warn!(
                        %server,
                        "watch stream interrupted ({why}); reconnecting in {} ms",
                        delay.as_millis()
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.stop.wait_for(|stop| *stop) => break,
                    }
                }
            }
        }
        self.state.send_replace(WatchState::Closed);
    }

    fn request(&self, server: &str) -> reqwest::RequestBuilder {
        let options = &self.options;
        let mut query = vec![
            ("namespace", options.namespace.clone()),
            ("env", options.env.clone()),
            ("client_id", options.client_id.clone()),
        ];
        if let Some(keys) = &options.keys {
            query.push(("keys", keys.join(",")));
        }
        let labels: Vec<String> = options
            .labels
            .iter()
            .filter(|(k, _)| k.as_str() != "client_id")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !labels.is_empty() {
            query.push(("labels", labels.join(",")));
        }
        if options.mode == WatchMode::Rules {
            query.push(("mode", "rules".to_string()));
        }
        let mut request = self
            .client
            .watch_http
            .get(format!("{server}/api/v1/watch"))
            .bearer_auth(&self.client.token)
            .header("accept", "text/event-stream")
            .query(&query);
        if let Some(id) = self.last_event_id.borrow().as_deref() {
            request = request.header("last-event-id", id);
        }
        request
    }

    /// One connection to `server`, from the request to the end of its stream.
    async fn connection(&mut self, server: &str) -> Ended {
        let mut stop = self.stop.clone();
        let idle = self.options.idle_timeout;
        let request = self.request(server);
        let response = tokio::select! {
            r = tokio::time::timeout(idle, request.send()) => r,
            _ = stop.wait_for(|stop| *stop) => return Ended::Stopped,
        };
        let response = match response {
            Err(_) => return Ended::failed(false, "no answer"),
            Ok(Err(e)) => return Ended::failed(false, ClientError::from(e).to_string()),
            Ok(Ok(response)) => response,
        };
        let mut response = match check(response).await {
            Ok(response) => response,
            Err(e) if e.is_transient() => {
                return Ended::Broken {
                    connected: false,
                    fails_over: e.fails_over(),
                    why: e.to_string(),
                }
            }
            Err(e) => return Ended::Fatal(e.to_string()),
        };
        let idle = stream_idle(idle, response.headers());
        self.failures.send_replace(0);
        self.state.send_replace(WatchState::Connected);
        tracing::info!(
            %server,
            namespace = %self.options.namespace,
            env = %self.options.env,
            last_event_id = ?self.last_event_id.borrow().as_deref(),
            "watch stream connected"
        );
        let mut parser = SseParser::new();
        loop {
            let chunk = tokio::select! {
                c = tokio::time::timeout(idle, response.chunk()) => c,
                _ = stop.wait_for(|stop| *stop) => return Ended::Stopped,
            };
            let chunk = match chunk {
                Err(_) => return Ended::failed(true, format!("silent for {} s", idle.as_secs())),
                Ok(Err(e)) => return Ended::failed(true, e.to_string()),
                Ok(Ok(None)) => return Ended::failed(true, "the server closed the stream"),
                Ok(Ok(Some(chunk))) => chunk,
            };
            for frame in parser.feed(&chunk) {
                let event = match frame {
                    SseFrame::Event(event) => event,
                    SseFrame::Comment(comment) => {
                        if comment == SYNCED_COMMENT {
                            self.synced.send_modify(|n| *n += 1);
                        } else {
                            self.heartbeats.send_modify(|n| *n += 1);
                        }
                        continue;
                    }
                };
                let id = event.id.clone();
                match Update::decode(event) {
                    Ok(Some(update)) => {
                        if self.updates.send(update).await.is_err() {
                            return Ended::Stopped;
                        }
                    }
                    Ok(None) => {}
                    Err(why) => tracing::warn!("skipping an event: {why}"),
                }
                if id.is_some() {
                    self.last_event_id.send_replace(id);
                }
            }
        }
    }
}

/// How long a connected stream may stay silent: `configured`, but at least
/// three of the heartbeat intervals the server announces.
fn stream_idle(configured: Duration, headers: &reqwest::header::HeaderMap) -> Duration {
    let announced = headers
        .get(HEARTBEAT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match announced {
        Some(secs) => configured.max(Duration::from_secs(secs.saturating_mul(3))),
        None => configured,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_ceiling_doubles_up_to_the_cap() {
        let backoff = Backoff::default();
        assert_eq!(backoff.ceiling(0), Duration::from_millis(500));
        assert_eq!(backoff.ceiling(1), Duration::from_secs(1));
        assert_eq!(backoff.ceiling(5), Duration::from_secs(16));
        assert_eq!(backoff.ceiling(6), Duration::from_secs(30));
        assert_eq!(backoff.ceiling(1000), Duration::from_secs(30));
        for attempt in 0..50 {
            assert!(backoff.delay(attempt) <= backoff.ceiling(attempt));
        }
    }

    #[test]
    fn decodes_config_deleted_and_unknown_events() {
        let config = SseEvent {
            event: "config".into(),
            id: Some("7".into()),
            data: r#"{"namespace":"shop","env":"prod","key":"app.json","format":"json","version":3,"lane":null,"checksum":"sha256:00","content":"{}"}"#.into(),
        };
        let update = Update::decode(config).unwrap().unwrap();
        assert_eq!(update.id(), Some("7"));
        assert_eq!(update.key(), "app.json");
        let deleted = SseEvent {
            event: "deleted".into(),
            id: Some("8".into()),
            data: r#"{"namespace":"shop","env":"prod","key":"old"}"#.into(),
        };
        assert!(matches!(
            Update::decode(deleted).unwrap(),
            Some(Update::Deleted { key, .. }) if key == "old"
        ));
        let other = SseEvent {
            event: "future".into(),
            id: None,
            data: "{}".into(),
        };
        assert_eq!(Update::decode(other).unwrap(), None);
        let broken = SseEvent {
            event: "config".into(),
            id: None,
            data: "{".into(),
        };
        assert!(Update::decode(broken).is_err());
    }
}
