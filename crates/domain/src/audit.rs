//! The words of the audit trail: the actions the dashboard tells as sentences, and the words
//! those sentences add to what an entry stores, so that a search for the words on screen
//! ("rolled back") finds the entries that show them.

use crate::words::words;

words! {
    /// What an audit entry records, stored in its `action` column as `noun.verb`.
    pub enum AuditAction {
        AuthLogin = "auth.login",
        AuthLoginFailed = "auth.login_failed",
        AuthLogout = "auth.logout",
        UserCreate = "user.create",
        UserUpdate = "user.update",
        TokenCreate = "token.create",
        TokenRevoke = "token.revoke",
        EnvironmentCreate = "environment.create",
        NamespaceCreate = "namespace.create",
        ConfigCreate = "config.create",
        ConfigDelete = "config.delete",
        VersionCreate = "version.create",
        ReleaseStable = "release.stable",
        ReleaseRollback = "release.rollback",
        LaneCreate = "lane.create",
        LaneUpdate = "lane.update",
        LanePromote = "lane.promote",
        LaneAbort = "lane.abort",
        RolloutStart = "rollout.start",
        RolloutAdvance = "rollout.advance",
        RolloutComplete = "rollout.complete",
        RolloutPause = "rollout.pause",
        RolloutResume = "rollout.resume",
        RolloutAbort = "rollout.abort",
        TemplateCreate = "template.create",
        TemplateDelete = "template.delete",
        TemplateDefault = "template.default",
        ProtectionSet = "protection.set",
        ChangeRequest = "change.request",
        ChangeApprove = "change.approve",
        ChangeReject = "change.reject",
        ChangeWithdraw = "change.withdraw",
        ChangeApply = "change.apply",
        ChangeStale = "change.stale",
        ChangeExpire = "change.expire",
        ChangeOverride = "change.override",
        OverrideReview = "override.review",
        FreezeCreate = "freeze.create",
        FreezeDelete = "freeze.delete",
        ChannelCreate = "channel.create",
        ChannelDelete = "channel.delete",
        TriggerCreate = "trigger.create",
        TriggerUpdate = "trigger.update",
        TriggerRotate = "trigger.rotate",
        TriggerDelete = "trigger.delete",
        TriggerFire = "trigger.fire",
    }
}

impl AuditAction {
    /// The noun an action is about: `release` for `release.stable` (the page's action groups).
    pub fn noun(self) -> &'static str {
        let word = self.as_str();
        word.split_once('.').map_or(word, |(noun, _)| noun)
    }

    /// The words the dashboard's sentence for this action adds to the entry's stored fields
    /// (actor, action, target, details). `app::sentences` has a test that every word of every
    /// sentence is either stored or listed here.
    pub fn said(self) -> &'static str {
        use AuditAction::*;
        match self {
            AuthLogin => "signed in",
            AuthLoginFailed => "failed to sign in",
            AuthLogout => "signed out",
            UserCreate => "created user in at first start",
            UserUpdate => {
                "changed saved user unchanged role environment none any disabled enabled again"
            }
            TokenCreate => "created token namespace environment",
            TokenRevoke => "revoked token",
            EnvironmentCreate => "created environment at first start",
            NamespaceCreate => "created namespace",
            ConfigCreate => "created",
            ConfigDelete => "deleted",
            VersionCreate => "saved of",
            ReleaseStable => "released of",
            ReleaseRollback => "rolled back to",
            LaneCreate => {
                "started gray lane on serving to of every instance by plus target targets"
            }
            LaneUpdate => {
                "changed gray lane on weight selector targets priority every instance none"
            }
            LanePromote => {
                "promoted gray lane on is the stable release was nothing released before"
            }
            LaneAbort => {
                "aborted gray lane on its instances fall back to stable get nothing no release"
            }
            RolloutStart => "started a rollout plan from template on gray lane of at step steps",
            RolloutAdvance => "advanced gray lane of by force to step",
            RolloutComplete => "completed the rollout plan of gray lane on",
            RolloutPause => "paused the rollout plan of gray lane on at step",
            RolloutResume => {
                "resumed the rollout plan of gray lane on at step with s of its hold left"
            }
            RolloutAbort => "aborted gray lane on by its rollout plan",
            TemplateCreate => "created rollout template in",
            TemplateDelete => "deleted rollout template in",
            TemplateDefault => "made the default rollout template cleared in",
            ProtectionSet => "protected environment with approvals unprotected",
            ChangeRequest => "requested change request on at needing approvals",
            ChangeApprove => "approved change request on of approvals",
            ChangeReject => "rejected change request on",
            ChangeWithdraw => "withdrew change request on",
            ChangeApply => "applied change request on as approved by",
            ChangeStale => "found change request on stale",
            ChangeExpire => "expired change request on",
            ChangeOverride => "overrode the approvals of change request on",
            OverrideReview => "reviewed override on by",
            FreezeCreate => "froze every from to",
            FreezeDelete => "deleted the freeze window of",
            ChannelCreate => "created notification channel sending to in",
            ChannelDelete => "deleted notification channel",
            TriggerCreate => "created trigger on every config of",
            TriggerUpdate => {
                "enabled disabled trigger on every config of and changed the description saved \
                 unchanged"
            }
            TriggerRotate => "rotated the token of trigger on every config",
            TriggerDelete => "deleted trigger on every config of",
            TriggerFire => {
                "fired from nothing to do on every config of aborted gray lane paused the rollout \
                 plan rolled back to"
            }
        }
    }
}

/// The most words an audit search looks for (each may stand for several actions).
pub const MAX_SEARCH_WORDS: usize = 16;

/// One word of an audit search and what else shows it on screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchTerm {
    /// The word as typed.
    pub word: String,
    /// Whether it also matches longer words (the last word: search as you type).
    pub prefix: bool,
    /// The actions (as stored) whose sentences show this word though no stored field holds it.
    pub actions: Vec<&'static str>,
    /// `v9` on screen is the number 9 in the details.
    pub number: Option<String>,
}

/// The user's words, each with the actions whose sentence shows it; `None` when there is no
/// word to look for (nothing but punctuation). Words are split on white space and compared in
/// lower case, letters and digits only, as the full-text index keeps them.
pub fn search_terms(input: &str) -> Option<Vec<SearchTerm>> {
    let words: Vec<&str> = input
        .split_whitespace()
        .filter(|t| t.chars().any(char::is_alphanumeric))
        .collect();
    let last = words.len().checked_sub(1)?;
    Some(
        words
            .iter()
            .enumerate()
            .map(|(i, word)| {
                let prefix = i == last;
                let folded = fold(word);
                let actions = if folded.is_empty() {
                    Vec::new()
                } else {
                    AuditAction::ALL
                        .iter()
                        .filter(|action| {
                            action.said().split(' ').any(|w| {
                                if prefix {
                                    w.starts_with(&folded)
                                } else {
                                    w == folded
                                }
                            })
                        })
                        .map(|action| action.as_str())
                        .collect()
                };
                let number = folded
                    .strip_prefix('v')
                    .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                    .map(String::from);
                SearchTerm {
                    word: word.to_string(),
                    prefix,
                    actions,
                    number,
                }
            })
            .collect(),
    )
}

/// A word as the sentence vocabulary is written: lower case, letters and digits only.
fn fold(word: &str) -> String {
    word.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_on_screen_name_their_actions() {
        let terms = search_terms("Rolled back").unwrap();
        assert_eq!(terms.len(), 2);
        // A trigger's fire says "rolled back" too.
        assert_eq!(terms[0].actions, vec!["release.rollback", "trigger.fire"]);
        assert!(!terms[0].prefix && terms[1].prefix);
        // `back` as a prefix: "rolled back" and "fall back".
        assert_eq!(
            terms[1].actions,
            vec!["release.rollback", "lane.abort", "trigger.fire"]
        );
        let promoted = search_terms("promoted").unwrap();
        assert_eq!(promoted[0].actions, vec!["lane.promote"]);
        let stored_only = search_terms("payments-api timeout").unwrap();
        assert!(stored_only.iter().all(|t| t.actions.is_empty()));
    }

    #[test]
    fn a_version_on_screen_is_its_number() {
        let terms = search_terms("v12 bigger").unwrap();
        assert_eq!(terms[0].number.as_deref(), Some("12"));
        assert_eq!(terms[1].number, None);
        assert_eq!(search_terms("v").unwrap()[0].number, None);
    }

    #[test]
    fn punctuation_alone_is_no_search() {
        assert_eq!(search_terms("  - * "), None);
        assert_eq!(search_terms(""), None);
    }

    #[test]
    fn every_action_reads_back_from_its_word() {
        for action in AuditAction::ALL {
            assert_eq!(action.as_str().parse::<AuditAction>(), Ok(*action));
            assert_eq!(
                serde_json::to_value(action).unwrap(),
                serde_json::json!(action.as_str())
            );
        }
        let mut words: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        words.sort_unstable();
        words.dedup();
        assert_eq!(words.len(), AuditAction::ALL.len());
        assert_eq!(AuditAction::ReleaseRollback.noun(), "release");
        let unknown = "plan.start".parse::<AuditAction>().unwrap_err();
        assert!(unknown.contains("\"plan.start\""), "{unknown}");
    }
}
