//! Cross-node push on PostgreSQL (docs/nodes.md#notifications-and-catching-up): a release event's
//! transaction notifies its id, delivered to every node's listener when it commits. A
//! notification can be lost while a listener reconnects, so the push hub also reads
//! `id > last` every second whatever arrives; on SQLite (one node) there is nothing here.

use super::{Engine, Pool, Tx};
use sqlx::Result;
use std::time::Duration;

/// The channel release-event ids are notified on.
const CHANNEL: &str = "graycast_release_events";
/// The channel of owners whose watch streams must end (`token:ID`, `user:ID`): a token
/// revoked or a user changed through one node is refused and disconnected on every node.
const CLOSED: &str = "graycast_closed_owners";

/// What another node (or this one) notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notified {
    /// A release event committed.
    ReleaseEvent(i64),
    /// A token was revoked.
    TokenClosed(i64),
    /// A user was disabled or its role or limits changed.
    UserClosed(i64),
    /// The listener lost its connection and listens again: whatever was notified meanwhile
    /// is lost, so what was learnt from notifications alone (which cached tokens are still
    /// valid) must be read afresh.
    Missed,
}

/// Notifies `id` to every node when `tx` commits (PostgreSQL; nothing on SQLite).
pub async fn release_event(tx: &mut Tx<'_>, id: i64) -> Result<()> {
    if Engine::of_conn(tx) == Engine::Postgres {
        sqlx::query("SELECT 1 FROM (SELECT pg_notify($1, $2)) AS sent")
            .bind(CHANNEL)
            .bind(id.to_string())
            .fetch_one(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Notifies every node, when `tx` commits, that the streams of token or user `id`
/// end (PostgreSQL; nothing on SQLite, where this node is the only one).
pub async fn owner_closed(tx: &mut Tx<'_>, token: bool, id: i64) -> Result<()> {
    if Engine::of_conn(tx) == Engine::Postgres {
        let payload = format!("{}:{id}", if token { "token" } else { "user" });
        sqlx::query("SELECT 1 FROM (SELECT pg_notify($1, $2)) AS sent")
            .bind(CLOSED)
            .bind(payload)
            .fetch_one(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Calls `seen` with everything notified from now on, by any node, for as long as `seen`
/// returns true; reconnects (after a second) when the connection drops. Nothing on SQLite.
pub fn follow(pool: &Pool, mut seen: impl FnMut(Notified) -> bool + Send + 'static) {
    if Engine::of(pool) != Engine::Postgres {
        return;
    }
    let url = pool.connect_options().database_url.to_string();
    tokio::spawn(async move {
        let mut resumed = false;
        loop {
            match listen(&url, &mut seen, resumed).await {
                Ok(true) => return,
                Ok(false) => {
                    tracing::warn!(
                        "release-event notifications lost their connection; reconnecting"
                    )
                }
                Err(e) => {
                    tracing::warn!(error = %e, "release-event notifications stopped; reconnecting")
                }
            }
            // Not at once: a database restarting refuses connections for a while.
            tokio::time::sleep(Duration::from_secs(1)).await;
            resumed = true;
        }
    });
}

/// Listens until `seen` says stop (`Ok(true)`) or the connection is lost (`Ok(false)`, or
/// an error). Listening again after a loss (`resumed`), it first tells `seen` that
/// notifications were missed — once LISTEN is in force, so nothing committed after that
/// goes unheard.
async fn listen(url: &str, seen: &mut impl FnMut(Notified) -> bool, resumed: bool) -> Result<bool> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen_all([CHANNEL, CLOSED]).await?;
    if resumed && !seen(Notified::Missed) {
        return Ok(true);
    }
    loop {
        // `try_recv` reports a lost connection (then `None`) instead of reconnecting
        // silently: a fresh listener then says what was missed.
        match listener.try_recv().await? {
            Some(notification) => {
                let payload = notification.payload();
                let what = match notification.channel() {
                    CHANNEL => payload.parse().ok().map(Notified::ReleaseEvent),
                    _ => match payload.split_once(':') {
                        Some(("token", id)) => id.parse().ok().map(Notified::TokenClosed),
                        Some(("user", id)) => id.parse().ok().map(Notified::UserClosed),
                        _ => None,
                    },
                };
                if let Some(what) = what {
                    if !seen(what) {
                        return Ok(true);
                    }
                }
            }
            None => return Ok(false),
        }
    }
}
