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
        &[pid],
        Protocol::EtcdJson,
        vec![(addr, request); n],
        "watchers",
    )
    .await?;

    let mut last = vec![first; n];
    let timeout = Duration::from_secs(20);
    let grace = Duration::from_millis(200);
    let mut per_phase = Vec::new();
    let mut value = 1;
    let timed = CpuMark::take(&[pid])?;
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

    let sustained = CpuMark::take(&[pid])?;
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
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
