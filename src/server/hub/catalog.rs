//! What per-request evaluation needs, in memory (docs/ofrep.md):
//! every config of every namespace and environment with its stable release and
//! active lanes, each with content and checksum.
//!
//! The dispatcher loads it whole at start and replaces a config's state in the
//! same step that fans its release events out, before handing them to any
//! stream. [`Catalog::fresh`] makes "a resolve after a release's answer never
//! sees the old state" hold: a release is published (its id noted here) before
//! it is answered, and a lookup waits until the dispatcher has applied every
//! id published so far — the common case costs two atomic loads.

use super::state::ConfigState;
use crate::{Error, ErrorCode, Result};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// Configs by namespace, environment and key (keys in order, for bulk answers).
type Configs = HashMap<String, HashMap<String, BTreeMap<String, Arc<ConfigState>>>>;

/// How long a lookup waits for the dispatcher to apply what was published.
const CATCH_UP: Duration = Duration::from_secs(5);

pub struct Catalog {
    configs: RwLock<Configs>,
    /// The highest release event published on this node (committed and answered).
    published: AtomicI64,
    /// The release events up to this one are applied.
    applied: watch::Sender<i64>,
}

impl Catalog {
    pub(super) fn new(applied: i64) -> Self {
        Self {
            configs: RwLock::default(),
            published: AtomicI64::new(applied),
            applied: watch::channel(applied).0,
        }
    }

    /// Notes a committed release event, before its answer leaves.
    pub(super) fn published(&self, id: i64) {
        self.published.fetch_max(id, Ordering::AcqRel);
    }

    /// Replaces (or, with `None`, removes) one config's state.
    pub(super) fn put(
        &self,
        namespace: &str,
        env: &str,
        key: &str,
        state: Option<Arc<ConfigState>>,
    ) {
        let mut configs = self.configs.write().expect("catalog lock");
        match state {
            Some(state) => {
                configs
                    .entry(namespace.to_string())
                    .or_default()
                    .entry(env.to_string())
                    .or_default()
                    .insert(key.to_string(), state);
            }
            None => {
                if let Some(keys) = configs.get_mut(namespace).and_then(|e| e.get_mut(env)) {
                    keys.remove(key);
                }
            }
        }
    }

    /// Every release event up to `id` is in.
    pub(super) fn applied(&self, id: i64) {
        self.applied.send_if_modified(|applied| {
            let newer = id > *applied;
            if newer {
                *applied = id;
            }
            newer
        });
    }

    /// The release sequence the catalog (and the push hub) has applied up to.
    pub fn applied_through(&self) -> i64 {
        *self.applied.borrow()
    }

    /// Waits until every release event published on this node is applied and
    /// returns the release sequence the catalog is at. 503 when the dispatcher
    /// is stuck (it cannot read the database) for longer than a few seconds.
    pub async fn fresh(&self) -> Result<i64> {
        if let Some(applied) = self.fresh_now() {
            return Ok(applied);
        }
        let published = self.published.load(Ordering::Acquire);
        let mut receiver = self.applied.subscribe();
        let caught_up = tokio::time::timeout(CATCH_UP, async {
            receiver.wait_for(|a| *a >= published).await.map(|a| *a)
        })
        .await;
        match caught_up {
            Ok(Ok(applied)) => Ok(applied),
            _ => Err(Error::new(
                ErrorCode::Busy,
                "The server is catching up with the latest releases; try again in a moment.",
            )),
        }
    }

    /// [`Catalog::fresh`] when nothing needs waiting for: the release
    /// sequence when every release event published on this node is applied,
    /// else `None`.
    pub fn fresh_now(&self) -> Option<i64> {
        let published = self.published.load(Ordering::Acquire);
        let applied = *self.applied.borrow();
        (applied >= published).then_some(applied)
    }

    /// One config's state; `None` when the config does not exist (or was deleted).
    pub fn config(&self, namespace: &str, env: &str, key: &str) -> Option<Arc<ConfigState>> {
        self.configs
            .read()
            .expect("catalog lock")
            .get(namespace)?
            .get(env)?
            .get(key)
            .cloned()
    }

    /// Every config of a namespace and environment, in key order.
    pub fn configs(&self, namespace: &str, env: &str) -> Vec<Arc<ConfigState>> {
        self.configs
            .read()
            .expect("catalog lock")
            .get(namespace)
            .and_then(|envs| envs.get(env))
            .map(|keys| keys.values().cloned().collect())
            .unwrap_or_default()
    }

    /// How many configs are held, and the bytes of content they hold (for the metrics).
    pub fn size(&self) -> (usize, usize) {
        let configs = self.configs.read().expect("catalog lock");
        let mut count = 0;
        let mut bytes = 0;
        for keys in configs.values().flat_map(|envs| envs.values()) {
            for state in keys.values() {
                count += 1;
                bytes += state.content_bytes();
            }
        }
        (count, bytes)
    }
}
