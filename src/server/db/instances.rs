//! Instances and, per config key, what was served to them and
//! what they reported.

use super::{Engine, Tx};
use crate::model::{ConfigPath, Timestamp};
use sqlx::FromRow;
use sqlx::Result;
use std::fmt::Write as _;

/// Changes to one instance row; `None` leaves a column as it is (or at its
/// default when the row is new).
pub struct InstanceUpsert<'a> {
    pub namespace: &'a str,
    pub env: &'a str,
    pub client_id: &'a str,
    /// JSON object.
    pub labels: Option<&'a str>,
    pub connected: Option<bool>,
    pub connected_at: Option<&'a str>,
    pub last_seen: Option<&'a str>,
    /// The node writing (it serves the instance's stream when `connected` is true).
    pub node: &'a str,
}

/// Rows per multi-row statement of the batched writes below (SQLite allows
/// 32,766 parameters; 500 rows use at most 3,500). The write-behind flush
/// after a release touches every connected instance: one statement per row
/// would cost a round trip to the connection's worker thread each.
pub const BATCH_ROWS: usize = 500;

/// `rows` groups of `columns` placeholders, numbered in order: `(?, ?, …), (?, …), …` on
/// SQLite, `($1, $2, …), ($k, …), …` on PostgreSQL. Not `$n` on SQLite: it takes those as
/// names and looks each up among the ones before it, so a statement of 500 rows took 30 ms
/// to prepare, and the flush after a release to 10,000 instances most of a second.
fn placeholders(engine: Engine, rows: usize, columns: usize) -> String {
    let mut text = String::with_capacity(rows * columns * 7);
    for r in 0..rows {
        text.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..columns {
            if c > 0 {
                text.push_str(", ");
            }
            match engine {
                Engine::Sqlite => text.push('?'),
                Engine::Postgres => {
                    let _ = write!(text, "${}", r * columns + c + 1);
                }
            }
        }
        text.push(')');
    }
    text
}

/// Creates the instances' rows when missing (at the column defaults), then
/// sets the columns given, in a few statements.
pub async fn upsert_instances(tx: &mut Tx<'_>, upserts: &[InstanceUpsert<'_>]) -> Result<()> {
    let engine = Engine::of_conn(tx);
    for chunk in upserts.chunks(BATCH_ROWS) {
        let sql = format!(
            "INSERT INTO instances (namespace, env, client_id) VALUES {}
             ON CONFLICT (namespace, env, client_id) DO NOTHING",
            placeholders(engine, chunk.len(), 3)
        );
        let mut query = sqlx::query(&sql).persistent(false);
        for u in chunk {
            query = query.bind(u.namespace).bind(u.env).bind(u.client_id);
        }
        query.execute(&mut **tx).await?;
        let changed: Vec<&InstanceUpsert> = chunk
            .iter()
            .filter(|u| {
                u.labels.is_some()
                    || u.connected.is_some()
                    || u.connected_at.is_some()
                    || u.last_seen.is_some()
            })
            .collect();
        if changed.is_empty() {
            continue;
        }
        // A connect takes the instance to the writing node; a disconnect counts only from
        // the node that serves it, so a stream that moved to another node stays connected
        // when the old node notices its end.
        let sql = format!(
            "UPDATE instances SET
                 labels = coalesce(v.column4, instances.labels),
                 connected = CASE WHEN v.column5 IS NULL THEN instances.connected
                                  WHEN v.column5 = 1 THEN 1
                                  WHEN instances.node IS NULL OR instances.node = v.column8 THEN 0
                                  ELSE instances.connected END,
                 connected_at = coalesce(v.column6, instances.connected_at),
                 last_seen = coalesce(v.column7, instances.last_seen),
                 node = CASE WHEN v.column5 = 1 THEN v.column8 ELSE instances.node END
               FROM (VALUES {}) AS v
              WHERE instances.namespace = v.column1 AND instances.env = v.column2
                AND instances.client_id = v.column3",
            placeholders(engine, changed.len(), 8)
        );
        let mut query = sqlx::query(&sql).persistent(false);
        for u in changed {
            query = query
                .bind(u.namespace)
                .bind(u.env)
                .bind(u.client_id)
                .bind(u.labels)
                .bind(u.connected.map(i64::from))
                .bind(u.connected_at)
                .bind(u.last_seen)
                .bind(u.node);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// A version (and lane) handed to an instance: (namespace, env, client id),
/// key, version, lane.
pub type ServedRow<'a> = (
    (&'a str, &'a str, &'a str),
    &'a str,
    Option<i64>,
    Option<i64>,
);

/// Records the versions (and lanes) the watch stream handed to instances, in
/// a few statements; each (instance, key) at most once. The instances must
/// exist.
pub async fn set_served_many(tx: &mut Tx<'_>, rows: &[ServedRow<'_>]) -> Result<()> {
    let engine = Engine::of_conn(tx);
    for chunk in rows.chunks(BATCH_ROWS) {
        let sql = format!(
            "INSERT INTO instance_configs (namespace, env, client_id, key, served, lane)
             VALUES {}
             ON CONFLICT (namespace, env, client_id, key) DO UPDATE SET
                 served = excluded.served, lane = excluded.lane",
            placeholders(engine, chunk.len(), 6)
        );
        let mut query = sqlx::query(&sql).persistent(false);
        for &((namespace, env, client_id), key, version, lane) in chunk {
            query = query
                .bind(namespace)
                .bind(env)
                .bind(client_id)
                .bind(key)
                .bind(version)
                .bind(lane);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// A report from an instance about one config.
pub struct ReportRow<'a> {
    pub version: i64,
    /// `applied` or `failed`.
    pub status: &'a str,
    pub message: Option<&'a str>,
    pub at: &'a str,
}

/// Records a report; an `applied` one also becomes the applied version, a
/// `failed` one leaves the last applied version as it was and becomes the instance's last
/// failure, which stays until it applies that version or a newer one.
pub async fn set_report(
    tx: &mut Tx<'_>,
    (namespace, env, client_id): (&str, &str, &str),
    key: &str,
    r: &ReportRow<'_>,
) -> Result<()> {
    let failed = r.status == "failed";
    sqlx::query(
        "INSERT INTO instance_configs
             (namespace, env, client_id, key, applied, reported, status, message, reported_at,
              failed, failed_message, failed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (namespace, env, client_id, key) DO UPDATE SET
             applied = CASE WHEN excluded.status = 'applied' THEN excluded.reported
                            ELSE instance_configs.applied END,
             reported = excluded.reported,
             status = excluded.status,
             message = excluded.message,
             reported_at = excluded.reported_at,
             failed = CASE WHEN excluded.status = 'failed' THEN excluded.failed
                           WHEN instance_configs.failed <= excluded.reported THEN NULL
                           ELSE instance_configs.failed END,
             failed_message = CASE WHEN excluded.status = 'failed' THEN excluded.failed_message
                                   WHEN instance_configs.failed <= excluded.reported THEN NULL
                                   ELSE instance_configs.failed_message END,
             failed_at = CASE WHEN excluded.status = 'failed' THEN excluded.failed_at
                              WHEN instance_configs.failed <= excluded.reported THEN NULL
                              ELSE instance_configs.failed_at END",
    )
    .bind(namespace)
    .bind(env)
    .bind(client_id)
    .bind(key)
    .bind((!failed).then_some(r.version))
    .bind(r.version)
    .bind(r.status)
    .bind(r.message)
    .bind(r.at)
    .bind(failed.then_some(r.version))
    .bind(if failed { r.message } else { None })
    .bind(failed.then_some(r.at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// No watch stream survives a restart: every instance starts disconnected.
pub async fn mark_all_disconnected(db: impl super::Executor<'_>) -> Result<u64> {
    let done = sqlx::query("UPDATE instances SET connected = 0 WHERE connected = 1")
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// Deletes instances disconnected and unseen since before `cutoff` (their
/// per-key rows go with them); returns who they were: (namespace, env, client id).
pub async fn prune(
    db: impl super::Executor<'_>,
    cutoff: &str,
) -> Result<Vec<(String, String, String)>> {
    sqlx::query_as(
        "DELETE FROM instances WHERE connected = 0 AND last_seen < $1
         RETURNING namespace, env, client_id",
    )
    .bind(cutoff)
    .fetch_all(db)
    .await
}

/// Placeholders numbered in the order they are written: `?` on SQLite, `$1`, `$2` … on
/// PostgreSQL (see [`placeholders`] for why not `$n` on SQLite).
struct Numbered {
    engine: Engine,
    written: usize,
}

impl Numbered {
    fn new(engine: Engine) -> Self {
        Self { engine, written: 0 }
    }

    fn next(&mut self) -> String {
        self.written += 1;
        match self.engine {
            Engine::Sqlite => "?".into(),
            Engine::Postgres => format!("${}", self.written),
        }
    }

    /// `(?, ?, …)`: `n` of them, for `IN`.
    fn list(&mut self, n: usize) -> String {
        let each: Vec<String> = (0..n).map(|_| self.next()).collect();
        format!("({})", each.join(", "))
    }
}

/// Which instances of a namespace and environment a read covers (always only those
/// connected or seen at or after the retention cutoff).
pub enum Which<'a> {
    /// Every one.
    All,
    /// Client ids after `after`, at most `limit` of them; only connected (or only
    /// disconnected) ones with `connected`, only those with a row for `key` with `key`.
    Page {
        after: &'a str,
        limit: u32,
        connected: Option<bool>,
        key: Option<&'a str>,
    },
    /// These client ids (at most [`BATCH_ROWS`]).
    Listed(&'a [&'a str]),
}

#[derive(Debug, Clone, FromRow)]
pub struct InstanceRow {
    pub client_id: String,
    pub labels: String,
    #[sqlx(try_from = "super::columns::Flag")]
    pub connected: bool,
    pub connected_at: Timestamp,
    pub last_seen: Timestamp,
}

/// The instances of a namespace and environment that are connected or were
/// seen at or after `cutoff`, as `which` says, by client id.
pub async fn list(
    db: &super::Pool,
    namespace: &str,
    env: &str,
    cutoff: &str,
    which: &Which<'_>,
) -> Result<Vec<InstanceRow>> {
    let mut p = Numbered::new(Engine::of(db));
    let mut sql = format!(
        "SELECT client_id, labels, connected, connected_at, last_seen
           FROM instances
          WHERE namespace = {} AND env = {} AND (connected = 1 OR last_seen >= {})",
        p.next(),
        p.next(),
        p.next()
    );
    match which {
        Which::All => {}
        Which::Page { connected, key, .. } => {
            sql.push_str(&format!(" AND client_id > {}", p.next()));
            match connected {
                Some(true) => sql.push_str(" AND connected = 1"),
                Some(false) => sql.push_str(" AND connected = 0"),
                None => {}
            }
            if key.is_some() {
                sql.push_str(&format!(
                    " AND EXISTS (SELECT 1 FROM instance_configs c
                                   WHERE c.namespace = instances.namespace
                                     AND c.env = instances.env
                                     AND c.client_id = instances.client_id AND c.key = {})",
                    p.next()
                ));
            }
        }
        Which::Listed(ids) => sql.push_str(&format!(" AND client_id IN {}", p.list(ids.len()))),
    }
    sql.push_str(" ORDER BY client_id");
    if let Which::Page { .. } = which {
        sql.push_str(&format!(" LIMIT {}", p.next()));
    }
    let mut query = sqlx::query_as(&sql)
        .persistent(matches!(which, Which::All | Which::Page { .. }))
        .bind(namespace)
        .bind(env)
        .bind(cutoff);
    match which {
        Which::All => {}
        Which::Page {
            after, limit, key, ..
        } => {
            query = query.bind(*after);
            if let Some(key) = key {
                query = query.bind(*key);
            }
            query = query.bind(i64::from(*limit));
        }
        Which::Listed(ids) => {
            for id in *ids {
                query = query.bind(*id);
            }
        }
    }
    query.fetch_all(db).await
}

#[derive(Debug, Clone, FromRow)]
pub struct InstanceConfigRow {
    pub client_id: String,
    pub key: String,
    pub served: Option<i64>,
    pub lane: Option<i64>,
    pub applied: Option<i64>,
    pub reported: Option<i64>,
    pub status: Option<String>,
    pub message: Option<String>,
    pub reported_at: Option<Timestamp>,
    pub failed: Option<i64>,
    pub failed_message: Option<String>,
    pub failed_at: Option<Timestamp>,
}

/// The per-key rows of the instances of a namespace and environment (every one, or those
/// `listed`: at most [`BATCH_ROWS`]), for live configs only (a `deleted` frame still being
/// recorded must not bring a deleted config back into the view).
pub async fn configs(
    db: &super::Pool,
    namespace: &str,
    env: &str,
    listed: Option<&[&str]>,
) -> Result<Vec<InstanceConfigRow>> {
    let mut p = Numbered::new(Engine::of(db));
    let mut sql = format!(
        "SELECT client_id, key, served, lane, applied, reported, status, message, reported_at,
                failed, failed_message, failed_at
           FROM instance_configs i
          WHERE namespace = {} AND env = {}
            AND EXISTS (SELECT 1 FROM configs c
                          JOIN namespaces n ON n.id = c.namespace_id
                          JOIN environments e ON e.id = c.env_id
                         WHERE n.name = i.namespace AND e.name = i.env AND c.key = i.key
                           AND c.deleted_at IS NULL)",
        p.next(),
        p.next()
    );
    if let Some(ids) = listed {
        sql.push_str(&format!(" AND client_id IN {}", p.list(ids.len())));
    }
    sql.push_str(" ORDER BY client_id, key");
    let mut query = sqlx::query_as(&sql)
        .persistent(listed.is_none())
        .bind(namespace)
        .bind(env);
    for id in listed.unwrap_or_default() {
        query = query.bind(*id);
    }
    query.fetch_all(db).await
}

/// Forgets what every instance was served and reported for a config being
/// deleted, so a config created again under its key starts with a clean slate.
pub async fn forget_key(tx: &mut Tx<'_>, path: &ConfigPath) -> Result<()> {
    sqlx::query("DELETE FROM instance_configs WHERE namespace = $1 AND env = $2 AND key = $3")
        .bind(&path.namespace)
        .bind(&path.env)
        .bind(&path.key)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_plain_on_sqlite_and_numbered_on_postgres() {
        assert_eq!(placeholders(Engine::Sqlite, 2, 3), "(?, ?, ?), (?, ?, ?)");
        assert_eq!(
            placeholders(Engine::Postgres, 2, 3),
            "($1, $2, $3), ($4, $5, $6)"
        );
        assert_eq!(placeholders(Engine::Sqlite, 1, 1), "(?)");
        let mut p = Numbered::new(Engine::Postgres);
        assert_eq!(
            (p.next(), p.list(2), p.next()),
            ("$1".into(), "($2, $3)".into(), "$4".into())
        );
        let mut p = Numbered::new(Engine::Sqlite);
        assert_eq!((p.next(), p.list(2)), ("?".into(), "(?, ?)".into()));
    }
}
