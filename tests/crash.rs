//! Crash recovery: the real binary is killed (`SIGKILL`) while eight writers
//! save and release, then restarted on the same database, several times. Each
//! restart must be ready quickly, and every write it acknowledged must be there.

// A test reads as one story from setup to the last assertion; the 100-line limit on
// functions (clippy.toml) is for the product's code.
#![allow(clippy::too_many_lines)]

#[path = "support/eventually.rs"]
mod eventually;
#[path = "support/server.rs"]
mod server;

use eventually::eventually_within;
use serde_json::{json, Value};
use server::{client, database, wait_ready, Server};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lines per saved version, each changed by every save: validation and the diff are real work.
const LINES: usize = 500;
const WRITERS: usize = 8;
const CRASHES: usize = 6;
const NS: &str = "shop";
const ENV: &str = "prod";

/// What a writer got acknowledged: versions (number, content) and releases (event id, version).
#[derive(Default, Clone)]
struct Acked {
    versions: Vec<(i64, String)>,
    releases: Vec<(i64, i64)>,
}

/// A JSON object of [`LINES`] lines, every one of which differs from one version to the next.
fn content_of(version: i64) -> String {
    let lines: Vec<String> = (0..LINES)
        .map(|i| format!("  \"k{i}\": {}", version * 7919 + i as i64))
        .collect();
    format!("{{\n{}\n}}\n", lines.join(",\n"))
}

/// Saves and releases `key` until the server stops answering; returns how far it got.
async fn writer(
    base: String,
    token: String,
    key: String,
    mut version: i64,
    acked: Arc<Mutex<Acked>>,
) {
    let http = client();
    let configs = format!("{base}/api/v1/namespaces/{NS}/envs/{ENV}/configs/{key}");
    loop {
        let content = content_of(version + 1);
        let saved = http
            .post(format!("{configs}/versions"))
            .bearer_auth(&token)
            .json(&json!({ "content": content, "base_version": version }))
            .send()
            .await;
        match saved {
            Ok(r) if r.status() == 201 => {
                let Ok(body) = r.json::<Value>().await else {
                    return;
                };
                version = body["version"].as_i64().unwrap();
                acked.lock().unwrap().versions.push((version, content));
            }
            // A save the crash cut off before its answer was committed after all:
            // go on from the latest version.
            Ok(r) if r.status() == 409 => {
                let Ok(r) = http
                    .get(format!("{configs}/versions"))
                    .bearer_auth(&token)
                    .send()
                    .await
                else {
                    return;
                };
                let Ok(page) = r.json::<Value>().await else {
                    return;
                };
                // The first page is newest first.
                version = page["versions"][0]["version"].as_i64().unwrap();
                continue;
            }
            // Backpressure (the content checks are all busy): try again, as clients should.
            Ok(r) if r.status() == 503 => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Ok(r) => panic!(
                "save refused: {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            ),
            Err(_) => return,
        }
        let released = http
            .post(format!("{configs}/release"))
            .bearer_auth(&token)
            .json(&json!({ "version": version }))
            .send()
            .await;
        match released {
            Ok(r) if r.status() == 201 => {
                let Ok(body) = r.json::<Value>().await else {
                    return;
                };
                let id = body["id"].as_i64().unwrap();
                acked.lock().unwrap().releases.push((id, version));
            }
            Ok(r) => panic!(
                "release refused: {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            ),
            Err(_) => return,
        }
    }
}

/// A list the API answers at `url`.
async fn get_list(http: &reqwest::Client, url: &str, token: &str) -> Vec<Value> {
    let r = http.get(url).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    r.json().await.unwrap()
}

/// Every acknowledged version has its content, every acknowledged release its event.
async fn check_acked(server: &Server, token: &str, key: &str, acked: &Acked) {
    let http = client();
    let configs = server.url(&format!("/api/v1/namespaces/{NS}/envs/{ENV}/configs/{key}"));
    for (version, content) in &acked.versions {
        let r = http
            .get(format!("{configs}/versions/{version}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{key}: version {version} was lost");
        let found: Value = r.json().await.unwrap();
        assert_eq!(
            found["content"],
            content.as_str(),
            "{key} version {version}"
        );
    }
    let list = get_list(&http, &format!("{configs}/releases"), token).await;
    for (id, version) in &acked.releases {
        let found = list.iter().find(|e| e["id"] == *id);
        let found = found.unwrap_or_else(|| panic!("{key}: release event {id} was lost"));
        assert_eq!(found["version"], *version, "{key}: release event {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_concurrent_writers_loses_nothing_and_restarts_ready() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = database(&dir).await;

    // Set up: a namespace, one config per writer, an admin token.
    let server = Server::start(&database_url);
    wait_ready(&server, Instant::now()).await;
    let admin = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let r = admin
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "username": "admin", "password": "admin-password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = admin
        .post(server.url("/api/v1/tokens"))
        .json(&json!({ "name": "writers", "role": "admin" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let token = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = admin
        .post(server.url("/api/v1/namespaces"))
        .json(&json!({ "name": NS }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let keys: Vec<String> = (0..WRITERS).map(|i| format!("w{i}.json")).collect();
    for key in &keys {
        let r = admin
            .post(server.url(&format!("/api/v1/namespaces/{NS}/envs/{ENV}/configs")))
            .json(&json!({ "key": key, "format": "json", "content": content_of(1) }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let acked: Vec<Arc<Mutex<Acked>>> = (0..WRITERS).map(|_| Arc::default()).collect();
    let mut server = server;
    let mut started = Instant::now();
    for round in 0..=CRASHES {
        // Round 0 starts the fresh server; every later one follows a crash.
        // Eight writers, each on its own config, from its latest acknowledged
        // version, at once: a restarted server is busy from its first moment.
        let writers: Vec<_> = keys
            .iter()
            .zip(&acked)
            .map(|(key, acked)| {
                let from = acked.lock().unwrap().versions.last().map_or(1, |v| v.0);
                tokio::spawn(writer(
                    server.base.clone(),
                    token.clone(),
                    key.clone(),
                    from,
                    acked.clone(),
                ))
            })
            .collect();
        let before: Vec<Acked> = acked.iter().map(|a| a.lock().unwrap().clone()).collect();
        wait_ready(&server, started).await;
        eprintln!(
            "round {round}: ready {:?} after the start",
            started.elapsed()
        );
        for (key, acked) in keys.iter().zip(&before) {
            check_acked(&server, &token, key, acked).await;
        }
        // Kill once every writer has had a few more writes acknowledged.
        let (acked, before) = (&acked, &before);
        eventually_within(
            "the writers to make progress",
            Duration::from_secs(30),
            Duration::from_millis(10),
            move || async move {
                acked
                    .iter()
                    .zip(before)
                    .all(|(a, b)| a.lock().unwrap().versions.len() >= b.versions.len() + 3)
                    .then_some(())
            },
        )
        .await;
        let log = server.log.clone();
        server.kill();
        for w in writers {
            w.await.expect("a writer panicked");
        }
        let total: usize = acked.iter().map(|a| a.lock().unwrap().versions.len()).sum();
        eprintln!(
            "round {round}: killed at {:?}, {total} versions acknowledged; warnings:",
            started.elapsed()
        );
        for line in log
            .lock()
            .unwrap()
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        {
            eprintln!("  {line}");
        }
        if round == CRASHES {
            break;
        }
        started = Instant::now();
        server = Server::start(&database_url);
    }
}
