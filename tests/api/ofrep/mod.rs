//! Issue 16: OFREP (docs/ofrep.md) — single and bulk
//! evaluation, its error codes, reasons, values by format, the bulk ETag, the
//! scope from the token or the headers, and agreement with `resolve`.

mod node;

use crate::common::{config_path, spawn_app, TestApp};
use reqwest::{header, StatusCode};
use serde_json::{json, Value};

const FLAGS: &str = "/ofrep/v1/evaluate/flags";

/// A server with `shop/prod/app.json` (json, v1 released) and a subscriber
/// token limited to shop/prod.
async fn shop() -> (TestApp, String) {
    let app = spawn_app().await;
    app.namespace("shop").await;
    app.config("shop", "prod", "app.json", "json", r#"{"v":1}"#)
        .await;
    app.release("shop", "prod", "app.json", 1, "first").await;
    let token = app
        .token("ofrep", "subscriber", Some("shop"), Some("prod"))
        .await;
    (app, token)
}

/// POST `body` (raw) to `path` with `token` and extra headers: status, headers, JSON body.
async fn post_raw(
    app: &TestApp,
    token: Option<&str>,
    path: &str,
    headers: &[(&str, &str)],
    body: String,
) -> (StatusCode, header::HeaderMap, Value) {
    let mut request = crate::common::client()
        .post(app.url(path))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let r = request.send().await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

async fn flag(app: &TestApp, token: &str, key: &str, context: Value) -> (StatusCode, Value) {
    let (status, _, body) = post_raw(
        app,
        Some(token),
        &format!("{FLAGS}/{key}"),
        &[],
        json!({ "context": context }).to_string(),
    )
    .await;
    (status, body)
}

async fn lane(app: &TestApp, body: Value) -> Value {
    let (status, lane) = app
        .post_json(&config_path("shop", "prod", "app.json", "/lanes"), body)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{lane}");
    lane
}

/// Token, path, headers, body; the status and `errorCode` expected.
type Case<'a> = (
    Option<&'a str>,
    &'a str,
    Vec<(&'a str, &'a str)>,
    String,
    StatusCode,
    &'a str,
);

#[tokio::test]
async fn every_error_code_with_its_status_and_shape() {
    let (app, token) = shop().await;
    let single = format!("{FLAGS}/app.json");
    let missing = format!("{FLAGS}/missing.json");
    let ctx = json!({ "context": { "targetingKey": "pod-1" } }).to_string();
    let cases: Vec<Case> = vec![
        (
            None,
            &single,
            vec![],
            ctx.clone(),
            StatusCode::UNAUTHORIZED,
            "GENERAL",
        ),
        (
            Some("nope"),
            &single,
            vec![],
            ctx.clone(),
            StatusCode::UNAUTHORIZED,
            "GENERAL",
        ),
        (
            Some(&token),
            &single,
            vec![("X-Graycast-Namespace", "other")],
            ctx.clone(),
            StatusCode::FORBIDDEN,
            "GENERAL",
        ),
        (
            Some(&token),
            &single,
            vec![("X-Graycast-Env", "staging")],
            ctx.clone(),
            StatusCode::FORBIDDEN,
            "GENERAL",
        ),
        (
            Some(&token),
            &single,
            vec![],
            "not json".into(),
            StatusCode::BAD_REQUEST,
            "PARSE_ERROR",
        ),
        (
            Some(&token),
            &single,
            vec![],
            "{}".into(),
            StatusCode::BAD_REQUEST,
            "PARSE_ERROR",
        ),
        (
            Some(&token),
            &single,
            vec![],
            r#"{"context": 5}"#.into(),
            StatusCode::BAD_REQUEST,
            "INVALID_CONTEXT",
        ),
        (
            Some(&token),
            &single,
            vec![],
            r#"{"context": {"region": "x"}}"#.into(),
            StatusCode::BAD_REQUEST,
            "TARGETING_KEY_MISSING",
        ),
        // Issue 25: OFREP's targetingKey is a string (graycast takes numbers as their text).
        (
            Some(&token),
            &single,
            vec![],
            r#"{"context": {"targetingKey": true}}"#.into(),
            StatusCode::BAD_REQUEST,
            "INVALID_CONTEXT",
        ),
        (
            Some(&token),
            &single,
            vec![],
            r#"{"context": {"targetingKey": {"id": "pod-1"}}}"#.into(),
            StatusCode::BAD_REQUEST,
            "INVALID_CONTEXT",
        ),
        (
            Some(&token),
            &single,
            vec![],
            r#"{"context": {"targetingKey": null}}"#.into(),
            StatusCode::BAD_REQUEST,
            "INVALID_CONTEXT",
        ),
        (
            Some(&token),
            &missing,
            vec![],
            ctx.clone(),
            StatusCode::NOT_FOUND,
            "FLAG_NOT_FOUND",
        ),
    ];
    for (token, path, headers, body, status, code) in cases {
        let (got, _, answer) = post_raw(&app, token, path, &headers, body.clone()).await;
        assert_eq!(
            (got, answer["errorCode"].as_str()),
            (status, Some(code)),
            "{path} {body}: {answer}"
        );
        assert!(
            answer["errorDetails"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{answer}"
        );
        assert_eq!(answer["key"], path.rsplit('/').next().unwrap(), "{answer}");
        // Bulk: the same failure, without a key (404 is per flag, not for bulk).
        if status != StatusCode::NOT_FOUND {
            let (got, _, answer) = post_raw(&app, token, FLAGS, &headers, body.clone()).await;
            assert_eq!(
                (got, answer["errorCode"].as_str()),
                (status, Some(code)),
                "bulk {body}: {answer}"
            );
            assert!(answer.get("key").is_none(), "{answer}");
        }
    }
    // Bounds: the body, the number of attributes, a value's length.
    let big = json!({ "context": { "targetingKey": "k", "x": "y".repeat(70 * 1024) } }).to_string();
    let (status, _, answer) = post_raw(&app, Some(&token), &single, &[], big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    let mut many = serde_json::Map::new();
    many.insert("targetingKey".into(), json!("k"));
    for i in 0..70 {
        many.insert(format!("a{i}"), json!("v"));
    }
    let (status, body) = flag(&app, &token, "app.json", Value::Object(many)).await;
    assert_eq!(
        (status, body["errorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_CONTEXT"))
    );
    let (status, body) = flag(
        &app,
        &token,
        "app.json",
        json!({ "targetingKey": "k", "v": "x".repeat(2000) }),
    )
    .await;
    assert_eq!(
        (status, body["errorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_CONTEXT"))
    );
    // A number is its text; a boolean anywhere but the targetingKey too.
    let (status, body) = flag(
        &app,
        &token,
        "app.json",
        json!({ "targetingKey": 42, "beta": true }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A token without limits must name the scope.
    let open = app.token("open", "subscriber", None, None).await;
    let (status, body) = flag(&app, &open, "app.json", json!({ "targetingKey": "k" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["errorDetails"]
            .as_str()
            .unwrap()
            .contains("X-Graycast-Namespace"),
        "{body}"
    );
}

#[tokio::test]
async fn scope_comes_from_the_headers_or_the_token() {
    let (app, token) = shop().await;
    app.namespace("blog").await;
    app.config("blog", "prod", "app.json", "json", r#"{"blog":true}"#)
        .await;
    app.release("blog", "prod", "app.json", 1, "first").await;
    let open = app.token("open", "subscriber", None, None).await;
    let ctx = json!({ "context": { "targetingKey": "k" } }).to_string();
    let path = format!("{FLAGS}/app.json");
    for (token, ns, expected) in [
        (&open, "blog", json!({"blog": true})),
        (&open, "shop", json!({"v": 1})),
    ] {
        let headers = [("X-Graycast-Namespace", ns), ("X-Graycast-Env", "prod")];
        let (status, _, body) = post_raw(&app, Some(token), &path, &headers, ctx.clone()).await;
        assert_eq!(
            (status, &body["value"]),
            (StatusCode::OK, &expected),
            "{ns}: {body}"
        );
    }
    // The limited token: its own scope without headers, and headers within it are fine.
    let (status, _, body) = post_raw(&app, Some(&token), &path, &[], ctx.clone()).await;
    assert_eq!(
        (status, &body["value"]),
        (StatusCode::OK, &json!({"v": 1})),
        "{body}"
    );
    let within = [("X-Graycast-Namespace", "shop"), ("X-Graycast-Env", "prod")];
    let (status, _, _) = post_raw(&app, Some(&token), &path, &within, ctx.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let outside = [("X-Graycast-Namespace", "blog")];
    let (status, _, _) = post_raw(&app, Some(&token), &path, &outside, ctx).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn reasons_variant_and_metadata() {
    let (app, token) = shop().await;
    let (status, body) = flag(&app, &token, "app.json", json!({ "targetingKey": "pod-1" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["key"], "app.json");
    assert_eq!(body["value"], json!({"v": 1}));
    assert_eq!(body["reason"], "STATIC");
    assert_eq!(body["variant"], "v1");
    let meta = &body["metadata"];
    assert_eq!(meta["version"], 1);
    assert!(meta.get("lane").is_none(), "{body}");
    assert!(
        meta["checksum"].as_str().unwrap().starts_with("sha256:"),
        "{body}"
    );
    assert!(meta["release_seq"].as_i64().unwrap() > 0, "{body}");
    for value in meta.as_object().unwrap().values() {
        assert!(
            value.is_string() || value.is_number() || value.is_boolean(),
            "{meta}"
        );
    }

    app.save("shop", "prod", "app.json", r#"{"v":2}"#, 1).await;
    let targeted = lane(
        &app,
        json!({ "version": 2, "targets": ["pod-t"], "percentage": 0 }),
    )
    .await;
    let (_, body) = flag(&app, &token, "app.json", json!({ "targetingKey": "pod-t" })).await;
    assert_eq!(
        (
            &body["reason"],
            &body["variant"],
            &body["value"],
            &body["metadata"]["lane"]
        ),
        (
            &json!("TARGETING_MATCH"),
            &json!("v2"),
            &json!({"v": 2}),
            &targeted["id"]
        ),
        "{body}"
    );
    let (_, body) = flag(&app, &token, "app.json", json!({ "targetingKey": "pod-1" })).await;
    assert_eq!(
        (&body["reason"], &body["variant"]),
        (&json!("DEFAULT"), &json!("v1")),
        "{body}"
    );

    app.save("shop", "prod", "app.json", r#"{"v":3}"#, 2).await;
    let split = lane(
        &app,
        json!({ "version": 3, "selector": "region=beijing", "percentage": 100, "priority": 1 }),
    )
    .await;
    let (_, body) = flag(
        &app,
        &token,
        "app.json",
        json!({ "targetingKey": "pod-1", "region": "beijing" }),
    )
    .await;
    assert_eq!(
        (&body["reason"], &body["variant"], &body["metadata"]["lane"]),
        (&json!("SPLIT"), &json!("v3"), &split["id"]),
        "{body}"
    );

    // Nothing resolves: no value, DEFAULT, no variant.
    app.config("shop", "prod", "new.json", "json", "{}").await;
    let (status, body) = flag(&app, &token, "new.json", json!({ "targetingKey": "pod-1" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reason"], "DEFAULT");
    assert!(
        body.get("value").is_none() && body.get("variant").is_none(),
        "{body}"
    );
}

#[tokio::test]
async fn values_follow_the_format() {
    let (app, token) = shop().await;
    let cases = [
        (
            "a.yaml",
            "yaml",
            "a: 1\nb: [x, true]\n",
            json!({"a": 1, "b": ["x", true]}),
        ),
        (
            "a.toml",
            "toml",
            "a = 1\n[t]\nb = \"x\"\n",
            json!({"a": 1, "t": {"b": "x"}}),
        ),
        (
            "a.properties",
            "properties",
            "a=1\nb = two\n",
            json!({"a": "1", "b": "two"}),
        ),
        ("a.txt", "text", "hello\n", json!("hello\n")),
        ("n.json", "json", "[1, 2.5]", json!([1, 2.5])),
    ];
    for (key, format, content, _) in &cases {
        app.config("shop", "prod", key, format, content).await;
        app.release("shop", "prod", key, 1, "first").await;
    }
    for (key, _, _, expected) in &cases {
        let (status, body) = flag(&app, &token, key, json!({ "targetingKey": "pod-1" })).await;
        assert_eq!(
            (status, &body["value"]),
            (StatusCode::OK, expected),
            "{key}: {body}"
        );
    }
}

#[tokio::test]
async fn bulk_answers_every_config_with_an_etag() {
    let (app, token) = shop().await;
    app.config("shop", "prod", "b.yaml", "yaml", "b: 1\n").await;
    app.release("shop", "prod", "b.yaml", 1, "first").await;
    app.config("shop", "prod", "c.txt", "text", "c").await;
    let ctx = |id: &str| json!({ "context": { "targetingKey": id } }).to_string();
    let (status, headers, body) = post_raw(&app, Some(&token), FLAGS, &[], ctx("pod-1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let keys: Vec<&str> = body["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    // c.txt was never released: not held, so not listed (a provider falls back to the code default).
    assert_eq!(keys, ["app.json", "b.yaml"]);
    assert_eq!(body["flags"][1]["value"], json!({"b": 1}));
    let seq = body["metadata"]["release_seq"].as_i64().unwrap();
    let stream = &body["eventStreams"][0];
    assert_eq!(stream["type"], "sse");
    let url = stream["url"].as_str().unwrap();
    assert!(
        url.ends_with("/api/v1/watch?namespace=shop&env=prod&client_id=pod-1"),
        "{url}"
    );
    // The stream it names answers this token.
    let watch = crate::common::client()
        .get(url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(watch.status(), StatusCode::OK);
    drop(watch);

    let etag = headers[header::ETAG].to_str().unwrap().to_string();
    assert!(etag.starts_with(&format!("\"r{seq}-")), "{etag}");
    let (status, headers, _) = post_raw(
        &app,
        Some(&token),
        FLAGS,
        &[("If-None-Match", &etag)],
        ctx("pod-1"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert_eq!(headers[header::ETAG], etag.as_str());
    // Another context never gets 304.
    let (status, headers, _) = post_raw(
        &app,
        Some(&token),
        FLAGS,
        &[("If-None-Match", &etag)],
        ctx("pod-2"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(headers[header::ETAG], etag.as_str());
    // A release changes it.
    app.release("shop", "prod", "c.txt", 1, "first").await;
    let (status, headers, body) = post_raw(
        &app,
        Some(&token),
        FLAGS,
        &[("If-None-Match", &etag)],
        ctx("pod-1"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_ne!(headers[header::ETAG], etag.as_str());
    assert_eq!(body["flags"][2]["value"], "c");
}

/// What `resolve` answers for `context`: (version, lane, content).
pub(super) async fn resolved(app: &TestApp, key: &str, context: &Value) -> (Value, Value, String) {
    let ctx = context.as_object().unwrap();
    let labels: Vec<String> = ctx
        .iter()
        .filter(|(k, _)| *k != "targetingKey")
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
        .collect();
    let query = format!(
        "/resolve?client_id={}&labels={}",
        ctx["targetingKey"].as_str().unwrap(),
        labels.join(",")
    );
    let (status, body) = app
        .get_json(&config_path("shop", "prod", key, &query))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (
        body["version"].clone(),
        body["lane"].clone(),
        body["content"].as_str().unwrap().to_string(),
    )
}

/// Contexts spread over a 30% lane for `region=beijing` and one targeted pod.
pub(super) async fn gray_lanes(app: &TestApp) -> Vec<Value> {
    app.save("shop", "prod", "app.json", r#"{"v":2}"#, 1).await;
    app.save("shop", "prod", "app.json", r#"{"v":3}"#, 2).await;
    lane(
        app,
        json!({ "version": 2, "selector": "region=beijing", "percentage": 30 }),
    )
    .await;
    lane(
        app,
        json!({ "version": 3, "targets": ["pod-7"], "percentage": 0, "priority": 1 }),
    )
    .await;
    (0..120)
        .map(|i| {
            let region = ["beijing", "shanghai"][i % 2];
            json!({ "targetingKey": format!("pod-{i}"), "region": region })
        })
        .collect()
}

#[tokio::test]
async fn agrees_with_resolve_for_many_contexts() {
    let (app, token) = shop().await;
    let contexts = gray_lanes(&app).await;
    let mut versions = std::collections::BTreeSet::new();
    for context in &contexts {
        let (version, lane, content) = resolved(&app, "app.json", context).await;
        let (status, body) = flag(&app, &token, "app.json", context.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["metadata"]["version"], version, "{context}: {body}");
        assert_eq!(body["variant"], format!("v{version}"));
        assert_eq!(
            body["metadata"].get("lane").cloned().unwrap_or(Value::Null),
            lane,
            "{context}"
        );
        assert_eq!(
            body["value"],
            serde_json::from_str::<Value>(&content).unwrap()
        );
        versions.insert(version.as_i64().unwrap());
    }
    assert_eq!(
        versions.into_iter().collect::<Vec<_>>(),
        [1, 2, 3],
        "every lane is exercised"
    );
}

/// The bulk answer's `eventStreams` URL for `headers` (sent by a client on loopback).
async fn stream_url(app: &TestApp, token: &str, headers: &[(&str, &str)]) -> String {
    let ctx = json!({ "context": { "targetingKey": "pod-1" } }).to_string();
    let (status, _, body) = post_raw(app, Some(token), FLAGS, headers, ctx).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["eventStreams"][0]["url"].as_str().unwrap().to_string()
}

/// Issue 25: the bulk answer's stream URL was built from whatever `Host` and
/// `X-Forwarded-Proto` a client sent. `Host` must be a host and port, and the
/// forwarded headers count only from `--trusted-proxy` peers.
#[tokio::test]
async fn the_stream_url_takes_only_checked_hosts_and_trusted_proxies() {
    let (app, token) = shop().await;
    let path = "/api/v1/watch?namespace=shop&env=prod&client_id=pod-1";
    let forwarded = [
        ("X-Forwarded-Host", "attacker.example"),
        ("X-Forwarded-Proto", "https"),
    ];
    let url = stream_url(&app, &token, &[("Host", "graycast.example:8080")]).await;
    assert_eq!(url, format!("http://graycast.example:8080{path}"));
    let mut spoofed = vec![("Host", "graycast.example:8080")];
    spoofed.extend(forwarded);
    let url = stream_url(&app, &token, &spoofed).await;
    assert_eq!(
        url,
        format!("http://graycast.example:8080{path}"),
        "not from a trusted proxy"
    );
    for bad in [
        "evil.example/phish?x=",
        "a@evil.example",
        "evil.example:80:80",
        "a b",
    ] {
        let url = stream_url(&app, &token, &[("Host", bad)]).await;
        assert_eq!(url, path, "{bad}");
    }

    // Behind a trusted proxy (this test's loopback address), its headers name the URL.
    let mut app = app;
    app.restart_with(|c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()])
        .await;
    let url = stream_url(&app, &token, &spoofed).await;
    assert_eq!(url, format!("https://attacker.example{path}"));
    let url = stream_url(
        &app,
        &token,
        &[
            ("Host", "node-1:8080"),
            ("X-Forwarded-Host", "a/b"),
            ("X-Forwarded-Proto", "http"),
        ],
    )
    .await;
    assert_eq!(
        url,
        format!("http://node-1:8080{path}"),
        "a bad forwarded host"
    );
    // Other peers' headers still count for nothing.
    app.restart_with(|c| c.trusted_proxies = vec!["10.0.0.1".parse().unwrap()])
        .await;
    let url = stream_url(&app, &token, &spoofed).await;
    assert_eq!(url, format!("http://graycast.example:8080{path}"));
}

/// Issue 25: one OFREP call for 130 KB of YAML answered a gigabyte. A value
/// larger than 16 MiB as JSON is an error for its flag (its text is still
/// served by `resolve`), and a bulk answer's values stay within 16 MiB together.
#[tokio::test]
async fn values_are_bounded_alone_and_together() {
    let (app, token) = shop().await;
    // 100,000 control characters, written `\u0001` each as JSON: 600 KB a copy.
    let copies = |n: usize| {
        format!(
            "a: &a \"{}\"\nb: [{}]\n",
            "\\x01".repeat(100_000),
            vec!["*a"; n].join(",")
        )
    };
    for (key, n) in [("big.yaml", 28), ("half1.yaml", 13), ("half2.yaml", 13)] {
        app.config("shop", "prod", key, "yaml", &copies(n)).await;
        app.release("shop", "prod", key, 1, "first").await;
    }
    let ctx = json!({ "targetingKey": "pod-1" });
    let (status, body) = flag(&app, &token, "big.yaml", ctx.clone()).await;
    assert_eq!(
        (status, body["errorCode"].as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, Some("GENERAL")),
        "{body}"
    );
    let details = body["errorDetails"].as_str().unwrap();
    assert!(
        details.contains("larger than 16 MiB as a JSON value"),
        "{details}"
    );
    let (status, _) = app
        .get_json(&config_path(
            "shop",
            "prod",
            "big.yaml",
            "/resolve?client_id=pod-1",
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "resolve serves the text");
    for key in ["half1.yaml", "half2.yaml"] {
        let (status, body) = flag(&app, &token, key, ctx.clone()).await;
        assert_eq!(status, StatusCode::OK, "{key}");
        assert_eq!(body["value"]["b"].as_array().unwrap().len(), 13);
    }

    let (status, _, body) = post_raw(
        &app,
        Some(&token),
        FLAGS,
        &[],
        json!({ "context": ctx }).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let flags: std::collections::HashMap<&str, &Value> = body["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["key"].as_str().unwrap(), f))
        .collect();
    assert_eq!(flags["app.json"]["value"], json!({"v": 1}));
    assert!(flags["big.yaml"]["errorDetails"]
        .as_str()
        .unwrap()
        .contains("larger than 16 MiB"));
    assert_eq!(
        flags["half1.yaml"]["value"]["b"].as_array().unwrap().len(),
        13
    );
    assert_eq!(flags["half2.yaml"]["errorCode"], "GENERAL");
    let details = flags["half2.yaml"]["errorDetails"].as_str().unwrap();
    assert!(
        details.contains("more than 16 MiB; evaluate half2.yaml alone"),
        "{details}"
    );
    assert!(flags["half2.yaml"].get("value").is_none());
}
