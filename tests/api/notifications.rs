//! Issue 29, point 3: notification channels. A release is delivered to a loopback receiver
//! after it commits, signed (`X-Graycast-Signature-256` = HMAC-SHA256 of "<timestamp>.<body>"),
//! as JSON or a Slack message; a receiver that fails is retried with backoff from the database,
//! also across a restart, and given up after 24 hours; filters, the outbound policy, the test
//! button, bounds and who may do what. Time is the test clock's.

use crate::common::receiver::Receiver;
use crate::common::{client, config_path, eventually, spawn_app_with, TestApp};
use graycast::server::ServeConfig;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::Duration;

const CHANNELS: &str = "/api/v1/notification-channels";
const SECRET: &str = "a-secret-of-at-least-16";

fn loopback(config: &mut ServeConfig) {
    config.outbound_allow = vec!["127.0.0.0/8".parse().unwrap()];
}

async fn app() -> TestApp {
    let app = spawn_app_with(loopback).await;
    app.namespace("shop").await;
    app
}

async fn channel(app: &TestApp, body: Value) -> Value {
    let (status, channel) = app.post_json(CHANNELS, body).await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    channel
}

async fn deliveries(app: &TestApp, id: i64) -> Vec<Value> {
    let (status, page) = app.get_json(&format!("{CHANNELS}/{id}/deliveries")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["deliveries"].as_array().unwrap().clone()
}

/// The channel's newest delivery once `done` holds for it.
async fn delivery_when(app: &TestApp, id: i64, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let done = &done;
    eventually(what, || async move {
        deliveries(app, id).await.into_iter().next().filter(done)
    })
    .await
}

fn hmac_hex(secret: &str, message: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn a_release_is_delivered_signed_after_it_commits_with_its_sentence_and_diff() {
    let app = app().await;
    let receiver = Receiver::start(200).await;
    let ch = channel(
        &app,
        json!({"name": "ops", "url": receiver.url, "secret": SECRET, "format": "json",
               "events": ["release", "rollback"]}),
    )
    .await;
    assert_eq!(ch["signed"], true);
    assert!(
        ch.get("secret").is_none(),
        "the secret is never shown: {ch}"
    );
    app.config("shop", "prod", "app.json", "json", "{\"pool\": 4}")
        .await;
    app.release("shop", "prod", "app.json", 1, "first").await;
    let first = receiver.nth(1).await;
    let ts = first.header("x-graycast-timestamp").expect("a timestamp");
    let now = app.clock.now_ms() / 1000;
    assert!(
        (ts.parse::<i64>().unwrap() - now).abs() <= 5,
        "{ts} vs {now}"
    );
    let mut signed = ts.clone().into_bytes();
    signed.push(b'.');
    signed.extend_from_slice(&first.body);
    assert_eq!(
        first.header("x-graycast-signature-256").unwrap(),
        format!("sha256={}", hmac_hex(SECRET, &signed))
    );
    assert_eq!(first.header("x-graycast-event").unwrap(), "release.stable");
    let body = first.json();
    assert_eq!(body["event"], "release.stable");
    assert_eq!(body["test"], false);
    assert_eq!(body["entry"]["action"], "release.stable");
    assert_eq!(body["subject"], "shop/prod/app.json");
    assert_eq!(body["links"]["config"], "/ns/shop/prod/app.json");
    let sentence = body["sentence"].as_str().unwrap();
    assert!(
        sentence == "admin released v1 of shop/prod/app.json: 'first'",
        "{sentence}"
    );
    // A second release says what changed in lines.
    app.save("shop", "prod", "app.json", "{\"pool\": 8,\n\"x\": 1}", 1)
        .await;
    app.release("shop", "prod", "app.json", 2, "more").await;
    let second = receiver.nth(2).await.json();
    assert_eq!(
        second["diff"],
        json!({"from": 1, "to": 2, "added": 2, "removed": 1,
               "summary": "v1 → v2: 2 lines added, 1 removed"})
    );
    // Saving a version is no event of this channel; a rollback is.
    let (status, _) = app
        .post_json(
            &config_path("shop", "prod", "app.json", "/release"),
            json!({"version": 1, "message": "back"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let third = receiver.nth(3).await.json();
    assert_eq!(third["event"], "release.rollback");
    let id = ch["id"].as_i64().unwrap();
    let log = deliveries(&app, id).await;
    assert_eq!(log.len(), 3, "{log:?}");
    for d in &log {
        assert_eq!(
            (
                d["status"].clone(),
                d["attempts"].clone(),
                d["last_status"].clone()
            ),
            (json!("delivered"), json!(1), json!(200)),
            "{d}"
        );
    }
    assert_eq!(receiver.count(), 3);
}

#[tokio::test]
async fn a_failing_receiver_is_retried_with_backoff_across_a_restart_and_given_up_after_a_day() {
    let mut app = app().await;
    let receiver = Receiver::start(500).await;
    let ch = channel(
        &app,
        json!({"name": "flaky", "url": receiver.url, "secret": SECRET, "format": "json"}),
    )
    .await;
    let id = ch["id"].as_i64().unwrap();
    app.config("shop", "prod", "a.json", "json", "{}").await;
    app.release("shop", "prod", "a.json", 1, "one").await;
    let failed = delivery_when(&app, id, "the first attempt", |d| d["attempts"] == 1).await;
    assert_eq!(failed["status"], "pending");
    assert_eq!(failed["last_status"], 500);
    assert_eq!(failed["last_error"], "the receiver answered 500");
    // The next attempt waits 30 s: nothing is sent before the clock gets there.
    let next = failed["next_attempt_at"].as_str().unwrap().to_string();
    let last = failed["last_attempt_at"].as_str().unwrap().to_string();
    let gap = next
        .parse::<graycast::model::Timestamp>()
        .unwrap()
        .unix_ms()
        - last
            .parse::<graycast::model::Timestamp>()
            .unwrap()
            .unix_ms();
    assert_eq!(gap, 30_000, "{failed}");

    // Restarted before the retry: the delivery is in the database, not in memory.
    app.restart_with(loopback).await;
    receiver.status.store(200, Ordering::SeqCst);
    assert_eq!(receiver.count(), 1);
    app.clock.advance(Duration::from_secs(31));
    let done = delivery_when(&app, id, "the retry", |d| d["status"] == "delivered").await;
    assert_eq!(
        (done["attempts"].clone(), done["last_status"].clone()),
        (json!(2), json!(200))
    );
    assert_eq!(receiver.count(), 2);
    assert_eq!(
        receiver.nth(1).await.body,
        receiver.nth(2).await.body,
        "the same message"
    );

    // A receiver that never answers 2xx: given up once a day has passed since the event.
    receiver.status.store(503, Ordering::SeqCst);
    app.save("shop", "prod", "a.json", "{\"b\": 1}", 1).await;
    app.release("shop", "prod", "a.json", 2, "two").await;
    delivery_when(&app, id, "the first attempt at v2", |d| {
        d["event"] == "release.stable" && d["attempts"] == 1 && d["last_status"] == 503
    })
    .await;
    app.clock.advance(Duration::from_secs(25 * 3600));
    let given_up = delivery_when(&app, id, "giving up", |d| d["status"] == "failed").await;
    assert_eq!(given_up["attempts"], 2, "{given_up}");
    assert_eq!(
        given_up["last_error"],
        "gave up after 24 hours of attempts: the receiver answered 503"
    );
    assert!(given_up.get("next_attempt_at").is_none(), "{given_up}");
    let metrics = client()
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("graycast_notification_attempts_total{outcome=\"failed\"} 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn slack_messages_carry_the_sentence_config_and_diff_unsigned() {
    let app = spawn_app_with(|c| {
        loopback(c);
        c.public_url = Some("https://graycast.example.com".into());
    })
    .await;
    app.namespace("shop").await;
    let receiver = Receiver::start(200).await;
    let ch = channel(
        &app,
        json!({"name": "slack", "url": receiver.url, "format": "slack", "events": ["release"]}),
    )
    .await;
    assert_eq!(ch["signed"], false);
    app.config("shop", "prod", "s.json", "json", "{}").await;
    app.save("shop", "prod", "s.json", "{\"a\": 1}", 1).await;
    app.release("shop", "prod", "s.json", 1, "one").await;
    // Deliveries due together are sent concurrently: one at a time keeps their order.
    receiver.nth(1).await;
    app.release("shop", "prod", "s.json", 2, "two & <more>")
        .await;
    let got = receiver.nth(2).await;
    assert!(got.header("x-graycast-signature-256").is_none());
    let body = got.json();
    let text = body["text"].as_str().unwrap();
    assert_eq!(
        text,
        "admin released v2 of shop/prod/s.json: 'two &amp; &lt;more&gt;'"
    );
    let section = body["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(
        section.starts_with(
            "*<https://graycast.example.com/ns/shop/prod/s.json|shop/prod/s.json>*\nadmin released v2"
        ),
        "{section}"
    );
    assert!(
        section.contains("two &amp; &lt;more&gt;"),
        "escaped: {section}"
    );
    assert_eq!(
        body["blocks"][1]["elements"][0]["text"],
        "v1 → v2: 1 line added, 1 removed"
    );
}

#[tokio::test]
async fn a_channel_gets_only_its_namespace_environment_and_events() {
    let app = app().await;
    app.namespace("other").await;
    let receiver = Receiver::start(200).await;
    let lanes_only = channel(
        &app,
        json!({"name": "lanes", "url": receiver.url, "secret": SECRET, "format": "json",
               "events": ["lane.*"]}),
    )
    .await;
    let other = channel(
        &app,
        json!({"name": "other", "url": receiver.url, "secret": SECRET, "format": "json",
               "namespace": "other"}),
    )
    .await;
    let staging = channel(
        &app,
        json!({"name": "staging", "url": receiver.url, "secret": SECRET, "format": "json",
               "namespace": "shop", "env": "staging"}),
    )
    .await;
    let prod = channel(
        &app,
        json!({"name": "prod", "url": receiver.url, "secret": SECRET, "format": "json",
               "namespace": "shop", "env": "prod", "events": ["config.delete"]}),
    )
    .await;
    app.config("shop", "prod", "f.json", "json", "{}").await;
    app.release("shop", "prod", "f.json", 1, "one").await;
    let r = app
        .admin
        .delete(app.url(&config_path("shop", "prod", "f.json", "")))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let got = receiver.nth(1).await.json();
    assert_eq!(got["event"], "config.delete");
    // Deliveries are written with the change: what is not there now never will be.
    for ch in [&lanes_only, &other, &staging] {
        assert_eq!(
            deliveries(&app, ch["id"].as_i64().unwrap()).await,
            Vec::<Value>::new()
        );
    }
    assert_eq!(
        deliveries(&app, prod["id"].as_i64().unwrap()).await.len(),
        1
    );
    assert_eq!(receiver.count(), 1);
}

#[tokio::test]
async fn the_outbound_policy_holds_for_channels() {
    let app = spawn_app_with(|_| {}).await;
    let receiver = Receiver::start(200).await;
    // An address the policy denies is refused when the channel is made…
    let (status, body) = app
        .post_json(
            CHANNELS,
            json!({"name": "lo", "url": receiver.url, "secret": SECRET, "format": "json"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "url");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("outbound policy"));
    // …and a name that resolves to one is refused at every connection.
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let ch = channel(
        &app,
        json!({"name": "name", "url": format!("http://localhost:{port}/hook"),
               "secret": SECRET, "format": "json"}),
    )
    .await;
    let id = ch["id"].as_i64().unwrap();
    let (status, _) = app
        .post_json(&format!("{CHANNELS}/{id}/test"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let d = delivery_when(&app, id, "the denied attempt", |d| d["attempts"] == 1).await;
    assert!(
        d["last_error"]
            .as_str()
            .unwrap()
            .contains("outbound policy"),
        "{d}"
    );
    assert_eq!(receiver.count(), 0);
}

#[tokio::test]
async fn the_test_button_sends_a_signed_test_message() {
    let app = app().await;
    let receiver = Receiver::start(204).await;
    let ch = channel(
        &app,
        json!({"name": "t", "url": receiver.url, "secret": SECRET, "format": "json"}),
    )
    .await;
    let id = ch["id"].as_i64().unwrap();
    let (status, delivery) = app
        .post_json(&format!("{CHANNELS}/{id}/test"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{delivery}");
    assert_eq!(delivery["event"], "test");
    let got = receiver.nth(1).await;
    assert!(got.header("x-graycast-signature-256").is_some());
    let body = got.json();
    assert_eq!(
        (body["test"].clone(), body["event"].clone()),
        (json!(true), json!("test"))
    );
    let did = delivery["id"].as_i64().unwrap();
    let one = eventually("the test delivered", || async {
        let (_, d) = app
            .get_json(&format!("{CHANNELS}/{id}/deliveries/{did}"))
            .await;
        (d["status"] == "delivered").then_some(d)
    })
    .await;
    assert_eq!(one["last_status"], 204);
    let (_, listed) = app.get_json(CHANNELS).await;
    assert_eq!(listed[0]["last"]["id"], did, "{listed}");
    assert_eq!(listed[0]["pending"], 0);
}

#[tokio::test]
async fn bounds_are_named_and_secrets_never_shown() {
    let app = app().await;
    let url = "http://127.0.0.1:9/hook";
    let refused = |body: Value, field: &'static str| {
        let app = &app;
        async move {
            let (status, answer) = app.post_json(CHANNELS, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
            assert_eq!(answer["error"]["field"], field, "{answer}");
            answer
        }
    };
    refused(
        json!({"name": "", "url": url, "secret": SECRET, "format": "json"}),
        "name",
    )
    .await;
    refused(
        json!({"name": "x".repeat(65), "url": url, "secret": SECRET, "format": "json"}),
        "name",
    )
    .await;
    refused(
        json!({"name": "a", "url": "ftp://h/x", "secret": SECRET, "format": "json"}),
        "url",
    )
    .await;
    refused(json!({"name": "a", "url": url, "format": "json"}), "secret").await;
    refused(
        json!({"name": "a", "url": url, "secret": "short", "format": "slack"}),
        "secret",
    )
    .await;
    let bad = refused(
        json!({"name": "a", "url": url, "secret": SECRET, "format": "json",
               "events": ["release", "lane.nope"]}),
        "events[1]",
    )
    .await;
    assert!(bad["error"]["message"]
        .as_str()
        .unwrap()
        .contains("lane.nope"));
    refused(
        json!({"name": "a", "url": url, "secret": SECRET, "format": "json", "env": "nope"}),
        "env",
    )
    .await;
    let (status, _) = app
        .post_json(
            CHANNELS,
            json!({"name": "a", "url": url, "secret": SECRET, "format": "xml"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let ch = channel(
        &app,
        json!({"name": "a", "url": "http://127.0.0.1:9/services/T0/B0/verysecretpart",
               "secret": SECRET, "format": "json"}),
    )
    .await;
    assert_eq!(ch["url"], "http://127.0.0.1:9/services/T0/B0/very…");
    let (status, dup) = app
        .post_json(
            CHANNELS,
            json!({"name": "a", "url": url, "secret": SECRET, "format": "json"}),
        )
        .await;
    assert_eq!(
        (status, dup["error"]["field"].clone()),
        (StatusCode::CONFLICT, json!("name"))
    );
    let audit = app.audit("channel.create").await;
    let text = serde_json::to_string(&audit).unwrap();
    assert!(
        !text.contains(SECRET) && !text.contains("verysecretpart"),
        "{text}"
    );
    let (_, listed) = app.get_json(CHANNELS).await;
    let text = listed.to_string();
    assert!(
        !text.contains(SECRET) && !text.contains("verysecretpart"),
        "{text}"
    );

    for i in 1..50 {
        channel(
            &app,
            json!({"name": format!("c{i}"), "url": url, "format": "slack"}),
        )
        .await;
    }
    let (status, full) = app
        .post_json(
            CHANNELS,
            json!({"name": "one-too-many", "url": url, "format": "slack"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{full}");
    let id = ch["id"].as_i64().unwrap();
    let r = app
        .admin
        .delete(app.url(&format!("{CHANNELS}/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.audit("channel.delete").await.len(), 1);
    let (status, _) = app.get_json(&format!("{CHANNELS}/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn only_admins_within_their_limits_manage_channels() {
    let app = app().await;
    let url = "http://127.0.0.1:9/hook";
    let body = |env: Option<&str>| json!({"name": format!("c-{env:?}"), "url": url, "format": "slack", "env": env});
    let (status, _) = (
        client()
            .get(app.url(CHANNELS))
            .send()
            .await
            .unwrap()
            .status(),
        (),
    );
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for role in ["viewer", "editor", "releaser"] {
        let c = app.user(role, role, None).await;
        for r in [
            c.get(app.url(CHANNELS)).send().await.unwrap(),
            c.post(app.url(CHANNELS))
                .json(&body(None))
                .send()
                .await
                .unwrap(),
        ] {
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{role}");
        }
    }
    let everywhere = channel(&app, body(None)).await;
    let staging_admin = app.user("stadmin", "admin", Some("staging")).await;
    // A limited admin's channel must be limited like them.
    let r = staging_admin
        .post(app.url(CHANNELS))
        .json(&body(None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = staging_admin
        .post(app.url(CHANNELS))
        .json(&body(Some("prod")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = staging_admin
        .post(app.url(CHANNELS))
        .json(&body(Some("staging")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let own: Value = r.json().await.unwrap();
    // …and they see and touch only those.
    let listed: Value = staging_admin
        .get(app.url(CHANNELS))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["id"], own["id"]);
    let other = everywhere["id"].as_i64().unwrap();
    for r in [
        staging_admin
            .get(app.url(&format!("{CHANNELS}/{other}")))
            .send()
            .await
            .unwrap(),
        staging_admin
            .delete(app.url(&format!("{CHANNELS}/{other}")))
            .send()
            .await
            .unwrap(),
        staging_admin
            .post(app.url(&format!("{CHANNELS}/{other}/test")))
            .send()
            .await
            .unwrap(),
        staging_admin
            .get(app.url(&format!("{CHANNELS}/{other}/deliveries")))
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}
