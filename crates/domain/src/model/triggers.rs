//! Trigger URLs as the API shows them (docs/api.md, "Triggers"): an alerting system calls one
//! to abort lanes, pause plans or roll back; each only ever shrinks what is live.

use super::Timestamp;
use crate::audit::AuditAction;
use crate::words::words;
use serde::{Deserialize, Serialize};

words! {
    /// What a trigger does when it is called.
    pub enum TriggerAction {
        /// Aborts every active lane of its config (or of every config of its scope).
        AbortLanes = "abort-lanes",
        /// Pauses every running rollout plan there; the lanes stay.
        PausePlans = "pause-plans",
        /// Makes the previous stable version of its config the stable release again.
        Rollback = "rollback",
    }
}

/// `POST /api/v1/triggers`. `action` is read as text so that a wrong one is refused naming
/// the words it may be.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTrigger {
    pub namespace: String,
    pub env: String,
    #[serde(default)]
    pub key: Option<String>,
    pub action: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// `PATCH /api/v1/triggers/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerUpdate {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub description: Option<String>,
}

/// A trigger as lists show it: everything but its token, which is shown only when it is made
/// (created or rotated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    pub id: i64,
    pub namespace: String,
    pub env: String,
    /// `None`: every config of the namespace in the environment.
    pub key: Option<String>,
    pub action: TriggerAction,
    pub description: String,
    pub enabled: bool,
    pub created_by: String,
    pub created_at: Timestamp,
    pub last_fired_at: Option<Timestamp>,
    /// How many times it was fired (a fire the rate limit refused does not count).
    pub fired: i64,
}

/// A trigger with its URL and token: the answer of creating or rotating it, and the only time
/// either is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerWithToken {
    #[serde(flatten)]
    pub trigger: Trigger,
    /// `{public_url}/hooks/{token}`.
    pub url: String,
    pub token: String,
}

/// `GET /api/v1/triggers?namespace=&env=&after=&limit=`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerQuery {
    pub namespace: String,
    pub env: String,
    /// Only triggers after this id (the previous page's `next_after`).
    #[serde(default)]
    pub after: Option<i64>,
    #[serde(default)]
    pub limit: Option<i64>,
}

/// A page of triggers, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerPage {
    pub triggers: Vec<Trigger>,
    pub next_after: Option<i64>,
}

/// One thing a fire did, named by the audit action it recorded: `lane.abort` (`lane`,
/// `version`), `rollout.pause` (`lane`) or `release.rollback` (`version`, now stable, and
/// `previous_version`, stable before).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerDone {
    pub key: String,
    pub action: AuditAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<i64>,
}

/// The answer of `POST /hooks/{token}`: what the fire did (nothing, when there was nothing to
/// shrink).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerFired {
    pub trigger: i64,
    pub action: TriggerAction,
    pub done: Vec<TriggerDone>,
}
