//! Outbound guard probes: one Prometheus query, one webhook call, one "test query now".
//!
//! Plain async functions with their own deadlines and bounded answers, turned into the domain's
//! facts ([`Sample`], [`HookAnswer`], [`QueryTest`]) and judged there. Nothing here holds a lock
//! or a database connection: the scheduler spawns them, so no release and no push-hub path ever
//! waits on another server.

use std::time::Duration;

use reqwest::{header, Client, Proxy, Response, Url};
use serde_json::Value;
use tokio::time::{timeout_at, Instant};

use crate::domain::plan::guard::{read_prometheus, HookAnswer, Sample};
use crate::domain::plan::probe::{test_prometheus, QueryTest};
use crate::domain::plan::{PrometheusGuard, WebhookGuard};

/// The `User-Agent` of every probe.
pub const USER_AGENT: &str = concat!("graycast/", env!("CARGO_PKG_VERSION"));
/// The longest a Prometheus query may take (less when the guard's interval is shorter).
pub const PROMETHEUS_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest Prometheus answer read; a larger one is an error.
pub const MAX_PROMETHEUS_ANSWER: usize = 1024 * 1024;
/// How much of a webhook's answer is read (its first line is quoted in the guard's message).
pub const MAX_HOOK_ANSWER: usize = 4096;
/// Never sent through a proxy, whatever `NO_PROXY` says.
const LOOPBACK: &str = "localhost,127.0.0.0/8,::1";

/// The probe client: rustls, no redirects (a 3xx answer is judged as it is), the proxies of the
/// environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`) but never for loopback, and
/// `User-Agent: graycast/VERSION`. No timeouts of its own: each call has one deadline for
/// resolving, connecting and answering. Build one per server and share it (it pools connections).
pub fn client() -> Client {
    client_with_env(|name| std::env::var(name).ok())
}

/// [`client`] with the environment read through `var` (tests give their own).
pub fn client_with_env(var: impl Fn(&str) -> Option<String>) -> Client {
    let mut builder = Client::builder()
        .use_rustls_tls()
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    for proxy in env_proxies(&var) {
        builder = builder.proxy(proxy);
    }
    builder
        .build()
        // Only a broken TLS backend fails here; the proxies were already checked.
        .unwrap_or_else(|e| panic!("the probe client cannot be built: {e}"))
}

fn env_proxies(var: &impl Fn(&str) -> Option<String>) -> Vec<Proxy> {
    let get = |names: [&str; 2]| {
        names
            .into_iter()
            .find_map(|name| var(name).filter(|v| !v.trim().is_empty()))
    };
    let listed = get(["NO_PROXY", "no_proxy"]).unwrap_or_default();
    let no_proxy = reqwest::NoProxy::from_string(&format!("{listed},{LOOPBACK}"));
    let mut proxies = Vec::new();
    let mut add = |proxy: reqwest::Result<Proxy>, name: &str| match proxy {
        Ok(proxy) => proxies.push(proxy.no_proxy(no_proxy.clone())),
        Err(e) => tracing::warn!("guard probes ignore {name}: {e}"),
    };
    if let Some(url) = get(["HTTP_PROXY", "http_proxy"]) {
        add(Proxy::http(url), "HTTP_PROXY");
    }
    if let Some(url) = get(["HTTPS_PROXY", "https_proxy"]) {
        add(Proxy::https(url), "HTTPS_PROXY");
    }
    if let Some(url) = get(["ALL_PROXY", "all_proxy"]) {
        add(Proxy::all(url), "ALL_PROXY");
    }
    proxies
}

/// How long one query of `guard` may take: [`PROMETHEUS_TIMEOUT`], or its interval if shorter.
pub fn prometheus_timeout(guard: &PrometheusGuard) -> Duration {
    PROMETHEUS_TIMEOUT.min(Duration::from_secs(u64::from(guard.interval_secs.max(1))))
}

/// One evaluation of a Prometheus guard: `GET {url}/api/v1/query?query=…` with `query` (already
/// substituted), read by the guard's rule. Every failure to get an answer is [`Sample::Error`].
pub async fn prometheus(client: &Client, guard: &PrometheusGuard, query: &str) -> Sample {
    match fetch_query(client, &guard.url, query, prometheus_timeout(guard)).await {
        Ok(body) => read_prometheus(&body),
        Err(why) => Sample::Error(why),
    }
}

/// "Test query now": what `query` gives at `url` right now, as the guard would read it.
pub async fn test_query(client: &Client, url: &str, query: &str) -> QueryTest {
    match fetch_query(client, url, query, PROMETHEUS_TIMEOUT).await {
        Ok(body) => test_prometheus(&body),
        Err(why) => QueryTest::failed(why),
    }
}

/// `{url}/api/v1/query?query=…`: the path appended to the URL's own (a trailing `/` or not), its
/// query parameters kept, the fragment dropped.
pub fn query_url(base: &str, query: &str) -> Result<Url, String> {
    let mut url = web_url(base)?;
    let path = format!("{}/api/v1/query", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_fragment(None);
    url.query_pairs_mut().append_pair("query", query);
    Ok(url)
}

fn web_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("the url is not valid: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err("the url must be http:// or https://".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the url has no host".into());
    }
    Ok(url)
}

/// Where a URL points, for messages: host and port, never its credentials, path or query.
fn place(url: &Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// What went wrong with a call, in a few words: the innermost cause ("Connection refused").
fn cause(e: &reqwest::Error) -> String {
    let mut inner: &dyn std::error::Error = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    let text = inner.to_string();
    if e.is_connect() {
        format!("could not connect: {text}")
    } else {
        text
    }
}

/// A duration for messages: `10 s`, `1.5 s`.
fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// The answer of a query as JSON, or a short sentence saying why there is none.
async fn fetch_query(
    client: &Client,
    base: &str,
    query: &str,
    limit: Duration,
) -> Result<Value, String> {
    let url = query_url(base, query)?;
    let at = place(&url);
    let deadline = Instant::now() + limit;
    let answer = async {
        let response = client
            .get(url)
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("Prometheus at {at}: {}", cause(&e)))?;
        let status = response.status();
        let (bytes, cut) = read_up_to(response, MAX_PROMETHEUS_ANSWER)
            .await
            .map_err(|e| format!("Prometheus at {at}: the answer broke off: {}", cause(&e)))?;
        if cut {
            return Err(format!(
                "Prometheus at {at} answered more than {} KiB",
                MAX_PROMETHEUS_ANSWER / 1024
            ));
        }
        let body: Option<Value> = serde_json::from_slice(&bytes).ok();
        if !status.is_success() {
            // Prometheus explains 400, 422 and 503 in its JSON (`{"status": "error", "error": …}`).
            let said = body
                .as_ref()
                .and_then(|b| b["error"].as_str())
                .map(|why| format!(": {}", first_line(why.as_bytes())))
                .unwrap_or_default();
            return Err(format!(
                "Prometheus at {at} answered HTTP {}{said}",
                status.as_u16()
            ));
        }
        body.ok_or_else(|| format!("Prometheus at {at} answered something other than JSON"))
    };
    match timeout_at(deadline, answer).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "Prometheus at {at} did not answer within {}",
            seconds(limit)
        )),
    }
}

/// The body's first `limit` bytes, read as a stream, and whether there was more.
async fn read_up_to(mut response: Response, limit: usize) -> reqwest::Result<(Vec<u8>, bool)> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - bytes.len();
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            return Ok((bytes, true));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok((bytes, false))
}

/// The first non-empty line of some text, trimmed and cut to 200 characters.
fn first_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    line.chars().take(200).collect()
}

/// One call of a webhook guard: POST `body` as JSON within `timeout_secs`. 2xx and 425 are
/// returned as their status; any other status with the first line of what the hook said.
pub async fn webhook(client: &Client, guard: &WebhookGuard, body: &Value) -> HookAnswer {
    let url = match web_url(&guard.url) {
        Ok(url) => url,
        Err(why) => return HookAnswer::Unreachable(why),
    };
    let at = place(&url);
    let deadline = Instant::now() + Duration::from_secs(u64::from(guard.timeout_secs.max(1)));
    let response = match timeout_at(deadline, client.post(url).json(body).send()).await {
        Err(_) => return HookAnswer::TimedOut,
        Ok(Err(e)) if e.is_timeout() => return HookAnswer::TimedOut,
        Ok(Err(e)) => return HookAnswer::Unreachable(format!("{at}: {}", cause(&e))),
        Ok(Ok(response)) => response,
    };
    let code = response.status().as_u16();
    if response.status().is_success() || code == 425 {
        return HookAnswer::Status(code);
    }
    // What it said, as far as it arrives in time; the status alone is enough to judge.
    let said = match timeout_at(deadline, read_up_to(response, MAX_HOOK_ANSWER)).await {
        Ok(Ok((bytes, _))) => first_line(&bytes),
        _ => String::new(),
    };
    if said.is_empty() {
        HookAnswer::Status(code)
    } else {
        HookAnswer::Said(code, said)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_urls_append_the_api_path_and_encode_the_query() {
        let q = r#"sum(rate(errors{key="app.yaml",lane="3"}[1m])) > 0 & x+y"#;
        let url = query_url("http://127.0.0.1:9090", q).unwrap();
        assert_eq!(url.path(), "/api/v1/query");
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(pairs, vec![("query".to_string(), q.to_string())]);
        assert!(!url.as_str().contains(' ') && !url.as_str().contains('"'));
        for base in ["http://h:9090/", "http://h:9090"] {
            assert_eq!(
                query_url(base, "up").unwrap().as_str(),
                "http://h:9090/api/v1/query?query=up"
            );
        }
        assert_eq!(
            query_url("https://h/prom/?tenant=a#x", "up")
                .unwrap()
                .as_str(),
            "https://h/prom/api/v1/query?tenant=a&query=up"
        );
        assert!(query_url("ftp://h", "up").is_err());
        assert!(query_url("not a url", "up").is_err());
    }

    #[test]
    fn messages_name_the_place_without_credentials() {
        let url = Url::parse("https://user:secret@prom.example/x?token=t").unwrap();
        assert_eq!(place(&url), "prom.example:443");
        assert_eq!(
            place(&Url::parse("http://[::1]:9090").unwrap()),
            "[::1]:9090"
        );
    }

    #[test]
    fn the_timeout_is_ten_seconds_or_the_interval() {
        let guard = |interval_secs| PrometheusGuard {
            url: "http://h".into(),
            query: "up".into(),
            min: None,
            max: Some(1.0),
            interval_secs,
            failures: 1,
            no_data: Default::default(),
        };
        assert_eq!(prometheus_timeout(&guard(30)), Duration::from_secs(10));
        assert_eq!(prometheus_timeout(&guard(2)), Duration::from_secs(2));
    }

    #[test]
    fn first_lines_skip_blank_lines_and_are_cut() {
        assert_eq!(first_line(b"\n  boom: db down \nmore"), "boom: db down");
        assert_eq!(first_line(&[b'x'; 500]).len(), 200);
        assert_eq!(first_line(b""), "");
    }
}
