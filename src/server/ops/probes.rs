//! "Test query now" for a Prometheus guard: what its query gives right now, for the plan editor
//! (releaser and up, like starting a lane with the plan). Nothing is stored or audited: it
//! changes nothing, and the answer goes only to the caller.

use crate::domain::key::check_key;
use crate::domain::plan::probe::{QueryTest, QueryTestRequest};
use crate::domain::plan::{check_url, MAX_QUERY_LEN};
use crate::model::{Role, Scope};
use crate::server::auth::Actor;
use crate::server::{probe, Core};
use crate::{Error, Result};

/// At most this many "test query now" calls run at once on a server; more get 429.
pub const MAX_QUERY_TESTS: usize = 8;

/// Runs one test query: 403 outside the caller's role or limits (the namespace and environment
/// it names), 400 naming the field for a bad URL, query, namespace, environment or key, 429 when
/// [`MAX_QUERY_TESTS`] are already running. Prometheus being down or refusing the query is an
/// answer (`error`), not an error of this call.
pub async fn test_prometheus(
    state: &Core,
    actor: &Actor,
    request: QueryTestRequest,
) -> Result<QueryTest> {
    actor.require(
        Role::Releaser,
        Scope {
            namespace: request.namespace.as_deref(),
            env: request.env.as_deref(),
        },
    )?;
    check_url(&request.url).map_err(|m| Error::invalid("url", m))?;
    if request.query.trim().is_empty() {
        return Err(Error::invalid("query", "Give the guard's PromQL query."));
    }
    if request.query.len() > MAX_QUERY_LEN {
        return Err(Error::invalid(
            "query",
            format!("A query has at most {MAX_QUERY_LEN} characters."),
        ));
    }
    for (field, value) in [("namespace", &request.namespace), ("env", &request.env)] {
        if let Some(value) = value {
            super::check_name(field, value)?;
        }
    }
    if let Some(key) = &request.key {
        check_key(key).map_err(|m| Error::invalid("key", m))?;
    }
    let _running = state.query_tests.try_acquire().map_err(|_| {
        Error::retry_in(
            format!("{MAX_QUERY_TESTS} test queries are running already; try again in a moment."),
            std::time::Duration::from_secs(1),
        )
    })?;
    let query = request.substituted_query();
    Ok(probe::test_query(&state.prober, &request.url, &query).await)
}
