//! Issue 6: the watch stream, the push hub, rules mode, reports and instances —
//! against the real server, with real SSE clients over TCP.

mod crowd;
mod instances;
mod labels;
mod paging;
mod stream;

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

async fn instances(app: &TestApp) -> Vec<Value> {
    let (status, body) = app
        .get_json(&format!("/api/v1/namespaces/{NS}/envs/{ENV}/instances"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["instances"].as_array().unwrap().clone()
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
