//! Quoting what a caller sent, for error messages.

/// How much of a user's input an error message quotes: enough to recognise it, never so much
/// that a huge input comes back whole in the answer (or in the log).
pub const QUOTE_CHARS: usize = 100;

/// `input` quoted for an error message, as `{:?}` quotes it, cut to [`QUOTE_CHARS`] characters
/// with "…" when it is longer. Every message that repeats what the caller sent goes through it.
pub fn quoted(input: &str) -> String {
    // Counted as shown: a control character escaped as `\u{1}` takes five of the characters,
    // so escapes cannot make a quote long.
    let mut shown = String::with_capacity(QUOTE_CHARS + 8);
    let mut width = 0;
    let mut cut = false;
    for c in input.chars() {
        let start = shown.len();
        if c == '\'' {
            shown.push(c);
        } else {
            shown.extend(c.escape_debug());
        }
        let added = shown[start..].chars().count();
        if width + added > QUOTE_CHARS {
            shown.truncate(start);
            cut = true;
            break;
        }
        width += added;
    }
    format!("\"{shown}{}\"", if cut { "…" } else { "" })
}
