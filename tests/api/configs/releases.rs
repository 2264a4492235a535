//! Release and rollback, resolve, and diffs.

use super::*;

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
    let digest = sha256("{\"v\": 2}");
    assert_eq!(
        etag,
        format!("\"v2-s-{}\"", &digest["sha256:".len()..][..32]),
        "version, stable (no lane) and the checksum"
    );
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
