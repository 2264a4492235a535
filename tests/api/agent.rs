//! Issue 6: the agent and the SDK end to end against the real server binary (so the server can
//! be stopped and started again on the same port, as a fixed `--server` URL needs).

use crate::common::eventually;
use graycast::client::{Backoff, Client, Update, WatchMode, WatchOptions, WatchState};
use graycast::domain::Context;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_graycast");
const ADMIN_PASSWORD: &str = "admin-password";
const NS: &str = "shop";
const ENV: &str = "prod";
/// How long a test waits for a condition before failing.
const PATIENCE: Duration = Duration::from_secs(60);

/// The tests of this file run one at a time: a stopped server's port must stay free for its
/// restart, and a server of a parallel test could otherwise be handed that very port.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A `graycast serve` process.
struct Server {
    child: Child,
    port: u16,
    base: String,
    admin: reqwest::Client,
}

impl Server {
    /// Starts the server on `port` (0 for any); `None` when that port cannot be bound.
    async fn try_start(dir: &Path, port: u16) -> Option<Server> {
        let mut child = Command::new(BIN)
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--database-url", &database_url(dir)])
            .args(["--admin-password", ADMIN_PASSWORD])
            .args(["--heartbeat-secs", "1"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(log_file(dir, "server.log"))
            .kill_on_drop(true)
            .spawn()
            .expect("server starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = tokio::time::timeout(PATIENCE, async {
            while let Some(line) = lines.next_line().await.ok()? {
                if let Some(addr) = line.split("listening on http://").nth(1) {
                    return addr.trim().rsplit(':').next()?.parse::<u16>().ok();
                }
            }
            None
        })
        .await
        .expect("server says where it listens or exits")?;
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let base = format!("http://127.0.0.1:{port}");
        let admin = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let r = admin
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "admin signs in; server log:\n{}",
            read(&dir.join("server.log"))
        );
        Some(Server {
            child,
            port,
            base,
            admin,
        })
    }

    async fn start(dir: &Path) -> Server {
        Self::try_start(dir, 0).await.expect("server starts")
    }

    /// Starts again on the port this server had (the agent's `--server` URL), retrying while the
    /// port is briefly unavailable.
    async fn restart(mut self, dir: &Path) -> Server {
        self.stop().await;
        Server::start_on(dir, self.port).await
    }

    async fn start_on(dir: &Path, port: u16) -> Server {
        for _ in 0..40 {
            if let Some(server) = Server::try_start(dir, port).await {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("port {port} stayed taken");
    }

    /// Kills the process: every open stream breaks at once, like a crash.
    async fn stop(&mut self) {
        if self.child.try_wait().unwrap().is_none() {
            self.child.kill().await.unwrap();
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .admin
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "POST {path}: {status} {body}");
        body
    }

    async fn get(&self, path: &str) -> Value {
        let r = self
            .admin
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        r.json().await.unwrap()
    }

    async fn setup(&self) -> String {
        self.post("/api/v1/namespaces", json!({"name": NS})).await;
        let token = self
            .post(
                "/api/v1/tokens",
                json!({"name": "agent", "role": "subscriber", "namespace": NS, "env": ENV}),
            )
            .await;
        token["token"].as_str().unwrap().to_string()
    }

    /// Creates `key` with `content` as version 1 and releases it.
    async fn create_released(&self, key: &str, format: &str, content: &str) {
        self.post(
            &format!("/api/v1/namespaces/{NS}/envs/{ENV}/configs"),
            json!({"key": key, "format": format, "content": content}),
        )
        .await;
        self.release(key, 1).await;
    }

    /// Saves the next version of `key` (after `base`) and releases it.
    async fn save_and_release(&self, key: &str, content: &str, base: i64) -> i64 {
        let version = self
            .post(
                &config(key, "/versions"),
                json!({"content": content, "base_version": base}),
            )
            .await;
        let version = version["version"].as_i64().unwrap();
        self.release(key, version).await;
        version
    }

    async fn release(&self, key: &str, version: i64) {
        self.post(&config(key, "/release"), json!({"version": version}))
            .await;
    }

    /// Waits until agent-1's report for `key` says it applied `version`.
    async fn wait_applied(&self, key: &str, version: i64) {
        eventually(
            &format!("{key} applied {version} in the instances list"),
            || async {
                let c = self.instance_config("agent-1", key).await?;
                (c["status"] == "applied" && c["applied"] == version).then_some(())
            },
        )
        .await
    }

    /// Waits until agent-1's report for `key` says failed; returns that report.
    async fn wait_failed(&self, key: &str) -> Value {
        eventually(&format!("{key} failed in the instances list"), || async {
            let c = self.instance_config("agent-1", key).await?;
            (c["status"] == "failed").then_some(c)
        })
        .await
    }

    async fn instance_config(&self, client_id: &str, key: &str) -> Option<Value> {
        let list = self
            .get(&format!("/api/v1/namespaces/{NS}/envs/{ENV}/instances"))
            .await;
        list["instances"]
            .as_array()?
            .iter()
            .find(|i| i["client_id"] == client_id)
            .map(|i| i["configs"][key].clone())
    }
}

fn config(key: &str, rest: &str) -> String {
    format!("/api/v1/namespaces/{NS}/envs/{ENV}/configs/{key}{rest}")
}

fn database_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("graycast.db").display())
}

fn log_file(dir: &Path, name: &str) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))
        .unwrap()
}

async fn file_is(path: &Path, content: &str) {
    eventually(&format!("{} to be {content:?}", path.display()), || async {
        (std::fs::read_to_string(path).ok()? == content).then_some(())
    })
    .await
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `graycast agent` with the usual flags plus `extra`.
fn agent(server: &Server, token: &str, dir: &Path, extra: &[&str]) -> Command {
    agent_at(&server.base, token, dir, extra)
}

fn agent_at(base: &str, token: &str, dir: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("agent")
        .args(["--server", base])
        .args(["--namespace", NS, "--env", ENV])
        .args(["--client-id", "agent-1", "--labels", "region=beijing"])
        .arg("--dir")
        .arg(dir.join("configs"))
        .args(extra)
        .env("GRAYCAST_TOKEN", token)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log_file(dir, "agent.out"))
        .stderr(log_file(dir, "agent.log"))
        .kill_on_drop(true);
    command
}

/// A reload command that logs `key version` and rejects any file containing "broken".
fn reload_command(dir: &Path) -> String {
    format!(
        "echo \"$GRAYCAST_KEY $GRAYCAST_VERSION $(basename \"$GRAYCAST_FILE\")\" >> {log}; \
         if grep -q broken \"$GRAYCAST_FILE\"; then echo 'checking config' >&2; \
         echo \"config rejected: broken value\" >&2; exit 1; fi",
        log = dir.join("reload.log").display()
    )
}

fn reloads(dir: &Path) -> Vec<String> {
    read(&dir.join("reload.log"))
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn agent_writes_configs_reloads_reports_and_restores_on_a_failed_reload() {
    let _serial = SERIAL.lock().await;
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let server = Server::start(dir).await;
    let token = server.setup().await;
    server
        .create_released("app.json", "json", "{\"v\": 1}\n")
        .await;
    server.create_released("db.yaml", "yaml", "pool: 5\n").await;
    server
        .post(
            &format!("/api/v1/namespaces/{NS}/envs/{ENV}/configs"),
            json!({"key": "draft.txt", "format": "text", "content": "not released"}),
        )
        .await;

    let exec = reload_command(dir);
    let _agent = agent(&server, &token, dir, &["--exec", &exec])
        .spawn()
        .unwrap();
    let files = dir.join("configs");
    file_is(&files.join("app.json"), "{\"v\": 1}\n").await;
    file_is(&files.join("db.yaml"), "pool: 5\n").await;
    assert!(
        !files.join("draft.txt").exists(),
        "unreleased configs are not written"
    );

    // A new release rewrites the file and runs the reload command with its key and version.
    server.save_and_release("app.json", "{\"v\": 2}\n", 1).await;
    file_is(&files.join("app.json"), "{\"v\": 2}\n").await;
    eventually("the reload of version 2", || async {
        reloads(dir)
            .contains(&"app.json 2 app.json".to_string())
            .then_some(())
    })
    .await;
    let mut first = reloads(dir)[..2].to_vec();
    first.sort();
    assert_eq!(first, ["app.json 1 app.json", "db.yaml 1 db.yaml"]);
    server.wait_applied("app.json", 2).await;

    // A release the reload command rejects: the previous file comes back, the server hears why.
    server
        .save_and_release("app.json", "{\"v\": \"broken\"}\n", 2)
        .await;
    let failed = server.wait_failed("app.json").await;
    assert_eq!(failed["reported"], 3, "{failed}");
    assert_eq!(failed["applied"], 2, "{failed}");
    let message = failed["message"].as_str().unwrap();
    assert!(
        message.contains("exit status 1") && message.contains("config rejected: broken value"),
        "{message}"
    );
    assert_eq!(read(&files.join("app.json")), "{\"v\": 2}\n", "restored");
    let state: Value = serde_json::from_str(&read(&files.join(".graycast/state.json"))).unwrap();
    assert_eq!(state["configs"]["app.json"]["version"], 2, "{state}");
    let leftovers: Vec<_> = std::fs::read_dir(&files)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The next good release goes through again.
    server.save_and_release("app.json", "{\"v\": 4}\n", 3).await;
    file_is(&files.join("app.json"), "{\"v\": 4}\n").await;
    server.wait_applied("app.json", 4).await;
}

#[tokio::test]
async fn agent_starts_offline_from_its_state_and_converges_after_a_server_restart() {
    let _serial = SERIAL.lock().await;
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let mut server = Server::start(dir).await;
    let token = server.setup().await;
    server
        .create_released("app.json", "json", "{\"v\": 1}\n")
        .await;
    server.create_released("db.yaml", "yaml", "pool: 5\n").await;
    let exec = reload_command(dir);
    let files = dir.join("configs");

    let mut agent1 = agent(&server, &token, dir, &["--exec", &exec])
        .spawn()
        .unwrap();
    file_is(&files.join("app.json"), "{\"v\": 1}\n").await;
    file_is(&files.join("db.yaml"), "pool: 5\n").await;
    eventually("the state file", || async {
        let state: Value = serde_json::from_str(&read(&files.join(".graycast/state.json"))).ok()?;
        (state["configs"].as_object()?.len() == 2).then_some(())
    })
    .await;
    agent1.kill().await.unwrap();

    // Server down, agent restarted: it keeps serving the last good files and keeps retrying.
    server.stop().await;
    let mut agent2 = agent(&server, &token, dir, &["--exec", &exec])
        .spawn()
        .unwrap();
    eventually("the agent to retry", || async {
        read(&dir.join("agent.log"))
            .contains("reconnecting in")
            .then_some(())
    })
    .await;
    assert!(
        agent2.try_wait().unwrap().is_none(),
        "the agent keeps running"
    );
    assert_eq!(read(&files.join("app.json")), "{\"v\": 1}\n");
    assert_eq!(read(&files.join("db.yaml")), "pool: 5\n");

    // Back on the same port, a release made after the restart reaches the file; the resume
    // (Last-Event-ID from the state file) sends only that change, so nothing else reloads.
    let server = server.restart(dir).await;
    server.save_and_release("app.json", "{\"v\": 2}\n", 1).await;
    file_is(&files.join("app.json"), "{\"v\": 2}\n").await;
    eventually("the reload of version 2", || async {
        (reloads(dir).len() == 3).then_some(())
    })
    .await;
    assert_eq!(reloads(dir)[2], "app.json 2 app.json");

    // And again while the agent is running: the server restarts, the agent converges.
    let server = server.restart(dir).await;
    server.save_and_release("db.yaml", "pool: 9\n", 1).await;
    file_is(&files.join("db.yaml"), "pool: 9\n").await;
    server.wait_applied("db.yaml", 2).await;
    assert_eq!(reloads(dir).len(), 4, "{:?}", reloads(dir));
    assert!(agent2.try_wait().unwrap().is_none());
}

/// A report the server could not take (it went down while the reload ran)
/// is kept in the state file and sent once the stream connects again.
#[tokio::test]
async fn agent_sends_a_report_the_server_missed_once_it_is_back() {
    missed_report(false).await;
}

/// The same across a restart of the agent: the state file keeps the report.
#[tokio::test]
async fn a_restarted_agent_sends_the_report_its_last_run_could_not() {
    missed_report(true).await;
}

async fn missed_report(restart_agent: bool) {
    let _serial = SERIAL.lock().await;
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let mut server = Server::start(dir).await;
    let token = server.setup().await;
    server
        .create_released("app.json", "json", "{\"v\": 1}\n")
        .await;
    // The reload waits for a gate file, so the server can be stopped meanwhile.
    let (started, gate) = (dir.join("reload-started"), dir.join("gate"));
    let exec = format!(
        "touch {}; while [ ! -e {} ]; do sleep 0.05; done",
        started.display(),
        gate.display()
    );
    let state_file = dir.join("configs/.graycast/state.json");
    let state = || serde_json::from_str::<Value>(&read(&state_file)).ok();
    let mut agent_run = agent(&server, &token, dir, &["--exec", &exec])
        .spawn()
        .unwrap();
    eventually("the reload to start", || async {
        started.exists().then_some(())
    })
    .await;
    server.stop().await;
    std::fs::write(&gate, "").unwrap();
    // With the event's id too: a restarted agent resumes after it and is not
    // sent the config again, so only the kept report can reach the server.
    eventually("the missed report in the state file", || async {
        let state = state()?;
        (state["unreported"]["app.json"]["status"] == "applied"
            && state["last_event_id"].is_string())
        .then_some(())
    })
    .await;
    if restart_agent {
        agent_run.kill().await.unwrap();
    }

    let server = Server::start_on(dir, server.port).await;
    if restart_agent {
        agent_run = agent(&server, &token, dir, &["--exec", &exec])
            .spawn()
            .unwrap();
    }
    server.wait_applied("app.json", 1).await;
    eventually("the state file to drop it", || async {
        state()?.get("unreported").is_none().then_some(())
    })
    .await;
    assert!(
        agent_run.try_wait().unwrap().is_none(),
        "the agent keeps running"
    );
}

async fn run_once(command: &mut Command) -> bool {
    tokio::time::timeout(PATIENCE, command.status())
        .await
        .expect("--once exits")
        .unwrap()
        .success()
}

#[tokio::test]
async fn once_fetches_writes_and_exits() {
    let _serial = SERIAL.lock().await;
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let mut server = Server::start(dir).await;
    let token = server.setup().await;
    server
        .create_released("app.json", "json", "{\"v\": 1}\n")
        .await;
    server.create_released("db.yaml", "yaml", "pool: 5\n").await;
    let files = dir.join("configs");

    // Every config, from the watch stream's initial events.
    assert!(run_once(&mut agent(&server, &token, dir, &["--once"])).await);
    assert_eq!(read(&files.join("app.json")), "{\"v\": 1}\n");
    assert_eq!(read(&files.join("db.yaml")), "pool: 5\n");

    // Given keys, through resolve, into another directory.
    let other = dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    assert!(
        run_once(&mut agent(
            &server,
            &token,
            &other,
            &["--once", "--keys", "db.yaml"]
        ))
        .await
    );
    assert_eq!(read(&other.join("configs/db.yaml")), "pool: 5\n");
    assert!(!other.join("configs/app.json").exists());

    // Server unreachable: fine with configs on disk, an error without.
    let base = server.base.clone();
    server.stop().await;
    assert!(run_once(&mut agent_at(&base, &token, dir, &["--once"])).await);
    assert_eq!(read(&files.join("app.json")), "{\"v\": 1}\n");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert!(!run_once(&mut agent_at(&base, &token, &empty, &["--once"])).await);
    assert!(
        !run_once(&mut agent_at(
            &base,
            &token,
            &empty,
            &["--once", "--keys", "app.json"]
        ))
        .await
    );
}

fn fast_backoff() -> Backoff {
    Backoff {
        base: Duration::from_millis(100),
        max: Duration::from_secs(1),
    }
}

/// Every state the watcher passes through, in order.
fn record(
    mut states: tokio::sync::watch::Receiver<WatchState>,
) -> std::sync::Arc<std::sync::Mutex<Vec<WatchState>>> {
    let history = std::sync::Arc::new(std::sync::Mutex::new(vec![*states.borrow_and_update()]));
    let sink = history.clone();
    tokio::spawn(async move {
        while states.changed().await.is_ok() {
            let state = *states.borrow_and_update();
            sink.lock().unwrap().push(state);
        }
    });
    history
}

async fn wait_state(states: &mut tokio::sync::watch::Receiver<WatchState>, state: WatchState) {
    let waited = tokio::time::timeout(PATIENCE, states.wait_for(|s| *s == state))
        .await
        .is_ok();
    assert!(
        waited,
        "timed out waiting for {state:?}; the watcher is {:?}",
        *states.borrow()
    );
}

async fn next(watcher: &mut graycast::client::Watcher) -> Update {
    tokio::time::timeout(PATIENCE, watcher.next())
        .await
        .expect("an update")
        .expect("the watcher is open")
}

#[tokio::test]
async fn sdk_watcher_reconnects_and_resumes_with_only_what_changed() {
    let _serial = SERIAL.lock().await;
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let server = Server::start(dir).await;
    let token = server.setup().await;
    server
        .create_released("app.json", "json", "{\"v\": 1}\n")
        .await;
    server.create_released("db.yaml", "yaml", "pool: 5\n").await;

    let client = Client::new(&server.base, &token).unwrap();
    let mut watcher = client.watch(WatchOptions::new(NS, ENV, "sdk-1").backoff(fast_backoff()));
    let mut states = watcher.states();
    let history = record(watcher.states());
    wait_state(&mut states, WatchState::Connected).await;
    let mut initial: Vec<(String, i64)> = Vec::new();
    for _ in 0..2 {
        match next(&mut watcher).await {
            Update::Config { config, id } => {
                assert!(id.is_some());
                initial.push((config.key, config.version));
            }
            other => panic!("{other:?}"),
        }
    }
    initial.sort();
    assert_eq!(
        initial,
        [("app.json".to_string(), 1), ("db.yaml".to_string(), 1)]
    );
    let resume_from = watcher.last_event_id().expect("an event id");

    let mut server = server;
    server.stop().await;
    wait_state(&mut states, WatchState::Reconnecting).await;
    let server = Server::start_on(dir, server.port).await;
    wait_state(&mut states, WatchState::Connected).await;
    {
        use WatchState::*;
        let seen = history.lock().unwrap().clone();
        let mut distinct = seen.clone();
        distinct.dedup();
        assert_eq!(
            distinct[..5],
            [Idle, Connecting, Connected, Reconnecting, Connected],
            "{seen:?}"
        );
    }
    assert_eq!(
        watcher.last_event_id().as_deref(),
        Some(resume_from.as_str())
    );
    server.save_and_release("app.json", "{\"v\": 2}\n", 1).await;
    // Only the change: no repeat of the initial events after the reconnect.
    match next(&mut watcher).await {
        Update::Config { config, id } => {
            assert_eq!((config.key.as_str(), config.version), ("app.json", 2));
            assert_eq!(config.content, "{\"v\": 2}\n");
            assert!(id.unwrap().parse::<i64>().unwrap() > resume_from.parse::<i64>().unwrap());
        }
        other => panic!("{other:?}"),
    }

    watcher
        .report("app.json", 2, graycast::model::ReportStatus::Applied, None)
        .await
        .unwrap();
    watcher.close();
    wait_state(&mut states, WatchState::Closed).await;

    // A refused token closes the watcher with the reason instead of retrying forever.
    let bad = Client::new(&server.base, "not-a-token").unwrap();
    let refused = bad.watch(WatchOptions::new(NS, ENV, "sdk-2").backoff(fast_backoff()));
    let mut states = refused.states();
    wait_state(&mut states, WatchState::Closed).await;
    assert!(
        refused.error().unwrap().contains("401"),
        "{:?}",
        refused.error()
    );
}

/// After the initial events the server says `: synced`; by then every initial
/// update is waiting in the watcher, so a snapshot needs no quiet timeout.
#[tokio::test]
async fn sdk_watcher_knows_when_the_initial_snapshot_is_complete() {
    let _serial = SERIAL.lock().await;
    let temp = tempfile::tempdir().unwrap();
    let server = Server::start(temp.path()).await;
    let token = server.setup().await;
    server
        .create_released("app.json", "json", "{\"v\": 1}\n")
        .await;
    server.create_released("db.yaml", "yaml", "pool: 5\n").await;
    let client = Client::new(&server.base, &token).unwrap();
    let mut watcher = client.watch(WatchOptions::new(NS, ENV, "sdk-sync"));
    let mut synced = watcher.synced();
    tokio::time::timeout(PATIENCE, synced.wait_for(|n| *n == 1))
        .await
        .expect("the stream says it is synced")
        .unwrap();
    let mut keys = Vec::new();
    while let Some(update) = watcher.try_next() {
        if let Update::Config { config, .. } = update {
            keys.push(config.key);
        }
    }
    keys.sort();
    assert_eq!(keys, ["app.json", "db.yaml"]);
    watcher.close();
}

/// The server's pings (every second here) are further apart than the
/// watcher's idle timeout: the watcher goes by the interval the server
/// announces with the stream and stays connected between pings.
#[tokio::test]
async fn sdk_watcher_waits_as_long_as_the_heartbeat_the_server_announces() {
    let _serial = SERIAL.lock().await;
    let temp = tempfile::tempdir().unwrap();
    let server = Server::start(temp.path()).await;
    let token = server.setup().await;
    server
        .create_released("app.json", "json", "{\"v\": 1}\n")
        .await;
    let client = Client::new(&server.base, &token).unwrap();
    let mut watcher = client.watch(
        WatchOptions::new(NS, ENV, "sdk-quiet")
            .backoff(fast_backoff())
            .idle_timeout(Duration::from_millis(200)),
    );
    let mut states = watcher.states();
    let history = record(watcher.states());
    wait_state(&mut states, WatchState::Connected).await;
    assert!(matches!(next(&mut watcher).await, Update::Config { .. }));
    // Three heartbeats, each far more than 200 ms apart.
    let mut heartbeats = watcher.heartbeats();
    tokio::time::timeout(Duration::from_secs(30), heartbeats.wait_for(|n| *n >= 3))
        .await
        .expect("three heartbeats within 30 s")
        .unwrap();
    let seen = history.lock().unwrap().clone();
    assert!(!seen.contains(&WatchState::Reconnecting), "{seen:?}");
    assert_eq!(watcher.state(), WatchState::Connected);
    watcher.close();
}

#[tokio::test]
async fn sdk_rules_mode_evaluates_like_the_server_resolves() {
    let _serial = SERIAL.lock().await;
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let server = Server::start(dir).await;
    let token = server.setup().await;
    server
        .create_released("app.json", "json", "{\"v\": 1}\n")
        .await;
    for (base, content) in [(1, "{\"v\": 2}\n"), (2, "{\"v\": 3}\n")] {
        server
            .post(
                &config("app.json", "/versions"),
                json!({"content": content, "base_version": base}),
            )
            .await;
    }
    let lanes = config("app.json", "/lanes");
    server
        .post(
            &lanes,
            json!({"version": 2, "selector": "region in (beijing,shanghai)", "percentage": 40}),
        )
        .await;
    server
        .post(
            &lanes,
            json!({"version": 3, "selector": "app_version>=2.1", "targets": ["user-7"], "percentage": 12.5, "stickiness": "user_id", "priority": -1}),
        )
        .await;

    let client = Client::new(&server.base, &token).unwrap();
    let mut gateway = client.watch(
        WatchOptions::new(NS, ENV, "gateway-1")
            .keys(["app.json"])
            .mode(WatchMode::Rules),
    );
    let rules = match next(&mut gateway).await {
        Update::Rules { rules, .. } => rules,
        other => panic!("{other:?}"),
    };
    assert_eq!(rules.lanes().count(), 2);

    let mut lanes_hit = std::collections::BTreeSet::new();
    for i in 0..60 {
        let mut context = Context::new();
        context.insert("client_id".into(), format!("pod-{i}"));
        context.insert("user_id".into(), format!("user-{}", i % 13));
        context.insert(
            "region".into(),
            ["beijing", "shanghai", "hangzhou"][i % 3].into(),
        );
        context.insert(
            "app_version".into(),
            ["2.0", "2.1", "3"][(i / 3) % 3].into(),
        );
        let local = rules.evaluate(&context).expect("stable exists");
        let served = client
            .resolve(NS, ENV, "app.json", &context)
            .await
            .unwrap()
            .expect("resolves");
        assert_eq!(
            (local.version, local.lane, local.content),
            (served.version, served.lane, served.content.as_str()),
            "{context:?}"
        );
        lanes_hit.insert(local.lane);
    }
    assert_eq!(
        lanes_hit.len(),
        3,
        "stable and both lanes occur: {lanes_hit:?}"
    );
}

/// `--check` runs after a successful reload; a failing check puts the previous file back, reloads
/// it (the reload runs again with the previous version) and reports `failed` with its last line.
#[tokio::test]
async fn a_failing_health_check_restores_reloads_and_reports() {
    let _serial = SERIAL.lock().await;
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let server = Server::start(dir).await;
    let token = server.setup().await;
    server
        .create_released("app.json", "json", "{\"v\": 1}\n")
        .await;
    let exec = reload_command(dir);
    let check = "if grep -q unhealthy \"$GRAYCAST_FILE\"; then echo 'probing :8080' >&2; \
                 echo 'GET /health: 503 Service Unavailable' >&2; exit 1; fi";
    let _agent = agent(&server, &token, dir, &["--exec", &exec, "--check", check])
        .spawn()
        .unwrap();
    let file = dir.join("configs/app.json");
    file_is(&file, "{\"v\": 1}\n").await;
    server.wait_applied("app.json", 1).await;

    server
        .save_and_release("app.json", "{\"v\": \"unhealthy\"}\n", 1)
        .await;
    let failed = server.wait_failed("app.json").await;
    assert_eq!(failed["reported"], 2, "{failed}");
    assert_eq!(failed["applied"], 1, "{failed}");
    assert_eq!(
        failed["message"],
        "health check failed with exit status 1: GET /health: 503 Service Unavailable"
    );
    assert_eq!(read(&file), "{\"v\": 1}\n", "the previous file is back");
    // Version 2 was reloaded and found unhealthy, then version 1 reloaded again.
    assert_eq!(
        reloads(dir),
        [
            "app.json 1 app.json",
            "app.json 2 app.json",
            "app.json 1 app.json"
        ]
    );

    server.save_and_release("app.json", "{\"v\": 3}\n", 2).await;
    file_is(&file, "{\"v\": 3}\n").await;
    server.wait_applied("app.json", 3).await;
}
