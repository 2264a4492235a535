//! Small inputs at the edges: characters the database cannot search for,
//! keys that are not plain file names, bodies over the limit.

use crate::common::{error_code, spawn_app};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_nul_character_in_an_audit_search_is_refused_naming_the_field() {
    let app = spawn_app().await;
    for (query, field) in [
        ("q=a%00b", "q"),
        ("q=%00", "q"),
        ("actor=ad%00min", "actor"),
        ("action=user.%00create", "action"),
        ("q=admin&namespace=sh%00op", "namespace"),
    ] {
        let r = app
            .admin
            .get(app.url(&format!("/api/v1/audit?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{query}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
    // Words around other control characters still search.
    let r = app
        .admin
        .get(app.url("/api/v1/audit?q=admin%01"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn config_keys_must_be_plain_file_names_for_agents() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    for key in [".", "..", "..env", "a..b", ".graycast", "app.graycast-tmp"] {
        let r = app
            .admin
            .post(app.url("/api/v1/namespaces/shop/envs/prod/configs"))
            .json(&json!({ "key": key, "format": "text", "content": "x" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{key}");
        assert_eq!(error_code(r).await, "invalid", "{key}");
    }
    for key in [".env", "graycast", "app.json"] {
        app.config("shop", "prod", key, "text", "x").await;
    }
}

#[tokio::test]
async fn an_oversized_json_body_is_413() {
    let app = spawn_app().await;
    // Just over the 2 MiB limit, so the server has read (nearly) all of it when it answers.
    let name = "n".repeat(2 * 1024 * 1024 + 1);
    let r = app
        .admin
        .post(app.url("/api/v1/namespaces"))
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(r).await, "too_large");
    // Malformed JSON stays 400.
    let r = app
        .admin
        .post(app.url("/api/v1/namespaces"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}
