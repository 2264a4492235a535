//! Server functions for namespaces, configs, versions, releases and diffs.

use crate::domain::diff::Diff;
use crate::model::{Config, Namespace, NewConfig, NewNamespace, NewVersion, ReleaseEvent, Version};
use crate::Error;
use leptos::prelude::*;

#[server]
pub async fn list_namespaces(q: Option<String>) -> Result<Vec<Namespace>, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::namespaces::list(&state, &actor, q.as_deref()).await
}

#[server]
pub async fn create_namespace(namespace: NewNamespace) -> Result<Namespace, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::namespaces::create(&state, &actor, namespace).await
}

#[server]
pub async fn list_configs(namespace: String, env: String) -> Result<Vec<Config>, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::configs::list(&state, &actor, &namespace, &env).await
}

#[server]
pub async fn get_config(namespace: String, env: String, key: String) -> Result<Config, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::configs::get(&state, &actor, &namespace, &env, &key).await
}

#[server]
pub async fn create_config(
    namespace: String,
    env: String,
    config: NewConfig,
) -> Result<Config, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::configs::create(&state, &actor, &namespace, &env, config).await
}

/// Newest first.
#[server]
pub async fn list_versions(
    namespace: String,
    env: String,
    key: String,
) -> Result<Vec<Version>, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::configs::versions(&state, &actor, &namespace, &env, &key).await
}

#[server]
pub async fn get_version(
    namespace: String,
    env: String,
    key: String,
    version: i64,
) -> Result<Version, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::configs::version(&state, &actor, &namespace, &env, &key, version).await
}

/// 409 (`code: "conflict"`, `field: "base_version"`) when `version.base_version`
/// is no longer the latest.
#[server]
pub async fn save_version(
    namespace: String,
    env: String,
    key: String,
    version: NewVersion,
) -> Result<Version, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::configs::save_version(&state, &actor, &namespace, &env, &key, version).await
}

/// Releases `version` as the stable release (a rollback when it is older than the current one).
#[server]
pub async fn release(
    namespace: String,
    env: String,
    key: String,
    version: i64,
    message: Option<String>,
) -> Result<ReleaseEvent, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::configs::release(&state, &actor, &namespace, &env, &key, version, message)
        .await
}

/// Newest first.
#[server]
pub async fn list_releases(
    namespace: String,
    env: String,
    key: String,
) -> Result<Vec<ReleaseEvent>, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::configs::releases(&state, &actor, &namespace, &env, &key).await
}

#[server]
pub async fn diff_versions(
    namespace: String,
    env: String,
    key: String,
    from: i64,
    to: i64,
) -> Result<Diff, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::configs::diff(&state, &actor, &namespace, &env, &key, from, to).await
}
