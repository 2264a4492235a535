//! Issue 3: sign-in, sessions, throttling, roles, tokens, same-origin rule,
//! audit, errors, probes and the command line — against the real server.

use crate::common::{client, error_code, login, spawn_app, ADMIN_PASSWORD};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn probes_answer() {
    let app = spawn_app().await;
    let c = client();
    assert_eq!(
        c.get(app.url("/healthz")).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        c.get(app.url("/readyz")).send().await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn login_sets_a_fresh_httponly_session_and_me_answers() {
    let app = spawn_app().await;
    let c = client();
    assert_eq!(
        c.get(app.url("/api/v1/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );

    let r = login(&c, &app.base, "admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r
        .headers()
        .get("set-cookie")
        .expect("session cookie")
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("graycast_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["user"]["username"], "admin");
    assert_eq!(body["user"]["role"], "admin");
    assert!(body["user"].get("password_hash").is_none());

    let me: Value = c
        .get(app.url("/api/v1/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"]["username"], "admin");

    // Signing in again on the same session gives a new session id.
    let again = login(&c, &app.base, "admin", ADMIN_PASSWORD).await;
    let cookie2 = again
        .headers()
        .get("set-cookie")
        .expect("new cookie")
        .to_str()
        .unwrap()
        .to_string();
    let id = |c: &str| c.split(';').next().unwrap().to_string();
    assert_ne!(id(&cookie), id(&cookie2), "the session id changes at login");
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_401() {
    let app = spawn_app().await;
    let c = client();
    let wrong = login(&c, &app.base, "admin", "not-it").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let wrong_body: Value = wrong.json().await.unwrap();
    let unknown = login(&c, &app.base, "nobody", "whatever").await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let unknown_body: Value = unknown.json().await.unwrap();
    assert_eq!(wrong_body, unknown_body, "no hint whether the user exists");
    assert_eq!(wrong_body["error"]["code"], "invalid_credentials");
    assert_eq!(
        c.get(app.url("/api/v1/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );

    let failures = app.audit("auth.login_failed").await;
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0]["actor"], "nobody");
    assert_eq!(failures[0]["details"]["reason"], "unknown user");
    assert_eq!(failures[1]["details"]["reason"], "wrong password");
}

#[tokio::test]
async fn five_failures_within_a_minute_throttle_that_username() {
    let app = spawn_app().await;
    app.user("dave", "viewer", None).await;
    let c = client();
    for _ in 0..5 {
        assert_eq!(
            login(&c, &app.base, "dave", "bad").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Even the right password is refused until the window passes.
    let r = login(&c, &app.base, "dave", "dave-password").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(error_code(r).await, "too_many_requests");
    // Other usernames are unaffected.
    assert_eq!(
        login(&c, &app.base, "admin", ADMIN_PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = spawn_app().await;
    let c = client();
    login(&c, &app.base, "admin", ADMIN_PASSWORD).await;
    let r = c.post(app.url("/api/v1/auth/logout")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        c.get(app.url("/api/v1/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        c.get(app.url("/api/v1/tokens"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let actions: Vec<String> = app
        .audit("auth.")
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        actions[..2],
        ["auth.logout".to_string(), "auth.login".to_string()]
    );
}

#[tokio::test]
async fn tokens_authenticate_every_route_until_revoked() {
    let app = spawn_app().await;
    let r = app
        .admin
        .post(app.url("/api/v1/tokens"))
        .json(&json!({ "name": "deploy", "role": "admin" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let secret = created["token"].as_str().unwrap().to_string();
    let id = created["id"].as_i64().unwrap();
    assert!(secret.starts_with("gc_"));

    // The secret is not stored: the listing shows only a prefix.
    let listing = app
        .admin
        .get(app.url("/api/v1/tokens"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!listing.contains(&secret));
    assert!(listing.contains(&secret[..8]));

    let me: Value = app
        .get_with(&secret, "/api/v1/auth/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["actor"]["name"], "token:deploy");
    assert_eq!(
        app.get_with(&secret, "/api/v1/environments").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get_with(&secret, "/api/v1/audit").await.status(),
        StatusCode::OK
    );
    // A token may mutate without an Origin: it is not cookie-authenticated.
    let r = app
        .post_with(&secret, "/api/v1/environments", json!({ "name": "qa" }))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    assert_eq!(
        app.get_with("gc_unknown", "/api/v1/environments")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    let r = app
        .admin
        .delete(app.url(&format!("/api/v1/tokens/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let revoked = app.get_with(&secret, "/api/v1/environments").await;
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(revoked).await, "unauthorized");

    assert_eq!(
        app.audit("token.create").await[0]["details"]["name"],
        "deploy"
    );
    assert_eq!(app.audit("token.revoke").await[0]["details"]["id"], id);
}

#[tokio::test]
async fn roles_are_checked_on_admin_routes() {
    let app = spawn_app().await;
    for role in ["subscriber", "viewer", "editor", "releaser"] {
        let token = app.token(&format!("t-{role}"), role, None, None).await;
        let r = app
            .post_with(
                &token,
                "/api/v1/tokens",
                json!({ "name": "x", "role": "viewer" }),
            )
            .await;
        assert_eq!(
            r.status(),
            StatusCode::FORBIDDEN,
            "{role} cannot create tokens"
        );
        assert_eq!(error_code(r).await, "forbidden");
        assert_eq!(
            app.get_with(&token, "/api/v1/users").await.status(),
            StatusCode::FORBIDDEN,
            "{role} cannot list users"
        );
        let r = app
            .post_with(&token, "/api/v1/environments", json!({ "name": "x" }))
            .await;
        assert_eq!(
            r.status(),
            StatusCode::FORBIDDEN,
            "{role} cannot create environments"
        );
    }
    let subscriber = app.token("sub", "subscriber", None, None).await;
    assert_eq!(
        app.get_with(&subscriber, "/api/v1/audit").await.status(),
        StatusCode::FORBIDDEN
    );
    let viewer = app.token("view", "viewer", None, None).await;
    assert_eq!(
        app.get_with(&viewer, "/api/v1/audit").await.status(),
        StatusCode::OK
    );

    // A signed-in non-admin user is refused too.
    let editor = app.user("erin", "editor", None).await;
    assert_eq!(
        editor
            .get(app.url("/api/v1/users"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn environment_limits_apply_to_users_and_tokens() {
    let app = spawn_app().await;
    let staging = app
        .token("staging-viewer", "viewer", None, Some("staging"))
        .await;
    assert_eq!(
        app.get_with(&staging, "/api/v1/audit?env=staging")
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get_with(&staging, "/api/v1/audit?env=prod")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    // Without a filter it sees only its environment's entries.
    let page: Value = app
        .get_with(&staging, "/api/v1/audit")
        .await
        .json()
        .await
        .unwrap();
    for entry in page["entries"].as_array().unwrap() {
        assert_eq!(entry["env"], "staging");
    }
    let r = app
        .admin
        .post(app.url("/api/v1/tokens"))
        .json(&json!({ "name": "bad", "role": "viewer", "env": "nowhere" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["field"], "env");
}

#[tokio::test]
async fn cookie_mutations_from_another_origin_are_refused() {
    let app = spawn_app().await;
    let r = app
        .admin
        .post(app.url("/api/v1/environments"))
        .header("Origin", "http://evil.example")
        .json(&json!({ "name": "evil" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(r).await, "forbidden");
    // The dashboard's own origin is accepted.
    let r = app
        .admin
        .post(app.url("/api/v1/environments"))
        .header("Origin", app.base.clone())
        .json(&json!({ "name": "good" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // Server functions (the dashboard's calls) are covered too.
    let r = app
        .admin
        .post(app.url(<graycast::api::auth::SignOut as leptos::server_fn::ServerFn>::PATH))
        .header("Origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A cross-site login attempt is refused before checking credentials.
    let r = client()
        .post(app.url("/api/v1/auth/login"))
        .header("Origin", "http://evil.example")
        .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn users_are_created_updated_and_disabled_with_audit() {
    let app = spawn_app().await;
    let frank = app.user("frank", "viewer", None).await;
    let users: Value = app
        .admin
        .get(app.url("/api/v1/users"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "frank")
        .unwrap()["id"]
        .as_i64()
        .unwrap();

    let dup = app
        .admin
        .post(app.url("/api/v1/users"))
        .json(&json!({ "username": "frank", "password": "longenough", "role": "viewer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), StatusCode::CONFLICT);

    let r = app
        .admin
        .patch(app.url(&format!("/api/v1/users/{id}")))
        .json(&json!({ "role": "editor", "env": "staging" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let updated: Value = r.json().await.unwrap();
    assert_eq!(updated["role"], "editor");
    assert_eq!(updated["env"], "staging");
    let entry = &app.audit("user.update").await[0];
    assert_eq!(entry["details"]["before"]["role"], "viewer");
    assert_eq!(entry["details"]["after"]["env"], "staging");

    let r = app
        .admin
        .patch(app.url(&format!("/api/v1/users/{id}")))
        .json(&json!({ "disabled": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The disabled user's existing session stops working, and it cannot sign in.
    assert_eq!(
        frank
            .get(app.url("/api/v1/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&client(), &app.base, "frank", "frank-password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.audit("user.create").await[0]["details"]["username"],
        "frank"
    );
}

#[tokio::test]
async fn errors_have_one_shape() {
    let app = spawn_app().await;
    let r = app
        .admin
        .get(app.url("/api/v1/no-such-route"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "not_found");
    let r = app
        .admin
        .post(app.url("/api/v1/tokens"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "bad_request");
    let r = app
        .admin
        .post(app.url("/api/v1/environments"))
        .json(&json!({ "name": "has space" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["field"], "name");
    let r = app
        .admin
        .post(app.url("/api/v1/environments"))
        .json(&json!({ "name": "prod" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn audit_is_append_only_in_the_database_and_paginates() {
    let app = spawn_app().await;
    for name in ["e1", "e2", "e3"] {
        let r = app
            .admin
            .post(app.url("/api/v1/environments"))
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let page: Value = app
        .admin
        .get(app.url("/api/v1/audit?action=environment.create&limit=2&actor=admin"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["details"]["name"], "e3");
    let before = page["next_before_id"].as_i64().expect("a next page");
    let next: Value = app
        .admin
        .get(app.url(&format!(
            "/api/v1/audit?action=environment.create&limit=2&actor=admin&before_id={before}"
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(next["entries"][0]["details"]["name"], "e1");
    assert!(next["next_before_id"].is_null());

    let pool = crate::common::database(&app.database_url).await;
    let update = sqlx::query("UPDATE audit SET actor = 'mallory'")
        .execute(&pool)
        .await;
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = sqlx::query("DELETE FROM audit").execute(&pool).await;
    assert!(delete.unwrap_err().to_string().contains("append-only"));
}

#[tokio::test]
async fn first_start_creates_environments_and_admin() {
    let app = spawn_app().await;
    let envs: Value = app
        .admin
        .get(app.url("/api/v1/environments"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = envs
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dev", "staging", "prod"]);
}

#[tokio::test]
async fn dashboard_server_functions_answer_with_the_error_status() {
    use leptos::server_fn::ServerFn;
    let app = spawn_app().await;
    let c = client();
    let r = c
        .post(app.url(graycast::api::auth::SignIn::PATH))
        .header("Origin", app.base.clone())
        .form(&[("username", "admin"), ("password", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let error: graycast::Error = r.json().await.unwrap();
    assert_eq!(error.code, graycast::ErrorCode::InvalidCredentials);
    // Admin-only server functions refuse a signed-out caller with 401.
    let r = c
        .post(app.url(graycast::api::admin::ListUsers::PATH))
        .header("Origin", app.base.clone())
        .form(&[("", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
