//! A Prometheus guard through the scheduler, against the real Prometheus of the test binary
//! (`common::prometheus`): its query is substituted with the lane's facts, an empty result is
//! no data, a value within bounds lets the step complete, and `failures` values over `max` in a
//! row abort the lane.

use super::*;
use crate::common::prometheus::{prometheus, METRIC};

#[tokio::test]
async fn a_prometheus_guard_waits_on_no_data_passes_within_bounds_and_aborts_over_max() {
    let p = prometheus().await;
    let app = app().await;
    config(&app, "app.json").await;
    // Only the series of version 1 exists: the query (for the lane's version 2) is empty.
    p.gauge("plan_guard", &[("key", "app.json"), ("version", "1")], 0.01);
    let query =
        format!(r#"{METRIC}{{test="plan_guard",key="{{{{key}}}}",version="{{{{version}}}}"}}"#);
    let lane = start(
        &app,
        "app.json",
        json!({"version": 2, "plan": plan_body(&[(10.0, 1), (50.0, 3600)], json!({"guards": [
            {"kind": "prometheus", "url": p.url, "query": query, "max": 0.05,
             "interval_secs": 1, "failures": 2}
        ]}))}),
    )
    .await;

    let waiting = wait_plan(&app, "app.json", &lane, "no data after the hold", |p| {
        p["remaining_secs"] == 0
            && p["guards"][0]["status"] == "no_data"
            && p["waiting_for"]
                .as_str()
                .is_some_and(|w| w.contains("prometheus guard"))
    })
    .await;
    assert_eq!(
        (waiting["state"].clone(), waiting["step"].clone()),
        (json!("running"), json!(0))
    );
    assert_eq!(waiting["guards"][0]["kind"], "prometheus");

    // The series of version 2 appears within bounds: the step completes.
    let gauge = p.gauge("plan_guard", &[("key", "app.json"), ("version", "2")], 0.01);
    let advanced = wait_plan(&app, "app.json", &lane, "the step to complete", |p| {
        p["step"] == 1
    })
    .await;
    assert_eq!(advanced["state"], "running");
    assert_eq!(
        listed_lane(&app, "app.json", &lane).await["percentage"],
        50.0
    );
    let passing = wait_plan(&app, "app.json", &lane, "a passing reading", |p| {
        p["guards"][0]["status"] == "passing"
    })
    .await;
    assert_eq!(passing["guards"][0]["value"], 0.01);

    // Over max, during the hour-long hold: after two readings in a row the lane is aborted.
    gauge.set(0.5);
    let aborted = wait_plan(&app, "app.json", &lane, "the abort", |p| {
        p["state"] == "aborted"
    })
    .await;
    let reason = aborted["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("prometheus guard: 0.5 is above max 0.05"),
        "{reason}"
    );
    assert_eq!(aborted["guards"][0]["status"], "failing");
    assert_eq!(
        listed_lane(&app, "app.json", &lane).await["status"],
        "aborted"
    );
    let audit = app.audit("rollout.abort").await;
    assert_eq!(audit[0]["actor"], "graycast");

    // The scheduler's next turn counts the aborted plan out of the active ones.
    let url = app.url("/metrics");
    let metrics = crate::common::eventually("no active rollouts", || {
        let url = url.clone();
        async move {
            let text = reqwest::get(url).await.ok()?.text().await.ok()?;
            text.contains("graycast_rollouts_active 0\n")
                .then_some(text)
        }
    })
    .await;
    for line in [
        "graycast_rollout_transitions_total{to=\"advanced\"} 1\n",
        "graycast_rollout_transitions_total{to=\"aborted\"} 1\n",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    for status in ["no_data", "passing", "failing"] {
        let family =
            format!("graycast_guard_evaluations_total{{kind=\"prometheus\",status=\"{status}\"}} ");
        assert!(metrics.contains(&family), "{family} in {metrics}");
    }
}
