//! Outbound guard probes: one Prometheus query, one webhook call, one "test query now", all
//! through one [`Prober`] that enforces the outbound policy ([`policy`]).
//!
//! Plain async functions with their own deadlines and bounded answers, turned into the domain's
//! facts ([`Sample`], [`HookAnswer`], [`QueryTest`]) and judged there. Nothing here holds a lock
//! or a database connection: the scheduler spawns them, so no release and no push-hub path ever
//! waits on another server.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{header, Client, Proxy, Response, Url};
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{timeout_at, Instant};

use crate::domain::plan::guard::{read_prometheus, HookAnswer, Sample};
use crate::domain::plan::probe::{test_prometheus, QueryTest};
use crate::domain::plan::{PrometheusGuard, WebhookGuard};

pub mod policy;
use policy::{is_denied, Denied, DENIED};
pub use policy::{Allow, Policy};

/// The `User-Agent` of every probe.
pub const USER_AGENT: &str = concat!("graycast/", env!("CARGO_PKG_VERSION"));
/// The longest a Prometheus query may take (less when the guard's interval is shorter).
pub const PROMETHEUS_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest Prometheus answer read; a larger one is an error.
pub const MAX_PROMETHEUS_ANSWER: usize = 1024 * 1024;
/// How much of a webhook's answer is read when its guard quotes it (`quote_body`).
pub const MAX_HOOK_ANSWER: usize = 4096;
/// Guard probes running at once on one server, by default.
pub const DEFAULT_MAX_PROBES_IN_FLIGHT: usize = 64;
/// What every failure to get an answer says: refused, reset, unknown name, TLS, closed early —
/// one sentence, so an answer never tells a closed port from an open one.
pub const UNREACHABLE: &str = "could not reach the url";
/// How long an idle pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(30);
/// Never sent through a proxy, whatever `NO_PROXY` says.
const LOOPBACK: &str = "localhost,127.0.0.0/8,::1";

/// Looks a host name up (tests give a fixed table instead of the system's resolver).
pub type Lookup = dyn Fn(&str) -> std::io::Result<Vec<IpAddr>> + Send + Sync;

/// Everything the server fetches on a user's behalf goes through one `Prober`: the HTTP client,
/// the outbound [`Policy`] it enforces, and the bound on probes in flight.
///
/// The client: rustls, no redirects (a 3xx answer is judged as it is), `User-Agent:
/// graycast/VERSION`, and a resolver that keeps only the addresses the policy admits, at every
/// new connection (so a name cannot change its answer after a check). URLs naming an address
/// never reach a resolver; [`Prober::admit`] checks them before each request. The proxies of
/// the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`) are used, never for
/// loopback, and only when the policy admits the proxy itself. No timeouts of its own: each call
/// has one deadline for resolving, connecting and answering. Clones share all of it.
#[derive(Clone)]
pub struct Prober {
    client: Client,
    policy: Arc<Policy>,
    lookup: Option<Arc<Lookup>>,
    slots: Arc<Semaphore>,
    max_in_flight: usize,
}

impl Prober {
    /// The server's prober: the environment's proxies and the system's resolver.
    pub fn new(policy: Policy, max_in_flight: usize) -> Self {
        Self::with(policy, max_in_flight, |name| std::env::var(name).ok(), None)
    }

    /// [`Prober::new`] with the environment read through `var` and, when given, host names
    /// looked up in `lookup` instead of the system's resolver.
    pub fn with(
        policy: Policy,
        max_in_flight: usize,
        var: impl Fn(&str) -> Option<String>,
        lookup: Option<Arc<Lookup>>,
    ) -> Self {
        let policy = Arc::new(policy);
        let resolver = Arc::new(Resolver {
            policy: policy.clone(),
            lookup: lookup.clone(),
        });
        let mut builder = Client::builder()
            .use_rustls_tls()
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(resolver)
            .pool_idle_timeout(POOL_IDLE)
            .no_proxy();
        for proxy in env_proxies(&var, &policy) {
            builder = builder.proxy(proxy);
        }
        let client = builder
            .build()
            // Only a broken TLS backend fails here; the proxies were already checked.
            .unwrap_or_else(|e| panic!("the probe client cannot be built: {e}"));
        let max_in_flight = max_in_flight.max(1);
        Self {
            client,
            policy,
            lookup,
            slots: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
        }
    }

    /// The server listens on `addr`: from now on no probe reaches it.
    pub fn listening_on(&self, addr: SocketAddr) {
        self.policy.listening_on(addr);
    }

    /// A place among the probes in flight, held while the probe runs; `None` when all
    /// [`Prober::max_in_flight`] are taken.
    pub fn try_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// Whether the policy lets a request go to `url`: an address in the URL is checked here
    /// (it never reaches the resolver), and so is a name on the listener's port (the resolver
    /// does not see ports). Every other name is checked by the resolver, at each connection.
    pub async fn admit(&self, url: &Url) -> Result<(), Denied> {
        let port = url.port_or_known_default().unwrap_or(0);
        if let Some(ip) = address_of(url) {
            return if !self.policy.admits(None, ip) || self.policy.is_listener(ip, port) {
                Err(Denied)
            } else {
                Ok(())
            };
        }
        match url.host_str() {
            Some(name) if self.policy.listener_port() == Some(port) => {
                let ips = lookup(self.lookup.as_deref(), name)
                    .await
                    .unwrap_or_default();
                if ips.iter().any(|ip| self.policy.is_listener(*ip, port)) {
                    return Err(Denied);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// The address a URL names itself (`http://10.0.0.1/`, `http://[::1]/`; numeric forms such as
/// `http://2130706433/` were already read as addresses by the URL parser), if it does.
fn address_of(url: &Url) -> Option<IpAddr> {
    url.host_str()?.trim_matches(['[', ']']).parse().ok()
}

/// Looks `host` up in `table`, or with the system's resolver.
async fn lookup(table: Option<&Lookup>, host: &str) -> std::io::Result<Vec<IpAddr>> {
    match table {
        Some(table) => table(host),
        None => Ok(tokio::net::lookup_host((host, 0))
            .await?
            .map(|a| a.ip())
            .collect()),
    }
}

/// The probe client's resolver: the addresses of a name, less those the policy denies.
struct Resolver {
    policy: Arc<Policy>,
    lookup: Option<Arc<Lookup>>,
}

impl Resolve for Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        let policy = self.policy.clone();
        let table = self.lookup.clone();
        Box::pin(async move {
            let found = lookup(table.as_deref(), &host).await?;
            let admitted: Vec<SocketAddr> = found
                .iter()
                .filter(|ip| policy.admits(Some(&host), **ip))
                .map(|ip| SocketAddr::new(*ip, 0))
                .collect();
            if admitted.is_empty() && !found.is_empty() {
                return Err(Box::new(Denied) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(admitted.into_iter()) as Addrs)
        })
    }
}

fn env_proxies(var: &impl Fn(&str) -> Option<String>, policy: &Policy) -> Vec<Proxy> {
    let get = |names: [&str; 2]| {
        names
            .into_iter()
            .find_map(|name| var(name).filter(|v| !v.trim().is_empty()))
    };
    let listed = get(["NO_PROXY", "no_proxy"]).unwrap_or_default();
    let no_proxy = reqwest::NoProxy::from_string(&format!("{listed},{LOOPBACK}"));
    let mut proxies = Vec::new();
    let mut add = |url: String, make: fn(String) -> reqwest::Result<Proxy>, name: &str| {
        // A proxy named by its address never meets the resolver: the policy is applied here.
        let denied = Url::parse(&url).ok().and_then(|u| address_of(&u));
        if denied.is_some_and(|ip| !policy.admits(None, ip)) {
            tracing::warn!(
                "guard probes ignore {name}: the outbound policy does not allow its address (allow it with --outbound-allow)"
            );
            return;
        }
        match make(url) {
            Ok(proxy) => proxies.push(proxy.no_proxy(no_proxy.clone())),
            Err(e) => tracing::warn!("guard probes ignore {name}: {e}"),
        }
    };
    if let Some(url) = get(["HTTP_PROXY", "http_proxy"]) {
        add(url, Proxy::http, "HTTP_PROXY");
    }
    if let Some(url) = get(["HTTPS_PROXY", "https_proxy"]) {
        add(url, Proxy::https, "HTTPS_PROXY");
    }
    if let Some(url) = get(["ALL_PROXY", "all_proxy"]) {
        add(url, Proxy::all, "ALL_PROXY");
    }
    proxies
}

/// How long one query of `guard` may take: [`PROMETHEUS_TIMEOUT`], or its interval if shorter.
pub fn prometheus_timeout(guard: &PrometheusGuard) -> Duration {
    PROMETHEUS_TIMEOUT.min(Duration::from_secs(u64::from(guard.interval_secs.max(1))))
}

/// One evaluation of a Prometheus guard: `GET {url}/api/v1/query?query=…` with `query` (already
/// substituted), read by the guard's rule. Every failure to get an answer is [`Sample::Error`].
pub async fn prometheus(prober: &Prober, guard: &PrometheusGuard, query: &str) -> Sample {
    match fetch_query(prober, &guard.url, query, prometheus_timeout(guard)).await {
        Ok(body) => read_prometheus(&body),
        Err(why) => Sample::Error(why),
    }
}

/// One population's query of a compare guard: the answer's body, or why there is none.
pub async fn compare_query(
    prober: &Prober,
    guard: &crate::domain::plan::CompareGuard,
    query: &str,
) -> Result<Value, String> {
    fetch_query(prober, &guard.url, query, compare_timeout(guard)).await
}

/// How long a compare guard's query may take: as a Prometheus guard's.
pub fn compare_timeout(guard: &crate::domain::plan::CompareGuard) -> Duration {
    PROMETHEUS_TIMEOUT.min(Duration::from_secs(u64::from(guard.interval_secs.max(1))))
}

/// "Test query now": what `query` gives at `url` right now, as the guard would read it.
pub async fn test_query(prober: &Prober, url: &str, query: &str) -> QueryTest {
    match fetch_query(prober, url, query, PROMETHEUS_TIMEOUT).await {
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

/// Why a request got no answer: the policy's sentence, or [`UNREACHABLE`] whatever the cause.
fn failure(e: &reqwest::Error) -> &'static str {
    if is_denied(e) {
        DENIED
    } else {
        UNREACHABLE
    }
}

/// A duration for messages: `10 s`, `1.5 s`.
fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// The answer of a query as JSON, or a short sentence saying why there is none.
async fn fetch_query(
    prober: &Prober,
    base: &str,
    query: &str,
    limit: Duration,
) -> Result<Value, String> {
    let url = query_url(base, query)?;
    let at = place(&url);
    let deadline = Instant::now() + limit;
    let answer = async {
        prober
            .admit(&url)
            .await
            .map_err(|denied| format!("Prometheus at {at}: {denied}"))?;
        let response = prober
            .client
            .get(url)
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("Prometheus at {at}: {}", failure(&e)))?;
        let status = response.status();
        let (bytes, cut) = read_up_to(response, MAX_PROMETHEUS_ANSWER)
            .await
            .map_err(|_| format!("Prometheus at {at}: the answer broke off"))?;
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

/// One call of a webhook guard: POST `body` as JSON within `timeout_secs`. The status is what
/// counts; the first line of what the hook said comes with a failing status only when the guard
/// quotes answers (`quote_body`), else the body is not even read.
pub async fn webhook(prober: &Prober, guard: &WebhookGuard, body: &Value) -> HookAnswer {
    let url = match web_url(&guard.url) {
        Ok(url) => url,
        Err(why) => return HookAnswer::Unreachable(why),
    };
    let at = place(&url);
    let deadline = Instant::now() + Duration::from_secs(u64::from(guard.timeout_secs.max(1)));
    let call = async {
        prober.admit(&url).await?;
        Ok::<_, Denied>(prober.client.post(url).json(body).send().await)
    };
    let response = match timeout_at(deadline, call).await {
        Err(_) => return HookAnswer::TimedOut,
        Ok(Err(denied)) => return HookAnswer::Unreachable(format!("{at}: {denied}")),
        Ok(Ok(Err(e))) if e.is_timeout() => return HookAnswer::TimedOut,
        Ok(Ok(Err(e))) => return HookAnswer::Unreachable(format!("{at}: {}", failure(&e))),
        Ok(Ok(Ok(response))) => response,
    };
    let code = response.status().as_u16();
    if response.status().is_success() || code == 425 || !guard.quote_body {
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

/// What a notification's receiver did with one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// It answered with this status (2xx: delivered).
    Status(u16),
    /// No answer: why, naming the place but never the credentials in the URL.
    Failed(String),
}

/// How much of a receiver's answer is read (the status is what counts; the rest is dropped).
const MAX_RECEIVER_ANSWER: usize = 4096;

/// POSTs one notification `body` with `headers` to `url` within `timeout`, through the
/// outbound policy like every fetch of the server.
pub async fn deliver(
    prober: &Prober,
    url: &str,
    headers: &[(&'static str, String)],
    body: Vec<u8>,
    timeout: Duration,
) -> Sent {
    let url = match web_url(url) {
        Ok(url) => url,
        Err(why) => return Sent::Failed(why),
    };
    let at = place(&url);
    let deadline = Instant::now() + timeout;
    let call = async {
        prober.admit(&url).await?;
        let mut request = prober
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        Ok::<_, Denied>(request.send().await)
    };
    match timeout_at(deadline, call).await {
        Err(_) | Ok(Ok(Err(_))) if Instant::now() >= deadline => {
            Sent::Failed(format!("{at}: no answer within {} s", timeout.as_secs()))
        }
        Err(_) => Sent::Failed(format!("{at}: no answer within {} s", timeout.as_secs())),
        Ok(Err(denied)) => Sent::Failed(format!("{at}: {denied}")),
        Ok(Ok(Err(e))) => Sent::Failed(format!("{at}: {}", failure(&e))),
        Ok(Ok(Ok(response))) => {
            let code = response.status().as_u16();
            // Read a little of the answer so the connection can be reused; never wait long.
            let _ = timeout_at(deadline, read_up_to(response, MAX_RECEIVER_ANSWER)).await;
            Sent::Status(code)
        }
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
