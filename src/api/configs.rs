//! Server functions for namespaces, configs, versions, releases and diffs.

use crate::domain::diff::Diff;
use crate::model::{
    Config, Explanation, Lane, LaneUpdate, Namespace, NewConfig, NewLane, NewNamespace, NewVersion,
    Preview, ReleaseEvent, Rollout, Version, VersionStatus,
};
use crate::Error;
use leptos::prelude::*;
use std::collections::BTreeMap;

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

/// Deletes the config (its lanes close, subscribers get `deleted`); its history stays.
#[server]
pub async fn delete_config(
    namespace: String,
    env: String,
    key: String,
    message: Option<String>,
) -> Result<(), Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::configs::delete(&state, &actor, &namespace, &env, &key, message)
        .await
        .map(drop)
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

/// With `ignore_whitespace`, lines that differ only in whitespace count as equal.
#[server]
pub async fn diff_versions(
    namespace: String,
    env: String,
    key: String,
    from: i64,
    to: i64,
    ignore_whitespace: bool,
) -> Result<Diff, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::configs::diff(
        &state,
        &actor,
        &namespace,
        &env,
        &key,
        from,
        to,
        ignore_whitespace,
    )
    .await
}

/// Every lane of the config: active ones in resolution order (priority, id),
/// then closed ones, newest first.
#[server]
pub async fn list_lanes(namespace: String, env: String, key: String) -> Result<Vec<Lane>, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::lanes::list(&state, &actor, &namespace, &env, &key).await
}

/// Starts a gray lane (400 with `field` on an invalid selector, percentage or version).
#[server]
pub async fn create_lane(
    namespace: String,
    env: String,
    key: String,
    lane: NewLane,
) -> Result<Lane, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::lanes::create(&state, &actor, &namespace, &env, &key, lane).await
}

/// Changes an active lane's selector, targets, percentage or priority (409 once closed).
#[server]
pub async fn update_lane(
    namespace: String,
    env: String,
    key: String,
    id: i64,
    change: LaneUpdate,
) -> Result<Lane, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::lanes::update(&state, &actor, &namespace, &env, &key, id, change).await
}

/// Makes the lane's version the stable release and closes the lane.
#[server]
pub async fn promote_lane(
    namespace: String,
    env: String,
    key: String,
    id: i64,
    message: Option<String>,
) -> Result<ReleaseEvent, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::lanes::promote(&state, &actor, &namespace, &env, &key, id, message).await
}

/// Closes the lane; its subscribers fall back to the stable release.
#[server]
pub async fn abort_lane(
    namespace: String,
    env: String,
    key: String,
    id: i64,
    message: Option<String>,
) -> Result<ReleaseEvent, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::lanes::abort(&state, &actor, &namespace, &env, &key, id, message).await
}

/// Which connected subscribers an unsaved lane would match, on its own (exact for
/// the next lane created on this config: it is evaluated with that lane's salt).
#[server]
pub async fn preview_lane(
    namespace: String,
    env: String,
    key: String,
    lane: NewLane,
) -> Result<Preview, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::lanes::preview(&state, &actor, &namespace, &env, &key, lane).await
}

/// Which connected subscribers an active lane would match after `change`
/// (e.g. while its weight slider moves), with the lane's own salt.
#[server]
pub async fn preview_lane_change(
    namespace: String,
    env: String,
    key: String,
    id: i64,
    change: LaneUpdate,
) -> Result<Preview, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::lanes::preview_change(&state, &actor, &namespace, &env, &key, id, change)
        .await
}

/// Which version `context` gets and why. With `draft`, as if that lane had just
/// been created: the salt the config's next lane will get, tried after the active
/// lanes of the same priority, reported as lane 0.
#[server]
pub async fn explain_resolve(
    namespace: String,
    env: String,
    key: String,
    context: BTreeMap<String, String>,
    draft: Option<NewLane>,
) -> Result<Explanation, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::lanes::explain(&state, &actor, &namespace, &env, &key, &context, draft)
        .await
}

/// Every version, newest first, with what it is now: stable, in lanes, was stable, never released.
#[server]
pub async fn version_statuses(
    namespace: String,
    env: String,
    key: String,
) -> Result<Vec<VersionStatus>, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::history::version_statuses(&state, &actor, &namespace, &env, &key).await
}

/// Per active lane, how many of the connected instances its selector matches it serves, and the
/// reports of the instances on stable and on each lane.
#[server]
pub async fn rollout_progress(
    namespace: String,
    env: String,
    key: String,
) -> Result<Rollout, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::rollout::rollout(&state, &actor, &namespace, &env, &key).await
}
