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

/// However the PostgreSQL search splits its work (the newest entries in id order first,
/// the rest in id order or through the GIN index; see `db::audit_pg`), it finds the same
/// entries in the same order, page after page. With this few entries the default walks
/// them all in id order: that is the reference. On SQLite every split is the same search.
#[tokio::test]
async fn every_split_of_the_audit_search_finds_the_same_entries() {
    use graycast::model::AuditQuery;
    use graycast::server::db::audit::{search_tuned, Tuning};
    let app = spawn_app().await;
    let pool = crate::common::database(&app.database_url).await;
    // 400 entries in a pattern: a busy actor and rare ones, actions with and without a
    // target, a rare word every 97th, ticket numbers repeating every 50.
    let actions = [
        "version.create",
        "release.stable",
        "auth.login",
        "release.rollback",
    ];
    for i in 0..400_i64 {
        let action = actions[(i * 7 % 11 % 4) as usize];
        let actor = format!("user{}", (i * i) % 13 % 5);
        let (ns, env) = match action {
            "auth.login" => (None, None),
            _ => (
                Some(["orders", "payments", "media"][(i % 3) as usize]),
                Some(["dev", "prod"][(i / 3 % 2) as usize]),
            ),
        };
        let rare = if i % 97 == 5 { " zanzibar" } else { "" };
        let details = json!({ "message": format!("tune latency OPS-{}{rare}", 4200 + i % 50) });
        sqlx::query(
            "INSERT INTO audit (at, actor, action, namespace, env, key, details)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(format!("2030-01-01T00:{:02}:{:02}.000Z", i / 60, i % 60))
        .bind(actor)
        .bind(action)
        .bind(ns)
        .bind(env)
        .bind(ns.map(|_| "app.yaml"))
        .bind(details.to_string())
        .execute(&pool)
        .await
        .unwrap();
    }
    let query = |text: &str| -> AuditQuery {
        let fields: serde_json::Map<String, Value> = text
            .split('&')
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap();
                (name.to_string(), json!(value))
            })
            .collect();
        serde_json::from_value(Value::Object(fields)).unwrap()
    };
    let cases = [
        "q=latency",
        "q=zanzibar",
        "q=OPS-4242",
        "q=ops-424",
        "q=nothing-like-this",
        "q=latency&actor=user1",
        "q=tune&action=release.",
        "q=zanzibar&env=prod",
        "q=latency&namespace=media&env=dev",
        "actor=user2&action=release.rollback",
        "actor=user3&namespace=orders&env=dev",
        "env=dev&action=auth.login",
        "q=latency&since=2030-01-01T00:02:00Z&until=2030-01-01T00:05:00Z",
        "q=OPS-4210&until=2030-01-01T00:03:00Z",
        "q=latency&trace_id=0af7651916cd43dd8448eb211c80319c",
    ];
    let splits = [
        Tuning {
            window: 1,
            ordered_max: 0,
        },
        Tuning {
            window: 7,
            ordered_max: 0,
        },
        Tuning {
            window: 7,
            ordered_max: i64::MAX,
        },
        Tuning {
            window: 30,
            ordered_max: 60,
        },
    ];
    for case in cases {
        let all = search_tuned(
            &pool,
            &AuditQuery {
                limit: Some(500),
                ..query(case)
            },
            None,
            None,
            Tuning::default(),
        )
        .await
        .unwrap();
        let ids = |page: &graycast::model::AuditPage| -> Vec<i64> {
            page.entries.iter().map(|e| e.id).collect()
        };
        let expected = ids(&all);
        for split in splits {
            // Pages of 6, each from the cursor the previous one gave.
            let mut seen: Vec<i64> = Vec::new();
            let mut before_id = None;
            loop {
                let page = search_tuned(
                    &pool,
                    &AuditQuery {
                        limit: Some(6),
                        before_id,
                        ..query(case)
                    },
                    None,
                    None,
                    split,
                )
                .await
                .unwrap_or_else(|e| panic!("{case} {split:?}: {e}"));
                seen.extend(ids(&page));
                before_id = page.next_before_id;
                if before_id.is_none() {
                    break;
                }
                assert!(seen.len() <= expected.len(), "{case} {split:?}: runs on");
            }
            assert_eq!(seen, expected, "{case} {split:?}");
        }
        // Cases that find something, so that agreeing is not agreeing on nothing.
        if !["nothing", "auth.login", "trace_id"]
            .iter()
            .any(|c| case.contains(c))
        {
            assert!(!expected.is_empty(), "{case} finds entries");
        }
    }
    pool.close().await;
}

/// PostgreSQL only: the planner knows which environment and action combinations occur
/// (the joint statistics of migrations/postgres), so a pair that never meets (logins have
/// no environment) is looked up in the `(env, action, id)` index. Assuming the two
/// independent, it walked the primary key backwards and read the whole trail (450 ms over
/// 1,000,000 entries, docs/benchmarks.md).
#[tokio::test]
async fn an_environment_and_action_that_never_meet_are_looked_up_in_their_index() {
    if !crate::common::on_postgres() {
        return;
    }
    let app = spawn_app().await;
    let pool = crate::common::database(&app.database_url).await;
    // 60,000 entries: a fifth are logins without an environment, the rest saves in dev or prod.
    sqlx::query(
        "INSERT INTO audit (at, actor, action, namespace, env, key, details)
         SELECT '2030-01-01T00:00:00.000Z', 'user' || (i % 7),
                CASE WHEN i % 5 = 0 THEN 'auth.login' ELSE 'version.create' END,
                CASE WHEN i % 5 = 0 THEN NULL ELSE 'orders' END,
                CASE WHEN i % 5 = 0 THEN NULL WHEN i % 2 = 0 THEN 'dev' ELSE 'prod' END,
                CASE WHEN i % 5 = 0 THEN NULL ELSE 'app.yaml' END,
                '{\"message\": \"tune latency\"}'
           FROM generate_series(1, 60000) AS i",
    )
    .execute(&pool)
    .await
    .unwrap();
    // What autovacuum does as a trail grows.
    sqlx::query("ANALYZE audit").execute(&pool).await.unwrap();
    // The query of `db::audit_pg::plain` for `env=dev&action=auth.login`.
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN SELECT a.id, a.at, a.actor, a.action, a.namespace, a.env, a.key, a.details,
                        a.trace_id
           FROM audit a WHERE 1 = 1 AND a.action = 'auth.login' AND a.env = 'dev'
          ORDER BY a.id DESC LIMIT 51",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let plan = plan.join("\n");
    assert!(plan.contains("audit_env_action"), "{plan}");
    // And the search answers it: nothing.
    let page = search(&app, "env=dev&action=auth.login").await;
    assert_eq!(page["entries"], json!([]), "{page}");
}

fn actions_of(page: &Value) -> Vec<String> {
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect()
}

/// Issue 26 (point 4): the search finds the words the dashboard's sentences show ("alice rolled
/// back shop/prod/app.txt to v1"), not only the stored fields; `v2` is the stored version 2.
#[tokio::test]
async fn the_audit_search_finds_the_words_on_screen() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    app.config("shop", "prod", "app.txt", "text", "1").await;
    app.save("shop", "prod", "app.txt", "2", 1).await;
    app.release("shop", "prod", "app.txt", 2, "bigger pool")
        .await;
    app.release("shop", "prod", "app.txt", 1, "pool too big")
        .await;

    assert_eq!(
        actions_of(&search(&app, "q=rolled%20back").await),
        ["release.rollback"]
    );
    assert_eq!(
        actions_of(&search(&app, "q=rolled%20back%20to%20v1").await),
        ["release.rollback"]
    );
    assert_eq!(
        actions_of(&search(&app, "q=released%20v2").await),
        ["release.stable"]
    );
    assert_eq!(
        actions_of(&search(&app, "q=saved%20v2%20of%20app.txt").await),
        ["version.create"]
    );
    // A word no sentence of these entries shows finds nothing; a filter still applies.
    assert_eq!(search(&app, "q=promoted").await["entries"], json!([]));
    assert_eq!(
        search(&app, "q=rolled&action=release.stable").await["entries"],
        json!([])
    );
    // The action names are searchable as before.
    assert_eq!(
        actions_of(&search(&app, "q=release.rollback").await),
        ["release.rollback"]
    );
    let many = vec!["word"; 17].join("%20");
    let (status, body) = app.get_json(&format!("/api/v1/audit?q={many}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "q");
}

/// Issue 26 (points 3 and 4): the dashboard's audit search with no filter at all (the top
/// bar's Audit link) answers, and the actor picker lists the actors a reader may see —
/// never a name typed at a failed sign-in.
#[tokio::test]
async fn the_audit_page_searches_without_filters_and_offers_known_actors() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    app.config("shop", "prod", "app.txt", "text", "1").await;
    let bob = app.user("bob", "editor", Some("staging")).await;
    let r = bob
        .post(app.url("/api/v1/namespaces/shop/envs/staging/configs"))
        .json(&json!({"key": "notes.txt", "format": "text", "content": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let stranger = crate::common::client();
    crate::common::login(&stranger, &app.base, "mallory-was-here", "guess").await;

    let r = app
        .admin
        .post(app.url(<graycast::api::audit::SearchAudit as leptos::server_fn::ServerFn>::PATH))
        .header("Origin", app.base.clone())
        .json(&json!({ "query": {} }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let page: Value = r.json().await.unwrap();
    assert!(!page["entries"].as_array().unwrap().is_empty());

    let (status, body) = app.get_json("/api/v1/audit/actors").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["actors"], json!(["admin", "bob", "system"]));
    // Bob reads staging only: its actors are those with entries there (`system` created the
    // environment at first start; admin wrote nothing in staging).
    let r = bob
        .get(app.url("/api/v1/audit/actors"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["actors"], json!(["bob", "system"]));
    let r = crate::common::client()
        .get(app.url("/api/v1/audit/actors"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// An action outside graycast's words is a corrupt row, never a guess: the read fails naming
/// the column and the word, and the API answers 500.
#[tokio::test]
async fn an_unknown_audit_action_is_a_corrupt_row() {
    use graycast::model::AuditQuery;
    let app = spawn_app().await;
    app.namespace("shop").await;
    assert_eq!(
        search(&app, "").await["entries"][0]["action"],
        "namespace.create"
    );
    let pool = crate::common::database(&app.database_url).await;
    sqlx::query(
        "INSERT INTO audit (at, actor, action, details)
         VALUES ('2030-01-01T00:00:00.000Z', 'mallory', 'plan.start', '{}')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (status, body) = app.get_json("/api/v1/audit").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["error"]["code"], "internal", "{body}");
    let error = graycast::server::db::audit::search(&pool, &AuditQuery::default(), None, None)
        .await
        .unwrap_err();
    let cause = error.detail();
    assert!(
        cause.contains("\"action\"") && cause.contains("\"plan.start\""),
        "{cause}"
    );
}
