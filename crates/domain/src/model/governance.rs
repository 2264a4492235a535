//! Change governance as the API sees it (docs/api.md, "Change requests, schedules and
//! overrides"): an environment's protection, change requests with their approvals, and
//! break-glass overrides. Shared by both targets: nothing here is server-only.

use super::{Preview, Timestamp};
use crate::words::words;
use serde::{Deserialize, Serialize};

words! {
    /// Where a change request stands. `pending` and `scheduled` are open; the rest ended it.
    pub enum ChangeStatus {
        /// Waiting for its approvals.
        Pending = "pending",
        /// Waiting for its `apply_at` (and, in a protected environment, its approvals).
        Scheduled = "scheduled",
        Applied = "applied",
        Rejected = "rejected",
        Withdrawn = "withdrawn",
        /// What it was bound to changed before it could be applied.
        Stale = "stale",
        /// Its time came without the approvals it needed.
        Expired = "expired",
    }
}

impl ChangeStatus {
    /// Whether the request can still be approved, withdrawn or applied.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::Scheduled)
    }
}

words! {
    /// The action a change request runs when it is applied: the widening actions.
    pub enum ChangeAction {
        /// `POST …/release` `{version}`.
        Release = "release",
        /// `POST …/lanes` (a lane, with or without a plan).
        LaneCreate = "lane.create",
        /// `PATCH …/lanes/{id}` `{lane, …}`.
        LaneUpdate = "lane.update",
        /// `POST …/lanes/{id}/promote` `{lane}`.
        LanePromote = "lane.promote",
        /// `PUT …/lanes/{id}/plan` `{lane, plan}`.
        PlanAttach = "plan.attach",
    }
}

/// Body of `PUT /api/v1/environments/{env}/protection`, and its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protection {
    /// Approvals a widening action needs: 0 leaves the environment unprotected.
    pub approvals: i64,
    /// Never allowed: the author of a request cannot approve it (sent for clarity).
    #[serde(default)]
    pub self_approval: bool,
}

/// Break glass: an admin applies a protected action at once, with a reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    pub reason: String,
}

/// What a widening action may carry besides its own body: when to apply it, or a break-glass
/// override.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Governed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_at: Option<Timestamp>,
    #[serde(default, rename = "override", skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<Override>,
}

/// Body of `POST …/configs/{key}/change-requests`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewChangeRequest {
    pub action: ChangeAction,
    pub body: serde_json::Value,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub apply_at: Option<Timestamp>,
}

/// Body of `POST /api/v1/change-requests/{id}/approve|reject|withdraw|apply`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeComment {
    #[serde(default)]
    pub comment: Option<String>,
    /// `apply` only: break glass.
    #[serde(default, rename = "override")]
    pub break_glass: Option<Override>,
}

/// One approval of a change request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub approver: String,
    pub comment: String,
    pub at: Timestamp,
}

/// A change request: the exact action and body, what it puts live, the blast radius when it
/// was made, and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRequest {
    pub id: i64,
    pub namespace: String,
    pub env: String,
    pub key: String,
    pub action: ChangeAction,
    pub body: serde_json::Value,
    pub message: String,
    pub author: String,
    pub status: ChangeStatus,
    pub approvals_needed: i64,
    pub approvals: Vec<Approval>,
    pub apply_at: Option<Timestamp>,
    /// The version it puts live against what serves now: `{from, to, diff}`.
    pub diff: serde_json::Value,
    /// For lane actions: which connected instances the lane matched when it was requested.
    pub preview: Option<Preview>,
    pub plan: Option<serde_json::Value>,
    /// What its approvals are bound to: the stable version, the active lanes, the version's
    /// checksum.
    pub snapshot: serde_json::Value,
    /// Why it ended (a rejection's comment, what went stale, why it expired).
    pub reason: Option<String>,
    pub ended_by: Option<String>,
    pub ended_at: Option<Timestamp>,
    /// The release event applying it appended (the first, when it appended several).
    pub release_event: Option<i64>,
    /// The break-glass override that applied it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_id: Option<i64>,
    /// An override that applied it and no other releaser reviewed yet.
    #[serde(default)]
    pub unreviewed_override: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// `GET /api/v1/change-requests?env=&status=&author=&before=&limit=`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeRequestQuery {
    #[serde(default)]
    pub env: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub status: Option<ChangeStatus>,
    #[serde(default)]
    pub author: Option<String>,
    /// Only requests older than this id (the previous page's `next_before`).
    #[serde(default)]
    pub before: Option<i64>,
    #[serde(default)]
    pub limit: Option<i64>,
}

impl ChangeRequestQuery {
    pub const DEFAULT_LIMIT: i64 = 50;
    pub const MAX_LIMIT: i64 = 200;

    /// A page's size as asked (`limit`), within 1 to [`Self::MAX_LIMIT`]; the default when
    /// not asked. The lists of overrides use it too.
    pub fn page_size(limit: Option<i64>) -> i64 {
        limit
            .unwrap_or(Self::DEFAULT_LIMIT)
            .clamp(1, Self::MAX_LIMIT)
    }
}

/// A page of change requests, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRequestPage {
    pub requests: Vec<ChangeRequest>,
    pub next_before: Option<i64>,
}

/// A break-glass override.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverrideEntry {
    pub id: i64,
    pub namespace: String,
    pub env: String,
    pub key: String,
    /// The action it applied (a [`ChangeAction`] word).
    pub action: ChangeAction,
    pub change_request: Option<i64>,
    pub actor: String,
    pub reason: String,
    pub at: Timestamp,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<Timestamp>,
}

/// `GET /api/v1/overrides?reviewed=&env=`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideQuery {
    #[serde(default)]
    pub reviewed: Option<bool>,
    #[serde(default)]
    pub env: Option<String>,
    #[serde(default)]
    pub limit: Option<i64>,
}

/// `POST /api/v1/environments/{env}/freezes`: one-off (`from`, `to`) or `weekly`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewFreeze {
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub weekly: Option<WeeklyWindow>,
    #[serde(default)]
    pub reason: String,
}

/// A weekly window: from a day and wall time to the next given day and time, in an IANA zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeeklyWindow {
    pub from_day: String,
    pub from_time: String,
    pub to_day: String,
    pub to_time: String,
    pub time_zone: String,
}

/// The day names a weekly window takes, Monday first.
pub const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// One occurrence of a window, as UTC instants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Occurrence {
    pub from: Timestamp,
    pub to: Timestamp,
}

/// A window as the API shows it, with its occurrences computed at read time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Freeze {
    pub id: i64,
    pub env: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly: Option<WeeklyWindow>,
    /// Whether it is in force now (then `next[0]` is the occurrence in force).
    pub active: bool,
    /// The occurrence in force, if any, and the next ones (at most 3).
    pub next: Vec<Occurrence>,
    pub created_by: String,
    pub created_at: Timestamp,
}

/// An environment frozen now: why, and when it is free again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrozenNow {
    /// The reason of the window in force that ends last.
    pub reason: String,
    /// When the environment is free again (windows that overlap or touch chain).
    pub until: Timestamp,
    /// `until` as the wall time of that window's zone (UTC for a one-off window).
    pub until_wall: String,
}

/// What the config page shows of change governance: whether its environment is protected or
/// frozen, the open requests for the config and the break-glass overrides nobody reviewed yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigGovernance {
    /// Approvals a widening action needs there (0: unprotected).
    pub approvals: i64,
    pub frozen: Option<FrozenNow>,
    /// Pending and scheduled requests for this config, newest first (at most 20).
    pub open_requests: Vec<ChangeRequest>,
    /// Overrides on this config that no other releaser reviewed yet, newest first.
    pub unreviewed_overrides: Vec<OverrideEntry>,
}

/// An environment's protection and freeze windows, for its settings page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvGovernance {
    pub env: String,
    pub protection: Protection,
    pub frozen: Option<FrozenNow>,
    pub freezes: Vec<Freeze>,
}

/// One change request with what holds for it now: the blast radius of its lane rule against the
/// instances connected now, and what changed since it was made (it would be refused as stale).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRequestView {
    pub request: ChangeRequest,
    /// For an open lane request: which connected instances its rule matches now.
    pub preview_now: Option<Preview>,
    /// For an open request: why applying it now would be refused (`stale`), if it would.
    pub stale_now: Option<String>,
    /// Whether the caller may approve it (a releaser of its environment, not its author, not an
    /// admin, who has not approved it yet).
    pub can_approve: bool,
    /// Whether the caller may withdraw it (its author, while it is open).
    pub can_withdraw: bool,
    /// The unreviewed override that applied it, if one did.
    pub override_entry: Option<OverrideEntry>,
}
