//! Per subscriber: where its frames go and what it has been handed; per
//! watched key and scope: who watches it and the frames built for it.

use super::state::{deleted_frame, ConfigState, Resolution};
use super::{FastMap, FastSet, Lease, Mode};
use crate::domain::Context;
use crate::model::EnvPath;
use crate::server::instances::ServedChange;
use crate::server::outlet::Outlet;
use axum::body::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Served-version changes for the instance registry.
pub(super) type ServedBatch = Vec<ServedChange>;

pub(super) struct Subscriber {
    pub(super) lease: Arc<Lease>,
    pub(super) context: Context,
    pub(super) mode: Mode,
    pub(super) keys: Option<Vec<String>>,
    pub(super) sink: Sink,
    /// Per key, what this subscriber has been handed.
    pub(super) sent: FastMap<String, Sent>,
    /// The id of the last frame handed to it (or the `Last-Event-ID` it
    /// resumed from, while none was): the id the client has when it got
    /// everything it was handed.
    pub(super) last_id: i64,
}

/// What a client id's last stream was handed, kept after the stream ended
/// for an exact resume.
pub(super) struct Departed {
    pub(super) sent: FastMap<String, Sent>,
    pub(super) last_id: i64,
    /// When its stream ended (milliseconds on the server's clock).
    pub(super) at: i64,
}

/// Where a subscriber's events go.
pub(super) enum Sink {
    /// A queue its stream's body reads (a connection served by hyper).
    Queue(mpsc::Sender<Bytes>),
    /// Its socket (a lean connection).
    Direct(Arc<Outlet>),
}

impl Sink {
    /// Hands over a frame without waiting; `false`: the subscriber is stuck
    /// or gone and must be dropped.
    pub(super) fn offer(&self, frame: &Bytes) -> bool {
        match self {
            Sink::Queue(sender) => sender.try_send(frame.clone()).is_ok(),
            Sink::Direct(outlet) => outlet.offer(frame),
        }
    }
}

impl Drop for Sink {
    /// A dropped subscriber's stream ends (after what it was handed); a
    /// queue's end is its sender going away, an outlet must be told.
    fn drop(&mut self) {
        if let Sink::Direct(outlet) = self {
            outlet.close();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sent {
    /// A `config` event with this version (and lane).
    Config { version: i64, lane: Option<i64> },
    /// A `rules` event of the config state after this release event.
    Rules { event_id: i64 },
}

/// A watched key: its state (`None` while the config does not exist) and
/// the frames built for it so far, shared by every subscriber that gets them.
#[derive(Default)]
pub(super) struct KeyEntry {
    pub(super) state: Option<Arc<ConfigState>>,
    pub(super) subscribers: FastSet<u64>,
    pub(super) frames: FastMap<Resolution, Bytes>,
    pub(super) rules_frame: Option<Bytes>,
}

impl KeyEntry {
    pub(super) fn set(&mut self, state: Option<Arc<ConfigState>>) {
        self.state = state;
        self.frames.clear();
        self.rules_frame = None;
    }

    /// The frame `subscriber` should get now, and what it will then have; `None` when nothing changed for it.
    /// `event_id` numbers a `deleted` frame when the config itself is gone.
    pub(super) fn next_frame(
        &mut self,
        scope: &EnvPath,
        key: &str,
        subscriber: &Subscriber,
        event_id: i64,
    ) -> Option<(Option<Bytes>, Option<Sent>)> {
        let before = subscriber.sent.get(key).copied();
        let Some(state) = self.state.as_deref() else {
            // The config is gone: tell those who had it.
            return before.map(|_| (Some(deleted_frame(scope, key, event_id)), None));
        };
        match subscriber.mode {
            Mode::Rules => {
                let now = Sent::Rules {
                    event_id: state.event_id,
                };
                if before == Some(now) {
                    return None;
                }
                let frame = self
                    .rules_frame
                    .get_or_insert_with(|| state.rules_frame())
                    .clone();
                Some((Some(frame), Some(now)))
            }
            Mode::Config => match state.resolve_for(&subscriber.context) {
                None => before.map(|_| (Some(deleted_frame(scope, key, state.event_id)), None)),
                Some(resolution) => {
                    let now = Sent::Config {
                        version: resolution.version,
                        lane: resolution.lane,
                    };
                    match before {
                        Some(Sent::Config { version, .. }) if version == resolution.version => {
                            // Same version from another lane: nothing to send.
                            (before != Some(now)).then_some((None, Some(now)))
                        }
                        _ => {
                            let frame = match self.frames.get(&resolution) {
                                Some(frame) => frame.clone(),
                                None => {
                                    let frame = state.config_frame(resolution)?;
                                    self.frames.insert(resolution, frame.clone());
                                    frame
                                }
                            };
                            Some((Some(frame), Some(now)))
                        }
                    }
                }
            },
        }
    }
}

#[derive(Default)]
pub(super) struct ScopeEntry {
    pub(super) keys: HashMap<String, KeyEntry>,
    /// Subscribers of every key of the scope.
    pub(super) wildcard: FastSet<u64>,
    /// Whether `keys` holds every config of the scope (needed while `wildcard` is not empty).
    pub(super) all_loaded: bool,
}

impl ScopeEntry {
    pub(super) fn is_watched(&self, key: &str) -> bool {
        !self.wildcard.is_empty()
            || self
                .keys
                .get(key)
                .is_some_and(|entry| !entry.subscribers.is_empty())
    }
}

/// Remembers what a subscriber now has (or no longer has) for `key`.
pub(super) fn record_sent(
    subscriber: &mut Subscriber,
    key: &str,
    now: Option<Sent>,
    served: &mut ServedBatch,
) {
    let lease = &subscriber.lease;
    match now {
        Some(sent) => {
            if let Sent::Config { version, lane } = sent {
                served.push(ServedChange {
                    scope: lease.scope.clone(),
                    client_id: lease.client_id.clone(),
                    key: key.to_string(),
                    version: Some(version),
                    lane,
                });
            }
            match subscriber.sent.get_mut(key) {
                Some(had) => *had = sent,
                None => {
                    subscriber.sent.insert(key.to_string(), sent);
                }
            }
        }
        None => {
            if subscriber.sent.remove(key).is_some() {
                served.push(ServedChange {
                    scope: lease.scope.clone(),
                    client_id: lease.client_id.clone(),
                    key: key.to_string(),
                    version: None,
                    lane: None,
                });
            }
        }
    }
}
