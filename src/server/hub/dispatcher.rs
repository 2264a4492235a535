//! The dispatcher: tails the release events, fans out what changed, attaches
//! and detaches subscribers.

use super::catalog::Catalog;
use super::pipeline::{Pipeline, WriteChunk, SPLIT_WRITES_AT, WRITE_CHUNK};
use super::state::{deleted_frame, load, load_head, ConfigState};
use super::subscriber::{record_sent, Departed, ScopeEntry, ServedBatch, Sink, Subscriber};
use super::{Attach, Command, FastMap, Mode, Owner};
use crate::model::EnvPath;
use crate::server::clock::Clock;
use crate::server::db::{self, watch as sql};
use crate::server::instances::Instances;
use crate::server::metrics::Metrics;
use crate::{Error, Result};
use axum::body::Bytes;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Owns every subscription; see the module documentation.
pub(super) struct Dispatcher {
    pub(super) db: db::Pool,
    /// Release events up to this one have been fanned out.
    pub(super) processed: i64,
    pub(super) scopes: HashMap<EnvPath, ScopeEntry>,
    pub(super) subscribers: FastMap<u64, Subscriber>,
    /// Commit instants of events not yet fanned out, for the latency histogram.
    pub(super) committed: BTreeMap<i64, Instant>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) instances: Arc<Instances>,
    /// The subscriber of each (scope, client id) with a stream open.
    pub(super) clients: HashMap<(EnvPath, String), u64>,
    /// What the last stream of each client id without one open was handed.
    pub(super) departed: HashMap<(EnvPath, String), Departed>,
    /// How long `departed` keeps a record.
    pub(super) retention: Duration,
    /// When `departed` was last swept (milliseconds on `clock`).
    pub(super) last_sweep: i64,
    /// The server's clock, which the retention period is measured on.
    pub(super) clock: Clock,
    /// Every config's state, for per-request evaluation.
    pub(super) catalog: Arc<Catalog>,
}

/// `departed` is swept this often (or as often as the retention period, if shorter).
pub(super) const SWEEP_EVERY: Duration = Duration::from_secs(60);

impl Dispatcher {
    pub(super) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        // Also look for events now and then, in case one was committed
        // without being published (another process writing the database).
        let mut poll = tokio::time::interval(Duration::from_secs(1));
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut batch = Vec::new();
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => batch.push(command),
                    None => return,
                },
                _ = poll.tick() => {}
            }
            while let Ok(command) = commands.try_recv() {
                batch.push(command);
            }
            // With several nodes an event is announced twice (this node's publish and its
            // notification, which may come after the event was read): an announcement of
            // nothing new is no reason to read now. Reading then could pick up an event
            // committed just after, before its own announcement, whose delivery latency
            // would go unmeasured.
            let stale = !batch.is_empty()
                && batch
                    .iter()
                    .all(|c| matches!(c, Command::Committed { id, .. } if *id <= self.processed));
            if stale {
                continue;
            }
            self.step(batch).await;
        }
    }

    async fn step(&mut self, batch: Vec<Command>) {
        let mut attaches = Vec::new();
        let mut closes = Vec::new();
        for command in batch {
            match command {
                Command::Committed { id, at } => {
                    if id > self.processed {
                        self.committed.insert(id, at);
                    }
                }
                Command::Attach(attach) => attaches.push(*attach),
                Command::Detach(id) => self.detach(id),
                Command::Close(owner) => closes.push(owner),
            }
        }
        let now = self.clock.now_ms();
        if now - self.last_sweep >= SWEEP_EVERY.min(self.retention).as_millis() as i64 {
            self.last_sweep = now;
            let retention = self.retention.as_millis() as i64;
            self.departed.retain(|_, d| now - d.at < retention);
        }
        let loaded = match self.read(&attaches).await {
            Ok(loaded) => loaded,
            Err(e) => {
                tracing::error!(error = e.detail(), "push hub cannot read release events");
                for attach in attaches {
                    attach.subscriber.lease.release();
                    let _ = attach
                        .reply
                        .send(Err(Error::internal("cannot read configs")));
                }
                for owner in closes {
                    self.close(owner);
                }
                return;
            }
        };
        let deletions = loaded.deletions;
        let mut served = ServedBatch::new();
        let mut touched: HashSet<EnvPath> = HashSet::new();
        // The catalog first: whoever is handed an event below and then
        // resolves finds the same state.
        for change in &loaded.changed {
            let EnvPath { namespace, env } = &change.scope;
            self.catalog
                .put(namespace, env, &change.key, change.state.clone());
        }
        self.catalog.applied(loaded.up_to);
        for Change {
            scope,
            key,
            state,
            first_event,
            last_event,
        } in loaded.changed
        {
            if !self.scopes.get(&scope).is_some_and(|s| s.is_watched(&key)) {
                continue;
            }
            let latency = self
                .committed
                .range(first_event..)
                .next()
                .map(|(_, at)| at.elapsed());
            self.fan_out(&scope, &key, state, (last_event, latency), &mut served)
                .await;
            touched.insert(scope);
        }
        self.processed = loaded.up_to;
        self.committed = self.committed.split_off(&(self.processed + 1));
        for Fresh { scope, key, state } in loaded.fresh {
            self.scopes
                .entry(scope)
                .or_default()
                .keys
                .entry(key)
                .or_default()
                .set(state);
        }
        for scope in loaded.fully_loaded {
            if let Some(entry) = self.scopes.get_mut(&scope) {
                entry.all_loaded = true;
            }
        }
        for (attach, deletions) in attaches.into_iter().zip(deletions) {
            touched.insert(attach.subscriber.lease.scope.clone());
            self.attach(attach, deletions, &mut served);
        }
        // After the attaches: a stream of the same batch goes too.
        for owner in closes {
            self.close(owner);
        }
        self.instances.served(served);
        self.instances.delivered(self.processed);
        for scope in touched {
            self.instances.changed(&scope);
        }
    }

    /// In one read transaction (one consistent snapshot): the events after
    /// `processed`, the new state of every watched config they touched, and
    /// the states new subscribers need that are not held yet.
    async fn read(&self, attaches: &[Attach]) -> Result<Loaded> {
        let mut tx = db::begin_read(&self.db).await?;
        let events = sql::tail(&mut tx, self.processed).await?;
        let up_to = events.last().map_or(self.processed, |e| e.id);
        // Per touched key, its first and last event in this batch.
        let mut touched: HashMap<(EnvPath, String), (i64, i64)> = HashMap::new();
        for e in events {
            let entry = touched
                .entry((EnvPath::new(e.namespace, e.env), e.key))
                .or_insert((e.id, e.id));
            entry.1 = e.id;
        }
        let mut touched: Vec<_> = touched.into_iter().collect();
        // Fan out in sequence order, so ids on every stream only grow.
        touched.sort_by_key(|(_, (_, last))| *last);
        let mut changed = Vec::new();
        let mut fresh = Vec::new();
        let mut fully_loaded = Vec::new();
        // The states read for the touched configs: a new subscriber that needs one of them
        // (not held, so not fanned out) gets it as fresh, read in the same snapshot.
        let mut read_now: HashMap<(EnvPath, String), Option<Arc<ConfigState>>> = HashMap::new();
        let mut fresh_now: HashSet<(EnvPath, String)> = HashSet::new();
        let mut deletions = Vec::new();
        // Every touched config, watched or not: the catalog holds them all.
        for ((scope, key), events) in touched {
            let state = load(&mut tx, &scope, &key).await?.map(Arc::new);
            read_now.insert((scope.clone(), key.clone()), state.clone());
            changed.push(Change {
                scope,
                key,
                state,
                first_event: events.0,
                last_event: events.1,
            });
        }
        for attach in attaches {
            let scope = &attach.subscriber.lease.scope;
            deletions.push(match attach.last_event_id {
                Some(last) => sql::deletions_after(&mut tx, scope, last)
                    .await?
                    .into_iter()
                    .collect(),
                None => HashMap::new(),
            });
            let held = self.scopes.get(scope);
            match &attach.subscriber.keys {
                Some(keys) => {
                    for key in keys {
                        let is_held = held.is_some_and(|s| s.keys.contains_key(key));
                        let id = (scope.clone(), key.clone());
                        if is_held || !fresh_now.insert(id.clone()) {
                            continue;
                        }
                        let state = match read_now.get(&id) {
                            Some(state) => state.clone(),
                            None => load(&mut tx, scope, key).await?.map(Arc::new),
                        };
                        fresh.push(Fresh {
                            scope: scope.clone(),
                            key: key.clone(),
                            state,
                        });
                    }
                }
                None => {
                    if held.is_some_and(|s| s.all_loaded) || fully_loaded.contains(scope) {
                        continue;
                    }
                    for head in sql::heads_in_scope(&mut tx, scope).await? {
                        let key = head.key.clone();
                        let is_held = held.is_some_and(|s| s.keys.contains_key(&key));
                        let id = (scope.clone(), key.clone());
                        if is_held || !fresh_now.insert(id.clone()) {
                            continue;
                        }
                        let state = match read_now.get(&id) {
                            Some(state) => state.clone(),
                            None => Some(Arc::new(load_head(&mut tx, scope, head).await?)),
                        };
                        fresh.push(Fresh {
                            scope: scope.clone(),
                            key,
                            state,
                        });
                    }
                    fully_loaded.push(scope.clone());
                }
            }
        }
        tx.commit().await?;
        Ok(Loaded {
            up_to,
            changed,
            fresh,
            fully_loaded,
            deletions,
        })
    }

    /// Replaces a key's state and hands each of its subscribers what changed for it.
    async fn fan_out(
        &mut self,
        scope: &EnvPath,
        key: &str,
        state: Option<Arc<ConfigState>>,
        (last_event, latency): (i64, Option<Duration>),
        served: &mut ServedBatch,
    ) {
        let Some(scope_entry) = self.scopes.get_mut(scope) else {
            return;
        };
        let entry = scope_entry.keys.entry(key.to_string()).or_default();
        entry.set(state);
        // The id every frame of this fan-out carries (see `KeyEntry::next_frame`).
        let frame_id = entry.state.as_ref().map_or(last_event, |s| s.event_id);
        let ids: Vec<u64> = entry
            .subscribers
            .iter()
            .chain(scope_entry.wildcard.iter())
            .copied()
            .collect();
        let mut dropped = Vec::new();
        // Frames for outlets: with many subscribers, handed in chunks to a
        // pipeline of two writer threads as they are worked out; else written
        // after this loop. `direct_to`: (subscriber, what it then has).
        let mut pipeline = (ids.len() >= SPLIT_WRITES_AT).then(|| {
            // The served-version write-behind waits until this is delivered.
            self.instances.hold();
            Pipeline::start(ids.len())
        });
        let mut direct = WriteChunk::default();
        let mut direct_to = Vec::new();
        for id in ids {
            let Some(subscriber) = self.subscribers.get_mut(&id) else {
                continue;
            };
            let Some((frame, now)) = entry.next_frame(scope, key, subscriber, last_event) else {
                continue;
            };
            if let Some(frame) = frame {
                if let Sink::Direct(outlet) = &subscriber.sink {
                    direct.push(outlet.clone(), &frame);
                    direct_to.push((id, now));
                    if let Some(pipeline) = &mut pipeline {
                        if direct.len() == WRITE_CHUNK {
                            pipeline.add(std::mem::take(&mut direct));
                        }
                    }
                    continue;
                }
                if !subscriber.sink.offer(&frame) {
                    // Full (stuck or slow) or closed (gone): drop it, never wait.
                    dropped.push(id);
                    continue;
                }
                subscriber.last_id = frame_id;
                self.metrics.pushed(latency);
            }
            record_sent(subscriber, key, now, served);
        }
        let delivered = match pipeline {
            Some(mut pipeline) => {
                pipeline.add(direct);
                pipeline.finish().await
            }
            None => direct.offer_all().collect(),
        };
        for ((id, now), delivered) in direct_to.into_iter().zip(delivered) {
            let Some(subscriber) = self.subscribers.get_mut(&id) else {
                continue;
            };
            if !delivered {
                dropped.push(id);
                continue;
            }
            subscriber.last_id = frame_id;
            self.metrics.pushed(latency);
            record_sent(subscriber, key, now, served);
        }
        for id in dropped {
            self.drop_subscriber(id);
        }
    }

    /// Attaches a new subscriber and hands it what it is owed now.
    ///
    /// An earlier stream of the same client id ends: this one replaces it.
    /// Resuming (`Last-Event-ID`), it is owed the keys whose version resolved
    /// for it changed since that event. When the client id's last stream was
    /// handed nothing after that event (the client got all of it), the server
    /// knows what the client has: the record of that stream; the keys whose
    /// resolved version differs from it are sent, and nothing else, so a lane
    /// change that left it alone sends nothing (also a move to another lane of
    /// the same version, as on a live stream). Without such a record (none
    /// kept, or frames handed after that event may not have arrived), the
    /// keys changed since that event are sent.
    ///
    /// A key deleted since that event (`deletions`) that does not resolve for
    /// it now gets `deleted`, numbered with the deletion: with a record, if
    /// the record had it; without one, whether or not the client had it (a
    /// `deleted` for a key it lacks is harmless: clients treat it as
    /// idempotent). What the record had of a key deleted since is the old
    /// config's, so a config created again under the key is sent anew.
    fn attach(
        &mut self,
        attach: Attach,
        deletions: HashMap<String, i64>,
        served: &mut ServedBatch,
    ) {
        let Attach {
            mut subscriber,
            last_event_id,
            reply,
        } = attach;
        let id = subscriber.lease.id;
        if subscriber.lease.released.load(Ordering::Acquire) {
            // The client went away before the hub got to it; drop what was loaded for it.
            let _ = reply.send(Err(Error::internal("subscriber left")));
            self.forget_unwatched(&subscriber.lease.scope);
            return;
        }
        let keys = self.watch_keys(&subscriber);
        // Only now that this one watches its keys: ending the old one must
        // not forget the states loaded for both.
        let client = (
            subscriber.lease.scope.clone(),
            subscriber.lease.client_id.clone(),
        );
        let resume = self.take_over(&client, subscriber.mode, last_event_id);
        let Some(initial) = self.initial_frames(&mut subscriber, keys, &deletions, &resume, served)
        else {
            return;
        };
        if let Some((last, _)) = initial.last() {
            subscriber.last_id = *last;
        }
        self.subscribers.insert(id, subscriber);
        self.clients.insert(client, id);
        if reply
            .send(Ok(initial.into_iter().map(|(_, f)| f).collect()))
            .is_err()
        {
            self.detach(id);
        }
    }

    /// Registers `subscriber` as a watcher of its keys (or of the whole scope); the keys
    /// it is owed a first frame for.
    fn watch_keys(&mut self, subscriber: &Subscriber) -> Vec<String> {
        let id = subscriber.lease.id;
        let scope_entry = self
            .scopes
            .entry(subscriber.lease.scope.clone())
            .or_default();
        match &subscriber.keys {
            Some(keys) => {
                for key in keys {
                    scope_entry
                        .keys
                        .entry(key.clone())
                        .or_default()
                        .subscribers
                        .insert(id);
                }
                keys.clone()
            }
            None => {
                scope_entry.wildcard.insert(id);
                scope_entry.keys.keys().cloned().collect()
            }
        }
    }

    /// Ends the stream `client` had open, if any, and takes what its last stream was sent
    /// when this one resumes exactly where that one left off.
    fn take_over(
        &mut self,
        client: &(EnvPath, String),
        mode: Mode,
        last_event_id: Option<i64>,
    ) -> Resume {
        if let Some(old) = self.clients.get(client).copied() {
            if let Some(replaced) = self.subscribers.get(&old) {
                tracing::info!(client_id = %replaced.lease.client_id, "a new stream of the same client id replaced its stream");
                replaced.lease.release();
            }
            self.detach(old);
        }
        let record = self
            .departed
            .remove(client)
            .filter(|d| self.clock.now_ms() - d.at < self.retention.as_millis() as i64);
        let exact = mode == Mode::Config
            && last_event_id.is_some_and(|last| record.as_ref().is_some_and(|r| r.last_id == last));
        Resume {
            record: record.filter(|_| exact),
            exact,
            last_event_id,
        }
    }

    /// What a newly attached subscriber is sent first, in event order: each of `keys` it
    /// does not have yet, and the deletions it is owed. `None` when its scope is gone.
    fn initial_frames(
        &mut self,
        subscriber: &mut Subscriber,
        mut keys: Vec<String>,
        deletions: &HashMap<String, i64>,
        resume: &Resume,
        served: &mut ServedBatch,
    ) -> Option<Vec<(i64, Bytes)>> {
        let scope = subscriber.lease.scope.clone();
        let scope_entry = self.scopes.get_mut(&scope)?;
        if subscriber.keys.is_none() {
            // Deleted keys are not among the scope's configs.
            let mut gone: Vec<String> = deletions
                .keys()
                .filter(|key| !scope_entry.keys.contains_key(*key))
                .cloned()
                .collect();
            gone.sort();
            keys.append(&mut gone);
        }
        let Resume {
            record,
            exact,
            last_event_id,
        } = resume;
        let mut initial = Vec::new();
        for key in keys {
            let deleted = deletions.get(&key).copied();
            let had = record.as_ref().and_then(|r| r.sent.get(&key)).copied();
            if let Some(entry) = scope_entry.keys.get_mut(&key) {
                let event_id = entry.state.as_ref().map_or(0, |s| s.event_id);
                if let (Some(had), Some(_), None) = (had, &entry.state, deleted) {
                    subscriber.sent.insert(key.clone(), had);
                }
                if let Some((frame, now)) = entry.next_frame(&scope, &key, subscriber, event_id) {
                    // Resuming without a record: a key unchanged since the client's
                    // last event is one it already has.
                    let unchanged = !exact && last_event_id.is_some_and(|last| event_id <= last);
                    if let (Some(frame), false) = (frame, unchanged) {
                        initial.push((event_id, frame));
                        self.metrics.pushed(None);
                    }
                    record_sent(subscriber, &key, now, served);
                }
            }
            let owed = record.is_none() || had.is_some();
            if let (Some(deleted), true) = (deleted, owed) {
                if !subscriber.sent.contains_key(&key) {
                    initial.push((deleted, deleted_frame(&scope, &key, deleted)));
                    self.metrics.pushed(None);
                }
            }
        }
        initial.sort_by_key(|(event_id, _)| *event_id);
        Some(initial)
    }

    /// Ends every stream of `owner`.
    fn close(&mut self, owner: Owner) {
        let ids: Vec<u64> = self
            .subscribers
            .iter()
            .filter(|(_, s)| s.lease.owner == Some(owner))
            .map(|(id, _)| *id)
            .collect();
        if !ids.is_empty() {
            tracing::info!(
                count = ids.len(),
                ?owner,
                "closing the streams of a revoked or changed owner"
            );
        }
        for id in ids {
            if let Some(subscriber) = self.subscribers.get(&id) {
                subscriber.lease.release();
            }
            self.detach(id);
        }
    }

    /// Drops a subscriber whose queue is full or whose stream is gone: its
    /// stream ends after what is queued, and the client reconnects.
    fn drop_subscriber(&mut self, id: u64) {
        if let Some(subscriber) = self.subscribers.get(&id) {
            tracing::info!(client_id = %subscriber.lease.client_id, "dropped a subscriber that did not keep up");
            subscriber.lease.release();
        }
        self.detach(id);
    }

    fn detach(&mut self, id: u64) {
        let Some(mut subscriber) = self.subscribers.remove(&id) else {
            return;
        };
        let client = (
            subscriber.lease.scope.clone(),
            subscriber.lease.client_id.clone(),
        );
        if self.clients.get(&client) == Some(&id) {
            self.clients.remove(&client);
            if subscriber.mode == Mode::Config {
                let departed = Departed {
                    sent: std::mem::take(&mut subscriber.sent),
                    last_id: subscriber.last_id,
                    at: self.clock.now_ms(),
                };
                self.departed.insert(client, departed);
            }
        }
        let scope = &subscriber.lease.scope;
        let Some(entry) = self.scopes.get_mut(scope) else {
            return;
        };
        entry.wildcard.remove(&id);
        for key in subscriber.keys.iter().flatten() {
            if let Some(k) = entry.keys.get_mut(key) {
                k.subscribers.remove(&id);
            }
        }
        self.forget_unwatched(scope);
    }

    /// Drops the states nobody in `scope` watches any more: unwatched states
    /// are not kept up to date, so they must not be used later.
    fn forget_unwatched(&mut self, scope: &EnvPath) {
        let Some(entry) = self.scopes.get_mut(scope) else {
            return;
        };
        if entry.wildcard.is_empty() {
            entry.all_loaded = false;
            entry.keys.retain(|_, k| !k.subscribers.is_empty());
        }
        if entry.keys.is_empty() && entry.wildcard.is_empty() {
            self.scopes.remove(scope);
        }
    }
}

/// A watched config touched by a batch of events.
pub(super) struct Change {
    pub(super) scope: EnvPath,
    pub(super) key: String,
    /// `None`: the config is gone.
    pub(super) state: Option<Arc<ConfigState>>,
    /// The first and last event of the batch about it.
    pub(super) first_event: i64,
    pub(super) last_event: i64,
}

/// A state a new subscriber needs (`None` while the config does not exist).
pub(super) struct Fresh {
    pub(super) scope: EnvPath,
    pub(super) key: String,
    pub(super) state: Option<Arc<ConfigState>>,
}

/// What one dispatcher step read.
pub(super) struct Loaded {
    /// The last release event read.
    pub(super) up_to: i64,
    /// Configs touched by the events (watched or not), in order of their last event:
    pub(super) changed: Vec<Change>,
    /// States new subscribers need.
    pub(super) fresh: Vec<Fresh>,
    /// Scopes whose every config is now held.
    pub(super) fully_loaded: Vec<EnvPath>,
    /// Per attach (in order), when it resumes: the keys of its scope deleted
    /// since its `Last-Event-ID`, with the newest deletion's event.
    pub(super) deletions: Vec<HashMap<String, i64>>,
}

/// How a newly attached stream resumes: the record of the client's last stream when it
/// resumes exactly where that one left off (`exact`), and the `Last-Event-ID` it sent.
struct Resume {
    record: Option<Departed>,
    exact: bool,
    last_event_id: Option<i64>,
}
