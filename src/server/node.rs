//! This process as one node of several sharing the database (the specification,
//! section 8): it heartbeats, marks the instances of nodes that stopped heartbeating
//! disconnected, and takes the plan scheduler's lease when no live node holds it.
//!
//! On SQLite there is one node; the same rows are written, and the lease is not used
//! ([`crate::server::rollout::SoleNode`]).

use crate::server::db::{self, nodes as sql};
use crate::server::rollout::Lease;
use futures_util::future::BoxFuture;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The lease the plan scheduler runs under.
pub const SCHEDULER_LEASE: &str = "plan_scheduler";

pub struct Node {
    /// Drawn at start: a restarted node is a new node.
    pub id: String,
    db: db::Pool,
    /// A node silent this long is dead: its instances are marked disconnected and its
    /// lease may be taken (the lease lasts two thirds of it, renewed every third).
    pub timeout: Duration,
}

impl Node {
    /// Joins the nodes and starts heartbeating every third of `timeout`, sweeping the
    /// dead nodes' instances each time, until the returned node is dropped.
    pub async fn start(
        db: db::Pool,
        timeout: Duration,
        address: Option<String>,
    ) -> crate::Result<Arc<Self>> {
        let node = Arc::new(Self {
            id: hex::encode(rand::random::<[u8; 8]>()),
            db,
            timeout,
        });
        sql::join(&node.db, &node.id, address.as_deref()).await?;
        let weak = Arc::downgrade(&node);
        let every = node.timeout / 3;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
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
        sql::heartbeat(&self.db, &self.id).await?;
        let marked = sql::sweep(&self.db, self.timeout.as_millis() as i64).await?;
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
    held_until: Mutex<Option<Instant>>,
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
            let renew_after = ttl / 2;
            let now = Instant::now();
            if let Some(until) = *self.held_until.lock().expect("lease lock") {
                // Renewed recently enough: no round trip on every tick.
                if until > now + renew_after {
                    return true;
                }
            }
            let taken = sql::take_lease(
                &self.node.db,
                SCHEDULER_LEASE,
                &self.node.id,
                ttl.as_millis() as i64,
            )
            .await;
            let mut held = self.held_until.lock().expect("lease lock");
            match taken {
                Ok(true) => {
                    if held.is_none() {
                        tracing::info!(node = %self.node.id, "this node drives the rollout plans now");
                    }
                    *held = Some(now + ttl);
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
                    held.is_some_and(|until| until > Instant::now())
                }
            }
        })
    }
}
