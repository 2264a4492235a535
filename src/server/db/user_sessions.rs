//! Which browser sessions each user holds (`user_sessions`, beside the session store's own
//! table): disabling a user or changing their role or environment ends every one of them in
//! the same transaction, and a user holds at most [`MAX_PER_USER`] (signing in once more ends
//! the oldest).

use super::{Engine, Tx};
use sqlx::Result;

/// Sessions one user holds at once.
pub const MAX_PER_USER: usize = 10;

/// The session store's table (created by the store at start, in the same database).
fn store_table(tx: &Tx<'_>) -> &'static str {
    match Engine::of_conn(tx) {
        Engine::Sqlite => "tower_sessions",
        Engine::Postgres => "tower_sessions.session",
    }
}

/// Records that `session_id` signs in `user_id`, and ends the user's oldest sessions past
/// [`MAX_PER_USER`]: how many it ended.
pub async fn register(tx: &mut Tx<'_>, session_id: &str, user_id: i64) -> Result<usize> {
    sqlx::query("INSERT INTO user_sessions (session_id, user_id) VALUES ($1, $2)")
        .bind(session_id)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    let held: Vec<String> = sqlx::query_scalar(
        "SELECT session_id FROM user_sessions WHERE user_id = $1 ORDER BY id DESC",
    )
    .bind(user_id)
    .fetch_all(&mut **tx)
    .await?;
    let surplus = held.get(MAX_PER_USER..).unwrap_or_default();
    for old in surplus {
        end(tx, old).await?;
    }
    Ok(surplus.len())
}

/// Ends every session of `user_id`: how many there were.
pub async fn end_all(tx: &mut Tx<'_>, user_id: i64) -> Result<u64> {
    let table = store_table(tx);
    sqlx::query(&format!(
        "DELETE FROM {table} WHERE id IN (SELECT session_id FROM user_sessions WHERE user_id = $1)"
    ))
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    Ok(sqlx::query("DELETE FROM user_sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?
        .rows_affected())
}

/// Ends one session (its record in the store too).
pub async fn end(tx: &mut Tx<'_>, session_id: &str) -> Result<()> {
    let table = store_table(tx);
    sqlx::query(&format!("DELETE FROM {table} WHERE id = $1"))
        .bind(session_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM user_sessions WHERE session_id = $1")
        .bind(session_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
