//! Streams: raw HTTP/1.1 over TCP, read by a few threads with an epoll each.
//!
//! The streams share the machine's CPUs with the server, so what each receipt
//! costs the driver is taken from the server. A tokio task per stream, with a
//! channel message per event, cost more CPU per event than the server's write
//! of it; here a reader thread owns a slice of the sockets, reads whatever a
//! wake-up made readable, and hands the events of one wake-up over in one batch.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Protocol {
    /// graycast `GET /api/v1/watch`: SSE, `config` events.
    Sse,
    /// etcd `POST /v3/watch`: newline-delimited JSON watch responses.
    EtcdJson,
}

pub enum Msg {
    /// The stream's first event: graycast's initial `config`, etcd's `created`.
    Ready,
    /// A later event: graycast's `config` version, etcd's mod_revision,
    /// received (read from the socket) at `at`.
    Event {
        sub: usize,
        version: i64,
        at: Instant,
    },
    /// The stream ended or never opened.
    Closed { ready: bool, reason: String },
}

/// Dechunks a `Transfer-Encoding: chunked` body incrementally.
#[derive(Default)]
pub struct Dechunker {
    raw: Vec<u8>,
    /// Data bytes left in the current chunk.
    left: usize,
    /// The CRLF after a chunk's data is still to come.
    crlf: bool,
}

impl Dechunker {
    /// Moves what is decodable from `raw` to `out`; `Ok(true)` at the last chunk.
    fn decode(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        let raw = std::mem::take(&mut self.raw);
        let (used, done) = self.step(&raw, out)?;
        self.raw = raw;
        self.raw.drain(..used);
        Ok(done)
    }

    /// Decodes `bytes` just read: straight from them when nothing is held
    /// back (the usual case, one event per read), keeping only an unfinished
    /// tail; `Ok(true)` at the last chunk.
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        if !self.raw.is_empty() {
            self.raw.extend_from_slice(bytes);
            return self.decode(out);
        }
        let (used, done) = self.step(bytes, out)?;
        if !done {
            self.raw.extend_from_slice(&bytes[used..]);
        }
        Ok(done)
    }

    /// Decodes from the start of `input`: (bytes used, whether the last chunk came).
    fn step(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(usize, bool)> {
        let mut pos = 0;
        loop {
            let available = input.len() - pos;
            if self.left > 0 {
                if available == 0 {
                    return Ok((pos, false));
                }
                let take = self.left.min(available);
                out.extend_from_slice(&input[pos..pos + take]);
                pos += take;
                self.left -= take;
                continue;
            }
            if self.crlf {
                if available < 2 {
                    return Ok((pos, false));
                }
                pos += 2;
                self.crlf = false;
                continue;
            }
            let Some(end) = find(&input[pos..], b"\r\n") else {
                return Ok((pos, false));
            };
            let line = &input[pos..pos + end];
            let digits = line.split(|&b| b == b';').next().unwrap_or(b"");
            let size = std::str::from_utf8(digits)
                .ok()
                .and_then(|d| usize::from_str_radix(d.trim(), 16).ok())
                .ok_or_else(|| {
                    format!("bad chunk size line {:?}", String::from_utf8_lossy(line))
                })?;
            pos += end + 2;
            if size == 0 {
                return Ok((pos, true));
            }
            self.left = size;
            self.crlf = true;
        }
    }
}

/// Where `needle` (not empty) first occurs in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

/// The integer after `"name":` (quoted or not), e.g. `"version":3` or `"mod_revision":"12"`.
pub fn int_field(text: &[u8], name: &str) -> Option<i64> {
    let mut quoted = Vec::with_capacity(name.len() + 3);
    quoted.push(b'"');
    quoted.extend_from_slice(name.as_bytes());
    quoted.extend_from_slice(b"\":");
    let at = find(text, &quoted)?;
    let rest = &text[at + quoted.len()..];
    let rest = rest.trim_ascii_start();
    let rest = rest.strip_prefix(b"\"").unwrap_or(rest);
    let end = rest
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(rest.len());
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// What one connection parses out of its body lines.
#[derive(Default)]
pub struct LineState {
    /// The SSE event being read is a `config` event.
    config: bool,
    version: Option<i64>,
    ready: bool,
}

impl LineState {
    /// Handles one body line (without its `\n`), read at `at`; adds the messages it completes.
    fn line(
        &mut self,
        protocol: Protocol,
        sub: usize,
        line: &[u8],
        at: Instant,
        out: &mut Vec<Msg>,
    ) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match protocol {
            Protocol::Sse => {
                if line.is_empty() {
                    if self.config {
                        let version = self.version.unwrap_or(0);
                        self.emit(sub, version, at, out);
                    }
                    self.config = false;
                    self.version = None;
                } else if let Some(v) = line.strip_prefix(b"event:") {
                    self.config = v.trim_ascii() == b"config";
                } else if let Some(v) = line.strip_prefix(b"data:") {
                    // The payload's first "version" is the top-level one
                    // (it precedes "content", whose quotes are escaped).
                    self.version = int_field(v, "version");
                }
            }
            Protocol::EtcdJson => {
                if line.trim_ascii().is_empty() {
                    return;
                }
                if !self.ready && find(line, b"\"created\":true").is_some() {
                    self.ready = true;
                    out.push(Msg::Ready);
                }
                // One message may carry several events; each is a delivery.
                let mut rest = line;
                while let Some(i) = find(rest, b"\"mod_revision\":") {
                    let revision = int_field(&rest[i..], "mod_revision").unwrap_or(0);
                    self.emit(sub, revision, at, out);
                    rest = &rest[i + 15..];
                }
            }
        }
    }

    fn emit(&mut self, sub: usize, version: i64, at: Instant, out: &mut Vec<Msg>) {
        if self.ready {
            out.push(Msg::Event { sub, version, at });
        } else {
            self.ready = true;
            out.push(Msg::Ready);
        }
    }
}

/// One stream, owned by a reader thread.
pub struct Conn {
    socket: mio::net::TcpStream,
    /// The request bytes not written yet; `None` once written.
    request: Option<Vec<u8>>,
    /// The response head so far; `None` once it is complete.
    head: Option<Vec<u8>>,
    chunked: bool,
    dechunker: Dechunker,
    body: Vec<u8>,
    lines: LineState,
}

impl Conn {
    /// Does what the socket allows now; `Ok(Some(reason))` when the stream has ended.
    fn pump(
        &mut self,
        protocol: Protocol,
        sub: usize,
        buf: &mut [u8],
        out: &mut Vec<Msg>,
    ) -> Result<Option<String>> {
        use std::io::{ErrorKind, Read, Write};
        if let Some(request) = &mut self.request {
            // A non-blocking connect has finished when the socket is writable
            // and has a peer.
            if let Some(e) = self.socket.take_error()? {
                return Err(e.into());
            }
            match self.socket.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotConnected => return Ok(None),
                Err(e) => return Err(e.into()),
            }
            while !request.is_empty() {
                match self.socket.write(request) {
                    Ok(n) => {
                        request.drain(..n);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            }
            self.request = None;
        }
        loop {
            let n = match self.socket.read(buf) {
                Ok(0) => return Ok(Some("closed by the server".into())),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            let at = Instant::now();
            if self.feed(protocol, sub, &buf[..n], at, out)? {
                return Ok(Some("end of stream".into()));
            }
            // A short read drained the socket: data arriving later raises a
            // new edge (epoll signals every arrival), so the read that would
            // only say "would block" is saved.
            if n < buf.len() {
                return Ok(None);
            }
        }
    }

    /// Parses `bytes` read at `at`; `Ok(true)` at the end of the body.
    fn feed(
        &mut self,
        protocol: Protocol,
        sub: usize,
        bytes: &[u8],
        at: Instant,
        out: &mut Vec<Msg>,
    ) -> Result<bool> {
        let mut bytes = bytes;
        let rest;
        if let Some(head) = &mut self.head {
            head.extend_from_slice(bytes);
            let Some(end) = find(head, b"\r\n\r\n").map(|i| i + 4) else {
                return Ok(false);
            };
            let text = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
            let status = text.split_whitespace().nth(1).unwrap_or("");
            if status != "200" {
                let body = String::from_utf8_lossy(&head[end..]).to_string();
                return Err(format!("HTTP {status}: {}", body.trim()).into());
            }
            self.chunked = text.contains("transfer-encoding: chunked");
            rest = head.split_off(end);
            self.head = None;
            bytes = &rest;
        }
        let done = if self.chunked {
            self.dechunker.feed(bytes, &mut self.body)?
        } else {
            self.body.extend_from_slice(bytes);
            false
        };
        let mut start = 0;
        while let Some(i) = memchr::memchr(b'\n', &self.body[start..]) {
            self.lines
                .line(protocol, sub, &self.body[start..start + i], at, out);
            start += i + 1;
        }
        self.body.drain(..start);
        Ok(done)
    }
}

/// A stream to open: which subscriber, where (the node it watches), and its request.
pub struct Open {
    sub: usize,
    addr: SocketAddr,
    request: Vec<u8>,
}

pub const WAKER: mio::Token = mio::Token(usize::MAX);
/// A reader thread hands its messages over at most this often (or when it
/// holds [`HAND_OVER_AT`]): each hand-over wakes the collector, and those
/// wake-ups would otherwise take CPU from the server once per few receipts.
/// Receipt times are taken when a read returns, so this delays nothing measured.
pub const HAND_OVER_EVERY: Duration = Duration::from_millis(2);
pub const HAND_OVER_AT: usize = 4096;

/// The reader threads of one system's streams; dropping it closes them.
pub struct Readers {
    threads: Vec<(
        std::sync::mpsc::Sender<Open>,
        Arc<mio::Waker>,
        std::thread::JoinHandle<()>,
    )>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Readers {
    fn start(
        protocol: Protocol,
        (count, nap): (usize, Duration),
        out: mpsc::UnboundedSender<Vec<Msg>>,
    ) -> Result<Self> {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut threads = Vec::new();
        for i in 0..count.max(1) {
            let poll = mio::Poll::new()?;
            let waker = Arc::new(mio::Waker::new(poll.registry(), WAKER)?);
            let (opens, inbox) = std::sync::mpsc::channel();
            let (out, stop) = (out.clone(), stop.clone());
            let thread = std::thread::Builder::new()
                .name(format!("reader-{i}"))
                .spawn(move || read_loop(protocol, nap, poll, inbox, out, &stop))?;
            threads.push((opens, waker, thread));
        }
        Ok(Self { threads, stop })
    }

    /// Hands streams to the threads, round robin by subscriber.
    fn open(&self, streams: Vec<Open>) -> Result<()> {
        let mut woken = vec![false; self.threads.len()];
        for open in streams {
            let i = open.sub % self.threads.len();
            self.threads[i]
                .0
                .send(open)
                .map_err(|_| "a reader thread has stopped")?;
            woken[i] = true;
        }
        for (i, (_, waker, _)) in self.threads.iter().enumerate() {
            if woken[i] {
                waker.wake()?;
            }
        }
        Ok(())
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for (_, waker, _) in &self.threads {
            let _ = waker.wake();
        }
        for (_, _, thread) in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

pub fn read_loop(
    protocol: Protocol,
    nap: Duration,
    mut poll: mio::Poll,
    opens: std::sync::mpsc::Receiver<Open>,
    out: mpsc::UnboundedSender<Vec<Msg>>,
    stop: &std::sync::atomic::AtomicBool,
) {
    // Indexed by subscriber (each thread holds every n-th).
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut events = mio::Events::with_capacity(1024);
    let mut buf = vec![0u8; 16 * 1024];
    // Messages not handed over yet, and since when the oldest waits.
    let mut batch = Vec::new();
    let mut waiting: Option<Instant> = None;
    loop {
        let timeout = waiting.map(|since| HAND_OVER_EVERY.saturating_sub(since.elapsed()));
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            eprintln!("reader thread: poll failed: {e}");
            return;
        }
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        for event in events.iter() {
            if event.token() == WAKER {
                while let Ok(Open { sub, addr, request }) = opens.try_recv() {
                    let opened = mio::net::TcpStream::connect(addr).and_then(|mut socket| {
                        socket.set_nodelay(true)?;
                        poll.registry().register(
                            &mut socket,
                            mio::Token(sub),
                            mio::Interest::READABLE | mio::Interest::WRITABLE,
                        )?;
                        Ok(socket)
                    });
                    match opened {
                        Ok(socket) => {
                            if conns.len() <= sub {
                                conns.resize_with(sub + 1, || None);
                            }
                            conns[sub] = Some(Conn {
                                socket,
                                request: Some(request),
                                head: Some(Vec::new()),
                                chunked: false,
                                dechunker: Dechunker::default(),
                                body: Vec::new(),
                                lines: LineState::default(),
                            });
                        }
                        Err(e) => batch.push(Msg::Closed {
                            ready: false,
                            reason: e.to_string(),
                        }),
                    }
                }
                continue;
            }
            let sub = event.token().0;
            let Some(conn) = conns.get_mut(sub).and_then(Option::as_mut) else {
                continue;
            };
            let ended = match conn.pump(protocol, sub, &mut buf, &mut batch) {
                Ok(None) => continue,
                Ok(Some(reason)) => reason,
                Err(e) => e.to_string(),
            };
            if let Some(mut conn) = conns[sub].take() {
                let _ = poll.registry().deregister(&mut conn.socket);
                batch.push(Msg::Closed {
                    ready: conn.lines.ready,
                    reason: ended,
                });
            }
        }
        if !nap.is_zero() {
            std::thread::sleep(nap);
        }
        if batch.is_empty() {
            continue;
        }
        let since = *waiting.get_or_insert_with(Instant::now);
        if batch.len() >= HAND_OVER_AT || since.elapsed() >= HAND_OVER_EVERY {
            waiting = None;
            if out.send(std::mem::take(&mut batch)).is_err() {
                return;
            }
        }
    }
}

/// The driver's end of the reader threads' batches.
pub struct Inbox {
    rx: mpsc::UnboundedReceiver<Vec<Msg>>,
    pending: std::collections::VecDeque<Msg>,
}

impl Inbox {
    async fn recv(&mut self) -> Option<Msg> {
        loop {
            if let Some(msg) = self.pending.pop_front() {
                return Some(msg);
            }
            let batch = self.rx.recv().await?;
            self.pending.extend(batch);
        }
    }
}

/// The streams of one system, attached.
pub struct Attached {
    readers: Readers,
    inbox: Inbox,
    ready: usize,
    failed: usize,
    secs: f64,
}

/// Opens `requests.len()` streams (each to its address) on `threads` reader
/// threads, at most `parallel` being opened at once, and waits until each has
/// its first event or has failed.
pub async fn attach_all(
    protocol: Protocol,
    requests: Vec<(SocketAddr, Vec<u8>)>,
    parallel: usize,
    (threads, nap): (usize, Duration),
) -> Result<Attached> {
    let n = requests.len();
    let started = Instant::now();
    let (tx, rx) = mpsc::unbounded_channel();
    let readers = Readers::start(protocol, (threads, nap), tx)?;
    let mut inbox = Inbox {
        rx,
        pending: Default::default(),
    };
    let mut requests = requests.into_iter().enumerate();
    let (mut ready, mut failed, mut opening) = (0, 0, 0);
    let mut reasons: HashMap<String, usize> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    let mut last_report = Instant::now();
    while ready + failed < n {
        let more: Vec<Open> = requests
            .by_ref()
            .take(parallel.max(1).saturating_sub(opening))
            .map(|(sub, (addr, request))| Open { sub, addr, request })
            .collect();
        opening += more.len();
        readers.open(more)?;
        let msg = match tokio::time::timeout_at(deadline, inbox.recv()).await {
            Ok(Some(msg)) => msg,
            _ => break,
        };
        match msg {
            Msg::Ready => {
                ready += 1;
                opening -= 1;
            }
            Msg::Closed {
                ready: was_ready,
                reason,
            } => {
                if was_ready {
                    ready -= 1;
                } else {
                    opening -= 1;
                }
                failed += 1;
                *reasons.entry(reason).or_default() += 1;
            }
            Msg::Event { .. } => {}
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            println!("  … {ready} attached, {failed} failed");
            last_report = Instant::now();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    for (reason, count) in &reasons {
        println!("  {count} streams failed: {reason}");
    }
    if ready == 0 {
        return Err("no stream could be opened".into());
    }
    Ok(Attached {
        readers,
        inbox,
        ready,
        failed,
        secs,
    })
}

/// Opens the streams ([`attach_all`]) and records in `outcome` how many
/// attached, how fast, and the server's RSS (all its nodes' together) once
/// they have been idle 2 s; `noun` names the streams in what it prints.
pub async fn attach_and_measure(
    args: &Args,
    outcome: &mut Outcome,
    pids: &[u32],
    protocol: Protocol,
    requests: Vec<(SocketAddr, Vec<u8>)>,
    noun: &str,
) -> Result<(Readers, Inbox)> {
    let attached = attach_all(
        protocol,
        requests,
        args.connect_parallel,
        (
            args.reader_threads,
            Duration::from_micros(args.reader_nap_us),
        ),
    )
    .await?;
    let (connected, failed, secs) = (attached.ready, attached.failed, attached.secs);
    outcome.connected = connected;
    outcome.failed = failed;
    outcome.connect_secs = secs;
    println!("  {connected} {noun} attached in {secs:.1} s ({failed} failed)");
    tokio::time::sleep(Duration::from_secs(2)).await;
    outcome.rss_after_kib = total_rss_kib(pids)?;
    println!(
        "  RSS {:.1} MiB idle → {:.1} MiB with {connected} idle {noun}: {:.1} KiB each",
        outcome.rss_before_kib as f64 / 1024.0,
        outcome.rss_after_kib as f64 / 1024.0,
        outcome.per_subscriber_kib()
    );
    Ok((attached.readers, attached.inbox))
}

/// Per subscriber: the version (graycast) or revision (etcd) it should get next.
pub type Expectation = HashMap<usize, i64>;

/// Receives the deliveries of one update sent at `sent`: waits until every
/// expected subscriber has its event (or `timeout`), then `grace` more for
/// anything unexpected.
pub async fn collect(
    rx: &mut Inbox,
    sent: Instant,
    mut expected: Expectation,
    timeout: Duration,
    grace: Duration,
    outcome: &mut Outcome,
    last: &mut [i64],
) {
    outcome.expected += expected.len();
    let deadline = tokio::time::Instant::from_std(sent) + timeout;
    let mut grace_until: Option<tokio::time::Instant> = None;
    loop {
        if expected.is_empty() && grace_until.is_none() {
            grace_until = Some(tokio::time::Instant::now() + grace);
        }
        let until = grace_until.unwrap_or(deadline);
        let msg = match tokio::time::timeout_at(until, rx.recv()).await {
            Ok(Some(msg)) => msg,
            _ => break,
        };
        match msg {
            Msg::Event {
                sub, version, at, ..
            } => {
                last[sub] = version;
                if expected.get(&sub) == Some(&version) {
                    expected.remove(&sub);
                    outcome.latencies.push(at.saturating_duration_since(sent));
                } else {
                    outcome.unexpected += 1;
                }
            }
            Msg::Closed { .. } => outcome.closed += 1,
            Msg::Ready => {}
        }
    }
    outcome.missing += expected.len();
}

/// Waits `--pause-ms`, counting whatever arrives meanwhile as unexpected.
pub async fn pause(args: &Args, rx: &mut Inbox, outcome: &mut Outcome, last: &mut [i64]) {
    let until = tokio::time::Instant::now() + Duration::from_millis(args.pause_ms);
    while let Ok(Some(msg)) = tokio::time::timeout_at(until, rx.recv()).await {
        match msg {
            Msg::Event { sub, version, .. } => {
                last[sub] = version;
                outcome.unexpected += 1;
            }
            Msg::Closed { .. } => outcome.closed += 1,
            Msg::Ready => {}
        }
    }
}

/// Drains deliveries until nothing has arrived for `quiet` (at most `max`).
pub async fn settle(
    rx: &mut Inbox,
    quiet: Duration,
    max: Duration,
    outcome: &mut Outcome,
    last: &mut [i64],
) {
    let end = Instant::now() + max;
    while Instant::now() < end {
        match tokio::time::timeout(quiet, rx.recv()).await {
            Ok(Some(Msg::Event { sub, version, .. })) => last[sub] = version,
            Ok(Some(Msg::Closed { .. })) => outcome.closed += 1,
            Ok(Some(Msg::Ready)) => {}
            _ => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_needles() {
        assert_eq!(find(b"ab\r\r\ncd", b"\r\n"), Some(3));
        assert_eq!(find(b"\r\n", b"\r\n"), Some(0));
        assert_eq!(find(b"ab\r", b"\r\n"), None);
        assert_eq!(find(b"xx\r\n\r\nyy", b"\r\n\r\n"), Some(2));
        assert_eq!(find(b"", b"\n"), None);
    }

    #[test]
    fn dechunks_across_reads() {
        let mut d = Dechunker::default();
        let mut out = Vec::new();
        d.raw.extend_from_slice(b"5\r\nhel");
        assert!(!d.decode(&mut out).unwrap());
        d.raw.extend_from_slice(b"lo\r\n3;x=1\r\n!\n\n\r");
        assert!(!d.decode(&mut out).unwrap());
        d.raw.extend_from_slice(b"\n0\r\n\r\n");
        assert!(d.decode(&mut out).unwrap());
        assert_eq!(out, b"hello!\n\n");
    }

    #[test]
    fn dechunks_straight_from_reads() {
        let mut d = Dechunker::default();
        let mut out = Vec::new();
        // Whole chunks are decoded without being held; a split one waits.
        assert!(!d.feed(b"3\r\nabc\r\n2\r\nd", &mut out).unwrap());
        assert_eq!(out, b"abcd");
        assert!(d.raw.is_empty());
        assert!(!d.feed(b"e\r\n1", &mut out).unwrap());
        assert_eq!(d.raw, b"1");
        assert!(!d.feed(b"\r\nf\r\n", &mut out).unwrap());
        assert!(d.feed(b"0\r\n\r\n", &mut out).unwrap());
        assert_eq!(out, b"abcdef");
    }

    #[test]
    fn reads_int_fields() {
        assert_eq!(
            int_field(br#"{"a":1,"version":12,"x":"\"version\":3"}"#, "version"),
            Some(12)
        );
        assert_eq!(
            int_field(br#"{"mod_revision":"77"}"#, "mod_revision"),
            Some(77)
        );
        assert_eq!(int_field(br#"{"version": 5}"#, "version"), Some(5));
        assert_eq!(int_field(br#"{"other":1}"#, "version"), None);
    }
}
