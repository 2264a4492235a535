//! The compare guard at one evaluation (docs/plans.md, "The compare guard"): the regex that
//! selects one population in its query, each population's samples as Prometheus answers them,
//! and the reading [`crate::compare::compare`] gives.

use serde_json::Value;

use super::guard::{polled, quote, GuardStatus, Reading};
use super::{CompareGuard, GuardKind};
use crate::compare::{compare, sentence, Verdict};

/// What one evaluation of a compare guard found.
#[derive(Debug, Clone, PartialEq)]
pub enum CompareAnswer {
    /// One value per instance of each population (the lane's served set; stable's instances of
    /// the lane's selector).
    Samples { lane: Vec<f64>, baseline: Vec<f64> },
    /// A query could not be run or read; counts toward the guard's `failures`.
    Error(String),
}

/// `{{instances}}` for a population: an anchored regex matching exactly these client ids,
/// escaped for RE2 and then for a PromQL double-quoted string (the query writes
/// `instance=~"{{instances}}"`). An empty population matches nothing.
pub fn instances_regex(ids: &[String]) -> String {
    let mut ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    ids.sort_unstable();
    ids.dedup();
    let alternatives: Vec<String> = ids.iter().map(|id| regex_escaped(id)).collect();
    let regex = if alternatives.is_empty() {
        // Matches no label value: an empty one is the same as no label.
        "^$.".to_string()
    } else {
        format!("^(?:{})$", alternatives.join("|"))
    };
    regex.replace('\\', "\\\\").replace('"', "\\\"")
}

fn regex_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$-".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The samples of one population in a `/api/v1/query` answer, as (client id, value) in the
/// answer's order: a vector with one sample per instance, named by `label`; samples of
/// instances outside `population` are left out, a NaN sample counts as missing, and two samples
/// for one instance are an error.
pub fn read_samples(
    body: &Value,
    label: &str,
    population: &[String],
) -> Result<Vec<(String, f64)>, String> {
    if body["status"] != "success" {
        let why = body["error"].as_str().unwrap_or("no status \"success\"");
        return Err(format!("Prometheus answered an error: {}", quote(why)));
    }
    let data = &body["data"];
    if data["resultType"] != "vector" {
        return Err(format!(
            "the query returned a {}; it must return a vector with one sample per instance",
            data["resultType"].as_str().unwrap_or("nothing")
        ));
    }
    let results = data["result"]
        .as_array()
        .ok_or("the answer has no result list")?;
    let mut seen: Vec<(&str, f64)> = Vec::with_capacity(results.len());
    for sample in results {
        let Some(instance) = sample["metric"][label].as_str() else {
            return Err(format!(
                "a sample has no {label} label; the guard names each instance by it"
            ));
        };
        if !population.iter().any(|id| id == instance) {
            continue;
        }
        if seen.iter().any(|(i, _)| *i == instance) {
            return Err(format!(
                "the query returned several samples for {label} {}; it must return one per \
                 instance (aggregate by {label})",
                quote(instance)
            ));
        }
        match sample["value"][1].as_str().map(str::parse::<f64>) {
            Some(Ok(x)) => seen.push((instance, x)),
            _ => return Err("a sample has no numeric value".into()),
        }
    }
    Ok(seen
        .into_iter()
        .filter(|(_, x)| !x.is_nan())
        .map(|(id, x)| (id.to_string(), x))
        .collect())
}

/// The compare guard after one evaluation; `previous_streak` from its last reading. A failing
/// comparison counts toward `failures` like an error; too few instances is no data, never a
/// pass.
pub fn judge_compare(
    guard: &CompareGuard,
    previous_streak: u32,
    answer: &CompareAnswer,
) -> Reading {
    let (lane, baseline) = match answer {
        CompareAnswer::Samples { lane, baseline } => (lane, baseline),
        CompareAnswer::Error(why) => {
            return polled(
                GuardKind::Compare,
                guard.failures,
                previous_streak,
                None,
                Err(why.clone()),
            )
        }
    };
    let limits = guard.limits();
    let c = compare(lane, baseline, &limits);
    let said = sentence(&c, &guard.metric, &limits);
    let value = c.ratio.filter(|r| r.is_finite());
    let reading = match c.verdict {
        Verdict::Failing => polled(
            GuardKind::Compare,
            guard.failures,
            previous_streak,
            value,
            Err(said),
        ),
        Verdict::NoData if previous_streak > 0 => Reading::new(
            GuardStatus::NoData,
            value,
            format!(
                "compare guard: {said} ({previous_streak} of {} in a row before it fails)",
                guard.failures
            ),
            previous_streak,
        ),
        Verdict::NoData => polled(
            GuardKind::Compare,
            guard.failures,
            0,
            value,
            Ok((GuardStatus::NoData, said)),
        ),
        Verdict::Passing => polled(
            GuardKind::Compare,
            guard.failures,
            0,
            value,
            Ok((GuardStatus::Passing, said)),
        ),
    };
    reading.with_comparison(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::Direction;
    use serde_json::json;

    fn guard(failures: u32) -> CompareGuard {
        CompareGuard {
            url: "http://127.0.0.1:9090".into(),
            query: "errors{pod=~\"{{instances}}\"}".into(),
            direction: Direction::LowerIsBetter,
            max_ratio: 1.2,
            max_delta: None,
            min_instances_per_side: 3,
            interval_secs: 30,
            failures,
            confidence: 0.95,
            label: "pod".into(),
            metric: "error rate".into(),
        }
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_regex_matches_exactly_the_population_escaped_for_a_promql_string() {
        assert_eq!(
            instances_regex(&ids(&["pod-2", "pod-1.eu", "pod-2"])),
            r#"^(?:pod\\-1\\.eu|pod\\-2)$"#
        );
        assert_eq!(instances_regex(&ids(&["a\"b"])), r#"^(?:a\"b)$"#);
        assert_eq!(instances_regex(&[]), "^$.");
    }

    fn vector(samples: &[(&str, &str)]) -> Value {
        json!({"status": "success", "data": {"resultType": "vector", "result":
            samples.iter().map(|(pod, v)| json!({"metric": {"pod": pod}, "value": [1.0, v]})).collect::<Vec<_>>()
        }})
    }

    #[test]
    fn samples_are_read_per_instance_of_the_population() {
        let population = ids(&["a", "b", "c"]);
        let body = vector(&[("a", "0.1"), ("b", "NaN"), ("x", "9"), ("c", "0.3")]);
        assert_eq!(
            read_samples(&body, "pod", &population),
            Ok(vec![("a".to_string(), 0.1), ("c".to_string(), 0.3)])
        );
        let twice = vector(&[("a", "0.1"), ("a", "0.2")]);
        let err = read_samples(&twice, "pod", &population).unwrap_err();
        assert!(err.contains("several samples for pod a;"), "{err}");
        let unnamed = json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"instance": "a"}, "value": [1.0, "1"]}]}});
        assert!(read_samples(&unnamed, "pod", &population)
            .unwrap_err()
            .contains("no pod label"));
        let scalar =
            json!({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "1"]}});
        assert!(read_samples(&scalar, "pod", &population)
            .unwrap_err()
            .contains("returned a scalar"));
        let error = json!({"status": "error", "error": "parse error"});
        assert!(read_samples(&error, "pod", &population)
            .unwrap_err()
            .contains("parse error"));
    }

    fn samples(lane: &[f64], baseline: &[f64]) -> CompareAnswer {
        CompareAnswer::Samples {
            lane: lane.to_vec(),
            baseline: baseline.to_vec(),
        }
    }

    #[test]
    fn a_lane_three_times_worse_fails_after_its_failures_and_keeps_the_numbers() {
        let lane = [0.030, 0.031, 0.029, 0.032, 0.030, 0.031];
        let stable = [0.010, 0.011, 0.009, 0.010, 0.012, 0.010, 0.011, 0.009];
        let first = judge_compare(&guard(2), 0, &samples(&lane, &stable));
        assert_eq!(first.status, GuardStatus::NoData, "{}", first.message);
        assert_eq!(first.streak, 1);
        assert!(
            first
                .message
                .starts_with("compare guard: lane p50 error rate"),
            "{}",
            first.message
        );
        assert!(first.message.contains("× worse"), "{}", first.message);
        let second = judge_compare(&guard(2), first.streak, &samples(&lane, &stable));
        assert_eq!(second.status, GuardStatus::Failing, "{}", second.message);
        let c = second.comparison.expect("the numbers are kept");
        assert_eq!((c.lane_n, c.baseline_n), (6, 8));
        assert!(c.p_value.unwrap() < 0.05);
        assert!(second.value.unwrap() > 2.5);
    }

    #[test]
    fn an_equal_lane_passes_and_too_few_instances_is_no_data() {
        let lane = [0.010, 0.011, 0.009, 0.010];
        let stable = [0.010, 0.011, 0.009, 0.010, 0.012, 0.010];
        let pass = judge_compare(&guard(1), 0, &samples(&lane, &stable));
        assert_eq!(pass.status, GuardStatus::Passing, "{}", pass.message);
        assert!(pass.message.contains("passing"), "{}", pass.message);
        let few = judge_compare(&guard(1), 0, &samples(&lane[..2], &stable));
        assert_eq!(few.status, GuardStatus::NoData, "{}", few.message);
        assert!(few.message.contains("no data"), "{}", few.message);
        assert_eq!(few.streak, 0);
        let error = judge_compare(&guard(1), 0, &CompareAnswer::Error("timed out".into()));
        assert_eq!(error.status, GuardStatus::Failing);
        assert!(error.comparison.is_none());
    }
}
