//! Rollout plans as the API and the dashboard see them (docs/plans.md): a lane's plan
//! ([`Plan`], whose JSON is exactly what `POST …/lanes` takes as `plan`) with its guards and
//! history, templates and the controls. Shared by both targets: nothing here is server-only.

use super::Timestamp;
use crate::percentage::Percentage;
use crate::plan::decide::{PlanAction, PlanState};
use crate::plan::guard::GuardStatus;
use crate::plan::{GuardKind, Plan};
use serde::{Deserialize, Serialize};

/// A lane's plan, in short: shown with the lane in lane listings and config objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanSummary {
    pub state: PlanState,
    /// The current step, from 0.
    pub step: usize,
    /// How many steps the plan has.
    pub steps: usize,
    /// The current step's percentage.
    pub percentage: Percentage,
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
    pub plan: Plan,
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
    /// `compare` only: both medians, the ratio, U, the p-value and the counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<crate::compare::Comparison>,
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
    pub percentage: Percentage,
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
pub struct PlanTemplate {
    pub env: String,
    pub name: String,
    pub plan: Plan,
    /// Shipped with graycast (`canary`, `linear`).
    pub builtin: bool,
    /// The environment's default template (the dashboard preselects it).
    pub default: bool,
    pub created_by: String,
    pub created_at: Timestamp,
}

/// `GET /api/v1/rollout-templates?env=`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanTemplates {
    pub env: String,
    pub default_template: Option<String>,
    /// By name.
    pub templates: Vec<PlanTemplate>,
}

/// Body of `POST /api/v1/rollout-templates?env=`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPlanTemplate {
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
    use crate::plan::{builtin_templates, parse_plan};

    #[test]
    fn a_plans_json_reads_back_as_the_same_plan() {
        for (_, plan) in builtin_templates() {
            let json = serde_json::to_value(&plan).unwrap();
            assert_eq!(parse_plan(&json, "plan").unwrap(), plan);
        }
        let plan = parse_plan(
            &serde_json::json!({"steps": [{"percentage": 12.34, "hold_secs": 1}], "guards": [
                {"kind": "reports"},
                {"kind": "prometheus", "url": "http://p:9090", "query": "up", "min": 1},
                {"kind": "webhook", "url": "http://h/x"}]}),
            "plan",
        )
        .unwrap();
        let value = serde_json::to_value(&plan).unwrap();
        assert_eq!(value["steps"][0]["percentage"], 12.34);
        assert_eq!(value["guards"][1]["kind"], "prometheus");
        assert_eq!(value["guards"][2]["timeout_secs"], 5);
        assert_eq!(parse_plan(&value, "plan").unwrap(), plan);
    }
}
