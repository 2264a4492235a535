//! Rules mode: resolve a config per request, locally, exactly as the server would.

use graycast_domain::format::ConfigFormat;
use graycast_domain::lane::{resolve, LaneRule};
use graycast_domain::model::{Rules, RulesVersion};
use graycast_domain::selector::Selector;
use graycast_domain::Context;

/// One key's stable release and active lanes (from a `rules` event), ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRules {
    pub namespace: String,
    pub env: String,
    pub key: String,
    pub format: ConfigFormat,
    pub stable: Option<RulesVersion>,
    /// Active lanes' rules, and at the same index the version each serves.
    lanes: Vec<LaneRule>,
    lane_versions: Vec<RulesVersion>,
}

/// What a context gets: the version, the lane that gave it (`None` for the stable release),
/// and its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evaluation<'a> {
    pub version: i64,
    pub lane: Option<i64>,
    pub checksum: &'a str,
    pub content: &'a str,
}

impl KeyRules {
    /// Checks and compiles a `rules` payload; a selector the server would not have accepted is an
    /// error (a newer server with syntax this SDK does not know, for instance). A percentage is
    /// checked as the payload is read (a [`graycast_domain::percentage::Percentage`]).
    pub fn from_rules(rules: Rules) -> Result<Self, String> {
        let (lanes, lane_versions) = rules
            .lanes
            .into_iter()
            .map(|lane| {
                let selector = Selector::parse(&lane.selector).map_err(|e| {
                    format!("lane {} has selector {:?}: {e}", lane.id, lane.selector)
                })?;
                Ok((
                    LaneRule {
                        id: lane.id,
                        version: lane.version,
                        selector,
                        targets: lane.targets,
                        percentage: lane.percentage,
                        stickiness: lane.stickiness,
                        salt: lane.salt,
                        priority: lane.priority,
                    },
                    RulesVersion {
                        version: lane.version,
                        checksum: lane.checksum,
                        content: lane.content,
                    },
                ))
            })
            .collect::<Result<(Vec<_>, Vec<_>), String>>()?;
        Ok(Self {
            namespace: rules.namespace,
            env: rules.env,
            key: rules.key,
            format: rules.format,
            stable: rules.stable,
            lanes,
            lane_versions,
        })
    }

    /// The version `context` gets (docs/lanes.md#which-version-a-reader-gets): the first active lane in (priority, id)
    /// order that matches, else the stable release, else nothing.
    pub fn evaluate(&self, context: &Context) -> Option<Evaluation<'_>> {
        if let Some(matched) = resolve(&self.lanes, context) {
            let index = self
                .lanes
                .iter()
                .position(|rule| std::ptr::eq(rule, matched))
                .expect("resolve returns one of the given lanes");
            let version = &self.lane_versions[index];
            return Some(Evaluation {
                version: version.version,
                lane: Some(matched.id),
                checksum: &version.checksum,
                content: &version.content,
            });
        }
        self.stable.as_ref().map(|stable| Evaluation {
            version: stable.version,
            lane: None,
            checksum: &stable.checksum,
            content: &stable.content,
        })
    }

    /// The active lanes' rules, in the order the server sent them.
    pub fn lanes(&self) -> impl Iterator<Item = &LaneRule> {
        self.lanes.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graycast_domain::model::RulesLane;

    fn version(v: i64) -> RulesVersion {
        RulesVersion {
            version: v,
            checksum: format!("sha256:{v}"),
            content: format!("content of v{v}"),
        }
    }

    fn lane(id: i64, v: i64, selector: &str, percentage: f64) -> RulesLane {
        RulesLane {
            id,
            version: v,
            selector: selector.into(),
            targets: Vec::new(),
            percentage: graycast_domain::percentage::Percentage::parse(percentage).unwrap(),
            stickiness: "client_id".into(),
            salt: "lane-1".into(),
            priority: 0,
            checksum: format!("sha256:{v}"),
            content: format!("content of v{v}"),
        }
    }

    fn rules(stable: Option<i64>, lanes: Vec<RulesLane>) -> KeyRules {
        KeyRules::from_rules(Rules {
            namespace: "shop".into(),
            env: "prod".into(),
            key: "app.json".into(),
            format: ConfigFormat::Json,
            stable: stable.map(version),
            lanes,
        })
        .unwrap()
    }

    fn ctx(pairs: &[(&str, &str)]) -> Context {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn got(rules: &KeyRules, context: &Context) -> Option<(i64, Option<i64>)> {
        rules.evaluate(context).map(|e| (e.version, e.lane))
    }

    #[test]
    fn percentage_uses_the_same_buckets_as_the_server() {
        // bucket("lane-1", "pod-1") == 374, pinned in domain::lane's tests.
        let pod = ctx(&[("client_id", "pod-1")]);
        assert_eq!(
            got(&rules(Some(1), vec![lane(5, 2, "", 3.75)]), &pod),
            Some((2, Some(5)))
        );
        assert_eq!(
            got(&rules(Some(1), vec![lane(5, 2, "", 3.74)]), &pod),
            Some((1, None))
        );
        let evaluation = rules(Some(1), vec![lane(5, 2, "", 100.0)]);
        let evaluation = evaluation.evaluate(&pod).unwrap();
        assert_eq!(evaluation.content, "content of v2");
        assert_eq!(evaluation.checksum, "sha256:2");
    }

    #[test]
    fn first_matching_lane_by_priority_then_id_wins_then_stable_then_nothing() {
        let mut high = lane(9, 3, "region=beijing", 100.0);
        high.priority = -1;
        let set = rules(
            Some(1),
            vec![lane(4, 2, "", 100.0), high, lane(2, 5, "tier=gold", 100.0)],
        );
        let beijing = ctx(&[("client_id", "a"), ("region", "beijing")]);
        assert_eq!(got(&set, &beijing), Some((3, Some(9))));
        let gold = ctx(&[("client_id", "a"), ("tier", "gold")]);
        assert_eq!(got(&set, &gold), Some((5, Some(2))));
        let plain = ctx(&[("client_id", "a")]);
        assert_eq!(got(&set, &plain), Some((2, Some(4))));
        // No stickiness value: no lane matches, the stable release applies.
        assert_eq!(got(&set, &Context::new()), Some((1, None)));
        assert_eq!(got(&rules(None, Vec::new()), &plain), None);
        assert_eq!(
            got(&rules(None, vec![lane(1, 2, "x=y", 100.0)]), &plain),
            None
        );
    }

    #[test]
    fn targets_and_user_stickiness() {
        let mut by_user = lane(3, 2, "", 0.0);
        by_user.stickiness = "user_id".into();
        by_user.targets = vec!["alice".into()];
        let set = rules(Some(1), vec![by_user]);
        assert_eq!(got(&set, &ctx(&[("user_id", "alice")])), Some((2, Some(3))));
        assert_eq!(got(&set, &ctx(&[("user_id", "bob")])), Some((1, None)));
    }

    #[test]
    fn agrees_with_domain_resolve_for_many_contexts() {
        let lanes = vec![
            lane(1, 2, "region in (beijing,shanghai)", 30.0),
            lane(2, 3, "app_version>=2.1", 55.5),
            lane(3, 4, "", 12.34),
        ];
        let set = rules(Some(1), lanes);
        let domain_rules: Vec<LaneRule> = set.lanes().cloned().collect();
        for i in 0..2000 {
            let region = ["beijing", "shanghai", "hangzhou"][i % 3];
            let app_version = ["2.0", "2.1", "3"][(i / 3) % 3];
            let context = ctx(&[
                ("client_id", &format!("pod-{i}")),
                ("region", region),
                ("app_version", app_version),
            ]);
            let expected = resolve(&domain_rules, &context)
                .map(|l| (l.version, Some(l.id)))
                .unwrap_or((1, None));
            assert_eq!(got(&set, &context), Some(expected), "{context:?}");
        }
    }

    #[test]
    fn rejects_rules_the_server_would_not_accept() {
        let bad = KeyRules::from_rules(Rules {
            namespace: "shop".into(),
            env: "prod".into(),
            key: "app.json".into(),
            format: ConfigFormat::Json,
            stable: None,
            lanes: vec![lane(1, 2, "region in (", 10.0)],
        });
        assert!(bad.unwrap_err().contains("lane 1"));
    }
}
