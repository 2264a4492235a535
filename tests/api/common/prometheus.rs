//! A real Prometheus for the guard tests: the Debian package's `/usr/bin/prometheus`
//! (`scripts/bootstrap.sh test` installs it; `PROMETHEUS_PATH` overrides), started once per test
//! binary on a free loopback port with a 1 s scrape interval, scraping an exporter whose series
//! the tests set.
//!
//! Both outlive any one test (each `#[tokio::test]` has its own runtime), so each runs on a thread
//! of its own: the exporter on its own runtime, Prometheus as a child of a thread that waits for
//! it. The child gets SIGKILL when that thread ends, i.e. when the test binary exits
//! (`PR_SET_PDEATHSIG`), and is killed at once if it starts but is never ready. Tests keep apart
//! by the `test` label of their series.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::routing::get;
use axum::Router;
use tokio::sync::OnceCell;

/// The metric every exporter series has: `probe_value{test="…", …}`.
pub const METRIC: &str = "probe_value";

/// Started Prometheus, at `url` (`http://127.0.0.1:PORT`).
pub struct Prometheus {
    pub url: String,
    exporter: Exporter,
}

/// The series the exporter serves: labels (sorted) → value.
type Series = Arc<Mutex<BTreeMap<Vec<(String, String)>, f64>>>;

#[derive(Clone)]
struct Exporter {
    series: Series,
}

/// One exported series; `set` changes what the next scrape sees.
pub struct Gauge {
    labels: Vec<(String, String)>,
    series: Series,
}

impl Gauge {
    pub fn set(&self, value: f64) {
        self.series
            .lock()
            .unwrap()
            .insert(self.labels.clone(), value);
    }
}

static PROMETHEUS: OnceCell<Prometheus> = OnceCell::const_new();

/// The binary's one Prometheus, started by the first test that asks.
pub async fn prometheus() -> &'static Prometheus {
    PROMETHEUS.get_or_init(start).await
}

impl Prometheus {
    /// A series `probe_value{test, labels…}`, exported from now on with `value`.
    pub fn gauge(&self, test: &str, labels: &[(&str, &str)], value: f64) -> Gauge {
        let mut all: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all.push(("test".into(), test.into()));
        all.sort();
        let gauge = Gauge {
            labels: all,
            series: self.exporter.series.clone(),
        };
        gauge.set(value);
        gauge
    }
}

fn binary() -> PathBuf {
    std::env::var_os("PROMETHEUS_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus"))
}

async fn start() -> Prometheus {
    let binary = binary();
    assert!(
        binary.exists(),
        "{} is missing: run `scripts/bootstrap.sh test` (it installs the Debian package \
         prometheus) or set PROMETHEUS_PATH",
        binary.display()
    );
    let exporter = Exporter {
        series: Arc::default(),
    };
    let exporter_addr = exporter.clone().spawn();
    let root = data_root();
    // A free port can be taken between finding it and Prometheus binding it: try a few.
    let mut last_error = String::new();
    for attempt in 0..3 {
        let dir = root.join(format!("{}-{attempt}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: exporter\n    static_configs:\n      - targets: ['{exporter_addr}']\n"
            ),
        )
        .unwrap();
        let (pid, exited) = run_child(&binary, &dir, &config, port);
        let url = format!("http://127.0.0.1:{port}");
        match wait_ready(&url, &exited).await {
            Ok(()) => return Prometheus { url, exporter },
            Err(why) => {
                // Never leave a half-started one behind.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                let log = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                last_error = format!("{why}; its log ends: {:?}", tail);
            }
        }
    }
    panic!("Prometheus did not start: {last_error}");
}

/// Where the TSDB directories live: under the target dir, one per test process; the ones of
/// processes that are gone are removed here.
fn data_root() -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("prometheus");
    std::fs::create_dir_all(&root).unwrap();
    for entry in std::fs::read_dir(&root).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let pid = name.split('-').next().unwrap_or("");
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    root
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts Prometheus from a thread that then waits for it for as long as the process lives;
/// returns its pid and a flag that turns true when it exits.
fn run_child(
    binary: &Path,
    dir: &Path,
    config: &Path,
    port: u16,
) -> (i32, Arc<std::sync::atomic::AtomicBool>) {
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let mut command = Command::new(binary);
    command
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    // SIGKILL when the spawning thread ends; that thread lives as long as the test process.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let exited = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let flag = exited.clone();
    std::thread::Builder::new()
        .name("prometheus".into())
        .spawn(move || {
            let mut child: Child = command.spawn().expect("prometheus starts");
            tx.send(child.id() as i32).unwrap();
            let _ = child.wait();
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        })
        .unwrap();
    (rx.recv().expect("prometheus was spawned"), exited)
}

/// Polls until Prometheus answers and has scraped the exporter (`up == 1`), or has exited.
async fn wait_ready(url: &str, exited: &std::sync::atomic::AtomicBool) -> Result<(), String> {
    let client = reqwest::Client::new();
    let query = format!("{url}/api/v1/query?query=up%7Bjob%3D%22exporter%22%7D%3D%3D1");
    super::eventually("Prometheus to scrape the exporter", || async {
        if exited.load(std::sync::atomic::Ordering::SeqCst) {
            return Some(Err("it exited".to_string()));
        }
        let body: serde_json::Value = client.get(&query).send().await.ok()?.json().await.ok()?;
        let scraped = body["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty());
        scraped.then_some(Ok(()))
    })
    .await
}

impl Exporter {
    /// Serves `/metrics` from a thread with its own runtime; returns where.
    fn spawn(self) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::Builder::new()
            .name("exporter".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    let app = Router::new().route(
                        "/metrics",
                        get(move || {
                            let text = self.render();
                            async move { text }
                        }),
                    );
                    axum::serve(listener, app).await.unwrap();
                });
            })
            .unwrap();
        addr
    }

    fn render(&self) -> String {
        let series = self.series.lock().unwrap();
        let mut text = format!("# TYPE {METRIC} gauge\n");
        for (labels, value) in series.iter() {
            let labels: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect();
            text.push_str(&format!("{METRIC}{{{}}} {value}\n", labels.join(",")));
        }
        text
    }
}
