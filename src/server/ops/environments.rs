use super::{check_name, conflict_on_unique};
use crate::domain::audit::AuditAction;
use crate::model::{Environment, Role, Scope};
use crate::server::auth::Actor;
use crate::server::db::{self, audit::NewEntry};
use crate::server::Core;
use crate::Result;

/// Every signed-in caller may see which environments exist.
#[tracing::instrument(skip_all)]
pub async fn list(state: &Core, actor: &Actor) -> Result<Vec<Environment>> {
    actor.require(Role::Subscriber, Scope::ANY)?;
    let mut list = db::environments::list(&state.db).await?;
    super::governance_view::frozen_envs(state, &mut list).await?;
    Ok(list)
}

#[tracing::instrument(skip_all)]
pub async fn create(state: &Core, actor: &Actor, name: &str) -> Result<Environment> {
    // An environment is outside every limit, a namespace limit included.
    actor.require_unlimited(Role::Admin, "Creating environments")?;
    check_name("name", name)?;
    let mut tx = db::begin_write(&state.db).await?;
    let env = db::environments::insert(&mut tx, name).await.map_err(|e| {
        conflict_on_unique(e, format!("An environment named {name:?} already exists."))
    })?;
    db::audit::record(
        &mut tx,
        state.clock.now(),
        NewEntry::new(&actor.name, AuditAction::EnvironmentCreate)
            .env(name)
            .details(serde_json::json!({ "name": name })),
    )
    .await?;
    tx.commit().await?;
    Ok(env)
}
