//! The words of the audit trail: the actions the dashboard tells as sentences, and the words
//! those sentences add to what an entry stores, so that a search for the words on screen
//! ("rolled back") finds the entries that show them.

/// Every action the dashboard writes a sentence for, with the words its sentence adds to the
/// entry's stored fields (actor, action, target, details). `app::sentences` has a test that
/// every word of every sentence is either stored or listed here.
pub const ACTIONS: &[(&str, &str)] = &[
    ("auth.login", "signed in"),
    ("auth.login_failed", "failed to sign in"),
    ("auth.logout", "signed out"),
    ("user.create", "created user in at first start"),
    (
        "user.update",
        "changed saved user unchanged role environment none any disabled enabled again",
    ),
    ("token.create", "created token namespace environment"),
    ("token.revoke", "revoked token"),
    ("environment.create", "created environment at first start"),
    ("namespace.create", "created namespace"),
    ("config.create", "created"),
    ("config.delete", "deleted"),
    ("version.create", "saved of"),
    ("release.stable", "released of"),
    ("release.rollback", "rolled back to"),
    (
        "lane.create",
        "started gray lane on serving to of every instance by plus target targets",
    ),
    (
        "lane.update",
        "changed gray lane on weight selector targets priority every instance none",
    ),
    (
        "lane.promote",
        "promoted gray lane on is the stable release was nothing released before",
    ),
    (
        "lane.abort",
        "aborted gray lane on its instances fall back to stable get nothing no release",
    ),
    (
        "rollout.start",
        "started a rollout plan from template on gray lane of at step steps",
    ),
    ("rollout.advance", "advanced gray lane of by force to step"),
    (
        "rollout.complete",
        "completed the rollout plan of gray lane on",
    ),
    (
        "rollout.pause",
        "paused the rollout plan of gray lane on at step",
    ),
    (
        "rollout.resume",
        "resumed the rollout plan of gray lane on at step with s of its hold left",
    ),
    ("rollout.abort", "aborted gray lane on by its rollout plan"),
    ("template.create", "created rollout template in"),
    ("template.delete", "deleted rollout template in"),
    (
        "template.default",
        "made the default rollout template cleared in",
    ),
];

/// The most words an audit search looks for (each may stand for several actions).
pub const MAX_SEARCH_WORDS: usize = 16;

/// One word of an audit search and what else shows it on screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchTerm {
    /// The word as typed.
    pub word: String,
    /// Whether it also matches longer words (the last word: search as you type).
    pub prefix: bool,
    /// The actions whose sentences show this word though no stored field holds it.
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
                    ACTIONS
                        .iter()
                        .filter(|(_, said)| {
                            said.split(' ').any(|w| {
                                if prefix {
                                    w.starts_with(&folded)
                                } else {
                                    w == folded
                                }
                            })
                        })
                        .map(|(action, _)| *action)
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
        assert_eq!(terms[0].actions, vec!["release.rollback"]);
        assert!(!terms[0].prefix && terms[1].prefix);
        // `back` as a prefix: "rolled back" and "fall back".
        assert_eq!(terms[1].actions, vec!["release.rollback", "lane.abort"]);
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
    fn every_action_is_listed_once() {
        let mut names: Vec<&str> = ACTIONS.iter().map(|(a, _)| *a).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ACTIONS.len());
    }
}
