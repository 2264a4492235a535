//! Issue 6: Prometheus metrics at /metrics, from the real server.

use crate::common::sse::{self, PATIENCE};
use crate::common::{spawn_app, TestApp};
use reqwest::StatusCode;
use std::time::Duration;

async fn metrics(app: &TestApp) -> String {
    let r = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "no credentials needed");
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    r.text().await.unwrap()
}

/// The value of the sample named exactly `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn wait_for_sample(app: &TestApp, series: &str, done: impl Fn(f64) -> bool) -> f64 {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let text = metrics(app).await;
        if let Some(value) = sample(&text, series).filter(|v| done(*v)) {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{series} never got there:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn metrics_expose_the_families_and_move_with_the_traffic() {
    let app = spawn_app().await;
    let text = metrics(&app).await;
    for family in [
        "# TYPE graycast_subscribers gauge",
        "# TYPE graycast_push_events_total counter",
        "# TYPE graycast_push_latency_seconds histogram",
        "# TYPE graycast_releases_total counter",
        "# TYPE graycast_http_requests_total counter",
        "# TYPE graycast_http_request_duration_seconds histogram",
    ] {
        assert!(text.contains(family), "{family} in\n{text}");
    }
    assert_eq!(sample(&text, "graycast_subscribers"), Some(0.0));
    assert_eq!(sample(&text, "graycast_push_events_total"), Some(0.0));

    app.namespace("shop").await;
    app.config("shop", "prod", "app.json", "json", "{}").await;
    app.save("shop", "prod", "app.json", "[]", 1).await;
    app.release("shop", "prod", "app.json", 1, "").await;
    // The catalog takes the release in the dispatcher's next step.
    wait_for_sample(&app, "graycast_catalog_configs", |v| v == 1.0).await;
    let text = metrics(&app).await;
    assert_eq!(
        sample(&text, "graycast_catalog_content_bytes"),
        Some(2.0),
        "`{{}}`"
    );
    assert!(sample(&text, "process_resident_memory_bytes").is_some_and(|b| b > 1e6));
    let token = app.token("watcher", "subscriber", Some("shop"), None).await;
    let url = app.url("/api/v1/watch?namespace=shop&env=prod&client_id=pod-1");
    let mut stream = sse::open(&url, &token, None).await;
    stream.next_event().await;
    assert_eq!(
        sample(&metrics(&app).await, "graycast_subscribers"),
        Some(1.0)
    );

    app.release("shop", "prod", "app.json", 2, "").await;
    app.release("shop", "prod", "app.json", 1, "back").await;
    stream.next_event().await;
    stream.next_event().await;
    let text = metrics(&app).await;
    assert_eq!(
        sample(&text, "graycast_push_events_total"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "graycast_push_latency_seconds_count"),
        Some(2.0),
        "connect-time events have no release to measure from"
    );
    assert_eq!(
        sample(&text, "graycast_push_latency_seconds_bucket{le=\"+Inf\"}"),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, "graycast_releases_total{kind=\"stable\"}"),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, "graycast_releases_total{kind=\"rollback\"}"),
        Some(1.0)
    );
    // Route templates, not raw paths.
    let release =
        "method=\"POST\",route=\"/api/v1/namespaces/{ns}/envs/{env}/configs/{key}/release\"";
    assert_eq!(
        sample(
            &text,
            &format!("graycast_http_requests_total{{{release},status=\"201\"}}")
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("graycast_http_request_duration_seconds_count{{{release}}}")
        ),
        Some(3.0)
    );
    assert!(sample(
        &text,
        "graycast_http_requests_total{method=\"GET\",route=\"/api/v1/watch\",status=\"200\"}"
    )
    .is_some());
    assert!(!text.contains("configs/app.json"), "no raw paths as labels");

    drop(stream);
    wait_for_sample(&app, "graycast_subscribers", |v| v == 0.0).await;
}

#[tokio::test]
async fn made_up_methods_share_one_label() {
    let app = spawn_app().await;
    let c = reqwest::Client::new();
    for n in 0..50 {
        let method = format!("M{n}{}", "X".repeat(1024));
        let r = c
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                app.url("/healthz"),
            )
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{}", r.status());
    }
    let text = metrics(&app).await;
    assert!(!text.contains("XXXX"), "no client-made method as a label");
    let other: f64 = text
        .lines()
        .filter(|l| l.starts_with("graycast_http_requests_total{method=\"other\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(other, 50.0, "{text}");
    assert!(text.len() < 64 * 1024, "{} bytes", text.len());
}
