#![recursion_limit = "512"]
//! graycast: a self-hosted configuration center with gray (canary) release control.
//!
//! The crate compiles twice: with `ssr` it is the server (axum + SQLite) and the
//! binary's library; with `hydrate` it is the dashboard's WebAssembly front end.
//! `domain` is pure logic shared by both.

pub mod api;
pub mod app;
pub mod domain;
pub mod error;
pub mod model;

#[cfg(feature = "ssr")]
pub mod client;
#[cfg(feature = "ssr")]
pub mod server;

pub use error::{Error, ErrorCode, Result};

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    // Lets end-to-end tests wait until event handlers are attached (after the
    // suspended parts of the page have resolved from the serialized data).
    leptos::prelude::request_animation_frame(|| {
        let _ = js_sys::Reflect::set(
            &leptos::prelude::window(),
            &"__graycast_hydrated".into(),
            &true.into(),
        );
    });
}
