//! The server function behind the plan editor's "test query now" (the same operation as
//! `POST /api/v1/rollout-probe/prometheus`).

use crate::domain::plan::probe::{QueryTest, QueryTestRequest};
use crate::Error;
use leptos::prelude::*;

/// What a Prometheus guard's query gives right now: `value`, `samples`, `series`, `error`.
#[server]
pub async fn test_prometheus_query(request: QueryTestRequest) -> Result<QueryTest, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::probes::test_prometheus(&state, &actor, request).await
}
