//! Rollout plans as the API and the dashboard see them (docs/plans.md): what a plan is
//! (percentages, not basis points), a lane's plan with its guards and history, templates and
//! the controls. Shared by both targets: nothing here is server-only.

use super::Timestamp;
use crate::plan::decide::{PlanAction, PlanState};
use crate::plan::guard::GuardStatus;
use crate::plan::{Finish, Guard, GuardKind, NoDataPolicy, OnFailure, Plan, Step};
use serde::{Deserialize, Serialize};

/// A rollout plan in the API's shape, every default filled in. Its JSON is exactly what
/// `POST …/lanes` takes as `plan` (see [`PlanSpec::to_value`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanSpec {
    pub steps: Vec<PlanStep>,
    /// `{kind: "reports" | "prometheus" | "webhook", …}` with every field of its kind.
    pub guards: Vec<Guard>,
    pub on_failure: OnFailure,
    pub no_data: NoDataPolicy,
    pub finish: Finish,
}

/// One step: the lane's percentage (0.01–100, two decimals) and the least time it is held.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlanStep {
    pub percentage: f64,
    pub hold_secs: u32,
}

/// Basis points as the API's percentage.
pub fn percentage_of(bp: u32) -> f64 {
    f64::from(bp) / 100.0
}

impl From<&Plan> for PlanSpec {
    fn from(plan: &Plan) -> Self {
        Self {
            steps: plan
                .steps
                .iter()
                .map(|s: &Step| PlanStep {
                    percentage: percentage_of(s.percentage_bp),
                    hold_secs: s.hold_secs,
                })
                .collect(),
            guards: plan.guards.clone(),
            on_failure: plan.on_failure,
            no_data: plan.no_data,
            finish: plan.finish,
        }
    }
}

impl PlanSpec {
    /// The JSON a request carries as `plan` (what `parse_plan` reads back to the same plan).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// A lane's plan, in short: shown with the lane in lane listings and config objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanSummary {
    pub state: PlanState,
    /// The current step, from 0.
    pub step: usize,
    /// How many steps the plan has.
    pub steps: usize,
    /// The current step's percentage.
    pub percentage: f64,
    pub step_started_at: Timestamp,
    /// Of the current step's hold (0 once it is over, and while paused: what it had left).
    pub remaining_secs: u64,
    /// What a running plan waits for, in plain words (the hold, instances, reports…).
    #[serde(default)]
    pub waiting_for: Option<String>,
    /// Why it was paused, aborted or completed.
    #[serde(default)]
    pub reason: Option<String>,
    /// The template the plan was made from, if any.
    #[serde(default)]
    pub template: Option<String>,
}

/// `GET …/lanes/{id}/plan`: the plan, where it is, its guards' latest readings and its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LanePlan {
    pub lane: i64,
    pub plan: PlanSpec,
    #[serde(flatten)]
    pub summary: PlanSummary,
    /// One per guard of the plan, in the plan's order.
    pub guards: Vec<GuardReading>,
    /// Transitions, oldest first.
    pub history: Vec<PlanTransition>,
}

/// A guard's latest evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardReading {
    /// Its index in the plan's `guards`.
    pub guard: usize,
    pub kind: GuardKind,
    pub status: GuardStatus,
    /// Failed instances (`reports`), the sample (`prometheus`), the HTTP status (`webhook`).
    pub value: Option<f64>,
    pub message: String,
    /// `None` until it was first evaluated.
    pub evaluated_at: Option<Timestamp>,
}

/// One change of a plan's state or step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanTransition {
    pub id: i64,
    pub at: Timestamp,
    pub action: PlanAction,
    /// `graycast` for the scheduler's own moves, else the person (or token).
    pub actor: String,
    pub from_step: Option<usize>,
    pub step: usize,
    /// The plan's state after the transition.
    pub state: PlanState,
    /// The lane's percentage after it.
    pub percentage: f64,
    pub reason: Option<String>,
    /// The release event it caused (`lane.update`, `lane.promote`, `lane.abort`), if any.
    pub release_event: Option<i64>,
    /// An `advance` that skipped the guards (`force: true`).
    #[serde(default)]
    pub forced: bool,
}

/// Body of `PUT …/lanes/{id}/plan`: a plan, or a template's name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachPlan {
    #[serde(default)]
    pub plan: Option<serde_json::Value>,
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// Body of `POST …/lanes/{id}/plan/pause|resume|advance`, each field optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanControl {
    /// `advance` only: skip the guards too (audited).
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub message: Option<String>,
}

/// A named plan kept per environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutTemplate {
    pub env: String,
    pub name: String,
    pub plan: PlanSpec,
    /// Shipped with graycast (`canary`, `linear`).
    pub builtin: bool,
    /// The environment's default template (the dashboard preselects it).
    pub default: bool,
    pub created_by: String,
    pub created_at: Timestamp,
}

/// `GET /api/v1/rollout-templates?env=`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutTemplates {
    pub env: String,
    pub default_template: Option<String>,
    /// By name.
    pub templates: Vec<RolloutTemplate>,
}

/// Body of `POST /api/v1/rollout-templates?env=`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRolloutTemplate {
    pub name: String,
    pub plan: serde_json::Value,
}

/// Body of `PUT /api/v1/rollout-templates/default?env=`: a template's name, or `null` for none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultTemplate {
    pub template: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{builtin_templates, parse_plan};

    #[test]
    fn a_spec_reads_back_as_the_same_plan() {
        for (_, plan) in builtin_templates() {
            let spec = PlanSpec::from(&plan);
            assert_eq!(parse_plan(&spec.to_value(), "plan").unwrap(), plan);
        }
        let plan = parse_plan(
            &serde_json::json!({"steps": [{"percentage": 12.34, "hold_secs": 1}], "guards": [
                {"kind": "reports"},
                {"kind": "prometheus", "url": "http://p:9090", "query": "up", "min": 1},
                {"kind": "webhook", "url": "http://h/x"}]}),
            "plan",
        )
        .unwrap();
        let value = PlanSpec::from(&plan).to_value();
        assert_eq!(value["steps"][0]["percentage"], 12.34);
        assert_eq!(value["guards"][1]["kind"], "prometheus");
        assert_eq!(value["guards"][2]["timeout_secs"], 5);
        assert_eq!(parse_plan(&value, "plan").unwrap(), plan);
    }
}
