//! Rollout templates: the built-in ones everywhere, create and delete, the default template,
//! and starting a lane from a template.

use super::*;

async fn templates(app: &TestApp, env: &str) -> Value {
    let (status, body) = app
        .get_json(&format!("/api/v1/rollout-templates?env={env}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn names(list: &Value) -> Vec<String> {
    list["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn every_environment_has_canary_and_linear() {
    let app = app().await;
    let (status, _) = app
        .post_json("/api/v1/environments", json!({"name": "qa"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let reports = json!({"kind": "reports", "max_failed": 0, "max_failed_ratio": 0.0,
                         "min_applied_ratio": 1.0, "min_instances": 1});
    for env in ["dev", "staging", "prod", "qa"] {
        let list = templates(&app, env).await;
        assert_eq!(names(&list), ["canary", "linear"], "{env}");
        assert_eq!(list["default_template"], Value::Null);
        let canary = &list["templates"][0];
        assert_eq!(canary["builtin"], true);
        assert_eq!(canary["env"], env);
        assert_eq!(
            canary["plan"],
            json!({"steps": [{"percentage": 5.0, "hold_secs": 600},
                             {"percentage": 25.0, "hold_secs": 600},
                             {"percentage": 100.0, "hold_secs": 600}],
                   "guards": [reports.clone()], "on_failure": "abort", "no_data": "wait",
                   "finish": "promote"}),
            "no evidence, no promotion: canary promotes only after instances applied it"
        );
        let linear = &list["templates"][1]["plan"];
        let steps: Vec<(f64, u64)> = linear["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["percentage"].as_f64().unwrap(),
                    s["hold_secs"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            steps,
            [
                (20.0, 360),
                (40.0, 360),
                (60.0, 360),
                (80.0, 360),
                (100.0, 360)
            ]
        );
        assert_eq!(linear["finish"], "hold");
        assert_eq!(linear["guards"], json!([reports]));
    }
    let (status, body) = app.get_json("/api/v1/rollout-templates?env=nowhere").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = app.get_json("/api/v1/rollout-templates").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn templates_are_created_deleted_and_chosen_as_the_default_per_environment() {
    let owned = app().await;
    let app = &owned;
    let create = |name: &str, plan: Value| {
        let body = json!({"name": name, "plan": plan});
        async move {
            app.post_json("/api/v1/rollout-templates?env=prod", body)
                .await
        }
    };
    let guarded = plan_body(
        &[(1.0, 60), (10.0, 300)],
        json!({"guards": [{"kind": "reports", "max_failed": 1}], "on_failure": "pause"}),
    );
    let (status, made) = create("careful", guarded.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["builtin"], false);
    assert_eq!(made["default"], false);
    assert_eq!(made["created_by"], "admin");
    assert_eq!(
        made["plan"]["guards"][0],
        json!({"kind": "reports", "max_failed": 1, "max_failed_ratio": 0.0,
               "min_applied_ratio": 1.0, "min_instances": 1}),
        "every default filled in"
    );
    assert_eq!(made["plan"]["no_data"], "wait");
    assert_eq!(
        names(&templates(app, "prod").await),
        ["canary", "careful", "linear"]
    );
    assert_eq!(
        names(&templates(app, "staging").await),
        ["canary", "linear"]
    );
    let created = app.audit("template.create").await;
    assert_eq!(created[0]["env"], "prod");

    let (status, body) = create("careful", guarded.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = create("bad one", guarded).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "name");
    let (status, body) = create(
        "broken",
        json!({"steps": [{"percentage": 5}, {"percentage": 5}]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "plan.steps[1].percentage");

    // The default template.
    let default = |template: Value| async move {
        send(
            app,
            Method::PUT,
            "/api/v1/environments/prod/default-template",
            Some(json!({ "template": template })),
        )
        .await
    };
    let (status, list) = default(json!("careful")).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["default_template"], "careful");
    assert_eq!(list["templates"][1]["default"], true);
    let (_, envs) = app.get_json("/api/v1/environments").await;
    let prod = envs
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "prod")
        .unwrap();
    assert_eq!(prod["default_template"], "careful");
    let (status, body) = default(json!("nope")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "template");
    assert_eq!(
        app.audit("template.default").await[0]["details"]["after"],
        "careful"
    );

    // The default and the built-in ones stay; others go.
    let delete = |name: &'static str| async move {
        send(
            app,
            Method::DELETE,
            &format!("/api/v1/rollout-templates/{name}?env=prod"),
            None,
        )
        .await
    };
    assert_eq!(delete("careful").await.0, StatusCode::CONFLICT);
    assert_eq!(delete("canary").await.0, StatusCode::CONFLICT);
    assert_eq!(delete("missing").await.0, StatusCode::NOT_FOUND);
    let (status, list) = default(Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["default_template"], Value::Null);
    assert_eq!(delete("careful").await.0, StatusCode::NO_CONTENT);
    assert_eq!(names(&templates(app, "prod").await), ["canary", "linear"]);
    assert_eq!(app.audit("template.delete").await.len(), 1);
}

#[tokio::test]
async fn a_lane_starts_from_a_template_of_its_environment() {
    let app = app().await;
    config(&app, "app.json").await;
    let (status, _) = app
        .post_json(
            "/api/v1/rollout-templates?env=staging",
            json!({"name": "staging-only", "plan": {"steps": [{"percentage": 50}]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = app
        .post_json(
            &lanes("app.json"),
            json!({"version": 2, "template": "staging-only"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "template");

    let lane = start(
        &app,
        "app.json",
        json!({"version": 2, "template": "linear"}),
    )
    .await;
    assert_eq!(lane["percentage"], 20.0);
    assert_eq!(lane["plan"]["template"], "linear");
    assert_eq!(lane["plan"]["steps"], 5);
    let p = wait_plan(&app, "app.json", &lane, "the plan to say it holds", |p| {
        p["waiting_for"]
            .as_str()
            .is_some_and(|w| w.starts_with("holding at 20 % for 5 min"))
    })
    .await;
    assert_eq!(p["plan"]["finish"], "hold");
    assert!(p["remaining_secs"].as_u64().unwrap() > 350, "{p}");
    let (_, config) = app
        .get_json(&crate::common::config_path(NS, ENV, "app.json", ""))
        .await;
    assert_eq!(config["lanes"][0]["plan"]["state"], "running");
}

#[tokio::test]
async fn only_admins_of_the_environment_change_its_templates() {
    let app = app().await;
    let staging_admin = app.user("sam", "admin", Some("staging")).await;
    let body = json!({"name": "mine", "plan": {"steps": [{"percentage": 50}]}});
    let r = staging_admin
        .post(app.url("/api/v1/rollout-templates?env=staging"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = staging_admin
        .post(app.url("/api/v1/rollout-templates?env=prod"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let shop_admin = app.token("shop-admin", "admin", Some(NS), None).await;
    let r = app
        .post_with(
            &shop_admin,
            "/api/v1/rollout-templates?env=prod",
            body.clone(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .get_with(&shop_admin, "/api/v1/rollout-templates?env=prod")
        .await;
    assert_eq!(r.status(), StatusCode::OK, "reading is for viewers");
}
