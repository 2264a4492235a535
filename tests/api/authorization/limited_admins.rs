use super::*;

// Issue 13, point 1: limited admins stay inside their limits. Users and
// environments are managed by admins without limits; tokens only inside the
// caller's own environment and namespace.

/// The admins with a limit: a user limited to staging, a token limited to the
/// `shop` namespace and a token limited to staging.
async fn limited_admins(app: &TestApp) -> [(&'static str, Caller); 3] {
    [
        (
            "staging admin (user)",
            Caller::User(app.user("sam", "admin", Some("staging")).await),
        ),
        (
            "shop admin (token)",
            Caller::Token(app.token("t-shop-admin", "admin", Some("shop"), None).await),
        ),
        (
            "staging admin (token)",
            Caller::Token(
                app.token("t-staging-admin", "admin", None, Some("staging"))
                    .await,
            ),
        ),
    ]
}

/// Status and JSON body of a request.
async fn status_of(
    app: &TestApp,
    caller: &Caller,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let r = send(app, caller, method, path, body).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

/// The names of the tokens `caller` lists, sorted.
async fn token_names(app: &TestApp, caller: &Caller) -> Vec<String> {
    let (status, tokens) = status_of(app, caller, Method::GET, "/api/v1/tokens", None).await;
    assert_eq!(status, 200, "{tokens}");
    let mut names: Vec<String> = tokens
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn limited_admins_cannot_create_or_change_users() {
    let app = spawn_app().await;
    let admins = limited_admins(&app).await;
    let admin_id = app.user_id("admin").await;
    let sam_id = app.user_id("sam").await;
    for (i, (who, caller)) in admins.iter().enumerate() {
        for (role, env) in [("admin", None), ("viewer", Some("staging"))] {
            let body = json!({
                "username": format!("u-{i}-{role}"), "password": "long-enough",
                "role": role, "env": env,
            });
            let (status, body) =
                status_of(&app, caller, Method::POST, "/api/v1/users", Some(body)).await;
            assert_eq!(status, 403, "{who} creates a {role} user: {body}");
            assert!(
                message(&body).contains("admin without limits"),
                "the refusal says whom to ask: {body}"
            );
        }
        let (status, _) = status_of(&app, caller, Method::GET, "/api/v1/users", None).await;
        assert_eq!(status, 403, "{who} lists users");
        for (target, change) in [
            (sam_id, json!({ "env": null })),
            (sam_id, json!({ "env": "prod" })),
            (admin_id, json!({ "disabled": true })),
            (admin_id, json!({ "role": "viewer" })),
        ] {
            let (status, body) = status_of(
                &app,
                caller,
                Method::PATCH,
                &format!("/api/v1/users/{target}"),
                Some(change.clone()),
            )
            .await;
            assert_eq!(
                status, 403,
                "{who} changes user {target} by {change}: {body}"
            );
        }
    }

    // The dashboard's server functions go through the same rule.
    {
        use leptos::server_fn::ServerFn;
        let Caller::User(sam) = &admins[0].1 else {
            unreachable!()
        };
        let r = sam
            .post(app.url(graycast::api::admin::ListUsers::PATH))
            .form(&[("", "")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = sam
            .post(app.url(graycast::api::admin::UpdateUser::PATH))
            .form(&[
                ("id", admin_id.to_string().as_str()),
                ("change[disabled]", "true"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }

    // Nothing changed: no new users, sam still limited, admin still enabled.
    let (_, users) = app.get_json("/api/v1/users").await;
    let users = users.as_array().unwrap();
    assert_eq!(users.len(), 2, "{users:?}");
    let sam = users.iter().find(|u| u["username"] == "sam").unwrap();
    assert_eq!(sam["env"], "staging");
    let admin = users.iter().find(|u| u["username"] == "admin").unwrap();
    assert_eq!(
        (admin["disabled"].clone(), admin["role"].clone()),
        (json!(false), json!("admin"))
    );
    assert!(app.audit("user.update").await.is_empty());

    // An admin without limits manages users, but not its own limits either.
    let (status, _) = app
        .post_json(
            "/api/v1/users",
            json!({ "username": "vic", "password": "long-enough", "role": "viewer", "env": "prod" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let r = app
        .admin
        .patch(app.url(&format!("/api/v1/users/{admin_id}")))
        .json(&json!({ "env": "staging" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn limited_admins_cannot_create_environments() {
    let app = spawn_app().await;
    let created = app.audit("environment.create").await.len();
    for (i, (who, caller)) in limited_admins(&app).await.iter().enumerate() {
        let (status, body) = status_of(
            &app,
            caller,
            Method::POST,
            "/api/v1/environments",
            Some(json!({ "name": format!("e{i}") })),
        )
        .await;
        assert_eq!(status, 403, "{who} creates an environment: {body}");
        assert!(message(&body).contains("admin without limits"), "{body}");
        let (status, _) = status_of(&app, caller, Method::GET, "/api/v1/environments", None).await;
        assert_eq!(status, 200, "{who} lists environments");
    }
    assert_eq!(app.audit("environment.create").await.len(), created);
    let (status, envs) = app.get_json("/api/v1/environments").await;
    assert_eq!(
        (status, envs.as_array().unwrap().len()),
        (StatusCode::OK, 3)
    );
}

#[tokio::test]
async fn limited_admins_mint_only_tokens_inside_their_limits() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    app.namespace("other").await;
    let [(_, sam), (_, shop_admin), _] = limited_admins(&app).await;

    // Absent limits are filled in with the caller's own.
    let (status, t) = status_of(
        &app,
        &sam,
        Method::POST,
        "/api/v1/tokens",
        Some(json!({ "name": "s-1", "role": "admin" })),
    )
    .await;
    assert_eq!(status, 201, "{t}");
    assert_eq!(
        (t["env"].clone(), t["namespace"].clone()),
        (json!("staging"), Value::Null)
    );
    let (status, t) = status_of(
        &app,
        &shop_admin,
        Method::POST,
        "/api/v1/tokens",
        Some(json!({ "name": "n-1", "role": "admin" })),
    )
    .await;
    assert_eq!(status, 201, "{t}");
    assert_eq!(
        (t["env"].clone(), t["namespace"].clone()),
        (Value::Null, json!("shop"))
    );
    let minted = Caller::Token(t["token"].as_str().unwrap().to_string());
    let (status, _) = status_of(
        &app,
        &minted,
        Method::GET,
        "/api/v1/namespaces/other/envs/prod/configs",
        None,
    )
    .await;
    assert_eq!(status, 403, "the minted token is limited to shop");
    let (status, _) = status_of(
        &app,
        &minted,
        Method::POST,
        "/api/v1/tokens",
        Some(json!({ "name": "n-2", "role": "viewer", "namespace": "other" })),
    )
    .await;
    assert_eq!(status, 403, "and cannot mint wider tokens either");

    // Narrower is fine; wider or elsewhere is refused.
    for (caller, body, expected) in [
        (
            &sam,
            json!({ "name": "s-2", "role": "viewer", "namespace": "shop" }),
            201,
        ),
        (
            &sam,
            json!({ "name": "s-3", "role": "viewer", "env": "staging" }),
            201,
        ),
        (
            &sam,
            json!({ "name": "s-4", "role": "viewer", "env": "prod" }),
            403,
        ),
        (
            &shop_admin,
            json!({ "name": "n-3", "role": "viewer", "env": "prod" }),
            201,
        ),
        (
            &shop_admin,
            json!({ "name": "n-4", "role": "viewer", "namespace": "shop" }),
            201,
        ),
        (
            &shop_admin,
            json!({ "name": "n-5", "role": "viewer", "namespace": "other" }),
            403,
        ),
    ] {
        let (status, answer) = status_of(
            &app,
            caller,
            Method::POST,
            "/api/v1/tokens",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, expected, "{body}: {answer}");
        if status == 403 {
            assert!(
                message(&answer).contains("leave"),
                "says what to do: {answer}"
            );
        }
    }
}

#[tokio::test]
async fn limited_admins_list_and_revoke_only_tokens_inside_their_limits() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    app.namespace("other").await;
    let [(_, sam), (_, shop_admin), (_, staging_admin)] = limited_admins(&app).await;
    let mut secrets = std::collections::HashMap::new();
    for (name, namespace, env) in [
        ("wide", None, None),
        ("prod", None, Some("prod")),
        ("staging", None, Some("staging")),
        ("shop", Some("shop"), None),
        ("other", Some("other"), None),
        ("shop-staging", Some("shop"), Some("staging")),
    ] {
        secrets.insert(name, app.token(name, "viewer", namespace, env).await);
    }
    let (_, tokens) = app.get_json("/api/v1/tokens").await;
    let ids: std::collections::HashMap<String, i64> = tokens
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["id"].as_i64().unwrap(),
            )
        })
        .collect();

    let staging_tokens = ["shop-staging", "staging", "t-staging-admin"];
    assert_eq!(token_names(&app, &sam).await, staging_tokens);
    assert_eq!(token_names(&app, &staging_admin).await, staging_tokens);
    assert_eq!(
        token_names(&app, &shop_admin).await,
        ["shop", "shop-staging", "t-shop-admin"]
    );

    for (who, caller, name, expected) in [
        ("sam", &sam, "wide", 403),
        ("sam", &sam, "prod", 403),
        ("sam", &sam, "shop", 403),
        ("sam", &sam, "t-shop-admin", 403),
        ("shop admin", &shop_admin, "wide", 403),
        ("shop admin", &shop_admin, "other", 403),
        ("shop admin", &shop_admin, "staging", 403),
        ("staging admin", &staging_admin, "t-shop-admin", 403),
        ("sam", &sam, "staging", 200),
        ("shop admin", &shop_admin, "shop", 200),
        ("staging admin", &staging_admin, "shop-staging", 200),
    ] {
        let (status, body) = status_of(
            &app,
            caller,
            Method::DELETE,
            &format!("/api/v1/tokens/{}", ids[name]),
            None,
        )
        .await;
        assert_eq!(status, expected, "{who} revokes {name}: {body}");
        if status == 403 {
            assert!(message(&body).contains("admin without limits"), "{body}");
        }
    }
    // Refused revocations changed nothing: those tokens still work.
    for name in ["wide", "prod", "other"] {
        assert_eq!(
            app.get_with(&secrets[name], "/api/v1/namespaces")
                .await
                .status(),
            StatusCode::OK,
            "{name} still works"
        );
    }
    let revoked: Vec<Value> = app.audit("token.revoke").await;
    assert_eq!(revoked.len(), 3, "{revoked:?}");
}

/// Issue 28, point 7: freeze windows are changed by admins allowed in the environment and not
/// limited to a namespace (a window holds every namespace); read by its viewers.
#[tokio::test]
async fn limited_admins_change_freeze_windows_only_in_their_environment() {
    let app = spawn_app().await;
    let admins = limited_admins(&app).await;
    let window = |who: &str| {
        json!({ "from": "2100-01-01T00:00:00Z", "to": "2100-01-02T00:00:00Z",
                "reason": format!("by {who}") })
    };
    let prod = "/api/v1/environments/prod/freezes";
    let staging = "/api/v1/environments/staging/freezes";
    let (status, made) = app.post_json(prod, window("admin")).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let in_prod = format!("{prod}/{}", made["id"]);
    for (who, caller) in &admins {
        let shop = who.starts_with("shop");
        let (status, body) = status_of(&app, caller, Method::POST, prod, Some(window(who))).await;
        assert_eq!(status, 403, "{who} freezes prod: {body}");
        let (status, body) = status_of(&app, caller, Method::DELETE, &in_prod, None).await;
        assert_eq!(status, 403, "{who} deletes a window of prod: {body}");
        let (status, body) = status_of(&app, caller, Method::GET, prod, None).await;
        assert_eq!(
            status,
            if shop { 200 } else { 403 },
            "{who} lists prod: {body}"
        );
        let (status, body) = status_of(&app, caller, Method::GET, staging, None).await;
        assert_eq!(status, 200, "{who} lists staging: {body}");

        let (status, body) =
            status_of(&app, caller, Method::POST, staging, Some(window(who))).await;
        if shop {
            assert_eq!(status, 403, "{who} freezes staging: {body}");
            assert!(message(&body).contains("every namespace"), "{body}");
            continue;
        }
        assert_eq!(status, 201, "{who} freezes staging: {body}");
        let (status, body) = status_of(
            &app,
            caller,
            Method::DELETE,
            &format!("{staging}/{}", body["id"]),
            None,
        )
        .await;
        assert_eq!(status, 204, "{who} deletes its window: {body}");
    }
    let (_, list) = app.get_json(prod).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(app.audit("freeze.create").await.len(), 3);
    assert_eq!(app.audit("freeze.delete").await.len(), 2);
}
