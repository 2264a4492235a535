//! The server side: configuration, state, router, database, authentication.

pub mod auth;
pub mod db;
pub mod hub;
pub mod listen;
pub mod metrics;
pub mod ops;
pub mod outlet;
pub mod router;
pub mod subscribers;
pub mod trace;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sqlx::SqlitePool;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Everything `graycast serve` can be told.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub database_url: String,
    pub site_root: PathBuf,
    pub heartbeat: Duration,
    /// Password for the `admin` user created on first start; generated when absent.
    pub admin_password: Option<String>,
    /// Largest config content accepted, in bytes.
    pub max_content_bytes: usize,
    /// How long a disconnected instance stays listed.
    pub instance_retention: Duration,
    /// Watch streams one token (or user) may hold open.
    pub max_streams_per_token: usize,
    /// Client ids one token (or user) may watch with: connected, or
    /// disconnected within `instance_retention`.
    pub max_instances_per_token: usize,
    /// How long validating a config's content may take before the save is refused (422).
    pub validation_timeout: Duration,
    /// How long a diff refines its matches; past it the rest shows as changed wholesale.
    pub diff_timeout: Duration,
    /// Sign-in throttling and the bound on parallel password verifications.
    pub login: auth::LoginLimits,
    /// Mark the session cookie `Secure` (the server is reached over HTTPS).
    pub secure_cookies: bool,
    /// Reverse proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Connections open at once, watch streams included (src/server/listen.rs).
    pub max_connections: usize,
    /// Time to send a request head; also how long a kept-alive connection may idle.
    pub header_timeout: Duration,
    /// Time to send a request body, from the end of its head.
    pub body_timeout: Duration,
    /// How long a client may take nothing while a response waits before it is cut off.
    pub write_timeout: Duration,
}

impl ServeConfig {
    /// A configuration for tests and embedding: loopback, port 0, the given database.
    pub fn for_tests(database_url: impl Into<String>) -> Self {
        Self {
            listen: "127.0.0.1:0".parse().expect("valid address"),
            database_url: database_url.into(),
            site_root: default_site_root(),
            heartbeat: Duration::from_secs(15),
            admin_password: Some("admin-password".into()),
            max_content_bytes: 1024 * 1024,
            instance_retention: DEFAULT_INSTANCE_RETENTION,
            max_streams_per_token: DEFAULT_MAX_STREAMS_PER_TOKEN,
            max_instances_per_token: DEFAULT_MAX_INSTANCES_PER_TOKEN,
            validation_timeout: DEFAULT_VALIDATION_TIMEOUT,
            diff_timeout: DEFAULT_DIFF_TIMEOUT,
            login: auth::LoginLimits::default(),
            secure_cookies: false,
            trusted_proxies: Vec::new(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_REQUEST_TIMEOUT,
            body_timeout: DEFAULT_REQUEST_TIMEOUT,
            write_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// Room for a fleet of 10,000 watching instances, with as many again for
/// the dashboard, the API and reconnects overlapping old streams.
pub const DEFAULT_MAX_CONNECTIONS: usize = 20_000;

/// The default header, body and write timeouts.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Disconnected instances stay listed for a day.
pub const DEFAULT_INSTANCE_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// A fleet sharing one token: twice the 10,000 subscribers the benchmark runs.
pub const DEFAULT_MAX_STREAMS_PER_TOKEN: usize = 20_000;

/// Room for that fleet's pods to be replaced (new names) several times within a retention period.
pub const DEFAULT_MAX_INSTANCES_PER_TOKEN: usize = 100_000;
/// Validating content may take 5 seconds.
pub const DEFAULT_VALIDATION_TIMEOUT: Duration = Duration::from_secs(5);

/// Diffs refine their matches for 2 seconds.
pub const DEFAULT_DIFF_TIMEOUT: Duration = Duration::from_secs(2);

/// The default SQLite database: `./data/graycast.db`.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/graycast.db";

/// Where the built front end is when `--site-root` is not given: beside the
/// binary (`target/release/graycast` → `target/site`), so the server runs from
/// any working directory.
pub fn default_site_root() -> PathBuf {
    let beside_binary = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .into_iter()
        .flat_map(|dir| {
            [
                dir.join("../site"),
                dir.join("site"),
                dir.join("../../site"),
            ]
        });
    beside_binary
        .chain([PathBuf::from("target/site")])
        .find(|p| p.join("pkg").is_dir())
        .unwrap_or_else(|| PathBuf::from("target/site"))
}

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub inner: Arc<Shared>,
}

pub struct Shared {
    pub db: SqlitePool,
    pub config: ServeConfig,
    pub login_throttle: auth::LoginThrottle,
    /// Bounds the password verifications running and waiting at once.
    pub password_checks: auth::PasswordChecks,
    /// Throttles the `last_used_at` writes of API tokens.
    pub token_use: auth::TokenUse,
    /// A hash verified when the username is unknown, so that costs the same time.
    pub dummy_password_hash: String,
    /// Connected subscribers and the hand-off of committed release events.
    pub hub: hub::Hub,
    /// Subscribers with what they were served and reported, connected or not.
    pub instances: Arc<subscribers::Instances>,
    pub metrics: Arc<metrics::Metrics>,
    /// Turns true when the server begins to shut down: endless streams (watch,
    /// live instances) end then, so the graceful shutdown does not wait forever.
    pub closing: tokio::sync::watch::Sender<bool>,
    /// Validations and diffs, off the async workers and within their time budgets.
    pub content: ops::content::ContentWork,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.inner
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// The admin credentials generated on first start (printed once by `serve`).
#[derive(Debug, Clone)]
pub struct FirstStart {
    pub admin_password_generated: Option<String>,
}

/// A bound, ready server: `port()` tells where it listens (useful with port 0).
pub struct Application {
    listener: tokio::net::TcpListener,
    router: axum::Router,
    pub state: AppState,
    pub first_start: Option<FirstStart>,
}

impl Application {
    /// Start-up: its error (a process error) says which step failed.
    pub async fn build(config: ServeConfig) -> anyhow::Result<Self> {
        use anyhow::Context;
        let db = db::connect(&config.database_url).await?;
        let first_start = db::seed(&db, config.admin_password.as_deref())
            .await
            .map_err(crate::Error::into_process)
            .context("could not create the first admin")?;
        let leptos_options = LeptosOptions::builder()
            .output_name("graycast")
            .site_root(config.site_root.to_string_lossy().as_ref())
            .site_pkg_dir("pkg")
            .site_addr(config.listen)
            .env(leptos::config::Env::PROD)
            .build();
        let dummy_password_hash = auth::hash_password("graycast-dummy-password")
            .await
            .map_err(crate::Error::into_process)
            .context("could not prepare password checks")?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("could not listen on {}", config.listen))?;
        let metrics = Arc::new(metrics::Metrics::default());
        let instances = subscribers::Instances::start(db.clone(), config.instance_retention)
            .await
            .map_err(crate::Error::into_process)
            .context("could not load the instances")?;
        let limits = hub::Limits {
            max_streams: config.max_streams_per_token,
            max_instances: config.max_instances_per_token,
            retention: config.instance_retention,
        };
        let hub = hub::Hub::start(db.clone(), metrics.clone(), instances.clone(), limits)
            .await
            .map_err(crate::Error::into_process)
            .context("could not start the push hub")?;
        let content = ops::content::ContentWork::new(
            ops::content::ContentWork::default_permits(),
            config.validation_timeout,
            config.diff_timeout,
            ops::content::DEFAULT_QUEUE_TIMEOUT,
        );
        let login_throttle = auth::LoginThrottle::new(&config.login);
        let password_checks = auth::PasswordChecks::new(&config.login, metrics.clone());
        let state = AppState {
            leptos_options,
            inner: Arc::new(Shared {
                db,
                config,
                login_throttle,
                password_checks,
                token_use: auth::TokenUse::default(),
                dummy_password_hash,
                hub,
                instances,
                metrics,
                closing: tokio::sync::watch::Sender::new(false),
                content,
            }),
        };
        let router = router::router(state.clone())
            .await
            .map_err(crate::Error::into_process)
            .context("could not prepare the session store")?;
        Ok(Self {
            listener,
            router,
            state,
            first_start,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let state = self.state.clone();
        let closing = state.closing.subscribe();
        tokio::spawn(async move {
            shutdown.await;
            state.closing.send_replace(true);
        });
        let limits = listen::Limits::of(&self.state.config);
        listen::serve(self.listener, self.router, limits, closing).await
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
