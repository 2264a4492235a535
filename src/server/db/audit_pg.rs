//! The audit search on PostgreSQL: the same answers as on SQLite (see `audit::search`),
//! the first page quick whatever the words match.
//!
//! Left alone with `… WHERE search @@ q ORDER BY id DESC LIMIT n`, the planner assumes the
//! matches are spread evenly over the trail and walks the primary key backwards from the
//! newest entry, which reads all 1,000,000 entries when the words are rare or absent among
//! the newest ones (a ticket number: half a second); started from the GIN index instead, a
//! common word fetches and sorts every match. So the search first walks the newest
//! [`WINDOW`] entries in id order, which finds the page of a common word; when it does not,
//! the density of matches it saw decides the rest: on in id order when the page should
//! fill within [`ORDERED_MAX`] more entries, else through the GIN index (bitmap scans only,
//! the few matches then sorted). Both parts run in one snapshot (`begin_read`), with the
//! planner told which kind of scan to use and planning for the actual words every time.

use super::audit_rows::{AuditRow, Filters, COLUMNS};
use super::{Sql, Tx};
use crate::domain::audit::SearchTerm;

/// The newest entries looked at first, in id order (about 7 ms on the benchmark machine).
const WINDOW: i64 = 8_192;

/// The most entries the rest of a search walks in id order before the GIN index is the
/// quicker way: 0.7–0.9 µs an entry on the benchmark machine, against a few µs for each
/// match the index gives and the fixed cost of reading its posting lists (up to about
/// 30 ms for a last word whose prefix matches many words, `lat` → `latency`). At this
/// bound the rest costs at most about 30 ms either way, and the density that sends a
/// search to the index means few matches to fetch and sort.
const ORDERED_MAX: i64 = 40_000;

/// How the search splits its work; other values than the default only for tests, which
/// check that every split finds the same entries.
#[derive(Clone, Copy, Debug)]
pub struct Tuning {
    /// The newest entries walked first ([`WINDOW`]).
    pub window: i64,
    /// The most entries the rest walks in id order ([`ORDERED_MAX`]).
    pub ordered_max: i64,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            window: WINDOW,
            ordered_max: ORDERED_MAX,
        }
    }
}

pub(super) async fn search(
    pool: &super::Pool,
    f: &Filters<'_>,
    need: i64,
    tuning: Tuning,
) -> crate::Result<Vec<AuditRow>> {
    let words = f.terms.as_deref();
    // The structured filters narrow a match as on SQLite (an equal field has the same
    // words), so the GIN index intersects posting lists rather than fetching rows to
    // compare: actor (weight A), action (B), namespace (C). Not the environment: with one
    // other filter, an `(env, …, id)` index (migrations/postgres) serves it exactly, and
    // its posting list (a third of the trail) would only slow the intersection.
    let mut narrowing: Vec<(&str, &str)> = Vec::new();
    narrowing.extend(f.q.actor.as_deref().map(|v| ("A", v)));
    narrowing.extend(f.action_word().map(|v| ("B", v)));
    narrowing.extend(f.namespaces.iter().flatten().map(|v| ("C", *v)));
    // No words, and one filter (with or without the environment) or a trace id: its
    // b-tree index, whose entries end in the id, gives the newest matches in order.
    if words.is_none() && (f.trace_id.is_some() || narrowing.len() < 2) {
        return plain(pool, f, need).await;
    }
    let mut tx = super::begin_read(pool).await?;
    let tsquery = match tsquery(&mut tx, words, &narrowing).await? {
        Query::Text(tsquery) => tsquery,
        Query::Nothing => return Ok(Vec::new()),
        Query::Fields => return plain(pool, f, need).await,
    };
    let (lower, upper) = bounds(&mut tx, f).await?;
    if lower >= upper {
        return Ok(Vec::new());
    }
    let mid = (upper - tuning.window.max(1)).max(lower);
    use_scans(&mut tx, Scan::Ordered).await?;
    let mut rows: Vec<AuditRow> = part(f, &tsquery, mid, upper, need)
        .fetch_all(&mut *tx)
        .await?;
    let found = rows.len() as i64;
    if found < need && mid > lower {
        let left = need - found;
        // The entries still to walk at the density the window showed.
        let ordered = match found {
            0 => i64::MAX,
            _ => left.saturating_mul(upper - mid) / found,
        };
        if ordered.min(mid - lower) > tuning.ordered_max {
            use_scans(&mut tx, Scan::Bitmap).await?;
        }
        rows.extend(
            part(f, &tsquery, lower, mid, left)
                .fetch_all::<AuditRow, _>(&mut *tx)
                .await?,
        );
    }
    tx.commit().await?;
    Ok(rows)
}

/// Without words to match: the b-tree comparisons alone.
async fn plain(pool: &super::Pool, f: &Filters<'_>, need: i64) -> crate::Result<Vec<AuditRow>> {
    let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM audit a WHERE 1 = 1"));
    f.push_fields(&mut sql);
    f.push_range(&mut sql, "a.id");
    sql.push(" ORDER BY a.id DESC LIMIT ").bind(need);
    Ok(sql.fetch_all(pool).await?)
}

enum Query {
    /// The tsquery to match, as text.
    Text(String),
    /// The words have none the database finds (a lone `½`): nothing matches.
    Nothing,
    /// No words, and no filter has one to narrow by: the comparisons decide alone.
    Fields,
}

/// The words and the narrowing phrases as one tsquery, made by the database's own
/// functions (the PostgreSQL migration), as the `search` column's vector was. Each word also
/// matches the actions whose sentences show it (weight B, the action) and, as `v9`, its number.
async fn tsquery(
    tx: &mut Tx<'static>,
    words: Option<&[SearchTerm]>,
    narrowing: &[(&str, &str)],
) -> crate::Result<Query> {
    let mut parts: Vec<String> = Vec::new();
    if let Some(terms) = words {
        // One round trip: `audit_search_phrase` for every word, in order.
        let mut sql = Sql::new("");
        for (i, term) in terms.iter().enumerate() {
            sql.push(if i == 0 {
                "SELECT "
            } else {
                " UNION ALL SELECT "
            })
            .push(&format!("{i}::bigint, audit_search_phrase("))
            .bind(term.word.clone())
            .push(&format!(", '', {})::text", term.prefix));
        }
        sql.push(" ORDER BY 1");
        let phrases: Vec<(i64, Option<String>)> = sql.fetch_all(&mut **tx).await?;
        let mut any_word = false;
        for (term, (_, phrase)) in terms.iter().zip(phrases) {
            let mut any: Vec<String> = phrase.into_iter().collect();
            let star = if term.prefix { ":*" } else { "" };
            any.extend(term.number.as_deref().map(|n| format!("'{n}'{star}")));
            any.extend(term.actions.iter().map(|a| action_phrase(a)));
            if !any.is_empty() {
                any_word = true;
                parts.push(any.join(" | "));
            }
        }
        if !any_word {
            return Ok(Query::Nothing);
        }
    }
    for (weight, value) in narrowing {
        // NULL when the value has no word: it narrows nothing, its comparison decides.
        let phrase: Option<String> =
            sqlx::query_scalar("SELECT audit_search_phrase($1, $2, false)::text")
                .bind(value.to_string())
                .bind(weight.to_string())
                .fetch_one(&mut **tx)
                .await?;
        parts.extend(phrase);
    }
    Ok(match parts.len() {
        0 => Query::Fields,
        _ => Query::Text(
            parts
                .iter()
                .map(|p| format!("( {p} )"))
                .collect::<Vec<_>>()
                .join(" & "),
        ),
    })
}

/// A known action name as a phrase of the action field (weight B): `release.rollback` is
/// `'release':B <-> 'rollback':B`. Action names are ASCII words joined by `.` and `_`.
fn action_phrase(action: &str) -> String {
    action
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("'{w}':B"))
        .collect::<Vec<_>>()
        .join(" <-> ")
}

/// The ids a search covers, `lower..upper`: the time range (times never decrease along
/// ids, see `audit::record`) and the cursor, found in the `at` index and the primary key.
async fn bounds(tx: &mut Tx<'static>, f: &Filters<'_>) -> crate::Result<(i64, i64)> {
    let top: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) + 1 FROM audit")
        .fetch_one(&mut **tx)
        .await?;
    let mut first_at = async |time: &str| -> sqlx::Result<i64> {
        sqlx::query_scalar(
            "SELECT coalesce((SELECT id FROM audit WHERE at >= $1 ORDER BY at, id LIMIT 1), $2)",
        )
        .bind(time.to_string())
        .bind(top)
        .fetch_one(&mut **tx)
        .await
    };
    let lower = match &f.q.since {
        Some(since) => first_at(since).await?,
        None => 0,
    };
    let mut upper = top;
    if let Some(until) = &f.q.until {
        upper = upper.min(first_at(until).await?);
    }
    if let Some(before) = f.q.before_id {
        upper = upper.min(before);
    }
    Ok((lower, upper))
}

/// The newest `limit` matches among the ids `lo..hi`.
fn part(f: &Filters<'_>, tsquery: &str, lo: i64, hi: i64, limit: i64) -> Sql {
    let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM audit a WHERE a.search @@ "));
    sql.bind(tsquery.to_string()).push("::tsquery");
    f.push_fields(&mut sql);
    sql.push(" AND a.id >= ")
        .bind(lo)
        .push(" AND a.id < ")
        .bind(hi)
        .push(" ORDER BY a.id DESC LIMIT ")
        .bind(limit);
    sql
}

#[derive(Clone, Copy)]
enum Scan {
    /// Index scans in id order (the primary key, or a filter's `(…, id)` index), stopping
    /// at the limit.
    Ordered,
    /// Bitmap scans (the GIN index, intersected with the filters' indexes), then a sort.
    Bitmap,
}

/// Tells the planner, for the rest of the transaction, which kind of scan to use, and to
/// plan each statement for its values (a generic plan cannot see how rare the words are).
async fn use_scans(tx: &mut Tx<'static>, scan: Scan) -> crate::Result<()> {
    let settings: &[(&str, &str)] = match scan {
        Scan::Ordered => &[
            ("plan_cache_mode", "force_custom_plan"),
            ("enable_seqscan", "off"),
            ("enable_bitmapscan", "off"),
        ],
        Scan::Bitmap => &[
            ("enable_bitmapscan", "on"),
            ("enable_indexscan", "off"),
            ("enable_indexonlyscan", "off"),
        ],
    };
    let mut sql = Sql::new("SELECT ");
    for (i, (name, value)) in settings.iter().enumerate() {
        sql.push(if i == 0 {
            "set_config("
        } else {
            ", set_config("
        })
        .bind(name.to_string())
        .push(", ")
        .bind(value.to_string())
        .push(", true)");
    }
    sql.execute(&mut **tx).await?;
    Ok(())
}
