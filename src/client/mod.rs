//! The subscriber side (native only): an SDK for services and the `graycast agent`.
//!
//! - [`Client`]: resolve one config, report applied/failed, open a [`Watcher`].
//! - [`Watcher`]: the watch stream (the specification, section 3) with explicit [`WatchState`]s,
//!   exponential backoff with full jitter (capped at 30 s), resume with `Last-Event-ID`, and a
//!   stream of [`Update`]s.
//! - [`KeyRules`]: local per-request evaluation of rules mode (the specification, section 2).
//! - [`agent`]: writes configs to a directory, runs a reload command, reports.
//!
//! Talk `https://` to a remote server: TLS is rustls (no OpenSSL), trusting the system's roots
//! plus any private CA given to [`ClientBuilder::ca_cert_pem`]. Plain `http://` is accepted only
//! for a server on loopback (`127.0.0.0/8`, `::1`, `localhost`) unless
//! [`ClientBuilder::insecure`] allows it, so a token never crosses a network unencrypted by
//! accident.
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
use std::net::IpAddr;
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

/// How to reach the server: [`Client::builder`], then [`ClientBuilder::build`]. (Not `Debug`:
/// it holds the token.)
#[derive(Clone)]
pub struct ClientBuilder {
    base: String,
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

    /// Checks the URL and the certificates; connects to nothing yet.
    pub fn build(self) -> Result<Client, ClientError> {
        let base = self.base.trim_end_matches('/').to_string();
        let https = check_server_url(&base, self.insecure)?;
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
                .https_only(https);
            for cert in &roots {
                builder = builder.add_root_certificate(cert.clone());
            }
            builder
        };
        let http = builder().build()?;
        let watch_http = builder().pool_max_idle_per_host(0).build()?;
        Ok(Client {
            base,
            token: self.token,
            http,
            watch_http,
        })
    }
}

/// `Ok(true)` for an `https://` URL, `Ok(false)` for an `http://` one that may be used: on
/// loopback, or anywhere when `insecure`.
fn check_server_url(base: &str, insecure: bool) -> Result<bool, ClientError> {
    let url = reqwest::Url::parse(base).map_err(|e| {
        ClientError::Invalid(format!(
            "server URL {base:?} is not a URL ({e}); write it like https://graycast.example.com"
        ))
    })?;
    match url.scheme() {
        "https" => return Ok(true),
        "http" => {}
        _ => {
            return Err(ClientError::Invalid(format!(
                "server URL {base:?} must start with https:// (or http:// for a server on \
                 loopback)"
            )))
        }
    }
    // The URL parser has lowercased names and normalised addresses (`127.1` → `127.0.0.1`).
    let host = url.host_str().unwrap_or_default();
    let loopback = match host.trim_start_matches('[').trim_end_matches(']').parse() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|ip| ip.is_loopback())
        }
        Err(_) => host == "localhost",
    };
    if loopback || insecure {
        return Ok(false);
    }
    Err(ClientError::Invalid(format!(
        "refusing plain http:// to {host}, which is not on loopback: the token and configs \
         would cross the network unencrypted. Use https:// (add the server's CA with --ca-cert \
         FILE if it is private), or allow plain HTTP on a trusted network with --insecure \
         (SDK: Client::builder(…).insecure(true))"
    )))
}

impl Client {
    /// `base` is the server's URL, e.g. `https://graycast.example.com` or
    /// `http://127.0.0.1:8080`; see [`Client::builder`] for a private CA or plain HTTP off
    /// loopback.
    pub fn new(base: &str, token: &str) -> Result<Self, ClientError> {
        Self::builder(base, token).build()
    }

    pub fn builder(base: &str, token: &str) -> ClientBuilder {
        ClientBuilder {
            base: base.to_string(),
            token: token.to_string(),
            ca_certs: Vec::new(),
            insecure: false,
        }
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

#[cfg(test)]
mod tests {
    use super::check_server_url;

    #[test]
    fn plain_http_only_on_loopback_unless_insecure() {
        for base in [
            "http://127.0.0.1:8080",
            "http://127.3.2.1",
            "http://localhost:1",
            "http://LOCALHOST",
            "http://[::1]:8080",
            "http://[::ffff:127.0.0.1]:8080",
        ] {
            assert!(!check_server_url(base, false).unwrap(), "{base}");
        }
        for base in [
            "http://graycast.example.com",
            "http://10.0.0.7:8080",
            "http://[2001:db8::1]",
            "http://localhost.example.com",
            "http://0.0.0.0:8080",
        ] {
            let refused = check_server_url(base, false).unwrap_err().to_string();
            assert!(refused.contains("--insecure"), "{base}: {refused}");
            assert!(!check_server_url(base, true).unwrap(), "{base}");
        }
        assert!(check_server_url("https://graycast.example.com", false).unwrap());
        assert!(check_server_url("ftp://graycast.example.com", true).is_err());
        assert!(check_server_url("graycast.example.com:8080", true).is_err());
    }
}
