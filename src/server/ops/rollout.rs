//! Rollout progress of a config: per lane, how many of the instances its selector makes eligible
//! it serves (like with like against its percentage), and what they reported.

use super::lookups::find;
use crate::domain::selector::Selector;
use crate::model::ConfigPath;
use crate::model::{
    Instance, InstanceConfig, Lane, LaneRollout, ReportStatus, Role, Rollout, RolloutGroup,
};
use crate::server::auth::Actor;
use crate::server::db;
use crate::server::Core;
use crate::Result;

#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn rollout(state: &Core, actor: &Actor, path: &ConfigPath) -> Result<Rollout> {
    actor.require(Role::Viewer, path.scope())?;
    let (stable, lanes) = {
        let mut conn = state.db.acquire().await?;
        let config = find(&mut conn, path).await?;
        let lanes = db::lanes::active(&mut *conn, config.id).await?;
        (config.config.stable_version, lanes)
    };
    let instances = state.instances.list(&path.namespace, &path.env).await?;
    Ok(progress(&path.key, stable, &lanes, &instances))
}

/// Counts connected `instances` only. An instance is eligible for a lane when the lane's selector
/// matches its context (its labels plus `client_id`), whatever its bucket.
pub fn progress(key: &str, stable: Option<i64>, lanes: &[Lane], instances: &[Instance]) -> Rollout {
    let connected: Vec<&Instance> = instances.iter().filter(|i| i.connected).collect();
    let group = |version: i64, lane: Option<i64>, among: &[&Instance]| {
        let served: Vec<&InstanceConfig> = among
            .iter()
            .filter_map(|i| i.configs.get(key))
            .filter(|c| c.served.is_some() && c.lane == lane)
            .collect();
        let reported = |status| {
            served
                .iter()
                .filter(move |c| c.status == Some(status) && c.reported == c.served)
        };
        RolloutGroup {
            version,
            serving: served.len(),
            applied: reported(ReportStatus::Applied).count(),
            failed: reported(ReportStatus::Failed)
                .map(|c| c.message.clone().unwrap_or_default())
                .collect(),
        }
    };
    let lanes = lanes
        .iter()
        .map(|lane| {
            // Stored selectors were parsed when saved; one that no longer parses matches nothing.
            let selector = Selector::parse(&lane.selector).ok();
            let eligible: Vec<&Instance> = connected
                .iter()
                .copied()
                .filter(|i| {
                    let mut ctx = i.labels.clone();
                    ctx.insert("client_id".into(), i.client_id.clone());
                    selector.as_ref().is_some_and(|s| s.matches(&ctx))
                })
                .collect();
            LaneRollout {
                lane: lane.id,
                percentage: lane.percentage,
                eligible: eligible.len(),
                group: group(lane.version, Some(lane.id), &eligible),
            }
        })
        .collect();
    Rollout {
        connected: connected.len(),
        stable: stable.map(|v| group(v, None, &connected)),
        lanes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn instance(id: &str, region: &str, connected: bool, config: InstanceConfig) -> Instance {
        Instance {
            client_id: id.into(),
            labels: BTreeMap::from([("region".to_string(), region.to_string())]),
            connected,
            connected_at: "2026-12-02T10:00:00Z".parse().unwrap(),
            last_seen: "2026-12-02T10:00:00Z".parse().unwrap(),
            configs: BTreeMap::from([("app.yaml".to_string(), config)]),
        }
    }

    fn served(
        version: i64,
        lane: Option<i64>,
        report: Option<(ReportStatus, &str)>,
    ) -> InstanceConfig {
        InstanceConfig {
            served: Some(version),
            lane,
            applied: None,
            status: report.map(|(s, _)| s),
            message: report.map(|(_, m)| m.to_string()),
            reported: report.map(|_| version),
            reported_at: None,
            failure: None,
        }
    }

    fn lane(id: i64, version: i64, selector: &str, percentage: f64) -> Lane {
        Lane {
            id,
            version,
            selector: selector.into(),
            targets: vec![],
            percentage: crate::model::Percentage::parse(percentage).unwrap(),
            stickiness: "client_id".into(),
            salt: "s".into(),
            priority: 0,
            status: crate::model::LaneStatus::Active,
            created_by: "admin".into(),
            created_at: "2026-12-02T10:00:00Z".parse().unwrap(),
            closed_at: None,
            plan: None,
        }
    }

    #[test]
    fn a_lane_counts_what_it_serves_among_the_instances_its_selector_matches() {
        // 16 in beijing (1 in the lane), 8 in shenzhen, 1 beijing instance disconnected.
        let mut instances: Vec<Instance> = (0..16)
            .map(|i| {
                let config = if i == 0 {
                    served(3, Some(2), Some((ReportStatus::Applied, "")))
                } else {
                    served(2, None, None)
                };
                instance(&format!("bj-{i}"), "beijing", true, config)
            })
            .collect();
        instances.extend(
            (0..8).map(|i| instance(&format!("sz-{i}"), "shenzhen", true, served(2, None, None))),
        );
        instances.push(instance(
            "bj-gone",
            "beijing",
            false,
            served(3, Some(2), None),
        ));
        let lanes = [lane(2, 3, "region in (beijing,shanghai)", 25.0)];
        let got = progress("app.yaml", Some(2), &lanes, &instances);
        assert_eq!(got.connected, 24);
        assert_eq!(
            got.lanes,
            [LaneRollout {
                lane: 2,
                percentage: crate::model::Percentage::parse(25.0).unwrap(),
                eligible: 16,
                group: RolloutGroup {
                    version: 3,
                    serving: 1,
                    applied: 1,
                    failed: vec![]
                },
            }]
        );
        assert_eq!(
            got.stable,
            Some(RolloutGroup {
                version: 2,
                serving: 23,
                applied: 0,
                failed: vec![]
            })
        );
    }

    #[test]
    fn reports_count_only_for_the_version_served_and_failures_keep_their_message() {
        let stale = InstanceConfig {
            reported: Some(1),
            ..served(2, None, Some((ReportStatus::Applied, "")))
        };
        let instances = [
            instance(
                "a",
                "beijing",
                true,
                served(2, None, Some((ReportStatus::Failed, "parse error"))),
            ),
            instance("b", "beijing", true, stale),
            instance("c", "beijing", true, InstanceConfig::default()),
        ];
        let got = progress("app.yaml", Some(2), &[], &instances);
        assert_eq!(
            got.stable,
            Some(RolloutGroup {
                version: 2,
                serving: 2,
                applied: 0,
                failed: vec!["parse error".into()]
            })
        );
        // The empty selector makes every connected instance eligible, client_id included.
        let by_id = [lane(5, 3, "client_id=c", 10.0), lane(6, 3, "", 10.0)];
        let got = progress("app.yaml", None, &by_id, &instances);
        assert_eq!(got.stable, None);
        assert_eq!(
            got.lanes.iter().map(|l| l.eligible).collect::<Vec<_>>(),
            [1, 3]
        );
    }
}
