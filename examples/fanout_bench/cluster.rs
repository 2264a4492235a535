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
    let pids = cluster.announce(args)?;
    let Cluster {
        name,
        nodes,
        admin,
        dir: _dir,
        others_include,
        ..
    } = cluster;
    let admin = Admin::new(&nodes, admin)?;
    let subscriber = admin.set_up().await?;

    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut outcome = Outcome {
        rss_before_kib: total_rss_kib(&pids)?,
        others_include,
        name,
        ..Outcome::default()
    };
    let Subscribers { requests, index } = subscribers(&nodes, args.subscribers, &subscriber);
    let (readers, rx) = attach_and_measure(
        args,
        &mut outcome,
        &pids,
        Protocol::Sse,
        requests,
        "subscribers",
    )
    .await?;

    let mut run = Run {
        args,
        admin,
        // Every subscriber got version 1.
        holds: Holds {
            holds: vec![1; args.subscribers],
            stable: 1,
            index,
        },
        deliveries: Deliveries::new(args, rx, outcome, 1),
    };
    let timed = CpuMark::take(&pids)?;
    run.timed_releases().await?;
    run.timed_lane().await?;
    run.deliveries.end_timed(&timed)?;
    run.sustained_releases(&pids).await?;
    for node in nodes {
        node.server.stop().await;
    }
    drop(readers);
    Ok(run.deliveries.into_outcome())
}

impl Cluster {
    /// Prints what runs where; returns the nodes' process ids.
    fn announce(&self, args: &Args) -> Result<Vec<u32>> {
        println!("\n== graycast, {} ({})", self.name, args.graycast.display());
        let mut pids = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let pid = node.server.pid()?;
            println!("  node {} pid {pid} on http://{}", i + 1, node.addr);
            pids.push(pid);
        }
        println!(
            "  database {}, logs in {}",
            self.database,
            self.dir.path().display()
        );
        Ok(pids)
    }
}

/// The subscribers' raw watch requests, each to its node, and which
/// subscriber each client id is.
struct Subscribers {
    requests: Vec<(SocketAddr, Vec<u8>)>,
    index: HashMap<String, usize>,
}

/// `n` subscribers, `subscriber` their token, split between `nodes`.
fn subscribers(nodes: &[Node], n: usize, subscriber: &str) -> Subscribers {
    let k = nodes.len();
    let mut index: HashMap<String, usize> = HashMap::new();
    let requests = (0..n)
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
    Subscribers { requests, index }
}

/// The admin's requests: the setup through the first node, the updates
/// through each node in turn.
struct Admin {
    http: reqwest::Client,
    token: String,
    /// The first node's API.
    api: String,
    /// The config's URL on each node.
    configs: Vec<String>,
    /// The next update's turn: it goes through `configs[turn % configs.len()]`.
    turn: usize,
}

impl Admin {
    fn new(nodes: &[Node], token: String) -> Result<Self> {
        let configs = nodes
            .iter()
            .map(|node| {
                format!(
                    "http://{}/api/v1/namespaces/{NAMESPACE}/envs/{ENV}/configs/{KEY}",
                    node.addr
                )
            })
            .collect();
        Ok(Self {
            http: http_client()?,
            token,
            api: format!("http://{}/api/v1", nodes[0].addr),
            configs,
            turn: 0,
        })
    }

    fn post(&self, url: String, body: Value) -> reqwest::RequestBuilder {
        self.http.post(url).bearer_auth(&self.token).json(&body)
    }

    fn patch(&self, url: String, body: Value) -> reqwest::RequestBuilder {
        self.http.patch(url).bearer_auth(&self.token).json(&body)
    }

    /// The config's URL on the node whose turn it is; the turn passes on.
    fn via(&mut self) -> String {
        let via = self.configs[self.turn % self.configs.len()].clone();
        self.turn += 1;
        via
    }

    /// Makes the namespace and the config (versions 1 to [`LANE_VERSION`],
    /// version 1 released) through the first node; returns a subscriber token.
    async fn set_up(&self) -> Result<String> {
        let (api, config) = (&self.api, &self.configs[0]);
        send_json(self.post(format!("{api}/namespaces"), json!({"name": NAMESPACE}))).await?;
        send_json(self.post(
            format!("{api}/namespaces/{NAMESPACE}/envs/{ENV}/configs"),
            json!({"key": KEY, "format": "json", "content": content(1)}),
        ))
        .await?;
        for version in 2..=LANE_VERSION {
            send_json(self.post(
                format!("{config}/versions"),
                json!({"content": content(version), "base_version": version - 1}),
            ))
            .await?;
        }
        send_json(self.post(format!("{config}/release"), json!({"version": 1}))).await?;
        let subscriber = send_json(self.post(
            format!("{api}/tokens"),
            json!({"name": "bench-subscriber", "role": "subscriber"}),
        ))
        .await?;
        Ok(subscriber["token"]
            .as_str()
            .ok_or("POST /tokens gave no token")?
            .to_string())
    }

    /// Releases `version` as the stable one, through the next node.
    async fn release(&mut self, version: i64) -> Result<()> {
        let via = self.via();
        send_json(self.post(format!("{via}/release"), json!({"version": version}))).await?;
        Ok(())
    }
}

/// Which version each subscriber holds, and which subscriber each client id is.
struct Holds {
    holds: Vec<i64>,
    /// The stable version: the releases alternate versions 1 and 2.
    stable: i64,
    index: HashMap<String, usize>,
}

impl Holds {
    /// The other stable version, now the stable one.
    fn next_stable(&mut self) -> i64 {
        self.stable = if self.stable == 1 { 2 } else { 1 };
        self.stable
    }

    /// The connected subscribers a lane preview says it matches.
    fn matched(&self, preview: &Value) -> Vec<usize> {
        preview["matched"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().and_then(|c| self.index.get(c).copied()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The lane now takes in `inside` (and nobody else): every subscriber
    /// whose version changes should get its new one.
    fn change(&mut self, inside: &[usize]) -> Expectation {
        let mut want = vec![self.stable; self.holds.len()];
        for &s in inside {
            want[s] = LANE_VERSION;
        }
        let expected = (0..want.len())
            .filter(|&s| want[s] != self.holds[s])
            .map(|s| (s, want[s]))
            .collect();
        self.holds = want;
        expected
    }
}

/// One run of the updates on graycast.
struct Run<'a> {
    args: &'a Args,
    admin: Admin,
    holds: Holds,
    deliveries: Deliveries<'a>,
}

impl Run<'_> {
    /// The timed stable releases, alternating versions 1 and 2, each
    /// expected at every subscriber.
    async fn timed_releases(&mut self) -> Result<()> {
        for i in 0..self.args.releases {
            let stable = self.holds.next_stable();
            let expected = self.deliveries.everyone(stable);
            let sent = self
                .deliveries
                .begin(format!("release {} (v{stable})", i + 1))
                .await;
            self.admin.release(stable).await?;
            self.deliveries.collect(sent, expected).await;
            self.holds.holds.iter_mut().for_each(|h| *h = stable);
        }
        Ok(())
    }

    /// The lane: 10 % → 50 % → 100 % of tier=web, then abort. The preview
    /// routes say exactly which connected subscribers it matches.
    async fn timed_lane(&mut self) -> Result<()> {
        let lane_body =
            json!({"version": LANE_VERSION, "selector": LANE_SELECTOR, "percentage": 10.0});
        let via = self.admin.via();
        let expected = self
            .preview(format!("{via}/lanes/preview"), lane_body.clone())
            .await?;
        let sent = self.deliveries.begin("lane tier=web 10 %".into()).await;
        let lane = send_json(self.admin.post(format!("{via}/lanes"), lane_body)).await?;
        self.deliveries.collect(sent, expected).await;
        let lane_id = lane["id"].as_i64().ok_or("POST /lanes gave no id")?;
        for percentage in [50.0, 100.0] {
            let body = json!({"percentage": percentage});
            let via = self.admin.via();
            let expected = self
                .preview(format!("{via}/lanes/{lane_id}/preview"), body.clone())
                .await?;
            let sent = self
                .deliveries
                .begin(format!("lane → {percentage} %"))
                .await;
            send_json(self.admin.patch(format!("{via}/lanes/{lane_id}"), body)).await?;
            self.deliveries.collect(sent, expected).await;
        }
        let expected = self.holds.change(&[]);
        let sent = self.deliveries.begin("lane abort".into()).await;
        let via = self.admin.via();
        send_json(
            self.admin
                .post(format!("{via}/lanes/{lane_id}/abort"), json!({})),
        )
        .await?;
        self.deliveries.collect(sent, expected).await;
        Ok(())
    }

    /// Previews a lane change (`body` at `url`): who should get which version
    /// once it is made.
    async fn preview(&mut self, url: String, body: Value) -> Result<Expectation> {
        let preview = send_json(self.admin.post(url, body)).await?;
        let inside = self.holds.matched(&preview);
        Ok(self.holds.change(&inside))
    }

    /// Sustained: back-to-back releases, each waiting for its response.
    async fn sustained_releases(&mut self, pids: &[u32]) -> Result<()> {
        let mut sustained = Sustained::start(pids)?;
        while sustained.running(self.args) {
            let stable = self.holds.next_stable();
            self.admin.release(stable).await?;
            sustained.sent();
        }
        self.deliveries
            .end_sustained(
                sustained,
                self.holds.stable,
                Duration::from_secs(60),
                "release",
            )
            .await
    }
}
