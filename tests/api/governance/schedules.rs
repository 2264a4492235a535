//! Issue 28, point 3: scheduled changes run once, at their time (the test clock's), only if
//! approved and not stale; edits made after scheduling are not published by them.

use super::{approve, at, path, post, request, setup, stable, Setup, KEY};
use crate::common::eventually;
use graycast::server::ops::change_requests::apply_due;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

const HOUR_MS: i64 = 3_600_000;

/// Waits until request `id` has `status` (the scheduler runs on its own).
async fn ends(app: &crate::common::TestApp, id: i64, status: &str) -> Value {
    eventually(&format!("change request {id} {status}"), || async {
        let cr = request(app, id).await;
        (cr["status"] == status).then_some(cr)
    })
    .await
}

#[tokio::test]
async fn apply_at_lies_in_the_next_ninety_days() {
    let Setup { app, alice, .. } = setup(0).await;
    for (when, what) in [
        (at(&app, -60_000), "past"),
        (at(&app, 91 * 24 * HOUR_MS), "too far"),
        ("tomorrow".to_string(), "not RFC 3339"),
    ] {
        let (status, body) = post(
            &app,
            &alice,
            &path("/release"),
            json!({ "version": 2, "apply_at": when }),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
        assert_eq!(body["error"]["field"], "apply_at", "{what}: {body}");
    }
    let (status, body) = post(
        &app,
        &alice,
        &path("/change-requests"),
        json!({ "action": "release", "body": { "version": 2 }, "apply_at": at(&app, -1000) }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "apply_at", "{body}");
    let (status, body) = post(
        &app,
        &alice,
        &path("/change-requests"),
        json!({ "action": "release", "body": { "version": 2 }, "apply_at": "soon" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "apply_at", "{body}");
    let (status, body) = post(
        &app,
        &alice,
        &path("/release"),
        json!({ "version": 2, "apply_at": at(&app, 89 * 24 * HOUR_MS) }),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(stable(&app).await, 1);
}

#[tokio::test]
async fn a_scheduled_release_runs_once_at_its_time_with_the_version_it_names() {
    let Setup { app, alice, .. } = setup(0).await;
    let (status, cr) = post(
        &app,
        &alice,
        &path("/release"),
        json!({ "version": 2, "message": "night release", "apply_at": at(&app, HOUR_MS) }),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{cr}");
    assert_eq!(cr["status"], "scheduled");
    assert_eq!(cr["approvals_needed"], 0);
    let id = cr["id"].as_i64().unwrap();
    // An edit after scheduling is not what was scheduled.
    app.save("shop", "prod", KEY, "four", 3).await;
    // Before its time, a scheduler pass leaves it alone.
    apply_due(&app.core).await.unwrap();
    assert_eq!(request(&app, id).await["status"], "scheduled");
    assert_eq!(stable(&app).await, 1);

    app.clock.advance(Duration::from_millis(2 * HOUR_MS as u64));
    let cr = ends(&app, id, "applied").await;
    assert_eq!(cr["ended_by"], "graycast");
    assert_eq!(
        stable(&app).await,
        2,
        "the version it names, not the newest"
    );
    let (_, events) = super::get(&app, &app.admin, &path("/releases")).await;
    assert_eq!(events[0]["actor"], "alice");
    assert_eq!(events[0]["message"], "night release");
    assert_eq!(events[0]["change_request"], id);
    // Once: another pass changes nothing.
    apply_due(&app.core).await.unwrap();
    let (_, events_after) = super::get(&app, &app.admin, &path("/releases")).await;
    assert_eq!(events_after, events);
    assert_eq!(app.audit("change.apply").await.len(), 1);
}

#[tokio::test]
async fn a_scheduled_change_in_a_protected_environment_needs_its_approvals() {
    let Setup {
        app, alice, bob, ..
    } = setup(1).await;
    let (status, unapproved) = post(
        &app,
        &alice,
        &path("/release"),
        json!({ "version": 2, "apply_at": at(&app, HOUR_MS) }),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{unapproved}");
    assert_eq!(unapproved["approvals_needed"], 1);
    let (status, approved) = post(
        &app,
        &alice,
        &path("/lanes"),
        json!({ "version": 3, "percentage": 10, "apply_at": at(&app, 2 * HOUR_MS) }),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{approved}");
    let (unapproved, approved) = (
        unapproved["id"].as_i64().unwrap(),
        approved["id"].as_i64().unwrap(),
    );
    // The approval of a scheduled request does not apply it before its time.
    let (status, body) = post(&app, &bob, &approve(approved), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "scheduled");

    app.clock.advance(Duration::from_millis(3 * HOUR_MS as u64));
    let expired = ends(&app, unapproved, "expired").await;
    assert!(
        expired["reason"].as_str().unwrap().contains("0 of the 1"),
        "{expired}"
    );
    ends(&app, approved, "applied").await;
    assert_eq!(stable(&app).await, 1);
    let (_, lanes) = super::get(&app, &app.admin, &path("/lanes")).await;
    assert_eq!(lanes[0]["version"], 3);
    assert_eq!(lanes[0]["created_by"], "alice");
    assert_eq!(app.audit("change.expire").await.len(), 1);
}

#[tokio::test]
async fn a_scheduled_change_can_be_withdrawn_and_goes_stale_when_its_config_moved() {
    let Setup { app, alice, .. } = setup(0).await;
    let schedule = |version: i64| {
        let (app, alice) = (&app, &alice);
        async move {
            let (status, cr) = post(
                app,
                alice,
                &path("/release"),
                json!({ "version": version, "apply_at": at(app, HOUR_MS) }),
            )
            .await;
            assert_eq!(status, StatusCode::ACCEPTED, "{cr}");
            cr["id"].as_i64().unwrap()
        }
    };
    let withdrawn = schedule(2).await;
    let stale = schedule(3).await;
    let (status, body) = post(
        &app,
        &alice,
        &format!("/api/v1/change-requests/{withdrawn}/withdraw"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The stable release moves before the other one's time.
    app.release("shop", "prod", KEY, 2, "by hand").await;
    app.clock.advance(Duration::from_millis(2 * HOUR_MS as u64));
    let cr = ends(&app, stale, "stale").await;
    assert!(
        cr["reason"]
            .as_str()
            .unwrap()
            .contains("stable release moved"),
        "{cr}"
    );
    assert_eq!(request(&app, withdrawn).await["status"], "withdrawn");
    assert_eq!(stable(&app).await, 2);
}
