use super::Tx;
use crate::model::Timestamp;
use crate::model::{Role, User};
use sqlx::FromRow;
use sqlx::Result;

#[derive(FromRow)]
struct UserRow {
    id: i64,
    username: String,
    role: Role,
    env: Option<String>,
    #[sqlx(try_from = "super::columns::Flag")]
    disabled: bool,
    created_at: Timestamp,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            username: r.username,
            role: r.role,
            env: r.env,
            disabled: r.disabled,
            created_at: r.created_at,
        }
    }
}

/// A user with the password hash, for sign-in only; deliberately not serializable.
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

const COLUMNS: &str = "id, username, role, env, disabled, created_at";

pub async fn count(pool: &super::Pool) -> Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(pool)
        .await
}

pub async fn insert(
    tx: &mut Tx<'_>,
    username: &str,
    password_hash: &str,
    role: Role,
    env: Option<&str>,
) -> Result<i64> {
    let id = sqlx::query_scalar(
        "INSERT INTO users (username, password_hash, role, env) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(username)
    .bind(password_hash)
    .bind(role.as_str())
    .bind(env)
    .fetch_one(&mut **tx)
    .await?;
    Ok(id)
}

pub async fn find(db: impl super::Executor<'_>, id: i64) -> Result<Option<User>> {
    let row: Option<UserRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(db)
            .await?;
    Ok(row.map(User::from))
}

/// The user `id` if `session_id` is one of theirs (see [`super::user_sessions`]): a session that
/// was ended (the user disabled, their role or environment changed, one sign-in too many)
/// signs in nobody, even if the store still had its record.
pub async fn find_for_session(
    db: impl super::Executor<'_>,
    id: i64,
    session_id: &str,
) -> Result<Option<User>> {
    let row: Option<UserRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM users WHERE id = $1 AND EXISTS \
         (SELECT 1 FROM user_sessions s WHERE s.session_id = $2 AND s.user_id = users.id)"
    ))
    .bind(id)
    .bind(session_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(User::from))
}

pub async fn find_by_name(db: impl super::Executor<'_>, username: &str) -> Result<Option<User>> {
    let row: Option<UserRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE username = $1"))
            .bind(username)
            .fetch_optional(db)
            .await?;
    Ok(row.map(User::from))
}

pub async fn credentials(pool: &super::Pool, username: &str) -> Result<Option<Credentials>> {
    let Some(user) = find_by_name(pool, username).await? else {
        return Ok(None);
    };
    let password_hash = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(user.id)
        .fetch_one(pool)
        .await?;
    Ok(Some(Credentials {
        user,
        password_hash,
    }))
}

pub async fn list(pool: &super::Pool) -> Result<Vec<User>> {
    let rows: Vec<UserRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM users ORDER BY username"))
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(User::from).collect())
}

pub async fn update(tx: &mut Tx<'_>, user: &User) -> Result<()> {
    sqlx::query("UPDATE users SET role = $1, env = $2, disabled = $3 WHERE id = $4")
        .bind(user.role.as_str())
        .bind(&user.env)
        .bind(i64::from(user.disabled))
        .bind(user.id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
