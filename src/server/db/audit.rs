pub use super::audit_pg::Tuning;
use super::audit_rows::{AuditRow, Filters, COLUMNS};
use super::Tx;
use super::{Engine, Sql};
use crate::domain::audit::{self, AuditAction, SearchTerm, MAX_SEARCH_WORDS};
use crate::model::Timestamp;
use crate::model::{AuditPage, AuditQuery, ConfigPath};
use sqlx::Result;

tokio::task_local! {
    /// The W3C trace id of the request this task serves (set by `server::trace`).
    static TRACE_ID: String;
}

/// Runs `work` (a request) so that the entries it records keep `trace_id`.
/// A task-local: only work on this task sees it, which holds for every entry
/// (ops record them in the request's own transaction, never in a spawned task).
pub async fn with_trace_id<F: std::future::Future>(trace_id: String, work: F) -> F::Output {
    TRACE_ID.scope(trace_id, work).await
}

/// An audit entry about to be written, in the transaction of the change it records.
pub struct NewEntry {
    actor: String,
    action: AuditAction,
    namespace: Option<String>,
    env: Option<String>,
    key: Option<String>,
    details: serde_json::Value,
    trace_id: Option<String>,
}

impl NewEntry {
    pub fn new(actor: &str, action: AuditAction) -> Self {
        Self {
            actor: actor.to_string(),
            action,
            namespace: None,
            env: None,
            key: None,
            details: serde_json::json!({}),
            // None outside a request: start-up and the CLI.
            trace_id: TRACE_ID.try_with(Clone::clone).ok(),
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
    /// The config the entry is about: its namespace, environment and key.
    pub fn config(mut self, path: &ConfigPath) -> Self {
        self.namespace = Some(path.namespace.clone());
        self.env = Some(path.env.clone());
        self.key = Some(path.key.clone());
        self
    }
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// Writes `e` at `now` (or at the previous entry's time, if that is later).
pub async fn record(tx: &mut Tx<'_>, now: Timestamp, e: NewEntry) -> Result<i64> {
    let id = sqlx::query_scalar(
        // `at` never goes below the previous entry's, even if the clock steps
        // back, so time ranges are id ranges (see `search`).
        "INSERT INTO audit (at, actor, action, namespace, env, key, details, trace_id)
         VALUES (CASE WHEN $8 > coalesce((SELECT at FROM audit ORDER BY id DESC LIMIT 1), '') THEN $8
                      ELSE (SELECT at FROM audit ORDER BY id DESC LIMIT 1) END,
                 $1, $2, $3, $4, $5, $6, $7)
         RETURNING id",
    )
    .bind(&e.actor)
    .bind(e.action.as_str())
    .bind(&e.namespace)
    .bind(&e.env)
    .bind(&e.key)
    .bind(e.details.to_string())
    .bind(&e.trace_id)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    // Notification channels hear of it once this transaction commits (docs/api.md,
    // "Notification channels"): their deliveries are written with the entry.
    if crate::domain::notify::notifiable(e.action) {
        super::channels::enqueue(
            tx,
            now,
            id,
            e.action,
            e.namespace.as_deref(),
            e.env.as_deref(),
        )
        .await?;
    }
    Ok(id)
}

/// The entry with id `id`, if there is one.
pub async fn entry(
    db: impl super::Executor<'_>,
    id: i64,
) -> Result<Option<crate::model::AuditEntry>> {
    let row: Option<AuditRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM audit a WHERE a.id = $1"))
            .bind(id)
            .fetch_optional(db)
            .await?;
    Ok(row.map(Into::into))
}

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

/// Newest first, `limit` entries older than `before_id`; `env_scope` and
/// `namespace_scope` restrict a limited reader to its environment and namespace.
pub async fn search(
    pool: &super::Pool,
    q: &AuditQuery,
    env_scope: Option<&str>,
    namespace_scope: Option<&str>,
) -> crate::Result<AuditPage> {
    search_tuned(pool, q, env_scope, namespace_scope, Tuning::default()).await
}

/// [`search`] with the PostgreSQL search split as `tuning` says (tests; see `audit_pg`).
#[doc(hidden)]
pub async fn search_tuned(
    pool: &super::Pool,
    q: &AuditQuery,
    env_scope: Option<&str>,
    namespace_scope: Option<&str>,
    tuning: Tuning,
) -> crate::Result<AuditPage> {
    refuse_nul(q)?;
    let terms = search_terms(q)?;
    let filters = Filters {
        q,
        terms,
        trace_id: q.trace_id.as_deref().map(trace_id).transpose()?,
        envs: [q.env.as_deref(), env_scope],
        namespaces: [q.namespace.as_deref(), namespace_scope],
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    // One more than the page: whether there is a next one.
    let need = i64::from(limit) + 1;
    let mut rows = match Engine::of(pool) {
        Engine::Sqlite => search_sqlite(pool, &filters, need).await?,
        Engine::Postgres => super::audit_pg::search(pool, &filters, need, tuning).await?,
    };
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_before_id = if more {
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok(AuditPage {
        entries: rows.into_iter().map(Into::into).collect(),
        next_before_id,
    })
}

/// The most actors [`actors`] lists.
pub const MAX_ACTORS: i64 = 1000;

/// The actors a reader can pick from, in name order: the users, the tokens (`token:<name>`) and
/// the server's own names (`system`, `graycast`, `cli`) that wrote at least one entry within the
/// reader's scope. Names typed at a failed sign-in are not among them (search for those).
pub async fn actors(
    pool: &super::Pool,
    env_scope: Option<&str>,
    namespace_scope: Option<&str>,
) -> crate::Result<Vec<String>> {
    let mut sql = Sql::new(
        "SELECT p.name FROM (SELECT username AS name FROM users \
         UNION SELECT 'token:' || name FROM tokens \
         UNION SELECT 'system' UNION SELECT 'graycast' UNION SELECT 'cli') p \
         WHERE EXISTS (SELECT 1 FROM audit a WHERE a.actor = p.name",
    );
    if let Some(env) = env_scope {
        sql.push(" AND a.env = ").bind(env.to_string());
    }
    if let Some(namespace) = namespace_scope {
        sql.push(" AND a.namespace = ").bind(namespace.to_string());
    }
    sql.push(") ORDER BY p.name LIMIT ").bind(MAX_ACTORS);
    let rows: Vec<(String,)> = sql.fetch_all(pool).await?;
    Ok(rows.into_iter().map(|(name,)| name).collect())
}

/// SQLite: the FTS5 index drives the query when there are words to find, and when two
/// or more filters combine (no single b-tree index serves that); newest match first, so
/// the first page stops after `need` matches.
async fn search_sqlite(
    pool: &super::Pool,
    f: &Filters<'_>,
    need: i64,
) -> crate::Result<Vec<AuditRow>> {
    // The structured filters can also narrow a full-text match (a necessary
    // condition: an equal field has the same words), so FTS5 intersects
    // doclists instead of the join testing row after row; the exact
    // comparisons still decide.
    let mut narrowing: Vec<String> = Vec::new();
    narrowing.extend(f.q.actor.as_deref().and_then(|v| column_phrase("actor", v)));
    narrowing.extend(f.action_word().and_then(|v| column_phrase("action", v)));
    for value in f.namespaces.iter().chain(&f.envs).flatten() {
        narrowing.extend(column_phrase("target", value));
    }
    let text = match f.terms.as_deref().map(fts_match) {
        Some(words) => Some([vec![words], narrowing].concat().join(" AND ")),
        None if narrowing.len() >= 2 && f.trace_id.is_none() => Some(narrowing.join(" AND ")),
        None => None,
    };
    let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM "));
    let id = match text {
        Some(text) => {
            sql.push("audit_search s JOIN audit a ON a.id = s.rowid WHERE audit_search MATCH ")
                .bind(text);
            "s.rowid"
        }
        None => {
            sql.push("audit a WHERE 1 = 1");
            "a.id"
        }
    };
    f.push_fields(&mut sql);
    f.push_range(&mut sql, id);
    sql.push(&format!(" ORDER BY {id} DESC LIMIT ")).bind(need);
    Ok(sql.fetch_all(pool).await?)
}

/// FTS5 cannot take a NUL character, even quoted (the query text ends there
/// and the rest is a syntax error): refuse it in the fields that reach the
/// full-text match, naming the field.
fn refuse_nul(q: &AuditQuery) -> crate::Result<()> {
    let fields = [
        ("q", &q.q),
        ("actor", &q.actor),
        ("action", &q.action),
        ("namespace", &q.namespace),
        ("env", &q.env),
    ];
    match fields
        .into_iter()
        .find(|(_, value)| value.as_deref().is_some_and(|v| v.contains('\0')))
    {
        Some((field, _)) => Err(crate::Error::invalid(
            field,
            format!("{field} contains a NUL character (%00); remove it."),
        )),
        None => Ok(()),
    }
}

/// A trace id filter, lowercased as stored: 32 hex digits, not all zeros.
fn trace_id(value: &str) -> crate::Result<String> {
    let valid = value.len() == 32
        && value.bytes().all(|c| c.is_ascii_hexdigit())
        && value.bytes().any(|c| c != b'0');
    if valid {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(crate::Error::invalid(
            "trace_id",
            format!(
                "trace_id {} is not a trace id: give the 32 hex digits of a W3C \
                 traceparent's second field (the response header traceparent names the request's).",
                crate::error::quoted(value)
            ),
        ))
    }
}

/// Quotes a term for FTS5: inside double quotes its syntax is plain text.
fn quote(term: &str) -> String {
    format!("\"{}\"", term.replace('"', "\"\""))
}

/// `column : "value"`, or `None` when the value has no word to match.
fn column_phrase(column: &str, value: &str) -> Option<String> {
    value
        .chars()
        .any(char::is_alphanumeric)
        .then(|| format!("{column} : {}", quote(value)))
}

/// The words of `q`, at most [`MAX_SEARCH_WORDS`]; `None` when there is no word to look for.
fn search_terms(q: &AuditQuery) -> crate::Result<Option<Vec<SearchTerm>>> {
    let terms = q.q.as_deref().and_then(audit::search_terms);
    if terms.as_ref().is_some_and(|t| t.len() > MAX_SEARCH_WORDS) {
        return Err(crate::Error::invalid(
            "q",
            format!("Search for at most {MAX_SEARCH_WORDS} words at a time."),
        ));
    }
    Ok(terms)
}

/// Turns the user's words into a safe FTS5 query: every word quoted (so FTS5 syntax in it is
/// plain text), all required, the last one also matching as a prefix (search as you type).
/// A word the dashboard's sentences show also matches the entries of those actions
/// (`rolled` finds `release.rollback`), and `v9` also matches the number 9.
pub fn fts_match(terms: &[SearchTerm]) -> String {
    terms
        .iter()
        .map(|t| {
            let star = if t.prefix { "*" } else { "" };
            let mut any = vec![format!("{}{star}", quote(&t.word))];
            any.extend(t.number.as_deref().map(|n| format!("{}{star}", quote(n))));
            any.extend(t.actions.iter().map(|a| format!("action : {}", quote(a))));
            match any.len() {
                1 => any.remove(0),
                _ => format!("({})", any.join(" OR ")),
            }
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

#[cfg(test)]
mod tests {
    use super::fts_match;
    use crate::domain::audit::search_terms;

    fn fts_query(q: &str) -> Option<String> {
        search_terms(q).map(|t| fts_match(&t))
    }

    #[test]
    fn words_become_a_quoted_conjunction_with_a_prefix_last() {
        assert_eq!(
            fts_query("hotfix  pool").as_deref(),
            Some("\"hotfix\" AND \"pool\"*")
        );
        assert_eq!(
            fts_query(r#"say "hi" OR NEAR("#).as_deref(),
            Some(r#""say" AND """hi""" AND "OR" AND "NEAR("*"#)
        );
        assert_eq!(fts_query("  - * ").as_deref(), None);
        assert_eq!(fts_query("").as_deref(), None);
    }

    #[test]
    fn words_on_screen_also_match_their_actions() {
        assert_eq!(
            fts_query("rolled v9").as_deref(),
            // A trigger's fire says "rolled back" too.
            Some(
                r#"("rolled" OR action : "release.rollback" OR action : "trigger.fire") AND ("v9"* OR "9"*)"#
            )
        );
    }
}
