//! Waiting in tests for something that happens in the end (a flush, a push, a node taking
//! over): [`eventually`] polls a check until it holds. Shared by every test binary.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

/// How long [`eventually`] waits for a condition before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Polls `check` until it returns `Some` (fails after [`PATIENCE`] with `what`).
pub async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    check: impl FnMut() -> F,
) -> T {
    eventually_within(what, PATIENCE, Duration::from_millis(50), check).await
}

/// Like [`eventually`], failing after `patience` and polling every `every`.
pub async fn eventually_within<T, F: Future<Output = Option<T>>>(
    what: &str,
    patience: Duration,
    every: Duration,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(every).await;
    }
}
