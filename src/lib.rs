#![recursion_limit = "512"]
//! graycast: a self-hosted configuration center with gray (canary) release control.
//!
//! The crate compiles twice: with `ssr` it is the server (axum + SQLite or PostgreSQL) and the
//! binary's library; with `hydrate` it is the dashboard's WebAssembly front end.
//!
//! Below it: `graycast-domain` (crates/domain), pure logic and the API's shapes shared by both,
//! re-exported here as [`domain`] and [`model`]; and, for the server's binary (the agent),
//! `graycast-client` (crates/client), the SDK a service links without the server, re-exported as
//! `client`.

pub mod api;
pub mod app;
pub mod error;

pub use graycast_domain as domain;
pub use graycast_domain::model;

#[cfg(feature = "ssr")]
pub use graycast_client as client;
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
