use crate::model::{AuditPage, AuditQuery};
use crate::Error;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

// JSON: a query without any filter has no field to send as a form, and the server would
// then miss the argument altogether.
#[server(input = Json)]
pub async fn search_audit(query: AuditQuery) -> Result<AuditPage, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::audit::search(&state, &actor, &query).await
}

/// The actors the audit page offers to filter by.
#[server]
pub async fn audit_actors() -> Result<Vec<String>, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::audit::actors(&state, &actor).await
}
