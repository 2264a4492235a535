//! Audit search benchmark (issue 4, point 7): fills a fresh SQLite database,
//! built by the real migrations, with realistic audit entries, then times the
//! first page of several searches through the same code the API uses.
//!
//!     cargo run --release --features ssr --example audit_bench -- --entries 1000000
//!
//! Options: `--entries N` (default 1,000,000), `--runs N` per query (default
//! 25), `--db PATH` to keep the database (reused when it already holds
//! entries), `--database-url URL` for any database graycast runs on (e.g. a
//! PostgreSQL one: `postgres://…`; reused likewise), `--explain` to print each
//! query plan (SQLite only).

use graycast::model::AuditQuery;
use graycast::server::db;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

const ENVS: [&str; 3] = ["dev", "staging", "prod"];
const ACTIONS: [(&str, u32); 9] = [
    ("version.create", 40),
    ("release.stable", 20),
    ("auth.login", 18),
    ("config.create", 8),
    ("release.rollback", 3),
    ("lane.update", 5),
    ("auth.login_failed", 3),
    ("namespace.create", 2),
    ("token.create", 1),
];
const SERVICES: [&str; 20] = [
    "order",
    "payment",
    "checkout",
    "inventory",
    "search",
    "catalog",
    "pricing",
    "cart",
    "shipping",
    "billing",
    "identity",
    "notification",
    "gateway",
    "recommendation",
    "review",
    "loyalty",
    "fraud",
    "ledger",
    "report",
    "media",
];
const KEYS: [&str; 8] = [
    "app.yaml",
    "app.json",
    "db.toml",
    "feature-flags.json",
    "logging.properties",
    "limits.yaml",
    "routes.json",
    "README.txt",
];
const VERBS: [&str; 12] = [
    "raise", "lower", "enable", "disable", "tune", "fix", "revert", "bump", "rotate", "add",
    "remove", "hotfix",
];
const NOUNS: [&str; 24] = [
    "timeout",
    "pool size",
    "retry budget",
    "cache ttl",
    "rate limit",
    "feature flag",
    "log level",
    "connection string",
    "batch size",
    "circuit breaker",
    "queue depth",
    "worker count",
    "endpoint",
    "certificate",
    "replica count",
    "heap size",
    "latency budget",
    "canary weight",
    "shard map",
    "sampling rate",
    "keepalive",
    "backoff",
    "quota",
    "threshold",
];
const REASONS: [&str; 16] = [
    "for black friday",
    "after incident review",
    "to cut p99 latency",
    "per security audit",
    "for the new region",
    "to stop alert noise",
    "while the vendor is degraded",
    "for load test",
    "as agreed with SRE",
    "to match staging",
    "before the migration",
    "for the holiday freeze",
    "after customer complaint",
    "to save cost",
    "for the launch",
    "to unblock deploys",
];

/// The rare word planted in a handful of messages.
const RARE_WORD: &str = "zanzibar";
const RARE_EVERY: u64 = 50_000;

struct Args {
    entries: u64,
    runs: usize,
    db: Option<String>,
    database_url: Option<String>,
    explain: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        entries: 1_000_000,
        runs: 25,
        db: None,
        database_url: None,
        explain: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--entries" => args.entries = value().replace('_', "").parse().expect("--entries N"),
            "--runs" => args.runs = value().parse().expect("--runs N"),
            "--db" => args.db = Some(value()),
            "--database-url" => args.database_url = Some(value()),
            "--explain" => args.explain = true,
            other => panic!(
                "unknown option {other}; see the comment at the top of examples/audit_bench.rs"
            ),
        }
    }
    args
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.gen_range(0..items.len())]
}

/// Skewed toward the first items, as real traffic is (a few busy services and people).
fn pick_skewed<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    let r: f64 = rng.gen();
    items[((r * r) * items.len() as f64) as usize]
}

fn action(rng: &mut StdRng) -> &'static str {
    let total: u32 = ACTIONS.iter().map(|(_, w)| w).sum();
    let mut n = rng.gen_range(0..total);
    for (name, weight) in ACTIONS {
        if n < weight {
            return name;
        }
        n -= weight;
    }
    unreachable!()
}

struct Entry {
    at: String,
    actor: String,
    action: &'static str,
    namespace: Option<String>,
    env: Option<String>,
    key: Option<String>,
    details: String,
}

fn entry(rng: &mut StdRng, i: u64, total: u64, actors: &[String]) -> Entry {
    // A year of history, oldest first, like the append-only trail.
    let start = 1_735_689_600_i64; // 2025-01-01T00:00:00Z
    let seconds = start + (i as f64 / total.max(1) as f64 * 365.0 * 86_400.0) as i64;
    let t = time::OffsetDateTime::from_unix_timestamp(seconds).expect("valid time");
    let at = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let actor_refs: Vec<&str> = actors.iter().map(String::as_str).collect();
    let actor = pick_skewed(rng, &actor_refs).to_string();
    let action = action(rng);
    let namespace = format!("{}-service", pick_skewed(rng, &SERVICES));
    let env = pick(rng, &ENVS).to_string();
    let key = pick(rng, &KEYS).to_string();
    let mut message = format!(
        "{} {} {} (OPS-{})",
        pick(rng, &VERBS),
        pick(rng, &NOUNS),
        pick(rng, &REASONS),
        rng.gen_range(1000..99_999)
    );
    if i % RARE_EVERY == RARE_EVERY / 2 {
        message.push_str(&format!(" {RARE_WORD} rollout"));
    }
    let version = rng.gen_range(1..60);
    let (namespace, env, key, details) = match action {
        "auth.login" | "auth.login_failed" => (None, None, None, serde_json::json!({})),
        "token.create" => (
            None,
            None,
            None,
            serde_json::json!({ "name": format!("deploy-{}", rng.gen_range(1..500)), "role": "releaser" }),
        ),
        "namespace.create" => (
            Some(namespace.clone()),
            None,
            None,
            serde_json::json!({ "name": namespace, "description": message }),
        ),
        "config.create" => (
            Some(namespace),
            Some(env),
            Some(key),
            serde_json::json!({ "format": "yaml", "version": 1, "message": message, "checksum": format!("sha256:{:064x}", rng.gen::<u128>()) }),
        ),
        "version.create" => (
            Some(namespace),
            Some(env),
            Some(key),
            serde_json::json!({
                "version": version + 1, "base_version": version, "message": message,
                "checksum": format!("sha256:{:064x}", rng.gen::<u128>()),
                "added": rng.gen_range(0..40), "removed": rng.gen_range(0..40),
            }),
        ),
        "lane.update" => (
            Some(namespace),
            Some(env),
            Some(key),
            serde_json::json!({ "lane": rng.gen_range(1..9999), "percentage": rng.gen_range(1..100), "message": message }),
        ),
        _ => (
            Some(namespace),
            Some(env),
            Some(key),
            serde_json::json!({ "version": version, "previous_version": version + 1, "message": message, "release_event": i }),
        ),
    };
    Entry {
        at,
        actor,
        action,
        namespace,
        env,
        key,
        details: details.to_string(),
    }
}

async fn generate(pool: &db::Pool, total: u64) {
    let mut rng = StdRng::seed_from_u64(42);
    let mut actors: Vec<String> = (0..60).map(|i| format!("user{i:02}")).collect();
    actors.extend((0..20).map(|i| format!("token:deploy-{i:02}")));
    const ROWS_PER_STATEMENT: u64 = 500;
    const ROWS_PER_TRANSACTION: u64 = 20_000;
    let started = Instant::now();
    let mut i = 0;
    while i < total {
        let mut tx = pool.begin().await.expect("begin");
        let tx_end = (i + ROWS_PER_TRANSACTION).min(total);
        while i < tx_end {
            let n = ROWS_PER_STATEMENT.min(tx_end - i);
            let entries: Vec<Entry> = (i..i + n)
                .map(|j| entry(&mut rng, j, total, &actors))
                .collect();
            let mut sql = db::Sql::new(
                "INSERT INTO audit (at, actor, action, namespace, env, key, details) VALUES ",
            );
            for (k, e) in entries.into_iter().enumerate() {
                sql.push(if k == 0 { "(" } else { ", (" });
                sql.bind(e.at)
                    .push(", ")
                    .bind(e.actor)
                    .push(", ")
                    .bind(e.action);
                sql.push(", ")
                    .bind(e.namespace)
                    .push(", ")
                    .bind(e.env)
                    .push(", ");
                sql.bind(e.key).push(", ").bind(e.details).push(")");
            }
            sql.execute(&mut *tx).await.expect("insert");
            i += n;
        }
        tx.commit().await.expect("commit");
        eprint!("\r{i} / {total} entries ({:.0?})", started.elapsed());
    }
    eprintln!();
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let dir = tempfile::tempdir().expect("temp dir");
    let (pool, count) = open(&args, dir.path()).await;
    let cases: Vec<(&str, AuditQuery)> = text_cases(count)
        .into_iter()
        .chain(filter_cases())
        .collect();
    time_searches(&pool, &cases, args.runs).await;
    if args.explain && db::Engine::of(&pool) == db::Engine::Sqlite {
        print_plan(&pool).await;
    }
    pool.close().await;
}

/// Opens the database (`--database-url`, `--db`, or one in `dir`), fills it
/// up to `--entries` and says how many it holds; returns that count.
async fn open(args: &Args, dir: &std::path::Path) -> (db::Pool, i64) {
    let path = args
        .db
        .clone()
        .unwrap_or_else(|| format!("{}/audit-bench.db", dir.display()));
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{path}"));
    let pool = db::connect(&url).await.expect("database opens");
    let existing = count_entries(&pool).await;
    if existing < args.entries as i64 {
        generate(&pool, args.entries - existing as u64).await;
    }
    let count = count_entries(&pool).await;
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "database: {url} ({count} audit entries, {:.0} MiB on disk for SQLite)",
        bytes as f64 / 1048576.0
    );
    (pool, count)
}

async fn count_entries(pool: &db::Pool) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit")
        .fetch_one(pool)
        .await
        .expect("count")
}

/// A search for `text`, with no filter.
fn matching(text: &str) -> AuditQuery {
    AuditQuery {
        q: Some(text.into()),
        ..AuditQuery::default()
    }
}

/// The searches with a text (`q`), alone and with each filter; `count`: the
/// entries in the database (page 2 starts in the middle).
fn text_cases(count: i64) -> Vec<(&'static str, AuditQuery)> {
    vec![
        ("q=latency (common word)", matching("latency")),
        ("q=timeout (common word)", matching("timeout")),
        ("q=zanzibar (rare word)", matching(RARE_WORD)),
        (
            "q=hotfix checkout lat (3 words, prefix)",
            matching("hotfix checkout lat"),
        ),
        ("q=OPS-4242 (ticket, rare)", matching("OPS-4242")),
        (
            "q=latency + env=prod",
            AuditQuery {
                env: Some("prod".into()),
                ..matching("latency")
            },
        ),
        (
            "q=latency + actor=user07",
            AuditQuery {
                actor: Some("user07".into()),
                ..matching("latency")
            },
        ),
        (
            "q=rollback + action=release.rollback",
            AuditQuery {
                action: Some("release.rollback".into()),
                ..matching("rollback")
            },
        ),
        (
            "q=freeze + namespace=fraud-service",
            AuditQuery {
                namespace: Some("fraud-service".into()),
                ..matching("freeze")
            },
        ),
        (
            "q=latency + since 2025-12-01",
            AuditQuery {
                since: Some("2025-12-01".into()),
                ..matching("latency")
            },
        ),
        (
            "q=latency, page 2 (before_id)",
            AuditQuery {
                before_id: Some(count / 2),
                ..matching("latency")
            },
        ),
        (
            "q=latency + actor=nobody (no match at all)",
            AuditQuery {
                actor: Some("nobody".into()),
                ..matching("latency")
            },
        ),
        (
            "q=latency + until 2025-02-01 (oldest month)",
            AuditQuery {
                until: Some("2025-02-01".into()),
                ..matching("latency")
            },
        ),
    ]
}

/// The searches with filters only.
fn filter_cases() -> Vec<(&'static str, AuditQuery)> {
    vec![
        ("no q, no filter", AuditQuery::default()),
        (
            "no q, actor=user42",
            AuditQuery {
                actor: Some("user42".into()),
                ..AuditQuery::default()
            },
        ),
        (
            "no q, namespace=media-service + env=dev",
            AuditQuery {
                namespace: Some("media-service".into()),
                env: Some("dev".into()),
                ..AuditQuery::default()
            },
        ),
        (
            "no q, action=release.",
            AuditQuery {
                action: Some("release.".into()),
                ..AuditQuery::default()
            },
        ),
        (
            "no q, env=dev + action=auth.login (no match)",
            AuditQuery {
                env: Some("dev".into()),
                action: Some("auth.login".into()),
                ..AuditQuery::default()
            },
        ),
        (
            "no q, until 2025-02-01",
            AuditQuery {
                until: Some("2025-02-01".into()),
                ..AuditQuery::default()
            },
        ),
    ]
}

/// Times the first page of each case, `runs` times, and prints the table.
async fn time_searches(pool: &db::Pool, cases: &[(&str, AuditQuery)], runs: usize) {
    println!(
        "{:<44} {:>8} {:>9} {:>9}",
        "first page (50 entries) of", "found", "p50 ms", "max ms"
    );
    let (mut worst_text, mut worst) = (Duration::ZERO, Duration::ZERO);
    for (name, query) in cases {
        let (found, p50, max) = time_search(pool, query, runs).await;
        if query.q.is_some() {
            worst_text = worst_text.max(max);
        }
        worst = worst.max(max);
        println!("{name:<44} {found:>8} {:>9.2} {:>9.2}", ms(p50), ms(max));
    }
    println!(
        "slowest first page: {:.2} ms with q (target: under 100 ms), {:.2} ms over all queries",
        ms(worst_text),
        ms(worst)
    );
}

/// The first page of `query`, `runs` times: the entries it holds, and the
/// median and slowest time.
async fn time_search(
    pool: &db::Pool,
    query: &AuditQuery,
    runs: usize,
) -> (usize, Duration, Duration) {
    let mut times = Vec::with_capacity(runs);
    let mut found = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let page = db::audit::search(pool, query, None, None)
            .await
            .expect("search");
        times.push(t.elapsed());
        found = page.entries.len();
    }
    times.sort();
    (found, times[times.len() / 2], times[times.len() - 1])
}

/// The query plan of a filtered full-text search (SQLite).
async fn print_plan(pool: &db::Pool) {
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
        "EXPLAIN QUERY PLAN SELECT a.id FROM audit_search s JOIN audit a ON a.id = s.rowid
             WHERE audit_search MATCH '\"latency\"*' AND a.env = 'prod' ORDER BY s.rowid DESC LIMIT 51",
    )
    .fetch_all(pool)
    .await
    .expect("plan");
    println!("plan of a filtered full-text search:");
    for (_, _, _, detail) in plan {
        println!("  {detail}");
    }
}
