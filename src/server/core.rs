//! The core every entry point shares: the REST handlers, the server
//! functions, the CLI and the tests all call `ops` with one [`Core`].

use super::{auth, db, hub, instances, metrics, node, ops, scheduler, ServeConfig};
use std::sync::Arc;

/// The database, the push hub, the instance registry, the metrics and the
/// settings, with the sign-in and content-work limits built from them.
pub struct Core {
    pub db: db::Pool,
    /// What sets this deployment apart, decided once from the database at start: one node
    /// or several sharing it. Ops ask this, never which database is underneath.
    pub nodes: node::Nodes,
    /// What time it is (the system's, or a test's manual clock; see [`ServeConfig::clock`]).
    pub clock: super::clock::Clock,
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
    pub instances: Arc<instances::Instances>,
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
    /// The plan scheduler's handle: its wake-up, its probes and its lease. It runs only in
    /// a serving process ([`scheduler::spawn`]), never in the CLI.
    pub scheduler: Arc<scheduler::Scheduler>,
    /// The notification sender's wake-up ([`super::notifier`]); it runs beside the scheduler,
    /// on the node that holds the rollout lease.
    pub notifier: Arc<super::notifier::Notifier>,
    /// Bounds the "test query now" calls running at once ([`ops::probes::MAX_QUERY_TESTS`]).
    pub query_tests: tokio::sync::Semaphore,
    /// How often each trigger URL may fire ([`ops::triggers::FireLimit`]).
    pub trigger_fires: ops::triggers::FireLimit,
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
        // The one place that asks which database is underneath.
        let nodes = match db::Engine::of(&db) {
            db::Engine::Sqlite => node::Nodes::One,
            db::Engine::Postgres => node::Nodes::Several,
        };
        let clock = config.clock.clone();
        let first_start = ops::setup::first_start(&db, &clock, config.admin_password.as_deref())
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
            clock.clone(),
            config.node_timeout,
            Some(config.listen.to_string()),
        )
        .await
        .map_err(crate::Error::into_process)
        .context("could not join the nodes")?;
        let instances = instances::Instances::start(
            db.clone(),
            nodes,
            clock.clone(),
            &node.id,
            config.instance_retention,
        )
        .await
        .map_err(crate::Error::into_process)
        .context("could not load the instances")?;
        let limits = hub::Limits {
            max_streams: config.max_streams_per_token,
            max_instances: config.max_instances_per_token,
            retention: config.instance_retention,
        };
        let hub = hub::Hub::start(
            db.clone(),
            metrics.clone(),
            instances.clone(),
            limits,
            clock.clone(),
        )
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
        // One scheduler across several nodes, by a lease.
        let scheduler = Arc::new(match nodes {
            node::Nodes::One => scheduler::Scheduler::new(config_tick),
            node::Nodes::Several => scheduler::Scheduler::with_lease(
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
            nodes,
            clock,
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
            scheduler,
            notifier: Arc::default(),
            query_tests: tokio::sync::Semaphore::new(ops::probes::MAX_QUERY_TESTS),
            trigger_fires: ops::triggers::FireLimit::default(),
        };
        Ok((Arc::new(core), first_start))
    }
}
