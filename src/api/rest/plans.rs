//! A lane's rollout plan (docs/plans.md): reading and attaching it, and its controls; each
//! calls `server::ops::plans`, which authorizes the caller.

use super::CONFIGS;
use crate::api::extract::{governed, optional_json, outcome, Json, LanePath};
use crate::api::plan_fns::Control;
use crate::model::AttachPlan;
use crate::server::auth::Actor;
use crate::server::{ops, AppState};
use crate::{Error, Result};
use axum::body::Bytes;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, post, MethodRouter};
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            &format!("{CONFIGS}/{{key}}/lanes/{{id}}/plan"),
            get(get_plan).put(attach_plan),
        )
        .route(
            &format!("{CONFIGS}/{{key}}/lanes/{{id}}/plan/pause"),
            control(Control::Pause),
        )
        .route(
            &format!("{CONFIGS}/{{key}}/lanes/{{id}}/plan/resume"),
            control(Control::Resume),
        )
        .route(
            &format!("{CONFIGS}/{{key}}/lanes/{{id}}/plan/advance"),
            control(Control::Advance),
        )
}

async fn get_plan(
    State(state): State<AppState>,
    actor: Actor,
    LanePath { config: path, id }: LanePath,
) -> Result<impl IntoResponse> {
    Ok(Json(ops::plans::get(&state, &actor, &path, id).await?))
}

async fn attach_plan(
    State(state): State<AppState>,
    actor: Actor,
    LanePath { config: path, id }: LanePath,
    Json(body): Json<serde_json::Value>,
) -> Result<impl IntoResponse> {
    let (body, governed) = governed::<AttachPlan>(body)?;
    let done = ops::plans::attach(&state, &actor, &path, id, body, &governed).await?;
    Ok(outcome(done, axum::http::StatusCode::OK))
}

/// `POST …/plan/pause`, `resume` or `advance`: the body `{force?, message?}` is optional.
fn control(which: Control) -> MethodRouter<AppState> {
    post(
        move |State(state): State<AppState>,
              actor: Actor,
              LanePath { config: path, id }: LanePath,
              body: Bytes| async move {
            let control = optional_json(&body)?;
            let plan = which.apply(&state, &actor, &path, id, control).await?;
            Ok::<_, Error>(Json(plan))
        },
    )
}
