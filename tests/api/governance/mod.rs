//! Issue 28 (server half of points 1, 2, 3, 5 and 7): protected environments, change requests
//! bound to what was approved, scheduled changes, break glass, limits and audit.
//!
//! The author of a request approving it, an admin approving one, and a token approving one
//! answer 403 (`forbidden`): four eyes are two people, and the rule is about who calls, not
//! about the request's state (which answers 409).

mod dashboard;
mod frozen;
mod overrides;
mod schedules;

use crate::common::{config_path, spawn_app, TestApp};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

/// The config every test works on.
pub const KEY: &str = "app.txt";

pub fn at(app: &TestApp, ahead_ms: i64) -> String {
    graycast::model::Timestamp::from_unix_ms(app.clock.now_ms() + ahead_ms)
        .unwrap()
        .to_string()
}

pub fn path(rest: &str) -> String {
    config_path("shop", "prod", KEY, rest)
}

/// Sends `body` (none when `Null`) as `c`: the status and the JSON body.
pub async fn call(
    app: &TestApp,
    c: &Client,
    method: Method,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let mut request = c.request(method, app.url(path));
    if !body.is_null() {
        request = request.json(&body);
    }
    let r = request.send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub async fn post(app: &TestApp, c: &Client, path: &str, body: Value) -> (StatusCode, Value) {
    call(app, c, Method::POST, path, body).await
}

pub async fn get(app: &TestApp, c: &Client, path: &str) -> (StatusCode, Value) {
    call(app, c, Method::GET, path, Value::Null).await
}

/// A shop/prod config with v1 released and v2 and v3 saved; the releasers alice, bob and
/// carol; prod protected with `approvals` (0: unprotected).
pub struct Setup {
    pub app: TestApp,
    pub alice: Client,
    pub bob: Client,
    pub carol: Client,
}

pub async fn setup(approvals: i64) -> Setup {
    let app = spawn_app().await;
    app.namespace("shop").await;
    app.config("shop", "prod", KEY, "text", "one").await;
    app.release("shop", "prod", KEY, 1, "first").await;
    app.save("shop", "prod", KEY, "two", 1).await;
    app.save("shop", "prod", KEY, "three", 2).await;
    let alice = app.user("alice", "releaser", None).await;
    let bob = app.user("bob", "releaser", None).await;
    let carol = app.user("carol", "releaser", None).await;
    protect(&app, approvals).await;
    Setup {
        app,
        alice,
        bob,
        carol,
    }
}

pub async fn protect(app: &TestApp, approvals: i64) {
    let (status, body) = call(
        app,
        &app.admin,
        Method::PUT,
        "/api/v1/environments/prod/protection",
        json!({ "approvals": approvals }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The id of the change request a refused widening action made (409 `approval_required`).
pub fn requested(status: StatusCode, body: &Value) -> i64 {
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "approval_required", "{body}");
    body["error"]["change_request"]
        .as_i64()
        .unwrap_or_else(|| panic!("no change request id: {body}"))
}

pub async fn request(app: &TestApp, id: i64) -> Value {
    let (status, body) = get(app, &app.admin, &format!("/api/v1/change-requests/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

pub async fn stable(app: &TestApp) -> i64 {
    let (status, config) = get(app, &app.admin, &path("")).await;
    assert_eq!(status, StatusCode::OK, "{config}");
    config["stable_version"].as_i64().unwrap()
}

pub fn approve(id: i64) -> String {
    format!("/api/v1/change-requests/{id}/approve")
}

#[tokio::test]
async fn protection_is_read_by_viewers_and_set_by_admins() {
    let Setup { app, alice, .. } = setup(2).await;
    let (status, body) = get(&app, &alice, "/api/v1/environments/prod/protection").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({ "approvals": 2, "self_approval": false }));
    let (status, _) = call(
        &app,
        &alice,
        Method::PUT,
        "/api/v1/environments/prod/protection",
        json!({ "approvals": 0 }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for bad in [
        json!({ "approvals": -1 }),
        json!({ "approvals": 2, "self_approval": true }),
    ] {
        let (status, body) = call(
            &app,
            &app.admin,
            Method::PUT,
            "/api/v1/environments/prod/protection",
            bad,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    let entries = app.audit("protection.set").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["details"]["approvals"], 2);
    // 0 lifts it: a release goes through at once.
    protect(&app, 0).await;
    let (status, body) = post(&app, &alice, &path("/release"), json!({ "version": 2 })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn a_protected_release_is_applied_by_the_last_approval_as_its_author() {
    let Setup {
        app,
        alice,
        bob,
        carol,
    } = setup(2).await;
    let (status, body) = post(
        &app,
        &alice,
        &path("/release"),
        json!({ "version": 2, "message": "bigger pool" }),
    )
    .await;
    let id = requested(status, &body);
    assert_eq!(stable(&app).await, 1, "nothing went live");
    let cr = request(&app, id).await;
    assert_eq!(cr["status"], "pending");
    assert_eq!(cr["action"], "release");
    assert_eq!(cr["body"]["version"], 2);
    assert_eq!(cr["author"], "alice");
    assert_eq!(cr["approvals_needed"], 2);
    assert_eq!(cr["diff"]["from"], 1);
    assert_eq!(cr["diff"]["to"], 2);
    assert_eq!(cr["diff"]["diff"]["added"], 1);
    assert_eq!(cr["snapshot"]["stable_version"], 1);

    // The author never approves; nor does an admin.
    let (status, body) = post(&app, &alice, &approve(id), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = post(&app, &app.admin, &approve(id), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let (status, body) = post(&app, &bob, &approve(id), json!({ "comment": "ok" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "pending");
    assert_eq!(body["approvals"][0]["approver"], "bob");
    assert_eq!(body["approvals"][0]["comment"], "ok");
    let (status, body) = post(&app, &bob, &approve(id), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "twice: {body}");
    assert_eq!(stable(&app).await, 1);

    let (status, body) = post(&app, &carol, &approve(id), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "applied");
    assert_eq!(stable(&app).await, 2);

    // Applied as the author, with the approvers in the release event and the audit trail.
    let (_, events) = get(&app, &app.admin, &path("/releases")).await;
    let event = &events[0];
    assert_eq!(event["kind"], "stable");
    assert_eq!(event["version"], 2);
    assert_eq!(event["actor"], "alice");
    assert_eq!(event["message"], "bigger pool");
    assert_eq!(event["change_request"], id);
    assert_eq!(event["approved_by"], json!(["bob", "carol"]));
    assert_eq!(body["release_event"], event["id"]);
    let released = app.audit("release.stable").await;
    assert_eq!(released[0]["actor"], "alice");
    let applied = app.audit("change.apply").await;
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0]["actor"], "alice");
    assert_eq!(
        applied[0]["details"]["approved_by"],
        json!(["bob", "carol"])
    );
    assert_eq!(applied[0]["details"]["applied_by"], "carol");
    assert_eq!(app.audit("change.request").await.len(), 1);
    assert_eq!(app.audit("change.approve").await.len(), 2);

    // Ended: no more approvals.
    let (status, _) = post(&app, &bob, &approve(id), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn lane_actions_wait_for_approval_in_a_protected_environment() {
    let Setup {
        app, alice, bob, ..
    } = setup(1).await;
    let (status, body) = post(
        &app,
        &alice,
        &path("/lanes"),
        json!({ "version": 2, "percentage": 10, "selector": "region = eu" }),
    )
    .await;
    let id = requested(status, &body);
    let cr = request(&app, id).await;
    assert_eq!(cr["action"], "lane.create");
    assert_eq!(cr["preview"]["connected_count"], 0);
    let (status, body) = post(&app, &bob, &approve(id), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "applied");
    let (_, lanes) = get(&app, &app.admin, &path("/lanes")).await;
    let lane = &lanes[0];
    assert_eq!(lane["created_by"], "alice");
    assert_eq!(lane["percentage"], 10.0);
    let lane_id = lane["id"].as_i64().unwrap();

    // Raising the percentage and changing the selector wait; lowering does not.
    for change in [json!({ "percentage": 50 }), json!({ "selector": "" })] {
        let (status, body) = call(
            &app,
            &alice,
            Method::PATCH,
            &path(&format!("/lanes/{lane_id}")),
            change,
        )
        .await;
        requested(status, &body);
    }
    let (status, body) = call(
        &app,
        &alice,
        Method::PATCH,
        &path(&format!("/lanes/{lane_id}")),
        json!({ "percentage": 5 }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["percentage"], 5.0);

    // Promoting waits, and the approved promotion makes v2 stable.
    let (status, body) = post(
        &app,
        &alice,
        &path(&format!("/lanes/{lane_id}/promote")),
        json!({}),
    )
    .await;
    let promote = requested(status, &body);
    // The two lane updates above are stale now (the lane went to 5 %): only the promotion
    // was made after that.
    let (status, body) = post(&app, &bob, &approve(promote), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "applied");
    assert_eq!(stable(&app).await, 2);
    let (_, events) = get(&app, &app.admin, &path("/releases")).await;
    assert_eq!(events[0]["kind"], "lane.promote");
    assert_eq!(events[0]["actor"], "alice");
    assert_eq!(events[0]["approved_by"], json!(["bob"]));
}

#[tokio::test]
async fn shrinking_actions_never_wait() {
    let Setup {
        app, alice, bob, ..
    } = setup(0).await;
    app.release("shop", "prod", KEY, 2, "").await;
    let (status, lane) = post(
        &app,
        &alice,
        &path("/lanes"),
        json!({ "version": 3, "percentage": 50 }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{lane}");
    let (status, planned) = post(
        &app,
        &alice,
        &path("/lanes"),
        json!({ "version": 3, "plan": {"steps": [{"percentage": 10, "hold_secs": 3600},
                                                   {"percentage": 50, "hold_secs": 3600}]} }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{planned}");
    protect(&app, 1).await;
    let lane = lane["id"].as_i64().unwrap();
    let planned = planned["id"].as_i64().unwrap();

    let (status, body) = call(
        &app,
        &bob,
        Method::PATCH,
        &path(&format!("/lanes/{lane}")),
        json!({ "percentage": 20 }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "lowering: {body}");
    let (status, body) = post(
        &app,
        &bob,
        &path(&format!("/lanes/{planned}/plan/pause")),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "pausing: {body}");
    let (status, body) = post(
        &app,
        &bob,
        &path(&format!("/lanes/{lane}/abort")),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "aborting: {body}");
    // Back to v1, which was stable before.
    let (status, body) = post(&app, &bob, &path("/release"), json!({ "version": 1 })).await;
    assert_eq!(status, StatusCode::CREATED, "rolling back: {body}");
    assert_eq!(body["kind"], "rollback");
    // Releasing v2 again is newer than the stable v1: it waits.
    let (status, body) = post(&app, &bob, &path("/release"), json!({ "version": 2 })).await;
    requested(status, &body);
    assert_eq!(stable(&app).await, 1);
    assert!(app.audit("change.request").await.len() == 1);
}

#[tokio::test]
async fn an_approval_is_bound_to_what_was_approved() {
    let Setup {
        app,
        alice,
        bob,
        carol,
    } = setup(0).await;
    app.release("shop", "prod", KEY, 2, "").await;
    protect(&app, 1).await;
    let (status, body) = post(&app, &alice, &path("/release"), json!({ "version": 3 })).await;
    let id = requested(status, &body);
    // The stable release moves (a rollback to v1 does not wait).
    let (status, body) = post(&app, &bob, &path("/release"), json!({ "version": 1 })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = post(&app, &carol, &approve(id), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "stale", "{body}");
    assert_eq!(body["error"]["change_request"], id);
    assert_eq!(stable(&app).await, 1, "nothing went live");
    let cr = request(&app, id).await;
    assert_eq!(cr["status"], "stale");
    let reason = cr["reason"].as_str().unwrap();
    assert!(
        reason.contains("stable release moved from v2 to v1"),
        "{reason}"
    );
    let stale = app.audit("change.stale").await;
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0]["details"]["change_request"], id);
    // A lane started meanwhile makes a request stale too.
    let (status, body) = post(&app, &alice, &path("/release"), json!({ "version": 3 })).await;
    let second = requested(status, &body);
    let (status, body) = post(
        &app,
        &app.admin,
        &path("/lanes"),
        json!({ "version": 2, "percentage": 1, "override": { "reason": "hotfix for the outage" } }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = post(&app, &carol, &approve(second), json!({})).await;
    assert_eq!(body["error"]["code"], "stale", "{status} {body}");
    assert!(request(&app, second).await["reason"]
        .as_str()
        .unwrap()
        .contains("lanes changed"));
}

#[tokio::test]
async fn requests_are_rejected_with_a_comment_and_withdrawn_by_their_author() {
    let Setup {
        app, alice, bob, ..
    } = setup(1).await;
    let editor = app.user("ed", "editor", None).await;
    // An editor may ask; the request names a version number, never "latest".
    let (status, body) = post(
        &app,
        &editor,
        &path("/change-requests"),
        json!({ "action": "release", "body": { "version": "latest" } }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, cr) = post(
        &app,
        &editor,
        &path("/change-requests"),
        json!({ "action": "release", "body": { "version": 2 }, "message": "please" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{cr}");
    assert_eq!(cr["status"], "pending");
    assert_eq!(cr["message"], "please");
    let id = cr["id"].as_i64().unwrap();
    let reject = format!("/api/v1/change-requests/{id}/reject");
    let (status, body) = post(&app, &bob, &reject, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "comment");
    let (status, body) = post(&app, &bob, &reject, json!({ "comment": "x".repeat(2001) })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = post(&app, &editor, &reject, json!({ "comment": "no" })).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an editor does not reject: {body}"
    );
    let (status, body) = post(
        &app,
        &bob,
        &reject,
        json!({ "comment": "not before the sale" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "rejected");
    assert_eq!(body["reason"], "not before the sale");
    assert_eq!(body["ended_by"], "bob");
    let (status, body) = post(&app, &alice, &approve(id), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(stable(&app).await, 1);
    assert_eq!(app.audit("change.reject").await.len(), 1);

    let (status, body) = post(&app, &alice, &path("/release"), json!({ "version": 2 })).await;
    let second = requested(status, &body);
    let withdraw = format!("/api/v1/change-requests/{second}/withdraw");
    let (status, body) = post(&app, &bob, &withdraw, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = post(
        &app,
        &alice,
        &withdraw,
        json!({ "comment": "wrong version" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "withdrawn");
    assert_eq!(app.audit("change.withdraw").await.len(), 1);

    // The list filters by status and author, newest first, a page at a time.
    let (status, page) = get(
        &app,
        &bob,
        "/api/v1/change-requests?env=prod&status=rejected",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let ids: Vec<i64> = page["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [id]);
    let (_, page) = get(&app, &bob, "/api/v1/change-requests?author=alice").await;
    assert_eq!(page["requests"].as_array().unwrap().len(), 1);
    let (_, page) = get(&app, &bob, "/api/v1/change-requests?limit=1").await;
    assert_eq!(page["requests"][0]["id"], second);
    assert_eq!(page["next_before"], second);
    let (_, page) = get(
        &app,
        &bob,
        &format!("/api/v1/change-requests?before={second}"),
    )
    .await;
    assert_eq!(page["requests"][0]["id"], id);
    assert_eq!(page["next_before"], Value::Null);
    let (status, _) = get(&app, &bob, "/api/v1/change-requests?status=maybe").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn limited_users_and_tokens_see_and_act_only_inside_their_limits() {
    let Setup {
        app, alice, bob, ..
    } = setup(1).await;
    let (status, body) = post(&app, &alice, &path("/release"), json!({ "version": 2 })).await;
    let prod = requested(status, &body);
    let stella = app.user("stella", "releaser", Some("staging")).await;
    app.config("shop", "staging", KEY, "text", "one").await;
    let (status, staged) = post(
        &app,
        &stella,
        &config_path("shop", "staging", KEY, "/change-requests"),
        json!({ "action": "release", "body": { "version": 1 } }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{staged}");
    let (_, page) = get(&app, &stella, "/api/v1/change-requests").await;
    let seen: Vec<&Value> = page["requests"].as_array().unwrap().iter().collect();
    assert_eq!(seen.len(), 1, "{page}");
    assert_eq!(seen[0]["env"], "staging");
    let (status, _) = get(&app, &stella, "/api/v1/change-requests?env=prod").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = get(&app, &stella, &format!("/api/v1/change-requests/{prod}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = post(&app, &stella, &approve(prod), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = post(
        &app,
        &stella,
        &path("/change-requests"),
        json!({ "action": "release", "body": { "version": 2 } }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = get(&app, &stella, "/api/v1/environments/prod/protection").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A token limited to another namespace sees none of shop's; a token never approves.
    let other = app.token("t-other", "releaser", Some("other"), None).await;
    let r = app.get_with(&other, "/api/v1/change-requests").await;
    assert_eq!(r.status(), StatusCode::OK);
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["requests"], json!([]));
    let r = app
        .get_with(&other, &format!("/api/v1/change-requests/{prod}"))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let releaser = app.token("t-releaser", "releaser", None, None).await;
    let r = app.post_with(&releaser, &approve(prod), json!({})).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (status, body) = post(&app, &bob, &approve(prod), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "applied");
}

#[tokio::test]
async fn attaching_a_plan_waits_and_runs_once_approved() {
    let Setup {
        app, alice, bob, ..
    } = setup(0).await;
    let (status, lane) = post(
        &app,
        &alice,
        &path("/lanes"),
        json!({ "version": 2, "percentage": 1 }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{lane}");
    protect(&app, 1).await;
    let plan = format!("/lanes/{}/plan", lane["id"]);
    let steps = json!({"steps": [{"percentage": 10, "hold_secs": 3600},
                                 {"percentage": 50, "hold_secs": 3600}]});
    let (status, body) = call(
        &app,
        &alice,
        Method::PUT,
        &path(&plan),
        json!({ "plan": steps, "message": "slowly" }),
    )
    .await;
    let id = requested(status, &body);
    let cr = request(&app, id).await;
    assert_eq!(cr["action"], "plan.attach");
    assert_eq!(cr["plan"]["steps"][0]["percentage"], 10.0);
    let (status, _) = get(&app, &alice, &path(&plan)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no plan yet");
    let (status, body) = post(&app, &bob, &approve(id), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "applied");
    let (status, running) = get(&app, &alice, &path(&plan)).await;
    assert_eq!(status, StatusCode::OK, "{running}");
    assert_eq!(running["state"], "running");
    let (_, events) = get(&app, &app.admin, &path("/releases")).await;
    assert_eq!(events[0]["kind"], "lane.update");
    assert_eq!(events[0]["actor"], "alice");
    assert_eq!(events[0]["approved_by"], json!(["bob"]));
}
