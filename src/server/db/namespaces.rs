use super::Tx;
use crate::model::Namespace;
use crate::model::Timestamp;
use sqlx::FromRow;
use sqlx::Result;

#[derive(FromRow)]
struct NamespaceRow {
    id: i64,
    name: String,
    description: String,
    created_at: Timestamp,
    config_count: i64,
    config_env: Option<String>,
}

impl From<NamespaceRow> for Namespace {
    fn from(r: NamespaceRow) -> Self {
        Namespace {
            id: r.id,
            name: r.name,
            description: r.description,
            created_at: r.created_at,
            config_count: r.config_count,
            config_env: r.config_env,
        }
    }
}

/// Which namespaces a listing may show, and which environments' configs it counts.
#[derive(Default)]
pub struct Listing<'a> {
    /// Case-insensitive substring of the name or description.
    pub search: Option<&'a str>,
    /// Only this namespace (a namespace-limited token).
    pub only: Option<&'a str>,
    /// Count only this environment's configs (an environment-limited caller).
    pub env: Option<&'a str>,
}

/// Namespaces by name.
pub async fn list(db: impl super::Executor<'_>, listing: Listing<'_>) -> Result<Vec<Namespace>> {
    let mut sql = super::Sql::new(
        "SELECT n.id, n.name, n.description, n.created_at,
                (SELECT COUNT(*) FROM configs c
                  WHERE c.namespace_id = n.id AND c.deleted_at IS NULL",
    );
    if let Some(env) = listing.env {
        sql.push(" AND c.env_id = (SELECT id FROM environments WHERE name = ")
            .bind(env.to_string())
            .push(")");
    }
    sql.push(
        ") AS config_count,
                (SELECT e.name FROM configs c JOIN environments e ON e.id = c.env_id
                  WHERE c.namespace_id = n.id AND c.deleted_at IS NULL",
    );
    if let Some(env) = listing.env {
        sql.push(" AND e.name = ").bind(env.to_string());
    }
    // In the order the environments are listed (`environments::list`).
    sql.push(
        " ORDER BY CASE e.name WHEN 'dev' THEN 0 WHEN 'staging' THEN 1 WHEN 'prod' THEN 2 ELSE 3 END,
                   e.name LIMIT 1) AS config_env FROM namespaces n WHERE 1 = 1",
    );
    if let Some(only) = listing.only {
        sql.push(" AND n.name = ").bind(only.to_string());
    }
    if let Some(search) = listing.search.map(str::trim).filter(|s| !s.is_empty()) {
        // LIKE with the user's `%`, `_` and `\` escaped: they are plain characters.
        let pattern = format!("%{}%", like_escape(&search.to_lowercase()));
        sql.push(" AND (lower(n.name) LIKE ")
            .bind(pattern.clone())
            .push(" ESCAPE '\\' OR lower(n.description) LIKE ")
            .bind(pattern)
            .push(" ESCAPE '\\')");
    }
    sql.push(" ORDER BY n.name");
    let rows: Vec<NamespaceRow> = sql.fetch_all(db).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// `text` with LIKE's wildcards and the escape character itself escaped by `\`.
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub async fn id_of(db: impl super::Executor<'_>, name: &str) -> Result<Option<i64>> {
    sqlx::query_scalar("SELECT id FROM namespaces WHERE name = $1")
        .bind(name)
        .fetch_optional(db)
        .await
}

pub async fn insert(tx: &mut Tx<'_>, name: &str, description: &str) -> Result<Namespace> {
    let row: NamespaceRow = sqlx::query_as(
        "INSERT INTO namespaces (name, description) VALUES ($1, $2)
         RETURNING id, name, description, created_at, 0 AS config_count,
                   CAST(NULL AS TEXT) AS config_env",
    )
    .bind(name)
    .bind(description)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.into())
}
