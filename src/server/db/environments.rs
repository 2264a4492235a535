use super::Tx;
use crate::model::Environment;
use crate::model::Timestamp;
use sqlx::FromRow;
use sqlx::Result;

#[derive(FromRow)]
struct EnvironmentRow {
    id: i64,
    name: String,
    created_at: Timestamp,
    default_template: Option<String>,
    approvals: i64,
}

impl From<EnvironmentRow> for Environment {
    fn from(r: EnvironmentRow) -> Self {
        Environment {
            id: r.id,
            name: r.name,
            created_at: r.created_at,
            default_template: r.default_template,
            approvals: r.approvals,
            frozen: None,
        }
    }
}

pub async fn list(db: impl super::Executor<'_>) -> Result<Vec<Environment>> {
    let rows: Vec<EnvironmentRow> = sqlx::query_as(
        "SELECT id, name, created_at, default_template, approvals FROM environments
         ORDER BY CASE name WHEN 'dev' THEN 0 WHEN 'staging' THEN 1 WHEN 'prod' THEN 2 ELSE 3 END, name",
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn find(tx: &mut Tx<'_>, name: &str) -> Result<Option<Environment>> {
    let row: Option<EnvironmentRow> = sqlx::query_as(
        "SELECT id, name, created_at, default_template, approvals FROM environments WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(Into::into))
}

pub async fn insert(tx: &mut Tx<'_>, name: &str) -> Result<Environment> {
    let row: EnvironmentRow =
        sqlx::query_as("INSERT INTO environments (name) VALUES ($1) RETURNING id, name, created_at, default_template, approvals")
            .bind(name)
            .fetch_one(&mut **tx)
            .await?;
    Ok(row.into())
}
