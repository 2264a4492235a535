//! The server functions behind the plan editor's "test query now" (the same operations as
//! `POST /api/v1/rollout-probe/prometheus` and `…/compare`).

use crate::domain::plan::probe::{CompareTest, CompareTestRequest, QueryTest, QueryTestRequest};
use crate::Error;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

/// What a Prometheus guard's query gives right now: `value`, `samples`, `series`, `error`.
#[server]
pub async fn test_prometheus_query(request: QueryTestRequest) -> Result<QueryTest, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::probes::test_prometheus(&state, &actor, request).await
}

/// What a compare guard's two queries give right now: both populations' samples, the
/// comparison and its sentence. JSON in: the guard and the drafted lane are nested JSON.
#[server(input = Json)]
pub async fn test_compare_query(request: CompareTestRequest) -> Result<CompareTest, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::probes::test_compare(&state, &actor, request).await
}
