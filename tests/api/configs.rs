//! Issue 4: namespaces, configs, versions, release and rollback, resolve, diff
//! and audit search — against the real server.

use crate::common::{config_path, error_code, spawn_app, spawn_app_with};
use graycast::domain::format::{validate, ConfigFormat};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;

fn sha256(content: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(content.as_bytes())))
}

#[tokio::test]
async fn namespaces_are_created_listed_searched_and_unique() {
    let app = spawn_app().await;
    let (status, created) = app
        .post_json(
            "/api/v1/namespaces",
            json!({ "name": "order-service", "description": "Orders and checkout" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["name"], "order-service");
    assert_eq!(created["description"], "Orders and checkout");
    assert_eq!(created["config_count"], 0);
    app.namespace("payment").await;
    app.config("payment", "prod", "app.json", "json", "{}")
        .await;
    app.config("payment", "dev", "app.json", "json", "{}").await;

    let (status, body) = app
        .post_json("/api/v1/namespaces", json!({ "name": "payment" }))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "conflict");
    let (status, body) = app
        .post_json("/api/v1/namespaces", json!({ "name": "no spaces" }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["field"], "name");

    let (_, all) = app.get_json("/api/v1/namespaces").await;
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["order-service", "payment"]);
    assert_eq!(all[1]["config_count"], 2);
    let (_, found) = app.get_json("/api/v1/namespaces?q=ORDER").await;
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["name"], "order-service");
    let (_, found) = app.get_json("/api/v1/namespaces?q=checkout").await;
    assert_eq!(
        found[0]["name"], "order-service",
        "the description is searched too"
    );
    let (_, found) = app.get_json("/api/v1/namespaces?q=%25").await;
    assert_eq!(found, json!([]), "% is a plain character, not a wildcard");

    let entries = app.audit("namespace.create").await;
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["namespace"], "payment");
    assert_eq!(entries[1]["details"]["description"], "Orders and checkout");
}

#[tokio::test]
async fn configs_are_isolated_per_environment() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    let created = app
        .config("shop", "prod", "app.yaml", "yaml", "port: 80\n")
        .await;
    assert_eq!(created["namespace"], "shop");
    assert_eq!(created["env"], "prod");
    assert_eq!(created["key"], "app.yaml");
    assert_eq!(created["format"], "yaml");
    assert_eq!(created["latest_version"], 1);
    assert_eq!(created["stable_version"], Value::Null);
    assert_eq!(created["lanes"], json!([]));

    let (status, _) = app
        .get_json(&config_path("shop", "prod", "app.yaml", ""))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .get_json(&config_path("shop", "staging", "app.yaml", ""))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a prod config does not exist in staging"
    );
    assert_eq!(body["error"]["code"], "not_found");
    let (_, staging) = app
        .get_json("/api/v1/namespaces/shop/envs/staging/configs")
        .await;
    assert_eq!(staging, json!([]));
    let (_, prod) = app
        .get_json("/api/v1/namespaces/shop/envs/prod/configs")
        .await;
    assert_eq!(prod.as_array().unwrap().len(), 1);
    assert_eq!(prod[0]["key"], "app.yaml");

    // Same key in another environment is another config.
    let staging_config = app
        .config("shop", "staging", "app.yaml", "yaml", "port: 8080\n")
        .await;
    assert_eq!(staging_config["latest_version"], 1);
    app.save("shop", "staging", "app.yaml", "port: 8081\n", 1)
        .await;
    let (_, prod_config) = app
        .get_json(&config_path("shop", "prod", "app.yaml", ""))
        .await;
    assert_eq!(
        prod_config["latest_version"], 1,
        "saving in staging leaves prod alone"
    );

    let (status, body) = app
        .post_json(
            "/api/v1/namespaces/shop/envs/prod/configs",
            json!({ "key": "app.yaml", "format": "yaml", "content": "" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "conflict");

    let (status, body) = app
        .get_json("/api/v1/namespaces/shop/envs/qa/configs")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("environment"));
    let (status, _) = app
        .get_json("/api/v1/namespaces/nope/envs/prod/configs")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .post_json(
            "/api/v1/namespaces/shop/envs/qa/configs",
            json!({ "key": "x.txt", "format": "text", "content": "" }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    for bad_key in ["", "a/b", "sp ace", &"k".repeat(129)] {
        let (status, body) = app
            .post_json(
                "/api/v1/namespaces/shop/envs/prod/configs",
                json!({ "key": bad_key, "format": "text", "content": "" }),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "key {bad_key:?}");
        assert_eq!(body["error"]["field"], "key");
    }
    app.config("shop", "prod", &"k".repeat(128), "text", "")
        .await;
}

#[tokio::test]
async fn invalid_content_is_refused_with_line_and_column_and_nothing_is_stored() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    let cases = [
        ("json", "{\n  \"a\": }\n"),
        ("yaml", "a: 1\nb: [1, 2\nc: 3\n"),
        ("toml", "a = 1\nb = \n"),
        ("properties", "a=1\nb=\\u12zz\n"),
    ];
    for (format, content) in cases {
        let expected = validate(format.parse::<ConfigFormat>().unwrap(), content).unwrap_err();
        let before = app.audit_count().await;
        let key = format!("app.{format}");
        let (status, body) = app
            .post_json(
                "/api/v1/namespaces/shop/envs/prod/configs",
                json!({ "key": key, "format": format, "content": content }),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{format}: {body}");
        assert_eq!(body["error"]["code"], "invalid_content");
        assert_eq!(body["error"]["field"], "content");
        assert_eq!(body["error"]["message"], expected.to_string());
        let (status, _) = app.get_json(&config_path("shop", "prod", &key, "")).await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{format}: no config was created"
        );
        assert_eq!(app.audit_count().await, before, "{format}: no audit entry");

        // The same check guards new versions.
        let valid = if format == "properties" {
            "a=1\n"
        } else {
            "a = 1\n"
        };
        let valid = if format == "json" {
            "{\"a\": 1}"
        } else {
            valid
        };
        let valid = if format == "yaml" { "a: 1\n" } else { valid };
        app.config("shop", "prod", &key, format, valid).await;
        let before = app.audit_count().await;
        let (status, body) = app
            .post_json(
                &config_path("shop", "prod", &key, "/versions"),
                json!({ "content": content, "base_version": 1 }),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{format}: {body}");
        assert_eq!(body["error"]["message"], expected.to_string());
        let (_, versions) = app
            .get_json(&config_path("shop", "prod", &key, "/versions"))
            .await;
        assert_eq!(
            versions.as_array().unwrap().len(),
            1,
            "{format}: no version was stored"
        );
        assert_eq!(app.audit_count().await, before);
    }
    // The example from the issue, word for word.
    let (_, body) = app
        .post_json(
            "/api/v1/namespaces/shop/envs/prod/configs",
            json!({ "key": "x.json", "format": "json", "content": "{\n  \"a\": }" }),
        )
        .await;
    assert_eq!(body["error"]["message"], "line 2, column 8: expected value");
    // Text is always valid.
    app.config("shop", "prod", "notes.txt", "text", "{ not json")
        .await;
    let (status, _) = app
        .post_json(
            "/api/v1/namespaces/shop/envs/prod/configs",
            json!({ "key": "x.ini", "format": "ini", "content": "" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "unknown format");
}

#[tokio::test]
async fn content_over_the_limit_is_413() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    let limit = 1024 * 1024;
    let at_limit = "a".repeat(limit);
    app.config("shop", "prod", "big.txt", "text", &at_limit)
        .await;
    let before = app.audit_count().await;
    let over = "a".repeat(limit + 1);
    let (status, body) = app
        .post_json(
            "/api/v1/namespaces/shop/envs/prod/configs",
            json!({ "key": "bigger.txt", "format": "text", "content": over }),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "too_large");
    let (status, _) = app
        .post_json(
            &config_path("shop", "prod", "big.txt", "/versions"),
            json!({ "content": over, "base_version": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Far beyond the limit, the body itself is refused before it is read.
    let huge = "a".repeat(8 * limit);
    let (status, body) = app
        .post_json(
            &config_path("shop", "prod", "big.txt", "/versions"),
            json!({ "content": huge, "base_version": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], "too_large");
    assert_eq!(app.audit_count().await, before);
}

#[tokio::test]
async fn versions_are_numbered_checksummed_and_immutable() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    let v1 = "{\"port\": 80}";
    let v2 = "{\"port\": 81}";
    let v3 = "{\"port\": 82, \"tls\": true}";
    app.config("shop", "prod", "app.json", "json", v1).await;
    let saved = app.save("shop", "prod", "app.json", v2, 1).await;
    assert_eq!(saved["version"], 2);
    assert_eq!(saved["checksum"], sha256(v2));
    assert_eq!(saved["author"], "admin");
    assert_eq!(saved["message"], "");
    let (status, saved3) = app
        .post_json(
            &config_path("shop", "prod", "app.json", "/versions"),
            json!({ "content": v3, "base_version": 2, "message": "turn on TLS" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(saved3["message"], "turn on TLS");

    let (_, versions) = app
        .get_json(&config_path("shop", "prod", "app.json", "/versions"))
        .await;
    let numbers: Vec<i64> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [3, 2, 1], "newest first");
    for (v, content) in versions.as_array().unwrap().iter().zip([v3, v2, v1]) {
        assert_eq!(v["content"], content);
        assert_eq!(v["checksum"], sha256(content));
        assert!(v["created_at"].as_str().unwrap().ends_with('Z'));
    }
    let (status, one) = app
        .get_json(&config_path("shop", "prod", "app.json", "/versions/1"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["content"], v1);
    let (status, _) = app
        .get_json(&config_path("shop", "prod", "app.json", "/versions/9"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .get_json(&config_path("shop", "prod", "app.json", "/versions/abc"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, config) = app
        .get_json(&config_path("shop", "prod", "app.json", ""))
        .await;
    assert_eq!(config["latest_version"], 3);
    assert_eq!(
        config["stable_version"],
        Value::Null,
        "saving releases nothing"
    );

    let created = &app.audit("config.create").await[0];
    assert_eq!(created["key"], "app.json");
    assert_eq!(created["details"]["format"], "json");
    assert_eq!(created["details"]["version"], 1);
    let version_entry = &app.audit("version.create").await[0];
    assert_eq!(version_entry["details"]["version"], 3);
    assert_eq!(version_entry["details"]["base_version"], 2);
    assert_eq!(version_entry["details"]["message"], "turn on TLS");
    assert_eq!(version_entry["details"]["checksum"], sha256(v3));
    assert_eq!(version_entry["details"]["added"], 1);
    assert_eq!(version_entry["details"]["removed"], 1);

    // The database refuses to rewrite history.
    app.release("shop", "prod", "app.json", 1, "").await;
    let pool = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
    for sql in [
        "UPDATE versions SET content = 'x' WHERE version = 1",
        "DELETE FROM versions WHERE version = 1",
        "UPDATE release_events SET version = 2",
        "DELETE FROM release_events",
    ] {
        let err = sqlx::query(sql).execute(&pool).await.expect_err(sql);
        let text = err.to_string();
        assert!(
            text.contains("immutable") || text.contains("append-only"),
            "{sql}: {text}"
        );
    }
}

#[tokio::test]
async fn a_stale_base_version_is_409_naming_the_latest() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    app.config("shop", "prod", "app.toml", "toml", "a = 1\n")
        .await;
    app.save("shop", "prod", "app.toml", "a = 2\n", 1).await;
    app.save("shop", "prod", "app.toml", "a = 3\n", 2).await;
    let before = app.audit_count().await;
    let (status, body) = app
        .post_json(
            &config_path("shop", "prod", "app.toml", "/versions"),
            json!({ "content": "a = 99\n", "base_version": 2 }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "conflict");
    assert_eq!(body["error"]["field"], "base_version");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("version 3 is the latest; your edit is based on 2"),
        "{message}"
    );
    let (_, versions) = app
        .get_json(&config_path("shop", "prod", "app.toml", "/versions"))
        .await;
    assert_eq!(versions.as_array().unwrap().len(), 3);
    assert_eq!(app.audit_count().await, before);
    let (status, _) = app
        .post_json(
            &config_path("shop", "prod", "app.toml", "/versions"),
            json!({ "content": "a = 4\n" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "base_version is required");
}

#[tokio::test]
async fn concurrent_saves_on_one_base_let_exactly_one_win() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    app.config("shop", "prod", "app.txt", "text", "0").await;
    let path = config_path("shop", "prod", "app.txt", "/versions");
    let saves = (0..8).map(|i| {
        let (client, url) = (app.admin.clone(), app.url(&path));
        async move {
            client
                .post(url)
                .json(&json!({ "content": format!("{i}"), "base_version": 1 }))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    let statuses = futures_join_all(saves).await;
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(statuses
        .iter()
        .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT));
}

/// Runs the futures concurrently on the test runtime.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn release_and_rollback_are_recorded_as_events() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    app.config("shop", "prod", "a.txt", "text", "one").await;
    app.config("shop", "prod", "b.txt", "text", "one").await;
    app.save("shop", "prod", "a.txt", "two", 1).await;
    app.save("shop", "prod", "a.txt", "three", 2).await;

    let first = app
        .release("shop", "prod", "a.txt", 2, "first release")
        .await;
    assert_eq!(first["kind"], "stable");
    assert_eq!(first["version"], 2);
    assert_eq!(first["previous_version"], Value::Null);
    assert_eq!(first["lane"], Value::Null);
    assert_eq!(first["actor"], "admin");
    assert_eq!(first["namespace"], "shop");
    assert_eq!(first["env"], "prod");
    assert_eq!(first["key"], "a.txt");
    let other = app.release("shop", "prod", "b.txt", 1, "").await;
    let second = app.release("shop", "prod", "a.txt", 3, "newer").await;
    assert_eq!(second["kind"], "stable");
    assert_eq!(second["previous_version"], 2);
    let rollback = app.release("shop", "prod", "a.txt", 1, "back to one").await;
    assert_eq!(rollback["kind"], "rollback");
    assert_eq!(rollback["version"], 1);
    assert_eq!(rollback["previous_version"], 3);
    // Forward again after a rollback is a plain release.
    let forward = app.release("shop", "prod", "a.txt", 2, "").await;
    assert_eq!(forward["kind"], "stable");

    let ids: Vec<i64> = [&first, &other, &second, &rollback, &forward]
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "one global increasing sequence: {ids:?}"
    );

    let (status, body) = app
        .post_json(
            &config_path("shop", "prod", "a.txt", "/release"),
            json!({ "version": 2 }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "already the stable release");
    assert_eq!(body["error"]["code"], "conflict");
    let (status, _) = app
        .post_json(
            &config_path("shop", "prod", "a.txt", "/release"),
            json!({ "version": 7 }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .post_json(
            &config_path("shop", "prod", "zzz.txt", "/release"),
            json!({ "version": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, config) = app
        .get_json(&config_path("shop", "prod", "a.txt", ""))
        .await;
    assert_eq!(config["stable_version"], 2);
    let (_, events) = app
        .get_json(&config_path("shop", "prod", "a.txt", "/releases"))
        .await;
    let listed: Vec<(i64, String)> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["version"].as_i64().unwrap(),
                e["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (2, "stable".into()),
            (1, "rollback".into()),
            (3, "stable".into()),
            (2, "stable".into())
        ],
        "newest first, nothing rewritten"
    );
    assert_eq!(events[1]["message"], "back to one");

    let rollbacks = app.audit("release.rollback").await;
    assert_eq!(rollbacks.len(), 1);
    assert_eq!(rollbacks[0]["key"], "a.txt");
    assert_eq!(rollbacks[0]["details"]["version"], 1);
    assert_eq!(rollbacks[0]["details"]["previous_version"], 3);
    assert_eq!(rollbacks[0]["details"]["message"], "back to one");
    assert_eq!(app.audit("release.stable").await.len(), 4);
}

#[tokio::test]
async fn resolve_serves_the_stable_release_with_a_strong_etag() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    app.config("shop", "prod", "app.json", "json", "{\"v\": 1}")
        .await;
    app.save("shop", "prod", "app.json", "{\"v\": 2}", 1).await;
    let path = config_path("shop", "prod", "app.json", "/resolve");
    let subscriber = app.token("sub", "subscriber", None, Some("prod")).await;

    let r = app.get_with(&subscriber, &path).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "nothing released yet");
    assert_eq!(error_code(r).await, "not_found");

    app.release("shop", "prod", "app.json", 2, "").await;
    let r = app
        .get_with(
            &subscriber,
            &format!("{path}?client_id=pod-1&labels=zone=a"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, format!("\"{}\"", sha256("{\"v\": 2}")));
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({
            "namespace": "shop", "env": "prod", "key": "app.json", "format": "json",
            "version": 2, "lane": null, "checksum": sha256("{\"v\": 2}"), "content": "{\"v\": 2}",
        })
    );

    let get = |tag: String| {
        crate::common::client()
            .get(app.url(&path))
            .bearer_auth(&subscriber)
            .header("If-None-Match", tag)
            .send()
    };
    let r = get(etag.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    assert!(r.bytes().await.unwrap().is_empty(), "304 has no body");
    let r = get(format!("\"other\", W/{etag}")).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let r = get("\"sha256:old\"".into()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // A rollback changes what resolves, and so the ETag.
    app.release("shop", "prod", "app.json", 1, "").await;
    let r = get(etag.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["version"], 1);

    let r = app
        .get_with(
            &subscriber,
            &config_path("shop", "prod", "nope.json", "/resolve"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn diff_compares_any_two_versions() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    app.config(
        "shop",
        "prod",
        "app.properties",
        "properties",
        "a=1\nb=2\nc=3\n",
    )
    .await;
    app.save("shop", "prod", "app.properties", "a=1\nb=20\nc=3\nd=4\n", 1)
        .await;
    let (status, diff) = app
        .get_json(&config_path(
            "shop",
            "prod",
            "app.properties",
            "/diff?from=1&to=2",
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        diff,
        json!({
            "rows": [
                {"tag": "equal", "left_no": 1, "left": "a=1", "right_no": 1, "right": "a=1"},
                {"tag": "replace", "left_no": 2, "left": "b=2", "right_no": 2, "right": "b=20"},
                {"tag": "equal", "left_no": 3, "left": "c=3", "right_no": 3, "right": "c=3"},
                {"tag": "insert", "left_no": null, "left": null, "right_no": 4, "right": "d=4"},
            ],
            "added": 2,
            "removed": 1,
        })
    );
    let (_, backwards) = app
        .get_json(&config_path(
            "shop",
            "prod",
            "app.properties",
            "/diff?from=2&to=1",
        ))
        .await;
    assert_eq!(
        (backwards["added"].as_i64(), backwards["removed"].as_i64()),
        (Some(1), Some(2))
    );
    let (status, _) = app
        .get_json(&config_path(
            "shop",
            "prod",
            "app.properties",
            "/diff?from=1&to=5",
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .get_json(&config_path(
            "shop",
            "prod",
            "app.properties",
            "/diff?from=1",
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn audit_search_finds_words_with_filters_and_pages() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    app.config("shop", "prod", "app.txt", "text", "1").await;
    app.config("shop", "staging", "app.txt", "text", "1").await;
    app.release("shop", "prod", "app.txt", 1, "Hotfix for checkout latency")
        .await;
    app.release("shop", "staging", "app.txt", 1, "checkout rehearsal")
        .await;

    let page = search(&app, "q=latency").await;
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["action"], "release.stable");
    assert_eq!(entries[0]["env"], "prod");
    assert_eq!(
        entries[0]["details"]["message"],
        "Hotfix for checkout latency"
    );
    // Case-insensitive, every word required, the last one as a prefix.
    assert_eq!(
        search(&app, "q=CHECKOUT%20lat").await["entries"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        search(&app, "q=checkout").await["entries"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        search(&app, "q=checkout&env=staging").await["entries"][0]["details"]["message"],
        "checkout rehearsal"
    );
    assert_eq!(
        search(&app, "q=checkout&action=release.").await["entries"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        search(&app, "q=checkout&actor=someone").await["entries"],
        json!([])
    );
    // Actor, action and target are searchable too; FTS syntax is plain text.
    assert!(
        search(&app, "q=admin").await["entries"]
            .as_array()
            .unwrap()
            .len()
            >= 5
    );
    assert_eq!(search(&app, "q=rollback").await["entries"], json!([]));
    assert_eq!(
        search(&app, "q=shop%2Fstaging%2Fapp.txt").await["entries"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    search(&app, "q=%22NEAR(%20OR%20*").await;

    // Two filters without words take the full-text index too; same answers.
    let both = search(&app, "action=release.stable&env=staging").await;
    assert_eq!(both["entries"].as_array().unwrap().len(), 1);
    assert_eq!(
        both["entries"][0]["details"]["message"],
        "checkout rehearsal"
    );
    assert_eq!(
        search(&app, "action=release.&namespace=shop").await["entries"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        search(&app, "actor=admin&action=auth.login_failed").await["entries"],
        json!([])
    );

    // Time ranges: `since` includes the bound, `until` excludes it.
    let latest = &search(&app, "q=latency").await["entries"][0];
    let (at, id) = (
        latest["at"].as_str().unwrap(),
        latest["id"].as_i64().unwrap(),
    );
    let since = search(&app, &format!("q=checkout&since={at}")).await;
    assert!(since["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["id"] == id));
    assert!(since["entries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["at"].as_str().unwrap() >= at));
    let until = search(&app, &format!("q=checkout&until={at}")).await;
    assert!(until["entries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["at"].as_str().unwrap() < at));
    let until = search(&app, &format!("until={at}")).await;
    assert!(!until["entries"].as_array().unwrap().is_empty());
    assert!(until["entries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["at"].as_str().unwrap() < at));
    assert_eq!(search(&app, "since=2999-01-01").await["entries"], json!([]));
    assert_eq!(
        search(&app, "q=checkout&until=2000-01-01").await["entries"],
        json!([])
    );

    // Audit times never go backwards, which is what makes time ranges id ranges.
    let pool = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
    let err = sqlx::query(
        "INSERT INTO audit (at, actor, action) VALUES ('2000-01-01T00:00:00.000Z', 'x', 'y.z')",
    )
    .execute(&pool)
    .await
    .expect_err("an entry older than the previous one is refused");
    assert!(
        err.to_string().contains("older than the previous entry"),
        "{err}"
    );

    // Cursor pagination over a full-text search, newest first, nothing twice.
    for i in 0..6 {
        let (status, _) = app
            .post_json(
                &config_path("shop", "prod", "app.txt", "/versions"),
                json!({ "content": format!("{}", i + 2), "base_version": i + 1, "message": format!("pagination step {i}") }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let mut seen = Vec::new();
    let mut query = "q=pagination&limit=4".to_string();
    loop {
        let page = search(&app, &query).await;
        for e in page["entries"].as_array().unwrap() {
            seen.push(e["id"].as_i64().unwrap());
        }
        match page["next_before_id"].as_i64() {
            Some(before) => query = format!("q=pagination&limit=4&before_id={before}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6, "every matching entry once: {seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seen:?}"
    );
}

async fn search(app: &crate::common::TestApp, query: &str) -> Value {
    let (status, body) = app.get_json(&format!("/api/v1/audit?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body
}

/// Issue 13: an editor's 8 KB YAML alias bomb drove the server to 24 GB; half a million `[`
/// cost seconds of CPU. Both are refused at once with a sentence, and nothing is stored.
#[tokio::test]
async fn yaml_alias_bombs_and_deep_nesting_are_refused_with_a_sentence() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    let list = |item: &str| vec![item; 1000].join(",");
    let bomb = format!(
        "a: &a [{}]\nb: &b [{}]\nc: [{}]\n",
        list("x"),
        list("*a"),
        list("*b")
    );
    let cases = [
        (bomb.as_str(), "aliases stand for more than 100000 nodes"),
        (&"[".repeat(500_000), "nested more than 128 levels deep"),
    ];
    for (content, says) in cases {
        let before = app.audit_count().await;
        let (status, body) = app
            .post_json(
                "/api/v1/namespaces/shop/envs/prod/configs",
                json!({ "key": "app.yaml", "format": "yaml", "content": content }),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["code"], "invalid_content");
        assert_eq!(body["error"]["field"], "content");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
        assert_eq!(app.audit_count().await, before);
    }
    // And for new versions too.
    app.config("shop", "prod", "app.yaml", "yaml", "a: 1\n")
        .await;
    let (status, body) = app
        .post_json(
            &config_path("shop", "prod", "app.yaml", "/versions"),
            json!({ "content": bomb, "base_version": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let r = app.admin.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// Validation has a time budget (`validation_timeout`): past it, 422 saying so.
#[tokio::test]
async fn content_that_takes_too_long_to_validate_is_422() {
    // A millisecond: no parser reads a megabyte of YAML that fast.
    let app = spawn_app_with(|c| c.validation_timeout = Duration::from_millis(1)).await;
    app.namespace("shop").await;
    let content: String = (0..50_000).map(|i| format!("key{i}: v{i}\n")).collect();
    let (status, body) = app
        .post_json(
            "/api/v1/namespaces/shop/envs/prod/configs",
            json!({ "key": "big.yaml", "format": "yaml", "content": content }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "invalid_content");
    assert_eq!(
        body["error"]["message"],
        "The content is too complex to validate within 0.001 s; simplify it (less nesting, \
         fewer aliases) or split it into several configs."
    );
    // Text needs no validation.
    app.config("shop", "prod", "big.txt", "text", &content)
        .await;
}

/// Issue 13: 16,000 changed lines took 3 s (quadratic) inside the save's transaction, and
/// three viewers' diffs stalled `/healthz`. Diffs now stop refining at `diff_timeout`, run off
/// the async workers, and the save computes its before the transaction.
#[tokio::test]
async fn large_diffs_keep_their_deadline_and_do_not_stall_other_requests() {
    let app = spawn_app_with(|c| c.diff_timeout = Duration::from_secs(1)).await;
    app.namespace("shop").await;
    // 30,000 lines no other version shares: the worst case for Myers' algorithm.
    let version = |tag: &str| -> String {
        (0..30_000)
            .map(|i| format!("{tag}{}\n", i * 7919 % 30_000))
            .collect()
    };
    let (v1, v2, v3) = (version("one"), version("two"), version("three"));
    app.config("shop", "prod", "big.txt", "text", &v1).await;
    app.save("shop", "prod", "big.txt", &v2, 1).await;
    app.save("shop", "prod", "big.txt", &v3, 2).await;
    let saved = &app.audit("version.create").await[0]["details"];
    assert_eq!(
        (saved["added"].as_i64(), saved["removed"].as_i64()),
        (Some(30_000), Some(30_000)),
        "{saved}"
    );
    // Three viewers at once, on pairs no save has diffed yet.
    let diffs: Vec<_> = [(2, 1), (3, 2), (3, 1)]
        .into_iter()
        .map(|(from, to)| {
            let (client, url) = (
                app.admin.clone(),
                app.url(&config_path(
                    "shop",
                    "prod",
                    "big.txt",
                    &format!("/diff?from={from}&to={to}"),
                )),
            );
            tokio::spawn(async move {
                let r = client.get(url).send().await.unwrap();
                assert_eq!(r.status(), StatusCode::OK);
                r.bytes().await.unwrap()
            })
        })
        .collect();
    // `/healthz` answers promptly all along. The server and this test share one thread, so a
    // diff computed on it (each takes its full second here) would hold every request.
    let probe = crate::common::client();
    let mut probes = 0;
    while !diffs.iter().all(|d| d.is_finished()) {
        let started = std::time::Instant::now();
        let answered = probe.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(answered.status(), StatusCode::OK);
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "/healthz took {took:?} while diffs ran"
        );
        probes += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(probes > 0);
    for diff in diffs {
        let diff: Value = serde_json::from_slice(&diff.await.unwrap()).unwrap();
        assert_eq!(
            (diff["added"].as_i64(), diff["removed"].as_i64()),
            (Some(30_000), Some(30_000))
        );
    }
}
