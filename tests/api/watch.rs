//! Issue 6: the watch stream, the push hub, rules mode, reports and instances —
//! against the real server, with real SSE clients over TCP.

use crate::common::sse::{self, SseEvent, SseStream, PATIENCE};
use crate::common::{config_path, spawn_app, spawn_app_with, TestApp};
use graycast::domain::lane::{resolve, LaneRule};
use graycast::domain::selector::Selector;
use graycast::domain::Context;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const NS: &str = "shop";
const ENV: &str = "prod";

fn watch_url(app: &TestApp, query: &str) -> String {
    app.url(&format!("/api/v1/watch?namespace={NS}&env={ENV}&{query}"))
}

async fn watch(app: &TestApp, token: &str, query: &str) -> SseStream {
    sse::open(&watch_url(app, query), token, None).await
}

/// A config with versions holding `contents` (1, 2, …), none released.
async fn config_with_versions(app: &TestApp, key: &str, contents: &[&str]) {
    app.config(NS, ENV, key, "json", contents[0]).await;
    for (i, content) in contents.iter().enumerate().skip(1) {
        app.save(NS, ENV, key, content, i as i64).await;
    }
}

async fn patch_json(app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    let r = app
        .admin
        .patch(app.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn subscriber_token(app: &TestApp) -> String {
    app.token("watcher", "subscriber", Some(NS), Some(ENV))
        .await
}

/// A text config every test subscriber also watches: releasing its next
/// version is a barrier. Events are delivered in sequence order, so anything
/// a change before it was going to send arrives before the marker does.
struct Marker {
    released: i64,
}

impl Marker {
    const KEY: &'static str = "marker.txt";

    async fn new(app: &TestApp) -> Self {
        app.config(NS, ENV, Self::KEY, "text", "marker 1").await;
        Marker { released: 0 }
    }

    /// Releases the next marker version; returns its number.
    async fn pass(&mut self, app: &TestApp) -> i64 {
        let next = self.released + 1;
        if next > 1 {
            app.save(NS, ENV, Self::KEY, &format!("marker {next}"), next - 1)
                .await;
        }
        app.release(NS, ENV, Self::KEY, next, "barrier").await;
        self.released = next;
        next
    }

    /// The events `stream` got before marker version `n`, which must come next.
    async fn events_before(stream: &mut SseStream, n: i64) -> Vec<SseEvent> {
        let mut events = stream
            .until(|e| {
                e.event == "config" && e.json()["key"] == Self::KEY && e.json()["version"] == n
            })
            .await;
        events.pop();
        events
    }
}

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
    let app = spawn_app_with(|c| c.heartbeat = Duration::from_secs(1)).await;
    app.namespace(NS).await;
    let token = subscriber_token(&app).await;
    let mut stream = watch(&app, &token, "client_id=pod-1").await;
    // Nothing resolves here, so the stream starts with its `: synced` alone.
    let synced = stream.next_within(PATIENCE).await.expect("synced");
    assert_eq!(
        (synced.event.as_str(), synced.data.as_str()),
        ("comment", "synced")
    );
    let ping = stream
        .next_within(PATIENCE)
        .await
        .expect("a heartbeat arrives");
    assert_eq!(
        (ping.event.as_str(), ping.data.as_str()),
        ("comment", "ping")
    );
    let again = stream.next_within(PATIENCE).await.expect("and again");
    assert_eq!(again.data, "ping");
}

/// What the test expects a context to get, by the section 2 rules.
#[derive(Default)]
struct Expected {
    stable: Option<i64>,
    lanes: BTreeMap<i64, LaneRule>,
}

impl Expected {
    fn lane(&mut self, lane: &Value) {
        let rule = LaneRule {
            id: lane["id"].as_i64().unwrap(),
            version: lane["version"].as_i64().unwrap(),
            selector: Selector::parse(lane["selector"].as_str().unwrap()).unwrap(),
            targets: serde_json::from_value(lane["targets"].clone()).unwrap(),
            percentage_bp: (lane["percentage"].as_f64().unwrap() * 100.0).round() as u32,
            stickiness: lane["stickiness"].as_str().unwrap().into(),
            salt: lane["salt"].as_str().unwrap().into(),
            priority: lane["priority"].as_i64().unwrap(),
        };
        self.lanes.insert(rule.id, rule);
    }

    fn get(&self, context: &Context) -> Option<(i64, Option<i64>)> {
        let lanes: Vec<LaneRule> = self.lanes.values().cloned().collect();
        match resolve(&lanes, context) {
            Some(lane) => Some((lane.version, Some(lane.id))),
            None => self.stable.map(|v| (v, None)),
        }
    }
}

struct Subscriber {
    context: Context,
    stream: SseStream,
    has: Option<(i64, Option<i64>)>,
}

/// After a change: every subscriber whose version changed got exactly one
/// event with it, the others nothing at all.
async fn check_everyone(subscribers: &mut [Subscriber], expected: &Expected, marker: i64) -> usize {
    let mut changed = 0;
    for s in subscribers.iter_mut() {
        let events = Marker::events_before(&mut s.stream, marker).await;
        let want = expected.get(&s.context);
        let client = &s.context["client_id"];
        if want.map(|w| w.0) == s.has.map(|h| h.0) {
            assert!(
                events.is_empty(),
                "{client} stays on {want:?} and gets nothing, got {events:?}"
            );
        } else {
            changed += 1;
            assert_eq!(events.len(), 1, "{client} gets one event: {events:?}");
            let got = events[0].json();
            assert_eq!(got["key"], "app.json");
            let want = want.unwrap();
            assert_eq!(
                (got["version"].as_i64(), got["lane"].as_i64()),
                (Some(want.0), want.1),
                "{client} ({:?})",
                s.context
            );
            assert_eq!(got["content"], format!("{{\"v\":{}}}", want.0));
        }
        s.has = want;
    }
    changed
}

#[tokio::test]
async fn hundred_subscribers_get_exactly_their_versions_through_lane_changes() {
    let Crowd {
        app,
        mut marker,
        mut expected,
        mut subscribers,
        lanes,
    } = crowd(100).await;

    // Half of Beijing gets version 2.
    let (status, lane_a) = app
        .post_json(
            &lanes,
            json!({"version": 2, "selector": "region=beijing", "percentage": 50}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{lane_a}");
    expected.lane(&lane_a);
    let moved = step(&app, &mut marker, &expected, &mut subscribers).await;
    assert!(moved > 5 && moved < 30, "about half of 34: {moved}");
    let a = lane_a["id"].as_i64().unwrap();

    // All of Beijing: those already inside get nothing.
    let (status, lane_a) =
        patch_json(&app, &format!("{lanes}/{a}"), json!({"percentage": 100})).await;
    assert_eq!(status, StatusCode::OK, "{lane_a}");
    expected.lane(&lane_a);
    let moved = step(&app, &mut marker, &expected, &mut subscribers).await;
    assert!(moved > 5, "the other half of Beijing: {moved}");

    // Newer app versions everywhere get version 3; Beijing's lane comes first.
    let (status, lane_b) = app
        .post_json(
            &lanes,
            json!({"version": 3, "selector": "app_version>=2.3", "percentage": 100}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{lane_b}");
    expected.lane(&lane_b);
    let moved = step(&app, &mut marker, &expected, &mut subscribers).await;
    assert!(moved > 10, "{moved}");

    // A lane serving the stable version to Guangzhou changes no one's version: silence.
    let (status, lane_c) = app
        .post_json(
            &lanes,
            json!({"version": 1, "selector": "region=guangzhou", "percentage": 100, "priority": -1}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{lane_c}");
    expected.lane(&lane_c);
    let guangzhou_on_b = subscribers
        .iter()
        .filter(|s| s.context["region"] == "guangzhou" && s.has.map(|h| h.0) == Some(3))
        .count();
    let moved = step(&app, &mut marker, &expected, &mut subscribers).await;
    // Guangzhou on lane B (3) falls back to 1; Guangzhou on stable stays on 1: silence.
    assert_eq!(moved, guangzhou_on_b);
    assert!(guangzhou_on_b > 0 && guangzhou_on_b < guangzhou_count(&subscribers));

    // Abort lane B: its subscribers fall back.
    let b = lane_b["id"].as_i64().unwrap();
    let (status, _) = app
        .post_json(&format!("{lanes}/{b}/abort"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    expected.lanes.remove(&b);
    step(&app, &mut marker, &expected, &mut subscribers).await;

    // Promote lane A: Beijing stays on 2 (silence), everyone on stable moves to 2.
    let (status, _) = app
        .post_json(&format!("{lanes}/{a}/promote"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    expected.lanes.remove(&a);
    expected.stable = Some(2);
    let moved = step(&app, &mut marker, &expected, &mut subscribers).await;
    let beijing = subscribers
        .iter()
        .filter(|s| s.context["region"] == "beijing")
        .count();
    assert_eq!(moved, 100 - beijing - guangzhou_count(&subscribers));
}

/// The start of a test with many subscribers.
struct Crowd {
    app: TestApp,
    marker: Marker,
    expected: Expected,
    subscribers: Vec<Subscriber>,
    /// The lanes route of app.json.
    lanes: String,
}

/// app.json with versions 1 to 3, version 1 released, the marker, and `n`
/// subscribers on version 1.
async fn crowd(n: usize) -> Crowd {
    let app = spawn_app().await;
    app.namespace(NS).await;
    config_with_versions(
        &app,
        "app.json",
        &[r#"{"v":1}"#, r#"{"v":2}"#, r#"{"v":3}"#],
    )
    .await;
    app.release(NS, ENV, "app.json", 1, "").await;
    let marker = Marker::new(&app).await;
    let token = subscriber_token(&app).await;
    let expected = Expected {
        stable: Some(1),
        ..Expected::default()
    };
    let subscribers = subscribe_many(&app, &token, n).await;
    Crowd {
        lanes: config_path(NS, ENV, "app.json", "/lanes"),
        app,
        marker,
        expected,
        subscribers,
    }
}

/// `n` subscribers of app.json (on version 1) and the marker, each on a
/// connection of its own, in three regions and five app versions.
async fn subscribe_many(app: &TestApp, token: &str, n: usize) -> Vec<Subscriber> {
    let regions = ["beijing", "shanghai", "guangzhou"];
    let mut subscribers = Vec::new();
    for i in 0..n {
        let labels = format!("region={},app_version=2.{}", regions[i % 3], i % 5);
        let client_id = format!("pod-{i}");
        let mut stream = watch(
            app,
            token,
            &format!(
                "keys=app.json,{}&client_id={client_id}&labels={labels}",
                Marker::KEY
            ),
        )
        .await;
        let first = stream.next_event().await.json();
        assert_eq!(
            (first["version"].as_i64(), first["lane"].as_i64()),
            (Some(1), None)
        );
        let mut context = graycast::domain::lane::parse_labels(&labels).unwrap();
        context.insert("client_id".into(), client_id);
        subscribers.push(Subscriber {
            context,
            stream,
            has: Some((1, None)),
        });
    }
    subscribers
}

/// 300 subscribers of one key: above the push hub's threshold (256) for
/// writing a fan-out from two threads, chunk by chunk.
#[tokio::test]
async fn three_hundred_subscribers_get_exactly_their_versions_from_two_writer_threads() {
    let Crowd {
        app,
        mut marker,
        mut expected,
        mut subscribers,
        lanes,
    } = crowd(300).await;

    // Half of Beijing (100 subscribers) gets version 2.
    let (status, lane) = app
        .post_json(
            &lanes,
            json!({"version": 2, "selector": "region=beijing", "percentage": 50}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{lane}");
    expected.lane(&lane);
    let moved = step(&app, &mut marker, &expected, &mut subscribers).await;
    assert!(moved > 25 && moved < 75, "about half of 100: {moved}");

    // A new stable release: everyone outside the lane moves to 3.
    let on_lane = subscribers
        .iter()
        .filter(|s| s.has.map(|h| h.0) == Some(2))
        .count();
    app.release(NS, ENV, "app.json", 3, "").await;
    expected.stable = Some(3);
    let moved = step(&app, &mut marker, &expected, &mut subscribers).await;
    assert_eq!(moved, 300 - on_lane);

    // Abort the lane: its subscribers fall back to 3, the others hear nothing.
    let id = lane["id"].as_i64().unwrap();
    let (status, _) = app
        .post_json(&format!("{lanes}/{id}/abort"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    expected.lanes.remove(&id);
    let moved = step(&app, &mut marker, &expected, &mut subscribers).await;
    assert_eq!(moved, on_lane);
}

async fn step(
    app: &TestApp,
    marker: &mut Marker,
    expected: &Expected,
    subscribers: &mut [Subscriber],
) -> usize {
    let n = marker.pass(app).await;
    check_everyone(subscribers, expected, n).await
}

fn guangzhou_count(subscribers: &[Subscriber]) -> usize {
    subscribers
        .iter()
        .filter(|s| s.context["region"] == "guangzhou")
        .count()
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

async fn instances(app: &TestApp) -> Vec<Value> {
    let (status, body) = app
        .get_json(&format!("/api/v1/namespaces/{NS}/envs/{ENV}/instances"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

async fn instance(app: &TestApp, client_id: &str) -> Option<Value> {
    instances(app)
        .await
        .into_iter()
        .find(|i| i["client_id"] == client_id)
}

/// Polls the instances list until `done` holds for `client_id` (fails after [`PATIENCE`]).
async fn wait_for_instance(app: &TestApp, client_id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(found) = instance(app, client_id).await {
            if done(&found) {
                return found;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "instance {client_id} never reached the expected state: {:?}",
            instance(app, client_id).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn reports_and_instances_show_who_runs_what() {
    let app = spawn_app().await;
    app.namespace(NS).await;
    config_with_versions(&app, "app.json", &["{}", r#"{"a":1}"#]).await;
    app.release(NS, ENV, "app.json", 1, "").await;
    let token = subscriber_token(&app).await;
    let mut stream = watch(
        &app,
        &token,
        "keys=app.json&client_id=pod-1&labels=region=beijing,zone=a",
    )
    .await;
    stream.next_event().await;

    let listed = instance(&app, "pod-1").await.expect("pod-1 is listed");
    assert_eq!(listed["connected"], true);
    assert_eq!(listed["labels"], json!({"region": "beijing", "zone": "a"}));
    assert!(listed["connected_at"].as_str().unwrap().ends_with('Z'));
    assert!(listed["last_seen"].is_string());
    assert_eq!(listed["configs"]["app.json"]["served"], 1);
    assert_eq!(listed["configs"]["app.json"]["lane"], Value::Null);
    assert_eq!(listed["configs"]["app.json"]["status"], Value::Null);

    let report = |version: i64, status: &str, message: Option<&str>| {
        json!({"client_id": "pod-1", "namespace": NS, "env": ENV, "key": "app.json",
               "version": version, "status": status, "message": message})
    };
    let r = app
        .post_with(&token, "/api/v1/report", report(1, "applied", None))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let listed = instance(&app, "pod-1").await.unwrap();
    let app_json = &listed["configs"]["app.json"];
    assert_eq!(
        (app_json["applied"].as_i64(), app_json["status"].as_str()),
        (Some(1), Some("applied"))
    );

    app.release(NS, ENV, "app.json", 2, "").await;
    assert_eq!(stream.next_event().await.json()["version"], 2);
    let r = app
        .post_with(
            &token,
            "/api/v1/report",
            report(2, "failed", Some("reload exited with 1")),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let app_json = instance(&app, "pod-1").await.unwrap()["configs"]["app.json"].clone();
    assert_eq!(
        app_json,
        json!({"served": 2, "lane": null, "applied": 1, "status": "failed",
               "message": "reload exited with 1", "reported": 2,
               "reported_at": app_json["reported_at"]}),
        "the last good version stays as applied"
    );

    // Refusals.
    let r = app
        .post_with(&token, "/api/v1/report", report(2, "maybe", None))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let mut elsewhere = report(1, "applied", None);
    elsewhere["namespace"] = json!("other");
    let r = app.post_with(&token, "/api/v1/report", elsewhere).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = reqwest::Client::new()
        .post(app.url("/api/v1/report"))
        .json(&report(1, "applied", None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let path = format!("/api/v1/namespaces/{NS}/envs/{ENV}/instances");
    assert_eq!(
        app.get_with(&token, &path).await.status(),
        StatusCode::FORBIDDEN,
        "viewer role needed"
    );
    let viewer = app.token("viewer", "viewer", Some(NS), None).await;
    assert_eq!(app.get_with(&viewer, &path).await.status(), StatusCode::OK);
    let (status, _) = app
        .get_json("/api/v1/namespaces/nope/envs/prod/instances")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Disconnected instances stay listed, as disconnected.
    drop(stream);
    let gone = wait_for_instance(&app, "pod-1", |i| i["connected"] == false).await;
    assert_eq!(gone["configs"]["app.json"]["served"], 2);
}

#[tokio::test]
async fn disconnected_instances_are_forgotten_after_the_retention_period() {
    let app = spawn_app_with(|c| c.instance_retention = Duration::from_secs(1)).await;
    app.namespace(NS).await;
    let token = subscriber_token(&app).await;
    let stream = watch(&app, &token, "client_id=short-lived").await;
    assert_eq!(
        instance(&app, "short-lived").await.unwrap()["connected"],
        true
    );
    drop(stream);
    wait_for_instance(&app, "short-lived", |i| i["connected"] == false).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while instance(&app, "short-lived").await.is_some() {
        assert!(tokio::time::Instant::now() < deadline, "never forgotten");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_live_instances_feed_follows_connects_reports_and_releases() {
    let app = spawn_app().await;
    app.namespace(NS).await;
    config_with_versions(&app, "app.json", &["{}", r#"{"a":1}"#]).await;
    app.release(NS, ENV, "app.json", 1, "").await;
    let token = subscriber_token(&app).await;
    let viewer = app.token("viewer", "viewer", Some(NS), None).await;
    let feed_url = app.url(&format!(
        "/api/v1/namespaces/{NS}/envs/{ENV}/instances/stream"
    ));
    assert_eq!(
        sse::request(&feed_url, &token, None).await.status(),
        StatusCode::FORBIDDEN
    );
    let mut feed = sse::open(&feed_url, &viewer, None).await;
    let first = feed.next_event().await;
    assert_eq!(
        (first.event.as_str(), first.json()),
        ("instances", json!([]))
    );

    let mut pod = watch(&app, &token, "keys=app.json&client_id=pod-1").await;
    pod.next_event().await;
    let served = |e: &SseEvent| e.json()[0]["configs"]["app.json"]["served"].clone();
    feed.until(|e| served(e) == 1).await;
    app.release(NS, ENV, "app.json", 2, "").await;
    feed.until(|e| served(e) == 2).await;
    app.post_with(
        &token,
        "/api/v1/report",
        json!({"client_id": "pod-1", "namespace": NS, "env": ENV, "key": "app.json",
               "version": 2, "status": "applied"}),
    )
    .await;
    feed.until(|e| e.json()[0]["configs"]["app.json"]["applied"] == 2)
        .await;
    drop(pod);
    feed.until(|e| e.json()[0]["connected"] == false).await;

    // Session cookies work too (the dashboard's EventSource).
    let r = app.admin.get(&feed_url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_stuck_subscriber_is_dropped_and_never_holds_up_the_others() {
    let app = spawn_app().await;
    app.namespace(NS).await;
    // Big versions fill the stuck subscriber's socket and queue quickly.
    let big = |c: char| c.to_string().repeat(900 * 1024);
    app.config(NS, ENV, "big.txt", "text", &big('a')).await;
    app.save(NS, ENV, "big.txt", &big('b'), 1).await;
    app.release(NS, ENV, "big.txt", 1, "").await;
    let token = subscriber_token(&app).await;

    // The stuck subscriber asks for the stream and never reads a byte.
    let address: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stuck = socket.connect(address).await.unwrap();
    let request = format!(
        "GET /api/v1/watch?namespace={NS}&env={ENV}&keys=big.txt&client_id=stuck HTTP/1.1\r\n\
         Host: {address}\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    tokio::io::AsyncWriteExt::write_all(&mut stuck, request.as_bytes())
        .await
        .unwrap();
    wait_for_instance(&app, "stuck", |i| i["connected"] == true).await;

    let mut healthy = watch(&app, &token, "keys=big.txt&client_id=healthy").await;
    assert_eq!(healthy.next_event().await.json()["version"], 1);
    let mut dropped = false;
    for round in 0..200 {
        let version = if round % 2 == 0 { 2 } else { 1 };
        app.release(NS, ENV, "big.txt", version, "").await;
        // The healthy subscriber gets every release, whatever the stuck one does.
        assert_eq!(healthy.next_event().await.json()["version"], version);
        if instance(&app, "stuck").await.unwrap()["connected"] == false {
            dropped = true;
            break;
        }
    }
    assert!(dropped, "the stuck subscriber was dropped");
    assert_eq!(instance(&app, "healthy").await.unwrap()["connected"], true);
    drop(stuck);
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

/// Issue 13, point 11: reports only from instances that watch (or watched
/// within the retention period) with the same token, about configs that exist.
#[tokio::test]
async fn reports_come_only_from_instances_watching_with_the_same_token() {
    let app = spawn_app_with(|c| c.instance_retention = Duration::from_secs(2)).await;
    app.namespace(NS).await;
    config_with_versions(&app, "app.json", &["{}"]).await;
    app.release(NS, ENV, "app.json", 1, "").await;
    let token = subscriber_token(&app).await;
    let other_token = app
        .token("other-watcher", "subscriber", Some(NS), Some(ENV))
        .await;
    let report = |client_id: &str, key: &str| {
        json!({"client_id": client_id, "namespace": NS, "env": ENV, "key": key,
               "version": 1, "status": "applied"})
    };
    let mut stream = watch(&app, &token, "keys=app.json&client_id=pod-1").await;
    stream.until_synced().await;

    let r = app
        .post_with(&token, "/api/v1/report", report("pod-1", "app.json"))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // Invented instances, another token's instance, and a key that does not exist.
    for i in 0..50 {
        let r = app
            .post_with(
                &token,
                "/api/v1/report",
                report(&format!("ghost-{i}"), "app.json"),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(crate::common::error_code(r).await, "conflict");
    }
    let r = app
        .post_with(&other_token, "/api/v1/report", report("pod-1", "app.json"))
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = app
        .post_with(&token, "/api/v1/report", report("pod-1", "invented.json"))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let listed = instances(&app).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        listed[0]["configs"].as_object().unwrap().len(),
        1,
        "{listed:?}"
    );

    // Disconnected, it may still report (e.g. the reload finished after the
    // stream broke) until the retention period is over.
    drop(stream);
    wait_for_instance(&app, "pod-1", |i| i["connected"] == false).await;
    let r = app
        .post_with(&token, "/api/v1/report", report("pod-1", "app.json"))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let r = app
            .post_with(&token, "/api/v1/report", report("pod-1", "app.json"))
            .await;
        if r.status() == StatusCode::CONFLICT {
            break;
        }
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert!(tokio::time::Instant::now() < deadline, "never forgotten");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Issue 13, point 11: streams and client ids are capped per token; a
/// reconnect that replaces its own stream is never refused.
#[tokio::test]
async fn streams_and_instances_are_capped_per_token() {
    let app = spawn_app_with(|c| {
        c.max_streams_per_token = 2;
        c.max_instances_per_token = 3;
    })
    .await;
    app.namespace(NS).await;
    let token = subscriber_token(&app).await;
    let open = |client_id: &str| {
        let url = watch_url(&app, &format!("client_id={client_id}"));
        let token = token.clone();
        async move { sse::request(&url, &token, None).await }
    };
    let mut pod1 = sse::from_response(open("pod-1").await);
    let pod2 = sse::from_response(open("pod-2").await);
    pod1.until_synced().await;

    let refused = open("pod-3").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2 open watch streams"),
        "{body}"
    );
    // At the cap, pod-1 reconnecting (its old stream still open) replaces it.
    let mut again = sse::from_response(open("pod-1").await);
    again.until_synced().await;
    assert!(pod1.ends().await);

    // pod-2 leaves: pod-3 may come, as the third client id.
    drop(pod2);
    wait_for_instance(&app, "pod-2", |i| i["connected"] == false).await;
    let pod3 = sse::from_response(open("pod-3").await);
    drop(pod3);
    wait_for_instance(&app, "pod-3", |i| i["connected"] == false).await;
    // A fourth client id is refused while the others are within the retention period.
    let refused = open("pod-4").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("3 client ids"),
        "{body}"
    );
    // Known client ids come back; other tokens have limits of their own.
    let back = open("pod-2").await;
    assert_eq!(back.status(), StatusCode::OK);
    let other = app.token("other", "subscriber", Some(NS), None).await;
    let r = sse::request(&watch_url(&app, "client_id=pod-9"), &other, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(instances(&app).await.len(), 4);
}
