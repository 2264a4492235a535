//! Rollout templates: named plans per environment, and an environment's default.

use super::Tx;
use crate::model::Timestamp;
use sqlx::FromRow;
use sqlx::Result;

#[derive(Debug, Clone, FromRow)]
pub struct TemplateRow {
    pub name: String,
    /// The API's JSON of the plan (checked when read).
    pub plan: String,
    #[sqlx(try_from = "super::columns::Flag")]
    pub builtin: bool,
    pub created_by: String,
    pub created_at: Timestamp,
}

const COLUMNS: &str = "name, plan, builtin, created_by, created_at";

/// An environment's templates by name.
pub async fn list(db: impl super::Executor<'_>, env_id: i64) -> Result<Vec<TemplateRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM rollout_templates WHERE env_id = $1 ORDER BY name"
    ))
    .bind(env_id)
    .fetch_all(db)
    .await
}

pub async fn find(
    db: impl super::Executor<'_>,
    env_id: i64,
    name: &str,
) -> Result<Option<TemplateRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM rollout_templates WHERE env_id = $1 AND name = $2"
    ))
    .bind(env_id)
    .bind(name)
    .fetch_optional(db)
    .await
}

/// A new template; a unique violation when the environment has one of that name.
pub async fn insert(
    tx: &mut Tx<'_>,
    env_id: i64,
    name: &str,
    plan: &str,
    created_by: &str,
) -> Result<TemplateRow> {
    sqlx::query_as(&format!(
        "INSERT INTO rollout_templates (env_id, name, plan, created_by) VALUES ($1, $2, $3, $4)
         RETURNING {COLUMNS}"
    ))
    .bind(env_id)
    .bind(name)
    .bind(plan)
    .bind(created_by)
    .fetch_one(&mut **tx)
    .await
}

/// Deletes a template; whether there was one.
pub async fn delete(tx: &mut Tx<'_>, env_id: i64, name: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM rollout_templates WHERE env_id = $1 AND name = $2")
        .bind(env_id)
        .bind(name)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The id and default template of an environment, `None` when it does not exist.
pub async fn environment(
    db: impl super::Executor<'_>,
    name: &str,
) -> Result<Option<(i64, Option<String>)>> {
    sqlx::query_as("SELECT id, default_template FROM environments WHERE name = $1")
        .bind(name)
        .fetch_optional(db)
        .await
}

/// Sets (or clears) an environment's default template; the database refuses a name that is
/// not one of the environment's templates.
pub async fn set_default(tx: &mut Tx<'_>, env_id: i64, name: Option<&str>) -> Result<()> {
    sqlx::query("UPDATE environments SET default_template = $1 WHERE id = $2")
        .bind(name)
        .bind(env_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::domain::plan::{builtin_templates, parse_plan};

    #[tokio::test]
    async fn every_environment_has_the_builtin_templates_as_the_domain_defines_them() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = crate::server::db::connect(&url).await.unwrap();
        // The migration ran on an empty database: environments created later get them too.
        let mut tx = db.begin().await.unwrap();
        let env = crate::server::db::environments::insert(&mut tx, "qa")
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let rows = super::list(&db, env.id).await.unwrap();
        let builtin = builtin_templates();
        assert_eq!(rows.len(), builtin.len());
        for (row, (name, plan)) in rows.iter().zip(&builtin) {
            assert_eq!(row.name, *name);
            assert!(row.builtin);
            let stored: serde_json::Value = serde_json::from_str(&row.plan).unwrap();
            assert_eq!(&parse_plan(&stored, "plan").unwrap(), plan, "{name}");
        }
    }

    /// Issue 26: environments made before the built-in templates carried the reports guard get
    /// it in their copies; a template someone made is left as it was.
    #[tokio::test]
    async fn the_reports_guard_migration_updates_the_builtin_copies_of_existing_environments() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = crate::server::db::connect(&url).await.unwrap();
        let mut tx = db.begin().await.unwrap();
        let env = crate::server::db::environments::insert(&mut tx, "qa")
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let old = r#"{"steps":[{"percentage":5.0,"hold_secs":600},{"percentage":100.0,"hold_secs":600}],"guards":[],"on_failure":"abort","no_data":"wait","finish":"promote"}"#;
        sqlx::query("UPDATE rollout_templates SET plan = $1 WHERE env_id = $2")
            .bind(old)
            .bind(env.id)
            .execute(&db)
            .await
            .unwrap();
        let mut tx = db.begin().await.unwrap();
        super::insert(&mut tx, env.id, "mine", old, "alice")
            .await
            .unwrap();
        tx.commit().await.unwrap();
        sqlx::raw_sql(include_str!(
            "../../../migrations/sqlite/20261207130026_builtin_templates_reports_guard.sql"
        ))
        .execute(&db)
        .await
        .unwrap();
        let rows = super::list(&db, env.id).await.unwrap();
        let builtin = builtin_templates();
        for (name, plan) in &builtin {
            let row = rows.iter().find(|r| r.name == *name).unwrap();
            let stored: serde_json::Value = serde_json::from_str(&row.plan).unwrap();
            assert_eq!(&parse_plan(&stored, "plan").unwrap(), plan, "{name}");
        }
        let mine = rows.iter().find(|r| r.name == "mine").unwrap();
        assert_eq!(mine.plan, old);
    }
}
