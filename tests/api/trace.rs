//! Trace ids and request ids: the W3C `traceparent` of a request (or a new
//! one) is answered in the response and kept by the audit entries the
//! request writes; `GET /audit?trace_id=` finds them; `x-request-id` is
//! echoed; the request span names the route, status and ids.

use crate::common::{spawn_app, TestApp};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};

const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// The trace id of a response's `traceparent`, checking its form: version 00,
/// the server's own span id, flags.
fn answered_trace_id(r: &Response) -> String {
    let header = r
        .headers()
        .get("traceparent")
        .expect("the response has a traceparent")
        .to_str()
        .unwrap();
    let parts: Vec<&str> = header.split('-').collect();
    assert_eq!(parts.len(), 4, "{header}");
    assert_eq!(parts[0], "00", "{header}");
    let hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
    };
    assert!(
        hex(parts[1], 32) && hex(parts[2], 16) && hex(parts[3], 2),
        "{header}"
    );
    assert_ne!(parts[2], "0000000000000000", "{header}");
    parts[1].to_string()
}

async fn create_namespace(
    app: &TestApp,
    name: &str,
    with: impl FnOnce(RequestBuilder) -> RequestBuilder,
) -> Response {
    let r = with(
        app.admin
            .post(app.url("/api/v1/namespaces"))
            .json(&json!({ "name": name })),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r
}

async fn entries(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = app.get_json(&format!("/api/v1/audit?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["entries"].as_array().unwrap().clone()
}

/// The trace id stored with the `namespace.create` entry of `name`.
async fn stored_trace_id(app: &TestApp, name: &str) -> Value {
    let entries = entries(app, &format!("action=namespace.create&namespace={name}")).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries[0]["trace_id"].clone()
}

#[tokio::test]
async fn the_callers_traceparent_is_kept_in_the_audit_entry_and_found_by_trace_id() {
    let app = spawn_app().await;
    create_namespace(&app, "before", |r| r).await;
    let r = create_namespace(&app, "shop", |r| r.header("traceparent", CALLER)).await;
    assert_eq!(answered_trace_id(&r), CALLER_TRACE);
    let answered = r.headers()["traceparent"].to_str().unwrap().to_string();
    assert!(
        !answered.contains("00f067aa0ba902b7"),
        "the server answers its own span id: {answered}"
    );
    assert!(
        answered.ends_with("-01"),
        "the sampled flag stays: {answered}"
    );
    create_namespace(&app, "after", |r| r).await;

    assert_eq!(stored_trace_id(&app, "shop").await, CALLER_TRACE);
    let found = entries(&app, &format!("trace_id={CALLER_TRACE}")).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["action"], "namespace.create");
    assert_eq!(found[0]["namespace"], "shop");
    assert_eq!(found[0]["trace_id"], CALLER_TRACE);
    // Uppercase finds the same (trace ids are stored lowercase).
    let upper = CALLER_TRACE.to_uppercase();
    assert_eq!(entries(&app, &format!("trace_id={upper}")).await, found);
    // Combined with the other filters.
    assert_eq!(
        entries(
            &app,
            &format!("trace_id={CALLER_TRACE}&action=namespace.create&q=shop")
        )
        .await,
        found
    );
    assert!(entries(
        &app,
        &format!("trace_id={CALLER_TRACE}&action=config.create")
    )
    .await
    .is_empty());
    assert!(entries(&app, &format!("trace_id={CALLER_TRACE}&q=after"))
        .await
        .is_empty());
}

#[tokio::test]
async fn a_request_without_traceparent_gets_a_new_trace_id_which_its_audit_entry_keeps() {
    let app = spawn_app().await;
    let first = create_namespace(&app, "shop", |r| r).await;
    let second = create_namespace(&app, "blog", |r| r).await;
    let (first, second) = (answered_trace_id(&first), answered_trace_id(&second));
    assert_ne!(first, second, "each request starts its own trace");
    assert_eq!(stored_trace_id(&app, "shop").await, first.as_str());
    let found = entries(&app, &format!("trace_id={first}")).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["namespace"], "shop");

    // Reads and refusals answer one too.
    let r = app.admin.get(app.url("/healthz")).send().await.unwrap();
    answered_trace_id(&r);
    let r = crate::common::client()
        .get(app.url("/api/v1/audit"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    answered_trace_id(&r);
}

#[tokio::test]
async fn an_invalid_traceparent_is_ignored_and_a_new_trace_started() {
    let app = spawn_app().await;
    let invalid = [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
        "",
    ];
    for (i, header) in invalid.iter().enumerate() {
        let name = format!("ns{i}");
        let r = create_namespace(&app, &name, |r| r.header("traceparent", *header)).await;
        let answered = answered_trace_id(&r);
        assert_ne!(answered, CALLER_TRACE, "{header:?} is ignored");
        assert_eq!(
            stored_trace_id(&app, &name).await,
            answered.as_str(),
            "{header:?}"
        );
    }
    // Two traceparent headers are as unusable as a malformed one.
    let r = create_namespace(&app, "twice", |r| {
        r.header("traceparent", CALLER)
            .header("traceparent", CALLER)
    })
    .await;
    assert_ne!(answered_trace_id(&r), CALLER_TRACE);
    // A later version is read by its version-00 fields.
    let later = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next";
    let r = create_namespace(&app, "later", |r| r.header("traceparent", later)).await;
    assert_eq!(answered_trace_id(&r), CALLER_TRACE);
}

#[tokio::test]
async fn a_bad_trace_id_filter_is_refused_naming_the_field() {
    let app = spawn_app().await;
    for bad in [
        "xyz",
        "4bf92f3577b34da6a3ce929d0e0e473",
        "4bf92f3577b34da6a3ce929d0e0e47360",
        "00000000000000000000000000000000",
        "4bf92f3577b34da6a3ce929d0e0e473g",
        CALLER,
    ] {
        let (status, body) = app.get_json(&format!("/api/v1/audit?trace_id={bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"]["field"], "trace_id", "{bad}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("32 hex digits"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn x_request_id_is_generated_or_echoed() {
    let app = spawn_app().await;
    let id = |r: &Response| {
        r.headers()
            .get("x-request-id")
            .expect("the response has an x-request-id")
            .to_str()
            .unwrap()
            .to_string()
    };
    let a = app.admin.get(app.url("/healthz")).send().await.unwrap();
    let b = app
        .admin
        .get(app.url("/api/v1/auth/me"))
        .send()
        .await
        .unwrap();
    assert!(!id(&a).is_empty());
    assert_ne!(id(&a), id(&b), "each request gets its own id");
    let r = app
        .admin
        .get(app.url("/api/v1/no-such-route"))
        .header("x-request-id", "ci-run-42")
        .send()
        .await
        .unwrap();
    assert_eq!(id(&r), "ci-run-42");
}

/// The request span, seen in the real binary's log: method, the matched
/// route (not the raw path), status, latency, request id and trace id.
#[tokio::test]
async fn the_request_span_names_route_status_latency_and_ids() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("graycast.db").display());
    let mut server = Command::new(env!("CARGO_BIN_EXE_graycast"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &db])
        .env("GRAYCAST_ADMIN_PASSWORD", "admin-password")
        .env("RUST_LOG", "warn,graycast::server::trace=debug")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kept open: the server prints more, and a closed pipe would end it.
    let mut stdout = BufReader::new(server.stdout.take().unwrap()).lines();
    let first = stdout.next().unwrap().unwrap();
    let base = first.split_whitespace().last().unwrap().to_string();
    let r = reqwest::Client::new()
        .get(format!("{base}/api/v1/namespaces/shop/envs/prod/configs"))
        .header("x-request-id", "span-check-1")
        .header("traceparent", CALLER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The span's line is written before the response is handed over.
    server.kill().unwrap();
    server.wait().unwrap();
    let mut log = String::new();
    server
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("span-check-1"))
        .unwrap_or_else(|| panic!("no line for the request in: {log}"));
    for part in [
        "method=GET",
        "route=/api/v1/namespaces/{ns}/envs/{env}/configs",
        "request_id=span-check-1",
        &format!("trace_id={CALLER_TRACE}"),
        "status=401",
        "latency_ms=",
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }
}
