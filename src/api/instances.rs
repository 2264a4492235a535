use crate::model::InstancePage;
use crate::Error;
use leptos::prelude::*;

/// A page of the subscribers of a namespace in an environment, connected or recently seen:
/// the first [`crate::model::InstancesQuery::DEFAULT_LIMIT`] client ids after `after` (the
/// previous page's `next_after`).
#[server]
pub async fn list_instances(
    namespace: String,
    env: String,
    after: Option<String>,
) -> Result<InstancePage, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::instances::instances(
        &state,
        &actor,
        &crate::model::EnvPath::new(namespace, env),
        &crate::model::InstancesQuery {
            after,
            ..Default::default()
        },
    )
    .await
}
