//! Starts the real server (in this process) on a free loopback port with a
//! fresh database, and offers typed helpers for the API.
//!
//! The database is a new SQLite file, or, when `GRAYCAST_TEST_POSTGRES` holds the URL
//! of a PostgreSQL server (`scripts/pg.sh run …` sets it), a new database on it for
//! each test: the same suites run on both engines.

#[path = "../../support/eventually.rs"]
pub mod eventually;
pub mod prometheus;
#[path = "../../support/receiver.rs"]
pub mod receiver;
#[path = "../../support/sse.rs"]
pub mod sse;
pub use eventually::{eventually, PATIENCE};

use graycast::api::Application;
use graycast::server::clock::Clock;
use graycast::server::ServeConfig;
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};

pub const ADMIN_PASSWORD: &str = "admin-password";

pub struct TestApp {
    pub base: String,
    pub database_url: String,
    /// A client with its own cookie jar, already signed in as `admin`.
    pub admin: Client,
    /// The server's clock: it runs with the system's, and a test moves it forward
    /// (`app.clock.advance(…)`) instead of sleeping through a hold or a timeout. It
    /// survives [`TestApp::restart_with`].
    pub clock: Clock,
    /// The running server's core, for what a test must do without HTTP in between.
    pub core: std::sync::Arc<graycast::server::Core>,
    _dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], with the test configuration adjusted first (e.g. a short heartbeat).
pub async fn spawn_app_with(adjust: impl FnOnce(&mut ServeConfig)) -> TestApp {
    if let Ok(filter) = std::env::var("GRAYCAST_TEST_LOG") {
        // The server's log in the test's output, e.g. GRAYCAST_TEST_LOG=graycast=debug.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = fresh_database(&dir).await;
    let clock = Clock::manual();
    let served = serve(&database_url, &clock, adjust).await;
    TestApp {
        base: served.base,
        database_url,
        admin: served.admin,
        clock,
        core: served.core,
        _dir: dir,
        shutdown: Some(served.shutdown),
        server: Some(served.server),
    }
}

/// The PostgreSQL server the suites run on instead of SQLite, if any.
pub fn postgres() -> Option<String> {
    std::env::var("GRAYCAST_TEST_POSTGRES")
        .ok()
        .filter(|url| !url.is_empty())
}

/// Whether this run is on PostgreSQL (tests of SQLite's own behaviour skip then).
pub fn on_postgres() -> bool {
    postgres().is_some()
}

/// The URL of a new, empty database: a file in `dir`, or a new PostgreSQL database.
pub async fn fresh_database(dir: &tempfile::TempDir) -> String {
    use sqlx::Connection;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let Some(server) = postgres() else {
        return format!("sqlite://{}", dir.path().join("graycast.db").display());
    };
    let name = format!(
        "t{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = sqlx::PgConnection::connect(&server)
        .await
        .expect("the test PostgreSQL server answers");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create a test database");
    admin.close().await.ok();
    let (base, _) = server
        .rsplit_once('/')
        .expect("a PostgreSQL URL ends in /DATABASE");
    format!("{base}/{name}")
}

/// A pool on a test server's database (SQLite or PostgreSQL), for looking behind the API.
pub async fn database(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(url)
        .await
        .expect("open the test database")
}

/// Switches off, for `conn` (SQLite) or the whole database (PostgreSQL), the checks and
/// triggers that keep rows valid, so a test can write what graycast never writes.
pub async fn switch_off_rules(conn: &mut sqlx::AnyConnection) {
    let statements: &[&str] = if on_postgres() {
        &[
            // Triggers (append-only, immutable rows) are skipped in this session…
            "SET session_replication_role = replica",
            // …and CHECK constraints are dropped.
            "DO $$ DECLARE r record; BEGIN
               FOR r IN SELECT conname, conrelid::regclass AS t FROM pg_constraint
                         WHERE contype = 'c' AND connamespace = 'public'::regnamespace LOOP
                 EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.t, r.conname);
               END LOOP; END $$",
        ]
    } else {
        &[
            "PRAGMA ignore_check_constraints = ON",
            "DROP TRIGGER IF EXISTS versions_no_update",
            "DROP TRIGGER IF EXISTS release_events_no_update",
            "DROP TRIGGER IF EXISTS audit_no_update",
        ]
    };
    for sql in statements {
        sqlx::query(sql).execute(&mut *conn).await.expect(sql);
    }
}

/// A server started by [`serve`].
struct Served {
    base: String,
    admin: Client,
    core: std::sync::Arc<graycast::server::Core>,
    shutdown: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Starts a server on `database_url` and signs `admin` in.
async fn serve(database_url: &str, clock: &Clock, adjust: impl FnOnce(&mut ServeConfig)) -> Served {
    let mut config = ServeConfig::for_tests(database_url.to_string());
    config.clock = clock.clone();
    adjust(&mut config);
    let app = Application::build(config).await.expect("server builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let core = app.core.clone();
    let (shutdown, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    let admin = client();
    let response = login(&admin, &base, "admin", ADMIN_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK, "admin signs in");
    Served {
        base,
        admin,
        core,
        shutdown,
        server,
    }
}

impl TestApp {
    /// Stops the server (it finishes what is in flight) and starts a new one on the same
    /// database, with the test configuration adjusted by `adjust`; on another port.
    pub async fn restart_with(&mut self, adjust: impl FnOnce(&mut ServeConfig)) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("the server task ends")
                .expect("the server stops cleanly");
        }
        let served = serve(&self.database_url, &self.clock, adjust).await;
        self.base = served.base;
        self.admin = served.admin;
        self.core = served.core;
        self.shutdown = Some(served.shutdown);
        self.server = Some(served.server);
    }
}

/// A fresh client with an empty cookie jar.
pub fn client() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub async fn login(client: &Client, base: &str, username: &str, password: &str) -> Response {
    client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .expect("request")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Creates a user through the API and returns a client signed in as it.
    pub async fn user(&self, username: &str, role: &str, env: Option<&str>) -> Client {
        let password = format!("{username}-password");
        let r = self
            .admin
            .post(self.url("/api/v1/users"))
            .json(&json!({ "username": username, "password": password, "role": role, "env": env }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap()
        );
        let c = client();
        assert_eq!(
            login(&c, &self.base, username, &password).await.status(),
            StatusCode::OK
        );
        c
    }

    /// The id of user `username`, read through the API.
    pub async fn user_id(&self, username: &str) -> i64 {
        let (status, users) = self.get_json("/api/v1/users").await;
        assert_eq!(status, StatusCode::OK);
        users
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == username)
            .unwrap_or_else(|| panic!("no user {username}: {users}"))["id"]
            .as_i64()
            .unwrap()
    }

    /// Creates an API token through the API and returns its secret.
    pub async fn token(
        &self,
        name: &str,
        role: &str,
        namespace: Option<&str>,
        env: Option<&str>,
    ) -> String {
        let r = self
            .admin
            .post(self.url("/api/v1/tokens"))
            .json(&json!({ "name": name, "role": role, "namespace": namespace, "env": env }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        body["token"].as_str().unwrap().to_string()
    }

    /// GET with a bearer token.
    pub async fn get_with(&self, token: &str, path: &str) -> Response {
        client()
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// POST JSON with a bearer token.
    pub async fn post_with(&self, token: &str, path: &str, body: Value) -> Response {
        client()
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Audit entries (newest first) with the given action.
    pub async fn audit(&self, action: &str) -> Vec<Value> {
        let r = self
            .admin
            .get(self.url(&format!("/api/v1/audit?action={action}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        body["entries"].as_array().unwrap().clone()
    }
}

/// The `error.code` of an API error response, checking its shape.
pub async fn error_code(r: Response) -> String {
    let body: Value = r.json().await.expect("error body is JSON");
    let err = &body["error"];
    assert!(err["message"].is_string(), "error has a message: {body}");
    err["code"].as_str().expect("error has a code").to_string()
}

/// The path of a config route: `/api/v1/namespaces/{ns}/envs/{env}/configs/{key}{rest}`.
pub fn config_path(ns: &str, env: &str, key: &str, rest: &str) -> String {
    format!("/api/v1/namespaces/{ns}/envs/{env}/configs/{key}{rest}")
}

impl TestApp {
    /// GET as admin: the status and the JSON body (`Null` when there is none).
    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let r = self.admin.get(self.url(path)).send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// POST JSON as admin: the status and the JSON body.
    pub async fn post_json(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .admin
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates a namespace as admin.
    pub async fn namespace(&self, name: &str) -> Value {
        let (status, body) = self
            .post_json("/api/v1/namespaces", json!({ "name": name }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Creates a config (version 1) as admin.
    pub async fn config(
        &self,
        ns: &str,
        env: &str,
        key: &str,
        format: &str,
        content: &str,
    ) -> Value {
        let (status, body) = self
            .post_json(
                &format!("/api/v1/namespaces/{ns}/envs/{env}/configs"),
                json!({ "key": key, "format": format, "content": content }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Saves a version as admin, asserting success; returns the version object.
    pub async fn save(&self, ns: &str, env: &str, key: &str, content: &str, base: i64) -> Value {
        let (status, body) = self
            .post_json(
                &config_path(ns, env, key, "/versions"),
                json!({ "content": content, "base_version": base }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Releases a version as admin, asserting success; returns the release event.
    pub async fn release(
        &self,
        ns: &str,
        env: &str,
        key: &str,
        version: i64,
        message: &str,
    ) -> Value {
        let (status, body) = self
            .post_json(
                &config_path(ns, env, key, "/release"),
                json!({ "version": version, "message": message }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// How many audit entries exist (all actions).
    pub async fn audit_count(&self) -> usize {
        let pool = database(&self.database_url).await;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit")
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n as usize
    }
}
