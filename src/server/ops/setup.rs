//! First start: the default environments and the `admin` user.

use crate::domain::audit::AuditAction;
use crate::model::Role;
use crate::server::auth::{hash_password, random_password};
use crate::server::db::{self, audit::NewEntry};
use crate::Result;

pub const DEFAULT_ENVIRONMENTS: [&str; 3] = ["dev", "staging", "prod"];

/// The admin credentials generated on first start (printed once by `serve`).
#[derive(Debug, Clone)]
pub struct FirstStart {
    pub admin_password_generated: Option<String>,
}

/// On first start (no users yet): creates the default environments and the
/// `admin` user. Returns what was created, or `None` on later starts.
#[tracing::instrument(skip_all)]
pub async fn first_start(
    pool: &db::Pool,
    clock: &crate::server::clock::Clock,
    admin_password: Option<&str>,
) -> Result<Option<FirstStart>> {
    if db::users::count(pool).await? > 0 {
        return Ok(None);
    }
    let generated = admin_password.is_none().then(random_password);
    let password = admin_password
        .map(str::to_string)
        .or_else(|| generated.clone())
        .unwrap_or_default();
    let hash = hash_password(&password).await?;
    let mut tx = db::begin_write(pool).await?;
    for env in DEFAULT_ENVIRONMENTS {
        if db::environments::find(&mut tx, env).await?.is_none() {
            db::environments::insert(&mut tx, env).await?;
            db::audit::record(
                &mut tx,
                clock.now(),
                NewEntry::new("system", AuditAction::EnvironmentCreate)
                    .env(env)
                    .details(serde_json::json!({ "name": env, "reason": "first start" })),
            )
            .await?;
        }
    }
    let id = db::users::insert(&mut tx, "admin", &hash, Role::Admin, None).await?;
    db::audit::record(
        &mut tx,
        clock.now(),
        NewEntry::new("system", AuditAction::UserCreate)
            .details(serde_json::json!({ "id": id, "username": "admin", "role": "admin", "reason": "first start" })),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(FirstStart {
        admin_password_generated: generated,
    }))
}
