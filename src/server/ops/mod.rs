//! The operations behind both the REST API and the dashboard's server
//! functions: each authorizes its caller, validates, and writes the change and
//! its audit entry in one transaction.

pub mod audit;
pub mod auth;
pub mod blast;
pub mod change_requests;
pub mod channels;
pub mod configs;
pub mod content;
pub mod environments;
pub mod freezes;
pub mod governance;
pub mod governance_view;
pub mod history;
pub mod instances;
pub mod lane_changes;
pub mod lanes;
pub mod lookups;
pub mod namespaces;
pub mod plans;
pub mod probes;
pub mod readings;
pub mod rollout;
pub mod setup;
pub mod templates;
pub mod tokens;
pub mod triggers;
pub mod users;

use crate::{Error, Result};

/// Names of users, environments, namespaces and tokens: 1–63 characters of
/// `[A-Za-z0-9._-]`, starting with a letter or digit.
pub fn check_name(field: &str, value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("{field} {} is not valid: use 1–63 letters, digits, '.', '_' or '-', starting with a letter or digit.", crate::error::quoted(value)),
        ))
    }
}

/// Maps a unique-constraint violation to 409 with `message`.
pub fn conflict_on_unique(e: sqlx::Error, message: impl Into<String>) -> Error {
    match &e {
        _ if crate::server::db::is_unique_violation(&e) => Error::conflict(message),
        // Unreachable database (503), a NUL the database cannot store (400), else 500.
        _ => Error::from(e),
    }
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn names() {
        assert!(check_name("name", "order-service").is_ok());
        assert!(check_name("name", "prod").is_ok());
        assert!(check_name("name", "").is_err());
        assert!(check_name("name", "-x").is_err());
        assert!(check_name("name", "a b").is_err());
        assert!(check_name("name", &"a".repeat(64)).is_err());
    }
}
