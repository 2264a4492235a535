//! The integration suite in one binary: every test starts the real server on a
//! free loopback port (see `common::spawn_app`) and talks to it over TCP.
//! The kill -9 crash test stays in its own binary (`tests/crash.rs`): it loads
//! the machine on purpose and must not share it with these.

// A test reads as one story from setup to the last assertion; the 100-line limit on
// functions (clippy.toml) is for the product's code.
#![allow(clippy::too_many_lines)]

mod common;

mod agent;
mod assets;
mod authorization;
mod cli;
mod configs;
mod connections;
mod dashboard;
mod delete;
mod failover;
mod fast_path;
mod foundation;
mod freezes;
mod governance;
mod inputs;
mod lanes;
mod metrics;
mod notifications;
mod ofrep;
mod plans;
mod probes;
mod quoting;
mod resolve;
mod sessions;
mod sign_in;
mod startup;
mod tls;
mod trace;
mod triggers;
mod watch;
