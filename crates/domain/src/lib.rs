//! The pure heart of graycast: selectors, bucketing, lane resolution, plans, content formats and
//! diffs, and [`model`], the shapes the HTTP API, the dashboard and the client exchange.
//!
//! Nothing here does I/O, spawns threads or reads the clock, so the same code runs on the server,
//! compiled to wasm32 in the browser (live validation, previews, side-by-side diffs), and in the
//! client crate a service links without the server.

pub mod audit;
pub mod bucket;
#[cfg(feature = "sqlx")]
pub mod columns;
pub mod compare;
pub mod diff;
pub mod format;
pub mod key;
pub mod lane;
pub mod model;
pub mod notify;
pub mod percentage;
pub mod plan;
pub mod quote;
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
