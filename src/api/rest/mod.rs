//! HTTP API v1 (docs/api.md): JSON in and out, errors as
//! `{"error": {"code", "message", "field"}}`. One module per resource, each with its
//! `router()`; the extractors they share are in `api::extract`.

pub mod audit;
pub mod auth;
pub mod channels;
pub mod configs;
pub mod environments;
pub mod freezes;
pub mod governance;
pub mod lanes;
pub mod namespaces;
pub mod plans;
pub mod probes;
pub mod resolve;
pub mod templates;
pub mod tokens;
pub mod triggers;
pub mod users;

use crate::server::AppState;
use crate::Error;
use axum::Router;

/// Where a namespace's configs in an environment are; a config's own routes are under
/// `{CONFIGS}/{key}`.
pub(crate) const CONFIGS: &str = "/namespaces/{ns}/envs/{env}/configs";

/// Every route of the API (under `/api/v1`), but the watch stream's.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(auth::router())
        .merge(tokens::router())
        .merge(users::router())
        .merge(environments::router())
        .merge(governance::router())
        .merge(freezes::router())
        .merge(audit::router())
        .merge(namespaces::router())
        .merge(configs::router())
        .merge(resolve::router())
        .merge(lanes::router())
        .merge(plans::router())
        .merge(templates::router())
        .merge(probes::router())
        .merge(channels::router())
        .merge(triggers::router())
        .fallback(|| async { Error::not_found("No such API route; see docs/api.md.") })
}
