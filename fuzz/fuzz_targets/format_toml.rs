//! Feeds arbitrary UTF-8 to the toml validator: it must never panic, and its errors must name a
//! place inside the text (see `format.rs`).

#![no_main]

mod format;

use graycast::domain::format::ConfigFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = format::check(ConfigFormat::Toml, data);
});
