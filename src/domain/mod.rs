//! The pure heart of graycast: selectors, bucketing, lane resolution, content formats and diffs.
//!
//! Nothing here does I/O, spawns threads or reads the clock, so the same code runs on the server
//! and, compiled to wasm32, in the browser (live validation, previews, side-by-side diffs).

pub mod bucket;
pub mod diff;
pub mod format;
pub mod key;
pub mod lane;
pub mod plan;
pub mod selector;
pub mod time;

use std::collections::BTreeMap;

/// The flat string map a lane is evaluated against: instance labels plus the well-known keys
/// `client_id` and `user_id` and any request attributes. Ordered so that output is stable.
pub type Context = BTreeMap<String, String>;
