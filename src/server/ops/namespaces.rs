use super::{check_name, conflict_on_unique};
use crate::domain::audit::AuditAction;
use crate::model::{Namespace, NewNamespace, Role, Scope};
use crate::server::auth::Actor;
use crate::server::db::{self, audit::NewEntry};
use crate::server::Core;
use crate::{Error, Result};

pub const MAX_DESCRIPTION_CHARS: usize = 1000;

/// Viewers list namespaces; a namespace-limited token sees only its own, and an
/// environment-limited caller's counts cover only its environment.
#[tracing::instrument(skip_all)]
pub async fn list(state: &Core, actor: &Actor, search: Option<&str>) -> Result<Vec<Namespace>> {
    actor.require(Role::Viewer, Scope::ANY)?;
    let listing = db::namespaces::Listing {
        search,
        only: actor.namespace.as_deref(),
        env: actor.env.as_deref(),
    };
    Ok(db::namespaces::list(&state.db, listing).await?)
}

/// Editors create namespaces (a namespace-limited token only its own). A
/// namespace spans every environment, so an environment limit does not stop it.
#[tracing::instrument(skip_all)]
pub async fn create(state: &Core, actor: &Actor, new: NewNamespace) -> Result<Namespace> {
    actor.require(Role::Editor, Scope::namespace(&new.name))?;
    check_name("name", &new.name)?;
    let description = new.description.as_deref().unwrap_or("").trim();
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(Error::invalid(
            "description",
            format!(
                "The description has more than {MAX_DESCRIPTION_CHARS} characters; shorten it."
            ),
        ));
    }
    let mut tx = db::begin_write(&state.db).await?;
    let namespace = db::namespaces::insert(&mut tx, &new.name, description)
        .await
        .map_err(|e| {
            conflict_on_unique(
                e,
                format!("A namespace named {:?} already exists.", new.name),
            )
        })?;
    db::audit::record(
        &mut tx,
        state.clock.now(),
        NewEntry::new(&actor.name, AuditAction::NamespaceCreate)
            .namespace(&new.name)
            .details(serde_json::json!({ "name": new.name, "description": description })),
    )
    .await?;
    tx.commit().await?;
    Ok(namespace)
}
