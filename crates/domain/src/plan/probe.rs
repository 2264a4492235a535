//! What the dashboard's "test query now" shows for a Prometheus guard, read from the same answer
//! the guard judges: the server fetches it (src/server/probe.rs), this reads it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::guard::{quote, read_prometheus, substitute, Sample};
use super::CompareGuard;
use crate::compare::{compare, sentence, Comparison};

/// At most this many samples are described (the rest are only counted).
pub const MAX_SERIES_SHOWN: usize = 5;
/// At most this many labels of one sample are shown.
pub const MAX_LABELS_SHOWN: usize = 30;

/// A "test query now" request (`POST /api/v1/rollout-probe/prometheus`): the guard's URL and
/// query, and what to put for the query's `{{namespace}}`, `{{env}}`, `{{key}}`, `{{lane}}` and
/// `{{version}}` (each left as it is when absent).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryTestRequest {
    pub url: String,
    pub query: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub env: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub lane: Option<i64>,
    #[serde(default)]
    pub version: Option<i64>,
}

impl QueryTestRequest {
    /// The query with what the request names substituted, as a running guard would send it.
    pub fn substituted_query(&self) -> String {
        let lane = self.lane.map(|l| l.to_string());
        let version = self.version.map(|v| v.to_string());
        let vars: Vec<(&str, &str)> = [
            ("namespace", self.namespace.as_deref()),
            ("env", self.env.as_deref()),
            ("key", self.key.as_deref()),
            ("lane", lane.as_deref()),
            ("version", version.as_deref()),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
        .collect();
        substitute(&self.query, &vars)
    }
}

/// One "test query now": the answer of `POST /api/v1/rollout-probe/prometheus`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct QueryTest {
    /// The value the guard would judge: present when the query returned a scalar or exactly one
    /// sample with a number (`NaN` counts as no data, like the guard's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// How many samples the query returned (a scalar counts as one); 0 is "no data".
    pub samples: usize,
    /// The first [`MAX_SERIES_SHOWN`] samples with their labels, so a query that returns several
    /// shows which ones to aggregate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<SeriesSample>,
    /// Why the guard could not use the answer (it would count toward the guard's `failures`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One sample of an answer: its labels and its value as Prometheus wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SeriesSample {
    pub labels: BTreeMap<String, String>,
    pub value: String,
}

impl QueryTest {
    /// A query that got no usable answer at all (unreachable, HTTP error, timeout …).
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            error: Some(message.into()),
            ..Self::default()
        }
    }
}

/// Reads a `/api/v1/query` answer for "test query now", by the guard's own rule
/// ([`read_prometheus`]).
pub fn test_prometheus(body: &Value) -> QueryTest {
    let data = &body["data"];
    let success = body["status"] == "success";
    let (samples, series) = match data["resultType"].as_str() {
        Some("scalar") if success => (1, vec![sample_of(&Value::Null, &data["result"])]),
        Some("vector") if success => {
            let result = data["result"].as_array().map_or(&[][..], Vec::as_slice);
            let shown = result
                .iter()
                .take(MAX_SERIES_SHOWN)
                .map(|s| sample_of(&s["metric"], &s["value"]))
                .collect();
            (result.len(), shown)
        }
        _ => (0, Vec::new()),
    };
    let (value, error) = match read_prometheus(body) {
        Sample::Value(x) => (Some(x), None),
        Sample::Empty => (None, None),
        Sample::Error(why) => (None, Some(why)),
    };
    QueryTest {
        value,
        samples,
        series,
        error,
    }
}

fn sample_of(metric: &Value, pair: &Value) -> SeriesSample {
    let labels = metric
        .as_object()
        .into_iter()
        .flatten()
        .take(MAX_LABELS_SHOWN)
        .map(|(name, value)| (quote(name), quote(value.as_str().unwrap_or_default())))
        .collect();
    SeriesSample {
        labels,
        value: quote(pair[1].as_str().unwrap_or_default()),
    }
}

/// At most this many samples (and instances without one) of each population are listed by a
/// compare guard's "test the query now"; the rest are counted.
pub const MAX_POPULATION_SHOWN: usize = 50;

/// A compare guard's "test the query now" (`POST /api/v1/rollout-probe/compare`): the guard as
/// a plan writes it, the config, and whose lane it judges — an existing lane of the config
/// (`lane`), or the lane being started (`draft`, its rule as `POST …/lanes` takes it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareTestRequest {
    pub namespace: String,
    pub env: String,
    pub key: String,
    /// `{"kind": "compare", "url": …, "query": …}`, checked by the plan's rules.
    pub guard: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft: Option<crate::model::NewLane>,
}

/// What a compare guard's two queries give right now: each population's samples, and the
/// comparison and sentence the guard would record.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CompareTest {
    /// The lane's instances: its served set since its step began (a lane being started: the
    /// connected instances watching the key that its rule reaches at its first step).
    pub lane: PopulationTest,
    /// Stable's connected instances of the key that the lane's selector matches.
    pub stable: PopulationTest,
    /// Both medians, the ratio, U, p and the counts, when both queries answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
    /// The guard's sentence for the comparison, or why there is none.
    pub sentence: String,
}

/// One population in a compare guard's test.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PopulationTest {
    /// How many instances the population has.
    pub instances: usize,
    /// Client id → value, by client id, at most [`MAX_POPULATION_SHOWN`].
    pub samples: Vec<InstanceSample>,
    /// Samples beyond those listed.
    #[serde(default)]
    pub more_samples: usize,
    /// Instances without a usable sample (none, NaN or infinite), at most
    /// [`MAX_POPULATION_SHOWN`].
    pub without_sample: Vec<String>,
    #[serde(default)]
    pub more_without_sample: usize,
    /// Why this population's query gave nothing to judge (the message the guard would record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceSample {
    pub client_id: String,
    pub value: f64,
}

impl PopulationTest {
    /// `population` (its client ids) and what its query gave: samples by client id, or why not.
    pub fn of(population: &[String], answer: Result<Vec<(String, f64)>, String>) -> Self {
        let mut test = PopulationTest {
            instances: population.len(),
            ..Self::default()
        };
        let samples = match answer {
            Ok(samples) => samples,
            Err(why) => {
                test.error = Some(why);
                return test;
            }
        };
        let mut usable: Vec<InstanceSample> = samples
            .into_iter()
            .filter(|(_, value)| value.is_finite())
            .map(|(client_id, value)| InstanceSample { client_id, value })
            .collect();
        usable.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        let mut without: Vec<String> = population
            .iter()
            .filter(|id| !usable.iter().any(|s| &s.client_id == *id))
            .cloned()
            .collect();
        without.sort();
        test.more_samples = usable.len().saturating_sub(MAX_POPULATION_SHOWN);
        test.more_without_sample = without.len().saturating_sub(MAX_POPULATION_SHOWN);
        usable.truncate(MAX_POPULATION_SHOWN);
        without.truncate(MAX_POPULATION_SHOWN);
        test.samples = usable;
        test.without_sample = without;
        test
    }
}

/// What a population's query gave: (client id, value) of each sample, or why there are none.
pub type PopulationAnswer = Result<Vec<(String, f64)>, String>;

impl CompareTest {
    /// The test of `guard` from each population (its client ids) and what its query gave (an
    /// empty population is not queried: `Ok` with no samples). The comparison is made, as the
    /// guard makes it, only when both queries answered.
    pub fn of(
        guard: &CompareGuard,
        (lane_ids, lane): (&[String], PopulationAnswer),
        (stable_ids, stable): (&[String], PopulationAnswer),
    ) -> Self {
        let values = |a: &PopulationAnswer| {
            a.as_ref()
                .ok()
                .map(|s| s.iter().map(|(_, x)| *x).collect::<Vec<f64>>())
        };
        let (comparison, sentence) = match (values(&lane), values(&stable)) {
            (Some(l), Some(s)) => {
                let limits = guard.limits();
                let c = compare(&l, &s, &limits);
                let said = sentence(&c, &guard.metric, &limits);
                (Some(c), said)
            }
            (None, Some(_)) => (None, "No comparison: the lane's query failed.".into()),
            (Some(_), None) => (None, "No comparison: stable's query failed.".into()),
            (None, None) => (None, "No comparison: both queries failed.".into()),
        };
        CompareTest {
            lane: PopulationTest::of(lane_ids, lane),
            stable: PopulationTest::of(stable_ids, stable),
            comparison,
            sentence,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vector(result: Value) -> Value {
        json!({"status": "success", "data": {"resultType": "vector", "result": result}})
    }

    #[test]
    fn one_sample_gives_its_value_and_labels() {
        let t = test_prometheus(&vector(json!([
            {"metric": {"__name__": "errors", "job": "shop"}, "value": [1.5, "0.25"]}
        ])));
        assert_eq!(t.value, Some(0.25));
        assert_eq!(t.samples, 1);
        assert_eq!(t.error, None);
        assert_eq!(t.series[0].value, "0.25");
        assert_eq!(t.series[0].labels["job"], "shop");
        assert_eq!(
            serde_json::to_value(&t).unwrap(),
            json!({"value": 0.25, "samples": 1, "series": [{"labels": {"__name__": "errors", "job": "shop"}, "value": "0.25"}]})
        );
    }

    #[test]
    fn several_samples_are_counted_shown_in_part_and_refused() {
        let many: Vec<Value> = (0..8)
            .map(|i| json!({"metric": {"pod": format!("p{i}")}, "value": [1, format!("{i}")]}))
            .collect();
        let t = test_prometheus(&vector(Value::Array(many)));
        assert_eq!(t.value, None);
        assert_eq!(t.samples, 8);
        assert_eq!(t.series.len(), MAX_SERIES_SHOWN);
        assert_eq!(t.series[4].labels["pod"], "p4");
        assert!(
            t.error.as_deref().unwrap().contains("returned 8 samples"),
            "{t:?}"
        );
    }

    #[test]
    fn requests_substitute_what_they_name() {
        let request = QueryTestRequest {
            url: "http://h".into(),
            query: r#"x{ns="{{namespace}}",env="{{env}}",key="{{key}}",lane="{{lane}}",v="{{version}}"}"#.into(),
            namespace: Some("shop".into()),
            key: Some("app.yaml".into()),
            version: Some(7),
            ..Default::default()
        };
        assert_eq!(
            request.substituted_query(),
            r#"x{ns="shop",env="{{env}}",key="app.yaml",lane="{{lane}}",v="7"}"#
        );
        let typo = serde_json::from_value::<QueryTestRequest>(
            json!({"url": "http://h", "query": "up", "namespce": "shop"}),
        );
        assert!(typo.is_err());
    }

    #[test]
    fn empty_scalar_and_error_answers() {
        let empty = test_prometheus(&vector(json!([])));
        assert_eq!(serde_json::to_value(&empty).unwrap(), json!({"samples": 0}));
        let nan = test_prometheus(&vector(json!([{"metric": {}, "value": [1, "NaN"]}])));
        assert_eq!((nan.value, nan.samples, nan.error), (None, 1, None));
        let scalar = test_prometheus(
            &json!({"status": "success", "data": {"resultType": "scalar", "result": [1, "3"]}}),
        );
        assert_eq!((scalar.value, scalar.samples), (Some(3.0), 1));
        assert!(scalar.series[0].labels.is_empty());
        let refused = test_prometheus(
            &json!({"status": "error", "errorType": "bad_data", "error": "parse error at char 3"}),
        );
        assert_eq!(refused.samples, 0);
        assert!(refused.error.unwrap().contains("parse error at char 3"));
        let long = "x".repeat(5000);
        let t = test_prometheus(&vector(json!([{"metric": {"l": long}, "value": [1, "1"]}])));
        assert!(t.series[0].labels["l"].chars().count() <= 201);
        assert_eq!(QueryTest::failed("down").error.as_deref(), Some("down"));
    }

    fn ids(n: usize, prefix: &str) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}-{i:03}")).collect()
    }

    fn guard() -> CompareGuard {
        let g = json!({"kind": "compare", "url": "http://p", "label": "pod", "metric": "error rate",
                       "query": "errors{pod=~\"{{instances}}\"}"});
        match super::super::parse_guard(&g, "guard").unwrap() {
            super::super::Guard::Compare(g) => g,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_compare_test_lists_both_populations_and_judges_all_their_values() {
        let lane = ids(4, "lane");
        let stable = ids(130, "stable");
        let lane_samples: Vec<(String, f64)> = lane[..3]
            .iter()
            .zip([0.030, 0.031, 0.029])
            .map(|(id, x)| (id.clone(), x))
            .chain([(lane[3].clone(), f64::INFINITY)])
            .collect();
        let stable_samples: Vec<(String, f64)> = stable[..120]
            .iter()
            .rev()
            .enumerate()
            .map(|(i, id)| (id.clone(), 0.010 + i as f64 * 1e-5))
            .collect();
        let t = CompareTest::of(
            &guard(),
            (&lane, Ok(lane_samples)),
            (&stable, Ok(stable_samples)),
        );
        assert_eq!((t.lane.instances, t.lane.samples.len()), (4, 3));
        assert_eq!(t.lane.without_sample, vec!["lane-003".to_string()]);
        assert_eq!(t.stable.instances, 130);
        assert_eq!(t.stable.samples.len(), MAX_POPULATION_SHOWN);
        assert_eq!(t.stable.samples[0].client_id, "stable-000");
        assert_eq!(t.stable.more_samples, 70);
        assert_eq!(t.stable.without_sample.len(), 10);
        assert_eq!(t.stable.more_without_sample, 0);
        let c = t.comparison.expect("both answered");
        assert_eq!((c.lane_n, c.baseline_n), (3, 120), "every value is judged");
        assert!(
            t.sentence.starts_with("lane p50 error rate 0.03 vs stable"),
            "{}",
            t.sentence
        );
        assert!(t.sentence.ends_with("→ failing"), "{}", t.sentence);
    }

    #[test]
    fn a_failed_query_or_too_few_instances_say_so() {
        let (lane, stable) = (ids(2, "l"), ids(4, "s"));
        let t = CompareTest::of(
            &guard(),
            (
                &lane,
                Err("Prometheus at p:80: could not reach the url".into()),
            ),
            (&stable, Ok(vec![])),
        );
        assert_eq!(t.comparison, None);
        assert_eq!(t.sentence, "No comparison: the lane's query failed.");
        assert_eq!(
            t.lane.error.as_deref(),
            Some("Prometheus at p:80: could not reach the url")
        );
        assert_eq!(t.stable.without_sample.len(), 4);
        let few = CompareTest::of(
            &guard(),
            (
                &lane,
                Ok(vec![("l-000".into(), 1.0), ("l-001".into(), 2.0)]),
            ),
            (&stable, Ok(vec![("s-000".into(), 1.0)])),
        );
        assert_eq!(
            few.sentence,
            "lane has 2 instances, stable 1; 3 needed on each side → no data"
        );
        let request: CompareTestRequest = serde_json::from_value(json!({
            "namespace": "shop", "env": "prod", "key": "app.yaml", "guard": {"kind": "compare"},
            "draft": {"version": 2, "targets": ["pod-1"], "percentage": 5}
        }))
        .unwrap();
        assert_eq!(request.draft.unwrap().targets.unwrap(), ["pod-1"]);
    }
}
