//! All SQL lives under this module, one file per table group, so a second
//! database backend touches only here.

pub mod audit;
mod audit_pg;
mod audit_rows;
pub mod change_requests;
pub mod channels;
mod columns;
pub mod configs;
pub mod environments;
mod errors;
pub mod freezes;
pub mod instances;
pub mod lanes;
pub mod logins;
pub mod namespaces;
pub mod nodes;
pub mod notify;
pub mod plans;
pub mod releases;
pub mod templates;
pub mod tokens;
pub mod triggers;
pub mod user_sessions;
pub mod users;
pub mod watch;

pub use errors::is_unique_violation;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::time::Duration;

// Everything outside `db` speaks of `db::Pool`, `db::Conn`, `db::Tx`, `db::Executor` and
// `db::SessionStore`; the engine behind them is chosen by the database URL at start
// (sqlx's `Any` driver: SQLite or PostgreSQL), and the core asks [`Engine::of`] once, when
// it starts, to decide what differs for the rest of the server (`server::node::Nodes`).
// Queries are written once, in SQL both engines accept (`IS [NOT] DISTINCT FROM`, no
// engine's own functions). Placeholders:
// - Queries of fixed text, and those built with [`Sql`], write `$1`, `$2`, … on both
//   engines: PostgreSQL numbers its parameters so, and on SQLite a parameter named `$n`
//   is bound to the n-th value (sqlx reads the number from the name), so a `$n` may be
//   repeated or appear out of order on both.
// - The batched instance writes (`instances.rs`) write `?` on SQLite and `$n` on
//   PostgreSQL: SQLite looks each `$n` name up among the ones before it, which made a
//   statement of thousands of them slow to prepare.
// What else differs (the write lock, the read snapshot, the audit search, the cluster
// notifier, trigger errors) is chosen here by [`Engine`], and each engine has its own
// migrations (`migrations/sqlite`, `migrations/postgres`).
type Db = sqlx::Any;
/// The connection pool.
pub type Pool = sqlx::Pool<Db>;
/// One connection (inside a transaction: `&mut *tx`).
pub type Conn = <Db as sqlx::Database>::Connection;
pub type Tx<'a> = sqlx::Transaction<'a, Db>;
/// Anything a query runs on: `&Pool`, `&mut Conn`.
pub trait Executor<'c>: sqlx::Executor<'c, Database = Db> {}
impl<'c, T: sqlx::Executor<'c, Database = Db>> Executor<'c> for T {}

/// The database engine behind a pool or connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    /// The engine a database URL names, or a sentence saying the URL is not one graycast uses.
    pub fn of_url(url: &str) -> anyhow::Result<Self> {
        // sqlx would take `mysql://host/db` as a relative SQLite file path and create it.
        match url.split_once(':').map(|(scheme, _)| scheme) {
            Some("sqlite") => Ok(Self::Sqlite),
            Some("postgres" | "postgresql") => Ok(Self::Postgres),
            _ => anyhow::bail!(
                "unsupported database URL {:?}: graycast stores its data in SQLite \
                 (sqlite://PATH) or PostgreSQL 15+ (postgres://USER@HOST:PORT/DATABASE)",
                without_password(url)
            ),
        }
    }

    /// The engine of `pool`.
    pub fn of(pool: &Pool) -> Self {
        Self::of_scheme(pool.connect_options().database_url.scheme())
    }

    /// The engine of `conn`.
    pub fn of_conn(conn: &Conn) -> Self {
        match conn.backend_name() {
            "PostgreSQL" => Self::Postgres,
            _ => Self::Sqlite,
        }
    }

    fn of_scheme(scheme: &str) -> Self {
        if scheme.starts_with("postgres") {
            Self::Postgres
        } else {
            Self::Sqlite
        }
    }
}

/// Where the dashboard's sessions are kept: the same database, through the session
/// store of its engine (shared by every node on PostgreSQL).
#[derive(Debug, Clone)]
pub enum SessionStore {
    Sqlite(tower_sessions_sqlx_store::SqliteStore),
    Postgres(tower_sessions_sqlx_store::PostgresStore),
}

/// The session store on `pool`'s database, its table created if missing.
pub async fn session_store(pool: &Pool) -> sqlx::Result<SessionStore> {
    let url = pool.connect_options().database_url.to_string();
    Ok(match Engine::of(pool) {
        Engine::Sqlite => {
            let pool = SqlitePoolOptions::new()
                .max_connections(2)
                .connect_with(sqlite_options(&url)?)
                .await?;
            let store = tower_sessions_sqlx_store::SqliteStore::new(pool);
            store.migrate().await?;
            SessionStore::Sqlite(store)
        }
        Engine::Postgres => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(4)
                .connect(&url)
                .await?;
            let store = tower_sessions_sqlx_store::PostgresStore::new(pool);
            store.migrate().await?;
            SessionStore::Postgres(store)
        }
    })
}

mod sessions {
    use super::SessionStore;
    use tower_sessions::session::{Id, Record};
    use tower_sessions::session_store::{self, ExpiredDeletion};

    macro_rules! each {
        ($self:ident, $store:ident => $e:expr) => {
            match $self {
                SessionStore::Sqlite($store) => $e,
                SessionStore::Postgres($store) => $e,
            }
        };
    }

    #[async_trait::async_trait]
    impl session_store::SessionStore for SessionStore {
        async fn create(&self, record: &mut Record) -> session_store::Result<()> {
            each!(self, s => s.create(record).await)
        }
        async fn save(&self, record: &Record) -> session_store::Result<()> {
            each!(self, s => s.save(record).await)
        }
        async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
            each!(self, s => s.load(id).await)
        }
        async fn delete(&self, id: &Id) -> session_store::Result<()> {
            each!(self, s => s.delete(id).await)
        }
    }

    #[async_trait::async_trait]
    impl ExpiredDeletion for SessionStore {
        async fn delete_expired(&self) -> session_store::Result<()> {
            each!(self, s => s.delete_expired().await)
        }
    }
}

/// The key of the advisory lock every PostgreSQL write transaction takes first ("gcw").
const WRITE_LOCK: i64 = 0x67_63_77;

/// A write transaction. Writers are serialized, on both engines: reading the current
/// state and then changing it cannot be interleaved with another writer, and a writer
/// waits for the one before it instead of failing. On SQLite `BEGIN IMMEDIATE` takes the
/// database's write lock; on PostgreSQL every write transaction first takes one
/// transaction-scoped advisory lock, which also makes release-event ids commit-ordered
/// across nodes: an id is drawn under the lock, and the lock is released only after the
/// commit is visible, so no reader ever sees id n+1 before id n.
pub async fn begin_write(pool: &Pool) -> sqlx::Result<Tx<'static>> {
    match Engine::of(pool) {
        Engine::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
        Engine::Postgres => {
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(WRITE_LOCK)
                .execute(&mut *tx)
                .await?;
            Ok(tx)
        }
    }
}

/// A read transaction that sees one snapshot from its first query to its end, on both
/// engines (SQLite's deferred transaction in WAL mode does; PostgreSQL's default, read
/// committed, would give each statement its own): a release sequence read in it matches
/// the configs read after it.
pub async fn begin_read(pool: &Pool) -> sqlx::Result<Tx<'static>> {
    match Engine::of(pool) {
        Engine::Sqlite => pool.begin().await,
        Engine::Postgres => {
            pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await
        }
    }
}

/// SQLite's connection options for `url`: the file created if missing, WAL, foreign keys.
fn sqlite_options(url: &str) -> sqlx::Result<SqliteConnectOptions> {
    Ok(SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10)))
}

/// What each SQLite connection of the pool sets (WAL is the file's, set when it is opened
/// first in [`connect`]; foreign keys are sqlx's default).
async fn sqlite_pragmas(conn: &mut Conn) -> sqlx::Result<()> {
    use sqlx::Executor as _;
    conn.execute(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
    )
    .await?;
    Ok(())
}

/// Opens the database `url` names (SQLite: creating the file and its directory if
/// needed, in WAL mode) and runs its engine's migrations.
/// A start-up step: its error (a process error) names the URL and what failed.
pub async fn connect(url: &str) -> anyhow::Result<Pool> {
    use anyhow::Context;
    sqlx::any::install_default_drivers();
    let engine = Engine::of_url(url)?;
    // Messages name the database without its password.
    let shown = without_password(url);
    let options: AnyConnectOptions = match engine {
        Engine::Sqlite => {
            let options =
                sqlite_options(url).with_context(|| format!("invalid database URL {shown:?}"))?;
            let filename = options.get_filename();
            if let Some(dir) = filename.parent() {
                if !dir.as_os_str().is_empty() && filename.as_os_str() != ":memory:" {
                    std::fs::create_dir_all(dir).with_context(|| {
                        format!(
                            "could not create the directory {} for the database {shown:?}",
                            dir.display()
                        )
                    })?;
                }
            }
            // The `Any` driver opens SQLite from a URL, which cannot carry every option:
            // one connection with all of them creates the file and puts it in WAL mode
            // (a lasting property of the file), and the per-connection pragmas are set on
            // each connection of the pool below.
            {
                use sqlx::Connection as _;
                sqlx::SqliteConnection::connect_with(&options)
                    .await
                    .map_err(flat)
                    .with_context(|| format!("could not open the database {shown:?}"))?
                    .close()
                    .await
                    .map_err(flat)?;
            }
            let create = if url.contains("mode=") {
                ""
            } else if url.contains('?') {
                "&mode=rwc"
            } else {
                "?mode=rwc"
            };
            AnyConnectOptions::from_str(&format!("{url}{create}"))
        }
        Engine::Postgres => AnyConnectOptions::from_str(url),
    }
    .with_context(|| format!("invalid database URL {shown:?}"))?;
    let pool = AnyPoolOptions::new()
        .max_connections(match engine {
            Engine::Sqlite => 8,
            Engine::Postgres => 16,
        })
        // A write waits this long for a connection before it is answered 503 (a stopped
        // PostgreSQL); SQLite's writers wait for each other within its busy timeout.
        .acquire_timeout(match engine {
            Engine::Sqlite => Duration::from_secs(30),
            Engine::Postgres => Duration::from_secs(5),
        })
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if engine == Engine::Sqlite {
                    sqlite_pragmas(conn).await?;
                }
                Ok(())
            })
        })
        // A connection is handed out only outside a transaction. One whose transaction was
        // left behind (its rollback failed after its request was dropped mid-write) would
        // refuse every later `BEGIN IMMEDIATE` ("begin_with at non-zero transaction depth")
        // until a restart: it is closed instead, and another one opened.
        .before_acquire(|conn, _| {
            Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) })
        })
        .connect_with(options)
        .await
        .map_err(flat)
        .with_context(|| format!("could not open the database {shown:?}"))?;
    let migrated = match engine {
        Engine::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await,
        Engine::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await,
    };
    migrated
        .map_err(flat)
        .with_context(|| format!("could not migrate the database {shown:?}"))?;
    Ok(pool)
}

/// `url` with the password of its user info (`scheme://user:password@host…`) replaced by
/// `***`, for messages and logs.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => format!("{scheme}://{}:***{}", &rest[..colon], &rest[at..]),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// sqlx's messages already include their source: keep them, not their chain too.
fn flat(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// A query put together piece by piece, its values bound as `$1`, `$2`, … in the order
/// they are pushed (the placeholders both engines accept; sqlx's `QueryBuilder` writes
/// `?` for the `Any` driver, which PostgreSQL rejects).
pub struct Sql {
    text: String,
    args: sqlx::any::AnyArguments<'static>,
    count: usize,
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Self {
            text: text.to_string(),
            args: Default::default(),
            count: 0,
        }
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder for `value`.
    pub fn bind<T>(&mut self, value: T) -> &mut Self
    where
        T: 'static + Send + sqlx::Encode<'static, Db> + sqlx::Type<Db>,
    {
        use sqlx::Arguments;
        use std::fmt::Write;
        self.count += 1;
        let _ = write!(self.text, "${}", self.count);
        // An encoding error surfaces when the query runs.
        let _ = self.args.add(value);
        self
    }

    /// Runs the statement; returns the rows it changed.
    pub async fn execute<'e, E: Executor<'e>>(self, db: E) -> sqlx::Result<u64> {
        Ok(sqlx::query_with(&self.text, self.args)
            .execute(db)
            .await?
            .rows_affected())
    }

    /// Runs the query, its rows read as `T`.
    pub async fn fetch_all<'e, T, E>(self, db: E) -> sqlx::Result<Vec<T>>
    where
        T: Send + Unpin + for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
        E: Executor<'e>,
    {
        sqlx::query_as_with(&self.text, self.args)
            .fetch_all(db)
            .await
    }
}

/// A connection left inside a transaction is never handed out again: the next write gets a
/// fresh connection instead of failing.
#[cfg(test)]
#[tokio::test]
async fn a_connection_left_in_a_transaction_is_not_handed_out() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let pool = connect(&url).await.unwrap();
    // Leave a transaction open on a pooled connection (as a failed rollback does), and hand
    // the connection back: it is the only idle one, so the next acquire would draw it.
    let mut conn = pool.acquire().await.unwrap();
    while pool.num_idle() > 0 {
        drop(pool.acquire().await.unwrap().detach());
    }
    std::mem::forget(sqlx::Connection::begin(&mut *conn).await.unwrap());
    drop(conn);
    // The pool takes it back in a task of its own: wait until it is idle again.
    for _ in 0..10_000 {
        if pool.num_idle() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(pool.num_idle(), 1, "the connection went back to the pool");
    let mut tx = begin_write(&pool)
        .await
        .expect("a write begins on a sound connection");
    sqlx::query("CREATE TABLE after_leak (x INTEGER)")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

#[cfg(test)]
#[test]
fn passwords_stay_out_of_messages() {
    assert_eq!(
        without_password("postgres://gc:s3cr@t@db:5432/gc?sslmode=require"),
        "postgres://gc:***@db:5432/gc?sslmode=require"
    );
    assert_eq!(
        without_password("postgres://gc@db/gc"),
        "postgres://gc@db/gc"
    );
    assert_eq!(without_password("sqlite://data/x.db"), "sqlite://data/x.db");
}

/// A fresh lane salt: 16 lower-case hex digits.
pub fn random_salt() -> String {
    hex::encode(rand::random::<[u8; 8]>())
}
