use crate::domain::format::FormatError;
use leptos::prelude::*;

/// A monospace editor with line numbers; the line of a validation error is
/// marked in the gutter and the message is shown below.
#[component]
pub fn ContentEditor(
    content: RwSignal<String>,
    #[prop(into)] error: Signal<Option<FormatError>>,
    label: &'static str,
) -> impl IntoView {
    let lines = Memo::new(move |_| content.with(|c| c.split('\n').count().max(1)));
    let error_line = move || error.get().map(|e| e.line);
    view! {
        <div class="editor-wrap">
            <span class="editor-label" id="editor-label">{label}</span>
            <div class="editor" class:invalid=move || error.get().is_some()>
                <pre class="gutter" aria-hidden="true">
                    {move || (1..=lines.get()).map(|n| {
                        let bad = error_line() == Some(n);
                        view! { <span class:bad=bad>{n}"\n"</span> }
                    }).collect_view()}
                </pre>
                <textarea
                    name="content"
                    aria-labelledby="editor-label"
                    aria-invalid=move || error.get().is_some().to_string()
                    aria-describedby="editor-error"
                    spellcheck="false"
                    wrap="off"
                    rows=move || lines.get() + 1
                    prop:value=content
                    on:input=move |ev| content.set(event_target_value(&ev))
                ></textarea>
            </div>
            <p id="editor-error" class="editor-error" role="status">
                {move || error.get().map(|e| format!("✕ {e}"))}
            </p>
        </div>
    }
}
