//! Feeds arbitrary UTF-8 to the YAML validator: it must never panic, its errors must name a
//! place inside the text (see `format.rs`), and YAML it accepts must stay small once its aliases
//! are expanded: at most about two nodes a byte plus `MAX_YAML_ALIAS_NODES`, and at most about
//! four bytes a byte plus `MAX_YAML_ALIAS_BYTES`. Run it with `-rss_limit_mb` and `-timeout`
//! (see README.md) so an alias bomb or a slow input fails too.

#![no_main]

mod format;

use graycast::domain::format::{ConfigFormat, MAX_YAML_ALIAS_BYTES, MAX_YAML_ALIAS_NODES};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde_norway::Value;

fn nodes(value: &Value) -> u64 {
    1 + match value {
        Value::Sequence(items) => items.iter().map(nodes).sum(),
        Value::Mapping(map) => map.iter().map(|(k, v)| nodes(k) + nodes(v)).sum(),
        Value::Tagged(tagged) => nodes(&tagged.value),
        _ => 0,
    }
}

/// Its strings' bytes and one for each node, aliases expanded (what the byte limit counts, but
/// for numbers, booleans and nulls, counted one byte here).
fn bytes(value: &Value) -> u64 {
    match value {
        Value::String(s) => 1 + s.len() as u64,
        Value::Sequence(items) => 1 + items.iter().map(bytes).sum::<u64>(),
        Value::Mapping(map) => 1 + map.iter().map(|(k, v)| bytes(k) + bytes(v)).sum::<u64>(),
        Value::Tagged(tagged) => bytes(&tagged.value),
        _ => 1,
    }
}

fuzz_target!(|data: &[u8]| {
    if format::check(ConfigFormat::Yaml, data).is_err() {
        return;
    }
    let text = std::str::from_utf8(data).expect("checked");
    let documents: Vec<Value> = serde_norway::Deserializer::from_str(text)
        .map(|document| Value::deserialize(document).expect("validated"))
        .collect();
    let total: u64 = documents.iter().map(nodes).sum();
    let bound = 2 * text.len() as u64 + 16 + MAX_YAML_ALIAS_NODES;
    assert!(total <= bound, "{total} nodes from {} bytes", text.len());
    // Escapes such as `\L` (two bytes, three once read) grow a little.
    let total: u64 = documents.iter().map(bytes).sum();
    let bound = 4 * text.len() as u64 + 16 + MAX_YAML_ALIAS_BYTES;
    assert!(total <= bound, "{total} bytes from {} bytes", text.len());
});
