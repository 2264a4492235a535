//! Issue 16: resolve from memory — a resolve made after a release's answer
//! never sees the old state, the ETag names version, lane and content, bearer
//! tokens are checked from memory and a revocation counts at once.

use crate::common::{config_path, spawn_app, TestApp};
use reqwest::{header, StatusCode};
use serde_json::{json, Value};

fn resolve(query: &str) -> String {
    config_path("shop", "prod", "app.json", &format!("/resolve?{query}"))
}

async fn shop() -> TestApp {
    let app = spawn_app().await;
    app.namespace("shop").await;
    app.config("shop", "prod", "app.json", "json", r#"{"v":1}"#)
        .await;
    app
}

/// GET resolve as admin: status, ETag and body.
async fn get(
    app: &TestApp,
    query: &str,
    if_none_match: Option<&str>,
) -> (StatusCode, String, Value) {
    let mut request = app.admin.get(app.url(&resolve(query)));
    if let Some(tag) = if_none_match {
        request = request.header(header::IF_NONE_MATCH, tag);
    }
    let r = request.send().await.unwrap();
    let status = r.status();
    let etag = r
        .headers()
        .get(header::ETAG)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    (
        status,
        etag,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_resolve_right_after_each_answer_sees_what_it_put_live() {
    let app = shop().await;
    for n in 1..=25i64 {
        if n > 1 {
            app.save(
                "shop",
                "prod",
                "app.json",
                &format!(r#"{{"v":{n}}}"#),
                n - 1,
            )
            .await;
        }
        app.release("shop", "prod", "app.json", n, "next").await;
        let (status, _, body) = get(&app, "client_id=pod-1", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["version"], n, "right after releasing v{n}: {body}");
        assert_eq!(body["content"], format!(r#"{{"v":{n}}}"#));
    }
    // Lanes too: started, then aborted, each seen by the very next resolve.
    let lanes = config_path("shop", "prod", "app.json", "/lanes");
    for round in 0..10 {
        let (status, lane) = app
            .post_json(
                &lanes,
                json!({ "version": 1, "targets": ["pod-1"], "percentage": 0 }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{lane}");
        let (_, _, body) = get(&app, "client_id=pod-1", None).await;
        assert_eq!(
            (body["version"].clone(), body["lane"].clone()),
            (json!(1), lane["id"].clone()),
            "round {round}"
        );
        let abort = config_path(
            "shop",
            "prod",
            "app.json",
            &format!("/lanes/{}/abort", lane["id"]),
        );
        let (status, _) = app.post_json(&abort, json!({})).await;
        assert_eq!(status, StatusCode::OK);
        let (_, _, body) = get(&app, "client_id=pod-1", None).await;
        assert_eq!(
            (body["version"].clone(), body["lane"].clone()),
            (json!(25), Value::Null),
            "round {round}"
        );
    }
}

#[tokio::test]
async fn the_etag_changes_with_the_version_the_lane_and_the_content() {
    let app = shop().await;
    app.save("shop", "prod", "app.json", r#"{"v":2}"#, 1).await;
    // Version 3 has version 1's content.
    app.save("shop", "prod", "app.json", r#"{"v":1}"#, 2).await;
    app.release("shop", "prod", "app.json", 1, "first").await;
    let (_, v1_tag, body) = get(&app, "client_id=pod-1", None).await;
    assert_eq!(body["version"], 1);
    let (status, tag, _) = get(&app, "client_id=pod-1", Some(&v1_tag)).await;
    assert_eq!(
        (status, tag.as_str()),
        (StatusCode::NOT_MODIFIED, v1_tag.as_str())
    );

    app.release("shop", "prod", "app.json", 3, "same content")
        .await;
    let (status, v3_tag, body) = get(&app, "client_id=pod-1", Some(&v1_tag)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "equal content, other version: no 304"
    );
    assert_eq!(body["version"], 3);
    assert_ne!(v3_tag, v1_tag);

    // The same version from a lane is another answer (its `lane` differs).
    let (status, lane) = app
        .post_json(
            &config_path("shop", "prod", "app.json", "/lanes"),
            json!({ "version": 3, "targets": ["pod-1"], "percentage": 0 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{lane}");
    let (status, lane_tag, body) = get(&app, "client_id=pod-1", Some(&v3_tag)).await;
    assert_eq!(status, StatusCode::OK, "a 304 would keep the stale `lane`");
    assert_eq!(body["lane"], lane["id"]);
    assert_ne!(lane_tag, v3_tag);
    let (status, _, _) = get(&app, "client_id=pod-2", Some(&v3_tag)).await;
    assert_eq!(
        status,
        StatusCode::NOT_MODIFIED,
        "outside the lane it is still v3 stable"
    );

    // Weak comparison and lists.
    let (status, _, _) = get(
        &app,
        "client_id=pod-1",
        Some(&format!("\"x\", W/{lane_tag}")),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn deleted_and_recreated_configs_and_a_restart_resolve_from_memory() {
    let mut app = shop().await;
    app.release("shop", "prod", "app.json", 1, "first").await;
    let r = app
        .admin
        .delete(app.url(&config_path("shop", "prod", "app.json", "")))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let (status, _, body) = get(&app, "client_id=pod-1", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    app.config("shop", "prod", "app.json", "json", r#"{"again":1}"#)
        .await;
    let (status, _, body) = get(&app, "client_id=pod-1", None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "nothing released yet: {body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no stable release"),
        "{body}"
    );
    app.release("shop", "prod", "app.json", 1, "again").await;
    let (_, _, body) = get(&app, "client_id=pod-1", None).await;
    assert_eq!(body["content"], r#"{"again":1}"#);

    let (status, body) = app
        .get_json(&config_path("shop", "prod", "nope.json", "/resolve"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // After a restart the catalog is loaded from the database.
    app.restart_with(|_| {}).await;
    let (status, _, body) = get(&app, "client_id=pod-1", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["content"], r#"{"again":1}"#);
}

#[tokio::test]
async fn a_revoked_token_fails_on_its_next_request_and_bearers_get_no_session() {
    let app = shop().await;
    app.release("shop", "prod", "app.json", 1, "first").await;
    let (status, created) = app
        .post_json(
            "/api/v1/tokens",
            json!({ "name": "gateway", "role": "subscriber", "namespace": "shop", "env": "prod" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["token"].as_str().unwrap();
    for _ in 0..3 {
        let r = app.get_with(secret, &resolve("client_id=pod-1")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            r.headers().get(header::SET_COOKIE).is_none(),
            "a bearer request must not start a session"
        );
    }
    let r = app
        .admin
        .delete(app.url(&format!("/api/v1/tokens/{}", created["id"])))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let r = app.get_with(secret, &resolve("client_id=pod-1")).await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "revoked: the next request fails"
    );
    let r = app
        .get_with("gc_not-a-token", &resolve("client_id=pod-1"))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // last_used_at is written behind.
    let id = created["id"].as_i64().unwrap();
    crate::common::eventually("last_used_at to be written", || async {
        let (_, tokens) = app.get_json("/api/v1/tokens").await;
        tokens
            .as_array()?
            .iter()
            .find(|t| t["id"] == id)
            .filter(|t| t["last_used_at"].is_string())
            .map(|_| ())
    })
    .await;
}
