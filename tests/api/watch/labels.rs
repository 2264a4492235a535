//! Issue 25, finding 8: an instance's labels are bounded in number and size wherever it sends
//! them (the watch stream stores them; resolve evaluates them), with a 400 naming the limit.

use super::*;

/// `n` labels `k00=<value>`, `k01=<value>` …
fn labels(n: usize, value: &str) -> String {
    (0..n)
        .map(|i| format!("k{i:02}={value}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Labels over each limit, and what the refusal says.
fn over_the_limits() -> Vec<(String, &'static str)> {
    vec![
        (
            labels(33, "v"),
            "there are 33 labels; at most 32 are allowed",
        ),
        (
            format!("{}=v", "k".repeat(129)),
            "is 129 bytes long; at most 128 are allowed",
        ),
        (
            format!("k={}", "v".repeat(257)),
            "is 257 bytes long; at most 256 are allowed",
        ),
        (
            labels(16, &"v".repeat(256)),
            "labels are 4175 bytes long; at most 4096 are allowed",
        ),
    ]
}

async fn assert_refused(r: reqwest::Response, says: &str) {
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid", "{body}");
    assert_eq!(body["error"]["field"], "labels", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(says), "{message}");
    assert!(message.len() < 300, "the input is not echoed: {message}");
}

#[tokio::test]
async fn labels_over_the_limits_are_refused_on_watch_and_resolve() {
    let app = spawn_app().await;
    app.namespace(NS).await;
    config_with_versions(&app, "app.json", &["{}"]).await;
    app.release(NS, ENV, "app.json", 1, "").await;
    let token = subscriber_token(&app).await;
    let resolve = |query: &str| config_path(NS, ENV, "app.json", &format!("/resolve?{query}"));
    for (sent, says) in over_the_limits() {
        let url = watch_url(&app, &format!("client_id=pod-big&labels={sent}"));
        assert_refused(sse::request(&url, &token, None).await, says).await;
        let r = app
            .get_with(&token, &resolve(&format!("client_id=pod-1&labels={sent}")))
            .await;
        assert_refused(r, says).await;
        let r = reqwest::Client::new()
            .get(app.url(&resolve("client_id=pod-1")))
            .bearer_auth(&token)
            .header("X-Labels", &sent)
            .send()
            .await
            .unwrap();
        assert_refused(r, says).await;
    }

    // At every limit at once: accepted, stored and listed as sent.
    let mut most: Vec<String> = (0..15)
        .map(|i| format!("{}{i:02}={}", "k".repeat(126), "v".repeat(130)))
        .collect();
    most.extend((15..31).map(|i| format!("k{i:02}=v")));
    // The last one fills the total to the byte.
    most.push(format!("k31={}", "v".repeat(96)));
    let most = most.join(",");
    assert_eq!(most.len(), 4096);
    let mut stream = watch(&app, &token, &format!("client_id=pod-most&labels={most}")).await;
    stream.until_synced().await;
    let listed = instances(&app).await;
    assert_eq!(listed.len(), 1, "nothing refused was stored: {listed:?}");
    let labels = listed[0]["labels"].as_object().unwrap();
    assert_eq!(labels.len(), 32);
    assert_eq!(labels["k31"], "v".repeat(96));
    assert_eq!(labels[&format!("{}00", "k".repeat(126))], "v".repeat(130));
    let r = app
        .get_with(&token, &resolve(&format!("client_id=pod-1&labels={most}")))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}
