//! Issue 14, point 6: deleting a config — its lanes close, the deletion is a
//! release event and an audit entry, subscribers get `deleted`, it leaves
//! every list, its history stays, and its key can be created again.

use crate::common::sse::{self, SseStream};
use crate::common::{config_path, error_code, eventually, spawn_app, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

const NS: &str = "shop";
const ENV: &str = "prod";
const KEY: &str = "app.json";

/// `app.json` with versions 1 and 2, version 1 stable, and a lane serving
/// version 2 to pod-2; returns the lane.
async fn released_config_with_a_lane(app: &TestApp) -> Value {
    app.namespace(NS).await;
    app.config(NS, ENV, KEY, "json", r#"{"v":1}"#).await;
    app.save(NS, ENV, KEY, r#"{"v":2}"#, 1).await;
    app.release(NS, ENV, KEY, 1, "first").await;
    let (status, lane) = app
        .post_json(
            &config_path(NS, ENV, KEY, "/lanes"),
            json!({ "version": 2, "targets": ["pod-2"], "percentage": 0 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{lane}");
    lane
}

async fn delete(app: &TestApp, key: &str, body: Option<Value>) -> reqwest::Response {
    let mut request = app.admin.delete(app.url(&config_path(NS, ENV, key, "")));
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

async fn watch(app: &TestApp, token: &str, query: &str, last: Option<i64>) -> SseStream {
    let url = app.url(&format!("/api/v1/watch?namespace={NS}&env={ENV}&{query}"));
    sse::open(&url, token, last).await
}

async fn database(app: &TestApp) -> sqlx::AnyPool {
    crate::common::database(&app.database_url).await
}

#[tokio::test]
async fn deleting_a_config_closes_its_lanes_and_records_it_in_one_event_and_audit_entry() {
    let app = spawn_app().await;
    let lane = released_config_with_a_lane(&app).await;
    app.config(NS, ENV, "other.json", "json", "{}").await;

    let r = delete(&app, KEY, Some(json!({ "message": "service retired" }))).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(r.bytes().await.unwrap().is_empty());

    let entries = app.audit("config.delete").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    assert_eq!(
        (&entry["namespace"], &entry["env"], &entry["key"]),
        (&json!(NS), &json!(ENV), &json!(KEY))
    );
    let details = &entry["details"];
    assert_eq!(details["closed_lanes"], json!([lane["id"]]), "{details}");
    assert_eq!(
        (
            &details["latest_version"],
            &details["stable_version"],
            &details["message"]
        ),
        (&json!(2), &json!(1), &json!("service retired"))
    );
    let event_id = details["release_event"].as_i64().unwrap();

    let db = database(&app).await;
    let (kind, version, previous): (String, i64, Option<i64>) =
        sqlx::query_as("SELECT kind, version, previous_version FROM release_events WHERE id = $1")
            .bind(event_id)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(
        (kind.as_str(), version, previous),
        ("config.delete", 2, Some(1))
    );
    let (status, closed_by): (String, Option<i64>) =
        sqlx::query_as("SELECT status, closed_by FROM lanes WHERE id = $1")
            .bind(lane["id"].as_i64().unwrap())
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!((status.as_str(), closed_by), ("aborted", Some(event_id)));
    // The history stays: both versions and every release event of the config.
    let (versions, events): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM versions v JOIN configs c ON c.id = v.config_id
                  WHERE c.key = $1 AND c.deleted_at IS NOT NULL),
                (SELECT COUNT(*) FROM release_events r JOIN configs c ON c.id = r.config_id
                  WHERE c.key = $2 AND c.deleted_at IS NOT NULL)",
    )
    .bind(KEY)
    .bind(KEY)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(
        (versions, events),
        (2, 3),
        "release, lane.create, config.delete"
    );
    db.close().await;

    // It leaves every list and every read.
    let (status, listed) = app
        .get_json(&format!("/api/v1/namespaces/{NS}/envs/{ENV}/configs"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let keys: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["key"])
        .collect();
    assert_eq!(keys, [&json!("other.json")]);
    let (_, namespaces) = app.get_json(&format!("/api/v1/namespaces?q={NS}")).await;
    assert_eq!(namespaces[0]["config_count"], 1, "{namespaces}");
    for rest in [
        "",
        "/versions",
        "/releases",
        "/lanes",
        "/resolve?client_id=pod-1",
    ] {
        let r = app
            .admin
            .get(app.url(&config_path(NS, ENV, KEY, rest)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{rest}");
        assert_eq!(error_code(r).await, "not_found");
    }
}

#[tokio::test]
async fn subscribers_of_a_deleted_config_get_a_deleted_event_and_resumes_after_it_get_nothing_more()
{
    let app = spawn_app().await;
    released_config_with_a_lane(&app).await;
    let token = app
        .token("watcher", "subscriber", Some(NS), Some(ENV))
        .await;
    // pod-1 on stable, pod-2 in the lane, pod-3 watching every key.
    let mut streams = Vec::new();
    for query in [
        "keys=app.json&client_id=pod-1",
        "keys=app.json&client_id=pod-2",
        "client_id=pod-3",
    ] {
        let mut stream = watch(&app, &token, query, None).await;
        let initial = stream.until_synced().await;
        assert_eq!(initial.len(), 1, "{query}: {initial:?}");
        streams.push(stream);
    }
    let instances = || async {
        let (_, body) = app
            .get_json(&format!("/api/v1/namespaces/{NS}/envs/{ENV}/instances"))
            .await;
        body["instances"]
            .as_array()
            .cloned()
            .filter(|all| all.len() == 3)
    };
    eventually(
        "the instances view to show what each was served",
        || async {
            instances()
                .await
                .filter(|all| all.iter().all(|i| i["configs"][KEY]["served"].is_i64()))
        },
    )
    .await;

    assert_eq!(
        delete(&app, KEY, None).await.status(),
        StatusCode::NO_CONTENT
    );
    let event_id = app.audit("config.delete").await[0]["details"]["release_event"]
        .as_i64()
        .unwrap();
    let mut last = 0;
    for stream in &mut streams {
        let event = stream.next_event().await;
        assert_eq!(event.event, "deleted", "{event:?}");
        assert_eq!(event.id(), event_id);
        assert_eq!(
            event.json(),
            json!({ "namespace": NS, "env": ENV, "key": KEY })
        );
        last = event.id();
    }

    // The instances view forgets the key (also once the `deleted` frames are recorded).
    eventually("the instances view to drop the deleted key", || async {
        instances()
            .await
            .filter(|all| all.iter().all(|i| i["configs"].get(KEY).is_none()))
    })
    .await;

    // Resuming from before the deletion (not the last event it was handed,
    // so the server does not know what it has): `deleted` again; from the
    // deletion on: nothing is owed.
    drop(streams);
    let mut stream = watch(
        &app,
        &token,
        "keys=app.json&client_id=pod-1",
        Some(last - 1),
    )
    .await;
    let again = stream.until_synced().await;
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!((again[0].event.as_str(), again[0].id()), ("deleted", last));
    drop(stream);
    let mut stream = watch(&app, &token, "keys=app.json&client_id=pod-1", Some(last)).await;
    assert!(stream.until_synced().await.is_empty(), "from {last}");
    let mut fresh = watch(&app, &token, "client_id=pod-4", None).await;
    assert!(fresh.until_synced().await.is_empty());
}

#[tokio::test]
async fn a_deleted_key_can_be_created_again_from_version_1_and_its_history_stays_in_the_audit() {
    let app = spawn_app().await;
    released_config_with_a_lane(&app).await;
    assert_eq!(
        delete(&app, KEY, None).await.status(),
        StatusCode::NO_CONTENT
    );

    let created = app.config(NS, ENV, KEY, "yaml", "v: new").await;
    assert_eq!(
        (
            &created["latest_version"],
            &created["stable_version"],
            &created["format"]
        ),
        (&json!(1), &Value::Null, &json!("yaml"))
    );
    assert_eq!(created["lanes"], json!([]));
    let (_, versions) = app.get_json(&config_path(NS, ENV, KEY, "/versions")).await;
    assert_eq!(
        versions["versions"].as_array().unwrap().len(),
        1,
        "{versions}"
    );
    let (_, first) = app
        .get_json(&config_path(NS, ENV, KEY, "/versions/1"))
        .await;
    assert_eq!(first["content"], "v: new");
    let (_, releases) = app.get_json(&config_path(NS, ENV, KEY, "/releases")).await;
    assert_eq!(releases, json!([]));

    // A subscriber gets the new config once it is released, numbered after the deletion.
    let token = app
        .token("watcher", "subscriber", Some(NS), Some(ENV))
        .await;
    let mut stream = watch(&app, &token, "keys=app.json&client_id=pod-1", None).await;
    assert!(stream.until_synced().await.is_empty());
    let release = app.release(NS, ENV, KEY, 1, "again").await;
    let event = stream.next_event().await;
    assert_eq!(
        (event.event.as_str(), event.id(), &event.json()["content"]),
        ("config", release["id"].as_i64().unwrap(), &json!("v: new"))
    );

    // The old config's history is still in the audit trail, beside the new one's.
    let (status, found) = app
        .get_json(&format!("/api/v1/audit?namespace={NS}&env={ENV}&limit=100"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let actions: Vec<&str> = found["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["key"] == KEY)
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "release.stable",
            "config.create",
            "config.delete",
            "lane.create",
            "release.stable",
            "version.create",
            "config.create",
        ]
    );
    let (_, searched) = app.get_json("/api/v1/audit?q=first").await;
    assert!(
        searched["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "release.stable" && e["details"]["message"] == "first"),
        "{searched}"
    );
    // And a second deletion of the new config is its own.
    assert_eq!(
        delete(&app, KEY, None).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.audit("config.delete").await.len(), 2);
}

#[tokio::test]
async fn only_a_releaser_deletes_and_only_an_existing_config() {
    let app = spawn_app().await;
    released_config_with_a_lane(&app).await;
    let editor = app.user("eddie", "editor", None).await;
    let r = editor
        .delete(app.url(&config_path(NS, ENV, KEY, "")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(r).await, "forbidden");
    let (status, _) = app.get_json(&config_path(NS, ENV, KEY, "")).await;
    assert_eq!(status, StatusCode::OK, "still there");

    let r = delete(&app, "missing.json", None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "not_found");
    let r = app
        .admin
        .delete(app.url(&config_path(NS, "nowhere", KEY, "")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    assert_eq!(
        delete(&app, KEY, None).await.status(),
        StatusCode::NO_CONTENT
    );
    let r = delete(&app, KEY, None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "deleted once");
    assert_eq!(error_code(r).await, "not_found");
    assert_eq!(app.audit("config.delete").await.len(), 1);
}

/// Waits until the server noticed that every stream of the scope closed.
async fn all_disconnected(app: &TestApp) {
    eventually("every stream to be noticed closed", || async {
        let (_, body) = app
            .get_json(&format!("/api/v1/namespaces/{NS}/envs/{ENV}/instances"))
            .await;
        let all = body["instances"].as_array()?;
        (!all.is_empty() && all.iter().all(|i| i["connected"] == false)).then_some(())
    })
    .await;
}

/// pod-1 watching `app.json` and pod-3 every key, each with what it was
/// handed on connect; their streams closed before the test goes on.
async fn watched_then_closed(app: &TestApp, token: &str) -> Vec<(&'static str, i64)> {
    let mut last = Vec::new();
    for query in ["keys=app.json&client_id=pod-1", "client_id=pod-3"] {
        let mut stream = watch(app, token, query, None).await;
        let initial = stream.until_synced().await;
        assert_eq!(initial.len(), 1, "{query}: {initial:?}");
        last.push((query, initial[0].id()));
    }
    all_disconnected(app).await;
    last
}

fn assert_deleted(events: &[sse::SseEvent], event_id: i64, what: &str) {
    assert_eq!(events.len(), 1, "{what}: {events:?}");
    assert_eq!(
        (events[0].event.as_str(), events[0].id(), events[0].json()),
        (
            "deleted",
            event_id,
            json!({ "namespace": NS, "env": ENV, "key": KEY })
        ),
        "{what}"
    );
}

#[tokio::test]
async fn a_subscriber_away_during_a_deletion_gets_deleted_once_when_it_resumes() {
    let app = spawn_app().await;
    released_config_with_a_lane(&app).await;
    let token = app
        .token("watcher", "subscriber", Some(NS), Some(ENV))
        .await;
    let away = watched_then_closed(&app, &token).await;

    assert_eq!(
        delete(&app, KEY, None).await.status(),
        StatusCode::NO_CONTENT
    );
    let event_id = app.audit("config.delete").await[0]["details"]["release_event"]
        .as_i64()
        .unwrap();

    // Resuming from its last event (the server knows what it has): exactly one `deleted`.
    for (query, last) in &away {
        let mut stream = watch(&app, &token, query, Some(*last)).await;
        assert_deleted(&stream.until_synced().await, event_id, query);
    }
    // Without the server's record of what the client has (as after a server
    // restart, or resuming from another event): `deleted` too.
    let (_, last) = away[0];
    for (query, from) in [
        ("keys=app.json&client_id=pod-1", last - 1),
        ("keys=app.json&client_id=pod-5", last),
        ("client_id=pod-6", last),
    ] {
        let mut stream = watch(&app, &token, query, Some(from)).await;
        assert_deleted(&stream.until_synced().await, event_id, query);
    }
    // A fresh connect is not told about old deletions.
    for query in ["keys=app.json&client_id=pod-7", "client_id=pod-8"] {
        let mut stream = watch(&app, &token, query, None).await;
        assert!(stream.until_synced().await.is_empty(), "{query}");
    }
}

#[tokio::test]
async fn a_resume_after_a_key_was_deleted_created_again_and_released_gets_the_new_config() {
    let app = spawn_app().await;
    released_config_with_a_lane(&app).await;
    let token = app
        .token("watcher", "subscriber", Some(NS), Some(ENV))
        .await;
    let away = watched_then_closed(&app, &token).await;

    assert_eq!(
        delete(&app, KEY, None).await.status(),
        StatusCode::NO_CONTENT
    );
    // Version 1 again, as the stable release the clients had: still the new config.
    app.config(NS, ENV, KEY, "json", r#"{"v":"new"}"#).await;
    let release = app.release(NS, ENV, KEY, 1, "again").await;
    let release_id = release["id"].as_i64().unwrap();

    for (query, last) in &away {
        let mut stream = watch(&app, &token, query, Some(*last)).await;
        let events = stream.until_synced().await;
        assert_eq!(events.len(), 1, "{query}: {events:?}");
        let event = &events[0];
        assert_eq!(
            (
                event.event.as_str(),
                event.id(),
                &event.json()["version"],
                &event.json()["content"]
            ),
            ("config", release_id, &json!(1), &json!(r#"{"v":"new"}"#)),
            "{query}"
        );
    }
}
