//! The checked changes of a gray lane (docs/lanes.md) that both the lane operations
//! (`ops::lanes`) and the plans that drive lanes (`ops::plans`) make: a lane body's checks,
//! the release event of a lane action, and the change and close of an active lane inside a
//! transaction. It uses neither of them, so they do not depend on each other.

use super::lookups::{find_version, message_of};
use crate::domain::audit::AuditAction;
use crate::domain::lane::LaneRule;
use crate::domain::selector::Selector;
use crate::error::quoted;
use crate::model::{
    Lane, LaneStatus, LaneUpdate, NewLane, Percentage, ReleaseEvent, ReleaseKind, Timestamp,
};
use crate::server::auth::Actor;
use crate::server::db::{self, audit::NewEntry, configs::StoredConfig, releases::NewReleaseEvent};
use crate::{Error, Result};
use serde_json::json;

/// The priority of a lane started without one. Lanes are tried by (priority,
/// id) ascending, so by default the oldest active lane wins; give a lane a
/// negative priority to put it in front, a positive one to put it behind.
pub const DEFAULT_PRIORITY: i64 = 0;
/// The stickiness key of a lane started without one.
pub const DEFAULT_STICKINESS: &str = "client_id";
pub const MAX_TARGETS: usize = 1000;
pub const MAX_TARGET_CHARS: usize = 256;
/// The most bytes a lane's targets may have together: they are kept in memory, evaluated on
/// every resolve and repeated in the lane's audit entries, which must stay small.
pub const MAX_TARGETS_BYTES: usize = 16 * 1024;
/// Priorities lie in `-MAX_PRIORITY..=MAX_PRIORITY`: room for any ordering of a config's lanes,
/// and numbers every client reads exactly.
pub const MAX_PRIORITY: i64 = 1000;

fn parse_selector(text: &str) -> Result<Selector> {
    Selector::parse_input(text).map_err(|e| {
        Error::invalid(
            "selector",
            format!("selector {} is not valid at {e}", quoted(text)),
        )
    })
}

fn parse_percentage(percentage: f64) -> Result<Percentage> {
    Percentage::parse(percentage).map_err(|message| Error::invalid("percentage", message))
}

/// Trims each target and drops repeats (keeping the first); refuses empty,
/// over-long or control-character values and lists over [`MAX_TARGETS`].
fn check_targets(targets: Vec<String>) -> Result<Vec<String>> {
    if targets.len() > MAX_TARGETS {
        return Err(Error::invalid(
            "targets",
            format!(
                "{} targets is too many; a lane takes at most {MAX_TARGETS} (use a selector for larger groups).",
                targets.len()
            ),
        ));
    }
    let mut checked: Vec<String> = Vec::with_capacity(targets.len());
    for (i, target) in targets.iter().enumerate() {
        let target = target.trim();
        if target.is_empty()
            || target.chars().count() > MAX_TARGET_CHARS
            || target.chars().any(char::is_control)
        {
            return Err(Error::invalid(
                "targets",
                format!(
                    "target {} ({}) is not valid: use 1–{MAX_TARGET_CHARS} characters without control characters.",
                    i + 1,
                    quoted(target)
                ),
            ));
        }
        if !checked.iter().any(|t| t == target) {
            checked.push(target.to_string());
        }
    }
    let bytes: usize = checked.iter().map(String::len).sum();
    if bytes > MAX_TARGETS_BYTES {
        return Err(Error::invalid(
            "targets",
            format!(
                "The targets have {bytes} bytes together; a lane takes at most {MAX_TARGETS_BYTES} \
                 (use a selector for larger groups)."
            ),
        ));
    }
    Ok(checked)
}

fn check_stickiness(stickiness: Option<String>) -> Result<String> {
    let stickiness = stickiness
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_STICKINESS.to_string());
    if stickiness.len() > 63
        || !stickiness
            .chars()
            .all(crate::domain::selector::is_token_char)
    {
        return Err(Error::invalid(
            "stickiness",
            format!(
                "stickiness {} is not a context key: use 1–63 of A-Z a-z 0-9 . _ / - \
                 (e.g. client_id or user_id).",
                quoted(&stickiness)
            ),
        ));
    }
    Ok(stickiness)
}

/// A lane body, checked: everything but the version, which needs the database.
pub(super) struct CheckedLane {
    pub(super) version: i64,
    pub(super) selector: Selector,
    pub(super) targets: Vec<String>,
    pub(super) percentage: Percentage,
    pub(super) stickiness: String,
    pub(super) priority: i64,
    pub(super) message: String,
}

fn check_priority(priority: i64) -> Result<i64> {
    if !(-MAX_PRIORITY..=MAX_PRIORITY).contains(&priority) {
        return Err(Error::invalid(
            "priority",
            format!(
                "priority {priority} is out of range; use a number from -{MAX_PRIORITY} to \
                 {MAX_PRIORITY} (lower is tried first)."
            ),
        ));
    }
    Ok(priority)
}

pub(super) fn check_new_lane(new: NewLane) -> Result<CheckedLane> {
    Ok(CheckedLane {
        version: new.version,
        selector: parse_selector(new.selector.as_deref().unwrap_or(""))?,
        targets: check_targets(new.targets.unwrap_or_default())?,
        percentage: parse_percentage(new.percentage)?,
        stickiness: check_stickiness(new.stickiness)?,
        priority: check_priority(new.priority.unwrap_or(DEFAULT_PRIORITY))?,
        message: message_of(new.message)?,
    })
}

impl CheckedLane {
    pub(super) fn rule(&self, id: i64, salt: String) -> LaneRule {
        LaneRule {
            id,
            version: self.version,
            selector: self.selector.clone(),
            targets: self.targets.clone(),
            percentage: self.percentage,
            stickiness: self.stickiness.clone(),
            salt,
            priority: self.priority,
        }
    }
}

/// 400 (field `version`) unless the config has `version`.
pub(super) async fn check_version(
    conn: &mut db::Conn,
    config: &StoredConfig,
    version: i64,
) -> Result<()> {
    find_version(&mut *conn, config, version)
        .await
        .map(drop)
        .map_err(|e| Error::invalid("version", e.message))
}

/// Appends the release event of a lane action.
pub(super) async fn lane_event(
    tx: &mut db::Tx<'_>,
    actor: &Actor,
    config: &StoredConfig,
    lane: &Lane,
    kind: ReleaseKind,
    message: &str,
) -> Result<ReleaseEvent> {
    Ok(db::releases::insert(
        tx,
        NewReleaseEvent {
            config_id: config.id,
            kind,
            version: lane.version,
            previous_version: config.config.stable_version,
            lane: Some(lane.id),
            actor: &actor.name,
            message,
        },
    )
    .await?)
}

/// An active lane of the config, or 404 / 409 (closed lanes are history).
pub(super) async fn find_active(
    conn: &mut db::Conn,
    config: &StoredConfig,
    id: i64,
) -> Result<Lane> {
    let c = &config.config;
    let lane = db::lanes::find(&mut *conn, config.id, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("{} has no lane {id}.", c.path())))?;
    if lane.status != LaneStatus::Active {
        return Err(Error::conflict(format!(
            "lane {id} was {} at {}; a closed lane cannot change. Start a new lane instead.",
            lane.status,
            lane.closed_at
                .map_or_else(|| "an earlier time".to_string(), |t| t.to_string()),
        )));
    }
    Ok(lane)
}

/// The rule `change` gives `lane`, checked; 400 when `change` has nothing to change.
pub(super) fn apply(lane: &Lane, change: &LaneUpdate) -> Result<CheckedLane> {
    if change.selector.is_none()
        && change.targets.is_none()
        && change.percentage.is_none()
        && change.priority.is_none()
    {
        return Err(Error::bad_request(
            "Send at least one of selector, targets, percentage, priority to change a lane.",
        ));
    }
    Ok(CheckedLane {
        version: lane.version,
        selector: parse_selector(change.selector.as_deref().unwrap_or(&lane.selector))?,
        targets: match &change.targets {
            Some(targets) => check_targets(targets.clone())?,
            None => lane.targets.clone(),
        },
        percentage: match change.percentage {
            Some(percentage) => parse_percentage(percentage)?,
            None => lane.percentage,
        },
        stickiness: lane.stickiness.clone(),
        priority: match change.priority {
            Some(priority) => check_priority(priority)?,
            None => lane.priority,
        },
        message: message_of(change.message.clone())?,
    })
}

/// The fields `change` names, with their values in `lane`.
fn changed_fields(lane: &Lane, change: &LaneUpdate) -> serde_json::Value {
    let mut fields = serde_json::Map::new();
    if change.selector.is_some() {
        fields.insert("selector".into(), json!(lane.selector));
    }
    if change.targets.is_some() {
        fields.insert("targets".into(), json!(lane.targets));
    }
    if change.percentage.is_some() {
        fields.insert("percentage".into(), json!(lane.percentage));
    }
    if change.priority.is_some() {
        fields.insert("priority".into(), json!(lane.priority));
    }
    fields.into()
}

/// Changes an active lane inside `tx`, with its release event and audit entry (the caller
/// authorized `actor` and publishes the event after the commit).
pub(super) async fn update_in(
    tx: &mut db::Tx<'_>,
    at: Timestamp,
    actor: &Actor,
    config: &StoredConfig,
    id: i64,
    change: &LaneUpdate,
) -> Result<(Lane, ReleaseEvent)> {
    let c = &config.config;
    let before = find_active(&mut *tx, config, id).await?;
    let rule = apply(&before, change)?;
    let selector = rule.selector.to_string();
    let after = db::lanes::update(
        tx,
        at,
        id,
        db::lanes::LaneRuleRow {
            selector: &selector,
            targets: &rule.targets,
            percentage: rule.percentage,
            priority: rule.priority,
        },
    )
    .await?;
    let event = lane_event(
        tx,
        actor,
        config,
        &after,
        ReleaseKind::LaneUpdate,
        &rule.message,
    )
    .await?;
    db::audit::record(
        tx,
        at,
        NewEntry::new(&actor.name, AuditAction::LaneUpdate)
            .config(&c.path())
            .details(json!({
                "lane": id, "version": after.version,
                "before": changed_fields(&before, change),
                "after": changed_fields(&after, change),
                "message": rule.message, "release_event": event.id,
            })),
    )
    .await?;
    Ok((after, event))
}

#[derive(Clone, Copy, PartialEq)]
pub enum Close {
    Promote,
    Abort,
}

/// Promotes or aborts an active lane inside `tx`, with its release event and audit entry (the
/// caller authorized `actor` and publishes the event after the commit).
pub(super) async fn close_in(
    tx: &mut db::Tx<'_>,
    at: Timestamp,
    actor: &Actor,
    config: &StoredConfig,
    id: i64,
    message: &str,
    how: Close,
) -> Result<(Lane, ReleaseEvent)> {
    let c = &config.config;
    let (status, action, audit) = match how {
        Close::Promote => (
            LaneStatus::Promoted,
            ReleaseKind::LanePromote,
            AuditAction::LanePromote,
        ),
        Close::Abort => (
            LaneStatus::Aborted,
            ReleaseKind::LaneAbort,
            AuditAction::LaneAbort,
        ),
    };
    let lane = find_active(&mut *tx, config, id).await?;
    let event = lane_event(tx, actor, config, &lane, action, message).await?;
    let closed = db::lanes::close(tx, at, id, status, event.id).await?;
    if how == Close::Promote {
        db::configs::set_stable(tx, at, config.id, lane.version).await?;
    }
    db::audit::record(
        tx,
        at,
        NewEntry::new(&actor.name, audit)
            .config(&c.path())
            .details(json!({
                "lane": id, "version": lane.version,
                "stable_version": c.stable_version,
                "message": message, "release_event": event.id,
            })),
    )
    .await?;
    Ok((closed, event))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn targets_are_trimmed_and_deduplicated() {
        let targets = vec![" pod-1".into(), "pod-2".into(), "pod-1 ".into()];
        assert_eq!(check_targets(targets).unwrap(), ["pod-1", "pod-2"]);
        let err = check_targets(vec!["pod-1".into(), " ".into()]).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("targets"));
        assert!(err.message.contains("target 2"), "{}", err.message);
    }

    #[test]
    fn targets_are_bounded_in_count_and_bytes() {
        let many: Vec<String> = (0..=MAX_TARGETS).map(|i| format!("u{i}")).collect();
        let err = check_targets(many).unwrap_err();
        assert!(err.message.contains("at most 1000"), "{}", err.message);
        // 100 targets of 200 characters: each fits, together they do not.
        let long: Vec<String> = (0..100).map(|i| format!("{i:0>200}")).collect();
        let err = check_targets(long).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("targets"));
        assert!(
            err.message.contains("20000 bytes together") && err.message.contains("16384"),
            "{}",
            err.message
        );
        let fits: Vec<String> = (0..80).map(|i| format!("{i:0>200}")).collect();
        assert_eq!(check_targets(fits).unwrap().len(), 80);
    }

    #[test]
    fn a_refused_target_is_quoted_short() {
        let err = check_targets(vec![format!("{}\n", "x".repeat(100_000))]).unwrap_err();
        assert!(err.message.len() < 300, "{}", err.message);
        assert!(err.message.contains("…"), "{}", err.message);
    }

    #[test]
    fn priorities_lie_within_the_range() {
        assert_eq!(check_priority(-1000).unwrap(), -1000);
        assert_eq!(check_priority(1000).unwrap(), 1000);
        for bad in [1001, -1001, i64::MIN, i64::MAX] {
            let err = check_priority(bad).unwrap_err();
            assert_eq!(err.field.as_deref(), Some("priority"));
            assert!(err.message.contains("-1000 to 1000"), "{}", err.message);
        }
    }

    #[test]
    fn stickiness_defaults_to_client_id() {
        assert_eq!(check_stickiness(None).unwrap(), "client_id");
        assert_eq!(check_stickiness(Some("user_id".into())).unwrap(), "user_id");
        let err = check_stickiness(Some("user id".into())).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("stickiness"));
    }
}
