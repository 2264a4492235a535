//! Reports and the instances list: who runs what, retention, the live feed,
//! and the caps per token.

use super::*;

/// A failure outlives the reports after it until the instance applies that version or a newer
/// one: back on stable after an abort, the instance still says why it left the lane.
#[tokio::test]
async fn a_failure_stays_until_the_instance_applies_that_version_or_a_newer_one() {
    let app = spawn_app().await;
    app.namespace(NS).await;
    config_with_versions(&app, "app.json", &["{}", r#"{"a":1}"#, r#"{"a":2}"#]).await;
    app.release(NS, ENV, "app.json", 1, "").await;
    let token = subscriber_token(&app).await;
    let mut stream = watch(&app, &token, "keys=app.json&client_id=pod-7").await;
    stream.next_event().await;
    let report = |version: i64, status: &str, message: Option<&str>| {
        json!({"client_id": "pod-7", "namespace": NS, "env": ENV, "key": "app.json",
               "version": version, "status": status, "message": message})
    };
    let send = |body: Value| {
        let (app, token) = (&app, &token);
        async move {
            let r = app.post_with(token, "/api/v1/report", body).await;
            assert_eq!(r.status(), StatusCode::NO_CONTENT);
        }
    };
    let failure = || async {
        instance(&app, "pod-7").await.unwrap()["configs"]["app.json"]["failure"].clone()
    };
    send(report(1, "applied", None)).await;
    assert_eq!(failure().await, Value::Null, "nothing failed yet");
    send(report(2, "failed", Some(r#"unknown directive "gzip""#))).await;
    // Read (which writes what is pending) before the next report: reports are batched, and a
    // batch keeps only an instance's latest report per key.
    assert_eq!(failure().await["version"], 2);
    send(report(1, "applied", None)).await;
    let kept = failure().await;
    assert_eq!(kept["version"], 2, "{kept}");
    assert_eq!(kept["message"], r#"unknown directive "gzip""#);
    assert!(kept["at"].as_str().unwrap().ends_with('Z'));
    let listed = instance(&app, "pod-7").await.unwrap();
    assert_eq!(
        listed["configs"]["app.json"]["status"], "applied",
        "the last report is the applied one"
    );
    send(report(3, "applied", None)).await;
    assert_eq!(
        failure().await,
        Value::Null,
        "a newer version applied: the failure is over"
    );
}

#[tokio::test]
async fn reports_and_instances_show_who_runs_what() {
    let app = spawn_app().await;
    app.namespace(NS).await;
    config_with_versions(&app, "app.json", &["{}", r#"{"a":1}"#]).await;
    app.release(NS, ENV, "app.json", 1, "").await;
    let token = subscriber_token(&app).await;
    let mut stream = watch(
        &app,
        &token,
        "keys=app.json&client_id=pod-1&labels=region=beijing,zone=a",
    )
    .await;
    stream.next_event().await;

    let listed = instance(&app, "pod-1").await.expect("pod-1 is listed");
    assert_eq!(listed["connected"], true);
    assert_eq!(listed["labels"], json!({"region": "beijing", "zone": "a"}));
    assert!(listed["connected_at"].as_str().unwrap().ends_with('Z'));
    assert!(listed["last_seen"].is_string());
    assert_eq!(listed["configs"]["app.json"]["served"], 1);
    assert_eq!(listed["configs"]["app.json"]["lane"], Value::Null);
    assert_eq!(listed["configs"]["app.json"]["status"], Value::Null);

    let report = |version: i64, status: &str, message: Option<&str>| {
        json!({"client_id": "pod-1", "namespace": NS, "env": ENV, "key": "app.json",
               "version": version, "status": status, "message": message})
    };
    let r = app
        .post_with(&token, "/api/v1/report", report(1, "applied", None))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let listed = instance(&app, "pod-1").await.unwrap();
    let app_json = &listed["configs"]["app.json"];
    assert_eq!(
        (app_json["applied"].as_i64(), app_json["status"].as_str()),
        (Some(1), Some("applied"))
    );

    app.release(NS, ENV, "app.json", 2, "").await;
    assert_eq!(stream.next_event().await.json()["version"], 2);
    let r = app
        .post_with(
            &token,
            "/api/v1/report",
            report(2, "failed", Some("reload exited with 1")),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let app_json = instance(&app, "pod-1").await.unwrap()["configs"]["app.json"].clone();
    assert_eq!(
        app_json,
        json!({"served": 2, "lane": null, "applied": 1, "status": "failed",
               "message": "reload exited with 1", "reported": 2,
               "reported_at": app_json["reported_at"],
               "failure": {"version": 2, "message": "reload exited with 1",
                           "at": app_json["reported_at"]}}),
        "the last good version stays as applied"
    );

    // Refusals.
    let r = app
        .post_with(&token, "/api/v1/report", report(2, "maybe", None))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let mut elsewhere = report(1, "applied", None);
    elsewhere["namespace"] = json!("other");
    let r = app.post_with(&token, "/api/v1/report", elsewhere).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = reqwest::Client::new()
        .post(app.url("/api/v1/report"))
        .json(&report(1, "applied", None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let path = format!("/api/v1/namespaces/{NS}/envs/{ENV}/instances");
    assert_eq!(
        app.get_with(&token, &path).await.status(),
        StatusCode::FORBIDDEN,
        "viewer role needed"
    );
    let viewer = app.token("viewer", "viewer", Some(NS), None).await;
    assert_eq!(app.get_with(&viewer, &path).await.status(), StatusCode::OK);
    let (status, _) = app
        .get_json("/api/v1/namespaces/nope/envs/prod/instances")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Disconnected instances stay listed, as disconnected.
    drop(stream);
    let gone = wait_for_instance(&app, "pod-1", |i| i["connected"] == false).await;
    assert_eq!(gone["configs"]["app.json"]["served"], 2);
}

#[tokio::test]
async fn disconnected_instances_are_forgotten_after_the_retention_period() {
    // An hour's retention: only the test's clock ends it.
    let hour = Duration::from_secs(3600);
    let app = spawn_app_with(|c| c.instance_retention = hour).await;
    app.namespace(NS).await;
    let token = subscriber_token(&app).await;
    let stream = watch(&app, &token, "client_id=short-lived").await;
    assert_eq!(
        instance(&app, "short-lived").await.unwrap()["connected"],
        true
    );
    drop(stream);
    wait_for_instance(&app, "short-lived", |i| i["connected"] == false).await;
    app.clock.advance(hour);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while instance(&app, "short-lived").await.is_some() {
        assert!(tokio::time::Instant::now() < deadline, "never forgotten");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_live_instances_feed_follows_connects_reports_and_releases() {
    let app = spawn_app().await;
    app.namespace(NS).await;
    config_with_versions(&app, "app.json", &["{}", r#"{"a":1}"#]).await;
    app.release(NS, ENV, "app.json", 1, "").await;
    let token = subscriber_token(&app).await;
    let viewer = app.token("viewer", "viewer", Some(NS), None).await;
    let feed_url = app.url(&format!(
        "/api/v1/namespaces/{NS}/envs/{ENV}/instances/stream"
    ));
    assert_eq!(
        sse::request(&feed_url, &token, None).await.status(),
        StatusCode::FORBIDDEN
    );
    let mut feed = sse::open(&feed_url, &viewer, None).await;
    let first = feed.next_event().await;
    assert_eq!(
        (first.event.as_str(), first.json()),
        ("instances", json!({"instances": [], "next_after": null}))
    );

    // Each change comes as the one instance, as the list shows it.
    let mut pod = watch(&app, &token, "keys=app.json&client_id=pod-1").await;
    pod.next_event().await;
    let served = |e: &SseEvent| {
        e.event == "instance"
            && e.json()["client_id"] == "pod-1"
            && e.json()["configs"]["app.json"]["served"] == 1
    };
    feed.until(served).await;
    app.release(NS, ENV, "app.json", 2, "").await;
    feed.until(|e| e.event == "instance" && e.json()["configs"]["app.json"]["served"] == 2)
        .await;
    app.post_with(
        &token,
        "/api/v1/report",
        json!({"client_id": "pod-1", "namespace": NS, "env": ENV, "key": "app.json",
               "version": 2, "status": "applied"}),
    )
    .await;
    let applied = feed
        .until(|e| e.event == "instance" && e.json()["configs"]["app.json"]["applied"] == 2)
        .await;
    // A heartbeat may move `last_seen` in between.
    let without_last_seen = |mut instance: Value| {
        instance.as_object_mut().unwrap().remove("last_seen");
        instance
    };
    assert_eq!(
        without_last_seen(applied.last().unwrap().json()),
        without_last_seen(instance(&app, "pod-1").await.unwrap()),
        "the event is the instance as listed"
    );
    drop(pod);
    feed.until(|e| e.event == "instance" && e.json()["connected"] == false)
        .await;

    // Session cookies work too (the dashboard's EventSource).
    let r = app.admin.get(&feed_url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// Issue 13, point 11: reports only from instances that watch (or watched
/// within the retention period) with the same token, about configs that exist.
#[tokio::test]
async fn reports_come_only_from_instances_watching_with_the_same_token() {
    // An hour's retention: only the test's clock ends it.
    let hour = Duration::from_secs(3600);
    let app = spawn_app_with(|c| c.instance_retention = hour).await;
    app.namespace(NS).await;
    config_with_versions(&app, "app.json", &["{}"]).await;
    app.release(NS, ENV, "app.json", 1, "").await;
    let token = subscriber_token(&app).await;
    let other_token = app
        .token("other-watcher", "subscriber", Some(NS), Some(ENV))
        .await;
    let report = |client_id: &str, key: &str| {
        json!({"client_id": client_id, "namespace": NS, "env": ENV, "key": key,
               "version": 1, "status": "applied"})
    };
    let mut stream = watch(&app, &token, "keys=app.json&client_id=pod-1").await;
    stream.until_synced().await;

    let r = app
        .post_with(&token, "/api/v1/report", report("pod-1", "app.json"))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // Invented instances, another token's instance, and a key that does not exist.
    for i in 0..50 {
        let r = app
            .post_with(
                &token,
                "/api/v1/report",
                report(&format!("ghost-{i}"), "app.json"),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(crate::common::error_code(r).await, "conflict");
    }
    let r = app
        .post_with(&other_token, "/api/v1/report", report("pod-1", "app.json"))
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = app
        .post_with(&token, "/api/v1/report", report("pod-1", "invented.json"))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let listed = instances(&app).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        listed[0]["configs"].as_object().unwrap().len(),
        1,
        "{listed:?}"
    );

    // Disconnected, it may still report (e.g. the reload finished after the
    // stream broke) until the retention period is over.
    drop(stream);
    wait_for_instance(&app, "pod-1", |i| i["connected"] == false).await;
    let r = app
        .post_with(&token, "/api/v1/report", report("pod-1", "app.json"))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    app.clock.advance(hour);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let r = app
            .post_with(&token, "/api/v1/report", report("pod-1", "app.json"))
            .await;
        if r.status() == StatusCode::CONFLICT {
            break;
        }
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert!(tokio::time::Instant::now() < deadline, "never forgotten");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Issue 13, point 11: streams and client ids are capped per token; a
/// reconnect that replaces its own stream is never refused.
#[tokio::test]
async fn streams_and_instances_are_capped_per_token() {
    let app = spawn_app_with(|c| {
        c.max_streams_per_token = 2;
        c.max_instances_per_token = 3;
    })
    .await;
    app.namespace(NS).await;
    let token = subscriber_token(&app).await;
    let open = |client_id: &str| {
        let url = watch_url(&app, &format!("client_id={client_id}"));
        let token = token.clone();
        async move { sse::request(&url, &token, None).await }
    };
    let mut pod1 = sse::from_response(open("pod-1").await);
    let pod2 = sse::from_response(open("pod-2").await);
    pod1.until_synced().await;

    let refused = open("pod-3").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2 open watch streams"),
        "{body}"
    );
    // At the cap, pod-1 reconnecting (its old stream still open) replaces it.
    let mut again = sse::from_response(open("pod-1").await);
    again.until_synced().await;
    assert!(pod1.ends().await);

    // pod-2 leaves: pod-3 may come, as the third client id.
    drop(pod2);
    wait_for_instance(&app, "pod-2", |i| i["connected"] == false).await;
    let pod3 = sse::from_response(open("pod-3").await);
    drop(pod3);
    wait_for_instance(&app, "pod-3", |i| i["connected"] == false).await;
    // A fourth client id is refused while the others are within the retention period.
    let refused = open("pod-4").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("3 client ids"),
        "{body}"
    );
    // Known client ids come back; other tokens have limits of their own.
    let back = open("pod-2").await;
    assert_eq!(back.status(), StatusCode::OK);
    let other = app.token("other", "subscriber", Some(NS), None).await;
    let r = sse::request(&watch_url(&app, "client_id=pod-9"), &other, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(instances(&app).await.len(), 4);
}
