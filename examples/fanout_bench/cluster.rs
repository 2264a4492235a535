//! graycast's side: its server processes (one node on SQLite, or several sharing one
//! PostgreSQL) and the timed releases.

use super::*;

/// One graycast node: its process and where it listens.
pub struct Node {
    server: Guard,
    addr: SocketAddr,
}

/// The graycast nodes under test, sharing one database.
pub struct Cluster {
    name: String,
    nodes: Vec<Node>,
    /// An admin token, made with `graycast token create`.
    admin: String,
    /// The database's URL (SQLite) or name (PostgreSQL).
    pub database: String,
    /// Holds the SQLite database and the nodes' logs; removed when dropped.
    dir: tempfile::TempDir,
    /// A process outside the nodes that works for every update (PostgreSQL).
    others_include: Option<&'static str>,
}

impl Cluster {
    /// One node on a fresh SQLite database in a temporary directory.
    pub async fn sqlite(binary: &Path, name: &str) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let database = format!("sqlite://{}/graycast.db?mode=rwc", dir.path().display());
        let admin = create_token(binary, &database).await?;
        let (server, addr) =
            start_node(binary, &database, &dir.path().join("graycast.log")).await?;
        Ok(Self {
            name: name.into(),
            nodes: vec![Node { server, addr }],
            admin,
            database,
            dir,
            others_include: None,
        })
    }

    /// `count` nodes on a fresh database created on the PostgreSQL server that
    /// `server_url` (a URL of any database on it) points to. The first node
    /// migrates the database; the others start once it is ready.
    pub async fn postgres(
        binary: &Path,
        server_url: &str,
        count: usize,
        name: &str,
    ) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let database = format!("fanout_bench_{}", std::process::id());
        let url = database_url(server_url, &database);
        {
            use sqlx::Connection;
            let mut admin = sqlx::postgres::PgConnection::connect(server_url).await?;
            sqlx::raw_sql(&format!("CREATE DATABASE {database}"))
                .execute(&mut admin)
                .await
                .map_err(|e| format!("CREATE DATABASE {database} on {server_url}: {e}"))?;
        }
        let admin = create_token(binary, &url).await?;
        let http = http_client()?;
        let mut nodes = Vec::new();
        for i in 1..=count {
            let log = dir.path().join(format!("node-{i}.log"));
            let (server, addr) = start_node(binary, &url, &log).await?;
            wait_ready(&http, addr, &log).await?;
            nodes.push(Node { server, addr });
        }
        Ok(Self {
            name: name.into(),
            nodes,
            admin,
            database,
            dir,
            others_include: Some("PostgreSQL"),
        })
    }
}

/// `server_url` with its database replaced by `database` (its query kept).
fn database_url(server_url: &str, database: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (server_url, String::new()),
    };
    let base = base.rsplit_once('/').map_or(base, |(base, _)| base);
    format!("{base}/{database}{query}")
}

/// Drops the database [`Cluster::postgres`] created (its nodes stopped);
/// a failure is only reported.
pub async fn drop_database(server_url: &str, database: &str) {
    use sqlx::Connection;
    let dropped = async {
        let mut admin = sqlx::postgres::PgConnection::connect(server_url).await?;
        sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
            .execute(&mut admin)
            .await?;
        Ok::<_, Error>(())
    };
    if let Err(e) = dropped.await {
        eprintln!("fanout_bench: could not drop the database {database}: {e}");
    }
}

/// An admin token, straight in the database (`graycast token create`).
async fn create_token(binary: &Path, database_url: &str) -> Result<String> {
    let output = Command::new(binary)
        .args([
            "token",
            "create",
            "--name",
            "bench-admin",
            "--role",
            "admin",
        ])
        .args(["--database-url", database_url])
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
    Ok(String::from_utf8(output.stdout)?
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .ok_or("graycast token create printed no token")?
        .to_string())
}

/// Starts `graycast serve` on a free loopback port, its log in `log`, and
/// returns once it listens.
async fn start_node(binary: &Path, database_url: &str, log: &Path) -> Result<(Guard, SocketAddr)> {
    let log_file = std::fs::File::create(log)?;
    let mut child = Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--heartbeat-secs", "15"])
        .args(["--database-url", database_url])
        .args(["--admin-password", "bench-admin-password"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
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
        Err(format!("graycast exited before listening (see {})", log.display()).into())
    })
    .await
    .map_err(|_| "graycast did not start within 60 s")??;
    // Keep reading stdout so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((guard, addr))
}

/// Polls `GET /readyz` until the node answers 200 (at most 60 s).
async fn wait_ready(http: &reqwest::Client, addr: SocketAddr, log: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match http.get(format!("http://{addr}/readyz")).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            _ if Instant::now() > deadline => {
                return Err(format!(
                    "the node on {addr} was not ready within 60 s (see {})",
                    log.display()
                )
                .into())
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Subscribers are split evenly between the cluster's nodes, in blocks (so
/// each node gets every label); the setup goes through the first node, and
/// the timed and sustained updates through each node in turn.
pub async fn bench_graycast(args: &Args, cluster: Cluster) -> Result<Outcome> {
    let Cluster {
        name,
        nodes,
        admin,
        database,
        dir,
        others_include,
    } = cluster;
    println!("\n== graycast, {name} ({})", args.graycast.display());
    let mut pids = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let pid = node.server.pid()?;
        println!("  node {} pid {pid} on http://{}", i + 1, node.addr);
        pids.push(pid);
    }
    println!("  database {database}, logs in {}", dir.path().display());
    let k = nodes.len();
    let http = http_client()?;
    let api = format!("http://{}/api/v1", nodes[0].addr);
    let configs: Vec<String> = nodes
        .iter()
        .map(|node| {
            format!(
                "http://{}/api/v1/namespaces/{NAMESPACE}/envs/{ENV}/configs/{KEY}",
                node.addr
            )
        })
        .collect();
    let config = configs[0].clone();
    // The next update's turn: it goes through `configs[turn % k]`.
    let mut turn = 0usize;
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
        rss_before_kib: total_rss_kib(&pids)?,
        others_include,
        name,
        ..Outcome::default()
    };
    let n = args.subscribers;
    let mut index: HashMap<String, usize> = HashMap::new();
    let requests: Vec<(SocketAddr, Vec<u8>)> = (0..n)
        .map(|sub| {
            let (client_id, region, tier) = labels(sub);
            index.insert(client_id.clone(), sub);
            let addr = nodes[sub * k / n].addr;
            let request = format!(
                "GET /api/v1/watch?namespace={NAMESPACE}&env={ENV}&keys={KEY}&client_id={client_id}\
                 &labels=region%3D{region}%2Ctier%3D{tier} HTTP/1.1\r\nHost: {addr}\r\n\
                 Authorization: Bearer {subscriber}\r\nAccept: text/event-stream\r\n\r\n"
            );
            (addr, request.into_bytes())
        })
        .collect();
    let (readers, mut rx) = attach_and_measure(
        args,
        &mut outcome,
        &pids,
        Protocol::Sse,
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
    let timed = CpuMark::take(&pids)?;
    for i in 0..args.releases {
        stable = if stable == 1 { 2 } else { 1 };
        let expected: Expectation = (0..n).map(|s| (s, stable)).collect();
        pause(args, &mut rx, &mut outcome, &mut last).await;
        let before = outcome.latencies.len();
        let via = &configs[turn % k];
        turn += 1;
        let sent = Instant::now();
        send_json(post(format!("{via}/release"), json!({"version": stable}))).await?;
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
    let via = &configs[turn % k];
    turn += 1;
    let preview = send_json(post(format!("{via}/lanes/preview"), lane_body.clone())).await?;
    let expected = change(&mut holds, &matched(&preview));
    pause(args, &mut rx, &mut outcome, &mut last).await;
    let before = outcome.latencies.len();
    let sent = Instant::now();
    let lane = send_json(post(format!("{via}/lanes"), lane_body)).await?;
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
        let via = &configs[turn % k];
        turn += 1;
        let preview =
            send_json(post(format!("{via}/lanes/{lane_id}/preview"), body.clone())).await?;
        let expected = change(&mut holds, &matched(&preview));
        pause(args, &mut rx, &mut outcome, &mut last).await;
        let before = outcome.latencies.len();
        let sent = Instant::now();
        send_json(
            http.patch(format!("{via}/lanes/{lane_id}"))
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
    let via = &configs[turn % k];
    turn += 1;
    send_json(post(format!("{via}/lanes/{lane_id}/abort"), json!({}))).await?;
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
    let sustained = CpuMark::take(&pids)?;
    let started = Instant::now();
    let mut count = 0;
    while started.elapsed().as_secs_f64() < args.rate_secs {
        stable = if stable == 1 { 2 } else { 1 };
        let via = &configs[turn % k];
        turn += 1;
        send_json(post(format!("{via}/release"), json!({"version": stable}))).await?;
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
    for node in nodes {
        node.server.stop().await;
    }
    drop(readers);
    outcome.latencies.sort();
    Ok(outcome)
}
