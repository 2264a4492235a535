//! Server functions for rollout plans (PRODUCT.md section 6) on the config page: the plans of a
//! config's lanes, the environment's templates, starting a lane with a plan, and the controls.
//! Thin like the rest: `server::ops::plans` / `ops::templates` / `ops::lanes` authorize the caller.

#[cfg(feature = "ssr")]
use crate::model::PlanControl;
use crate::model::{ConfigPath, Lane, LaneId, LanePlan, NewLane};
use crate::Error;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

/// At most this many closed lanes' plans are read for the "graycast aborted" banner (the newest
/// lanes whose plan ended aborted).
pub const MAX_ABORTS_SHOWN: usize = 3;

/// A config's lanes and the plans the config page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigPlans {
    /// Every lane of the config, as `list_lanes` returns them (with their plan summaries).
    pub lanes: Vec<Lane>,
    /// The plan of each active lane that has one, then of the newest closed lanes whose plan
    /// was aborted (at most [`MAX_ABORTS_SHOWN`]).
    pub plans: Vec<LanePlan>,
}

/// The lanes of the config and their plans, in one call (the page asks again on every live
/// update and every few seconds while a plan runs).
#[server]
pub async fn plans_of_config(path: ConfigPath) -> Result<ConfigPlans, Error> {
    use crate::domain::plan::decide::PlanState;
    use crate::model::LaneStatus;
    let (state, actor) = super::caller().await?;
    let lanes = crate::server::ops::lanes::list(&state, &actor, &path).await?;
    let active = lanes
        .iter()
        .filter(|l| l.status == LaneStatus::Active && l.plan.is_some());
    let aborted = lanes
        .iter()
        .filter(|l| {
            l.status != LaneStatus::Active
                && l.plan.as_ref().map(|p| p.state) == Some(PlanState::Aborted)
        })
        .take(MAX_ABORTS_SHOWN);
    let mut plans = Vec::new();
    for lane in active.chain(aborted) {
        plans.push(crate::server::ops::plans::get(&state, &actor, &path, LaneId(lane.id)).await?);
    }
    Ok(ConfigPlans { lanes, plans })
}

/// The plan templates of an environment, and its default. (The model's type is named in full:
/// the server function's own arguments struct is `PlanTemplates`.)
#[server]
pub async fn plan_templates(env: String) -> Result<crate::model::PlanTemplates, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::templates::list(&state, &actor, &env).await
}

/// Starts a gray lane, with a plan (`lane.plan`) or a template (`lane.template`) or neither
/// (400 with `field` on an invalid selector, percentage, version or plan).
/// JSON in, because a plan is nested JSON with numbers the URL encoding would turn into text.
#[server(input = Json)]
pub async fn start_lane(path: ConfigPath, lane: NewLane) -> Result<Lane, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::lanes::create(
        &state,
        &actor,
        &path,
        lane,
        &crate::model::Governed::default(),
    )
    .await?
    .done()
}

/// The controls of a running plan. The REST routes (`POST …/lanes/{id}/plan/pause`, `resume`,
/// `advance`) and the server functions below carry each out through [`Control::apply`].
#[cfg(feature = "ssr")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    Pause,
    Resume,
    Advance,
}

#[cfg(feature = "ssr")]
impl Control {
    /// Carries the control out on the plan of `lane` (the operation authorizes `actor`).
    pub(crate) async fn apply(
        self,
        core: &crate::server::Core,
        actor: &crate::server::auth::Actor,
        path: &ConfigPath,
        lane: LaneId,
        control: PlanControl,
    ) -> Result<LanePlan, Error> {
        use crate::server::ops::plans;
        match self {
            Self::Pause => plans::pause(core, actor, path, lane, control).await,
            Self::Resume => plans::resume(core, actor, path, lane, control).await,
            Self::Advance => plans::advance(core, actor, path, lane, control).await,
        }
    }

    /// Carries the control out for the signed-in caller of a server function.
    async fn by_caller(
        self,
        path: ConfigPath,
        lane: LaneId,
        control: PlanControl,
    ) -> Result<LanePlan, Error> {
        let (core, actor) = super::caller().await?;
        self.apply(&core, &actor, &path, lane, control).await
    }
}

/// Pauses the lane's running plan (its hold keeps the time it had left).
#[server]
pub async fn pause_plan(
    path: ConfigPath,
    lane: LaneId,
    message: Option<String>,
) -> Result<LanePlan, Error> {
    let control = PlanControl {
        force: false,
        message,
    };
    Control::Pause.by_caller(path, lane, control).await
}

/// Resumes the lane's paused plan.
#[server]
pub async fn resume_plan(
    path: ConfigPath,
    lane: LaneId,
    message: Option<String>,
) -> Result<LanePlan, Error> {
    let control = PlanControl {
        force: false,
        message,
    };
    Control::Resume.by_caller(path, lane, control).await
}

/// Skips the rest of the current step's hold; with `force`, the guards too (audited).
#[server]
pub async fn advance_plan(
    path: ConfigPath,
    lane: LaneId,
    force: bool,
    message: Option<String>,
) -> Result<LanePlan, Error> {
    Control::Advance
        .by_caller(path, lane, PlanControl { force, message })
        .await
}
