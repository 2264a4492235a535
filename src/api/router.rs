//! The HTTP surface (probes, the REST API, the dashboard and its assets) and
//! the [`Application`] that binds it to a port.

use crate::app::{shell, App};
use crate::server::assets::{self, Assets};
use crate::server::limits::ConnectionLimits;
use crate::server::ops::setup::FirstStart;
use crate::server::{auth, db, listen, AppState, Core, ServeConfig, SESSION_COOKIE};
use crate::Result;
use axum::routing::get;
use axum::{middleware, Router};
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::net::SocketAddr;
use std::sync::Arc;
use tower_sessions::cookie::{time, SameSite};
use tower_sessions::{ExpiredDeletion, Expiry, SessionManagerLayer};

/// A bound, ready server: `port()` tells where it listens (useful with port 0).
pub struct Application {
    listener: tokio::net::TcpListener,
    router: Router,
    state: AppState,
    pub core: Arc<Core>,
    pub first_start: Option<FirstStart>,
}

impl Application {
    /// Start-up: its error (a process error) says which step failed.
    pub async fn build(config: ServeConfig) -> anyhow::Result<Self> {
        use anyhow::Context;
        let leptos_options = leptos_options(&config);
        let assets = {
            let site_root = config.site_root.clone();
            tokio::task::spawn_blocking(move || Assets::list(&site_root))
                .await
                .context("could not read the front end")?
        };
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("could not listen on {}", config.listen))?;
        let (core, first_start) = Core::start(config).await?;
        if let Ok(addr) = listener.local_addr() {
            // No probe may call the server itself.
            core.prober.listening_on(addr);
        }
        core.instances
            .forget_streams()
            .await
            .map_err(crate::Error::into_process)
            .context("could not load the instances")?;
        crate::server::scheduler::spawn(&core);
        crate::server::notifier::spawn(&core);
        let state = AppState {
            leptos_options: Arc::new(leptos_options),
            assets: Arc::new(assets),
            core: core.clone(),
        };
        let router = router(state.clone())
            .await
            .map_err(crate::Error::into_process)
            .context("could not prepare the session store")?;
        Ok(Self {
            listener,
            router,
            state,
            core,
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
        let core = self.core.clone();
        let closing = core.closing.subscribe();
        tokio::spawn(async move {
            shutdown.await;
            core.closing.send_replace(true);
        });
        let limits = ConnectionLimits::of(&self.core.config);
        let fast = std::sync::Arc::new(super::fast::Answers::new(self.state.clone()));
        listen::serve(self.listener, self.router, Some(fast), limits, closing).await
    }
}

/// The dashboard's options. With a content-hashed front end (cargo-leptos `hash-files`), the
/// page names `pkg/graycast.<hash>.js`, `.wasm` and `.css` from the site's `hash.txt`. Leptos
/// looks for that file beside the running binary; an absolute path makes it the site's own,
/// so the server finds it from any directory and with any `--site-root`.
fn leptos_options(config: &ServeConfig) -> LeptosOptions {
    let hash_file = std::path::absolute(config.site_root.join("hash.txt"))
        .unwrap_or_else(|_| config.site_root.join("hash.txt"));
    LeptosOptions::builder()
        .output_name("graycast")
        .site_root(config.site_root.to_string_lossy().as_ref())
        .site_pkg_dir("pkg")
        .site_addr(config.listen)
        .env(leptos::config::Env::PROD)
        .hash_files(hash_file.is_file())
        .hash_file(hash_file.to_string_lossy().as_ref().into())
        .build()
}

/// The whole HTTP surface: probes, the REST API, the dashboard and its assets.
pub async fn router(state: AppState) -> Result<Router> {
    let store = db::session_store(&state.db).await?;
    tokio::spawn(
        store
            .clone()
            .continuously_delete_expired(std::time::Duration::from_secs(3600)),
    );
    let sessions = SessionManagerLayer::new(store)
        .with_name(SESSION_COOKIE)
        .with_secure(state.config.secure_cookies)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_expiry(Expiry::OnInactivity(time::Duration::hours(12)));

    let routes = generate_route_list(App);
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .nest(
            "/api/v1",
            super::rest::router().merge(super::watch::router()),
        )
        .merge(super::ofrep::router())
        .leptos_routes_with_context(
            &state,
            routes,
            {
                let core = state.core.clone();
                move || provide_context(core.clone())
            },
            {
                let options = LeptosOptions::clone(&state.leptos_options);
                move || shell(options.clone())
            },
        )
        .fallback(assets_or_not_found)
        .layer(middleware::from_fn(pages_revalidated))
        .layer(middleware::from_fn(server_fn_error_status))
        .layer(middleware::from_fn(auth::same_origin))
        .layer(sessions)
        // Trigger URLs carry their own credential, never the session cookie: outside both.
        .merge(super::hooks::router())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::identify_client,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            super::nul::refuse_in_server_fn_body,
        ))
        .layer(middleware::from_fn(super::nul::refuse_in_target))
        .layer(middleware::from_fn(auth::security_headers))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state);
    Ok(crate::server::trace::traced(router))
}

/// The front end's files (src/server/assets.rs); any other unrouted path is the dashboard's
/// not-found page.
async fn assets_or_not_found(
    uri: axum::http::Uri,
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
) -> axum::response::Response {
    if let Some(response) = state
        .assets
        .respond(request.method(), uri.path(), request.headers())
        .await
    {
        return response;
    }
    leptos_axum::file_and_error_handler::<AppState, _>(shell)(
        uri,
        axum::extract::State(state),
        request,
    )
    .await
}

/// Pages carry the signed-in user's data: no shared cache may keep them, and a browser
/// asks again each time (the assets they name are what stays cached).
async fn pages_revalidated(
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let mut response = next.run(request).await;
    let html = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        response
            .headers_mut()
            .entry(axum::http::header::CACHE_CONTROL)
            .or_insert(axum::http::HeaderValue::from_static(assets::PAGE));
    }
    response
}

/// Ready when the database answers and this node's release sequence is not behind the
/// database's by more than [`MAX_LAG`] (docs/nodes.md#readiness): a load balancer then
/// sends nobody to a node whose push hub cannot read.
async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> (axum::http::StatusCode, String) {
    use axum::http::StatusCode;
    let last = match crate::server::db::watch::last_event_id(&state.db).await {
        Ok(last) => last,
        Err(e) => {
            tracing::warn!(error = %e, "the database does not answer");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "database unavailable".into(),
            );
        }
    };
    let lag = state
        .readiness
        .lag(state.hub.catalog().applied_through(), last);
    if lag > MAX_LAG {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "release sequence behind the database for {} s (at {}, the database at {last})",
                lag.as_secs(),
                state.hub.catalog().applied_through()
            ),
        );
    }
    (StatusCode::OK, "ready".into())
}

/// How long a node's release sequence may stay behind the database's and be ready.
pub const MAX_LAG: std::time::Duration = std::time::Duration::from_secs(5);

/// Prometheus text exposition; unauthenticated, like most exporters (keep the
/// listener private or filter `/metrics` at the proxy).
async fn metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        {
            let mut text = state.metrics.render();
            let (configs, bytes) = state.hub.catalog().size();
            text.push_str(&format!(
                "# HELP graycast_catalog_configs Configs held in memory for per-request evaluation.\n\
                 # TYPE graycast_catalog_configs gauge\ngraycast_catalog_configs {configs}\n\
                 # HELP graycast_catalog_content_bytes Bytes of config content held in memory.\n\
                 # TYPE graycast_catalog_content_bytes gauge\ngraycast_catalog_content_bytes {bytes}\n"
            ));
            text.push_str(&format!(
                "# HELP graycast_node_info This node among those sharing the database.\n\
                 # TYPE graycast_node_info gauge\ngraycast_node_info{{node=\"{}\"}} 1\n\
                 # HELP graycast_rollout_lease_held Whether this node drives the rollout plans (1) or another does (0).\n\
                 # TYPE graycast_rollout_lease_held gauge\ngraycast_rollout_lease_held {}\n",
                state.node.id,
                u8::from(state.scheduler.drives_plans())
            ));
            if let Some(rss) = resident_bytes() {
                text.push_str(&format!(
                    "# HELP process_resident_memory_bytes Resident memory size in bytes.\n\
                     # TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}\n"
                ));
            }
            text
        },
    )
}

/// The process's resident set size (Linux: `VmRSS` of /proc/self/status).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kib * 1024)
}

/// Counts and times every request by method, matched route template (not
/// the raw path, which would give one series per config) and status.
async fn count_requests(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let method = crate::server::metrics::method_label(request.method());
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    state.metrics.request(
        method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Server functions answer every error with 500; give them the status of the
/// error they carry (401, 403, 409 …) like the REST API, so a refusal is not
/// reported as a server fault.
async fn server_fn_error_status(
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let response = next.run(request).await;
    if response.status() != axum::http::StatusCode::INTERNAL_SERVER_ERROR
        || !response
            .headers()
            .contains_key(leptos::server_fn::error::SERVER_FN_ERROR_HEADER)
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1024 * 1024).await else {
        return axum::response::Response::from_parts(parts, axum::body::Body::empty());
    };
    if let Ok(error) = serde_json::from_slice::<crate::Error>(&bytes) {
        if let Ok(status) = axum::http::StatusCode::from_u16(error.status) {
            if status.is_client_error() {
                parts.status = status;
            }
            if status == axum::http::StatusCode::TOO_MANY_REQUESTS {
                parts.headers.insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from(error.retry_after.unwrap_or(60)),
                );
            }
        }
    }
    axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
}
