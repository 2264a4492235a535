use crate::model::Instance;
use crate::Error;
use leptos::prelude::*;

/// Subscribers of a namespace in an environment, connected or recently seen.
#[server]
pub async fn list_instances(namespace: String, env: String) -> Result<Vec<Instance>, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::subscribers::instances(
        &state,
        &actor,
        &crate::model::EnvPath::new(namespace, env),
    )
    .await
}
