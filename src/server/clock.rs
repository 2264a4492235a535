//! What time it is, for everything that holds, times out or expires: plan holds, node
//! timeouts and heartbeats, instance retention, and the times written into rows. The core
//! reads it from one [`Clock`], chosen in [`super::ServeConfig`]: the system's, or for tests a
//! manual one they can move forward instead of sleeping.
//!
//! A leaf: it knows nothing of the server around it.

use crate::domain::time::Timestamp;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The system clock, or a manual one. Clones share one time.
#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<Arc<Manual>>,
}

/// A manual clock runs with the system's, plus how far it was advanced; an advance wakes
/// every [`Clock::sleep`] in progress, so what waits for a time sees it at once.
struct Manual {
    ahead_ms: AtomicI64,
    advanced: tokio::sync::watch::Sender<i64>,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.manual {
            None => f.write_str("Clock::system"),
            Some(m) => write!(
                f,
                "Clock::manual(+{} ms)",
                m.ahead_ms.load(Ordering::SeqCst)
            ),
        }
    }
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock for tests: it starts at the system's time and runs with it, and
    /// [`Clock::advance`] moves it forward.
    pub fn manual() -> Self {
        Self {
            manual: Some(Arc::new(Manual {
                ahead_ms: AtomicI64::new(0),
                advanced: tokio::sync::watch::Sender::new(0),
            })),
        }
    }

    /// Moves a manual clock forward by `by`, waking what sleeps on it.
    ///
    /// # Panics
    /// On the system clock, which nothing moves.
    pub fn advance(&self, by: Duration) {
        let manual = self
            .manual
            .as_ref()
            .expect("only a manual clock can be advanced");
        let ahead = manual
            .ahead_ms
            .fetch_add(by.as_millis() as i64, Ordering::SeqCst);
        manual.advanced.send_replace(ahead);
    }

    /// Milliseconds since the epoch, now.
    pub fn now_ms(&self) -> i64 {
        let system = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        system
            + self
                .manual
                .as_ref()
                .map_or(0, |m| m.ahead_ms.load(Ordering::SeqCst))
    }

    /// Now, as every `…_at` column holds it.
    pub fn now(&self) -> Timestamp {
        timestamp(self.now_ms())
    }

    /// `ms` milliseconds before now.
    pub fn ago(&self, ms: i64) -> Timestamp {
        timestamp(self.now_ms() - ms)
    }

    /// Waits until `duration` has passed on this clock: on a manual clock, an advance past
    /// the end ends it at once.
    pub async fn sleep(&self, duration: Duration) {
        let Some(manual) = &self.manual else {
            return tokio::time::sleep(duration).await;
        };
        self.sleep_until_ms(manual, self.now_ms() + duration.as_millis() as i64)
            .await;
    }

    /// A tick first after `first`, then every `every` (a late tick delays the next ones);
    /// on a manual clock an advance past a tick fires it at once.
    pub fn ticker(&self, first: Duration, every: Duration) -> Ticker {
        let every = every.max(Duration::from_millis(1));
        match &self.manual {
            None => {
                let mut interval =
                    tokio::time::interval_at(tokio::time::Instant::now() + first, every);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                Ticker::System(interval)
            }
            Some(_) => Ticker::Manual {
                clock: self.clone(),
                next_ms: self.now_ms() + first.as_millis() as i64,
                every_ms: every.as_millis() as i64,
            },
        }
    }

    async fn sleep_until_ms(&self, manual: &Manual, until: i64) {
        let mut advanced = manual.advanced.subscribe();
        loop {
            let left = until - self.now_ms();
            if left <= 0 {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(left as u64)) => {}
                // The sender lives as long as this clock.
                _ = advanced.changed() => {}
            }
        }
    }
}

/// A repeating tick on a [`Clock`] ([`Clock::ticker`]), e.g. a stream's heartbeat.
pub enum Ticker {
    System(tokio::time::Interval),
    Manual {
        clock: Clock,
        next_ms: i64,
        every_ms: i64,
    },
}

impl Ticker {
    /// Waits for the next tick. Cancel-safe: a tick is used up only when this returns.
    pub async fn tick(&mut self) {
        match self {
            Ticker::System(interval) => {
                interval.tick().await;
            }
            Ticker::Manual {
                clock,
                next_ms,
                every_ms,
            } => {
                let manual = clock.manual.as_ref().expect("a manual clock");
                clock.sleep_until_ms(manual, *next_ms).await;
                *next_ms = clock.now_ms() + *every_ms;
            }
        }
    }
}

/// Milliseconds since the epoch as a timestamp (the epoch itself when out of range).
pub fn timestamp(ms: i64) -> Timestamp {
    Timestamp::from_unix_ms(ms)
        .or_else(|| Timestamp::from_unix_ms(0))
        .expect("the epoch is a timestamp")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_advance_moves_the_time_and_ends_sleeps() {
        let clock = Clock::manual();
        let before = clock.now_ms();
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep(Duration::from_secs(3600)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        clock.advance(Duration::from_secs(3600));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("the sleep ended when the clock was advanced")
            .unwrap();
        assert!(clock.now_ms() - before >= 3_600_000);
    }

    #[tokio::test]
    async fn a_manual_ticker_ticks_when_the_clock_passes_each_tick() {
        let clock = Clock::manual();
        let hour = Duration::from_secs(3600);
        let mut ticker = clock.ticker(hour, hour);
        let (ticked, mut ticks) = tokio::sync::watch::channel(0);
        tokio::spawn(async move {
            loop {
                ticker.tick().await;
                ticked.send_modify(|n| *n += 1);
            }
        });
        for n in 1..=2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(*ticks.borrow(), n - 1, "no tick before its time");
            clock.advance(hour);
            tokio::time::timeout(Duration::from_secs(5), ticks.wait_for(|t| *t >= n))
                .await
                .expect("the tick came when the clock passed it")
                .unwrap();
        }
    }

    #[test]
    fn the_system_clock_is_now() {
        let system = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!((Clock::system().now_ms() - system).abs() < 5_000);
        assert_eq!(timestamp(i64::MAX).unix_ms(), 0);
    }
}
