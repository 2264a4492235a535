//! The plan editor's rows as typed, turned into a plan and checked by the server's own rules
//! ([`parse_plan`]), with holds read as people write them and guard limits put in words.
//! Pure: unit-tested without a browser.

use crate::app::pages::shared::format_pct;
use crate::domain::plan::decide::human_secs;
use crate::domain::plan::{check_evidence, parse_plan, Plan, PlanError, MAX_HOLD_SECS};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// A step row or guard card as typed: `kind` is `step`, `reports`, `prometheus` or `webhook`.
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
            let mut guard = Map::new();
            guard.insert("kind".into(), json!(row.kind));
            for (name, text) in &row.fields {
                let text = text.trim();
                if text.is_empty() {
                    continue;
                }
                let value = match *name {
                    "url" | "query" | "no_data" => json!(text),
                    "quote_body" => json!(text == "true"),
                    _ => match text.parse::<f64>() {
                        Ok(x) if x.fract() == 0.0 && (0.0..4e9).contains(&x) => json!(x as u64),
                        Ok(x) => json!(x),
                        Err(_) => {
                            refuse(
                                format!("plan.guards[{i}].{name}"),
                                format!("{text:?} is not a number"),
                            );
                            continue;
                        }
                    },
                };
                guard.insert((*name).into(), value);
            }
            Value::Object(guard)
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
}
