//! Issue 25, findings 10, 11 and 15: sessions end with the account's role, limits or
//! standing; a user holds at most ten; the bearer scheme's name is case-insensitive; a NUL in
//! a server function's arguments is refused like anywhere else — on both engines.

use crate::common::{client, login, spawn_app, TestApp};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

async fn me(app: &TestApp, c: &Client) -> StatusCode {
    c.get(app.url("/api/v1/auth/me"))
        .send()
        .await
        .unwrap()
        .status()
}

async fn patch_user(app: &TestApp, id: i64, change: Value) {
    let r = app
        .admin
        .patch(app.url(&format!("/api/v1/users/{id}")))
        .json(&change)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
}

async fn signed_in(app: &TestApp, username: &str) -> Client {
    let c = client();
    let r = login(&c, &app.base, username, &format!("{username}-password")).await;
    assert_eq!(r.status(), StatusCode::OK);
    c
}

#[tokio::test]
async fn disabling_a_user_or_changing_their_role_or_environment_ends_their_sessions_for_good() {
    let app = spawn_app().await;
    let alice = app.user("alice", "viewer", None).await;
    let id = app.user_id("alice").await;
    assert_eq!(me(&app, &alice).await, StatusCode::OK);

    // A change that changes nothing keeps the session.
    patch_user(&app, id, json!({ "role": "viewer" })).await;
    assert_eq!(me(&app, &alice).await, StatusCode::OK);

    patch_user(&app, id, json!({ "disabled": true })).await;
    assert_eq!(me(&app, &alice).await, StatusCode::UNAUTHORIZED);
    // Re-enabled, the old cookie stays dead; signing in again works.
    patch_user(&app, id, json!({ "disabled": false })).await;
    assert_eq!(me(&app, &alice).await, StatusCode::UNAUTHORIZED);

    for change in [
        json!({ "role": "editor" }),
        json!({ "env": "staging" }),
        json!({ "env": null }),
    ] {
        let again = signed_in(&app, "alice").await;
        assert_eq!(me(&app, &again).await, StatusCode::OK);
        patch_user(&app, id, change.clone()).await;
        assert_eq!(me(&app, &again).await, StatusCode::UNAUTHORIZED, "{change}");
    }
    let updates = app.audit("user.update").await;
    assert!(
        updates.iter().any(|e| e["details"]["sessions_ended"] == 1),
        "{updates:?}"
    );
}

#[tokio::test]
async fn a_user_holds_at_most_ten_sessions_and_signing_in_again_ends_the_oldest() {
    let app = spawn_app().await;
    app.user("bob", "viewer", None).await; // session 1
    let mut sessions = Vec::new();
    for _ in 0..11 {
        sessions.push(signed_in(&app, "bob").await); // sessions 2..=12
    }
    // Twelve sign-ins, ten sessions: the first two (the helper's and sessions[0]) are over.
    assert_eq!(me(&app, &sessions[0]).await, StatusCode::UNAUTHORIZED);
    for c in &sessions[1..] {
        assert_eq!(me(&app, c).await, StatusCode::OK);
    }
    let logins = app.audit("auth.login").await;
    assert!(
        logins
            .iter()
            .any(|e| e["actor"] == "bob" && e["details"]["sessions_ended"] == 1),
        "{logins:?}"
    );
    // Signing out ends that session only.
    let r = sessions[1]
        .post(app.url("/api/v1/auth/logout"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(me(&app, &sessions[1]).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&app, &sessions[2]).await, StatusCode::OK);
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_on_every_path() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    app.config("shop", "prod", "app.json", "json", "{}").await;
    app.release("shop", "prod", "app.json", 1, "").await;
    let token = app.token("ci", "viewer", None, None).await;
    let raw = reqwest::Client::new();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        for path in [
            "/api/v1/namespaces".to_string(),
            // The fast path answers resolve.
            "/api/v1/namespaces/shop/envs/prod/configs/app.json/resolve?client_id=p".to_string(),
        ] {
            let r = raw
                .get(app.url(&path))
                .header("authorization", format!("{scheme}  {token}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{scheme} {path}");
        }
    }
    for refused in [
        format!("Basic {token}"),
        format!("Bearer{token}"),
        "Bearer ".into(),
    ] {
        let r = raw
            .get(app.url("/api/v1/namespaces"))
            .header("authorization", refused.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{refused}");
    }
}

#[tokio::test]
async fn a_nul_in_a_server_functions_arguments_is_refused_with_400() {
    use graycast::api::configs::CreateNamespace;
    use leptos::server_fn::ServerFn;
    let app = spawn_app().await;
    let r = app
        .admin
        .post(app.url(CreateNamespace::PATH))
        .header("Origin", app.base.clone())
        .form(&[
            ("namespace[name]", "shop"),
            ("namespace[description]", "a\0b"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let error: graycast::Error = r.json().await.unwrap();
    assert_eq!(error.code, graycast::ErrorCode::Invalid);
    assert!(error.message.contains("NUL"), "{}", error.message);
    // Nothing was created; without the NUL the same call works.
    let r = app
        .admin
        .post(app.url(CreateNamespace::PATH))
        .header("Origin", app.base.clone())
        .form(&[
            ("namespace[name]", "shop"),
            ("namespace[description]", "ab"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
}
