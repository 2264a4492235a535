//! A person and the plan: pause and resume keep the hold's time left, a restart mid-hold does
//! not start the hold again, a percentage changed by hand pauses the plan, and advancing past
//! the guards needs (and records) `force`.

use super::*;

fn secs(plan: &Value) -> u64 {
    plan["remaining_secs"].as_u64().unwrap()
}

/// How long the server's clock has run since `since` (its milliseconds).
fn elapsed(app: &TestApp, since: i64) -> Duration {
    Duration::from_millis((app.clock.now_ms() - since).max(0) as u64)
}

/// Long enough for the scheduler to act on a moved clock: several of its ticks.
const SETTLE: Duration = Duration::from_millis(1000);

#[tokio::test]
async fn pause_and_resume_keep_the_time_the_hold_had_left() {
    let app = app().await;
    config(&app, "app.json").await;
    let lane = start(
        &app,
        "app.json",
        json!({"version": 2, "plan": plan_body(&[(10.0, 4), (20.0, 1)], json!({}))}),
    )
    .await;
    let (status, paused) = app
        .post_json(
            &lane_path("app.json", &lane["id"], "/plan/pause"),
            json!({"message": "lunch"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(paused["state"], "paused");
    assert_eq!(paused["reason"], "paused by admin: lunch");
    let left = secs(&paused);
    assert!((3..=4).contains(&left), "{paused}");

    // Time passes while paused (the server's clock moves on); the hold does not.
    app.clock.advance(Duration::from_secs(5));
    tokio::time::sleep(SETTLE).await;
    let still = plan(&app, "app.json", &lane).await;
    assert_eq!(
        (still["state"].clone(), still["step"].clone()),
        (json!("paused"), json!(0))
    );
    assert_eq!(secs(&still), left);

    let resumed_at = app.clock.now_ms();
    let (status, resumed) = app
        .post_json(
            &lane_path("app.json", &lane["id"], "/plan/resume"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resumed}");
    assert_eq!(resumed["state"], "running");
    assert!(
        secs(&resumed) >= left - 1 && secs(&resumed) <= left,
        "{resumed}"
    );
    // The time left passes.
    app.clock.advance(Duration::from_secs(left));
    let advanced = wait_plan(&app, "app.json", &lane, "the plan to advance", |p| {
        p["step"] == 1
    })
    .await;
    let took = elapsed(&app, resumed_at);
    // Had the hold run on while paused, it would advance at once.
    assert!(
        took >= Duration::from_secs(left - 1) && took < Duration::from_secs(left + 3),
        "advanced {took:?} after the resume, with {left} s left"
    );
    assert_eq!(
        actions(&advanced)[..4],
        ["start", "pause", "resume", "advance"]
    );
    assert_eq!(advanced["history"][1]["actor"], "admin");
    assert_eq!(app.audit("rollout.pause").await[0]["actor"], "admin");
    assert_eq!(app.audit("rollout.resume").await[0]["actor"], "admin");

    // Pausing twice, or resuming a running plan, is a conflict.
    let (status, _) = app
        .post_json(
            &lane_path("app.json", &lane["id"], "/plan/resume"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

/// A restart in the middle of a hold keeps the step's start: the plan advances when the
/// hold ends, not a whole hold after the restart (12 s, the restart after 5 s; the server's
/// clock is moved, not waited for).
#[tokio::test]
async fn a_restart_mid_hold_resumes_with_the_time_left() {
    const HOLD: u32 = 12;
    let hold = u64::from(HOLD);
    let mut app = app().await;
    config(&app, "app.json").await;
    let created = app.clock.now_ms();
    let lane = start(
        &app,
        "app.json",
        json!({"version": 2, "plan": plan_body(&[(10.0, HOLD), (20.0, 1)], json!({}))}),
    )
    .await;
    let before = plan(&app, "app.json", &lane).await;
    // Part of the hold passes with the server up.
    app.clock.advance(Duration::from_secs(5));
    app.restart_with(|c| c.plan_tick = TICK).await;
    let restarted = app.clock.now_ms();
    let after = plan(&app, "app.json", &lane).await;
    assert_eq!(after["step_started_at"], before["step_started_at"]);
    assert_eq!(after["state"], "running");
    let left = secs(&after);
    let hold_left = hold - elapsed(&app, created).as_secs().min(hold);
    assert!(
        left <= hold_left + 1,
        "{left} s left after the restart: {after}"
    );
    // The time left passes; a hold begun anew at the restart would go on for HOLD s.
    app.clock.advance(Duration::from_secs(left));
    let advanced = wait_plan(&app, "app.json", &lane, "the plan to advance", |p| {
        p["step"] == 1
    })
    .await;
    let took = elapsed(&app, restarted);
    assert!(
        took < Duration::from_secs(hold - 1) && took < Duration::from_secs(left + 2),
        "advanced {took:?} after the restart with {left} s of the hold left"
    );
    assert!(elapsed(&app, created) >= Duration::from_secs(hold));
    assert_eq!(actions(&advanced), ["start", "advance"]);
}

#[tokio::test]
async fn changing_the_percentage_by_hand_pauses_the_plan() {
    let app = app().await;
    config(&app, "app.json").await;
    let lane = start(
        &app,
        "app.json",
        json!({"version": 2, "plan": plan_body(&[(10.0, 3600), (20.0, 60)], json!({}))}),
    )
    .await;
    // Another field alone leaves the plan running.
    let (status, body) = send(
        &app,
        Method::PATCH,
        &lane_path("app.json", &lane["id"], ""),
        Some(json!({"priority": 3})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["plan"]["state"], "running");
    let (status, body) = send(
        &app,
        Method::PATCH,
        &lane_path("app.json", &lane["id"], ""),
        Some(json!({"percentage": 30})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["percentage"], 30.0);
    assert_eq!(body["plan"]["state"], "paused");
    let paused = plan(&app, "app.json", &lane).await;
    assert_eq!(
        paused["reason"],
        "admin set the lane's percentage to 30 % by hand; the plan is paused (a person took over)"
    );
    assert_eq!(actions(&paused), ["start", "pause"]);
    let audit = app.audit("rollout.pause").await;
    assert_eq!(audit[0]["actor"], "admin");
    assert_eq!(audit[0]["details"]["reason"], paused["reason"]);
    assert_eq!(
        listed_lane(&app, "app.json", &lane).await["plan"]["state"],
        "paused"
    );
}

#[tokio::test]
async fn advancing_past_guards_needs_force_and_is_audited() {
    let app = app().await;
    config(&app, "app.json").await;
    let lane = start(
        &app,
        "app.json",
        json!({"version": 2, "plan": plan_body(&[(10.0, 3600), (20.0, 3600), (40.0, 1)],
                                               json!({"guards": [{"kind": "reports"}]}))}),
    )
    .await;
    let advance = lane_path("app.json", &lane["id"], "/plan/advance");
    let (status, body) = app.post_json(&advance, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    // Waiting for instances, or (for a moment after the step, under load) for the
    // instance writer to have stored who was served since it began.
    assert!(
        message.contains("reports guard: waiting for") && message.contains("force"),
        "{message}"
    );

    let (status, forced) = app
        .post_json(
            &advance,
            json!({"force": true, "message": "the fleet is empty at night"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{forced}");
    assert_eq!(forced["step"], 1);
    assert_eq!(forced["state"], "running");
    assert_eq!(forced["percentage"], 20.0);
    assert!(secs(&forced) > 3500, "the new step's hold starts now");
    let last = forced["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["action"], "advance");
    assert_eq!(last["actor"], "admin");
    assert_eq!(last["forced"], true);
    assert_eq!(
        listed_lane(&app, "app.json", &lane).await["percentage"],
        20.0
    );
    let audit = app.audit("rollout.advance").await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["actor"], "admin");
    assert_eq!(audit[0]["details"]["forced"], true);
    assert!(
        audit[0]["details"]["reason"]
            .as_str()
            .unwrap()
            .contains("with force, skipping the guards"),
        "{}",
        audit[0]
    );
    let events = app
        .get_json(&crate::common::config_path(
            NS,
            ENV,
            "app.json",
            "/releases",
        ))
        .await
        .1;
    assert_eq!(events[0]["kind"], "lane.update");
    assert_eq!(events[0]["actor"], "admin");

    // A paused plan advances too, and runs again at its next step.
    let (status, _) = app
        .post_json(
            &lane_path("app.json", &lane["id"], "/plan/pause"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.post_json(&advance, json!({"force": true})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["step"].clone(), body["state"].clone()),
        (json!(2), json!("running"))
    );
}
