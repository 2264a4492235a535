//! Many subscribers: each gets exactly its version through lane changes, and a
//! stuck one holds up no one.

use super::*;

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
            percentage: serde_json::from_value(lane["percentage"].clone()).unwrap(),
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
