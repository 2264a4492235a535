//! What the dashboard's "test query now" shows for a Prometheus guard, read from the same answer
//! the guard judges: the server fetches it (src/server/probe.rs), this reads it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::guard::{quote, read_prometheus, substitute, Sample};

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
}
