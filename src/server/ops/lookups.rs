//! Looking up what an operation acts on — a config, one of its versions, a namespace and
//! environment — with the 404 that names what is missing, and checking a change's message.
//! A leaf the config, lane and plan operations share.

use crate::model::{ConfigPath, EnvPath, Version};
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
pub async fn env_ids(db: impl db::Executor<'_>, at: &EnvPath) -> Result<(i64, i64)> {
    match db::configs::env_ids(db, at).await? {
        (Some(ns), Some(env)) => Ok((ns, env)),
        (None, _) => Err(Error::not_found(format!(
            "There is no namespace named {}.",
            crate::error::quoted(&at.namespace)
        ))),
        (_, None) => Err(Error::not_found(format!(
            "There is no environment named {}.",
            crate::error::quoted(&at.env)
        ))),
    }
}

/// An existing config, or 404 naming what is missing.
pub async fn find(conn: &mut db::Conn, path: &ConfigPath) -> Result<StoredConfig> {
    if let Some(found) = db::configs::find(&mut *conn, path).await? {
        return Ok(found);
    }
    env_ids(&mut *conn, &path.env_path()).await?;
    Err(Error::not_found(format!(
        "There is no config {} in namespace {:?}, environment {:?}.",
        crate::error::quoted(&path.key),
        path.namespace,
        path.env
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
                c.path(),
                c.latest_version
            ))
        })
}
