//! Small pieces shared by pages.

use crate::Error;
use leptos::prelude::*;
use leptos::wasm_bindgen::JsCast;

/// An error line announced to assistive technology.
#[component]
pub fn ErrorLine(#[prop(into)] error: Signal<Option<Error>>) -> impl IntoView {
    move || {
        error.get().map(|e| {
            // A change that became a request (or went stale) links to it.
            let request = e.change_request.map(|id| {
                view! {
                    " "
                    <leptos_router::components::A href=format!("/requests/{id}")>
                        {format!("Open change request #{id}")}
                    </leptos_router::components::A>
                }
            });
            view! {
                <p class="error" role="alert">
                    {e.message}
                    {request}
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

/// The action bar of a [`Dialog`]: message, typed confirmation, error and buttons. It stays in
/// view at the bottom while the dialog's body (the diff) scrolls above it.
#[slot]
pub struct DialogBar {
    children: Children,
}

/// Heading ids of open dialogs; dialogs only open in the browser, so these never meet
/// server-rendered HTML.
static DIALOG_IDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// What can take focus inside a dialog.
const FOCUSABLE: &str =
    "a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), \
                         textarea:not([disabled]), [tabindex]:not([tabindex='-1'])";

/// A modal confirmation dialog (the WAI-ARIA dialog pattern): it takes focus (its first field),
/// keeps Tab and Shift+Tab inside, closes on Esc, and gives focus back to whatever opened it.
/// The body scrolls inside the dialog; the [`DialogBar`] stays at the bottom. At most the
/// viewport's height; the whole screen on a phone.
#[component]
pub fn Dialog(
    /// Names the action and its subject: the dialog's heading and accessible name.
    #[prop(into)]
    title: String,
    /// Closes the dialog: Esc calls it, and so should the bar's Cancel.
    #[prop(into)]
    on_close: Callback<()>,
    dialog_bar: DialogBar,
    children: Children,
) -> impl IntoView {
    let title_id = format!(
        "dialog-title-{}",
        DIALOG_IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let labelled_by = title_id.clone();
    let dialog = NodeRef::<leptos::html::Div>::new();
    // The element focused when the dialog opened (browser only; effects never run on the server).
    let opener = StoredValue::new_local(None::<web_sys::Element>);
    Effect::new(move |_| {
        let Some(el) = dialog.get() else { return };
        opener.set_value(document().active_element());
        let first = first_field(&el).or_else(|| focusables(&el).next());
        match first {
            Some(f) => f.focus(),
            None => el.focus(),
        }
        .ok();
    });
    let keys = window_event_listener(leptos::ev::keydown, move |ev| {
        let Some(el) = dialog.get_untracked() else {
            return;
        };
        match ev.key().as_str() {
            "Escape" => {
                ev.prevent_default();
                on_close.run(());
            }
            "Tab" => {
                let active = document().active_element();
                let inside = active
                    .as_ref()
                    .is_some_and(|a| el.contains(Some(a.unchecked_ref())));
                let (first, last) = (focusables(&el).next(), focusables(&el).next_back());
                let wrap_to = match (ev.shift_key(), inside) {
                    (_, false) => first,
                    (false, true)
                        if active.as_ref() == last.as_ref().map(|l| l.unchecked_ref()) =>
                    {
                        first
                    }
                    (true, true)
                        if active.as_ref() == first.as_ref().map(|f| f.unchecked_ref()) =>
                    {
                        last
                    }
                    _ => None,
                };
                if let Some(target) = wrap_to {
                    ev.prevent_default();
                    let _ = target.focus();
                }
            }
            _ => {}
        }
    });
    on_cleanup(move || {
        keys.remove();
        // Back to the opener, if it is still on the page (a release rebuilds the row it was in).
        if let Some(Some(opener)) = opener.try_get_value() {
            if opener.is_connected() {
                if let Some(o) = opener.dyn_ref::<web_sys::HtmlElement>() {
                    let _ = o.focus();
                }
            }
        }
    });
    view! {
        // A click on the backdrop keeps focus where it is, inside the dialog.
        <div class="backdrop" on:mousedown=move |ev| {
            if ev.target() == ev.current_target() {
                ev.prevent_default();
            }
        }>
            <div class="dialog" role="dialog" aria-modal="true" aria-labelledby=labelled_by tabindex="-1" node_ref=dialog>
                <h2 id=title_id>{title}</h2>
                // Focusable, so the keyboard scrolls a long diff too.
                <div class="dialog-body" tabindex="0">{children()}</div>
                <div class="dialog-bar">{(dialog_bar.children)()}</div>
            </div>
        </div>
    }
}

/// The dialog's first form field (the message box), where focus starts.
fn first_field(dialog: &web_sys::Element) -> Option<web_sys::HtmlElement> {
    dialog
        .query_selector("input:not([disabled]), select:not([disabled]), textarea:not([disabled])")
        .ok()
        .flatten()
        .and_then(|e| e.dyn_into().ok())
}

/// The focusable elements inside `dialog`, in document order (walked from either end).
fn focusables(
    dialog: &web_sys::Element,
) -> impl DoubleEndedIterator<Item = web_sys::HtmlElement> + '_ {
    let all = dialog.get_elements_by_tag_name("*");
    (0..all.length())
        .filter_map(move |i| all.item(i))
        .filter(|e| e.matches(FOCUSABLE).unwrap_or(false))
        .filter_map(|e| e.dyn_into().ok())
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
