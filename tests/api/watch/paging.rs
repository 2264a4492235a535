//! Issue 25, finding 8: the instances list comes in pages, and the live instances view sends
//! what changed, not the list.

use super::*;
use crate::common::eventually;

fn pod(i: usize) -> String {
    format!("pod-{i:03}")
}

/// `n` instances `pod-000` … watching `query`'s keys, each with its stream open and synced.
async fn connect(
    app: &TestApp,
    token: &str,
    n: usize,
    query: impl Fn(usize) -> String,
) -> Vec<SseStream> {
    let mut streams = Vec::with_capacity(n);
    for i in 0..n {
        let mut stream = watch(app, token, &format!("client_id={}&{}", pod(i), query(i))).await;
        stream.until_synced().await;
        streams.push(stream);
    }
    streams
}

/// The page `query` asks for: the client ids and `next_after`.
async fn page(app: &TestApp, query: &str) -> (Vec<String>, Value) {
    let (status, body) = app
        .get_json(&format!(
            "/api/v1/namespaces/{NS}/envs/{ENV}/instances?{query}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    let ids = body["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["client_id"].as_str().unwrap().to_string())
        .collect();
    (ids, body["next_after"].clone())
}

#[tokio::test]
async fn the_instances_list_comes_in_pages_by_client_id() {
    let app = spawn_app().await;
    app.namespace(NS).await;
    for key in ["app.json", "other.json"] {
        config_with_versions(&app, key, &["{}"]).await;
        app.release(NS, ENV, key, 1, "").await;
    }
    let token = subscriber_token(&app).await;
    // Every tenth watches other.json only; the last 30 leave.
    let mut streams = connect(&app, &token, 230, |i| {
        let key = if i % 10 == 0 {
            "other.json"
        } else {
            "app.json"
        };
        format!("keys={key}")
    })
    .await;
    streams.truncate(200);
    eventually("the last 30 to be listed as disconnected", || async {
        let (gone, _) = page(&app, "state=disconnected&limit=500").await;
        (gone.len() == 30).then_some(())
    })
    .await;

    // 100 by default, then page after page.
    let (first, next) = page(&app, "").await;
    assert_eq!(first, (0..100).map(pod).collect::<Vec<_>>());
    assert_eq!(next, "pod-099");
    let mut all = Vec::new();
    let mut after = String::new();
    loop {
        let (ids, next) = page(&app, &format!("limit=64&after={after}")).await;
        assert!(ids.len() == 64 || next.is_null(), "{ids:?}");
        all.extend(ids);
        match next.as_str() {
            Some(next) => after = next.to_string(),
            None => break,
        }
    }
    assert_eq!(all, (0..230).map(pod).collect::<Vec<_>>());
    // At most 500 a page, at least 1.
    assert_eq!(page(&app, "limit=100000").await.0.len(), 230);
    assert_eq!(page(&app, "limit=0").await.0, ["pod-000"]);

    // Filters.
    let (gone, next) = page(&app, "state=disconnected&limit=500").await;
    assert_eq!(gone, (200..230).map(pod).collect::<Vec<_>>());
    assert!(next.is_null());
    assert_eq!(page(&app, "state=connected&limit=500").await.0.len(), 200);
    let (other, _) = page(&app, "key=other.json&limit=500").await;
    assert_eq!(other, (0..230).step_by(10).map(pod).collect::<Vec<_>>());
    let (some, next) = page(&app, "key=other.json&state=connected&limit=3&after=pod-005").await;
    assert_eq!(some, ["pod-010", "pod-020", "pod-030"]);
    assert_eq!(next, "pod-030");

    // Refusals name the parameter.
    for (query, field) in [
        ("state=sleeping", "state"),
        ("after=pod%20one", "after"),
        ("key=..", "key"),
    ] {
        let (status, body) = app
            .get_json(&format!(
                "/api/v1/namespaces/{NS}/envs/{ENV}/instances?{query}"
            ))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
    let (status, _) = app
        .get_json(&format!(
            "/api/v1/namespaces/{NS}/envs/{ENV}/instances?limit=many"
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_live_instances_view_sends_the_instance_that_changed_not_the_list() {
    let app = spawn_app().await;
    app.namespace(NS).await;
    config_with_versions(&app, "app.json", &["{}", r#"{"a":1}"#]).await;
    app.release(NS, ENV, "app.json", 1, "").await;
    let token = subscriber_token(&app).await;
    // 300 instances with about 1 KB of labels each.
    let labels = (0..4)
        .map(|i| format!("l{i}={}", "x".repeat(250)))
        .collect::<Vec<_>>()
        .join(",");
    let mut streams = connect(&app, &token, 300, |_| {
        format!("keys=app.json&labels={labels}")
    })
    .await;
    let viewer = app.token("viewer", "viewer", Some(NS), None).await;
    let feed_url = app.url(&format!(
        "/api/v1/namespaces/{NS}/envs/{ENV}/instances/stream"
    ));
    let mut feed = sse::open(&feed_url, &viewer, None).await;

    // First the list's first page.
    let first = feed.next_event().await;
    assert_eq!(first.event, "instances");
    let page = first.json();
    assert_eq!(page["instances"].as_array().unwrap().len(), 100);
    assert_eq!(page["next_after"], "pod-099");
    assert!(first.data.len() > 100_000, "{}", first.data.len());

    // One instance reports: the event carries that one.
    let r = app
        .post_with(
            &token,
            "/api/v1/report",
            json!({"client_id": "pod-150", "namespace": NS, "env": ENV, "key": "app.json",
                   "version": 1, "status": "applied"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let events = feed
        .until(|e| e.event == "instance" && e.json()["configs"]["app.json"]["applied"] == 1)
        .await;
    let reported = events.last().unwrap();
    assert_eq!(reported.json()["client_id"], "pod-150");
    assert_eq!(reported.json()["labels"]["l0"], "x".repeat(250));
    for event in &events {
        assert!(
            event.data.len() < 2_000,
            "one instance an event, not the list: {} bytes",
            event.data.len()
        );
    }

    // One disconnects (beyond the first page too: the dashboard keeps what it loaded).
    drop(streams.remove(250));
    let gone = feed
        .until(|e| e.event == "instance" && e.json()["connected"] == false)
        .await;
    assert_eq!(gone.last().unwrap().json()["client_id"], "pod-250");
    assert!(gone.iter().all(|e| e.data.len() < 2_000));

    // A lane nobody matches changes no instance: a `changed` event says the scope changed.
    let (status, lane) = app
        .post_json(
            &config_path(NS, ENV, "app.json", "/lanes"),
            json!({"version": 2, "selector": "region=nowhere", "percentage": 100}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{lane}");
    let changed = feed.until(|e| e.event == "changed").await;
    assert_eq!(changed.last().unwrap().json(), json!({}));
}
