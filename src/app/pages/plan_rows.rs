//! The plan editor's rows as typed, turned into a plan and checked by the server's own rules
//! ([`parse_plan`]), with holds read as people write them and guard limits put in words.
//! Pure: unit-tested without a browser.

use crate::app::pages::shared::format_pct;
use crate::domain::plan::decide::human_secs;
use crate::domain::plan::{check_evidence, parse_plan, Guard, Plan, PlanError, MAX_HOLD_SECS};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// A step row or guard card as typed: `kind` is `step`, `reports`, `prometheus`, `webhook` or
/// `compare`.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub key: u32,
    pub kind: &'static str,
    pub fields: BTreeMap<&'static str, String>,
}

/// A serde word (`"abort"`) of a policy enum.
pub fn word(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `plan.steps[1].percentage` → `step 2 percentage`; `plan.guards[0].url` → `guard 1 url`.
pub fn field_words(field: &str) -> String {
    let rest = field.strip_prefix("plan").unwrap_or(field);
    let mut words = Vec::new();
    for part in rest.split('.').filter(|p| !p.is_empty()) {
        match part.split_once('[') {
            Some((name, index)) => {
                let n: usize = index.trim_end_matches(']').parse().unwrap_or(0);
                let name = name.trim_end_matches('s');
                words.push(format!("{name} {}", n + 1));
            }
            None => words.push(part.replace('_', " ")),
        }
    }
    if words.is_empty() {
        "plan".into()
    } else {
        words.join(" ")
    }
}

/// `"10 min"`, `"1 h 30 min"`, `"90 s"`, `"90"` (seconds), `"2d"` → seconds (at most a week).
pub fn parse_hold(text: &str) -> Result<u32, String> {
    let text = text.trim().to_lowercase();
    if text.is_empty() {
        return Ok(0);
    }
    let mut total: u64 = 0;
    let mut rest = text.as_str();
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "{text:?} is not a duration; write it like 30 s, 10 min, 1 h 30 min or 2 d"
            ));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| "that number is too large".to_string())?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let scale = match unit {
            "" | "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            other => {
                return Err(format!(
                    "unknown unit {other:?}; use s, min, h or d (e.g. 10 min)"
                ))
            }
        };
        total = total.saturating_add(n.saturating_mul(scale));
        rest = rest[unit_len..].trim_start_matches([' ', ',']);
    }
    if total > u64::from(MAX_HOLD_SECS) {
        return Err(format!(
            "a hold is at most 7 days ({MAX_HOLD_SECS} s), not {}",
            human_secs(total)
        ));
    }
    Ok(total as u32)
}

/// The plan as JSON from the rows, checked: first the fields the browser reads (numbers,
/// holds), then the whole plan by the server's own rules (its shape, and the evidence a plan
/// that promotes needs: the same sentence as the server's 400, on `plan.guards`).
pub fn check(steps: &[Row], guards: &[Row], words: [String; 3]) -> Result<Plan, Vec<PlanError>> {
    let mut errors = Vec::new();
    let mut refuse = |field: String, message: String| errors.push(PlanError { field, message });
    let step_values: Vec<Value> = steps
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut step = Map::new();
            let at = format!("plan.steps[{i}]");
            let pct = row.fields.get("percentage").map(|s| s.trim()).unwrap_or("");
            match pct.trim_end_matches('%').trim().parse::<f64>() {
                Ok(p) => {
                    step.insert("percentage".into(), json!(p));
                }
                Err(_) if pct.is_empty() => refuse(
                    format!("{at}.percentage"),
                    "every step needs a percentage (0.01 to 100)".into(),
                ),
                Err(_) => refuse(
                    format!("{at}.percentage"),
                    format!("{pct:?} is not a number"),
                ),
            }
            match parse_hold(row.fields.get("hold").map(String::as_str).unwrap_or("")) {
                Ok(secs) => {
                    step.insert("hold_secs".into(), json!(secs));
                }
                Err(e) => refuse(format!("{at}.hold_secs"), e),
            }
            Value::Object(step)
        })
        .collect();
    let guard_values: Vec<Value> = guards
        .iter()
        .enumerate()
        .map(|(i, row)| {
            guard_json(row).unwrap_or_else(|bad| {
                for (name, message) in bad {
                    refuse(format!("plan.guards[{i}].{name}"), message);
                }
                Value::Null
            })
        })
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    let [on_failure, no_data, finish] = words;
    let value = json!({
        "steps": step_values, "guards": guard_values,
        "on_failure": on_failure, "no_data": no_data, "finish": finish,
    });
    let plan = parse_plan(&value, "plan").map_err(|e| vec![e])?;
    check_evidence(&plan, "plan").map_err(|e| vec![e])?;
    Ok(plan)
}

/// A guard's card: its kind and its fields as the editor shows them (an absent value empty).
pub fn guard_fields(guard: &Guard) -> (&'static str, Vec<(&'static str, String)>) {
    let num = |x: f64| x.to_string();
    let opt = |x: Option<f64>| x.map(num).unwrap_or_default();
    match guard {
        Guard::Reports(g) => (
            "reports",
            vec![
                ("max_failed", g.max_failed.to_string()),
                ("max_failed_ratio", num(g.max_failed_ratio)),
                ("min_applied_ratio", num(g.min_applied_ratio)),
                ("min_instances", g.min_instances.to_string()),
            ],
        ),
        Guard::Prometheus(g) => (
            "prometheus",
            vec![
                ("url", g.url.clone()),
                ("query", g.query.clone()),
                ("min", opt(g.min)),
                ("max", opt(g.max)),
                ("interval_secs", g.interval_secs.to_string()),
                ("failures", g.failures.to_string()),
                ("no_data", word(&g.no_data)),
            ],
        ),
        Guard::Webhook(g) => (
            "webhook",
            vec![
                ("url", g.url.clone()),
                ("interval_secs", g.interval_secs.to_string()),
                ("failures", g.failures.to_string()),
                ("timeout_secs", g.timeout_secs.to_string()),
                ("quote_body", g.quote_body.to_string()),
            ],
        ),
        Guard::Compare(g) => (
            "compare",
            vec![
                ("url", g.url.clone()),
                ("query", g.query.clone()),
                ("label", g.label.clone()),
                ("metric", g.metric.clone()),
                ("direction", word(&g.direction)),
                ("max_ratio", num(g.max_ratio)),
                ("max_delta", opt(g.max_delta)),
                (
                    "min_instances_per_side",
                    g.min_instances_per_side.to_string(),
                ),
                ("confidence", num(g.confidence)),
                ("interval_secs", g.interval_secs.to_string()),
                ("failures", g.failures.to_string()),
            ],
        ),
    }
}

/// The fields of a new guard card of `kind`, as first shown: the plan's defaults.
pub fn guard_defaults(kind: &str) -> Vec<(&'static str, String)> {
    // Placeholders where a guard has no default; those fields are shown empty.
    let json = match kind {
        "reports" => json!({"kind": kind}),
        "webhook" => json!({"kind": kind, "url": "http://h"}),
        "prometheus" => json!({"kind": kind, "url": "http://h", "query": "up", "max": 0}),
        _ => json!({"kind": kind, "url": "http://h", "query": "{{instances}}"}),
    };
    let Ok(guard) = crate::domain::plan::parse_guard(&json, "guard") else {
        return Vec::new();
    };
    let (_, mut fields) = guard_fields(&guard);
    for (name, value) in &mut fields {
        if matches!(*name, "url" | "query" | "max") {
            value.clear();
        }
    }
    fields
}

/// A guard card as the guard's JSON: empty fields are left out (the defaults apply); the
/// fields that hold no number where a number belongs are refused, with why.
pub fn guard_json(row: &Row) -> Result<Value, Vec<(&'static str, String)>> {
    let mut guard = Map::new();
    let mut bad = Vec::new();
    guard.insert("kind".into(), json!(row.kind));
    for (name, text) in &row.fields {
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let value = match *name {
            "url" | "query" | "no_data" | "direction" | "label" | "metric" => json!(text),
            "quote_body" => json!(text == "true"),
            _ => match text.parse::<f64>() {
                Ok(x) if x.fract() == 0.0 && (0.0..4e9).contains(&x) => json!(x as u64),
                Ok(x) => json!(x),
                Err(_) => {
                    bad.push((*name, format!("{text:?} is not a number")));
                    continue;
                }
            },
        };
        guard.insert((*name).into(), value);
    }
    if bad.is_empty() {
        Ok(Value::Object(guard))
    } else {
        Err(bad)
    }
}

/// One line of a guard's limits, in words.
pub fn guard_words(row: &Row) -> String {
    let f = |name: &str| {
        row.fields
            .get(name)
            .map(|s| s.trim())
            .unwrap_or("")
            .to_string()
    };
    let pct = |name: &str, default: f64| {
        let x = f(name).parse::<f64>().unwrap_or(default);
        format!("{} %", format_pct(x * 100.0))
    };
    let or = |name: &str, default: &str| {
        let v = f(name);
        if v.is_empty() {
            default.to_string()
        } else {
            v
        }
    };
    match row.kind {
        "reports" => format!(
            "Fails as soon as more than {} instance(s) of the lane fail to apply its version, or more than {} of them. \
             No data (waits) until at least {} instance(s) were served the lane and {} of them applied it.",
            or("max_failed", "0"),
            pct("max_failed_ratio", 0.0),
            or("min_instances", "1"),
            pct("min_applied_ratio", 1.0),
        ),
        "prometheus" => {
            let bounds = match (f("min").as_str(), f("max").as_str()) {
                ("", "") => "(set min, max or both)".to_string(),
                ("", max) => format!("at most {max}"),
                (min, "") => format!("at least {min}"),
                (min, max) => format!("from {min} to {max}"),
            };
            format!(
                "Passes while the query's value is {bounds}; fails after {} out-of-range values or errors in a row. \
                 Asked every {} s; an empty result: {}.",
                or("failures", "2"),
                or("interval_secs", "30"),
                match or("no_data", "wait").as_str() {
                    "pass" => "passes",
                    "fail" => "counts as a failure",
                    _ => "no data (waits)",
                }
            )
        }
        "compare" => format!(
            "Fails when the lane's median is more than {}× stable's{} ({}) with {} % confidence \
             (one-sided Mann-Whitney U), {} times in a row; fewer than {} instances with a value \
             on either side is no data, never a pass. Asked every {} s.",
            or("max_ratio", "1.2"),
            match f("max_delta").as_str() {
                "" => String::new(),
                delta => format!(" and worse by more than {delta}"),
            },
            match or("direction", "lower_is_better").as_str() {
                "higher_is_better" => "higher is better",
                _ => "lower is better",
            },
            format_pct(f("confidence").parse::<f64>().unwrap_or(0.95) * 100.0),
            or("failures", "2"),
            or("min_instances_per_side", "3"),
            or("interval_secs", "30"),
        ),
        _ => format!(
            "Called every {} s: 2xx passes, 425 means no data yet, anything else or no answer within {} s counts as a failure; \
             fails after {} in a row.{}",
            or("interval_secs", "30"),
            or("timeout_secs", "5"),
            or("failures", "2"),
            if f("quote_body") == "true" {
                " A failing answer's first line is quoted in the reason."
            } else {
                ""
            },
        ),
    }
}

/// What the user should know before starting a lane (with a plan): a rule that matches no
/// connected instance leaves a plan without evidence, and a lane sticky on `user_id` never
/// reaches a subscriber (subscribers watch as instances, without a user id).
pub fn lane_warnings(reach: Option<&Reach>, stickiness: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    if stickiness == "user_id" {
        warnings.push(
            "Sticky on user_id: subscribers send no user id: this lane only affects \
             per-request resolve and OFREP."
                .to_string(),
        );
    }
    match reach {
        Some(r) if r.connected == 0 => warnings.push(
            "No instance is connected now: no instance will apply this version, so the plan \
             gets no evidence and will not promote by itself."
                .to_string(),
        ),
        Some(r) if r.eligible == 0 => warnings.push(format!(
            "This lane matches none of the {} connected instances: no instance will apply \
             this version, so the plan gets no evidence and will not promote by itself.",
            r.connected
        )),
        _ => {}
    }
    warnings
}

/// What a lane's rule reaches among the instances connected now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reach {
    /// The instances the rule makes eligible (the lane at 100 %).
    pub eligible: usize,
    /// Of those, the targets (in at any percentage).
    pub targets: usize,
    pub connected: usize,
}

/// `~6 of 120 connected instances`: a step's reach, estimated from the instances connected now:
/// the targets, and the step's share of the other eligible ones.
pub fn step_reach(percentage: f64, reach: &Reach) -> String {
    let others = reach.eligible.saturating_sub(reach.targets) as f64;
    let n = reach.targets + (others * percentage / 100.0).round() as usize;
    if reach.eligible == reach.connected {
        format!("~{n} of {} connected instances", reach.connected)
    } else {
        format!(
            "~{n} of {} eligible instances ({} connected)",
            reach.eligible, reach.connected
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_read_as_people_write_them() {
        assert_eq!(parse_hold("10 min"), Ok(600));
        assert_eq!(parse_hold("1 h 30 min"), Ok(5400));
        assert_eq!(parse_hold("1h30m"), Ok(5400));
        assert_eq!(parse_hold("90"), Ok(90));
        assert_eq!(parse_hold(" 1 s "), Ok(1));
        assert_eq!(parse_hold("2 d"), Ok(172_800));
        assert_eq!(parse_hold(""), Ok(0));
        assert!(parse_hold("8 d").unwrap_err().contains("at most 7 days"));
        assert!(parse_hold("10 weeks").unwrap_err().contains("unknown unit"));
        assert!(parse_hold("soon").unwrap_err().contains("not a duration"));
        // What the editor writes back reads as the same hold.
        for secs in [0, 1, 59, 600, 5400, 604_800] {
            assert_eq!(parse_hold(&human_secs(secs)), Ok(secs as u32));
        }
    }

    #[test]
    fn errors_name_the_field_in_words() {
        assert_eq!(field_words("plan.steps[1].percentage"), "step 2 percentage");
        assert_eq!(
            field_words("plan.guards[0].max_failed"),
            "guard 1 max failed"
        );
        assert_eq!(field_words("plan.steps"), "steps");
        assert_eq!(field_words("plan"), "plan");
    }

    fn row(kind: &'static str, fields: &[(&'static str, &str)]) -> Row {
        Row {
            key: 0,
            kind,
            fields: fields.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        }
    }

    fn words() -> [String; 3] {
        ["abort".into(), "wait".into(), "promote".into()]
    }

    #[test]
    fn rows_become_the_plan_the_server_would_accept() {
        let steps = [
            row("step", &[("percentage", "5"), ("hold", "1 s")]),
            row("step", &[("percentage", "100 %"), ("hold", "2 min")]),
        ];
        let guards = [
            row(
                "reports",
                &[("max_failed", "0"), ("min_applied_ratio", "1")],
            ),
            row(
                "prometheus",
                &[
                    ("url", "http://p:9090"),
                    ("query", "up"),
                    ("max", "0.5"),
                    ("min", ""),
                ],
            ),
        ];
        let plan = check(&steps, &guards, words()).unwrap();
        assert_eq!(plan.steps[0].percentage.bp(), 500);
        assert_eq!(plan.steps[1].hold_secs, 120);
        assert_eq!(plan.guards.len(), 2);
        assert_eq!(word(&plan.finish), "promote");
    }

    #[test]
    fn bad_rows_are_refused_on_their_field() {
        let steps = [
            row("step", &[("percentage", "50"), ("hold", "1 s")]),
            row("step", &[("percentage", "25"), ("hold", "1 s")]),
        ];
        let errors = check(&steps, &[], words()).unwrap_err();
        assert_eq!(errors[0].field, "plan.steps[1].percentage");
        assert!(errors[0].message.contains("must increase"), "{errors:?}");
        let steps = [row("step", &[("percentage", "ten"), ("hold", "forever")])];
        let errors = check(&steps, &[], words()).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["plan.steps[0].percentage", "plan.steps[0].hold_secs"]
        );
        let steps = [row("step", &[("percentage", "5")])];
        let guards = [row("webhook", &[("url", "ftp://x")])];
        let errors = check(&steps, &guards, words()).unwrap_err();
        assert_eq!(errors[0].field, "plan.guards[0].url");
        let guards = [row(
            "prometheus",
            &[
                ("url", "http://p"),
                ("query", "up"),
                ("min", "2"),
                ("max", "1"),
            ],
        )];
        assert_eq!(
            check(&steps, &guards, words()).unwrap_err()[0].field,
            "plan.guards[0].min"
        );
    }

    #[test]
    fn a_plan_that_promotes_without_a_reports_guard_is_refused_on_the_guards() {
        let steps = [row("step", &[("percentage", "100"), ("hold", "1 s")])];
        let errors = check(&steps, &[], words()).unwrap_err();
        assert_eq!(errors[0].field, "plan.guards");
        assert!(
            errors[0]
                .message
                .contains(r#"add {"kind":"reports"} to guards, or finish with "hold""#),
            "{errors:?}"
        );
        let hold = ["abort".into(), "wait".into(), "hold".into()];
        assert!(check(&steps, &[], hold).is_ok());
        let guards = [row("reports", &[("min_instances", "1")])];
        assert!(check(&steps, &guards, words()).is_ok());
    }

    #[test]
    fn a_webhooks_quoting_survives_the_rows() {
        let steps = [row("step", &[("percentage", "5")])];
        let quoting = |on: &str| {
            let guards = [
                row("reports", &[]),
                row("webhook", &[("url", "http://h"), ("quote_body", on)]),
            ];
            let plan = check(&steps, &guards, words()).unwrap();
            let quotes =
                matches!(&plan.guards[1], crate::domain::plan::Guard::Webhook(g) if g.quote_body);
            (quotes, guard_words(&guards[1]).contains("quoted"))
        };
        assert_eq!(quoting("true"), (true, true));
        assert_eq!(quoting("false"), (false, false));
    }

    #[test]
    fn lanes_without_instances_or_sticky_on_user_id_are_flagged() {
        let reach = |eligible, connected| Reach {
            eligible,
            targets: 0,
            connected,
        };
        assert!(lane_warnings(Some(&reach(3, 24)), "client_id").is_empty());
        assert!(lane_warnings(None, "client_id").is_empty());
        let none = lane_warnings(Some(&reach(0, 24)), "client_id");
        assert_eq!(none.len(), 1);
        assert!(
            none[0].starts_with("This lane matches none of the 24 connected instances"),
            "{none:?}"
        );
        assert!(lane_warnings(Some(&reach(0, 0)), "client_id")[0]
            .starts_with("No instance is connected"));
        let user = lane_warnings(Some(&reach(0, 24)), "user_id");
        assert_eq!(user.len(), 2);
        assert!(
            user[0].contains(
                "subscribers send no user id: this lane only affects per-request resolve and OFREP"
            ),
            "{user:?}"
        );
        assert_eq!(lane_warnings(None, "user_id").len(), 1);
    }

    #[test]
    fn a_step_reaches_its_share_of_the_eligible_instances() {
        let all = Reach {
            eligible: 120,
            targets: 0,
            connected: 120,
        };
        assert_eq!(step_reach(5.0, &all), "~6 of 120 connected instances");
        let some = Reach {
            eligible: 60,
            targets: 0,
            connected: 120,
        };
        assert_eq!(
            step_reach(10.0, &some),
            "~6 of 60 eligible instances (120 connected)"
        );
        let targeted = Reach {
            eligible: 12,
            targets: 2,
            connected: 12,
        };
        assert_eq!(step_reach(10.0, &targeted), "~3 of 12 connected instances");
        assert_eq!(
            step_reach(100.0, &targeted),
            "~12 of 12 connected instances"
        );
    }

    #[test]
    fn a_compare_guards_every_field_survives_the_rows() {
        let steps = [row("step", &[("percentage", "5")])];
        let guards = [
            row("reports", &[]),
            row(
                "compare",
                &[
                    ("url", "http://p:9090"),
                    ("query", r#"errors{pod=~"{{instances}}"}"#),
                    ("direction", "higher_is_better"),
                    ("max_ratio", "1.5"),
                    ("max_delta", "0.01"),
                    ("min_instances_per_side", "4"),
                    ("confidence", "0.99"),
                    ("interval_secs", "60"),
                    ("failures", "3"),
                    ("label", "pod"),
                    ("metric", "success rate"),
                ],
            ),
        ];
        let plan = check(&steps, &guards, words()).unwrap();
        let crate::domain::plan::Guard::Compare(g) = &plan.guards[1] else {
            panic!("{plan:?}")
        };
        assert_eq!(word(&g.direction), "higher_is_better");
        assert_eq!((g.max_ratio, g.max_delta), (1.5, Some(0.01)));
        assert_eq!((g.min_instances_per_side, g.confidence), (4, 0.99));
        assert_eq!((g.interval_secs, g.failures), (60, 3));
        assert_eq!(
            (g.label.as_str(), g.metric.as_str()),
            ("pod", "success rate")
        );
        let said = guard_words(&guards[1]);
        assert!(said.contains("more than 1.5× stable's and worse by more than 0.01 (higher is better) with 99 % confidence"), "{said}");
        // Left empty, the defaults apply.
        let bare = [
            row("reports", &[]),
            row(
                "compare",
                &[
                    ("url", "http://p"),
                    ("query", "e{i=~\"{{instances}}\"}"),
                    ("label", ""),
                    ("max_delta", ""),
                ],
            ),
        ];
        let plan = check(&steps, &bare, words()).unwrap();
        let crate::domain::plan::Guard::Compare(g) = &plan.guards[1] else {
            panic!("{plan:?}")
        };
        assert_eq!(
            (g.label.as_str(), g.max_delta, g.max_ratio),
            ("instance", None, 1.2)
        );
        let bad = [row(
            "compare",
            &[("url", "http://p"), ("query", "e"), ("max_ratio", "lots")],
        )];
        let errors = check(&steps, &bad, words()).unwrap_err();
        assert_eq!(errors[0].field, "plan.guards[0].max_ratio");
        let no_instances = [row("compare", &[("url", "http://p"), ("query", "e")])];
        let errors = check(&steps, &no_instances, words()).unwrap_err();
        assert_eq!(errors[0].field, "plan.guards[0].query");
        assert!(errors[0].message.contains("{{instances}}"), "{errors:?}");
    }

    #[test]
    fn new_cards_show_the_defaults_and_every_guard_round_trips_through_its_card() {
        let compare: BTreeMap<_, _> = guard_defaults("compare").into_iter().collect();
        assert_eq!(compare["label"], "instance");
        assert_eq!(compare["direction"], "lower_is_better");
        assert_eq!(
            (compare["max_ratio"].as_str(), compare["max_delta"].as_str()),
            ("1.2", "")
        );
        assert_eq!(
            (
                compare["min_instances_per_side"].as_str(),
                compare["confidence"].as_str()
            ),
            ("3", "0.95")
        );
        assert_eq!(
            (compare["url"].as_str(), compare["query"].as_str()),
            ("", "")
        );
        let prometheus: BTreeMap<_, _> = guard_defaults("prometheus").into_iter().collect();
        assert_eq!(
            (prometheus["max"].as_str(), prometheus["no_data"].as_str()),
            ("", "wait")
        );
        // The JSON view's round trip: a plan's JSON → cards → the same plan.
        let json = json!({"steps": [{"percentage": 5, "hold_secs": 60}], "finish": "promote", "guards": [
            {"kind": "reports", "min_instances": 2},
            {"kind": "prometheus", "url": "http://p", "query": "up", "min": 1},
            {"kind": "webhook", "url": "http://h", "quote_body": true},
            {"kind": "compare", "url": "http://p", "query": "e{pod=~\"{{instances}}\"}",
             "direction": "higher_is_better", "max_delta": 0.5, "label": "pod", "metric": "rps",
             "confidence": 0.9, "min_instances_per_side": 5, "max_ratio": 2}
        ]});
        let plan = parse_plan(&json, "plan").unwrap();
        let back = parse_plan(&serde_json::to_value(&plan).unwrap(), "plan").unwrap();
        assert_eq!(back, plan);
        let guards: Vec<Row> = plan
            .guards
            .iter()
            .map(|g| {
                let (kind, fields) = guard_fields(g);
                Row {
                    key: 0,
                    kind,
                    fields: fields.into_iter().collect(),
                }
            })
            .collect();
        let steps = [row("step", &[("percentage", "5"), ("hold", "1 min")])];
        assert_eq!(check(&steps, &guards, words()).unwrap(), plan);
    }
}
