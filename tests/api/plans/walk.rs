//! The scheduler on its own: a plan walks its steps and promotes, a failed report aborts at
//! once, and "no data" waits (saying why) or follows the plan's policy.

use super::*;
use crate::common::config_path;
use std::time::Instant;

async fn releases(app: &TestApp, key: &str) -> Vec<Value> {
    let (status, body) = app.get_json(&config_path(NS, ENV, key, "/releases")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

#[tokio::test]
async fn a_plan_walks_three_steps_and_promotes_with_subscribers_reporting_applied() {
    let app = app().await;
    config(&app, "app.json").await;
    let token = subscriber_token(&app).await;
    let ids = ["pod-0", "pod-1", "pod-2", "pod-3"];
    let mut fleet = Vec::new();
    for id in ids {
        fleet.push(Instance::start(&app, &token, "app.json", id, None).await);
    }
    wait_applied(&app, "app.json", &ids, 1).await;

    // pod-0 is a target, so the first (small) step serves at least it.
    let lane = start(
        &app,
        "app.json",
        json!({"version": 2, "targets": ["pod-0"], "message": "canary",
               "plan": plan_body(&[(10.0, 1), (50.0, 1), (100.0, 1)],
                                 json!({"guards": [{"kind": "reports"}], "finish": "promote"}))}),
    )
    .await;
    assert_eq!(
        lane["percentage"], 10.0,
        "the lane starts at the first step"
    );
    assert_eq!(lane["plan"]["state"], "running");
    assert_eq!(lane["plan"]["step"], 0);
    assert_eq!(lane["plan"]["steps"], 3);
    assert_eq!(fleet[0].wait_for(2).await, lane["id"].as_i64());

    let done = wait_plan(&app, "app.json", &lane, "the plan to complete", |p| {
        p["state"] == "completed"
    })
    .await;
    assert_eq!(done["step"], 2);
    assert_eq!(actions(&done), ["start", "advance", "advance", "complete"]);
    let history = done["history"].as_array().unwrap();
    assert!(
        history[1..].iter().all(|t| t["actor"] == "graycast"),
        "{done}"
    );
    assert_eq!(history[1]["percentage"], 50.0);
    assert_eq!(history[2]["percentage"], 100.0);
    assert!(
        done["reason"].as_str().unwrap().contains("promoted"),
        "{done}"
    );
    assert_eq!(done["guards"][0]["status"], "passing", "{done}");
    assert_eq!(done["guards"][0]["kind"], "reports");
    assert!(done["guards"][0]["evaluated_at"].is_string());

    // Every step was a release event by graycast; the promotion made v2 stable.
    let events = releases(&app, "app.json").await;
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .take(4)
        .map(|e| (e["kind"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("lane.promote", "graycast"),
            ("lane.update", "graycast"),
            ("lane.update", "graycast"),
            ("lane.create", "admin"),
        ]
    );
    let (_, config) = app.get_json(&config_path(NS, ENV, "app.json", "")).await;
    assert_eq!(config["stable_version"], 2);
    assert_eq!(
        listed_lane(&app, "app.json", &lane).await["status"],
        "promoted"
    );

    // Every subscriber ends on v2 (those already on it get no new event: the version they
    // resolve did not change), and applied it.
    for instance in &fleet {
        instance.wait_for(2).await;
    }
    wait_applied(&app, "app.json", &ids, 2).await;

    let advances = app.audit("rollout.advance").await;
    assert_eq!(advances.len(), 2);
    assert!(advances.iter().all(|e| e["actor"] == "graycast"));
    assert!(
        advances[0]["details"]["reason"]
            .as_str()
            .unwrap()
            .contains("step 3 of 3: 100 %"),
        "{}",
        advances[0]
    );
    let complete = app.audit("rollout.complete").await;
    assert_eq!(complete.len(), 1);
    assert_eq!(complete[0]["actor"], "graycast");
    let metrics = app
        .admin
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("graycast_rollout_transitions_total{to=\"advanced\"} 2\n"),
        "{metrics}"
    );
    assert!(metrics.contains("graycast_rollout_transitions_total{to=\"completed\"} 1\n"));
    assert!(
        metrics.contains("graycast_guard_evaluations_total{kind=\"reports\",status=\"passing\"}")
    );
    assert!(metrics.contains("graycast_rollouts_active 0\n"));
}

#[tokio::test]
async fn a_failed_report_during_a_long_hold_aborts_at_once_naming_the_instance() {
    let app = app().await;
    config(&app, "app.json").await;
    let token = subscriber_token(&app).await;
    let healthy = Instance::start(&app, &token, "app.json", "pod-1", None).await;
    wait_applied(&app, "app.json", &["pod-1"], 1).await;
    let lane = start(
        &app,
        "app.json",
        json!({"version": 2, "targets": ["pod-1", "pod-3"],
               "plan": plan_body(&[(1.0, 3600), (100.0, 3600)],
                                 json!({"guards": [{"kind": "reports"}]}))}),
    )
    .await;
    assert_eq!(healthy.wait_for(2).await, lane["id"].as_i64());
    let running = wait_plan(&app, "app.json", &lane, "the reports guard to pass", |p| {
        p["guards"][0]["status"] == "passing"
    })
    .await;
    assert_eq!(running["state"], "running");
    assert!(running["remaining_secs"].as_u64().unwrap() > 3000);

    // pod-3 joins the lane and fails to apply v2.
    let began = Instant::now();
    let broken = Instance::start(
        &app,
        &token,
        "app.json",
        "pod-3",
        Some((
            2,
            "nginx: [emerg] unknown directive \"gzip_foo\"\nmore output",
        )),
    )
    .await;
    let aborted = wait_plan(&app, "app.json", &lane, "the plan to abort", |p| {
        p["state"] == "aborted"
    })
    .await;
    let took = began.elapsed();
    assert!(took < Duration::from_secs(4), "aborting took {took:?}");
    let reason = aborted["reason"].as_str().unwrap();
    assert_eq!(
        reason,
        r#"reports guard: 1 of 2 instances failed to apply v2 (limit 0); pod-3: "nginx: [emerg] unknown directive "gzip_foo"""#
    );
    assert_eq!(aborted["guards"][0]["status"], "failing");
    assert_eq!(aborted["guards"][0]["value"], 1.0);
    assert_eq!(actions(&aborted), ["start", "abort"]);
    assert_eq!(
        listed_lane(&app, "app.json", &lane).await["status"],
        "aborted"
    );

    // The lane's subscribers fall back to the stable release.
    assert_eq!(healthy.wait_for(1).await, None);
    assert_eq!(broken.wait_for(1).await, None);
    let events = releases(&app, "app.json").await;
    assert_eq!(events[0]["kind"], "lane.abort");
    assert_eq!(events[0]["actor"], "graycast");
    assert_eq!(events[0]["message"], reason);
    let audit = app.audit("rollout.abort").await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["actor"], "graycast");
    assert_eq!(audit[0]["details"]["reason"], reason);

    // The configs list shows the aborted plan, until a newer lane starts.
    let list = format!("/api/v1/namespaces/{NS}/envs/{ENV}/configs");
    let (_, configs) = app.get_json(&list).await;
    let listed = &configs.as_array().unwrap()[0];
    assert_eq!(listed["aborted_lane"]["id"], lane["id"], "{listed}");
    assert_eq!(listed["aborted_lane"]["plan"]["state"], "aborted");
    assert_eq!(listed["aborted_lane"]["plan"]["reason"], reason);
    start(&app, "app.json", json!({"version": 2, "percentage": 1})).await;
    let (_, configs) = app.get_json(&list).await;
    assert_eq!(configs[0]["aborted_lane"], Value::Null, "{}", configs[0]);
}

#[tokio::test]
async fn without_instances_a_plan_waits_and_says_why_or_follows_its_no_data_policy() {
    let app = app().await;
    let steps = [(10.0, 1), (20.0, 1)];
    let mut lanes = Vec::new();
    for (key, policy) in [
        ("wait.json", "wait"),
        ("advance.json", "advance"),
        ("abort.json", "abort"),
    ] {
        config(&app, key).await;
        let plan = plan_body(
            &steps,
            json!({"guards": [{"kind": "reports"}], "no_data": policy}),
        );
        lanes.push((
            key,
            start(&app, key, json!({"version": 2, "plan": plan})).await,
        ));
    }

    let (key, lane) = &lanes[0];
    let waiting = wait_plan(
        &app,
        key,
        lane,
        "the hold to end and the plan to wait",
        |p| {
            p["remaining_secs"] == 0
                && p["waiting_for"]
                    .as_str()
                    .is_some_and(|w| !w.contains("holding"))
        },
    )
    .await;
    assert_eq!(waiting["state"], "running");
    assert_eq!(waiting["step"], 0);
    assert_eq!(
        waiting["waiting_for"],
        "reports guard: waiting for instances: 0 served v2 so far, 1 needed"
    );
    assert_eq!(waiting["guards"][0]["status"], "no_data");
    assert_eq!(
        listed_lane(&app, key, lane).await["plan"]["waiting_for"],
        waiting["waiting_for"]
    );

    let (key, lane) = &lanes[1];
    let advanced = wait_plan(&app, key, lane, "the plan to advance without data", |p| {
        p["state"] == "completed"
    })
    .await;
    assert_eq!(actions(&advanced), ["start", "advance", "complete"]);
    let listed = listed_lane(&app, key, lane).await;
    assert_eq!(
        listed["status"], "active",
        "finish: hold keeps the lane for a person"
    );
    assert_eq!(listed["percentage"], 20.0);

    let (key, lane) = &lanes[2];
    let aborted = wait_plan(&app, key, lane, "the plan to abort for no data", |p| {
        p["state"] == "aborted"
    })
    .await;
    assert_eq!(
        aborted["reason"],
        "no data: reports guard: waiting for instances: 0 served v2 so far, 1 needed"
    );
    assert_eq!(listed_lane(&app, key, lane).await["status"], "aborted");

    // The waiting plan still waits; nothing moved it.
    let still = plan(&app, "wait.json", &lanes[0].1).await;
    assert_eq!(
        (still["state"].clone(), still["step"].clone()),
        (json!("running"), json!(0))
    );
}
