//! "Test query now" for a Prometheus guard (what its query gives right now) and for a compare
//! guard (both populations' samples and what the guard would conclude), for the plan editor
//! (releaser and up, like starting a lane with the plan). Nothing is stored or audited: it
//! changes nothing, and the answer goes only to the caller.

use super::lanes;
use super::lookups::find;
use crate::domain::key::check_key;
use crate::domain::plan::probe::{CompareTest, CompareTestRequest, QueryTest, QueryTestRequest};
use crate::domain::plan::{check_url, parse_guard, Guard, MAX_QUERY_LEN};
use crate::model::{ConfigPath, LaneStatus, Role, Scope};
use crate::server::auth::Actor;
use crate::server::scheduler::probes;
use crate::server::{db, probe, Core};
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
    let _running = place(state)?;
    let query = request.substituted_query();
    Ok(probe::test_query(&state.prober, &request.url, &query).await)
}

/// One of the [`MAX_QUERY_TESTS`] places, or 429.
fn place(state: &Core) -> Result<tokio::sync::SemaphorePermit<'_>> {
    state.query_tests.try_acquire().map_err(|_| {
        Error::retry_in(
            format!("{MAX_QUERY_TESTS} test queries are running already; try again in a moment."),
            std::time::Duration::from_secs(1),
        )
    })
}

/// "Test the query now" for a compare guard: both populations built as the scheduler builds
/// them ([`probes::lane_population`], [`probes::stable_population`]) — for a lane being started
/// (`draft`), the lane's side is the connected instances watching the key that its rule
/// reaches ([`lanes::preview`]) — both queries run through the prober (the outbound policy
/// applies) and read as the guard reads them, and the comparison and sentence it would record.
///
/// 403 outside the caller's role or limits; 400 naming the field for a guard that is not a
/// valid compare guard, a bad draft, or neither or both of `lane` and `draft`; 404 for an
/// unknown config or lane; 409 for a closed lane; 429 as for [`test_prometheus`]. Prometheus
/// being down, refusing the query or the policy denying it is an answer (each population's
/// `error`), not an error of this call.
pub async fn test_compare(
    state: &Core,
    actor: &Actor,
    request: CompareTestRequest,
) -> Result<CompareTest> {
    let path = ConfigPath::new(request.namespace, request.env, request.key);
    actor.require(Role::Releaser, path.scope())?;
    let guard = match parse_guard(&request.guard, "guard")
        .map_err(|e| Error::invalid(&e.field, e.message))?
    {
        Guard::Compare(guard) => guard,
        other => {
            return Err(Error::invalid(
                "guard.kind",
                format!(
                    "This tests a compare guard's queries, not a {} guard.",
                    other.kind()
                ),
            ))
        }
    };
    let config = (
        path.namespace.as_str(),
        path.env.as_str(),
        path.key.as_str(),
    );
    let (lane, version, selector, lane_ids) = match (request.lane, request.draft) {
        (Some(id), None) => {
            let (version, selector, since) = active_lane(state, &path, id).await?;
            let ids = probes::lane_population(state, config, version, id, since).await?;
            (Some(id), version, selector, ids)
        }
        (None, Some(draft)) => {
            let (version, selector) = (draft.version, draft.selector.clone().unwrap_or_default());
            let reached = lanes::preview(state, actor, &path, draft).await?.matched;
            let watching = state.instances.list(config.0, config.1).await?;
            let mut ids: Vec<String> = reached
                .into_iter()
                .filter(|id| {
                    watching.iter().any(|i| {
                        i.client_id == *id
                            && i.configs.get(config.2).is_some_and(|c| c.served.is_some())
                    })
                })
                .collect();
            ids.sort();
            (None, version, selector, ids)
        }
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                "draft",
                "Name an existing lane (lane) or the lane being started (draft), not both.",
            ))
        }
        (None, None) => {
            return Err(Error::invalid(
                "lane",
                "Name whose populations to compare: an existing lane of the config (lane) or \
                 the lane being started (draft).",
            ))
        }
    };
    let stable_ids = probes::stable_population(state, config, &selector, &lane_ids).await?;
    let _running = place(state)?;
    let vars = probes::query_vars(config, lane, version);
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let sampled = probes::sample_populations(&state.prober, &guard, &pairs, &lane_ids, &stable_ids);
    let (lane_answer, stable_answer) = tokio::time::timeout(probes::compare_limit(&guard), sampled)
        .await
        .unwrap_or_else(|_| {
            let late = || Err("Prometheus did not answer in time".to_string());
            (late(), late())
        });
    Ok(CompareTest::of(
        &guard,
        (&lane_ids, lane_answer),
        (&stable_ids, stable_answer),
    ))
}

/// The version and selector of an active lane of the config, and when its served set counts
/// from: its plan's current step, or (without a plan) the lane's start.
async fn active_lane(state: &Core, path: &ConfigPath, id: i64) -> Result<(i64, String, i64)> {
    let mut conn = state.db.acquire().await?;
    let config = find(&mut conn, path).await?;
    let lane = db::lanes::find(&mut *conn, config.id, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("{path} has no lane {id}.")))?;
    if lane.status != LaneStatus::Active {
        return Err(Error::conflict(format!(
            "Lane {id} is {}: only an active lane has instances to compare.",
            lane.status
        )));
    }
    let since = match db::plans::find(&mut *conn, id).await? {
        Some(plan) => plan.step_started_at,
        None => lane.created_at.unix_ms(),
    };
    Ok((lane.version, lane.selector, since))
}
