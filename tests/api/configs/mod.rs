//! Issue 4: namespaces, configs, versions, release and rollback, resolve, diff
//! and audit search — against the real server.

mod audit;
mod releases;
mod validation;
mod versions;

use crate::common::{config_path, error_code, spawn_app, spawn_app_with};
use graycast::domain::format::{validate, ConfigFormat};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;

fn sha256(content: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(content.as_bytes())))
}
