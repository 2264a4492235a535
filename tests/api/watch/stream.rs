//! One stream: who may watch, what it gets on connect and on resume, heartbeats,
//! rules mode, deleted keys, shutdown, and one stream per client id.

use super::*;

#[tokio::test]
async fn watch_needs_a_token_within_its_namespace_and_environment() {
    let app = spawn_app().await;
    app.namespace(NS).await;
    app.namespace("other").await;
    let url = watch_url(&app, "client_id=pod-1");

    let anonymous = reqwest::get(&url).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(crate::common::error_code(anonymous).await, "unauthorized");
    let bad_token = sse::request(&url, "gc_not-a-token", None).await;
    assert_eq!(bad_token.status(), StatusCode::UNAUTHORIZED);

    let other_ns = app
        .token("other-ns", "subscriber", Some("other"), None)
        .await;
    let r = sse::request(&url, &other_ns, None).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let staging_only = app
        .token("staging", "subscriber", None, Some("staging"))
        .await;
    let r = sse::request(&url, &staging_only, None).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let token = subscriber_token(&app).await;
    let no_client = sse::request(&watch_url(&app, "keys=a.json"), &token, None).await;
    assert_eq!(no_client.status(), StatusCode::BAD_REQUEST);
    let body: Value = no_client.json().await.unwrap();
    assert_eq!(body["error"]["field"], "client_id");
    for (query, field) in [
        ("client_id=pod-1&labels=region", "labels"),
        ("client_id=pod-1&keys=a.json,bad%20key", "keys"),
        ("client_id=pod-1&mode=everything", "mode"),
        ("client_id=pod 1", "client_id"),
        ("client_id=pod-1&last_event_id=yesterday", "last_event_id"),
    ] {
        let r = sse::request(&watch_url(&app, query), &token, None).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{query}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["field"], field, "{query}");
    }
    let unknown_env = app.url("/api/v1/watch?namespace=shop&env=nowhere&client_id=pod-1");
    let admin_token = app.token("admin-token", "admin", None, None).await;
    let r = sse::request(&unknown_env, &admin_token, None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Roles above subscriber may watch too.
    let viewer = app.token("viewer", "viewer", Some(NS), None).await;
    let r = sse::request(&url, &viewer, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = sse::request(&url, &token, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-cache");
}

#[tokio::test]
async fn one_event_per_resolving_key_on_connect_then_only_changes() {
    let app = spawn_app().await;
    app.namespace(NS).await;
    config_with_versions(&app, "app.json", &[r#"{"v":1}"#, r#"{"v":2}"#]).await;
    config_with_versions(&app, "db.json", &[r#"{"db":1}"#, r#"{"db":2}"#]).await;
    config_with_versions(&app, "unreleased.json", &["{}"]).await;
    let first = app.release(NS, ENV, "app.json", 1, "first").await;
    let db_release = app.release(NS, ENV, "db.json", 1, "first").await;
    let mut marker = Marker::new(&app).await;
    let token = subscriber_token(&app).await;

    let mut keyed = watch(
        &app,
        &token,
        "keys=app.json,unreleased.json,marker.txt&client_id=pod-1&labels=region=beijing",
    )
    .await;
    let event = keyed.next_event().await;
    assert_eq!(event.event, "config");
    assert_eq!(event.id(), first["id"].as_i64().unwrap());
    let checksum = app
        .get_json(&config_path(NS, ENV, "app.json", "/versions/1"))
        .await
        .1["checksum"]
        .clone();
    assert_eq!(
        event.json(),
        json!({
            "namespace": NS, "env": ENV, "key": "app.json", "format": "json", "version": 1,
            "lane": null, "checksum": checksum, "content": r#"{"v":1}"#,
        })
    );
    assert!(
        event.data.starts_with(
            r#"{"namespace":"shop","env":"prod","key":"app.json","format":"json","version":1,"lane":null,"checksum":"sha256:"#
        ),
        "fields in the documented order: {}",
        event.data
    );

    // Every key of the namespace and environment when `keys` is absent, in id order.
    let mut everything = watch(&app, &token, "client_id=pod-2").await;
    let a = everything.next_event().await;
    let b = everything.next_event().await;
    assert_eq!(
        (a.json()["key"].clone(), b.json()["key"].clone()),
        (json!("app.json"), json!("db.json"))
    );
    assert_eq!(b.id(), db_release["id"].as_i64().unwrap());

    // A release of a key it does not watch sends nothing; a new release of app.json does.
    app.release(NS, ENV, "db.json", 2, "").await;
    let second = app.release(NS, ENV, "app.json", 2, "").await;
    let n = marker.pass(&app).await;
    let got = Marker::events_before(&mut keyed, n).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].id(), second["id"].as_i64().unwrap());
    assert_eq!(got[0].json()["version"], 2);

    // The wildcard stream sees later keys too, including one released for the first time.
    app.release(NS, ENV, "unreleased.json", 1, "").await;
    let got = Marker::events_before(&mut everything, n).await;
    let keys: Vec<_> = got.iter().map(|e| e.json()["key"].clone()).collect();
    assert_eq!(keys, [json!("db.json"), json!("app.json")]);
    let n = marker.pass(&app).await;
    for stream in [&mut everything, &mut keyed] {
        let got = Marker::events_before(stream, n).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].json()["key"], "unreleased.json");
    }
}

#[tokio::test]
async fn resume_with_last_event_id_sends_only_what_changed_since() {
    let app = spawn_app().await;
    app.namespace(NS).await;
    config_with_versions(&app, "a.json", &["1", "2"]).await;
    config_with_versions(&app, "b.json", &["1", "2"]).await;
    app.release(NS, ENV, "a.json", 1, "").await;
    app.release(NS, ENV, "b.json", 1, "").await;
    let mut marker = Marker::new(&app).await;
    let n = marker.pass(&app).await;
    let token = subscriber_token(&app).await;
    let query = "keys=a.json,b.json,marker.txt&client_id=pod-1";

    let mut first = watch(&app, &token, query).await;
    let initial = Marker::events_before(&mut first, n).await;
    assert_eq!(initial.len(), 2);
    let last_seen = app
        .get_json(&config_path(NS, ENV, Marker::KEY, "/releases"))
        .await
        .1[0]["id"]
        .as_i64()
        .unwrap();
    drop(first);

    // While it is away, b changes.
    let b2 = app.release(NS, ENV, "b.json", 2, "").await;
    let mut resumed = sse::open(&watch_url(&app, query), &token, Some(last_seen)).await;
    let event = resumed.next_event().await;
    assert_eq!(event.json()["key"], "b.json");
    assert_eq!(event.json()["version"], 2);
    assert_eq!(event.id(), b2["id"].as_i64().unwrap());
    let n = marker.pass(&app).await;
    assert!(
        Marker::events_before(&mut resumed, n).await.is_empty(),
        "a.json and the marker were unchanged since the last event id"
    );

    // Resuming from the newest id sends nothing until something changes; the
    // query parameter works like the header.
    let newest = app
        .get_json(&config_path(NS, ENV, Marker::KEY, "/releases"))
        .await
        .1[0]["id"]
        .as_i64()
        .unwrap();
    let mut current = watch(&app, &token, &format!("{query}&last_event_id={newest}")).await;
    let a2 = app.release(NS, ENV, "a.json", 2, "").await;
    let event = current.next_event().await;
    assert_eq!(
        (event.json()["key"].clone(), event.id()),
        (json!("a.json"), a2["id"].as_i64().unwrap())
    );
}

#[tokio::test]
async fn heartbeats_keep_the_stream_alive() {
    // An hour between pings: only the test's clock brings them.
    let hour = Duration::from_secs(3600);
    let app = spawn_app_with(|c| c.heartbeat = hour).await;
    app.namespace(NS).await;
    let token = subscriber_token(&app).await;
    let mut stream = watch(&app, &token, "client_id=pod-1").await;
    // Nothing resolves here, so the stream starts with its `: synced` alone.
    let synced = stream.next_within(PATIENCE).await.expect("synced");
    assert_eq!(
        (synced.event.as_str(), synced.data.as_str()),
        ("comment", "synced")
    );
    app.clock.advance(hour);
    let ping = stream
        .next_within(PATIENCE)
        .await
        .expect("a heartbeat arrives");
    assert_eq!(
        (ping.event.as_str(), ping.data.as_str()),
        ("comment", "ping")
    );
    app.clock.advance(hour);
    let again = stream.next_within(PATIENCE).await.expect("and again");
    assert_eq!(again.data, "ping");
}

#[tokio::test]
async fn rules_mode_sends_the_stable_release_and_every_active_lane() {
    let app = spawn_app().await;
    app.namespace(NS).await;
    config_with_versions(&app, "app.json", &[r#"{"v":1}"#, r#"{"v":2}"#]).await;
    let release = app.release(NS, ENV, "app.json", 1, "").await;
    let token = subscriber_token(&app).await;
    let mut gateway = watch(&app, &token, "keys=app.json&client_id=gateway-1&mode=rules").await;
    let event = gateway.next_event().await;
    assert_eq!(event.event, "rules");
    assert_eq!(event.id(), release["id"].as_i64().unwrap());
    let rules = event.json();
    assert_eq!(rules["stable"]["version"], 1);
    assert_eq!(rules["stable"]["content"], r#"{"v":1}"#);
    assert_eq!(rules["lanes"], json!([]));
    assert_eq!(rules["format"], "json");

    let lanes = config_path(NS, ENV, "app.json", "/lanes");
    let (status, lane) = app
        .post_json(
            &lanes,
            json!({"version": 2, "selector": "tier=gold", "targets": ["user-7"], "percentage": 12.5, "stickiness": "user_id"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{lane}");
    let rules = gateway.next_event().await.json();
    let sent = &rules["lanes"][0];
    for field in [
        "id",
        "version",
        "selector",
        "targets",
        "percentage",
        "stickiness",
        "salt",
        "priority",
    ] {
        assert_eq!(sent[field], lane[field], "{field}");
    }
    assert_eq!(sent["content"], r#"{"v":2}"#);
    assert!(sent["checksum"].as_str().unwrap().starts_with("sha256:"));

    // A weight change is a rules change, even though no instance's version moves.
    let id = lane["id"].as_i64().unwrap();
    let (status, _) = patch_json(&app, &format!("{lanes}/{id}"), json!({"percentage": 20})).await;
    assert_eq!(status, StatusCode::OK);
    let rules = gateway.next_event().await.json();
    assert_eq!(rules["lanes"][0]["percentage"], 20.0);
}

#[tokio::test]
async fn a_key_that_stops_resolving_gives_a_deleted_event() {
    let app = spawn_app().await;
    app.namespace(NS).await;
    config_with_versions(&app, "beta.json", &[r#"{"beta":true}"#]).await;
    let lanes = config_path(NS, ENV, "beta.json", "/lanes");
    // Before any stable release, a lane alone serves the config to its slice.
    let (status, lane) = app
        .post_json(
            &lanes,
            json!({"version": 1, "targets": ["pod-1"], "percentage": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{lane}");
    let token = subscriber_token(&app).await;
    let mut inside = watch(&app, &token, "keys=beta.json&client_id=pod-1").await;
    let event = inside.next_event().await;
    assert_eq!(
        (
            event.json()["version"].as_i64(),
            event.json()["lane"].clone()
        ),
        (Some(1), lane["id"].clone())
    );

    let id = lane["id"].as_i64().unwrap();
    let (status, abort) = app
        .post_json(&format!("{lanes}/{id}/abort"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{abort}");
    let event = inside.next_event().await;
    assert_eq!(event.event, "deleted");
    assert_eq!(event.id(), abort["id"].as_i64().unwrap());
    assert_eq!(
        event.json(),
        json!({"namespace": NS, "env": ENV, "key": "beta.json"})
    );
    // It comes back with the first stable release.
    app.release(NS, ENV, "beta.json", 1, "").await;
    let event = inside.next_event().await;
    assert_eq!(
        (event.event.as_str(), event.json()["version"].as_i64()),
        ("config", Some(1))
    );
}

#[tokio::test]
async fn shutting_down_ends_open_streams_instead_of_waiting_for_them() {
    use graycast::api::Application;
    use graycast::model::{NewNamespace, NewToken, Role};
    use graycast::server::{auth::Actor, ops, ServeConfig};
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("graycast.db").display());
    let app = Application::build(ServeConfig::for_tests(database))
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let cli = Actor::cli();
    ops::namespaces::create(
        &app.core,
        &cli,
        NewNamespace {
            name: NS.into(),
            description: None,
        },
    )
    .await
    .unwrap();
    let token = ops::tokens::create(
        &app.core,
        &cli,
        NewToken {
            name: "watcher".into(),
            role: Role::Admin,
            namespace: None,
            env: None,
        },
    )
    .await
    .unwrap()
    .token;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let mut watching = sse::open(
        &format!("{base}/api/v1/watch?namespace={NS}&env={ENV}&client_id=pod-1"),
        &token,
        None,
    )
    .await;
    let mut feed = sse::open(
        &format!("{base}/api/v1/namespaces/{NS}/envs/{ENV}/instances/stream"),
        &token,
        None,
    )
    .await;
    assert_eq!(feed.next_event().await.event, "instances");

    stop.send(()).unwrap();
    tokio::time::timeout(PATIENCE, server)
        .await
        .expect("the server stops with streams open")
        .unwrap()
        .unwrap();
    for stream in [&mut watching, &mut feed] {
        while let Some(event) = stream.next_within(PATIENCE).await {
            assert_ne!(event.event, "config", "{event:?}");
        }
    }
}

/// Issue 13, point 15: the server knows what it last handed each client id,
/// so a resume sends only what changed *for this subscriber*.
#[tokio::test]
async fn resumes_send_only_what_lane_changes_changed_for_this_subscriber() {
    let app = spawn_app().await;
    app.namespace(NS).await;
    config_with_versions(&app, "app.json", &[r#"{"v":1}"#, r#"{"v":2}"#]).await;
    app.release(NS, ENV, "app.json", 1, "").await;
    let token = subscriber_token(&app).await;
    let query = "keys=app.json&client_id=pod-1&labels=region=beijing";
    let mut stream = watch(&app, &token, query).await;
    let initial = stream.until_synced().await;
    assert_eq!(initial.len(), 1, "{initial:?}");
    let last_seen = initial[0].id();

    // Twenty lane changes while it is away, none of which it matches.
    let lanes = config_path(NS, ENV, "app.json", "/lanes");
    let (status, lane) = app
        .post_json(
            &lanes,
            json!({"version": 2, "selector": "region=shanghai", "percentage": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{lane}");
    let lane_path = format!("{lanes}/{}", lane["id"]);
    let mut sent_again = 0;
    for round in 0..20 {
        drop(stream);
        let (status, body) =
            patch_json(&app, &lane_path, json!({"percentage": 5 * (round + 1)})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        stream = sse::open(&watch_url(&app, query), &token, Some(last_seen)).await;
        sent_again += stream.until_synced().await.len();
    }
    assert_eq!(
        sent_again, 0,
        "resumes after lane changes that left it alone"
    );

    // A change that moves it sends exactly that, once.
    drop(stream);
    let (status, body) = patch_json(&app, &lane_path, json!({"selector": "region=beijing"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut stream = sse::open(&watch_url(&app, query), &token, Some(last_seen)).await;
    let got = stream.until_synced().await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (
            got[0].json()["version"].as_i64(),
            got[0].json()["lane"].clone()
        ),
        (Some(2), lane["id"].clone())
    );
    // Resuming from that event: nothing more is owed.
    let moved = got[0].id();
    drop(stream);
    let mut stream = sse::open(&watch_url(&app, query), &token, Some(moved)).await;
    assert!(stream.until_synced().await.is_empty());

    // Without a record of what it had (another client id, as after a restart
    // or once forgotten), the keys changed since the event are sent.
    let other = "keys=app.json&client_id=pod-2&labels=region=beijing";
    let mut fresh = sse::open(&watch_url(&app, other), &token, Some(last_seen)).await;
    assert_eq!(fresh.until_synced().await.len(), 1);
}

/// Issue 13, point 11: one stream per client id; a second replaces the first.
#[tokio::test]
async fn a_second_stream_of_the_same_client_id_replaces_the_first() {
    let app = spawn_app().await;
    app.namespace(NS).await;
    config_with_versions(&app, "app.json", &["1", "2"]).await;
    app.release(NS, ENV, "app.json", 1, "").await;
    let token = subscriber_token(&app).await;
    let query = "keys=app.json&client_id=pod-1";
    let mut first = watch(&app, &token, query).await;
    assert_eq!(first.until_synced().await.len(), 1);
    let mut second = watch(&app, &token, query).await;
    assert_eq!(second.until_synced().await.len(), 1);
    assert!(first.ends().await, "the first stream ends");
    app.release(NS, ENV, "app.json", 2, "").await;
    assert_eq!(second.next_event().await.json()["version"], 2);
    let pod = wait_for_instance(&app, "pod-1", |i| i["configs"]["app.json"]["served"] == 2).await;
    assert_eq!(pod["connected"], true);
}

/// A stream that attaches in the same turn of the push hub as a release of a key nobody
/// watched yet gets that key on connect (its state was read for the release, and was
/// not handed to the new subscriber: it started without the config).
#[tokio::test]
async fn a_stream_attaching_with_a_release_of_an_unwatched_key_gets_it() {
    use graycast::model::ConfigPath;
    use graycast::server::auth::Actor;
    use graycast::server::hub::{Mode, WatchRequest};
    use graycast::server::ops;
    let app = spawn_app().await;
    app.namespace(NS).await;
    config_with_versions(&app, "app.json", &[r#"{"v":1}"#]).await;
    let path = ConfigPath::new(NS, ENV, "app.json");
    // No await between the release's announcement and the attach: on this one-thread
    // runtime the hub takes both in one turn.
    let event = ops::configs::release(
        &app.core,
        &Actor::cli(),
        &path,
        1,
        None,
        &Default::default(),
    )
    .await
    .and_then(|outcome| outcome.done())
    .unwrap();
    let subscription = app
        .core
        .hub
        .subscribe(WatchRequest {
            namespace: NS.into(),
            env: ENV.into(),
            keys: Some(vec!["app.json".into()]),
            client_id: "pod-1".into(),
            labels: Default::default(),
            mode: Mode::Config,
            last_event_id: None,
            outlet: None,
            owner: None,
        })
        .await
        .unwrap();
    let initial: Vec<String> = subscription
        .initial
        .iter()
        .map(|frame| String::from_utf8_lossy(frame).into_owned())
        .collect();
    assert_eq!(initial.len(), 1, "{initial:?}");
    assert!(
        initial[0].contains(&format!("id: {}\n", event.id)) && initial[0].contains("event: config"),
        "{initial:?}"
    );
}
