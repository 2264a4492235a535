//! The core every entry point shares: the REST handlers, the server
//! functions, the CLI and the tests all call `ops` with one [`Core`].

use super::{auth, db, hub, metrics, node, ops, rollout, subscribers, ServeConfig};
use std::sync::Arc;

/// The database, the push hub, the instance registry, the metrics and the
/// settings, with the sign-in and content-work limits built from them.
pub struct Core {
    pub db: db::Pool,
    /// The settings the server was started with.
    pub config: ServeConfig,
    pub login_throttle: auth::LoginThrottle,
    /// Bounds the password verifications running and waiting at once.
    pub password_checks: auth::PasswordChecks,
    /// Throttles the `last_used_at` writes of API tokens.
    pub token_use: auth::TokenUse,
    /// The tokens seen, so a bearer request needs no database round trip.
    pub tokens: auth::TokenCache,
    /// A hash verified when the username is unknown, so that costs the same time.
    pub dummy_password_hash: String,
    /// Connected subscribers and the hand-off of committed release events.
    pub hub: hub::Hub,
    /// Subscribers with what they were served and reported, connected or not.
    pub instances: Arc<subscribers::Instances>,
    pub metrics: Arc<metrics::Metrics>,
    /// This process among the nodes sharing the database.
    pub node: Arc<node::Node>,
    /// How far this node's release sequence is behind the database's (`/readyz`).
    pub readiness: node::Readiness,
    /// Turns true when the server begins to shut down: endless streams (watch,
    /// live instances) end then, so the graceful shutdown does not wait forever.
    pub closing: tokio::sync::watch::Sender<bool>,
    /// Validations and diffs, off the async workers and within their time budgets.
    pub content: ops::content::ContentWork,
    /// Every outbound fetch (Prometheus and webhook guards, "test query now") goes through it:
    /// the client, the outbound policy and the bound on probes in flight.
    pub prober: super::probe::Prober,
    /// The rollout scheduler's handle: its wake-up, its probes and its lease. It runs only in
    /// a serving process ([`rollout::spawn`]), never in the CLI.
    pub rollouts: Arc<rollout::Rollouts>,
    /// Bounds the "test query now" calls running at once ([`ops::probes::MAX_QUERY_TESTS`]).
    pub query_tests: tokio::sync::Semaphore,
}

impl Core {
    /// Opens (and migrates) the database, seeds it on first start (see
    /// [`ops::setup::first_start`]) and starts the hub and the instance
    /// registry. Returns what the first start created, if this was it.
    /// Its error (a process error) says which step failed.
    pub async fn start(
        config: ServeConfig,
    ) -> anyhow::Result<(Arc<Self>, Option<ops::setup::FirstStart>)> {
        use anyhow::Context;
        let db = db::connect(&config.database_url).await?;
        let first_start = ops::setup::first_start(&db, config.admin_password.as_deref())
            .await
            .map_err(crate::Error::into_process)
            .context("could not create the first admin")?;
        let dummy_password_hash = auth::hash_password("graycast-dummy-password")
            .await
            .map_err(crate::Error::into_process)
            .context("could not prepare password checks")?;
        let metrics = Arc::new(metrics::Metrics::default());
        let node = node::Node::start(
            db.clone(),
            config.node_timeout,
            Some(config.listen.to_string()),
        )
        .await
        .map_err(crate::Error::into_process)
        .context("could not join the nodes")?;
        let instances =
            subscribers::Instances::start(db.clone(), &node.id, config.instance_retention)
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
        let config_tick = config.plan_tick;
        let login_throttle = auth::LoginThrottle::new(&config.login);
        let password_checks = auth::PasswordChecks::new(&config.login, metrics.clone());
        // One scheduler across nodes on PostgreSQL, by a lease; SQLite has one node.
        let rollouts = Arc::new(match db::Engine::of(&db) {
            db::Engine::Sqlite => rollout::Rollouts::new(config_tick),
            db::Engine::Postgres => rollout::Rollouts::with_lease(
                config_tick,
                Box::new(node::DbLease::new(node.clone())),
            ),
        });
        let prober = super::probe::Prober::new(
            super::probe::Policy::new(config.outbound_allow.clone()),
            config.max_probes_in_flight,
        );
        let core = Self {
            db,
            config,
            login_throttle,
            password_checks,
            token_use: auth::TokenUse::default(),
            tokens: auth::TokenCache::default(),
            dummy_password_hash,
            hub,
            instances,
            metrics,
            node,
            readiness: node::Readiness::default(),
            closing: tokio::sync::watch::Sender::new(false),
            content,
            prober,
            rollouts,
            query_tests: tokio::sync::Semaphore::new(ops::probes::MAX_QUERY_TESTS),
        };
        Ok((Arc::new(core), first_start))
    }
}
