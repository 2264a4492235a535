//! Instances as release managers see them: labels, connect
//! time, last seen, the version served per key, and what each reported.
//!
//! Changes arrive at the rate of connects, heartbeats and pushes (thousands a
//! second during a rollout), so they are collected in memory and written
//! behind, in one transaction every [`FLUSH_EVERY`]; every read flushes
//! first, so readers never see older state than what happened before the
//! read.

use crate::domain::Context;
use crate::model::{EnvPath, Instance, InstanceConfig, InstancePage, InstancesQuery, Report};
use crate::server::db::{self, instances as sql};
use crate::Result;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, Notify};

pub const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Changes that are only "last seen" times (a heartbeat went out) are written
/// this rarely: every read flushes first, so nobody sees them late, and
/// 10,000 streams with 15 s heartbeats would otherwise mean a write
/// transaction every [`FLUSH_EVERY`] all day long.
const SEEN_FLUSH_EVERY: Duration = Duration::from_secs(5);
/// After the hub hands out a release, the flush waits this long, so that
/// writing what each instance was served does not take CPU and the database
/// from the events still being written to sockets.
const SETTLE: Duration = Duration::from_millis(300);
/// ... but under back-to-back releases it never waits longer than this.
const MAX_SETTLE: Duration = Duration::from_secs(1);
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// What changed in a namespace and environment, for live views (the dashboard's
/// instances stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// These instances connected, disconnected, were handed a version, reported, or were
    /// forgotten (the retention period passed).
    Instances(EnvPath, Arc<[String]>),
    /// Something that is no instance's own: a release event was delivered, a rollout plan moved.
    Other(EnvPath),
}

impl Change {
    /// The namespace and environment where it changed.
    pub fn at(&self) -> &EnvPath {
        match self {
            Change::Instances(at, _) | Change::Other(at) => at,
        }
    }
}
/// One instance: its namespace, environment and client id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct InstanceKey {
    namespace: String,
    env: String,
    client_id: String,
}

impl InstanceKey {
    /// The instance `client_id` of `at`.
    fn new(at: &EnvPath, client_id: &str) -> Self {
        Self {
            namespace: at.namespace.clone(),
            env: at.env.clone(),
            client_id: client_id.to_string(),
        }
    }
}
/// A version handed to an instance (`version: None`: it no longer has the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedChange {
    pub scope: EnvPath,
    pub client_id: String,
    pub key: String,
    pub version: Option<i64>,
    pub lane: Option<i64>,
}

/// Unwritten changes to one instance.
#[derive(Default)]
struct Pending {
    labels: Option<String>,
    connected: Option<bool>,
    connected_at: Option<String>,
    last_seen: Option<String>,
    served: BTreeMap<String, (Option<i64>, Option<i64>)>,
    reports: BTreeMap<String, Report>,
    reported_at: BTreeMap<String, String>,
}

impl Pending {
    /// Takes in the changes of an `older` batch that could not be written,
    /// where this one has nothing newer.
    fn absorb_older(&mut self, older: Pending) {
        self.labels = self.labels.take().or(older.labels);
        self.connected = self.connected.or(older.connected);
        self.connected_at = self.connected_at.take().or(older.connected_at);
        self.last_seen = self.last_seen.take().or(older.last_seen);
        for (key, served) in older.served {
            self.served.entry(key).or_insert(served);
        }
        for (key, report) in older.reports {
            if let std::collections::btree_map::Entry::Vacant(entry) = self.reports.entry(key) {
                if let Some(at) = older.reported_at.get(entry.key()) {
                    self.reported_at.insert(entry.key().clone(), at.clone());
                }
                entry.insert(report);
            }
        }
    }
}

#[derive(Default)]
struct State {
    pending: HashMap<InstanceKey, Pending>,
    /// Watch streams open per instance (one process may open several).
    open: HashMap<InstanceKey, usize>,
    /// While a fan-out is being delivered, the writer holds back until then.
    settle_until: Option<tokio::time::Instant>,
    /// Something other than a "last seen" time is pending.
    urgent: bool,
    /// The last release event whose deliveries the hub handed to [`Instances::served`].
    delivered: i64,
}

pub struct Instances {
    db: db::Pool,
    /// One node or several: with one, no stream survives a restart.
    nodes: crate::server::node::Nodes,
    /// The times written, and the retention period's cutoff.
    clock: crate::server::clock::Clock,
    /// This node's id: the instances whose streams it serves carry it.
    node: String,
    retention: Duration,
    state: Mutex<State>,
    wake: Notify,
    /// One flush at a time, so a reader's flush waits for one in progress.
    flushing: tokio::sync::Mutex<()>,
    changes: broadcast::Sender<Change>,
    /// What the hub delivered up to this release event is written (see [`Instances::written_through`]).
    written_through: AtomicI64,
    /// Notified after every flush that wrote something: the plan scheduler judges what is written.
    flushed: Notify,
}

impl Instances {
    /// Starts the writer.
    pub async fn start(
        db: db::Pool,
        nodes: crate::server::node::Nodes,
        clock: crate::server::clock::Clock,
        node: &str,
        retention: Duration,
    ) -> Result<Arc<Self>> {
        let instances = Arc::new(Self {
            db,
            nodes,
            clock,
            node: node.to_string(),
            retention,
            state: Mutex::default(),
            wake: Notify::new(),
            flushing: tokio::sync::Mutex::new(()),
            // Per stream, per debounce period, what arrives in it; a live view that lags
            // behind starts over from a fresh first page.
            changes: broadcast::channel(4096).0,
            written_through: AtomicI64::new(0),
            flushed: Notify::new(),
        });
        tokio::spawn(writer(Arc::downgrade(&instances)));
        Ok(instances)
    }

    /// With one node, marks every stored instance disconnected: no stream survives a
    /// restart. The server does this before it listens; the CLI, which may
    /// run beside a server, does not.
    pub async fn forget_streams(&self) -> Result<()> {
        // Several nodes: the others' streams live on; the instances of nodes that died are
        // marked by the heartbeat sweep (see `server::node`).
        if !self.nodes.shared() {
            sql::mark_all_disconnected(&self.db).await?;
        }
        Ok(())
    }

    fn pending<R>(&self, key: InstanceKey, f: impl FnOnce(&mut Pending) -> R) -> R {
        let mut state = self.state.lock().expect("instances lock");
        f(state.pending.entry(key).or_default())
    }

    /// A watch stream opened.
    pub fn connected(&self, scope: &EnvPath, client_id: &str, labels: &Context) {
        let key = InstanceKey::new(scope, client_id);
        let now = self.now_text();
        let labels = serde_json::to_string(labels).unwrap_or_else(|_| "{}".into());
        {
            let mut state = self.state.lock().expect("instances lock");
            *state.open.entry(key.clone()).or_default() += 1;
            let p = state.pending.entry(key).or_default();
            p.labels = Some(labels);
            p.connected = Some(true);
            p.connected_at = Some(now.clone());
            p.last_seen = Some(now);
            state.urgent = true;
        }
        self.instances_changed(scope.clone(), vec![client_id.to_string()]);
    }

    /// A watch stream closed (or was dropped for being too slow).
    pub fn disconnected(&self, scope: &EnvPath, client_id: &str) {
        let key = InstanceKey::new(scope, client_id);
        {
            let mut state = self.state.lock().expect("instances lock");
            let still_open = match state.open.get_mut(&key) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    true
                }
                _ => {
                    state.open.remove(&key);
                    false
                }
            };
            let p = state.pending.entry(key).or_default();
            p.last_seen = Some(self.now_text());
            if !still_open {
                p.connected = Some(false);
            }
            state.urgent = true;
        }
        self.instances_changed(scope.clone(), vec![client_id.to_string()]);
    }

    /// A heartbeat went out on one of its streams.
    pub fn seen(&self, scope: &EnvPath, client_id: &str) {
        let key = InstanceKey::new(scope, client_id);
        self.pending(key, |p| p.last_seen = Some(self.now_text()));
    }

    /// A large fan-out is starting: the writer starts no flush until
    /// [`SETTLE`] after it (the hub's [`Instances::served`] at its end
    /// extends that), so the database work does not take CPU from the writes.
    pub fn hold(&self) {
        let mut state = self.state.lock().expect("instances lock");
        let until = tokio::time::Instant::now() + SETTLE;
        state.settle_until = Some(state.settle_until.map_or(until, |u| u.max(until)));
    }

    /// Versions handed to instances by the push hub.
    pub fn served(&self, batch: Vec<ServedChange>) {
        if batch.is_empty() {
            return;
        }
        let mut by_scope: HashMap<EnvPath, Vec<String>> = HashMap::new();
        {
            let mut state = self.state.lock().expect("instances lock");
            state.settle_until = Some(tokio::time::Instant::now() + SETTLE);
            state.urgent = true;
            for change in batch {
                let key = InstanceKey::new(&change.scope, &change.client_id);
                by_scope
                    .entry(change.scope)
                    .or_default()
                    .push(change.client_id);
                state
                    .pending
                    .entry(key)
                    .or_default()
                    .served
                    .insert(change.key, (change.version, change.lane));
            }
        }
        for (scope, mut client_ids) in by_scope {
            client_ids.sort_unstable();
            client_ids.dedup();
            self.instances_changed(scope, client_ids);
        }
    }

    /// The hub has handed [`Instances::served`] everything it delivered for the release events
    /// up to `up_to`.
    pub fn delivered(&self, up_to: i64) {
        let mut state = self.state.lock().expect("instances lock");
        if up_to > state.delivered {
            state.delivered = up_to;
            // Written soon even when the release served nobody, so plans waiting for it go on.
            state.urgent = true;
        }
    }

    /// Every version the hub delivered for the release events up to this one is written (and
    /// so seen by a lane's served set).
    pub fn written_through(&self) -> i64 {
        self.written_through.load(Ordering::Acquire)
    }

    /// Notified after a flush wrote something (at most one waiter: the plan scheduler).
    pub fn flushed(&self) -> &Notify {
        &self.flushed
    }

    pub fn report(&self, report: Report) {
        let scope = EnvPath::new(&report.namespace, &report.env);
        let key = InstanceKey::new(&scope, &report.client_id);
        let client_id = report.client_id.clone();
        let now = self.now_text();
        {
            let mut state = self.state.lock().expect("instances lock");
            state.urgent = true;
            let p = state.pending.entry(key).or_default();
            p.last_seen = Some(now.clone());
            p.reported_at.insert(report.key.clone(), now);
            p.reports.insert(report.key.clone(), report);
        }
        self.wake.notify_one();
        self.instances_changed(scope, vec![client_id]);
    }

    /// Tells live views of `scope` that something other than an instance changed there
    /// (a release event was delivered, a rollout plan moved).
    pub fn changed(&self, scope: &EnvPath) {
        let _ = self.changes.send(Change::Other(scope.clone()));
    }

    fn instances_changed(&self, scope: EnvPath, client_ids: Vec<String>) {
        let _ = self
            .changes
            .send(Change::Instances(scope, client_ids.into()));
    }

    /// What changes, for live views.
    pub fn changes(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Writes every pending change. What cannot be written (the database
    /// is busy or full) is kept for the next flush, under anything newer.
    pub async fn flush(&self) -> Result<()> {
        let _one_at_a_time = self.flushing.lock().await;
        let (pending, delivered) = {
            let mut state = self.state.lock().expect("instances lock");
            state.urgent = false;
            (std::mem::take(&mut state.pending), state.delivered)
        };
        if pending.is_empty() {
            if self.written_through.fetch_max(delivered, Ordering::AcqRel) < delivered {
                self.flushed.notify_one();
            }
            return Ok(());
        }
        let written = self.write(&pending).await;
        if written.is_ok() {
            self.written_through.fetch_max(delivered, Ordering::AcqRel);
            self.flushed.notify_one();
        } else {
            let mut state = self.state.lock().expect("instances lock");
            state.urgent = true;
            for (key, older) in pending {
                state.pending.entry(key).or_default().absorb_older(older);
            }
        }
        written
    }

    /// Writes `pending` in one transaction.
    async fn write(&self, pending: &HashMap<InstanceKey, Pending>) -> Result<()> {
        // Batched: after a release every connected instance has a change.
        let upserts: Vec<sql::InstanceUpsert> = pending
            .iter()
            .map(|(key, p)| sql::InstanceUpsert {
                namespace: &key.namespace,
                env: &key.env,
                client_id: &key.client_id,
                labels: p.labels.as_deref(),
                connected: p.connected,
                connected_at: p.connected_at.as_deref(),
                last_seen: p.last_seen.as_deref(),
                node: &self.node,
            })
            .collect();
        let served: Vec<sql::ServedRow> = pending
            .iter()
            .flat_map(|(who, p)| {
                p.served.iter().map(move |(key, (version, lane))| {
                    (
                        (
                            who.namespace.as_str(),
                            who.env.as_str(),
                            who.client_id.as_str(),
                        ),
                        key.as_str(),
                        *version,
                        *lane,
                    )
                })
            })
            .collect();
        let mut tx = db::begin_write(&self.db).await?;
        sql::upsert_instances(&mut tx, &upserts).await?;
        sql::set_served_many(&mut tx, &served).await?;
        for (instance, p) in pending {
            let who = (
                instance.namespace.as_str(),
                instance.env.as_str(),
                instance.client_id.as_str(),
            );
            for (key, report) in &p.reports {
                let at = p.reported_at.get(key).map(String::as_str).unwrap_or("");
                sql::set_report(
                    &mut tx,
                    who,
                    key,
                    &sql::ReportRow {
                        version: report.version,
                        status: report.status.as_str(),
                        message: report.message.as_deref(),
                        at,
                    },
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    fn cutoff(&self) -> String {
        let retention = i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX);
        self.clock
            .ago(retention.min(self.clock.now_ms().saturating_add(1)))
            .to_string()
    }

    /// Now, in the database's timestamp format.
    fn now_text(&self) -> String {
        self.clock.now().to_string()
    }

    /// Connected instances and those seen within the retention period, by client id.
    pub async fn list(&self, namespace: &str, env: &str) -> Result<Vec<Instance>> {
        self.flush().await?;
        self.read(namespace, env, &sql::Which::All).await
    }

    /// One page of [`Instances::list`], as `query` asks.
    pub async fn page(
        &self,
        namespace: &str,
        env: &str,
        query: &InstancesQuery,
        connected: Option<bool>,
    ) -> Result<InstancePage> {
        self.flush().await?;
        let limit = query.page_size();
        let which = sql::Which::Page {
            after: query.after.as_deref().unwrap_or(""),
            // One more than the page: whether there is a next one.
            limit: limit + 1,
            connected,
            key: query.key.as_deref(),
        };
        let mut instances = self.read(namespace, env, &which).await?;
        let more = instances.len() > limit as usize;
        instances.truncate(limit as usize);
        let next_after = more
            .then(|| instances.last().map(|i| i.client_id.clone()))
            .flatten();
        Ok(InstancePage {
            instances,
            next_after,
        })
    }

    /// Those of `client_ids` that [`Instances::list`] holds, by client id.
    pub async fn listed(
        &self,
        namespace: &str,
        env: &str,
        client_ids: &[String],
    ) -> Result<Vec<Instance>> {
        self.flush().await?;
        let mut found = Vec::new();
        for chunk in client_ids.chunks(sql::BATCH_ROWS) {
            let ids: Vec<&str> = chunk.iter().map(String::as_str).collect();
            found.extend(self.read(namespace, env, &sql::Which::Listed(&ids)).await?);
        }
        Ok(found)
    }

    /// The instances `which` names, with their configs.
    async fn read(
        &self,
        namespace: &str,
        env: &str,
        which: &sql::Which<'_>,
    ) -> Result<Vec<Instance>> {
        let rows = sql::list(&self.db, namespace, env, &self.cutoff(), which).await?;
        let config_rows = match which {
            sql::Which::All => sql::configs(&self.db, namespace, env, None).await?,
            _ => {
                let ids: Vec<&str> = rows.iter().map(|r| r.client_id.as_str()).collect();
                let mut found = Vec::new();
                for chunk in ids.chunks(sql::BATCH_ROWS) {
                    found.extend(sql::configs(&self.db, namespace, env, Some(chunk)).await?);
                }
                found
            }
        };
        let mut configs: HashMap<String, BTreeMap<String, InstanceConfig>> = HashMap::new();
        for row in config_rows {
            configs.entry(row.client_id).or_default().insert(
                row.key,
                InstanceConfig {
                    served: row.served,
                    lane: row.lane,
                    applied: row.applied,
                    status: row.status.as_deref().and_then(|s| {
                        serde_json::from_value(serde_json::Value::String(s.into())).ok()
                    }),
                    message: row.message,
                    reported: row.reported,
                    reported_at: row.reported_at,
                    failure: match (row.failed, row.failed_at) {
                        (Some(version), Some(at)) => Some(crate::model::Failure {
                            version,
                            message: row.failed_message,
                            at,
                        }),
                        _ => None,
                    },
                },
            );
        }
        Ok(rows
            .into_iter()
            .map(|row| Instance {
                labels: serde_json::from_str(&row.labels).unwrap_or_default(),
                connected: row.connected,
                connected_at: row.connected_at,
                last_seen: row.last_seen,
                configs: configs.remove(&row.client_id).unwrap_or_default(),
                client_id: row.client_id,
            })
            .collect())
    }

    async fn prune(&self) -> Result<()> {
        self.flush().await?;
        let pruned = sql::prune(&self.db, &self.cutoff()).await?;
        if !pruned.is_empty() {
            tracing::info!(
                pruned = pruned.len(),
                "forgot instances disconnected longer than the retention period"
            );
        }
        let mut by_scope: HashMap<EnvPath, Vec<String>> = HashMap::new();
        for (namespace, env, client_id) in pruned {
            by_scope
                .entry(EnvPath::new(namespace, env))
                .or_default()
                .push(client_id);
        }
        for (scope, client_ids) in by_scope {
            self.instances_changed(scope, client_ids);
        }
        Ok(())
    }
}

/// Writes pending changes every [`FLUSH_EVERY`] (sooner after a report, later
/// while a release is being delivered: [`SETTLE`]; "last seen" times alone
/// every [`SEEN_FLUSH_EVERY`]), and prunes old disconnected instances, until
/// the registry is dropped.
async fn writer(instances: std::sync::Weak<Instances>) {
    // On the server's clock, like the retention period it enforces.
    let mut last_prune = match instances.upgrade() {
        Some(this) => this.clock.now_ms(),
        None => return,
    };
    let mut last_flush = tokio::time::Instant::now();
    loop {
        let Some(this) = instances.upgrade() else {
            return;
        };
        let _ = tokio::time::timeout(FLUSH_EVERY, this.wake.notified()).await;
        let settle_until = this
            .state
            .lock()
            .expect("instances lock")
            .settle_until
            .take();
        if let Some(until) = settle_until {
            let now = tokio::time::Instant::now();
            tokio::time::sleep_until(until.min(now + MAX_SETTLE)).await;
        }
        let urgent = this.state.lock().expect("instances lock").urgent;
        if urgent || last_flush.elapsed() >= SEEN_FLUSH_EVERY {
            last_flush = tokio::time::Instant::now();
            if let Err(e) = this.flush().await {
                tracing::error!(error = e.detail(), "cannot write instance changes");
            }
        }
        let now = this.clock.now_ms();
        if now - last_prune >= PRUNE_EVERY.min(this.retention).as_millis() as i64 {
            last_prune = now;
            if let Err(e) = this.prune().await {
                tracing::error!(error = e.detail(), "cannot prune instances");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registry on a fresh database in which client `a` of `ns/prod` has
    /// just connected (the directory lives as long as the first value).
    async fn registry_with_a() -> (tempfile::TempDir, db::Pool, Arc<Instances>, EnvPath) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = crate::server::db::connect(&url).await.unwrap();
        let instances = Instances::start(
            db.clone(),
            crate::server::node::Nodes::One,
            crate::server::clock::Clock::system(),
            "test-node",
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
        let scope = EnvPath::new("ns", "prod");
        instances.connected(&scope, "a", &Context::new());
        (dir, db, instances, scope)
    }

    /// The stored `last_seen` of client `a` in `ns/prod`, if it is stored.
    async fn stored_last_seen(db: &db::Pool) -> Option<crate::model::Timestamp> {
        sqlx::query_scalar("SELECT last_seen FROM instances WHERE client_id = 'a'")
            .fetch_optional(db)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn heartbeats_alone_are_written_rarely_but_every_read_sees_them() {
        let (_dir, db, instances, scope) = registry_with_a().await;
        // A connect is written at the next flush.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let first = loop {
            if let Some(seen) = stored_last_seen(&db).await {
                break seen;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the connect was never written"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // Times are kept to the millisecond: make the next one differ.
        tokio::time::sleep(Duration::from_millis(5)).await;
        instances.seen(&scope, "a");
        // Several flush periods later a heartbeat alone is still unwritten
        // (it waits for SEEN_FLUSH_EVERY, counted from the connect's flush)…
        tokio::time::sleep(FLUSH_EVERY * 3).await;
        assert_eq!(stored_last_seen(&db).await.as_ref(), Some(&first));
        // … but a read flushes first, so it never shows older state.
        let listed = instances.list("ns", "prod").await.unwrap();
        assert!(listed[0].last_seen > first, "{listed:?}");
        assert_eq!(stored_last_seen(&db).await, Some(listed[0].last_seen));
    }

    #[tokio::test]
    async fn changes_that_cannot_be_written_wait_for_the_next_flush() {
        let (_dir, db, instances, scope) = registry_with_a().await;
        instances.flush().await.unwrap();
        // The served versions' table is away: the write fails.
        let rename = |from: &str, to: &str| format!("ALTER TABLE {from} RENAME TO {to}");
        sqlx::query(&rename("instance_configs", "away"))
            .execute(&db)
            .await
            .unwrap();
        instances.served(vec![ServedChange {
            scope: scope.clone(),
            client_id: "a".into(),
            key: "k".into(),
            version: Some(3),
            lane: None,
        }]);
        assert!(instances.flush().await.is_err());
        // A newer change to the same instance comes meanwhile; then the table is back.
        instances.served(vec![ServedChange {
            scope: scope.clone(),
            client_id: "a".into(),
            key: "j".into(),
            version: Some(7),
            lane: None,
        }]);
        sqlx::query(&rename("away", "instance_configs"))
            .execute(&db)
            .await
            .unwrap();
        instances.flush().await.unwrap();
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT key, served FROM instance_configs WHERE client_id = 'a' ORDER BY key",
        )
        .fetch_all(&db)
        .await
        .unwrap();
        assert_eq!(rows, vec![("j".into(), 7), ("k".into(), 3)]);
    }

    #[test]
    fn an_unwritten_batch_fills_in_only_where_the_newer_one_has_nothing() {
        let report = |version| Report {
            client_id: "a".into(),
            namespace: "ns".into(),
            env: "prod".into(),
            key: "k".into(),
            version,
            status: crate::model::ReportStatus::Applied,
            message: None,
        };
        let mut newer = Pending {
            last_seen: Some("t2".into()),
            served: BTreeMap::from([("k".to_string(), (Some(2), None))]),
            ..Pending::default()
        };
        let older = Pending {
            labels: Some("{}".into()),
            last_seen: Some("t1".into()),
            served: BTreeMap::from([
                ("k".to_string(), (Some(1), None)),
                ("j".to_string(), (Some(5), Some(9))),
            ]),
            reports: BTreeMap::from([("k".to_string(), report(1))]),
            reported_at: BTreeMap::from([("k".to_string(), "t0".to_string())]),
            ..Pending::default()
        };
        newer.absorb_older(older);
        assert_eq!(newer.labels.as_deref(), Some("{}"));
        assert_eq!(newer.last_seen.as_deref(), Some("t2"));
        assert_eq!(newer.served["k"], (Some(2), None));
        assert_eq!(newer.served["j"], (Some(5), Some(9)));
        assert_eq!(newer.reports["k"].version, 1);
        assert_eq!(newer.reported_at["k"], "t0");
    }

    #[test]
    fn times_match_the_database_format() {
        let clock = crate::server::clock::timestamp(1_795_000_000_123);
        assert_eq!(clock.to_string(), "2026-11-18T11:06:40.123Z");
    }
}
