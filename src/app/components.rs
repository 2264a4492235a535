//! Small pieces shared by pages.

use crate::Error;
use leptos::prelude::*;

/// An error line announced to assistive technology.
#[component]
pub fn ErrorLine(#[prop(into)] error: Signal<Option<Error>>) -> impl IntoView {
    move || {
        error.get().map(|e| {
            view! {
                <p class="error" role="alert">
                    {e.message}
                </p>
            }
        })
    }
}

/// The error of the last run of a server action, if it failed.
pub fn action_error<I, O>(action: ServerAction<I>) -> Signal<Option<Error>>
where
    I: leptos::server_fn::ServerFn<Output = O, Error = Error> + Clone + Send + Sync + 'static,
    O: Clone + Send + Sync + 'static,
{
    Signal::derive(move || action.value().get().and_then(|r| r.err()))
}

/// ✓ STABLE v12 (green).
#[component]
pub fn StableBadge(version: i64) -> impl IntoView {
    view! { <span class="badge green" title="The stable release">"✓ STABLE v" {version}</span> }
}

/// ✎ DRAFT v13 (amber): the latest version is not released.
#[component]
pub fn DraftBadge(version: i64) -> impl IntoView {
    view! { <span class="badge amber" title="Saved but not released">"✎ DRAFT v" {version}</span> }
}

/// How many unchanged lines stay visible around each change.
const CONTEXT_LINES: usize = 3;
/// Rows rendered before asking the user to show more (keeps huge diffs responsive).
const ROW_BUDGET: usize = 1500;

enum Block {
    Rows(Vec<crate::domain::diff::DiffRow>),
    Hidden(Vec<crate::domain::diff::DiffRow>),
}

/// Groups rows into visible runs and collapsed runs of unchanged lines.
fn blocks(rows: Vec<crate::domain::diff::DiffRow>) -> Vec<Block> {
    use crate::domain::diff::DiffTag;
    let changed: Vec<bool> = rows.iter().map(|r| r.tag != DiffTag::Equal).collect();
    let n = rows.len();
    let mut visible = vec![false; n];
    for (i, c) in changed.iter().enumerate() {
        if *c {
            let lo = i.saturating_sub(CONTEXT_LINES);
            let hi = (i + CONTEXT_LINES + 1).min(n);
            visible[lo..hi].iter_mut().for_each(|v| *v = true);
        }
    }
    let mut out: Vec<Block> = Vec::new();
    for (row, show) in rows.into_iter().zip(visible) {
        match (out.last_mut(), show) {
            (Some(Block::Rows(r)), true) | (Some(Block::Hidden(r)), false) => r.push(row),
            (_, true) => out.push(Block::Rows(vec![row])),
            (_, false) => out.push(Block::Hidden(vec![row])),
        }
    }
    out
}

/// A diff, side by side or (with `unified`) in one column: line numbers, − / +
/// glyphs with colour, word-level highlights in changed lines, unchanged runs
/// collapsed behind a button.
#[component]
pub fn DiffView(
    diff: crate::domain::diff::Diff,
    /// One column instead of two; a signal of the page, so it may change while this view lives.
    #[prop(optional, into)]
    unified: Signal<bool>,
) -> impl IntoView {
    // Reference-counted, not owned by this view's scope: the closure below also
    // follows `unified`, a page-level signal, and may run once while a page
    // rebuilds this view.
    let budget = ArcRwSignal::new(ROW_BUDGET);
    let total = diff.rows.len();
    let added = diff.added;
    let removed = diff.removed;
    let identical = added == 0 && removed == 0;
    let blocks = std::sync::Arc::new(blocks(diff.rows));
    let rows = {
        let budget = budget.clone();
        move || {
            let one_column = unified.get();
            let mut used = 0usize;
            let limit = budget.get();
            blocks
                .iter()
                .map(|block| match block {
                    Block::Rows(rows) => {
                        let take = rows.len().min(limit.saturating_sub(used));
                        used += take;
                        rows[..take]
                            .iter()
                            .cloned()
                            .map(|r| view! { <DiffLine row=r unified=one_column /> })
                            .collect_view()
                            .into_any()
                    }
                    Block::Hidden(rows) => {
                        if used >= limit {
                            return ().into_any();
                        }
                        used += 1;
                        view! { <HiddenRun rows=rows.clone() unified=one_column /> }.into_any()
                    }
                })
                .collect_view()
        }
    };
    let more = budget.clone();
    view! {
        <div class="diff" data-testid="diff" data-layout=move || if unified.get() { "unified" } else { "split" }>
            <p class="diff-summary">
                {if identical {
                    "No differences.".to_string()
                } else {
                    format!("+{added} added, −{removed} removed")
                }}
            </p>
            <table class=move || if unified.get() { "diff-table unified" } else { "diff-table" }>
                {move || if unified.get() {
                    view! { <colgroup><col class="no" /><col class="no" /><col class="sign" /><col class="text" /></colgroup> }.into_any()
                } else {
                    view! { <colgroup><col class="no" /><col class="sign" /><col class="text" /><col class="no" /><col class="sign" /><col class="text" /></colgroup> }.into_any()
                }}
                <tbody>{rows}</tbody>
            </table>
            <Show when=move || budget.get() < total>
                <button class="btn" on:click={ let more = more.clone(); move |_| more.update(|b| *b += ROW_BUDGET) }>"Show more rows"</button>
            </Show>
        </div>
    }
}

#[component]
fn HiddenRun(rows: Vec<crate::domain::diff::DiffRow>, unified: bool) -> impl IntoView {
    let open = RwSignal::new(false);
    let count = rows.len();
    let rows = StoredValue::new(rows);
    let columns = if unified { "4" } else { "6" };
    view! {
        <Show
            when=move || open.get()
            fallback=move || view! {
                <tr class="diff-hidden">
                    <td colspan=columns>
                        <button class="link" on:click=move |_| open.set(true)>
                            {format!("Show {count} hidden line{}", if count == 1 { "" } else { "s" })}
                        </button>
                    </td>
                </tr>
            }
        >
            {rows.get_value().into_iter().map(|r| view! { <DiffLine row=r unified /> }).collect_view()}
        </Show>
    }
}

#[component]
fn DiffLine(row: crate::domain::diff::DiffRow, unified: bool) -> impl IntoView {
    use crate::domain::diff::{word_spans, DiffTag};
    let (left_class, right_class, left_sign, right_sign) = match row.tag {
        DiffTag::Equal => ("", "", "", ""),
        DiffTag::Delete => ("del", "empty", "−", ""),
        DiffTag::Insert => ("empty", "ins", "", "+"),
        DiffTag::Replace => ("del", "ins", "−", "+"),
    };
    // Empty text would be an empty text node in the browser but nothing in
    // the server's HTML, which breaks hydration: never render one.
    let spans = |spans: Vec<(bool, String)>| {
        spans
            .into_iter()
            .filter(|(_, text)| !text.is_empty())
            .map(|(changed, text)| {
                if changed {
                    view! { <mark>{text}</mark> }.into_any()
                } else {
                    text.into_any()
                }
            })
            .collect_view()
    };
    let (left, right) = match (row.tag, row.left.clone(), row.right.clone()) {
        (DiffTag::Replace, Some(l), Some(r)) if l.len() + r.len() < 2000 => {
            let (ls, rs) = word_spans(&l, &r);
            (spans(ls).into_any(), spans(rs).into_any())
        }
        (_, l, r) => (
            l.filter(|t| !t.is_empty()).into_any(),
            r.filter(|t| !t.is_empty()).into_any(),
        ),
    };
    let tag = row.tag.as_str();
    if !unified {
        return view! {
            <tr class=format!("diff-row {tag}")>
                <td class="no">{row.left_no}</td>
                <td class=format!("sign {left_class}") aria-hidden="true">{non_empty(left_sign)}</td>
                <td class=format!("text {left_class}")><pre>{left}</pre></td>
                <td class="no">{row.right_no}</td>
                <td class=format!("sign {right_class}") aria-hidden="true">{non_empty(right_sign)}</td>
                <td class=format!("text {right_class}")><pre>{right}</pre></td>
            </tr>
        }
        .into_any();
    }
    // One column: an unchanged line once with both numbers; a changed one as
    // its old line (−) followed by its new line (+).
    if row.tag == DiffTag::Equal {
        return view! {
            <tr class="diff-row equal">
                <td class="no">{row.left_no}</td>
                <td class="no">{row.right_no}</td>
                <td class="sign" aria-hidden="true"></td>
                <td class="text"><pre>{left}</pre></td>
            </tr>
        }
        .into_any();
    }
    let old = row.left_no.map(|n| {
        view! {
            <tr class=format!("diff-row {tag}")>
                <td class="no">{n}</td>
                <td class="no"></td>
                <td class="sign del" aria-hidden="true">"−"</td>
                <td class="text del"><pre>{left}</pre></td>
            </tr>
        }
    });
    let new = row.right_no.map(|n| {
        view! {
            <tr class=format!("diff-row {tag}")>
                <td class="no"></td>
                <td class="no">{n}</td>
                <td class="sign ins" aria-hidden="true">"+"</td>
                <td class="text ins"><pre>{right}</pre></td>
            </tr>
        }
    });
    (old, new).into_any()
}

fn non_empty(s: &'static str) -> Option<&'static str> {
    (!s.is_empty()).then_some(s)
}
