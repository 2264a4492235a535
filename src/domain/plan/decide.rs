//! What a running plan does next, given its step, the time and its guards' latest readings
//! (the specification's section 6). The scheduler calls [`decide`] after every event and tick
//! and carries out the answer; the answer never depends on anything but these facts.

use serde::{Deserialize, Serialize};

use super::guard::{GuardStatus, Reading};
use super::{show_bp, Finish, NoDataPolicy, OnFailure, Plan};

/// A plan's life: `running` → `paused` ⇄ `running` → `completed` | `aborted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanState {
    Running,
    Paused,
    Completed,
    Aborted,
}

impl PlanState {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanState::Running => "running",
            PlanState::Paused => "paused",
            PlanState::Completed => "completed",
            PlanState::Aborted => "aborted",
        }
    }

    /// A plan in this state will never act again.
    pub fn is_final(self) -> bool {
        matches!(self, PlanState::Completed | PlanState::Aborted)
    }
}

impl std::str::FromStr for PlanState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "running" => Ok(PlanState::Running),
            "paused" => Ok(PlanState::Paused),
            "completed" => Ok(PlanState::Completed),
            "aborted" => Ok(PlanState::Aborted),
            other => Err(format!("unknown plan state {other:?}")),
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
        percentage_bp: u32,
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
                show_bp(plan.steps[step].percentage_bp),
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
            NoDataPolicy::Advance => {}
        }
    }
    next_step(plan, step)
}

/// What completing `step` leads to, guards aside (also the forced `advance` control).
pub fn next_step(plan: &Plan, step: usize) -> Decision {
    match plan.steps.get(step + 1) {
        Some(next) => Decision::Advance {
            to_step: step + 1,
            percentage_bp: next.percentage_bp,
        },
        None => Decision::Complete {
            promote: plan.finish == Finish::Promote,
        },
    }
}

/// Whether a person may `advance` now without `force`: every guard must pass.
pub fn may_advance(readings: &[Reading]) -> Result<(), String> {
    match readings.iter().find(|r| r.status != GuardStatus::Passing) {
        Some(r) => Err(format!(
            "a guard does not pass yet ({}); advance with force to skip the guards",
            r.message
        )),
        None => Ok(()),
    }
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
    use crate::domain::plan::Step;
    use proptest::prelude::*;

    fn plan(on_failure: OnFailure, no_data: NoDataPolicy, finish: Finish) -> Plan {
        Plan {
            steps: vec![
                Step {
                    percentage_bp: 500,
                    hold_secs: 600,
                },
                Step {
                    percentage_bp: 2500,
                    hold_secs: 60,
                },
                Step {
                    percentage_bp: 10_000,
                    hold_secs: 0,
                },
            ],
            guards: Vec::new(),
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
                percentage_bp: 2500
            }
        );
        assert_eq!(
            decide(&canary(), 2, 0, 0, &ok),
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
                percentage_bp: 10_000
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
        assert!(may_advance(&[reading(PASS, 0, "ok")]).is_ok());
        let e = may_advance(&[
            reading(PASS, 0, "ok"),
            reading(NONE, 0, "waiting for reports"),
        ])
        .unwrap_err();
        assert!(
            e.contains("waiting for reports") && e.contains("force"),
            "{e}"
        );
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
        /// hold is over, or while a guard is on a streak of bad values; and a failure always acts.
        #[test]
        fn decisions_never_widen_unsafely(
            statuses in proptest::collection::vec(status(), 0..5),
            step in 0usize..3,
            now in 0i64..1_000_000,
            on_failure in prop_oneof![Just(OnFailure::Abort), Just(OnFailure::Pause)],
            no_data in prop_oneof![Just(NoDataPolicy::Wait), Just(NoDataPolicy::Advance), Just(NoDataPolicy::Abort)],
        ) {
            let p = plan(on_failure, no_data, Finish::Promote);
            let readings: Vec<Reading> = statuses.iter().map(|(s, k)| reading(*s, *k, "m")).collect();
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
            if !failing && hold_over && statuses.iter().all(|(s, _)| *s == PASS) {
                prop_assert!(widens, "{:?}", d);
            }
        }
    }
}
