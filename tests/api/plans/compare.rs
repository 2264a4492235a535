//! The compare guard through the scheduler (issue 29, points 1 and 2), against the real
//! Prometheus of the test binary (`common::prometheus`) scraping an exporter with one series per
//! instance: real subscribers over SSE make the populations (the lane's served set by its
//! targets, stable's instances of the lane's selector), a lane 3× worse than stable aborts, an
//! equal lane advances, and too few instances wait as no data. And the plan editor's "test the
//! query now" (`POST /api/v1/rollout-probe/compare`): both populations' samples, for a lane being
//! started and for an existing lane, and the outbound policy applied to its queries.

use super::*;
use crate::common::prometheus::{prometheus, Gauge, METRIC};

/// Watching `key`: the lane's instances `lane-0…` and stable's `stable-0…`, and the series
/// `probe_value{test, client}` of each, set to the values given.
struct Fleet {
    _instances: Vec<Instance>,
    _gauges: Vec<Gauge>,
    lane_ids: Vec<String>,
}

async fn fleet(app: &TestApp, key: &str, test: &str, lane: &[f64], stable: &[f64]) -> Fleet {
    let p = prometheus().await;
    let token = subscriber_token(app).await;
    let mut instances = Vec::new();
    let mut gauges = Vec::new();
    let mut lane_ids = Vec::new();
    for (side, values) in [("lane", lane), ("stable", stable)] {
        for (i, value) in values.iter().enumerate() {
            let id = format!("{test}-{side}-{i}");
            gauges.push(p.gauge(test, &[("client", id.as_str())], *value));
            let instance = Instance::start(app, &token, key, &id, None).await;
            instance.wait_for(1).await;
            instances.push(instance);
            if side == "lane" {
                lane_ids.push(id);
            }
        }
    }
    Fleet {
        _instances: instances,
        _gauges: gauges,
        lane_ids,
    }
}

async fn compare_guard(test: &str, failures: u32) -> Value {
    let p = prometheus().await;
    json!({
        "kind": "compare", "url": p.url, "label": "client", "metric": "error rate",
        "query": format!(r#"{METRIC}{{test="{test}",client=~"{{{{instances}}}}"}}"#),
        "interval_secs": 1, "failures": failures,
    })
}

/// Starts the lane of v2 on the fleet's lane instances (its targets; 0.01 % of the rest),
/// with a plan of `steps` judged by the compare guard.
async fn lane(
    app: &TestApp,
    key: &str,
    fleet: &Fleet,
    steps: &[(f64, u32)],
    guard: Value,
) -> Value {
    let lane = start(
        app,
        key,
        json!({"version": 2, "targets": fleet.lane_ids,
               "plan": plan_body(steps, json!({"guards": [guard]}))}),
    )
    .await;
    lane
}

#[tokio::test]
async fn a_lane_three_times_worse_than_stable_aborts_with_the_numbers() {
    let app = app().await;
    let key = "worse.json";
    config(&app, key).await;
    prometheus().await;
    let fleet = fleet(
        &app,
        key,
        "cmp_worse",
        &[0.030, 0.031, 0.029, 0.032],
        // No ties: scipy's "auto" takes the exact distribution.
        &[0.010, 0.011, 0.009, 0.0102, 0.012, 0.0098],
    )
    .await;
    let guard = compare_guard("cmp_worse", 1).await;
    let lane = lane(&app, key, &fleet, &[(0.01, 3600), (50.0, 3600)], guard).await;
    let aborted = wait_plan(&app, key, &lane, "the abort", |p| p["state"] == "aborted").await;
    let reason = aborted["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(
            "compare guard: lane p50 error rate 0.0305 vs stable 0.0101: 3.0× worse, \
             p = 0.0048 over 4 vs 6 instances → failing"
        ),
        "{reason}"
    );
    let c = &aborted["guards"][0]["comparison"];
    assert_eq!(
        (c["lane_n"].clone(), c["baseline_n"].clone()),
        (json!(4), json!(6)),
        "{aborted}"
    );
    assert_eq!(c["verdict"], "failing");
    assert_eq!(
        c["u"], 24.0,
        "every lane value is above every stable one: U = 4 × 6"
    );
    let p_value = c["p_value"].as_f64().unwrap();
    // scipy.stats.mannwhitneyu(lane, stable, alternative="greater"): exact, 1 / C(10, 4).
    assert!((p_value - 1.0 / 210.0).abs() < 1e-12, "{p_value}");
    assert_eq!(aborted["guards"][0]["kind"], "compare");
    assert_eq!(listed_lane(&app, key, &lane).await["status"], "aborted");
}

#[tokio::test]
async fn an_equal_lane_advances_and_the_numbers_are_exported() {
    let app = app().await;
    let key = "equal.json";
    config(&app, key).await;
    let fleet = fleet(
        &app,
        key,
        "cmp_equal",
        &[0.010, 0.011, 0.009, 0.0105],
        &[0.010, 0.0098, 0.0112, 0.009, 0.0101, 0.0107],
    )
    .await;
    let guard = compare_guard("cmp_equal", 1).await;
    // The next step stays tiny: at 50 % half of stable's six instances would join the lane,
    // stable would fall below three and the guard's latest reading would have no p-value.
    let lane = lane(&app, key, &fleet, &[(0.01, 1), (0.02, 3600)], guard).await;
    let advanced = wait_plan(&app, key, &lane, "the step to complete", |p| p["step"] == 1).await;
    assert_eq!(advanced["state"], "running");
    let history = actions(&advanced);
    assert!(history.iter().any(|a| a == "advance"), "{history:?}");
    let url = app.url("/metrics");
    let id = lane["id"].as_i64().unwrap();
    let text = crate::common::eventually("the compare guard's numbers in /metrics", || {
        let url = url.clone();
        async move {
            let text = reqwest::get(url).await.ok()?.text().await.ok()?;
            text.contains(&format!(
                "graycast_compare_p_value{{lane=\"{id}\",guard=\"0\"}} "
            ))
            .then_some(text)
        }
    })
    .await;
    for family in [
        "lane_median",
        "baseline_median",
        "ratio",
        "u",
        "lane_instances",
        "baseline_instances",
    ] {
        let line = format!("graycast_compare_{family}{{lane=\"{id}\",guard=\"0\"}} ");
        assert!(text.contains(&line), "{line} in {text}");
    }
}

#[tokio::test]
async fn too_few_lane_instances_wait_as_no_data() {
    let app = app().await;
    let key = "few.json";
    config(&app, key).await;
    let fleet = fleet(
        &app,
        key,
        "cmp_few",
        &[0.5, 0.6],
        &[0.010, 0.011, 0.009, 0.010],
    )
    .await;
    let guard = compare_guard("cmp_few", 1).await;
    let lane = lane(&app, key, &fleet, &[(0.01, 1), (50.0, 3600)], guard).await;
    let waiting = wait_plan(&app, key, &lane, "no data after the hold", |p| {
        p["remaining_secs"] == 0
            && p["guards"][0]["comparison"]["lane_n"] == 2
            && p["waiting_for"]
                .as_str()
                .is_some_and(|w| w.contains("compare guard"))
    })
    .await;
    assert_eq!(
        (waiting["state"].clone(), waiting["step"].clone()),
        (json!("running"), json!(0))
    );
    let message = waiting["guards"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("lane has 2 instances, stable 4; 3 needed on each side → no data"),
        "{message}"
    );
    assert_eq!(waiting["guards"][0]["status"], "no_data");
}

const TEST: &str = "/api/v1/rollout-probe/compare";

/// `POST /api/v1/rollout-probe/compare` for `key`, with `extra` (`draft` or `lane`).
async fn test_compare(
    app: &TestApp,
    key: &str,
    guard: &Value,
    extra: Value,
) -> (StatusCode, Value) {
    let mut body = json!({"namespace": NS, "env": ENV, "key": key, "guard": guard});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    app.post_json(TEST, body).await
}

/// The client ids and values of one population of a test's answer.
fn samples(side: &Value) -> Vec<(String, f64)> {
    side["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["client_id"].as_str().unwrap().to_string(),
                s["value"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn test_the_query_now_shows_both_populations_samples_and_the_verdict() {
    let app = app().await;
    let key = "tested.json";
    config(&app, key).await;
    let lane_values = [0.030, 0.031, 0.029, 0.032];
    let stable_values = [0.010, 0.011, 0.009, 0.0102, 0.012, 0.0098];
    let fleet = fleet(&app, key, "cmp_test", &lane_values, &stable_values).await;
    let guard = compare_guard("cmp_test", 1).await;

    // A lane being started: its targets (and a sliver of the rest) against stable.
    let draft = json!({"draft": {"version": 2, "targets": fleet.lane_ids, "percentage": 0.01}});
    let answer = crate::common::eventually("both populations' samples", || async {
        let (status, answer) = test_compare(&app, key, &guard, draft.clone()).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let full = samples(&answer["lane"]).len() == 4 && samples(&answer["stable"]).len() == 6;
        full.then_some(answer)
    })
    .await;
    let lane: Vec<(String, f64)> = fleet.lane_ids.iter().cloned().zip(lane_values).collect();
    assert_eq!(samples(&answer["lane"]), lane);
    assert_eq!(
        samples(&answer["stable"])[0],
        ("cmp_test-stable-0".into(), 0.010)
    );
    assert_eq!(answer["lane"]["instances"], 4);
    assert_eq!(answer["stable"]["instances"], 6);
    assert_eq!(answer["lane"]["without_sample"], json!([]));
    assert_eq!(answer["comparison"]["verdict"], "failing");
    assert_eq!(
        (
            answer["comparison"]["lane_n"].clone(),
            answer["comparison"]["baseline_n"].clone()
        ),
        (json!(4), json!(6))
    );
    assert_eq!(
        answer["sentence"],
        "lane p50 error rate 0.0305 vs stable 0.0101: 3.0× worse, p = 0.0048 over 4 vs 6 \
         instances → failing"
    );

    // An existing lane: its served set since it started.
    let lane = start(
        &app,
        key,
        json!({"version": 2, "targets": fleet.lane_ids, "percentage": 0.01}),
    )
    .await;
    let answer = crate::common::eventually("the lane's served set", || async {
        let (status, answer) = test_compare(&app, key, &guard, json!({"lane": lane["id"]})).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        (samples(&answer["lane"]).len() == 4).then_some(answer)
    })
    .await;
    assert_eq!(samples(&answer["stable"]).len(), 6, "{answer}");

    // What is refused: a guard of another kind, no lane named, an unknown lane.
    let (status, answer) = test_compare(
        &app,
        key,
        &json!({"kind": "prometheus", "url": "http://127.0.0.1:1", "query": "up", "max": 1}),
        draft.clone(),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("guard.kind")),
        "{answer}"
    );
    let (status, answer) = test_compare(
        &app,
        key,
        &json!({"kind": "compare", "url": "http://h"}),
        draft,
    )
    .await;
    assert_eq!(
        (status, answer["error"]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("guard.query")),
        "{answer}"
    );
    let (status, answer) = test_compare(&app, key, &guard, json!({})).await;
    assert_eq!(
        (status, answer["error"]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("lane")),
        "{answer}"
    );
    let (status, _) = test_compare(&app, key, &guard, json!({"lane": 999})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn test_the_query_now_obeys_the_outbound_policy() {
    // The default policy: loopback, where this Prometheus listens, is denied.
    let app = spawn_app_with(|c| c.plan_tick = TICK).await;
    app.namespace(NS).await;
    let key = "denied.json";
    config(&app, key).await;
    let fleet = fleet(&app, key, "cmp_denied", &[0.1, 0.2, 0.3], &[0.1, 0.2, 0.3]).await;
    let guard = compare_guard("cmp_denied", 1).await;
    let draft = json!({"draft": {"version": 2, "targets": fleet.lane_ids, "percentage": 0.01}});
    let (status, answer) = test_compare(&app, key, &guard, draft).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let at = guard["url"].as_str().unwrap().trim_start_matches("http://");
    for side in ["lane", "stable"] {
        assert_eq!(answer[side]["instances"], 3, "{answer}");
        assert_eq!(answer[side]["samples"], json!([]), "{answer}");
        assert_eq!(
            answer[side]["error"],
            format!(
                "Prometheus at {at}: {}",
                graycast::server::probe::policy::DENIED
            ),
            "{answer}"
        );
    }
    assert!(answer.get("comparison").is_none(), "{answer}");
    assert_eq!(answer["sentence"], "No comparison: both queries failed.");
}
