//! Issue 15: rollout plans against the real server — the scheduler walking steps with real
//! SSE subscribers reporting, guards and their policies, the controls, restarts, validation
//! and templates. Holds are a second or a few, the scheduler ticks every 200 ms.

mod compare;
mod controls;
mod corrupt;
mod evidence;
mod guards;
mod outbound;
mod prometheus;
mod templates;
mod validation;
mod walk;

use crate::common::sse::{self, SseStream};
use crate::common::{config_path, eventually, spawn_app_with, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

use std::time::Duration;

pub const NS: &str = "shop";
pub const ENV: &str = "prod";
pub const TICK: Duration = Duration::from_millis(200);

/// A server whose scheduler ticks every [`TICK`], whose probes may reach loopback (where the
/// tests' Prometheus and webhooks are) as often as every second, with namespace `shop`.
pub async fn app() -> TestApp {
    let app = spawn_app_with(|c| {
        c.plan_tick = TICK;
        crate::probes::allow_loopback(c);
        c.min_probe_interval_secs = 1;
    })
    .await;
    app.namespace(NS).await;
    app
}

/// `shop/prod/{key}` with versions 1 and 2 (`{"v":n}`), version 1 released.
pub async fn config(app: &TestApp, key: &str) {
    app.config(NS, ENV, key, "json", r#"{"v":1}"#).await;
    app.save(NS, ENV, key, r#"{"v":2}"#, 1).await;
    app.release(NS, ENV, key, 1, "first").await;
}

pub fn lanes(key: &str) -> String {
    config_path(NS, ENV, key, "/lanes")
}

pub fn lane_path(key: &str, lane: &Value, rest: &str) -> String {
    config_path(NS, ENV, key, &format!("/lanes/{lane}{rest}"))
}

pub async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app.admin.request(method, app.url(path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = request.send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Starts a lane on `key` with `body`, asserting 201.
pub async fn start(app: &TestApp, key: &str, body: Value) -> Value {
    let (status, lane) = app.post_json(&lanes(key), body).await;
    assert_eq!(status, StatusCode::CREATED, "{lane}");
    lane
}

/// `GET …/lanes/{id}/plan`, asserting 200.
pub async fn plan(app: &TestApp, key: &str, lane: &Value) -> Value {
    let (status, plan) = app.get_json(&lane_path(key, &lane["id"], "/plan")).await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    plan
}

/// Polls the lane's plan until `done` holds (fails after 30 s, showing the plan).
pub async fn wait_plan(
    app: &TestApp,
    key: &str,
    lane: &Value,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let p = plan(app, key, lane).await;
        if done(&p) {
            return p;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {p}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The config's lane `id` as the lane listing shows it.
pub async fn listed_lane(app: &TestApp, key: &str, lane: &Value) -> Value {
    let (status, body) = app.get_json(&lanes(key)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == lane["id"])
        .cloned()
        .expect("the lane is listed")
}

pub async fn subscriber_token(app: &TestApp) -> String {
    app.token("fleet", "subscriber", Some(NS), Some(ENV)).await
}

/// The (version, lane) of every config event an instance got, in order.
pub type Got = Arc<Mutex<Vec<(i64, Option<i64>)>>>;

/// A service instance: watches `key` over a real SSE stream as `client_id` and reports every
/// version it gets, `applied` — or `failed` with a message for the version `fails`.
pub struct Instance {
    pub client_id: String,
    /// (version, lane) of every config event, in order.
    pub got: Got,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Instance {
    pub async fn start(
        app: &TestApp,
        token: &str,
        key: &str,
        client_id: &str,
        fails: Option<(i64, &str)>,
    ) -> Self {
        let url = app.url(&format!(
            "/api/v1/watch?namespace={NS}&env={ENV}&keys={key}&client_id={client_id}"
        ));
        let mut stream: SseStream = sse::open(&url, token, None).await;
        let got = Arc::new(Mutex::new(Vec::new()));
        let report_url = app.url("/api/v1/report");
        let (token, key, id) = (token.to_string(), key.to_string(), client_id.to_string());
        let fails = fails.map(|(v, m)| (v, m.to_string()));
        let seen = got.clone();
        let task = tokio::spawn(async move {
            let http = reqwest::Client::new();
            while let Some(event) = stream.next_within(Duration::from_secs(3600)).await {
                if event.event != "config" {
                    continue;
                }
                let data = event.json();
                let version = data["version"].as_i64().unwrap();
                seen.lock().unwrap().push((version, data["lane"].as_i64()));
                let (status, message) = match &fails {
                    Some((v, m)) if *v == version => ("failed", Some(m.clone())),
                    _ => ("applied", None),
                };
                let r = http
                    .post(&report_url)
                    .bearer_auth(&token)
                    .json(
                        &json!({"client_id": id, "namespace": NS, "env": ENV, "key": key,
                                  "version": version, "status": status, "message": message}),
                    )
                    .send()
                    .await
                    .expect("report");
                assert_eq!(r.status(), StatusCode::NO_CONTENT);
            }
        });
        Self {
            client_id: client_id.to_string(),
            got,
            task,
        }
    }

    /// Waits until the latest version this instance got is `version`.
    pub async fn wait_for(&self, version: i64) -> Option<i64> {
        eventually(&format!("{} to get v{version}", self.client_id), || async {
            let got = self.got.lock().unwrap();
            got.last().filter(|(v, _)| *v == version).map(|(_, l)| *l)
        })
        .await
    }
}

/// Waits until every one of `ids` is listed as connected with `key` reported applied at
/// `version` (the registry wrote it).
pub async fn wait_applied(app: &TestApp, key: &str, ids: &[&str], version: i64) {
    eventually("the instances' reports to be recorded", || async {
        let (_, list) = app
            .get_json(&format!("/api/v1/namespaces/{NS}/envs/{ENV}/instances"))
            .await;
        let list = list["instances"].as_array()?.clone();
        ids.iter()
            .all(|id| {
                list.iter().any(|i| {
                    i["client_id"] == *id
                        && i["connected"] == true
                        && i["configs"][key]["applied"] == version
                })
            })
            .then_some(())
    })
    .await;
}

/// A plan body of steps `(percentage, hold_secs)` with `extra` fields merged in.
pub fn plan_body(steps: &[(f64, u32)], extra: Value) -> Value {
    let mut plan = json!({
        "steps": steps.iter().map(|(p, h)| json!({"percentage": p, "hold_secs": h})).collect::<Vec<_>>(),
    });
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            plan[k] = v;
        }
    }
    plan
}

/// The plan's history as its actions.
pub fn actions(plan: &Value) -> Vec<String> {
    plan["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["action"].as_str().unwrap().to_string())
        .collect()
}
