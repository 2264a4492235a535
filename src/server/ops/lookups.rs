//! Looking up what an operation acts on — a config, one of its versions, a namespace and
//! environment — with the 404 that names what is missing, and checking a change's message.
//! A leaf the config, lane and plan operations share.

use crate::model::{ConfigPath, Version};
use crate::server::db::{self, configs::StoredConfig};
use crate::{Error, Result};

/// The longest message a change may carry.
pub const MAX_MESSAGE_CHARS: usize = 2000;

/// A change's message, trimmed; 400 past [`MAX_MESSAGE_CHARS`].
pub fn message_of(message: Option<String>) -> Result<String> {
    let message = message.unwrap_or_default().trim().to_string();
    if message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(Error::invalid(
            "message",
            format!("The message has more than {MAX_MESSAGE_CHARS} characters; shorten it."),
        ));
    }
    Ok(message)
}

/// The ids of an existing namespace and environment, or 404 naming the missing one.
pub async fn scope(db: impl db::Executor<'_>, namespace: &str, env: &str) -> Result<(i64, i64)> {
    match db::configs::scope_ids(db, namespace, env).await? {
        (Some(ns), Some(env)) => Ok((ns, env)),
        (None, _) => Err(Error::not_found(format!(
            "There is no namespace named {}.",
            crate::error::quoted(namespace)
        ))),
        (_, None) => Err(Error::not_found(format!(
            "There is no environment named {}.",
            crate::error::quoted(env)
        ))),
    }
}

/// An existing config, or 404 naming what is missing.
pub async fn find(
    conn: &mut db::Conn,
    namespace: &str,
    env: &str,
    key: &str,
) -> Result<StoredConfig> {
    if let Some(found) = db::configs::find(&mut *conn, namespace, env, key).await? {
        return Ok(found);
    }
    scope(&mut *conn, namespace, env).await?;
    Err(Error::not_found(format!(
        "There is no config {} in namespace {namespace:?}, environment {env:?}.",
        crate::error::quoted(key)
    )))
}

pub async fn find_version(
    db: impl db::Executor<'_>,
    config: &StoredConfig,
    version: i64,
) -> Result<Version> {
    db::configs::version(db, config.id, version)
        .await?
        .ok_or_else(|| {
            let c = &config.config;
            Error::not_found(format!(
                "{} has no version {version}; its versions are 1 to {}.",
                ConfigPath::new(&c.namespace, &c.env, &c.key),
                c.latest_version
            ))
        })
}
