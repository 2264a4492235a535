use super::*;

/// Issue 13, point 10: revoking a token ends the streams it opened — watch
/// streams on both connection paths and the live instances view — and it
/// cannot open them again.
#[tokio::test]
async fn revoking_a_token_ends_its_watch_and_instances_streams() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    let (status, created) = app
        .post_json(
            "/api/v1/tokens",
            json!({"name": "fleet", "role": "viewer", "namespace": "shop"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap().to_string();
    let watch = |client_id: &str| {
        app.url(&format!(
            "/api/v1/watch?namespace=shop&env=prod&client_id={client_id}"
        ))
    };
    let feed = app.url("/api/v1/namespaces/shop/envs/prod/instances/stream");
    // On a connection of its own: the lean path, which the hub writes directly.
    let mut lean = sse::open(&watch("pod-1"), &token, None).await;
    // On a connection that served another request first: through hyper.
    let reused = Client::new();
    let r = reused.get(app.url("/healthz")).send().await.unwrap();
    r.text().await.unwrap();
    let r = reused
        .get(watch("pod-2"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut queued = sse::from_response(r);
    let mut instances = sse::open(&feed, &token, None).await;
    lean.until_synced().await;
    queued.until_synced().await;
    assert_eq!(instances.next_event().await.event, "instances");

    let r = app
        .admin
        .delete(app.url(&format!("/api/v1/tokens/{}", created["id"])))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for (name, stream) in [
        ("lean watch", &mut lean),
        ("watch", &mut queued),
        ("instances", &mut instances),
    ] {
        assert!(stream.ends().await, "the {name} stream ends");
    }
    for url in [watch("pod-1"), feed] {
        let r = sse::request(&url, &token, None).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{url}");
    }
}

/// Issue 13, point 10: changing a user's role or disabling it ends the
/// streams it opened with its session; a user still allowed signs in again (issue 25,
/// finding 11: the change ended the session too) and reconnects.
#[tokio::test]
async fn a_role_change_or_disabling_ends_a_users_streams() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    let (status, user) = app
        .post_json(
            "/api/v1/users",
            json!({"username": "vera", "password": "vera-password", "role": "viewer"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    let vera = client();
    let r = crate::common::login(&vera, &app.base, "vera", "vera-password").await;
    assert_eq!(r.status(), StatusCode::OK);
    let feed = app.url("/api/v1/namespaces/shop/envs/prod/instances/stream");
    let watch = app.url("/api/v1/watch?namespace=shop&env=prod&client_id=browser-1");
    let open = |url: &str| {
        let (vera, url) = (vera.clone(), url.to_string());
        async move { vera.get(url).send().await.unwrap() }
    };
    let change = |body: Value| {
        let request = app
            .admin
            .patch(app.url(&format!("/api/v1/users/{}", user["id"])))
            .json(&body);
        async move {
            let r = request.send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        }
    };
    let mut instances = sse::from_response(open(&feed).await);
    let mut watching = sse::from_response(open(&watch).await);
    assert_eq!(instances.next_event().await.event, "instances");
    watching.until_synced().await;

    change(json!({"role": "editor"})).await;
    assert!(instances.ends().await, "the instances stream ends");
    assert!(watching.ends().await, "the watch stream ends");
    assert_eq!(
        open(&feed).await.status(),
        StatusCode::UNAUTHORIZED,
        "the session ended with the old role"
    );
    let r = crate::common::login(&vera, &app.base, "vera", "vera-password").await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = open(&feed).await;
    assert_eq!(r.status(), StatusCode::OK, "still allowed: it reconnects");
    let mut instances = sse::from_response(r);
    assert_eq!(instances.next_event().await.event, "instances");

    change(json!({"disabled": true})).await;
    assert!(instances.ends().await, "a disabled user's stream ends");
    for url in [&feed, &watch] {
        assert_eq!(open(url).await.status(), StatusCode::UNAUTHORIZED, "{url}");
    }
}

/// Issue 13, point 7: the same-origin rule holds for every server function
/// (at its real path, with its hash suffix) whatever headers come with the
/// session cookie; a bearer token without the cookie is not a browser's.
#[tokio::test]
async fn server_functions_refuse_cross_origin_cookie_requests_whatever_headers_come() {
    use graycast::api::admin::CreateEnvironment;
    use leptos::server_fn::ServerFn;
    let app = spawn_app().await;
    let paths: Vec<_> = leptos::server_fn::axum::server_fn_paths().collect();
    assert!(
        paths.iter().any(|(p, _)| *p == CreateEnvironment::PATH),
        "{paths:?}"
    );
    assert!(
        paths.len() >= 20,
        "every server function is listed: {paths:?}"
    );
    for (path, method) in &paths {
        // A GET server function would be a change the rule does not see.
        assert_eq!(*method, Method::POST, "{path}");
        for authorization in [
            None,
            Some("Basic YWRtaW46YWRtaW4tcGFzc3dvcmQ="),
            Some("Bearer not-a-token"),
        ] {
            let mut request = app
                .admin
                .post(app.url(path))
                .header("Origin", "http://evil.example");
            if let Some(value) = authorization {
                request = request.header("Authorization", value);
            }
            let r = request.form(&[("name", "evil")]).send().await.unwrap();
            let status = r.status();
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{path} with {authorization:?}: {}",
                r.text().await.unwrap()
            );
        }
    }
    let r = app
        .admin
        .post(app.url(CreateEnvironment::PATH))
        .header("Origin", "http://evil.example")
        .header("Authorization", "Basic YWRtaW46YWRtaW4tcGFzc3dvcmQ=")
        .form(&[("name", "evil")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (_, environments) = app.get_json("/api/v1/environments").await;
    assert!(
        !environments.to_string().contains("evil"),
        "nothing was created: {environments}"
    );
    // From the dashboard's own origin the same call works.
    let r = app
        .admin
        .post(app.url(CreateEnvironment::PATH))
        .header("Origin", app.base.clone())
        .form(&[("name", "good")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    // A bearer token without the cookie passes, whatever the Origin.
    let token = app.token("automation", "admin", None, None).await;
    let r = client()
        .post(app.url("/api/v1/environments"))
        .bearer_auth(&token)
        .header("Origin", "http://evil.example")
        .json(&json!({ "name": "by-token" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}
