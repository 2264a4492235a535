//! Shapes shared by the API, the server functions and the dashboard.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

pub use crate::percentage::Percentage;
pub use crate::time::Timestamp;
use crate::words::words;

mod governance;
mod notifications;
mod plans;
mod triggers;
pub use governance::*;
pub use notifications::*;
pub use plans::*;
pub use triggers::*;

/// Response header of a watch stream: the server's heartbeat interval in
/// seconds, so a client can tell a quiet stream from a dead one.
pub const HEARTBEAT_HEADER: &str = "graycast-heartbeat-secs";

/// The comment a watch stream sends once it has sent everything owed at
/// connect (the initial events, or what changed since `Last-Event-ID`).
pub const SYNCED_COMMENT: &str = "synced";

/// Roles, lowest to highest; each includes the rights of those below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Subscriber,
    Viewer,
    Editor,
    Releaser,
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Subscriber,
        Role::Viewer,
        Role::Editor,
        Role::Releaser,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Subscriber => "subscriber",
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Releaser => "releaser",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown role {}; expected one of subscriber, viewer, editor, releaser, admin",
                    crate::quote::quoted(s)
                )
            })
    }
}

/// A signed-in dashboard user (never carries the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    /// When set, the user may act only in this environment.
    pub env: Option<String>,
    pub disabled: bool,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub role: Role,
    #[serde(default)]
    pub env: Option<String>,
}

/// A partial update of a user; absent fields stay as they are. `env: Some(None)`
/// (JSON `"env": null`) lifts the environment limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserUpdate {
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default, with = "double_option")]
    pub env: Option<Option<String>>,
    #[serde(default)]
    pub disabled: Option<bool>,
}

/// An API token as listed (the secret is never stored, only its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub namespace: Option<String>,
    pub env: Option<String>,
    /// The first characters of the secret, to recognise a token.
    pub prefix: String,
    pub created_by: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

impl TokenInfo {
    /// Where the token is limited to, for authorization.
    pub fn scope(&self) -> Scope<'_> {
        Scope {
            namespace: self.namespace.as_deref(),
            env: self.env.as_deref(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewToken {
    pub name: String,
    pub role: Role,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub env: Option<String>,
}

/// Returned once, at creation: `token` is the secret (`id` comes from `info`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    pub token: String,
    #[serde(flatten)]
    pub info: TokenInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    pub id: i64,
    pub name: String,
    pub created_at: Timestamp,
    /// The plan template the dashboard preselects in this environment.
    #[serde(default)]
    pub default_template: Option<String>,
    /// Approvals a widening action needs here (0: unprotected; docs/api.md, "Change requests").
    #[serde(default)]
    pub approvals: i64,
    /// The freeze in force now, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frozen: Option<FrozenNow>,
}

pub use crate::audit::AuditAction;
pub use crate::notify::ChannelFormat;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: Timestamp,
    pub actor: String,
    pub action: AuditAction,
    pub namespace: Option<String>,
    pub env: Option<String>,
    pub key: Option<String>,
    pub details: serde_json::Value,
    /// The W3C trace id of the request that caused it (none for entries from
    /// before trace ids, start-up and the command line).
    pub trace_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    pub q: Option<String>,
    #[serde(default)]
    pub actor: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub env: Option<String>,
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub until: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
    #[serde(default)]
    pub before_id: Option<i64>,
    /// 32 hex digits: the entries of one request (its `traceparent`'s trace id).
    #[serde(default)]
    pub trace_id: Option<String>,
}

impl AuditQuery {
    /// The namespace and environment the search is narrowed to, for authorization.
    pub fn scope(&self) -> Scope<'_> {
        Scope {
            namespace: self.namespace.as_deref(),
            env: self.env.as_deref(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next_before_id: Option<i64>,
}

/// One application's config space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Namespace {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub created_at: Timestamp,
    /// Configs in this namespace, over the environments the caller may see.
    pub config_count: i64,
    /// The first environment (in the environments' order) with configs in this namespace, of
    /// those the caller may see: where the dashboard's link to the namespace opens.
    #[serde(default)]
    pub config_env: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewNamespace {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// A named document in (namespace, environment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub namespace: String,
    pub env: String,
    pub key: String,
    pub format: crate::format::ConfigFormat,
    pub latest_version: i64,
    /// The released version; `None` until the first release.
    pub stable_version: Option<i64>,
    /// Active gray lanes, in resolution order: (priority, id) ascending.
    pub lanes: Vec<Lane>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// In the configs list only: the newest lane its rollout plan aborted, when that happened
    /// within the last [`Config::ABORT_SHOWN_HOURS`] hours and no lane started since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted_lane: Option<Lane>,
    /// In a single config's view: the break-glass overrides on it that no other releaser
    /// reviewed yet (`POST /api/v1/overrides/{id}/review`), newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreviewed_overrides: Vec<i64>,
}

impl Config {
    pub const ABORT_SHOWN_HOURS: i64 = 24;

    /// Where the config lives.
    pub fn path(&self) -> ConfigPath {
        ConfigPath::new(&self.namespace, &self.env, &self.key)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewConfig {
    pub key: String,
    pub format: crate::format::ConfigFormat,
    pub content: String,
    #[serde(default)]
    pub message: Option<String>,
}

/// An immutable, numbered snapshot of a config's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Version {
    pub version: i64,
    pub content: String,
    /// `sha256:<hex of the content bytes>`.
    pub checksum: String,
    pub message: String,
    pub author: String,
    pub created_at: Timestamp,
}

/// A version as the versions list shows it: everything but the content, which
/// `GET …/versions/{n}` (`get_version`) gives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionSummary {
    pub version: i64,
    /// `sha256:<hex of the content bytes>`.
    pub checksum: String,
    pub message: String,
    pub author: String,
    pub created_at: Timestamp,
}

/// One page of a config's versions, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionPage {
    pub versions: Vec<VersionSummary>,
    /// The cursor of the next (older) page, `before`; `None` on the last page.
    pub next_before: Option<i64>,
}

/// Which page of versions to list: the `limit` newest of those older than `before`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionsQuery {
    #[serde(default)]
    pub before: Option<i64>,
    #[serde(default)]
    pub limit: Option<u32>,
}

impl VersionsQuery {
    /// Versions per page when the caller names no `limit`.
    pub const DEFAULT_LIMIT: u32 = 50;
    /// The most versions per page; a larger `limit` is capped to it.
    pub const MAX_LIMIT: u32 = 200;
}

/// An edit to save as the next version; `base_version` is the version the edit
/// started from, so a concurrent save is refused instead of silently lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewVersion {
    pub content: String,
    #[serde(default)]
    pub message: Option<String>,
    pub base_version: i64,
}

words! {
    /// What a release event did (docs/api.md).
    pub enum ReleaseKind {
        /// A newer version became the stable release.
        Stable = "stable",
        /// An older version became the stable release again.
        Rollback = "rollback",
        LaneCreate = "lane.create",
        LaneUpdate = "lane.update",
        LanePromote = "lane.promote",
        LaneAbort = "lane.abort",
        ConfigDelete = "config.delete",
    }
}

words! {
    /// A lane is active until it is promoted or aborted; closed lanes stay as history.
    pub enum LaneStatus {
        Active = "active",
        Promoted = "promoted",
        Aborted = "aborted",
    }
}

/// An append-only record of a change to what is live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseEvent {
    /// From one global, increasing sequence (the SSE event id).
    pub id: i64,
    pub namespace: String,
    pub env: String,
    pub key: String,
    pub kind: ReleaseKind,
    /// The released version; for `lane.*` events, the lane's version.
    pub version: i64,
    /// The stable release before this event (for `lane.*` other than promote, the unchanged one).
    pub previous_version: Option<i64>,
    /// The lane a `lane.*` event is about.
    pub lane: Option<i64>,
    pub actor: String,
    pub message: String,
    pub created_at: Timestamp,
    /// The change request this event applied (change governance), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_request: Option<i64>,
    /// Who approved that change request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approved_by: Vec<String>,
}

/// A gray lane: a candidate version served to the slice of contexts it matches
/// (docs/lanes.md). Closed lanes (`promoted`, `aborted`) stay as history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lane {
    pub id: i64,
    pub version: i64,
    /// Canonical selector text; `""` matches every context.
    pub selector: String,
    /// Values of the stickiness key that always match (when the selector does).
    pub targets: Vec<String>,
    pub percentage: Percentage,
    /// The context key whose value is bucketed: `client_id` unless chosen otherwise.
    pub stickiness: String,
    /// Assigned at creation, never changed: `bucket(salt, value)` decides membership.
    pub salt: String,
    /// Lanes are tried by (priority, id) ascending; the default priority is 0.
    pub priority: i64,
    pub status: LaneStatus,
    pub created_by: String,
    pub created_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    /// The lane's rollout plan, in short, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanSummary>,
}

/// A lane to start (also the body of a preview and the draft of an explanation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewLane {
    pub version: i64,
    #[serde(default)]
    pub selector: Option<String>,
    #[serde(default)]
    pub targets: Option<Vec<String>>,
    /// Required without a plan; with one, the plan's first step gives it (absent: `NaN`). The
    /// number as sent: the lane operations read it as a [`Percentage`], so that a refusal
    /// names this field.
    #[serde(default = "no_percentage")]
    pub percentage: f64,
    #[serde(default)]
    pub stickiness: Option<String>,
    #[serde(default)]
    pub priority: Option<i64>,
    #[serde(default)]
    pub message: Option<String>,
    /// A rollout plan (docs/plans.md) to run on the lane: it starts at the plan's
    /// first step, whatever `percentage` says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<serde_json::Value>,
    /// Or the name of a plan template of the config's environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

fn no_percentage() -> f64 {
    f64::NAN
}

/// A change to an active lane; absent fields stay as they are. The version,
/// stickiness and salt of a lane never change (start a new lane instead).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaneUpdate {
    #[serde(default)]
    pub selector: Option<String>,
    #[serde(default)]
    pub targets: Option<Vec<String>>,
    /// The number as sent: the lane operations read it as a [`Percentage`], so that a refusal
    /// names this field.
    #[serde(default)]
    pub percentage: Option<f64>,
    #[serde(default)]
    pub priority: Option<i64>,
    #[serde(default)]
    pub message: Option<String>,
}

/// Which connected subscribers of the config's namespace and environment a
/// lane rule would match (the rule alone, regardless of other lanes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preview {
    /// Client ids, sorted.
    pub matched: Vec<String>,
    pub matched_count: usize,
    pub connected_count: usize,
}

/// Why a context resolves to the version it gets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    pub context: std::collections::BTreeMap<String, String>,
    pub stable_version: Option<i64>,
    /// The version the context gets; `None` when nothing resolves (404).
    pub version: Option<i64>,
    /// The lane that gave the version; `None` for the stable release (or nothing).
    pub lane: Option<i64>,
    /// Every active lane's verdict, in resolution order.
    pub lanes: Vec<crate::lane::LaneVerdict>,
    /// One sentence, e.g. `lane 3 matched: bucket 374 < threshold 3000 → v2`.
    pub reason: String,
}

/// What a subscriber gets for a config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolved {
    pub namespace: String,
    pub env: String,
    pub key: String,
    pub format: crate::format::ConfigFormat,
    pub version: i64,
    pub lane: Option<i64>,
    pub checksum: String,
    pub content: String,
}

/// `rules` event of the watch stream (`mode=rules`): everything a gateway
/// needs to resolve a config per request with docs/lanes.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rules {
    pub namespace: String,
    pub env: String,
    pub key: String,
    pub format: crate::format::ConfigFormat,
    /// `None` before the first release.
    pub stable: Option<RulesVersion>,
    /// Active lanes in resolution order (priority, id).
    pub lanes: Vec<RulesLane>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesVersion {
    pub version: i64,
    pub checksum: String,
    pub content: String,
}

/// An active lane as rules mode sends it: its rule and its version's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulesLane {
    pub id: i64,
    pub version: i64,
    /// Selector text (syntax: docs/lanes.md#selectors); `""` matches everything.
    pub selector: String,
    pub targets: Vec<String>,
    pub percentage: Percentage,
    pub stickiness: String,
    pub salt: String,
    pub priority: i64,
    pub checksum: String,
    pub content: String,
}

/// `deleted` event of the watch stream: the key no longer resolves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    pub namespace: String,
    pub env: String,
    pub key: String,
}

/// What an instance says after trying to apply a config version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub client_id: String,
    pub namespace: String,
    pub env: String,
    pub key: String,
    pub version: i64,
    pub status: ReportStatus,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportStatus {
    Applied,
    Failed,
}

impl ReportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportStatus::Applied => "applied",
            ReportStatus::Failed => "failed",
        }
    }
}

/// A subscriber (running service process) of one namespace and environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub client_id: String,
    pub labels: std::collections::BTreeMap<String, String>,
    /// Whether a watch stream of it is open now.
    pub connected: bool,
    /// When its latest watch stream opened.
    pub connected_at: Timestamp,
    /// Its latest connect, heartbeat or report.
    pub last_seen: Timestamp,
    pub configs: std::collections::BTreeMap<String, InstanceConfig>,
}

/// One config as one instance has it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceConfig {
    /// The version the watch stream last handed to it.
    pub served: Option<i64>,
    /// The lane that version came from; `None` for the stable release.
    pub lane: Option<i64>,
    /// The last version it reported as applied.
    pub applied: Option<i64>,
    /// Its last report: `applied` or `failed`.
    pub status: Option<ReportStatus>,
    /// The message of its last report.
    pub message: Option<String>,
    /// The version its last report was about.
    pub reported: Option<i64>,
    pub reported_at: Option<Timestamp>,
    /// Its last failure, kept until it applies that version or a newer one: an instance
    /// that failed a lane's version and is back on stable still shows why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

/// A version an instance failed to apply, and what it said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub version: i64,
    pub message: Option<String>,
    pub at: Timestamp,
}

/// One page of the instances list, by client id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstancePage {
    pub instances: Vec<Instance>,
    /// Pass as `after` for the next page; `None` on the last one.
    pub next_after: Option<String>,
}

/// Which instances a page of the list holds (`GET …/instances`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstancesQuery {
    /// Instances per page: default [`InstancesQuery::DEFAULT_LIMIT`], at most [`InstancesQuery::MAX_LIMIT`].
    #[serde(default)]
    pub limit: Option<u32>,
    /// Only client ids after this one (the previous page's `next_after`).
    #[serde(default)]
    pub after: Option<String>,
    /// `connected` or `disconnected`.
    #[serde(default)]
    pub state: Option<String>,
    /// Only instances that were served, or reported about, this config key.
    #[serde(default)]
    pub key: Option<String>,
}

impl InstancesQuery {
    pub const DEFAULT_LIMIT: u32 = 100;
    pub const MAX_LIMIT: u32 = 500;

    /// The page size asked for, within 1–[`Self::MAX_LIMIT`] (like the audit trail's `limit`).
    pub fn page_size(&self) -> u32 {
        self.limit
            .unwrap_or(Self::DEFAULT_LIMIT)
            .clamp(1, Self::MAX_LIMIT)
    }
}

/// One page of the dashboard's version history, newest first: each version with what it is now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryPage {
    pub versions: Vec<VersionStatus>,
    /// The cursor of the next (older) page; `None` on the last page.
    pub next_before: Option<i64>,
}

/// What one version is now, as the version history says it: exactly one state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionStatus {
    pub version: VersionSummary,
    pub state: VersionState,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum VersionState {
    /// The stable release.
    Stable,
    /// Not stable, but served by these active lanes, in resolution order.
    InLanes {
        lanes: Vec<LaneShare>,
    },
    /// Was the stable release until `until`, when `by` replaced it: by a rollback
    /// (`rolled_back`) or a newer release (a release or a promoted lane).
    WasStable {
        until: Timestamp,
        by: i64,
        rolled_back: bool,
    },
    /// Never stable, but served by these lanes, all closed since: newest lane first.
    WasInLanes {
        lanes: Vec<ClosedLane>,
    },
    NeverReleased,
}

/// A closed lane that served a version: how it ended (`promoted` or `aborted`) and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClosedLane {
    pub lane: i64,
    pub status: LaneStatus,
    pub closed_at: Option<Timestamp>,
}

/// An active lane serving a version, and its percentage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaneShare {
    pub lane: i64,
    pub percentage: Percentage,
}

/// Rollout progress of one config over the connected instances of its namespace and environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    pub connected: usize,
    /// The instances on the stable release; `None` before the first release.
    pub stable: Option<RolloutGroup>,
    /// Active lanes in resolution order.
    pub lanes: Vec<LaneRollout>,
}

/// Connected instances served one version by one source, and their reports about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutGroup {
    pub version: i64,
    pub serving: usize,
    /// Of those, how many reported the version applied.
    pub applied: usize,
    /// The message of each that reported it failed.
    pub failed: Vec<String>,
}

/// A lane's reach, counted like its percentage: among the eligible instances (those its
/// selector matches), how many it serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaneRollout {
    pub lane: i64,
    pub percentage: Percentage,
    pub eligible: usize,
    /// `serving` counts eligible instances this lane serves.
    pub group: RolloutGroup,
}

/// Where an action or a limited thing lies, for authorization: a namespace and an
/// environment, each `None` when it lies in no particular one. A caller limited to a
/// namespace or an environment may act only inside it (`Actor::require`), and sees only
/// what lies inside its limits (`Actor::covers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scope<'a> {
    pub namespace: Option<&'a str>,
    pub env: Option<&'a str>,
}

impl<'a> Scope<'a> {
    /// No particular namespace or environment.
    pub const ANY: Scope<'static> = Scope {
        namespace: None,
        env: None,
    };

    /// The environment `env`, in no particular namespace.
    pub fn env(env: &'a str) -> Self {
        Self {
            namespace: None,
            env: Some(env),
        }
    }

    /// The namespace `namespace`, in no particular environment.
    pub fn namespace(namespace: &'a str) -> Self {
        Self {
            namespace: Some(namespace),
            env: None,
        }
    }

    /// The namespace `namespace` in the environment `env`.
    pub fn of(namespace: &'a str, env: &'a str) -> Self {
        Self {
            namespace: Some(namespace),
            env: Some(env),
        }
    }
}

/// A namespace and environment: where configs, instances and lanes are listed
/// (the REST path `/namespaces/{ns}/envs/{env}`, hence the `ns` alias).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EnvPath {
    #[serde(alias = "ns")]
    pub namespace: String,
    pub env: String,
}

impl EnvPath {
    pub fn new(namespace: impl Into<String>, env: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            env: env.into(),
        }
    }

    /// The config `key` in this namespace and environment.
    pub fn config(&self, key: impl Into<String>) -> ConfigPath {
        ConfigPath::new(&self.namespace, &self.env, key)
    }

    /// This namespace and environment, for authorization.
    pub fn scope(&self) -> Scope<'_> {
        Scope::of(&self.namespace, &self.env)
    }
}

/// `namespace/env`.
impl fmt::Display for EnvPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.env)
    }
}

/// Where a config lives: its namespace, environment and key (the REST path
/// `/namespaces/{ns}/envs/{env}/configs/{key}`, hence the `ns` alias).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConfigPath {
    #[serde(alias = "ns")]
    pub namespace: String,
    pub env: String,
    pub key: String,
}

impl ConfigPath {
    pub fn new(
        namespace: impl Into<String>,
        env: impl Into<String>,
        key: impl Into<String>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            env: env.into(),
            key: key.into(),
        }
    }

    /// The config's namespace and environment, for authorization.
    pub fn scope(&self) -> Scope<'_> {
        Scope::of(&self.namespace, &self.env)
    }

    /// The config's namespace and environment.
    pub fn env_path(&self) -> EnvPath {
        EnvPath::new(&self.namespace, &self.env)
    }
}

/// `namespace/env/key`, as messages name a config.
impl fmt::Display for ConfigPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.namespace, self.env, self.key)
    }
}

/// The id of a gray lane (unique across configs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LaneId(pub i64);

impl fmt::Display for LaneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for LaneId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse()
            .map(LaneId)
            .map_err(|_| format!("{} is not a lane id.", crate::quote::quoted(s)))
    }
}

mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Option<String>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            None => s.serialize_none(),
            Some(inner) => inner.serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instances_page_holds_100_by_default_and_never_more_than_500() {
        let page = |limit| InstancesQuery {
            limit,
            ..InstancesQuery::default()
        };
        assert_eq!(page(None).page_size(), 100);
        assert_eq!(page(Some(0)).page_size(), 1);
        assert_eq!(page(Some(7)).page_size(), 7);
        assert_eq!(page(Some(100_000)).page_size(), 500);
    }

    #[test]
    fn roles_are_ordered_lowest_to_highest() {
        assert!(Role::Subscriber < Role::Viewer);
        assert!(Role::Viewer < Role::Editor);
        assert!(Role::Editor < Role::Releaser);
        assert!(Role::Releaser < Role::Admin);
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn created_token_round_trips_with_a_single_id() {
        let created = CreatedToken {
            token: "gc_secret".into(),
            info: TokenInfo {
                id: 7,
                name: "ci".into(),
                role: Role::Viewer,
                namespace: None,
                env: None,
                prefix: "gc_secre".into(),
                created_by: "admin".into(),
                created_at: "2026-11-25T00:00:00Z".parse().unwrap(),
                last_used_at: None,
                revoked_at: None,
            },
        };
        let json = serde_json::to_value(&created).unwrap();
        assert_eq!(json["id"], 7);
        assert_eq!(json["token"], "gc_secret");
        let back: CreatedToken = serde_json::from_value(json).unwrap();
        assert_eq!(back, created);
    }

    #[test]
    fn user_update_distinguishes_absent_and_null_env() {
        let absent: UserUpdate = serde_json::from_str(r#"{"role":"editor"}"#).unwrap();
        assert_eq!(absent.env, None);
        let cleared: UserUpdate = serde_json::from_str(r#"{"env":null}"#).unwrap();
        assert_eq!(cleared.env, Some(None));
        let set: UserUpdate = serde_json::from_str(r#"{"env":"prod"}"#).unwrap();
        assert_eq!(set.env, Some(Some("prod".into())));
    }
}
