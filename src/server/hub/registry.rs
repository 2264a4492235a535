//! Who is connected now, and the bookkeeping of one open stream.

use super::clients::Clients;
use super::Owner;
use crate::domain::Context;
use crate::model::EnvPath;
use crate::server::clock::Clock;
use crate::server::instances::Instances;
use crate::server::metrics::Metrics;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// A subscriber as the hub knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectedInstance {
    pub client_id: String,
    /// Its labels plus `client_id`: the context lanes are evaluated against.
    pub context: Context,
}

/// A connected instance and how many streams it holds open.
pub(super) struct Streams {
    pub(super) instance: ConnectedInstance,
    pub(super) open: usize,
}

/// Per client id.
pub(super) type ScopeStreams = HashMap<String, Streams>;

/// Who is connected now, per (namespace, env); an instance may hold several streams.
/// Made by [`Registry::on`], so its retention periods run on the server's clock.
pub(super) struct Registry {
    pub(super) connected: RwLock<HashMap<EnvPath, ScopeStreams>>,
    pub(super) clients: Mutex<Clients>,
}

impl Registry {
    /// An empty registry whose retention periods run on `clock`.
    pub(super) fn on(clock: Clock) -> Self {
        Self {
            connected: RwLock::default(),
            clients: Mutex::new(Clients {
                clock,
                ..Clients::default()
            }),
        }
    }

    pub(super) fn connected(&self, namespace: &str, env: &str) -> Vec<ConnectedInstance> {
        let map = self.connected.read().expect("hub lock");
        let mut list: Vec<ConnectedInstance> = map
            .get(&EnvPath::new(namespace, env))
            .map(|m| m.values().map(|s| s.instance.clone()).collect())
            .unwrap_or_default();
        list.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        list
    }

    pub(super) fn register(&self, namespace: &str, env: &str, instance: ConnectedInstance) {
        let mut map = self.connected.write().expect("hub lock");
        let entry = map
            .entry(EnvPath::new(namespace, env))
            .or_default()
            .entry(instance.client_id.clone())
            .or_insert_with(|| Streams {
                instance: instance.clone(),
                open: 0,
            });
        entry.instance = instance;
        entry.open += 1;
    }

    pub(super) fn unregister(&self, namespace: &str, env: &str, client_id: &str) {
        let mut map = self.connected.write().expect("hub lock");
        let scope = EnvPath::new(namespace, env);
        if let Some(m) = map.get_mut(&scope) {
            if let Some(streams) = m.get_mut(client_id) {
                streams.open -= 1;
                if streams.open == 0 {
                    m.remove(client_id);
                }
            }
            if m.is_empty() {
                map.remove(&scope);
            }
        }
    }
}

/// The bookkeeping of one open stream, undone exactly once: when the stream
/// ends or when the hub drops a stuck subscriber, whichever comes first.
pub(super) struct Lease {
    pub(super) id: u64,
    pub(super) scope: EnvPath,
    pub(super) client_id: String,
    pub(super) owner: Option<Owner>,
    pub(super) registry: Arc<Registry>,
    pub(super) instances: Arc<Instances>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) released: AtomicBool,
}

impl Lease {
    pub(super) fn release(&self) {
        if !self.released.swap(true, Ordering::AcqRel) {
            self.registry
                .unregister(&self.scope.namespace, &self.scope.env, &self.client_id);
            self.registry
                .clients
                .lock()
                .expect("hub lock")
                .close(&(self.scope.clone(), self.client_id.clone()), self.owner);
            self.instances.disconnected(&self.scope, &self.client_id);
            self.metrics.subscriber_disconnected();
        }
    }
}
