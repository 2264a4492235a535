//! Issue 13, points 3, 4, 5 and 13: sign-in under attack (parallel guesses,
//! guesses from elsewhere, made-up usernames, a flood of verifications) and
//! the browser hardening headers and cookies — against the real server.

use crate::common::{client, login, spawn_app, spawn_app_with, TestApp, ADMIN_PASSWORD};
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::time::Duration;

/// A client whose connections come from `source` (any 127.x.y.z is local).
fn client_from(source: &str) -> Client {
    Client::builder()
        .cookie_store(true)
        .local_address(source.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn login_with(
    c: &Client,
    app: &TestApp,
    username: &str,
    password: &str,
    xff: &str,
) -> Response {
    c.post(app.url("/api/v1/auth/login"))
        .header("X-Forwarded-For", xff)
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap()
}

async fn body(r: Response) -> Value {
    r.json().await.unwrap()
}

#[tokio::test]
async fn parallel_guesses_for_one_name_are_verified_at_most_five_times() {
    let app = spawn_app().await;
    app.user("alice", "viewer", None).await;
    let attacker = client_from("127.0.0.2");
    let guesses = (0..60).map(|n| {
        let (attacker, base) = (attacker.clone(), app.base.clone());
        async move {
            login(&attacker, &base, "alice", &format!("guess-{n}"))
                .await
                .status()
        }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let verified = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((verified, refused), (5, 55), "{statuses:?}");
    assert_eq!(app.audit("auth.login_failed").await.len(), 5);
}

#[tokio::test]
async fn a_guesser_elsewhere_does_not_lock_out_the_owner() {
    let app = spawn_app().await;
    app.user("alice", "viewer", None).await;
    let attacker = client_from("127.0.0.2");
    for _ in 0..5 {
        let r = login(&attacker, &app.base, "alice", "guess").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // The guesser is stopped, even with the right password …
    let r = login(&attacker, &app.base, "alice", "alice-password").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // … the owner, from another address, is not.
    let owner = client_from("127.0.0.1");
    assert_eq!(
        login(&owner, &app.base, "alice", "alice-password")
            .await
            .status(),
        StatusCode::OK
    );
    // Trying other names from the guesser's address runs into the address's
    // own limit (20 failures a minute) instead of starting afresh per name.
    let mut statuses = Vec::new();
    for n in 0..16 {
        statuses.push(
            login(&attacker, &app.base, &format!("user{n}"), "guess")
                .await
                .status(),
        );
    }
    assert!(statuses[..15]
        .iter()
        .all(|s| *s == StatusCode::UNAUTHORIZED));
    assert_eq!(statuses[15], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    assert_eq!(
        login(&owner, &app.base, "admin", ADMIN_PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn failures_are_forgotten_after_the_window() {
    let window = Duration::from_secs(2);
    let app = spawn_app_with(|c| c.login.window = window).await;
    let c = client();
    // The throttle must hold within the window. On a loaded machine five password checks may
    // outlast it, which proves nothing either way: then wait the window out and try again.
    let mut judged = false;
    for _ in 0..5 {
        let began = tokio::time::Instant::now();
        for _ in 0..5 {
            login(&c, &app.base, "admin", "guess").await;
        }
        let status = login(&c, &app.base, "admin", ADMIN_PASSWORD).await.status();
        if began.elapsed() < window {
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
            judged = true;
            break;
        }
        tokio::time::sleep(window).await;
    }
    assert!(judged, "five sign-ins never fitted in the window");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while login(&c, &app.base, "admin", ADMIN_PASSWORD).await.status() != StatusCode::OK {
        assert!(tokio::time::Instant::now() < deadline, "still throttled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_counted() {
    let app = spawn_app_with(|c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    app.user("alice", "viewer", None).await;
    let proxy = client_from("127.0.0.1");
    for _ in 0..5 {
        let r = login_with(&proxy, &app, "alice", "guess", "203.0.113.7").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = login_with(&proxy, &app, "alice", "alice-password", "203.0.113.7").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let r = login_with(&proxy, &app, "alice", "alice-password", "198.51.100.1").await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "another client behind the proxy"
    );
    // A peer that is not a trusted proxy cannot pick its address.
    let direct = client_from("127.0.0.2");
    for n in 0..5 {
        let r = login_with(&direct, &app, "alice", "guess", &format!("192.0.2.{n}")).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = login_with(&direct, &app, "alice", "alice-password", "192.0.2.99").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn usernames_outside_the_name_rule_are_refused_before_anything_large_is_written() {
    let app = spawn_app().await;
    let c = client_from("127.0.0.2");
    let wrong = body(login(&c, &app.base, "admin", "guess").await).await;
    let before = audit_bytes(&app).await;
    let huge = "x".repeat(1 << 20);
    for n in 0..10 {
        let name = format!("{n}{huge}");
        let r = login(&c, &app.base, &name, "guess").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(body(r).await, wrong, "the same answer as a wrong password");
    }
    let r = login(&c, &app.base, "</p><b>admin</b> signed in", "guess").await;
    assert_eq!(body(r).await, wrong);
    let grown = audit_bytes(&app).await - before;
    assert!(grown < 4096, "the audit trail grew by {grown} bytes");
    let failures = app.audit("auth.login_failed").await;
    assert_eq!(failures[0]["actor"], "??p??b?admin??b??signed?in");
    assert_eq!(failures[0]["details"]["reason"], "invalid username");
    assert_eq!(failures[1]["actor"], format!("9{}…", "x".repeat(62)));
    // Made-up names count against the address like any failure: 1 + 11 so
    // far, 8 more reach its limit of 20, whatever the names.
    for n in 0..8 {
        let r = login(&c, &app.base, &format!("{n} {huge}"), "guess").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = login(&c, &app.base, "bob", "guess").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// The bytes of the actor and details columns of the audit table.
async fn audit_bytes(app: &TestApp) -> i64 {
    let pool = crate::common::database(&app.database_url).await;
    let n: i64 =
        sqlx::query_scalar("SELECT coalesce(sum(length(actor) + length(details)), 0) FROM audit")
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    n
}

/// An argon2id hash whose verification takes a second or more: a valid
/// hash with 300 passes over 8 MiB (its value matches no password).
const SLOW_HASH: &str = "$argon2id$v=19$m=8192,t=300,p=1$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

async fn metric(app: &TestApp, series: &str) -> Option<f64> {
    let text = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn password_verifications_are_bounded_and_the_rest_told_to_retry() {
    let app = spawn_app_with(|c| {
        c.login.checks_at_once = 1;
        c.login.checks_queued = 0;
    })
    .await;
    app.user("slow", "viewer", None).await;
    let pool = crate::common::database(&app.database_url).await;
    sqlx::query("UPDATE users SET password_hash = $1 WHERE username = 'slow'")
        .bind(SLOW_HASH)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let slow = tokio::spawn({
        let base = app.base.clone();
        async move { login(&client(), &base, "slow", "guess").await.status() }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while metric(&app, "graycast_password_checks_running").await != Some(1.0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slow check never ran"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Its one slot is taken and there is no queue: the next sign-in is
    // refused at once instead of starting a second verification.
    let r = login(&client(), &app.base, "admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "1");
    assert!(!slow.is_finished(), "the slow check outlasted the refusal");
    assert_eq!(
        metric(&app, "graycast_password_checks_refused_total").await,
        Some(1.0)
    );
    assert_eq!(slow.await.unwrap(), StatusCode::UNAUTHORIZED);
    // A refusal for lack of a slot is not a failed guess: admin is not throttled.
    assert_eq!(
        login(&client(), &app.base, "admin", ADMIN_PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn every_response_carries_the_browser_hardening_headers() {
    let app = spawn_app().await;
    let c = client();
    for (method, path) in [
        ("GET", "/login"),
        ("GET", "/healthz"),
        ("GET", "/favicon.svg"),
        ("GET", "/api/v1/namespaces"),
        ("POST", "/api/v1/auth/login"),
        ("GET", "/no-such-page"),
    ] {
        let r = c
            .request(method.parse().unwrap(), app.url(path))
            .send()
            .await
            .unwrap();
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
    }
}

fn session_cookie(r: &Response) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("graycast_session="))
        .expect("a session cookie")
}

fn is_secure(cookie: &str) -> bool {
    cookie.split(';').any(|a| a.trim() == "Secure")
}

#[tokio::test]
async fn secure_cookies_when_configured() {
    let app = spawn_app_with(|c| c.secure_cookies = true).await;
    let r = login(&client(), &app.base, "admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = session_cookie(&r);
    assert!(is_secure(&cookie), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
}

#[tokio::test]
async fn secure_cookies_when_a_trusted_proxy_says_https() {
    let app = spawn_app_with(|c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    let send = |from: &'static str, proto: Option<&'static str>| {
        let url = app.url("/api/v1/auth/login");
        async move {
            let mut request = client_from(from)
                .post(url)
                .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }));
            if let Some(proto) = proto {
                request = request.header("X-Forwarded-Proto", proto);
            }
            let r = request.send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            is_secure(&session_cookie(&r))
        }
    };
    assert!(send("127.0.0.1", Some("https")).await, "proxied HTTPS");
    assert!(!send("127.0.0.1", Some("http")).await, "proxied HTTP");
    assert!(!send("127.0.0.1", None).await, "no header");
    assert!(
        !send("127.0.0.2", Some("https")).await,
        "not the trusted proxy: its header means nothing"
    );
}

#[tokio::test]
async fn the_dashboards_sign_in_is_limited_alike() {
    use leptos::server_fn::ServerFn;
    let app = spawn_app().await;
    let attacker = client_from("127.0.0.2");
    let sign_in = |password: &'static str| {
        attacker
            .post(app.url(graycast::api::auth::SignIn::PATH))
            .header("Origin", app.base.clone())
            .form(&[("username", "admin"), ("password", password)])
            .send()
    };
    for _ in 0..5 {
        assert_eq!(
            sign_in("guess").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let r = sign_in(ADMIN_PASSWORD).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u32 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let error: graycast::Error = r.json().await.unwrap();
    assert_eq!(error.code, graycast::ErrorCode::TooManyRequests);
    assert_eq!(error.retry_after, Some(wait));
}
