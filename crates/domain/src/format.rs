//! Config content formats and their syntax checks, which point at the faulty line and column.

use std::fmt;
use std::str::FromStr;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use thiserror::Error;

mod value;
pub use value::{to_json_text, to_json_value, ValueError, MAX_VALUE_BYTES};

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

/// Most arrays, objects, sequences, mappings and tables content may nest inside one another, in
/// every format. Below serde_json's own limit (127 levels), with room for the array that holds a
/// YAML file's documents, so whatever is saved parses again as the JSON value OFREP serves (and
/// a client's serde_json reads that value back).
pub const MAX_DEPTH: usize = 100;

/// Most nodes YAML aliases may stand for in total: an alias of a node with 50 nodes inside
/// counts 50. Content without aliases is never refused for its size, so a document of `n`
/// bytes is at most `n + MAX_YAML_ALIAS_NODES` nodes once its aliases are expanded.
pub const MAX_YAML_ALIAS_NODES: u64 = 100_000;

/// Most bytes YAML aliases may stand for in total (16 MiB, 16 times the server's default content
/// limit): an alias counts the bytes of every scalar inside its node, and one for each node. A
/// few aliases of a long string stay under [`MAX_YAML_ALIAS_NODES`] but would expand to
/// gigabytes.
pub const MAX_YAML_ALIAS_BYTES: u64 = 16 * 1024 * 1024;

/// Longest message a [`FormatError`] carries, in characters (a parser may quote the content).
pub const MAX_MESSAGE_CHARS: usize = 500;

/// Why [`validate_until`] did not accept content.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    /// The content is not well-formed.
    #[error("{0}")]
    Invalid(FormatError),
    /// The caller's `stop` asked to give up before the check was done.
    #[error("the check was stopped before it was done")]
    Stopped,
}

impl From<FormatError> for Refusal {
    fn from(error: FormatError) -> Self {
        Refusal::Invalid(error)
    }
}

/// How many events, lines or bytes a check handles between two questions to `stop`: often
/// enough to end within milliseconds, rarely enough to cost nothing.
const STOP_EVERY: usize = 4096;

/// Checks that `content` is well-formed `format`. Text is always valid.
///
/// Every check is linear in the content (or refuses it): JSON, TOML and YAML nesting is limited
/// to [`MAX_DEPTH`], and YAML aliases may not expand past [`MAX_YAML_ALIAS_NODES`] nodes or
/// [`MAX_YAML_ALIAS_BYTES`] bytes. Pure: no clock and no threads, as the dashboard runs it in
/// the browser while one types; the server adds a time budget around it ([`validate_until`]).
pub fn validate(format: ConfigFormat, content: &str) -> Result<(), FormatError> {
    validate_until(format, content, &|| false).map_err(|refusal| match refusal {
        Refusal::Invalid(error) => error,
        Refusal::Stopped => unreachable!("never asked to stop"),
    })
}

/// [`validate`], asking `stop` now and then whether to give up (the server's time budget): once
/// it answers `true` the check ends promptly with [`Refusal::Stopped`], so abandoned work does
/// not run on. Only a parser's own single pass (serde_norway's, serde_json's, toml's: each
/// linear in the bounded content) runs to its end first.
pub fn validate_until(
    format: ConfigFormat,
    content: &str,
    stop: &dyn Fn() -> bool,
) -> Result<(), Refusal> {
    match format {
        ConfigFormat::Json => validate_json(content, stop),
        ConfigFormat::Yaml => validate_yaml(content, stop),
        ConfigFormat::Toml => validate_toml(content, stop),
        ConfigFormat::Properties => validate_properties(content, stop),
        ConfigFormat::Text => Ok(()),
    }
    .map_err(|refusal| match refusal {
        Refusal::Invalid(mut error) => {
            if let Some((cut, _)) = error.message.char_indices().nth(MAX_MESSAGE_CHARS) {
                error.message.truncate(cut);
                error.message.push('…');
            }
            Refusal::Invalid(error)
        }
        Refusal::Stopped => Refusal::Stopped,
    })
}

/// The error for a collection opened [`MAX_DEPTH`] levels deep, at 1-based `line` and `column`.
fn too_deep(format: ConfigFormat, line: usize, column: usize) -> FormatError {
    let what = match format {
        ConfigFormat::Json => "arrays and objects",
        ConfigFormat::Yaml => "sequences and mappings",
        _ => "arrays and tables",
    };
    FormatError {
        line,
        column,
        message: format!(
            "nested more than {MAX_DEPTH} levels deep; {} content may nest at most {MAX_DEPTH} \
             {what}",
            format.as_str().to_uppercase()
        ),
    }
}

fn validate_json(content: &str, stop: &dyn Fn() -> bool) -> Result<(), Refusal> {
    // serde_json skips an ignored value without recursing, so it takes any nesting: the depth
    // is counted apart, up to the first syntax error (which comes first in the text wins).
    let parsed = serde_json::from_str::<IgnoredAny>(content).map_err(|error| {
        let suffix = format!(" at line {} column {}", error.line(), error.column());
        let text = error.to_string();
        let message = text.strip_suffix(&suffix).unwrap_or(&text).to_owned();
        // serde_json counts bytes up to and including the offending one.
        let offset = line_start(content, error.line()) + error.column().saturating_sub(1);
        (offset, message)
    });
    let checked = match &parsed {
        Ok(_) => content,
        Err((offset, _)) => &content[..(*offset).min(content.len())],
    };
    if let Some(offset) = json_too_deep(checked.as_bytes(), stop)? {
        let (line, column) = line_and_column(content, offset);
        return Err(too_deep(ConfigFormat::Json, line, column).into());
    }
    parsed.map(drop).map_err(|(offset, message)| {
        let (line, column) = line_and_column(content, offset);
        Refusal::Invalid(FormatError {
            line,
            column,
            message,
        })
    })
}

/// The offset of the first `[` or `{` nested deeper than [`MAX_DEPTH`] in JSON text, if any.
fn json_too_deep(json: &[u8], stop: &dyn Fn() -> bool) -> Result<Option<usize>, Refusal> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (offset, &byte) in json.iter().enumerate() {
        if offset % (16 * STOP_EVERY) == 0 && stop() {
            return Err(Refusal::Stopped);
        }
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Ok(Some(offset));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(None)
}

fn validate_yaml(content: &str, stop: &dyn Fn() -> bool) -> Result<(), Refusal> {
    // serde_norway reads a whole document before it checks nesting, and expands aliases while
    // deserializing (8 KB of aliases can stand for billions of nodes): bound both first.
    yaml_bounds::check(content, stop)?;
    // Deserializing into `Value` (not `IgnoredAny`) also catches duplicate keys and unknown
    // anchors; iterating accepts multi-document files.
    for document in serde_norway::Deserializer::from_str(content) {
        if stop() {
            return Err(Refusal::Stopped);
        }
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

fn validate_toml(content: &str, stop: &dyn Fn() -> bool) -> Result<(), Refusal> {
    // What `toml::from_str` parses, with the place of every value.
    let table = toml::de::DeTable::parse(content).map_err(|error| {
        let (line, column) = line_and_column(content, error.span().map_or(0, |span| span.start));
        FormatError {
            line,
            column,
            message: error.message().trim_end().replace('\n', "; "),
        }
    })?;
    if stop() {
        return Err(Refusal::Stopped);
    }
    // toml limits nesting within a value and the length of a key path, not the two together.
    match toml_too_deep(table.get_ref(), 1) {
        Some(offset) => {
            let (line, column) = line_and_column(content, offset);
            Err(too_deep(ConfigFormat::Toml, line, column).into())
        }
        None => Ok(()),
    }
}

/// Where the first array or table nested deeper than [`MAX_DEPTH`] begins, `table` being at
/// `depth`.
fn toml_too_deep(table: &toml::de::DeTable<'_>, depth: usize) -> Option<usize> {
    table
        .values()
        .find_map(|value| toml_value_too_deep(value, depth + 1))
}

fn toml_value_too_deep(
    value: &toml::Spanned<toml::de::DeValue<'_>>,
    depth: usize,
) -> Option<usize> {
    use toml::de::DeValue;
    let nested = matches!(value.get_ref(), DeValue::Array(_) | DeValue::Table(_));
    if nested && depth > MAX_DEPTH {
        return Some(value.span().start);
    }
    match value.get_ref() {
        DeValue::Array(items) => items
            .iter()
            .find_map(|item| toml_value_too_deep(item, depth + 1)),
        DeValue::Table(table) => toml_too_deep(table, depth),
        _ => None,
    }
}

/// Java `.properties` (as `Properties.load` reads it): `key=value`, `key:value` or `key value`
/// lines, `#` and `!` comments, and a trailing odd backslash joining the next line. Load only
/// ever fails on a malformed `\uXXXX` escape, so that is the one thing to reject here.
fn validate_properties(content: &str, stop: &dyn Fn() -> bool) -> Result<(), Refusal> {
    // The logical line being assembled, each character with its 1-based line and column.
    let mut logical: Vec<(char, usize, usize)> = Vec::new();
    let mut continued = false;
    for (index, physical) in content.split('\n').enumerate() {
        if index % STOP_EVERY == 0 && stop() {
            return Err(Refusal::Stopped);
        }
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
    Ok(check_escapes(&logical)?)
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

/// A pass over YAML's parse events (libyaml's, as serde_norway reads them) that refuses content
/// nested deeper than [`MAX_DEPTH`] or whose aliases stand for more than
/// [`MAX_YAML_ALIAS_NODES`] nodes or [`MAX_YAML_ALIAS_BYTES`] bytes, without expanding anything.
/// It stops at the first event past a limit, so its cost is linear in the content read so far.
/// Syntax errors are left to serde_norway, which reports them in its own words.
mod yaml_bounds {
    use super::{
        too_deep, ConfigFormat, FormatError, Refusal, MAX_DEPTH, MAX_YAML_ALIAS_BYTES,
        MAX_YAML_ALIAS_NODES, STOP_EVERY,
    };
    use std::collections::HashMap;
    use std::ffi::{c_char, CStr};
    use std::marker::PhantomData;
    use std::mem::MaybeUninit;
    use unsafe_libyaml_norway as unsafe_yaml;

    enum Event {
        DocumentStart,
        /// A sequence or mapping begins, maybe with an anchor.
        Start(Option<Vec<u8>>),
        End,
        /// A scalar, maybe with an anchor, and its length in bytes.
        Scalar(Option<Vec<u8>>, u64),
        Alias(Vec<u8>),
        StreamEnd,
        Other,
    }

    /// libyaml's event parser over borrowed input.
    struct Parser<'input> {
        // Boxed: libyaml's state must not move once initialized.
        raw: Box<MaybeUninit<unsafe_yaml::yaml_parser_t>>,
        _input: PhantomData<&'input [u8]>,
    }

    impl<'input> Parser<'input> {
        fn new(input: &'input [u8]) -> Option<Self> {
            let mut raw = Box::new(MaybeUninit::<unsafe_yaml::yaml_parser_t>::uninit());
            let parser = raw.as_mut_ptr();
            // SAFETY: `parser` points at writable memory for a parser, which
            // `yaml_parser_initialize` fills in; the input outlives the parser (`'input`).
            unsafe {
                if unsafe_yaml::yaml_parser_initialize(parser).fail {
                    return None;
                }
                unsafe_yaml::yaml_parser_set_encoding(parser, unsafe_yaml::YAML_UTF8_ENCODING);
                unsafe_yaml::yaml_parser_set_input_string(
                    parser,
                    input.as_ptr(),
                    input.len() as u64,
                );
            }
            Some(Parser {
                raw,
                _input: PhantomData,
            })
        }

        /// The next event and its 0-based line and column; `None` on a syntax error.
        fn next(&mut self) -> Option<(Event, usize, usize)> {
            let parser = self.raw.as_mut_ptr();
            let mut event = MaybeUninit::<unsafe_yaml::yaml_event_t>::uninit();
            // SAFETY: the parser is initialized; a successful `yaml_parser_parse` initializes
            // `event`, whose union member matches its type and whose anchors are null or
            // NUL-terminated; the event is read before `yaml_event_delete` frees it.
            unsafe {
                // The caller stops at the first error or the end of the stream.
                if unsafe_yaml::yaml_parser_parse(parser, event.as_mut_ptr()).fail {
                    return None;
                }
                let raw = &*event.as_ptr();
                let anchor = |name: *mut u8| {
                    (!name.is_null())
                        .then(|| CStr::from_ptr(name as *const c_char).to_bytes().to_vec())
                };
                let kind = match raw.type_ {
                    unsafe_yaml::YAML_DOCUMENT_START_EVENT => Event::DocumentStart,
                    unsafe_yaml::YAML_SEQUENCE_START_EVENT => {
                        Event::Start(anchor(raw.data.sequence_start.anchor))
                    }
                    unsafe_yaml::YAML_MAPPING_START_EVENT => {
                        Event::Start(anchor(raw.data.mapping_start.anchor))
                    }
                    unsafe_yaml::YAML_SEQUENCE_END_EVENT | unsafe_yaml::YAML_MAPPING_END_EVENT => {
                        Event::End
                    }
                    unsafe_yaml::YAML_SCALAR_EVENT => Event::Scalar(
                        anchor(raw.data.scalar.anchor),
                        // `size_t`: u64 here, narrower on some targets.
                        #[allow(clippy::unnecessary_cast)]
                        (raw.data.scalar.length as u64),
                    ),
                    unsafe_yaml::YAML_ALIAS_EVENT => {
                        Event::Alias(anchor(raw.data.alias.anchor).unwrap_or_default())
                    }
                    unsafe_yaml::YAML_STREAM_END_EVENT => Event::StreamEnd,
                    _ => Event::Other,
                };
                let (line, column) = (raw.start_mark.line, raw.start_mark.column);
                unsafe_yaml::yaml_event_delete(event.as_mut_ptr());
                Some((kind, line as usize, column as usize))
            }
        }
    }

    impl Drop for Parser<'_> {
        fn drop(&mut self) {
            // SAFETY: initialized in `new` and deleted only here.
            unsafe { unsafe_yaml::yaml_parser_delete(self.raw.as_mut_ptr()) }
        }
    }

    /// What a node stands for once its aliases are expanded.
    #[derive(Clone, Copy, Default)]
    struct Size {
        nodes: u64,
        /// Its scalars' bytes and one for each node.
        bytes: u64,
    }

    impl Size {
        const ONE: Size = Size { nodes: 1, bytes: 1 };

        fn add(&mut self, other: Size) {
            self.nodes = self.nodes.saturating_add(other.nodes);
            self.bytes = self.bytes.saturating_add(other.bytes);
        }
    }

    pub(super) fn check(content: &str, stop: &dyn Fn() -> bool) -> Result<(), Refusal> {
        let Some(mut parser) = Parser::new(content.as_bytes()) else {
            return Ok(());
        };
        // What each anchor's node stands for; `None` while that node is still open.
        let mut anchors: HashMap<Vec<u8>, Option<Size>> = HashMap::new();
        // The open collections: their anchor and what they hold so far.
        let mut open: Vec<(Option<Vec<u8>>, Size)> = Vec::new();
        let mut repeated = Size::default();
        let mut events = 0usize;
        while let Some((event, line, column)) = parser.next() {
            events += 1;
            if events.is_multiple_of(STOP_EVERY) && stop() {
                return Err(Refusal::Stopped);
            }
            let at = |message: String| FormatError {
                line: line + 1,
                column: column + 1,
                message,
            };
            let size = match event {
                Event::StreamEnd => break,
                Event::Other => continue,
                // Anchors belong to their document.
                Event::DocumentStart => {
                    anchors.clear();
                    continue;
                }
                Event::Start(anchor) => {
                    if open.len() == MAX_DEPTH {
                        return Err(too_deep(ConfigFormat::Yaml, line + 1, column + 1).into());
                    }
                    if let Some(name) = &anchor {
                        anchors.insert(name.clone(), None);
                    }
                    open.push((anchor, Size::ONE));
                    continue;
                }
                Event::End => {
                    let Some((anchor, size)) = open.pop() else {
                        continue;
                    };
                    if let Some(name) = anchor {
                        anchors.insert(name, Some(size));
                    }
                    size
                }
                Event::Scalar(anchor, length) => {
                    let size = Size {
                        nodes: 1,
                        bytes: length.saturating_add(1),
                    };
                    if let Some(name) = anchor {
                        anchors.insert(name, Some(size));
                    }
                    size
                }
                Event::Alias(name) => {
                    // An alias of an unknown or still open node is an error serde_norway
                    // reports (unknown anchor; recursion limit) before expanding anything.
                    let size = anchors.get(&name).copied().flatten().unwrap_or(Size::ONE);
                    repeated.add(size);
                    if repeated.nodes > MAX_YAML_ALIAS_NODES {
                        return Err(at(format!(
                            "with this alias, aliases stand for more than \
                             {MAX_YAML_ALIAS_NODES} nodes; YAML content may repeat at most \
                             {MAX_YAML_ALIAS_NODES} nodes through aliases: use fewer aliases or \
                             aliases of smaller nodes"
                        ))
                        .into());
                    }
                    if repeated.bytes > MAX_YAML_ALIAS_BYTES {
                        let mib = MAX_YAML_ALIAS_BYTES / (1024 * 1024);
                        return Err(at(format!(
                            "with this alias, aliases stand for more than {mib} MiB; YAML \
                             content may repeat at most {mib} MiB ({MAX_YAML_ALIAS_BYTES} bytes) \
                             through aliases: use fewer aliases or aliases of shorter values"
                        ))
                        .into());
                    }
                    size
                }
            };
            if let Some((_, held)) = open.last_mut() {
                held.add(size);
            }
        }
        Ok(())
    }
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

    /// The alias bomb of issue 13: 8 KB that serde_norway would expand into a billion nodes.
    fn alias_bomb() -> String {
        let list = |item: &str| vec![item; 1000].join(",");
        format!(
            "a: &a [{}]\nb: &b [{}]\nc: [{}]\n",
            list("x"),
            list("*a"),
            list("*b")
        )
    }

    #[test]
    fn yaml_aliases_may_not_expand_past_the_limit() {
        let bomb = alias_bomb();
        assert!(bomb.len() < 9000);
        // `a` is 1001 nodes: the 100th `*a` in `b` passes 100,000 (at "b: &b [" plus 99 "*a,").
        let (line, column, message) = error(ConfigFormat::Yaml, &bomb);
        assert_eq!((line, column), (2, 8 + 99 * 3));
        assert!(
            message.starts_with("with this alias, aliases stand for more than 100000 nodes"),
            "{message}"
        );
        // Anchors of modest size, used many times, are fine.
        let defaults = format!(
            "defaults: &d {{{}}}\n{}",
            (0..20)
                .map(|i| format!("k{i}: {i}"))
                .collect::<Vec<_>>()
                .join(", "),
            (0..1000)
                .map(|i| format!("s{i}: {{<<: *d, n: {i}}}\n"))
                .collect::<String>()
        );
        assert_eq!(validate(ConfigFormat::Yaml, &defaults), Ok(()));
        // The limit counts across documents, anchors do not.
        let (line, _, message) = error(ConfigFormat::Yaml, "a: &x 1\n---\nb: *x\n");
        assert_eq!(line, 3);
        assert!(message.contains("unknown anchor"), "{message}");
        // An alias of its own enclosing node is refused (by serde_norway's recursion limit).
        assert!(validate(ConfigFormat::Yaml, "a: &a [1, *a]\n").is_err());
    }

    /// The message of content nested too deep, and where it points.
    fn too_deep_at((line, column, message): (usize, usize, String)) -> (usize, usize) {
        assert!(
            message.starts_with("nested more than 100 levels deep;"),
            "{message}"
        );
        (line, column)
    }

    /// Issue 25: 130 KB under the node limit that one OFREP call expanded to a gigabyte.
    #[test]
    fn yaml_aliases_may_not_expand_past_16_mib() {
        let long = |aliases: usize| {
            format!(
                "a: &a \"{}\"\nb: [{}]\n",
                "x".repeat(100_000),
                vec!["*a"; aliases].join(",")
            )
        };
        let issue = long(10_000);
        assert!(issue.len() < 140_000);
        // `a` is 100,001 bytes: the 168th alias passes 16 MiB (at "b: [" plus 167 "*a,").
        let (line, column, message) = error(ConfigFormat::Yaml, &issue);
        assert_eq!((line, column), (2, 5 + 167 * 3));
        assert!(
            message.starts_with(
                "with this alias, aliases stand for more than 16 MiB; YAML content may repeat \
                 at most 16 MiB (16777216 bytes) through aliases"
            ),
            "{message}"
        );
        assert_eq!(validate(ConfigFormat::Yaml, &long(167)), Ok(()));
        // An alias of a collection counts every scalar inside it, and aliases inside it too.
        let half = "x".repeat(50_000);
        let nested = format!(
            "a: &a [\"{half}\", \"{half}\"]\nb: &b [*a, *a]\nc: [{}]\n",
            vec!["*b"; 100].join(", ")
        );
        // `a` is 100,003 bytes, `b` 200,007: with the two `*a`, the 83rd `*b` passes 16 MiB.
        let (line, column, message) = error(ConfigFormat::Yaml, &nested);
        assert_eq!((line, column), (3, 5 + 82 * 4));
        assert!(message.contains("more than 16 MiB"), "{message}");
    }

    #[test]
    fn a_check_told_to_stop_ends_without_an_answer() {
        let yaml: String = (0..20_000).map(|i| format!("k{i}: [v{i}]\n")).collect();
        let json = format!("[{}1]", "1,".repeat(100_000));
        let toml: String = (0..20_000).map(|i| format!("k{i} = [{i}]\n")).collect();
        let properties: String = (0..20_000).map(|i| format!("k{i}=v{i}\n")).collect();
        for (format, content) in [
            (ConfigFormat::Yaml, &yaml),
            (ConfigFormat::Json, &json),
            (ConfigFormat::Toml, &toml),
            (ConfigFormat::Properties, &properties),
        ] {
            assert_eq!(
                validate_until(format, content, &|| true),
                Err(Refusal::Stopped),
                "{format}"
            );
            let asked = std::cell::Cell::new(0);
            let never = || {
                asked.set(asked.get() + 1);
                false
            };
            assert_eq!(validate_until(format, content, &never), Ok(()), "{format}");
            assert!(asked.get() >= 1, "{format}");
        }
        // The YAML pass asks as it goes (80,000 events), not only between its stages.
        let asked = std::cell::Cell::new(0);
        let after_three = || {
            asked.set(asked.get() + 1);
            asked.get() > 3
        };
        assert_eq!(
            validate_until(ConfigFormat::Yaml, &yaml, &after_three),
            Err(Refusal::Stopped)
        );
        assert_eq!(asked.get(), 4);
    }

    #[test]
    fn yaml_nesting_is_refused_at_the_first_level_too_deep() {
        // Half a million brackets: refused at the 101st without reading the rest.
        assert_eq!(
            too_deep_at(error(ConfigFormat::Yaml, &"[".repeat(500_000))),
            (1, 101)
        );
        assert_eq!(
            too_deep_at(error(ConfigFormat::Yaml, &"{".repeat(500_000))),
            (1, 101)
        );
        assert_eq!(
            too_deep_at(error(ConfigFormat::Yaml, &"- ".repeat(250_000))),
            (1, 201)
        );
        let nested = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(validate(ConfigFormat::Yaml, &nested(100)), Ok(()));
        assert_eq!(
            too_deep_at(error(ConfigFormat::Yaml, &nested(101))),
            (1, 101)
        );
    }

    /// Issue 25: JSON nested 100,000 deep was saved, then failed to parse for OFREP. One limit
    /// holds for every format, and what it lets through parses as a JSON value again.
    #[test]
    fn one_depth_limit_for_json_yaml_and_toml() {
        let json = |depth: usize| {
            format!(
                "{}1{}",
                "[{\"a\":".repeat(depth / 2),
                "}]".repeat(depth / 2)
            )
        };
        assert_eq!(validate(ConfigFormat::Json, &json(100)), Ok(()));
        assert_eq!(too_deep_at(error(ConfigFormat::Json, &json(102))), (1, 301));
        assert_eq!(
            too_deep_at(error(ConfigFormat::Json, &"[".repeat(100_000))),
            (1, 101)
        );
        let (_, _, message) = error(ConfigFormat::Json, &"[".repeat(100_000));
        assert_eq!(
            message,
            "nested more than 100 levels deep; JSON content may nest at most 100 arrays and \
             objects"
        );
        // Brackets in strings do not count; a syntax error before the limit is told first.
        let quoted = format!("[\"{}\\\"[\"]", "[".repeat(200));
        assert_eq!(validate(ConfigFormat::Json, &quoted), Ok(()));
        assert_eq!(
            error(ConfigFormat::Json, &format!("[x{}", "[".repeat(200))),
            (1, 2, "expected value".into())
        );
        assert_eq!(
            too_deep_at(error(ConfigFormat::Json, &format!("{}x", "[".repeat(200)))),
            (1, 101)
        );
        // TOML: the root table is a level, like JSON's outer object.
        let arrays = |depth: usize| format!("a = {}1{}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(validate(ConfigFormat::Toml, &arrays(79)), Ok(()));
        // Key paths and arrays each within toml's own limits, together past this one.
        let path = vec!["k"; 60].join(".");
        let (line, column) = too_deep_at(error(
            ConfigFormat::Toml,
            &format!("[{path}]\n{}", arrays(50)),
        ));
        assert_eq!((line, column), (2, 5 + 39));
        assert_eq!(
            validate(ConfigFormat::Toml, &format!("[{path}]\n{}", arrays(39))),
            Ok(())
        );
        // Whatever is accepted converts to a JSON value that serde_json reads back.
        for (format, content) in [
            (ConfigFormat::Json, json(100)),
            (
                ConfigFormat::Yaml,
                format!("{}1{}", "[".repeat(100), "]".repeat(100)),
            ),
            (
                ConfigFormat::Yaml,
                format!("{}1{}\n---\n1\n", "[".repeat(100), "]".repeat(100)),
            ),
            (ConfigFormat::Toml, format!("[{path}]\n{}", arrays(39))),
        ] {
            assert_eq!(validate(format, &content), Ok(()));
            let value = to_json_value(format, &content).unwrap();
            let text = serde_json::to_string(&value).unwrap();
            serde_json::from_str::<serde_json::Value>(&text).unwrap();
        }
    }

    #[test]
    fn deep_nesting_is_refused_in_every_nesting_format() {
        assert!(validate(ConfigFormat::Json, &"[".repeat(500_000)).is_err());
        assert!(validate(ConfigFormat::Toml, &format!("a = {}", "[".repeat(500_000))).is_err());
        assert!(validate(
            ConfigFormat::Toml,
            &format!("a = {}", "{b=".repeat(200_000))
        )
        .is_err());
        assert!(validate(
            ConfigFormat::Toml,
            &format!("[{}]", vec!["a"; 200_000].join("."))
        )
        .is_err());
    }

    #[test]
    fn long_messages_are_cut() {
        let key = "k".repeat(2000);
        // An explicit key (`? `): a plain one may be at most 1024 characters long.
        let (_, _, message) = error(ConfigFormat::Yaml, &format!("? {key}\n: 1\n? {key}\n: 2\n"));
        assert!(
            message.starts_with("duplicate entry with key \"kkk"),
            "{message}"
        );
        assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(message.ends_with('…'));
    }

    /// The nodes a YAML value holds, aliases expanded: what deserializing it built.
    fn nodes(value: &serde_norway::Value) -> u64 {
        use serde_norway::Value;
        1 + match value {
            Value::Sequence(items) => items.iter().map(nodes).sum(),
            Value::Mapping(map) => map.iter().map(|(k, v)| nodes(k) + nodes(v)).sum(),
            Value::Tagged(tagged) => nodes(&tagged.value),
            _ => 0,
        }
    }

    /// The bytes a YAML value holds, aliases expanded: its strings' bytes and one for each node
    /// (what the limit counts, but for numbers, booleans and nulls, counted one byte here).
    fn bytes(value: &serde_norway::Value) -> u64 {
        use serde_norway::Value;
        match value {
            Value::String(s) => 1 + s.len() as u64,
            Value::Sequence(items) => 1 + items.iter().map(bytes).sum::<u64>(),
            Value::Mapping(map) => 1 + map.iter().map(|(k, v)| bytes(k) + bytes(v)).sum::<u64>(),
            Value::Tagged(tagged) => bytes(&tagged.value),
            _ => 1,
        }
    }

    /// A long string, then layers of lists of aliases of the layer before.
    fn long_alias_layers() -> impl Strategy<Value = String> {
        (1usize..=200_000, prop::collection::vec(1usize..=40, 1..=2)).prop_map(|(len, widths)| {
            let mut yaml = format!("l0: &l0 \"{}\"\n", "x".repeat(len));
            for (i, width) in widths.iter().enumerate() {
                let alias = format!("*l{i}");
                yaml += &format!(
                    "l{}: &l{} [{}]\n",
                    i + 1,
                    i + 1,
                    vec![alias; *width].join(", ")
                );
            }
            yaml
        })
    }

    /// Layers of anchors, each a list of aliases of the one before: how alias bombs are built.
    fn alias_layers() -> impl Strategy<Value = String> {
        (1usize..=40, prop::collection::vec(1usize..=36, 1..=4)).prop_map(|(first, widths)| {
            let mut yaml = format!("l0: &l0 [{}]\n", vec!["x"; first].join(", "));
            for (i, width) in widths.iter().enumerate() {
                let alias = format!("*l{i}");
                yaml += &format!(
                    "l{}: &l{} [{}]\n",
                    i + 1,
                    i + 1,
                    vec![alias; *width].join(", ")
                );
            }
            yaml
        })
    }

    /// YAML-ish text: structure, anchors and aliases, scalars and breaks in any order.
    fn yamlish() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            Just("["),
            Just("]"),
            Just("{"),
            Just("}"),
            Just(", "),
            Just("- "),
            Just("? "),
            Just(": "),
            Just("\n"),
            Just("  "),
            Just("&a "),
            Just("&b "),
            Just("*a"),
            Just("*b"),
            Just("x"),
            Just("1"),
            Just("\""),
            Just("'"),
            Just("#"),
            Just("|\n"),
            Just("---\n"),
        ];
        prop::collection::vec(token, 0..400).prop_map(|tokens| tokens.concat())
    }

    use proptest::prelude::*;

    proptest! {
        /// Any YAML it accepts, it accepted without expanding past the limit: a document of n
        /// bytes holds at most about 2n nodes of its own plus the aliases' limit.
        #[test]
        fn accepted_yaml_holds_few_nodes(yaml in prop_oneof![alias_layers(), yamlish()]) {
            if validate(ConfigFormat::Yaml, &yaml).is_ok() {
                let total: u64 = serde_norway::Deserializer::from_str(&yaml)
                    .map(|document| nodes(&serde_norway::Value::deserialize(document).unwrap()))
                    .sum();
                let bound = 2 * yaml.len() as u64 + 16 + MAX_YAML_ALIAS_NODES;
                prop_assert!(total <= bound, "{total} nodes from {} bytes", yaml.len());
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Any YAML it accepts stays small in bytes once its aliases are expanded: a document of
        /// n bytes holds at most about 4n bytes of its own (escapes such as `\L` grow a little)
        /// plus the aliases' limit.
        #[test]
        fn accepted_yaml_expands_to_few_bytes(
            yaml in prop_oneof![long_alias_layers(), alias_layers(), yamlish()],
        ) {
            if validate(ConfigFormat::Yaml, &yaml).is_ok() {
                let total: u64 = serde_norway::Deserializer::from_str(&yaml)
                    .map(|document| bytes(&serde_norway::Value::deserialize(document).unwrap()))
                    .sum();
                let bound = 4 * yaml.len() as u64 + 16 + MAX_YAML_ALIAS_BYTES;
                prop_assert!(total <= bound, "{total} bytes from {} bytes", yaml.len());
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(8))]
        /// Small inputs cost little, however deeply they open collections: up to 64 Ki openers
        /// (quadratic for libyaml unchecked: seconds) then anything, in every format. The bound
        /// is generous (an unoptimized build takes milliseconds); no time-slice luck needed.
        #[test]
        fn deep_small_inputs_validate_quickly(
            openers in prop::collection::vec(prop_oneof![Just("["), Just("{"), Just("- "), Just("{a: ")], 0..65_536),
            tail in yamlish(),
        ) {
            let text = openers.concat() + &tail;
            for format in ConfigFormat::ALL {
                let started = std::time::Instant::now();
                let _ = validate(format, &text);
                let took = started.elapsed();
                prop_assert!(took < std::time::Duration::from_secs(3), "{format}: {took:?} for {} bytes", text.len());
            }
        }
    }

    #[test]
    fn text_is_always_valid() {
        assert_eq!(validate(ConfigFormat::Text, "{ not: json ]"), Ok(()));
    }
}
