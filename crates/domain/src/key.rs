//! Config keys, which agents also use as file names: one rule for the
//! server (which refuses a bad key when the config is created) and the agent
//! (which refuses to write one it is served anyway).

/// Longest key, in bytes.
pub const MAX_KEY_LEN: usize = 128;
/// The agent's own directory inside the directory it writes configs to.
pub const STATE_DIR: &str = ".graycast";
/// The suffix of the agent's temporary files (written, then renamed over the config).
pub const TEMP_SUFFIX: &str = ".graycast-tmp";

/// Keys: 1–128 characters of `[A-Za-z0-9._-]`, e.g. `app.yaml` or `.env`;
/// never `.`, anything with `..`, [`STATE_DIR`] or a name ending in
/// [`TEMP_SUFFIX`], so a key is always a plain file name in an agent's
/// directory that cannot clash with the agent's own files. The error says
/// what to change.
pub fn check_key(key: &str) -> Result<(), String> {
    let alphabet = !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !alphabet {
        return Err(format!(
            "key {} is not valid: use 1–{MAX_KEY_LEN} letters, digits, '.', '_' or '-'.",
            crate::quote::quoted(key)
        ));
    }
    if key == "." || key.contains("..") {
        return Err(format!(
            "key {} is not valid: agents write each key as a file name, so it cannot be \
             \".\" or contain \"..\".",
            crate::quote::quoted(key)
        ));
    }
    if key == STATE_DIR || key.ends_with(TEMP_SUFFIX) {
        return Err(format!(
            "key {key:?} is not valid: agents keep their own files under that name \
             ({STATE_DIR:?}, names ending in {TEMP_SUFFIX:?}); choose another."
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_plain_file_names_apart_from_the_agents_own() {
        for key in ["app.json", "a-b_c.yaml", ".env", "v1.2", "x.", "graycast"] {
            assert!(check_key(key).is_ok(), "{key}");
        }
        let long = "a".repeat(MAX_KEY_LEN + 1);
        for key in [
            "",
            ".",
            "..",
            "..env",
            "../etc",
            "a/b",
            "a\\b",
            "a..b",
            ".graycast",
            "x.graycast-tmp",
            "a b",
            "a\0b",
            long.as_str(),
        ] {
            assert!(check_key(key).is_err(), "{key:?}");
        }
        assert!(check_key(&"a".repeat(MAX_KEY_LEN)).is_ok());
    }
}
