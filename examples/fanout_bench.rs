//! Watch fan-out benchmark (issue 6, point 8): graycast's SSE watch stream
//! against etcd 3.4's watch, with the same number of subscribers and the same
//! updates, in one run, on loopback.
//!
//!     make bench                       # scripts/bench.sh: builds, raises the fd limit, runs this
//!     make bench BENCH_ARGS="--subscribers 1000"
//!
//! For each system it starts the server as a separate process on 127.0.0.1
//! (graycast: a fresh SQLite database in a temporary directory,
//! `--heartbeat-secs 15`; etcd: a fresh data directory), reads its RSS, opens N
//! streams over raw TCP (a minimal HTTP/1.1 client and line parser per
//! connection; the sockets are read by `--reader-threads` threads polling them,
//! 1 by default), waits for every stream's first event, reads the RSS again,
//! then:
//!
//! 1. times each update from just before its HTTP request is written to the
//!    receipt of the matching event at every subscriber that should get it
//!    (graycast: 20 stable releases alternating two versions, then a lane on
//!    `tier=web` at 10 % → 50 % → 100 %, then abort; which subscribers should
//!    get what comes from the lane preview routes; etcd: as many puts of the
//!    one watched key);
//! 2. sends updates back to back (each waits for its response) for a few
//!    seconds with every stream attached: the sustained release / put rate.
//!
//! Around both phases it reads the server's CPU time (`/proc/<pid>/stat`) and
//! the machine's (`/proc/stat`): the server's CPU per update, this driver's,
//! and how much of the machine other processes took meanwhile (a busy
//! neighbour inflates the latencies; the table says so).
//!
//! Options: `--subscribers N` (default 10,000), `--graycast PATH`, `--etcd
//! PATH`, `--releases N`, `--rate-secs S`, `--reader-threads N`,
//! `--only graycast|etcd`.
//! It exits non-zero only when something fails (a server does not start, a
//! setup request is refused, no stream connects), never because a target is
//! missed.

use clap::Parser;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, Error>;

const NAMESPACE: &str = "bench";
const ENV: &str = "prod";
const KEY: &str = "app.json";
const REGIONS: [&str; 4] = ["beijing", "shanghai", "shenzhen", "hangzhou"];
const TIERS: [&str; 2] = ["web", "api"];
/// The lane's version; the stable releases alternate versions 1 and 2.
const LANE_VERSION: i64 = 3;
const LANE_SELECTOR: &str = "tier=web";

#[derive(Parser, Debug)]
#[command(about = "Watch fan-out: graycast SSE vs etcd 3.4 watch, on loopback")]
struct Args {
    /// Streams to open on each system.
    #[arg(long, default_value_t = 10_000)]
    subscribers: usize,
    /// The graycast binary.
    #[arg(long, default_value = "target/release/graycast")]
    graycast: PathBuf,
    /// The etcd binary (Debian package etcd-server).
    #[arg(long, default_value = "/usr/bin/etcd")]
    etcd: PathBuf,
    /// Timed stable releases (graycast) before the lane steps; etcd gets as
    /// many puts as graycast gets releases and lane changes together.
    #[arg(long, default_value_t = 20)]
    releases: usize,
    /// Seconds of back-to-back updates for the sustained rate.
    #[arg(long, default_value_t = 5.0)]
    rate_secs: f64,
    /// Pause between timed updates, in milliseconds. Each update's latency is
    /// measured alone; the pause lets the server finish the work an update
    /// leaves behind (graycast writes the instances' served versions behind,
    /// etcd syncs its WAL) before the next one. `0`: back to back.
    #[arg(long, default_value_t = 1000)]
    pause_ms: u64,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 200)]
    connect_parallel: usize,
    /// Threads reading the streams (each with an epoll of its own).
    #[arg(long, default_value_t = 1)]
    reader_threads: usize,
    /// Microseconds a reader thread sleeps after each round of reads, so that
    /// arrivals gather and a server's write seldom has to wake a reader
    /// blocked in epoll (on loopback that wake-up, an inter-processor
    /// interrupt on this VM, runs inside the server's system call; across a
    /// network the server never pays it). A receipt's time is still the
    /// instant its read returned, so the nap can only add to a measured
    /// latency. `0`: block in epoll after every round.
    #[arg(long, default_value_t = 100)]
    reader_nap_us: u64,
    /// Run only one system (`graycast` or `etcd`).
    #[arg(long)]
    only: Option<String>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    // On Ctrl-C or SIGTERM, return so the guards stop the servers.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    let result = tokio::select! {
        result = run(args) => result,
        _ = tokio::signal::ctrl_c() => Err("interrupted".into()),
        _ = term.recv() => Err("terminated".into()),
    };
    if let Err(e) = result {
        eprintln!("fanout_bench: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<()> {
    let soft = fd_limit();
    println!(
        "fan-out benchmark: {} streams per system, {} ms between timed updates, open-file limit {soft}",
        args.subscribers, args.pause_ms
    );
    if soft < (args.subscribers as u64) + 1000 {
        return Err(format!(
            "the open-file limit ({soft}) is too low for {} streams; run `ulimit -n 65536` first (make bench does)",
            args.subscribers
        )
        .into());
    }
    let updates = args.releases + 4;
    let graycast = match args.only.as_deref() {
        None | Some("graycast") => Some(bench_graycast(&args).await?),
        _ => None,
    };
    let etcd = match args.only.as_deref() {
        None | Some("etcd") => Some(bench_etcd(&args, updates).await?),
        _ => None,
    };
    print_table(&args, graycast.as_ref(), etcd.as_ref());
    Ok(())
}

// ---------------------------------------------------------------------------
// Results

#[derive(Debug, Default)]
struct Outcome {
    name: String,
    connected: usize,
    failed: usize,
    connect_secs: f64,
    rss_before_kib: u64,
    rss_after_kib: u64,
    updates: usize,
    expected: usize,
    latencies: Vec<Duration>,
    unexpected: usize,
    missing: usize,
    rate: f64,
    rate_updates: usize,
    closed: usize,
    converged: usize,
    /// Server CPU over the timed updates (pauses included), per update.
    cpu_per_update_ms: f64,
    /// This driver's CPU over the timed updates, per update: receiving the
    /// events takes CPU from the machine the server runs on.
    driver_cpu_per_update_ms: f64,
    /// Server CPU over the sustained updates and their delivery, per update.
    cpu_per_rate_update_ms: f64,
    /// CPU used by processes other than the server and this driver during
    /// the timed updates, as a share of the machine: above a few percent the
    /// latencies are not the server's alone.
    other_load_pct: f64,
}

impl Outcome {
    fn per_subscriber_kib(&self) -> f64 {
        if self.connected == 0 {
            return 0.0;
        }
        (self.rss_after_kib as f64 - self.rss_before_kib as f64) / self.connected as f64
    }

    fn percentile(&self, p: f64) -> Option<Duration> {
        percentile(&self.latencies, p)
    }
}

/// `latencies` sorted ascending; nearest-rank percentile.
fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.1}", d.as_secs_f64() * 1000.0))
}

/// One row of the side-by-side table: its label and how to print a system's value.
type Row<'a> = (&'static str, Box<dyn Fn(&Outcome) -> String + 'a>);

fn print_table(args: &Args, graycast: Option<&Outcome>, etcd: Option<&Outcome>) {
    let n = args.subscribers;
    let systems: Vec<&Outcome> = [graycast, etcd].into_iter().flatten().collect();
    let rows: Vec<Row> = vec![
        (
            "subscribers / watchers",
            Box::new(|o| format!("{}/{}", o.connected, n)),
        ),
        (
            "time to attach all (s)",
            Box::new(|o| format!("{:.1}", o.connect_secs)),
        ),
        (
            "timed updates (pause between)",
            Box::new(|o| format!("{} ({} ms)", o.updates, args.pause_ms)),
        ),
        (
            "deliveries (received/expected)",
            Box::new(|o| format!("{}/{}", o.latencies.len(), o.expected)),
        ),
        ("latency p50 (ms)", Box::new(|o| ms(o.percentile(50.0)))),
        ("latency p99 (ms)", Box::new(|o| ms(o.percentile(99.0)))),
        (
            "latency max (ms)",
            Box::new(|o| ms(o.latencies.last().copied())),
        ),
        (
            "server RSS idle (MiB)",
            Box::new(|o| format!("{:.1}", o.rss_before_kib as f64 / 1024.0)),
        ),
        (
            "server RSS, all attached (MiB)",
            Box::new(|o| format!("{:.1}", o.rss_after_kib as f64 / 1024.0)),
        ),
        (
            "RSS per subscriber (KiB)",
            Box::new(|o| format!("{:.1}", o.per_subscriber_kib())),
        ),
        (
            "release / put rate (/s)",
            Box::new(|o| format!("{:.0}", o.rate)),
        ),
        (
            "server CPU per timed update (ms)",
            Box::new(|o| format!("{:.0}", o.cpu_per_update_ms)),
        ),
        (
            "driver CPU per timed update (ms)",
            Box::new(|o| format!("{:.0}", o.driver_cpu_per_update_ms)),
        ),
        (
            "server CPU per sustained update (ms)",
            Box::new(|o| format!("{:.0}", o.cpu_per_rate_update_ms)),
        ),
        (
            "other processes' CPU, timed (%)",
            Box::new(|o| format!("{:.0}", o.other_load_pct)),
        ),
        (
            "streams closed by server",
            Box::new(|o| o.closed.to_string()),
        ),
        (
            "on the last update after",
            Box::new(|o| format!("{}/{}", o.converged, o.connected)),
        ),
    ];
    println!();
    print!("| {:<36} |", "");
    for o in &systems {
        print!(" {:>14} |", o.name);
    }
    println!();
    print!("|{}|", "-".repeat(38));
    for _ in &systems {
        print!("{}:|", "-".repeat(15));
    }
    println!();
    for (label, value) in &rows {
        print!("| {label:<36} |");
        for o in &systems {
            print!(" {:>14} |", value(o));
        }
        println!();
    }
    println!();
    for o in &systems {
        if o.other_load_pct > 10.0 {
            println!(
                "note: other processes used {:.0} % of the machine during {}'s timed updates; \
                 its latencies include that contention",
                o.other_load_pct, o.name
            );
        }
    }
    if let Some(g) = graycast {
        let p99 = g.percentile(99.0).unwrap_or(Duration::MAX);
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        println!(
            "target p99 <= 100 ms at {} subscribers: {} ({} ms)",
            g.connected,
            verdict(p99 <= Duration::from_millis(100)),
            ms(g.percentile(99.0))
        );
        println!(
            "target <= 16 KiB per idle subscriber: {} ({:.1} KiB)",
            verdict(g.per_subscriber_kib() <= 16.0),
            g.per_subscriber_kib()
        );
        if let Some(e) = etcd {
            let ep99 = e.percentile(99.0).unwrap_or(Duration::MAX);
            println!(
                "target not slower than etcd: p99 {} ({} vs {} ms), rate {} ({:.0} vs {:.0} /s)",
                verdict(p99 <= ep99),
                ms(g.percentile(99.0)),
                ms(e.percentile(99.0)),
                verdict(g.rate >= e.rate),
                g.rate,
                e.rate
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Processes

/// A child process killed when dropped (on success, error or panic).
struct Guard {
    name: &'static str,
    child: Child,
}

impl Guard {
    fn pid(&self) -> Result<u32> {
        self.child
            .id()
            .ok_or_else(|| format!("{} has exited", self.name).into())
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no VmRSS for pid {pid}").into())
}

/// CPU time (user + system) used so far by process `pid` (or `"self"`), in ms.
fn process_cpu_ms(pid: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces): state is the
    // 3rd field, utime the 14th, stime the 15th; in clock ticks (USER_HZ, 100).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| -> Result<f64> {
        Ok(fields
            .get(i)
            .ok_or_else(|| format!("short /proc/{pid}/stat"))?
            .parse::<f64>()?)
    };
    Ok((ticks(11)? + ticks(12)?) * 10.0)
}

/// Busy CPU time of the whole machine so far (every CPU), in ms.
fn machine_busy_ms() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().ok_or("empty /proc/stat")?;
    // cpu user nice system idle iowait irq softirq steal …
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    let at = |i: usize| v.get(i).copied().unwrap_or(0.0);
    Ok((at(0) + at(1) + at(2) + at(5) + at(6) + at(7)) * 10.0)
}

/// CPU used so far by the server, by this driver and by the whole machine.
struct CpuMark {
    pid: u32,
    server_ms: f64,
    driver_ms: f64,
    machine_ms: f64,
    at: Instant,
}

impl CpuMark {
    fn take(pid: u32) -> Result<Self> {
        Ok(Self {
            pid,
            server_ms: process_cpu_ms(&pid.to_string())?,
            driver_ms: process_cpu_ms("self")?,
            machine_ms: machine_busy_ms()?,
            at: Instant::now(),
        })
    }

    /// Since this mark: the server's CPU (ms), this driver's (ms), and the
    /// CPU of every other process as a share of the machine (%).
    fn since(&self) -> Result<(f64, f64, f64)> {
        let now = Self::take(self.pid)?;
        let server = now.server_ms - self.server_ms;
        let driver = now.driver_ms - self.driver_ms;
        let others = (now.machine_ms - self.machine_ms) - server - driver;
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let wall_ms = now.at.duration_since(self.at).as_secs_f64() * 1000.0;
        Ok((
            server,
            driver,
            (others.max(0.0) / (wall_ms * cpus) * 100.0).min(100.0),
        ))
    }
}

fn fd_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// A port that was free a moment ago (for etcd, which cannot report the one it bound).
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn http_client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()?)
}

async fn send_json(request: reqwest::RequestBuilder) -> Result<Value> {
    let response = request.send().await?;
    let status = response.status();
    let body = response.text().await?;
    if !status.is_success() {
        return Err(format!("HTTP {status}: {body}").into());
    }
    if body.is_empty() {
        return Ok(Value::Null);
    }
    Ok(serde_json::from_str(&body)?)
}

// ---------------------------------------------------------------------------
// Streams: raw HTTP/1.1 over TCP, read by a few threads with an epoll each
//
// The streams share the machine's CPUs with the server, so what each receipt
// costs the driver is taken from the server. A tokio task per stream, with a
// channel message per event, cost more CPU per event than the server's write
// of it; here a reader thread owns a slice of the sockets, reads whatever a
// wake-up made readable, and hands the events of one wake-up over in one batch.

#[derive(Debug, Clone, Copy, PartialEq)]
enum Protocol {
    /// graycast `GET /api/v1/watch`: SSE, `config` events.
    Sse,
    /// etcd `POST /v3/watch`: newline-delimited JSON watch responses.
    EtcdJson,
}

enum Msg {
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
struct Dechunker {
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
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

/// The integer after `"name":` (quoted or not), e.g. `"version":3` or `"mod_revision":"12"`.
fn int_field(text: &[u8], name: &str) -> Option<i64> {
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
struct LineState {
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
struct Conn {
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

/// A stream to open: which subscriber, and its request.
struct Open {
    sub: usize,
    request: Vec<u8>,
}

const WAKER: mio::Token = mio::Token(usize::MAX);
/// A reader thread hands its messages over at most this often (or when it
/// holds [`HAND_OVER_AT`]): each hand-over wakes the collector, and those
/// wake-ups would otherwise take CPU from the server once per few receipts.
/// Receipt times are taken when a read returns, so this delays nothing measured.
const HAND_OVER_EVERY: Duration = Duration::from_millis(2);
const HAND_OVER_AT: usize = 4096;

/// The reader threads of one system's streams; dropping it closes them.
struct Readers {
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
        addr: SocketAddr,
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
                .spawn(move || read_loop(protocol, (addr, nap), poll, inbox, out, &stop))?;
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

fn read_loop(
    protocol: Protocol,
    (addr, nap): (SocketAddr, Duration),
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
                while let Ok(Open { sub, request }) = opens.try_recv() {
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
struct Inbox {
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
struct Attached {
    readers: Readers,
    inbox: Inbox,
    ready: usize,
    failed: usize,
    secs: f64,
}

/// Opens `requests.len()` streams on `threads` reader threads, at most
/// `parallel` being opened at once, and waits until each has its first event
/// or has failed.
async fn attach_all(
    protocol: Protocol,
    addr: SocketAddr,
    requests: Vec<Vec<u8>>,
    parallel: usize,
    (threads, nap): (usize, Duration),
) -> Result<Attached> {
    let n = requests.len();
    let started = Instant::now();
    let (tx, rx) = mpsc::unbounded_channel();
    let readers = Readers::start(protocol, addr, (threads, nap), tx)?;
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
            .map(|(sub, request)| Open { sub, request })
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
/// attached, how fast, and the server's RSS once they have been idle 2 s;
/// `noun` names the streams in what it prints.
async fn attach_and_measure(
    args: &Args,
    outcome: &mut Outcome,
    pid: u32,
    (protocol, addr): (Protocol, SocketAddr),
    requests: Vec<Vec<u8>>,
    noun: &str,
) -> Result<(Readers, Inbox)> {
    let attached = attach_all(
        protocol,
        addr,
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
    outcome.rss_after_kib = rss_kib(pid)?;
    println!(
        "  RSS {:.1} MiB idle → {:.1} MiB with {connected} idle {noun}: {:.1} KiB each",
        outcome.rss_before_kib as f64 / 1024.0,
        outcome.rss_after_kib as f64 / 1024.0,
        outcome.per_subscriber_kib()
    );
    Ok((attached.readers, attached.inbox))
}

/// Per subscriber: the version (graycast) or revision (etcd) it should get next.
type Expectation = HashMap<usize, i64>;

/// Receives the deliveries of one update sent at `sent`: waits until every
/// expected subscriber has its event (or `timeout`), then `grace` more for
/// anything unexpected.
async fn collect(
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
async fn pause(args: &Args, rx: &mut Inbox, outcome: &mut Outcome, last: &mut [i64]) {
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
async fn settle(
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

// ---------------------------------------------------------------------------
// graycast

fn content(version: i64) -> String {
    // About 600 bytes of JSON, the same bytes in etcd's puts.
    let routes: Vec<String> = (0..12)
        .map(|i| {
            format!(
                "{{\"path\":\"/api/v{version}/route{i}\",\"timeout_ms\":{}}}",
                100 + i
            )
        })
        .collect();
    format!(
        "{{\"release\":{version},\"feature_x\":{},\"pool_size\":{},\"routes\":[{}]}}",
        version % 2 == 0,
        8 * version,
        routes.join(",")
    )
}

fn labels(sub: usize) -> (String, &'static str, &'static str) {
    (
        format!("bench-{sub:05}"),
        REGIONS[sub % REGIONS.len()],
        TIERS[(sub / REGIONS.len()) % TIERS.len()],
    )
}

async fn start_graycast(binary: &Path, dir: &Path) -> Result<(Guard, SocketAddr, String)> {
    let database_url = format!("sqlite://{}/graycast.db?mode=rwc", dir.display());
    let output = Command::new(binary)
        .args([
            "token",
            "create",
            "--name",
            "bench-admin",
            "--role",
            "admin",
        ])
        .args(["--database-url", &database_url])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    if !output.status.success() {
        return Err(format!(
            "graycast token create failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let token = String::from_utf8(output.stdout)?
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .ok_or("graycast token create printed no token")?
        .to_string();
    let log = std::fs::File::create(dir.join("graycast.log"))?;
    let mut child = Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--heartbeat-secs", "15"])
        .args(["--database-url", &database_url])
        .args(["--admin-password", "bench-admin-password"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let guard = Guard {
        name: "graycast",
        child,
    };
    let mut lines = BufReader::new(stdout).lines();
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                return Ok::<_, Error>(rest.trim().parse::<SocketAddr>()?);
            }
        }
        Err("graycast exited before listening (see its log)".into())
    })
    .await
    .map_err(|_| "graycast did not start within 60 s")??;
    // Keep reading stdout so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((guard, addr, token))
}

async fn bench_graycast(args: &Args) -> Result<Outcome> {
    println!("\n== graycast ({})", args.graycast.display());
    let dir = tempfile::tempdir()?;
    let (server, addr, admin) = start_graycast(&args.graycast, dir.path()).await?;
    let pid = server.pid()?;
    println!(
        "  server pid {pid} on http://{addr}, database in {}",
        dir.path().display()
    );
    let http = http_client()?;
    let api = format!("http://{addr}/api/v1");
    let config = format!("{api}/namespaces/{NAMESPACE}/envs/{ENV}/configs/{KEY}");
    let post = |url: String, body: Value| http.post(url).bearer_auth(&admin).json(&body);
    send_json(post(
        format!("{api}/namespaces"),
        json!({"name": NAMESPACE}),
    ))
    .await?;
    send_json(post(
        format!("{api}/namespaces/{NAMESPACE}/envs/{ENV}/configs"),
        json!({"key": KEY, "format": "json", "content": content(1)}),
    ))
    .await?;
    for version in 2..=LANE_VERSION {
        send_json(post(
            format!("{config}/versions"),
            json!({"content": content(version), "base_version": version - 1}),
        ))
        .await?;
    }
    send_json(post(format!("{config}/release"), json!({"version": 1}))).await?;
    let subscriber = send_json(post(
        format!("{api}/tokens"),
        json!({"name": "bench-subscriber", "role": "subscriber"}),
    ))
    .await?;
    let subscriber = subscriber["token"]
        .as_str()
        .ok_or("POST /tokens gave no token")?
        .to_string();

    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut outcome = Outcome {
        name: "graycast".into(),
        rss_before_kib: rss_kib(pid)?,
        ..Outcome::default()
    };
    let n = args.subscribers;
    let mut index: HashMap<String, usize> = HashMap::new();
    let requests: Vec<Vec<u8>> = (0..n)
        .map(|sub| {
            let (client_id, region, tier) = labels(sub);
            index.insert(client_id.clone(), sub);
            format!(
                "GET /api/v1/watch?namespace={NAMESPACE}&env={ENV}&keys={KEY}&client_id={client_id}\
                 &labels=region%3D{region}%2Ctier%3D{tier} HTTP/1.1\r\nHost: {addr}\r\n\
                 Authorization: Bearer {subscriber}\r\nAccept: text/event-stream\r\n\r\n"
            )
            .into_bytes()
        })
        .collect();
    let (readers, mut rx) = attach_and_measure(
        args,
        &mut outcome,
        pid,
        (Protocol::Sse, addr),
        requests,
        "subscribers",
    )
    .await?;

    // Which version each subscriber holds now (every one got version 1).
    let mut holds = vec![1i64; n];
    let mut last = vec![1i64; n];
    let timeout = Duration::from_secs(20);
    let grace = Duration::from_millis(200);
    let mut stable = 1;
    let mut per_phase = Vec::new();
    let timed = CpuMark::take(pid)?;
    for i in 0..args.releases {
        stable = if stable == 1 { 2 } else { 1 };
        let expected: Expectation = (0..n).map(|s| (s, stable)).collect();
        pause(args, &mut rx, &mut outcome, &mut last).await;
        let before = outcome.latencies.len();
        let sent = Instant::now();
        send_json(post(
            format!("{config}/release"),
            json!({"version": stable}),
        ))
        .await?;
        collect(
            &mut rx,
            sent,
            expected,
            timeout,
            grace,
            &mut outcome,
            &mut last,
        )
        .await;
        holds.iter_mut().for_each(|h| *h = stable);
        per_phase.push((format!("release {} (v{stable})", i + 1), before));
    }

    // The lane: 10 % → 50 % → 100 % of tier=web, then abort. The preview
    // routes say exactly which connected subscribers it matches.
    let matched = |preview: &Value| -> Vec<usize> {
        preview["matched"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().and_then(|c| index.get(c).copied()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let change = |holds: &mut Vec<i64>, inside: &[usize]| -> Expectation {
        let mut want = vec![stable; n];
        for &s in inside {
            want[s] = LANE_VERSION;
        }
        let expected = (0..n)
            .filter(|&s| want[s] != holds[s])
            .map(|s| (s, want[s]))
            .collect();
        *holds = want;
        expected
    };
    let lane_body = json!({"version": LANE_VERSION, "selector": LANE_SELECTOR, "percentage": 10.0});
    let preview = send_json(post(format!("{config}/lanes/preview"), lane_body.clone())).await?;
    let expected = change(&mut holds, &matched(&preview));
    pause(args, &mut rx, &mut outcome, &mut last).await;
    let before = outcome.latencies.len();
    let sent = Instant::now();
    let lane = send_json(post(format!("{config}/lanes"), lane_body)).await?;
    collect(
        &mut rx,
        sent,
        expected,
        timeout,
        grace,
        &mut outcome,
        &mut last,
    )
    .await;
    per_phase.push(("lane tier=web 10 %".into(), before));
    let lane_id = lane["id"].as_i64().ok_or("POST /lanes gave no id")?;
    for percentage in [50.0, 100.0] {
        let body = json!({"percentage": percentage});
        let preview = send_json(post(
            format!("{config}/lanes/{lane_id}/preview"),
            body.clone(),
        ))
        .await?;
        let expected = change(&mut holds, &matched(&preview));
        pause(args, &mut rx, &mut outcome, &mut last).await;
        let before = outcome.latencies.len();
        let sent = Instant::now();
        send_json(
            http.patch(format!("{config}/lanes/{lane_id}"))
                .bearer_auth(&admin)
                .json(&body),
        )
        .await?;
        collect(
            &mut rx,
            sent,
            expected,
            timeout,
            grace,
            &mut outcome,
            &mut last,
        )
        .await;
        per_phase.push((format!("lane → {percentage} %"), before));
    }
    let expected = change(&mut holds, &[]);
    pause(args, &mut rx, &mut outcome, &mut last).await;
    let before = outcome.latencies.len();
    let sent = Instant::now();
    send_json(post(format!("{config}/lanes/{lane_id}/abort"), json!({}))).await?;
    collect(
        &mut rx,
        sent,
        expected,
        timeout,
        grace,
        &mut outcome,
        &mut last,
    )
    .await;
    per_phase.push(("lane abort".into(), before));
    outcome.updates = args.releases + 4;
    (
        outcome.cpu_per_update_ms,
        outcome.driver_cpu_per_update_ms,
        outcome.other_load_pct,
    ) = timed.since()?;
    outcome.cpu_per_update_ms /= outcome.updates as f64;
    outcome.driver_cpu_per_update_ms /= outcome.updates as f64;
    print_phases(&outcome, &per_phase);

    // Sustained: back-to-back releases, each waiting for its response.
    let sustained = CpuMark::take(pid)?;
    let started = Instant::now();
    let mut count = 0;
    while started.elapsed().as_secs_f64() < args.rate_secs {
        stable = if stable == 1 { 2 } else { 1 };
        send_json(post(
            format!("{config}/release"),
            json!({"version": stable}),
        ))
        .await?;
        count += 1;
    }
    outcome.rate = count as f64 / started.elapsed().as_secs_f64();
    outcome.rate_updates = count;
    settle(
        &mut rx,
        Duration::from_secs(2),
        Duration::from_secs(60),
        &mut outcome,
        &mut last,
    )
    .await;
    outcome.converged = last.iter().filter(|&&v| v == stable).count();
    outcome.cpu_per_rate_update_ms = sustained.since()?.0 / count.max(1) as f64;
    println!(
        "  sustained: {count} releases in {:.1} s = {:.0}/s; {} streams closed by the server; \
         {} of {} ended on the last release",
        args.rate_secs, outcome.rate, outcome.closed, outcome.converged, outcome.connected
    );
    server.stop().await;
    drop(readers);
    outcome.latencies.sort();
    Ok(outcome)
}

fn print_phases(outcome: &Outcome, phases: &[(String, usize)]) {
    let mut summary: Vec<String> = Vec::new();
    for (i, (name, start)) in phases.iter().enumerate() {
        let end = phases.get(i + 1).map_or(outcome.latencies.len(), |p| p.1);
        let mut part = outcome.latencies[*start..end].to_vec();
        part.sort();
        summary.push(format!(
            "  {name:<24} {:>6} deliveries  first {:>6} ms  p50 {:>7} ms  p99 {:>7} ms  max {:>7} ms",
            part.len(),
            ms(part.first().copied()),
            ms(percentile(&part, 50.0)),
            ms(percentile(&part, 99.0)),
            ms(part.last().copied())
        ));
    }
    for line in summary {
        println!("{line}");
    }
    println!(
        "  missing deliveries {}, unexpected events {}, streams closed {}",
        outcome.missing, outcome.unexpected, outcome.closed
    );
    println!(
        "  CPU per timed update: server {:.0} ms, this driver {:.0} ms; other processes used {:.0} % \
         of the machine meanwhile",
        outcome.cpu_per_update_ms, outcome.driver_cpu_per_update_ms, outcome.other_load_pct
    );
}

// ---------------------------------------------------------------------------
// etcd

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

async fn start_etcd(binary: &Path, dir: &Path) -> Result<(Guard, SocketAddr)> {
    let client = free_port()?;
    let mut peer = free_port()?;
    while peer == client {
        peer = free_port()?;
    }
    let client_url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let log = std::fs::File::create(dir.join("etcd.log"))?;
    let child = Command::new(binary)
        .arg("--name")
        .arg("default")
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--listen-client-urls", &client_url])
        .args(["--advertise-client-urls", &client_url])
        .args(["--listen-peer-urls", &peer_url])
        .args(["--initial-advertise-peer-urls", &peer_url])
        .args(["--initial-cluster", &format!("default={peer_url}")])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let mut guard = Guard {
        name: "etcd",
        child,
    };
    let addr: SocketAddr = format!("127.0.0.1:{client}").parse()?;
    let http = http_client()?;
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = guard.child.try_wait() {
            return Err(
                format!("etcd exited with {status} (see {}/etcd.log)", dir.display()).into(),
            );
        }
        if let Ok(response) = http.get(format!("{client_url}/health")).send().await {
            if response
                .text()
                .await
                .unwrap_or_default()
                .contains("\"true\"")
            {
                break;
            }
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err("etcd did not become healthy within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((guard, addr))
}

async fn etcd_version(binary: &Path) -> String {
    Command::new(binary)
        .arg("--version")
        .output()
        .await
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout).lines().find_map(|l| {
                l.strip_prefix("etcd Version:")
                    .map(|v| v.trim().to_string())
            })
        })
        .unwrap_or_else(|| "?".into())
}

async fn bench_etcd(args: &Args, updates: usize) -> Result<Outcome> {
    let version = etcd_version(&args.etcd).await;
    println!("\n== etcd {version} ({})", args.etcd.display());
    let dir = tempfile::tempdir()?;
    let (server, addr) = start_etcd(&args.etcd, dir.path()).await?;
    let pid = server.pid()?;
    println!(
        "  etcd pid {pid} on http://{addr}, data in {}",
        dir.path().display()
    );
    let http = http_client()?;
    let key = base64(format!("/{NAMESPACE}/{ENV}/{KEY}").as_bytes());
    let put = |version: i64| {
        http.post(format!("http://{addr}/v3/kv/put"))
            .json(&json!({"key": key, "value": base64(content(version).as_bytes())}))
    };
    let revision = |answer: &Value| -> Result<i64> {
        answer["header"]["revision"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| format!("put answered without a revision: {answer}").into())
    };
    let first = revision(&send_json(put(1)).await?)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut outcome = Outcome {
        name: format!("etcd {version}"),
        rss_before_kib: rss_kib(pid)?,
        ..Outcome::default()
    };
    let n = args.subscribers;
    let body = json!({"create_request": {"key": key}}).to_string();
    let request = format!(
        "POST /v3/watch HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes();
    let (readers, mut rx) = attach_and_measure(
        args,
        &mut outcome,
        pid,
        (Protocol::EtcdJson, addr),
        vec![request; n],
        "watchers",
    )
    .await?;

    let mut last = vec![first; n];
    let timeout = Duration::from_secs(20);
    let grace = Duration::from_millis(200);
    let mut per_phase = Vec::new();
    let mut value = 1;
    let timed = CpuMark::take(pid)?;
    for i in 0..updates {
        value = if value == 1 { 2 } else { 1 };
        pause(args, &mut rx, &mut outcome, &mut last).await;
        let before = outcome.latencies.len();
        let sent = Instant::now();
        let answer = send_json(put(value)).await?;
        let rev = revision(&answer)?;
        let expected: Expectation = (0..n).map(|s| (s, rev)).collect();
        collect(
            &mut rx,
            sent,
            expected,
            timeout,
            grace,
            &mut outcome,
            &mut last,
        )
        .await;
        per_phase.push((format!("put {}", i + 1), before));
    }
    outcome.updates = updates;
    (
        outcome.cpu_per_update_ms,
        outcome.driver_cpu_per_update_ms,
        outcome.other_load_pct,
    ) = timed.since()?;
    outcome.cpu_per_update_ms /= updates as f64;
    outcome.driver_cpu_per_update_ms /= updates as f64;
    print_phases(&outcome, &per_phase);

    let sustained = CpuMark::take(pid)?;
    let started = Instant::now();
    let mut count = 0;
    let mut final_rev = 0;
    while started.elapsed().as_secs_f64() < args.rate_secs {
        value = if value == 1 { 2 } else { 1 };
        final_rev = revision(&send_json(put(value)).await?)?;
        count += 1;
    }
    outcome.rate = count as f64 / started.elapsed().as_secs_f64();
    outcome.rate_updates = count;
    settle(
        &mut rx,
        Duration::from_secs(2),
        Duration::from_secs(120),
        &mut outcome,
        &mut last,
    )
    .await;
    outcome.converged = last.iter().filter(|&&v| v == final_rev).count();
    outcome.cpu_per_rate_update_ms = sustained.since()?.0 / count.max(1) as f64;
    println!(
        "  sustained: {count} puts in {:.1} s = {:.0}/s; {} streams closed by the server; \
         {} of {} ended on the last put",
        args.rate_secs, outcome.rate, outcome.closed, outcome.converged, outcome.connected
    );
    server.stop().await;
    drop(readers);
    outcome.latencies.sort();
    Ok(outcome)
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
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
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
