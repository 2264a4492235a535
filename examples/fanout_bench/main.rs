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
//! With `--postgres-nodes N` (issue 17, point 8) etcd is left out: the same
//! run measures graycast as one node on SQLite and then as N nodes sharing one
//! PostgreSQL (the specification, section 8; `--postgres URL`, default
//! `$GRAYCAST_TEST_POSTGRES`, names the server, where a fresh database is
//! created), the subscribers split evenly between the nodes and each update
//! sent through the next node in turn.
//!
//! Options: `--subscribers N` (default 10,000), `--graycast PATH`, `--etcd
//! PATH`, `--releases N`, `--rate-secs S`, `--reader-threads N`,
//! `--only graycast|etcd`, `--postgres-nodes N`, `--postgres URL`.
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

mod cluster;
mod etcd;
mod streams;
mod updates;

use cluster::{bench_graycast, Cluster};
use etcd::bench_etcd;
use streams::*;
use updates::{Deliveries, Sustained};

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
    /// Instead of etcd, run graycast again as this many nodes sharing one
    /// PostgreSQL, after one node on SQLite; `0`: off.
    #[arg(long, default_value_t = 0)]
    postgres_nodes: usize,
    /// The PostgreSQL server for `--postgres-nodes`, as the URL of a database
    /// on it (`postgres://user@127.0.0.1:PORT/postgres`); a fresh database is
    /// created beside it and dropped at the end.
    #[arg(long, env = "GRAYCAST_TEST_POSTGRES")]
    postgres: Option<String>,
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
    if args.postgres_nodes > 0 {
        let server = args.postgres.as_deref().ok_or(
            "--postgres-nodes needs a PostgreSQL server: --postgres URL or GRAYCAST_TEST_POSTGRES \
             (scripts/bench.sh --postgres-nodes N starts a throwaway one)",
        )?;
        let sqlite = Cluster::sqlite(&args.graycast, "sqlite, 1 node").await?;
        let sqlite = bench_graycast(&args, sqlite).await?;
        let name = format!("postgres, {} nodes", args.postgres_nodes);
        let postgres =
            Cluster::postgres(&args.graycast, server, args.postgres_nodes, &name).await?;
        let database = postgres.database.clone();
        let postgres = bench_graycast(&args, postgres).await;
        cluster::drop_database(server, &database).await;
        let postgres = postgres?;
        print_table(&args, &[&sqlite, &postgres]);
        print_targets(&sqlite, None);
        print_targets(&postgres, None);
        return Ok(());
    }
    let updates = args.releases + 4;
    let graycast = match args.only.as_deref() {
        None | Some("graycast") => {
            let cluster = Cluster::sqlite(&args.graycast, "graycast").await?;
            Some(bench_graycast(&args, cluster).await?)
        }
        _ => None,
    };
    let etcd = match args.only.as_deref() {
        None | Some("etcd") => Some(bench_etcd(&args, updates).await?),
        _ => None,
    };
    let systems: Vec<&Outcome> = [graycast.as_ref(), etcd.as_ref()]
        .into_iter()
        .flatten()
        .collect();
    print_table(&args, &systems);
    if let Some(g) = &graycast {
        print_targets(g, etcd.as_ref());
    }
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
    /// What else is counted in `other_load_pct` (PostgreSQL).
    others_include: Option<&'static str>,
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

fn print_table(args: &Args, systems: &[&Outcome]) {
    let n = args.subscribers;
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
    for o in systems {
        print!(" {:>17} |", o.name);
    }
    println!();
    print!("|{}|", "-".repeat(38));
    for _ in systems {
        print!("{}:|", "-".repeat(18));
    }
    println!();
    for (label, value) in &rows {
        print!("| {label:<36} |");
        for o in systems {
            print!(" {:>17} |", value(o));
        }
        println!();
    }
    println!();
    for o in systems {
        if let Some(what) = o.others_include {
            println!(
                "note: {}'s \"other processes\" include {what}, which uses CPU for every update",
                o.name
            );
        } else if o.other_load_pct > 10.0 {
            println!(
                "note: other processes used {:.0} % of the machine during {}'s timed updates; \
                 its latencies include that contention",
                o.other_load_pct, o.name
            );
        }
    }
}

/// The graycast targets (the specification's and issue 6's) for one run of it.
fn print_targets(g: &Outcome, etcd: Option<&Outcome>) {
    let p99 = g.percentile(99.0).unwrap_or(Duration::MAX);
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "{}: target p99 <= 100 ms at {} subscribers: {} ({} ms)",
        g.name,
        g.connected,
        verdict(p99 <= Duration::from_millis(100)),
        ms(g.percentile(99.0))
    );
    println!(
        "{}: target <= 16 KiB per idle subscriber: {} ({:.1} KiB)",
        g.name,
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

/// The RSS of every node of a server together.
fn total_rss_kib(pids: &[u32]) -> Result<u64> {
    pids.iter().map(|&pid| rss_kib(pid)).sum()
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

/// CPU used so far by the server (every node of it), by this driver and by
/// the whole machine.
struct CpuMark {
    pids: Vec<u32>,
    server_ms: f64,
    driver_ms: f64,
    machine_ms: f64,
    at: Instant,
}

impl CpuMark {
    fn take(pids: &[u32]) -> Result<Self> {
        let mut server_ms = 0.0;
        for pid in pids {
            server_ms += process_cpu_ms(&pid.to_string())?;
        }
        Ok(Self {
            pids: pids.to_vec(),
            server_ms,
            driver_ms: process_cpu_ms("self")?,
            machine_ms: machine_busy_ms()?,
            at: Instant::now(),
        })
    }

    /// Since this mark: the server's CPU (ms), this driver's (ms), and the
    /// CPU of every other process as a share of the machine (%).
    fn since(&self) -> Result<(f64, f64, f64)> {
        let now = Self::take(&self.pids)?;
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
// What the updates carry, and the per-update summary

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
