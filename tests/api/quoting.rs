//! Issue 25, finding 2: an error that repeats what the caller sent quotes at most 100
//! characters of it, whatever the route (a 1.5 MB selector came back whole in its 400).

use crate::common::{config_path, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The status and text of an answer, as admin.
async fn answer(
    app: &crate::common::TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, String) {
    let mut request = app.admin.request(method, app.url(path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = request.send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

#[tokio::test]
async fn errors_quote_long_input_cut_short() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    app.config("shop", "prod", "app.json", "json", "{}").await;
    // Long enough to show, short enough for any URL.
    let long = "x".repeat(3000);
    let cases: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, config_path("shop", "prod", &long, ""), None),
        (
            Method::GET,
            config_path("shop", "prod", "app.json", &format!("/versions/{long}")),
            None,
        ),
        (
            Method::GET,
            config_path(
                "shop",
                "prod",
                "app.json",
                &format!("/resolve?client_id=a&labels=a={long}%20b"),
            ),
            None,
        ),
        (
            Method::GET,
            config_path("shop", &long, "app.json", "/releases"),
            None,
        ),
        (Method::GET, format!("/api/v1/audit?trace_id={long}"), None),
        (
            Method::GET,
            format!("/api/v1/watch?namespace=shop&env=prod&client_id={long}%20"),
            None,
        ),
        (
            Method::POST,
            "/api/v1/namespaces".to_string(),
            Some(json!({ "name": long })),
        ),
        (
            Method::POST,
            "/api/v1/namespaces/shop/envs/prod/configs".to_string(),
            Some(json!({ "key": long, "format": "json", "content": "{}" })),
        ),
        (
            Method::POST,
            "/api/v1/namespaces/shop/envs/prod/configs".to_string(),
            Some(json!({ "key": "a.json", "format": long, "content": "{}" })),
        ),
        (
            Method::POST,
            "/api/v1/tokens".to_string(),
            Some(json!({ "name": "t", "role": long })),
        ),
        (
            Method::POST,
            config_path("shop", "prod", "app.json", "/lanes"),
            Some(json!({ "version": 1, "percentage": 1, "stickiness": long })),
        ),
        (
            Method::POST,
            config_path("shop", "prod", "app.json", "/lanes"),
            Some(json!({ "version": 1, "percentage": 1, "targets": [format!("{long}\n")] })),
        ),
        (
            Method::POST,
            config_path("shop", "prod", "app.json", "/lanes"),
            Some(json!({ "version": 1, "percentage": 1, "selector": format!("{long} !") })),
        ),
    ];
    for (method, path, body) in cases {
        let (status, text) = answer(&app, method.clone(), &path, body).await;
        let shown = &path[..path.len().min(80)];
        assert!(
            status.is_client_error(),
            "{method} {shown}: {status} {text}"
        );
        assert!(
            text.len() < 700,
            "{method} {shown}: {status}, {} bytes: {}",
            text.len(),
            &text[..text.len().min(400)]
        );
        let message = serde_json::from_str::<Value>(&text).unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            message.contains("xxxxx…") || !message.contains("xxxxx"),
            "{method} {shown}: {message}"
        );
    }
}
