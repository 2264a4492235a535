//! Content that is refused: invalid, too large, alias bombs, too slow to validate.

use super::*;

#[tokio::test]
async fn invalid_content_is_refused_with_line_and_column_and_nothing_is_stored() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    let cases = [
        ("json", "{\n  \"a\": }\n"),
        ("yaml", "a: 1\nb: [1, 2\nc: 3\n"),
        ("toml", "a = 1\nb = \n"),
        ("properties", "a=1\nb=\\u12zz\n"),
    ];
    for (format, content) in cases {
        let expected = validate(format.parse::<ConfigFormat>().unwrap(), content).unwrap_err();
        let before = app.audit_count().await;
        let key = format!("app.{format}");
        let (status, body) = app
            .post_json(
                "/api/v1/namespaces/shop/envs/prod/configs",
                json!({ "key": key, "format": format, "content": content }),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{format}: {body}");
        assert_eq!(body["error"]["code"], "invalid_content");
        assert_eq!(body["error"]["field"], "content");
        assert_eq!(body["error"]["message"], expected.to_string());
        let (status, _) = app.get_json(&config_path("shop", "prod", &key, "")).await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{format}: no config was created"
        );
        assert_eq!(app.audit_count().await, before, "{format}: no audit entry");

        // The same check guards new versions.
        let valid = if format == "properties" {
            "a=1\n"
        } else {
            "a = 1\n"
        };
        let valid = if format == "json" {
            "{\"a\": 1}"
        } else {
            valid
        };
        let valid = if format == "yaml" { "a: 1\n" } else { valid };
        app.config("shop", "prod", &key, format, valid).await;
        let before = app.audit_count().await;
        let (status, body) = app
            .post_json(
                &config_path("shop", "prod", &key, "/versions"),
                json!({ "content": content, "base_version": 1 }),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{format}: {body}");
        assert_eq!(body["error"]["message"], expected.to_string());
        let (_, versions) = app
            .get_json(&config_path("shop", "prod", &key, "/versions"))
            .await;
        assert_eq!(
            versions["versions"].as_array().unwrap().len(),
            1,
            "{format}: no version was stored"
        );
        assert_eq!(app.audit_count().await, before);
    }
    // The example from the issue, word for word.
    let (_, body) = app
        .post_json(
            "/api/v1/namespaces/shop/envs/prod/configs",
            json!({ "key": "x.json", "format": "json", "content": "{\n  \"a\": }" }),
        )
        .await;
    assert_eq!(body["error"]["message"], "line 2, column 8: expected value");
    // Text is always valid.
    app.config("shop", "prod", "notes.txt", "text", "{ not json")
        .await;
    let (status, _) = app
        .post_json(
            "/api/v1/namespaces/shop/envs/prod/configs",
            json!({ "key": "x.ini", "format": "ini", "content": "" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "unknown format");
}

#[tokio::test]
async fn content_over_the_limit_is_413() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    let limit = 1024 * 1024;
    let at_limit = "a".repeat(limit);
    app.config("shop", "prod", "big.txt", "text", &at_limit)
        .await;
    let before = app.audit_count().await;
    let over = "a".repeat(limit + 1);
    let (status, body) = app
        .post_json(
            "/api/v1/namespaces/shop/envs/prod/configs",
            json!({ "key": "bigger.txt", "format": "text", "content": over }),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "too_large");
    let (status, _) = app
        .post_json(
            &config_path("shop", "prod", "big.txt", "/versions"),
            json!({ "content": over, "base_version": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Far beyond the limit, the body itself is refused before it is read.
    let huge = "a".repeat(8 * limit);
    let (status, body) = app
        .post_json(
            &config_path("shop", "prod", "big.txt", "/versions"),
            json!({ "content": huge, "base_version": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], "too_large");
    assert_eq!(app.audit_count().await, before);
}

/// Issue 13: an editor's 8 KB YAML alias bomb drove the server to 24 GB; half a million `[`
/// cost seconds of CPU. Both are refused at once with a sentence, and nothing is stored.
#[tokio::test]
async fn yaml_alias_bombs_and_deep_nesting_are_refused_with_a_sentence() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    let list = |item: &str| vec![item; 1000].join(",");
    let bomb = format!(
        "a: &a [{}]\nb: &b [{}]\nc: [{}]\n",
        list("x"),
        list("*a"),
        list("*b")
    );
    let cases = [
        (bomb.as_str(), "aliases stand for more than 100000 nodes"),
        (&"[".repeat(500_000), "nested more than 100 levels deep"),
    ];
    for (content, says) in cases {
        let before = app.audit_count().await;
        let (status, body) = app
            .post_json(
                "/api/v1/namespaces/shop/envs/prod/configs",
                json!({ "key": "app.yaml", "format": "yaml", "content": content }),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["code"], "invalid_content");
        assert_eq!(body["error"]["field"], "content");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
        assert_eq!(app.audit_count().await, before);
    }
    // And for new versions too.
    app.config("shop", "prod", "app.yaml", "yaml", "a: 1\n")
        .await;
    let (status, body) = app
        .post_json(
            &config_path("shop", "prod", "app.yaml", "/versions"),
            json!({ "content": bomb, "base_version": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let r = app.admin.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// Validation has a time budget (`validation_timeout`): past it, 422 saying so.
#[tokio::test]
async fn content_that_takes_too_long_to_validate_is_422() {
    // A millisecond: no parser reads a megabyte of YAML that fast.
    let app = spawn_app_with(|c| c.validation_timeout = Duration::from_millis(1)).await;
    app.namespace("shop").await;
    let content: String = (0..50_000).map(|i| format!("key{i}: v{i}\n")).collect();
    let (status, body) = app
        .post_json(
            "/api/v1/namespaces/shop/envs/prod/configs",
            json!({ "key": "big.yaml", "format": "yaml", "content": content }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "invalid_content");
    assert_eq!(
        body["error"]["message"],
        "The content is too complex to validate within 0.001 s; simplify it (less nesting, \
         fewer aliases) or split it into several configs."
    );
    // Text needs no validation.
    app.config("shop", "prod", "big.txt", "text", &content)
        .await;
}
