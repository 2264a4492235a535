//! Issue 29, point 4: trigger URLs. An alerting system calls `POST /hooks/{token}` to abort
//! lanes, pause plans or roll back; a fire only shrinks what is live (no approvals, no freeze),
//! does nothing the second time, is rate-limited and audited with the caller's address and an
//! excerpt of its body. Triggers can be disabled, rotated and deleted; their tokens are shown
//! only when made.

use crate::common::{client, config_path, spawn_app_with, TestApp};
use crate::plans::{
    self, config, listed_lane, plan, plan_body, start, subscriber_token, Instance, ENV, NS,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const TRIGGERS: &str = "/api/v1/triggers";

/// Creates a trigger as admin, asserting 201.
async fn trigger(app: &TestApp, body: Value) -> Value {
    let (status, trigger) = app.post_json(TRIGGERS, body).await;
    assert_eq!(status, StatusCode::CREATED, "{trigger}");
    trigger
}

/// Calls a trigger URL with `body` as any alerting system would: no credentials.
async fn fire_with(url: &str, body: &str) -> (StatusCode, Value) {
    let r = client()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn fire(url: &Value) -> (StatusCode, Value) {
    fire_with(url.as_str().unwrap(), r#"{"status":"firing"}"#).await
}

/// A lane on version 2 of `key` with a plan that holds its first step for an hour.
async fn lane_with_plan(app: &TestApp, key: &str, extra: Value) -> Value {
    let mut body =
        json!({"version": 2, "plan": plan_body(&[(10.0, 3600), (50.0, 3600)], json!({}))});
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            body[k] = v;
        }
    }
    start(app, key, body).await
}

async fn list(app: &TestApp, query: &str) -> Value {
    let (status, page) = app.get_json(&format!("{TRIGGERS}?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page
}

#[tokio::test]
async fn a_trigger_aborts_the_lanes_once_and_is_audited() {
    let app = plans::app().await;
    config(&app, "app.json").await;
    let token = subscriber_token(&app).await;
    let pod = Instance::start(&app, &token, "app.json", "pod-1", None).await;
    let lane = lane_with_plan(&app, "app.json", json!({"targets": ["pod-1"]})).await;
    pod.wait_for(2).await;

    let created = trigger(
        &app,
        json!({"namespace": NS, "env": ENV, "key": "app.json", "action": "abort-lanes",
               "description": "HighErrorRate"}),
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    let secret = created["token"].as_str().unwrap();
    assert!(secret.starts_with("gct_"), "{created}");
    assert_eq!(created["url"], format!("{}/hooks/{secret}", app.base));
    assert_eq!(
        (
            &created["namespace"],
            &created["env"],
            &created["key"],
            &created["action"]
        ),
        (
            &json!(NS),
            &json!(ENV),
            &json!("app.json"),
            &json!("abort-lanes")
        )
    );
    assert_eq!(
        (
            &created["enabled"],
            &created["fired"],
            &created["created_by"]
        ),
        (&json!(true), &json!(0), &json!("admin"))
    );

    // Alertmanager's body: long, with new lines; the audit keeps 200 characters of it.
    let body = format!(
        "{{\"status\":\"firing\",\n\"alerts\":[{{\"labels\":{{\"alertname\":\"HighErrorRate\"}}}}],\"pad\":\"{}\"}}",
        "x".repeat(300)
    );
    let (status, fired) = fire_with(created["url"].as_str().unwrap(), &body).await;
    assert_eq!(status, StatusCode::OK, "{fired}");
    assert_eq!(
        fired,
        json!({"trigger": id, "action": "abort-lanes", "done": [
            {"key": "app.json", "action": "lane.abort", "lane": lane["id"], "version": 2}]})
    );
    // The subscriber is back on stable, the lane is aborted and its plan ended.
    pod.wait_for(1).await;
    assert_eq!(
        listed_lane(&app, "app.json", &lane).await["status"],
        "aborted"
    );
    assert_eq!(plan(&app, "app.json", &lane).await["state"], "aborted");

    // Nothing left to shrink: a second fire does nothing, and says so.
    let (status, again) = fire(&created["url"]).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["done"], json!([]));

    let fires = app.audit("trigger.fire").await;
    assert_eq!(fires.len(), 2, "{fires:?}");
    let first = &fires[1];
    assert_eq!(first["actor"], format!("trigger:{id}"));
    assert_eq!(
        (&first["namespace"], &first["env"], &first["key"]),
        (&json!(NS), &json!(ENV), &json!("app.json"))
    );
    assert_eq!(first["details"]["address"], "127.0.0.1");
    let excerpt = first["details"]["body"].as_str().unwrap();
    assert_eq!(excerpt.chars().count(), 200, "{excerpt}");
    assert!(
        excerpt.starts_with("{\"status\":\"firing\",\"alerts\""),
        "{excerpt}"
    );
    assert_eq!(first["details"]["done"], fired["done"]);
    assert_eq!(fires[0]["details"]["done"], json!([]));
    // The abort itself is audited as usual, by the trigger.
    let aborts = app.audit("lane.abort").await;
    assert_eq!(aborts[0]["actor"], format!("trigger:{id}"));
    assert_eq!(
        aborts[0]["details"]["message"],
        format!("trigger {id} fired: HighErrorRate")
    );

    let page = list(&app, &format!("namespace={NS}&env={ENV}")).await;
    let listed = &page["triggers"][0];
    assert_eq!(listed["fired"], 2, "{page}");
    assert!(listed["last_fired_at"].is_string(), "{page}");
    assert!(
        listed.get("token").is_none() && listed.get("url").is_none(),
        "{page}"
    );
    assert!(!page.to_string().contains(secret));
    let (_, audit) = app.get_json("/api/v1/audit?limit=500").await;
    assert!(
        !audit.to_string().contains(secret),
        "the token is never audited"
    );
}

#[tokio::test]
async fn a_trigger_without_a_key_pauses_every_running_plan_and_leaves_the_lanes() {
    let app = plans::app().await;
    config(&app, "a.json").await;
    config(&app, "b.json").await;
    let a = lane_with_plan(&app, "a.json", json!({})).await;
    let b = lane_with_plan(&app, "b.json", json!({})).await;
    // A lane without a plan has nothing to pause.
    start(&app, "b.json", json!({"version": 2, "percentage": 5})).await;
    let created = trigger(
        &app,
        json!({"namespace": NS, "env": ENV, "action": "pause-plans", "description": "p99 burn"}),
    )
    .await;
    assert_eq!(created["key"], Value::Null);
    let (status, fired) = fire(&created["url"]).await;
    assert_eq!(status, StatusCode::OK, "{fired}");
    assert_eq!(
        fired["done"],
        json!([{"key": "a.json", "action": "rollout.pause", "lane": a["id"]},
               {"key": "b.json", "action": "rollout.pause", "lane": b["id"]}])
    );
    for (key, lane) in [("a.json", &a), ("b.json", &b)] {
        let p = plan(&app, key, lane).await;
        assert_eq!(p["state"], "paused", "{p}");
        assert_eq!(
            p["reason"],
            format!("paused by trigger:{}: p99 burn", created["id"]),
            "{p}"
        );
        let listed = listed_lane(&app, key, lane).await;
        assert_eq!(
            (&listed["status"], &listed["percentage"]),
            (&json!("active"), &json!(10.0)),
            "{listed}"
        );
    }
    let (status, again) = fire(&created["url"]).await;
    assert_eq!((status, &again["done"]), (StatusCode::OK, &json!([])));
    let pauses = app.audit("rollout.pause").await;
    assert_eq!(pauses.len(), 2);
    assert!(pauses
        .iter()
        .all(|p| p["actor"] == format!("trigger:{}", created["id"])));
    let fires = app.audit("trigger.fire").await;
    assert_eq!(
        (&fires[1]["namespace"], &fires[1]["key"]),
        (&json!(NS), &Value::Null)
    );
}

/// The stable version of `shop/prod/app.json`.
async fn stable(app: &TestApp) -> Value {
    let (status, config) = app.get_json(&config_path(NS, ENV, "app.json", "")).await;
    assert_eq!(status, StatusCode::OK, "{config}");
    config["stable_version"].clone()
}

#[tokio::test]
async fn a_rollback_trigger_goes_back_once_even_when_protected_and_frozen() {
    let app = plans::app().await;
    config(&app, "app.json").await;
    app.save(NS, ENV, "app.json", r#"{"v":3}"#, 2).await;
    app.release(NS, ENV, "app.json", 2, "second").await;
    let created = trigger(
        &app,
        json!({"namespace": NS, "env": ENV, "key": "app.json", "action": "rollback"}),
    )
    .await;
    // Widening actions now wait for approvals and for the freeze; shrinking ones never do.
    let (status, body) = plans::send(
        &app,
        Method::PUT,
        "/api/v1/environments/prod/protection",
        Some(json!({"approvals": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let now = app.clock.now_ms();
    let (status, body) = app
        .post_json(
            "/api/v1/environments/prod/freezes",
            json!({"from": graycast::server::clock::timestamp(now - 60_000).to_string(),
                   "to": graycast::server::clock::timestamp(now + 3_600_000).to_string(),
                   "reason": "incident"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let (status, fired) = fire(&created["url"]).await;
    assert_eq!(status, StatusCode::OK, "{fired}");
    assert_eq!(
        fired["done"],
        json!([{"key": "app.json", "action": "release.rollback", "version": 1,
                "previous_version": 2}])
    );
    assert_eq!(stable(&app).await, 1);
    let (_, releases) = app
        .get_json(&config_path(NS, ENV, "app.json", "/releases"))
        .await;
    assert_eq!(
        (&releases[0]["kind"], &releases[0]["actor"]),
        (
            &json!("rollback"),
            &json!(format!("trigger:{}", created["id"]))
        )
    );
    // The stable release is a rollback now: firing again does not walk further back.
    let (status, again) = fire(&created["url"]).await;
    assert_eq!((status, &again["done"]), (StatusCode::OK, &json!([])));
    assert_eq!(stable(&app).await, 1);
    assert_eq!(app.audit("release.rollback").await.len(), 1);
    assert!(app.audit("change.request").await.is_empty());
}

#[tokio::test]
async fn disabled_rotated_and_deleted_triggers_answer_like_unknown_ones() {
    let app = plans::app().await;
    config(&app, "app.json").await;
    let created = trigger(
        &app,
        json!({"namespace": NS, "env": ENV, "key": "app.json", "action": "abort-lanes"}),
    )
    .await;
    let id = &created["id"];
    let one = format!("{TRIGGERS}/{id}");
    let (status, unknown) = fire_with(&app.url("/hooks/gct_nothing"), "").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}");

    let (status, disabled) =
        plans::send(&app, Method::PATCH, &one, Some(json!({"enabled": false}))).await;
    assert_eq!(status, StatusCode::OK, "{disabled}");
    assert_eq!(disabled["enabled"], false);
    assert!(disabled.get("token").is_none(), "{disabled}");
    let (status, body) = fire(&created["url"]).await;
    assert_eq!((status, &body), (StatusCode::NOT_FOUND, &unknown));
    let (status, enabled) = plans::send(
        &app,
        Method::PATCH,
        &one,
        Some(json!({"enabled": true, "description": "pager"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{enabled}");
    assert_eq!(
        (&enabled["enabled"], &enabled["description"]),
        (&json!(true), &json!("pager"))
    );
    assert_eq!(fire(&created["url"]).await.0, StatusCode::OK);

    let (status, rotated) = plans::send(&app, Method::POST, &format!("{one}/rotate"), None).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_ne!(rotated["token"], created["token"]);
    assert_eq!(
        rotated["url"],
        format!("{}/hooks/{}", app.base, rotated["token"].as_str().unwrap())
    );
    let (status, body) = fire(&created["url"]).await;
    assert_eq!((status, &body), (StatusCode::NOT_FOUND, &unknown));
    assert_eq!(fire(&rotated["url"]).await.0, StatusCode::OK);

    let page = list(&app, &format!("namespace={NS}&env={ENV}")).await;
    let text = page.to_string();
    for secret in [&created["token"], &rotated["token"]] {
        assert!(!text.contains(secret.as_str().unwrap()), "{page}");
    }
    let (_, audit) = app.get_json("/api/v1/audit?limit=500").await;
    for secret in [&created["token"], &rotated["token"]] {
        assert!(!audit.to_string().contains(secret.as_str().unwrap()));
    }
    assert_eq!(app.audit("trigger.update").await.len(), 2);
    assert_eq!(app.audit("trigger.rotate").await.len(), 1);

    let (status, _) = plans::send(&app, Method::DELETE, &one, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = fire(&rotated["url"]).await;
    assert_eq!((status, &body), (StatusCode::NOT_FOUND, &unknown));
    let (status, _) = plans::send(&app, Method::DELETE, &one, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = plans::send(&app, Method::DELETE, &format!("{TRIGGERS}/x"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        list(&app, &format!("namespace={NS}&env={ENV}")).await["triggers"],
        json!([])
    );
    let deleted = app.audit("trigger.delete").await;
    assert_eq!((deleted.len(), &deleted[0]["details"]["id"]), (1, id));
}

#[tokio::test]
async fn a_trigger_fires_ten_times_a_minute() {
    let app = plans::app().await;
    config(&app, "app.json").await;
    let created = trigger(
        &app,
        json!({"namespace": NS, "env": ENV, "key": "app.json", "action": "pause-plans"}),
    )
    .await;
    for _ in 0..10 {
        assert_eq!(fire(&created["url"]).await.0, StatusCode::OK);
    }
    let r = client()
        .post(created["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=6).contains(&retry), "{retry}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_requests", "{body}");
    // Refused fires are counted, not audited.
    assert_eq!(app.audit("trigger.fire").await.len(), 10);
    let metrics = app.admin.get(app.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains("graycast_trigger_fires_total{outcome=\"limited\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("graycast_trigger_fires_total{outcome=\"nothing\"} 10"));

    app.clock.advance(Duration::from_secs(60));
    assert_eq!(fire(&created["url"]).await.0, StatusCode::OK);
    let page = list(&app, &format!("namespace={NS}&env={ENV}")).await;
    assert_eq!(page["triggers"][0]["fired"], 11);
}

#[tokio::test]
async fn bad_triggers_are_refused_naming_the_field() {
    let app = plans::app().await;
    config(&app, "app.json").await;
    let body = |extra: Value| {
        let mut b =
            json!({"namespace": NS, "env": ENV, "key": "app.json", "action": "abort-lanes"});
        if let Value::Object(extra) = extra {
            for (k, v) in extra {
                b[k] = v;
            }
        }
        b
    };
    for (extra, field) in [
        (json!({"description": "x".repeat(201)}), "description"),
        (json!({"action": "explode"}), "action"),
        (json!({"action": "rollback", "key": null}), "key"),
    ] {
        let (status, error) = app.post_json(TRIGGERS, body(extra.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{extra}: {error}");
        assert_eq!(error["error"]["field"], field, "{extra}: {error}");
    }
    let (status, error) = app.post_json(TRIGGERS, body(json!({"hook": 1}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    for (extra, named) in [
        (json!({"key": "missing.json"}), "missing.json"),
        (json!({"namespace": "nowhere"}), "nowhere"),
        (json!({"env": "moon"}), "moon"),
    ] {
        let (status, error) = app.post_json(TRIGGERS, body(extra.clone())).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{extra}: {error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(named), "{message}");
    }
    let (status, _) = plans::send(
        &app,
        Method::PATCH,
        &format!("{TRIGGERS}/999"),
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(app.audit("trigger.create").await.is_empty());

    // A body over 1 MiB is refused before anything is done.
    let created = trigger(&app, body(json!({}))).await;
    let huge = "x".repeat(1024 * 1024 + 1);
    let (status, error) = fire_with(created["url"].as_str().unwrap(), &huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{error}");
    assert!(app.audit("trigger.fire").await.is_empty());

    // At most 50 per namespace and environment; pages of them, oldest first.
    for _ in 1..50 {
        trigger(&app, body(json!({}))).await;
    }
    let (status, error) = app.post_json(TRIGGERS, body(json!({}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    let first = list(&app, &format!("namespace={NS}&env={ENV}&limit=30")).await;
    let ids: Vec<i64> = first["triggers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 30);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let after = first["next_after"].as_i64().unwrap();
    assert_eq!(after, ids[29]);
    let rest = list(
        &app,
        &format!("namespace={NS}&env={ENV}&limit=30&after={after}"),
    )
    .await;
    assert_eq!(rest["triggers"].as_array().unwrap().len(), 20);
    assert_eq!(rest["next_after"], Value::Null);
    let (status, _) = app
        .get_json(&format!("{TRIGGERS}?namespace={NS}&env=staging"))
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_url_is_under_the_public_url_or_the_origin_a_trusted_proxy_names() {
    let app = spawn_app_with(|c| c.public_url = Some("https://graycast.example.com".into())).await;
    app.namespace(NS).await;
    let created = trigger(
        &app,
        json!({"namespace": NS, "env": ENV, "action": "abort-lanes"}),
    )
    .await;
    assert_eq!(
        created["url"],
        format!(
            "https://graycast.example.com/hooks/{}",
            created["token"].as_str().unwrap()
        )
    );

    let app = spawn_app_with(|c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    app.namespace(NS).await;
    let r = app
        .admin
        .post(app.url(TRIGGERS))
        .header("x-forwarded-host", "config.example.org")
        .header("x-forwarded-proto", "https")
        .json(&json!({"namespace": NS, "env": ENV, "action": "pause-plans"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let url = created["url"].as_str().unwrap();
    assert!(
        url.starts_with("https://config.example.org/hooks/gct_"),
        "{url}"
    );
    // Behind the proxy, the caller's address is the one it forwarded for.
    let r = client()
        .post(app.url(&format!("/hooks/{}", created["token"].as_str().unwrap())))
        .header("x-forwarded-for", "203.0.113.7")
        .body("alert")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let fires = app.audit("trigger.fire").await;
    assert_eq!(fires[0]["details"]["address"], "203.0.113.7");
    assert_eq!(fires[0]["details"]["body"], "alert");
    // The hook is no cookie-authenticated route: a browser's cross-origin call with the
    // session cookie is not refused (the token is the credential), nor signed in by it.
    let r = app
        .admin
        .post(app.url(&format!("/hooks/{}", created["token"].as_str().unwrap())))
        .header("origin", "https://elsewhere.example")
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        app.audit("trigger.fire").await[0]["actor"],
        format!("trigger:{}", created["id"])
    );
}
