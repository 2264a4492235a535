//! Issue 25, points 4–7, through the scheduler: the outbound policy applies to guards, a failing
//! webhook's body stays out of views and the audit unless its guard quotes answers, credentials
//! in guard URLs are shown to nobody (and still reach the probe's target), and probes in flight
//! are capped server-wide. Every target is on loopback.

use super::*;
use axum::extract::RawQuery;
use axum::http::{HeaderMap, StatusCode as Code};
use axum::Router;
use graycast::server::probe::policy::DENIED;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A webhook on loopback answering every call `status` with `body`; it records each call's authorization
/// header and query.
struct Hook {
    url: String,
    calls: Arc<Mutex<Vec<(String, String)>>>,
}

impl Hook {
    async fn start(status: u16, body: &'static str) -> Self {
        let calls: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let seen = calls.clone();
        let router = Router::new().fallback(move |headers: HeaderMap, query: RawQuery| {
            let seen = seen.clone();
            async move {
                let authorization = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                seen.lock()
                    .unwrap()
                    .push((authorization, query.0.unwrap_or_default()));
                let code = Code::from_u16(status).unwrap();
                (code, body)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/check", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, calls }
    }

    fn calls(&self) -> usize {
        self.calls.lock().unwrap().len()
    }
}

fn webhook(url: &str, extra: Value) -> Value {
    let mut guard = json!({"kind": "webhook", "url": url, "interval_secs": 1, "failures": 1,
                           "timeout_secs": 2});
    guard
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    guard
}

/// The audit entries `q` finds.
async fn search(app: &TestApp, q: &str) -> Vec<Value> {
    let (status, body) = app
        .get_json(&format!("/api/v1/audit?q={q}&limit=500"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["entries"].as_array().unwrap().clone()
}

/// The whole audit trail as text.
async fn audit_text(app: &TestApp) -> String {
    let (_, body) = app.get_json("/api/v1/audit?limit=500").await;
    body.to_string()
}

#[tokio::test]
async fn the_default_policy_refuses_a_guard_on_loopback_without_calling_it() {
    let app = spawn_app_with(|c| {
        c.plan_tick = TICK;
        c.min_probe_interval_secs = 1;
    })
    .await;
    app.namespace(NS).await;
    config(&app, "app.json").await;
    let hook = Hook::start(200, "").await;
    let lane = start(
        &app,
        "app.json",
        json!({"version": 2, "plan": plan_body(&[(10.0, 3600), (100.0, 1)],
            json!({"guards": [webhook(&hook.url, json!({}))]}))}),
    )
    .await;
    let aborted = wait_plan(&app, "app.json", &lane, "the abort", |p| {
        p["state"] == "aborted"
    })
    .await;
    let at = hook
        .url
        .trim_start_matches("http://")
        .trim_end_matches("/check");
    assert_eq!(
        aborted["reason"],
        format!("webhook guard: could not be called: {at}: {DENIED} (1 in a row, limit 1)")
    );
    assert_eq!(hook.calls(), 0, "the hook was never called");
}

#[tokio::test]
async fn a_failing_webhooks_answer_is_kept_only_when_its_guard_quotes_it() {
    let app = app().await;
    let hook = Hook::start(503, "db password is hunter2\nstack").await;
    for (key, quote) in [("plain.json", false), ("quoted.json", true)] {
        config(&app, key).await;
        let lane = start(
            &app,
            key,
            json!({"version": 2, "plan": plan_body(&[(10.0, 3600), (100.0, 1)],
                json!({"guards": [webhook(&hook.url, json!({"quote_body": quote}))]}))}),
        )
        .await;
        let aborted = wait_plan(&app, key, &lane, "the abort", |p| p["state"] == "aborted").await;
        let expected = if quote {
            r#"webhook guard: answered 503: "db password is hunter2" (1 in a row, limit 1)"#
        } else {
            "webhook guard: answered 503 (1 in a row, limit 1)"
        };
        assert_eq!(aborted["reason"], expected);
        assert_eq!(aborted["guards"][0]["message"], expected);
        assert_eq!(aborted["guards"][0]["value"], 503.0);
        assert_eq!(aborted["plan"]["guards"][0]["quote_body"], quote);
        let found = search(&app, "hunter2").await;
        if quote {
            assert!(!found.is_empty(), "the opted-in quote is in the audit");
        } else {
            assert_eq!(
                found,
                Vec::<Value>::new(),
                "nothing of the answer in the audit"
            );
            assert!(!aborted.to_string().contains("hunter2"), "{aborted}");
        }
    }
}

#[tokio::test]
async fn credentials_in_guard_urls_are_shown_to_nobody_and_still_sent() {
    let app = app().await;
    config(&app, "app.json").await;
    let hook = Hook::start(200, "").await;
    let secret_url = hook
        .url
        .replace("http://", "http://hook:s3cret@")
        .replace("/check", "/check?token=t0ken&tenant=a");
    let shown_url = hook
        .url
        .replace("http://", "http://***@")
        .replace("/check", "/check?token=***&tenant=***");
    let plan = plan_body(
        &[(10.0, 3600), (100.0, 1)],
        json!({"guards": [webhook(&secret_url, json!({}))]}),
    );
    let lane = start(&app, "app.json", json!({"version": 2, "plan": plan})).await;

    // The probe authenticates: the hook got the credentials and the token.
    let passing = wait_plan(&app, "app.json", &lane, "a passing call", |p| {
        p["guards"][0]["status"] == "passing"
    })
    .await;
    let (authorization, query) = hook.calls.lock().unwrap()[0].clone();
    assert_eq!(authorization, "Basic aG9vazpzM2NyZXQ=");
    assert_eq!(query, "token=t0ken&tenant=a");

    // A viewer limited to the environment sees the plan without them; so does the admin.
    let viewer = app.user("vera", "viewer", Some(ENV)).await;
    let r = viewer
        .get(app.url(&lane_path("app.json", &lane["id"], "/plan")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let seen: Value = r.json().await.unwrap();
    for view in [&seen, &passing] {
        assert_eq!(view["plan"]["guards"][0]["url"], shown_url, "{view}");
        let text = view.to_string();
        assert!(
            !text.contains("s3cret") && !text.contains("t0ken"),
            "{text}"
        );
    }

    // A template with the same guard: listed without them.
    let (status, created) = app
        .post_json(
            &format!("/api/v1/rollout-templates?env={ENV}"),
            json!({"name": "hooked", "plan": plan_body(&[(10.0, 60)],
                json!({"guards": [webhook(&secret_url, json!({"interval_secs": 30}))]}))}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["plan"]["guards"][0]["url"], shown_url);
    let r = viewer
        .get(app.url(&format!("/api/v1/rollout-templates?env={ENV}")))
        .send()
        .await
        .unwrap();
    let listed = r.text().await.unwrap();
    assert!(
        listed.contains("hooked") && !listed.contains("s3cret"),
        "{listed}"
    );

    // The audit (lane.create, rollout.start, template.create) keeps nothing to search for.
    for secret in ["s3cret", "t0ken"] {
        assert_eq!(search(&app, secret).await, Vec::<Value>::new(), "{secret}");
    }
    let trail = audit_text(&app).await;
    assert!(trail.contains("rollout.start") && trail.contains("template.create"));
    assert!(
        !trail.contains("s3cret") && !trail.contains("t0ken"),
        "{trail}"
    );

    // A plan copied from a view is refused, naming the hidden part; the template by its name
    // runs with the real URL.
    config(&app, "copy.json").await;
    let copied = json!({"steps": seen["plan"]["steps"], "guards": seen["plan"]["guards"]});
    let (status, body) = app
        .post_json(&lanes("copy.json"), json!({"version": 2, "plan": copied}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "plan.guards[0].url");
    let (status, body) = app
        .post_json(
            &lanes("copy.json"),
            json!({"version": 2, "template": "hooked"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // A refused URL is not echoed with its credentials either.
    let (status, body) = app
        .post_json(
            &lanes("copy.json"),
            json!({"version": 2, "plan": plan_body(&[(10.0, 1)],
                json!({"guards": [webhook("ftp://hook:s3cret@h/?token=t0ken", json!({}))]}))}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let text = body.to_string();
    assert!(
        text.contains("not an http") && !text.contains("s3cret") && !text.contains("t0ken"),
        "{text}"
    );
}

/// A loopback listener that accepts and never answers, counting the connections open at once
/// (a connection is open until the prober closes it) and the most ever open.
struct Silent {
    url: String,
    accepted: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl Silent {
    async fn start() -> Self {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let (accepted, open, peak) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let (a, o, p) = (accepted.clone(), open.clone(), peak.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                let now = o.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                let o = o.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            url,
            accepted,
            peak,
        }
    }
}

#[tokio::test]
async fn probes_in_flight_are_capped_across_plans_and_the_rest_wait_as_no_data() {
    const CAP: usize = 3;
    let app = spawn_app_with(|c| {
        c.plan_tick = TICK;
        crate::probes::allow_loopback(c);
        c.min_probe_interval_secs = 1;
        c.max_probes_in_flight = CAP;
    })
    .await;
    app.namespace(NS).await;
    let silent = Silent::start().await;
    let guards: Vec<Value> = (0..5)
        .map(|_| webhook(&silent.url, json!({"failures": 100, "timeout_secs": 1})))
        .collect();
    let mut started = Vec::new();
    for key in ["a.json", "b.json"] {
        config(&app, key).await;
        let body = json!({"version": 2, "plan": plan_body(&[(10.0, 3600), (100.0, 1)],
            json!({"guards": guards}))});
        started.push((key, start(&app, key, body).await));
    }
    // Ten guards, a call each second that waits a second for nothing: several rounds.
    eventually("several rounds of probes", || async {
        (silent.accepted.load(Ordering::SeqCst) >= 4 * CAP).then_some(())
    })
    .await;
    assert!(
        silent.peak.load(Ordering::SeqCst) <= CAP,
        "at most {CAP} connections at once, saw {}",
        silent.peak.load(Ordering::SeqCst)
    );
    let (key, lane) = &started[0];
    let skipped = wait_plan(&app, key, lane, "a skipped probe", |p| {
        p["guards"].as_array().unwrap().iter().any(|g| {
            g["message"]
                .as_str()
                .is_some_and(|m| m.contains("not probed this time"))
        })
    })
    .await;
    let guard = skipped["guards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["message"].as_str().unwrap().contains("not probed"))
        .unwrap()
        .clone();
    assert_eq!(guard["status"], "no_data", "{guard}");
    assert_eq!(
        guard["message"],
        format!(
            "webhook guard: not probed this time: {CAP} probes were running on the server, the most it runs at once"
        )
    );
    assert!(silent.peak.load(Ordering::SeqCst) <= CAP);
}

#[tokio::test]
async fn new_plans_keep_to_five_polled_guards_polled_at_most_every_five_seconds() {
    let app = crate::common::spawn_app().await;
    app.namespace(NS).await;
    config(&app, "app.json").await;
    let url = "http://hooks.example/check";
    let refused = |guards: Vec<Value>| {
        let app = &app;
        async move {
            let (status, body) = app
                .post_json(
                    &lanes("app.json"),
                    json!({"version": 2, "plan": plan_body(&[(10.0, 60)], json!({"guards": guards}))}),
                )
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            (
                body["error"]["field"].clone(),
                body["error"]["message"].clone(),
            )
        }
    };
    let six = vec![webhook(url, json!({"interval_secs": 30})); 6];
    let (field, message) = refused(six).await;
    assert_eq!(field, "plan.guards");
    assert!(
        message
            .as_str()
            .unwrap()
            .contains("at most 5 prometheus and webhook guards, not 6"),
        "{message}"
    );
    let (field, message) = refused(vec![webhook(url, json!({"interval_secs": 4}))]).await;
    assert_eq!(field, "plan.guards[0].interval_secs");
    assert!(message.as_str().unwrap().contains("every 5 s"), "{message}");
    let (status, body) = app
        .post_json(
            "/api/v1/rollout-templates?env=prod",
            json!({"name": "fast", "plan": plan_body(&[(10.0, 60)],
                json!({"guards": [webhook(url, json!({"interval_secs": 1}))]}))}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "plan.guards[0].interval_secs");
    let five = vec![webhook(url, json!({"interval_secs": 5})); 5];
    let (status, body) = app
        .post_json(
            &lanes("app.json"),
            json!({"version": 2, "plan": plan_body(&[(10.0, 60)], json!({"guards": five}))}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
