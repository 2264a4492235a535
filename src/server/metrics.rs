//! Prometheus metrics, kept by hand: atomics for the hot counters, a mutexed
//! map for the labelled ones, rendered as text exposition format 0.0.4.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histograms' buckets.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A cumulative histogram over [`BUCKETS`].
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn observe(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&bound| seconds <= bound) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let braces = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{{{s}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {sum}", braces(labels));
        let _ = writeln!(out, "{name}_count{} {count}", braces(labels));
    }
}

/// Answered requests by method, route template and status; nested so that
/// counting a request of a known series allocates nothing.
type RequestCounts = BTreeMap<String, BTreeMap<String, BTreeMap<u16, u64>>>;
/// Request durations by method and route template.
type RequestDurations = BTreeMap<String, BTreeMap<String, std::sync::Arc<Histogram>>>;

#[derive(Default)]
pub struct Metrics {
    subscribers: AtomicI64,
    /// Requests answered by the fast path (src/server/fast.rs), also counted in `requests`.
    fast_path_requests: AtomicU64,
    push_events: AtomicU64,
    push_latency: Histogram,
    releases: Mutex<BTreeMap<String, u64>>,
    requests: Mutex<(RequestCounts, RequestDurations)>,
    password_checks_running: AtomicI64,
    password_checks_refused: AtomicU64,
    /// Rollout plan transitions by where they went (`started`, `advanced`, `paused`, …).
    rollout_transitions: Mutex<BTreeMap<&'static str, u64>>,
    notifications: Mutex<BTreeMap<&'static str, u64>>,
    /// Guard evaluations stored, by (kind, status).
    guard_evaluations: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// The latest comparison of each compare guard of a running plan, by (lane, guard).
    comparisons: Mutex<BTreeMap<(i64, usize), crate::domain::compare::Comparison>>,
    rollouts_active: AtomicI64,
    /// Trigger fires by outcome (`acted`, `nothing`, `limited`).
    trigger_fires: Mutex<BTreeMap<&'static str, u64>>,
}

/// The method label of a request: one of the standard methods, or `other`
/// (a client can send any token as a method; each must not become a series).
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

impl Metrics {
    pub fn subscriber_connected(&self) {
        self.subscribers.fetch_add(1, Ordering::Relaxed);
    }

    pub fn subscriber_disconnected(&self) {
        self.subscribers.fetch_sub(1, Ordering::Relaxed);
    }

    /// An event handed to a subscriber's stream, `latency` after its release committed.
    pub fn pushed(&self, latency: Option<Duration>) {
        self.push_events.fetch_add(1, Ordering::Relaxed);
        if let Some(latency) = latency {
            self.push_latency.observe(latency);
        }
    }

    /// A request the fast path answered (src/server/fast.rs).
    pub fn fast_path_request(&self) {
        self.fast_path_requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn password_check_started(&self) {
        self.password_checks_running.fetch_add(1, Ordering::Relaxed);
    }

    pub fn password_check_ended(&self) {
        self.password_checks_running.fetch_sub(1, Ordering::Relaxed);
    }

    /// A sign-in refused because every verification slot and the queue were taken.
    pub fn password_check_refused(&self) {
        self.password_checks_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// A trigger URL was called: `acted` (it shrank something), `nothing` (nothing left to
    /// shrink) or `limited` (refused by its rate limit, 429).
    pub fn trigger_fire(&self, outcome: &'static str) {
        *self
            .trigger_fires
            .lock()
            .expect("metrics lock")
            .entry(outcome)
            .or_default() += 1;
    }

    /// A rollout plan moved: `to` is `started`, `advanced`, `paused`, `resumed`, `completed`
    /// or `aborted`.
    pub fn rollout_transition(&self, to: &'static str) {
        *self
            .rollout_transitions
            .lock()
            .expect("metrics lock")
            .entry(to)
            .or_default() += 1;
    }

    /// A notification delivery was attempted and is now `delivered`, `pending` (to be retried)
    /// or `failed` (given up).
    pub fn notification(&self, outcome: &'static str) {
        *self
            .notifications
            .lock()
            .expect("metrics lock")
            .entry(outcome)
            .or_default() += 1;
    }

    /// A guard of `kind` was evaluated as `status` (`passing`, `failing`, `no_data`).
    pub fn guard_evaluated(&self, kind: &str, status: &'static str) {
        *self
            .guard_evaluations
            .lock()
            .expect("metrics lock")
            .entry((kind.to_string(), status))
            .or_default() += 1;
    }

    /// A compare guard's latest comparison, exported until its plan stops running.
    pub fn compared(&self, lane: i64, guard: usize, c: &crate::domain::compare::Comparison) {
        self.comparisons
            .lock()
            .expect("metrics lock")
            .insert((lane, guard), c.clone());
    }

    /// Forgets the comparisons of plans that no longer run.
    pub fn keep_comparisons_of(&self, running: &[i64]) {
        self.comparisons
            .lock()
            .expect("metrics lock")
            .retain(|(lane, _), _| running.contains(lane));
    }

    /// Plans running or paused now.
    pub fn set_rollouts_active(&self, n: usize) {
        self.rollouts_active
            .store(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    pub fn release(&self, kind: &str) {
        *self
            .releases
            .lock()
            .expect("metrics lock")
            .entry(kind.to_string())
            .or_default() += 1;
    }

    pub fn request(&self, method: &str, route: &str, status: u16, duration: Duration) {
        /// `map[key]`, inserted (with an owned key) only the first time.
        fn slot<'m, V: Default>(map: &'m mut BTreeMap<String, V>, key: &str) -> &'m mut V {
            if !map.contains_key(key) {
                map.insert(key.to_string(), V::default());
            }
            map.get_mut(key).expect("inserted")
        }
        let histogram = {
            let mut requests = self.requests.lock().expect("metrics lock");
            let (counts, durations) = &mut *requests;
            *slot(slot(counts, method), route).entry(status).or_default() += 1;
            slot(slot(durations, method), route).clone()
        };
        histogram.observe(duration);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_delivery(&mut out);
        self.render_rollouts(&mut out);
        self.render_http(&mut out);
        out
    }

    /// Watch streams, pushes, sign-in checks and releases.
    fn render_delivery(&self, out: &mut String) {
        scalar(
            out,
            "graycast_subscribers",
            "gauge",
            "Watch streams open now.",
            self.subscribers.load(Ordering::Relaxed),
        );
        scalar(
            out,
            "graycast_push_events_total",
            "counter",
            "Events handed to subscribers' watch streams.",
            self.push_events.load(Ordering::Relaxed),
        );
        family(
            out,
            "graycast_push_latency_seconds",
            "histogram",
            "From a release event's commit to its event being handed to a subscriber's stream.",
        );
        self.push_latency
            .render(out, "graycast_push_latency_seconds", "");
        scalar(
            out,
            "graycast_password_checks_running",
            "gauge",
            "Password verifications running now.",
            self.password_checks_running.load(Ordering::Relaxed),
        );
        scalar(
            out,
            "graycast_password_checks_refused_total",
            "counter",
            "Sign-ins refused (429) because the password verifications and their queue were full.",
            self.password_checks_refused.load(Ordering::Relaxed),
        );
    }

    /// Rollout plans, their guards, and the release events they and people commit.
    fn render_rollouts(&self, out: &mut String) {
        scalar(
            out,
            "graycast_rollouts_active",
            "gauge",
            "Rollout plans running or paused now.",
            self.rollouts_active.load(Ordering::Relaxed),
        );
        family(
            out,
            "graycast_rollout_transitions_total",
            "counter",
            "Rollout plan transitions, by where they went.",
        );
        for (to, n) in self
            .rollout_transitions
            .lock()
            .expect("metrics lock")
            .iter()
        {
            let _ = writeln!(out, "graycast_rollout_transitions_total{{to=\"{to}\"}} {n}");
        }
        family(
            out,
            "graycast_notification_attempts_total",
            "counter",
            "Notification delivery attempts, by what the delivery is after them (delivered, pending: to be retried, failed: given up).",
        );
        for (outcome, n) in self.notifications.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "graycast_notification_attempts_total{{outcome=\"{outcome}\"}} {n}"
            );
        }
        family(
            out,
            "graycast_trigger_fires_total",
            "counter",
            "Trigger URL calls, by outcome (acted, nothing, limited).",
        );
        for (outcome, n) in self.trigger_fires.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "graycast_trigger_fires_total{{outcome=\"{outcome}\"}} {n}"
            );
        }
        family(
            out,
            "graycast_guard_evaluations_total",
            "counter",
            "Rollout guard evaluations, by kind and status.",
        );
        for ((kind, status), n) in self.guard_evaluations.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "graycast_guard_evaluations_total{{kind=\"{}\",status=\"{status}\"}} {n}",
                escape(kind)
            );
        }
        self.render_comparisons(out);
        family(
            out,
            "graycast_releases_total",
            "counter",
            "Release events committed, by kind.",
        );
        for (kind, n) in self.releases.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "graycast_releases_total{{kind=\"{}\"}} {n}",
                escape(kind)
            );
        }
    }

    /// The compare guards' latest numbers, one gauge per number, by lane and guard.
    fn render_comparisons(&self, out: &mut String) {
        let comparisons = self.comparisons.lock().expect("metrics lock");
        type Stat = fn(&crate::domain::compare::Comparison) -> Option<f64>;
        let stats: [(&str, &str, Stat); 7] = [
            (
                "lane_median",
                "The lane's median of a compare guard's metric.",
                |c| c.lane_median,
            ),
            (
                "baseline_median",
                "Stable's median of a compare guard's metric.",
                |c| c.baseline_median,
            ),
            (
                "ratio",
                "How many times worse the lane is than stable (compare guard).",
                |c| c.ratio,
            ),
            (
                "u",
                "The Mann-Whitney U of the lane (compare guard).",
                |c| c.u,
            ),
            (
                "p_value",
                "The one-sided p-value that the lane is worse (compare guard).",
                |c| c.p_value,
            ),
            (
                "lane_instances",
                "The lane's instances with a value (compare guard).",
                |c| Some(c.lane_n as f64),
            ),
            (
                "baseline_instances",
                "Stable's instances with a value (compare guard).",
                |c| Some(c.baseline_n as f64),
            ),
        ];
        for (name, help, stat) in stats {
            let metric = format!("graycast_compare_{name}");
            family(out, &metric, "gauge", help);
            for ((lane, guard), c) in comparisons.iter() {
                if let Some(x) = stat(c).filter(|x| !x.is_nan()) {
                    let _ = writeln!(
                        out,
                        "{metric}{{lane=\"{lane}\",guard=\"{guard}\"}} {}",
                        number(x)
                    );
                }
            }
        }
    }

    /// HTTP requests: counts by method, route and status, and durations.
    fn render_http(&self, out: &mut String) {
        family(
            out,
            "graycast_http_requests_total",
            "counter",
            "HTTP requests answered, by method, route template and status.",
        );
        let requests = self.requests.lock().expect("metrics lock");
        let (counts, durations) = &*requests;
        for (method, routes) in counts {
            for (route, statuses) in routes {
                for (status, n) in statuses {
                    let _ = writeln!(
                        out,
                        "graycast_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                        escape(method),
                        escape(route)
                    );
                }
            }
        }
        let durations: Vec<_> = durations
            .iter()
            .flat_map(|(method, routes)| {
                routes
                    .iter()
                    .map(move |(route, h)| ((method.clone(), route.clone()), h.clone()))
            })
            .collect();
        drop(requests);
        scalar(
            out,
            "graycast_http_fast_path_requests_total",
            "counter",
            "HTTP requests answered by the fast path for resolve and OFREP (also counted in graycast_http_requests_total).",
            self.fast_path_requests.load(Ordering::Relaxed),
        );
        family(
            out,
            "graycast_http_request_duration_seconds",
            "histogram",
            "Time to answer an HTTP request (until the response head, for streams).",
        );
        for ((method, route), histogram) in durations {
            let labels = format!(
                "method=\"{}\",route=\"{}\"",
                escape(&method),
                escape(&route)
            );
            histogram.render(out, "graycast_http_request_duration_seconds", &labels);
        }
    }
}

/// Label values escape `\`, `"` and newlines.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One unlabelled series with its `HELP` and `TYPE` lines.
/// A metric family's `# HELP` and `# TYPE` lines; its samples follow.
/// A sample value as the exposition format writes it (`+Inf` for an infinite ratio).
fn number(x: f64) -> String {
    if x == f64::INFINITY {
        "+Inf".to_string()
    } else {
        x.to_string()
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A family of one unlabelled sample.
fn scalar(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    family(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_families_with_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.subscriber_connected();
        metrics.subscriber_connected();
        metrics.subscriber_disconnected();
        metrics.pushed(Some(Duration::from_micros(300)));
        metrics.pushed(Some(Duration::from_millis(20)));
        metrics.release("stable");
        metrics.release("lane.update");
        metrics.release("stable");
        metrics.rollout_transition("advanced");
        metrics.rollout_transition("advanced");
        metrics.guard_evaluated("reports", "passing");
        metrics.set_rollouts_active(3);
        metrics.fast_path_request();
        metrics.request(
            "GET",
            "/api/v1/namespaces/{ns}",
            200,
            Duration::from_millis(3),
        );
        let text = metrics.render();
        assert!(text.contains("graycast_subscribers 1\n"), "{text}");
        assert!(text.contains("graycast_push_events_total 2\n"));
        assert!(text.contains("graycast_push_latency_seconds_bucket{le=\"0.0005\"} 1\n"));
        assert!(text.contains("graycast_push_latency_seconds_bucket{le=\"0.025\"} 2\n"));
        assert!(text.contains("graycast_push_latency_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("graycast_push_latency_seconds_count 2\n"));
        assert!(text.contains("graycast_releases_total{kind=\"stable\"} 2\n"));
        assert!(text.contains("graycast_releases_total{kind=\"lane.update\"} 1\n"));
        assert!(text.contains("graycast_rollouts_active 3\n"), "{text}");
        assert!(text.contains("graycast_http_fast_path_requests_total 1\n"));
        assert!(text.contains("graycast_rollout_transitions_total{to=\"advanced\"} 2\n"));
        assert!(text
            .contains("graycast_guard_evaluations_total{kind=\"reports\",status=\"passing\"} 1\n"));
        assert!(text.contains(
            "graycast_http_requests_total{method=\"GET\",route=\"/api/v1/namespaces/{ns}\",status=\"200\"} 1\n"
        ));
        assert!(text.contains(
            "graycast_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/namespaces/{ns}\",le=\"0.005\"} 1\n"
        ));
        assert!(text.contains(
            "graycast_http_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/namespaces/{ns}\"} 1\n"
        ));
    }

    #[test]
    fn methods_outside_the_standard_set_share_one_label() {
        use axum::http::Method;
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let made_up = Method::from_bytes(&[b'X'; 1000]).unwrap();
        assert_eq!(method_label(&made_up), "other");
        assert_eq!(method_label(&Method::from_bytes(b"get").unwrap()), "other");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
