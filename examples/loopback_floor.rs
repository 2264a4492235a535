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
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let mut senders = Vec::with_capacity(args.streams);
    let mut receivers = Vec::with_capacity(args.streams);
    for _ in 0..args.streams {
        let receiver = TcpStream::connect(addr)?;
        let (sender, _) = listener.accept()?;
        sender.set_nodelay(true)?;
        sender.set_nonblocking(true)?;
        receiver.set_nonblocking(true)?;
        senders.push(sender);
        receivers.push(mio::net::TcpStream::from_std(receiver));
    }
    // Messages received so far, and when the last one was.
    let received = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let last_ns = Arc::new(AtomicUsize::new(0));
    let mut poll = mio::Poll::new()?;
    for (i, receiver) in receivers.iter_mut().enumerate() {
        poll.registry()
            .register(receiver, mio::Token(i), mio::Interest::READABLE)?;
    }
    {
        let (received, last_ns) = (received.clone(), last_ns.clone());
        let message = args.bytes;
        let nap = Duration::from_micros(args.reader_nap_us);
        std::thread::spawn(move || {
            let mut events = mio::Events::with_capacity(1024);
            let mut buf = vec![0u8; 16 * 1024];
            let mut partial = vec![0usize; receivers.len()];
            loop {
                if !nap.is_zero() {
                    std::thread::sleep(nap);
                }
                if poll.poll(&mut events, None).is_err() {
                    return;
                }
                for event in events.iter() {
                    let i = event.token().0;
                    loop {
                        match receivers[i].read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => {
                                partial[i] += n;
                                let whole = partial[i] / message;
                                partial[i] %= message;
                                if whole > 0 {
                                    received.fetch_add(whole, Ordering::Release);
                                    last_ns.store(
                                        start.elapsed().as_nanos() as usize,
                                        Ordering::Release,
                                    );
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
        });
    }
    let senders = Arc::new(senders);
    let message = Arc::new(vec![b'x'; args.bytes]);
    let writers = args.writers.max(1);
    println!(
        "loopback floor: {} streams, {} writer thread(s), {}-byte messages, {} CPUs",
        args.streams,
        writers,
        args.bytes,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut rounds = Vec::new();
    for round in 1..=args.rounds.max(1) {
        std::thread::sleep(Duration::from_millis(500));
        let before = received.load(Ordering::Acquire);
        let began = start.elapsed().as_nanos() as usize;
        let share = args.streams.div_ceil(writers);
        let threads: Vec<_> = (0..writers)
            .map(|w| {
                let (senders, message) = (senders.clone(), message.clone());
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
        let deadline = Instant::now() + Duration::from_secs(10);
        while received.load(Ordering::Acquire) < before + args.streams {
            if Instant::now() > deadline {
                eprintln!("round {round}: not every message arrived within 10 s");
                std::process::exit(1);
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let took = Duration::from_nanos((last_ns.load(Ordering::Acquire) - began) as u64);
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
