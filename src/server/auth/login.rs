//! How sign-in is limited, and the throttle that counts failed sign-ins.

use crate::{Error, Result};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How sign-in is limited; docs/api.md describes the defaults.
#[derive(Debug, Clone)]
pub struct LoginLimits {
    /// The sliding window failed sign-ins are counted over.
    pub window: Duration,
    /// Failed sign-ins per (username, source address) within the window.
    pub per_name_and_source: usize,
    /// Failed sign-ins per source address (IPv6: per /64), whatever the username.
    pub per_source: usize,
    /// Password verifications running at once (each holds 19 MiB for argon2).
    pub checks_at_once: usize,
    /// Sign-ins that may wait for a verification; beyond them, 429.
    pub checks_queued: usize,
}

impl Default for LoginLimits {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            window: Duration::from_secs(60),
            per_name_and_source: 5,
            per_source: 20,
            checks_at_once: cpus,
            checks_queued: 4 * cpus,
        }
    }
}

/// Counts failed sign-ins over a sliding window, per (username, source
/// address) and per source address: a guesser is stopped at its address, and
/// the owner signing in from elsewhere is not locked out by it. An attempt is
/// counted as a failure *before* its password is verified (and forgotten if it
/// succeeds), so parallel guesses cannot slip past the count while the slow
/// verifications run.
pub struct LoginThrottle {
    window: Duration,
    per_name_and_source: usize,
    per_source: usize,
    failures: Mutex<Failures>,
}

/// Sources tracked at once; when all have recent failures, sign-ins from new
/// addresses are refused (fail closed) until some leave the window.
const MAX_SOURCES: usize = 20_000;
/// (username, source) pairs tracked at once; beyond, only the per-source count holds.
const MAX_PAIRS: usize = 100_000;
/// Maps are swept of stale entries when they reach this size (then twice the size left).
const SWEEP_AT: usize = 1024;

#[derive(Default)]
struct Failures {
    by_source: HashMap<IpAddr, VecDeque<Instant>>,
    by_pair: HashMap<(String, IpAddr), VecDeque<Instant>>,
    sweep_sources_at: usize,
    sweep_pairs_at: usize,
}

/// A sign-in counted as failed until it is [`LoginThrottle::succeeded`] or
/// [`LoginThrottle::release`]d.
#[derive(Debug)]
pub struct Attempt {
    pair: Option<(String, IpAddr)>,
    source: IpAddr,
    at: Instant,
}

impl LoginThrottle {
    pub fn new(limits: &LoginLimits) -> Self {
        Self {
            window: limits.window,
            per_name_and_source: limits.per_name_and_source.max(1),
            per_source: limits.per_source.max(1),
            failures: Mutex::default(),
        }
    }

    /// The limits: the window, failures per source, failures per (username, source).
    pub fn limits(&self) -> (Duration, usize, usize) {
        (self.window, self.per_source, self.per_name_and_source)
    }

    /// The 429 for a full count, the same words whichever node counted.
    pub fn refusal(username: Option<&str>, wait: Duration) -> Error {
        let secs = wait.as_secs().max(1);
        match username {
            None => Error::retry_in(
                format!("Too many failed sign-ins from your address; try again in {secs} seconds."),
                wait,
            ),
            Some(name) => Error::retry_in(
                format!(
                    "Too many failed sign-ins for {} from your address; try again in {secs} seconds.",
                    crate::error::quoted(name)
                ),
                wait,
            ),
        }
    }

    /// Counts a sign-in for `username` (`None`: a name no user can have) from
    /// `source`, or refuses it with 429 while either count is full.
    pub fn reserve(&self, username: Option<&str>, source: IpAddr) -> Result<Attempt> {
        let mut failures = self.failures.lock().expect("throttle lock");
        self.reserve_locked(&mut failures, username, source, Instant::now())
    }

    fn reserve_locked(
        &self,
        f: &mut Failures,
        username: Option<&str>,
        source: IpAddr,
        now: Instant,
    ) -> Result<Attempt> {
        let window = self.window;
        let source = source_key(source);
        if !f.by_source.contains_key(&source) {
            if f.by_source.len() >= f.sweep_sources_at.max(SWEEP_AT) {
                f.by_source
                    .retain(|_, times| recent(times, now, window) > 0);
                f.sweep_sources_at = f.by_source.len() * 2;
            }
            if f.by_source.len() >= MAX_SOURCES {
                return Err(Error::retry_in(
                    "Sign-in is refused for now: too many addresses failed to sign in recently; try again later.",
                    window,
                ));
            }
        }
        let times = f.by_source.entry(source).or_default();
        if recent(times, now, window) >= self.per_source {
            let wait = window.saturating_sub(now.duration_since(times[0]));
            return Err(Self::refusal(None, wait));
        }
        let pair = username.map(|name| (name.to_string(), source));
        if let Some(key) = &pair {
            if let Some(times) = f.by_pair.get_mut(key) {
                if recent(times, now, window) >= self.per_name_and_source {
                    let wait = window.saturating_sub(now.duration_since(times[0]));
                    return Err(Self::refusal(Some(&key.0), wait));
                }
            }
        }
        f.by_source.entry(source).or_default().push_back(now);
        let pair = pair.filter(|key| {
            if f.by_pair.contains_key(key) {
                return true;
            }
            if f.by_pair.len() >= f.sweep_pairs_at.max(SWEEP_AT) {
                f.by_pair.retain(|_, times| recent(times, now, window) > 0);
                f.sweep_pairs_at = f.by_pair.len() * 2;
            }
            f.by_pair.len() < MAX_PAIRS
        });
        if let Some(key) = &pair {
            f.by_pair.entry(key.clone()).or_default().push_back(now);
        }
        Ok(Attempt {
            pair,
            source,
            at: now,
        })
    }

    /// The attempt signed in: it is not a failure, and that username's earlier
    /// failures from that address are forgotten (the address's are not, so
    /// signing in to one's own account does not buy more guesses elsewhere).
    pub fn succeeded(&self, attempt: Attempt) {
        let mut f = self.failures.lock().expect("throttle lock");
        if let Some(pair) = &attempt.pair {
            f.by_pair.remove(pair);
        }
        if let Some(times) = f.by_source.get_mut(&attempt.source) {
            forget(times, attempt.at);
        }
    }

    /// The attempt was not verified (the server was busy): it counts for nothing.
    pub fn release(&self, attempt: Attempt) {
        let mut f = self.failures.lock().expect("throttle lock");
        if let Some(pair) = &attempt.pair {
            if let Some(times) = f.by_pair.get_mut(pair) {
                forget(times, attempt.at);
            }
        }
        if let Some(times) = f.by_source.get_mut(&attempt.source) {
            forget(times, attempt.at);
        }
    }
}

/// Drops the times that left the window; how many remain.
fn recent(times: &mut VecDeque<Instant>, now: Instant, window: Duration) -> usize {
    while times
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= window)
    {
        times.pop_front();
    }
    times.len()
}

fn forget(times: &mut VecDeque<Instant>, at: Instant) {
    if let Some(i) = times.iter().position(|t| *t == at) {
        times.remove(i);
    }
}

/// The address failures are counted by: IPv4 as is, IPv6 by its /64 (what
/// one subscriber usually gets), IPv4-mapped IPv6 as IPv4.
/// The source an address is counted as (IPv6 by its /64), as text: shared counts key on it.
pub fn source_text(ip: IpAddr) -> String {
    source_key(ip).to_string()
}

fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::sync::Arc;

    pub(crate) fn limits() -> LoginLimits {
        LoginLimits {
            window: Duration::from_secs(60),
            per_name_and_source: 5,
            per_source: 20,
            checks_at_once: 2,
            checks_queued: 1,
        }
    }

    pub(crate) fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn throttle_blocks_a_name_at_one_address_only() {
        let throttle = LoginThrottle::new(&limits());
        let (attacker, owner) = (ip("127.0.0.2"), ip("127.0.0.1"));
        for _ in 0..5 {
            throttle.reserve(Some("alice"), attacker).unwrap();
        }
        let refused = throttle.reserve(Some("alice"), attacker).unwrap_err();
        assert_eq!(refused.status, 429);
        assert!(refused.retry_after.is_some_and(|s| (1..=60).contains(&s)));
        let attempt = throttle.reserve(Some("alice"), owner).unwrap();
        throttle.succeeded(attempt);
        assert!(
            throttle.reserve(Some("bob"), attacker).is_ok(),
            "another name from the same address is counted apart (up to the address's limit)"
        );
    }

    #[test]
    fn throttle_blocks_an_address_whatever_the_names() {
        let throttle = LoginThrottle::new(&limits());
        let attacker = ip("10.0.0.9");
        for n in 0..20 {
            throttle
                .reserve(Some(&format!("user{n}")), attacker)
                .unwrap();
        }
        assert_eq!(
            throttle
                .reserve(Some("fresh-name"), attacker)
                .unwrap_err()
                .status,
            429
        );
        assert_eq!(throttle.reserve(None, attacker).unwrap_err().status, 429);
        assert!(throttle
            .reserve(Some("fresh-name"), ip("10.0.0.10"))
            .is_ok());
    }

    #[test]
    fn parallel_attempts_cannot_pass_the_count() {
        let throttle = Arc::new(LoginThrottle::new(&limits()));
        let threads: Vec<_> = (0..60)
            .map(|_| {
                let throttle = throttle.clone();
                std::thread::spawn(move || throttle.reserve(Some("alice"), ip("127.0.0.2")).is_ok())
            })
            .collect();
        let passed = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|ok| *ok)
            .count();
        assert_eq!(
            passed, 5,
            "only five attempts are let through to verification"
        );
    }

    #[test]
    fn success_forgets_the_names_failures_and_release_counts_nothing() {
        let throttle = LoginThrottle::new(&limits());
        let here = ip("192.0.2.1");
        for _ in 0..4 {
            throttle.reserve(Some("alice"), here).unwrap();
        }
        let attempt = throttle.reserve(Some("alice"), here).unwrap();
        throttle.succeeded(attempt);
        for _ in 0..5 {
            throttle.reserve(Some("alice"), here).unwrap();
        }
        assert!(throttle.reserve(Some("alice"), here).is_err());
        // The address keeps its 9 failures: 11 more reach its limit of 20.
        let busy = throttle.reserve(Some("carol"), here).unwrap();
        throttle.release(busy);
        for n in 0..11 {
            throttle.reserve(Some(&format!("u{n}")), here).unwrap();
        }
        assert!(throttle.reserve(Some("dave"), here).is_err());
    }

    #[test]
    fn failures_leave_the_window() {
        let throttle = LoginThrottle::new(&limits());
        let here = ip("192.0.2.1");
        let start = Instant::now();
        let mut f = throttle.failures.lock().unwrap();
        for _ in 0..5 {
            throttle
                .reserve_locked(&mut f, Some("alice"), here, start)
                .unwrap();
        }
        assert!(throttle
            .reserve_locked(&mut f, Some("alice"), here, start + Duration::from_secs(59))
            .is_err());
        assert!(throttle
            .reserve_locked(&mut f, Some("alice"), here, start + Duration::from_secs(60))
            .is_ok());
    }

    #[test]
    fn stale_entries_are_swept_so_the_maps_stay_bounded() {
        let throttle = LoginThrottle::new(&limits());
        let start = Instant::now();
        let mut f = throttle.failures.lock().unwrap();
        for n in 0..5000u32 {
            let source = IpAddr::V4(Ipv4Addr::from(n));
            // Each minute a new batch of addresses: the old ones are stale.
            let now = start + Duration::from_secs(61 * u64::from(n / 500));
            throttle
                .reserve_locked(&mut f, Some("alice"), source, now)
                .unwrap();
        }
        assert!(f.by_source.len() <= 2 * SWEEP_AT, "{}", f.by_source.len());
        assert!(f.by_pair.len() <= 2 * SWEEP_AT, "{}", f.by_pair.len());
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        assert_eq!(
            source_key(ip("2001:db8:1:2:aaaa::1")),
            source_key(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            source_key(ip("2001:db8:1:2::1")),
            source_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(source_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }
}
