//! A watched config's state, how it resolves for a context, and its frames.

use crate::domain::format::{to_json_text, ConfigFormat, ValueError};
use crate::domain::lane::{resolve, LaneRule};
use crate::domain::selector::Selector;
use crate::domain::Context;
use crate::model::EnvPath;
use crate::model::{Deleted, Resolved, Rules, RulesLane, RulesVersion};
use crate::server::db::{self, watch as sql};
use crate::{Error, Result};
use axum::body::Bytes;
use serde_json::value::RawValue;
use std::sync::{Arc, OnceLock};

/// A served version: its number, checksum and content, and the answers about
/// it, each worked out once, when first asked for.
#[derive(Debug, Clone)]
pub struct Served {
    pub version: i64,
    pub checksum: String,
    pub content: String,
    /// The resolve route's answer (body and ETag) for this (version, lane).
    pub(super) answer: OnceLock<Answer>,
    /// The content as serialized JSON (OFREP's `value`), or why there is none.
    value: OnceLock<Result<Box<RawValue>, ValueError>>,
}

impl Served {
    pub(super) fn new(version: i64, checksum: String, content: String) -> Self {
        Self {
            version,
            checksum,
            content,
            answer: OnceLock::new(),
            value: OnceLock::new(),
        }
    }

    /// The content parsed by `format` (its config's) as serialized JSON,
    /// parsed and serialized once: an answer copies it as it is. None larger
    /// than [`crate::domain::format::MAX_VALUE_BYTES`] is made.
    pub fn value(&self, format: ConfigFormat) -> Result<&RawValue, &ValueError> {
        self.value
            .get_or_init(|| to_json_text(format, &self.content))
            .as_deref()
    }
}

/// A pre-serialized resolve answer: the JSON body and its strong ETag.
#[derive(Debug, Clone)]
pub struct Answer {
    pub body: Bytes,
    /// Quoted; it differs whenever the version, the lane or the content differs.
    pub etag: Arc<str>,
}

/// Why a context gets what it gets (OFREP's reasons, docs/ofrep.md#reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A lane matched by its selector and targets.
    TargetingMatch,
    /// A lane matched by its percentage.
    Split,
    /// The stable release; the config has no active lane.
    Static,
    /// The stable release; active lanes did not match (or nothing resolves).
    Default,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TargetingMatch => "TARGETING_MATCH",
            Self::Split => "SPLIT",
            Self::Static => "STATIC",
            Self::Default => "DEFAULT",
        }
    }
}

/// What one context gets from one config.
#[derive(Debug, Clone, Copy)]
pub struct Evaluation<'a> {
    pub served: &'a Served,
    pub lane: Option<i64>,
    pub reason: Reason,
}

/// Everything needed to resolve one config for any context.
#[derive(Debug)]
pub struct ConfigState {
    pub(super) namespace: String,
    pub(super) env: String,
    pub(super) key: String,
    pub(super) format: ConfigFormat,
    /// The newest release event of the config (the SSE id of frames about it).
    pub(super) event_id: i64,
    pub(super) stable: Option<Served>,
    /// Active lanes in resolution order, with the content each serves.
    pub(super) rules: Vec<LaneRule>,
    pub(super) lanes: Vec<(RulesLaneMeta, Served)>,
}

#[derive(Debug, Clone)]
pub(super) struct RulesLaneMeta {
    pub(super) selector: String,
    pub(super) percentage: crate::model::Percentage,
}

/// The version a context gets: from a lane, or the stable release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Resolution {
    pub version: i64,
    pub lane: Option<i64>,
}

impl ConfigState {
    /// The single place where the watch stream decides what a context gets
    /// (docs/lanes.md#which-version-a-reader-gets): the first matching active lane, else the stable
    /// release, else nothing.
    pub fn resolve_for(&self, context: &Context) -> Option<Resolution> {
        match resolve(&self.rules, context) {
            Some(lane) => Some(Resolution {
                version: lane.version,
                lane: Some(lane.id),
            }),
            None => self.stable.as_ref().map(|s| Resolution {
                version: s.version,
                lane: None,
            }),
        }
    }

    /// What `context` gets, with the reason; `None` when nothing resolves.
    pub fn evaluate(&self, context: &Context) -> Option<Evaluation<'_>> {
        match resolve(&self.rules, context) {
            Some(rule) => {
                let index = self.rules.iter().position(|r| r.id == rule.id)?;
                let in_targets = context
                    .get(&rule.stickiness)
                    .is_some_and(|value| rule.targets.contains(value));
                Some(Evaluation {
                    served: &self.lanes[index].1,
                    lane: Some(rule.id),
                    reason: if in_targets {
                        Reason::TargetingMatch
                    } else {
                        Reason::Split
                    },
                })
            }
            None => self.stable.as_ref().map(|served| Evaluation {
                served,
                lane: None,
                reason: if self.rules.is_empty() {
                    Reason::Static
                } else {
                    Reason::Default
                },
            }),
        }
    }

    /// The resolve route's answer for an evaluation of this config, serialized once.
    pub fn answer<'a>(&'a self, evaluation: &Evaluation<'a>) -> &'a Answer {
        let served = evaluation.served;
        served.answer.get_or_init(|| {
            let body =
                serde_json::to_vec(&self.resolved(served, evaluation.lane)).unwrap_or_default();
            Answer {
                body: Bytes::from(body),
                etag: etag(served.version, evaluation.lane, &served.checksum).into(),
            }
        })
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn env(&self) -> &str {
        &self.env
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn format(&self) -> ConfigFormat {
        self.format
    }

    /// The newest release event of this config.
    pub fn event_id(&self) -> i64 {
        self.event_id
    }

    /// The content bytes held (stable and lanes).
    pub(super) fn content_bytes(&self) -> usize {
        self.stable.as_ref().map_or(0, |s| s.content.len())
            + self
                .lanes
                .iter()
                .map(|(_, s)| s.content.len())
                .sum::<usize>()
    }

    pub(super) fn served(&self, resolution: Resolution) -> Option<&Served> {
        match resolution.lane {
            None => self.stable.as_ref(),
            Some(id) => self
                .rules
                .iter()
                .position(|r| r.id == id)
                .map(|i| &self.lanes[i].1),
        }
    }

    pub(super) fn config_frame(&self, resolution: Resolution) -> Option<Bytes> {
        let served = self.served(resolution)?;
        let payload = self.resolved(served, resolution.lane);
        Some(frame("config", self.event_id, &payload))
    }

    /// What a subscriber is served: the payload of a `config` event and of a resolve answer.
    fn resolved(&self, served: &Served, lane: Option<i64>) -> Resolved {
        Resolved {
            namespace: self.namespace.clone(),
            env: self.env.clone(),
            key: self.key.clone(),
            format: self.format,
            version: served.version,
            lane,
            checksum: served.checksum.clone(),
            content: served.content.clone(),
        }
    }

    pub(super) fn rules_frame(&self) -> Bytes {
        let payload = Rules {
            namespace: self.namespace.clone(),
            env: self.env.clone(),
            key: self.key.clone(),
            format: self.format,
            stable: self.stable.as_ref().map(|s| RulesVersion {
                version: s.version,
                checksum: s.checksum.clone(),
                content: s.content.clone(),
            }),
            lanes: self
                .rules
                .iter()
                .zip(&self.lanes)
                .map(|(rule, (meta, served))| RulesLane {
                    id: rule.id,
                    version: rule.version,
                    selector: meta.selector.clone(),
                    targets: rule.targets.clone(),
                    percentage: meta.percentage,
                    stickiness: rule.stickiness.clone(),
                    salt: rule.salt.clone(),
                    priority: rule.priority,
                    checksum: served.checksum.clone(),
                    content: served.content.clone(),
                })
                .collect(),
        };
        frame("rules", self.event_id, &payload)
    }
}

/// The strong ETag of a resolve answer: the version, the lane (`s` for the
/// stable release) and the content's checksum, so two versions with equal
/// content, or one version served by a lane and as stable, never share a tag
/// (the answer's `version` and `lane` fields differ).
pub fn etag(version: i64, lane: Option<i64>, checksum: &str) -> String {
    let digest = checksum.strip_prefix("sha256:").unwrap_or(checksum);
    let digest = &digest[..digest.len().min(32)];
    match lane {
        Some(lane) => format!("\"v{version}-l{lane}-{digest}\""),
        None => format!("\"v{version}-s-{digest}\""),
    }
}

/// One SSE event, ready for the wire.
pub(super) fn frame(event: &str, id: i64, payload: &impl serde::Serialize) -> Bytes {
    // Compact JSON has no raw newlines, so the payload fits one `data:` line.
    let data = serde_json::to_string(payload).unwrap_or_else(|_| "null".into());
    Bytes::from(format!("event: {event}\nid: {id}\ndata: {data}\n\n"))
}

pub(super) fn deleted_frame(scope: &EnvPath, key: &str, id: i64) -> Bytes {
    let payload = Deleted {
        namespace: scope.namespace.clone(),
        env: scope.env.clone(),
        key: key.to_string(),
    };
    frame("deleted", id, &payload)
}

/// Reads one config's state; `None` when the config does not exist.
pub(super) async fn load_head(
    conn: &mut db::Conn,
    scope: &EnvPath,
    head: sql::ConfigHead,
) -> Result<ConfigState> {
    let stable = match head.stable_version {
        Some(version) => sql::content(&mut *conn, head.id, version)
            .await?
            .map(|c| Served::new(version, c.checksum, c.content)),
        None => None,
    };
    let mut rules = Vec::new();
    let mut lanes = Vec::new();
    for lane in sql::active_lanes(&mut *conn, head.id).await? {
        let selector = Selector::parse(&lane.selector)
            .map_err(|e| Error::internal(format!("lane {} has a bad selector: {e}", lane.id)))?;
        rules.push(LaneRule {
            id: lane.id,
            version: lane.version,
            selector,
            targets: lane.targets.0,
            percentage: lane.percentage,
            stickiness: lane.stickiness,
            salt: lane.salt,
            priority: lane.priority,
        });
        lanes.push((
            RulesLaneMeta {
                selector: lane.selector,
                percentage: lane.percentage,
            },
            Served::new(lane.version, lane.checksum, lane.content),
        ));
    }
    Ok(ConfigState {
        namespace: scope.namespace.clone(),
        env: scope.env.clone(),
        format: head.format,
        key: head.key,
        event_id: head.event_id,
        stable,
        rules,
        lanes,
    })
}

pub(super) async fn load(
    conn: &mut db::Conn,
    scope: &EnvPath,
    key: &str,
) -> Result<Option<ConfigState>> {
    match sql::head(&mut *conn, &scope.config(key)).await? {
        Some(head) => Ok(Some(load_head(conn, scope, head).await?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(stable: Option<i64>, lanes: &[(i64, i64, &str, u32)]) -> ConfigState {
        let served =
            |version: i64| Served::new(version, format!("sha256:{version}"), format!("v{version}"));
        ConfigState {
            namespace: "shop".into(),
            env: "prod".into(),
            key: "app.json".into(),
            format: ConfigFormat::Json,
            event_id: 9,
            stable: stable.map(served),
            rules: lanes
                .iter()
                .map(|&(id, version, selector, percentage_bp)| LaneRule {
                    id,
                    version,
                    selector: Selector::parse(selector).unwrap(),
                    targets: vec![],
                    percentage: crate::model::Percentage::from_bp(percentage_bp).unwrap(),
                    stickiness: "client_id".into(),
                    salt: "salt".into(),
                    priority: 0,
                })
                .collect(),
            lanes: lanes
                .iter()
                .map(|&(_, version, selector, bp)| {
                    (
                        RulesLaneMeta {
                            selector: selector.into(),
                            percentage: crate::model::Percentage::from_bp(bp).unwrap(),
                        },
                        served(version),
                    )
                })
                .collect(),
        }
    }

    fn ctx(pairs: &[(&str, &str)]) -> Context {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn resolves_lane_then_stable_then_nothing() {
        let s = state(Some(1), &[(5, 2, "region=beijing", 10_000)]);
        let beijing = ctx(&[("client_id", "a"), ("region", "beijing")]);
        let other = ctx(&[("client_id", "b"), ("region", "shanghai")]);
        assert_eq!(
            s.resolve_for(&beijing),
            Some(Resolution {
                version: 2,
                lane: Some(5)
            })
        );
        assert_eq!(
            s.resolve_for(&other),
            Some(Resolution {
                version: 1,
                lane: None
            })
        );
        assert_eq!(state(None, &[]).resolve_for(&other), None);
    }

    #[test]
    fn frames_carry_the_exact_payloads() {
        let s = state(Some(1), &[(5, 2, "region=beijing", 1250)]);
        let frame = s
            .config_frame(Resolution {
                version: 2,
                lane: Some(5),
            })
            .unwrap();
        assert_eq!(
            std::str::from_utf8(&frame).unwrap(),
            "event: config\nid: 9\ndata: {\"namespace\":\"shop\",\"env\":\"prod\",\"key\":\"app.json\",\
             \"format\":\"json\",\"version\":2,\"lane\":5,\"checksum\":\"sha256:2\",\"content\":\"v2\"}\n\n"
        );
        let rules = String::from_utf8(s.rules_frame().to_vec()).unwrap();
        assert!(rules.starts_with("event: rules\nid: 9\ndata: {"), "{rules}");
        let data: serde_json::Value = serde_json::from_str(
            rules
                .lines()
                .nth(2)
                .unwrap()
                .strip_prefix("data: ")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(data["stable"]["version"], 1);
        assert_eq!(data["lanes"][0]["percentage"], 12.5);
        assert_eq!(data["lanes"][0]["selector"], "region=beijing");
        assert_eq!(data["lanes"][0]["content"], "v2");
    }
}
