//! The CPU-heavy work on config content, validation and diffs, kept off the async workers: it
//! runs on the blocking pool, a few jobs at a time, within a time budget, so a costly document
//! never stalls other requests (`/healthz`, watch streams). Diffs of two stored versions are
//! cached: versions never change.

use crate::domain::diff::{diff_lines_with, Diff};
use crate::domain::format::{validate_until, ConfigFormat, Refusal};
use crate::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How long a job waits for its turn before the caller hears 503.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes of diffs kept (estimated from their text), and most diffs.
pub const DIFF_CACHE_BYTES: usize = 64 * 1024 * 1024;
pub const DIFF_CACHE_ENTRIES: usize = 1024;

/// Runs validations and diffs off the async workers. One per server.
pub struct ContentWork {
    permits: Arc<Semaphore>,
    validation_timeout: Duration,
    diff_timeout: Duration,
    queue_timeout: Duration,
    diffs: Mutex<DiffCache>,
}

impl ContentWork {
    /// At most `permits` jobs at once (they are CPU-bound: fewer than the cores, so the async
    /// workers keep a core). A validation may take `validation_timeout`; a diff stops refining
    /// after `diff_timeout` (see [`diff_lines_with`]); a job waits at most `queue_timeout`
    /// for its turn.
    pub fn new(
        permits: usize,
        validation_timeout: Duration,
        diff_timeout: Duration,
        queue_timeout: Duration,
    ) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(permits.max(1))),
            validation_timeout,
            diff_timeout,
            queue_timeout,
            diffs: Mutex::new(DiffCache::default()),
        }
    }

    /// Half the cores, at least one.
    pub fn default_permits() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get().div_ceil(2))
    }

    /// Runs `work` on the blocking pool once a permit is free, and waits for it at most
    /// `timeout` (`None` when it is bounded by itself). `work` is handed the deadline, when its
    /// time runs out, and must stop soon after it. `Ok(None)` when the time ran out: the work
    /// then ends in the background, holding its permit until it has, so abandoned work counts
    /// against the limit too.
    async fn run<T: Send + 'static>(
        &self,
        timeout: Option<Duration>,
        work: impl FnOnce(Option<Instant>) -> T + Send + 'static,
    ) -> Result<Option<T>> {
        let permit =
            match tokio::time::timeout(self.queue_timeout, self.permits.clone().acquire_owned())
                .await
            {
                Ok(Ok(permit)) => permit,
                Ok(Err(closed)) => return Err(Error::internal(closed)),
                Err(_) => {
                    return Err(Error::new(
                        crate::ErrorCode::Busy,
                        "The server is busy validating and comparing other content; try again \
                         in a few seconds.",
                    ))
                }
            };
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work(deadline)
        });
        let joined = match timeout {
            Some(timeout) => match tokio::time::timeout(timeout, task).await {
                Ok(joined) => joined,
                Err(_) => return Ok(None),
            },
            None => task.await,
        };
        joined.map(Some).map_err(Error::internal)
    }

    /// Checks `content` is well-formed `format` (422 naming line and column when not, or when
    /// it takes longer than the validation budget) and hands it back.
    pub async fn validate(&self, format: ConfigFormat, content: String) -> Result<String> {
        if format == ConfigFormat::Text {
            return Ok(content);
        }
        let checked = self
            .run(Some(self.validation_timeout), move |deadline| {
                // The check gives up at the deadline, so a timed-out save frees its permit.
                let past = || deadline.is_some_and(|deadline| Instant::now() >= deadline);
                let result = validate_until(format, &content, &past);
                (content, result)
            })
            .await?;
        match checked {
            Some((content, Ok(()))) => Ok(content),
            Some((_, Err(Refusal::Invalid(e)))) => {
                Err(Error::new(crate::ErrorCode::InvalidContent, e.to_string()).on_field("content"))
            }
            // Stopped at the deadline just as the wait ended.
            None | Some((_, Err(Refusal::Stopped))) => Err(Error::new(
                crate::ErrorCode::InvalidContent,
                format!(
                    "The content is too complex to validate within {} s; simplify it (less \
                     nesting, fewer aliases) or split it into several configs.",
                    self.validation_timeout.as_secs_f64()
                ),
            )
            .on_field("content")),
        }
    }

    /// The diff of `old` against `new`, whose checksums are `old_sum` and `new_sum` (the cache
    /// key: equal checksums, equal content), optionally ignoring whitespace-only changes.
    pub async fn diff(
        &self,
        (old_sum, old): (&str, &str),
        (new_sum, new): (&str, &str),
        ignore_whitespace: bool,
    ) -> Result<Arc<Diff>> {
        let key = (old_sum.to_owned(), new_sum.to_owned(), ignore_whitespace);
        if let Some(diff) = self.cache().get(&key) {
            return Ok(diff);
        }
        let (old, new, timeout) = (old.to_owned(), new.to_owned(), self.diff_timeout);
        // Bounded by its own deadline: wait for it.
        let diff = self
            .run(None, move |_| {
                Arc::new(diff_lines_with(
                    &old,
                    &new,
                    ignore_whitespace,
                    Some(timeout),
                ))
            })
            .await?
            .expect("no timeout");
        self.cache().insert(key, diff.clone());
        Ok(diff)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, DiffCache> {
        // The cache holds no invariant a panic elsewhere could break.
        self.diffs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many diffs are cached (for tests).
    pub fn cached_diffs(&self) -> usize {
        self.cache().entries.len()
    }
}

type DiffKey = (String, String, bool);

/// Least recently used diffs go first once the cache is over [`DIFF_CACHE_BYTES`] or
/// [`DIFF_CACHE_ENTRIES`].
#[derive(Default)]
struct DiffCache {
    /// Each diff with its estimated size and when it was last used.
    entries: HashMap<DiffKey, (Arc<Diff>, usize, u64)>,
    bytes: usize,
    clock: u64,
}

impl DiffCache {
    fn get(&mut self, key: &DiffKey) -> Option<Arc<Diff>> {
        self.clock += 1;
        let clock = self.clock;
        self.entries.get_mut(key).map(|(diff, _, used)| {
            *used = clock;
            diff.clone()
        })
    }

    fn insert(&mut self, key: DiffKey, diff: Arc<Diff>) {
        let size = size_of(&diff);
        if size > DIFF_CACHE_BYTES / 4 || self.entries.contains_key(&key) {
            return;
        }
        while !self.entries.is_empty()
            && (self.bytes + size > DIFF_CACHE_BYTES || self.entries.len() >= DIFF_CACHE_ENTRIES)
        {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, _, used))| *used)
                .map(|(key, _)| key.clone())
                .expect("not empty");
            if let Some((_, freed, _)) = self.entries.remove(&oldest) {
                self.bytes -= freed;
            }
        }
        self.clock += 1;
        self.bytes += size;
        self.entries.insert(key, (diff, size, self.clock));
    }
}

/// Bytes a diff holds, roughly: its text and a row's fixed part.
fn size_of(diff: &Diff) -> usize {
    diff.rows
        .iter()
        .map(|row| {
            96 + row.left.as_ref().map_or(0, String::len)
                + row.right.as_ref().map_or(0, String::len)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work(permits: usize, timeout: Duration) -> ContentWork {
        ContentWork::new(permits, timeout, timeout, Duration::from_millis(200))
    }

    #[tokio::test]
    async fn validation_past_its_budget_is_422_saying_so() {
        // 1 MiB of YAML cannot be parsed in a millisecond; the budget starts before the work.
        let content: String = (0..100_000).map(|i| format!("k{i}: v{i}\n")).collect();
        let work = work(1, Duration::from_millis(1));
        let error = work
            .validate(ConfigFormat::Yaml, content)
            .await
            .unwrap_err();
        assert_eq!(
            (error.status, error.code),
            (422, crate::ErrorCode::InvalidContent)
        );
        assert_eq!(error.field.as_deref(), Some("content"));
        assert!(
            error
                .message
                .contains("too complex to validate within 0.001 s"),
            "{}",
            error.message
        );
    }

    /// Issue 25: a validation past its budget ran on, holding memory and its permit, for as long
    /// as it took. It stops at its deadline: the permit is free again at once.
    #[tokio::test]
    async fn validation_past_its_budget_stops_and_frees_its_permit() {
        // 3 MB of YAML: seconds of work for a test build, stopped after 50 ms.
        let content: String = (0..200_000).map(|i| format!("k{i}: v{i}\n")).collect();
        let work = work(1, Duration::from_millis(50));
        let error = work
            .validate(ConfigFormat::Yaml, content)
            .await
            .unwrap_err();
        assert!(error.message.contains("too complex"), "{}", error.message);
        let waited = Instant::now();
        let permit =
            tokio::time::timeout(Duration::from_secs(1), work.permits.clone().acquire_owned())
                .await;
        assert!(
            permit.is_ok(),
            "the abandoned check still held its permit after {:?}",
            waited.elapsed()
        );
    }

    #[tokio::test]
    async fn a_full_queue_is_503_not_a_wait_without_end() {
        let work = work(1, Duration::from_secs(5));
        let held = work.permits.clone().acquire_owned().await.unwrap();
        let error = work
            .validate(ConfigFormat::Json, "{}".into())
            .await
            .unwrap_err();
        assert_eq!((error.status, error.code), (503, crate::ErrorCode::Busy));
        drop(held);
        assert_eq!(
            work.validate(ConfigFormat::Json, "{}".into()).await,
            Ok("{}".to_owned())
        );
    }

    #[tokio::test]
    async fn diffs_are_cached_by_content() {
        let work = work(1, Duration::from_secs(5));
        let first = work
            .diff(("s1", "a\n"), ("s2", "b\n"), false)
            .await
            .unwrap();
        let again = work
            .diff(("s1", "a\n"), ("s2", "b\n"), false)
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(work.cached_diffs(), 1);
        assert_eq!((first.added, first.removed), (1, 1));
        // Hiding whitespace is another diff of the same pair.
        let squeezed = work
            .diff(("s1", "a\n"), ("s2", " a\n"), true)
            .await
            .unwrap();
        assert_eq!((squeezed.added, squeezed.removed), (0, 0));
        assert_eq!(work.cached_diffs(), 2);
    }

    #[test]
    fn the_cache_drops_the_least_recently_used_first() {
        let mut cache = DiffCache::default();
        let diff = |n: usize| {
            Arc::new(diff_lines_with(
                "",
                &"x\n".repeat(n),
                false,
                Some(Duration::from_secs(5)),
            ))
        };
        let key = |i: usize| (format!("a{i}"), format!("b{i}"), false);
        for i in 0..DIFF_CACHE_ENTRIES {
            cache.insert(key(i), diff(1));
        }
        assert!(cache.get(&key(0)).is_some());
        cache.insert(key(DIFF_CACHE_ENTRIES), diff(1));
        assert_eq!(cache.entries.len(), DIFF_CACHE_ENTRIES);
        assert!(cache.get(&key(0)).is_some(), "recently used: kept");
        assert!(cache.get(&key(1)).is_none(), "least recently used: dropped");
        // Over the byte budget, older diffs make room.
        let big = diff(DIFF_CACHE_BYTES / 4 / 100);
        let before = cache.entries.len();
        for i in 0..5 {
            cache.insert((format!("big{i}"), String::new(), false), big.clone());
        }
        assert!(cache.bytes <= DIFF_CACHE_BYTES, "{}", cache.bytes);
        assert!(cache.entries.len() < before + 5);
    }
}
