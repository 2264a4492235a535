//! This process as one node of several sharing the database (
//! docs/nodes.md): it heartbeats, marks the instances of nodes that stopped heartbeating
//! disconnected, and takes the plan scheduler's lease when no live node holds it.
//!
//! On SQLite there is one node; the same rows are written, and the lease is not used
//! ([`SoleNode`]).

use crate::server::clock::Clock;
use crate::server::db::{self, nodes as sql};
use futures_util::future::BoxFuture;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One node, or several sharing the database: decided once when the core starts (from the
/// database: SQLite has one node, PostgreSQL may have several), so no operation asks which
/// database is underneath.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nodes {
    /// This process is the only one serving the database.
    One,
    /// Other nodes may serve the same database.
    Several,
}

impl Nodes {
    /// Whether other nodes may count sign-in attempts, serve instances and hold the rollout
    /// lease: then sign-in attempts are also counted in the database, the connected
    /// instances are read from the shared rows, and a restarted node leaves the other
    /// nodes' streams listed as they are.
    pub fn shared(self) -> bool {
        self == Self::Several
    }
}

/// Exactly one scheduler may drive a plan. On SQLite one process owns the database, so
/// [`SoleNode`] always holds the lease. With several nodes on PostgreSQL (docs/nodes.md)
/// the lease plugs in here: the row `plan_scheduler` of the table `leases (name, holder,
/// expires_at)`, taken with an upsert that succeeds only when this node holds it or it has
/// expired (`db::nodes::take_lease`; times from the node's clock), and renewed after half its
/// time to live; `held` answers whether this node's last renewal succeeded and has not expired. The moves themselves stay safe even during a hand-over: every move re-reads
/// the plan inside its write transaction and is refused when the plan is no longer at the step
/// and state it was decided on (`ops::plans::carry_out`), so two schedulers can never both
/// advance one step.
pub trait Lease: Send + Sync {
    fn held(&self) -> BoxFuture<'_, bool>;
    /// Whether the last [`Lease::held`] found the lease held and it has not run out since.
    fn holds(&self) -> bool {
        true
    }
    /// This node stops driving plans (it shuts down): another may take over at once.
    fn give_up(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// The lease of a database only this process serves (SQLite): always held.
pub struct SoleNode;

impl Lease for SoleNode {
    fn held(&self) -> BoxFuture<'_, bool> {
        Box::pin(async { true })
    }
}

/// The lease the plan scheduler runs under.
pub const SCHEDULER_LEASE: &str = "plan_scheduler";

pub struct Node {
    /// Drawn at start: a restarted node is a new node.
    pub id: String,
    db: db::Pool,
    clock: Clock,
    /// A node silent this long is dead: its instances are marked disconnected and its
    /// lease may be taken (the lease lasts two thirds of it, renewed every third).
    pub timeout: Duration,
}

impl Node {
    /// Joins the nodes and starts heartbeating every third of `timeout`, sweeping the
    /// dead nodes' instances each time, until the returned node is dropped.
    pub async fn start(
        db: db::Pool,
        clock: Clock,
        timeout: Duration,
        address: Option<String>,
    ) -> crate::Result<Arc<Self>> {
        let node = Arc::new(Self {
            id: hex::encode(rand::random::<[u8; 8]>()),
            db,
            clock,
            timeout,
        });
        sql::join(&node.db, node.clock.now(), &node.id, address.as_deref()).await?;
        let weak = Arc::downgrade(&node);
        let every = node.timeout / 3;
        let clock = node.clock.clone();
        tokio::spawn(async move {
            loop {
                clock.sleep(every).await;
                let Some(node) = weak.upgrade() else {
                    return;
                };
                if let Err(e) = node.beat().await {
                    tracing::warn!(error = %e, "cannot heartbeat or sweep the nodes");
                }
            }
        });
        Ok(node)
    }

    async fn beat(&self) -> sqlx::Result<()> {
        let now = self.clock.now();
        sql::heartbeat(&self.db, now, &self.id).await?;
        let marked = sql::sweep(&self.db, now, self.timeout.as_millis() as i64).await?;
        if marked > 0 {
            tracing::info!(
                marked,
                "marked the instances of nodes that stopped heartbeating disconnected"
            );
        }
        Ok(())
    }

    fn lease_ttl(&self) -> Duration {
        self.timeout * 2 / 3
    }
}

/// The plan scheduler's lease in the database: held by one live node at a time, taken
/// over once the holder has not renewed it for its time to live.
pub struct DbLease {
    node: Arc<Node>,
    /// Until when the last successful renewal holds it (this node's clock).
    /// Until when this node may drive without renewing (milliseconds on the node's clock,
    /// like the lease row it renews).
    held_until: Mutex<Option<i64>>,
}

impl DbLease {
    pub fn new(node: Arc<Node>) -> Self {
        Self {
            node,
            held_until: Mutex::new(None),
        }
    }
}

impl Lease for DbLease {
    fn holds(&self) -> bool {
        self.held_until
            .lock()
            .expect("lease lock")
            .is_some_and(|until| until > self.node.clock.now_ms())
    }

    fn give_up(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if self.held_until.lock().expect("lease lock").take().is_some() {
                if let Err(e) =
                    sql::release_lease(&self.node.db, SCHEDULER_LEASE, &self.node.id).await
                {
                    tracing::warn!(error = %e, "cannot give the rollout lease up");
                }
            }
        })
    }

    fn held(&self) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            let ttl = self.node.lease_ttl();
            let ttl_ms = ttl.as_millis() as i64;
            let now = self.node.clock.now_ms();
            if let Some(until) = *self.held_until.lock().expect("lease lock") {
                // Renewed recently enough: no round trip on every tick.
                if until > now + ttl_ms / 2 {
                    return true;
                }
            }
            let taken = sql::take_lease(
                &self.node.db,
                self.node.clock.now(),
                SCHEDULER_LEASE,
                &self.node.id,
                ttl_ms,
            )
            .await;
            let mut held = self.held_until.lock().expect("lease lock");
            match taken {
                Ok(true) => {
                    if held.is_none() {
                        tracing::info!(node = %self.node.id, "this node drives the rollout plans now");
                    }
                    *held = Some(now + ttl_ms);
                    true
                }
                Ok(false) => {
                    if held.take().is_some() {
                        tracing::warn!(node = %self.node.id, "another node took the rollout lease");
                    }
                    false
                }
                Err(e) => {
                    // Unreachable database: keep driving only while the last renewal lasts.
                    tracing::warn!(error = %e, "cannot renew the rollout lease");
                    held.is_some_and(|until| until > self.node.clock.now_ms())
                }
            }
        })
    }
}

/// How long this node's release sequence has been behind the database's, for `/readyz`.
#[derive(Default)]
pub struct Readiness {
    /// An event the database had that this node had not applied, and when that was
    /// first seen.
    behind: Mutex<Option<(i64, Instant)>>,
}

impl Readiness {
    /// How long the node has been behind, given what it has `applied` and the database's
    /// `last` event: zero when caught up; else the time since the oldest event still
    /// unapplied was first seen (a node that keeps up under steady releases is never
    /// behind for long, since each event it was behind on is applied soon after).
    pub fn lag(&self, applied: i64, last: i64) -> Duration {
        self.lag_at(applied, last, Instant::now())
    }

    fn lag_at(&self, applied: i64, last: i64, now: Instant) -> Duration {
        let mut behind = self.behind.lock().expect("readiness lock");
        if applied >= last {
            *behind = None;
            return Duration::ZERO;
        }
        match *behind {
            Some((target, since)) if applied < target => now.saturating_duration_since(since),
            _ => {
                *behind = Some((last, now));
                Duration::ZERO
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Readiness;
    use std::time::{Duration, Instant};

    #[test]
    fn lag_counts_from_the_first_sight_of_an_event_still_unapplied() {
        let r = Readiness::default();
        let t0 = Instant::now();
        let s = Duration::from_secs;
        assert_eq!(r.lag_at(5, 5, t0), s(0));
        // Behind on 7 from t0: the lag grows while 7 is not applied…
        assert_eq!(r.lag_at(5, 7, t0), s(0));
        assert_eq!(r.lag_at(6, 9, t0 + s(3)), s(3));
        assert_eq!(r.lag_at(6, 9, t0 + s(6)), s(6));
        // …7 applied, 9 not yet: counted afresh from now.
        assert_eq!(r.lag_at(7, 9, t0 + s(7)), s(0));
        assert_eq!(r.lag_at(8, 10, t0 + s(8)), s(1));
        // Caught up: no lag.
        assert_eq!(r.lag_at(10, 10, t0 + s(20)), s(0));
        assert_eq!(r.lag_at(10, 11, t0 + s(21)), s(0));
    }
}
