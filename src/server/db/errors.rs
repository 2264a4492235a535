//! What a database error means to the caller: the database cannot be reached (503), a
//! text value it cannot store (400), or a bug (500). The API error's `From<sqlx::Error>`
//! lives here, so `crate::error` knows nothing of the database.

use crate::{Error, ErrorCode};

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if is_unreachable(&e) {
            Error::unavailable(e)
        } else if is_unstorable_text(&e) {
            // What the API refuses up front (`api::nul`) but a server function let by.
            Error::new(
                ErrorCode::Invalid,
                "A text value has a NUL character (\\u0000), which the database cannot store; remove it.",
            )
        } else {
            Error::internal(e)
        }
    }
}

/// Whether `e` says the database cannot be reached (rather than that the query is
/// wrong): no connection within the pool's wait, a broken connection, or PostgreSQL
/// shutting down or refusing connections. Answered 503, not 500.
fn is_unreachable(e: &sqlx::Error) -> bool {
    use sqlx::Error as E;
    match e {
        E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::Tls(_) | E::WorkerCrashed => true,
        // SQLSTATE class 08 (connection exception), 57P01–57P03 (shutting down,
        // crash shutdown, cannot connect now).
        E::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

/// Whether PostgreSQL refused a text value it cannot store: a NUL character
/// (SQLSTATE 22021, character_not_in_repertoire; 22P05, untranslatable_character).
fn is_unstorable_text(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().is_some_and(|c| matches!(&*c, "22021" | "22P05")))
}

/// Whether `e` is a unique-constraint violation (the caller answers 409).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}
