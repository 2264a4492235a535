//! The updates both systems get, timed one at a time and then back to back:
//! what the streams deliver, phase by phase, and the CPU it takes.

use super::*;

/// How long a timed update's expected deliveries may take.
const TIMEOUT: Duration = Duration::from_secs(20);
/// How long after them anything unexpected is still counted.
const GRACE: Duration = Duration::from_millis(200);

/// One system's attached streams while it gets its updates: what they
/// deliver goes into `outcome`, the version (graycast) or revision (etcd)
/// each stream got last into `last`, and where each timed update's
/// deliveries begin into `phases`.
pub struct Deliveries<'a> {
    args: &'a Args,
    rx: Inbox,
    outcome: Outcome,
    last: Vec<i64>,
    phases: Vec<(String, usize)>,
}

impl<'a> Deliveries<'a> {
    /// Every stream holds `first` (each got it with its first event).
    pub fn new(args: &'a Args, rx: Inbox, outcome: Outcome, first: i64) -> Self {
        Self {
            args,
            rx,
            outcome,
            last: vec![first; args.subscribers],
            phases: Vec::new(),
        }
    }

    /// Every stream should get `version` (or revision).
    pub fn everyone(&self, version: i64) -> Expectation {
        (0..self.last.len()).map(|s| (s, version)).collect()
    }

    /// Waits `--pause-ms` ([`pause`]) and opens the timed phase `name`;
    /// returns the instant its update is sent.
    pub async fn begin(&mut self, name: String) -> Instant {
        pause(self.args, &mut self.rx, &mut self.outcome, &mut self.last).await;
        self.phases.push((name, self.outcome.latencies.len()));
        Instant::now()
    }

    /// Receives the deliveries of the update sent at `sent` ([`collect`]).
    pub async fn collect(&mut self, sent: Instant, expected: Expectation) {
        collect(
            &mut self.rx,
            sent,
            expected,
            TIMEOUT,
            GRACE,
            &mut self.outcome,
            &mut self.last,
        )
        .await;
    }

    /// Ends the timed updates (one per phase) that began at `mark`: the CPU
    /// they took per update, and the summary of each phase.
    pub fn end_timed(&mut self, mark: &CpuMark) -> Result<()> {
        let updates = self.phases.len();
        self.outcome.updates = updates;
        let (server, driver, others) = mark.since()?;
        self.outcome.cpu_per_update_ms = server / updates as f64;
        self.outcome.driver_cpu_per_update_ms = driver / updates as f64;
        self.outcome.other_load_pct = others;
        print_phases(&self.outcome, &self.phases);
        Ok(())
    }

    /// Ends the sustained updates: their rate, then, once the streams have
    /// caught up (at most `settle_max`), how many of them hold `latest` and
    /// the server's CPU per update. `noun` names an update in what it prints.
    pub async fn end_sustained(
        &mut self,
        sustained: Sustained,
        latest: i64,
        settle_max: Duration,
        noun: &str,
    ) -> Result<()> {
        let count = sustained.count;
        self.outcome.rate = count as f64 / sustained.started.elapsed().as_secs_f64();
        self.outcome.rate_updates = count;
        settle(
            &mut self.rx,
            Duration::from_secs(2),
            settle_max,
            &mut self.outcome,
            &mut self.last,
        )
        .await;
        self.outcome.converged = self.last.iter().filter(|&&v| v == latest).count();
        self.outcome.cpu_per_rate_update_ms = sustained.mark.since()?.0 / count.max(1) as f64;
        println!(
            "  sustained: {count} {noun}s in {:.1} s = {:.0}/s; {} streams closed by the server; \
             {} of {} ended on the last {noun}",
            self.args.rate_secs,
            self.outcome.rate,
            self.outcome.closed,
            self.outcome.converged,
            self.outcome.connected
        );
        Ok(())
    }

    /// The outcome, its latencies sorted.
    pub fn into_outcome(self) -> Outcome {
        let mut outcome = self.outcome;
        outcome.latencies.sort();
        outcome
    }
}

/// Back-to-back updates, each waiting for its response, for `--rate-secs`.
pub struct Sustained {
    mark: CpuMark,
    started: Instant,
    count: usize,
}

impl Sustained {
    /// Starts now, marking the CPU of the server's processes `pids`.
    pub fn start(pids: &[u32]) -> Result<Self> {
        Ok(Self {
            mark: CpuMark::take(pids)?,
            started: Instant::now(),
            count: 0,
        })
    }

    /// Whether `--rate-secs` have not passed yet.
    pub fn running(&self, args: &Args) -> bool {
        self.started.elapsed().as_secs_f64() < args.rate_secs
    }

    /// Counts one more update answered.
    pub fn sent(&mut self) {
        self.count += 1;
    }
}
