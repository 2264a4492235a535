use crate::model::{AuditPage, AuditQuery};
use crate::Error;
use leptos::prelude::*;

#[server]
pub async fn search_audit(query: AuditQuery) -> Result<AuditPage, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::audit::search(&state, &actor, &query).await
}
