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

mod catalog;
mod clients;
mod dispatcher;
mod pipeline;
mod registry;
mod state;
mod subscriber;

pub use catalog::Catalog;
pub use clients::{Limits, Owner};
pub use registry::ConnectedInstance;
pub use state::{etag, Answer, ConfigState, Evaluation, Reason, Resolution, Served};

use crate::domain::Context;
use crate::model::EnvPath;
use crate::model::ReleaseEvent;
use crate::server::clock::Clock;
use crate::server::db::{self, watch as sql};
use crate::server::instances::Instances;
use crate::server::metrics::Metrics;
use crate::server::outlet::Outlet;
use crate::{Error, Result};
use axum::body::Bytes;
use dispatcher::Dispatcher;
use registry::{Lease, Registry};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;
use subscriber::{Sink, Subscriber};
use tokio::sync::{broadcast, mpsc, oneshot};

pub use crate::server::outlet::QUEUE_FRAMES;

/// The fan-out's maps, looked up once or twice per subscriber and release:
/// a fast hash, seeded per map.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

pub struct Hub {
    registry: Arc<Registry>,
    commands: mpsc::UnboundedSender<Command>,
    metrics: Arc<Metrics>,
    instances: Arc<Instances>,
    next_id: AtomicU64,
    limits: Limits,
    /// Revoked tokens (a revocation is final): see [`Hub::is_closed`].
    revoked: Arc<RwLock<HashSet<i64>>>,
    /// Owners whose streams were just closed, for the streams the hub does
    /// not hold (the live instances view).
    closed: broadcast::Sender<Owner>,
    /// See [`Hub::missed_notifications`].
    missed: Arc<AtomicU64>,
    catalog: Arc<Catalog>,
}

impl Hub {
    /// Starts the dispatcher; it follows the release events committed from now on.
    pub async fn start(
        db: db::Pool,
        metrics: Arc<Metrics>,
        instances: Arc<Instances>,
        limits: Limits,
        clock: Clock,
    ) -> Result<Self> {
        let (processed, catalog) = load_catalog(&db).await?;
        let catalog = Arc::new(catalog);
        instances.delivered(processed);
        let (commands, receiver) = mpsc::unbounded_channel();
        // Events committed by other nodes (PostgreSQL); this node's own arrive here too,
        // after `publish` already told the dispatcher: it skips ids it has processed.
        let revoked: Arc<RwLock<HashSet<i64>>> = Arc::default();
        let closed = broadcast::channel(64).0;
        let missed = Arc::new(AtomicU64::new(0));
        let (notified, revoked_too, closed_too, missed_too) = (
            commands.clone(),
            revoked.clone(),
            closed.clone(),
            missed.clone(),
        );
        db::notify::follow(&db, move |what| {
            use db::notify::Notified;
            let owner = match what {
                Notified::ReleaseEvent(id) => {
                    return notified
                        .send(Command::Committed {
                            id,
                            at: Instant::now(),
                        })
                        .is_ok()
                }
                Notified::TokenClosed(id) => Owner::Token(id),
                Notified::UserClosed(id) => Owner::User(id),
                Notified::Missed => {
                    missed_too.fetch_add(1, Ordering::AcqRel);
                    return true;
                }
            };
            close(&revoked_too, &notified, &closed_too, owner);
            true
        });
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
            last_sweep: clock.now_ms(),
            clock: clock.clone(),
            catalog: catalog.clone(),
        };
        tokio::spawn(dispatcher.run(receiver));
        Ok(Self {
            registry: Arc::new(Registry::on(clock)),
            commands,
            metrics,
            instances,
            next_id: AtomicU64::new(1),
            limits,
            revoked,
            closed,
            missed,
            catalog,
        })
    }

    /// How many times this node's notifications were interrupted (several nodes on
    /// PostgreSQL): anything kept because no notification said otherwise — a cached token —
    /// from an earlier count is read afresh, since a revocation may have gone unheard.
    pub fn missed_notifications(&self) -> u64 {
        self.missed.load(Ordering::Acquire)
    }

    /// Every config's state in memory, for per-request evaluation.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Ends every stream `owner` opened (its token was revoked, or the user
    /// was disabled or its role or limits changed); clients that are still
    /// allowed reconnect and are authorized afresh. Call after the change
    /// committed.
    pub fn close_streams_of(&self, owner: Owner) {
        close(&self.revoked, &self.commands, &self.closed, owner);
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
    pub fn watches(&self, owner: Owner, scope: &EnvPath, client_id: &str) -> bool {
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
        self.metrics.release(event.kind.as_str());
        self.catalog.published(event.id);
        let _ = self.commands.send(Command::Committed {
            id: event.id,
            at: Instant::now(),
        });
    }

    /// Opens a watch stream: registers the subscriber, and returns the frames
    /// it gets on connect and the queue of those it gets afterwards.
    pub async fn subscribe(&self, request: WatchRequest) -> Result<Subscription> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let scope = EnvPath::new(&request.namespace, &request.env);
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
            &scope.namespace,
            &scope.env,
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

/// Ends `owner`'s streams on this node (see [`Hub::close_streams_of`]); also what a
/// notification from another node does.
fn close(
    revoked: &RwLock<HashSet<i64>>,
    commands: &mpsc::UnboundedSender<Command>,
    closed: &broadcast::Sender<Owner>,
    owner: Owner,
) {
    if let Owner::Token(id) = owner {
        revoked.write().expect("hub lock").insert(id);
    }
    let _ = commands.send(Command::Close(owner));
    let _ = closed.send(owner);
}

/// Every config's state and the release sequence it is at, from one snapshot.
async fn load_catalog(db: &db::Pool) -> Result<(i64, Catalog)> {
    let mut tx = db::begin_read(db).await?;
    let processed = sql::last_event_id(&mut *tx).await?;
    let catalog = Catalog::new(processed);
    for (namespace, env) in sql::scopes(&mut tx).await? {
        let scope = EnvPath::new(namespace, env);
        for head in sql::heads_in_scope(&mut tx, &scope).await? {
            let key = head.key.clone();
            let state = state::load_head(&mut tx, &scope, head).await?;
            catalog.put(&scope.namespace, &scope.env, &key, Some(Arc::new(state)));
        }
    }
    tx.commit().await?;
    Ok((processed, catalog))
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
