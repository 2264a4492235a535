//! etcd 3.4: its server process and the timed puts.

use super::*;

pub fn base64(bytes: &[u8]) -> String {
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

pub async fn start_etcd(binary: &Path, dir: &Path) -> Result<(Guard, SocketAddr)> {
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

pub async fn etcd_version(binary: &Path) -> String {
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

/// The etcd server under test and its one watched key.
struct Etcd {
    http: reqwest::Client,
    addr: SocketAddr,
    /// The key, base64-encoded as the JSON gateway takes it.
    key: String,
}

impl Etcd {
    fn put(&self, version: i64) -> reqwest::RequestBuilder {
        self.http
            .post(format!("http://{}/v3/kv/put", self.addr))
            .json(&json!({"key": self.key, "value": base64(content(version).as_bytes())}))
    }

    /// Puts the content of `version`; returns the revision it made.
    async fn put_revision(&self, version: i64) -> Result<i64> {
        revision(&send_json(self.put(version)).await?)
    }

    /// The raw request of one watch on the key.
    fn watch_request(&self) -> Vec<u8> {
        let body = json!({"create_request": {"key": self.key}}).to_string();
        format!(
            "POST /v3/watch HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .into_bytes()
    }
}

/// The revision in a put's answer.
fn revision(answer: &Value) -> Result<i64> {
    answer["header"]["revision"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .ok_or_else(|| format!("put answered without a revision: {answer}").into())
}

pub async fn bench_etcd(args: &Args, updates: usize) -> Result<Outcome> {
    let version = etcd_version(&args.etcd).await;
    println!("\n== etcd {version} ({})", args.etcd.display());
    let dir = tempfile::tempdir()?;
    let (server, addr) = start_etcd(&args.etcd, dir.path()).await?;
    let pid = server.pid()?;
    println!(
        "  etcd pid {pid} on http://{addr}, data in {}",
        dir.path().display()
    );
    let etcd = Etcd {
        http: http_client()?,
        addr,
        key: base64(format!("/{NAMESPACE}/{ENV}/{KEY}").as_bytes()),
    };
    let first = etcd.put_revision(1).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut outcome = Outcome {
        name: format!("etcd {version}"),
        rss_before_kib: rss_kib(pid)?,
        ..Outcome::default()
    };
    let (readers, rx) = attach_and_measure(
        args,
        &mut outcome,
        &[pid],
        Protocol::EtcdJson,
        vec![(addr, etcd.watch_request()); args.subscribers],
        "watchers",
    )
    .await?;
    let mut deliveries = Deliveries::new(args, rx, outcome, first);
    let value = timed_puts(&etcd, pid, updates, &mut deliveries).await?;
    sustained_puts(args, &etcd, pid, value, &mut deliveries).await?;
    server.stop().await;
    drop(readers);
    Ok(deliveries.into_outcome())
}

/// `updates` timed puts alternating two values (the first put had value 1),
/// each expected at every watcher with the revision it made; returns the
/// value put last.
async fn timed_puts(
    etcd: &Etcd,
    pid: u32,
    updates: usize,
    deliveries: &mut Deliveries<'_>,
) -> Result<i64> {
    let mut value = 1;
    let timed = CpuMark::take(&[pid])?;
    for i in 0..updates {
        value = if value == 1 { 2 } else { 1 };
        let sent = deliveries.begin(format!("put {}", i + 1)).await;
        let rev = etcd.put_revision(value).await?;
        let expected = deliveries.everyone(rev);
        deliveries.collect(sent, expected).await;
    }
    deliveries.end_timed(&timed)?;
    Ok(value)
}

/// Back-to-back puts, alternating from `value` (the value put last).
async fn sustained_puts(
    args: &Args,
    etcd: &Etcd,
    pid: u32,
    mut value: i64,
    deliveries: &mut Deliveries<'_>,
) -> Result<()> {
    let mut sustained = Sustained::start(&[pid])?;
    let mut final_rev = 0;
    while sustained.running(args) {
        value = if value == 1 { 2 } else { 1 };
        final_rev = etcd.put_revision(value).await?;
        sustained.sent();
    }
    deliveries
        .end_sustained(sustained, final_rev, Duration::from_secs(120), "put")
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
