//! Instances: opening their watch streams, their reports, and the list of
//! instances with what they run.

use crate::domain::lane::parse_labels;
use crate::model::{EnvPath, InstancePage, InstancesQuery, Report, Role, Scope};
use crate::server::auth::Actor;
use crate::server::db;
use crate::server::hub::{Mode, Owner, Subscription, WatchRequest};
use crate::server::outlet::Outlet;
use crate::server::Core;
use crate::{Error, Result};
use std::sync::Arc;

use super::configs::check_key;
use super::lookups::{env_ids, MAX_MESSAGE_CHARS};

/// The query of `GET /api/v1/watch`, as sent.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct WatchQuery {
    pub namespace: String,
    pub env: String,
    #[serde(default)]
    pub keys: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub labels: Option<String>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub last_event_id: Option<String>,
}

const MAX_CLIENT_ID_LEN: usize = 253;

/// Client ids: 1–253 characters of `[A-Za-z0-9._/-]` (the label value
/// alphabet, since `client_id` is part of the context selectors see), e.g. a
/// pod name.
pub fn check_client_id(client_id: &str) -> Result<()> {
    let ok = !client_id.is_empty()
        && client_id.len() <= MAX_CLIENT_ID_LEN
        && client_id
            .chars()
            .all(crate::domain::selector::is_token_char);
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "client_id",
            format!(
                "client_id {} is not valid: use 1–{MAX_CLIENT_ID_LEN} letters, digits, \
                 '.', '_', '/' or '-' (e.g. the pod name).",
                crate::error::quoted(client_id)
            ),
        ))
    }
}

/// Opens a watch stream. `last_event_id` is the `Last-Event-ID` header, which
/// wins over the query parameter of the same name.
/// `outlet`: the socket of a lean connection, which the hub then writes directly.
#[tracing::instrument(skip_all)]
pub async fn watch(
    state: &Core,
    actor: &Actor,
    query: WatchQuery,
    last_event_id: Option<&str>,
    outlet: Option<Arc<Outlet>>,
) -> Result<Subscription> {
    actor.require(Role::Subscriber, Scope::of(&query.namespace, &query.env))?;
    let client_id = query.client_id.unwrap_or_default();
    if client_id.is_empty() {
        return Err(Error::invalid(
            "client_id",
            "client_id is required: name this instance, e.g. with its pod name.",
        ));
    }
    check_client_id(&client_id)?;
    let mut labels = parse_labels(query.labels.as_deref().unwrap_or(""))
        .map_err(|m| Error::invalid("labels", m))?;
    // The query's client_id is the instance's identity; a label cannot override it.
    labels.remove("client_id");
    let keys = match query.keys.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(keys) => {
            let mut list: Vec<String> = keys.split(',').map(|k| k.trim().to_string()).collect();
            for key in &list {
                check_key(key).map_err(|e| e.on_field("keys"))?;
            }
            list.sort();
            list.dedup();
            Some(list)
        }
    };
    let mode = match query.mode.as_deref() {
        None | Some("") | Some("config") => Mode::Config,
        Some("rules") => Mode::Rules,
        Some(other) => {
            return Err(Error::invalid(
                "mode",
                format!(
                    "mode {} is not known; use config (the default) or rules.",
                    crate::error::quoted(other)
                ),
            ))
        }
    };
    let last_event_id = match last_event_id.or(query.last_event_id.as_deref()) {
        None | Some("") => None,
        Some(id) => Some(id.trim().parse::<i64>().map_err(|_| {
            Error::invalid(
                "last_event_id",
                format!(
                    "Last-Event-ID {} is not a release event number.",
                    crate::error::quoted(id)
                ),
            )
        })?),
    };
    env_ids(&state.db, &EnvPath::new(&query.namespace, &query.env)).await?;
    let subscription = state
        .hub
        .subscribe(WatchRequest {
            namespace: query.namespace,
            env: query.env,
            keys,
            client_id,
            labels,
            mode,
            last_event_id,
            outlet,
            owner: Owner::of(actor),
        })
        .await?;
    // Dropping the subscription ends the stream it began.
    still_authorized(state, actor).await?;
    Ok(subscription)
}

/// 401 when the caller's token was revoked, or its user disabled or changed,
/// since the request was authenticated. Called once a stream is registered
/// (where a revocation's close reaches it), this closes the gap in between.
#[tracing::instrument(skip_all)]
pub async fn still_authorized(state: &Core, actor: &Actor) -> Result<()> {
    let current = match Owner::of(actor) {
        None => true,
        Some(owner @ Owner::Token(_)) => !state.hub.is_closed(owner),
        Some(Owner::User(id)) => db::users::find(&state.db, id)
            .await?
            .is_some_and(|user| !user.disabled && user.role == actor.role && user.env == actor.env),
    };
    if current {
        Ok(())
    } else {
        Err(Error::unauthorized())
    }
}

/// Records what an instance did with a version it was served.
#[tracing::instrument(skip_all)]
pub async fn report(state: &Core, actor: &Actor, report: Report) -> Result<()> {
    let at = EnvPath::new(&report.namespace, &report.env);
    actor.require(Role::Subscriber, at.scope())?;
    check_client_id(&report.client_id)?;
    check_key(&report.key)?;
    if report.version < 1 {
        return Err(Error::invalid(
            "version",
            format!("version {} is not a version number.", report.version),
        ));
    }
    if let Some(message) = &report.message {
        if message.chars().count() > MAX_MESSAGE_CHARS {
            return Err(Error::invalid(
                "message",
                format!("The message has more than {MAX_MESSAGE_CHARS} characters; shorten it."),
            ));
        }
    }
    env_ids(&state.db, &at).await?;
    // Only a real instance reports: one this caller watches with (or did
    // within the retention period), about a config that exists.
    let watching =
        Owner::of(actor).is_some_and(|owner| state.hub.watches(owner, &at, &report.client_id));
    if !watching {
        return Err(Error::conflict(format!(
            "No instance {} watches {}/{} with these credentials: open its watch stream \
             first, with the same token and client_id, then report.",
            crate::error::quoted(&report.client_id),
            report.namespace,
            report.env
        ))
        .on_field("client_id"));
    }
    if db::configs::find(&state.db, &at.config(&report.key))
        .await?
        .is_none()
    {
        return Err(Error::not_found(format!(
            "There is no config {} in {}/{} to report about.",
            crate::error::quoted(&report.key),
            report.namespace,
            report.env
        )));
    }
    state.instances.report(report);
    Ok(())
}

/// One page of the connected instances and the disconnected ones within the retention
/// period, by client id.
#[tracing::instrument(skip_all)]
pub async fn instances(
    state: &Core,
    actor: &Actor,
    at: &EnvPath,
    query: &InstancesQuery,
) -> Result<InstancePage> {
    actor.require(Role::Viewer, at.scope())?;
    let connected = match query.state.as_deref() {
        None | Some("") => None,
        Some("connected") => Some(true),
        Some("disconnected") => Some(false),
        Some(other) => {
            return Err(Error::invalid(
                "state",
                format!("state {other:?} is not known; use connected or disconnected."),
            ))
        }
    };
    if let Some(after) = query.after.as_deref().filter(|a| !a.is_empty()) {
        check_client_id(after).map_err(|e| e.on_field("after"))?;
    }
    if let Some(key) = query.key.as_deref() {
        check_key(key)?;
    }
    env_ids(&state.db, at).await?;
    state
        .instances
        .page(&at.namespace, &at.env, query, connected)
        .await
}
