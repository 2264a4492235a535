//! `/rollout-probe`: trying a guard's probe now, as the plan editor's "test query now" does.

use crate::api::extract::Json;
use crate::domain::plan::probe::{CompareTestRequest, QueryTestRequest};
use crate::server::auth::Actor;
use crate::server::{ops, AppState};
use crate::Result;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/rollout-probe/prometheus", post(probe_prometheus))
        .route("/rollout-probe/compare", post(probe_compare))
}

/// "Test query now" for a Prometheus guard: `{value?, samples, series?, error?}`.
async fn probe_prometheus(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<QueryTestRequest>,
) -> Result<impl IntoResponse> {
    Ok(Json(
        ops::probes::test_prometheus(&state, &actor, body).await?,
    ))
}

/// "Test the query now" for a compare guard: `{lane, stable, comparison?, sentence}`.
async fn probe_compare(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<CompareTestRequest>,
) -> Result<impl IntoResponse> {
    Ok(Json(ops::probes::test_compare(&state, &actor, body).await?))
}
