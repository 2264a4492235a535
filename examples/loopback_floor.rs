//! The loopback floor under the fan-out benchmark (docs/benchmarks.md): how
//! long this machine's kernel takes to carry one small message to each of N
//! TCP streams and have it read at the other end, with no server around it.
//!
//!     scripts/bench.sh --floor                  # builds this, raises the fd limit, runs it
//!     loopback_floor --streams 9000 --writers 2 --rounds 10
//!
//! One process holds both ends of N loopback connections (so 2·N descriptors).
//! A reader thread polls the receiving ends (mio, edge-triggered, napping
//! between rounds as the fan-out driver does); `--writers` threads write a
//! 700-byte message to every sending end (each a share of the streams, one
//! `write` each, as the push hub does). Per round it prints the time from
//! the first write to the last receipt; the summary gives the median and the
//! slowest round. What the server adds on top of this is its own work
//! (deciding who gets what, HTTP chunk framing, bookkeeping); this is what
//! any server pays on this machine.

use clap::Parser;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(
    about = "Loopback floor: one small write to each of N TCP streams, read at the other end"
)]
struct Args {
    /// Streams (each takes two descriptors in this process).
    #[arg(long, default_value_t = 9_000)]
    streams: usize,
    /// Threads writing (the push hub uses two for a large fan-out).
    #[arg(long, default_value_t = 2)]
    writers: usize,
    /// Timed rounds.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Bytes per message (a ~600-byte config as an SSE frame is ~700).
    #[arg(long, default_value_t = 700)]
    bytes: usize,
    /// Microseconds the reader sleeps after each round of reads, as the
    /// fan-out driver's does (`--reader-nap-us`); `0`: no nap.
    #[arg(long, default_value_t = 100)]
    reader_nap_us: u64,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let (senders, receivers) = connect(args.streams)?;
    let receipts = Receipts::new();
    Reader::start(
        receivers,
        receipts.clone(),
        args.bytes,
        Duration::from_micros(args.reader_nap_us),
    )?;
    let fanout = Fanout {
        senders: Arc::new(senders),
        message: Arc::new(vec![b'x'; args.bytes]),
        writers: args.writers.max(1),
    };
    println!(
        "loopback floor: {} streams, {} writer thread(s), {}-byte messages, {} CPUs",
        args.streams,
        fanout.writers,
        args.bytes,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut rounds = Vec::new();
    for round in 1..=args.rounds.max(1) {
        let took = time_round(&fanout, &receipts, round);
        println!(
            "  round {round:>2}: last receipt {:.1} ms after the writes began",
            ms(took)
        );
        rounds.push(took);
    }
    rounds.sort();
    println!(
        "median {:.1} ms, slowest {:.1} ms for {} streams",
        ms(rounds[rounds.len() / 2]),
        ms(*rounds.last().expect("at least one round")),
        args.streams
    );
    Ok(())
}

/// `streams` loopback connections: their sending ends (nonblocking, no
/// Nagle) and their receiving ends (nonblocking, for mio).
fn connect(streams: usize) -> std::io::Result<(Vec<TcpStream>, Vec<mio::net::TcpStream>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let mut senders = Vec::with_capacity(streams);
    let mut receivers = Vec::with_capacity(streams);
    for _ in 0..streams {
        let receiver = TcpStream::connect(addr)?;
        let (sender, _) = listener.accept()?;
        sender.set_nodelay(true)?;
        sender.set_nonblocking(true)?;
        receiver.set_nonblocking(true)?;
        senders.push(sender);
        receivers.push(mio::net::TcpStream::from_std(receiver));
    }
    Ok((senders, receivers))
}

/// Messages received so far, and when the last one was (nanoseconds after
/// `start`); shared by the reader and the rounds.
#[derive(Clone)]
struct Receipts {
    received: Arc<AtomicUsize>,
    last_ns: Arc<AtomicUsize>,
    start: Instant,
}

impl Receipts {
    fn new() -> Self {
        Self {
            received: Arc::new(AtomicUsize::new(0)),
            start: Instant::now(),
            last_ns: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Nanoseconds since `start`.
    fn now_ns(&self) -> usize {
        self.start.elapsed().as_nanos() as usize
    }

    fn received(&self) -> usize {
        self.received.load(Ordering::Acquire)
    }

    fn last_ns(&self) -> usize {
        self.last_ns.load(Ordering::Acquire)
    }

    /// `whole` more messages, received now.
    fn record(&self, whole: usize) {
        self.received.fetch_add(whole, Ordering::Release);
        self.last_ns.store(self.now_ns(), Ordering::Release);
    }
}

/// The reader thread: polls the receiving ends (edge-triggered), napping
/// `nap` between rounds of reads, and counts whole `message`-byte messages.
struct Reader {
    poll: mio::Poll,
    receivers: Vec<mio::net::TcpStream>,
    receipts: Receipts,
    message: usize,
    nap: Duration,
}

impl Reader {
    fn start(
        mut receivers: Vec<mio::net::TcpStream>,
        receipts: Receipts,
        message: usize,
        nap: Duration,
    ) -> std::io::Result<()> {
        let poll = mio::Poll::new()?;
        for (i, receiver) in receivers.iter_mut().enumerate() {
            poll.registry()
                .register(receiver, mio::Token(i), mio::Interest::READABLE)?;
        }
        let reader = Self {
            poll,
            receivers,
            receipts,
            message,
            nap,
        };
        std::thread::spawn(move || reader.run());
        Ok(())
    }

    fn run(mut self) {
        let mut events = mio::Events::with_capacity(1024);
        let mut buf = vec![0u8; 16 * 1024];
        let mut partial = vec![0usize; self.receivers.len()];
        loop {
            if !self.nap.is_zero() {
                std::thread::sleep(self.nap);
            }
            if self.poll.poll(&mut events, None).is_err() {
                return;
            }
            for event in events.iter() {
                let i = event.token().0;
                self.drain(i, &mut buf, &mut partial[i]);
            }
        }
    }

    /// Reads receiving end `i` until it has nothing more; `partial`: the
    /// bytes of its message not yet whole.
    fn drain(&mut self, i: usize, buf: &mut [u8], partial: &mut usize) {
        loop {
            match self.receivers[i].read(buf) {
                Ok(0) => break,
                Ok(n) => {
                    *partial += n;
                    let whole = *partial / self.message;
                    *partial %= self.message;
                    if whole > 0 {
                        self.receipts.record(whole);
                    }
                    if n < buf.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }
}

/// The sending ends, the message each round writes once to every one, and
/// the threads writing it (each a share of the streams).
struct Fanout {
    senders: Arc<Vec<TcpStream>>,
    message: Arc<Vec<u8>>,
    writers: usize,
}

impl Fanout {
    /// Writes the message to every sending end; returns once every writer is done.
    fn write(&self) {
        let share = self.senders.len().div_ceil(self.writers);
        let threads: Vec<_> = (0..self.writers)
            .map(|w| {
                let (senders, message) = (self.senders.clone(), self.message.clone());
                std::thread::spawn(move || {
                    for mut sender in senders.iter().skip(w * share).take(share) {
                        // A full socket buffer cannot happen: every message is read.
                        let _ = sender.write(&message);
                    }
                })
            })
            .collect();
        for thread in threads {
            let _ = thread.join();
        }
    }
}

/// One round, after a pause: the time from the first write to the last
/// receipt. Exits the process when not every message arrives within 10 s.
fn time_round(fanout: &Fanout, receipts: &Receipts, round: usize) -> Duration {
    std::thread::sleep(Duration::from_millis(500));
    let before = receipts.received();
    let began = receipts.now_ns();
    fanout.write();
    let deadline = Instant::now() + Duration::from_secs(10);
    while receipts.received() < before + fanout.senders.len() {
        if Instant::now() > deadline {
            eprintln!("round {round}: not every message arrived within 10 s");
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    Duration::from_nanos((receipts.last_ns() - began) as u64)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
