//! The blast radius of a lane rule: which connected subscribers it matches, on this node
//! and (with several nodes) on the others. Shared by the lane previews (`ops::lanes`) and the
//! change requests that keep the preview of when they were made (`ops::governance`).

use crate::domain::lane::LaneRule;
use crate::model::{ConfigPath, Preview};
use crate::server::Core;
use crate::Result;

/// Which subscribers connected to the config's namespace and environment `rule` matches, on
/// its own.
pub async fn preview_rule(state: &Core, path: &ConfigPath, rule: &LaneRule) -> Result<Preview> {
    let connected = connected_everywhere(state, path).await?;
    let matched: Vec<String> = connected
        .iter()
        .filter(|instance| rule.matches(&instance.context))
        .map(|instance| instance.client_id.clone())
        .collect();
    Ok(Preview {
        matched_count: matched.len(),
        matched,
        connected_count: connected.len(),
    })
}

/// The subscribers connected to the config's namespace and environment now: this node's, and
/// with several nodes also those the shared instance rows say other nodes serve
/// (docs/nodes.md), by client id.
async fn connected_everywhere(
    state: &Core,
    path: &ConfigPath,
) -> Result<Vec<crate::server::hub::ConnectedInstance>> {
    let (namespace, env) = (path.namespace.as_str(), path.env.as_str());
    let mut connected = state.hub.connected(namespace, env);
    if state.nodes.shared() {
        let here: std::collections::HashSet<String> =
            connected.iter().map(|c| c.client_id.clone()).collect();
        for instance in state.instances.list(namespace, env).await? {
            if instance.connected && !here.contains(&instance.client_id) {
                let mut context = instance.labels.clone();
                context.insert("client_id".into(), instance.client_id.clone());
                connected.push(crate::server::hub::ConnectedInstance {
                    client_id: instance.client_id,
                    context,
                });
            }
        }
        connected.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    }
    Ok(connected)
}
