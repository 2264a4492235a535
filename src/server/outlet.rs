//! A watch stream's socket, written by the push hub itself.
//!
//! On a connection of its own (src/server/listen.rs), a watch stream's events
//! do not travel through a queue and a task: the hub's fan-out writes each
//! event straight into the subscriber's socket with one non-blocking system
//! call, while the connection's task only watches for the client leaving,
//! sends heartbeats, and takes over when a socket is full. A release then
//! costs one write per subscriber whose version changed, and nothing else
//! per subscriber: no wake-up, no poll, no per-stream queue in memory.
//!
//! Order is kept by one rule: the hub writes directly only while the
//! stream is `live`, i.e. everything before is on the wire and nothing waits;
//! otherwise it appends to the backlog, which only the connection task
//! writes. A backlog longer than [`QUEUE_FRAMES`] means the subscriber is not
//! reading: the hub drops it, as it drops a slow queued stream.

use super::clock::Ticker;
use axum::body::Bytes;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};

/// Frames a subscriber may have waiting before it counts as stuck and is dropped.
pub const QUEUE_FRAMES: usize = 16;

/// A subscriber whose socket stays full this long (it stopped reading) is
/// cut off, unless the outlet is given another time ([`Outlet::with_write_timeout`]).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

const PING: &[u8] = b": ping\n\n";

pub struct Outlet {
    socket: TcpStream,
    /// HTTP/1.1: each event is one chunk. HTTP/1.0: events as they are.
    chunked: bool,
    state: Mutex<State>,
    wake: Notify,
    write_timeout: Duration,
}

#[derive(Default)]
struct State {
    /// The hub may write directly: everything before is on the wire and the backlog is empty.
    live: bool,
    /// Wire bytes waiting for the connection task, in order.
    backlog: VecDeque<Bytes>,
    /// No more events: the hub dropped the subscriber, the socket failed, or
    /// the server is shutting down. The stream ends after the backlog.
    closed: bool,
}

impl Outlet {
    pub fn new(socket: TcpStream, chunked: bool) -> Self {
        Self {
            socket,
            chunked,
            state: Mutex::default(),
            wake: Notify::new(),
            write_timeout: WRITE_TIMEOUT,
        }
    }

    /// Cuts the subscriber off when its socket stays full for `timeout`.
    pub fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    pub fn socket(&self) -> &TcpStream {
        &self.socket
    }

    /// Hands over one event. `false`: the subscriber cannot take it (its
    /// backlog is full or its socket failed) and must be dropped.
    pub fn offer(&self, frame: &[u8]) -> bool {
        let mut state = self.state.lock().expect("outlet lock");
        if state.closed {
            return false;
        }
        if state.live {
            match self.try_write(frame) {
                Ok(None) => return true,
                Ok(Some(rest)) => {
                    state.live = false;
                    state.backlog.push_back(rest);
                }
                Err(_) => {
                    state.closed = true;
                    drop(state);
                    self.wake.notify_one();
                    return false;
                }
            }
        } else {
            if state.backlog.len() >= QUEUE_FRAMES {
                return false;
            }
            state.backlog.push_back(self.encode(frame));
        }
        drop(state);
        self.wake.notify_one();
        true
    }

    fn is_closed(&self) -> bool {
        self.state.lock().expect("outlet lock").closed
    }

    /// No more events; the connection task ends the stream after the backlog.
    pub fn close(&self) {
        self.state.lock().expect("outlet lock").closed = true;
        self.wake.notify_one();
    }

    /// Writes `frame` now if the socket has room: `None` when all of it went
    /// out, else the wire bytes still to write.
    fn try_write(&self, frame: &[u8]) -> io::Result<Option<Bytes>> {
        let mut size = [0u8; 18];
        let (size_line, trailer): (&[u8], &[u8]) = if self.chunked {
            let n = chunk_size_line(frame.len(), &mut size);
            (&size[..n], b"\r\n")
        } else {
            (&[], &[])
        };
        let total = size_line.len() + frame.len() + trailer.len();
        let slices = [
            IoSlice::new(size_line),
            IoSlice::new(frame),
            IoSlice::new(trailer),
        ];
        // A plain send, past tokio's readiness flag (one cache miss less per
        // event in a large fan-out). Safe for the connection task's waits: a
        // flag left saying "writable" only costs it one write that would
        // block, after which tokio clears it and waits for the next edge.
        let written = match socket2::SockRef::from(&self.socket).send_vectored(&slices) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(e),
        };
        if written == total {
            return Ok(None);
        }
        Ok(Some(self.encode(frame).slice(written..)))
    }

    /// `frame` as it goes on the wire.
    fn encode(&self, frame: &[u8]) -> Bytes {
        if !self.chunked {
            return Bytes::copy_from_slice(frame);
        }
        let mut size = [0u8; 18];
        let n = chunk_size_line(frame.len(), &mut size);
        let mut wire = Vec::with_capacity(n + frame.len() + 2);
        wire.extend_from_slice(&size[..n]);
        wire.extend_from_slice(frame);
        wire.extend_from_slice(b"\r\n");
        Bytes::from(wire)
    }
}

/// What the connection task needs after the response head: the events to
/// send first, the heartbeat, and what to do on each ping.
pub struct Live {
    pub initial: Vec<Bytes>,
    pub heartbeat: Ticker,
    pub on_ping: Box<dyn Fn() + Send + Sync>,
}

/// Runs a live stream after its response head went out: the initial events,
/// then whatever the hub leaves in the backlog, heartbeats, until the client
/// leaves, the hub drops the subscriber, or the server shuts down.
pub async fn run(
    outlet: Arc<Outlet>,
    live: Live,
    mut closing: watch::Receiver<bool>,
) -> io::Result<()> {
    let Live {
        initial,
        mut heartbeat,
        on_ping,
    } = live;
    {
        let mut state = outlet.state.lock().expect("outlet lock");
        for frame in initial.iter().rev() {
            state.backlog.push_front(outlet.encode(frame));
        }
    }
    drop(initial);
    loop {
        // Write what waits; when nothing does, the hub may write directly.
        loop {
            let batch = {
                let mut state = outlet.state.lock().expect("outlet lock");
                if state.backlog.is_empty() {
                    // Closed: stays not live, so nothing follows the last chunk.
                    state.live = !state.closed;
                    None
                } else {
                    state.live = false;
                    Some(std::mem::take(&mut state.backlog))
                }
            };
            let Some(batch) = batch else {
                if outlet.is_closed() {
                    if outlet.chunked {
                        write_all(&outlet.socket, b"0\r\n\r\n", outlet.write_timeout).await?;
                    }
                    return Ok(());
                }
                break;
            };
            for bytes in batch {
                if let Err(e) = write_all(&outlet.socket, &bytes, outlet.write_timeout).await {
                    outlet.close();
                    return Err(e);
                }
            }
        }
        tokio::select! {
            _ = outlet.wake.notified() => {}
            _ = heartbeat.tick() => {
                if outlet.offer(PING) {
                    on_ping();
                }
            }
            gone = client_gone(&outlet.socket) => {
                outlet.close();
                return gone;
            }
            _ = shutting_down(&mut closing) => outlet.close(),
        }
    }
}

/// Completes when the server begins to shut down.
pub async fn shutting_down(closing: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is dropped here, not held across an await.
    let _ = closing.wait_for(|closing| *closing).await;
}

/// Completes when the client has closed its side (or the socket failed);
/// bytes it sends meanwhile are ignored.
async fn client_gone(socket: &TcpStream) -> io::Result<()> {
    loop {
        socket.readable().await?;
        let mut sink = [0u8; 64];
        match socket.try_read(&mut sink) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

/// Writes all of `bytes`, waiting for room, but not longer than `timeout` in all.
pub async fn write_all(socket: &TcpStream, mut bytes: &[u8], timeout: Duration) -> io::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    while !bytes.is_empty() {
        match socket.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                tokio::time::timeout_at(deadline, socket.writable())
                    .await
                    .map_err(|_| {
                        io::Error::new(io::ErrorKind::TimedOut, "the subscriber stopped reading")
                    })??;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes `len` in hex followed by CRLF into `out`; returns the length used.
pub fn chunk_size_line(len: usize, out: &mut [u8; 18]) -> usize {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let digits = (usize::BITS - len.leading_zeros()).div_ceil(4).max(1) as usize;
    for i in 0..digits {
        out[digits - 1 - i] = HEX[(len >> (4 * i)) & 0xF];
    }
    out[digits] = b'\r';
    out[digits + 1] = b'\n';
    digits + 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::clock::Clock;
    use tokio::io::AsyncReadExt;

    #[test]
    fn formats_chunk_sizes_in_hex() {
        let mut out = [0u8; 18];
        for (len, text) in [
            (0usize, "0\r\n"),
            (9, "9\r\n"),
            (10, "A\r\n"),
            (255, "FF\r\n"),
            (256, "100\r\n"),
            (0x1234_5678, "12345678\r\n"),
        ] {
            let n = chunk_size_line(len, &mut out);
            assert_eq!(std::str::from_utf8(&out[..n]).unwrap(), text);
        }
    }

    async fn pair() -> (Arc<Outlet>, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        (
            Arc::new(Outlet::new(accepted.unwrap().0, true)),
            client.unwrap(),
        )
    }

    async fn read_exactly(client: &mut TcpStream, want: &str) {
        let mut got = vec![0u8; want.len()];
        tokio::time::timeout(Duration::from_secs(10), client.read_exact(&mut got))
            .await
            .expect("in time")
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&got), want);
    }

    #[tokio::test]
    async fn keeps_order_from_backlog_to_direct_writes_and_ends_the_chunks() {
        let (outlet, mut client) = pair().await;
        // Before the task runs, events wait in the backlog, after the initial ones.
        assert!(outlet.offer(b"b"));
        let (closing_tx, closing) = watch::channel(false);
        let live = Live {
            initial: vec![Bytes::from_static(b"a")],
            heartbeat: Clock::system().ticker(Duration::from_secs(3600), Duration::from_secs(3600)),
            on_ping: Box::new(|| {}),
        };
        let task = tokio::spawn(run(outlet.clone(), live, closing));
        read_exactly(&mut client, "1\r\na\r\n1\r\nb\r\n").await;
        // Once live, the hub's offers go straight to the socket, in order.
        while !outlet.state.lock().unwrap().live {
            tokio::task::yield_now().await;
        }
        assert!(outlet.offer(b"c"));
        assert!(outlet.offer(b"dd"));
        read_exactly(&mut client, "1\r\nc\r\n2\r\ndd\r\n").await;
        // Shutting down ends the chunked body.
        closing_tx.send_replace(true);
        read_exactly(&mut client, "0\r\n\r\n").await;
        task.await.unwrap().unwrap();
        assert!(!outlet.offer(b"e"), "a closed outlet takes nothing");
    }

    #[tokio::test]
    async fn a_full_backlog_refuses_and_the_client_leaving_ends_the_task() {
        let (outlet, client) = pair().await;
        for i in 0..QUEUE_FRAMES {
            assert!(outlet.offer(format!("{i}").as_bytes()));
        }
        assert!(
            !outlet.offer(b"one too many"),
            "the subscriber is to be dropped"
        );
        let (_closing_tx, closing) = watch::channel(false);
        let live = Live {
            initial: vec![],
            heartbeat: Clock::system().ticker(Duration::ZERO, Duration::from_secs(3600)),
            on_ping: Box::new(|| {}),
        };
        drop(client);
        let ended =
            tokio::time::timeout(Duration::from_secs(10), run(outlet.clone(), live, closing))
                .await
                .expect("the task ends when the client is gone");
        // Either the writes failed on the closed socket or the close was seen first.
        let _ = ended;
        assert!(!outlet.offer(b"x"));
    }

    #[tokio::test]
    async fn pings_go_out_between_events() {
        let (outlet, mut client) = pair().await;
        let (_closing_tx, closing) = watch::channel(false);
        let pinged = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = pinged.clone();
        let live = Live {
            initial: vec![],
            heartbeat: Clock::system().ticker(Duration::from_millis(10), Duration::from_secs(3600)),
            on_ping: Box::new(move || {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }),
        };
        let _task = tokio::spawn(run(outlet.clone(), live, closing));
        read_exactly(&mut client, "8\r\n: ping\n\n\r\n").await;
        assert_eq!(pinged.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
