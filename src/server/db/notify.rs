//! Cross-node push on PostgreSQL (the specification, section 8): a release event's
//! transaction notifies its id, delivered to every node's listener when it commits. A
//! notification can be lost while a listener reconnects, so the push hub also reads
//! `id > last` every second whatever arrives; on SQLite (one node) there is nothing here.

use super::{Engine, Pool, Tx};
use sqlx::Result;
use std::time::Duration;

/// The channel release-event ids are notified on.
const CHANNEL: &str = "graycast_release_events";

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

/// Calls `seen` with every release-event id notified from now on, by any node, for as
/// long as `seen` returns true; reconnects (after a second) when the connection drops.
/// Nothing on SQLite.
pub fn follow_release_events(pool: &Pool, mut seen: impl FnMut(i64) -> bool + Send + 'static) {
    if Engine::of(pool) != Engine::Postgres {
        return;
    }
    let url = pool.connect_options().database_url.to_string();
    tokio::spawn(async move {
        loop {
            match listen(&url, &mut seen).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "release-event notifications stopped; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
}

async fn listen(url: &str, seen: &mut impl FnMut(i64) -> bool) -> Result<()> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    loop {
        // `try_recv` reports a lost connection (then `None`) instead of reconnecting
        // silently, so the log says when notifications may have been missed.
        match listener.try_recv().await? {
            Some(notification) => {
                if let Ok(id) = notification.payload().parse::<i64>() {
                    if !seen(id) {
                        return Ok(());
                    }
                }
            }
            None => {
                tracing::warn!("release-event notifications reconnected; the next read catches up")
            }
        }
    }
}
