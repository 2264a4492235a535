//! Content as a JSON value, for answers that carry structured values (OFREP,
//! docs/ofrep.md#how-content-becomes-a-value): json, yaml and toml as the value they
//! denote, properties as an object of strings, text as a string.

use super::{yaml_bounds, ConfigFormat};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use thiserror::Error;

/// Largest value [`to_json_text`] writes, in bytes of JSON (16 MiB). Content within the content
/// limit can still denote more (YAML aliases may repeat up to 16 MiB, escapes grow when written
/// as JSON): such a value is refused, never built.
pub const MAX_VALUE_BYTES: usize = 16 * 1024 * 1024;

/// Why content has no JSON value to serve.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValueError {
    /// It does not parse: why.
    #[error("{0}")]
    Unparsable(String),
    /// Its JSON is larger than [`MAX_VALUE_BYTES`].
    #[error("its value is larger than {} MiB as JSON", MAX_VALUE_BYTES / (1024 * 1024))]
    TooLarge,
}

/// `content` parsed by `format`. Content was validated when saved, so an
/// error here means a stored version the parsers no longer accept; it says why.
pub fn to_json_value(format: ConfigFormat, content: &str) -> Result<Value, String> {
    match format {
        ConfigFormat::Json => serde_json::from_str(content).map_err(|e| e.to_string()),
        ConfigFormat::Yaml => yaml(content),
        ConfigFormat::Toml => toml::from_str::<toml::Table>(content)
            .map(|table| toml_value(toml::Value::Table(table)))
            .map_err(|e| e.message().to_string()),
        ConfigFormat::Properties => Ok(properties(content)),
        ConfigFormat::Text => Ok(Value::String(content.to_string())),
    }
}

/// [`to_json_value`], serialized: refused when larger than [`MAX_VALUE_BYTES`], which is measured
/// before anything is written, so no larger text is ever held.
pub fn to_json_text(format: ConfigFormat, content: &str) -> Result<Box<RawValue>, ValueError> {
    let value = to_json_value(format, content).map_err(ValueError::Unparsable)?;
    if serde_json::to_writer(Measure(0), &value).is_err() {
        return Err(ValueError::TooLarge);
    }
    serde_json::value::to_raw_value(&value).map_err(|e| ValueError::Unparsable(e.to_string()))
}

/// Counts the bytes written and fails once they pass [`MAX_VALUE_BYTES`].
struct Measure(usize);

impl std::io::Write for Measure {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        if self.0 > MAX_VALUE_BYTES {
            return Err(std::io::Error::other("larger than MAX_VALUE_BYTES"));
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One document is its value; several (`---`) an array of them; none `null`.
fn yaml(content: &str) -> Result<Value, String> {
    // Aliases expand while converting: keep the bound the save checked.
    yaml_bounds::check(content, &|| false).map_err(|e| e.to_string())?;
    let mut documents = Vec::new();
    for document in serde_norway::Deserializer::from_str(content) {
        let value = serde_norway::Value::deserialize(document).map_err(|e| e.to_string())?;
        documents.push(yaml_value(value)?);
    }
    Ok(match documents.len() {
        0 => Value::Null,
        1 => documents.pop().unwrap_or(Value::Null),
        _ => Value::Array(documents),
    })
}

fn yaml_value(value: serde_norway::Value) -> Result<Value, String> {
    use serde_norway::Value as Y;
    Ok(match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::from(i),
            (None, Some(u), _) => Value::from(u),
            (None, None, Some(f)) => Value::from(f),
            _ => Value::Null,
        },
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .map(yaml_value)
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(mapping) => {
            let mut object = Map::new();
            for (key, value) in mapping {
                // JSON keys are strings: scalar keys become their text.
                let key = match key {
                    Y::String(s) => s,
                    Y::Bool(b) => b.to_string(),
                    Y::Number(n) => n.to_string(),
                    Y::Null => "null".to_string(),
                    _ => return Err("a mapping key is not a scalar; JSON keys are text".into()),
                };
                object.insert(key, yaml_value(value)?);
            }
            Value::Object(object)
        }
        Y::Tagged(tagged) => yaml_value(tagged.value)?,
    })
}

fn toml_value(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        // Not finite (nan, inf): JSON has no such number, so `null`.
        toml::Value::Float(f) => Value::from(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(toml_value).collect()),
        toml::Value::Table(table) => {
            Value::Object(table.into_iter().map(|(k, v)| (k, toml_value(v))).collect())
        }
    }
}

/// Java `.properties` as `Properties.load` reads it: logical lines joined
/// at an odd trailing backslash, comments skipped, the key ending at the
/// first unescaped `=`, `:` or whitespace, escapes undone; a later key wins.
fn properties(content: &str) -> Value {
    let mut object = Map::new();
    let mut logical = String::new();
    let mut continued = false;
    for physical in content.split('\n') {
        let physical = physical.strip_suffix('\r').unwrap_or(physical);
        let line = physical.trim_start_matches([' ', '\t', '\x0c']);
        if !continued && (line.is_empty() || line.starts_with(['#', '!'])) {
            continue;
        }
        let backslashes = line.chars().rev().take_while(|&c| c == '\\').count();
        continued = backslashes % 2 == 1;
        logical.push_str(if continued {
            &line[..line.len() - 1]
        } else {
            line
        });
        if !continued {
            let (key, value) = property(&logical);
            object.insert(key, Value::String(value));
            logical.clear();
        }
    }
    if !logical.is_empty() {
        let (key, value) = property(&logical);
        object.insert(key, Value::String(value));
    }
    Value::Object(object)
}

fn property(line: &str) -> (String, String) {
    let chars: Vec<char> = line.chars().collect();
    let mut end = 0;
    while end < chars.len() {
        match chars[end] {
            '\\' => end += 2,
            '=' | ':' | ' ' | '\t' | '\x0c' => break,
            _ => end += 1,
        }
    }
    let end = end.min(chars.len());
    let mut rest = end;
    while rest < chars.len() && matches!(chars[rest], ' ' | '\t' | '\x0c') {
        rest += 1;
    }
    if rest < chars.len() && matches!(chars[rest], '=' | ':') {
        rest += 1;
        while rest < chars.len() && matches!(chars[rest], ' ' | '\t' | '\x0c') {
            rest += 1;
        }
    }
    (unescape(&chars[..end]), unescape(&chars[rest..]))
}

fn unescape(chars: &[char]) -> String {
    let mut out = String::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '\\' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.iter().skip(i + 2).take(4).collect();
                if let Some(c) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    out.push(c);
                    i += 6;
                    continue;
                }
            }
            Some(&c) => out.push(c),
            None => {}
        }
        i += 2;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn value(format: ConfigFormat, content: &str) -> Value {
        to_json_value(format, content).unwrap()
    }

    #[test]
    fn json_yaml_and_toml_are_the_value_they_denote() {
        let expected = json!({"a": 1, "b": [true, 2.5, "x"], "c": {"d": null}});
        assert_eq!(
            value(
                ConfigFormat::Json,
                r#"{"a":1,"b":[true,2.5,"x"],"c":{"d":null}}"#
            ),
            expected
        );
        assert_eq!(
            value(ConfigFormat::Yaml, "a: 1\nb: [true, 2.5, x]\nc:\n  d: ~\n"),
            expected
        );
        assert_eq!(
            value(
                ConfigFormat::Toml,
                "a = 1\nb = [true, 2.5, \"x\"]\nwhen = 1979-05-27T07:32:00Z\n[c]\n"
            ),
            json!({"a": 1, "b": [true, 2.5, "x"], "when": "1979-05-27T07:32:00Z", "c": {}})
        );
        assert_eq!(value(ConfigFormat::Json, "7"), json!(7));
    }

    #[test]
    fn yaml_documents_keys_and_aliases() {
        assert_eq!(value(ConfigFormat::Yaml, ""), Value::Null);
        assert_eq!(
            value(ConfigFormat::Yaml, "a: 1\n---\nb: 2\n"),
            json!([{"a": 1}, {"b": 2}])
        );
        assert_eq!(
            value(ConfigFormat::Yaml, "1: x\ntrue: y\n"),
            json!({"1": "x", "true": "y"})
        );
        assert_eq!(
            value(ConfigFormat::Yaml, "base: &b {x: 1}\nother: *b\n"),
            json!({"base": {"x": 1}, "other": {"x": 1}})
        );
        assert!(to_json_value(ConfigFormat::Yaml, "? [1, 2]\n: x\n").is_err());
    }

    #[test]
    fn properties_are_an_object_of_strings() {
        let content = "# comment\n! also\n  a = 1\nb:two\nc three\nd\\ e=f\\tg\n\
                       long = one \\\n    two\nu = \\u00e9\ne=\na=again\n";
        assert_eq!(
            value(ConfigFormat::Properties, content),
            json!({"a": "again", "b": "two", "c": "three", "d e": "f\tg",
                   "long": "one two", "u": "é", "e": ""})
        );
    }

    #[test]
    fn json_text_is_refused_past_its_limit() {
        let text = to_json_text(ConfigFormat::Yaml, "a: [1, x]\n").unwrap();
        assert_eq!(text.get(), r#"{"a":[1,"x"]}"#);
        // 100,000 control characters, written as `\u0001` each: 600 KB; 28 aliases pass 16 MiB.
        let escaped = |aliases: usize| {
            format!(
                "a: &a \"{}\"\nb: [{}]\n",
                "\\x01".repeat(100_000),
                vec!["*a"; aliases].join(", ")
            )
        };
        assert!(to_json_text(ConfigFormat::Yaml, &escaped(26)).is_ok());
        assert_eq!(
            to_json_text(ConfigFormat::Yaml, &escaped(28)).unwrap_err(),
            ValueError::TooLarge
        );
        assert_eq!(
            ValueError::TooLarge.to_string(),
            "its value is larger than 16 MiB as JSON"
        );
        assert!(matches!(
            to_json_text(ConfigFormat::Json, "{"),
            Err(ValueError::Unparsable(_))
        ));
    }

    #[test]
    fn text_is_a_string() {
        assert_eq!(value(ConfigFormat::Text, "hello\n"), json!("hello\n"));
    }
}
