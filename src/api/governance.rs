//! Server functions for change governance (docs/api.md, "Change requests, schedules and
//! overrides" and "Freeze windows"): the requests page, a request's view and its decisions,
//! the config page's governance, and an environment's protection and freeze windows.

use crate::model::{
    ChangeAction, ChangeRequest, ChangeRequestPage, ChangeRequestQuery, ChangeRequestView,
    ConfigGovernance, ConfigPath, EnvGovernance, Freeze, NewFreeze, OverrideEntry, Protection,
};
#[cfg(feature = "ssr")]
use crate::model::{ChangeComment, NewChangeRequest, Override};
use crate::Error;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

/// A config's protection, freeze, open requests and unreviewed overrides.
#[server]
pub async fn load_config_governance(path: ConfigPath) -> Result<ConfigGovernance, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::governance_view::config(&state, &actor, &path).await
}

/// Change requests, newest first, a page at a time.
#[server(input = Json)]
pub async fn list_change_requests(query: ChangeRequestQuery) -> Result<ChangeRequestPage, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::change_requests::list(&state, &actor, query).await
}

/// One request, with its blast radius now and whether it went stale.
#[server]
pub async fn load_change_request(id: i64) -> Result<ChangeRequestView, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::governance_view::request(&state, &actor, id).await
}

/// How many pending requests the signed-in person could approve.
#[server]
pub async fn requests_waiting() -> Result<i64, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::governance_view::waiting_for_me(&state, &actor).await
}

/// Asks for a widening action on a config (editor): a change request that waits for its
/// approvals.
#[server(input = Json)]
pub async fn request_change(
    path: ConfigPath,
    action: ChangeAction,
    body: serde_json::Value,
    message: Option<String>,
) -> Result<ChangeRequest, Error> {
    let (state, actor) = super::caller().await?;
    let new = NewChangeRequest {
        action,
        body,
        message,
        apply_at: None,
    };
    crate::server::ops::change_requests::create(&state, &actor, &path, new).await
}

/// What a person decides about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Reject,
    Withdraw,
}

/// Approves, rejects (a comment is needed) or withdraws (the author) a request.
#[server(input = Json)]
pub async fn decide_change_request(
    id: i64,
    decision: Decision,
    comment: Option<String>,
) -> Result<ChangeRequest, Error> {
    use crate::server::ops::change_requests as requests;
    let (state, actor) = super::caller().await?;
    let comment = ChangeComment {
        comment,
        break_glass: None,
    };
    match decision {
        Decision::Approve => requests::approve(&state, &actor, id, comment).await,
        Decision::Reject => requests::reject(&state, &actor, id, comment).await,
        Decision::Withdraw => requests::withdraw(&state, &actor, id, comment).await,
    }
}

/// Break glass (admin): applies an open request now, with a reason.
#[server(input = Json)]
pub async fn apply_change_request(id: i64, reason: String) -> Result<ChangeRequest, Error> {
    let (state, actor) = super::caller().await?;
    let body = ChangeComment {
        comment: None,
        break_glass: Some(Override { reason }),
    };
    crate::server::ops::change_requests::apply_now(&state, &actor, id, body).await
}

/// Marks a break-glass override reviewed (a releaser other than the admin who overrode).
#[server]
pub async fn review_override(id: i64) -> Result<OverrideEntry, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::change_requests::review(&state, &actor, id).await
}

/// An environment's protection and freeze windows.
#[server]
pub async fn load_env_governance(env: String) -> Result<EnvGovernance, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::governance_view::env(&state, &actor, &env).await
}

/// Sets how many approvals a widening action needs in `env` (admin; 0 lifts the protection).
#[server]
pub async fn set_protection(env: String, approvals: i64) -> Result<Protection, Error> {
    let (state, actor) = super::caller().await?;
    let protection = Protection {
        approvals,
        self_approval: false,
    };
    crate::server::ops::governance::protect(&state, &actor, &env, protection).await
}

/// Adds a freeze window to `env` (admin).
#[server(input = Json)]
pub async fn create_freeze(env: String, freeze: NewFreeze) -> Result<Freeze, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::freezes::create(&state, &actor, &env, freeze).await
}

/// Removes a freeze window from `env` (admin).
#[server]
pub async fn delete_freeze(env: String, id: i64) -> Result<Freeze, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::freezes::delete(&state, &actor, &env, id).await
}

/// Break-glass overrides nobody reviewed yet, newest first (at most 50), in the caller's limits.
#[server]
pub async fn unreviewed_overrides() -> Result<Vec<OverrideEntry>, Error> {
    let (state, actor) = super::caller().await?;
    let query = crate::model::OverrideQuery {
        reviewed: Some(false),
        env: None,
        limit: None,
    };
    crate::server::ops::change_requests::overrides(&state, &actor, query).await
}
