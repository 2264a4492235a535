//! The server side: configuration, the core (ops, hub, registry), database, authentication.

pub mod assets;
pub mod auth;
pub mod clock;
pub mod core;
pub mod db;
pub mod fast;
pub mod freezes;
pub mod hub;
pub mod instances;
pub mod limits;
pub mod listen;
pub mod metrics;
pub mod node;
pub mod notifier;
pub mod ops;
pub mod outlet;
pub mod probe;
pub mod scheduler;
pub mod trace;

pub use self::core::Core;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
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
    /// Reverse proxies whose `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host` are believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Connections open at once, watch streams included (src/server/listen.rs).
    pub max_connections: usize,
    /// Time to send a request head; also how long a kept-alive connection may idle.
    pub header_timeout: Duration,
    /// Time to send a request body, from the end of its head.
    pub body_timeout: Duration,
    /// How long a client may take nothing while a response waits before it is cut off.
    pub write_timeout: Duration,
    /// How often the plan scheduler evaluates running plans (it also wakes on events).
    pub plan_tick: Duration,
    /// A node silent this long is dead (several nodes on PostgreSQL; see [`node`]).
    pub node_timeout: Duration,
    /// Hosts and networks the server's own fetches (guard probes, "test query now") may reach
    /// although they are loopback, link-local, private or unspecified (`--outbound-allow`).
    pub outbound_allow: Vec<probe::Allow>,
    /// Where people reach the dashboard (`https://graycast.example.com`), for the links that
    /// leave the server: notifications and trigger URLs. Without it, trigger URLs are made from
    /// the request's own origin and notifications carry paths only.
    pub public_url: Option<String>,
    /// Guard probes running at once on this server; a probe that finds no room is skipped for
    /// its interval (no data).
    pub max_probes_in_flight: usize,
    /// The shortest `interval_secs` a new plan's polled guard may have; running plans are
    /// polled no more often either.
    pub min_probe_interval_secs: u32,
    /// What time it is for plan holds, node timeouts, instance retention and the times
    /// written into rows: the system's, or a manual clock a test moves.
    pub clock: clock::Clock,
}

impl ServeConfig {
    /// The defaults of `graycast serve` with the given database (the other
    /// commands of the CLI open the core with these).
    pub fn with_database(database_url: impl Into<String>) -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("valid address"),
            database_url: database_url.into(),
            site_root: default_site_root(),
            heartbeat: Duration::from_secs(15),
            admin_password: None,
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
            plan_tick: DEFAULT_PLAN_TICK,
            node_timeout: DEFAULT_NODE_TIMEOUT,
            outbound_allow: Vec::new(),
            public_url: None,
            max_probes_in_flight: probe::DEFAULT_MAX_PROBES_IN_FLIGHT,
            min_probe_interval_secs: crate::domain::plan::MIN_INTERVAL_SECS,
            clock: clock::Clock::system(),
        }
    }

    /// A configuration for tests and embedding: loopback, port 0, the given database.
    pub fn for_tests(database_url: impl Into<String>) -> Self {
        Self {
            listen: "127.0.0.1:0".parse().expect("valid address"),
            admin_password: Some("admin-password".into()),
            ..Self::with_database(database_url)
        }
    }
}

/// The plan scheduler evaluates running plans every second.
pub const DEFAULT_PLAN_TICK: Duration = Duration::from_secs(1);

/// A node that has not heartbeaten for this long is dead (docs/nodes.md#instances-across-nodes).
pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_secs(15);

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

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "graycast_session";

/// The router's state: the Leptos options, the front end's files and the [`Core`].
/// Every extractor and middleware clones it per request, so each is behind an `Arc` (a
/// clone of `LeptosOptions` itself copies a dozen strings).
#[derive(Clone)]
pub struct AppState {
    pub leptos_options: Arc<LeptosOptions>,
    pub assets: Arc<assets::Assets>,
    pub core: Arc<Core>,
}

impl std::ops::Deref for AppState {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        LeptosOptions::clone(&state.leptos_options)
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
