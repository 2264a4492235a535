//! Issue 17, point 6: the agent and the SDK take several server URLs and fail over between them
//! (docs/nodes.md#failover-of-clients), resuming the watch stream with `Last-Event-ID`.
//!
//! Two graycast nodes share one database only on PostgreSQL, so the "other node" here is the
//! same server restarted on the address of another list entry: a loopback port nobody listened
//! on until then.

use crate::common::{eventually, spawn_app, spawn_app_with, TestApp};
use clap::Parser;
use graycast::client::agent::{self, AgentArgs, AgentConfig};
use graycast::client::{Backoff, Client, ClientError, Update, WatchOptions, WatchState, Watcher};
use graycast::domain::Context;
use reqwest::StatusCode;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NS: &str = "shop";
const ENV: &str = "prod";
const PATIENCE: Duration = crate::common::PATIENCE;

/// A loopback address nobody listens on (until a test starts a server there).
fn unused_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn fast_backoff() -> Backoff {
    Backoff {
        base: Duration::from_millis(50),
        max: Duration::from_millis(500),
    }
}

/// Namespace `shop` with `app.json` and `db.yaml` released at version 1; a subscriber token.
async fn seeded(app: &TestApp) -> String {
    app.namespace(NS).await;
    app.config(NS, ENV, "app.json", "json", "{\"v\": 1}\n")
        .await;
    app.release(NS, ENV, "app.json", 1, "first").await;
    app.config(NS, ENV, "db.yaml", "yaml", "pool: 5\n").await;
    app.release(NS, ENV, "db.yaml", 1, "first").await;
    app.token("fleet", "subscriber", Some(NS), Some(ENV)).await
}

/// `graycast agent` as the command line would configure it.
#[derive(Parser)]
struct AgentCli {
    #[command(flatten)]
    args: AgentArgs,
}

fn agent_config(servers: &str, token: &str, dir: &Path, extra: &[&str]) -> AgentConfig {
    let reload = format!(
        "echo \"$GRAYCAST_KEY $GRAYCAST_VERSION\" >> {}",
        dir.join("reload.log").display()
    );
    let files = dir.join("configs");
    let mut argv = vec![
        "agent",
        "--server",
        servers,
        "--token",
        token,
        "--namespace",
        NS,
        "--env",
        ENV,
        "--client-id",
        "agent-1",
        "--dir",
        files.to_str().unwrap(),
        "--exec",
        &reload,
    ];
    argv.extend_from_slice(extra);
    let mut config = AgentConfig::try_from(AgentCli::try_parse_from(argv).unwrap().args).unwrap();
    config.backoff = fast_backoff();
    config
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

async fn file_is(path: &Path, content: &str) {
    eventually(&format!("{} to be {content:?}", path.display()), || async {
        (std::fs::read_to_string(path).ok()? == content).then_some(())
    })
    .await
}

async fn next(watcher: &mut Watcher) -> Update {
    tokio::time::timeout(PATIENCE, watcher.next())
        .await
        .expect("an update")
        .expect("the watcher is open")
}

async fn wait_until(what: &str, mut receiver: tokio::sync::watch::Receiver<u32>, at_least: u32) {
    tokio::time::timeout(PATIENCE, receiver.wait_for(|n| *n >= at_least))
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .unwrap();
}

async fn wait_synced(watcher: &Watcher, connections: u64) {
    tokio::time::timeout(PATIENCE, watcher.synced().wait_for(|n| *n >= connections))
        .await
        .expect("the stream catches up")
        .unwrap();
}

/// `(key, version, id)` of a config update.
fn config_of(update: &Update) -> (String, i64, i64) {
    match update {
        Update::Config { id, config } => (
            config.key.clone(),
            config.version,
            id.as_deref().unwrap().parse().unwrap(),
        ),
        other => panic!("{other:?}"),
    }
}

/// Waits until agent-1 reported `version` of `key` applied (the report reached the server).
async fn wait_applied(app: &TestApp, key: &str, version: i64) {
    let path = format!("/api/v1/namespaces/{NS}/envs/{ENV}/instances");
    eventually(&format!("agent-1 applied {key} v{version}"), || async {
        let (_, list) = app.get_json(&path).await;
        let instance = list["instances"]
            .as_array()?
            .iter()
            .find(|i| i["client_id"] == "agent-1")?
            .clone();
        let config: &Value = &instance["configs"][key];
        (config["status"] == "applied" && config["applied"] == version).then_some(())
    })
    .await
}

#[tokio::test]
async fn sdk_and_agent_move_to_the_next_server_and_resume_without_repeats() {
    let mut app = spawn_app().await;
    let token = seeded(&app).await;
    let spare = unused_address();
    let spare_url = format!("http://{spare}");
    let first_url = app.base.clone();
    // The dead entry first: both clients start on it and must move on.
    let servers = format!("{spare_url}, {first_url}");

    let client = Client::new(&servers, &token).unwrap();
    assert_eq!(client.servers(), [spare_url.as_str(), first_url.as_str()]);
    assert_eq!(client.server(), spare_url);
    let mut watcher = client.watch(WatchOptions::new(NS, ENV, "sdk-1").backoff(fast_backoff()));
    let mut updates = vec![next(&mut watcher).await, next(&mut watcher).await];
    assert_eq!(watcher.state(), WatchState::Connected);
    assert_eq!(client.server(), first_url, "moved past the dead server");
    wait_synced(&watcher, 1).await;
    assert!(watcher.try_next().is_none());

    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let files = dir.join("configs");
    let (stop_agent, stopped) = tokio::sync::oneshot::channel::<()>();
    let agent_task = tokio::spawn(agent::run(
        agent_config(&servers, &token, dir, &[]),
        async move {
            let _ = stopped.await;
        },
    ));
    file_is(&files.join("app.json"), "{\"v\": 1}\n").await;
    file_is(&files.join("db.yaml"), "pool: 5\n").await;
    wait_applied(&app, "app.json", 1).await;

    // The server goes away, and comes back on an address in neither list: both clients try
    // each entry in vain while a release is made there.
    let failures_before = *watcher.failures().borrow();
    app.restart_with(|_| {}).await;
    wait_until("a full round of failures", watcher.failures(), 2).await;
    assert_eq!(failures_before, 0);
    app.save(NS, ENV, "app.json", "{\"v\": 2}\n", 1).await;
    app.release(NS, ENV, "app.json", 2, "while the clients are away")
        .await;
    assert_ne!(watcher.state(), WatchState::Connected);
    assert!(!agent_task.is_finished(), "the agent keeps running");
    assert_eq!(read(&files.join("app.json")), "{\"v\": 1}\n", "kept");
    assert_eq!(read(&files.join("db.yaml")), "pool: 5\n", "kept");

    // Now the spare entry answers: the clients move there and resume with Last-Event-ID, so
    // the release made meanwhile arrives, once, and nothing already delivered comes again.
    app.restart_with(move |config| config.listen = spare).await;
    assert_eq!(app.base, spare_url);
    updates.push(next(&mut watcher).await);
    wait_synced(&watcher, 2).await;
    assert!(
        watcher.try_next().is_none(),
        "only what changed is sent on a resume"
    );
    assert_eq!(client.server(), spare_url);
    file_is(&files.join("app.json"), "{\"v\": 2}\n").await;
    wait_applied(&app, "app.json", 2).await;

    // Live again on the new server.
    app.save(NS, ENV, "db.yaml", "pool: 9\n", 1).await;
    app.release(NS, ENV, "db.yaml", 2, "after the move").await;
    updates.push(next(&mut watcher).await);
    file_is(&files.join("db.yaml"), "pool: 9\n").await;
    wait_applied(&app, "db.yaml", 2).await;

    let seen: Vec<(String, i64, i64)> = updates.iter().map(config_of).collect();
    let mut delivered: Vec<(&str, i64)> = seen.iter().map(|(k, v, _)| (k.as_str(), *v)).collect();
    delivered.sort();
    assert_eq!(
        delivered,
        [
            ("app.json", 1),
            ("app.json", 2),
            ("db.yaml", 1),
            ("db.yaml", 2)
        ],
        "{seen:?}"
    );
    assert_eq!((seen[2].0.as_str(), seen[2].1), ("app.json", 2), "{seen:?}");
    assert!(seen[2].2 > seen[0].2.max(seen[1].2), "{seen:?}");
    assert!(seen[3].2 > seen[2].2, "{seen:?}");
    // The agent reloaded each version once.
    let mut reloads: Vec<String> = read(&dir.join("reload.log"))
        .lines()
        .map(str::to_string)
        .collect();
    reloads.sort();
    assert_eq!(
        reloads,
        ["app.json 1", "app.json 2", "db.yaml 1", "db.yaml 2"]
    );

    watcher.close();
    let _ = stop_agent.send(());
    tokio::time::timeout(PATIENCE, agent_task)
        .await
        .expect("the agent stops")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn one_off_requests_and_agent_once_move_past_a_dead_server() {
    let app = spawn_app().await;
    let token = seeded(&app).await;
    let servers = format!("http://{},{}", unused_address(), app.base);
    let mut context = Context::new();
    context.insert("client_id".into(), "agent-1".into());
    let client = Client::new(&servers, &token).unwrap();
    let resolved = client
        .resolve(NS, ENV, "db.yaml", &context)
        .await
        .unwrap()
        .expect("released");
    assert_eq!(resolved.content, "pool: 5\n");
    assert_eq!(client.server(), app.base);

    // --once from the stream's snapshot, then with --keys through resolve, each in a fresh
    // process state: the dead server first both times.
    let temp = tempfile::tempdir().unwrap();
    let once = agent_config(&servers, &token, temp.path(), &["--once"]);
    agent::run(once, std::future::pending()).await.unwrap();
    let files = temp.path().join("configs");
    assert_eq!(read(&files.join("app.json")), "{\"v\": 1}\n");
    assert_eq!(read(&files.join("db.yaml")), "pool: 5\n");
    // Its reports went to the live server too.
    wait_applied(&app, "db.yaml", 1).await;
    let other = tempfile::tempdir().unwrap();
    let keyed = agent_config(
        &servers,
        &token,
        other.path(),
        &["--once", "--keys", "app.json"],
    );
    agent::run(keyed, std::future::pending()).await.unwrap();
    assert_eq!(read(&other.path().join("configs/app.json")), "{\"v\": 1}\n");
}

/// A load balancer whose node behind it is down: it answers every request 503, as nginx or
/// HAProxy do then. Counts the requests it answered.
async fn no_healthy_upstream() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let answered = Arc::new(AtomicUsize::new(0));
    let count = answered.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                count.fetch_add(1, Ordering::SeqCst);
                let body = "no healthy upstream";
                let answer = format!(
                    "HTTP/1.1 503 Service Unavailable\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (url, answered)
}

#[tokio::test]
async fn a_5xx_a_full_node_or_a_silent_one_is_left_for_the_next() {
    let (balancer, answered) = no_healthy_upstream().await;
    // A graycast node at its connection limit: it turns new connections away.
    let full = spawn_app_with(|config| {
        config.max_connections = 1;
        config.header_timeout = Duration::from_secs(600);
    })
    .await;
    let _slot = tokio::net::TcpStream::connect(full.base.trim_start_matches("http://"))
        .await
        .unwrap();
    eventually("the full node to turn requests away", || async {
        let answer = reqwest::get(full.url("/healthz")).await;
        answer
            .map_or(true, |r| r.status() == StatusCode::SERVICE_UNAVAILABLE)
            .then_some(())
    })
    .await;
    // A node that accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());

    let app = spawn_app().await;
    let token = seeded(&app).await;
    let client = Client::builder_many(&[&balancer, &full.base, &app.base], &token)
        .build()
        .unwrap();
    let mut context = Context::new();
    context.insert("client_id".into(), "sdk-1".into());
    let resolved = client.resolve(NS, ENV, "app.json", &context).await.unwrap();
    assert_eq!(resolved.unwrap().version, 1);
    assert_eq!(client.server(), app.base);
    assert_eq!(answered.load(Ordering::SeqCst), 1, "the 503 came first");

    let watching = Client::builder_many(&[&balancer, &full.base, &silent_url, &app.base], &token)
        .build()
        .unwrap();
    let mut watcher = watching.watch(
        WatchOptions::new(NS, ENV, "sdk-2")
            .backoff(fast_backoff())
            .idle_timeout(Duration::from_millis(300)),
    );
    assert!(matches!(next(&mut watcher).await, Update::Config { .. }));
    assert_eq!(watching.server(), app.base);
    assert_eq!(answered.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_4xx_from_the_first_server_is_not_a_reason_to_move() {
    // The token exists on the second server only: the first refuses it, as every node of
    // one cluster would.
    let first = spawn_app().await;
    let second = spawn_app().await;
    let token = seeded(&second).await;
    let servers = format!("{},{}", first.base, second.base);
    let client = Client::new(&servers, &token).unwrap();

    let mut context = Context::new();
    context.insert("client_id".into(), "sdk-1".into());
    match client.resolve(NS, ENV, "app.json", &context).await {
        Err(ClientError::Status { status, .. }) => assert_eq!(status, StatusCode::UNAUTHORIZED),
        other => panic!("{other:?}"),
    }
    assert_eq!(client.server(), first.base);

    let watcher = client.watch(WatchOptions::new(NS, ENV, "sdk-1").backoff(fast_backoff()));
    let mut states = watcher.states();
    tokio::time::timeout(PATIENCE, states.wait_for(|s| *s == WatchState::Closed))
        .await
        .expect("the watcher closes")
        .unwrap();
    let error = watcher.error().expect("it says why");
    assert!(error.contains("401"), "{error}");
    assert_eq!(client.server(), first.base);
    let (status, instances) = second
        .get_json(&format!("/api/v1/namespaces/{NS}/envs/{ENV}/instances"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        instances["instances"],
        serde_json::json!([]),
        "the second never saw it"
    );
}

#[tokio::test]
async fn the_agent_refuses_a_bad_server_list_before_it_starts() {
    let temp = tempfile::tempdir().unwrap();
    for (servers, says) in [
        (
            "http://127.0.0.1:1,,http://127.0.0.1:2",
            "item 2 of 3 is empty",
        ),
        (
            "http://127.0.0.1:1,http://127.0.0.1:1/",
            "listed twice (items 1 and 2)",
        ),
        ("http://127.0.0.1:1,http://10.0.0.7:8080", "--insecure"),
    ] {
        let config = agent_config(servers, "gc_x", temp.path(), &[]);
        let refused = agent::run(config, std::future::pending())
            .await
            .unwrap_err()
            .to_string();
        assert!(refused.contains(says), "{servers}: {refused}");
    }
    assert!(!temp.path().join("configs").exists());
}
