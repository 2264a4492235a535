//! What the dashboard's server functions show of change governance (issue 28, point 6): the
//! config page's protection, freeze, open requests and unreviewed overrides; one request with
//! its blast radius and staleness now; the count of requests waiting for a person; and the
//! environments marked protected and frozen.

use super::{at, path, post, requested, setup, Setup};
use crate::common::TestApp;
use graycast::api::governance::{
    LoadChangeRequest, LoadConfigGovernance, LoadEnvGovernance, RequestsWaiting,
};
use leptos::server_fn::ServerFn;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

/// Calls a server function (form-encoded arguments) as `c`: the status and the JSON answer.
async fn call_fn<F: ServerFn>(
    app: &TestApp,
    c: &Client,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let r = c
        .post(app.url(F::PATH))
        .header("Origin", app.base.clone())
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn config_governance(app: &TestApp, c: &Client) -> (StatusCode, Value) {
    call_fn::<LoadConfigGovernance>(
        app,
        c,
        &[
            ("path[namespace]", "shop"),
            ("path[env]", "prod"),
            ("path[key]", super::KEY),
        ],
    )
    .await
}

async fn waiting(app: &TestApp, c: &Client) -> i64 {
    let (status, body) = call_fn::<RequestsWaiting>(app, c, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_i64().unwrap()
}

async fn view(app: &TestApp, c: &Client, id: i64) -> Value {
    let id = id.to_string();
    let (status, body) = call_fn::<LoadChangeRequest>(app, c, &[("id", &id)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn the_config_page_sees_protection_open_requests_overrides_and_a_freeze() {
    let Setup {
        app, alice, bob, ..
    } = setup(1).await;
    let (status, gov) = config_governance(&app, &bob).await;
    assert_eq!(status, StatusCode::OK, "{gov}");
    assert_eq!(gov["approvals"], 1);
    assert_eq!(gov["frozen"], Value::Null);
    assert_eq!(gov["open_requests"], json!([]));

    let (status, body) = post(&app, &alice, &path("/release"), json!({ "version": 2 })).await;
    let id = requested(status, &body);
    let (_, gov) = config_governance(&app, &bob).await;
    assert_eq!(gov["open_requests"][0]["id"], id, "{gov}");
    assert_eq!(gov["open_requests"].as_array().unwrap().len(), 1);

    // Waiting for bob (another releaser), not for its author, never for an admin.
    assert_eq!(waiting(&app, &bob).await, 1);
    assert_eq!(waiting(&app, &alice).await, 0);
    assert_eq!(waiting(&app, &app.admin).await, 0);

    // Bob may approve it, alice may withdraw it; nothing changed since it was made.
    let seen = view(&app, &bob, id).await;
    assert_eq!(seen["request"]["id"], id);
    assert_eq!(seen["can_approve"], true);
    assert_eq!(seen["can_withdraw"], false);
    assert_eq!(seen["stale_now"], Value::Null);
    let seen = view(&app, &alice, id).await;
    assert_eq!(seen["can_approve"], false);
    assert_eq!(seen["can_withdraw"], true);

    // An admin breaks glass: v3 goes live, the request is now bound to the past, and the
    // override waits for a review on the config page.
    let (status, body) = post(
        &app,
        &app.admin,
        &path("/release"),
        json!({ "version": 3, "override": { "reason": "outage 123 needs v3 now" } }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let seen = view(&app, &bob, id).await;
    let stale = seen["stale_now"].as_str().unwrap_or_default();
    assert!(stale.contains("the stable release moved"), "{seen}");
    let (_, gov) = config_governance(&app, &bob).await;
    let overrides = gov["unreviewed_overrides"].as_array().unwrap();
    assert_eq!(overrides.len(), 1, "{gov}");
    assert_eq!(overrides[0]["reason"], "outage 123 needs v3 now");
    assert_eq!(overrides[0]["actor"], "admin");

    // A freeze shows on the config page and on the environments.
    let (status, body) = post(
        &app,
        &app.admin,
        "/api/v1/environments/prod/freezes",
        json!({ "from": at(&app, -1_000), "to": at(&app, 3_600_000), "reason": "year end" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, gov) = config_governance(&app, &bob).await;
    assert_eq!(gov["frozen"]["reason"], "year end", "{gov}");
    assert_eq!(gov["frozen"]["until"], body["to"]);
    let (status, envs) = app.get_json("/api/v1/environments").await;
    assert_eq!(status, StatusCode::OK, "{envs}");
    let prod = envs
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "prod")
        .unwrap();
    assert_eq!(prod["approvals"], 1, "{prod}");
    assert_eq!(prod["frozen"]["reason"], "year end", "{prod}");
    let staging = envs
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "staging")
        .unwrap();
    assert_eq!(staging["approvals"], 0);
    assert!(staging.get("frozen").is_none(), "{staging}");
    let (status, settings) = call_fn::<LoadEnvGovernance>(&app, &bob, &[("env", "prod")]).await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    assert_eq!(settings["protection"]["approvals"], 1);
    assert_eq!(settings["freezes"][0]["reason"], "year end");
    assert_eq!(settings["frozen"]["reason"], "year end");
}

#[tokio::test]
async fn a_lane_request_shows_its_blast_radius_now_and_limits_hold() {
    let Setup { app, alice, .. } = setup(1).await;
    let (status, body) = post(
        &app,
        &alice,
        &path("/lanes"),
        json!({ "version": 2, "percentage": 10, "selector": "region=eu" }),
    )
    .await;
    let id = requested(status, &body);
    let seen = view(&app, &alice, id).await;
    assert_eq!(
        seen["preview_now"],
        json!({ "matched": [], "matched_count": 0, "connected_count": 0 }),
        "{seen}"
    );
    assert_eq!(seen["request"]["action"], "lane.create");

    // Someone limited to staging sees neither prod's governance nor its requests.
    let stella = app.user("stella", "releaser", Some("staging")).await;
    let (status, _) = config_governance(&app, &stella).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let id = id.to_string();
    let (status, _) = call_fn::<LoadChangeRequest>(&app, &stella, &[("id", &id)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(waiting(&app, &stella).await, 0);
    let (status, _) = call_fn::<LoadEnvGovernance>(&app, &stella, &[("env", "prod")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// Calls a server function that takes JSON as `c`: the status and the JSON answer.
async fn call_json<F: ServerFn>(app: &TestApp, c: &Client, body: Value) -> (StatusCode, Value) {
    let r = c
        .post(app.url(F::PATH))
        .header("Origin", app.base.clone())
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_governance_server_function_holds_roles_and_limits() {
    use graycast::api::governance::{
        ApplyChangeRequest, CreateFreeze, DecideChangeRequest, DeleteFreeze, ListChangeRequests,
        RequestChange, ReviewOverride, SetProtection, UnreviewedOverrides,
    };
    let Setup { app, alice, .. } = setup(1).await;
    let (status, body) = post(&app, &alice, &path("/release"), json!({ "version": 2 })).await;
    let id = requested(status, &body);
    let (status, freeze) = post(
        &app,
        &app.admin,
        "/api/v1/environments/prod/freezes",
        json!({ "from": at(&app, 86_400_000), "to": at(&app, 90_000_000), "reason": "later" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{freeze}");
    let freeze_id = freeze["id"].as_i64().unwrap().to_string();
    let anonymous = crate::common::client();
    let viewer = app.user("vera", "viewer", None).await;
    let editor = app.user("ed", "editor", None).await;
    let stella = app.user("stella", "releaser", Some("staging")).await;
    let id_text = id.to_string();
    let config = json!({ "namespace": "shop", "env": "prod", "key": super::KEY });

    // (caller, expected status) per function; every refusal leaves things as they were.
    for (who, c, expected) in [
        ("anonymous", &anonymous, 401),
        ("a viewer", &viewer, 403),
        ("an editor", &editor, 403),
        ("a releaser limited to staging", &stella, 403),
        ("the author, a releaser", &alice, 403),
    ] {
        let checks = [
            (
                "set_protection",
                call_fn::<SetProtection>(&app, c, &[("env", "prod"), ("approvals", "0")]).await,
            ),
            (
                "create_freeze",
                call_json::<CreateFreeze>(
                    &app,
                    c,
                    json!({ "env": "prod", "freeze": { "from": at(&app, 1_000), "to": at(&app, 60_000), "reason": "x" } }),
                )
                .await,
            ),
            (
                "delete_freeze",
                call_fn::<DeleteFreeze>(&app, c, &[("env", "prod"), ("id", &freeze_id)]).await,
            ),
            (
                "approve",
                call_json::<DecideChangeRequest>(
                    &app,
                    c,
                    json!({ "id": id, "decision": "approve", "comment": null }),
                )
                .await,
            ),
            (
                "apply (break glass)",
                call_json::<ApplyChangeRequest>(
                    &app,
                    c,
                    json!({ "id": id, "reason": "not an admin, no glass" }),
                )
                .await,
            ),
        ];
        for (what, (status, body)) in checks {
            assert_eq!(status.as_u16(), expected, "{what} by {who}: {body}");
        }
    }
    // Reading: anyone signed in within the environment; nobody outside it.
    for (who, c, expected) in [
        ("anonymous", &anonymous, 401),
        ("a releaser limited to staging", &stella, 403),
        ("a viewer", &viewer, 200),
    ] {
        let (status, body) = call_fn::<LoadChangeRequest>(&app, c, &[("id", &id_text)]).await;
        assert_eq!(
            status.as_u16(),
            expected,
            "load_change_request by {who}: {body}"
        );
        let (status, body) = config_governance(&app, c).await;
        assert_eq!(
            status.as_u16(),
            expected,
            "config_governance by {who}: {body}"
        );
    }
    let (status, _) =
        call_json::<ListChangeRequests>(&app, &anonymous, json!({ "query": {} })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) =
        call_json::<ListChangeRequests>(&app, &stella, json!({ "query": { "env": "prod" } })).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // Limited to staging, the list without a filter shows staging's requests only.
    let (status, body) =
        call_json::<ListChangeRequests>(&app, &stella, json!({ "query": {} })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["requests"], json!([]));
    let (status, _) = call_fn::<UnreviewedOverrides>(&app, &anonymous, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call_fn::<ReviewOverride>(&app, &anonymous, &[("id", "1")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A viewer may not ask for a change; an editor may.
    let ask =
        json!({ "path": config, "action": "release", "body": { "version": 3 }, "message": null });
    let (status, body) = call_json::<RequestChange>(&app, &viewer, ask.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = call_json::<RequestChange>(&app, &editor, ask).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["author"], "ed");
    assert_eq!(body["status"], "pending");

    // Nothing the refused calls asked for happened.
    assert_eq!(super::request(&app, id).await["status"], "pending");
    let (_, protection) = app.get_json("/api/v1/environments/prod/protection").await;
    assert_eq!(protection["approvals"], 1);
    let (_, freezes) = app.get_json("/api/v1/environments/prod/freezes").await;
    assert_eq!(freezes.as_array().unwrap().len(), 1, "{freezes}");
}
