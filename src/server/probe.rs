//! Outbound guard probes: one Prometheus query, one webhook call.
//!
//! A minimal stand-in with the final signatures, to be replaced by the full version (proxies,
//! bounded answers, "test query now") when that branch is merged. Each call has its own
//! deadline; nothing here holds a lock or a database connection.

use std::time::Duration;

use reqwest::Client;

use crate::domain::plan::guard::{read_prometheus, HookAnswer, Sample};
use crate::domain::plan::{PrometheusGuard, WebhookGuard};

/// The longest a Prometheus query may take (less when the guard's interval is shorter).
pub const PROMETHEUS_TIMEOUT: Duration = Duration::from_secs(10);

/// The probe client: no redirects (a 3xx answer is judged as it is).
pub fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .unwrap_or_else(|e| panic!("the probe client cannot be built: {e}"))
}

/// How long one query of `guard` may take.
pub fn prometheus_timeout(guard: &PrometheusGuard) -> Duration {
    PROMETHEUS_TIMEOUT.min(Duration::from_secs(u64::from(guard.interval_secs.max(1))))
}

/// `GET {url}/api/v1/query?query=…` with `query` (already substituted), read by the guard's rule.
pub async fn prometheus(client: &Client, guard: &PrometheusGuard, query: &str) -> Sample {
    let url = format!("{}/api/v1/query", guard.url.trim_end_matches('/'));
    let request = client
        .get(url)
        .query(&[("query", query)])
        .timeout(prometheus_timeout(guard));
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return Sample::Error("Prometheus did not answer in time".into())
        }
        Err(e) => return Sample::Error(format!("Prometheus could not be asked: {e}")),
    };
    let status = response.status();
    match response.json::<serde_json::Value>().await {
        Ok(body) => read_prometheus(&body),
        Err(_) => Sample::Error(format!("Prometheus answered {status} without a JSON body")),
    }
}

/// POSTs `body` to the webhook; its status, a timeout, or why it could not be called.
pub async fn webhook(
    client: &Client,
    guard: &WebhookGuard,
    body: &serde_json::Value,
) -> HookAnswer {
    let request = client
        .post(&guard.url)
        .json(body)
        .timeout(Duration::from_secs(u64::from(guard.timeout_secs.max(1))));
    match request.send().await {
        Ok(response) => HookAnswer::Status(response.status().as_u16()),
        Err(e) if e.is_timeout() => HookAnswer::TimedOut,
        Err(e) => HookAnswer::Unreachable(e.to_string()),
    }
}
