//! A graycast node as a real process (`graycast serve`), for the tests that kill one
//! (`SIGKILL`) or run several on one PostgreSQL: shared by tests/crash.rs and tests/nodes.rs.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary under test; `GRAYCAST_CRASH_BIN` runs this test against another build.
pub fn bin() -> String {
    std::env::var("GRAYCAST_CRASH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_graycast").into())
}
/// A restarted server must answer `/readyz` within this time.
pub const READY_WITHIN: Duration = Duration::from_secs(10);

pub struct Server {
    pub child: Child,
    pub base: String,
    /// Everything the server logged, for the failure message.
    pub log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `graycast serve` on a free port; returns once it printed where it listens.
    // On a failed start the test panics and ends, and the child with it.
    #[allow(clippy::zombie_processes)]
    pub fn start(database_url: &str) -> Self {
        Self::start_with(database_url, &[])
    }

    /// Like [`Server::start`], with more arguments for `graycast serve`.
    // On a failed start the test panics and ends, and the child with it.
    #[allow(clippy::zombie_processes)]
    pub fn start_with(database_url: &str, more: &[&str]) -> Self {
        let mut child = Command::new(bin())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                database_url,
                "--admin-password",
                "admin-password",
            ])
            .args(more)
            .env("RUST_LOG", "info,sqlx=warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server starts");
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                text.push_str(&String::from_utf8_lossy(&buf[..n]));
                sink.lock().unwrap().clone_from(&text);
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            let n = stdout.read_line(&mut line).unwrap();
            assert!(n > 0, "the server exited: {}", log.lock().unwrap());
            if let Some(base) = line.trim().strip_prefix("graycast is listening on ") {
                let base = base.to_string();
                // Keep reading stdout so the server never blocks on a full pipe.
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut stdout, &mut std::io::sink());
                });
                return Self { child, base, log };
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// A node a test did not kill ends with the test, passed or failed: a `Child` left alone
/// runs on after the test binary exits (test runs used to leave a dozen nodes behind,
/// retrying a database that was gone and taking CPU from whatever ran next).
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Polls `/readyz` until it answers 200; panics after [`READY_WITHIN`] from `started`.
pub async fn wait_ready(server: &Server, started: Instant) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    loop {
        if let Ok(r) = http.get(server.url("/readyz")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(
            started.elapsed() < READY_WITHIN,
            "the restarted server was not ready within {READY_WITHIN:?}; its log:\n{}",
            server.log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A fresh database: a SQLite file in `dir`, or a new database on the PostgreSQL server
/// `GRAYCAST_TEST_POSTGRES` names (`scripts/pg.sh run`), where the same crash test runs.
pub async fn database(dir: &tempfile::TempDir) -> String {
    use sqlx::Connection;
    match std::env::var("GRAYCAST_TEST_POSTGRES") {
        Ok(server) if !server.is_empty() => {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let name = format!(
                "proc{}_{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            let mut admin = sqlx::PgConnection::connect(&server).await.unwrap();
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .await
                .unwrap();
            let (base, _) = server.rsplit_once('/').unwrap();
            format!("{base}/{name}")
        }
        _ => format!("sqlite://{}", dir.path().join("crash.db").display()),
    }
}
