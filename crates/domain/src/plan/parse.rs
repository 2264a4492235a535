//! A plan as a client sends it (the JSON of docs/plans.md), read with serde.
//!
//! The request's shapes below deny unknown fields and tell guards apart by their `kind`; each
//! field's value is checked by its own type with the sentence the API answers, and
//! `serde_path_to_error` names the field. What no single field can say (a required field, the
//! order of the steps, how many there are, a guard's `min` against its `max`) is checked after,
//! in `TryFrom<RawPlan> for Plan`, which also fills in every default docs/plans.md names.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use serde_path_to_error::{Path, Segment};

use super::{
    check_url, Checked, CompareGuard, EmptyResult, Finish, Guard, NoDataPolicy, OnFailure, Plan,
    PlanError, PrometheusGuard, ReportsGuard, Step, WebhookGuard, MAX_FAILURES, MAX_GUARDS,
    MAX_HOLD_SECS, MAX_INTERVAL_SECS, MAX_QUERY_LEN, MAX_STEPS, MAX_TIMEOUT_SECS,
};
use crate::percentage::Percentage;
use crate::words::Words;

/// Checks a plan as a client sent it (the JSON of docs/plans.md); `at` names where it sits in
/// the request, e.g. `plan`. Every default docs/plans.md names is filled in.
pub fn parse_plan(value: &Value, at: &str) -> Checked<Plan> {
    let raw: Object<RawPlan> = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().clone();
        in_our_words(value, &path, e.into_inner().to_string()).at(at)
    })?;
    Plan::try_from(raw.0).map_err(|refusal| refusal.at(at))
}

/// Checks one guard as a client sent it (as one of a plan's `guards`, by the same rules); `at`
/// names where it sits in the request, e.g. `guard`. Its defaults are filled in.
pub fn parse_guard(value: &Value, at: &str) -> Checked<Guard> {
    let plan = serde_json::json!({"steps": [{"percentage": 100}], "guards": [value]});
    let mut plan = parse_plan(&plan, "").map_err(|e| PlanError {
        field: match e.field.strip_prefix("guards[0]") {
            Some(rest) => format!("{at}{rest}"),
            None => at.to_string(),
        },
        message: e.message,
    })?;
    Ok(plan.guards.remove(0))
}

/// A refused plan before it is placed in its request: `path` is relative to the plan
/// (`steps[1].percentage`; empty for the plan itself).
#[derive(Debug)]
struct Refusal {
    path: String,
    message: String,
}

impl Refusal {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The refusal inside `parent` (a path relative to the plan too).
    fn within(self, parent: &str) -> Self {
        Self::new(joined(parent, &self.path), self.message)
    }

    fn at(self, at: &str) -> PlanError {
        PlanError {
            field: joined(at, &self.path),
            message: self.message,
        }
    }
}

fn joined(parent: &str, path: &str) -> String {
    match path.chars().next() {
        None => parent.to_string(),
        Some('[') => format!("{parent}{path}"),
        Some(_) if parent.is_empty() => path.to_string(),
        Some(_) => format!("{parent}.{path}"),
    }
}

/// `steps[1].percentage`.
fn shown(path: &Path) -> String {
    path.iter()
        .fold(String::new(), |shown, segment| match segment {
            Segment::Seq { index } => format!("{shown}[{index}]"),
            Segment::Map { key } | Segment::Enum { variant: key } => joined(&shown, key),
            Segment::Unknown => joined(&shown, "?"),
        })
}

/// serde's own refusals in the API's words: an unknown field, and a guard's `kind` that is
/// missing, not a string or not a kind (told apart by where they are and what stands there;
/// the fields' own types word theirs).
fn in_our_words(plan: &Value, path: &Path, message: String) -> Refusal {
    let segments: Vec<&Segment> = path.iter().collect();
    let key =
        |segment: &Segment, name: &str| matches!(segment, Segment::Map { key } if key == name);
    let guard = match segments.as_slice() {
        [guards, Segment::Seq { index }, ..] if key(guards, "guards") => plan["guards"].get(*index),
        _ => None,
    };
    match (segments.as_slice(), guard) {
        ([_, _, kind], Some(guard)) if key(kind, "kind") => {
            Refusal::new(
                shown(path),
                match &guard["kind"] {
                    Value::String(other) => {
                        format!("unknown guard kind {other:?}; use reports, prometheus, webhook or compare")
                    }
                    _ => "expected reports, prometheus, webhook or compare".to_string(),
                },
            )
        }
        ([_, _], Some(Value::Object(fields))) if !fields.contains_key("kind") => Refusal::new(
            format!("{}.kind", shown(path)),
            "every guard needs a kind: reports, prometheus, webhook or compare",
        ),
        _ => Refusal::new(shown(path), unknown_field(&message, &[]).unwrap_or(message)),
    }
}

/// serde's ``unknown field `x`, expected `a` or `b` `` as the API says it, or `None` for another
/// message. `unlisted` go first: fields serde does not list (a guard's `kind`, which the tag
/// takes away before the kind's fields are read).
fn unknown_field(message: &str, unlisted: &[&str]) -> Option<String> {
    if !message.starts_with("unknown field `") {
        return None;
    }
    let (_, expected) = message.rsplit_once(", expected ")?;
    let names: Vec<&str> = unlisted
        .iter()
        .copied()
        .chain(expected.split('`').skip(1).step_by(2))
        .collect();
    Some(format!(
        "unknown field; expected one of: {}",
        names.join(", ")
    ))
}

/// A JSON object of the request, as its refusals name it.
trait Shape {
    /// `a step`.
    const WHAT: &'static str;
    /// `steps`.
    const PLURAL: &'static str;
}

/// A plan as a request carries it: every field optional here, the required ones checked after.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    steps: Option<List<RawStep>>,
    guards: Option<List<RawGuard>>,
    on_failure: Option<Word<OnFailure>>,
    no_data: Option<Word<NoDataPolicy>>,
    finish: Option<Word<Finish>>,
}

impl Shape for RawPlan {
    const WHAT: &'static str = "a plan";
    const PLURAL: &'static str = "plans";
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    percentage: Option<StepPercentage>,
    hold_secs: Option<Whole<0, MAX_HOLD_SECS>>,
}

impl Shape for RawStep {
    const WHAT: &'static str = "a step";
    const PLURAL: &'static str = "steps";
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum RawGuard {
    Reports(KindFields<RawReports>),
    Prometheus(KindFields<RawPrometheus>),
    Webhook(KindFields<RawWebhook>),
    Compare(KindFields<RawCompare>),
}

impl Shape for RawGuard {
    const WHAT: &'static str = "a guard";
    const PLURAL: &'static str = "guards";
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReports {
    max_failed: Option<Whole<0, { u32::MAX }>>,
    max_failed_ratio: Option<Ratio>,
    min_applied_ratio: Option<Ratio>,
    min_instances: Option<Whole<0, { u32::MAX }>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrometheus {
    url: Option<Url>,
    query: Option<Query>,
    min: Option<Number>,
    max: Option<Number>,
    interval_secs: Option<Whole<1, MAX_INTERVAL_SECS>>,
    failures: Option<Whole<1, MAX_FAILURES>>,
    no_data: Option<Word<EmptyResult>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCompare {
    url: Option<Url>,
    query: Option<Query>,
    direction: Option<Word<crate::compare::Direction>>,
    max_ratio: Option<AtLeastOne>,
    max_delta: Option<NonNegative>,
    min_instances_per_side: Option<Whole<1, MAX_PER_SIDE>>,
    interval_secs: Option<Whole<1, MAX_INTERVAL_SECS>>,
    failures: Option<Whole<1, MAX_FAILURES>>,
    confidence: Option<Confidence>,
    label: Option<LabelName>,
    metric: Option<Metric>,
}

/// The most instances a compare guard may ask for on each side.
const MAX_PER_SIDE: u32 = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: Option<Url>,
    interval_secs: Option<Whole<1, MAX_INTERVAL_SECS>>,
    failures: Option<Whole<1, MAX_FAILURES>>,
    timeout_secs: Option<Whole<1, MAX_TIMEOUT_SECS>>,
    quote_body: Option<Flag>,
}

impl TryFrom<RawPlan> for Plan {
    type Error = Refusal;

    fn try_from(raw: RawPlan) -> Result<Plan, Refusal> {
        let steps = raw
            .steps
            .ok_or_else(|| Refusal::new("steps", "this field is required"))?;
        let guards = raw.guards.map_or_else(Vec::new, |List(guards)| guards);
        if guards.len() > MAX_GUARDS {
            return Err(Refusal::new(
                "guards",
                format!(
                    "a plan has at most {MAX_GUARDS} guards, not {}",
                    guards.len()
                ),
            ));
        }
        Ok(Plan {
            steps: checked_steps(steps.0)?,
            guards: guards
                .into_iter()
                .enumerate()
                .map(|(i, guard)| {
                    checked_guard(guard).map_err(|r| r.within(&format!("guards[{i}]")))
                })
                .collect::<Result<_, _>>()?,
            on_failure: or_default(raw.on_failure),
            no_data: or_default(raw.no_data),
            finish: or_default(raw.finish),
        })
    }
}

fn or_default<T: Default>(word: Option<Word<T>>) -> T {
    word.map_or_else(T::default, |Word(word)| word)
}

fn checked_steps(raw: Vec<RawStep>) -> Result<Vec<Step>, Refusal> {
    if raw.is_empty() || raw.len() > MAX_STEPS {
        return Err(Refusal::new(
            "steps",
            format!("a plan has 1 to {MAX_STEPS} steps, not {}", raw.len()),
        ));
    }
    let mut steps: Vec<Step> = Vec::with_capacity(raw.len());
    for (i, step) in raw.into_iter().enumerate() {
        let field = format!("steps[{i}].percentage");
        let Some(StepPercentage(percentage)) = step.percentage else {
            return Err(Refusal::new(
                field,
                "every step needs a percentage (0.01 to 100)",
            ));
        };
        if let Some(previous) = steps.last() {
            if percentage <= previous.percentage {
                return Err(Refusal::new(
                    field,
                    format!(
                        "percentages must increase from step to step; {} follows {}",
                        percentage, previous.percentage
                    ),
                ));
            }
        }
        steps.push(Step {
            percentage,
            hold_secs: step.hold_secs.map_or(0, |Whole(secs)| secs),
        });
    }
    Ok(steps)
}

/// A guard with its defaults; the refusal's path is relative to the guard.
fn checked_guard(raw: RawGuard) -> Result<Guard, Refusal> {
    Ok(match raw {
        RawGuard::Reports(KindFields(fields)) => {
            let g = fields?;
            Guard::Reports(ReportsGuard {
                max_failed: g.max_failed.map_or(0, |w| w.0),
                max_failed_ratio: g.max_failed_ratio.map_or(0.0, |r| r.0),
                min_applied_ratio: g.min_applied_ratio.map_or(1.0, |r| r.0),
                min_instances: g.min_instances.map_or(1, |w| w.0),
            })
        }
        RawGuard::Prometheus(KindFields(fields)) => {
            let g = fields?;
            let url = required_url(g.url)?;
            let Some(Query(query)) = g.query else {
                return Err(Refusal::new("query", NO_QUERY));
            };
            let (min, max) = (g.min.map(|n| n.0), g.max.map(|n| n.0));
            match (min, max) {
                (None, None) => {
                    return Err(Refusal::new(
                        "max",
                        "a prometheus guard needs max, min or both",
                    ))
                }
                (Some(min), Some(max)) if min > max => {
                    return Err(Refusal::new("min", format!("min {min} is above max {max}")))
                }
                _ => {}
            }
            Guard::Prometheus(PrometheusGuard {
                url,
                query,
                min,
                max,
                interval_secs: g.interval_secs.map_or(30, |w| w.0),
                failures: g.failures.map_or(2, |w| w.0),
                no_data: or_default(g.no_data),
            })
        }
        RawGuard::Compare(KindFields(fields)) => checked_compare(fields?)?,
        RawGuard::Webhook(KindFields(fields)) => {
            let g = fields?;
            Guard::Webhook(WebhookGuard {
                url: required_url(g.url)?,
                interval_secs: g.interval_secs.map_or(30, |w| w.0),
                failures: g.failures.map_or(2, |w| w.0),
                timeout_secs: g.timeout_secs.map_or(5, |w| w.0),
                quote_body: g.quote_body.is_some_and(|f| f.0),
            })
        }
    })
}

/// A compare guard with its defaults: its query must name `{{instances}}`.
fn checked_compare(g: RawCompare) -> Result<Guard, Refusal> {
    let url = required_url(g.url)?;
    let Some(Query(query)) = g.query else {
        return Err(Refusal::new("query", NO_COMPARE_QUERY));
    };
    if !query.contains("{{instances}}") {
        return Err(Refusal::new(
            "query",
            "a compare guard's query selects each population with {{instances}}, e.g. \
             rate(errors_total{instance=~\"{{instances}}\"}[5m])",
        ));
    }
    Ok(Guard::Compare(CompareGuard {
        url,
        query,
        direction: or_default_word(g.direction, crate::compare::Direction::LowerIsBetter),
        max_ratio: g.max_ratio.map_or(1.2, |r| r.0),
        max_delta: g.max_delta.map(|d| d.0),
        min_instances_per_side: g.min_instances_per_side.map_or(3, |w| w.0),
        interval_secs: g.interval_secs.map_or(30, |w| w.0),
        failures: g.failures.map_or(2, |w| w.0),
        confidence: g.confidence.map_or(0.95, |c| c.0),
        label: g.label.map_or_else(|| "instance".to_string(), |l| l.0),
        metric: g.metric.map(|m| m.0).unwrap_or_default(),
    }))
}

fn or_default_word<T>(word: Option<Word<T>>, default: T) -> T {
    word.map_or(default, |Word(word)| word)
}

fn required_url(url: Option<Url>) -> Result<String, Refusal> {
    url.map(|Url(url)| url)
        .ok_or_else(|| Refusal::new("url", NO_URL))
}

const NO_URL: &str = "this guard needs a url (http:// or https://)";
const NO_QUERY: &str = "a prometheus guard needs a PromQL query";
const NO_COMPARE_QUERY: &str = "a compare guard needs a PromQL query with {{instances}}";

/// The non-object visits of a visitor, each refused with the visitor's `refused()` sentence.
macro_rules! refuse_visits {
    ($($visit:ident($($t:ty)?)),* $(,)?) => {
        $(
            fn $visit<E: de::Error>(self $(, _: $t)?) -> Result<Self::Value, E> {
                Err(E::custom(self.refused()))
            }
        )*
    };
}

/// A JSON object read as `T` (a JSON array is not read as a struct's fields in a row).
struct Object<T>(T);

impl<'de, T: Deserialize<'de> + Shape> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Only<T>(PhantomData<T>);

        impl<T: Shape> Only<T> {
            fn refused(&self) -> String {
                format!("expected {} (a JSON object)", T::WHAT)
            }
        }

        impl<'de, T: Deserialize<'de> + Shape> Visitor<'de> for Only<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(&self.refused())
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<T, A::Error> {
                Err(de::Error::custom(self.refused()))
            }

            refuse_visits!(
                visit_unit(),
                visit_bool(bool),
                visit_i64(i64),
                visit_u64(u64),
                visit_f64(f64),
                visit_str(&str)
            );
        }

        d.deserialize_any(Only(PhantomData)).map(Object)
    }
}

/// A JSON array of objects, each read as `T`.
struct List<T>(Vec<T>);

impl<'de, T: Deserialize<'de> + Shape> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Only<T>(PhantomData<T>);

        impl<T: Shape> Only<T> {
            fn refused(&self) -> String {
                format!("expected a list of {}", T::PLURAL)
            }
        }

        impl<'de, T: Deserialize<'de> + Shape> Visitor<'de> for Only<T> {
            type Value = Vec<T>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(&self.refused())
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_STEPS));
                while let Some(Object(item)) = seq.next_element()? {
                    items.push(item);
                }
                Ok(items)
            }

            fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Vec<T>, A::Error> {
                Err(de::Error::custom(self.refused()))
            }

            refuse_visits!(
                visit_unit(),
                visit_bool(bool),
                visit_i64(i64),
                visit_u64(u64),
                visit_f64(f64),
                visit_str(&str)
            );
        }

        d.deserialize_any(Only(PhantomData)).map(List)
    }
}

/// The fields of one guard kind. serde reads an internally tagged enum's fields from a buffer,
/// out of sight of the plan's path tracker (dtolnay/path-to-error#1), so they are read with a
/// tracker of their own, and a refusal is kept, with its path inside the guard, for
/// `TryFrom<RawPlan>` to report.
struct KindFields<T>(Result<T, Refusal>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for KindFields<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(KindFields(serde_path_to_error::deserialize(d).map_err(
            |e| {
                let path = shown(e.path());
                let message = e.into_inner().to_string();
                Refusal::new(path, unknown_field(&message, &["kind"]).unwrap_or(message))
            },
        )))
    }
}

/// Reads a field's value with `check`, whose error is the sentence the API answers.
fn checked<'de, D: Deserializer<'de>, T>(
    d: D,
    check: impl FnOnce(&Value) -> Result<T, String>,
) -> Result<T, D::Error> {
    check(&Value::deserialize(d)?).map_err(de::Error::custom)
}

/// A finite number.
struct Number(f64);

fn number(value: &Value) -> Result<f64, String> {
    match value {
        Value::Number(n) => n
            .as_f64()
            .filter(|x| x.is_finite())
            .ok_or_else(|| "expected a finite number".to_string()),
        _ => Err("expected a number".to_string()),
    }
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked(d, number).map(Number)
    }
}

/// A number from 0 to 1.
struct Ratio(f64);

impl<'de> Deserialize<'de> for Ratio {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked(d, |value| match number(value)? {
            x if (0.0..=1.0).contains(&x) => Ok(Ratio(x)),
            x => Err(format!("{x} is not a ratio; use a number from 0 to 1")),
        })
    }
}

/// A whole number from `LOW` to `HIGH`.
struct Whole<const LOW: u32, const HIGH: u32>(u32);

impl<'de, const LOW: u32, const HIGH: u32> Deserialize<'de> for Whole<LOW, HIGH> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked(d, |value| {
            value
                .as_u64()
                .filter(|x| (u64::from(LOW)..=u64::from(HIGH)).contains(x))
                .map(|x| Whole(x as u32))
                .ok_or_else(|| format!("expected a whole number from {LOW} to {HIGH}"))
        })
    }
}

struct Flag(bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked(d, |value| {
            value
                .as_bool()
                .map(Flag)
                .ok_or_else(|| "expected true or false".to_string())
        })
    }
}

/// One of `T`'s words.
struct Word<T>(T);

impl<'de, T: Words> Deserialize<'de> for Word<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked(d, |value| {
            T::ALL
                .iter()
                .find(|word| value.as_str() == Some(word.as_str()))
                .map(|word| Word(*word))
                .ok_or_else(|| format!("expected one of: {}", T::listed()))
        })
    }
}

/// A step's percentage: 0.01 to 100, at most two decimals.
struct StepPercentage(Percentage);

impl<'de> Deserialize<'de> for StepPercentage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked(d, |value| match Percentage::parse(number(value)?)? {
            zero if zero.is_zero() => Err("a step's percentage is at least 0.01".to_string()),
            percentage => Ok(StepPercentage(percentage)),
        })
    }
}

/// A guard's URL ([`check_url`]).
struct Url(String);

impl<'de> Deserialize<'de> for Url {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked(d, |value| {
            let url = value.as_str().ok_or(NO_URL)?;
            check_url(url)?;
            Ok(Url(url.to_string()))
        })
    }
}

/// A ratio limit: a finite number of at least 1.
struct AtLeastOne(f64);

impl<'de> Deserialize<'de> for AtLeastOne {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked(d, |value| match number(value)? {
            x if x >= 1.0 => Ok(AtLeastOne(x)),
            x => Err(format!(
                "{x} is below 1; the ratio is how many times worse the lane may be"
            )),
        })
    }
}

/// A finite number of at least 0.
struct NonNegative(f64);

impl<'de> Deserialize<'de> for NonNegative {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked(d, |value| match number(value)? {
            x if x >= 0.0 => Ok(NonNegative(x)),
            x => Err(format!("{x} is negative; use 0 or more")),
        })
    }
}

/// A test's confidence: from 0.5 up to (not including) 1.
struct Confidence(f64);

impl<'de> Deserialize<'de> for Confidence {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked(d, |value| match number(value)? {
            x if (0.5..1.0).contains(&x) => Ok(Confidence(x)),
            x => Err(format!(
                "{x} is not a confidence; use a number from 0.5 to below 1, e.g. 0.95"
            )),
        })
    }
}

/// A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`, at most 100 characters.
struct LabelName(String);

impl<'de> Deserialize<'de> for LabelName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked(d, |value| {
            let name = value.as_str().unwrap_or_default();
            let mut chars = name.chars();
            let ok = name.len() <= 100
                && chars
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if ok {
                Ok(LabelName(name.to_string()))
            } else {
                Err("expected a Prometheus label name, e.g. instance or pod".to_string())
            }
        })
    }
}

/// What a compare guard measures, for its sentence: at most 100 characters of one line.
struct Metric(String);

impl<'de> Deserialize<'de> for Metric {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked(d, |value| match value.as_str() {
            Some(m) if m.chars().count() <= 100 && !m.contains(['\n', '\r']) => {
                Ok(Metric(m.trim().to_string()))
            }
            _ => {
                Err("expected a short name of the metric (one line, at most 100 characters)".into())
            }
        })
    }
}

/// A PromQL query: not blank, at most [`MAX_QUERY_LEN`] bytes.
struct Query(String);

impl<'de> Deserialize<'de> for Query {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked(d, |value| match value.as_str() {
            Some(q) if q.trim().is_empty() => Err(NO_QUERY.to_string()),
            Some(q) if q.len() > MAX_QUERY_LEN => {
                Err(format!("a query has at most {MAX_QUERY_LEN} characters"))
            }
            Some(q) => Ok(Query(q.to_string())),
            None => Err(NO_QUERY.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(plan: Value) -> (String, String) {
        let e = parse_plan(&plan, "plan").unwrap_err();
        (e.field, e.message)
    }

    /// serde's own refusals come out in the API's words, at the field they are about.
    #[test]
    fn serdes_refusals_read_as_the_apis_sentences() {
        let one_step = json!([{"percentage": 5}]);
        let guard = |g: Value| json!({"steps": one_step, "guards": [{"kind": "reports"}, g]});
        for (plan, field, message) in [
            (json!([]), "plan", "expected a plan (a JSON object)"),
            (
                json!([[{"percentage": 5}]]),
                "plan",
                "expected a plan (a JSON object)",
            ),
            (
                json!({"steps": one_step, "step": 1}),
                "plan.step",
                "unknown field; expected one of: steps, guards, on_failure, no_data, finish",
            ),
            (
                json!({"steps": {}}),
                "plan.steps",
                "expected a list of steps",
            ),
            (
                json!({"steps": [[5, 60]]}),
                "plan.steps[0]",
                "expected a step (a JSON object)",
            ),
            (
                json!({"steps": [{"percentage": 5, "hold": 1}]}),
                "plan.steps[0].hold",
                "unknown field; expected one of: percentage, hold_secs",
            ),
            (
                json!({"steps": one_step, "guards": {"kind": "reports"}}),
                "plan.guards",
                "expected a list of guards",
            ),
            (
                guard(json!(["reports"])),
                "plan.guards[1]",
                "expected a guard (a JSON object)",
            ),
            (
                guard(json!({"url": "http://h"})),
                "plan.guards[1].kind",
                "every guard needs a kind: reports, prometheus, webhook or compare",
            ),
            (
                guard(json!({"kind": 1})),
                "plan.guards[1].kind",
                "expected reports, prometheus, webhook or compare",
            ),
            (
                guard(json!({"kind": "late\"ncy"})),
                "plan.guards[1].kind",
                "unknown guard kind \"late\\\"ncy\"; use reports, prometheus, webhook or compare",
            ),
            (
                guard(json!({"kind": "reports", "url": "http://h"})),
                "plan.guards[1].url",
                "unknown field; expected one of: kind, max_failed, max_failed_ratio, \
                 min_applied_ratio, min_instances",
            ),
            (
                guard(json!({"kind": "prometheus", "timeout_secs": 5})),
                "plan.guards[1].timeout_secs",
                "unknown field; expected one of: kind, url, query, min, max, interval_secs, \
                 failures, no_data",
            ),
            (
                guard(json!({"kind": "webhook", "url": "http://h", "query": "up"})),
                "plan.guards[1].query",
                "unknown field; expected one of: kind, url, interval_secs, failures, \
                 timeout_secs, quote_body",
            ),
            (
                guard(
                    json!({"kind": "prometheus", "url": "http://h", "query": "up", "max": 1,
                             "no_data": "skip"}),
                ),
                "plan.guards[1].no_data",
                "expected one of: wait, pass, fail",
            ),
            (
                guard(json!({"kind": "webhook", "url": 1})),
                "plan.guards[1].url",
                "this guard needs a url (http:// or https://)",
            ),
        ] {
            assert_eq!(
                refused(plan.clone()),
                (field.into(), message.into()),
                "{plan}"
            );
        }
    }

    /// A compare guard: its defaults, and every bad value refused naming its field.
    #[test]
    fn compare_guards_are_read_with_their_defaults_and_bounds() {
        let guard = |extra: Value| {
            let mut g = json!({"kind": "compare", "url": "http://127.0.0.1:9090",
                               "query": "errors{pod=~\"{{instances}}\"}"});
            for (k, v) in extra.as_object().unwrap() {
                g[k] = v.clone();
            }
            json!({"steps": [{"percentage": 5}], "guards": [g]})
        };
        let plan = parse_plan(&guard(json!({})), "plan").unwrap();
        let Guard::Compare(g) = &plan.guards[0] else {
            panic!("a compare guard: {plan:?}")
        };
        assert_eq!(g.direction, crate::compare::Direction::LowerIsBetter);
        assert_eq!((g.max_ratio, g.max_delta), (1.2, None));
        assert_eq!((g.min_instances_per_side, g.confidence), (3, 0.95));
        assert_eq!((g.interval_secs, g.failures), (30, 2));
        assert_eq!((g.label.as_str(), g.metric.as_str()), ("instance", ""));
        for (extra, field, says) in [
            (json!({"query": "errors"}), "query", "{{instances}}"),
            (
                json!({"direction": "up"}),
                "direction",
                "lower_is_better, higher_is_better",
            ),
            (json!({"max_ratio": 0.5}), "max_ratio", "below 1"),
            (json!({"max_delta": -1}), "max_delta", "negative"),
            (
                json!({"min_instances_per_side": 0}),
                "min_instances_per_side",
                "from 1 to 10000",
            ),
            (
                json!({"confidence": 1}),
                "confidence",
                "from 0.5 to below 1",
            ),
            (
                json!({"confidence": 0.4}),
                "confidence",
                "from 0.5 to below 1",
            ),
            (json!({"label": "pod-name"}), "label", "label name"),
            (json!({"metric": "two\nlines"}), "metric", "one line"),
            (json!({"url": "ftp://x"}), "url", "http"),
            (json!({"samples": 3}), "samples", "unknown field"),
        ] {
            let (got_field, message) = refused(guard(extra.clone()));
            assert_eq!(
                got_field,
                format!("plan.guards[0].{field}"),
                "{extra}: {message}"
            );
            assert!(message.contains(says), "{extra}: {message}");
        }
    }

    /// One guard alone is read by the plan's rules, its refusals named where it sits.
    #[test]
    fn a_guard_alone_is_read_like_one_in_a_plan() {
        let guard = json!({"kind": "compare", "url": "http://p:9090",
                           "query": "errors{pod=~\"{{instances}}\"}", "label": "pod"});
        let Guard::Compare(g) = parse_guard(&guard, "guard").unwrap() else {
            panic!("a compare guard")
        };
        assert_eq!((g.label.as_str(), g.min_instances_per_side), ("pod", 3));
        let e = parse_guard(&json!({"kind": "compare", "url": "http://p"}), "guard").unwrap_err();
        assert_eq!(e.field, "guard.query");
        let e = parse_guard(&json!({"url": "http://p"}), "guard").unwrap_err();
        assert_eq!(e.field, "guard.kind");
        assert_eq!(parse_guard(&json!(3), "guard").unwrap_err().field, "guard");
    }
}
