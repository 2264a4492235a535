//! Passwords: argon2id hashing, and the gate that runs verifications a few at a time.

use super::login::LoginLimits;
use crate::server::metrics::Metrics;
use crate::{Error, Result};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use rand::Rng;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Hashes with argon2id (the crate default) off the async runtime.
pub async fn hash_password(password: &str) -> Result<String> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(Error::internal)
    })
    .await
    .map_err(Error::internal)?
}

/// Whether `password` matches `hash` (with the parameters the hash names);
/// a malformed hash never matches. Blocking: run it through [`PasswordChecks`].
fn password_matches(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Runs password verifications a few at a time on the blocking pool: argon2
/// takes 19 MiB and a core's worth of time per check, so unbounded parallel
/// sign-ins would take the server's memory (up to 512 blocking threads).
pub struct PasswordChecks {
    slots: Arc<Semaphore>,
    /// Sign-ins running or waiting for a slot.
    admitted: AtomicUsize,
    max_admitted: usize,
    metrics: Arc<Metrics>,
}

impl PasswordChecks {
    pub fn new(limits: &LoginLimits, metrics: Arc<Metrics>) -> Self {
        let at_once = limits.checks_at_once.max(1);
        Self {
            slots: Arc::new(Semaphore::new(at_once)),
            admitted: AtomicUsize::new(0),
            max_admitted: at_once + limits.checks_queued,
            metrics,
        }
    }

    /// Whether `password` matches `hash`; 429 (retry in a second) while
    /// every slot is busy and the queue is full.
    pub async fn verify(&self, password: &str, hash: &str) -> Result<bool> {
        let (password, hash) = (password.to_string(), hash.to_string());
        self.run(move || password_matches(&password, &hash)).await
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        if self.admitted.fetch_add(1, Ordering::SeqCst) >= self.max_admitted {
            self.admitted.fetch_sub(1, Ordering::SeqCst);
            self.metrics.password_check_refused();
            return Err(Error::retry_in(
                "The server is busy checking other sign-ins; try again in a second.",
                Duration::from_secs(1),
            ));
        }
        let _admitted = Admitted(&self.admitted);
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(Error::internal)?;
        let metrics = self.metrics.clone();
        // The slot goes with the work: a caller that gives up does not free
        // it before the verification really ends.
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            metrics.password_check_started();
            let result = work();
            metrics.password_check_ended();
            result
        })
        .await
        .map_err(Error::internal)
    }
}

struct Admitted<'a>(&'a AtomicUsize);

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

pub fn random_password() -> String {
    random_string(20)
}

pub(super) fn random_string(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::auth::login::tests::limits;
    use std::time::Instant;

    #[allow(clippy::await_holding_lock)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn password_checks_run_at_most_n_at_once_and_refuse_beyond_the_queue() {
        let checks = Arc::new(PasswordChecks::new(&limits(), Arc::new(Metrics::default())));
        let gate = Arc::new(std::sync::RwLock::new(()));
        let closed = gate.write().unwrap();
        let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let (checks, gate, now, peak) =
                    (checks.clone(), gate.clone(), now.clone(), peak.clone());
                tokio::spawn(async move {
                    checks
                        .run(move || {
                            let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                            peak.fetch_max(running, Ordering::SeqCst);
                            drop(gate.read().unwrap());
                            now.fetch_sub(1, Ordering::SeqCst);
                        })
                        .await
                })
            })
            .collect();
        // Two run (blocked on the gate), the third waits in the queue of one.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(now.load(Ordering::SeqCst) == 2 && checks.admitted.load(Ordering::SeqCst) == 3) {
            assert!(Instant::now() < deadline, "the checks did not start");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let refused = checks.run(|| ()).await.unwrap_err();
        assert_eq!(refused.status, 429);
        assert_eq!(refused.retry_after, Some(1));
        drop(closed);
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(
            peak.load(Ordering::SeqCst),
            2,
            "never more than two at once"
        );
        assert!(checks.run(|| ()).await.is_ok(), "free again once they end");
    }
}
