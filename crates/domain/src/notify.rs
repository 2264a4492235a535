//! Notification channels' words: which audit actions a channel may ask for, how its event
//! filter is written and matched, and its message formats (docs/api.md, "Notification
//! channels").

use crate::audit::AuditAction;
use crate::words::words;

words! {
    /// How a channel's messages are written.
    pub enum ChannelFormat {
        /// The audit entry, its sentence and links, as JSON.
        Json = "json",
        /// A Slack incoming-webhook message: the sentence, the config, the version diff summary
        /// and a link.
        Slack = "slack",
    }
}

/// The most patterns in one channel's event filter.
pub const MAX_EVENTS: usize = 32;

/// The groups of actions a filter may name with `.*`, and the stored noun each stands for.
const GROUPS: [(&str, &str); 4] = [
    ("lane", "lane"),
    ("rollout", "rollout"),
    ("change_request", "change"),
    ("release", "release"),
];

/// Whether an audit action is something channels deliver: releases and rollbacks, lanes,
/// rollouts, change requests, a config's deletion and a trigger's firing.
pub fn notifiable(action: AuditAction) -> bool {
    use AuditAction::*;
    matches!(
        action,
        ReleaseStable
            | ReleaseRollback
            | ConfigDelete
            | LaneCreate
            | LaneUpdate
            | LanePromote
            | LaneAbort
            | RolloutStart
            | RolloutAdvance
            | RolloutComplete
            | RolloutPause
            | RolloutResume
            | RolloutAbort
            | ChangeRequest
            | ChangeApprove
            | ChangeReject
            | ChangeWithdraw
            | ChangeApply
            | ChangeStale
            | ChangeExpire
            | ChangeOverride
            | OverrideReview
            | TriggerFire
    )
}

/// What an event filter's pattern may be, in words for an error.
pub const PATTERNS: &str = "release, rollback, config.delete, lane.*, rollout.*, \
    change_request.*, release.*, or one action such as lane.abort, rollout.abort or \
    change_request.approve";

/// The actions one pattern of an event filter stands for; `None` when it is no pattern.
/// `release` is a stable release, `rollback` a rollback, `lane.*` every lane action,
/// `change_request.approve` the stored `change.approve`.
pub fn pattern_actions(pattern: &str) -> Option<Vec<AuditAction>> {
    let of = |pred: &dyn Fn(AuditAction) -> bool| -> Vec<AuditAction> {
        AuditAction::ALL
            .iter()
            .copied()
            .filter(|a| notifiable(*a) && pred(*a))
            .collect()
    };
    let found = match pattern {
        "release" => vec![AuditAction::ReleaseStable],
        "rollback" => vec![AuditAction::ReleaseRollback],
        _ => {
            let (group, verb) = pattern.split_once('.')?;
            let stored = if group == "config" {
                "config"
            } else {
                GROUPS.iter().find(|(g, _)| *g == group)?.1
            };
            match verb {
                "*" if group != "config" => of(&|a| a.noun() == stored),
                "*" => return None,
                verb => of(&|a| a.as_str() == format!("{stored}.{verb}")),
            }
        }
    };
    (!found.is_empty()).then_some(found)
}

/// Whether a channel whose filter is `patterns` (empty: every notifiable action) delivers
/// `action`. Patterns were checked when the channel was made; one that is no longer a pattern
/// matches nothing.
pub fn matches(patterns: &[String], action: AuditAction) -> bool {
    if !notifiable(action) {
        return false;
    }
    patterns.is_empty()
        || patterns
            .iter()
            .any(|p| pattern_actions(p).is_some_and(|actions| actions.contains(&action)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use AuditAction::*;

    fn p(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_issue_words_name_the_stored_actions() {
        assert_eq!(pattern_actions("release"), Some(vec![ReleaseStable]));
        assert_eq!(pattern_actions("rollback"), Some(vec![ReleaseRollback]));
        assert_eq!(pattern_actions("config.delete"), Some(vec![ConfigDelete]));
        assert_eq!(
            pattern_actions("lane.*"),
            Some(vec![LaneCreate, LaneUpdate, LanePromote, LaneAbort])
        );
        assert_eq!(
            pattern_actions("change_request.approve"),
            Some(vec![ChangeApprove])
        );
        assert_eq!(pattern_actions("change_request.*").unwrap().len(), 8);
        assert_eq!(pattern_actions("rollout.*").unwrap().len(), 6);
        for bad in [
            "",
            "lane",
            "lane.",
            "lane.nope",
            "config.*",
            "config.create",
            "user.*",
            "auth.login",
            "*",
            "change.approve",
        ] {
            assert_eq!(pattern_actions(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_empty_filter_takes_every_notifiable_action_and_nothing_else() {
        assert!(matches(&[], ReleaseStable));
        assert!(matches(&[], RolloutAbort));
        assert!(matches(&[], TriggerFire), "an alert that stopped a rollout");
        assert!(!matches(&[], AuthLogin));
        assert!(!matches(&[], VersionCreate));
        assert!(!matches(&[], FreezeCreate));
    }

    #[test]
    fn a_filter_takes_what_its_patterns_name() {
        let f = p(&["rollback", "rollout.abort"]);
        assert!(matches(&f, ReleaseRollback));
        assert!(matches(&f, RolloutAbort));
        assert!(!matches(&f, ReleaseStable));
        assert!(!matches(&f, RolloutAdvance));
        // A pattern cannot reach an action channels never deliver.
        assert!(!matches(&p(&["release.*"]), VersionCreate));
        assert!(matches(&p(&["release.*"]), ReleaseRollback));
    }

    #[test]
    fn formats_are_words() {
        assert_eq!("slack".parse::<ChannelFormat>(), Ok(ChannelFormat::Slack));
        assert!("xml".parse::<ChannelFormat>().is_err());
    }
}
