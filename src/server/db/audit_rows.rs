//! The audit log's rows as searches read them, and a search's filters: what the SQLite
//! search (`audit`) and the PostgreSQL one (`audit_pg`) share.

use super::Sql;
use crate::domain::audit::{AuditAction, SearchTerm};
use crate::model::{AuditEntry, AuditQuery, Timestamp};
use sqlx::FromRow;

#[derive(FromRow)]
pub(super) struct AuditRow {
    pub id: i64,
    at: Timestamp,
    actor: String,
    /// An unknown word is a corrupt row: the read fails naming the column and the word.
    action: AuditAction,
    namespace: Option<String>,
    env: Option<String>,
    key: Option<String>,
    details: super::columns::Details,
    trace_id: Option<String>,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        AuditEntry {
            id: r.id,
            at: r.at,
            actor: r.actor,
            action: r.action,
            namespace: r.namespace,
            env: r.env,
            key: r.key,
            details: r.details.0,
            trace_id: r.trace_id,
        }
    }
}

/// An audit search's filters, checked, with the reader's scope.
pub(super) struct Filters<'a> {
    pub q: &'a AuditQuery,
    /// The words of `q`, each with the actions whose sentences show it.
    pub terms: Option<Vec<SearchTerm>>,
    pub trace_id: Option<String>,
    pub envs: [Option<&'a str>; 2],
    pub namespaces: [Option<&'a str>; 2],
}

pub(super) const COLUMNS: &str =
    "a.id, a.at, a.actor, a.action, a.namespace, a.env, a.key, a.details, a.trace_id";

impl Filters<'_> {
    /// The action filter as a word to look for: `release.` (every release action) is `release`.
    pub fn action_word(&self) -> Option<&str> {
        self.q
            .action
            .as_deref()
            .map(|a| a.strip_suffix('.').unwrap_or(a))
    }

    /// ` AND …` for each structured filter: exact comparisons, each with a b-tree index.
    pub fn push_fields(&self, sql: &mut Sql) {
        if let Some(actor) = &self.q.actor {
            sql.push(" AND a.actor = ").bind(actor.clone());
        }
        if let Some(action) = &self.q.action {
            // `release.` matches every release action; a full name matches exactly.
            if let Some(prefix) = action.strip_suffix('.') {
                sql.push(" AND a.action LIKE ").bind(format!("{prefix}.%"));
            } else {
                sql.push(" AND a.action = ").bind(action.clone());
            }
        }
        for ns in self.namespaces.into_iter().flatten() {
            sql.push(" AND a.namespace = ").bind(ns.to_string());
        }
        for env in self.envs.into_iter().flatten() {
            sql.push(" AND a.env = ").bind(env.to_string());
        }
        if let Some(trace_id) = &self.trace_id {
            sql.push(" AND a.trace_id = ").bind(trace_id.clone());
        }
    }

    /// ` AND …` for the time range and the cursor, on the id column `id`.
    pub fn push_range(&self, sql: &mut Sql, id: &str) {
        // Times never decrease along ids (see `record`), so a time range is also an
        // id range, found in the `at` index: the scan starts and stops right there.
        if let Some(since) = &self.q.since {
            sql.push(" AND a.at >= ").bind(since.clone());
            push_id_bound(sql, id, ">=", since);
        }
        if let Some(until) = &self.q.until {
            sql.push(" AND a.at < ").bind(until.clone());
            push_id_bound(sql, id, "<", until);
        }
        if let Some(before) = self.q.before_id {
            sql.push(&format!(" AND {id} < ")).bind(before);
        }
    }
}

/// ` AND <id> <op> <the first id at or after time>` (past every id when no
/// entry is that recent).
fn push_id_bound(sql: &mut Sql, id: &str, op: &str, time: &str) {
    sql.push(&format!(
        " AND {id} {op} coalesce((SELECT id FROM audit WHERE at >= "
    ))
    .bind(time.to_string())
    .push(" ORDER BY at, id LIMIT 1), 9223372036854775807)");
}
