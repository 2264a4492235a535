//! Server functions for namespaces, configs, versions, releases and diffs.

use crate::domain::diff::Diff;
use crate::model::{
    Config, ConfigPath, Explanation, HistoryPage, Lane, LaneId, LaneUpdate, Namespace, NewConfig,
    NewLane, NewNamespace, NewVersion, Preview, ReleaseEvent, Rollout, Version, VersionPage,
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
    crate::server::ops::configs::list(&state, &actor, &crate::model::EnvPath::new(namespace, env))
        .await
}

#[server]
pub async fn get_config(path: ConfigPath) -> Result<Config, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::configs::get(&state, &actor, &path).await
}

#[server]
pub async fn create_config(
    namespace: String,
    env: String,
    config: NewConfig,
) -> Result<Config, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::configs::create(
        &state,
        &actor,
        &crate::model::EnvPath::new(namespace, env),
        config,
    )
    .await
}

/// Deletes the config (its lanes close, subscribers get `deleted`); its history stays.
#[server]
pub async fn delete_config(path: ConfigPath, message: Option<String>) -> Result<(), Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::configs::delete(&state, &actor, &path, message)
        .await
        .map(drop)
}

/// One page of versions, newest first, without their contents: `limit` (default 50, at most
/// 200) of those older than `before`.
#[server]
pub async fn list_versions(
    path: ConfigPath,
    before: Option<i64>,
    limit: Option<u32>,
) -> Result<VersionPage, Error> {
    let (state, actor) = super::caller().await?;
    let query = crate::model::VersionsQuery { before, limit };
    crate::server::ops::history::versions(&state, &actor, &path, &query).await
}

/// The newest version, with its content.
#[server]
pub async fn latest_version(path: ConfigPath) -> Result<Version, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::history::latest(&state, &actor, &path).await
}

#[server]
pub async fn get_version(path: ConfigPath, version: i64) -> Result<Version, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::configs::version(&state, &actor, &path, version).await
}

/// 409 (`code: "conflict"`, `field: "base_version"`) when `version.base_version`
/// is no longer the latest.
#[server]
pub async fn save_version(path: ConfigPath, version: NewVersion) -> Result<Version, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::configs::save_version(&state, &actor, &path, version).await
}

/// Releases `version` as the stable release (a rollback when it is older than the current one).
/// `break_glass` (admins): the reason to apply it now in a protected or frozen environment.
#[server]
pub async fn release(
    path: ConfigPath,
    version: i64,
    message: Option<String>,
    break_glass: Option<String>,
) -> Result<ReleaseEvent, Error> {
    let (state, actor) = super::caller().await?;
    let governed = crate::model::Governed {
        apply_at: None,
        break_glass: break_glass.map(|reason| crate::model::Override { reason }),
    };
    crate::server::ops::configs::release(&state, &actor, &path, version, message, &governed)
        .await?
        .done()
}

/// Newest first.
#[server]
pub async fn list_releases(path: ConfigPath) -> Result<Vec<ReleaseEvent>, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::configs::releases(&state, &actor, &path).await
}

/// With `ignore_whitespace`, lines that differ only in whitespace count as equal.
#[server]
pub async fn diff_versions(
    path: ConfigPath,
    from: i64,
    to: i64,
    ignore_whitespace: bool,
) -> Result<Diff, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::configs::diff(&state, &actor, &path, from, to, ignore_whitespace).await
}

/// Every lane of the config: active ones in resolution order (priority, id),
/// then closed ones, newest first.
#[server]
pub async fn list_lanes(path: ConfigPath) -> Result<Vec<Lane>, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::lanes::list(&state, &actor, &path).await
}

/// Changes an active lane's selector, targets, percentage or priority (409 once closed).
#[server]
pub async fn update_lane(
    path: ConfigPath,
    lane: LaneId,
    change: LaneUpdate,
) -> Result<Lane, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::lanes::update(
        &state,
        &actor,
        &path,
        lane,
        change,
        &crate::model::Governed::default(),
    )
    .await?
    .done()
}

/// Makes the lane's version the stable release and closes the lane.
#[server]
pub async fn promote_lane(
    path: ConfigPath,
    lane: LaneId,
    message: Option<String>,
) -> Result<ReleaseEvent, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::lanes::promote(
        &state,
        &actor,
        &path,
        lane,
        message,
        &crate::model::Governed::default(),
    )
    .await?
    .done()
}

/// Closes the lane; its subscribers fall back to the stable release.
#[server]
pub async fn abort_lane(
    path: ConfigPath,
    lane: LaneId,
    message: Option<String>,
) -> Result<ReleaseEvent, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::lanes::abort(&state, &actor, &path, lane, message).await
}

/// Which connected subscribers an unsaved lane would match, on its own (exact for
/// the next lane created on this config: it is evaluated with that lane's salt).
#[server]
pub async fn preview_lane(path: ConfigPath, lane: NewLane) -> Result<Preview, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::lanes::preview(&state, &actor, &path, lane).await
}

/// Which connected subscribers an active lane would match after `change`
/// (e.g. while its weight slider moves), with the lane's own salt.
#[server]
pub async fn preview_lane_change(
    path: ConfigPath,
    lane: LaneId,
    change: LaneUpdate,
) -> Result<Preview, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::lanes::preview_change(&state, &actor, &path, lane, change).await
}

/// Which version `context` gets and why. With `draft`, as if that lane had just
/// been created: the salt the config's next lane will get, tried after the active
/// lanes of the same priority, reported as lane 0.
#[server]
pub async fn explain_resolve(
    path: ConfigPath,
    context: BTreeMap<String, String>,
    draft: Option<NewLane>,
) -> Result<Explanation, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::lanes::explain(&state, &actor, &path, &context, draft).await
}

/// One page of the version history (50 versions older than `before`), newest first, each with
/// what it is now: stable, in lanes, was stable, never released.
#[server]
pub async fn version_history(path: ConfigPath, before: Option<i64>) -> Result<HistoryPage, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::history::version_history(&state, &actor, &path, before).await
}

/// Per active lane, how many of the connected instances its selector matches it serves, and the
/// reports of the instances on stable and on each lane.
#[server]
pub async fn rollout_progress(path: ConfigPath) -> Result<Rollout, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::rollout::rollout(&state, &actor, &path).await
}
