//! A config's version history: the versions list, page by page, and what each version is now
//! (stable, in lanes, was stable, was in lanes, never released), from its release events and
//! lanes.

use super::lookups::{find, find_version};
use crate::model::{
    ClosedLane, ConfigPath, HistoryPage, Lane, LaneShare, LaneStatus, ReleaseEvent, ReleaseKind,
    Role, Version, VersionPage, VersionState, VersionStatus, VersionsQuery,
};
use crate::server::auth::Actor;
use crate::server::db;
use crate::server::Core;
use crate::Result;
use std::collections::HashMap;

/// One page of the config's versions, newest first, without their contents: `query.limit`
/// (default [`VersionsQuery::DEFAULT_LIMIT`], capped to 1..=[`VersionsQuery::MAX_LIMIT`]) of
/// those older than `query.before`.
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn versions(
    state: &Core,
    actor: &Actor,
    path: &ConfigPath,
    query: &VersionsQuery,
) -> Result<VersionPage> {
    actor.require(Role::Viewer, path.scope())?;
    let mut conn = state.db.acquire().await?;
    let config = find(&mut conn, path).await?;
    page(&mut conn, config.id, query).await
}

async fn page(conn: &mut db::Conn, config_id: i64, query: &VersionsQuery) -> Result<VersionPage> {
    let limit = query
        .limit
        .unwrap_or(VersionsQuery::DEFAULT_LIMIT)
        .clamp(1, VersionsQuery::MAX_LIMIT) as usize;
    // One more than a page tells whether there is another.
    let mut versions =
        db::configs::version_summaries(&mut *conn, config_id, query.before, limit as i64 + 1)
            .await?;
    let more = versions.len() > limit;
    versions.truncate(limit);
    let next_before = if more {
        versions.last().map(|v| v.version)
    } else {
        None
    };
    Ok(VersionPage {
        versions,
        next_before,
    })
}

/// The config's newest version, with its content (what an edit starts from).
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn latest(state: &Core, actor: &Actor, path: &ConfigPath) -> Result<Version> {
    actor.require(Role::Viewer, path.scope())?;
    let mut conn = state.db.acquire().await?;
    let config = find(&mut conn, path).await?;
    find_version(&mut *conn, &config, config.config.latest_version).await
}

/// One page of the dashboard's version history ([`VersionsQuery::DEFAULT_LIMIT`] versions older
/// than `before`, newest first), each with what it is now.
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn version_history(
    state: &Core,
    actor: &Actor,
    path: &ConfigPath,
    before: Option<i64>,
) -> Result<HistoryPage> {
    actor.require(Role::Viewer, path.scope())?;
    let mut conn = state.db.acquire().await?;
    let config = find(&mut conn, path).await?;
    let query = VersionsQuery {
        before,
        limit: None,
    };
    let VersionPage {
        versions,
        next_before,
    } = page(&mut conn, config.id, &query).await?;
    let events = db::releases::list(&mut *conn, config.id).await?;
    let lanes = db::lanes::list(&mut *conn, config.id).await?;
    let numbers: Vec<i64> = versions.iter().map(|v| v.version).collect();
    let states = states(&numbers, config.config.stable_version, &events, &lanes);
    Ok(HistoryPage {
        versions: versions
            .into_iter()
            .zip(states)
            .map(|(version, state)| VersionStatus { version, state })
            .collect(),
        next_before,
    })
}

/// What each of `versions` is now, in their order. `events`: the config's release events,
/// newest first; `lanes`: its lanes, active ones in resolution order and closed ones newest
/// first (as `db::lanes::list` gives them). A version is, in this order of precedence: the
/// stable release; in the active lanes that serve it; stable until the last event that
/// replaced it; in lanes that closed since; never released.
pub fn states(
    versions: &[i64],
    stable: Option<i64>,
    events: &[ReleaseEvent],
    lanes: &[Lane],
) -> Vec<VersionState> {
    // Replay the changes of the stable release, oldest first: the last end of each version wins.
    let mut ended: HashMap<i64, VersionState> = HashMap::new();
    let mut current = None;
    for event in events.iter().rev() {
        let rolled_back = match event.kind {
            ReleaseKind::Rollback => true,
            ReleaseKind::Stable | ReleaseKind::LanePromote => false,
            _ => continue,
        };
        if let Some(old) = current.filter(|old| *old != event.version) {
            ended.insert(
                old,
                VersionState::WasStable {
                    until: event.created_at,
                    by: event.version,
                    rolled_back,
                },
            );
        }
        current = Some(event.version);
    }
    versions
        .iter()
        .map(|&version| {
            let serving: Vec<LaneShare> = lanes
                .iter()
                .filter(|l| l.version == version && l.status == LaneStatus::Active)
                .map(|l| LaneShare {
                    lane: l.id,
                    percentage: l.percentage,
                })
                .collect();
            let mut closed: Vec<ClosedLane> = lanes
                .iter()
                .filter(|l| l.version == version && l.status != LaneStatus::Active)
                .map(|l| ClosedLane {
                    lane: l.id,
                    status: l.status,
                    closed_at: l.closed_at,
                })
                .collect();
            closed.sort_by_key(|c| std::cmp::Reverse(c.lane));
            if stable == Some(version) {
                VersionState::Stable
            } else if !serving.is_empty() {
                VersionState::InLanes { lanes: serving }
            } else if let Some(was) = ended.remove(&version) {
                was
            } else if !closed.is_empty() {
                VersionState::WasInLanes { lanes: closed }
            } else {
                VersionState::NeverReleased
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Timestamp;

    /// Events as the database lists them: newest first; `at` is the event's number.
    fn events(list: &[(&str, i64)]) -> Vec<ReleaseEvent> {
        list.iter()
            .enumerate()
            .map(|(i, (kind, version))| ReleaseEvent {
                id: i as i64 + 1,
                namespace: "shop".into(),
                env: "prod".into(),
                key: "app.yaml".into(),
                kind: kind.parse().unwrap(),
                version: *version,
                previous_version: None,
                lane: None,
                actor: "admin".into(),
                message: String::new(),
                created_at: at(i as i64 + 1),
                change_request: None,
                approved_by: Vec::new(),
            })
            .rev()
            .collect()
    }

    fn lane(id: i64, version: i64, percentage: f64) -> Lane {
        Lane {
            id,
            version,
            selector: String::new(),
            targets: vec![],
            percentage: crate::model::Percentage::parse(percentage).unwrap(),
            stickiness: "client_id".into(),
            salt: "s".into(),
            priority: 0,
            status: crate::model::LaneStatus::Active,
            created_by: "admin".into(),
            created_at: at(0),
            closed_at: None,
            plan: None,
        }
    }

    /// The states of versions `latest` down to 1.
    fn states(
        latest: i64,
        stable: Option<i64>,
        ev: &[(&str, i64)],
        lanes: &[Lane],
    ) -> Vec<VersionState> {
        let versions: Vec<i64> = (1..=latest).rev().collect();
        super::states(&versions, stable, &events(ev), lanes)
    }

    /// The time of event number `n` in these tests.
    fn at(n: i64) -> Timestamp {
        Timestamp::from_unix_ms(n * 1000).unwrap()
    }

    fn was(until: i64, by: i64, rolled_back: bool) -> VersionState {
        VersionState::WasStable {
            until: at(until),
            by,
            rolled_back,
        }
    }

    #[test]
    fn a_version_released_then_rolled_back_was_stable_until_the_rollback() {
        // v1 released (t1), v2 released (t2), back to v1 (t3); v3 saved only.
        let got = states(
            3,
            Some(1),
            &[("stable", 1), ("stable", 2), ("rollback", 1)],
            &[],
        );
        assert_eq!(
            got,
            [
                VersionState::NeverReleased,
                was(3, 1, true),
                VersionState::Stable,
            ]
        );
    }

    #[test]
    fn a_replaced_version_is_superseded_by_the_newer_release_or_promoted_lane() {
        let got = states(
            3,
            Some(3),
            &[
                ("stable", 1),
                ("stable", 2),
                ("lane.create", 3),
                ("lane.promote", 3),
            ],
            &[],
        );
        assert_eq!(
            got,
            [VersionState::Stable, was(4, 3, false), was(2, 2, false)]
        );
    }

    #[test]
    fn a_version_lanes_serve_is_in_those_lanes() {
        let lanes = [lane(4, 3, 25.0), lane(7, 3, 5.0), lane(8, 2, 50.0)];
        let got = states(3, Some(2), &[("stable", 2), ("lane.create", 3)], &lanes);
        let share = |lane, percentage| LaneShare {
            lane,
            percentage: crate::model::Percentage::parse(percentage).unwrap(),
        };
        assert_eq!(
            got,
            [
                VersionState::InLanes {
                    lanes: vec![share(4, 25.0), share(7, 5.0)]
                },
                // Stable wins over a lane serving the same version.
                VersionState::Stable,
                VersionState::NeverReleased,
            ]
        );
    }

    #[test]
    fn the_last_time_a_version_stopped_being_stable_counts() {
        // v1 (t1) → v2 (t2) → back to v1 (t3) → v2 again (t4) → v3 (t5).
        let got = states(
            3,
            Some(3),
            &[
                ("stable", 1),
                ("stable", 2),
                ("rollback", 1),
                ("stable", 2),
                ("stable", 3),
            ],
            &[],
        );
        assert_eq!(
            got,
            [VersionState::Stable, was(5, 3, false), was(4, 2, false)]
        );
    }

    #[test]
    fn a_page_gets_the_states_of_its_versions_only() {
        let evs = events(&[("stable", 1), ("stable", 2), ("rollback", 1)]);
        let lanes = [lane(4, 3, 25.0)];
        assert_eq!(
            super::states(&[3, 2], Some(1), &evs, &lanes),
            [
                VersionState::InLanes {
                    lanes: vec![LaneShare {
                        lane: 4,
                        percentage: crate::model::Percentage::parse(25.0).unwrap()
                    }]
                },
                was(3, 1, true),
            ]
        );
        assert_eq!(
            super::states(&[1], Some(1), &evs, &lanes),
            [VersionState::Stable]
        );
        assert!(super::states(&[], Some(1), &evs, &lanes).is_empty());
    }

    fn closed(id: i64, version: i64, status: LaneStatus, at_n: i64) -> Lane {
        Lane {
            status,
            closed_at: Some(at(at_n)),
            ..lane(id, version, 10.0)
        }
    }

    #[test]
    fn a_version_only_closed_lanes_served_was_in_those_lanes() {
        // v3 was served by three lanes, aborted since; v4 is in a lane now.
        let lanes = [
            lane(9, 4, 5.0),
            closed(6, 3, LaneStatus::Aborted, 6),
            closed(5, 3, LaneStatus::Aborted, 5),
            closed(8, 3, LaneStatus::Aborted, 8),
        ];
        let got = states(4, Some(1), &[("stable", 1)], &lanes);
        let was = |lane, n| ClosedLane {
            lane,
            status: LaneStatus::Aborted,
            closed_at: Some(at(n)),
        };
        assert_eq!(
            got,
            [
                VersionState::InLanes {
                    lanes: vec![LaneShare {
                        lane: 9,
                        percentage: crate::model::Percentage::parse(5.0).unwrap()
                    }]
                },
                VersionState::WasInLanes {
                    lanes: vec![was(8, 8), was(6, 6), was(5, 5)]
                },
                VersionState::NeverReleased,
                VersionState::Stable,
            ]
        );
        // Served by a lane now and by closed ones before: in the lane now.
        let mut more = lanes.to_vec();
        more.push(lane(10, 3, 20.0));
        assert!(matches!(
            super::states(&[3], Some(1), &events(&[("stable", 1)]), &more)[0],
            VersionState::InLanes { .. }
        ));
    }

    #[test]
    fn a_promoted_lane_makes_its_version_stable_not_was_in_lanes() {
        let lanes = [closed(4, 2, LaneStatus::Promoted, 3)];
        let got = states(
            2,
            Some(2),
            &[("stable", 1), ("lane.create", 2), ("lane.promote", 2)],
            &lanes,
        );
        assert_eq!(got, [VersionState::Stable, was(3, 2, false)]);
    }

    #[test]
    fn nothing_released_is_never_released() {
        assert_eq!(
            states(2, None, &[("lane.create", 2), ("lane.abort", 2)], &[]),
            [VersionState::NeverReleased, VersionState::NeverReleased]
        );
    }
}
