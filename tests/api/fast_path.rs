//! Issue 16: the fast path for resolve and OFREP (src/server/fast.rs) — on the
//! wire, over raw TCP. Its answers equal the router's, it hands the rest of a
//! connection to hyper at the first request it does not answer, and every
//! error still comes from the router.

use crate::common::sse::PATIENCE;
use crate::common::{config_path, spawn_app, TestApp};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const NS: &str = "shop";
const ENV: &str = "prod";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// `shop/prod/app.json` (json) released at version 1 and `other.json`
/// released too; a subscriber token limited to shop/prod.
async fn shop() -> (TestApp, String) {
    shop_on(spawn_app().await).await
}

async fn shop_on(app: TestApp) -> (TestApp, String) {
    app.namespace(NS).await;
    for key in ["app.json", "other.json"] {
        app.config(NS, ENV, key, "json", r#"{"pool": 1}"#).await;
        app.release(NS, ENV, key, 1, "").await;
    }
    let token = app
        .token("gateway", "subscriber", Some(NS), Some(ENV))
        .await;
    (app, token)
}

/// One response as it came over the wire.
#[derive(Debug)]
struct Answer {
    status_line: String,
    /// In the order sent, names lowercase.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// A raw HTTP/1.1 connection.
struct Connection {
    stream: TcpStream,
    read: Vec<u8>,
}

impl Connection {
    async fn open(app: &TestApp) -> Self {
        let stream = TcpStream::connect(app.base.trim_start_matches("http://"))
            .await
            .expect("connect");
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            read: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream.write_all(bytes.as_ref()).await.unwrap();
    }

    /// Reads more; false at the end of the stream.
    async fn fill(&mut self, deadline: tokio::time::Instant) -> bool {
        let mut buf = [0u8; 8192];
        let n = tokio::time::timeout_at(deadline, self.stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no answer in time; read so far: {}",
                    String::from_utf8_lossy(&self.read)
                )
            })
            .unwrap_or(0);
        self.read.extend_from_slice(&buf[..n]);
        n > 0
    }

    /// The next response (a 304 has no body; every other one a length).
    async fn answer(&mut self) -> Answer {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let head_end = loop {
            if let Some(i) = self.read.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            assert!(
                self.fill(deadline).await,
                "closed before a whole head: {}",
                String::from_utf8_lossy(&self.read)
            );
        };
        let head = String::from_utf8(self.read[..head_end].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap().to_string();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (name, value) = l.split_once(": ").expect("a header line");
                (name.to_ascii_lowercase(), value.to_string())
            })
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        let end = head_end + 4 + length;
        while self.read.len() < end {
            assert!(self.fill(deadline).await, "closed before the whole body");
        }
        let body = self.read[head_end + 4..end].to_vec();
        self.read.drain(..end);
        Answer {
            status_line,
            headers,
            body,
        }
    }

    /// Whether the server closed the connection (after what was read).
    async fn closed(&mut self) -> bool {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        !self.fill(deadline).await
    }
}

fn resolve_request(token: &str, key: &str, extra: &str) -> String {
    format!(
        "GET {} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         traceparent: {TRACEPARENT}\r\n{extra}\r\n",
        config_path(
            NS,
            ENV,
            key,
            "/resolve?client_id=pod-1&labels=region%3Dbeijing"
        )
    )
}

/// A resolve of `app.json` for pod-1 with `query` after its `client_id`.
fn resolve_labels_request(token: &str, query: &str, extra: &str) -> String {
    format!(
        "GET {} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         traceparent: {TRACEPARENT}\r\n{extra}\r\n",
        config_path(
            NS,
            ENV,
            "app.json",
            &format!("/resolve?client_id=pod-1{query}")
        )
    )
}

/// `n` labels; an instance may have at most 32.
fn labels(n: usize) -> String {
    (0..n)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join(",")
}

fn ofrep_request(token: &str, path: &str, body: &str, extra: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\ntraceparent: {TRACEPARENT}\r\n\
         Content-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
}

const HEALTHZ: &str = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";

fn context(targeting_key: &str) -> String {
    json!({ "context": { "targetingKey": targeting_key, "region": "beijing" } }).to_string()
}

async fn metrics(app: &TestApp) -> String {
    let r = app.admin.get(app.url("/metrics")).send().await.unwrap();
    r.text().await.unwrap()
}

/// `graycast_http_fast_path_requests_total`.
async fn fast_count(app: &TestApp) -> u64 {
    let text = metrics(app).await;
    metric(&text, "graycast_http_fast_path_requests_total").expect("the fast path counter")
}

fn metric(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

/// The fast path's answer and hyper's agree on everything but the date, the
/// request id (unless the client sent one) and the span id of `traceparent`.
fn assert_same(fast: &Answer, hyper: &Answer) {
    assert_eq!(fast.status_line, hyper.status_line);
    assert_eq!(
        String::from_utf8_lossy(&fast.body),
        String::from_utf8_lossy(&hyper.body)
    );
    let names = |a: &Answer| a.headers.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(fast),
        names(hyper),
        "the same headers in the same order"
    );
    for ((name, fast_value), (_, hyper_value)) in fast.headers.iter().zip(&hyper.headers) {
        match name.as_str() {
            "date" => {}
            "x-request-id" => {
                assert_eq!(fast_value.len(), hyper_value.len(), "{name}");
            }
            "traceparent" => {
                // The caller's trace and flags; a span id of the server's own.
                assert_eq!(fast_value[..36], hyper_value[..36], "{name}");
                assert_eq!(fast_value[52..], hyper_value[52..], "{name}");
                assert_eq!(&fast_value[..36], &TRACEPARENT[..36]);
            }
            _ => assert_eq!(fast_value, hyper_value, "{name}"),
        }
    }
}

/// The fast path answers `request` first on a new connection; hyper answers it
/// after a `/healthz` on another: both answers, and the counter rose by one.
async fn fast_and_hyper(app: &TestApp, request: &str) -> (Answer, Answer) {
    let before = fast_count(app).await;
    let mut fast = Connection::open(app).await;
    fast.send(request).await;
    let fast = fast.answer().await;
    assert_eq!(fast_count(app).await, before + 1, "the fast path answered");
    let mut hyper = Connection::open(app).await;
    hyper.send(format!("{HEALTHZ}{request}")).await;
    assert!(hyper.answer().await.status_line.starts_with("HTTP/1.1 200"));
    let hyper = hyper.answer().await;
    assert_eq!(fast_count(app).await, before + 1, "hyper answered");
    (fast, hyper)
}

#[tokio::test]
async fn a_kept_alive_connection_serves_fast_until_another_route_then_hyper() {
    let (app, token) = shop().await;
    let series = "graycast_http_requests_total{method=\"GET\",route=\"/api/v1/namespaces/{ns}/envs/{env}/configs/{key}/resolve\",status=\"200\"}";
    let resolves = metric(&metrics(&app).await, series).unwrap_or(0);
    let before = fast_count(&app).await;
    let mut c = Connection::open(&app).await;
    let resolve = resolve_request(&token, "app.json", "");
    let mut answers = Vec::new();
    for _ in 0..2 {
        c.send(&resolve).await;
        answers.push(c.answer().await);
    }
    assert_eq!(fast_count(&app).await, before + 2);
    c.send(HEALTHZ).await;
    let health = c.answer().await;
    assert_eq!(health.status_line, "HTTP/1.1 200 OK");
    assert_eq!(health.body, b"ok");
    c.send(&resolve).await;
    answers.push(c.answer().await);
    // The third went to hyper with the rest of the connection.
    assert_eq!(fast_count(&app).await, before + 2);
    for answer in &answers {
        assert_eq!(answer.status_line, "HTTP/1.1 200 OK");
        assert_eq!(answer.json()["version"], 1);
        assert_eq!(answer.json()["content"], r#"{"pool": 1}"#);
        assert_eq!(answer.body, answers[0].body);
    }
    // Both paths count in the request metrics under the route template.
    assert_eq!(metric(&metrics(&app).await, series), Some(resolves + 3));
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_and_close_is_honoured() {
    let (app, token) = shop().await;
    let before = fast_count(&app).await;
    let mut c = Connection::open(&app).await;
    c.send(format!(
        "{}{}{}",
        resolve_request(&token, "app.json", "X-Request-Id: first\r\n"),
        resolve_request(&token, "other.json", "X-Request-Id: second\r\n"),
        resolve_request(&token, "app.json", "Connection: close\r\n"),
    ))
    .await;
    let first = c.answer().await;
    let second = c.answer().await;
    let last = c.answer().await;
    assert_eq!(first.header("x-request-id"), Some("first"));
    assert_eq!(first.json()["key"], "app.json");
    assert_eq!(second.header("x-request-id"), Some("second"));
    assert_eq!(second.json()["key"], "other.json");
    assert_eq!(last.header("connection"), Some("close"));
    assert!(first.header("connection").is_none());
    assert!(c.closed().await, "closed after the answer that said so");
    assert_eq!(fast_count(&app).await, before + 3);
}

#[tokio::test]
async fn fast_answers_equal_the_routers() {
    let (app, token) = shop().await;
    // resolve: 200, and 304 for its ETag.
    let (fast, hyper) = fast_and_hyper(&app, &resolve_request(&token, "app.json", "")).await;
    assert_same(&fast, &hyper);
    let etag = fast.header("etag").expect("an etag").to_string();
    let if_none_match = format!("If-None-Match: {etag}\r\n");
    let (fast, hyper) =
        fast_and_hyper(&app, &resolve_request(&token, "app.json", &if_none_match)).await;
    assert_eq!(fast.status_line, "HTTP/1.1 304 Not Modified");
    assert_same(&fast, &hyper);
    // A request id sent is kept.
    let with_id = resolve_request(&token, "app.json", "X-Request-Id: abc-1\r\n");
    let (fast, hyper) = fast_and_hyper(&app, &with_id).await;
    assert_eq!(fast.header("x-request-id"), Some("abc-1"));
    assert_same(&fast, &hyper);
    // The last answer of a connection says so, as hyper's does.
    let closing = resolve_request(&token, "app.json", "Connection: close\r\n");
    let (fast, hyper) = fast_and_hyper(&app, &closing).await;
    assert_eq!(fast.header("connection"), Some("close"));
    assert_same(&fast, &hyper);
    // Labels at their limit (32) are answered fast as well.
    let at_limit = resolve_labels_request(&token, &format!("&labels={}", labels(32)), "");
    let (fast, hyper) = fast_and_hyper(&app, &at_limit).await;
    assert_eq!(fast.status_line, "HTTP/1.1 200 OK");
    assert_same(&fast, &hyper);
    // OFREP, single and bulk, and the bulk 304.
    let single = ofrep_request(
        &token,
        "/ofrep/v1/evaluate/flags/app.json",
        &context("pod-1"),
        "",
    );
    let (fast, hyper) = fast_and_hyper(&app, &single).await;
    assert_eq!(fast.status_line, "HTTP/1.1 200 OK");
    assert_eq!(fast.json()["value"], json!({"pool": 1}));
    assert_same(&fast, &hyper);
    let bulk = ofrep_request(&token, "/ofrep/v1/evaluate/flags", &context("pod-1"), "");
    let (fast, hyper) = fast_and_hyper(&app, &bulk).await;
    assert_eq!(fast.json()["flags"].as_array().unwrap().len(), 2);
    assert_same(&fast, &hyper);
    let etag = fast.header("etag").expect("an etag").to_string();
    let bulk = ofrep_request(
        &token,
        "/ofrep/v1/evaluate/flags",
        &context("pod-1"),
        &format!("If-None-Match: {etag}\r\n"),
    );
    let (fast, hyper) = fast_and_hyper(&app, &bulk).await;
    assert_eq!(fast.status_line, "HTTP/1.1 304 Not Modified");
    assert_same(&fast, &hyper);
}

#[tokio::test]
async fn errors_come_from_the_router_as_before() {
    let (app, token) = shop().await;
    let before = fast_count(&app).await;
    let single = "/ofrep/v1/evaluate/flags/app.json";
    let cases = [
        (
            resolve_request("not-a-token", "app.json", ""),
            "401",
            "unauthorized",
        ),
        (
            resolve_request(&token, "missing.json", ""),
            "404",
            "not_found",
        ),
        (
            ofrep_request(&token, single, "{not json", ""),
            "400",
            "PARSE_ERROR",
        ),
        // Issue 25: labels over their limits, in the query and in `X-Labels`.
        (
            resolve_labels_request(&token, &format!("&labels={}", labels(33)), ""),
            "400",
            "invalid",
        ),
        (
            resolve_labels_request(&token, "", &format!("X-Labels: {}\r\n", labels(33))),
            "400",
            "invalid",
        ),
        (
            ofrep_request(&token, single, r#"{"context": {"region": "x"}}"#, ""),
            "400",
            "TARGETING_KEY_MISSING",
        ),
        (
            ofrep_request(
                &token,
                "/ofrep/v1/evaluate/flags/missing.json",
                &context("pod-1"),
                "",
            ),
            "404",
            "FLAG_NOT_FOUND",
        ),
    ];
    for (request, status, code) in &cases {
        // First on a connection, and after a fast answer on a kept-alive one.
        let mut first = Connection::open(&app).await;
        first.send(request).await;
        let mut second = Connection::open(&app).await;
        second
            .send(format!(
                "{}{request}",
                resolve_request(&token, "app.json", "")
            ))
            .await;
        assert!(second
            .answer()
            .await
            .status_line
            .starts_with("HTTP/1.1 200"));
        for answer in [first.answer().await, second.answer().await] {
            assert!(
                answer
                    .status_line
                    .starts_with(&format!("HTTP/1.1 {status} ")),
                "{answer:?}"
            );
            let body = answer.json();
            let got = body["error"]["code"]
                .as_str()
                .or(body["errorCode"].as_str());
            assert_eq!(got, Some(*code), "{body}");
        }
    }
    // Only the resolves in front of the errors were the fast path's.
    assert_eq!(fast_count(&app).await, before + cases.len() as u64);
}

#[tokio::test]
async fn a_body_in_two_writes_is_read_whole_and_one_over_the_limit_gets_413() {
    let (app, token) = shop().await;
    let before = fast_count(&app).await;
    let request = ofrep_request(
        &token,
        "/ofrep/v1/evaluate/flags/app.json",
        &context("pod-2"),
        "",
    );
    let split = request.len() - 10;
    let mut c = Connection::open(&app).await;
    c.send(&request[..split]).await;
    c.stream.flush().await.unwrap();
    // Apart, so the server reads them apart.
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.send(&request[split..]).await;
    let answer = c.answer().await;
    assert_eq!(answer.status_line, "HTTP/1.1 200 OK");
    assert_eq!(answer.json()["key"], "app.json");
    assert_eq!(fast_count(&app).await, before + 1);

    let big = json!({ "context": { "targetingKey": "k", "x": "y".repeat(70 * 1024) } }).to_string();
    let request = ofrep_request(&token, "/ofrep/v1/evaluate/flags/app.json", &big, "");
    let c = Connection::open(&app).await;
    let (mut reader, mut writer) = c.stream.into_split();
    // The server may answer before it has read it all.
    let sender = tokio::spawn(async move {
        let _ = writer.write_all(request.as_bytes()).await;
        writer
    });
    let mut read = Vec::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !read.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, reader.read(&mut buf))
            .await
            .expect("an answer in time")
            .unwrap_or(0);
        assert!(n > 0, "closed without an answer");
        read.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&read).to_string();
    assert!(head.starts_with("HTTP/1.1 413 "), "{head}");
    drop(sender);
    assert_eq!(fast_count(&app).await, before + 1);
}

#[tokio::test]
async fn an_idle_kept_alive_connection_closes_after_the_header_timeout() {
    let app = crate::common::spawn_app_with(|c| c.header_timeout = Duration::from_secs(1)).await;
    let (app, token) = shop_on(app).await;
    let before = fast_count(&app).await;
    let mut c = Connection::open(&app).await;
    c.send(resolve_request(&token, "app.json", "")).await;
    assert_eq!(c.answer().await.status_line, "HTTP/1.1 200 OK");
    assert_eq!(fast_count(&app).await, before + 1);
    let idle = tokio::time::Instant::now();
    assert!(c.closed().await);
    assert!(idle.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn a_body_that_stops_halfway_gets_the_routers_408() {
    let app = crate::common::spawn_app_with(|c| c.body_timeout = Duration::from_secs(1)).await;
    let (app, token) = shop_on(app).await;
    let before = fast_count(&app).await;
    let request = ofrep_request(
        &token,
        "/ofrep/v1/evaluate/flags/app.json",
        &context("pod-3"),
        "",
    );
    let mut c = Connection::open(&app).await;
    // A fast answer first: the stalled body is the fast path's to hand over.
    c.send(resolve_request(&token, "app.json", "")).await;
    assert_eq!(c.answer().await.status_line, "HTTP/1.1 200 OK");
    c.send(&request[..request.len() - 5]).await;
    let sent = tokio::time::Instant::now();
    let answer = c.answer().await;
    assert!(
        answer.status_line.starts_with("HTTP/1.1 408 "),
        "{answer:?}"
    );
    assert_eq!(answer.json()["errorCode"], "GENERAL");
    assert!(sent.elapsed() >= Duration::from_millis(900));
    assert_eq!(fast_count(&app).await, before + 1);
}

#[tokio::test]
async fn a_token_seen_for_the_first_time_is_read_and_answered_fast() {
    let (app, _) = shop().await;
    let fresh = app
        .token("new-gateway", "subscriber", Some(NS), Some(ENV))
        .await;
    let before = fast_count(&app).await;
    let mut c = Connection::open(&app).await;
    c.send(resolve_request(&fresh, "app.json", "")).await;
    let answer = c.answer().await;
    assert_eq!(answer.status_line, "HTTP/1.1 200 OK");
    assert_eq!(answer.json()["version"], 1);
    assert_eq!(fast_count(&app).await, before + 1);
}

#[tokio::test]
async fn shutting_down_closes_an_idle_kept_alive_connection_at_once() {
    let app = crate::common::spawn_app_with(|c| c.header_timeout = Duration::from_secs(300)).await;
    let (mut app, token) = shop_on(app).await;
    let before = fast_count(&app).await;
    let mut c = Connection::open(&app).await;
    c.send(resolve_request(&token, "app.json", "")).await;
    assert_eq!(c.answer().await.status_line, "HTTP/1.1 200 OK");
    assert_eq!(fast_count(&app).await, before + 1);
    // The server waits for every connection to end; this one idles, so it ends now.
    tokio::time::timeout(Duration::from_secs(30), app.restart_with(|_| {}))
        .await
        .expect("the server stopped without waiting out the idle connection");
    assert!(c.closed().await);
}
