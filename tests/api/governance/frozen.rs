//! Issue 28, points 4 and 5 together: a freeze and the approvals gate are one check. An
//! admin's override passes a freeze (audited); the last approval waits for the freeze to end;
//! a scheduled change whose time comes inside a freeze waits for its end.

use super::{approve, at, path, post, request, setup, stable, Setup};
use graycast::server::ops::change_requests::apply_due;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

const HOUR_MS: i64 = 3_600_000;

/// Freezes prod from now for `hours`.
async fn freeze_prod(app: &crate::common::TestApp, hours: i64) -> Value {
    let (status, body) = app
        .post_json(
            "/api/v1/environments/prod/freezes",
            json!({ "from": at(app, -1_000), "to": at(app, hours * HOUR_MS), "reason": "year end" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

fn assert_frozen(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "frozen", "{body}");
}

#[tokio::test]
async fn an_admin_override_passes_a_freeze_and_is_audited() {
    let Setup { app, alice, .. } = setup(0).await;
    freeze_prod(&app, 2).await;
    let (status, body) = post(&app, &alice, &path("/release"), json!({ "version": 2 })).await;
    assert_frozen(status, &body);
    // A releaser cannot break glass.
    let (status, body) = post(
        &app,
        &alice,
        &path("/release"),
        json!({ "version": 2, "override": { "reason": "the fix for the outage" } }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(stable(&app).await, 1);
    let (status, body) = post(
        &app,
        &app.admin,
        &path("/release"),
        json!({ "version": 2, "override": { "reason": "the fix for the outage" } }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(stable(&app).await, 2);
    let overrides = app.audit("change.override").await;
    assert_eq!(overrides.len(), 1, "{overrides:?}");
    // A rollback shrinks: no override needed while frozen.
    let (status, body) = post(&app, &alice, &path("/release"), json!({ "version": 1 })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn the_last_approval_waits_for_the_freeze_to_end() {
    let Setup {
        app, alice, bob, ..
    } = setup(1).await;
    let (status, body) = post(&app, &alice, &path("/release"), json!({ "version": 2 })).await;
    let id = super::requested(status, &body);
    freeze_prod(&app, 2).await;
    let (status, body) = post(&app, &bob, &approve(id), json!({})).await;
    assert_frozen(status, &body);
    assert_eq!(request(&app, id).await["status"], "pending");
    assert_eq!(request(&app, id).await["approvals"], json!([]), "not kept");
    assert_eq!(stable(&app).await, 1);
    app.clock.advance(Duration::from_millis(3 * HOUR_MS as u64));
    let (status, body) = post(&app, &bob, &approve(id), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "applied");
    assert_eq!(stable(&app).await, 2);
}

#[tokio::test]
async fn a_scheduled_change_due_inside_a_freeze_waits_for_its_end() {
    let Setup { app, alice, .. } = setup(0).await;
    let (status, cr) = post(
        &app,
        &alice,
        &path("/release"),
        json!({ "version": 2, "apply_at": at(&app, HOUR_MS) }),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{cr}");
    let id = cr["id"].as_i64().unwrap();
    freeze_prod(&app, 3).await;
    // Due, but frozen: it stays scheduled.
    app.clock.advance(Duration::from_millis(2 * HOUR_MS as u64));
    apply_due(&app.core).await.unwrap();
    assert_eq!(request(&app, id).await["status"], "scheduled");
    assert_eq!(stable(&app).await, 1);
    // After the freeze, the next pass (this one or the scheduler's own) applies it.
    app.clock.advance(Duration::from_millis(2 * HOUR_MS as u64));
    apply_due(&app.core).await.unwrap();
    crate::common::eventually("the scheduled release applied", || async {
        (request(&app, id).await["status"] == "applied").then_some(())
    })
    .await;
    assert_eq!(stable(&app).await, 2);
}
