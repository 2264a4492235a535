//! Issue 4, point 8: every config route × every kind of caller, with the
//! exact status each cell must answer. Limited admins and the streams and
//! origin rules are in the submodules.

mod limited_admins;
mod streams_and_origin;

use crate::common::sse;
use crate::common::{client, config_path, spawn_app, TestApp};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

/// Who calls: nobody, a token of each role, a signed-in user limited to the
/// staging environment, and a token limited to the `other` namespace.
enum Caller {
    Anonymous,
    Token(String),
    User(Client),
}

const CALLERS: [&str; 8] = [
    "anonymous",
    "subscriber",
    "viewer",
    "editor",
    "releaser",
    "admin",
    "staging-releaser (user)",
    "other-namespace releaser (token)",
];

const READ: [u16; 8] = [401, 403, 200, 200, 200, 200, 403, 403];
const EDIT: [u16; 8] = [401, 403, 403, 201, 201, 201, 403, 403];

const LANE_ACTION: [u16; 8] = [401, 403, 403, 403, 200, 200, 403, 403];

/// Lanes made before the matrix runs, `LANES_PER_CALLER` per caller on the
/// caller's own config `l-{i}.txt`: the `n`-th (0-based) of caller `i`. The
/// database is fresh, so lane ids count from 1 in creation order.
/// Lanes 3 and 4 (0-based) carry a plan: a long hold, so only the callers move them.
const LANES_PER_CALLER: usize = 5;

/// A plan that holds its first step for an hour.
fn holding_plan() -> Value {
    json!({"steps": [{"percentage": 10, "hold_secs": 3600}, {"percentage": 20, "hold_secs": 3600},
                     {"percentage": 30, "hold_secs": 3600}]})
}

/// A day from now, as `apply_at` takes it.
fn tomorrow() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    graycast::model::Timestamp::from_unix_ms(now + 86_400_000)
        .unwrap()
        .to_string()
}

fn lane_id(caller: usize, n: usize) -> usize {
    n * CALLERS.len() + caller + 1
}

/// A route with the request each caller `i` sends; each caller gets its own
/// config for mutations, so every cell starts from the same state.
struct Route {
    name: &'static str,
    method: Method,
    path: fn(usize) -> String,
    body: fn(usize) -> Option<Value>,
    expected: [u16; 8],
}

fn shop(rest: &str) -> String {
    format!("/api/v1/namespaces/shop/envs/prod/configs{rest}")
}

fn routes() -> Vec<Route> {
    vec![
        Route {
            name: "GET /namespaces",
            method: Method::GET,
            path: |_| "/api/v1/namespaces".into(),
            body: |_| None,
            expected: [401, 403, 200, 200, 200, 200, 200, 200],
        },
        Route {
            name: "POST /namespaces",
            method: Method::POST,
            path: |_| "/api/v1/namespaces".into(),
            body: |i| Some(json!({ "name": format!("ns-{i}") })),
            expected: [401, 403, 403, 201, 201, 201, 201, 403],
        },
        Route {
            name: "GET configs",
            method: Method::GET,
            path: |_| shop(""),
            body: |_| None,
            expected: READ,
        },
        Route {
            name: "POST configs",
            method: Method::POST,
            path: |_| shop(""),
            body: |i| {
                Some(json!({ "key": format!("new-{i}.txt"), "format": "text", "content": "x" }))
            },
            expected: EDIT,
        },
        Route {
            name: "GET config",
            method: Method::GET,
            path: |_| shop("/app.txt"),
            body: |_| None,
            expected: READ,
        },
        Route {
            name: "POST versions",
            method: Method::POST,
            path: |i| shop(&format!("/c-{i}.txt/versions")),
            body: |_| Some(json!({ "content": "three", "base_version": 2 })),
            expected: EDIT,
        },
        Route {
            name: "GET versions",
            method: Method::GET,
            path: |_| shop("/app.txt/versions"),
            body: |_| None,
            expected: READ,
        },
        Route {
            name: "GET version",
            method: Method::GET,
            path: |_| shop("/app.txt/versions/1"),
            body: |_| None,
            expected: READ,
        },
        Route {
            name: "GET diff",
            method: Method::GET,
            path: |_| shop("/app.txt/diff?from=1&to=2"),
            body: |_| None,
            expected: READ,
        },
        Route {
            name: "POST release",
            method: Method::POST,
            path: |i| shop(&format!("/c-{i}.txt/release")),
            body: |_| Some(json!({ "version": 1, "message": "go" })),
            expected: [401, 403, 403, 403, 201, 201, 403, 403],
        },
        Route {
            name: "GET releases",
            method: Method::GET,
            path: |_| shop("/app.txt/releases"),
            body: |_| None,
            expected: READ,
        },
        Route {
            name: "GET resolve",
            method: Method::GET,
            path: |_| shop("/app.txt/resolve?client_id=pod-1"),
            body: |_| None,
            expected: [401, 200, 200, 200, 200, 200, 403, 403],
        },
        Route {
            name: "GET resolve explain",
            method: Method::GET,
            path: |_| shop("/app.txt/resolve?client_id=pod-1&explain=true"),
            body: |_| None,
            expected: [401, 403, 200, 200, 200, 200, 403, 403],
        },
        Route {
            name: "GET lanes",
            method: Method::GET,
            path: |_| shop("/app.txt/lanes"),
            body: |_| None,
            expected: READ,
        },
        Route {
            name: "POST lanes",
            method: Method::POST,
            path: |i| shop(&format!("/c-{i}.txt/lanes")),
            body: |_| Some(json!({ "version": 2, "selector": "region=beijing", "percentage": 10 })),
            expected: [401, 403, 403, 403, 201, 201, 403, 403],
        },
        Route {
            name: "POST lanes/preview",
            method: Method::POST,
            path: |_| shop("/app.txt/lanes/preview"),
            body: |_| Some(json!({ "version": 2, "percentage": 10 })),
            expected: [401, 403, 200, 200, 200, 200, 403, 403],
        },
        Route {
            name: "POST lanes/{id}/preview",
            method: Method::POST,
            path: |i| shop(&format!("/l-{i}.txt/lanes/{}/preview", lane_id(i, 0))),
            body: |_| Some(json!({ "percentage": 20 })),
            expected: [401, 403, 200, 200, 200, 200, 403, 403],
        },
        Route {
            name: "PATCH lanes/{id}",
            method: Method::PATCH,
            path: |i| shop(&format!("/l-{i}.txt/lanes/{}", lane_id(i, 0))),
            body: |_| Some(json!({ "percentage": 20 })),
            expected: LANE_ACTION,
        },
        Route {
            name: "POST lanes/{id}/promote",
            method: Method::POST,
            path: |i| shop(&format!("/l-{i}.txt/lanes/{}/promote", lane_id(i, 1))),
            body: |_| Some(json!({ "message": "ship it" })),
            expected: LANE_ACTION,
        },
        Route {
            name: "POST lanes/{id}/abort",
            method: Method::POST,
            path: |i| shop(&format!("/l-{i}.txt/lanes/{}/abort", lane_id(i, 2))),
            body: |_| Some(json!({})),
            expected: LANE_ACTION,
        },
        Route {
            name: "GET lanes/{id}/plan",
            method: Method::GET,
            path: |i| shop(&format!("/l-{i}.txt/lanes/{}/plan", lane_id(i, 3))),
            body: |_| None,
            expected: READ,
        },
        Route {
            name: "PUT lanes/{id}/plan",
            method: Method::PUT,
            path: |i| shop(&format!("/l-{i}.txt/lanes/{}/plan", lane_id(i, 0))),
            body: |_| Some(json!({ "template": "canary" })),
            expected: LANE_ACTION,
        },
        Route {
            name: "POST lanes/{id}/plan/pause",
            method: Method::POST,
            path: |i| shop(&format!("/l-{i}.txt/lanes/{}/plan/pause", lane_id(i, 3))),
            body: |_| Some(json!({})),
            expected: LANE_ACTION,
        },
        Route {
            name: "POST lanes/{id}/plan/resume",
            method: Method::POST,
            path: |i| shop(&format!("/l-{i}.txt/lanes/{}/plan/resume", lane_id(i, 3))),
            body: |_| None,
            expected: LANE_ACTION,
        },
        Route {
            name: "POST lanes/{id}/plan/advance",
            method: Method::POST,
            path: |i| shop(&format!("/l-{i}.txt/lanes/{}/plan/advance", lane_id(i, 4))),
            body: |_| Some(json!({ "force": true })),
            expected: LANE_ACTION,
        },
        Route {
            name: "GET rollout-templates",
            method: Method::GET,
            path: |_| "/api/v1/rollout-templates?env=prod".into(),
            body: |_| None,
            expected: [401, 403, 200, 200, 200, 200, 403, 200],
        },
        Route {
            name: "POST rollout-templates",
            method: Method::POST,
            path: |_| "/api/v1/rollout-templates?env=prod".into(),
            body: |i| {
                Some(json!({ "name": format!("new-{i}"), "plan": {"steps": [{"percentage": 5}]} }))
            },
            expected: [401, 403, 403, 403, 403, 201, 403, 403],
        },
        Route {
            name: "PUT environments/{env}/default-template",
            method: Method::PUT,
            path: |_| "/api/v1/environments/prod/default-template".into(),
            body: |i| Some(json!({ "template": format!("del-{i}") })),
            expected: [401, 403, 403, 403, 403, 200, 403, 403],
        },
        Route {
            name: "DELETE rollout-templates/{name}",
            method: Method::DELETE,
            path: |i| format!("/api/v1/rollout-templates/new-{i}?env=prod"),
            body: |_| None,
            expected: [401, 403, 403, 403, 403, 204, 403, 403],
        },
        Route {
            name: "GET environments/{env}/freezes",
            method: Method::GET,
            path: |_| "/api/v1/environments/prod/freezes".into(),
            body: |_| None,
            expected: [401, 403, 200, 200, 200, 200, 403, 200],
        },
        // Far in the future: prod is not frozen for the rows after it.
        Route {
            name: "POST environments/{env}/freezes",
            method: Method::POST,
            path: |_| "/api/v1/environments/prod/freezes".into(),
            body: |i| {
                Some(
                    json!({ "from": "2100-01-01T00:00:00Z", "to": "2100-01-02T00:00:00Z",
                             "reason": format!("far future {i}") }),
                )
            },
            expected: [401, 403, 403, 403, 403, 201, 403, 403],
        },
        // Window 1 is made before the matrix runs.
        Route {
            name: "DELETE environments/{env}/freezes/{id}",
            method: Method::DELETE,
            path: |_| "/api/v1/environments/prod/freezes/1".into(),
            body: |_| None,
            expected: [401, 403, 403, 403, 403, 204, 403, 403],
        },
        // Notification channels (issue 29): admins only; the admin's POST makes channel 1.
        Route {
            name: "GET notification-channels",
            method: Method::GET,
            path: |_| "/api/v1/notification-channels".into(),
            body: |_| None,
            expected: [401, 403, 403, 403, 403, 200, 403, 403],
        },
        Route {
            name: "POST notification-channels",
            method: Method::POST,
            path: |_| "/api/v1/notification-channels".into(),
            body: |i| {
                Some(json!({ "name": format!("matrix-{i}"), "format": "slack",
                             "url": "https://hooks.example.com/services/x" }))
            },
            expected: [401, 403, 403, 403, 403, 201, 403, 403],
        },
        Route {
            name: "GET notification-channels/{id}/deliveries",
            method: Method::GET,
            path: |_| "/api/v1/notification-channels/1/deliveries".into(),
            body: |_| None,
            expected: [401, 403, 403, 403, 403, 200, 403, 403],
        },
        Route {
            name: "DELETE notification-channels/{id}",
            method: Method::DELETE,
            path: |_| "/api/v1/notification-channels/1".into(),
            body: |_| None,
            expected: [401, 403, 403, 403, 403, 204, 403, 403],
        },
        Route {
            name: "GET audit",
            method: Method::GET,
            path: |_| "/api/v1/audit".into(),
            body: |_| None,
            expected: [401, 403, 200, 200, 200, 200, 200, 200],
        },
        // Change governance (issue 28). Requests are made by the editor (id 1), the releaser
        // (2) and the admin (3) in that order, scheduled a day ahead; then withdrawn by their
        // author, applied by the admin's override, rejected by a releaser.
        Route {
            name: "GET environments/{env}/protection",
            method: Method::GET,
            path: |_| "/api/v1/environments/prod/protection".into(),
            body: |_| None,
            expected: [401, 403, 200, 200, 200, 200, 403, 200],
        },
        Route {
            name: "PUT environments/{env}/protection",
            method: Method::PUT,
            path: |_| "/api/v1/environments/prod/protection".into(),
            body: |_| Some(json!({ "approvals": 0 })),
            expected: [401, 403, 403, 403, 403, 200, 403, 403],
        },
        Route {
            name: "POST change-requests",
            method: Method::POST,
            path: |i| shop(&format!("/c-{i}.txt/change-requests")),
            body: |_| {
                Some(
                    json!({ "action": "release", "body": { "version": 2 }, "apply_at": tomorrow() }),
                )
            },
            expected: [401, 403, 403, 201, 201, 201, 403, 403],
        },
        Route {
            name: "GET change-requests",
            method: Method::GET,
            path: |_| "/api/v1/change-requests?env=prod".into(),
            body: |_| None,
            expected: [401, 403, 200, 200, 200, 200, 403, 200],
        },
        Route {
            name: "GET change-requests/{id}",
            method: Method::GET,
            path: |_| "/api/v1/change-requests/1".into(),
            body: |_| None,
            expected: READ,
        },
        // Approvals come from signed-in people other than the author, never from an admin.
        Route {
            name: "POST change-requests/{id}/approve",
            method: Method::POST,
            path: |_| "/api/v1/change-requests/1/approve".into(),
            body: |_| Some(json!({})),
            expected: [401, 403, 403, 403, 403, 403, 403, 403],
        },
        // Only the author (the editor's token) withdraws.
        Route {
            name: "POST change-requests/{id}/withdraw",
            method: Method::POST,
            path: |_| "/api/v1/change-requests/1/withdraw".into(),
            body: |_| Some(json!({})),
            expected: [401, 403, 403, 200, 403, 403, 403, 403],
        },
        Route {
            name: "POST change-requests/{id}/apply",
            method: Method::POST,
            path: |i| {
                format!(
                    "/api/v1/change-requests/{}/apply",
                    if i == 5 { 3 } else { 2 }
                )
            },
            body: |_| Some(json!({ "override": { "reason": "the matrix needs it now" } })),
            expected: [401, 403, 403, 403, 403, 200, 403, 403],
        },
        // The admin's cell: the releaser rejected request 2 a moment before.
        Route {
            name: "POST change-requests/{id}/reject",
            method: Method::POST,
            path: |_| "/api/v1/change-requests/2/reject".into(),
            body: |_| Some(json!({ "comment": "not now" })),
            expected: [401, 403, 403, 403, 200, 409, 403, 403],
        },
        Route {
            name: "GET overrides",
            method: Method::GET,
            path: |_| "/api/v1/overrides?reviewed=false".into(),
            body: |_| None,
            expected: [401, 403, 200, 200, 200, 200, 200, 200],
        },
        // Override 1 is the admin's: another releaser reviews it.
        Route {
            name: "POST overrides/{id}/review",
            method: Method::POST,
            path: |_| "/api/v1/overrides/1/review".into(),
            body: |_| None,
            expected: [401, 403, 403, 403, 200, 403, 403, 403],
        },
        // Prometheus is down here: the answer (200) carries the error.
        Route {
            name: "POST rollout-probe/prometheus",
            method: Method::POST,
            path: |_| "/api/v1/rollout-probe/prometheus".into(),
            body: |_| {
                Some(
                    json!({ "url": "http://127.0.0.1:1", "query": "up", "namespace": "shop", "env": "prod" }),
                )
            },
            expected: LANE_ACTION,
        },
        // Trigger URLs (issue 29): triggers 1 to 8 are made before the matrix runs, one per
        // caller (`i + 1`).
        Route {
            name: "GET triggers",
            method: Method::GET,
            path: |_| "/api/v1/triggers?namespace=shop&env=prod".into(),
            body: |_| None,
            expected: READ,
        },
        Route {
            name: "POST triggers",
            method: Method::POST,
            path: |_| "/api/v1/triggers".into(),
            body: |_| {
                Some(
                    json!({ "namespace": "shop", "env": "prod", "key": "app.txt", "action": "abort-lanes" }),
                )
            },
            expected: [401, 403, 403, 403, 201, 201, 403, 403],
        },
        Route {
            name: "PATCH triggers/{id}",
            method: Method::PATCH,
            path: |i| format!("/api/v1/triggers/{}", i + 1),
            body: |_| Some(json!({ "enabled": false })),
            expected: LANE_ACTION,
        },
        Route {
            name: "POST triggers/{id}/rotate",
            method: Method::POST,
            path: |i| format!("/api/v1/triggers/{}/rotate", i + 1),
            body: |_| None,
            expected: LANE_ACTION,
        },
        Route {
            name: "DELETE triggers/{id}",
            method: Method::DELETE,
            path: |i| format!("/api/v1/triggers/{}", i + 1),
            body: |_| None,
            expected: [401, 403, 403, 403, 204, 204, 403, 403],
        },
        // No instance is connected: neither population is queried; the answer (200) says so.
        Route {
            name: "POST rollout-probe/compare",
            method: Method::POST,
            path: |_| "/api/v1/rollout-probe/compare".into(),
            body: |_| {
                Some(
                    json!({ "namespace": "shop", "env": "prod", "key": "app.txt",
                    "guard": { "kind": "compare", "url": "http://127.0.0.1:1", "query": "up{i=~\"{{instances}}\"}" },
                    "draft": { "version": 1, "percentage": 5 } }),
                )
            },
            expected: LANE_ACTION,
        },
        // Last: it deletes the caller's own config the rows above changed.
        Route {
            name: "DELETE config",
            method: Method::DELETE,
            path: |i| shop(&format!("/c-{i}.txt")),
            body: |_| None,
            expected: [401, 403, 403, 403, 204, 204, 403, 403],
        },
    ]
}

async fn send(
    app: &TestApp,
    caller: &Caller,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let (c, token) = match caller {
        Caller::Anonymous => (client(), None),
        Caller::Token(t) => (client(), Some(t)),
        Caller::User(c) => (c.clone(), None),
    };
    let mut request = c.request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

async fn callers(app: &TestApp) -> Vec<Caller> {
    let mut callers = vec![Caller::Anonymous];
    for role in ["subscriber", "viewer", "editor", "releaser", "admin"] {
        callers.push(Caller::Token(
            app.token(&format!("t-{role}"), role, None, None).await,
        ));
    }
    callers.push(Caller::User(
        app.user("stella", "releaser", Some("staging")).await,
    ));
    callers.push(Caller::Token(
        app.token("t-other", "releaser", Some("other"), None).await,
    ));
    assert_eq!(callers.len(), CALLERS.len());
    callers
}

#[tokio::test]
async fn every_route_answers_each_caller_exactly() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    app.namespace("other").await;
    app.config("shop", "prod", "app.txt", "text", "one").await;
    app.save("shop", "prod", "app.txt", "two", 1).await;
    app.release("shop", "prod", "app.txt", 2, "").await;
    for i in 0..CALLERS.len() {
        app.config("shop", "prod", &format!("c-{i}.txt"), "text", "one")
            .await;
        app.save("shop", "prod", &format!("c-{i}.txt"), "two", 1)
            .await;
    }
    for i in 0..CALLERS.len() {
        app.config("shop", "prod", &format!("l-{i}.txt"), "text", "one")
            .await;
    }
    for i in 0..CALLERS.len() {
        let (status, body) = app
            .post_json(
                "/api/v1/rollout-templates?env=prod",
                json!({ "name": format!("del-{i}"), "plan": holding_plan() }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for n in 0..LANES_PER_CALLER {
        for i in 0..CALLERS.len() {
            let body = if n >= 3 {
                json!({ "version": 1, "plan": holding_plan() })
            } else {
                json!({ "version": 1, "percentage": 10 })
            };
            let (status, lane) = app
                .post_json(
                    &config_path("shop", "prod", &format!("l-{i}.txt"), "/lanes"),
                    body,
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{lane}");
            assert_eq!(lane["id"], lane_id(i, n));
        }
    }
    let (status, body) = app
        .post_json(
            "/api/v1/environments/prod/freezes",
            json!({ "from": "2100-01-01T00:00:00Z", "to": "2100-01-02T00:00:00Z",
                    "reason": "to delete" }),
        )
        .await;
    assert_eq!(
        (status, &body["id"]),
        (StatusCode::CREATED, &json!(1)),
        "{body}"
    );
    for i in 0..CALLERS.len() {
        let (status, body) = app
            .post_json(
                "/api/v1/triggers",
                json!({ "namespace": "shop", "env": "prod", "key": "app.txt",
                        "action": "abort-lanes" }),
            )
            .await;
        assert_eq!(
            (status, &body["id"]),
            (StatusCode::CREATED, &json!(i + 1)),
            "{body}"
        );
    }
    let callers = callers(&app).await;

    let mut wrong = Vec::new();
    for route in routes() {
        for (i, caller) in callers.iter().enumerate() {
            let r = send(
                &app,
                caller,
                route.method.clone(),
                &(route.path)(i),
                (route.body)(i),
            )
            .await;
            let status = r.status().as_u16();
            if status != route.expected[i] {
                let text = r.text().await.unwrap_or_default();
                wrong.push(format!(
                    "{} as {}: expected {}, got {status} {text}",
                    route.name, CALLERS[i], route.expected[i]
                ));
            } else if status >= 400 {
                let body: Value = r.json().await.expect("errors are JSON");
                assert!(body["error"]["code"].is_string(), "{}: {body}", route.name);
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "cells answering wrongly:\n{}",
        wrong.join("\n")
    );
}

#[tokio::test]
async fn limited_callers_work_inside_their_limits() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    app.namespace("other").await;
    app.config("shop", "prod", "p.txt", "text", "").await;
    let callers = callers(&app).await;
    let (staging, other) = (&callers[6], &callers[7]);

    // The staging-limited releaser does the whole lifecycle in staging.
    let (method, path) = (Method::POST, "/api/v1/namespaces/shop/envs/staging/configs");
    let r = send(
        &app,
        staging,
        method,
        path,
        Some(json!({ "key": "a.txt", "format": "text", "content": "1" })),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = send(
        &app,
        staging,
        Method::POST,
        &config_path("shop", "staging", "a.txt", "/versions"),
        Some(json!({ "content": "2", "base_version": 1 })),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = send(
        &app,
        staging,
        Method::POST,
        &config_path("shop", "staging", "a.txt", "/release"),
        Some(json!({ "version": 2 })),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = send(
        &app,
        staging,
        Method::POST,
        &config_path("shop", "staging", "a.txt", "/lanes"),
        Some(json!({ "version": 1, "percentage": 50 })),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let lane: Value = r.json().await.unwrap();
    let r = send(
        &app,
        staging,
        Method::POST,
        &config_path(
            "shop",
            "staging",
            "a.txt",
            &format!("/lanes/{}/abort", lane["id"]),
        ),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = send(
        &app,
        staging,
        Method::GET,
        &config_path("shop", "staging", "a.txt", "/resolve"),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    // A trigger of its environment, listed to it; another environment's list is refused.
    let r = send(
        &app,
        staging,
        Method::POST,
        "/api/v1/triggers",
        Some(json!({ "namespace": "shop", "env": "staging", "action": "abort-lanes" })),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let trigger: Value = r.json().await.unwrap();
    let r = send(
        &app,
        staging,
        Method::GET,
        "/api/v1/triggers?namespace=shop&env=staging",
        None,
    )
    .await;
    let listed: Value = r.json().await.unwrap();
    assert_eq!(listed["triggers"][0]["id"], trigger["id"]);
    let r = send(
        &app,
        staging,
        Method::GET,
        "/api/v1/triggers?namespace=shop&env=prod",
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = send(
        &app,
        staging,
        Method::GET,
        "/api/v1/namespaces/shop/envs/prod/configs",
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // The namespace-limited token sees and works only in its namespace.
    let r = send(&app, other, Method::GET, "/api/v1/namespaces", None).await;
    let listed: Value = r.json().await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["name"], "other");
    let r = send(
        &app,
        other,
        Method::POST,
        "/api/v1/namespaces/other/envs/prod/configs",
        Some(json!({ "key": "b.txt", "format": "text", "content": "1" })),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = send(
        &app,
        other,
        Method::POST,
        &config_path("other", "prod", "b.txt", "/release"),
        Some(json!({ "version": 1 })),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = send(
        &app,
        other,
        Method::GET,
        "/api/v1/namespaces/shop/envs/staging/configs",
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // An environment limit also narrows the namespace listing's counts.
    let r = send(&app, staging, Method::GET, "/api/v1/namespaces", None).await;
    let listed: Value = r.json().await.unwrap();
    let shop = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "shop")
        .unwrap();
    assert_eq!(shop["config_count"], 1, "the prod config is not counted");

    // Limited callers read only their part of the audit trail.
    let r = send(&app, other, Method::GET, "/api/v1/audit", None).await;
    let page: Value = r.json().await.unwrap();
    let entries = page["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    assert!(entries.iter().all(|e| e["namespace"] == "other"), "{page}");
    let r = send(
        &app,
        other,
        Method::GET,
        "/api/v1/audit?namespace=shop",
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = send(&app, staging, Method::GET, "/api/v1/audit?q=shop", None).await;
    let page: Value = r.json().await.unwrap();
    let entries = page["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    assert!(entries.iter().all(|e| e["env"] == "staging"), "{page}");
}
