//! The subscriber side (native only): an SDK for services and the `graycast agent`.
//!
//! - [`Client`]: resolve one config, report applied/failed, open a [`Watcher`].
//! - [`Watcher`]: the watch stream (docs/api.md) with explicit [`WatchState`]s,
//!   exponential backoff with full jitter (capped at 30 s), resume with `Last-Event-ID`, and a
//!   stream of [`Update`]s.
//! - [`KeyRules`]: local per-request evaluation of rules mode (docs/lanes.md#which-version-a-reader-gets).
//! - [`agent`]: writes configs to a directory, runs a reload command, reports.
//!
//! A client takes one server URL or several, the nodes of one cluster (
//! docs/nodes.md#failover-of-clients): [`Client::new`] and [`Client::builder`] accept a comma-separated list,
//! [`Client::builder_many`] a slice. Requests go to the current server; when it cannot be
//! reached (connection refused or reset, TLS failure, timeout), answers 5xx, or a watch stream
//! ends or stalls, the client moves to the next one, round robin, logging which and why; a
//! watch stream resumes there with `Last-Event-ID`. A 4xx answer is the same on every node and
//! is returned as it is, without moving.
//!
//! Talk `https://` to a remote server: TLS is rustls (no OpenSSL), trusting the system's roots
//! plus any private CA given to [`ClientBuilder::ca_cert_pem`]. Plain `http://` is accepted only
//! for a server on loopback (`127.0.0.0/8`, `::1`, `localhost`) unless
//! [`ClientBuilder::insecure`] allows it, so a token never crosses a network unencrypted by
//! accident.
//!
//! ```no_run
//! # async fn demo() -> Result<(), graycast_client::ClientError> {
//! use graycast_client::{Client, Update, WatchOptions};
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
mod servers;
pub mod sse;
mod watcher;

pub use rules::{Evaluation, KeyRules};
pub use watcher::{Backoff, Update, WatchMode, WatchOptions, WatchState, Watcher};

use graycast_domain::model::{Report, Resolved};
use graycast_domain::Context;
use reqwest::StatusCode;
use servers::Servers;
use std::sync::Arc;
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

    /// Whether another server of the list may succeed where this one failed: it could not be
    /// reached (refused, reset, TLS failure, timeout) or answered 5xx. A 4xx (bad token, no
    /// right, unknown namespace, bad request) is the same on every node.
    pub fn fails_over(&self) -> bool {
        match self {
            ClientError::Http(_) => true,
            ClientError::Status { status, .. } => status.is_server_error(),
            ClientError::Invalid(_) => false,
        }
    }
}

/// A connection to a graycast server, or to the nodes of one cluster, with one API token (role
/// `subscriber` is enough). Clones share the current server.
#[derive(Clone)]
pub struct Client {
    servers: Arc<Servers>,
    token: String,
    http: reqwest::Client,
    /// For watch streams: keeps no idle connection, so each stream opens its
    /// own and is served by the server's lean watch path (a few KiB per
    /// stream instead of ~20 on a reused connection).
    watch_http: reqwest::Client,
}

/// How to reach the server: [`Client::builder`], then [`ClientBuilder::build`]. (Not `Debug`:
/// it holds the token.)
#[derive(Clone)]
pub struct ClientBuilder {
    servers: Vec<String>,
    token: String,
    ca_certs: Vec<Vec<u8>>,
    insecure: bool,
}

impl ClientBuilder {
    /// Also trusts the CA certificate(s) in this PEM text (e.g. a private CA's `ca.pem`), on top
    /// of the system's roots.
    pub fn ca_cert_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_certs.push(pem.into());
        self
    }

    /// Allows plain `http://` to a server that is not on loopback: the token and the configs then
    /// cross the network unencrypted. Certificates of `https://` servers are checked regardless.
    pub fn insecure(mut self, insecure: bool) -> Self {
        self.insecure = insecure;
        self
    }

    /// Checks the URLs (none empty or listed twice) and the certificates; connects to nothing
    /// yet.
    pub fn build(self) -> Result<Client, ClientError> {
        let (urls, https) = servers::check_servers(&self.servers, self.insecure)?;
        let mut roots = Vec::new();
        for pem in &self.ca_certs {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                ClientError::Invalid(format!("the CA certificate is not valid PEM: {e}"))
            })?;
            if certs.is_empty() {
                return Err(ClientError::Invalid(
                    "the CA certificate holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
                        .into(),
                ));
            }
            roots.extend(certs);
        }
        let builder = || {
            let mut builder = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                // Never follow a redirect from https:// down to plain http://.
                .https_only(https)
                .redirect(reqwest::redirect::Policy::custom(no_downgrade));
            for cert in &roots {
                builder = builder.add_root_certificate(cert.clone());
            }
            builder
        };
        let http = builder().build()?;
        let watch_http = builder().pool_max_idle_per_host(0).build()?;
        Ok(Client {
            servers: Arc::new(Servers::new(urls)),
            token: self.token,
            http,
            watch_http,
        })
    }
}

/// Follows up to 10 redirects (as reqwest does by default), never one from `https://` to
/// plain `http://` (also when the list mixes `https://` with `http://` on loopback).
fn no_downgrade(attempt: reqwest::redirect::Attempt<'_>) -> reqwest::redirect::Action {
    if attempt.previous().len() >= 10 {
        attempt.error("more than 10 redirects")
    } else if attempt.url().scheme() == "http"
        && attempt.previous().iter().any(|url| url.scheme() == "https")
    {
        attempt.error("refusing a redirect from https:// to plain http://")
    } else {
        attempt.follow()
    }
}

impl Client {
    /// `base` is the server's URL, e.g. `https://graycast.example.com` or
    /// `http://127.0.0.1:8080`, or several separated by commas
    /// (`https://a.example.com,https://b.example.com`) to fail over between; see
    /// [`Client::builder`] for a private CA or plain HTTP off loopback.
    pub fn new(base: &str, token: &str) -> Result<Self, ClientError> {
        Self::builder(base, token).build()
    }

    /// Like [`Client::new`] (one URL or a comma-separated list), with more options.
    pub fn builder(base: &str, token: &str) -> ClientBuilder {
        Self::builder_with(servers::split_list(base), token)
    }

    /// Several servers, the nodes of one cluster (docs/nodes.md#failover-of-clients), tried in this
    /// order: the first until it fails, then the next, round robin.
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), graycast_client::ClientError> {
    /// let client = graycast_client::Client::builder_many(
    ///     &["https://graycast-1.internal", "https://graycast-2.internal"],
    ///     "gc_…",
    /// )
    /// .build()?;
    /// # Ok(()) }
    /// ```
    pub fn builder_many(servers: &[impl AsRef<str>], token: &str) -> ClientBuilder {
        let servers = servers.iter().map(|s| s.as_ref().to_string()).collect();
        Self::builder_with(servers, token)
    }

    fn builder_with(servers: Vec<String>, token: &str) -> ClientBuilder {
        ClientBuilder {
            servers,
            token: token.to_string(),
            ca_certs: Vec::new(),
            insecure: false,
        }
    }

    /// The server requests go to now (without a trailing `/`).
    pub fn server(&self) -> &str {
        self.servers.current().1
    }

    /// Every server of the list, in order.
    pub fn servers(&self) -> &[String] {
        self.servers.urls()
    }

    /// Sends the request `build` makes for a server's base URL to the current server, and on a
    /// failure that another server may not have ([`ClientError::fails_over`]) to the next ones,
    /// each once, without waiting: the caller's own retries back off. Any other answer (a 4xx
    /// too) is returned as it is.
    async fn send(
        &self,
        build: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let mut left = self.servers.len();
        loop {
            let (index, base) = self.servers.current();
            let error = match build(base).send().await {
                Ok(response) if response.status().is_server_error() => status_error(response).await,
                Ok(response) => return Ok(response),
                Err(e) => ClientError::from(e),
            };
            self.servers.move_on(index, &error);
            left -= 1;
            if left == 0 {
                return Err(error);
            }
        }
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
        let path = format!("/api/v1/namespaces/{namespace}/envs/{env}/configs/{key}/resolve");
        let labels: Vec<String> = context
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "client_id" | "user_id"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let query: Vec<(&str, String)> = [
            ("client_id", context.get("client_id").cloned()),
            ("user_id", context.get("user_id").cloned()),
            ("labels", (!labels.is_empty()).then(|| labels.join(","))),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
        .collect();
        let response = self
            .send(|base| {
                self.http
                    .get(format!("{base}{path}"))
                    .bearer_auth(&self.token)
                    .timeout(Duration::from_secs(30))
                    .query(&query)
            })
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            // A 404 also names an unknown namespace or key; both mean "nothing to serve".
            return Ok(None);
        }
        Ok(Some(check(response).await?.json().await?))
    }

    /// `POST /api/v1/report`: what this instance did with a version it was served.
    pub async fn report(&self, report: &Report) -> Result<(), ClientError> {
        let response = self
            .send(|base| {
                self.http
                    .post(format!("{base}/api/v1/report"))
                    .bearer_auth(&self.token)
                    .timeout(Duration::from_secs(30))
                    .json(report)
            })
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
    if response.status().is_success() {
        return Ok(response);
    }
    Err(status_error(response).await)
}

/// An error status as a [`ClientError::Status`] with the server's message.
async fn status_error(response: reqwest::Response) -> ClientError {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or(body);
    ClientError::Status { status, message }
}
