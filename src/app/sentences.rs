//! Plain sentences for what the dashboard shows: a lane's rule and audit entries.

use crate::app::pages::shared::format_pct;
use crate::domain::plan::decide::{PlanAction, PlanState};
use crate::domain::time::Timestamp;
use crate::model::{
    AuditAction, AuditEntry, ChangeAction, ChangeRequest, Lane, LanePlan, LaneStatus, PlanSummary,
    Rollout, RolloutGroup,
};
use serde_json::Value;

/// `v3 to 25 % of region in (beijing,shanghai)`: what a lane serves, to whom. The percentage is
/// of the stickiness key's values, so a lane sticky on another key than `client_id` names it.
pub fn lane_rule(
    version: i64,
    percentage: f64,
    selector: &str,
    targets: &[String],
    stickiness: &str,
) -> String {
    let whom = if selector.is_empty() {
        "every instance".to_string()
    } else {
        selector.to_string()
    };
    let by = if stickiness.is_empty() || stickiness == "client_id" {
        String::new()
    } else {
        format!(" (by {stickiness})")
    };
    let mut rule = format!("v{version} to {} %{by} of {whom}", format_pct(percentage));
    if !targets.is_empty() {
        rule.push_str(&format!(" plus {}", targets_phrase(targets)));
    }
    rule
}

fn targets_phrase(targets: &[String]) -> String {
    let s = if targets.len() == 1 { "" } else { "s" };
    format!("{} target{s} ({})", targets.len(), targets.join(", "))
}

/// `GRAY v5 · 10 % · region=beijing`: an active lane as the config list shows it, in the
/// status vocabulary (UI.md), with its targets and a stickiness other than `client_id`.
pub fn lane_badge(lane: &Lane) -> String {
    let mut text = format!("GRAY v{} · {}", lane.version, lane.percentage);
    if !lane.stickiness.is_empty() && lane.stickiness != "client_id" {
        text.push_str(&format!(" by {}", lane.stickiness));
    }
    if !lane.selector.is_empty() {
        text.push_str(&format!(" · {}", lane.selector));
    }
    if !lane.targets.is_empty() {
        text.push_str(&format!(" · {}", targets_phrase(&lane.targets)));
    }
    text
}

/// `plan step 2 of 3, running`: where a lane's rollout plan is, in short.
pub fn plan_phrase(plan: &PlanSummary) -> String {
    let step = format!("step {} of {}", plan.step + 1, plan.steps);
    match plan.state {
        PlanState::Running => format!("▶ plan {step}, running"),
        PlanState::Paused => format!("⏸ plan paused at {step}"),
        PlanState::Completed => "✓ plan completed; the lane waits to be promoted".to_string(),
        PlanState::Aborted => format!("✕ plan aborted at {step}"),
    }
}

/// The notices for what the lanes' rollout plans did between two looks at a config's lanes:
/// a plan that completed, or a lane with a plan that was promoted or aborted, each with its
/// date and time (UTC). `plans`: the newer look's plans (their history says when a plan
/// completed).
pub fn plan_notices(before: &[Lane], after: &[Lane], plans: &[LanePlan]) -> Vec<String> {
    let when = |t: Option<Timestamp>| {
        t.map(|t| format!(" on {} UTC", t.minutes()))
            .unwrap_or_default()
    };
    after
        .iter()
        .filter_map(|now| {
            let was = before.iter().find(|l| l.id == now.id)?;
            let was_plan = was.plan.as_ref()?;
            if was.status != LaneStatus::Active {
                return None;
            }
            let (id, v) = (now.id, now.version);
            match now.status {
                LaneStatus::Promoted => Some(format!(
                    "✓ Lane {id} was promoted{}: v{v} is the stable release.",
                    when(now.closed_at)
                )),
                LaneStatus::Aborted => {
                    let reason = now
                        .plan
                        .as_ref()
                        .and_then(|p| p.reason.clone())
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default();
                    Some(format!(
                        "✕ Lane {id} (v{v}) was aborted{}{reason}; its instances are back on stable.",
                        when(now.closed_at)
                    ))
                }
                LaneStatus::Active => {
                    let completed = now.plan.as_ref()?.state == PlanState::Completed;
                    if !completed || was_plan.state == PlanState::Completed {
                        return None;
                    }
                    let at = plans
                        .iter()
                        .find(|p| p.lane == id)
                        .and_then(|p| p.history.iter().rev().find(|t| t.action == PlanAction::Complete))
                        .map(|t| t.at);
                    Some(format!(
                        "✓ The rollout plan of lane {id} (v{v}) completed{}: the lane waits to be promoted.",
                        when(at)
                    ))
                }
            }
        })
        .collect()
}

/// The audit entry as one sentence, e.g. `alice rolled back shop/prod/app.json to v9: 'bad pool
/// size'`; `None` for details this dashboard cannot read.
pub fn audit_sentence(e: &AuditEntry) -> Option<String> {
    use AuditAction::*;
    let f = Facts::of(e);
    let what = match e.action {
        AuthLogin | AuthLoginFailed | AuthLogout => session_sentence(e.action, &f),
        UserCreate | UserUpdate | TokenCreate | TokenRevoke => account_sentence(e.action, &f),
        EnvironmentCreate | NamespaceCreate => space_sentence(e.action, &f),
        ConfigCreate | ConfigDelete | VersionCreate | ReleaseStable | ReleaseRollback => {
            config_sentence(e.action, &f)
        }
        LaneCreate | LaneUpdate | LanePromote | LaneAbort => lane_sentence(e.action, &f),
        RolloutStart | RolloutAdvance | RolloutComplete | RolloutPause | RolloutResume
        | RolloutAbort => rollout_sentence(e.action, &f),
        TemplateCreate | TemplateDelete | TemplateDefault => template_sentence(e.action, &f),
        ProtectionSet | ChangeRequest | ChangeApprove | ChangeReject | ChangeWithdraw
        | ChangeApply | ChangeStale | ChangeExpire | ChangeOverride | OverrideReview => {
            governance_sentence(e.action, &f)
        }
        FreezeCreate | FreezeDelete => freeze_sentence(e.action, &f),
        ChannelCreate | ChannelDelete => channel_sentence(e.action, &f),
        TriggerCreate | TriggerUpdate | TriggerRotate | TriggerDelete | TriggerFire => {
            trigger_sentence(e, &f)
        }
    }?;
    Some(format!("{} {what}{}", e.actor, message_suffix(e)))
}

/// What an entry's sentence is told from: its details and its target.
struct Facts<'a> {
    details: &'a Value,
    /// `shop/prod/app.json`, `prod` for an entry about an environment, or empty.
    path: String,
}

impl<'a> Facts<'a> {
    fn of(e: &'a AuditEntry) -> Self {
        let path = [e.namespace.as_deref(), e.env.as_deref(), e.key.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("/");
        Facts {
            details: &e.details,
            path,
        }
    }

    fn get(&self, k: &str) -> Option<&'a Value> {
        self.details.get(k)
    }

    fn text(&self, k: &str) -> Option<&'a str> {
        self.get(k).and_then(Value::as_str)
    }

    fn number(&self, k: &str) -> Option<i64> {
        self.get(k).and_then(Value::as_i64)
    }

    fn percentage(&self) -> Option<f64> {
        self.get("percentage")?.as_f64()
    }

    fn lane(&self) -> Option<i64> {
        self.number("lane")
    }

    /// The reason, if any, after a colon.
    fn because(&self) -> String {
        because(self.text("reason"))
    }

    /// ` at first start` for what graycast set up on its first start.
    fn first_start(&self) -> &'static str {
        if self.text("reason") == Some("first start") {
            " at first start"
        } else {
            ""
        }
    }
}

/// `auth.*`: signing in and out.
fn session_sentence(action: AuditAction, f: &Facts) -> Option<String> {
    match action {
        AuditAction::AuthLogin => Some("signed in".to_string()),
        AuditAction::AuthLoginFailed => Some(format!("failed to sign in ({})", f.text("reason")?)),
        AuditAction::AuthLogout => Some("signed out".to_string()),
        _ => None,
    }
}

/// `user.*` and `token.*`: who may do what.
fn account_sentence(action: AuditAction, f: &Facts) -> Option<String> {
    Some(match action {
        AuditAction::UserCreate => {
            let role = f.text("role")?;
            let limit = f
                .text("env")
                .map(|env| format!(" in {env}"))
                .unwrap_or_default();
            format!(
                "created user {} ({role}{limit}){}",
                f.text("username")?,
                f.first_start()
            )
        }
        AuditAction::UserUpdate => {
            let changes = user_changes(f.get("before")?, f.get("after")?);
            let name = f.text("username")?;
            if changes.is_empty() {
                format!("saved user {name} unchanged")
            } else {
                format!("changed user {name}: {}", changes.join(", "))
            }
        }
        AuditAction::TokenCreate => {
            let mut scope = vec![f.text("role")?.to_string()];
            scope.extend(f.text("namespace").map(|ns| format!("namespace {ns}")));
            scope.extend(f.text("env").map(|env| format!("environment {env}")));
            format!("created token {} ({})", f.text("name")?, scope.join(", "))
        }
        AuditAction::TokenRevoke => format!("revoked token {}", f.text("name")?),
        _ => return None,
    })
}

/// `environment.create` and `namespace.create`: where configs live.
fn space_sentence(action: AuditAction, f: &Facts) -> Option<String> {
    let name = f.text("name")?;
    match action {
        AuditAction::EnvironmentCreate => {
            Some(format!("created environment {name}{}", f.first_start()))
        }
        AuditAction::NamespaceCreate => Some(format!("created namespace {name}")),
        _ => None,
    }
}

/// `config.*`, `version.create` and `release.*`: a config, its versions and its stable release.
fn config_sentence(action: AuditAction, f: &Facts) -> Option<String> {
    let path = &f.path;
    Some(match action {
        AuditAction::ConfigCreate => format!(
            "created {path} ({}, v{})",
            f.text("format")?,
            f.number("version")?
        ),
        AuditAction::ConfigDelete => format!("deleted {path}"),
        AuditAction::VersionCreate => {
            let counts = match (f.number("added"), f.number("removed")) {
                (Some(added), Some(removed)) => format!(" (+{added} −{removed})"),
                _ => String::new(),
            };
            format!("saved v{} of {path}{counts}", f.number("version")?)
        }
        AuditAction::ReleaseStable => format!("released v{} of {path}", f.number("version")?),
        AuditAction::ReleaseRollback => {
            format!("rolled back {path} to v{}", f.number("version")?)
        }
        _ => return None,
    })
}

/// `lane.*`: a gray lane started, changed, promoted or aborted.
fn lane_sentence(action: AuditAction, f: &Facts) -> Option<String> {
    let (path, lane) = (&f.path, f.lane()?);
    Some(match action {
        AuditAction::LaneCreate => {
            let targets: Vec<String> = f
                .get("targets")
                .and_then(Value::as_array)
                .map(|t| {
                    t.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            let rule = lane_rule(
                f.number("version")?,
                f.percentage()?,
                f.text("selector").unwrap_or(""),
                &targets,
                f.text("stickiness").unwrap_or(""),
            );
            format!("started gray lane {lane} on {path} serving {rule}")
        }
        AuditAction::LaneUpdate => {
            let changes = lane_changes(f.get("before")?, f.get("after")?);
            let head = format!(
                "changed gray lane {lane} (v{}) on {path}",
                f.number("version")?
            );
            if changes.is_empty() {
                head
            } else {
                format!("{head}: {}", changes.join(", "))
            }
        }
        AuditAction::LanePromote => {
            let was = f
                .number("stable_version")
                .map(|v| format!("was v{v}"))
                .unwrap_or_else(|| "nothing was released before".to_string());
            format!(
                "promoted gray lane {lane} on {path}: v{} is the stable release ({was})",
                f.number("version")?
            )
        }
        AuditAction::LaneAbort => {
            let fallback = f
                .number("stable_version")
                .map(|v| format!("its instances fall back to stable v{v}"))
                .unwrap_or_else(|| "its instances get nothing (no stable release)".to_string());
            format!(
                "aborted gray lane {lane} (v{}) on {path}; {fallback}",
                f.number("version")?
            )
        }
        _ => return None,
    })
}

/// `rollout.*`: what a lane's rollout plan did (the scheduler's moves and a person's).
fn rollout_sentence(action: AuditAction, f: &Facts) -> Option<String> {
    let (path, lane) = (&f.path, f.lane()?);
    // Steps are stored from 0 and shown from 1.
    let step = || f.number("step").map(|s| s + 1);
    Some(match action {
        AuditAction::RolloutStart => {
            let from = f
                .text("template")
                .map(|t| format!(" from template {t}"))
                .unwrap_or_default();
            let steps = f
                .get("plan")
                .and_then(|p| p.get("steps"))
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            format!(
                "started a rollout plan{from} on gray lane {lane} of {path}: v{} at {} %, {steps} step{}",
                f.number("version")?,
                format_pct(f.percentage()?),
                if steps == 1 { "" } else { "s" }
            )
        }
        AuditAction::RolloutAdvance => {
            let forced = if f.get("forced").and_then(Value::as_bool) == Some(true) {
                " by force"
            } else {
                ""
            };
            format!(
                "advanced gray lane {lane} of {path}{forced} to step {} ({} %){}",
                step()?,
                format_pct(f.percentage()?),
                f.because()
            )
        }
        AuditAction::RolloutComplete => format!(
            "completed the rollout plan of gray lane {lane} on {path}{}",
            f.because()
        ),
        AuditAction::RolloutPause => format!(
            "paused the rollout plan of gray lane {lane} on {path} at step {}{}",
            step()?,
            f.because()
        ),
        AuditAction::RolloutResume => {
            let left = f
                .number("remaining_secs")
                .filter(|s| *s > 0)
                .map(|s| format!(" with {s} s of its hold left"))
                .unwrap_or_default();
            format!(
                "resumed the rollout plan of gray lane {lane} on {path} at step {}{left}",
                step()?
            )
        }
        AuditAction::RolloutAbort => format!(
            "aborted gray lane {lane} on {path} by its rollout plan{}",
            f.because()
        ),
        _ => return None,
    })
}

/// `protection.set`, `change.*` and `override.review`: change governance (issue 28).
fn governance_sentence(action: AuditAction, f: &Facts) -> Option<String> {
    let path = &f.path;
    let request = || {
        f.number("change_request")
            .map(|id| format!("change request {id}"))
    };
    Some(match action {
        AuditAction::ProtectionSet => match f.number("approvals")? {
            0 => format!("unprotected environment {path}"),
            n => format!("protected environment {path} ({n} approvals)"),
        },
        AuditAction::ChangeRequest => {
            let when = f
                .text("apply_at")
                .map(|at| format!(" at {at}"))
                .unwrap_or_default();
            format!(
                "requested {} on {path}: {}{when}, needing {} approvals",
                request()?,
                f.text("action")?,
                f.number("approvals_needed")?
            )
        }
        AuditAction::ChangeApprove => format!(
            "approved {} on {path} ({} of {} approvals)",
            request()?,
            f.number("approvals")?,
            f.number("approvals_needed")?
        ),
        AuditAction::ChangeReject => format!("rejected {} on {path}", request()?),
        AuditAction::ChangeWithdraw => format!("withdrew {} on {path}", request()?),
        AuditAction::ChangeApply => {
            let approvers: Vec<&str> = f
                .get("approved_by")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let by = if approvers.is_empty() {
                String::new()
            } else {
                format!(" as approved by {}", approvers.join(", "))
            };
            format!("applied {} on {path}{by}", request()?)
        }
        AuditAction::ChangeStale => {
            format!("found {} on {path} stale{}", request()?, f.because())
        }
        AuditAction::ChangeExpire => {
            format!("expired {} on {path}{}", request()?, f.because())
        }
        AuditAction::ChangeOverride => {
            let of = request().map(|r| format!(" of {r}")).unwrap_or_default();
            format!(
                "overrode the approvals{of} on {path} ({}){}",
                f.text("action")?,
                f.because()
            )
        }
        AuditAction::OverrideReview => format!(
            "reviewed override {} on {path} by {}",
            f.number("override")?,
            f.text("overridden_by")?
        ),
        _ => return None,
    })
}

/// What a change request does when it is applied, in words: `release v7 as stable (now v6)`,
/// `start a lane: v8 to 10 % of region=eu, with a rollout plan`, `set lane 3 to 50 %`,
/// `promote lane 3 (v8) to stable`, `attach a rollout plan to lane 3`.
pub fn request_words(r: &ChangeRequest) -> String {
    let body = &r.body;
    let lane = body["lane"].as_i64();
    let lane_name = || lane.map(|l| format!("lane {l}")).unwrap_or("a lane".into());
    let now_stable = match r.snapshot["stable_version"].as_i64() {
        Some(v) => format!(" (now v{v})"),
        None => " (nothing released yet)".to_string(),
    };
    match r.action {
        ChangeAction::Release => match body["version"].as_i64() {
            Some(v) => format!("release v{v} as stable{now_stable}"),
            None => "release a version as stable".to_string(),
        },
        ChangeAction::LaneCreate => {
            let new: Option<crate::model::NewLane> = serde_json::from_value(body.clone()).ok();
            match new {
                Some(n) => {
                    let pct = if n.percentage.is_finite() {
                        n.percentage
                    } else {
                        first_step(body).unwrap_or(0.0)
                    };
                    let rule = lane_rule(
                        n.version,
                        pct,
                        n.selector.as_deref().unwrap_or_default(),
                        n.targets.as_deref().unwrap_or_default(),
                        n.stickiness.as_deref().unwrap_or_default(),
                    );
                    let plan = if body.get("plan").is_some_and(|p| !p.is_null()) {
                        ", with a rollout plan"
                    } else {
                        ""
                    };
                    format!("start a lane: {rule}{plan}")
                }
                None => "start a lane".to_string(),
            }
        }
        ChangeAction::LaneUpdate => {
            let mut parts = Vec::new();
            if let Some(p) = body["percentage"].as_f64() {
                parts.push(format!("to {} %", format_pct(p)));
            }
            if let Some(sel) = body["selector"].as_str() {
                parts.push(if sel.is_empty() {
                    "for every instance".to_string()
                } else {
                    format!("for {sel}")
                });
            }
            if let Some(t) = body["targets"].as_array() {
                parts.push(format!("with {} targets", t.len()));
            }
            if let Some(p) = body["priority"].as_i64() {
                parts.push(format!("at priority {p}"));
            }
            if parts.is_empty() {
                format!("change {}", lane_name())
            } else {
                format!("set {} {}", lane_name(), parts.join(", "))
            }
        }
        ChangeAction::LanePromote => {
            let version = lane.and_then(|l| {
                r.snapshot["lanes"]
                    .as_array()?
                    .iter()
                    .find(|x| x["id"].as_i64() == Some(l))?["version"]
                    .as_i64()
            });
            match version {
                Some(v) => format!("promote {} (v{v}) to stable{now_stable}", lane_name()),
                None => format!("promote {} to stable{now_stable}", lane_name()),
            }
        }
        ChangeAction::PlanAttach => format!("attach a rollout plan to {}", lane_name()),
    }
}

/// A plan's first step's percentage, from a request body's `plan`.
fn first_step(body: &Value) -> Option<f64> {
    body["plan"]["steps"][0]["percentage"].as_f64()
}

/// `freeze.*`: an environment's freeze windows, `admin froze prod every friday 16:00 to monday
/// 08:00 Europe/Berlin: release freeze`.
fn freeze_sentence(action: AuditAction, f: &Facts) -> Option<String> {
    let env = &f.path;
    let when = match f.get("weekly").filter(|w| !w.is_null()) {
        Some(w) => {
            let t = |k: &str| w.get(k).and_then(Value::as_str);
            format!(
                "every {} {} to {} {} {}",
                t("from_day")?,
                t("from_time")?,
                t("to_day")?,
                t("to_time")?,
                t("time_zone")?
            )
        }
        None => format!("from {} to {}", f.text("from")?, f.text("to")?),
    };
    Some(match action {
        AuditAction::FreezeCreate => format!("froze {env} {when}{}", f.because()),
        AuditAction::FreezeDelete => {
            format!("deleted the freeze window of {env} {when}{}", f.because())
        }
        _ => return None,
    })
}

/// `channel.*`: where notifications go.
fn channel_sentence(action: AuditAction, f: &Facts) -> Option<String> {
    let name = f.text("name")?;
    Some(match action {
        AuditAction::ChannelCreate => format!(
            "created notification channel {name} ({}) sending to {}{}",
            f.text("format")?,
            f.text("url")?,
            within(&f.path)
        ),
        AuditAction::ChannelDelete => format!("deleted notification channel {name}"),
        _ => return None,
    })
}

/// `trigger.*`: trigger URLs, `alice created trigger 3 on shop/prod/app.json: abort-lanes`,
/// `trigger:3 fired from 127.0.0.1: aborted gray lane 4 on shop/prod/app.json`.
fn trigger_sentence(e: &AuditEntry, f: &Facts) -> Option<String> {
    let id = f.number("id")?;
    // Without a key, the trigger acts on every config of the namespace in the environment.
    let on = if e.key.is_some() {
        f.path.clone()
    } else {
        format!("every config of {}", f.path)
    };
    let described = |d: Option<&str>| {
        d.filter(|d| !d.is_empty())
            .map(|d| format!(" ({d})"))
            .unwrap_or_default()
    };
    Some(match e.action {
        AuditAction::TriggerCreate => format!(
            "created trigger {id} on {on}: {}{}",
            f.text("action")?,
            described(f.text("description"))
        ),
        AuditAction::TriggerDelete => format!(
            "deleted trigger {id} on {on}: {}{}",
            f.text("action")?,
            described(f.text("description"))
        ),
        AuditAction::TriggerRotate => format!("rotated the token of trigger {id} on {on}"),
        AuditAction::TriggerUpdate => {
            let (before, after) = (f.get("before")?, f.get("after")?);
            let enabled = after.get("enabled")?.as_bool()?;
            let switched = before.get("enabled")?.as_bool()? != enabled;
            let described = before.get("description") != after.get("description");
            let switch = if enabled { "enabled" } else { "disabled" };
            match (switched, described) {
                (true, false) => format!("{switch} trigger {id} on {on}"),
                (true, true) => {
                    format!("{switch} trigger {id} on {on} and changed the description")
                }
                (false, true) => format!("changed the description of trigger {id} on {on}"),
                (false, false) => format!("saved trigger {id} on {on} unchanged"),
            }
        }
        AuditAction::TriggerFire => {
            let address = f.text("address")?;
            let done: Vec<String> = f
                .get("done")?
                .as_array()?
                .iter()
                .map(|d| trigger_done(e, d))
                .collect::<Option<_>>()?;
            if done.is_empty() {
                format!("fired from {address}: nothing to do on {on}")
            } else {
                format!("fired from {address}: {}", done.join(", "))
            }
        }
        _ => return None,
    })
}

/// One thing a trigger's fire did, `aborted gray lane 4 on shop/prod/app.json`.
fn trigger_done(e: &AuditEntry, done: &Value) -> Option<String> {
    let path = format!(
        "{}/{}/{}",
        e.namespace.as_deref()?,
        e.env.as_deref()?,
        done.get("key")?.as_str()?
    );
    let number = |k: &str| done.get(k).and_then(Value::as_i64);
    Some(match done.get("action")?.as_str()?.parse().ok()? {
        AuditAction::LaneAbort => format!("aborted gray lane {} on {path}", number("lane")?),
        AuditAction::RolloutPause => format!(
            "paused the rollout plan of gray lane {} on {path}",
            number("lane")?
        ),
        AuditAction::ReleaseRollback => format!("rolled back {path} to v{}", number("version")?),
        _ => return None,
    })
}

/// `template.*`: an environment's rollout templates.
fn template_sentence(action: AuditAction, f: &Facts) -> Option<String> {
    let within = within(&f.path);
    Some(match action {
        AuditAction::TemplateCreate => {
            format!("created rollout template {}{within}", f.text("name")?)
        }
        AuditAction::TemplateDelete => {
            format!("deleted rollout template {}{within}", f.text("name")?)
        }
        AuditAction::TemplateDefault => match f.text("after") {
            Some(name) => format!("made {name} the default rollout template{within}"),
            None => format!("cleared the default rollout template{within}"),
        },
        _ => return None,
    })
}

/// `alice release.stable shop/prod/app.json: 'why'`: an entry as stored, for details without a
/// sentence.
pub fn audit_raw(e: &AuditEntry) -> String {
    let target = [e.namespace.as_deref(), e.env.as_deref(), e.key.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("/");
    let target = if target.is_empty() {
        String::new()
    } else {
        format!(" {target}")
    };
    format!("{} {}{target}{}", e.actor, e.action, message_suffix(e))
}

/// `: reason` when there is one.
fn because(reason: Option<&str>) -> String {
    reason
        .filter(|r| !r.is_empty())
        .map(|r| format!(": {r}"))
        .unwrap_or_default()
}

/// ` in prod` for an entry about an environment.
fn within(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" in {path}")
    }
}

fn message_suffix(e: &AuditEntry) -> String {
    e.details
        .get("message")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .map(|m| format!(": '{m}'"))
        .unwrap_or_default()
}

fn user_changes(before: &Value, after: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let field = |v: &Value, k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    if field(before, "role") != field(after, "role") {
        out.push(format!(
            "role {} → {}",
            shown(&field(before, "role"), "none"),
            shown(&field(after, "role"), "none")
        ));
    }
    if field(before, "env") != field(after, "env") {
        out.push(format!(
            "environment {} → {}",
            shown(&field(before, "env"), "any"),
            shown(&field(after, "env"), "any")
        ));
    }
    if field(before, "disabled") != field(after, "disabled") {
        out.push(if field(after, "disabled") == Value::Bool(true) {
            "disabled".to_string()
        } else {
            "enabled again".to_string()
        });
    }
    out
}

/// Only the fields the update named are in `before` and `after`.
fn lane_changes(before: &Value, after: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (key, label) in [
        ("percentage", "weight"),
        ("selector", "selector"),
        ("targets", "targets"),
        ("priority", "priority"),
    ] {
        let (Some(b), Some(a)) = (before.get(key), after.get(key)) else {
            continue;
        };
        let show = |v: &Value| match (key, v) {
            ("percentage", v) => v
                .as_f64()
                .map(|p| format!("{} %", format_pct(p)))
                .unwrap_or_else(|| v.to_string()),
            ("selector", Value::String(s)) if s.is_empty() => "every instance".to_string(),
            ("targets", Value::Array(t)) if t.is_empty() => "none".to_string(),
            ("targets", Value::Array(t)) => t
                .iter()
                .map(|t| shown(t, ""))
                .collect::<Vec<_>>()
                .join(", "),
            (_, v) => shown(v, "none"),
        };
        out.push(format!("{label} {} → {}", show(b), show(a)));
    }
    out
}

/// A JSON scalar as text, `null` as `none`.
fn shown(v: &Value, none: &str) -> String {
    match v {
        Value::Null => none.to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One sentence per source, e.g. `1 instance(s) run lane 2 (v3): 1 of 16 eligible instances
/// (6 %), target 25 %; 1 applied`. A lane's share is of the instances its selector matches, as
/// its percentage is.
pub fn rollout_lines(r: &Rollout) -> Vec<String> {
    let reports = |g: &RolloutGroup| {
        let mut s = format!("; {} applied", g.applied);
        if !g.failed.is_empty() {
            s.push_str(&format!(
                "; {} failed to apply: {}",
                g.failed.len(),
                g.failed.join("; ")
            ));
        }
        s
    };
    let mut out = Vec::new();
    if let Some(g) = &r.stable {
        out.push(format!(
            "{} instance(s) run stable v{}{}",
            g.serving,
            g.version,
            reports(g)
        ));
    }
    for l in &r.lanes {
        let g = &l.group;
        let share = match (g.serving, l.eligible) {
            (_, 0) => "none eligible".to_string(),
            (n, e) => {
                let p = n as f64 * 100.0 / e as f64;
                let p = if p > 0.0 && p < 1.0 {
                    "<1".to_string()
                } else {
                    format!("{p:.0}")
                };
                format!(
                    "{n} of {e} eligible instance{} ({p} %)",
                    if e == 1 { "" } else { "s" }
                )
            }
        };
        out.push(format!(
            "{} instance(s) run lane {} (v{}): {share}, target {}{}",
            g.serving,
            l.lane,
            g.version,
            l.percentage,
            reports(g)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Percentage;
    use serde_json::json;

    fn entry(actor: &str, action: &str, key: Option<&str>, details: Value) -> AuditEntry {
        let scoped = key.is_some();
        AuditEntry {
            id: 1,
            at: "2026-12-02T10:00:00Z".parse().unwrap(),
            actor: actor.into(),
            action: action.parse().unwrap(),
            namespace: scoped.then(|| "shop".into()),
            env: scoped.then(|| "prod".into()),
            key: key.map(String::from),
            details,
            trace_id: None,
        }
    }

    fn say(action: &str, key: Option<&str>, details: Value) -> String {
        let e = entry("admin", action, key, details);
        let sentence = audit_sentence(&e).unwrap_or_else(|| panic!("no sentence for {action}"));
        assert_searchable(&e, &sentence);
        sentence
    }

    /// Lower-case runs of letters and digits, as the full-text index splits text.
    fn words(text: &str) -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    }

    /// The audit search finds an entry by the words its sentence shows: each word is stored
    /// (actor, action, target, details), or listed for its action in `AuditAction::said`,
    /// or a number (`v9` is the stored 9; a step is shown one up from the stored one).
    fn assert_searchable(e: &AuditEntry, sentence: &str) {
        let mut stored = String::new();
        for field in [
            Some(e.actor.as_str()),
            Some(e.action.as_str()),
            e.namespace.as_deref(),
            e.env.as_deref(),
            e.key.as_deref(),
        ]
        .into_iter()
        .flatten()
        {
            stored.push_str(field);
            stored.push(' ');
        }
        stored.push_str(&e.details.to_string());
        let stored = words(&stored);
        let said = e.action.said();
        for word in words(sentence) {
            let number = word.strip_prefix('v').unwrap_or(&word);
            let known = stored.contains(&word)
                || said.split(' ').any(|w| w == word)
                || number.bytes().all(|b| b.is_ascii_digit());
            assert!(
                known,
                "{:?}: the word {word:?} of {sentence:?} is neither stored nor listed for {}",
                e.action, e.action
            );
        }
    }

    const KEY: Option<&str> = Some("app.yaml");

    fn lane(id: i64, status: LaneStatus, plan: Option<PlanState>) -> Lane {
        Lane {
            id,
            version: 5,
            selector: "region=beijing".into(),
            targets: vec![],
            percentage: Percentage::parse(10.0).unwrap(),
            stickiness: "client_id".into(),
            salt: "s".into(),
            priority: 0,
            status,
            created_by: "alice".into(),
            created_at: "2026-12-07T14:00:00Z".parse().unwrap(),
            closed_at: (status != LaneStatus::Active)
                .then(|| "2026-12-07T14:02:30Z".parse().unwrap()),
            plan: plan.map(|state| PlanSummary {
                state,
                step: 1,
                steps: 3,
                percentage: Percentage::parse(10.0).unwrap(),
                step_started_at: "2026-12-07T14:00:00Z".parse().unwrap(),
                remaining_secs: 0,
                waiting_for: None,
                reason: (state == PlanState::Aborted).then(|| r#"pod-7: "bad""#.into()),
                template: None,
            }),
        }
    }

    #[test]
    fn a_lane_reads_like_its_badge_and_its_plan_in_short() {
        let mut l = lane(7, LaneStatus::Active, Some(PlanState::Running));
        assert_eq!(lane_badge(&l), "GRAY v5 · 10 % · region=beijing");
        l.stickiness = "user_id".into();
        l.targets = vec!["u1".into()];
        l.selector = String::new();
        assert_eq!(lane_badge(&l), "GRAY v5 · 10 % by user_id · 1 target (u1)");
        let plan = l.plan.clone().unwrap();
        assert_eq!(plan_phrase(&plan), "▶ plan step 2 of 3, running");
        let paused = PlanSummary {
            state: PlanState::Paused,
            ..plan
        };
        assert_eq!(plan_phrase(&paused), "⏸ plan paused at step 2 of 3");
    }

    #[test]
    fn a_plan_that_ended_gets_one_notice_with_date_and_time() {
        let running = [lane(7, LaneStatus::Active, Some(PlanState::Running))];
        let aborted = [lane(7, LaneStatus::Aborted, Some(PlanState::Aborted))];
        let notices = plan_notices(&running, &aborted, &[]);
        assert_eq!(
            notices,
            [
                r#"✕ Lane 7 (v5) was aborted on 2026-12-07 14:02 UTC (pod-7: "bad"); its instances are back on stable."#
            ]
        );
        let promoted = [lane(7, LaneStatus::Promoted, Some(PlanState::Completed))];
        assert_eq!(
            plan_notices(&running, &promoted, &[]),
            ["✓ Lane 7 was promoted on 2026-12-07 14:02 UTC: v5 is the stable release."]
        );
        // Once: the next look sees nothing new; a lane without a plan gets none.
        assert!(plan_notices(&aborted, &aborted, &[]).is_empty());
        let no_plan = [lane(8, LaneStatus::Active, None)];
        let no_plan_aborted = [lane(8, LaneStatus::Aborted, None)];
        assert!(plan_notices(&no_plan, &no_plan_aborted, &[]).is_empty());
        let completed = [lane(7, LaneStatus::Active, Some(PlanState::Completed))];
        assert_eq!(
            plan_notices(&running, &completed, &[]),
            ["✓ The rollout plan of lane 7 (v5) completed: the lane waits to be promoted."]
        );
    }

    #[test]
    fn lane_rules_read_as_sentences() {
        let regions = "region in (beijing,shanghai)";
        assert_eq!(
            lane_rule(3, 25.0, regions, &[], "client_id"),
            "v3 to 25 % of region in (beijing,shanghai)"
        );
        assert_eq!(
            lane_rule(2, 0.5, "", &["pod-1".into()], "user_id"),
            "v2 to 0.5 % (by user_id) of every instance plus 1 target (pod-1)"
        );
    }

    #[test]
    fn sign_in_and_out() {
        assert_eq!(say("auth.login", None, json!(null)), "admin signed in");
        assert_eq!(say("auth.logout", None, json!(null)), "admin signed out");
        assert_eq!(
            say(
                "auth.login_failed",
                None,
                json!({"reason": "wrong password"})
            ),
            "admin failed to sign in (wrong password)"
        );
    }

    #[test]
    fn users_tokens_environments_namespaces() {
        assert_eq!(
            say(
                "user.create",
                None,
                json!({"id": 2, "username": "bob", "role": "editor", "env": "prod"})
            ),
            "admin created user bob (editor in prod)"
        );
        let first = entry(
            "system",
            "user.create",
            None,
            json!({"id": 1, "username": "admin", "role": "admin", "reason": "first start"}),
        );
        assert_eq!(
            audit_sentence(&first).unwrap(),
            "system created user admin (admin) at first start"
        );
        assert_searchable(&first, &audit_sentence(&first).unwrap());
        assert_eq!(
            say(
                "user.update",
                None,
                json!({"id": 2, "username": "bob",
                       "before": {"role": "editor", "env": null, "disabled": false},
                       "after": {"role": "releaser", "env": "prod", "disabled": true}})
            ),
            "admin changed user bob: role editor → releaser, environment any → prod, disabled"
        );
        assert_eq!(
            say(
                "token.create",
                None,
                json!({"id": 3, "name": "ci", "role": "viewer", "namespace": "shop", "env": null, "prefix": "gc_ab"})
            ),
            "admin created token ci (viewer, namespace shop)"
        );
        assert_eq!(
            say(
                "token.revoke",
                None,
                json!({"id": 3, "name": "ci", "prefix": "gc_ab"})
            ),
            "admin revoked token ci"
        );
        assert_eq!(
            say("environment.create", None, json!({"name": "qa"})),
            "admin created environment qa"
        );
        assert_eq!(
            say(
                "namespace.create",
                None,
                json!({"name": "shop", "description": ""})
            ),
            "admin created namespace shop"
        );
    }

    #[test]
    fn configs_versions_releases() {
        assert_eq!(
            say(
                "config.create",
                KEY,
                json!({"format": "yaml", "version": 1, "message": ""})
            ),
            "admin created shop/prod/app.yaml (yaml, v1)"
        );
        assert_eq!(
            say("config.delete", KEY, json!({})),
            "admin deleted shop/prod/app.yaml"
        );
        assert_eq!(
            say(
                "version.create",
                KEY,
                json!({"version": 2, "base_version": 1, "message": "bigger pool", "added": 1, "removed": 1})
            ),
            "admin saved v2 of shop/prod/app.yaml (+1 −1): 'bigger pool'"
        );
        assert_eq!(
            say(
                "release.stable",
                KEY,
                json!({"version": 4, "previous_version": 3, "message": ""})
            ),
            "admin released v4 of shop/prod/app.yaml"
        );
        assert_eq!(
            say(
                "release.rollback",
                KEY,
                json!({"version": 2, "previous_version": 4, "message": "bad pool size"})
            ),
            "admin rolled back shop/prod/app.yaml to v2: 'bad pool size'"
        );
    }

    #[test]
    fn lanes() {
        assert_eq!(
            say(
                "lane.create",
                KEY,
                json!({"lane": 1, "version": 3, "selector": "region in (beijing,shanghai)", "targets": [],
                       "percentage": 25.0, "stickiness": "client_id", "message": "try timeout"})
            ),
            "admin started gray lane 1 on shop/prod/app.yaml serving v3 to 25 % of region in (beijing,shanghai): 'try timeout'"
        );
        assert_eq!(
            say(
                "lane.update",
                KEY,
                json!({"lane": 1, "version": 3,
                       "before": {"percentage": 10.0, "selector": "region=beijing"},
                       "after": {"percentage": 25.0, "selector": "region in (beijing,shanghai)"}})
            ),
            "admin changed gray lane 1 (v3) on shop/prod/app.yaml: weight 10 % → 25 %, selector region=beijing → region in (beijing,shanghai)"
        );
        assert_eq!(
            say(
                "lane.update",
                KEY,
                json!({"lane": 1, "version": 3, "before": {"targets": []}, "after": {"targets": ["pod-1"]}})
            ),
            "admin changed gray lane 1 (v3) on shop/prod/app.yaml: targets none → pod-1"
        );
        assert_eq!(
            say(
                "lane.promote",
                KEY,
                json!({"lane": 1, "version": 3, "stable_version": 2})
            ),
            "admin promoted gray lane 1 on shop/prod/app.yaml: v3 is the stable release (was v2)"
        );
        assert_eq!(
            say("lane.abort", KEY, json!({"lane": 1, "version": 3, "stable_version": 2, "message": "errors"})),
            "admin aborted gray lane 1 (v3) on shop/prod/app.yaml; its instances fall back to stable v2: 'errors'"
        );
    }

    /// The sentence of a governance entry (one about environment prod without a key).
    fn governed(actor: &str, action: &str, key: Option<&str>, details: Value) -> String {
        let mut e = entry(actor, action, key, details);
        if key.is_none() {
            e.env = Some("prod".into());
        }
        let sentence = audit_sentence(&e).unwrap_or_else(|| panic!("no sentence for {action}"));
        assert_searchable(&e, &sentence);
        sentence
    }

    #[test]
    fn change_requests_read_as_sentences() {
        let by = governed;
        assert_eq!(
            by(
                "admin",
                "protection.set",
                None,
                json!({"approvals": 2, "before": 0})
            ),
            "admin protected environment prod (2 approvals)"
        );
        assert_eq!(
            by(
                "admin",
                "protection.set",
                None,
                json!({"approvals": 0, "before": 2})
            ),
            "admin unprotected environment prod"
        );
        assert_eq!(
            by("alice", "change.request", KEY, json!({"change_request": 17, "action": "release",
                "version": 3, "approvals_needed": 2, "apply_at": null, "message": "pool"})),
            "alice requested change request 17 on shop/prod/app.yaml: release, needing 2 approvals: 'pool'"
        );
        assert_eq!(
            by("alice", "change.request", KEY, json!({"change_request": 17, "action": "lane.create",
                "version": 3, "approvals_needed": 0, "apply_at": "2026-12-24T18:00:00.000Z"})),
            "alice requested change request 17 on shop/prod/app.yaml: lane.create at 2026-12-24T18:00:00.000Z, needing 0 approvals"
        );
        assert_eq!(
            by(
                "bob",
                "change.approve",
                KEY,
                json!({"change_request": 17, "approvals": 1, "approvals_needed": 2})
            ),
            "bob approved change request 17 on shop/prod/app.yaml (1 of 2 approvals)"
        );
        assert_eq!(
            by(
                "bob",
                "change.reject",
                KEY,
                json!({"change_request": 17, "message": "not now"})
            ),
            "bob rejected change request 17 on shop/prod/app.yaml: 'not now'"
        );
        assert_eq!(
            by(
                "alice",
                "change.withdraw",
                KEY,
                json!({"change_request": 17})
            ),
            "alice withdrew change request 17 on shop/prod/app.yaml"
        );
        assert_eq!(
            by(
                "alice",
                "change.apply",
                KEY,
                json!({"change_request": 17, "action": "release",
                "approved_by": ["bob", "carol"], "applied_by": "carol", "release_event": 9})
            ),
            "alice applied change request 17 on shop/prod/app.yaml as approved by bob, carol"
        );
    }

    #[test]
    fn staleness_expiry_and_overrides_read_as_sentences() {
        let by = governed;
        assert_eq!(
            by("carol", "change.stale", KEY, json!({"change_request": 17,
                "reason": "the stable release moved from v2 to v1"})),
            "carol found change request 17 on shop/prod/app.yaml stale: the stable release moved from v2 to v1"
        );
        assert_eq!(
            by("graycast", "change.expire", KEY, json!({"change_request": 17,
                "reason": "its time came with 0 of the 1 approvals it needed"})),
            "graycast expired change request 17 on shop/prod/app.yaml: its time came with 0 of the 1 approvals it needed"
        );
        assert_eq!(
            by(
                "admin",
                "change.override",
                KEY,
                json!({"override": 1, "action": "release",
                "change_request": null, "reason": "the outage needs v2 now"})
            ),
            "admin overrode the approvals on shop/prod/app.yaml (release): the outage needs v2 now"
        );
        assert_eq!(
            by("admin", "change.override", KEY, json!({"override": 1, "action": "release",
                "change_request": 17, "reason": "the outage needs v2 now"})),
            "admin overrode the approvals of change request 17 on shop/prod/app.yaml (release): the outage needs v2 now"
        );
        assert_eq!(
            by(
                "bob",
                "override.review",
                KEY,
                json!({"override": 1, "overridden_by": "admin"})
            ),
            "bob reviewed override 1 on shop/prod/app.yaml by admin"
        );
    }

    /// The sentence of a `trigger.*` entry on shop/prod (and `key`), checked searchable.
    fn trigger_said(actor: &str, action: &str, key: Option<&str>, details: Value) -> String {
        let mut e = entry(actor, action, key, details);
        e.namespace = Some("shop".into());
        e.env = Some("prod".into());
        let sentence = audit_sentence(&e).unwrap_or_else(|| panic!("no sentence for {action}"));
        assert_searchable(&e, &sentence);
        sentence
    }

    #[test]
    fn trigger_changes_read_as_sentences() {
        let one = trigger_said;
        assert_eq!(
            one(
                "alice",
                "trigger.create",
                KEY,
                json!({"id": 3, "action": "abort-lanes",
                "key": "app.yaml", "description": "", "enabled": true})
            ),
            "alice created trigger 3 on shop/prod/app.yaml: abort-lanes"
        );
        assert_eq!(
            one(
                "alice",
                "trigger.create",
                None,
                json!({"id": 4, "action": "pause-plans",
                "key": null, "description": "HighErrorRate", "enabled": true})
            ),
            "alice created trigger 4 on every config of shop/prod: pause-plans (HighErrorRate)"
        );
        let update = |before: Value, after: Value| {
            one(
                "alice",
                "trigger.update",
                KEY,
                json!({"id": 3, "action": "rollback",
                "before": before, "after": after}),
            )
        };
        let state = |enabled: bool, description: &str| json!({"enabled": enabled, "description": description});
        assert_eq!(
            update(state(true, ""), state(false, "")),
            "alice disabled trigger 3 on shop/prod/app.yaml"
        );
        assert_eq!(
            update(state(false, ""), state(true, "pager")),
            "alice enabled trigger 3 on shop/prod/app.yaml and changed the description"
        );
        assert_eq!(
            update(state(true, ""), state(true, "pager")),
            "alice changed the description of trigger 3 on shop/prod/app.yaml"
        );
        assert_eq!(
            update(state(true, "pager"), state(true, "pager")),
            "alice saved trigger 3 on shop/prod/app.yaml unchanged"
        );
        assert_eq!(
            one(
                "alice",
                "trigger.rotate",
                None,
                json!({"id": 4, "action": "pause-plans"})
            ),
            "alice rotated the token of trigger 4 on every config of shop/prod"
        );
        assert_eq!(
            one(
                "alice",
                "trigger.delete",
                KEY,
                json!({"id": 3, "action": "rollback",
                "description": ""})
            ),
            "alice deleted trigger 3 on shop/prod/app.yaml: rollback"
        );
    }

    #[test]
    fn trigger_fires_read_as_sentences() {
        let fire = |key: Option<&str>, done: Value| {
            trigger_said(
                "trigger:3",
                "trigger.fire",
                key,
                json!({"id": 3, "action": "abort-lanes",
                "address": "127.0.0.1", "body": "{\"status\":\"firing\"}", "done": done}),
            )
        };
        assert_eq!(
            fire(
                KEY,
                json!([{"key": "app.yaml", "action": "lane.abort", "lane": 4, "version": 2}])
            ),
            "trigger:3 fired from 127.0.0.1: aborted gray lane 4 on shop/prod/app.yaml"
        );
        assert_eq!(
            fire(
                None,
                json!([
                {"key": "a.json", "action": "rollout.pause", "lane": 4},
                {"key": "b.json", "action": "rollout.pause", "lane": 5}])
            ),
            "trigger:3 fired from 127.0.0.1: paused the rollout plan of gray lane 4 on \
             shop/prod/a.json, paused the rollout plan of gray lane 5 on shop/prod/b.json"
        );
        assert_eq!(
            fire(
                KEY,
                json!([{"key": "app.yaml", "action": "release.rollback", "version": 1,
                "previous_version": 2}])
            ),
            "trigger:3 fired from 127.0.0.1: rolled back shop/prod/app.yaml to v1"
        );
        assert_eq!(
            fire(None, json!([])),
            "trigger:3 fired from 127.0.0.1: nothing to do on every config of shop/prod"
        );
    }

    #[test]
    fn rollout_plans_and_templates_read_as_sentences() {
        let by = |action: &str, details: Value| {
            let e = entry("graycast", action, KEY, details);
            let sentence = audit_sentence(&e).unwrap_or_else(|| panic!("no sentence for {action}"));
            assert_searchable(&e, &sentence);
            sentence
        };
        let plan = json!({"steps": [{"percentage": 5}, {"percentage": 25}, {"percentage": 100}]});
        assert_eq!(
            by("rollout.start", json!({"lane": 7, "version": 13, "plan": plan, "template": "canary", "percentage": 5.0})),
            "graycast started a rollout plan from template canary on gray lane 7 of shop/prod/app.yaml: v13 at 5 %, 3 steps"
        );
        assert_eq!(
            by("rollout.advance", json!({"lane": 7, "from_step": 0, "step": 1, "percentage": 25.0, "forced": false,
                "reason": "step 1 of 3 held 10 min with every guard passing"})),
            "graycast advanced gray lane 7 of shop/prod/app.yaml to step 2 (25 %): step 1 of 3 held 10 min with every guard passing"
        );
        assert_eq!(
            by(
                "rollout.advance",
                json!({"lane": 7, "step": 2, "percentage": 100.0, "forced": true})
            ),
            "graycast advanced gray lane 7 of shop/prod/app.yaml by force to step 3 (100 %)"
        );
        let reason = "reports guard: 3 of 12 instances failed to apply v7 (limit 0); pod-3: \"nginx: [emerg] unknown directive\"";
        assert_eq!(
            by(
                "rollout.abort",
                json!({"lane": 7, "step": 0, "reason": reason})
            ),
            format!(
                "graycast aborted gray lane 7 on shop/prod/app.yaml by its rollout plan: {reason}"
            )
        );
        assert_eq!(
            by("rollout.pause", json!({"lane": 7, "step": 1, "reason": "a person changed the percentage"})),
            "graycast paused the rollout plan of gray lane 7 on shop/prod/app.yaml at step 2: a person changed the percentage"
        );
        assert_eq!(
            by("rollout.resume", json!({"lane": 7, "step": 1, "remaining_secs": 250})),
            "graycast resumed the rollout plan of gray lane 7 on shop/prod/app.yaml at step 2 with 250 s of its hold left"
        );
        assert_eq!(
            by("rollout.complete", json!({"lane": 7, "step": 2, "reason": "held at 100 % for a person to promote"})),
            "graycast completed the rollout plan of gray lane 7 on shop/prod/app.yaml: held at 100 % for a person to promote"
        );
        let mut template = entry(
            "admin",
            "template.create",
            None,
            json!({"name": "slow", "plan": {}}),
        );
        template.env = Some("prod".into());
        assert_eq!(
            audit_sentence(&template).unwrap(),
            "admin created rollout template slow in prod"
        );
        assert_searchable(&template, &audit_sentence(&template).unwrap());
        template.action = AuditAction::TemplateDefault;
        template.details = json!({"before": "canary", "after": null});
        assert_eq!(
            audit_sentence(&template).unwrap(),
            "admin cleared the default rollout template in prod"
        );
        assert_searchable(&template, &audit_sentence(&template).unwrap());
        let mut freeze = entry(
            "admin",
            "freeze.create",
            None,
            json!({"id": 1, "reason": "release freeze", "from": null, "to": null, "weekly": {
                "from_day": "friday", "from_time": "16:00", "to_day": "monday",
                "to_time": "08:00", "time_zone": "Europe/Berlin"}}),
        );
        freeze.env = Some("prod".into());
        assert_eq!(
            audit_sentence(&freeze).unwrap(),
            "admin froze prod every friday 16:00 to monday 08:00 Europe/Berlin: release freeze"
        );
        assert_searchable(&freeze, &audit_sentence(&freeze).unwrap());
        freeze.action = AuditAction::FreezeDelete;
        freeze.details = json!({"id": 2, "reason": "holidays", "weekly": null,
            "from": "2026-12-24T00:00:00.000Z", "to": "2026-12-27T00:00:00.000Z"});
        assert_eq!(
            audit_sentence(&freeze).unwrap(),
            "admin deleted the freeze window of prod from 2026-12-24T00:00:00.000Z to \
             2026-12-27T00:00:00.000Z: holidays"
        );
        assert_searchable(&freeze, &audit_sentence(&freeze).unwrap());
    }

    #[test]
    fn unknown_actions_are_no_entry_and_unreadable_details_fall_back_to_the_raw_form() {
        // An action this dashboard does not know cannot be an entry: reading it fails.
        let mut sent = serde_json::to_value(entry("admin", "auth.login", KEY, json!({}))).unwrap();
        sent["action"] = json!("plan.start");
        let unknown = serde_json::from_value::<AuditEntry>(sent).unwrap_err();
        assert!(unknown.to_string().contains("plan.start"), "{unknown}");
        let unreadable = entry("admin", "release.stable", KEY, json!({"message": "go"}));
        assert_eq!(audit_sentence(&unreadable), None);
        assert_eq!(
            audit_raw(&unreadable),
            "admin release.stable shop/prod/app.yaml: 'go'"
        );
        assert_eq!(
            audit_sentence(&entry("admin", "release.stable", KEY, json!({}))),
            None
        );
        assert_eq!(
            audit_raw(&entry("admin", "auth.login", None, json!(null))),
            "admin auth.login"
        );
    }

    #[test]
    fn rollout_compares_a_lane_with_the_instances_it_is_eligible_for() {
        use crate::model::LaneRollout;
        let group = |version, serving, applied, failed: &[&str]| RolloutGroup {
            version,
            serving,
            applied,
            failed: failed.iter().map(|f| f.to_string()).collect(),
        };
        let r = Rollout {
            connected: 24,
            stable: Some(group(2, 23, 20, &["parse error"])),
            lanes: vec![
                LaneRollout {
                    lane: 2,
                    percentage: Percentage::parse(25.0).unwrap(),
                    eligible: 16,
                    group: group(3, 1, 1, &[]),
                },
                LaneRollout {
                    lane: 4,
                    percentage: Percentage::parse(5.0).unwrap(),
                    eligible: 0,
                    group: group(3, 0, 0, &[]),
                },
                LaneRollout {
                    lane: 5,
                    percentage: Percentage::parse(1.0).unwrap(),
                    eligible: 300,
                    group: group(3, 1, 0, &[]),
                },
            ],
        };
        assert_eq!(
            rollout_lines(&r),
            [
                "23 instance(s) run stable v2; 20 applied; 1 failed to apply: parse error",
                "1 instance(s) run lane 2 (v3): 1 of 16 eligible instances (6 %), target 25 %; 1 applied",
                "0 instance(s) run lane 4 (v3): none eligible, target 5 %; 0 applied",
                "1 instance(s) run lane 5 (v3): 1 of 300 eligible instances (<1 %), target 1 %; 0 applied",
            ]
        );
    }

    fn request(action: ChangeAction, body: Value, snapshot: Value) -> ChangeRequest {
        let at = crate::domain::time::Timestamp::from_unix_ms(0).unwrap();
        ChangeRequest {
            id: 1,
            namespace: "shop".into(),
            env: "prod".into(),
            key: "app.json".into(),
            action,
            body,
            message: String::new(),
            author: "eve".into(),
            status: crate::model::ChangeStatus::Pending,
            approvals_needed: 2,
            approvals: vec![],
            apply_at: None,
            diff: Value::Null,
            preview: None,
            plan: None,
            snapshot,
            reason: None,
            ended_by: None,
            ended_at: None,
            release_event: None,
            override_id: None,
            unreviewed_override: false,
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn requests_say_what_they_do() {
        let snap = json!({"stable_version": 6, "lanes": [{"id": 3, "version": 8}]});
        let say = |action, body| request_words(&request(action, body, snap.clone()));
        assert_eq!(
            say(ChangeAction::Release, json!({"version": 7})),
            "release v7 as stable (now v6)"
        );
        assert_eq!(
            request_words(&request(
                ChangeAction::Release,
                json!({"version": 1}),
                json!({"stable_version": null})
            )),
            "release v1 as stable (nothing released yet)"
        );
        assert_eq!(
            say(
                ChangeAction::LaneCreate,
                json!({"version": 8, "percentage": 10.0, "selector": "region=eu"})
            ),
            "start a lane: v8 to 10 % of region=eu"
        );
        assert_eq!(
            say(
                ChangeAction::LaneCreate,
                json!({"version": 8, "plan": {"steps": [{"percentage": 5.0, "hold_secs": 60}]}})
            ),
            "start a lane: v8 to 5 % of every instance, with a rollout plan"
        );
        assert_eq!(
            say(
                ChangeAction::LaneUpdate,
                json!({"lane": 3, "percentage": 50.0})
            ),
            "set lane 3 to 50 %"
        );
        assert_eq!(
            say(ChangeAction::LanePromote, json!({"lane": 3})),
            "promote lane 3 (v8) to stable (now v6)"
        );
        assert_eq!(
            say(ChangeAction::PlanAttach, json!({"lane": 3, "plan": {}})),
            "attach a rollout plan to lane 3"
        );
    }
}
