//! Rollout plans (docs/plans.md): what a plan is, how a request's plan is
//! checked, how each guard is judged ([`guard`]) and what the scheduler does next ([`decide`]).
//!
//! Pure like the rest of the domain: the scheduler reads the clock, the database and the
//! network, and hands the facts to these functions, so the exact semantics are unit-tested here.

pub mod baseline;
pub mod decide;
pub mod guard;
mod parse;
pub mod probe;

use serde::{Deserialize, Serialize};

use crate::percentage::Percentage;
use crate::words::words;
pub use parse::{parse_guard, parse_plan};

/// At most this many steps in a plan.
pub const MAX_STEPS: usize = 20;
/// At most this many guards in a plan.
pub const MAX_GUARDS: usize = 10;
/// The longest hold of one step: a week.
pub const MAX_HOLD_SECS: u32 = 604_800;
/// Bounds on what a client may send inside a guard.
pub const MAX_URL_LEN: usize = 2048;
pub const MAX_QUERY_LEN: usize = 4096;
pub const MAX_INTERVAL_SECS: u32 = 86_400;
/// The shortest `interval_secs` of a new plan's polled guard, by default (a server may be started
/// with another: `ServeConfig::min_probe_interval_secs`).
pub const MIN_INTERVAL_SECS: u32 = 5;
/// At most this many polled guards (`prometheus`, `webhook`) in a new plan.
pub const MAX_POLLED_GUARDS: usize = 5;
pub const MAX_FAILURES: u32 = 100;
pub const MAX_TIMEOUT_SECS: u32 = 60;

/// A checked rollout plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub guards: Vec<Guard>,
    pub on_failure: OnFailure,
    pub no_data: NoDataPolicy,
    pub finish: Finish,
}

/// One step: the lane's percentage and how long it is held at least.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub percentage: Percentage,
    pub hold_secs: u32,
}

words! {
    /// What a failing guard does.
    #[derive(Default)]
    pub enum OnFailure {
        #[default]
        Abort = "abort",
        Pause = "pause",
    }
}

words! {
    /// What happens when a hold is over and some guard still has no data.
    #[derive(Default)]
    pub enum NoDataPolicy {
        #[default]
        Wait = "wait",
        Advance = "advance",
        Abort = "abort",
    }
}

words! {
    /// What happens after the last step.
    #[derive(Default)]
    pub enum Finish {
        #[default]
        Hold = "hold",
        Promote = "promote",
    }
}

words! {
    /// How a Prometheus guard treats an empty result.
    #[derive(Default)]
    pub enum EmptyResult {
        #[default]
        Wait = "wait",
        Pass = "pass",
        Fail = "fail",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Guard {
    Reports(ReportsGuard),
    Prometheus(PrometheusGuard),
    Webhook(WebhookGuard),
    Compare(CompareGuard),
}

/// Judges the lane's served set by the instances' own reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportsGuard {
    pub max_failed: u32,
    pub max_failed_ratio: f64,
    pub min_applied_ratio: f64,
    pub min_instances: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrometheusGuard {
    pub url: String,
    pub query: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub interval_secs: u32,
    pub failures: u32,
    pub no_data: EmptyResult,
}

/// Judges the lane against stable on one metric per instance (docs/plans.md, "The compare
/// guard"): the query runs once for the lane's served set and once for the stable instances of
/// the lane's selector, and [`crate::compare::compare`] decides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareGuard {
    pub url: String,
    /// PromQL with `{{instances}}`: an anchored regex of one population's client ids.
    pub query: String,
    pub direction: crate::compare::Direction,
    pub max_ratio: f64,
    pub max_delta: Option<f64>,
    pub min_instances_per_side: u32,
    pub interval_secs: u32,
    pub failures: u32,
    pub confidence: f64,
    /// The label of each sample that names its instance (its client id).
    pub label: String,
    /// What the query measures, in the guard's sentence ("error rate"); empty: nothing said.
    #[serde(default)]
    pub metric: String,
}

impl CompareGuard {
    /// The limits [`crate::compare::compare`] judges by.
    pub fn limits(&self) -> crate::compare::Limits {
        crate::compare::Limits {
            direction: self.direction,
            max_ratio: self.max_ratio,
            max_delta: self.max_delta,
            min_instances_per_side: self.min_instances_per_side as usize,
            confidence: self.confidence,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookGuard {
    pub url: String,
    pub interval_secs: u32,
    pub failures: u32,
    pub timeout_secs: u32,
    /// Quote the first line of a failing answer's body in the guard's message (and so in the
    /// plan's view, its reason and the audit); else only the status is kept.
    #[serde(default)]
    pub quote_body: bool,
}

words! {
    /// A guard's kind: its `kind` in a plan, and in its readings and evaluations.
    pub enum GuardKind {
        Reports = "reports",
        Prometheus = "prometheus",
        Webhook = "webhook",
        Compare = "compare",
    }
}

impl Guard {
    pub fn kind(&self) -> GuardKind {
        match self {
            Guard::Reports(_) => GuardKind::Reports,
            Guard::Prometheus(_) => GuardKind::Prometheus,
            Guard::Webhook(_) => GuardKind::Webhook,
            Guard::Compare(_) => GuardKind::Compare,
        }
    }

    /// The URL a polled guard fetches; `None` for `reports`.
    pub fn url(&self) -> Option<&str> {
        match self {
            Guard::Reports(_) => None,
            Guard::Prometheus(g) => Some(&g.url),
            Guard::Webhook(g) => Some(&g.url),
            Guard::Compare(g) => Some(&g.url),
        }
    }

    /// The guard as views, the audit and messages show it: its URL with [`redact_url`].
    pub fn redacted(&self) -> Guard {
        let mut guard = self.clone();
        match &mut guard {
            Guard::Reports(_) => {}
            Guard::Prometheus(g) => g.url = redact_url(&g.url),
            Guard::Webhook(g) => g.url = redact_url(&g.url),
            Guard::Compare(g) => g.url = redact_url(&g.url),
        }
        guard
    }

    /// How often a polled guard is evaluated; `None` for `reports`, which follows events.
    pub fn interval_secs(&self) -> Option<u32> {
        match self {
            Guard::Reports(_) => None,
            Guard::Prometheus(g) => Some(g.interval_secs),
            Guard::Webhook(g) => Some(g.interval_secs),
            Guard::Compare(g) => Some(g.interval_secs),
        }
    }
}

impl Plan {
    /// The plan as views, the audit and messages show it: guard URLs without credentials
    /// ([`redact_url`]). The stored plan keeps them: its probes need them.
    pub fn redacted(&self) -> Plan {
        Plan {
            guards: self.guards.iter().map(Guard::redacted).collect(),
            ..self.clone()
        }
    }

    /// The guards that can give a promotion its evidence: `reports` guards with
    /// `min_instances` of at least 1, with their index in `guards`.
    pub fn evidence_guards(&self) -> impl Iterator<Item = (usize, &ReportsGuard)> {
        self.guards.iter().enumerate().filter_map(|(i, g)| match g {
            Guard::Reports(r) if r.min_instances >= 1 => Some((i, r)),
            _ => None,
        })
    }
}

/// A plan the client sent, refused: `field` is its path inside the request
/// (`plan.steps[1].percentage`), `message` a sentence saying what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

type Checked<T> = Result<T, PlanError>;

fn refuse<T>(field: impl Into<String>, message: impl Into<String>) -> Checked<T> {
    Err(PlanError {
        field: field.into(),
        message: message.into(),
    })
}

/// A guard's URL (also the "test query now" one): absolute `http://` or `https://` with a host,
/// no spaces or control characters, at most [`MAX_URL_LEN`] bytes. The error says what is wrong.
pub fn check_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL_LEN {
        return Err(format!("a url has at most {MAX_URL_LEN} characters"));
    }
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    let Some(rest) = rest else {
        return Err(format!(
            "{:?} is not an http:// or https:// URL",
            redact_url(url)
        ));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err(format!("{:?} has no host", redact_url(url)));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{:?} contains spaces or control characters",
            redact_url(url)
        ));
    }
    Ok(())
}

/// What stands for a hidden part of a URL.
pub const HIDDEN: &str = "***";

/// A URL as it may be shown to anyone who may see the plan: its userinfo (`user:pass@`) and the
/// values of its query parameters (`?token=***`, names kept) and fragment replaced by
/// [`HIDDEN`]. Secrets belong there, not in the path, which is shown as it is.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let mut out = String::with_capacity(url.len());
    out.push_str(scheme);
    match authority.rfind('@') {
        Some(at) => {
            out.push_str(HIDDEN);
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let (tail, fragment) = match tail.split_once('#') {
        Some((tail, fragment)) => (tail, Some(fragment)),
        None => (tail, None),
    };
    let (path, query) = match tail.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (tail, None),
    };
    out.push_str(path);
    if let Some(query) = query {
        out.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) => format!("{name}={HIDDEN}"),
                None if pair.is_empty() => String::new(),
                None => HIDDEN.to_string(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        if !fragment.is_empty() {
            out.push_str(HIDDEN);
        }
    }
    out
}

/// Whether `url` carries a part [`redact_url`] hid: a URL copied from a view, not a real one.
fn shows_hidden(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let in_userinfo = authority
        .rsplit_once('@')
        .is_some_and(|(info, _)| info.split(':').any(|part| part == HIDDEN));
    let query = tail
        .split('#')
        .next()
        .and_then(|t| t.split_once('?'))
        .map_or("", |(_, query)| query);
    in_userinfo
        || query
            .split('&')
            .any(|pair| pair.split_once('=').map_or(pair, |(_, value)| value) == HIDDEN)
}

/// No evidence, no promotion: a plan that finishes by promoting needs a `reports` guard with
/// `min_instances` of at least 1, so that it promotes only after instances applied the version
/// (the decision itself: [`decide::evidence`]). The sentence says what to add.
pub fn check_evidence(plan: &Plan, at: &str) -> Checked<()> {
    if plan.finish != Finish::Promote || plan.evidence_guards().next().is_some() {
        return Ok(());
    }
    let zero = plan
        .guards
        .iter()
        .any(|g| matches!(g, Guard::Reports(r) if r.min_instances == 0));
    let mut message = "a plan that finishes by promoting needs a reports guard with \
                       min_instances of at least 1"
        .to_string();
    if zero {
        message.push_str(" (min_instances 0 lets a step pass without any instance)");
    }
    message.push_str(": add {\"kind\":\"reports\"} to guards, or finish with \"hold\"");
    refuse(format!("{at}.guards"), message)
}

/// What a server asks of a new plan beyond its shape (a stored plan is read back without it):
/// evidence before a promotion ([`check_evidence`]), at most [`MAX_POLLED_GUARDS`] polled
/// guards, each polled at most every `min_interval_secs`, and no guard URL with a part a view
/// hid (`***`).
pub fn check_new_plan(plan: &Plan, at: &str, min_interval_secs: u32) -> Checked<()> {
    check_evidence(plan, at)?;
    let polled = plan.guards.iter().filter(|g| g.url().is_some()).count();
    if polled > MAX_POLLED_GUARDS {
        return refuse(
            format!("{at}.guards"),
            format!(
                "a plan has at most {MAX_POLLED_GUARDS} prometheus and webhook guards, not {polled}"
            ),
        );
    }
    for (i, guard) in plan.guards.iter().enumerate() {
        if guard.interval_secs().is_some_and(|s| s < min_interval_secs) {
            return refuse(
                format!("{at}.guards[{i}].interval_secs"),
                format!(
                    "a {} guard is polled at most every {min_interval_secs} s on this server; \
                     use an interval_secs of {min_interval_secs} or more",
                    guard.kind()
                ),
            );
        }
        if guard.url().is_some_and(shows_hidden) {
            return refuse(
                format!("{at}.guards[{i}].url"),
                format!(
                    "the url's credentials or query values show as {HIDDEN}, as views hide them; \
                     type the real ones (or start from the template by its name)"
                ),
            );
        }
    }
    Ok(())
}

/// The plans every new database ships as templates (docs/plans.md#templates).
pub fn builtin_templates() -> Vec<(&'static str, Plan)> {
    let step = |percent: u32, hold_secs| Step {
        percentage: Percentage::from_bp(percent * 100).expect("at most 100 %"),
        hold_secs,
    };
    // Every step waits for the lane's instances to apply the version (and a promotion needs it).
    let reports = || {
        vec![Guard::Reports(ReportsGuard {
            max_failed: 0,
            max_failed_ratio: 0.0,
            min_applied_ratio: 1.0,
            min_instances: 1,
        })]
    };
    vec![
        (
            "canary",
            Plan {
                steps: vec![step(5, 600), step(25, 600), step(100, 600)],
                guards: reports(),
                on_failure: OnFailure::Abort,
                no_data: NoDataPolicy::Wait,
                finish: Finish::Promote,
            },
        ),
        (
            "linear",
            Plan {
                steps: (1..=5).map(|i| step(20 * i, 360)).collect(),
                guards: reports(),
                on_failure: OnFailure::Abort,
                no_data: NoDataPolicy::Wait,
                finish: Finish::Hold,
            },
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn error(plan: Value) -> (String, String) {
        let e = parse_plan(&plan, "plan").unwrap_err();
        (e.field, e.message)
    }

    #[test]
    fn a_minimal_plan_gets_every_default() {
        let plan = parse_plan(
            &json!({"steps": [{"percentage": 5}, {"percentage": 100, "hold_secs": 60}],
                    "guards": [{"kind": "reports"}]}),
            "plan",
        )
        .unwrap();
        assert_eq!(
            plan,
            Plan {
                steps: vec![
                    Step {
                        percentage: Percentage::from_bp(500).unwrap(),
                        hold_secs: 0
                    },
                    Step {
                        percentage: Percentage::ALL,
                        hold_secs: 60
                    }
                ],
                guards: vec![Guard::Reports(ReportsGuard {
                    max_failed: 0,
                    max_failed_ratio: 0.0,
                    min_applied_ratio: 1.0,
                    min_instances: 1
                })],
                on_failure: OnFailure::Abort,
                no_data: NoDataPolicy::Wait,
                finish: Finish::Hold,
            }
        );
    }

    #[test]
    fn polled_guards_get_their_defaults() {
        let plan = parse_plan(
            &json!({"steps": [{"percentage": 10}], "finish": "promote", "on_failure": "pause",
                    "no_data": "advance", "guards": [
                {"kind": "prometheus", "url": "http://127.0.0.1:9090", "query": "up", "max": 0.5},
                {"kind": "webhook", "url": "https://hooks.example/check"}]}),
            "plan",
        )
        .unwrap();
        assert_eq!(plan.finish, Finish::Promote);
        assert_eq!(plan.on_failure, OnFailure::Pause);
        assert_eq!(plan.no_data, NoDataPolicy::Advance);
        assert_eq!(
            plan.guards,
            vec![
                Guard::Prometheus(PrometheusGuard {
                    url: "http://127.0.0.1:9090".into(),
                    query: "up".into(),
                    min: None,
                    max: Some(0.5),
                    interval_secs: 30,
                    failures: 2,
                    no_data: EmptyResult::Wait,
                }),
                Guard::Webhook(WebhookGuard {
                    url: "https://hooks.example/check".into(),
                    interval_secs: 30,
                    failures: 2,
                    timeout_secs: 5,
                    quote_body: false,
                })
            ]
        );
    }

    #[test]
    fn bad_plans_name_the_field() {
        let steps = |s: Value| json!({ "steps": s });
        let cases = [
            (json!([]), "plan", "a plan (a JSON object)"),
            (json!({}), "plan.steps", "required"),
            (steps(json!([])), "plan.steps", "1 to 20 steps"),
            (
                steps(json!((0..21)
                    .map(|i| json!({"percentage": i + 1}))
                    .collect::<Vec<_>>())),
                "plan.steps",
                "not 21",
            ),
            (
                steps(json!([{"percentage": 10}, {"percentage": 10}])),
                "plan.steps[1].percentage",
                "must increase",
            ),
            (
                steps(json!([{"percentage": 50}, {"percentage": 25}])),
                "plan.steps[1].percentage",
                "25 % follows 50 %",
            ),
            (
                steps(json!([{"percentage": 0}])),
                "plan.steps[0].percentage",
                "at least 0.01",
            ),
            (
                steps(json!([{"percentage": 101}])),
                "plan.steps[0].percentage",
                "out of range",
            ),
            (
                steps(json!([{"percentage": 1.234}])),
                "plan.steps[0].percentage",
                "two decimals",
            ),
            (
                steps(json!([{"hold_secs": 5}])),
                "plan.steps[0].percentage",
                "needs a percentage",
            ),
            (
                steps(json!([{"percentage": 5, "hold_secs": 604_801}])),
                "plan.steps[0].hold_secs",
                "0 to 604800",
            ),
            (
                steps(json!([{"percentage": 5, "hold_secs": -1}])),
                "plan.steps[0].hold_secs",
                "0 to 604800",
            ),
            (
                steps(json!([{"percentage": 5, "hold": 60}])),
                "plan.steps[0].hold",
                "unknown field",
            ),
            (
                json!({"steps": [{"percentage": 5}], "finish": "done"}),
                "plan.finish",
                "hold, promote",
            ),
        ];
        expect_refusals(cases);
    }

    #[test]
    fn bad_guards_name_the_field() {
        let cases = [
            (
                json!({"steps": [{"percentage": 5}], "guards": [{"kind": "latency"}]}),
                "plan.guards[0].kind",
                "unknown guard kind \"latency\"",
            ),
            (
                json!({"steps": [{"percentage": 5}], "guards": [{}]}),
                "plan.guards[0].kind",
                "needs a kind",
            ),
            (
                json!({"steps": [{"percentage": 5}], "guards": [{"kind": "reports", "max_failed_ratio": 2}]}),
                "plan.guards[0].max_failed_ratio",
                "not a ratio",
            ),
            (
                json!({"steps": [{"percentage": 5}], "guards": [{"kind": "reports", "maxfailed": 2}]}),
                "plan.guards[0].maxfailed",
                "unknown field",
            ),
            (
                json!({"steps": [{"percentage": 5}], "guards": [{"kind": "webhook", "url": "ftp://x"}]}),
                "plan.guards[0].url",
                "not an http",
            ),
            (
                json!({"steps": [{"percentage": 5}], "guards": [{"kind": "webhook", "url": "http:///path"}]}),
                "plan.guards[0].url",
                "no host",
            ),
            (
                json!({"steps": [{"percentage": 5}], "guards": [{"kind": "webhook", "url": "http://a b"}]}),
                "plan.guards[0].url",
                "spaces",
            ),
            (
                json!({"steps": [{"percentage": 5}], "guards": [{"kind": "webhook", "url": "http://h", "timeout_secs": 0}]}),
                "plan.guards[0].timeout_secs",
                "1 to 60",
            ),
            (
                json!({"steps": [{"percentage": 5}], "guards": [{"kind": "prometheus", "url": "http://h", "query": "up", "min": 2, "max": 1}]}),
                "plan.guards[0].min",
                "above max",
            ),
            (
                json!({"steps": [{"percentage": 5}], "guards": [{"kind": "prometheus", "url": "http://h", "query": "up"}]}),
                "plan.guards[0].max",
                "max, min or both",
            ),
            (
                json!({"steps": [{"percentage": 5}], "guards": [{"kind": "prometheus", "url": "http://h", "query": " ", "max": 1}]}),
                "plan.guards[0].query",
                "PromQL",
            ),
            (
                json!({"steps": [{"percentage": 5}], "guards": [{"kind": "prometheus", "url": "http://h", "query": "up", "max": 1, "failures": 0}]}),
                "plan.guards[0].failures",
                "1 to 100",
            ),
            (
                json!({"steps": [{"percentage": 5}], "guards": [{"kind": "prometheus", "url": "http://h", "query": "up", "max": 1, "interval_secs": 0}]}),
                "plan.guards[0].interval_secs",
                "1 to 86400",
            ),
            (
                json!({"steps": [{"percentage": 5}], "guards": (0..11).map(|_| json!({"kind": "reports"})).collect::<Vec<_>>()}),
                "plan.guards",
                "at most 10",
            ),
        ];
        expect_refusals(cases);
    }

    /// Each plan is refused naming the field, in a message with the words.
    fn expect_refusals<const N: usize>(cases: [(Value, &str, &str); N]) {
        for (plan, field, words) in cases {
            let (got_field, message) = error(plan.clone());
            assert_eq!(got_field, field, "{plan}: {message}");
            assert!(
                message.contains(words),
                "{plan}: {message:?} lacks {words:?}"
            );
        }
    }

    #[test]
    fn the_builtin_templates_are_valid_plans() {
        for (name, plan) in builtin_templates() {
            let json = serde_json::to_value(&plan).unwrap();
            let steps: Vec<Value> = plan
                .steps
                .iter()
                .map(|s| json!({"percentage": s.percentage, "hold_secs": s.hold_secs}))
                .collect();
            let reparsed = parse_plan(
                &json!({"steps": steps, "finish": json["finish"], "on_failure": json["on_failure"],
                        "no_data": json["no_data"], "guards": [{"kind": "reports"}]}),
                "plan",
            )
            .unwrap();
            assert_eq!(reparsed, plan, "{name}: a default reports guard");
            assert_eq!(
                check_new_plan(&plan, "plan", MIN_INTERVAL_SECS),
                Ok(()),
                "{name}"
            );
        }
        let canary = &builtin_templates()[0].1;
        assert_eq!(canary.finish, Finish::Promote);
        assert_eq!(
            canary
                .steps
                .iter()
                .map(|s| s.percentage.bp())
                .collect::<Vec<_>>(),
            [500, 2500, 10_000]
        );
    }

    #[test]
    fn urls_are_shown_without_credentials_or_query_values() {
        for (url, shown) in [
            ("https://prom.example:9090/x", "https://prom.example:9090/x"),
            (
                "https://user:s3cret@hooks.example/check",
                "https://***@hooks.example/check",
            ),
            ("http://tok@h", "http://***@h"),
            (
                "https://h/p?token=abc&tenant=a#frag",
                "https://h/p?token=***&tenant=***#***",
            ),
            ("https://h/?bare&x=", "https://h/?***&x=***"),
            ("http://a:b@c@h/?q=1", "http://***@h/?q=***"),
            ("https://h/p#", "https://h/p#"),
            ("https://h?t=1", "https://h?t=***"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
            assert!(!redact_url(url).contains("s3cret"));
            // What a view shows is recognised when it comes back in a request.
            assert_eq!(shows_hidden(shown), shown != url, "{shown}");
        }
        assert!(!shows_hidden("https://h/***/x?a=b"));
    }

    #[test]
    fn refusals_of_urls_hide_their_credentials() {
        let (field, message) = error(json!({"steps": [{"percentage": 5}], "guards": [
            {"kind": "webhook", "url": "ftp://u:s3cret@h/?token=t0k"}]}));
        assert_eq!(field, "plan.guards[0].url");
        assert!(
            !message.contains("s3cret") && !message.contains("t0k"),
            "{message}"
        );
        assert!(message.contains("ftp://***@h/?token=***"), "{message}");
    }

    #[test]
    fn redacted_plans_hide_every_guard_url() {
        let plan = parse_plan(
            &json!({"steps": [{"percentage": 5}], "guards": [{"kind": "reports"},
                {"kind": "prometheus", "url": "https://u:p@prom/?k=v", "query": "up", "max": 1},
                {"kind": "webhook", "url": "https://hooks/?token=t", "quote_body": true}]}),
            "plan",
        )
        .unwrap();
        let shown = plan.redacted();
        assert_eq!(shown.guards[0], plan.guards[0]);
        assert_eq!(shown.guards[1].url(), Some("https://***@prom/?k=***"));
        assert_eq!(shown.guards[2].url(), Some("https://hooks/?token=***"));
        assert!(matches!(&shown.guards[2], Guard::Webhook(g) if g.quote_body));
        assert_eq!(shown.steps, plan.steps);
        assert!(!serde_json::to_string(&shown).unwrap().contains(":p@"));
    }

    #[test]
    fn webhooks_quote_answers_only_when_asked() {
        let plan = |extra: Value| {
            let mut guard = json!({"kind": "webhook", "url": "http://h"});
            guard
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            parse_plan(
                &json!({"steps": [{"percentage": 5}], "guards": [guard]}),
                "plan",
            )
        };
        let quotes = |p: Plan| matches!(&p.guards[0], Guard::Webhook(g) if g.quote_body);
        assert!(!quotes(plan(json!({})).unwrap()));
        assert!(quotes(plan(json!({"quote_body": true})).unwrap()));
        let e = plan(json!({"quote_body": "yes"})).unwrap_err();
        assert_eq!(e.field, "plan.guards[0].quote_body");
        // A plan stored before the field existed reads back with it off.
        let old: WebhookGuard = serde_json::from_value(
            json!({"url": "http://h", "interval_secs": 30, "failures": 2, "timeout_secs": 5}),
        )
        .unwrap();
        assert!(!old.quote_body);
    }

    #[test]
    fn new_plans_respect_the_servers_probe_limits() {
        let hook = |interval: u32| json!({"kind": "webhook", "url": "http://h", "interval_secs": interval});
        let check = |guards: Vec<Value>, min: u32| {
            let plan = parse_plan(
                &json!({"steps": [{"percentage": 5}], "guards": guards}),
                "plan",
            )
            .unwrap();
            check_new_plan(&plan, "plan", min)
        };
        assert!(check(vec![hook(5); MAX_POLLED_GUARDS], MIN_INTERVAL_SECS).is_ok());
        let mut six = vec![hook(5); MAX_POLLED_GUARDS + 1];
        let e = check(six.clone(), MIN_INTERVAL_SECS).unwrap_err();
        assert_eq!(e.field, "plan.guards");
        assert!(e
            .message
            .contains("at most 5 prometheus and webhook guards, not 6"));
        // Reports guards do not count.
        six.pop();
        six.push(json!({"kind": "reports"}));
        assert!(check(six, MIN_INTERVAL_SECS).is_ok());
        let e = check(vec![hook(30), hook(4)], MIN_INTERVAL_SECS).unwrap_err();
        assert_eq!(e.field, "plan.guards[1].interval_secs");
        assert!(e.message.contains("every 5 s"), "{}", e.message);
        assert!(check(vec![hook(1)], 1).is_ok());
        let copied = json!({"kind": "webhook", "url": "https://***@h/?token=***"});
        let e = check(vec![copied], 1).unwrap_err();
        assert_eq!(e.field, "plan.guards[0].url");
    }

    #[test]
    fn a_plan_that_promotes_needs_a_reports_guard_that_counts_instances() {
        let check = |plan: Value| {
            let plan = parse_plan(&plan, "plan").unwrap();
            check_new_plan(&plan, "plan", MIN_INTERVAL_SECS)
        };
        let steps = json!([{"percentage": 5}, {"percentage": 100}]);
        let e = check(json!({"steps": steps, "finish": "promote"})).unwrap_err();
        assert_eq!(e.field, "plan.guards");
        assert_eq!(
            e.message,
            r#"a plan that finishes by promoting needs a reports guard with min_instances of at least 1: add {"kind":"reports"} to guards, or finish with "hold""#
        );
        let hook = json!({"kind": "webhook", "url": "http://h"});
        let e = check(json!({"steps": steps, "finish": "promote", "guards": [hook]})).unwrap_err();
        assert_eq!(e.field, "plan.guards");
        let zero = json!({"kind": "reports", "min_instances": 0});
        let e = check(json!({"steps": steps, "finish": "promote", "guards": [zero, hook]}))
            .unwrap_err();
        assert!(
            e.message.contains("min_instances 0 lets a step pass"),
            "{}",
            e.message
        );
        // Holding needs no evidence; promoting with a counting reports guard is fine.
        assert!(check(json!({"steps": steps, "guards": [zero]})).is_ok());
        assert!(check(json!({"steps": steps})).is_ok());
        let one = json!({"kind": "reports", "min_instances": 1, "min_applied_ratio": 0});
        assert!(
            check(json!({"steps": steps, "finish": "promote", "guards": [zero, hook, one]}))
                .is_ok()
        );
        let plan = parse_plan(
            &json!({"steps": steps, "guards": [zero, hook, one]}),
            "plan",
        )
        .unwrap();
        assert_eq!(
            plan.evidence_guards().map(|(i, _)| i).collect::<Vec<_>>(),
            [2]
        );
    }
}
