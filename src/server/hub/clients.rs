//! Which owner each client id watches with, and the limits per owner.

use crate::model::EnvPath;
use crate::server::auth::Actor;
use crate::server::clock::Clock;
use crate::{Error, Result};
use std::collections::HashMap;
use std::time::Duration;

/// Who opened a stream: the API token or the signed-in user it was authorized as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    Token(i64),
    User(i64),
}

impl Owner {
    pub fn of(actor: &Actor) -> Option<Self> {
        actor
            .token_id
            .map(Owner::Token)
            .or(actor.user_id.map(Owner::User))
    }

    /// "This token" or "This user", to begin a sentence.
    pub(super) fn this(self) -> &'static str {
        match self {
            Owner::Token(_) => "This token",
            Owner::User(_) => "This user",
        }
    }
}

/// What one owner may hold: watch streams open, and client ids (instances)
/// connected or disconnected within the retention period.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_streams: usize,
    pub max_instances: usize,
    /// How long a client id stays known (may report, counts against the
    /// owner's instances, keeps its record for an exact resume) after its last
    /// stream ended: the instance retention.
    pub retention: Duration,
}

/// Which owner each client id watches with (or last did), per scope.
#[derive(Default)]
pub(super) struct Clients {
    pub(super) known: HashMap<(EnvPath, String), Known>,
    pub(super) owners: HashMap<Owner, Held>,
    /// Expired entries are swept once `known` grows to this size.
    pub(super) sweep_at: usize,
    /// The server's clock, which the retention period is measured on.
    pub(super) clock: Clock,
}

pub(super) struct Known {
    pub(super) owner: Option<Owner>,
    /// Streams open now (two for a moment while a new one replaces the old).
    pub(super) streams: usize,
    /// When its last stream ended (milliseconds on the server's clock).
    pub(super) left: Option<i64>,
}

impl Known {
    pub(super) fn expired(&self, now_ms: i64, retention: Duration) -> bool {
        self.streams == 0
            && self
                .left
                .is_some_and(|left| now_ms.saturating_sub(left) >= retention.as_millis() as i64)
    }
}

/// Per owner: open streams, and client ids in `Clients::known` it owns.
#[derive(Default, Clone, Copy)]
pub(super) struct Held {
    pub(super) streams: usize,
    pub(super) clients: usize,
}

impl Clients {
    pub(super) fn held(&mut self, owner: Owner) -> &mut Held {
        self.owners.entry(owner).or_default()
    }

    pub(super) fn forget_owner_if_idle(&mut self, owner: Owner) {
        if self
            .owners
            .get(&owner)
            .is_some_and(|h| h.streams == 0 && h.clients == 0)
        {
            self.owners.remove(&owner);
        }
    }

    pub(super) fn sweep(&mut self, now: i64, retention: Duration) {
        let mut gone = Vec::new();
        self.known.retain(|_, known| {
            let expired = known.expired(now, retention);
            if expired {
                gone.extend(known.owner);
            }
            !expired
        });
        for owner in gone {
            let held = self.held(owner);
            held.clients = held.clients.saturating_sub(1);
            self.forget_owner_if_idle(owner);
        }
        self.sweep_at = (self.known.len() * 2).max(1024);
    }

    /// Takes a new stream of `owner` for `client`, or says which limit it would pass.
    /// A client id with a stream open is being replaced: that takes nothing more.
    pub(super) fn open(
        &mut self,
        client: (EnvPath, String),
        owner: Option<Owner>,
        limits: &Limits,
    ) -> Result<()> {
        let now = self.clock.now_ms();
        if self.known.len() >= self.sweep_at {
            self.sweep(now, limits.retention);
        }
        if let Some(owner) = owner {
            let current = self.known.get(&client);
            let replacing = current.is_some_and(|k| k.streams > 0);
            let new_client = !current.is_some_and(|k| k.owner == Some(owner));
            let held = self.owners.get(&owner).copied().unwrap_or_default();
            if !replacing && held.streams >= limits.max_streams {
                return Err(Error::too_many_requests(format!(
                    "{} already holds {} open watch streams, the most allowed; close streams it \
                     no longer needs, or raise --max-streams-per-token.",
                    owner.this(),
                    limits.max_streams
                )));
            }
            if new_client && held.clients >= limits.max_instances {
                self.sweep(now, limits.retention);
                if self.owners.get(&owner).map_or(0, |h| h.clients) >= limits.max_instances {
                    return Err(Error::too_many_requests(format!(
                        "{} already watches with {} client ids (connected, or disconnected within \
                         the instance retention period), the most allowed; reuse the client ids \
                         of instances that are gone, or raise --max-instances-per-token.",
                        owner.this(),
                        limits.max_instances
                    )));
                }
            }
        }
        let known = self.known.entry(client).or_insert(Known {
            owner: None,
            streams: 0,
            left: None,
        });
        let before = known.owner;
        known.owner = owner;
        known.streams += 1;
        known.left = None;
        if before != owner {
            if let Some(before) = before {
                let held = self.held(before);
                held.clients = held.clients.saturating_sub(1);
                self.forget_owner_if_idle(before);
            }
            if let Some(owner) = owner {
                self.held(owner).clients += 1;
            }
        }
        if let Some(owner) = owner {
            self.held(owner).streams += 1;
        }
        Ok(())
    }

    /// A stream of `owner` for `client` ended.
    pub(super) fn close(&mut self, client: &(EnvPath, String), owner: Option<Owner>) {
        if let Some(known) = self.known.get_mut(client) {
            known.streams = known.streams.saturating_sub(1);
            if known.streams == 0 {
                known.left = Some(self.clock.now_ms());
            }
        }
        if let Some(owner) = owner {
            let held = self.held(owner);
            held.streams = held.streams.saturating_sub(1);
            self.forget_owner_if_idle(owner);
        }
    }

    /// Whether `owner` watches with `client` now or did within the retention period.
    pub(super) fn watches(
        &self,
        client: &(EnvPath, String),
        owner: Owner,
        retention: Duration,
    ) -> bool {
        self.known
            .get(client)
            .is_some_and(|k| k.owner == Some(owner) && !k.expired(self.clock.now_ms(), retention))
    }
}
