//! The push hub: who is connected (subscribers, with their labels), and the
//! fan-out of committed release events to their watch streams.
//!
//! One task (the dispatcher) owns every subscription and, per watched
//! (namespace, environment, key), the config's state: its format, its stable
//! release and its active lanes, each with content. When release events
//! commit, it reads the tail of the release-event sequence and the new state
//! of each touched config once, in one read transaction, then re-resolves
//! only that key's subscribers with pure domain code, and hands each of them
//! a pre-serialized frame shared by everyone who gets the same (version,
//! lane). Handing off is `try_send` on a small per-subscriber queue: a
//! subscriber whose queue is full is dropped (it reconnects and resumes with
//! `Last-Event-ID`), so no subscriber ever slows a release or another
//! subscriber.
//!
//! Because the dispatcher processes events in sequence order and attaches
//! new subscribers between batches, the `id`s a stream carries only grow:
//! a client that resumes from the last id it saw misses nothing.
//!
//! Each stream knows who opened it (an [`Owner`]: the token or the signed-in
//! user), so revoking the token or changing the user ends its streams; each
//! client id has at most one stream per (namespace, environment): a new one
//! replaces the old, and takes over the record of what the old one was handed,
//! which makes a resume exact (see [`Dispatcher::attach`]).

use crate::domain::format::ConfigFormat;
use crate::domain::lane::{resolve, LaneRule};
use crate::domain::selector::Selector;
use crate::domain::Context;
use crate::model::{Deleted, ReleaseEvent, Resolved, Rules, RulesLane, RulesVersion};
use crate::server::auth::Actor;
use crate::server::db::watch as sql;
use crate::server::metrics::Metrics;
use crate::server::outlet::Outlet;
use crate::server::subscribers::{Instances, Scope, ServedChange};
use crate::{Error, Result};
use axum::body::Bytes;
use sqlx::{SqliteConnection, SqlitePool};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot};

/// Frames a subscriber may have waiting before it counts as stuck and is dropped.
pub const QUEUE_FRAMES: usize = 16;

/// The fan-out's maps, looked up once or twice per subscriber and release:
/// a fast hash, seeded per map.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

/// A subscriber as the hub knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectedInstance {
    pub client_id: String,
    /// Its labels plus `client_id`: the context lanes are evaluated against.
    pub context: Context,
}

/// Per client id: the instance and how many streams it holds open.
type ScopeStreams = HashMap<String, (ConnectedInstance, usize)>;

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
    fn this(self) -> &'static str {
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
struct Clients {
    known: HashMap<(Scope, String), Known>,
    owners: HashMap<Owner, Held>,
    /// Expired entries are swept once `known` grows to this size.
    sweep_at: usize,
}

struct Known {
    owner: Option<Owner>,
    /// Streams open now (two for a moment while a new one replaces the old).
    streams: usize,
    /// When its last stream ended.
    left: Option<Instant>,
}

impl Known {
    fn expired(&self, now: Instant, retention: Duration) -> bool {
        self.streams == 0
            && self
                .left
                .is_some_and(|left| now.duration_since(left) >= retention)
    }
}

/// Per owner: open streams, and client ids in `Clients::known` it owns.
#[derive(Default, Clone, Copy)]
struct Held {
    streams: usize,
    clients: usize,
}

impl Clients {
    fn held(&mut self, owner: Owner) -> &mut Held {
        self.owners.entry(owner).or_default()
    }

    fn forget_owner_if_idle(&mut self, owner: Owner) {
        if self
            .owners
            .get(&owner)
            .is_some_and(|h| h.streams == 0 && h.clients == 0)
        {
            self.owners.remove(&owner);
        }
    }

    fn sweep(&mut self, now: Instant, retention: Duration) {
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
    fn open(
        &mut self,
        client: (Scope, String),
        owner: Option<Owner>,
        limits: &Limits,
    ) -> Result<()> {
        let now = Instant::now();
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
    fn close(&mut self, client: &(Scope, String), owner: Option<Owner>) {
        if let Some(known) = self.known.get_mut(client) {
            known.streams = known.streams.saturating_sub(1);
            if known.streams == 0 {
                known.left = Some(Instant::now());
            }
        }
        if let Some(owner) = owner {
            let held = self.held(owner);
            held.streams = held.streams.saturating_sub(1);
            self.forget_owner_if_idle(owner);
        }
    }

    /// Whether `owner` watches with `client` now or did within the retention period.
    fn watches(&self, client: &(Scope, String), owner: Owner, retention: Duration) -> bool {
        self.known
            .get(client)
            .is_some_and(|k| k.owner == Some(owner) && !k.expired(Instant::now(), retention))
    }
}

/// Who is connected now, per (namespace, env); an instance may hold several streams.
#[derive(Default)]
struct Registry {
    connected: RwLock<HashMap<Scope, ScopeStreams>>,
    clients: Mutex<Clients>,
}

impl Registry {
    fn connected(&self, namespace: &str, env: &str) -> Vec<ConnectedInstance> {
        let map = self.connected.read().expect("hub lock");
        let mut list: Vec<ConnectedInstance> = map
            .get(&(namespace.to_string(), env.to_string()))
            .map(|m| m.values().map(|(i, _)| i.clone()).collect())
            .unwrap_or_default();
        list.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        list
    }

    fn register(&self, namespace: &str, env: &str, instance: ConnectedInstance) {
        let mut map = self.connected.write().expect("hub lock");
        let entry = map
            .entry((namespace.to_string(), env.to_string()))
            .or_default()
            .entry(instance.client_id.clone())
            .or_insert_with(|| (instance.clone(), 0));
        entry.0 = instance;
        entry.1 += 1;
    }

    fn unregister(&self, namespace: &str, env: &str, client_id: &str) {
        let mut map = self.connected.write().expect("hub lock");
        let scope = (namespace.to_string(), env.to_string());
        if let Some(m) = map.get_mut(&scope) {
            if let Some((_, streams)) = m.get_mut(client_id) {
                *streams -= 1;
                if *streams == 0 {
                    m.remove(client_id);
                }
            }
            if m.is_empty() {
                map.remove(&scope);
            }
        }
    }
}

pub struct Hub {
    registry: Arc<Registry>,
    commands: mpsc::UnboundedSender<Command>,
    metrics: Arc<Metrics>,
    instances: Arc<Instances>,
    next_id: AtomicU64,
    limits: Limits,
    /// Revoked tokens (a revocation is final): see [`Hub::is_closed`].
    revoked: RwLock<HashSet<i64>>,
    /// Owners whose streams were just closed, for the streams the hub does
    /// not hold (the live instances view).
    closed: broadcast::Sender<Owner>,
}

impl Hub {
    /// Starts the dispatcher; it follows the release events committed from now on.
    pub async fn start(
        db: SqlitePool,
        metrics: Arc<Metrics>,
        instances: Arc<Instances>,
        limits: Limits,
    ) -> Result<Self> {
        let processed = sql::last_event_id(&mut *db.acquire().await?).await?;
        let (commands, receiver) = mpsc::unbounded_channel();
        let dispatcher = Dispatcher {
            db,
            processed,
            scopes: HashMap::new(),
            subscribers: FastMap::default(),
            committed: BTreeMap::new(),
            metrics: metrics.clone(),
            instances: instances.clone(),
            clients: HashMap::new(),
            departed: HashMap::new(),
            retention: limits.retention,
            last_sweep: Instant::now(),
        };
        tokio::spawn(dispatcher.run(receiver));
        Ok(Self {
            registry: Arc::default(),
            commands,
            metrics,
            instances,
            next_id: AtomicU64::new(1),
            limits,
            revoked: RwLock::default(),
            closed: broadcast::channel(64).0,
        })
    }

    /// Ends every stream `owner` opened (its token was revoked, or the user
    /// was disabled or its role or limits changed); clients that are still
    /// allowed reconnect and are authorized afresh. Call after the change
    /// committed.
    pub fn close_streams_of(&self, owner: Owner) {
        if let Owner::Token(id) = owner {
            self.revoked.write().expect("hub lock").insert(id);
        }
        let _ = self.commands.send(Command::Close(owner));
        let _ = self.closed.send(owner);
    }

    /// Whether `owner` is a revoked token. A stream authorized just before a
    /// revocation committed is attached after the revocation's close went by:
    /// checked after attaching, this ends it.
    pub fn is_closed(&self, owner: Owner) -> bool {
        match owner {
            Owner::Token(id) => self.revoked.read().expect("hub lock").contains(&id),
            Owner::User(_) => false,
        }
    }

    /// Owners whose streams are being closed, from now on.
    pub fn closed_owners(&self) -> broadcast::Receiver<Owner> {
        self.closed.subscribe()
    }

    /// Whether `owner` watches (namespace, env) with `client_id` now, or did
    /// within the instance retention period: only such an instance may report.
    pub fn watches(&self, owner: Owner, scope: &Scope, client_id: &str) -> bool {
        let client = (scope.clone(), client_id.to_string());
        self.registry.clients.lock().expect("hub lock").watches(
            &client,
            owner,
            self.limits.retention,
        )
    }

    /// Subscribers connected now to (namespace, env), ordered by client id.
    pub fn connected(&self, namespace: &str, env: &str) -> Vec<ConnectedInstance> {
        self.registry.connected(namespace, env)
    }

    pub fn register(&self, namespace: &str, env: &str, instance: ConnectedInstance) {
        self.registry.register(namespace, env, instance);
    }

    pub fn unregister(&self, namespace: &str, env: &str, client_id: &str) {
        self.registry.unregister(namespace, env, client_id);
    }

    /// Called after a release event has committed: its subscribers get what
    /// changed for them.
    pub fn publish(&self, event: &ReleaseEvent) {
        self.metrics.release(&event.kind);
        let _ = self.commands.send(Command::Committed {
            id: event.id,
            at: Instant::now(),
        });
    }

    /// Opens a watch stream: registers the subscriber, and returns the frames
    /// it gets on connect and the queue of those it gets afterwards.
    pub async fn subscribe(&self, request: WatchRequest) -> Result<Subscription> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let scope = (request.namespace.clone(), request.env.clone());
        let mut context = request.labels.clone();
        context.insert("client_id".into(), request.client_id.clone());
        self.registry.clients.lock().expect("hub lock").open(
            (scope.clone(), request.client_id.clone()),
            request.owner,
            &self.limits,
        )?;
        let lease = Arc::new(Lease {
            id,
            scope: scope.clone(),
            client_id: request.client_id.clone(),
            owner: request.owner,
            registry: self.registry.clone(),
            instances: self.instances.clone(),
            metrics: self.metrics.clone(),
            released: AtomicBool::new(false),
        });
        self.registry.register(
            &scope.0,
            &scope.1,
            ConnectedInstance {
                client_id: request.client_id.clone(),
                context: context.clone(),
            },
        );
        self.instances
            .connected(&scope, &request.client_id, &request.labels);
        self.metrics.subscriber_connected();
        let (sink, queue) = match request.outlet {
            Some(outlet) => (Sink::Direct(outlet), None),
            None => {
                let (sender, queue) = mpsc::channel(QUEUE_FRAMES);
                (Sink::Queue(sender), Some(queue))
            }
        };
        let (reply, initial) = oneshot::channel();
        let guard = Detach {
            lease: lease.clone(),
            commands: self.commands.clone(),
        };
        self.commands
            .send(Command::Attach(Box::new(Attach {
                subscriber: Subscriber {
                    lease,
                    context,
                    mode: request.mode,
                    keys: request.keys,
                    sink,
                    sent: FastMap::default(),
                    last_id: request.last_event_id.unwrap_or(0),
                },
                last_event_id: request.last_event_id,
                reply,
            })))
            .map_err(|_| Error::internal("the push hub has stopped"))?;
        let initial = initial
            .await
            .map_err(|_| Error::internal("the push hub has stopped"))??;
        Ok(Subscription {
            initial,
            queue,
            guard,
        })
    }
}

/// What a watch stream asks for.
pub struct WatchRequest {
    pub namespace: String,
    pub env: String,
    /// `None`: every key of the namespace and environment, including later ones.
    pub keys: Option<Vec<String>>,
    pub client_id: String,
    pub labels: Context,
    pub mode: Mode,
    pub last_event_id: Option<i64>,
    /// A lean connection's socket: the hub writes events into it directly
    /// (src/server/outlet.rs); without one, they go through `Subscription::queue`.
    pub outlet: Option<Arc<Outlet>>,
    /// Who opens it; its streams end when that token is revoked or that user changed.
    pub owner: Option<Owner>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `config` events: the version resolved for this subscriber.
    Config,
    /// `rules` events: the stable release and every active lane, for local resolution.
    Rules,
}

/// An open watch stream's side of the hub.
pub struct Subscription {
    /// Frames to send first, in id order.
    pub initial: Vec<Bytes>,
    /// Later frames, unless the hub writes them to an outlet; closes when
    /// the hub drops the subscriber.
    pub queue: Option<mpsc::Receiver<Bytes>>,
    /// Unsubscribes when dropped (the stream ended or the client went away).
    pub guard: Detach,
}

/// Unsubscribes on drop.
pub struct Detach {
    lease: Arc<Lease>,
    commands: mpsc::UnboundedSender<Command>,
}

impl Detach {
    /// Heartbeats count as seeing the instance.
    pub fn seen(&self) {
        let lease = &self.lease;
        lease.instances.seen(&lease.scope, &lease.client_id);
    }
}

impl Drop for Detach {
    fn drop(&mut self) {
        self.lease.release();
        let _ = self.commands.send(Command::Detach(self.lease.id));
    }
}

/// The bookkeeping of one open stream, undone exactly once: when the stream
/// ends or when the hub drops a stuck subscriber, whichever comes first.
struct Lease {
    id: u64,
    scope: Scope,
    client_id: String,
    owner: Option<Owner>,
    registry: Arc<Registry>,
    instances: Arc<Instances>,
    metrics: Arc<Metrics>,
    released: AtomicBool,
}

impl Lease {
    fn release(&self) {
        if !self.released.swap(true, Ordering::AcqRel) {
            self.registry
                .unregister(&self.scope.0, &self.scope.1, &self.client_id);
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

enum Command {
    Committed {
        id: i64,
        at: Instant,
    },
    Attach(Box<Attach>),
    Detach(u64),
    /// Ends every stream of this owner.
    Close(Owner),
}

struct Attach {
    subscriber: Subscriber,
    last_event_id: Option<i64>,
    reply: oneshot::Sender<Result<Vec<Bytes>>>,
}

struct Subscriber {
    lease: Arc<Lease>,
    context: Context,
    mode: Mode,
    keys: Option<Vec<String>>,
    sink: Sink,
    /// Per key, what this subscriber has been handed.
    sent: FastMap<String, Sent>,
    /// The id of the last frame handed to it (or the `Last-Event-ID` it
    /// resumed from, while none was): the id the client has when it got
    /// everything it was handed.
    last_id: i64,
}

/// What a client id's last stream was handed, kept after the stream ended
/// for an exact resume.
struct Departed {
    sent: FastMap<String, Sent>,
    last_id: i64,
    at: Instant,
}

/// Where a subscriber's events go.
enum Sink {
    /// A queue its stream's body reads (a connection served by hyper).
    Queue(mpsc::Sender<Bytes>),
    /// Its socket (a lean connection).
    Direct(Arc<Outlet>),
}

impl Sink {
    /// Hands over a frame without waiting; `false`: the subscriber is stuck
    /// or gone and must be dropped.
    fn offer(&self, frame: &Bytes) -> bool {
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
enum Sent {
    /// A `config` event with this version (and lane).
    Config { version: i64, lane: Option<i64> },
    /// A `rules` event of the config state after this release event.
    Rules { event_id: i64 },
}

/// A served version: its number, checksum and content.
#[derive(Debug, Clone)]
struct Served {
    version: i64,
    checksum: String,
    content: String,
}

/// Everything needed to resolve one config for any context.
#[derive(Debug)]
pub struct ConfigState {
    namespace: String,
    env: String,
    key: String,
    format: ConfigFormat,
    /// The newest release event of the config (the SSE id of frames about it).
    event_id: i64,
    stable: Option<Served>,
    /// Active lanes in resolution order, with the content each serves.
    rules: Vec<LaneRule>,
    lanes: Vec<(RulesLaneMeta, Served)>,
}

#[derive(Debug, Clone)]
struct RulesLaneMeta {
    selector: String,
    percentage: f64,
}

/// The version a context gets: from a lane, or the stable release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Resolution {
    pub version: i64,
    pub lane: Option<i64>,
}

impl ConfigState {
    /// The single place where the watch stream decides what a context gets
    /// (PRODUCT.md section 2): the first matching active lane, else the stable
    /// release, else nothing.
    pub fn resolve_for(&self, context: &Context) -> Option<Resolution> {
        match resolve(&self.rules, context) {
            Some(lane) => Some(Resolution {
                version: lane.version,
                lane: Some(lane.id),
            }),
            None => self.stable.as_ref().map(|s| Resolution {
                version: s.version,
                lane: None,
            }),
        }
    }

    fn served(&self, resolution: Resolution) -> Option<&Served> {
        match resolution.lane {
            None => self.stable.as_ref(),
            Some(id) => self
                .rules
                .iter()
                .position(|r| r.id == id)
                .map(|i| &self.lanes[i].1),
        }
    }

    fn config_frame(&self, resolution: Resolution) -> Option<Bytes> {
        let served = self.served(resolution)?;
        let payload = Resolved {
            namespace: self.namespace.clone(),
            env: self.env.clone(),
            key: self.key.clone(),
            format: self.format,
            version: served.version,
            lane: resolution.lane,
            checksum: served.checksum.clone(),
            content: served.content.clone(),
        };
        Some(frame("config", self.event_id, &payload))
    }

    fn rules_frame(&self) -> Bytes {
        let payload = Rules {
            namespace: self.namespace.clone(),
            env: self.env.clone(),
            key: self.key.clone(),
            format: self.format,
            stable: self.stable.as_ref().map(|s| RulesVersion {
                version: s.version,
                checksum: s.checksum.clone(),
                content: s.content.clone(),
            }),
            lanes: self
                .rules
                .iter()
                .zip(&self.lanes)
                .map(|(rule, (meta, served))| RulesLane {
                    id: rule.id,
                    version: rule.version,
                    selector: meta.selector.clone(),
                    targets: rule.targets.clone(),
                    percentage: meta.percentage,
                    stickiness: rule.stickiness.clone(),
                    salt: rule.salt.clone(),
                    priority: rule.priority,
                    checksum: served.checksum.clone(),
                    content: served.content.clone(),
                })
                .collect(),
        };
        frame("rules", self.event_id, &payload)
    }
}

/// One SSE event, ready for the wire.
fn frame(event: &str, id: i64, payload: &impl serde::Serialize) -> Bytes {
    // Compact JSON has no raw newlines, so the payload fits one `data:` line.
    let data = serde_json::to_string(payload).unwrap_or_else(|_| "null".into());
    Bytes::from(format!("event: {event}\nid: {id}\ndata: {data}\n\n"))
}

fn deleted_frame(scope: &Scope, key: &str, id: i64) -> Bytes {
    let payload = Deleted {
        namespace: scope.0.clone(),
        env: scope.1.clone(),
        key: key.to_string(),
    };
    frame("deleted", id, &payload)
}

/// Reads one config's state; `None` when the config does not exist.
async fn load_head(
    conn: &mut SqliteConnection,
    scope: &Scope,
    head: sql::ConfigHead,
) -> Result<ConfigState> {
    let stable = match head.stable_version {
        Some(version) => sql::content(&mut *conn, head.id, version)
            .await?
            .map(|c| Served {
                version,
                checksum: c.checksum,
                content: c.content,
            }),
        None => None,
    };
    let mut rules = Vec::new();
    let mut lanes = Vec::new();
    for lane in sql::active_lanes(&mut *conn, head.id).await? {
        let selector = Selector::parse(&lane.selector)
            .map_err(|e| Error::internal(format!("lane {} has a bad selector: {e}", lane.id)))?;
        rules.push(LaneRule {
            id: lane.id,
            version: lane.version,
            selector,
            targets: serde_json::from_str(&lane.targets).unwrap_or_default(),
            percentage_bp: u32::try_from(lane.percentage_bp).unwrap_or(0),
            stickiness: lane.stickiness,
            salt: lane.salt,
            priority: lane.priority,
        });
        lanes.push((
            RulesLaneMeta {
                selector: lane.selector,
                percentage: lane.percentage_bp as f64 / 100.0,
            },
            Served {
                version: lane.version,
                checksum: lane.checksum,
                content: lane.content,
            },
        ));
    }
    Ok(ConfigState {
        namespace: scope.0.clone(),
        env: scope.1.clone(),
        // The table's CHECK constraint admits only known formats.
        format: head.format.parse().unwrap_or(ConfigFormat::Text),
        key: head.key,
        event_id: head.event_id,
        stable,
        rules,
        lanes,
    })
}

async fn load(
    conn: &mut SqliteConnection,
    scope: &Scope,
    key: &str,
) -> Result<Option<ConfigState>> {
    match sql::head(&mut *conn, &scope.0, &scope.1, key).await? {
        Some(head) => Ok(Some(load_head(conn, scope, head).await?)),
        None => Ok(None),
    }
}

/// A watched key: its state (`None` while the config does not exist) and
/// the frames built for it so far, shared by every subscriber that gets them.
#[derive(Default)]
struct KeyEntry {
    state: Option<Arc<ConfigState>>,
    subscribers: FastSet<u64>,
    frames: FastMap<Resolution, Bytes>,
    rules_frame: Option<Bytes>,
}

impl KeyEntry {
    fn set(&mut self, state: Option<ConfigState>) {
        self.state = state.map(Arc::new);
        self.frames.clear();
        self.rules_frame = None;
    }

    /// The frame `subscriber` should get now, and what it will then have; `None` when nothing changed for it.
    /// `event_id` numbers a `deleted` frame when the config itself is gone.
    fn next_frame(
        &mut self,
        scope: &Scope,
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
struct ScopeEntry {
    keys: HashMap<String, KeyEntry>,
    /// Subscribers of every key of the scope.
    wildcard: FastSet<u64>,
    /// Whether `keys` holds every config of the scope (needed while `wildcard` is not empty).
    all_loaded: bool,
}

impl ScopeEntry {
    fn is_watched(&self, key: &str) -> bool {
        !self.wildcard.is_empty()
            || self
                .keys
                .get(key)
                .is_some_and(|entry| !entry.subscribers.is_empty())
    }
}

/// Owns every subscription; see the module documentation.
struct Dispatcher {
    db: SqlitePool,
    /// Release events up to this one have been fanned out.
    processed: i64,
    scopes: HashMap<Scope, ScopeEntry>,
    subscribers: FastMap<u64, Subscriber>,
    /// Commit instants of events not yet fanned out, for the latency histogram.
    committed: BTreeMap<i64, Instant>,
    metrics: Arc<Metrics>,
    instances: Arc<Instances>,
    /// The subscriber of each (scope, client id) with a stream open.
    clients: HashMap<(Scope, String), u64>,
    /// What the last stream of each client id without one open was handed.
    departed: HashMap<(Scope, String), Departed>,
    /// How long `departed` keeps a record.
    retention: Duration,
    last_sweep: Instant,
}

/// `departed` is swept this often (or as often as the retention period, if shorter).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Served-version changes for the instances registry.
type ServedBatch = Vec<ServedChange>;

impl Dispatcher {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
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
        if self.last_sweep.elapsed() >= SWEEP_EVERY.min(self.retention) {
            self.last_sweep = Instant::now();
            let retention = self.retention;
            self.departed.retain(|_, d| d.at.elapsed() < retention);
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
        let mut served = ServedBatch::new();
        let mut touched: HashSet<Scope> = HashSet::new();
        for (scope, key, state, (first_event, last_event)) in loaded.changed {
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
        for (scope, key, state) in loaded.fresh {
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
        for attach in attaches {
            touched.insert(attach.subscriber.lease.scope.clone());
            self.attach(attach, &mut served);
        }
        // After the attaches: a stream of the same batch goes too.
        for owner in closes {
            self.close(owner);
        }
        self.instances.served(served);
        for scope in touched {
            self.instances.changed(&scope);
        }
    }

    /// In one read transaction (one consistent snapshot): the events after
    /// `processed`, the new state of every watched config they touched, and
    /// the states new subscribers need that are not held yet.
    async fn read(&self, attaches: &[Attach]) -> Result<Loaded> {
        let mut tx = self.db.begin().await?;
        let events = sql::tail(&mut tx, self.processed).await?;
        let up_to = events.last().map_or(self.processed, |e| e.id);
        // Per touched key, its first and last event in this batch.
        let mut touched: HashMap<(Scope, String), (i64, i64)> = HashMap::new();
        for e in events {
            let entry = touched
                .entry(((e.namespace, e.env), e.key))
                .or_insert((e.id, e.id));
            entry.1 = e.id;
        }
        let mut touched: Vec<_> = touched.into_iter().collect();
        // Fan out in sequence order, so ids on every stream only grow.
        touched.sort_by_key(|(_, (_, last))| *last);
        let mut changed = Vec::new();
        let mut fresh = Vec::new();
        let mut fully_loaded = Vec::new();
        let mut loaded_now: HashSet<(Scope, String)> = HashSet::new();
        for ((scope, key), events) in touched {
            if !self.scopes.get(&scope).is_some_and(|s| s.is_watched(&key)) {
                continue;
            }
            let state = load(&mut tx, &scope, &key).await?;
            loaded_now.insert((scope.clone(), key.clone()));
            changed.push((scope, key, state, events));
        }
        for attach in attaches {
            let scope = &attach.subscriber.lease.scope;
            let held = self.scopes.get(scope);
            match &attach.subscriber.keys {
                Some(keys) => {
                    for key in keys {
                        let is_held = held.is_some_and(|s| s.keys.contains_key(key));
                        if is_held || !loaded_now.insert((scope.clone(), key.clone())) {
                            continue;
                        }
                        fresh.push((scope.clone(), key.clone(), load(&mut tx, scope, key).await?));
                    }
                }
                None => {
                    if held.is_some_and(|s| s.all_loaded) || fully_loaded.contains(scope) {
                        continue;
                    }
                    for head in sql::heads_in_scope(&mut tx, &scope.0, &scope.1).await? {
                        let key = head.key.clone();
                        let is_held = held.is_some_and(|s| s.keys.contains_key(&key));
                        if is_held || !loaded_now.insert((scope.clone(), key.clone())) {
                            continue;
                        }
                        let state = load_head(&mut tx, scope, head).await?;
                        fresh.push((scope.clone(), key, Some(state)));
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
        })
    }

    /// Replaces a key's state and hands each of its subscribers what changed for it.
    async fn fan_out(
        &mut self,
        scope: &Scope,
        key: &str,
        state: Option<ConfigState>,
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
    fn attach(&mut self, attach: Attach, served: &mut ServedBatch) {
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
        let scope = subscriber.lease.scope.clone();
        let scope_entry = self.scopes.entry(scope.clone()).or_default();
        let keys: Vec<String> = match &subscriber.keys {
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
        };
        // Only now that this one watches its keys: ending the old one must
        // not forget the states loaded for both.
        let client = (scope.clone(), subscriber.lease.client_id.clone());
        if let Some(old) = self.clients.get(&client).copied() {
            if let Some(replaced) = self.subscribers.get(&old) {
                tracing::info!(client_id = %replaced.lease.client_id, "a new stream of the same client id replaced its stream");
                replaced.lease.release();
            }
            self.detach(old);
        }
        let record = self
            .departed
            .remove(&client)
            .filter(|d| d.at.elapsed() < self.retention);
        let exact = subscriber.mode == Mode::Config
            && last_event_id.is_some_and(|last| record.as_ref().is_some_and(|r| r.last_id == last));
        let record = record.filter(|_| exact);
        let Some(scope_entry) = self.scopes.get_mut(&scope) else {
            return;
        };
        let mut initial = Vec::new();
        for key in keys {
            let Some(entry) = scope_entry.keys.get_mut(&key) else {
                continue;
            };
            let event_id = entry.state.as_ref().map_or(0, |s| s.event_id);
            if let (Some(record), Some(_)) = (&record, &entry.state) {
                if let Some(had) = record.sent.get(&key) {
                    subscriber.sent.insert(key.clone(), *had);
                }
            }
            let Some((frame, now)) = entry.next_frame(&scope, &key, &subscriber, event_id) else {
                continue;
            };
            // Resuming without a record: a key unchanged since the client's
            // last event is one it already has.
            let unchanged = !exact && last_event_id.is_some_and(|last| event_id <= last);
            if let (Some(frame), false) = (frame, unchanged) {
                initial.push((event_id, frame));
                self.metrics.pushed(None);
            }
            record_sent(&mut subscriber, &key, now, served);
        }
        initial.sort_by_key(|(event_id, _)| *event_id);
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
                    at: Instant::now(),
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
    fn forget_unwatched(&mut self, scope: &Scope) {
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

/// Fan-outs to at least this many subscribers are written by two threads.
const SPLIT_WRITES_AT: usize = 256;
/// Writes handed over at a time.
const WRITE_CHUNK: usize = 64;

/// The writes of a large fan-out, done by two threads: the dispatcher's and a
/// helper from the blocking pool. Each write is a system call that also runs
/// the loopback or network path of the packet (about 10 µs), against about
/// 1 µs to work out what a subscriber gets. So the helper starts writing the
/// first chunk while the dispatcher is still working out the rest, and once
/// that is done the dispatcher writes too; each thread takes the next chunk
/// when done with one, so a thread that gets less CPU does fewer writes. A
/// fan-out has at most one frame per subscriber and the next one starts after
/// this one has finished, so events keep their order on every stream.
struct Pipeline {
    shared: Arc<Writes>,
    /// Taken by [`Pipeline::finish`].
    helper: Option<tokio::task::JoinHandle<()>>,
    /// The writes added so far.
    added: usize,
}

struct Writes {
    queue: Mutex<WriteQueue>,
    more: Condvar,
    /// Per write, in the order added: whether the outlet took it.
    delivered: Vec<AtomicBool>,
}

/// Frames to write, each to its outlet. A fan-out has one frame per
/// (version, lane), so a chunk holds each of its frames once: handing a
/// frame to every write would move its shared reference count back and
/// forth between the two threads' CPUs, once per subscriber.
#[derive(Default)]
struct WriteChunk {
    frames: Vec<Bytes>,
    /// (outlet, index of its frame).
    writes: Vec<(Arc<Outlet>, usize)>,
}

impl WriteChunk {
    fn push(&mut self, outlet: Arc<Outlet>, frame: &Bytes) {
        let same = |f: &Bytes| f.as_ptr() == frame.as_ptr() && f.len() == frame.len();
        let i = match self.frames.iter().rposition(same) {
            Some(i) => i,
            None => {
                self.frames.push(frame.clone());
                self.frames.len() - 1
            }
        };
        self.writes.push((outlet, i));
    }

    fn len(&self) -> usize {
        self.writes.len()
    }

    fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Offers each frame to its outlet, in order: whether each took it.
    fn offer_all(&self) -> impl Iterator<Item = bool> + '_ {
        self.writes
            .iter()
            .map(|(outlet, i)| outlet.offer(&self.frames[*i]))
    }
}

#[derive(Default)]
struct WriteQueue {
    /// Chunks not taken yet, each with the index of its first write.
    chunks: VecDeque<(usize, WriteChunk)>,
    /// No more chunks will come.
    done: bool,
}

impl Writes {
    fn queue(&self) -> std::sync::MutexGuard<'_, WriteQueue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes chunks and writes them until none is left and none will come.
    fn work(&self) {
        loop {
            let next = {
                let mut queue = self.queue();
                loop {
                    if let Some(chunk) = queue.chunks.pop_front() {
                        break Some(chunk);
                    }
                    if queue.done {
                        break None;
                    }
                    queue = self.more.wait(queue).unwrap_or_else(|e| e.into_inner());
                }
            };
            let Some((first, chunk)) = next else {
                return;
            };
            for (i, delivered) in chunk.offer_all().enumerate() {
                self.delivered[first + i].store(delivered, Ordering::Relaxed);
            }
        }
    }
}

impl Pipeline {
    /// For a fan-out of at most `capacity` writes.
    fn start(capacity: usize) -> Self {
        let shared = Arc::new(Writes {
            queue: Mutex::default(),
            more: Condvar::new(),
            delivered: (0..capacity).map(|_| AtomicBool::new(false)).collect(),
        });
        let helper = {
            let shared = shared.clone();
            Some(tokio::task::spawn_blocking(move || shared.work()))
        };
        Self {
            shared,
            helper,
            added: 0,
        }
    }

    /// Hands a chunk of writes to whichever thread is free.
    fn add(&mut self, chunk: WriteChunk) {
        if chunk.is_empty() {
            return;
        }
        let first = self.added;
        self.added += chunk.len();
        self.shared.queue().chunks.push_back((first, chunk));
        self.shared.more.notify_one();
    }

    /// Writes what is left along with the helper; per write added, whether
    /// it was taken (`false`: the subscriber must be dropped).
    async fn finish(mut self) -> Vec<bool> {
        self.close();
        self.shared.work();
        // Only a panic fails here: the writes the helper left undone stay
        // `false`, and those subscribers are dropped and reconnect.
        if let Some(helper) = self.helper.take() {
            let _ = helper.await;
        }
        self.shared.delivered[..self.added]
            .iter()
            .map(|d| d.load(Ordering::Relaxed))
            .collect()
    }
}

impl Pipeline {
    /// No more chunks will come: the helper returns once the queue is empty.
    fn close(&self) {
        self.shared.queue().done = true;
        self.shared.more.notify_all();
    }
}

impl Drop for Pipeline {
    /// A pipeline left unfinished (the dispatcher panicked while adding to
    /// it) must not keep its helper waiting, and the outlets open, forever.
    fn drop(&mut self) {
        self.close();
    }
}

/// Remembers what a subscriber now has (or no longer has) for `key`.
fn record_sent(
    subscriber: &mut Subscriber,
    key: &str,
    now: Option<Sent>,
    served: &mut ServedBatch,
) {
    let lease = &subscriber.lease;
    match now {
        Some(sent) => {
            if let Sent::Config { version, lane } = sent {
                served.push((
                    lease.scope.clone(),
                    lease.client_id.clone(),
                    key.to_string(),
                    Some(version),
                    lane,
                ));
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
                served.push((
                    lease.scope.clone(),
                    lease.client_id.clone(),
                    key.to_string(),
                    None,
                    None,
                ));
            }
        }
    }
}

/// A watched config touched by a batch of events: (scope, key, new state,
/// (first, last) event of the batch about it).
type Change = (Scope, String, Option<ConfigState>, (i64, i64));

/// What one dispatcher step read.
struct Loaded {
    /// The last release event read.
    up_to: i64,
    /// Watched configs touched by the events, in order of their last event:
    changed: Vec<Change>,
    /// States new subscribers need.
    fresh: Vec<(Scope, String, Option<ConfigState>)>,
    /// Scopes whose every config is now held.
    fully_loaded: Vec<Scope>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(stable: Option<i64>, lanes: &[(i64, i64, &str, u32)]) -> ConfigState {
        let served = |version: i64| Served {
            version,
            checksum: format!("sha256:{version}"),
            content: format!("v{version}"),
        };
        ConfigState {
            namespace: "shop".into(),
            env: "prod".into(),
            key: "app.json".into(),
            format: ConfigFormat::Json,
            event_id: 9,
            stable: stable.map(served),
            rules: lanes
                .iter()
                .map(|&(id, version, selector, percentage_bp)| LaneRule {
                    id,
                    version,
                    selector: Selector::parse(selector).unwrap(),
                    targets: vec![],
                    percentage_bp,
                    stickiness: "client_id".into(),
                    salt: "salt".into(),
                    priority: 0,
                })
                .collect(),
            lanes: lanes
                .iter()
                .map(|&(_, version, selector, bp)| {
                    (
                        RulesLaneMeta {
                            selector: selector.into(),
                            percentage: bp as f64 / 100.0,
                        },
                        served(version),
                    )
                })
                .collect(),
        }
    }

    fn ctx(pairs: &[(&str, &str)]) -> Context {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_large_fan_out_reaches_every_outlet_in_order() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let n = SPLIT_WRITES_AT + 44;
        let mut outlets = Vec::new();
        let mut clients = Vec::new();
        for _ in 0..n {
            let (client, accepted) =
                tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
            outlets.push(Arc::new(Outlet::new(accepted.unwrap().0, false)));
            clients.push(client.unwrap());
        }
        // Not live yet: every frame lands in the backlog, in order, on both
        // threads; chunks of every size, a partial one last.
        for round in [b"a", b"b"] {
            let mut pipeline = Pipeline::start(n);
            let mut chunk = WriteChunk::default();
            let frame = Bytes::from_static(round);
            for (i, outlet) in outlets.iter().enumerate() {
                chunk.push(outlet.clone(), &frame);
                if chunk.len() == 1 + i % WRITE_CHUNK {
                    assert_eq!(chunk.frames.len(), 1, "a chunk holds its frame once");
                    pipeline.add(std::mem::take(&mut chunk));
                }
            }
            pipeline.add(chunk);
            assert_eq!(pipeline.finish().await, vec![true; n]);
        }
        // A pipeline dropped unfinished lets its helper write what it was
        // given and return: no outlet stays held.
        let mut pipeline = Pipeline::start(1);
        let mut chunk = WriteChunk::default();
        chunk.push(outlets[0].clone(), &Bytes::from_static(b"c"));
        pipeline.add(chunk);
        let helper = pipeline.helper.take().unwrap();
        drop(pipeline);
        tokio::time::timeout(Duration::from_secs(10), helper)
            .await
            .expect("the helper returns")
            .unwrap();
        let (_closing_tx, closing) = tokio::sync::watch::channel(false);
        for (i, (outlet, client)) in outlets.iter().zip(&mut clients).enumerate() {
            let live = crate::server::outlet::Live {
                initial: vec![],
                heartbeat: tokio::time::interval_at(
                    tokio::time::Instant::now() + Duration::from_secs(3600),
                    Duration::from_secs(3600),
                ),
                on_ping: Box::new(|| {}),
            };
            tokio::spawn(crate::server::outlet::run(
                outlet.clone(),
                live,
                closing.clone(),
            ));
            let want: &[u8] = if i == 0 { b"abc" } else { b"ab" };
            let mut got = vec![0u8; want.len()];
            client.read_exact(&mut got).await.unwrap();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn resolves_lane_then_stable_then_nothing() {
        let s = state(Some(1), &[(5, 2, "region=beijing", 10_000)]);
        let beijing = ctx(&[("client_id", "a"), ("region", "beijing")]);
        let other = ctx(&[("client_id", "b"), ("region", "shanghai")]);
        assert_eq!(
            s.resolve_for(&beijing),
            Some(Resolution {
                version: 2,
                lane: Some(5)
            })
        );
        assert_eq!(
            s.resolve_for(&other),
            Some(Resolution {
                version: 1,
                lane: None
            })
        );
        assert_eq!(state(None, &[]).resolve_for(&other), None);
    }

    #[test]
    fn frames_carry_the_exact_payloads() {
        let s = state(Some(1), &[(5, 2, "region=beijing", 1250)]);
        let frame = s
            .config_frame(Resolution {
                version: 2,
                lane: Some(5),
            })
            .unwrap();
        assert_eq!(
            std::str::from_utf8(&frame).unwrap(),
            "event: config\nid: 9\ndata: {\"namespace\":\"shop\",\"env\":\"prod\",\"key\":\"app.json\",\
             \"format\":\"json\",\"version\":2,\"lane\":5,\"checksum\":\"sha256:2\",\"content\":\"v2\"}\n\n"
        );
        let rules = String::from_utf8(s.rules_frame().to_vec()).unwrap();
        assert!(rules.starts_with("event: rules\nid: 9\ndata: {"), "{rules}");
        let data: serde_json::Value = serde_json::from_str(
            rules
                .lines()
                .nth(2)
                .unwrap()
                .strip_prefix("data: ")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(data["stable"]["version"], 1);
        assert_eq!(data["lanes"][0]["percentage"], 12.5);
        assert_eq!(data["lanes"][0]["selector"], "region=beijing");
        assert_eq!(data["lanes"][0]["content"], "v2");
    }
}
