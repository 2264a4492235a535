use super::Tx;
use crate::model::Timestamp;
use crate::model::{Role, TokenInfo};
use sqlx::FromRow;
use sqlx::Result;

#[derive(FromRow)]
struct TokenRow {
    id: i64,
    name: String,
    role: Role,
    namespace: Option<String>,
    env: Option<String>,
    prefix: String,
    created_by: String,
    created_at: Timestamp,
    last_used_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
}

impl From<TokenRow> for TokenInfo {
    fn from(r: TokenRow) -> Self {
        TokenInfo {
            id: r.id,
            name: r.name,
            role: r.role,
            namespace: r.namespace,
            env: r.env,
            prefix: r.prefix,
            created_by: r.created_by,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        }
    }
}

const COLUMNS: &str =
    "id, name, role, namespace, env, prefix, created_by, created_at, last_used_at, revoked_at";

pub struct NewTokenRow<'a> {
    pub name: &'a str,
    pub token_hash: &'a str,
    pub prefix: &'a str,
    pub role: Role,
    pub namespace: Option<&'a str>,
    pub env: Option<&'a str>,
    pub created_by: &'a str,
}

pub async fn insert(tx: &mut Tx<'_>, t: NewTokenRow<'_>) -> Result<TokenInfo> {
    let row: TokenRow = sqlx::query_as(&format!(
        "INSERT INTO tokens (name, token_hash, prefix, role, namespace, env, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    ))
    .bind(t.name)
    .bind(t.token_hash)
    .bind(t.prefix)
    .bind(t.role.as_str())
    .bind(t.namespace)
    .bind(t.env)
    .bind(t.created_by)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.into())
}

/// The token with this hash, unless it was revoked.
pub async fn find_active_by_hash(
    pool: &super::Pool,
    token_hash: &str,
) -> Result<Option<TokenInfo>> {
    let row: Option<TokenRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tokens WHERE token_hash = $1 AND revoked_at IS NULL"
    ))
    .bind(token_hash)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Into::into))
}

/// Records use at most once a minute per token, to keep reads cheap.
pub async fn touch(pool: &super::Pool, now: crate::domain::time::Timestamp, id: i64) -> Result<()> {
    sqlx::query(
        "UPDATE tokens SET last_used_at = $2
         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
    )
    .bind(id)
    .bind(now)
    .bind(crate::server::clock::timestamp(now.unix_ms() - 60_000))
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn list(pool: &super::Pool) -> Result<Vec<TokenInfo>> {
    let rows: Vec<TokenRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tokens ORDER BY revoked_at IS NOT NULL, id DESC"
    ))
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn find(tx: &mut Tx<'_>, id: i64) -> Result<Option<TokenInfo>> {
    let row: Option<TokenRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM tokens WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(row.map(Into::into))
}

pub async fn revoke(tx: &mut Tx<'_>, now: crate::domain::time::Timestamp, id: i64) -> Result<()> {
    sqlx::query("UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
        .bind(id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
