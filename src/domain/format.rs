//! Config content formats and their syntax checks, which point at the faulty line and column.

use std::fmt;
use std::str::FromStr;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The format of a config's content; decides how it is validated (and highlighted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigFormat {
    Json,
    Yaml,
    Toml,
    Properties,
    Text,
}

impl ConfigFormat {
    /// Every format, in the order a format picker shows them.
    pub const ALL: [ConfigFormat; 5] = [
        ConfigFormat::Json,
        ConfigFormat::Yaml,
        ConfigFormat::Toml,
        ConfigFormat::Properties,
        ConfigFormat::Text,
    ];

    /// The lowercase name used in the API, e.g. `properties`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigFormat::Json => "json",
            ConfigFormat::Yaml => "yaml",
            ConfigFormat::Toml => "toml",
            ConfigFormat::Properties => "properties",
            ConfigFormat::Text => "text",
        }
    }
}

impl fmt::Display for ConfigFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A format name that is none of [`ConfigFormat::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown format \"{0}\"; use one of json, yaml, toml, properties, text")]
pub struct UnknownFormat(pub String);

impl FromStr for ConfigFormat {
    type Err = UnknownFormat;

    fn from_str(name: &str) -> Result<ConfigFormat, UnknownFormat> {
        ConfigFormat::ALL
            .into_iter()
            .find(|format| format.as_str() == name)
            .ok_or_else(|| UnknownFormat(name.to_owned()))
    }
}

/// Where and why content is not valid in its format. Columns count characters, not bytes.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[error("line {line}, column {column}: {message}")]
pub struct FormatError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The parser's explanation, without its own location suffix.
    pub message: String,
}

/// Checks that `content` is well-formed `format`. Text is always valid.
pub fn validate(format: ConfigFormat, content: &str) -> Result<(), FormatError> {
    match format {
        ConfigFormat::Json => validate_json(content),
        ConfigFormat::Yaml => validate_yaml(content),
        ConfigFormat::Toml => validate_toml(content),
        ConfigFormat::Properties => validate_properties(content),
        ConfigFormat::Text => Ok(()),
    }
}

fn validate_json(content: &str) -> Result<(), FormatError> {
    serde_json::from_str::<IgnoredAny>(content)
        .map(drop)
        .map_err(|error| {
            let suffix = format!(" at line {} column {}", error.line(), error.column());
            let text = error.to_string();
            let message = text.strip_suffix(&suffix).unwrap_or(&text).to_owned();
            // serde_json counts bytes up to and including the offending one.
            let offset = line_start(content, error.line()) + error.column().saturating_sub(1);
            let (line, column) = line_and_column(content, offset);
            FormatError {
                line,
                column,
                message,
            }
        })
}

fn validate_yaml(content: &str) -> Result<(), FormatError> {
    // Deserializing into `Value` (not `IgnoredAny`) also catches duplicate keys and unknown
    // anchors; iterating accepts multi-document files.
    for document in serde_norway::Deserializer::from_str(content) {
        serde_norway::Value::deserialize(document).map_err(|error| {
            let text = error.to_string();
            match error.location() {
                Some(location) => FormatError {
                    line: location.line(),
                    column: location.column(),
                    message: text.replacen(
                        &format!(" at line {} column {}", location.line(), location.column()),
                        "",
                        1,
                    ),
                },
                None => FormatError {
                    line: 1,
                    column: 1,
                    message: text,
                },
            }
        })?;
    }
    Ok(())
}

fn validate_toml(content: &str) -> Result<(), FormatError> {
    toml::from_str::<toml::Table>(content)
        .map(drop)
        .map_err(|error| {
            let (line, column) =
                line_and_column(content, error.span().map_or(0, |span| span.start));
            FormatError {
                line,
                column,
                message: error.message().trim_end().replace('\n', "; "),
            }
        })
}

/// Java `.properties` (as `Properties.load` reads it): `key=value`, `key:value` or `key value`
/// lines, `#` and `!` comments, and a trailing odd backslash joining the next line. Load only
/// ever fails on a malformed `\uXXXX` escape, so that is the one thing to reject here.
fn validate_properties(content: &str) -> Result<(), FormatError> {
    // The logical line being assembled, each character with its 1-based line and column.
    let mut logical: Vec<(char, usize, usize)> = Vec::new();
    let mut continued = false;
    for (index, physical) in content.split('\n').enumerate() {
        let physical = physical.strip_suffix('\r').unwrap_or(physical);
        let chars: Vec<(char, usize, usize)> = physical
            .chars()
            .enumerate()
            .map(|(i, c)| (c, index + 1, i + 1))
            .skip_while(|&(c, ..)| matches!(c, ' ' | '\t' | '\x0c'))
            .collect();
        // A comment cannot be continued, but a continuation line starting with `#` is not one.
        if !continued && matches!(chars.first(), None | Some(('#' | '!', ..))) {
            continue;
        }
        let backslashes = chars.iter().rev().take_while(|&&(c, ..)| c == '\\').count();
        continued = backslashes % 2 == 1;
        logical.extend_from_slice(&chars[..chars.len() - usize::from(continued)]);
        if !continued {
            check_escapes(&logical)?;
            logical.clear();
        }
    }
    check_escapes(&logical)
}

fn check_escapes(logical: &[(char, usize, usize)]) -> Result<(), FormatError> {
    let mut i = 0;
    while i < logical.len() {
        match (logical[i].0, logical.get(i + 1).map(|&(c, ..)| c)) {
            ('\\', Some('u')) => {
                let end = (i + 6).min(logical.len());
                let digits = &logical[i + 2..end];
                if digits.len() < 4 || !digits.iter().all(|(c, ..)| c.is_ascii_hexdigit()) {
                    let escape: String = logical[i..end].iter().map(|&(c, ..)| c).collect();
                    let (_, line, column) = logical[i];
                    return Err(FormatError {
                        line,
                        column,
                        message: format!(
                            "invalid unicode escape \"{escape}\"; \\u must be followed by four \
                             hex digits, e.g. \\u00e9"
                        ),
                    });
                }
                i = end;
            }
            ('\\', _) => i += 2,
            _ => i += 1,
        }
    }
    Ok(())
}

/// Byte offset where 1-based `line` starts (the end of `content` if it has fewer lines).
fn line_start(content: &str, line: usize) -> usize {
    if line <= 1 {
        return 0;
    }
    content
        .match_indices('\n')
        .nth(line - 2)
        .map_or(content.len(), |(newline, _)| newline + 1)
}

/// 1-based line and character column of the character containing byte `offset`.
fn line_and_column(content: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(content.len());
    while !content.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &content[..offset];
    let line = before.matches('\n').count() + 1;
    let line_text = before
        .rfind('\n')
        .map_or(before, |newline| &before[newline + 1..]);
    (line, line_text.chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(format: ConfigFormat, content: &str) -> (usize, usize, String) {
        let e = validate(format, content).unwrap_err();
        (e.line, e.column, e.message)
    }

    #[test]
    fn names_round_trip() {
        for format in ConfigFormat::ALL {
            assert_eq!(format.to_string().parse::<ConfigFormat>(), Ok(format));
            assert_eq!(
                serde_json::to_string(&format).unwrap(),
                format!("\"{format}\"")
            );
        }
        assert_eq!(
            "xml".parse::<ConfigFormat>().unwrap_err().to_string(),
            "unknown format \"xml\"; use one of json, yaml, toml, properties, text"
        );
        assert!("JSON".parse::<ConfigFormat>().is_err());
    }

    #[test]
    fn format_error_displays_line_and_column() {
        let e = validate(ConfigFormat::Json, "{\n  \"a\": }").unwrap_err();
        assert_eq!(e.to_string(), "line 2, column 8: expected value");
    }

    #[test]
    fn json() {
        assert_eq!(
            validate(ConfigFormat::Json, "{\"a\": [1, 2.5, null]}"),
            Ok(())
        );
        assert_eq!(
            error(ConfigFormat::Json, "{\n  \"a\": }"),
            (2, 8, "expected value".into())
        );
        assert_eq!(
            error(ConfigFormat::Json, "{\"a\": 1 \"b\": 2}"),
            (1, 9, "expected `,` or `}`".into())
        );
        assert_eq!(
            error(ConfigFormat::Json, "{\"a\": 1} x"),
            (1, 10, "trailing characters".into())
        );
        assert_eq!(
            error(ConfigFormat::Json, ""),
            (1, 1, "EOF while parsing a value".into())
        );
        // Columns count characters: "é" is two bytes.
        assert_eq!(
            error(ConfigFormat::Json, "{\"é\": x}"),
            (1, 7, "expected value".into())
        );
    }

    #[test]
    fn yaml() {
        assert_eq!(validate(ConfigFormat::Yaml, "a: 1\nb: [x, y]\n"), Ok(()));
        assert_eq!(validate(ConfigFormat::Yaml, ""), Ok(()));
        assert_eq!(validate(ConfigFormat::Yaml, "a: 1\n---\nb: 2\n"), Ok(()));
        assert_eq!(
            error(ConfigFormat::Yaml, "a: 1\n b: 2\n"),
            (
                2,
                3,
                "mapping values are not allowed in this context".into()
            )
        );
        assert_eq!(
            error(ConfigFormat::Yaml, "a: [1, 2\nb: 3\n"),
            (
                2,
                2,
                "did not find expected ',' or ']', while parsing a flow sequence at line 1 column 4"
                    .into()
            )
        );
        // serde_norway reports a duplicate key at the start of its mapping.
        assert_eq!(
            error(ConfigFormat::Yaml, "x:\n  a: 1\n  a: 2\n"),
            (2, 3, "x: duplicate entry with key \"a\"".into())
        );
        assert_eq!(
            error(ConfigFormat::Yaml, "a: \"é\" x: 1\n"),
            (
                1,
                8,
                "did not find expected key, while parsing a block mapping".into()
            )
        );
    }

    #[test]
    fn toml() {
        assert_eq!(
            validate(ConfigFormat::Toml, "a = 1\n[b]\nc = \"x\"\n"),
            Ok(())
        );
        assert_eq!(
            error(ConfigFormat::Toml, "a = 1\nb = \n"),
            (
                2,
                5,
                "string values must be quoted, expected literal string".into()
            )
        );
        assert_eq!(
            error(ConfigFormat::Toml, "a = 1\na = 2\n"),
            (2, 1, "duplicate key".into())
        );
        assert_eq!(
            error(ConfigFormat::Toml, "[a\nb=1"),
            (1, 3, "unclosed table, expected `]`".into())
        );
    }

    #[test]
    fn properties() {
        let valid = "# comment \\uZZZZ\n! also a comment\\\nkey=value\nkey2:value2\nkey3 value3\n\
                     long = first \\\n    second\nunicode=caf\\u00e9\nescaped=\\\\uZZZZ\n\n";
        assert_eq!(validate(ConfigFormat::Properties, valid), Ok(()));
        assert_eq!(
            error(ConfigFormat::Properties, "a=1\nb = x\\uZZZZ\n"),
            (
                2,
                6,
                "invalid unicode escape \"\\uZZZZ\"; \\u must be followed by four hex digits, \
                 e.g. \\u00e9"
                    .into()
            )
        );
        let (line, column, message) = error(ConfigFormat::Properties, "a=\\u12");
        assert_eq!((line, column), (1, 3));
        assert!(message.contains("\"\\u12\""), "{message}");
        // The escape may span a continuation; the error points at its backslash.
        assert_eq!(
            validate(ConfigFormat::Properties, "a=\\u00\\\n  e9"),
            Ok(())
        );
        let (line, column, message) = error(
            ConfigFormat::Properties,
            "a=1\r\nlong = x \\\n  # not a comment \\u12G4",
        );
        assert_eq!((line, column), (3, 19));
        assert!(message.contains("\"\\u12G4\""), "{message}");
    }

    #[test]
    fn text_is_always_valid() {
        assert_eq!(validate(ConfigFormat::Text, "{ not: json ]"), Ok(()));
    }
}
