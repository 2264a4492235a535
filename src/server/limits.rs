//! What one connection may take, which both the connection loop (src/server/listen.rs) and the
//! fast path (src/server/fast.rs) enforce, and the error of a body that broke its time limit.

use std::time::Duration;

/// What one connection may take: time to send, time to read, and how many
/// connections there may be at once.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections open at once, watch streams included; one more is answered 503 and closed.
    pub max_connections: usize,
    /// A client must send a request head within this time; a kept-alive
    /// connection idle this long is closed.
    pub header_timeout: Duration,
    /// A request body must arrive whole within this time after its head.
    pub body_timeout: Duration,
    /// A client that takes no bytes for this long while a response waits is cut off.
    pub write_timeout: Duration,
}

impl ConnectionLimits {
    pub fn of(config: &crate::server::ServeConfig) -> Self {
        Self {
            max_connections: config.max_connections.max(1),
            header_timeout: config.header_timeout,
            body_timeout: config.body_timeout,
            write_timeout: config.write_timeout,
        }
    }
}

/// The error of a request body that did not arrive within
/// [`ConnectionLimits::body_timeout`].
#[derive(Debug)]
pub struct BodyTimeout(pub Duration);

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body did not arrive within {} s",
            self.0.as_secs_f64()
        )
    }
}

impl std::error::Error for BodyTimeout {}

impl BodyTimeout {
    /// The timeout behind `error` (a body error as an extractor reports it), if any.
    pub fn behind<'e>(mut error: &'e (dyn std::error::Error + 'static)) -> Option<&'e Self> {
        loop {
            if let Some(timeout) = error.downcast_ref::<Self>() {
                return Some(timeout);
            }
            error = error.source()?;
        }
    }
}
