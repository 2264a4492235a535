//! Polled guards through the scheduler: a webhook the test controls is called on its interval
//! with the lane's facts; 425 is no data, 2xx passes, and `failures` bad answers in a row abort.
//! The Prometheus guard has its own file (`prometheus.rs`).

use super::*;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A webhook on a free loopback port answering every POST with the status in `status`; the
/// bodies it got are kept.
struct Hook {
    url: String,
    status: Arc<AtomicU16>,
    calls: Arc<AtomicUsize>,
    bodies: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Hook {
    async fn start(status: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/check", listener.local_addr().unwrap());
        let status = Arc::new(AtomicU16::new(status));
        let calls = Arc::new(AtomicUsize::new(0));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let (s, c, b) = (status.clone(), calls.clone(), bodies.clone());
        let task = tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Read the head, then the body its Content-Length announces.
                let body = loop {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break None;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if body.len() >= length {
                            break Some(body.to_string());
                        }
                    }
                };
                if let Some(body) = body {
                    b.lock()
                        .unwrap()
                        .push(serde_json::from_str(&body).unwrap_or(Value::Null));
                }
                c.fetch_add(1, Ordering::SeqCst);
                let code = s.load(Ordering::SeqCst);
                let answer = format!(
                    "HTTP/1.1 {code} Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        Self {
            url,
            status,
            calls,
            bodies,
            task,
        }
    }
}

#[tokio::test]
async fn a_webhook_guard_waits_on_425_passes_on_2xx_and_aborts_after_its_failures() {
    let app = app().await;
    config(&app, "app.json").await;
    let hook = Hook::start(425).await;
    let lane = start(
        &app,
        "app.json",
        json!({"version": 2, "plan": plan_body(&[(10.0, 3600), (100.0, 1)], json!({"guards": [
            {"kind": "webhook", "url": hook.url, "interval_secs": 1, "failures": 2, "timeout_secs": 2}
        ]}))}),
    )
    .await;
    let early = wait_plan(&app, "app.json", &lane, "the hook's 425", |p| {
        p["guards"][0]["value"] == 425.0
    })
    .await;
    assert_eq!(early["guards"][0]["status"], "no_data");
    assert_eq!(early["guards"][0]["kind"], "webhook");
    assert_eq!(
        early["guards"][0]["message"],
        "webhook guard: answered 425 (too early to tell)"
    );
    let body = hook.bodies.lock().unwrap()[0].clone();
    assert_eq!(
        body,
        json!({"namespace": NS, "env": ENV, "key": "app.json", "lane": lane["id"],
               "version": 2, "step": 0, "percentage": 10.0})
    );

    hook.status.store(204, Ordering::SeqCst);
    wait_plan(&app, "app.json", &lane, "the hook to pass", |p| {
        p["guards"][0]["status"] == "passing"
    })
    .await;

    hook.status.store(503, Ordering::SeqCst);
    let calls_before = hook.calls.load(Ordering::SeqCst);
    let aborted = wait_plan(&app, "app.json", &lane, "the plan to abort", |p| {
        p["state"] == "aborted"
    })
    .await;
    assert!(hook.calls.load(Ordering::SeqCst) >= calls_before + 2);
    assert_eq!(
        aborted["reason"],
        "webhook guard: answered 503 (2 in a row, limit 2)"
    );
    assert_eq!(aborted["guards"][0]["status"], "failing");
    assert_eq!(
        listed_lane(&app, "app.json", &lane).await["status"],
        "aborted"
    );
    let audit = app.audit("rollout.abort").await;
    assert_eq!(audit[0]["actor"], "graycast");

    // The evaluations are stored as runs of identical outcomes.
    let pool = crate::common::database(&app.database_url).await;
    let runs: Vec<(String, Option<f64>, i64)> = sqlx::query_as(
        "SELECT status, value, count FROM plan_evaluations WHERE lane_id = $1 ORDER BY id",
    )
    .bind(lane["id"].as_i64().unwrap())
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    let statuses: Vec<&str> = runs.iter().map(|(s, _, _)| s.as_str()).collect();
    assert_eq!(statuses.first(), Some(&"no_data"), "{runs:?}");
    assert_eq!(statuses.last(), Some(&"failing"), "{runs:?}");
    assert!(statuses.contains(&"passing"), "{runs:?}");
}

#[tokio::test]
async fn a_failing_guard_pauses_a_plan_whose_on_failure_is_pause() {
    let app = app().await;
    config(&app, "app.json").await;
    let hook = Hook::start(500).await;
    let lane = start(
        &app,
        "app.json",
        json!({"version": 2, "plan": plan_body(&[(10.0, 1), (100.0, 1)], json!({
            "on_failure": "pause",
            "guards": [{"kind": "webhook", "url": hook.url, "interval_secs": 1, "failures": 1}]
        }))}),
    )
    .await;
    let paused = wait_plan(&app, "app.json", &lane, "the plan to pause", |p| {
        p["state"] == "paused"
    })
    .await;
    assert_eq!(
        paused["reason"],
        "webhook guard: answered 500 (1 in a row, limit 1)"
    );
    assert_eq!(paused["step"], 0);
    assert_eq!(actions(&paused), ["start", "pause"]);
    assert_eq!(paused["history"][1]["actor"], "graycast");
    let listed = listed_lane(&app, "app.json", &lane).await;
    assert_eq!(
        listed["status"], "active",
        "a pause leaves the lane as it is"
    );
    assert_eq!(listed["percentage"], 10.0);
    assert_eq!(app.audit("rollout.pause").await[0]["actor"], "graycast");

    // Resumed with the hook healthy, the plan goes on to the end.
    hook.status.store(200, Ordering::SeqCst);
    let (status, body) = app
        .post_json(
            &lane_path("app.json", &lane["id"], "/plan/resume"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let done = wait_plan(&app, "app.json", &lane, "the plan to complete", |p| {
        p["state"] == "completed"
    })
    .await;
    assert_eq!(
        actions(&done),
        ["start", "pause", "resume", "advance", "complete"]
    );
}
