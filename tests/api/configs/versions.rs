//! Namespaces, configs per environment, and versions: numbering, checksums,
//! stale bases and concurrent saves.

use super::*;

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
    assert_eq!(created["config_env"], Value::Null);
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
    // Where the namespace's configs are: dev comes before prod in the environments' order.
    assert_eq!(all[1]["config_env"], "dev");
    assert_eq!(all[0]["config_env"], Value::Null);
    app.config("order-service", "prod", "app.json", "json", "{}")
        .await;
    let (_, all) = app.get_json("/api/v1/namespaces").await;
    assert_eq!(all[0]["config_env"], "prod", "its only configs are in prod");
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
    let listed = versions["versions"].as_array().unwrap();
    let numbers: Vec<i64> = listed
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [3, 2, 1], "newest first");
    assert_eq!(versions["next_before"], Value::Null, "one page");
    for (v, content) in listed.iter().zip([v3, v2, v1]) {
        assert_eq!(v["content"], Value::Null, "the list leaves contents out");
        assert_eq!(v["checksum"], sha256(content));
        assert!(v["created_at"].as_str().unwrap().ends_with('Z'));
        let (status, one) = app
            .get_json(&config_path(
                "shop",
                "prod",
                "app.json",
                &format!("/versions/{}", v["version"]),
            ))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(one["content"], content);
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
    let pool = crate::common::database(&app.database_url).await;
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
    assert_eq!(versions["versions"].as_array().unwrap().len(), 3);
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

/// Issue 25, finding 3: the versions list is paged by a cursor and leaves the contents out (300
/// versions of about 1 MiB made one answer of 316 MB).
#[tokio::test]
async fn the_versions_list_is_paged_without_contents() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    // 4 KiB a version: a page of 200 with their contents would be 800 KiB.
    let content = |n: i64| format!("{n}\n{}", "x".repeat(4096));
    app.config("shop", "prod", "app.txt", "text", &content(1))
        .await;
    let total = 205;
    for n in 2..=total {
        app.save("shop", "prod", "app.txt", &content(n), n - 1)
            .await;
    }
    let list = |query: &str| config_path("shop", "prod", "app.txt", &format!("/versions{query}"));
    let page = |query: &str| {
        let url = app.url(&list(query));
        let client = app.admin.clone();
        async move {
            let r = client.get(url).send().await.unwrap();
            let status = r.status();
            let text = r.text().await.unwrap();
            (
                status,
                text.len(),
                serde_json::from_str::<Value>(&text).unwrap(),
            )
        }
    };
    let numbers = |body: &Value| -> Vec<i64> {
        body["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_i64().unwrap())
            .collect()
    };

    // The default page: the 50 newest, and where the next one starts.
    let (status, bytes, first) = page("").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(numbers(&first), (156..=205).rev().collect::<Vec<_>>());
    assert_eq!(first["next_before"], 156);
    for item in first["versions"].as_array().unwrap() {
        assert!(item.get("content").is_none(), "{item}");
        let n = item["version"].as_i64().unwrap();
        assert_eq!(item["checksum"], sha256(&content(n)));
        assert_eq!(item["author"], "admin");
    }
    assert!(bytes < 50 * 300, "{bytes} bytes for 50 versions");

    // Walking the cursor visits every version exactly once, newest first, in pages of the limit.
    let mut seen = Vec::new();
    let mut query = "?limit=40".to_string();
    let mut pages = 0;
    loop {
        let (status, _, body) = page(&query).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let got = numbers(&body);
        assert!(!got.is_empty() && got.len() <= 40, "{query}: {got:?}");
        seen.extend(got);
        pages += 1;
        match body["next_before"].as_i64() {
            Some(before) => query = format!("?limit=40&before={before}"),
            None => break,
        }
    }
    assert_eq!(pages, 6);
    assert_eq!(seen, (1..=total).rev().collect::<Vec<_>>());

    // A limit over 200 is capped to 200; below 1 it is 1; past the oldest the page is empty.
    let (_, bytes, capped) = page("?limit=100000").await;
    assert_eq!(numbers(&capped), (6..=205).rev().collect::<Vec<_>>());
    assert_eq!(capped["next_before"], 6);
    assert!(bytes < 200 * 300, "{bytes} bytes for 200 versions");
    let (_, _, one) = page("?limit=0&before=3").await;
    assert_eq!((numbers(&one), &one["next_before"]), (vec![2], &json!(2)));
    let (_, _, last) = page("?before=2").await;
    assert_eq!(
        (numbers(&last), &last["next_before"]),
        (vec![1], &Value::Null)
    );
    let (_, _, none) = page("?before=1").await;
    assert_eq!(
        (numbers(&none), &none["next_before"]),
        (vec![], &Value::Null)
    );
    for bad in ["?limit=many", "?before=x", "?limit=-1"] {
        let (status, _, body) = page(bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "bad_request", "{bad}: {body}");
    }

    // The content of a version is one request away.
    let (status, v7) = app
        .get_json(&config_path("shop", "prod", "app.txt", "/versions/7"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v7["content"], content(7));
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
