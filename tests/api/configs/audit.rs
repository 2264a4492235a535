//! Audit search.

use super::*;

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
    let pool = crate::common::database(&app.database_url).await;
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
