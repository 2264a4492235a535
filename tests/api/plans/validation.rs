//! Refusals: a bad plan names its field (400), a plan goes only on an active lane without one
//! (409), and the controls answer 404 / 409 where they do not apply.

use super::*;

async fn refused(app: &TestApp, path: &str, method: Method, body: Value) -> (String, String) {
    let (status, body) = send(app, method, path, Some(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    (
        body["error"]["field"].as_str().unwrap_or("").to_string(),
        body["error"]["message"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn bad_plans_are_refused_naming_the_field() {
    let app = app().await;
    config(&app, "app.json").await;
    let lane_with = |plan: Value| json!({"version": 2, "plan": plan});
    let cases = [
        (
            lane_with(json!({"steps": [{"percentage": 50}, {"percentage": 20}]})),
            "plan.steps[1].percentage",
            "20 % follows 50 %",
        ),
        (
            lane_with(json!({"steps": [{"percentage": 5, "hold_secs": 700000}]})),
            "plan.steps[0].hold_secs",
            "0 to 604800",
        ),
        (
            lane_with(json!({"steps": [{"percentage": 5}], "guards": [{"kind": "latency"}]})),
            "plan.guards[0].kind",
            "unknown guard kind",
        ),
        (
            lane_with(json!({"steps": [{"percentage": 5}],
                             "guards": [{"kind": "webhook", "url": "ftp://hooks"}]})),
            "plan.guards[0].url",
            "not an http",
        ),
        (
            lane_with(json!({"steps": [{"percentage": 5}], "guards": [
                {"kind": "prometheus", "url": "http://127.0.0.1:9", "query": "up", "min": 3, "max": 1}]})),
            "plan.guards[0].min",
            "above max",
        ),
        (
            lane_with(json!({"steps": [{"percentage": 5}], "on_failure": "explode"})),
            "plan.on_failure",
            "abort, pause",
        ),
        (
            json!({"version": 2, "plan": {"steps": [{"percentage": 5}]}, "template": "canary"}),
            "template",
            "not both",
        ),
        (
            json!({"version": 2, "template": "blue-green"}),
            "template",
            "its templates are: canary, linear",
        ),
        (
            json!({"version": 2, "percentage": 30, "plan": {"steps": [{"percentage": 5}]}}),
            "percentage",
            "starts at the plan's first step (5 %)",
        ),
        (json!({"version": 2}), "percentage", "or a plan"),
    ];
    for (body, field, words) in cases {
        let (got, message) = refused(&app, &lanes("app.json"), Method::POST, body.clone()).await;
        assert_eq!(got, field, "{body}: {message}");
        assert!(
            message.contains(words),
            "{body}: {message:?} lacks {words:?}"
        );
    }
    // Nothing was started by the refusals.
    let (_, listed) = app.get_json(&lanes("app.json")).await;
    assert_eq!(listed, json!([]));

    // The same checks guard attaching a plan.
    let lane = start(&app, "app.json", json!({"version": 2, "percentage": 10})).await;
    let (field, _) = refused(
        &app,
        &lane_path("app.json", &lane["id"], "/plan"),
        Method::PUT,
        json!({"plan": {"steps": [{"percentage": 0}]}}),
    )
    .await;
    assert_eq!(field, "plan.steps[0].percentage");
    let (field, _) = refused(
        &app,
        &lane_path("app.json", &lane["id"], "/plan"),
        Method::PUT,
        json!({}),
    )
    .await;
    assert_eq!(field, "plan");
}

#[tokio::test]
async fn a_plan_attaches_only_to_an_active_lane_without_one() {
    let app = app().await;
    config(&app, "app.json").await;
    let lane = start(&app, "app.json", json!({"version": 2, "percentage": 30})).await;
    let path = lane_path("app.json", &lane["id"], "/plan");
    let (status, body) = app.get_json(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = app
        .post_json(
            &lane_path("app.json", &lane["id"], "/plan/pause"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let (status, attached) = send(
        &app,
        Method::PUT,
        &path,
        Some(json!({"template": "canary", "message": "let it run"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{attached}");
    assert_eq!(attached["state"], "running");
    assert_eq!(attached["template"], "canary");
    assert_eq!(attached["percentage"], 5.0);
    assert_eq!(attached["plan"]["finish"], "promote");
    assert_eq!(attached["plan"]["steps"][1]["percentage"], 25.0);
    assert_eq!(attached["plan"]["steps"][1]["hold_secs"], 600);
    assert_eq!(
        listed_lane(&app, "app.json", &lane).await["percentage"],
        5.0
    );
    assert_eq!(
        app.audit("rollout.start").await[0]["details"]["template"],
        "canary"
    );

    let (status, body) = send(
        &app,
        Method::PUT,
        &path,
        Some(json!({"template": "linear"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = send(&app, Method::PUT, &path, Some(json!({"templat": "linear"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // A closed lane takes no plan; an aborted lane's plan is over.
    let other = start(&app, "app.json", json!({"version": 2, "percentage": 10})).await;
    let (status, _) = app
        .post_json(&lane_path("app.json", &other["id"], "/abort"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = send(
        &app,
        Method::PUT,
        &lane_path("app.json", &other["id"], "/plan"),
        Some(json!({"template": "linear"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = app
        .post_json(&lane_path("app.json", &lane["id"], "/abort"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let ended = plan(&app, "app.json", &lane).await;
    assert_eq!(ended["state"], "aborted");
    assert_eq!(ended["reason"], "admin aborted the lane");
    for control in ["pause", "resume", "advance"] {
        let (status, body) = app
            .post_json(
                &lane_path("app.json", &lane["id"], &format!("/plan/{control}")),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{control}: {body}");
    }
    let (status, body) = app
        .post_json(
            &lane_path("app.json", &lane["id"], "/plan/pause"),
            json!({"force": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}
