//! Issue 28, point 4: freeze windows per environment. Widening actions are refused with 409
//! `frozen` naming the window and its end; shrinking ones go through; running plans hold at
//! their step and the hold does not count the frozen time. Time is the test clock's.

use crate::common::{config_path, spawn_app, TestApp};
use crate::plans::{self, lane_path, plan_body, start, wait_plan, NS};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const FREEZES: &str = "/api/v1/environments/prod/freezes";

/// The server clock's now plus `secs`, as RFC 3339 (UTC, milliseconds).
fn at(app: &TestApp, secs: i64) -> String {
    graycast::server::clock::timestamp(app.clock.now_ms() + secs * 1000).to_string()
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    plans::send(app, method, path, body).await
}

async fn freeze(app: &TestApp, body: Value) -> Value {
    let (status, freeze) = app.post_json(FREEZES, body).await;
    assert_eq!(status, StatusCode::CREATED, "{freeze}");
    freeze
}

/// A 409 `frozen` error body naming `reason` and ending at `until`.
fn assert_frozen(status: StatusCode, body: &Value, reason: &str, until: &str) {
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "frozen", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(reason), "names the window: {message}");
    assert!(message.contains(until), "says when it ends: {message}");
    assert_eq!(body["error"]["until"], until, "{body}");
}

/// The day of the week of the server's clock (UTC), as the API spells it, `days` ahead.
fn weekday(app: &TestApp, days: i64) -> &'static str {
    let names = [
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "monday",
        "tuesday",
        "wednesday",
    ];
    // 1970-01-01 was a Thursday.
    names[(app.clock.now_ms().div_euclid(86_400_000) + days).rem_euclid(7) as usize]
}

#[tokio::test]
async fn freeze_windows_are_created_listed_and_deleted_with_their_audit() {
    let app = spawn_app().await;
    // A zone without daylight saving time: Friday 16:00 to Monday 08:00 in Tokyo (+09:00) is
    // Friday 07:00 to Sunday 23:00 UTC, every week.
    let tokyo = freeze(
        &app,
        json!({"weekly": {"from_day": "friday", "from_time": "16:00", "to_day": "monday",
                          "to_time": "08:00", "time_zone": "asia/tokyo"},
               "reason": "  weekend  "}),
    )
    .await;
    assert_eq!(tokyo["reason"], "weekend");
    assert_eq!(tokyo["env"], "prod");
    assert_eq!(tokyo["weekly"]["time_zone"], "Asia/Tokyo");
    assert!(tokyo.get("from").is_none(), "{tokyo}");
    let next = tokyo["next"].as_array().unwrap();
    let active = tokyo["active"].as_bool().unwrap();
    assert_eq!(next.len(), if active { 4 } else { 3 }, "{tokyo}");
    for (i, o) in next.iter().enumerate() {
        let (from, to) = (o["from"].as_str().unwrap(), o["to"].as_str().unwrap());
        assert!(from.ends_with("T07:00:00.000Z"), "{o}");
        assert!(to.ends_with("T23:00:00.000Z"), "{o}");
        let (f, t) = (
            from.parse::<graycast::model::Timestamp>()
                .unwrap()
                .unix_ms(),
            to.parse::<graycast::model::Timestamp>().unwrap().unix_ms(),
        );
        assert_eq!(t - f, (2 * 24 + 16) * 3_600_000, "{o}");
        if i > 0 {
            let before = next[i - 1]["from"].as_str().unwrap();
            let before = before.parse::<graycast::model::Timestamp>().unwrap();
            assert_eq!(f - before.unix_ms(), 7 * 86_400_000);
        }
    }
    // Berlin's weekend window follows its offset: 15:00 UTC in winter, 14:00 in summer.
    let berlin = freeze(
        &app,
        json!({"weekly": {"from_day": "friday", "from_time": "16:00", "to_day": "monday",
                          "to_time": "08:00", "time_zone": "Europe/Berlin"},
               "reason": "release freeze"}),
    )
    .await;
    for o in berlin["next"].as_array().unwrap() {
        let from = o["from"].as_str().unwrap();
        assert!(
            from.ends_with("T15:00:00.000Z") || from.ends_with("T14:00:00.000Z"),
            "{o}"
        );
    }
    let (from, to) = (at(&app, 86_400), at(&app, 2 * 86_400));
    let once = freeze(&app, json!({"from": from, "to": to, "reason": "year end"})).await;
    assert_eq!(
        (once["from"].as_str(), once["to"].as_str()),
        (Some(&*from), Some(&*to))
    );
    assert_eq!(once["active"], false);
    assert_eq!(once["next"], json!([{"from": from, "to": to}]));

    let (status, list) = app.get_json(FREEZES).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&Value> = list.as_array().unwrap().iter().map(|f| &f["id"]).collect();
    assert_eq!(ids, [&tokyo["id"], &berlin["id"], &once["id"]]);
    let (status, staging) = app.get_json("/api/v1/environments/staging/freezes").await;
    assert_eq!((status, staging), (StatusCode::OK, json!([])));

    let one = format!("{FREEZES}/{}", once["id"]);
    let (status, _) = send(&app, Method::DELETE, &one, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = send(&app, Method::DELETE, &one, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = send(&app, Method::DELETE, &format!("{FREEZES}/x"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = app.get_json(FREEZES).await;
    assert_eq!(list.as_array().unwrap().len(), 2);

    let created = app.audit("freeze.create").await;
    assert_eq!(created.len(), 3);
    assert_eq!(created[0]["env"], "prod");
    assert_eq!(created[0]["details"]["reason"], "year end");
    assert_eq!(created[2]["details"]["weekly"]["time_zone"], "Asia/Tokyo");
    let deleted = app.audit("freeze.delete").await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["details"]["id"], once["id"]);
    assert_eq!(deleted[0]["actor"], "admin");
}

#[tokio::test]
async fn bad_windows_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let weekly = |k: &str, v: &str| {
        let mut w = json!({"from_day": "friday", "from_time": "16:00", "to_day": "monday",
                           "to_time": "08:00", "time_zone": "Europe/Berlin"});
        w[k] = json!(v);
        json!({"weekly": w, "reason": "r"})
    };
    let (from, to) = (at(&app, 60), at(&app, 3600));
    let cases = [
        (weekly("time_zone", "Europe/Atlantis"), "weekly.time_zone"),
        (weekly("time_zone", "+02:00"), "weekly.time_zone"),
        (weekly("from_day", "Fri"), "weekly.from_day"),
        (weekly("to_day", "funday"), "weekly.to_day"),
        (weekly("from_time", "24:00"), "weekly.from_time"),
        (weekly("to_time", "8:00"), "weekly.to_time"),
        (
            json!({"weekly": {"from_day": "monday", "from_time": "08:00", "to_day": "monday",
                           "to_time": "08:00", "time_zone": "UTC"}, "reason": "r"}),
            "weekly.to_time",
        ),
        (json!({"from": to, "to": from, "reason": "r"}), "to"),
        (json!({"from": from, "to": from, "reason": "r"}), "to"),
        (
            json!({"from": from, "to": at(&app, 367 * 86_400), "reason": "r"}),
            "to",
        ),
        (
            json!({"from": at(&app, -7200), "to": at(&app, -3600), "reason": "r"}),
            "to",
        ),
        (json!({"from": "tomorrow", "to": to, "reason": "r"}), "from"),
        (json!({"from": from, "reason": "r"}), "to"),
        (json!({"from": from, "to": to, "reason": " "}), "reason"),
        (
            json!({"from": from, "to": to, "reason": "x".repeat(201)}),
            "reason",
        ),
        (
            json!({"from": from, "to": to, "weekly": weekly("to_day", "monday")["weekly"],
                "reason": "r"}),
            "weekly",
        ),
    ];
    for (body, field) in cases {
        let (status, error) = app.post_json(FREEZES, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_eq!(error["error"]["field"], field, "{body}: {error}");
    }
    let (status, _) = app
        .post_json(
            FREEZES,
            json!({"from": from, "to": to, "reason": "r", "until": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app
        .post_json(
            "/api/v1/environments/nowhere/freezes",
            json!({"from": from, "to": to, "reason": "r"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(app.audit("freeze.create").await.is_empty());

    // At most 50 windows per environment (future ones here, so nothing is frozen).
    for i in 0..50 {
        let (from, to) = (at(&app, 86_400 + i), at(&app, 2 * 86_400 + i));
        freeze(&app, json!({"from": from, "to": to, "reason": "r"})).await;
    }
    let (status, error) = app
        .post_json(FREEZES, json!({"from": from, "to": to, "reason": "r"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    let (status, error) = app
        .post_json(
            "/api/v1/environments/staging/freezes",
            json!({"from": from, "to": to, "reason": "another environment"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{error}");
}

/// `shop/prod/app.json` with versions 1 to 3, version 2 stable (1 before it), and a lane on
/// version 3 at 10 %.
async fn released(app: &TestApp) -> Value {
    app.namespace(NS).await;
    app.config(NS, "prod", "app.json", "json", r#"{"v":1}"#)
        .await;
    app.save(NS, "prod", "app.json", r#"{"v":2}"#, 1).await;
    app.save(NS, "prod", "app.json", r#"{"v":3}"#, 2).await;
    app.release(NS, "prod", "app.json", 1, "first").await;
    app.release(NS, "prod", "app.json", 2, "second").await;
    start(app, "app.json", json!({"version": 3, "percentage": 10})).await
}

fn path(rest: &str) -> String {
    config_path(NS, "prod", "app.json", rest)
}

#[tokio::test]
async fn a_freeze_refuses_widening_actions_and_lets_shrinking_ones_through() {
    let app = spawn_app().await;
    let lane = released(&app).await;
    let until = at(&app, 3600);
    freeze(
        &app,
        json!({"from": at(&app, -60), "to": until, "reason": "year-end freeze"}),
    )
    .await;
    let (_, list) = app.get_json(FREEZES).await;
    assert_eq!(list[0]["active"], true, "{list}");
    assert_eq!(list[0]["next"][0]["to"], until.as_str());

    // A stable release of a newer version.
    let (status, body) = app
        .post_json(&path("/release"), json!({"version": 3}))
        .await;
    assert_frozen(status, &body, "year-end freeze", &until);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("UTC"),
        "the end as a wall time too: {body}"
    );
    // Starting a lane, raising its percentage, changing its selector or targets, promoting.
    let lanes = path("/lanes");
    let (status, body) = app
        .post_json(&lanes, json!({"version": 3, "percentage": 5}))
        .await;
    assert_frozen(status, &body, "year-end freeze", &until);
    let one = lane_path("app.json", &lane["id"], "");
    for change in [
        json!({"percentage": 50}),
        json!({"selector": "region=eu"}),
        json!({"targets": ["pod-1"]}),
    ] {
        let (status, body) = send(&app, Method::PATCH, &one, Some(change.clone())).await;
        assert_frozen(status, &body, "year-end freeze", &until);
    }
    let (status, body) = app
        .post_json(&lane_path("app.json", &lane["id"], "/promote"), json!({}))
        .await;
    assert_frozen(status, &body, "year-end freeze", &until);
    let (status, body) = send(
        &app,
        Method::PUT,
        &lane_path("app.json", &lane["id"], "/plan"),
        Some(json!({"plan": plan_body(&[(10.0, 60)], json!({}))})),
    )
    .await;
    assert_frozen(status, &body, "year-end freeze", &until);

    // A new priority may hand instances another lane's version: it widens, as the approvals
    // gate counts it.
    let (status, body) = send(&app, Method::PATCH, &one, Some(json!({"priority": 3}))).await;
    assert_frozen(status, &body, "year-end freeze", &until);
    // Shrinking: lowering the percentage, a rollback, an abort.
    let (status, body) = send(&app, Method::PATCH, &one, Some(json!({"percentage": 5}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .post_json(&path("/release"), json!({"version": 1, "message": "back"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["kind"], "rollback");
    // Going forward again from the rollback widens.
    let (status, body) = app
        .post_json(&path("/release"), json!({"version": 2}))
        .await;
    assert_frozen(status, &body, "year-end freeze", &until);
    let (status, body) = app
        .post_json(&lane_path("app.json", &lane["id"], "/abort"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Another environment is not frozen.
    app.config(NS, "staging", "app.json", "json", r#"{"v":1}"#)
        .await;
    app.release(NS, "staging", "app.json", 1, "").await;

    // When the window is over, releases go out again.
    app.clock.advance(Duration::from_secs(3601));
    let (_, list) = app.get_json(FREEZES).await;
    assert_eq!(
        (list[0]["active"].clone(), list[0]["next"].clone()),
        (json!(false), json!([]))
    );
    app.release(NS, "prod", "app.json", 3, "after the freeze")
        .await;
}

#[tokio::test]
async fn a_weekly_window_freezes_by_the_wall_clock_of_its_zone() {
    let app = spawn_app().await;
    released(&app).await;
    // From today 00:00 to the day after tomorrow 00:00 in UTC, so now is well inside.
    let (today, after) = (weekday(&app, 0), weekday(&app, 2));
    let body = freeze(
        &app,
        json!({"weekly": {"from_day": today, "from_time": "00:00", "to_day": after,
                          "to_time": "00:00", "time_zone": "UTC"},
               "reason": "maintenance days"}),
    )
    .await;
    assert_eq!(body["active"], true, "{body}");
    let end = body["next"][0]["to"].as_str().unwrap().to_string();
    assert!(end.ends_with("T00:00:00.000Z"), "{body}");
    let (status, error) = app
        .post_json(&path("/release"), json!({"version": 3}))
        .await;
    assert_frozen(status, &error, "maintenance days", &end);
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("00:00 UTC"), "{message}");

    // Deleting the window lifts the freeze at once.
    let (status, _) = send(
        &app,
        Method::DELETE,
        &format!("{FREEZES}/{}", body["id"]),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.release(NS, "prod", "app.json", 3, "").await;
}

/// A plan holding 10 minutes at its first step whose hold meets a 3-minute freeze advances 13
/// minutes after it started, not 10; while frozen it says so, and a person cannot advance it.
#[tokio::test]
async fn a_running_plan_holds_during_a_freeze_and_the_hold_does_not_count_it() {
    let app = plans::app().await;
    plans::config(&app, "app.json").await;
    let lane = start(
        &app,
        "app.json",
        json!({"version": 2, "plan": plan_body(&[(10.0, 600), (50.0, 600)], json!({}))}),
    )
    .await;
    // Transitions are stamped by the database; the step's start is the server clock's.
    let started = plans::plan(&app, "app.json", &lane).await["step_started_at"]
        .as_str()
        .unwrap()
        .parse::<graycast::model::Timestamp>()
        .unwrap()
        .unix_ms();
    let (from, until) = (
        graycast::server::clock::timestamp(started + 120_000).to_string(),
        graycast::server::clock::timestamp(started + 300_000).to_string(),
    );
    freeze(
        &app,
        json!({"from": from, "to": until, "reason": "peak sale"}),
    )
    .await;

    // Inside the freeze: it says it is frozen and until when.
    app.clock.advance(Duration::from_secs(150));
    let frozen = wait_plan(
        &app,
        "app.json",
        &lane,
        "the plan to say it is frozen",
        |p| {
            p["waiting_for"]
                .as_str()
                .is_some_and(|w| w.contains("frozen"))
        },
    )
    .await;
    let waiting = frozen["waiting_for"].as_str().unwrap();
    assert!(
        waiting.contains("peak sale") && waiting.contains(&until),
        "{waiting}"
    );
    assert_eq!(frozen["step"], 0);
    let (status, body) = app
        .post_json(
            &lane_path("app.json", &lane["id"], "/plan/advance"),
            json!({"force": true}),
        )
        .await;
    assert_frozen(status, &body, "peak sale", &until);
    // Pausing and resuming (shrinking, and no widening by itself) still work.
    for control in ["pause", "resume"] {
        let (status, body) = app
            .post_json(
                &lane_path("app.json", &lane["id"], &format!("/plan/{control}")),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{control}: {body}");
    }

    // Ten minutes after the start the hold has 3 minutes left: the freeze did not count.
    app.clock.advance(Duration::from_secs(455));
    let held = plans::plan(&app, "app.json", &lane).await;
    assert_eq!(held["step"], 0, "{held}");
    let left = held["remaining_secs"].as_u64().unwrap();
    assert!((170..=185).contains(&left), "{held}");
    assert!(held["waiting_for"]
        .as_str()
        .unwrap()
        .starts_with("holding at 10 %"));

    app.clock.advance(Duration::from_secs(left));
    let advanced = wait_plan(&app, "app.json", &lane, "the plan to advance", |p| {
        p["step"] == 1
    })
    .await;
    assert_eq!(
        plans::actions(&advanced),
        ["start", "pause", "resume", "advance"]
    );
    let moved = advanced["step_started_at"]
        .as_str()
        .unwrap()
        .parse::<graycast::model::Timestamp>()
        .unwrap()
        .unix_ms();
    let took = moved - started;
    assert!(
        (780_000..800_000).contains(&took),
        "advanced {took} ms after the start: 10 minutes of hold plus 3 frozen: {advanced}"
    );
}

/// Guards are still read during a freeze, and a failing one still aborts the plan.
#[tokio::test]
async fn a_failing_guard_aborts_a_frozen_plan() {
    let app = plans::app().await;
    plans::config(&app, "app.json").await;
    let lane = start(
        &app,
        "app.json",
        json!({"version": 2, "targets": ["pod-3"],
               "plan": plan_body(&[(10.0, 600), (50.0, 600)],
                                 json!({"guards": [{"kind": "reports"}]}))}),
    )
    .await;
    freeze(
        &app,
        json!({"from": at(&app, -60), "to": at(&app, 3600), "reason": "peak sale"}),
    )
    .await;
    let token = plans::subscriber_token(&app).await;
    let _broken =
        plans::Instance::start(&app, &token, "app.json", "pod-3", Some((2, "boom"))).await;
    let aborted = wait_plan(&app, "app.json", &lane, "the plan to abort", |p| {
        p["state"] == "aborted"
    })
    .await;
    assert!(
        aborted["reason"]
            .as_str()
            .unwrap()
            .contains("failed to apply v2"),
        "{aborted}"
    );
    assert_eq!(aborted["step"], 0, "{aborted}");
}
