//! What every format target checks: `validate` never panics, and an error it reports names a
//! place inside the text and carries a bounded message.

use graycast::domain::format::{validate, ConfigFormat, FormatError, MAX_MESSAGE_CHARS};

pub fn check(format: ConfigFormat, data: &[u8]) -> Result<(), FormatError> {
    let Ok(text) = std::str::from_utf8(data) else {
        return Ok(());
    };
    let result = validate(format, text);
    if let Err(error) = &result {
        // Counted leniently: YAML also breaks lines at a lone `\r`, NEL, LS and PS.
        let is_break = |c: char| matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}');
        let lines = text.split(is_break).count();
        let widest = text.split(is_break).map(|l| l.chars().count()).max().unwrap_or(0);
        assert!(
            (1..=lines).contains(&error.line) && (1..=widest + 1).contains(&error.column),
            "{format}: {error} is outside the text ({lines} lines, widest {widest})"
        );
        assert!(error.message.chars().count() <= MAX_MESSAGE_CHARS + 1, "{format}: {error}");
    }
    result
}
