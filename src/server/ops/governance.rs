//! Change governance (issue 28): the one gate every widening action passes through, and the
//! change requests it makes. In a protected environment a widening action becomes a change
//! request waiting for its approvals (409 `approval_required`); with `apply_at` it becomes a
//! scheduled request (202); an admin's `override` applies it at once, audited and marked
//! unreviewed. Shrinking actions pass (docs/api.md, "Change requests, schedules and
//! overrides").
//!
//! Freeze windows (issue 28, point 4) belong in [`gate`] too: one check before the protection
//! check, so every widening call site gets it.

use super::blast::preview_rule;
use super::freezes;
use crate::domain::audit::AuditAction;
use crate::domain::lane::LaneRule;
use crate::model::{
    ChangeAction, ChangeRequest, ChangeStatus, ConfigPath, Governed, Lane, LaneUpdate, Override,
    Protection, ReleaseKind, Role, Scope, Timestamp,
};
use crate::server::auth::Actor;
use crate::server::db::{self, audit::NewEntry, configs::StoredConfig};
use crate::server::Core;
use crate::{Error, Result};
use serde_json::{json, Value};

/// How far ahead `apply_at` may lie.
pub const MAX_SCHEDULE_DAYS: i64 = 90;
/// The shortest break-glass reason, and the longest.
pub const MIN_REASON_CHARS: usize = 10;
pub const MAX_REASON_CHARS: usize = 1000;
/// The most approvals an environment may require.
pub const MAX_APPROVALS: i64 = 10;

/// A widening action, described for the gate: what it does and what it puts live.
pub struct Widening {
    pub action: ChangeAction,
    /// The exact body the action runs with, as a change request stores it: a version number,
    /// never "latest"; a plan, never a template's name.
    pub body: Value,
    pub message: String,
    /// The version it puts live (the released one, or the lane's).
    pub version: i64,
    /// The lane rule it puts live, for the blast radius.
    pub rule: Option<LaneRule>,
    pub plan: Option<Value>,
    /// False when it only shrinks what is live (see [`release_widens`], [`update_widens`]):
    /// it then passes unless it is scheduled.
    pub widens: bool,
}

/// What the gate decided.
pub enum Gate {
    /// Go ahead (unprotected, shrinking, or overridden by an admin: audited already).
    Open,
    /// It became this change request (pending approvals, or scheduled): commit the
    /// transaction and answer with [`requested`].
    Requested(Box<ChangeRequest>),
}

/// What a governed action did: applied now, or scheduled as a change request.
pub enum Outcome<T> {
    Done(T),
    Scheduled(Box<ChangeRequest>),
}

impl<T> Outcome<T> {
    /// For callers that never schedule (no `apply_at`): the result, or 409.
    pub fn done(self) -> Result<T> {
        match self {
            Outcome::Done(t) => Ok(t),
            Outcome::Scheduled(cr) => Err(Error::conflict(format!(
                "The change was scheduled as change request {}.",
                cr.id
            ))),
        }
    }
}

/// The answer to an action the gate turned into `request`: 409 `approval_required` for a
/// pending one, the scheduled request otherwise.
pub fn requested<T>(request: Box<ChangeRequest>) -> Result<Outcome<T>> {
    if request.status == ChangeStatus::Pending {
        return Err(Error::approval_required(
            request.id,
            format!(
                "{} is protected: this change became change request {}, which needs {} \
                 approval{} by other releasers (GET /api/v1/change-requests/{}).",
                request.env,
                request.id,
                request.approvals_needed,
                if request.approvals_needed == 1 {
                    ""
                } else {
                    "s"
                },
                request.id
            ),
        ));
    }
    Ok(Outcome::Scheduled(request))
}

/// THE gate: every widening action (a stable release, starting a lane, changing one,
/// promoting, attaching a plan) calls it inside its write transaction, before it changes
/// anything. A freeze refuses it (409 `frozen`) unless an admin overrides.
pub async fn gate(
    core: &Core,
    tx: &mut db::Tx<'_>,
    actor: &Actor,
    config: &StoredConfig,
    change: &Widening,
    governed: &Governed,
) -> Result<Gate> {
    let at = core.clock.now();
    let apply_at = check_apply_at(at, governed.apply_at)?;
    let reason = governed
        .break_glass
        .as_ref()
        .map(check_override)
        .transpose()?;
    if reason.is_some() && apply_at.is_some() {
        return Err(Error::invalid(
            "override",
            "An override applies a change now; send either override or apply_at.",
        ));
    }
    if !change.widens && apply_at.is_none() {
        return Ok(Gate::Open);
    }
    // A freeze refuses a widening action now; a scheduled one is checked when its time comes.
    let frozen = if change.widens && apply_at.is_none() {
        freezes::frozen_now(tx, &config.config.env, at).await?
    } else {
        None
    };
    let approvals = approvals_of(&mut *tx, &config.config.env).await?;
    if let Some(reason) = reason {
        if change.widens && (approvals > 0 || frozen.is_some()) {
            record_override(tx, at, actor, config, change.action, None, &reason).await?;
        }
        return Ok(Gate::Open);
    }
    if let Some(frozen) = frozen {
        return Err(frozen.refusal(&config.config.env));
    }
    let needed = if change.widens { approvals } else { 0 };
    if apply_at.is_none() && needed == 0 {
        return Ok(Gate::Open);
    }
    let request = request_in(core, tx, actor, config, change, apply_at, needed).await?;
    Ok(Gate::Requested(Box::new(request)))
}

/// 400 (field `apply_at`) unless `apply_at` lies in the future, at most
/// [`MAX_SCHEDULE_DAYS`] ahead.
pub fn check_apply_at(now: Timestamp, apply_at: Option<Timestamp>) -> Result<Option<Timestamp>> {
    let Some(apply_at) = apply_at else {
        return Ok(None);
    };
    if apply_at.unix_ms() <= now.unix_ms() {
        return Err(Error::invalid(
            "apply_at",
            format!("apply_at {apply_at} is not in the future (it is {now} now)."),
        ));
    }
    if apply_at.unix_ms() - now.unix_ms() > MAX_SCHEDULE_DAYS * 24 * 3600 * 1000 {
        return Err(Error::invalid(
            "apply_at",
            format!(
                "apply_at {apply_at} is more than {MAX_SCHEDULE_DAYS} days ahead; schedule it \
                 later."
            ),
        ));
    }
    Ok(Some(apply_at))
}

/// The reason of a break-glass override, trimmed; 400 (field `override`) outside its bounds.
pub fn check_override(o: &Override) -> Result<String> {
    let reason = o.reason.trim();
    let chars = reason.chars().count();
    if !(MIN_REASON_CHARS..=MAX_REASON_CHARS).contains(&chars) {
        return Err(Error::invalid(
            "override",
            format!(
                "An override needs a reason of {MIN_REASON_CHARS} to {MAX_REASON_CHARS} \
                 characters (it has {chars}): say why this cannot wait for approvals."
            ),
        ));
    }
    Ok(reason.to_string())
}

/// Whether releasing `version` widens what is live: a version newer than the stable one (or
/// the first release), or an older one that was never stable. A rollback to a version that
/// was stable before shrinks.
pub async fn release_widens(
    conn: &mut db::Conn,
    config: &StoredConfig,
    version: i64,
) -> Result<bool> {
    let Some(stable) = config.config.stable_version else {
        return Ok(true);
    };
    if version > stable {
        return Ok(true);
    }
    let events = db::releases::list(&mut *conn, config.id).await?;
    let was_stable = events.iter().any(|e| {
        e.version == version
            && matches!(
                e.kind,
                ReleaseKind::Stable | ReleaseKind::Rollback | ReleaseKind::LanePromote
            )
    });
    Ok(!was_stable)
}

/// Whether `change` widens `lane`: a higher percentage, another selector, other targets or
/// another priority (which may put it in front of another lane). Lowering the percentage
/// alone shrinks.
pub fn update_widens(lane: &Lane, change: &LaneUpdate) -> bool {
    let raises = change
        .percentage
        .is_some_and(|p| p > lane.percentage.as_f64() + 1e-9);
    raises || change.selector.is_some() || change.targets.is_some() || change.priority.is_some()
}

/// The approvals widening actions in `env` need (0: unprotected).
pub async fn approvals_of(conn: &mut db::Conn, env: &str) -> Result<i64> {
    Ok(db::change_requests::protection(&mut *conn, env)
        .await?
        .unwrap_or(0))
}

/// `GET /api/v1/environments/{env}/protection` (viewer of that environment).
#[tracing::instrument(skip_all)]
pub async fn protection(core: &Core, actor: &Actor, env: &str) -> Result<Protection> {
    actor.require(Role::Viewer, Scope::env(env))?;
    let mut conn = core.db.acquire().await?;
    let approvals = db::change_requests::protection(&mut *conn, env)
        .await?
        .ok_or_else(|| Error::not_found(format!("There is no environment {env}.")))?;
    Ok(Protection {
        approvals,
        self_approval: false,
    })
}

/// `PUT /api/v1/environments/{env}/protection` (admin).
#[tracing::instrument(skip_all)]
pub async fn protect(
    core: &Core,
    actor: &Actor,
    env: &str,
    protection: Protection,
) -> Result<Protection> {
    actor.require(Role::Admin, Scope::env(env))?;
    if protection.self_approval {
        return Err(Error::invalid(
            "self_approval",
            "Self-approval is never allowed: the author of a change cannot approve it.",
        ));
    }
    if !(0..=MAX_APPROVALS).contains(&protection.approvals) {
        return Err(Error::invalid(
            "approvals",
            format!(
                "approvals must be 0 (unprotected) to {MAX_APPROVALS}; it is {}.",
                protection.approvals
            ),
        ));
    }
    let mut tx = db::begin_write(&core.db).await?;
    let before = db::change_requests::set_protection(&mut tx, env, protection.approvals)
        .await?
        .ok_or_else(|| Error::not_found(format!("There is no environment {env}.")))?;
    db::audit::record(
        &mut tx,
        core.clock.now(),
        NewEntry::new(&actor.name, AuditAction::ProtectionSet)
            .env(env)
            .details(json!({ "approvals": protection.approvals, "before": before })),
    )
    .await?;
    tx.commit().await?;
    Ok(protection)
}

/// What a change request's approvals are bound to: the config, its stable release, its
/// active lanes (ids, versions, percentages, selectors, targets, priorities) and the checksum
/// of the version the request names.
pub async fn snapshot(conn: &mut db::Conn, config: &StoredConfig, version: i64) -> Result<Value> {
    let lanes: Vec<Value> = db::lanes::active(&mut *conn, config.id)
        .await?
        .into_iter()
        .map(|l| {
            json!({
                "id": l.id, "version": l.version, "percentage": l.percentage,
                "selector": l.selector, "targets": l.targets, "priority": l.priority,
            })
        })
        .collect();
    let checksum = db::configs::version(&mut *conn, config.id, version)
        .await?
        .map(|v| v.checksum);
    Ok(json!({
        "config": config.id,
        "stable_version": config.config.stable_version,
        "lanes": lanes,
        "version": version,
        "checksum": checksum,
    }))
}

/// Which part of a snapshot differs from `now`, in words; `None` when nothing does.
pub fn what_changed(then: &Value, now: &Value) -> Option<String> {
    if then == now {
        return None;
    }
    let mut changed = Vec::new();
    if then["config"] != now["config"] {
        changed.push("the config was deleted or made again".to_string());
    }
    if then["stable_version"] != now["stable_version"] {
        changed.push(format!(
            "the stable release moved from {} to {}",
            version_words(&then["stable_version"]),
            version_words(&now["stable_version"])
        ));
    }
    if then["lanes"] != now["lanes"] {
        changed.push("the config's lanes changed".to_string());
    }
    if then["checksum"] != now["checksum"] {
        changed.push(format!("the content of v{} changed", then["version"]));
    }
    if changed.is_empty() {
        changed.push("what it was bound to changed".to_string());
    }
    Some(format!(
        "{} since the request was made; make the request again.",
        changed.join(", ")
    ))
}

fn version_words(v: &Value) -> String {
    v.as_i64()
        .map_or_else(|| "nothing".to_string(), |v| format!("v{v}"))
}

/// The diff a change puts live: the stable release's content against `version`'s.
async fn live_diff(
    core: &Core,
    conn: &mut db::Conn,
    config: &StoredConfig,
    version: i64,
) -> Result<Value> {
    let to = db::configs::version(&mut *conn, config.id, version)
        .await?
        .ok_or_else(|| {
            Error::invalid(
                "version",
                format!("{} has no version {version}.", config.config.path()),
            )
        })?;
    let from = match config.config.stable_version {
        Some(stable) => db::configs::version(&mut *conn, config.id, stable).await?,
        None => None,
    };
    let (from_sum, from_content) = from
        .as_ref()
        .map_or(("", ""), |v| (v.checksum.as_str(), v.content.as_str()));
    let diff = core
        .content
        .diff((from_sum, from_content), (&to.checksum, &to.content), false)
        .await?;
    Ok(json!({
        "from": config.config.stable_version, "to": version, "diff": &*diff,
    }))
}

/// Stores `change` as a change request of `actor` (scheduled when `apply_at` is given, else
/// pending) needing `needed` approvals, with its diff, blast radius and snapshot, and audits it.
pub async fn request_in(
    core: &Core,
    tx: &mut db::Tx<'_>,
    actor: &Actor,
    config: &StoredConfig,
    change: &Widening,
    apply_at: Option<Timestamp>,
    needed: i64,
) -> Result<ChangeRequest> {
    let at = core.clock.now();
    let c = &config.config;
    let path = c.path();
    let diff = live_diff(core, &mut *tx, config, change.version).await?;
    let preview = match &change.rule {
        Some(rule) => Some(preview_rule(core, &path, rule).await?),
        None => None,
    };
    let snapshot = snapshot(&mut *tx, config, change.version).await?;
    let status = if apply_at.is_some() {
        ChangeStatus::Scheduled
    } else {
        ChangeStatus::Pending
    };
    let id = db::change_requests::insert(
        tx,
        at,
        db::change_requests::NewRequestRow {
            config_id: config.id,
            namespace: &c.namespace,
            env: &c.env,
            key: &c.key,
            action: change.action,
            body: &change.body,
            message: &change.message,
            author: &actor.name,
            status,
            approvals_needed: needed,
            apply_at,
            diff: &diff,
            preview: preview.as_ref(),
            plan: change.plan.as_ref(),
            snapshot: &snapshot,
        },
    )
    .await?;
    db::audit::record(
        tx,
        at,
        NewEntry::new(&actor.name, AuditAction::ChangeRequest)
            .config(&path)
            .details(json!({
                "change_request": id, "action": change.action, "version": change.version,
                "approvals_needed": needed, "apply_at": apply_at, "message": change.message,
            })),
    )
    .await?;
    let stored = db::change_requests::find(&mut *tx, id)
        .await?
        .ok_or_else(|| Error::internal(format!("change request {id} vanished")))?;
    Ok(stored.request)
}

/// Records a break-glass override by `actor` (an admin) and its `change.override` audit entry.
pub async fn record_override(
    tx: &mut db::Tx<'_>,
    at: Timestamp,
    actor: &Actor,
    config: &StoredConfig,
    action: ChangeAction,
    change_request: Option<i64>,
    reason: &str,
) -> Result<i64> {
    let c = &config.config;
    actor
        .require(Role::Admin, c.path().scope())
        .map_err(|_| Error::forbidden("Only an admin may override the approvals (break glass)."))?;
    let id = db::change_requests::insert_override(
        tx,
        at,
        db::change_requests::NewOverride {
            config_id: config.id,
            namespace: &c.namespace,
            env: &c.env,
            key: &c.key,
            action,
            change_request,
            actor: &actor.name,
            reason,
        },
    )
    .await?;
    db::audit::record(
        tx,
        at,
        NewEntry::new(&actor.name, AuditAction::ChangeOverride)
            .config(&ConfigPath::new(&c.namespace, &c.env, &c.key))
            .details(json!({
                "override": id, "action": action, "change_request": change_request,
                "reason": reason,
            })),
    )
    .await?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_unix_ms(ms).unwrap()
    }

    #[test]
    fn apply_at_lies_in_the_next_ninety_days() {
        let now = at(1_000_000_000_000);
        assert_eq!(check_apply_at(now, None).unwrap(), None);
        assert!(check_apply_at(now, Some(at(1_000_000_060_000))).is_ok());
        for bad in [
            now,
            at(999_999_999_000),
            at(1_000_000_000_000 + 91 * 86_400_000),
        ] {
            let e = check_apply_at(now, Some(bad)).unwrap_err();
            assert_eq!(e.field.as_deref(), Some("apply_at"));
        }
        assert!(check_apply_at(now, Some(at(1_000_000_000_000 + 90 * 86_400_000))).is_ok());
    }

    #[test]
    fn an_override_needs_a_reason() {
        let short = Override {
            reason: " too short ".into(),
        };
        assert_eq!(
            check_override(&short).unwrap_err().field.as_deref(),
            Some("override")
        );
        let long = Override {
            reason: "x".repeat(MAX_REASON_CHARS + 1),
        };
        assert!(check_override(&long).is_err());
        let fine = Override {
            reason: "  payments are down  ".into(),
        };
        assert_eq!(check_override(&fine).unwrap(), "payments are down");
    }

    #[test]
    fn staleness_names_what_changed() {
        let then =
            json!({"config": 1, "stable_version": 2, "lanes": [], "version": 3, "checksum": "a"});
        assert_eq!(what_changed(&then, &then), None);
        let mut now = then.clone();
        now["stable_version"] = json!(3);
        let why = what_changed(&then, &now).unwrap();
        assert!(why.contains("stable release moved from v2 to v3"), "{why}");
        now["checksum"] = json!("b");
        assert!(what_changed(&then, &now)
            .unwrap()
            .contains("content of v3 changed"));
    }
}
