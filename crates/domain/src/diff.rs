//! Side-by-side line diffs between two versions, with word-level highlights for changed lines.

use serde::{Deserialize, Serialize};
use similar::{Algorithm, ChangeTag, DiffableStr, TextDiff};
use std::time::Duration;

/// What happened to one row of a side-by-side diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiffTag {
    /// The same line on both sides.
    Equal,
    /// A line only on the left (old) side.
    Delete,
    /// A line only on the right (new) side.
    Insert,
    /// A changed line: the left line was replaced by the right one.
    Replace,
}

impl DiffTag {
    /// The lowercase name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            DiffTag::Equal => "equal",
            DiffTag::Delete => "delete",
            DiffTag::Insert => "insert",
            DiffTag::Replace => "replace",
        }
    }
}

/// One row of a side-by-side diff. Line numbers are 1-based; text has no trailing newline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffRow {
    pub tag: DiffTag,
    pub left_no: Option<usize>,
    pub left: Option<String>,
    pub right_no: Option<usize>,
    pub right: Option<String>,
}

/// A side-by-side diff with its totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diff {
    pub rows: Vec<DiffRow>,
    /// Right-side lines inserted or replaced.
    pub added: usize,
    /// Left-side lines deleted or replaced.
    pub removed: usize,
}

/// Line diff of `old` against `new`. Within a changed block, deleted and inserted lines are paired
/// up as `replace` rows; the surplus of the longer side follows as `delete` or `insert` rows.
///
/// Without a deadline Myers' algorithm takes time quadratic in the changed lines: the server
/// uses [`diff_lines_within`].
pub fn diff_lines(old: &str, new: &str) -> Diff {
    diff_lines_within(old, new, None)
}

/// Like [`diff_lines`], but stops refining after `timeout`: what is not matched up by then is
/// shown as changed wholesale. Such a diff is still true (every row shows real lines of each
/// side, in order, and the totals match the rows), only coarser. The rest of the work is linear
/// in the input. In the browser (wasm32, no clock) the timeout is ignored.
pub fn diff_lines_within(old: &str, new: &str, timeout: Option<Duration>) -> Diff {
    diff_lines_with(old, new, false, timeout)
}

/// Like [`diff_lines_within`]; with `ignore_whitespace`, lines that differ only in whitespace
/// (indentation, spaces inside, trailing blanks, line endings) count as equal, as `git diff -w`
/// does. Rows always show each side's real text.
pub fn diff_lines_with(
    old: &str,
    new: &str,
    ignore_whitespace: bool,
    timeout: Option<Duration>,
) -> Diff {
    let (old_lines, new_lines) = (old.tokenize_lines(), new.tokenize_lines());
    // With whitespace hidden, lines are compared without any whitespace in them.
    let squeeze = |lines: &[&str]| -> Vec<String> {
        lines
            .iter()
            .map(|l| l.chars().filter(|c| !c.is_whitespace()).collect())
            .collect()
    };
    let (old_keys, new_keys) = if ignore_whitespace {
        (squeeze(&old_lines), squeeze(&new_lines))
    } else {
        (Vec::new(), Vec::new())
    };
    let (old_cmp, new_cmp): (Vec<&str>, Vec<&str>) = if ignore_whitespace {
        (
            old_keys.iter().map(String::as_str).collect(),
            new_keys.iter().map(String::as_str).collect(),
        )
    } else {
        (old_lines.clone(), new_lines.clone())
    };
    let mut config = TextDiff::configure();
    config.algorithm(Algorithm::Myers);
    if let Some(timeout) = timeout {
        config.timeout(timeout);
    }
    let diff = config.diff_slices(&old_cmp, &new_cmp);
    let mut rows = Vec::new();
    let (mut added, mut removed) = (0, 0);
    for op in diff.ops() {
        let (op_tag, old_range, new_range) = op.as_tag_tuple();
        for i in 0..old_range.len().max(new_range.len()) {
            let left_no = (i < old_range.len()).then_some(old_range.start + i);
            let right_no = (i < new_range.len()).then_some(new_range.start + i);
            let tag = match (left_no, right_no) {
                (Some(_), Some(_)) if op_tag == similar::DiffTag::Equal => DiffTag::Equal,
                (Some(_), Some(_)) => DiffTag::Replace,
                (Some(_), None) => DiffTag::Delete,
                (None, _) => DiffTag::Insert,
            };
            if tag != DiffTag::Equal {
                added += usize::from(right_no.is_some());
                removed += usize::from(left_no.is_some());
            }
            rows.push(DiffRow {
                tag,
                left_no: left_no.map(|n| n + 1),
                left: left_no.map(|n| strip_newline(old_lines[n])),
                right_no: right_no.map(|n| n + 1),
                right: right_no.map(|n| strip_newline(new_lines[n])),
            });
        }
    }
    Diff {
        rows,
        added,
        removed,
    }
}

fn strip_newline(line: &str) -> String {
    let line = line.strip_suffix('\n').unwrap_or(line);
    line.strip_suffix('\r').unwrap_or(line).to_owned()
}

/// One side of a highlighted line: consecutive `(changed, text)` spans.
pub type Spans = Vec<(bool, String)>;

/// Highlights for a replaced line: the left and right text cut into spans, `true` marking the
/// changed ones. Concatenating a side's spans gives back that side's text.
///
/// Diffs tokens rather than whole words or single characters: runs of letters, digits and `_`,
/// runs of whitespace, and every other character alone. So `1.2.3` → `1.2.4` marks only the
/// `3`, while `true` → `false` marks the whole word instead of scattered letters.
pub fn word_spans(left: &str, right: &str) -> (Spans, Spans) {
    let (left_tokens, right_tokens) = (tokens(left), tokens(right));
    let diff = TextDiff::configure()
        .algorithm(Algorithm::Myers)
        .diff_slices(&left_tokens, &right_tokens);
    let (mut left_spans, mut right_spans) = (Vec::new(), Vec::new());
    for change in diff.iter_all_changes() {
        let token = change.value();
        match change.tag() {
            ChangeTag::Equal => {
                push_span(&mut left_spans, false, token);
                push_span(&mut right_spans, false, token);
            }
            ChangeTag::Delete => push_span(&mut left_spans, true, token),
            ChangeTag::Insert => push_span(&mut right_spans, true, token),
        }
    }
    (left_spans, right_spans)
}

fn tokens(text: &str) -> Vec<&str> {
    let class = |c: char| {
        if c.is_alphanumeric() || c == '_' {
            1
        } else if c.is_whitespace() {
            2
        } else {
            0
        }
    };
    let mut tokens = Vec::new();
    let mut start = 0;
    let mut previous = None;
    for (index, c) in text.char_indices() {
        let current = class(c);
        if index > start && (current == 0 || previous != Some(current)) {
            tokens.push(&text[start..index]);
            start = index;
        }
        previous = Some(current);
    }
    if start < text.len() {
        tokens.push(&text[start..]);
    }
    tokens
}

/// Appends `text` to the last span when it has the same flag, so spans alternate.
fn push_span(spans: &mut Spans, changed: bool, text: &str) {
    match spans.last_mut() {
        Some((flag, last)) if *flag == changed => last.push_str(text),
        _ => spans.push((changed, text.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(tag: DiffTag, left: Option<(usize, &str)>, right: Option<(usize, &str)>) -> DiffRow {
        DiffRow {
            tag,
            left_no: left.map(|(n, _)| n),
            left: left.map(|(_, t)| t.to_owned()),
            right_no: right.map(|(n, _)| n),
            right: right.map(|(_, t)| t.to_owned()),
        }
    }

    #[test]
    fn identical_input_is_all_equal() {
        let text = "a\nb\r\nc";
        let diff = diff_lines(text, text);
        assert_eq!((diff.added, diff.removed), (0, 0));
        assert_eq!(
            diff.rows,
            [
                row(DiffTag::Equal, Some((1, "a")), Some((1, "a"))),
                row(DiffTag::Equal, Some((2, "b")), Some((2, "b"))),
                row(DiffTag::Equal, Some((3, "c")), Some((3, "c"))),
            ]
        );
        assert_eq!(diff_lines("", "").rows, []);
    }

    #[test]
    fn changed_line_is_a_replace_row_with_both_numbers() {
        let diff = diff_lines("a\nb\nc\n", "a\nB\nc\n");
        assert_eq!(
            diff.rows[1],
            row(DiffTag::Replace, Some((2, "b")), Some((2, "B")))
        );
        assert_eq!((diff.added, diff.removed), (1, 1));
    }

    #[test]
    fn unpaired_lines_are_deletes_and_inserts() {
        let diff = diff_lines("a\nx\ny\nb\n", "a\nX\nb\nc\n");
        assert_eq!(
            diff.rows,
            [
                row(DiffTag::Equal, Some((1, "a")), Some((1, "a"))),
                row(DiffTag::Replace, Some((2, "x")), Some((2, "X"))),
                row(DiffTag::Delete, Some((3, "y")), None),
                row(DiffTag::Equal, Some((4, "b")), Some((3, "b"))),
                row(DiffTag::Insert, None, Some((4, "c"))),
            ]
        );
        assert_eq!((diff.added, diff.removed), (2, 2));
    }

    #[test]
    fn serializes_with_lowercase_tags() {
        let json = serde_json::to_value(diff_lines("a\n", "")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "rows": [{"tag": "delete", "left_no": 1, "left": "a", "right_no": null, "right": null}],
                "added": 0,
                "removed": 1,
            })
        );
    }

    #[test]
    fn large_inputs_with_typical_edits_finish() {
        let old: String = (0..10_000)
            .map(|i| format!("key{i} = value{i}\n"))
            .collect();
        let new: String = (0..10_000)
            .filter(|i| i % 1000 != 7)
            .map(|i| match i % 997 {
                0 => format!("key{i} = changed{i}\n"),
                _ => format!("key{i} = value{i}\n"),
            })
            .chain((0..50).map(|i| format!("extra{i} = 1\n")))
            .collect();
        let diff = diff_lines(&old, &new);
        assert_eq!(diff.added, 11 + 50);
        assert_eq!(diff.removed, 11 + 10);
    }

    /// Lines no other line equals, on both sides: the worst case for Myers' algorithm.
    fn distinct_lines(prefix: &str, n: usize) -> String {
        (0..n)
            .map(|i| format!("{prefix}{}\n", i * 7919 % n))
            .collect()
    }

    #[test]
    fn a_diff_past_its_deadline_is_coarser_but_true() {
        // Without the deadline this takes minutes (quadratic in 40,000 changed lines).
        let (old, new) = (distinct_lines("old", 20_000), distinct_lines("new", 20_000));
        let started = std::time::Instant::now();
        let diff = diff_lines_within(&old, &new, Some(Duration::from_millis(200)));
        let took = started.elapsed();
        assert!(took < Duration::from_secs(20), "took {took:?}");
        assert_eq!((diff.added, diff.removed), (20_000, 20_000));
        let side = |pick: fn(&DiffRow) -> Option<&String>| {
            diff.rows
                .iter()
                .filter_map(pick)
                .map(|line| format!("{line}\n"))
                .collect::<String>()
        };
        assert_eq!(side(|r| r.left.as_ref()), old);
        assert_eq!(side(|r| r.right.as_ref()), new);
        // A deadline that is not reached changes nothing.
        let (a, b) = ("a\nb\nc\n", "a\nB\nc\nd\n");
        assert_eq!(
            diff_lines_within(a, b, Some(Duration::from_secs(60))),
            diff_lines(a, b)
        );
    }

    #[test]
    fn word_spans_mark_changed_tokens() {
        let (left, right) = word_spans("version: 1.2.3  # pinned", "version: 1.2.4  # pinned");
        assert_eq!(
            left,
            [
                (false, "version: 1.2.".into()),
                (true, "3".into()),
                (false, "  # pinned".into())
            ]
        );
        assert_eq!(
            right,
            [
                (false, "version: 1.2.".into()),
                (true, "4".into()),
                (false, "  # pinned".into())
            ]
        );

        let (left, right) = word_spans("enabled: true", "enabled: false");
        assert_eq!(left, [(false, "enabled: ".into()), (true, "true".into())]);
        assert_eq!(right, [(false, "enabled: ".into()), (true, "false".into())]);

        let (left, right) = word_spans("", "new");
        assert!(left.is_empty());
        assert_eq!(right, [(true, "new".into())]);
    }

    #[test]
    fn word_spans_reassemble_their_input() {
        let (l, r) = ("  \"héllo wörld\":  [1,2]", "\"hello world\": [1, 2, 3]");
        let (left, right) = word_spans(l, r);
        let join =
            |spans: &[(bool, String)]| spans.iter().map(|(_, t)| t.as_str()).collect::<String>();
        assert_eq!(join(&left), l);
        assert_eq!(join(&right), r);
    }

    #[test]
    fn hiding_whitespace_ignores_whitespace_only_changes_but_shows_real_text() {
        let old = "a:\n  b: 1\n  c: 2\n";
        let new = "a:\n    b: 1\n    c: 3   \r\n";
        let all = diff_lines(old, new);
        assert_eq!((all.added, all.removed), (2, 2));
        let hidden = diff_lines_with(old, new, true, None);
        assert_eq!((hidden.added, hidden.removed), (1, 1));
        assert_eq!(
            hidden.rows,
            [
                row(DiffTag::Equal, Some((1, "a:")), Some((1, "a:"))),
                row(DiffTag::Equal, Some((2, "  b: 1")), Some((2, "    b: 1"))),
                row(
                    DiffTag::Replace,
                    Some((3, "  c: 2")),
                    Some((3, "    c: 3   "))
                ),
            ]
        );
        // Without the option the diff is the plain line diff.
        assert_eq!(diff_lines_with(old, new, false, None), all);
    }
}
