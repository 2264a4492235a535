use crate::model::{AuditPage, AuditQuery, Role, Scope};
use crate::server::auth::Actor;
use crate::server::db;
use crate::server::Core;
use crate::Result;

/// Viewers and above read the trail; an environment- or namespace-limited
/// caller sees only its environment's or namespace's entries.
#[tracing::instrument(skip_all)]
pub async fn search(state: &Core, actor: &Actor, query: &AuditQuery) -> Result<AuditPage> {
    actor.require(Role::Viewer, query.scope())?;
    db::audit::search(
        &state.db,
        query,
        actor.env.as_deref(),
        actor.namespace.as_deref(),
    )
    .await
}

/// The actors the audit page offers as a filter (see `db::audit::actors`).
pub async fn actors(state: &Core, actor: &Actor) -> Result<Vec<String>> {
    actor.require(Role::Viewer, Scope::ANY)?;
    db::audit::actors(&state.db, actor.env.as_deref(), actor.namespace.as_deref()).await
}
