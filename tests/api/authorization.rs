//! Issue 4, point 8: every config route × every kind of caller, with the
//! exact status each cell must answer.

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
const LANES_PER_CALLER: usize = 3;

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
            name: "GET audit",
            method: Method::GET,
            path: |_| "/api/v1/audit".into(),
            body: |_| None,
            expected: [401, 403, 200, 200, 200, 200, 200, 200],
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
    for n in 0..LANES_PER_CALLER {
        for i in 0..CALLERS.len() {
            let (status, lane) = app
                .post_json(
                    &config_path("shop", "prod", &format!("l-{i}.txt"), "/lanes"),
                    json!({ "version": 1, "percentage": 10 }),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{lane}");
            assert_eq!(lane["id"], lane_id(i, n));
        }
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

// Issue 13, point 1: limited admins stay inside their limits. Users and
// environments are managed by admins without limits; tokens only inside the
// caller's own environment and namespace.

/// The admins with a limit: a user limited to staging, a token limited to the
/// `shop` namespace and a token limited to staging.
async fn limited_admins(app: &TestApp) -> [(&'static str, Caller); 3] {
    [
        (
            "staging admin (user)",
            Caller::User(app.user("sam", "admin", Some("staging")).await),
        ),
        (
            "shop admin (token)",
            Caller::Token(app.token("t-shop-admin", "admin", Some("shop"), None).await),
        ),
        (
            "staging admin (token)",
            Caller::Token(
                app.token("t-staging-admin", "admin", None, Some("staging"))
                    .await,
            ),
        ),
    ]
}

async fn user_id(app: &TestApp, username: &str) -> i64 {
    let (status, users) = app.get_json("/api/v1/users").await;
    assert_eq!(status, StatusCode::OK);
    users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == username)
        .unwrap_or_else(|| panic!("no user {username}: {users}"))["id"]
        .as_i64()
        .unwrap()
}

/// Status and JSON body of a request.
async fn status_of(
    app: &TestApp,
    caller: &Caller,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let r = send(app, caller, method, path, body).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

/// The names of the tokens `caller` lists, sorted.
async fn token_names(app: &TestApp, caller: &Caller) -> Vec<String> {
    let (status, tokens) = status_of(app, caller, Method::GET, "/api/v1/tokens", None).await;
    assert_eq!(status, 200, "{tokens}");
    let mut names: Vec<String> = tokens
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn limited_admins_cannot_create_or_change_users() {
    let app = spawn_app().await;
    let admins = limited_admins(&app).await;
    let admin_id = user_id(&app, "admin").await;
    let sam_id = user_id(&app, "sam").await;
    for (i, (who, caller)) in admins.iter().enumerate() {
        for (role, env) in [("admin", None), ("viewer", Some("staging"))] {
            let body = json!({
                "username": format!("u-{i}-{role}"), "password": "long-enough",
                "role": role, "env": env,
            });
            let (status, body) =
                status_of(&app, caller, Method::POST, "/api/v1/users", Some(body)).await;
            assert_eq!(status, 403, "{who} creates a {role} user: {body}");
            assert!(
                message(&body).contains("admin without limits"),
                "the refusal says whom to ask: {body}"
            );
        }
        let (status, _) = status_of(&app, caller, Method::GET, "/api/v1/users", None).await;
        assert_eq!(status, 403, "{who} lists users");
        for (target, change) in [
            (sam_id, json!({ "env": null })),
            (sam_id, json!({ "env": "prod" })),
            (admin_id, json!({ "disabled": true })),
            (admin_id, json!({ "role": "viewer" })),
        ] {
            let (status, body) = status_of(
                &app,
                caller,
                Method::PATCH,
                &format!("/api/v1/users/{target}"),
                Some(change.clone()),
            )
            .await;
            assert_eq!(
                status, 403,
                "{who} changes user {target} by {change}: {body}"
            );
        }
    }

    // The dashboard's server functions go through the same rule.
    {
        use leptos::server_fn::ServerFn;
        let Caller::User(sam) = &admins[0].1 else {
            unreachable!()
        };
        let r = sam
            .post(app.url(graycast::api::admin::ListUsers::PATH))
            .form(&[("", "")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = sam
            .post(app.url(graycast::api::admin::UpdateUser::PATH))
            .form(&[
                ("id", admin_id.to_string().as_str()),
                ("change[disabled]", "true"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }

    // Nothing changed: no new users, sam still limited, admin still enabled.
    let (_, users) = app.get_json("/api/v1/users").await;
    let users = users.as_array().unwrap();
    assert_eq!(users.len(), 2, "{users:?}");
    let sam = users.iter().find(|u| u["username"] == "sam").unwrap();
    assert_eq!(sam["env"], "staging");
    let admin = users.iter().find(|u| u["username"] == "admin").unwrap();
    assert_eq!(
        (admin["disabled"].clone(), admin["role"].clone()),
        (json!(false), json!("admin"))
    );
    assert!(app.audit("user.update").await.is_empty());

    // An admin without limits manages users, but not its own limits either.
    let (status, _) = app
        .post_json(
            "/api/v1/users",
            json!({ "username": "vic", "password": "long-enough", "role": "viewer", "env": "prod" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let r = app
        .admin
        .patch(app.url(&format!("/api/v1/users/{admin_id}")))
        .json(&json!({ "env": "staging" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn limited_admins_cannot_create_environments() {
    let app = spawn_app().await;
    let created = app.audit("environment.create").await.len();
    for (i, (who, caller)) in limited_admins(&app).await.iter().enumerate() {
        let (status, body) = status_of(
            &app,
            caller,
            Method::POST,
            "/api/v1/environments",
            Some(json!({ "name": format!("e{i}") })),
        )
        .await;
        assert_eq!(status, 403, "{who} creates an environment: {body}");
        assert!(message(&body).contains("admin without limits"), "{body}");
        let (status, _) = status_of(&app, caller, Method::GET, "/api/v1/environments", None).await;
        assert_eq!(status, 200, "{who} lists environments");
    }
    assert_eq!(app.audit("environment.create").await.len(), created);
    let (status, envs) = app.get_json("/api/v1/environments").await;
    assert_eq!(
        (status, envs.as_array().unwrap().len()),
        (StatusCode::OK, 3)
    );
}

#[tokio::test]
async fn limited_admins_mint_only_tokens_inside_their_limits() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    app.namespace("other").await;
    let [(_, sam), (_, shop_admin), _] = limited_admins(&app).await;

    // Absent limits are filled in with the caller's own.
    let (status, t) = status_of(
        &app,
        &sam,
        Method::POST,
        "/api/v1/tokens",
        Some(json!({ "name": "s-1", "role": "admin" })),
    )
    .await;
    assert_eq!(status, 201, "{t}");
    assert_eq!(
        (t["env"].clone(), t["namespace"].clone()),
        (json!("staging"), Value::Null)
    );
    let (status, t) = status_of(
        &app,
        &shop_admin,
        Method::POST,
        "/api/v1/tokens",
        Some(json!({ "name": "n-1", "role": "admin" })),
    )
    .await;
    assert_eq!(status, 201, "{t}");
    assert_eq!(
        (t["env"].clone(), t["namespace"].clone()),
        (Value::Null, json!("shop"))
    );
    let minted = Caller::Token(t["token"].as_str().unwrap().to_string());
    let (status, _) = status_of(
        &app,
        &minted,
        Method::GET,
        "/api/v1/namespaces/other/envs/prod/configs",
        None,
    )
    .await;
    assert_eq!(status, 403, "the minted token is limited to shop");
    let (status, _) = status_of(
        &app,
        &minted,
        Method::POST,
        "/api/v1/tokens",
        Some(json!({ "name": "n-2", "role": "viewer", "namespace": "other" })),
    )
    .await;
    assert_eq!(status, 403, "and cannot mint wider tokens either");

    // Narrower is fine; wider or elsewhere is refused.
    for (caller, body, expected) in [
        (
            &sam,
            json!({ "name": "s-2", "role": "viewer", "namespace": "shop" }),
            201,
        ),
        (
            &sam,
            json!({ "name": "s-3", "role": "viewer", "env": "staging" }),
            201,
        ),
        (
            &sam,
            json!({ "name": "s-4", "role": "viewer", "env": "prod" }),
            403,
        ),
        (
            &shop_admin,
            json!({ "name": "n-3", "role": "viewer", "env": "prod" }),
            201,
        ),
        (
            &shop_admin,
            json!({ "name": "n-4", "role": "viewer", "namespace": "shop" }),
            201,
        ),
        (
            &shop_admin,
            json!({ "name": "n-5", "role": "viewer", "namespace": "other" }),
            403,
        ),
    ] {
        let (status, answer) = status_of(
            &app,
            caller,
            Method::POST,
            "/api/v1/tokens",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, expected, "{body}: {answer}");
        if status == 403 {
            assert!(
                message(&answer).contains("leave"),
                "says what to do: {answer}"
            );
        }
    }
}

#[tokio::test]
async fn limited_admins_list_and_revoke_only_tokens_inside_their_limits() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    app.namespace("other").await;
    let [(_, sam), (_, shop_admin), (_, staging_admin)] = limited_admins(&app).await;
    let mut secrets = std::collections::HashMap::new();
    for (name, namespace, env) in [
        ("wide", None, None),
        ("prod", None, Some("prod")),
        ("staging", None, Some("staging")),
        ("shop", Some("shop"), None),
        ("other", Some("other"), None),
        ("shop-staging", Some("shop"), Some("staging")),
    ] {
        secrets.insert(name, app.token(name, "viewer", namespace, env).await);
    }
    let (_, tokens) = app.get_json("/api/v1/tokens").await;
    let ids: std::collections::HashMap<String, i64> = tokens
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["id"].as_i64().unwrap(),
            )
        })
        .collect();

    let staging_tokens = ["shop-staging", "staging", "t-staging-admin"];
    assert_eq!(token_names(&app, &sam).await, staging_tokens);
    assert_eq!(token_names(&app, &staging_admin).await, staging_tokens);
    assert_eq!(
        token_names(&app, &shop_admin).await,
        ["shop", "shop-staging", "t-shop-admin"]
    );

    for (who, caller, name, expected) in [
        ("sam", &sam, "wide", 403),
        ("sam", &sam, "prod", 403),
        ("sam", &sam, "shop", 403),
        ("sam", &sam, "t-shop-admin", 403),
        ("shop admin", &shop_admin, "wide", 403),
        ("shop admin", &shop_admin, "other", 403),
        ("shop admin", &shop_admin, "staging", 403),
        ("staging admin", &staging_admin, "t-shop-admin", 403),
        ("sam", &sam, "staging", 200),
        ("shop admin", &shop_admin, "shop", 200),
        ("staging admin", &staging_admin, "shop-staging", 200),
    ] {
        let (status, body) = status_of(
            &app,
            caller,
            Method::DELETE,
            &format!("/api/v1/tokens/{}", ids[name]),
            None,
        )
        .await;
        assert_eq!(status, expected, "{who} revokes {name}: {body}");
        if status == 403 {
            assert!(message(&body).contains("admin without limits"), "{body}");
        }
    }
    // Refused revocations changed nothing: those tokens still work.
    for name in ["wide", "prod", "other"] {
        assert_eq!(
            app.get_with(&secrets[name], "/api/v1/namespaces")
                .await
                .status(),
            StatusCode::OK,
            "{name} still works"
        );
    }
    let revoked: Vec<Value> = app.audit("token.revoke").await;
    assert_eq!(revoked.len(), 3, "{revoked:?}");
}

/// Issue 13, point 10: revoking a token ends the streams it opened — watch
/// streams on both connection paths and the live instances view — and it
/// cannot open them again.
#[tokio::test]
async fn revoking_a_token_ends_its_watch_and_instances_streams() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    let (status, created) = app
        .post_json(
            "/api/v1/tokens",
            json!({"name": "fleet", "role": "viewer", "namespace": "shop"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap().to_string();
    let watch = |client_id: &str| {
        app.url(&format!(
            "/api/v1/watch?namespace=shop&env=prod&client_id={client_id}"
        ))
    };
    let feed = app.url("/api/v1/namespaces/shop/envs/prod/instances/stream");
    // On a connection of its own: the lean path, which the hub writes directly.
    let mut lean = sse::open(&watch("pod-1"), &token, None).await;
    // On a connection that served another request first: through hyper.
    let reused = Client::new();
    let r = reused.get(app.url("/healthz")).send().await.unwrap();
    r.text().await.unwrap();
    let r = reused
        .get(watch("pod-2"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut queued = sse::from_response(r);
    let mut instances = sse::open(&feed, &token, None).await;
    lean.until_synced().await;
    queued.until_synced().await;
    assert_eq!(instances.next_event().await.event, "instances");

    let r = app
        .admin
        .delete(app.url(&format!("/api/v1/tokens/{}", created["id"])))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for (name, stream) in [
        ("lean watch", &mut lean),
        ("watch", &mut queued),
        ("instances", &mut instances),
    ] {
        assert!(stream.ends().await, "the {name} stream ends");
    }
    for url in [watch("pod-1"), feed] {
        let r = sse::request(&url, &token, None).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{url}");
    }
}

/// Issue 13, point 10: changing a user's role or disabling it ends the
/// streams it opened with its session; a user still allowed reconnects.
#[tokio::test]
async fn a_role_change_or_disabling_ends_a_users_streams() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    let (status, user) = app
        .post_json(
            "/api/v1/users",
            json!({"username": "vera", "password": "vera-password", "role": "viewer"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    let vera = client();
    let r = crate::common::login(&vera, &app.base, "vera", "vera-password").await;
    assert_eq!(r.status(), StatusCode::OK);
    let feed = app.url("/api/v1/namespaces/shop/envs/prod/instances/stream");
    let watch = app.url("/api/v1/watch?namespace=shop&env=prod&client_id=browser-1");
    let open = |url: &str| {
        let (vera, url) = (vera.clone(), url.to_string());
        async move { vera.get(url).send().await.unwrap() }
    };
    let change = |body: Value| {
        let request = app
            .admin
            .patch(app.url(&format!("/api/v1/users/{}", user["id"])))
            .json(&body);
        async move {
            let r = request.send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        }
    };
    let mut instances = sse::from_response(open(&feed).await);
    let mut watching = sse::from_response(open(&watch).await);
    assert_eq!(instances.next_event().await.event, "instances");
    watching.until_synced().await;

    change(json!({"role": "editor"})).await;
    assert!(instances.ends().await, "the instances stream ends");
    assert!(watching.ends().await, "the watch stream ends");
    let r = open(&feed).await;
    assert_eq!(r.status(), StatusCode::OK, "still allowed: it reconnects");
    let mut instances = sse::from_response(r);
    assert_eq!(instances.next_event().await.event, "instances");

    change(json!({"disabled": true})).await;
    assert!(instances.ends().await, "a disabled user's stream ends");
    for url in [&feed, &watch] {
        assert_eq!(open(url).await.status(), StatusCode::UNAUTHORIZED, "{url}");
    }
}

/// Issue 13, point 7: the same-origin rule holds for every server function
/// (at its real path, with its hash suffix) whatever headers come with the
/// session cookie; a bearer token without the cookie is not a browser's.
#[tokio::test]
async fn server_functions_refuse_cross_origin_cookie_requests_whatever_headers_come() {
    use graycast::api::admin::CreateEnvironment;
    use leptos::server_fn::ServerFn;
    let app = spawn_app().await;
    let paths: Vec<_> = leptos::server_fn::axum::server_fn_paths().collect();
    assert!(
        paths.iter().any(|(p, _)| *p == CreateEnvironment::PATH),
        "{paths:?}"
    );
    assert!(
        paths.len() >= 20,
        "every server function is listed: {paths:?}"
    );
    for (path, method) in &paths {
        // A GET server function would be a change the rule does not see.
        assert_eq!(*method, Method::POST, "{path}");
        for authorization in [
            None,
            Some("Basic YWRtaW46YWRtaW4tcGFzc3dvcmQ="),
            Some("Bearer not-a-token"),
        ] {
            let mut request = app
                .admin
                .post(app.url(path))
                .header("Origin", "http://evil.example");
            if let Some(value) = authorization {
                request = request.header("Authorization", value);
            }
            let r = request.form(&[("name", "evil")]).send().await.unwrap();
            let status = r.status();
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{path} with {authorization:?}: {}",
                r.text().await.unwrap()
            );
        }
    }
    let r = app
        .admin
        .post(app.url(CreateEnvironment::PATH))
        .header("Origin", "http://evil.example")
        .header("Authorization", "Basic YWRtaW46YWRtaW4tcGFzc3dvcmQ=")
        .form(&[("name", "evil")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (_, environments) = app.get_json("/api/v1/environments").await;
    assert!(
        !environments.to_string().contains("evil"),
        "nothing was created: {environments}"
    );
    // From the dashboard's own origin the same call works.
    let r = app
        .admin
        .post(app.url(CreateEnvironment::PATH))
        .header("Origin", app.base.clone())
        .form(&[("name", "good")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    // A bearer token without the cookie passes, whatever the Origin.
    let token = app.token("automation", "admin", None, None).await;
    let r = client()
        .post(app.url("/api/v1/environments"))
        .bearer_auth(&token)
        .header("Origin", "http://evil.example")
        .json(&json!({ "name": "by-token" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}
