//! Feeds arbitrary UTF-8 to the selector parser: it must never panic, and any
//! selector it accepts must print as canonical text that parses back to itself.

#![no_main]

use graycast::domain::selector::Selector;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Selector::parse(text) {
        Ok(selector) => {
            let canonical = selector.to_string();
            assert_eq!(
                Selector::parse(&canonical).as_ref(),
                Ok(&selector),
                "{text:?} → {canonical:?} does not parse back to the same selector"
            );
        }
        Err(error) => assert!(error.position() <= text.chars().count(), "{error}"),
    }
});
