//! Issue 15, point 3: the polled guards against real servers. A real Prometheus (the Debian
//! package, started once per test binary by `common::prometheus`) scrapes an exporter whose
//! series the tests set; webhooks are test servers answering 2xx, 425, 500, a redirect, or
//! nothing in time. Also the dashboard's "test query now" (`POST /api/v1/rollout-probe/prometheus`).
//!
//! Issue 25, point 4: the outbound policy. Every target here is on loopback, which the tests'
//! probers and servers allow explicitly ([`loopback`], [`allow_loopback`]); the refusals of
//! the default policy are checked without a connection ever being made (a listener counts).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use graycast::domain::plan::guard::{
    judge_prometheus, judge_webhook, substitute, GuardStatus, HookAnswer, Reading, Sample,
};
use graycast::domain::plan::{EmptyResult, PrometheusGuard, WebhookGuard};
use graycast::server::probe::{self, policy::DENIED, Policy, Prober, UNREACHABLE};
use graycast::server::ServeConfig;
use serde_json::{json, Value};

use crate::common::prometheus::{prometheus, Prometheus};
use crate::common::{client, eventually, spawn_app, spawn_app_with, TestApp};

/// A server configuration that lets probes reach loopback (where every test target is).
pub fn allow_loopback(config: &mut ServeConfig) {
    config.outbound_allow = vec!["127.0.0.0/8".parse().unwrap()];
}

/// A prober allowed to reach loopback, without the environment's proxies.
fn loopback() -> Prober {
    Prober::with(
        Policy::new(vec!["127.0.0.0/8".parse().unwrap()]),
        probe::DEFAULT_MAX_PROBES_IN_FLIGHT,
        |_| None,
        None,
    )
}

fn guard(url: &str, query: &str, failures: u32, no_data: EmptyResult) -> PrometheusGuard {
    PrometheusGuard {
        url: url.into(),
        query: query.into(),
        min: Some(0.0),
        max: Some(0.05),
        interval_secs: 1,
        failures,
        no_data,
    }
}

/// Queries until the answer is `want` (the exporter's new value has been scraped).
async fn sample_until(
    guard: &PrometheusGuard,
    query: &str,
    want: impl Fn(&Sample) -> bool,
) -> Sample {
    let client = loopback();
    eventually(&format!("{query} to answer as wanted"), || async {
        let sample = probe::prometheus(&client, guard, query).await;
        want(&sample).then_some(sample)
    })
    .await
}

async fn value_until(guard: &PrometheusGuard, query: &str, value: f64) -> Sample {
    sample_until(guard, query, |s| *s == Sample::Value(value)).await
}

fn series(test: &str) -> String {
    format!(r#"probe_value{{test="{test}"}}"#)
}

#[tokio::test]
async fn a_value_within_bounds_passes() {
    let p = prometheus().await;
    p.gauge("within", &[], 0.02);
    let g = guard(&p.url, &series("within"), 2, EmptyResult::Wait);
    let sample = value_until(&g, &g.query, 0.02).await;
    let r = judge_prometheus(&g, 0, &sample);
    assert_eq!(
        (r.status, r.value, r.streak),
        (GuardStatus::Passing, Some(0.02), 0)
    );
    assert_eq!(r.message, "prometheus guard: 0.02 is within [0, 0.05]");
    // A URL with a trailing slash reaches the same API.
    let slash = guard(&format!("{}/", p.url), &g.query, 2, EmptyResult::Wait);
    assert_eq!(
        probe::prometheus(&loopback(), &slash, &g.query).await,
        Sample::Value(0.02)
    );
}

#[tokio::test]
async fn crossing_max_fails_after_failures_consecutive_readings() {
    let p = prometheus().await;
    let gauge = p.gauge("crossing", &[], 0.01);
    let g = guard(&p.url, &series("crossing"), 3, EmptyResult::Wait);
    let client = loopback();
    let good = value_until(&g, &g.query, 0.01).await;
    let mut reading = judge_prometheus(&g, 0, &good);
    assert_eq!(reading.status, GuardStatus::Passing);

    gauge.set(0.2);
    let over = value_until(&g, &g.query, 0.2).await;
    let mut statuses = Vec::new();
    for n in 1..=3 {
        let sample = if n == 1 {
            over.clone()
        } else {
            probe::prometheus(&client, &g, &g.query).await
        };
        reading = judge_prometheus(&g, reading.streak, &sample);
        assert_eq!(reading.streak, n, "{reading:?}");
        statuses.push(reading.status);
    }
    assert_eq!(
        statuses,
        [
            GuardStatus::NoData,
            GuardStatus::NoData,
            GuardStatus::Failing
        ]
    );
    assert_eq!(
        reading.message,
        "prometheus guard: 0.2 is above max 0.05 (3 in a row, limit 3)"
    );
    assert_eq!(reading.value, Some(0.2));

    // One good value ends the streak.
    gauge.set(0.03);
    let back = value_until(&g, &g.query, 0.03).await;
    let healed: Reading = judge_prometheus(&g, 2, &back);
    assert_eq!((healed.status, healed.streak), (GuardStatus::Passing, 0));
}

#[tokio::test]
async fn an_empty_result_is_no_data_or_what_the_guard_says() {
    let p = prometheus().await;
    let query = series("never-exported");
    let wait = guard(&p.url, &query, 1, EmptyResult::Wait);
    let sample = probe::prometheus(&loopback(), &wait, &query).await;
    assert_eq!(sample, Sample::Empty);
    let r = judge_prometheus(&wait, 0, &sample);
    assert_eq!(r.status, GuardStatus::NoData);
    assert_eq!(
        r.message,
        "prometheus guard: the query returned no data yet"
    );
    let pass = guard(&p.url, &query, 1, EmptyResult::Pass);
    assert_eq!(
        judge_prometheus(&pass, 0, &sample).status,
        GuardStatus::Passing
    );
    let fail = guard(&p.url, &query, 1, EmptyResult::Fail);
    assert_eq!(
        judge_prometheus(&fail, 0, &sample).status,
        GuardStatus::Failing
    );
    // NaN (an error ratio without traffic) is no data too.
    p.gauge("nan", &[], f64::NAN);
    let nan = series("nan");
    let seen = sample_until(&wait, &format!("count({nan})"), |s| {
        *s == Sample::Value(1.0)
    })
    .await;
    assert_eq!(seen, Sample::Value(1.0));
    assert_eq!(
        probe::prometheus(&loopback(), &wait, &nan).await,
        Sample::Empty
    );
}

#[tokio::test]
async fn several_samples_are_an_error_that_counts_toward_failures() {
    let p = prometheus().await;
    p.gauge("several", &[("pod", "a")], 1.0);
    p.gauge("several", &[("pod", "b")], 2.0);
    let g = guard(&p.url, &series("several"), 1, EmptyResult::Wait);
    let sample = sample_until(
        &g,
        &g.query,
        |s| matches!(s, Sample::Error(e) if e.contains("returned 2 samples")),
    )
    .await;
    let r = judge_prometheus(&g, 0, &sample);
    assert_eq!(r.status, GuardStatus::Failing);
    assert!(
        r.message
            .starts_with("prometheus guard: the query returned 2 samples"),
        "{}",
        r.message
    );
    // Aggregated, the same series are one sample.
    let sum = format!("sum({})", g.query);
    value_until(&g, &sum, 3.0).await;
}

#[tokio::test]
async fn template_variables_are_substituted_end_to_end() {
    let p = prometheus().await;
    let lane = [
        ("namespace", "shop"),
        ("env", "prod"),
        ("key", "app.yaml"),
        ("lane", "3"),
    ];
    p.gauge(
        "subst",
        &[&lane[..], &[("version", "7")][..]].concat(),
        0.03,
    );
    p.gauge("subst", &[&lane[..], &[("version", "6")][..]].concat(), 0.9);
    let template = r#"probe_value{test="subst",namespace="{{namespace}}",env="{{env}}",key="{{key}}",lane="{{lane}}",version="{{version}}"}"#;
    let g = guard(&p.url, template, 1, EmptyResult::Wait);
    let query = substitute(template, &[&lane[..], &[("version", "7")][..]].concat());
    assert!(!query.contains("{{"), "{query}");
    let sample = value_until(&g, &query, 0.03).await;
    assert_eq!(
        judge_prometheus(&g, 0, &sample).status,
        GuardStatus::Passing
    );
    let other = substitute(template, &[&lane[..], &[("version", "6")][..]].concat());
    let r = judge_prometheus(&g, 0, &value_until(&g, &other, 0.9).await);
    assert_eq!(r.status, GuardStatus::Failing);
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A test server on a free loopback port, on this test's runtime.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

/// Accepts connections and never answers; counts them.
async fn silent() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    (base, accepted)
}

fn error_of(sample: Sample) -> String {
    match sample {
        Sample::Error(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn prometheus_down_slow_or_refusing_is_an_error() {
    let client = loopback();
    let port = closed_port();
    let down = guard(
        &format!("http://127.0.0.1:{port}"),
        "up",
        1,
        EmptyResult::Wait,
    );
    let why = error_of(probe::prometheus(&client, &down, "up").await);
    // Issue 25: one sentence whatever the cause, never the system's error.
    assert_eq!(
        why,
        format!("Prometheus at 127.0.0.1:{port}: {UNREACHABLE}")
    );
    let r = judge_prometheus(&down, 0, &Sample::Error(why));
    assert_eq!(r.status, GuardStatus::Failing);

    // The interval (1 s) bounds a query that gets no answer.
    let slow = guard(&silent().await.0, "up", 1, EmptyResult::Wait);
    let started = Instant::now();
    let why = error_of(probe::prometheus(&client, &slow, "up").await);
    assert!(why.ends_with("did not answer within 1 s"), "{why}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // Prometheus's own refusal, with its reason.
    let p = prometheus().await;
    let real = guard(&p.url, "sum(", 1, EmptyResult::Wait);
    let why = error_of(probe::prometheus(&client, &real, "sum(").await);
    assert!(why.contains("answered HTTP 400: "), "{why}");
    assert!(why.contains("parse error"), "{why}");
    let matrix = series("never-exported") + "[1m]";
    let why = error_of(probe::prometheus(&client, &real, &matrix).await);
    assert!(why.contains("returned a matrix"), "{why}");

    // Something that is not Prometheus: too large, not JSON, a redirect (never followed).
    let big = "x".repeat(probe::MAX_PROMETHEUS_ANSWER + 1);
    let impostor = serve(
        Router::new()
            .route("/big/api/v1/query", get(move || async move { big }))
            .route("/html/api/v1/query", get(|| async { "<html>hi</html>" }))
            .route(
                "/moved/api/v1/query",
                get(|| async { (StatusCode::FOUND, [("location", "/html/api/v1/query")]) }),
            ),
    )
    .await;
    for (path, expected) in [
        ("big", "answered more than 1024 KiB"),
        ("html", "answered something other than JSON"),
        ("moved", "answered HTTP 302"),
    ] {
        let g = guard(&format!("{impostor}/{path}"), "up", 1, EmptyResult::Wait);
        let why = error_of(probe::prometheus(&client, &g, "up").await);
        assert!(why.ends_with(expected), "{path}: {why}");
    }
}

/// What the webhook server saw: the path, the body, the user agent and the authorization
/// header of each call.
type Calls = Arc<Mutex<Vec<(String, Value, String, String)>>>;

async fn hook_server() -> (String, Calls) {
    let calls: Calls = Arc::default();
    let seen = calls.clone();
    let record = move |uri: Uri, headers: HeaderMap, body: axum::Json<Value>| {
        let seen = seen.clone();
        async move {
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string()
            };
            let (agent, authorization) = (header("user-agent"), header("authorization"));
            seen.lock()
                .unwrap()
                .push((uri.path().to_string(), body.0, agent, authorization));
            match uri.path() {
                "/ok" => StatusCode::OK.into_response(),
                "/accepted" => StatusCode::NO_CONTENT.into_response(),
                "/early" => (StatusCode::TOO_EARLY, "warming up").into_response(),
                "/fail" => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "\ndatabase down\nat line 3",
                )
                    .into_response(),
                "/bare" => StatusCode::SERVICE_UNAVAILABLE.into_response(),
                "/moved" => (StatusCode::FOUND, [("location", "/ok")]).into_response(),
                _ => StatusCode::NOT_FOUND.into_response(),
            }
        }
    };
    let router = Router::new()
        .route("/slow", post(std::future::pending::<StatusCode>))
        .fallback(record);
    (serve(router).await, calls)
}

fn hook(url: String, failures: u32, timeout_secs: u32) -> WebhookGuard {
    WebhookGuard {
        url,
        interval_secs: 1,
        failures,
        timeout_secs,
        quote_body: false,
    }
}

fn lane_body() -> Value {
    json!({"namespace": "shop", "env": "prod", "key": "app.yaml", "lane": 3, "version": 7,
           "step": 1, "percentage": 25.0})
}

#[tokio::test]
async fn webhooks_pass_on_2xx_and_receive_the_lane() {
    let (base, calls) = hook_server().await;
    let client = loopback();
    for (path, code) in [("ok", 200), ("accepted", 204)] {
        let g = hook(format!("{base}/{path}"), 2, 5);
        let answer = probe::webhook(&client, &g, &lane_body()).await;
        assert_eq!(answer, HookAnswer::Status(code));
        let r = judge_webhook(&g, 1, &answer);
        assert_eq!((r.status, r.streak), (GuardStatus::Passing, 0));
        assert_eq!(r.message, format!("webhook guard: answered {code}"));
    }
    // Credentials in the URL go as basic auth, and never into a message.
    let with_credentials = base.replace("http://", "http://hook:s3cret@");
    let refused = hook(format!("{with_credentials}/fail"), 1, 5);
    let answer = probe::webhook(&client, &refused, &lane_body()).await;
    assert!(!judge_webhook(&refused, 0, &answer)
        .message
        .contains("s3cret"));
    let down = hook(
        format!("http://hook:s3cret@127.0.0.1:{}/", closed_port()),
        1,
        5,
    );
    let answer = probe::webhook(&client, &down, &lane_body()).await;
    let message = judge_webhook(&down, 0, &answer).message;
    assert!(
        message.contains(UNREACHABLE) && !message.contains("s3cret"),
        "{message}"
    );
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0].1, lane_body());
    assert_eq!(
        calls[0].2,
        format!("graycast/{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(calls[0].3, "");
    assert_eq!(calls[2].3, "Basic aG9vazpzM2NyZXQ=");
}

#[tokio::test]
async fn a_425_is_no_data_and_other_statuses_count_toward_failures() {
    let (base, _) = hook_server().await;
    let client = loopback();
    let early = hook(format!("{base}/early"), 2, 5);
    let answer = probe::webhook(&client, &early, &lane_body()).await;
    assert_eq!(answer, HookAnswer::Status(425));
    let r = judge_webhook(&early, 0, &answer);
    assert_eq!((r.status, r.streak), (GuardStatus::NoData, 0));

    // Issue 25, point 5: only the status, unless the guard quotes answers.
    let mut fail = hook(format!("{base}/fail"), 2, 5);
    let answer = probe::webhook(&client, &fail, &lane_body()).await;
    assert_eq!(answer, HookAnswer::Status(500));
    assert_eq!(
        judge_webhook(&fail, 0, &answer).message,
        "webhook guard: answered 500 (1 of 2 in a row before it fails)"
    );
    fail.quote_body = true;
    let answer = probe::webhook(&client, &fail, &lane_body()).await;
    assert_eq!(answer, HookAnswer::Said(500, "database down".into()));
    let first = judge_webhook(&fail, 0, &answer);
    assert_eq!((first.status, first.streak), (GuardStatus::NoData, 1));
    let answer = probe::webhook(&client, &fail, &lane_body()).await;
    let second = judge_webhook(&fail, first.streak, &answer);
    assert_eq!(second.status, GuardStatus::Failing);
    assert_eq!(
        second.message,
        r#"webhook guard: answered 500: "database down" (2 in a row, limit 2)"#
    );

    for (path, code) in [("bare", 503), ("moved", 302), ("missing", 404)] {
        let g = hook(format!("{base}/{path}"), 1, 5);
        let answer = probe::webhook(&client, &g, &lane_body()).await;
        assert_eq!(answer, HookAnswer::Status(code), "{path}");
        let r = judge_webhook(&g, 0, &answer);
        assert_eq!(r.status, GuardStatus::Failing, "{path}");
        assert!(r.message.contains(&format!("answered {code}")), "{r:?}");
    }
}

#[tokio::test]
async fn a_slow_or_unreachable_webhook_fails_within_its_timeout() {
    let (base, _) = hook_server().await;
    let client = loopback();
    let slow = hook(format!("{base}/slow"), 1, 1);
    let started = Instant::now();
    let answer = probe::webhook(&client, &slow, &lane_body()).await;
    assert_eq!(answer, HookAnswer::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(3));
    let r = judge_webhook(&slow, 0, &answer);
    assert_eq!(r.status, GuardStatus::Failing);
    assert_eq!(
        r.message,
        "webhook guard: no answer within 1 s (1 in a row, limit 1)"
    );
    let port = closed_port();
    let down = hook(format!("http://127.0.0.1:{port}/hook"), 1, 1);
    match probe::webhook(&client, &down, &lane_body()).await {
        HookAnswer::Unreachable(why) => {
            assert_eq!(why, format!("127.0.0.1:{port}: {UNREACHABLE}"))
        }
        other => panic!("expected unreachable, got {other:?}"),
    }
}

/// A proxy from the environment carries the calls to other hosts, never those to loopback; the
/// policy applies to the proxy itself.
#[tokio::test]
async fn proxies_from_the_environment_skip_loopback() {
    let p = prometheus().await;
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let proxy = serve(Router::new().fallback(move |uri: Uri| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(uri.to_string());
            axum::Json(json!({"status": "success",
                "data": {"resultType": "scalar", "result": [1, "42"]}}))
        }
    }))
    .await;
    let env = |name: &str| (name == "HTTP_PROXY").then(|| proxy.clone());
    let client = Prober::with(
        Policy::new(vec!["127.0.0.0/8".parse().unwrap()]),
        8,
        env,
        None,
    );
    let far = guard("http://prometheus.example:9090", "up", 1, EmptyResult::Wait);
    assert_eq!(
        probe::prometheus(&client, &far, "up").await,
        Sample::Value(42.0)
    );
    assert_eq!(
        *seen.lock().unwrap(),
        ["http://prometheus.example:9090/api/v1/query?query=up"]
    );
    let near = guard(&p.url, "vector(5)", 1, EmptyResult::Wait);
    assert_eq!(
        probe::prometheus(&client, &near, "vector(5)").await,
        Sample::Value(5.0)
    );
    assert_eq!(seen.lock().unwrap().len(), 1, "loopback went direct");

    // Where the policy denies the proxy's own address, it is not used: the call goes direct,
    // where the policy applies to the target (here a name the test resolves to loopback).
    let table: Arc<probe::Lookup> = Arc::new(|_: &str| Ok(vec!["127.0.0.1".parse().unwrap()]));
    let strict = Prober::with(Policy::default(), 8, env, Some(table));
    assert_eq!(
        probe::prometheus(&strict, &far, "up").await,
        Sample::Error(format!("Prometheus at prometheus.example:9090: {DENIED}"))
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "the denied proxy got nothing"
    );
}

const PROBE: &str = "/api/v1/rollout-probe/prometheus";

async fn test_query(app: &TestApp, body: Value) -> Value {
    let (status, answer) = app.post_json(PROBE, body).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

#[tokio::test]
async fn test_query_now_shows_the_value_the_samples_or_the_error() {
    let app = spawn_app_with(allow_loopback).await;
    let p: &Prometheus = prometheus().await;
    p.gauge("rest", &[("key", "app.yaml"), ("env", "prod")], 0.04);
    let query = r#"probe_value{test="rest",key="{{key}}",env="{{env}}"}"#;
    let answer = eventually("the test query to see the exporter", || async {
        let answer = test_query(
            &app,
            json!({"url": p.url, "query": query, "namespace": "shop", "env": "prod", "key": "app.yaml"}),
        )
        .await;
        (answer["value"] == 0.04).then_some(answer)
    })
    .await;
    assert_eq!(answer["samples"], 1);
    assert_eq!(answer["series"][0]["labels"]["key"], "app.yaml");
    assert_eq!(answer["series"][0]["value"], "0.04");
    assert!(answer.get("error").is_none(), "{answer}");

    let empty = test_query(&app, json!({"url": p.url, "query": series("nothing-here")})).await;
    assert_eq!(empty, json!({"samples": 0}));

    p.gauge("rest-many", &[("pod", "a")], 1.0);
    p.gauge("rest-many", &[("pod", "b")], 1.0);
    let many = eventually("both samples", || async {
        let a = test_query(&app, json!({"url": p.url, "query": series("rest-many")})).await;
        (a["samples"] == 2).then_some(a)
    })
    .await;
    assert!(many.get("value").is_none(), "{many}");
    assert_eq!(many["series"].as_array().unwrap().len(), 2);
    assert!(
        many["error"]
            .as_str()
            .unwrap()
            .contains("returned 2 samples"),
        "{many}"
    );

    let port = closed_port();
    let down = test_query(
        &app,
        json!({"url": format!("http://127.0.0.1:{port}/"), "query": "up"}),
    )
    .await;
    assert_eq!(down["samples"], 0);
    assert_eq!(
        down["error"],
        format!("Prometheus at 127.0.0.1:{port}: {UNREACHABLE}"),
        "{down}"
    );
}

#[tokio::test]
async fn test_query_now_checks_its_inputs_and_its_caller() {
    let app = spawn_app().await;
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}");
    for (body, field) in [
        (json!({"url": "ftp://h", "query": "up"}), "url"),
        (
            json!({"url": format!("http://h/{}", "x".repeat(2048)), "query": "up"}),
            "url",
        ),
        (json!({"url": "http:///x", "query": "up"}), "url"),
        (json!({"url": url, "query": " "}), "query"),
        (json!({"url": url, "query": "x".repeat(4097)}), "query"),
        (
            json!({"url": url, "query": "up", "namespace": "no such"}),
            "namespace",
        ),
        (json!({"url": url, "query": "up", "key": "../etc"}), "key"),
    ] {
        let (status, answer) = app.post_json(PROBE, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let (status, answer) = app
        .post_json(
            PROBE,
            json!({"url": url, "query": "up", "namespce": "shop"}),
        )
        .await;
    assert!(status.is_client_error(), "{answer}");

    let probe_as = |token: String, body: Value| {
        let app = &app;
        async move { app.post_with(&token, PROBE, body).await.status() }
    };
    let body = json!({"url": url, "query": "up", "env": "prod"});
    let viewer = app.token("t-viewer", "viewer", None, None).await;
    assert_eq!(probe_as(viewer, body.clone()).await, 403);
    let releaser = app.token("t-releaser", "releaser", None, None).await;
    assert_eq!(probe_as(releaser, body.clone()).await, 200);
    let staging = app
        .token("t-staging", "releaser", None, Some("staging"))
        .await;
    assert_eq!(probe_as(staging.clone(), body.clone()).await, 403);
    assert_eq!(
        probe_as(
            staging,
            json!({"url": url, "query": "up", "env": "staging"})
        )
        .await,
        200
    );
    let r = client()
        .post(app.url(PROBE))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The dashboard's session cookie works only from the dashboard's own origin.
    let r = app
        .admin
        .post(app.url(PROBE))
        .header("Origin", "http://evil.example")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

/// The dashboard's server function runs the same operation for the signed-in user.
#[tokio::test]
async fn the_dashboard_tests_a_query_through_its_server_function() {
    use graycast::api::probes::TestPrometheusQuery;
    use leptos::server_fn::ServerFn;
    let app = spawn_app_with(allow_loopback).await;
    let p = prometheus().await;
    let call = |c: reqwest::Client, query: &'static str| {
        let (app, url) = (&app, p.url.clone());
        async move {
            let r = c
                .post(app.url(TestPrometheusQuery::PATH))
                .header("Origin", app.base.clone())
                .form(&[("request[url]", url.as_str()), ("request[query]", query)])
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, answer) = call(app.admin.clone(), "vector(3)").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["value"], 3.0);
    assert_eq!(answer["samples"], 1);
    let viewer = app.user("vera", "viewer", None).await;
    let (status, answer) = call(viewer, "vector(3)").await;
    assert_eq!(status, 403, "{answer}");
}

/// At most `MAX_QUERY_TESTS` test queries wait on other servers at once; one more is 429.
#[tokio::test]
async fn test_queries_running_at_once_are_bounded() {
    use graycast::server::ops::probes::MAX_QUERY_TESTS;
    let app = Arc::new(spawn_app_with(allow_loopback).await);
    let (url, accepted) = silent().await;
    let body = json!({"url": url, "query": "up"});
    let waiting: Vec<_> = (0..MAX_QUERY_TESTS)
        .map(|_| {
            let (app, body) = (app.clone(), body.clone());
            tokio::spawn(async move { app.post_json(PROBE, body).await })
        })
        .collect();
    eventually(
        "every test query to be waiting on the silent server",
        || async { (accepted.load(Ordering::SeqCst) == MAX_QUERY_TESTS).then_some(()) },
    )
    .await;
    let r = app
        .admin
        .post(app.url(PROBE))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(accepted.load(Ordering::SeqCst), MAX_QUERY_TESTS);
    for task in waiting {
        task.abort();
    }
}

/// Accepts connections on a loopback port, counts them and closes each at once.
async fn counting() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    (port, accepted)
}

/// Issue 25, point 4: by default "test query now" reaches no loopback address, spelled in any
/// way, nor the server itself — and says only that the policy refused, without a connection.
#[tokio::test]
async fn the_default_policy_refuses_loopback_the_unspecified_address_and_the_server() {
    let app = spawn_app().await;
    let (port, accepted) = counting().await;
    let own = app.base.trim_start_matches("http://").to_string();
    let own_port = own.rsplit_once(':').unwrap().1;
    for (url, at) in [
        (
            format!("http://127.0.0.1:{port}"),
            format!("127.0.0.1:{port}"),
        ),
        (format!("http://127.1:{port}/"), format!("127.0.0.1:{port}")),
        (
            format!("http://2130706433:{port}/"),
            format!("127.0.0.1:{port}"),
        ),
        (format!("http://[::1]:{port}"), format!("[::1]:{port}")),
        (
            format!("http://[::ffff:127.0.0.1]:{port}"),
            format!("[::ffff:7f00:1]:{port}"),
        ),
        (format!("http://0.0.0.0:{port}"), format!("0.0.0.0:{port}")),
        (
            format!("http://localhost:{port}"),
            format!("localhost:{port}"),
        ),
        (app.base.clone(), own.clone()),
        (
            format!("http://localhost:{own_port}"),
            format!("localhost:{own_port}"),
        ),
    ] {
        let answer = test_query(&app, json!({"url": url, "query": "up"})).await;
        assert_eq!(
            answer,
            json!({"samples": 0, "error": format!("Prometheus at {at}: {DENIED}")}),
            "{url}"
        );
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "nothing was connected to"
    );
}

/// The server's own listener stays out of reach when loopback is allowed, by address or name.
#[tokio::test]
async fn the_server_never_probes_itself() {
    let app = spawn_app_with(allow_loopback).await;
    let own_port = app.base.rsplit_once(':').unwrap().1.to_string();
    for url in [
        app.base.clone(),
        format!("http://localhost:{own_port}/"),
        format!("http://0.0.0.0:{own_port}/"),
    ] {
        let answer = test_query(&app, json!({"url": url, "query": "up"})).await;
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.ends_with(DENIED), "{url}: {answer}");
    }
    // Another loopback port is allowed here (nothing listens: it is merely unreachable).
    let port = closed_port();
    let answer = test_query(
        &app,
        json!({"url": format!("http://localhost:{port}"), "query": "up"}),
    )
    .await;
    assert_eq!(
        answer["error"],
        format!("Prometheus at localhost:{port}: {UNREACHABLE}")
    );
}

/// A closed port and one that accepts and hangs up read alike: no port scanning by messages.
#[tokio::test]
async fn errors_do_not_tell_a_closed_port_from_an_open_one() {
    let app = spawn_app_with(allow_loopback).await;
    let (open, accepted) = counting().await;
    let closed = closed_port();
    let error = |port: u16| {
        let app = &app;
        async move {
            let answer = test_query(
                app,
                json!({"url": format!("http://127.0.0.1:{port}"), "query": "up"}),
            )
            .await;
            answer["error"]
                .as_str()
                .unwrap()
                .replace(&port.to_string(), "PORT")
        }
    };
    let (from_open, from_closed) = (error(open).await, error(closed).await);
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "the open port was reached"
    );
    assert_eq!(from_open, from_closed);
    assert_eq!(
        from_open,
        format!("Prometheus at 127.0.0.1:PORT: {UNREACHABLE}")
    );
    // A webhook the same.
    let client = loopback();
    let [a, b] = [open, closed].map(|port| hook(format!("http://127.0.0.1:{port}/"), 1, 2));
    let said = |answer: HookAnswer| match answer {
        HookAnswer::Unreachable(why) => why
            .replace(&open.to_string(), "P")
            .replace(&closed.to_string(), "P"),
        other => panic!("expected unreachable, got {other:?}"),
    };
    assert_eq!(
        said(probe::webhook(&client, &a, &lane_body()).await),
        said(probe::webhook(&client, &b, &lane_body()).await)
    );
}

/// Names are checked on the addresses they resolve to, at every connection: a name for a
/// loopback address is refused, and a name that first resolved to an allowed address and then
/// to a denied one (DNS rebinding) is refused the second time.
#[tokio::test]
async fn names_are_checked_after_resolution_on_every_connection() {
    let (port, accepted) = counting().await;
    let table: Arc<probe::Lookup> = Arc::new(|name: &str| match name {
        "metrics.example" => Ok(vec!["127.0.0.1".parse().unwrap()]),
        _ => Err(std::io::Error::other("no such name")),
    });
    let strict = Prober::with(Policy::default(), 8, |_| None, Some(table));
    let g = guard(
        &format!("http://metrics.example:{port}"),
        "up",
        1,
        EmptyResult::Wait,
    );
    assert_eq!(
        probe::prometheus(&strict, &g, "up").await,
        Sample::Error(format!("Prometheus at metrics.example:{port}: {DENIED}"))
    );
    let unknown = guard(
        &format!("http://nowhere.example:{port}"),
        "up",
        1,
        EmptyResult::Wait,
    );
    assert_eq!(
        probe::prometheus(&strict, &unknown, "up").await,
        Sample::Error(format!(
            "Prometheus at nowhere.example:{port}: {UNREACHABLE}"
        ))
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 0);

    // 127.0.0.2 is allowed, 127.0.0.1 is not; the name answers the one, then the other.
    let allowed = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let port = allowed.local_addr().unwrap().port();
    let denied = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let (hits, denied_hits) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    for (listener, count) in [(allowed, hits.clone()), (denied, denied_hits.clone())] {
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let mut head = [0u8; 4096];
                let _ = socket.read(&mut head).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
            }
        });
    }
    let lookups = Arc::new(AtomicUsize::new(0));
    let counted = lookups.clone();
    let rebinding: Arc<probe::Lookup> = Arc::new(move |_: &str| {
        let first = counted.fetch_add(1, Ordering::SeqCst) == 0;
        Ok(vec![if first { "127.0.0.2" } else { "127.0.0.1" }
            .parse()
            .unwrap()])
    });
    let prober = Prober::with(
        Policy::new(vec!["127.0.0.2".parse().unwrap()]),
        8,
        |_| None,
        Some(rebinding),
    );
    let g = hook(format!("http://rebind.example:{port}/"), 1, 2);
    assert_eq!(
        probe::webhook(&prober, &g, &lane_body()).await,
        HookAnswer::Status(200)
    );
    assert_eq!(
        probe::webhook(&prober, &g, &lane_body()).await,
        HookAnswer::Unreachable(format!("rebind.example:{port}: {DENIED}"))
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert_eq!(
        denied_hits.load(Ordering::SeqCst),
        0,
        "the rebound address was never reached"
    );
}
