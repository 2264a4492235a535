//! How each guard kind is judged at one moment: passing, failing or no data, with the value and
//! a sentence a release manager can act on (docs/plans.md, exactly).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{EmptyResult, GuardKind, PrometheusGuard, ReportsGuard, WebhookGuard};
use crate::words::words;

words! {
    /// What a guard says at one evaluation.
    pub enum GuardStatus {
        Passing = "passing",
        Failing = "failing",
        NoData = "no_data",
    }
}

/// One evaluation of one guard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub status: GuardStatus,
    /// What was measured: failed instances for `reports`, the sample for `prometheus`, the
    /// HTTP status for `webhook`.
    pub value: Option<f64>,
    pub message: String,
    /// Consecutive bad evaluations of a polled guard so far. While it is above zero but below
    /// the guard's `failures`, the guard is "no data" and the plan never advances on it.
    pub streak: u32,
    /// `reports` only: the instances of the served set whose latest report applied the lane's
    /// version — the evidence a promotion needs ([`super::decide::evidence`]).
    #[serde(default)]
    pub applied: Option<u32>,
    /// `compare` only: both medians, the ratio, U, the p-value and the counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<crate::compare::Comparison>,
}

impl Reading {
    pub(super) fn new(
        status: GuardStatus,
        value: Option<f64>,
        message: String,
        streak: u32,
    ) -> Self {
        Self {
            status,
            value,
            message,
            streak,
            applied: None,
            comparison: None,
        }
    }

    pub(super) fn with_comparison(self, comparison: crate::compare::Comparison) -> Self {
        Self {
            comparison: Some(comparison),
            ..self
        }
    }

    fn applied(self, applied: usize) -> Self {
        Self {
            applied: Some(u32::try_from(applied).unwrap_or(u32::MAX)),
            ..self
        }
    }

    /// A polled guard that has seen bad values but not yet `failures` of them in a row.
    pub fn is_suspect(&self) -> bool {
        self.status == GuardStatus::NoData && self.streak > 0
    }
}

/// What an instance last reported for the lane's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastReport {
    /// `applied` or `failed` (anything else counts as neither).
    pub status: String,
    pub version: i64,
    pub message: Option<String>,
    /// When it was reported (milliseconds since the epoch): the first failure is named.
    pub at_ms: i64,
}

/// One instance of the lane's served set: served this lane's version by this lane since the
/// current step began (connected now, or disconnected during the step).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Served {
    pub client_id: String,
    pub last_report: Option<LastReport>,
}

/// Longest instance message quoted in a reason.
const QUOTE_CHARS: usize = 200;

/// The `reports` guard over the lane's served set, for the lane's `version`.
pub fn judge_reports(guard: &ReportsGuard, version: i64, served: &[Served]) -> Reading {
    let with = |wanted: &'static str| {
        served.iter().filter(move |s| {
            s.last_report
                .as_ref()
                .is_some_and(|r| r.version == version && r.status == wanted)
        })
    };
    let total = served.len();
    let applied = with("applied").count();
    let failed = with("failed").count();
    let value = Some(failed as f64);
    let ratio = |n: usize| {
        if total == 0 {
            0.0
        } else {
            n as f64 / total as f64
        }
    };
    let over_count = failed as u64 > u64::from(guard.max_failed);
    let over_ratio = total > 0 && ratio(failed) > guard.max_failed_ratio;
    if over_count || over_ratio {
        let limit = if over_count {
            format!("limit {}", guard.max_failed)
        } else {
            format!(
                "{}, limit {}",
                percent(ratio(failed)),
                percent(guard.max_failed_ratio)
            )
        };
        let first = with("failed")
            .min_by_key(|s| s.last_report.as_ref().map(|r| r.at_ms))
            .expect("failed > 0");
        let mut message = format!(
            "reports guard: {failed} of {total} instances failed to apply v{version} ({limit}); {}",
            first.client_id
        );
        if let Some(said) = first
            .last_report
            .as_ref()
            .and_then(|r| r.message.as_deref())
        {
            message.push_str(&format!(": \"{}\"", quote(said)));
        }
        return Reading::new(GuardStatus::Failing, value, message, 0).applied(applied);
    }
    if (total as u64) < u64::from(guard.min_instances) {
        let message = format!(
            "reports guard: waiting for instances: {total} served v{version} so far, {} needed",
            guard.min_instances
        );
        return Reading::new(GuardStatus::NoData, value, message, 0).applied(applied);
    }
    if ratio(applied) < guard.min_applied_ratio && failed == 0 {
        let message = format!(
            "reports guard: waiting for reports: {applied} of {total} instances applied v{version}, {} needed",
            percent(guard.min_applied_ratio)
        );
        return Reading::new(GuardStatus::NoData, value, message, 0).applied(applied);
    }
    let message = format!("reports guard: {applied} of {total} instances applied v{version}");
    Reading::new(GuardStatus::Passing, value, message, 0).applied(applied)
}

fn percent(ratio: f64) -> String {
    let p = (ratio * 1000.0).round() / 10.0;
    format!("{p} %")
}

pub(super) fn quote(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    if line.chars().count() <= QUOTE_CHARS {
        line.to_string()
    } else {
        let cut: String = line.chars().take(QUOTE_CHARS).collect();
        format!("{cut}…")
    }
}

/// What one Prometheus query answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Sample {
    Value(f64),
    /// No series (or `NaN`: e.g. an error ratio with no traffic yet).
    Empty,
    /// Not a usable answer; counts toward the guard's `failures`.
    Error(String),
}

/// Reads a `/api/v1/query` answer: a scalar, or a vector of exactly one sample.
pub fn read_prometheus(body: &Value) -> Sample {
    if body["status"] != "success" {
        let why = body["error"].as_str().unwrap_or("no status \"success\"");
        return Sample::Error(format!("Prometheus answered an error: {}", quote(why)));
    }
    let data = &body["data"];
    let pair = match data["resultType"].as_str() {
        Some("scalar") => &data["result"],
        Some("vector") => match data["result"].as_array().map(Vec::as_slice) {
            Some([]) => return Sample::Empty,
            Some([one]) => &one["value"],
            Some(many) => {
                return Sample::Error(format!(
                    "the query returned {} samples; it must return one (aggregate it, e.g. with sum or max)",
                    many.len()
                ))
            }
            None => return Sample::Error("the answer has no result list".into()),
        },
        Some(other) => {
            return Sample::Error(format!(
                "the query returned a {other}; it must return a scalar or a one-sample vector"
            ))
        }
        None => return Sample::Error("the answer has no resultType".into()),
    };
    match pair[1].as_str().map(str::parse::<f64>) {
        Some(Ok(x)) if x.is_nan() => Sample::Empty,
        Some(Ok(x)) => Sample::Value(x),
        _ => Sample::Error("the sample has no numeric value".into()),
    }
}

/// Replaces `{{namespace}}`, `{{env}}`, `{{key}}`, `{{lane}}` and `{{version}}` in a query.
pub fn substitute(query: &str, vars: &[(&str, &str)]) -> String {
    vars.iter().fold(query.to_string(), |q, (name, value)| {
        q.replace(&format!("{{{{{name}}}}}"), value)
    })
}

/// A polled guard after one more evaluation: `bad` is why it counted toward `failures`.
pub(super) fn polled(
    kind: GuardKind,
    failures: u32,
    previous_streak: u32,
    value: Option<f64>,
    outcome: Result<(GuardStatus, String), String>,
) -> Reading {
    match outcome {
        Ok((status, message)) => Reading::new(status, value, format!("{kind} guard: {message}"), 0),
        Err(bad) => {
            let streak = previous_streak.saturating_add(1);
            if streak >= failures {
                let message = format!("{kind} guard: {bad} ({streak} in a row, limit {failures})");
                Reading::new(GuardStatus::Failing, value, message, streak)
            } else {
                let message = format!(
                    "{kind} guard: {bad} ({streak} of {failures} in a row before it fails)"
                );
                Reading::new(GuardStatus::NoData, value, message, streak)
            }
        }
    }
}

/// A polled guard whose probe was skipped this interval because `max_in_flight` probes were
/// already running on the server: no data (never a failure), its streak kept.
pub fn skipped(
    kind: GuardKind,
    failures: u32,
    previous_streak: u32,
    max_in_flight: usize,
) -> Reading {
    let mut message = format!(
        "{kind} guard: not probed this time: {max_in_flight} probes were running on the server, \
         the most it runs at once"
    );
    if previous_streak > 0 {
        message.push_str(&format!(
            " ({previous_streak} of {failures} in a row before it fails)"
        ));
    }
    Reading::new(GuardStatus::NoData, None, message, previous_streak)
}

/// The `prometheus` guard after one query; `previous_streak` from its last reading.
pub fn judge_prometheus(guard: &PrometheusGuard, previous_streak: u32, sample: &Sample) -> Reading {
    let outcome = match sample {
        Sample::Value(x) => match (guard.min, guard.max) {
            (_, Some(max)) if *x > max => Err(format!("{x} is above max {max}")),
            (Some(min), _) if *x < min => Err(format!("{x} is below min {min}")),
            _ => Ok((
                GuardStatus::Passing,
                format!("{x} is within {}", bounds(guard)),
            )),
        },
        Sample::Empty => match guard.no_data {
            EmptyResult::Wait => Ok((GuardStatus::NoData, "the query returned no data yet".into())),
            EmptyResult::Pass => Ok((
                GuardStatus::Passing,
                "no data, which this guard lets pass".into(),
            )),
            EmptyResult::Fail => Err("the query returned no data".into()),
        },
        Sample::Error(why) => Err(why.clone()),
    };
    let value = match sample {
        Sample::Value(x) => Some(*x),
        _ => None,
    };
    // No data while a streak runs does not end the streak: only a good value does.
    let streak = previous_streak;
    match outcome {
        Ok((GuardStatus::NoData, message)) if streak > 0 => Reading::new(
            GuardStatus::NoData,
            value,
            format!(
                "prometheus guard: {message} ({streak} of {} in a row before it fails)",
                guard.failures
            ),
            streak,
        ),
        outcome => polled(
            GuardKind::Prometheus,
            guard.failures,
            streak,
            value,
            outcome,
        ),
    }
}

fn bounds(guard: &PrometheusGuard) -> String {
    match (guard.min, guard.max) {
        (Some(min), Some(max)) => format!("[{min}, {max}]"),
        (Some(min), None) => format!("min {min}"),
        (None, Some(max)) => format!("max {max}"),
        (None, None) => "any bound".into(),
    }
}

/// What one webhook call came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookAnswer {
    Status(u16),
    /// A status with the first line of the answer's body, quoted when it counts as a failure.
    Said(u16, String),
    TimedOut,
    /// It could not be called: not reachable (one sentence whatever the cause), or not allowed
    /// by the outbound policy.
    Unreachable(String),
}

/// The `webhook` guard after one call; `previous_streak` from its last reading.
pub fn judge_webhook(guard: &WebhookGuard, previous_streak: u32, answer: &HookAnswer) -> Reading {
    let value = match answer {
        HookAnswer::Status(code) | HookAnswer::Said(code, _) => Some(f64::from(*code)),
        _ => None,
    };
    let outcome = match answer {
        HookAnswer::Status(code @ 200..=299) | HookAnswer::Said(code @ 200..=299, _) => {
            Ok((GuardStatus::Passing, format!("answered {code}")))
        }
        HookAnswer::Status(425) | HookAnswer::Said(425, _) => Ok((
            GuardStatus::NoData,
            "answered 425 (too early to tell)".into(),
        )),
        HookAnswer::Said(code, said) if !quote(said).is_empty() => {
            Err(format!("answered {code}: \"{}\"", quote(said)))
        }
        HookAnswer::Status(code) | HookAnswer::Said(code, _) => Err(format!("answered {code}")),
        HookAnswer::TimedOut => Err(format!("no answer within {} s", guard.timeout_secs)),
        HookAnswer::Unreachable(why) => Err(format!("could not be called: {}", quote(why))),
    };
    match outcome {
        Ok((GuardStatus::NoData, message)) if previous_streak > 0 => Reading::new(
            GuardStatus::NoData,
            value,
            format!(
                "webhook guard: {message} ({previous_streak} of {} in a row before it fails)",
                guard.failures
            ),
            previous_streak,
        ),
        outcome => polled(
            GuardKind::Webhook,
            guard.failures,
            previous_streak,
            value,
            outcome,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn reports(
        max_failed: u32,
        max_failed_ratio: f64,
        min_applied_ratio: f64,
        min_instances: u32,
    ) -> ReportsGuard {
        ReportsGuard {
            max_failed,
            max_failed_ratio,
            min_applied_ratio,
            min_instances,
        }
    }

    fn defaults() -> ReportsGuard {
        reports(0, 0.0, 1.0, 1)
    }

    fn served(id: &str, report: Option<(&str, i64, i64, Option<&str>)>) -> Served {
        Served {
            client_id: id.into(),
            last_report: report.map(|(status, version, at_ms, message)| LastReport {
                status: status.into(),
                version,
                message: message.map(Into::into),
                at_ms,
            }),
        }
    }

    #[test]
    fn one_failure_fails_the_default_guard_and_names_the_first_instance() {
        let mut set: Vec<Served> = (0..9)
            .map(|i| served(&format!("pod-{i}"), Some(("applied", 7, 1, None))))
            .collect();
        set.push(served("pod-9", Some(("failed", 7, 30, Some("later")))));
        set.push(served(
            "pod-3b",
            Some((
                "failed",
                7,
                20,
                Some("nginx: [emerg] unknown directive\nmore"),
            )),
        ));
        set.push(served("pod-x", Some(("failed", 7, 25, None))));
        let r = judge_reports(&defaults(), 7, &set);
        assert_eq!(r.status, GuardStatus::Failing);
        assert_eq!(r.value, Some(3.0));
        assert_eq!(
            r.message,
            r#"reports guard: 3 of 12 instances failed to apply v7 (limit 0); pod-3b: "nginx: [emerg] unknown directive""#
        );
    }

    #[test]
    fn an_instance_message_with_quotes_is_quoted_as_it_is_not_escaped() {
        let set = [served(
            "pod-1",
            Some(("failed", 7, 1, Some(r#"unknown directive "gzip_vary""#))),
        )];
        let r = judge_reports(&defaults(), 7, &set);
        assert!(
            r.message
                .ends_with(r#"pod-1: "unknown directive "gzip_vary"""#),
            "{}",
            r.message
        );
        assert!(!r.message.contains('\\'), "{}", r.message);
    }

    #[test]
    fn reports_for_other_versions_count_for_nothing() {
        let set = [
            served("a", Some(("failed", 6, 1, None))),
            served("b", Some(("applied", 6, 1, None))),
        ];
        let r = judge_reports(&defaults(), 7, &set);
        assert_eq!(r.status, GuardStatus::NoData);
        assert_eq!(
            r.message,
            "reports guard: waiting for reports: 0 of 2 instances applied v7, 100 % needed"
        );
    }

    #[test]
    fn too_few_instances_is_no_data() {
        let r = judge_reports(
            &reports(0, 0.0, 1.0, 3),
            2,
            &[served("a", Some(("applied", 2, 1, None)))],
        );
        assert_eq!(r.status, GuardStatus::NoData);
        assert_eq!(
            r.message,
            "reports guard: waiting for instances: 1 served v2 so far, 3 needed"
        );
        let r = judge_reports(&defaults(), 2, &[]);
        assert_eq!(r.status, GuardStatus::NoData);
    }

    #[test]
    fn the_ratio_limit_fails_with_percentages() {
        let set: Vec<Served> = (0..10)
            .map(|i| {
                served(
                    &format!("p{i}"),
                    Some((if i < 2 { "failed" } else { "applied" }, 1, i, None)),
                )
            })
            .collect();
        let r = judge_reports(&reports(5, 0.1, 1.0, 1), 1, &set);
        assert_eq!(r.status, GuardStatus::Failing);
        assert_eq!(
            r.message,
            "reports guard: 2 of 10 instances failed to apply v1 (20 %, limit 10 %); p0"
        );
        assert_eq!(
            judge_reports(&reports(5, 0.2, 0.5, 1), 1, &set).status,
            GuardStatus::Passing
        );
    }

    #[test]
    fn all_applied_passes() {
        let set = [
            served("a", Some(("applied", 3, 1, None))),
            served("b", Some(("applied", 3, 2, None))),
        ];
        let r = judge_reports(&defaults(), 3, &set);
        assert_eq!(r.status, GuardStatus::Passing);
        assert_eq!(r.message, "reports guard: 2 of 2 instances applied v3");
        assert_eq!(r.applied, Some(2), "the evidence a promotion needs");
    }

    proptest! {
        /// The rule in docs/plans.md#the-reports-guard, stated independently of the implementation's order.
        #[test]
        fn reports_follow_the_rule(
            states in proptest::collection::vec(0u8..4, 0..40),
            max_failed in 0u32..5,
            max_failed_ratio in 0.0f64..=1.0,
            min_applied_ratio in 0.0f64..=1.0,
            min_instances in 0u32..6,
        ) {
            let set: Vec<Served> = states.iter().enumerate().map(|(i, s)| {
                let report = match s { 0 => None, 1 => Some(("applied", 4, i as i64, None)),
                    2 => Some(("failed", 4, i as i64, None)), _ => Some(("applied", 3, i as i64, None)) };
                served(&format!("c{i}"), report)
            }).collect();
            let guard = reports(max_failed, max_failed_ratio, min_applied_ratio, min_instances);
            let served_n = set.len() as f64;
            let failed = states.iter().filter(|s| **s == 2).count() as f64;
            let applied = states.iter().filter(|s| **s == 1).count() as f64;
            let expected = if failed > f64::from(max_failed) || (served_n > 0.0 && failed / served_n > max_failed_ratio) {
                GuardStatus::Failing
            } else if served_n < f64::from(min_instances)
                || (served_n > 0.0 && applied / served_n < min_applied_ratio && failed == 0.0)
                || (served_n == 0.0 && min_applied_ratio > 0.0) {
                GuardStatus::NoData
            } else {
                GuardStatus::Passing
            };
            prop_assert_eq!(judge_reports(&guard, 4, &set).status, expected);
        }
    }

    #[test]
    fn prometheus_answers_are_read() {
        let vector = |result: Value| json!({"status": "success", "data": {"resultType": "vector", "result": result}});
        assert_eq!(
            read_prometheus(&vector(json!([{"metric": {}, "value": [1.5, "0.25"]}]))),
            Sample::Value(0.25)
        );
        assert_eq!(read_prometheus(&vector(json!([]))), Sample::Empty);
        assert_eq!(
            read_prometheus(&vector(json!([{"value": [1, "NaN"]}]))),
            Sample::Empty
        );
        assert_eq!(
            read_prometheus(&vector(json!([{"value": [1, "+Inf"]}]))),
            Sample::Value(f64::INFINITY)
        );
        assert!(matches!(
            read_prometheus(&vector(json!([{"value": [1, "1"]}, {"value": [1, "2"]}]))),
            Sample::Error(e) if e.contains("returned 2 samples")
        ));
        assert_eq!(
            read_prometheus(
                &json!({"status": "success", "data": {"resultType": "scalar", "result": [1, "3"]}})
            ),
            Sample::Value(3.0)
        );
        assert!(matches!(
            read_prometheus(&json!({"status": "success", "data": {"resultType": "matrix", "result": []}})),
            Sample::Error(e) if e.contains("matrix")
        ));
        assert!(matches!(
            read_prometheus(&json!({"status": "error", "errorType": "bad_data", "error": "parse error at char 3"})),
            Sample::Error(e) if e.contains("parse error at char 3")
        ));
    }

    #[test]
    fn queries_get_the_lane_substituted() {
        let q = substitute(
            r#"sum(rate(errors{ns="{{namespace}}",env="{{env}}",key="{{key}}",lane="{{lane}}",v="{{version}}"}[1m]))"#,
            &[
                ("namespace", "shop"),
                ("env", "prod"),
                ("key", "app.yaml"),
                ("lane", "3"),
                ("version", "7"),
            ],
        );
        assert_eq!(
            q,
            r#"sum(rate(errors{ns="shop",env="prod",key="app.yaml",lane="3",v="7"}[1m]))"#
        );
    }

    fn prometheus(failures: u32, no_data: EmptyResult) -> PrometheusGuard {
        PrometheusGuard {
            url: "http://127.0.0.1:9090".into(),
            query: "q".into(),
            min: Some(0.0),
            max: Some(0.05),
            interval_secs: 1,
            failures,
            no_data,
        }
    }

    #[test]
    fn prometheus_fails_only_after_consecutive_bad_values() {
        let g = prometheus(2, EmptyResult::Wait);
        let first = judge_prometheus(&g, 0, &Sample::Value(0.07));
        assert_eq!(first.status, GuardStatus::NoData);
        assert!(first.is_suspect());
        assert_eq!(
            first.message,
            "prometheus guard: 0.07 is above max 0.05 (1 of 2 in a row before it fails)"
        );
        let second = judge_prometheus(&g, first.streak, &Sample::Error("timed out".into()));
        assert_eq!(second.status, GuardStatus::Failing);
        assert_eq!(
            second.message,
            "prometheus guard: timed out (2 in a row, limit 2)"
        );
        let good = judge_prometheus(&g, first.streak, &Sample::Value(0.01));
        assert_eq!((good.status, good.streak), (GuardStatus::Passing, 0));
        // An empty result neither ends nor extends a streak.
        let empty = judge_prometheus(&g, 1, &Sample::Empty);
        assert_eq!((empty.status, empty.streak), (GuardStatus::NoData, 1));
        assert!(empty.is_suspect());
        let low = judge_prometheus(&prometheus(1, EmptyResult::Wait), 0, &Sample::Value(-1.0));
        assert_eq!(low.status, GuardStatus::Failing);
        assert!(low.message.contains("-1 is below min 0"), "{}", low.message);
    }

    #[test]
    fn prometheus_empty_results_follow_the_guards_no_data() {
        let r = |p| judge_prometheus(&prometheus(1, p), 0, &Sample::Empty).status;
        assert_eq!(r(EmptyResult::Wait), GuardStatus::NoData);
        assert_eq!(r(EmptyResult::Pass), GuardStatus::Passing);
        assert_eq!(r(EmptyResult::Fail), GuardStatus::Failing);
    }

    #[test]
    fn a_skipped_probe_is_no_data_and_keeps_the_streak() {
        let fresh = skipped(GuardKind::Webhook, 3, 0, 64);
        assert_eq!((fresh.status, fresh.streak), (GuardStatus::NoData, 0));
        assert_eq!(
            fresh.message,
            "webhook guard: not probed this time: 64 probes were running on the server, the most it runs at once"
        );
        assert!(!fresh.is_suspect());
        let suspect = skipped(GuardKind::Prometheus, 3, 2, 64);
        assert_eq!((suspect.status, suspect.streak), (GuardStatus::NoData, 2));
        assert!(suspect.is_suspect());
        assert!(suspect
            .message
            .ends_with("(2 of 3 in a row before it fails)"));
    }

    #[test]
    fn webhooks_pass_on_2xx_wait_on_425_and_count_the_rest() {
        let g = WebhookGuard {
            url: "http://127.0.0.1:1".into(),
            interval_secs: 1,
            failures: 2,
            timeout_secs: 3,
            quote_body: true,
        };
        assert_eq!(
            judge_webhook(&g, 1, &HookAnswer::Status(204)).status,
            GuardStatus::Passing
        );
        assert_eq!(
            judge_webhook(&g, 0, &HookAnswer::Status(425)).status,
            GuardStatus::NoData
        );
        assert!(!judge_webhook(&g, 0, &HookAnswer::Status(425)).is_suspect());
        let once = judge_webhook(&g, 0, &HookAnswer::Status(500));
        assert_eq!((once.status, once.streak), (GuardStatus::NoData, 1));
        let twice = judge_webhook(&g, 1, &HookAnswer::TimedOut);
        assert_eq!(twice.status, GuardStatus::Failing);
        assert_eq!(
            twice.message,
            "webhook guard: no answer within 3 s (2 in a row, limit 2)"
        );
        let waiting = judge_webhook(&g, 1, &HookAnswer::Status(425));
        assert_eq!((waiting.status, waiting.streak), (GuardStatus::NoData, 1));
        let said = judge_webhook(
            &g,
            0,
            &HookAnswer::Said(503, "  database down\nstack trace".into()),
        );
        assert_eq!(
            (said.status, said.value),
            (GuardStatus::NoData, Some(503.0))
        );
        assert_eq!(
            said.message,
            r#"webhook guard: answered 503: "database down" (1 of 2 in a row before it fails)"#
        );
        let blank = judge_webhook(&g, 0, &HookAnswer::Said(500, "\n".into()));
        assert!(
            blank.message.starts_with("webhook guard: answered 500 ("),
            "{}",
            blank.message
        );
        assert_eq!(
            judge_webhook(&g, 1, &HookAnswer::Said(202, "queued".into())).status,
            GuardStatus::Passing
        );
        assert_eq!(
            judge_webhook(&g, 0, &HookAnswer::Said(425, "warming up".into())).status,
            GuardStatus::NoData
        );
    }
}
