//! Gray lanes: which candidate version a context gets, and why (docs/lanes.md).

use serde::{Deserialize, Serialize};

use super::bucket::bucket;
use super::percentage::Percentage;
use super::selector::Selector;
use crate::quote::quoted;

// A group of its own: rustfmt's 2021 and 2024 style editions order it differently.
use super::Context;

/// The part of an active gray lane that decides who gets its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneRule {
    /// Lane id; breaks ties between lanes of equal priority (lower first).
    pub id: i64,
    /// The config version this lane serves.
    pub version: i64,
    /// Which contexts are eligible at all.
    pub selector: Selector,
    /// Values of the stickiness key that always match when the selector does.
    pub targets: Vec<String>,
    /// Share of eligible stickiness values let in: a bucket below its basis points.
    pub percentage: Percentage,
    /// The context key whose value is bucketed, `client_id` unless chosen otherwise.
    pub stickiness: String,
    /// Fixed at lane creation so that buckets, and hence membership, never reshuffle.
    pub salt: String,
    /// Lower priorities are tried first.
    pub priority: i64,
}

impl LaneRule {
    /// Whether this lane serves its version to `ctx`:
    /// `selector matches && (ctx[stickiness] ∈ targets || bucket(salt, ctx[stickiness]) < percentage.bp())`.
    /// A context without the stickiness key never matches.
    pub fn matches(&self, ctx: &Context) -> bool {
        self.selector.matches(ctx)
            && ctx.get(&self.stickiness).is_some_and(|value| {
                self.targets.contains(value) || bucket(&self.salt, value) < self.percentage.bp()
            })
    }

    /// Resolution order: by (priority, id) ascending.
    fn order(&self) -> (i64, i64) {
        (self.priority, self.id)
    }
}

/// The lane whose version `ctx` gets: among `lanes` (the active ones), the first that matches in
/// (priority, id) order; `None` means the stable release applies.
pub fn resolve<'a>(lanes: &'a [LaneRule], ctx: &Context) -> Option<&'a LaneRule> {
    lanes
        .iter()
        .filter(|lane| lane.matches(ctx))
        .min_by_key(|lane| lane.order())
}

/// How one lane judged one context, for previews and "why did I get this version?" answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneVerdict {
    pub lane_id: i64,
    pub version: i64,
    pub selector_matched: bool,
    /// The context's value for the lane's stickiness key, if present.
    pub stickiness_value: Option<String>,
    pub in_targets: bool,
    /// `bucket(salt, stickiness_value)`, when there is a stickiness value.
    pub bucket: Option<u32>,
    pub threshold_bp: u32,
    /// Same as [`LaneRule::matches`].
    pub matched: bool,
    /// One human sentence naming the deciding fact.
    pub reason: String,
}

/// Every lane's verdict on `ctx`, in resolution order; the first verdict with `matched` is the
/// lane [`resolve`] picks.
pub fn explain(lanes: &[LaneRule], ctx: &Context) -> Vec<LaneVerdict> {
    let mut ordered: Vec<&LaneRule> = lanes.iter().collect();
    ordered.sort_by_key(|lane| lane.order());
    ordered.into_iter().map(|lane| verdict(lane, ctx)).collect()
}

fn verdict(lane: &LaneRule, ctx: &Context) -> LaneVerdict {
    let unmet = lane.selector.first_unmet(ctx);
    let stickiness_value = ctx.get(&lane.stickiness).cloned();
    let in_targets = stickiness_value
        .as_ref()
        .is_some_and(|value| lane.targets.contains(value));
    let bucket = stickiness_value
        .as_deref()
        .map(|value| bucket(&lane.salt, value));
    let threshold = lane.percentage.bp();
    let in_percentage = bucket.is_some_and(|b| b < threshold);

    let reason = match (unmet, &stickiness_value, bucket) {
        (Some(requirement), _, _) => {
            let actual = match ctx.get(requirement.key()) {
                Some(value) => format!("{} is {value}", requirement.key()),
                None => format!("{} is absent", requirement.key()),
            };
            format!("selector {requirement} did not match ({actual})")
        }
        (None, None, _) | (None, _, None) => {
            format!("stickiness key {} absent from context", lane.stickiness)
        }
        (None, Some(value), Some(_)) if in_targets => {
            format!("{} {value} is in targets", lane.stickiness)
        }
        (None, Some(_), Some(b)) if in_percentage => format!("bucket {b} < threshold {threshold}"),
        (None, Some(_), Some(b)) => format!("bucket {b} ≥ threshold {threshold}"),
    };

    LaneVerdict {
        lane_id: lane.id,
        version: lane.version,
        selector_matched: unmet.is_none(),
        stickiness_value,
        in_targets,
        bucket,
        threshold_bp: threshold,
        matched: unmet.is_none() && (in_targets || in_percentage),
        reason,
    }
}

/// At most this many labels per instance: they are stored with it, listed and streamed to the
/// dashboard, and checked by every lane's selector.
pub const MAX_LABELS: usize = 32;
/// At most this many bytes in a label's key.
pub const MAX_LABEL_KEY_BYTES: usize = 128;
/// At most this many bytes in a label's value.
pub const MAX_LABEL_VALUE_BYTES: usize = 256;
/// At most this many bytes for all of an instance's labels, written as `key=value,key2=value2`.
pub const MAX_LABELS_BYTES: usize = 4096;

/// Parses labels written as `key=value,key2=value2` (as in the `labels` query parameter and the
/// `X-Labels` header) into a context. Whitespace around keys and values is ignored; the empty
/// string gives no labels. Labels over [`MAX_LABELS`], [`MAX_LABEL_KEY_BYTES`],
/// [`MAX_LABEL_VALUE_BYTES`] or [`MAX_LABELS_BYTES`] are refused, with a message naming the limit.
pub fn parse_labels(text: &str) -> Result<Context, String> {
    let mut labels = Context::new();
    if text.trim().is_empty() {
        return Ok(labels);
    }
    if text.len() > MAX_LABELS_BYTES {
        return Err(format!(
            "labels are {} bytes long; at most {MAX_LABELS_BYTES} are allowed: keep only the \
             labels lanes select on",
            text.len()
        ));
    }
    let count = text.split(',').count();
    if count > MAX_LABELS {
        return Err(format!(
            "there are {count} labels; at most {MAX_LABELS} are allowed: keep only the labels \
             lanes select on"
        ));
    }
    for pair in text.split(',') {
        let pair = pair.trim();
        let Some((key, value)) = pair.split_once('=') else {
            return Err(if pair.is_empty() {
                format!(
                    "labels {} contain an empty pair; remove the extra \",\"",
                    quoted(text)
                )
            } else {
                format!(
                    "label {} has no \"=\"; write labels as key=value,key2=value2",
                    quoted(pair)
                )
            });
        };
        let (key, value) = (key.trim(), value.trim());
        for (what, token, max) in [
            ("key", key, MAX_LABEL_KEY_BYTES),
            ("value", value, MAX_LABEL_VALUE_BYTES),
        ] {
            if token.len() > max {
                return Err(format!(
                    "label {what} {} is {} bytes long; at most {max} are allowed",
                    quoted(token),
                    token.len()
                ));
            }
            if token.is_empty() || !token.chars().all(super::selector::is_token_char) {
                return Err(format!(
                    "label {} has an invalid {what} {}; use one or more of A-Z a-z 0-9 . _ / -",
                    quoted(pair),
                    quoted(token)
                ));
            }
        }
        if labels.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(format!(
                "label {} repeats key {}; give each key once",
                quoted(pair),
                quoted(key)
            ));
        }
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ctx(pairs: &[(&str, &str)]) -> Context {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn lane(id: i64, selector: &str, percentage_bp: u32) -> LaneRule {
        LaneRule {
            id,
            version: id * 10,
            selector: Selector::parse(selector).unwrap(),
            targets: Vec::new(),
            percentage: Percentage::from_bp(percentage_bp).unwrap(),
            stickiness: "client_id".into(),
            salt: "lane-1".into(),
            priority: 0,
        }
    }

    #[test]
    fn percentage_gates_on_the_bucket() {
        // bucket("lane-1", "pod-1") == 374
        let pod = ctx(&[("client_id", "pod-1")]);
        assert!(lane(1, "", 375).matches(&pod));
        assert!(!lane(1, "", 374).matches(&pod));
        assert!(lane(1, "", 10_000).matches(&pod));
        assert!(!lane(1, "", 0).matches(&pod));
    }

    #[test]
    fn targets_match_regardless_of_percentage_but_not_of_selector() {
        let mut rule = lane(1, "region=beijing", 0);
        rule.targets = vec!["pod-1".into()];
        assert!(rule.matches(&ctx(&[("client_id", "pod-1"), ("region", "beijing")])));
        assert!(!rule.matches(&ctx(&[("client_id", "pod-1"), ("region", "shanghai")])));
        assert!(!rule.matches(&ctx(&[("client_id", "pod-2"), ("region", "beijing")])));
    }

    #[test]
    fn absent_stickiness_key_never_matches() {
        let mut rule = lane(1, "", 10_000);
        rule.stickiness = "user_id".into();
        assert!(!rule.matches(&ctx(&[("client_id", "pod-1")])));
        assert!(rule.matches(&ctx(&[("user_id", "user-42")])));
    }

    #[test]
    fn resolve_picks_lowest_priority_then_lowest_id() {
        let mut lanes = vec![lane(3, "", 10_000), lane(2, "", 10_000), lane(1, "", 0)];
        lanes[0].priority = -1;
        let pod = ctx(&[("client_id", "pod-1")]);
        assert_eq!(resolve(&lanes, &pod).map(|l| l.id), Some(3));
        lanes[0].priority = 1;
        assert_eq!(resolve(&lanes, &pod).map(|l| l.id), Some(2));
        assert_eq!(resolve(&lanes[2..], &pod), None);
        assert_eq!(resolve(&[], &pod), None);
    }

    #[test]
    fn explain_gives_reasons_in_resolution_order() {
        let mut by_user = lane(7, "", 3000);
        by_user.stickiness = "user_id".into();
        by_user.salt = "shop/prod/app.json#7".into();
        let mut targeted = by_user.clone();
        targeted.id = 8;
        targeted.targets = vec!["user-42".into()];
        let mut lanes = vec![
            targeted,
            by_user,
            lane(1, "region=beijing", 10_000),
            lane(2, "", 3000),
            lane(3, "zone", 3000),
        ];
        lanes[0].priority = 5;
        let context = ctx(&[("region", "shanghai"), ("user_id", "user-42")]);
        let verdicts = explain(&lanes, &context);
        let reasons: Vec<_> = verdicts
            .iter()
            .map(|v| (v.lane_id, v.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                (
                    1,
                    "selector region=beijing did not match (region is shanghai)"
                ),
                (2, "stickiness key client_id absent from context"),
                (3, "selector zone did not match (zone is absent)"),
                (7, "bucket 7524 ≥ threshold 3000"),
                (8, "user_id user-42 is in targets"),
            ]
        );
        let targeted = &verdicts[4];
        assert!(targeted.matched && targeted.in_targets && targeted.selector_matched);
        assert_eq!(targeted.bucket, Some(7524));
        assert_eq!(targeted.stickiness_value.as_deref(), Some("user-42"));
        assert_eq!(verdicts[1].bucket, None);

        let pod = ctx(&[("client_id", "pod-1")]);
        let inside = &explain(&lanes[3..4], &pod)[0];
        assert_eq!(inside.reason, "bucket 374 < threshold 3000");
        assert!(inside.matched);
        assert_eq!(inside.threshold_bp, 3000);
    }

    #[test]
    fn labels_parse_into_a_context() {
        assert_eq!(parse_labels(""), Ok(Context::new()));
        assert_eq!(parse_labels("  "), Ok(Context::new()));
        assert_eq!(
            parse_labels("region=beijing, zone = a/1,version=2.1.3-rc.1"),
            Ok(ctx(&[
                ("region", "beijing"),
                ("zone", "a/1"),
                ("version", "2.1.3-rc.1")
            ]))
        );
    }

    #[test]
    fn bad_labels_name_the_pair() {
        assert_eq!(
            parse_labels("region=beijing,zone").unwrap_err(),
            "label \"zone\" has no \"=\"; write labels as key=value,key2=value2"
        );
        assert_eq!(
            parse_labels("region=bei jing").unwrap_err(),
            "label \"region=bei jing\" has an invalid value \"bei jing\"; \
             use one or more of A-Z a-z 0-9 . _ / -"
        );
        assert!(parse_labels("=x").unwrap_err().contains("invalid key \"\""));
        let missing_value = parse_labels("a=").unwrap_err();
        assert!(
            missing_value.contains("invalid value \"\""),
            "{missing_value}"
        );
        assert!(parse_labels("a=1,,b=2").unwrap_err().contains("empty pair"));
        assert_eq!(
            parse_labels("a=1,a=2").unwrap_err(),
            "label \"a=2\" repeats key \"a\"; give each key once"
        );
    }

    #[test]
    fn bad_labels_are_quoted_short() {
        let long = "v".repeat(200);
        let message = parse_labels(&format!("a={long} x")).unwrap_err();
        assert!(message.len() < 400, "{message}");
        assert!(
            message.contains(&format!("\"a={}…\"", &long[..98])),
            "{message}"
        );
    }

    #[test]
    fn labels_are_bounded_in_number_and_size() {
        let many = |n: usize| {
            (0..n)
                .map(|i| format!("k{i}=v"))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert_eq!(parse_labels(&many(MAX_LABELS)).unwrap().len(), MAX_LABELS);
        assert_eq!(
            parse_labels(&many(MAX_LABELS + 1)).unwrap_err(),
            "there are 33 labels; at most 32 are allowed: keep only the labels lanes select on"
        );
        let key = "k".repeat(MAX_LABEL_KEY_BYTES);
        assert!(parse_labels(&format!("{key}=v")).is_ok());
        assert_eq!(
            parse_labels(&format!("{key}k=v")).unwrap_err(),
            format!(
                "label key \"{}…\" is 129 bytes long; at most 128 are allowed",
                "k".repeat(crate::quote::QUOTE_CHARS)
            )
        );
        let value = "v".repeat(MAX_LABEL_VALUE_BYTES);
        assert!(parse_labels(&format!("k={value}")).is_ok());
        let long_value = parse_labels(&format!("k={value}v")).unwrap_err();
        assert!(
            long_value.ends_with("is 257 bytes long; at most 256 are allowed"),
            "{long_value}"
        );
        // Sixteen labels of the longest value are within the count, not within the total.
        let wide: Vec<String> = (0..16).map(|i| format!("k{i:02}={value}")).collect();
        assert!(parse_labels(&wide[..15].join(",")).is_ok());
        let total = parse_labels(&wide.join(",")).unwrap_err();
        assert_eq!(
            total,
            "labels are 4175 bytes long; at most 4096 are allowed: keep only the labels lanes \
             select on"
        );
    }

    proptest! {
        /// Whatever is sent, an error quotes at most a short excerpt of it.
        #[test]
        fn label_errors_quote_little_of_the_input(text in "[a-z=, ]{0,300}|[^,]{0,300}") {
            if let Err(message) = parse_labels(&text) {
                // Two quotes of at most QUOTE_CHARS characters and the sentence around them.
                prop_assert!(message.chars().count() < 300, "{}", message);
            }
        }
    }

    fn lanes() -> impl Strategy<Value = Vec<LaneRule>> {
        let rule = (
            0i64..4,
            0i64..50,
            prop::bool::ANY,
            0u32..=10_000,
            "[a-z]{1,6}",
        );
        prop::collection::vec(rule, 0..8).prop_map(|rules| {
            rules
                .into_iter()
                .enumerate()
                .map(
                    |(i, (priority, id, needs_canary, percentage_bp, salt))| LaneRule {
                        id: id * 10 + i as i64, // unique ids, in no particular order
                        version: i as i64,
                        selector: Selector::parse(if needs_canary { "canary" } else { "" })
                            .unwrap(),
                        targets: vec!["pod-target".into()],
                        percentage: Percentage::from_bp(percentage_bp).unwrap(),
                        stickiness: "client_id".into(),
                        salt,
                        priority,
                    },
                )
                .collect()
        })
    }

    proptest! {
        #[test]
        fn lowest_priority_then_id_among_matching_lanes_wins(
            lanes in lanes(),
            client_id in prop_oneof!["pod-[0-9]{1,3}", Just("pod-target".to_string())],
            canary in prop::bool::ANY,
        ) {
            let mut context = ctx(&[("client_id", &client_id)]);
            if canary {
                context.insert("canary".into(), "yes".into());
            }
            let mut sorted = lanes.clone();
            sorted.sort_by_key(|l| (l.priority, l.id));
            let expected = sorted.iter().find(|l| l.matches(&context)).map(|l| l.id);
            prop_assert_eq!(resolve(&lanes, &context).map(|l| l.id), expected);

            let verdicts = explain(&lanes, &context);
            prop_assert_eq!(verdicts.iter().find(|v| v.matched).map(|v| v.lane_id), expected);
            for verdict in &verdicts {
                let lane = lanes.iter().find(|l| l.id == verdict.lane_id).unwrap();
                prop_assert_eq!(verdict.matched, lane.matches(&context));
            }
        }
    }
}
