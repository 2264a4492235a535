//! Issue 28, point 5: break glass. An admin applies a protected action, or a request, at once
//! with a reason; it is audited and stays unreviewed until another releaser reviews it.

use super::{get, path, post, request, requested, setup, stable, Setup};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn an_admin_breaks_glass_with_a_reason_and_another_releaser_reviews_it() {
    let Setup {
        app, alice, bob, ..
    } = setup(2).await;
    let (status, body) = post(
        &app,
        &app.admin,
        &path("/release"),
        json!({ "version": 2, "override": { "reason": "too short" } }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "override");
    let (status, body) = post(
        &app,
        &alice,
        &path("/release"),
        json!({ "version": 2, "override": { "reason": "the outage needs v2 now" } }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only admins: {body}");
    let (status, body) = post(
        &app,
        &app.admin,
        &path("/release"),
        json!({ "version": 2, "override": { "reason": "the outage needs v2 now" } }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(stable(&app).await, 2);
    let overridden = app.audit("change.override").await;
    assert_eq!(overridden.len(), 1);
    assert_eq!(overridden[0]["actor"], "admin");
    assert_eq!(
        overridden[0]["details"]["reason"],
        "the outage needs v2 now"
    );
    assert_eq!(overridden[0]["key"], "app.txt");

    let (_, config) = get(&app, &bob, &path("")).await;
    assert_eq!(
        config["unreviewed_overrides"].as_array().unwrap().len(),
        1,
        "{config}"
    );
    let (status, list) = get(&app, &bob, "/api/v1/overrides?reviewed=false").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let id = list[0]["id"].as_i64().unwrap();
    assert_eq!(list[0]["action"], "release");
    assert_eq!(list[0]["reviewed_by"], json!(null));
    let review = format!("/api/v1/overrides/{id}/review");
    let (status, body) = post(&app, &app.admin, &review, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not by who overrode: {body}");
    let (status, body) = post(&app, &bob, &review, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reviewed_by"], "bob");
    let (status, _) = post(&app, &alice, &review, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "once");
    let (_, list) = get(&app, &bob, "/api/v1/overrides?reviewed=false").await;
    assert_eq!(list, json!([]));
    let (_, config) = get(&app, &bob, &path("")).await;
    assert_eq!(config.get("unreviewed_overrides"), None, "{config}");
    let reviewed = app.audit("override.review").await;
    assert_eq!(reviewed.len(), 1);
    assert_eq!(reviewed[0]["actor"], "bob");
}

#[tokio::test]
async fn an_admin_applies_a_request_at_once_and_it_stays_marked_until_reviewed() {
    let Setup {
        app, alice, bob, ..
    } = setup(2).await;
    let (status, body) = post(&app, &alice, &path("/release"), json!({ "version": 2 })).await;
    let id = requested(status, &body);
    let apply = format!("/api/v1/change-requests/{id}/apply");
    let (status, body) = post(
        &app,
        &alice,
        &apply,
        json!({ "override": { "reason": "the outage needs v2 now" } }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = post(&app, &app.admin, &apply, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = post(
        &app,
        &app.admin,
        &apply,
        json!({ "override": { "reason": "the outage needs v2 now" } }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "applied");
    assert_eq!(body["unreviewed_override"], true);
    assert_eq!(stable(&app).await, 2);
    let (_, events) = get(&app, &app.admin, &path("/releases")).await;
    assert_eq!(events[0]["actor"], "alice", "applied as its author");
    let overridden = app.audit("change.override").await;
    assert_eq!(overridden[0]["details"]["change_request"], id);
    let override_id = body["override_id"].as_i64().unwrap();
    let (status, body) = post(
        &app,
        &bob,
        &format!("/api/v1/overrides/{override_id}/review"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(request(&app, id).await["unreviewed_override"], false);
}
