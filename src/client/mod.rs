//! The subscriber side (native only): an SDK for services and the `graycast agent`.
//!
//! - [`Client`]: resolve one config, report applied/failed, open a [`Watcher`].
//! - [`Watcher`]: the watch stream (PRODUCT.md section 3) with explicit [`WatchState`]s,
//!   exponential backoff with full jitter (capped at 30 s), resume with `Last-Event-ID`, and a
//!   stream of [`Update`]s.
//! - [`KeyRules`]: local per-request evaluation of rules mode (PRODUCT.md section 2).
//! - [`agent`]: writes configs to a directory, runs a reload command, reports.
//!
//! The HTTP client is built without TLS: talk plain HTTP to a server on loopback or inside a
//! trusted network (or through a local TLS-terminating proxy).
//!
//! ```no_run
//! # async fn demo() -> Result<(), graycast::client::ClientError> {
//! use graycast::client::{Client, Update, WatchOptions};
//! let client = Client::new("http://127.0.0.1:8080", "gc_…")?;
//! let mut watcher = client.watch(WatchOptions::new("shop", "prod", "pod-1"));
//! while let Some(update) = watcher.next().await {
//!     if let Update::Config { config, .. } = update {
//!         println!("{} is now version {}", config.key, config.version);
//!     }
//! }
//! # Ok(()) }
//! ```

pub mod agent;
mod rules;
pub mod sse;
mod watcher;

pub use rules::{Evaluation, KeyRules};
pub use watcher::{Backoff, Update, WatchMode, WatchOptions, WatchState, Watcher};

use crate::domain::Context;
use crate::model::{Report, Resolved};
use reqwest::StatusCode;
use std::time::Duration;

/// What went wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the server: {0}")]
    Http(#[from] reqwest::Error),
    /// The server answered with an error status; `message` is its `error.message` when present.
    #[error("the server answered {status}: {message}")]
    Status { status: StatusCode, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl ClientError {
    /// Whether retrying the same request later can succeed (network trouble, 5xx, 408, 429),
    /// as opposed to a request the server will keep refusing (bad token, unknown namespace).
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Http(_) => true,
            ClientError::Status { status, .. } => {
                status.is_server_error()
                    || *status == StatusCode::REQUEST_TIMEOUT
                    || *status == StatusCode::TOO_MANY_REQUESTS
            }
            ClientError::Invalid(_) => false,
        }
    }
}

/// A connection to one graycast server with one API token (role `subscriber` is enough).
#[derive(Clone)]
pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
    /// For watch streams: keeps no idle connection, so each stream opens its
    /// own and is served by the server's lean watch path (a few KiB per
    /// stream instead of ~20 on a reused connection).
    watch_http: reqwest::Client,
}

impl Client {
    /// `base` is the server's URL, e.g. `http://127.0.0.1:8080` (no TLS support: see the module
    /// documentation).
    pub fn new(base: &str, token: &str) -> Result<Self, ClientError> {
        let base = base.trim_end_matches('/').to_string();
        if !base.starts_with("http://") {
            return Err(ClientError::Invalid(format!(
                "server URL {base:?} must start with http:// (this build has no TLS; put a \
                 TLS-terminating proxy on loopback in front of a remote server)"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        let watch_http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(0)
            .build()?;
        Ok(Self {
            base,
            token: token.to_string(),
            http,
            watch_http,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET …/configs/{key}/resolve` for a context (`client_id`, `user_id` and the other keys as
    /// labels); `None` when nothing resolves (404).
    pub async fn resolve(
        &self,
        namespace: &str,
        env: &str,
        key: &str,
        context: &Context,
    ) -> Result<Option<Resolved>, ClientError> {
        let mut request = self
            .http
            .get(self.url(&format!(
                "/api/v1/namespaces/{namespace}/envs/{env}/configs/{key}/resolve"
            )))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(30));
        let labels: Vec<String> = context
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "client_id" | "user_id"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        for (name, value) in [
            ("client_id", context.get("client_id").cloned()),
            ("user_id", context.get("user_id").cloned()),
            ("labels", (!labels.is_empty()).then(|| labels.join(","))),
        ] {
            if let Some(value) = value {
                request = request.query(&[(name, value)]);
            }
        }
        let response = request.send().await?;
        if response.status() == StatusCode::NOT_FOUND {
            // A 404 also names an unknown namespace or key; both mean "nothing to serve".
            return Ok(None);
        }
        Ok(Some(check(response).await?.json().await?))
    }

    /// `POST /api/v1/report`: what this instance did with a version it was served.
    pub async fn report(&self, report: &Report) -> Result<(), ClientError> {
        let response = self
            .http
            .post(self.url("/api/v1/report"))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(30))
            .json(report)
            .send()
            .await?;
        check(response).await?;
        Ok(())
    }

    /// Opens the watch stream in the background; see [`Watcher`].
    pub fn watch(&self, options: WatchOptions) -> Watcher {
        Watcher::start(self.clone(), options)
    }
}

/// Passes successful responses through; turns error statuses into [`ClientError::Status`] with
/// the server's message.
async fn check(response: reqwest::Response) -> Result<reqwest::Response, ClientError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or(body);
    Err(ClientError::Status { status, message })
}
