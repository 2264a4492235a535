use super::Tx;
use crate::model::{AuditEntry, AuditPage, AuditQuery};
use sqlx::Result;
use sqlx::{FromRow, QueryBuilder, Sqlite, SqlitePool};

/// An audit entry about to be written, in the transaction of the change it records.
pub struct NewEntry {
    actor: String,
    action: &'static str,
    namespace: Option<String>,
    env: Option<String>,
    key: Option<String>,
    details: serde_json::Value,
}

impl NewEntry {
    pub fn new(actor: &str, action: &'static str) -> Self {
        Self {
            actor: actor.to_string(),
            action,
            namespace: None,
            env: None,
            key: None,
            details: serde_json::json!({}),
        }
    }
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_string());
        self
    }
    pub fn env(mut self, env: &str) -> Self {
        self.env = Some(env.to_string());
        self
    }
    pub fn key(mut self, key: &str) -> Self {
        self.key = Some(key.to_string());
        self
    }
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

pub async fn record(tx: &mut Tx<'_>, e: NewEntry) -> Result<i64> {
    let id = sqlx::query_scalar(
        "INSERT INTO audit (actor, action, namespace, env, key, details) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(&e.actor)
    .bind(e.action)
    .bind(&e.namespace)
    .bind(&e.env)
    .bind(&e.key)
    .bind(e.details.to_string())
    .fetch_one(&mut **tx)
    .await?;
    Ok(id)
}

#[derive(FromRow)]
struct AuditRow {
    id: i64,
    at: String,
    actor: String,
    action: String,
    namespace: Option<String>,
    env: Option<String>,
    key: Option<String>,
    details: String,
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
            details: serde_json::from_str(&r.details).unwrap_or(serde_json::Value::Null),
        }
    }
}

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

/// Newest first, `limit` entries older than `before_id`; `env_scope` and
/// `namespace_scope` restrict a limited reader to its environment and namespace.
pub async fn search(
    pool: &SqlitePool,
    q: &AuditQuery,
    env_scope: Option<&str>,
    namespace_scope: Option<&str>,
) -> Result<AuditPage> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let text = q.q.as_deref().and_then(fts_query);
    // With words to find, the full-text index drives the query, newest match
    // first, so the first page stops after `limit` matches; the filters are
    // checked on the joined rows.
    let id = if text.is_some() { "s.rowid" } else { "a.id" };
    let mut sql: QueryBuilder<Sqlite> = QueryBuilder::new(
        "SELECT a.id, a.at, a.actor, a.action, a.namespace, a.env, a.key, a.details FROM ",
    );
    match &text {
        Some(text) => {
            sql.push("audit_search s JOIN audit a ON a.id = s.rowid WHERE audit_search MATCH ")
                .push_bind(text.clone());
        }
        None => {
            sql.push("audit a WHERE 1 = 1");
        }
    }
    if let Some(actor) = &q.actor {
        sql.push(" AND a.actor = ").push_bind(actor);
    }
    if let Some(action) = &q.action {
        // `release.` matches every release action; a full name matches exactly.
        if let Some(prefix) = action.strip_suffix('.') {
            sql.push(" AND a.action LIKE ").push_bind(format!("{prefix}.%"));
        } else {
            sql.push(" AND a.action = ").push_bind(action);
        }
    }
    if let Some(ns) = &q.namespace {
        sql.push(" AND a.namespace = ").push_bind(ns);
    }
    if let Some(env) = &q.env {
        sql.push(" AND a.env = ").push_bind(env);
    }
    if let Some(env) = env_scope {
        sql.push(" AND a.env = ").push_bind(env.to_string());
    }
    if let Some(ns) = namespace_scope {
        sql.push(" AND a.namespace = ").push_bind(ns.to_string());
    }
    if let Some(since) = &q.since {
        sql.push(" AND a.at >= ").push_bind(since);
    }
    if let Some(until) = &q.until {
        sql.push(" AND a.at < ").push_bind(until);
    }
    if let Some(before) = q.before_id {
        sql.push(format!(" AND {id} < ")).push_bind(before);
    }
    sql.push(format!(" ORDER BY {id} DESC LIMIT "))
        .push_bind(i64::from(limit) + 1);
    let mut rows: Vec<AuditRow> = sql.build_query_as().fetch_all(pool).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_before_id = if more { rows.last().map(|r| r.id) } else { None };
    Ok(AuditPage {
        entries: rows.into_iter().map(Into::into).collect(),
        next_before_id,
    })
}

/// Turns the user's words into a safe FTS5 query: every word quoted (so FTS5
/// syntax in it is plain text), all required, the last one also matching as a
/// prefix (search as you type). `None` when there is no word to look for.
pub fn fts_query(input: &str) -> Option<String> {
    let terms: Vec<&str> = input
        .split_whitespace()
        .filter(|t| t.chars().any(char::is_alphanumeric))
        .collect();
    let last = terms.len().checked_sub(1)?;
    let quoted: Vec<String> = terms
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let star = if i == last { "*" } else { "" };
            format!("\"{}\"{star}", t.replace('"', "\"\""))
        })
        .collect();
    Some(quoted.join(" AND "))
}

#[cfg(test)]
mod tests {
    use super::fts_query;

    #[test]
    fn words_become_a_quoted_conjunction_with_a_prefix_last() {
        assert_eq!(
            fts_query("hotfix  release").as_deref(),
            Some("\"hotfix\" AND \"release\"*")
        );
        assert_eq!(
            fts_query(r#"say "hi" OR NEAR("#).as_deref(),
            Some(r#""say" AND """hi""" AND "OR" AND "NEAR("*"#)
        );
        assert_eq!(fts_query("  - * ").as_deref(), None);
        assert_eq!(fts_query("").as_deref(), None);
    }
}
