//! The pure heart of graycast: selectors, bucketing, lane resolution, content formats and diffs.
//!
//! Nothing here does I/O, spawns threads or reads the clock, so the same code runs on the server
//! and, compiled to wasm32, in the browser (live validation, previews, side-by-side diffs).

pub mod audit;
pub mod bucket;
pub mod diff;
pub mod format;
pub mod key;
pub mod lane;
pub mod plan;
pub mod selector;
pub mod time;
pub mod words;

use std::collections::BTreeMap;

/// The flat string map a lane is evaluated against: instance labels plus the well-known keys
/// `client_id` and `user_id` and any request attributes. Ordered so that output is stable.
pub type Context = BTreeMap<String, String>;

/// Percent-encodes all but RFC 3986's unreserved characters (for query values).
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
