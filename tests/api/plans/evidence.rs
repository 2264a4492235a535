//! Issue 26, "No evidence, no promotion": a plan that finishes by promoting needs a reports
//! guard counting at least one instance (400 otherwise, wherever a plan is given), and it
//! promotes only once a real subscriber applied the lane's version — not on no data, not with
//! `no_data: advance`, not by a person's advance without `force`.

use super::*;
use crate::common::config_path;

const NO_EVIDENCE: &str = "a plan that finishes by promoting needs a reports guard with \
                           min_instances of at least 1";

async fn stable(app: &TestApp, key: &str) -> Value {
    let (_, config) = app.get_json(&config_path(NS, ENV, key, "")).await;
    config["stable_version"].clone()
}

#[tokio::test]
async fn a_plan_that_promotes_without_a_reports_guard_is_refused_naming_what_to_add() {
    let app = app().await;
    config(&app, "app.json").await;
    let steps = [(10.0, 0), (100.0, 0)];
    let unguarded = plan_body(&steps, json!({"finish": "promote"}));
    let uncounted = plan_body(
        &steps,
        json!({"finish": "promote", "guards": [
            {"kind": "reports", "min_instances": 0},
            {"kind": "webhook", "url": "http://127.0.0.1:9/check"}]}),
    );
    let refused = |status: StatusCode, body: &Value| {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"]["field"], "plan.guards", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(NO_EVIDENCE)
                && message.contains(r#"add {"kind":"reports"} to guards, or finish with "hold""#),
            "{message}"
        );
    };
    for plan in [&unguarded, &uncounted] {
        let (status, body) = app
            .post_json(&lanes("app.json"), json!({"version": 2, "plan": plan}))
            .await;
        refused(status, &body);
    }
    let lane = start(&app, "app.json", json!({"version": 2, "percentage": 10})).await;
    let path = lane_path("app.json", &lane["id"], "/plan");
    for plan in [&unguarded, &uncounted] {
        let (status, body) = send(&app, Method::PUT, &path, Some(json!({ "plan": plan }))).await;
        refused(status, &body);
    }
    for plan in [&unguarded, &uncounted] {
        let (status, body) = app
            .post_json(
                "/api/v1/rollout-templates?env=prod",
                json!({"name": "reckless", "plan": plan}),
            )
            .await;
        refused(status, &body);
    }
    // Nothing was started or kept by the refusals.
    let (status, _) = app.get_json(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the lane has no plan");
    let (_, listed) = app.get_json(&lanes("app.json")).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let (_, templates) = app.get_json("/api/v1/rollout-templates?env=prod").await;
    assert_eq!(templates["templates"].as_array().unwrap().len(), 2);

    // The same plans hold the lane for a person, or promote with the reports guard.
    let holding = plan_body(&steps, json!({"finish": "hold"}));
    let (status, body) = send(&app, Method::PUT, &path, Some(json!({ "plan": holding }))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let guarded = plan_body(
        &steps,
        json!({"finish": "promote", "guards": [{"kind": "reports"}]}),
    );
    let (status, body) = app
        .post_json(
            "/api/v1/rollout-templates?env=prod",
            json!({"name": "careful", "plan": guarded}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn no_data_advance_never_promotes_and_a_real_subscriber_applying_the_version_does() {
    let app = app().await;
    config(&app, "app.json").await;
    // `no_data: advance` widens the lane to its last step without anyone in it …
    let lane = start(
        &app,
        "app.json",
        json!({"version": 2, "targets": ["pod-1"],
               "plan": plan_body(&[(10.0, 0), (100.0, 0)], json!({
                   "guards": [{"kind": "reports"}], "no_data": "advance", "finish": "promote"}))}),
    )
    .await;
    // (Right after the widening it waits for the new slice to be served, then for instances.)
    let waiting = wait_plan(
        &app,
        "app.json",
        &lane,
        "the plan to wait for evidence",
        |p| {
            p["waiting_for"]
                == "evidence to promote: reports guard: waiting for instances: 0 served v2 so \
                    far, 1 needed (no_data: advance never promotes)"
        },
    )
    .await;
    // … and there it waits: still running on the last step, the lane active, v1 stable.
    assert_eq!(waiting["state"], "running");
    assert_eq!(waiting["step"], 1);
    assert_eq!(actions(&waiting), ["start", "advance"]);
    let listed = listed_lane(&app, "app.json", &lane).await;
    assert_eq!(
        (listed["status"].clone(), listed["percentage"].clone()),
        (json!("active"), json!(100.0))
    );
    assert_eq!(listed["plan"]["waiting_for"], waiting["waiting_for"]);
    assert_eq!(stable(&app, "app.json").await, 1);
    assert!(app.audit("rollout.complete").await.is_empty());

    // A subscriber connects over TCP, gets v2 from the lane and reports it applied: that is
    // the evidence, and the plan promotes.
    let token = subscriber_token(&app).await;
    let pod = Instance::start(&app, &token, "app.json", "pod-1", None).await;
    assert_eq!(pod.wait_for(2).await, lane["id"].as_i64());
    let done = wait_plan(&app, "app.json", &lane, "the plan to promote", |p| {
        p["state"] == "completed"
    })
    .await;
    assert_eq!(actions(&done), ["start", "advance", "complete"]);
    assert!(
        done["reason"].as_str().unwrap().contains("promoted"),
        "{done}"
    );
    assert_eq!(
        done["guards"][0]["message"],
        "reports guard: 1 of 1 instances applied v2"
    );
    assert_eq!(stable(&app, "app.json").await, 2);
    assert_eq!(
        listed_lane(&app, "app.json", &lane).await["status"],
        "promoted"
    );
    let complete = app.audit("rollout.complete").await;
    assert_eq!(complete[0]["actor"], "graycast");
    assert_eq!(complete[0]["details"]["forced"], false);
}

#[tokio::test]
async fn a_passing_guard_without_applied_instances_never_promotes_nor_advances_without_force() {
    let app = app().await;
    config(&app, "app.json").await;
    // This reports guard passes with 1 instance served even if none applied: no evidence.
    let lane = start(
        &app,
        "app.json",
        json!({"version": 2, "targets": ["pod-1"],
               "plan": plan_body(&[(100.0, 0)], json!({"finish": "promote",
                   "guards": [{"kind": "reports", "min_applied_ratio": 0}]}))}),
    )
    .await;
    // A subscriber that watches over TCP but never reports.
    let token = subscriber_token(&app).await;
    let url = app.url(&format!(
        "/api/v1/watch?namespace={NS}&env={ENV}&keys=app.json&client_id=pod-1"
    ));
    let mut silent = sse::open(&url, &token, None).await;
    let event = silent.next_event().await;
    assert_eq!(event.json()["version"], 2);
    let waiting = wait_plan(
        &app,
        "app.json",
        &lane,
        "the plan to wait for evidence",
        |p| {
            p["waiting_for"]
                == "evidence to promote: reports guard: 0 of 1 instances applied v2; at least 1 \
                    must have applied it"
        },
    )
    .await;
    assert_eq!(waiting["guards"][0]["status"], "passing");
    assert_eq!(waiting["state"], "running");
    assert_eq!(stable(&app, "app.json").await, 1);

    // A person's advance past the last step needs the evidence too.
    let advance = lane_path("app.json", &lane["id"], "/plan/advance");
    let (status, body) = app.post_json(&advance, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        body["error"]["message"],
        "advancing past the last step promotes the lane, and there is no evidence to promote \
         yet (reports guard: 0 of 1 instances applied v2; at least 1 must have applied it); \
         advance with force to promote without it"
    );
    assert_eq!(plan(&app, "app.json", &lane).await["state"], "running");
    assert_eq!(stable(&app, "app.json").await, 1);

    // `force` is the audited way around it.
    let (status, forced) = app
        .post_json(
            &advance,
            json!({"force": true, "message": "verified by hand on pod-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{forced}");
    assert_eq!(forced["state"], "completed");
    let last = forced["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (
            last["action"].clone(),
            last["actor"].clone(),
            last["forced"].clone()
        ),
        (json!("complete"), json!("admin"), json!(true))
    );
    assert_eq!(stable(&app, "app.json").await, 2);
    let audit = app.audit("rollout.complete").await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["actor"], "admin");
    assert_eq!(audit[0]["details"]["forced"], true);
    assert!(
        audit[0]["details"]["reason"].as_str().unwrap().contains(
            "advanced by admin: verified by hand on pod-1 with force, skipping the guards"
        ),
        "{}",
        audit[0]
    );
    let (_, events) = app
        .get_json(&config_path(NS, ENV, "app.json", "/releases"))
        .await;
    assert_eq!(
        (events[0]["kind"].clone(), events[0]["actor"].clone()),
        (json!("lane.promote"), json!("admin"))
    );
}
