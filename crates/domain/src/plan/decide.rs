//! What a running plan does next, given its step, the time and its guards' latest readings
//! (docs/plans.md#the-decision). The scheduler calls [`decide`] after every event and tick
//! and carries out the answer; the answer never depends on anything but these facts.

use super::guard::{GuardStatus, Reading};
use super::{Finish, NoDataPolicy, OnFailure, Plan};
use crate::percentage::Percentage;
use crate::words::words;

/// How `waiting_for` begins while a plan waits for the evidence its promotion needs.
const EVIDENCE: &str = "evidence to promote";

words! {
    /// A plan's life: `running` → `paused` ⇄ `running` → `completed` | `aborted`.
    pub enum PlanState {
        Running = "running",
        Paused = "paused",
        Completed = "completed",
        Aborted = "aborted",
    }
}

impl PlanState {
    /// A plan in this state will never act again.
    pub fn is_final(self) -> bool {
        matches!(self, PlanState::Completed | PlanState::Aborted)
    }
}

words! {
    /// What a transition of a plan did (its history, docs/plans.md).
    pub enum PlanAction {
        Start = "start",
        Advance = "advance",
        Pause = "pause",
        Resume = "resume",
        Complete = "complete",
        Abort = "abort",
    }
}

impl PlanAction {
    /// The state a plan is in after this action.
    pub fn leads_to(self) -> PlanState {
        match self {
            PlanAction::Start | PlanAction::Advance | PlanAction::Resume => PlanState::Running,
            PlanAction::Pause => PlanState::Paused,
            PlanAction::Complete => PlanState::Completed,
            PlanAction::Abort => PlanState::Aborted,
        }
    }

    /// The action done, as `/metrics` counts transitions: `started`, `advanced`…
    pub fn done(self) -> &'static str {
        match self {
            PlanAction::Start => "started",
            PlanAction::Advance => "advanced",
            PlanAction::Pause => "paused",
            PlanAction::Resume => "resumed",
            PlanAction::Complete => "completed",
            PlanAction::Abort => "aborted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to do yet; `waiting_for` says what in plain words.
    Wait {
        remaining_secs: u64,
        waiting_for: String,
    },
    /// Widen the lane to the next step.
    Advance {
        to_step: usize,
        percentage: Percentage,
    },
    /// The last step is done: promote the lane, or keep it for a person.
    Complete {
        promote: bool,
    },
    Abort {
        reason: String,
    },
    Pause {
        reason: String,
    },
}

/// Milliseconds of the current step's hold still to go at `now_ms`.
pub fn remaining_ms(plan: &Plan, step: usize, step_started_at_ms: i64, now_ms: i64) -> i64 {
    let hold_ms = i64::from(plan.steps[step].hold_secs) * 1000;
    (step_started_at_ms + hold_ms - now_ms).max(0)
}

/// On resume, the step's start moves by the time spent paused, so the hold continues with the
/// time it had left instead of starting again (or being over).
pub fn resumed_step_start(step_started_at_ms: i64, paused_at_ms: i64, now_ms: i64) -> i64 {
    step_started_at_ms + (now_ms - paused_at_ms).max(0)
}

/// The next move of a running plan at `step`. `readings` has one entry per guard, in order.
pub fn decide(
    plan: &Plan,
    step: usize,
    step_started_at_ms: i64,
    now_ms: i64,
    readings: &[Reading],
) -> Decision {
    // A failing guard acts at once, during the hold too.
    if let Some(failing) = readings.iter().find(|r| r.status == GuardStatus::Failing) {
        let reason = failing.message.clone();
        return match plan.on_failure {
            OnFailure::Abort => Decision::Abort { reason },
            OnFailure::Pause => Decision::Pause { reason },
        };
    }
    let remaining = remaining_ms(plan, step, step_started_at_ms, now_ms);
    if remaining > 0 {
        let secs = (remaining as u64).div_ceil(1000);
        return Decision::Wait {
            remaining_secs: secs,
            waiting_for: format!(
                "holding at {} for {} more",
                plan.steps[step].percentage,
                human_secs(secs)
            ),
        };
    }
    let no_data: Vec<&Reading> = readings
        .iter()
        .filter(|r| r.status == GuardStatus::NoData)
        .collect();
    let waiting_for = || {
        no_data
            .iter()
            .map(|r| r.message.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    };
    // A guard in the middle of a streak of bad values never lets the plan move on.
    if no_data.iter().any(|r| r.is_suspect()) {
        return Decision::Wait {
            remaining_secs: 0,
            waiting_for: waiting_for(),
        };
    }
    let next = next_step(plan, step);
    let promotes = next == Decision::Complete { promote: true };
    if !no_data.is_empty() {
        match plan.no_data {
            NoDataPolicy::Wait => {
                return Decision::Wait {
                    remaining_secs: 0,
                    waiting_for: waiting_for(),
                }
            }
            NoDataPolicy::Abort => {
                return Decision::Abort {
                    reason: format!("no data: {}", waiting_for()),
                }
            }
            // `advance` may widen a lane, never promote it: no news is no evidence.
            NoDataPolicy::Advance if promotes => {
                return Decision::Wait {
                    remaining_secs: 0,
                    waiting_for: format!(
                        "{EVIDENCE}: {} (no_data: advance never promotes)",
                        waiting_for()
                    ),
                }
            }
            NoDataPolicy::Advance => {}
        }
    }
    if promotes {
        if let Err(missing) = evidence(plan, readings) {
            return Decision::Wait {
                remaining_secs: 0,
                waiting_for: format!("{EVIDENCE}: {missing}"),
            };
        }
    }
    next
}

/// No evidence, no promotion: whether the plan may promote on `readings` (one per guard, in
/// order). It may when one of its `reports` guards with `min_instances` of at least 1
/// ([`Plan::evidence_guards`]) passes with at least `min_instances` instances that applied the
/// lane's version; else what is missing, in words. A plan stored before this rule may lack such
/// a guard: it then never promotes by itself.
pub fn evidence(plan: &Plan, readings: &[Reading]) -> Result<(), String> {
    let mut missing = None;
    for (i, guard) in plan.evidence_guards() {
        let Some(reading) = readings.get(i) else {
            continue;
        };
        let applied = reading.applied.unwrap_or(0);
        if reading.status == GuardStatus::Passing && applied >= guard.min_instances {
            return Ok(());
        }
        missing.get_or_insert_with(|| {
            if reading.status == GuardStatus::Passing {
                format!(
                    "{}; at least {} must have applied it",
                    reading.message, guard.min_instances
                )
            } else {
                reading.message.clone()
            }
        });
    }
    Err(missing.unwrap_or_else(|| {
        "the plan has no reports guard with min_instances of at least 1, so it never promotes \
         by itself"
            .to_string()
    }))
}

/// What completing `step` leads to, guards aside (also the forced `advance` control).
pub fn next_step(plan: &Plan, step: usize) -> Decision {
    match plan.steps.get(step + 1) {
        Some(next) => Decision::Advance {
            to_step: step + 1,
            percentage: next.percentage,
        },
        None => Decision::Complete {
            promote: plan.finish == Finish::Promote,
        },
    }
}

/// Whether a person may `advance` the plan at `step` now without `force`: every guard must
/// pass, and advancing past the last step of a plan that promotes needs its [`evidence`].
pub fn may_advance(plan: &Plan, step: usize, readings: &[Reading]) -> Result<(), String> {
    if let Some(r) = readings.iter().find(|r| r.status != GuardStatus::Passing) {
        return Err(format!(
            "a guard does not pass yet ({}); advance with force to skip the guards",
            r.message
        ));
    }
    if next_step(plan, step) == (Decision::Complete { promote: true }) {
        return evidence(plan, readings).map_err(|missing| {
            format!(
                "advancing past the last step promotes the lane, and there is no evidence to \
                 promote yet ({missing}); advance with force to promote without it"
            )
        });
    }
    Ok(())
}

/// `250` → `4 min 10 s`, `7200` → `2 h`, `45` → `45 s`.
pub fn human_secs(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let parts: Vec<String> = [(h, "h"), (m, "min"), (s, "s")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n} {unit}"))
        .collect();
    if parts.is_empty() {
        "0 s".into()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Guard, ReportsGuard, Step};
    use proptest::prelude::*;

    fn reports_with(min_instances: u32, min_applied_ratio: f64) -> Guard {
        Guard::Reports(ReportsGuard {
            max_failed: 0,
            max_failed_ratio: 0.0,
            min_applied_ratio,
            min_instances,
        })
    }

    fn reports(min_instances: u32) -> Guard {
        reports_with(min_instances, 1.0)
    }

    fn plan(on_failure: OnFailure, no_data: NoDataPolicy, finish: Finish) -> Plan {
        Plan {
            steps: vec![
                Step {
                    percentage: Percentage::from_bp(500).unwrap(),
                    hold_secs: 600,
                },
                Step {
                    percentage: Percentage::from_bp(2500).unwrap(),
                    hold_secs: 60,
                },
                Step {
                    percentage: Percentage::from_bp(10_000).unwrap(),
                    hold_secs: 0,
                },
            ],
            guards: vec![reports(1)],
            on_failure,
            no_data,
            finish,
        }
    }

    fn canary() -> Plan {
        plan(OnFailure::Abort, NoDataPolicy::Wait, Finish::Promote)
    }

    fn reading(status: GuardStatus, streak: u32, message: &str) -> Reading {
        Reading {
            status,
            value: None,
            message: message.into(),
            streak,
            applied: None,
            comparison: None,
        }
    }

    /// A `reports` reading: `applied` instances applied the lane's version.
    fn applied(status: GuardStatus, applied: u32) -> Reading {
        Reading {
            applied: Some(applied),
            ..reading(status, 0, &format!("reports guard: {applied} applied v2"))
        }
    }

    const PASS: GuardStatus = GuardStatus::Passing;
    const FAIL: GuardStatus = GuardStatus::Failing;
    const NONE: GuardStatus = GuardStatus::NoData;

    #[test]
    fn the_hold_is_waited_out_with_the_time_left_in_words() {
        let d = decide(&canary(), 0, 0, 349_500, &[reading(PASS, 0, "ok")]);
        assert_eq!(
            d,
            Decision::Wait {
                remaining_secs: 251,
                waiting_for: "holding at 5 % for 4 min 11 s more".into()
            }
        );
    }

    #[test]
    fn a_failing_guard_acts_during_the_hold() {
        let readings = [
            reading(PASS, 0, "ok"),
            reading(FAIL, 0, "reports guard: 1 of 3 failed"),
        ];
        assert_eq!(
            decide(&canary(), 0, 0, 1, &readings),
            Decision::Abort {
                reason: "reports guard: 1 of 3 failed".into()
            }
        );
        let pausing = plan(OnFailure::Pause, NoDataPolicy::Wait, Finish::Hold);
        assert_eq!(
            decide(&pausing, 0, 0, 1, &readings),
            Decision::Pause {
                reason: "reports guard: 1 of 3 failed".into()
            }
        );
    }

    #[test]
    fn a_completed_hold_with_passing_guards_advances_then_finishes() {
        let ok = [reading(PASS, 0, "ok")];
        assert_eq!(
            decide(&canary(), 0, 0, 600_000, &ok),
            Decision::Advance {
                to_step: 1,
                percentage: Percentage::from_bp(2500).unwrap()
            }
        );
        assert_eq!(
            decide(&canary(), 2, 0, 0, &[applied(PASS, 1)]),
            Decision::Complete { promote: true }
        );
        let holding = plan(OnFailure::Abort, NoDataPolicy::Wait, Finish::Hold);
        assert_eq!(
            decide(&holding, 2, 0, 0, &[]),
            Decision::Complete { promote: false }
        );
    }

    #[test]
    fn no_data_after_the_hold_follows_the_policy() {
        let readings = [
            reading(PASS, 0, "ok"),
            reading(NONE, 0, "reports guard: waiting for instances"),
        ];
        let at = |policy| {
            decide(
                &plan(OnFailure::Abort, policy, Finish::Hold),
                1,
                0,
                60_000,
                &readings,
            )
        };
        assert_eq!(
            at(NoDataPolicy::Wait),
            Decision::Wait {
                remaining_secs: 0,
                waiting_for: "reports guard: waiting for instances".into()
            }
        );
        assert_eq!(
            at(NoDataPolicy::Advance),
            Decision::Advance {
                to_step: 2,
                percentage: Percentage::from_bp(10_000).unwrap()
            }
        );
        assert_eq!(
            at(NoDataPolicy::Abort),
            Decision::Abort {
                reason: "no data: reports guard: waiting for instances".into()
            }
        );
    }

    #[test]
    fn a_guard_in_a_streak_of_bad_values_holds_even_an_advancing_plan() {
        let readings = [reading(
            NONE,
            1,
            "prometheus guard: 0.07 is above max 0.05 (1 of 2)",
        )];
        let advancing = plan(OnFailure::Abort, NoDataPolicy::Advance, Finish::Hold);
        assert!(matches!(
            decide(&advancing, 0, 0, 600_000, &readings),
            Decision::Wait { .. }
        ));
    }

    #[test]
    fn resuming_keeps_the_time_the_hold_had_left() {
        let p = canary();
        // Paused 100 s into a 600 s hold, resumed an hour later: 500 s left.
        let start = resumed_step_start(0, 100_000, 3_700_000);
        assert_eq!(remaining_ms(&p, 0, start, 3_700_000), 500_000);
    }

    #[test]
    fn advancing_by_hand_needs_every_guard_to_pass() {
        let p = canary();
        assert!(may_advance(&p, 0, &[reading(PASS, 0, "ok")]).is_ok());
        let e = may_advance(
            &p,
            0,
            &[
                reading(PASS, 0, "ok"),
                reading(NONE, 0, "waiting for reports"),
            ],
        )
        .unwrap_err();
        assert!(
            e.contains("waiting for reports") && e.contains("force"),
            "{e}"
        );
    }

    #[test]
    fn no_evidence_no_promotion() {
        let last = |p: &Plan, readings: &[Reading]| decide(p, 2, 0, 0, readings);
        let waits = |d: Decision| match d {
            Decision::Wait {
                remaining_secs: 0,
                waiting_for,
            } => waiting_for,
            other => panic!("{other:?} instead of waiting"),
        };
        // A reports guard that passes without anyone having applied (min_applied_ratio 0).
        let mut lenient = canary();
        lenient.guards = vec![reports_with(2, 0.0)];
        assert_eq!(
            waits(last(&lenient, &[applied(PASS, 1)])),
            "evidence to promote: reports guard: 1 applied v2; at least 2 must have applied it"
        );
        assert_eq!(
            last(&lenient, &[applied(PASS, 2)]),
            Decision::Complete { promote: true }
        );
        // No data on the last step: `advance` widens, never promotes.
        for policy in [NoDataPolicy::Wait, NoDataPolicy::Advance] {
            let p = plan(OnFailure::Abort, policy, Finish::Promote);
            let w = waits(last(&p, &[applied(NONE, 0)]));
            assert!(w.contains("reports guard: 0 applied v2"), "{w}");
        }
        let advancing = plan(OnFailure::Abort, NoDataPolicy::Advance, Finish::Promote);
        assert_eq!(
            waits(last(
                &advancing,
                &[applied(PASS, 3), reading(NONE, 0, "webhook guard: 425")]
            )),
            "evidence to promote: webhook guard: 425 (no_data: advance never promotes)"
        );
        assert_eq!(
            decide(&advancing, 1, 0, 60_000, &[applied(NONE, 0)]),
            Decision::Advance {
                to_step: 2,
                percentage: Percentage::from_bp(10_000).unwrap()
            },
            "it still widens"
        );
        let holding = plan(OnFailure::Abort, NoDataPolicy::Advance, Finish::Hold);
        assert_eq!(
            last(&holding, &[applied(NONE, 0)]),
            Decision::Complete { promote: false }
        );
        // A plan stored before the rule, without a reports guard that counts instances.
        let mut old = canary();
        old.guards = vec![reports(0)];
        assert_eq!(
            waits(last(&old, &[applied(PASS, 5)])),
            "evidence to promote: the plan has no reports guard with min_instances of at least 1, so it never promotes by itself"
        );
        old.guards.clear();
        assert!(matches!(last(&old, &[]), Decision::Wait { .. }));
    }

    #[test]
    fn advancing_past_the_last_step_by_hand_needs_evidence_too() {
        let p = canary();
        assert!(may_advance(&p, 1, &[applied(PASS, 0)]).is_ok(), "widening");
        assert!(may_advance(&p, 2, &[applied(PASS, 1)]).is_ok());
        let mut lenient = p.clone();
        lenient.guards = vec![reports_with(1, 0.0)];
        let e = may_advance(&lenient, 2, &[applied(PASS, 0)]).unwrap_err();
        assert_eq!(
            e,
            "advancing past the last step promotes the lane, and there is no evidence to promote \
             yet (reports guard: 0 applied v2; at least 1 must have applied it); advance with \
             force to promote without it"
        );
        let holding = plan(OnFailure::Abort, NoDataPolicy::Wait, Finish::Hold);
        assert!(may_advance(&holding, 2, &[applied(PASS, 0)]).is_ok());
    }

    #[test]
    fn durations_read_as_words() {
        assert_eq!(human_secs(0), "0 s");
        assert_eq!(human_secs(45), "45 s");
        assert_eq!(human_secs(250), "4 min 10 s");
        assert_eq!(human_secs(7200), "2 h");
        assert_eq!(human_secs(3661), "1 h 1 min 1 s");
    }

    fn status() -> impl Strategy<Value = (GuardStatus, u32)> {
        prop_oneof![
            Just((PASS, 0)),
            Just((FAIL, 2)),
            Just((NONE, 0)),
            Just((NONE, 1))
        ]
    }

    proptest! {
        /// Whatever the policies, guards and time: never widen while a guard fails, before the
        /// hold is over, or while a guard is on a streak of bad values; a failure always acts;
        /// and a promotion needs every guard passing with the first (the reports guard) counting
        /// an instance that applied the version.
        #[test]
        fn decisions_never_widen_unsafely(
            statuses in proptest::collection::vec(status(), 0..5),
            evidence in 0u32..3,
            step in 0usize..3,
            now in 0i64..1_000_000,
            on_failure in prop_oneof![Just(OnFailure::Abort), Just(OnFailure::Pause)],
            no_data in prop_oneof![Just(NoDataPolicy::Wait), Just(NoDataPolicy::Advance), Just(NoDataPolicy::Abort)],
        ) {
            let p = plan(on_failure, no_data, Finish::Promote);
            let mut readings: Vec<Reading> = statuses.iter().map(|(s, k)| reading(*s, *k, "m")).collect();
            if let Some(first) = readings.first_mut() {
                first.applied = Some(evidence);
            }
            let d = decide(&p, step, 0, now, &readings);
            let failing = statuses.iter().any(|(s, _)| *s == FAIL);
            let suspect = statuses.iter().any(|(s, k)| *s == NONE && *k > 0);
            let hold_over = now >= i64::from(p.steps[step].hold_secs) * 1000;
            let widens = matches!(d, Decision::Advance { .. } | Decision::Complete { .. });
            if failing {
                let acts = matches!(d, Decision::Abort { .. } | Decision::Pause { .. });
                prop_assert!(acts, "{:?}", d);
            }
            if widens {
                prop_assert!(!failing && hold_over && !suspect, "{:?}", d);
            }
            let all_pass = statuses.iter().all(|(s, _)| *s == PASS);
            let proven = all_pass && !statuses.is_empty() && evidence >= 1;
            if d == (Decision::Complete { promote: true }) {
                prop_assert!(proven && step == 2, "{:?}", d);
            }
            if !failing && hold_over && all_pass && (step < 2 || proven) {
                prop_assert!(widens, "{:?}", d);
            }
        }
    }
}
