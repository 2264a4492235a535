use crate::model::{AuditPage, AuditQuery};
use crate::Error;
use leptos::prelude::*;

/// `query` defaults to no filters: the URL encoding sends nothing at all for a query whose
/// fields are all empty, as when the top bar's Audit link opens the page in the browser.
#[server]
pub async fn search_audit(#[server(default)] query: AuditQuery) -> Result<AuditPage, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::audit::search(&state, &actor, &query).await
}
