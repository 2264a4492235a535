#![recursion_limit = "512"]
//! The `graycast` binary: `serve`, `agent`, `token create`, `user create`.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use graycast::api::Application;
use graycast::model::{NewToken, NewUser, Role};
use graycast::server::{self, auth::Actor, ops, Core, ServeConfig};
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "graycast",
    version,
    about = "Configuration center with gray (canary) release control"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: dashboard, HTTP API and watch streams.
    #[command(after_help = fixed_limits())]
    Serve(ServeArgs),
    /// Keep a directory in sync with the configs served to this instance; run a reload command.
    Agent(graycast::client::agent::AgentArgs),
    /// Manage API tokens directly in the database (for bootstrapping automation).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Manage dashboard users directly in the database.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

/// The limits no flag changes (docs/api.md, "Limits"), for `serve --help`.
fn fixed_limits() -> String {
    use graycast::domain::selector::{MAX_LIST_VALUES, MAX_REQUIREMENTS, MAX_SELECTOR_BYTES};
    use ops::lane_changes::{MAX_PRIORITY, MAX_TARGETS, MAX_TARGETS_BYTES};
    use ops::lanes::MAX_ACTIVE_LANES;
    let versions = graycast::model::VersionsQuery::MAX_LIMIT;
    format!(
        "Fixed limits:\n  \
         lane selector: {MAX_SELECTOR_BYTES} bytes, {MAX_REQUIREMENTS} requirements, \
         {MAX_LIST_VALUES} values per in/notin list\n  \
         lane targets: {MAX_TARGETS}, {MAX_TARGETS_BYTES} bytes together; \
         priority -{MAX_PRIORITY} to {MAX_PRIORITY}\n  \
         active lanes per config: {MAX_ACTIVE_LANES}\n  \
         versions list page: at most {versions} versions"
    )
}

#[derive(Args)]
struct DatabaseArg {
    /// SQLite database URL.
    #[arg(long, env = "GRAYCAST_DATABASE_URL", default_value = server::DEFAULT_DATABASE_URL)]
    database_url: String,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "GRAYCAST_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    database: DatabaseArg,
    /// Directory of the built front end (default: `site` beside the binary's target directory).
    #[arg(long, env = "GRAYCAST_SITE_ROOT")]
    site_root: Option<PathBuf>,
    /// Seconds between keep-alive comments on watch streams.
    #[arg(long, env = "GRAYCAST_HEARTBEAT_SECS", default_value_t = 15)]
    heartbeat_secs: u64,
    /// Password of the `admin` user created on first start (random and printed once when absent).
    #[arg(long, env = "GRAYCAST_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    /// Largest config content accepted, in bytes.
    #[arg(long, env = "GRAYCAST_MAX_CONTENT_BYTES", default_value_t = 1024 * 1024)]
    max_content_bytes: usize,
    /// Hours a disconnected instance stays listed before it is forgotten.
    #[arg(long, env = "GRAYCAST_INSTANCE_RETENTION_HOURS", default_value_t = 24)]
    instance_retention_hours: u64,
    /// Watch streams one token (or user) may hold open.
    #[arg(long, env = "GRAYCAST_MAX_STREAMS_PER_TOKEN", default_value_t = server::DEFAULT_MAX_STREAMS_PER_TOKEN)]
    max_streams_per_token: usize,
    /// Client ids one token (or user) may watch with, connected or disconnected within the retention.
    #[arg(long, env = "GRAYCAST_MAX_INSTANCES_PER_TOKEN", default_value_t = server::DEFAULT_MAX_INSTANCES_PER_TOKEN)]
    max_instances_per_token: usize,
    /// Seconds validating a config's content may take before the save is refused.
    #[arg(long, env = "GRAYCAST_VALIDATION_TIMEOUT_SECS", default_value_t = 5)]
    validation_timeout_secs: u64,
    /// Seconds a diff refines its matches; past them the rest shows as changed wholesale.
    #[arg(long, env = "GRAYCAST_DIFF_TIMEOUT_SECS", default_value_t = 2)]
    diff_timeout_secs: u64,
    /// Mark the session cookie Secure: browsers reach the server over HTTPS.
    #[arg(long, env = "GRAYCAST_SECURE_COOKIES")]
    secure_cookies: bool,
    /// Address of a reverse proxy whose X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host are believed (repeat or comma-separate for several).
    #[arg(long, env = "GRAYCAST_TRUSTED_PROXY", value_delimiter = ',')]
    trusted_proxy: Vec<std::net::IpAddr>,
    /// Connections open at once, watch streams included; more are answered 503 and closed.
    #[arg(long, env = "GRAYCAST_MAX_CONNECTIONS", default_value_t = server::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Seconds a client has to send a request head (and a kept-alive connection may idle).
    #[arg(long, env = "GRAYCAST_HEADER_TIMEOUT_SECS", default_value_t = 30)]
    header_timeout_secs: u64,
    /// Seconds a client has to send a request body once its head is in.
    #[arg(long, env = "GRAYCAST_BODY_TIMEOUT_SECS", default_value_t = 30)]
    body_timeout_secs: u64,
    /// Seconds a client may read nothing of a response (or watch stream) before it is cut off.
    #[arg(long, env = "GRAYCAST_WRITE_TIMEOUT_SECS", default_value_t = 30)]
    write_timeout_secs: u64,
    /// Milliseconds between the plan scheduler's evaluations of running plans (it also
    /// wakes at once on reports and lane changes).
    #[arg(long, env = "GRAYCAST_PLAN_TICK_MS", default_value_t = 1000)]
    plan_tick_ms: u64,
    /// Several nodes on PostgreSQL: a node that has not heartbeaten this long is taken for dead:
    /// its instances are marked disconnected and another node takes over the rollout plans.
    #[arg(long, env = "GRAYCAST_NODE_TIMEOUT_SECS", default_value_t = 15)]
    node_timeout_secs: u64,
    /// Host name, address or CIDR the server's own fetches (Prometheus and webhook guards, "test
    /// query now") may reach although it is loopback, link-local, private or unspecified; all
    /// those are denied by default, and so is the server's own listener (repeat or comma-separate).
    #[arg(long, env = "GRAYCAST_OUTBOUND_ALLOW", value_delimiter = ',')]
    outbound_allow: Vec<server::probe::Allow>,
    /// Where people reach the dashboard, e.g. https://graycast.example.com: the base of the
    /// links in notifications and of trigger URLs (without it, trigger URLs use the request's
    /// origin and notifications carry paths only).
    #[arg(long, env = "GRAYCAST_PUBLIC_URL", value_parser = public_url)]
    public_url: Option<String>,
}

/// `--public-url`: an http(s) URL without query or fragment, kept without a trailing slash.
fn public_url(text: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(text.trim()).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("give an http or https URL with a host".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("give the URL without a query or fragment".into());
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print its secret (shown only this once).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        role: Role,
        #[arg(long)]
        namespace: Option<String>,
        #[arg(long)]
        env: Option<String>,
        #[command(flatten)]
        database: DatabaseArg,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; the password is read from standard input.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        role: Role,
        #[arg(long)]
        env: Option<String>,
        #[command(flatten)]
        database: DatabaseArg,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_sessions=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
        Command::Agent(args) => agent(args).await,
        Command::Token {
            command:
                TokenCommand::Create {
                    name,
                    role,
                    namespace,
                    env,
                    database,
                },
        } => {
            token_create(
                &database.database_url,
                NewToken {
                    name,
                    role,
                    namespace,
                    env,
                },
            )
            .await
        }
        Command::User {
            command:
                UserCommand::Create {
                    username,
                    role,
                    env,
                    database,
                },
        } => user_create(&database.database_url, username, role, env).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The cause chain: "could not listen on …: Address already in use".
            eprintln!("graycast: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = ServeConfig {
        listen: args.listen,
        database_url: args.database.database_url,
        site_root: args.site_root.unwrap_or_else(server::default_site_root),
        heartbeat: Duration::from_secs(args.heartbeat_secs.max(1)),
        admin_password: args.admin_password,
        max_content_bytes: args.max_content_bytes,
        instance_retention: Duration::from_secs(args.instance_retention_hours.saturating_mul(3600)),
        max_streams_per_token: args.max_streams_per_token,
        max_instances_per_token: args.max_instances_per_token,
        validation_timeout: Duration::from_secs(args.validation_timeout_secs.max(1)),
        diff_timeout: Duration::from_secs(args.diff_timeout_secs.max(1)),
        login: Default::default(),
        secure_cookies: args.secure_cookies,
        trusted_proxies: args.trusted_proxy,
        max_connections: args.max_connections.max(1),
        header_timeout: Duration::from_secs(args.header_timeout_secs.max(1)),
        body_timeout: Duration::from_secs(args.body_timeout_secs.max(1)),
        write_timeout: Duration::from_secs(args.write_timeout_secs.max(1)),
        plan_tick: Duration::from_millis(args.plan_tick_ms.clamp(10, 60_000)),
        node_timeout: Duration::from_secs(args.node_timeout_secs.clamp(1, 3600)),
        outbound_allow: args.outbound_allow,
        public_url: args.public_url,
        max_probes_in_flight: server::probe::DEFAULT_MAX_PROBES_IN_FLIGHT,
        min_probe_interval_secs: graycast::domain::plan::MIN_INTERVAL_SECS,
        clock: graycast::server::clock::Clock::system(),
    };
    open_file_limit(config.max_connections);
    if !config.site_root.join("pkg").is_dir() {
        tracing::warn!(site_root = %config.site_root.display(), "no built front end here; the dashboard will not load (run `make build`)");
    }
    let app = Application::build(config).await?;
    let addr = app.local_addr();
    println!("graycast is listening on http://{addr}");
    if let Some(first) = &app.first_start {
        match &first.admin_password_generated {
            Some(password) => println!("first start: created user admin with password {password} (shown only once)"),
            None => println!("first start: created user admin with the password given by --admin-password / GRAYCAST_ADMIN_PASSWORD"),
        }
    }
    app.run_until(server::shutdown_signal())
        .await
        .context("the server stopped")
}

/// Every connection is a file descriptor: raise the soft limit to the hard
/// one, and say so when even that is short of `--max-connections`.
fn open_file_limit(max_connections: usize) {
    #[cfg(unix)]
    match server::listen::raise_open_file_limit() {
        // The database, the listener and the like take a few descriptors more.
        Ok(limit) if limit < max_connections as u64 + 64 => tracing::warn!(
            limit,
            max_connections,
            "the open-file limit is below --max-connections: connections past it fail; \
             raise the hard limit (ulimit -Hn, LimitNOFILE=) or lower --max-connections"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the open-file limit"),
    }
    #[cfg(not(unix))]
    let _ = max_connections;
}

async fn agent(args: graycast::client::agent::AgentArgs) -> anyhow::Result<()> {
    use graycast::client::agent;
    let run = async { agent::run(args.try_into()?, server::shutdown_signal()).await };
    // Its message already includes its source: print it alone, not its chain.
    run.await
        .map_err(|e: agent::AgentError| anyhow::anyhow!(e.to_string()))
}

async fn token_create(database_url: &str, new: NewToken) -> anyhow::Result<()> {
    let core = open_core(database_url).await?;
    let created = ops::tokens::create(&core, &Actor::cli(), new)
        .await
        .map_err(graycast::Error::into_process)?;
    println!("{}", created.token);
    eprintln!(
        "token {} ({}) created; store the secret now, it is not shown again",
        created.info.id, created.info.role
    );
    Ok(())
}

/// The core the server would run on this database, for a command of the CLI.
async fn open_core(database_url: &str) -> anyhow::Result<std::sync::Arc<Core>> {
    let (core, first_start) = Core::start(ServeConfig::with_database(database_url)).await?;
    if let Some(p) = first_start.and_then(|f| f.admin_password_generated) {
        eprintln!("first start: created user admin with password {p} (shown only once)");
    }
    Ok(core)
}

async fn user_create(
    database_url: &str,
    username: String,
    role: Role,
    env: Option<String>,
) -> anyhow::Result<()> {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .context("could not read the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']).to_string();
    let core = open_core(database_url).await?;
    let user = ops::users::create(
        &core,
        &Actor::cli(),
        NewUser {
            username,
            password,
            role,
            env,
        },
    )
    .await
    .map_err(graycast::Error::into_process)?;
    println!("user {} created with role {}", user.username, user.role);
    Ok(())
}
