//! `graycast agent`: keeps a directory in sync with what the server serves this instance.
//!
//! Each config is written to `DIR/<key>` (exactly its content bytes) atomically: a temp file in
//! `DIR`, fsync, rename, fsync of `DIR`. After each change the reload command (`--exec`) runs via
//! `sh -c` with `GRAYCAST_KEY`, `GRAYCAST_VERSION` and `GRAYCAST_FILE`; if it fails, the previous
//! file is put back and the server gets a `failed` report, else an `applied` one. With `--check`,
//! a health check runs after a successful reload; if it fails, the previous file is put back,
//! `--exec` runs again to reload it, and the report is `failed` with the check's last stderr line:
//! `applied` then means "reloaded and healthy".
//!
//! `DIR/.graycast/state.json` remembers the last event id and, per key, the version of the last
//! good file, so a restarted agent keeps serving those files while the server is unreachable and
//! then resumes the stream with `Last-Event-ID` (only what changed since is sent).
//!
//! `--server a,b` names the nodes of one cluster (docs/nodes.md#failover-of-clients): the stream,
//! the reports and `--once` use the current one and move to the next when it fails (see
//! [`super::Client`]); the files stay as they are meanwhile.

use super::{Backoff, Client, ClientError, Update, WatchOptions, WatchState, Watcher};
use graycast_domain::key::{STATE_DIR, TEMP_SUFFIX};
use graycast_domain::lane::parse_labels;
use graycast_domain::model::{Report, ReportStatus, Resolved};
use graycast_domain::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The command line of `graycast agent`.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// The server's URL, e.g. https://graycast.example.com (plain http:// only to loopback,
    /// unless --insecure), or the URLs of several nodes of one cluster, comma-separated: the
    /// agent moves to the next when one fails.
    #[arg(long, env = "GRAYCAST_SERVER")]
    pub server: String,
    /// Also trust this CA (a PEM file) for the server's certificate, on top of the system's roots.
    #[arg(long, env = "GRAYCAST_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Allow plain http:// to a server that is not on loopback (token and configs unencrypted).
    #[arg(long, env = "GRAYCAST_INSECURE")]
    pub insecure: bool,
    /// An API token with role subscriber (or higher).
    #[arg(long, env = "GRAYCAST_TOKEN", hide_env_values = true)]
    pub token: String,
    #[arg(long, env = "GRAYCAST_NAMESPACE")]
    pub namespace: String,
    #[arg(long, env = "GRAYCAST_ENV")]
    pub env: String,
    /// Only these config keys (comma-separated); all configs of the namespace when absent.
    #[arg(long, value_delimiter = ',')]
    pub keys: Option<Vec<String>>,
    /// Instance labels for lane selectors: k=v,k2=v2.
    #[arg(long, default_value = "")]
    pub labels: String,
    /// This instance's identity (default: the host name).
    #[arg(long, env = "GRAYCAST_CLIENT_ID")]
    pub client_id: Option<String>,
    /// Where the config files go.
    #[arg(long)]
    pub dir: PathBuf,
    /// Reload command, run with `sh -c` after each change.
    #[arg(long)]
    pub exec: Option<String>,
    /// Health check, run with `sh -c` after `--exec` succeeded; if it fails, the previous file
    /// is put back and reloaded, and the server gets a `failed` report with the check's message.
    #[arg(long)]
    pub check: Option<String>,
    /// Fetch the current configs, write them, and exit (for init containers).
    #[arg(long)]
    pub once: bool,
}

/// What the agent does; [`AgentArgs`] with defaults filled in and labels parsed.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// One server URL, or several separated by commas.
    pub server: String,
    /// PEM text of extra CA certificates to trust (`--ca-cert`).
    pub ca_cert: Option<Vec<u8>>,
    pub insecure: bool,
    pub token: String,
    pub namespace: String,
    pub env: String,
    pub keys: Option<Vec<String>>,
    pub labels: Context,
    pub client_id: String,
    pub dir: PathBuf,
    pub exec: Option<String>,
    pub check: Option<String>,
    pub once: bool,
    pub backoff: Backoff,
    pub idle_timeout: Duration,
}

impl TryFrom<AgentArgs> for AgentConfig {
    type Error = AgentError;

    fn try_from(args: AgentArgs) -> Result<Self, AgentError> {
        let labels = parse_labels(&args.labels).map_err(AgentError::Setup)?;
        let keys = match args.keys {
            Some(keys) => {
                let keys: Vec<String> = keys
                    .iter()
                    .map(|k| k.trim().to_string())
                    .filter(|k| !k.is_empty())
                    .collect();
                for key in &keys {
                    check_file_key(key).map_err(AgentError::Setup)?;
                }
                Some(keys)
            }
            None => None,
        };
        let ca_cert = match &args.ca_cert {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                AgentError::Setup(format!("cannot read --ca-cert {}: {e}", path.display()))
            })?),
            None => None,
        };
        Ok(Self {
            server: args.server,
            ca_cert,
            insecure: args.insecure,
            token: args.token,
            namespace: args.namespace,
            env: args.env,
            keys,
            labels,
            client_id: args.client_id.unwrap_or_else(default_client_id),
            dir: args.dir,
            exec: args.exec,
            check: args.check,
            once: args.once,
            backoff: Backoff::default(),
            idle_timeout: Duration::from_secs(45),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("nothing could be fetched from the server and no earlier configs are on disk")]
    NothingToServe,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> AgentError {
    let what = what.into();
    move |source| AgentError::Io { what, source }
}

/// The instance's identity when `--client-id` is not given: the host name (a pod's name in
/// Kubernetes), which, unlike a process id, survives restarts.
pub fn default_client_id() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "graycast-agent".to_string())
}

/// A key is used as a file name in `DIR`: refuse anything that could escape it or clash with the
/// agent's own files (the server refuses such keys too; a server of an older release may not).
pub fn check_file_key(key: &str) -> Result<(), String> {
    graycast_domain::key::check_key(key)
}

/// What the agent remembers between runs, in `DIR/.graycast/state.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct State {
    /// What `last_event_id` is a position in: resuming is only right for the same subscription.
    subscription: Option<Subscription>,
    last_event_id: Option<String>,
    /// The last good file of each key.
    configs: BTreeMap<String, Served>,
    /// Per key, the newest report the server has not taken yet (it was
    /// unreachable); sent again whenever the stream connects.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    unreported: BTreeMap<String, Report>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Subscription {
    /// The server list, comma-separated: moving between its nodes keeps the position.
    server: String,
    namespace: String,
    env: String,
    keys: Option<Vec<String>>,
    labels: Context,
    client_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Served {
    version: i64,
    lane: Option<i64>,
    checksum: String,
}

/// Runs the agent until `shutdown` completes (or, with `--once`, until the configs are written).
pub async fn run(
    config: AgentConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let mut client = Client::builder(&config.server, &config.token).insecure(config.insecure);
    if let Some(pem) = &config.ca_cert {
        client = client.ca_cert_pem(pem.clone());
    }
    let client = client.build()?;
    let mut agent = Agent::open(config, client)?;
    if agent.config.once {
        agent.once().await
    } else {
        agent.watch(shutdown).await
    }
}

struct Agent {
    config: AgentConfig,
    client: Client,
    state: State,
    subscription: Subscription,
}

impl Agent {
    fn open(config: AgentConfig, client: Client) -> Result<Self, AgentError> {
        let state_dir = config.dir.join(STATE_DIR);
        std::fs::create_dir_all(&state_dir)
            .map_err(io(format!("cannot create {}", state_dir.display())))?;
        let state_file = state_dir.join("state.json");
        let state = match std::fs::read(&state_file) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(file = %state_file.display(), "ignoring unreadable state: {e}");
                State::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(io(format!("cannot read {}", state_file.display()))(e)),
        };
        let mut keys = config.keys.clone();
        if let Some(keys) = &mut keys {
            keys.sort();
            keys.dedup();
        }
        let subscription = Subscription {
            server: client.servers().join(","),
            namespace: config.namespace.clone(),
            env: config.env.clone(),
            keys,
            labels: config.labels.clone(),
            client_id: config.client_id.clone(),
        };
        for (key, served) in &state.configs {
            tracing::info!(
                key,
                version = served.version,
                "serving the last good config from {}",
                config.dir.display()
            );
        }
        Ok(Self {
            config,
            client,
            state,
            subscription,
        })
    }

    /// The event id to resume from: only when the last run watched the same thing.
    fn resume_from(&self) -> Option<String> {
        (self.state.subscription.as_ref() == Some(&self.subscription))
            .then(|| self.state.last_event_id.clone())
            .flatten()
    }

    fn watch_options(&self) -> WatchOptions {
        let mut options = WatchOptions::new(
            &self.config.namespace,
            &self.config.env,
            &self.config.client_id,
        )
        .labels(self.config.labels.clone())
        .backoff(self.config.backoff)
        .idle_timeout(self.config.idle_timeout);
        options.keys = self.config.keys.clone();
        options
    }

    async fn watch(&mut self, shutdown: impl Future<Output = ()>) -> Result<(), AgentError> {
        let mut watcher = self
            .client
            .watch(self.watch_options().resume_from(self.resume_from()));
        let mut states = watcher.states();
        // Look at the state it has now too, in case it connected already.
        states.mark_changed();
        let mut states_open = true;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                update = watcher.next() => match update {
                    Some(update) => self.handle(update).await?,
                    None => break,
                },
                changed = states.changed(), if states_open => match changed {
                    // The server is reachable again: what it missed goes first.
                    Ok(()) if *states.borrow_and_update() == WatchState::Connected => {
                        self.report_unreported().await?;
                    }
                    Ok(()) => {}
                    Err(_) => states_open = false,
                },
                _ = &mut shutdown => {
                    tracing::info!("shutting down");
                    watcher.close();
                    return Ok(());
                }
            }
        }
        match watcher.error() {
            Some(why) => Err(AgentError::Setup(why)),
            None => Ok(()),
        }
    }

    /// `--once`: the current configs, from `resolve` per key when keys are given, else from the
    /// initial events of a watch stream, which end with the server's `: synced`.
    async fn once(&mut self) -> Result<(), AgentError> {
        let mut fetched = 0usize;
        match self.config.keys.clone() {
            Some(keys) => {
                let mut context = self.config.labels.clone();
                context.insert("client_id".into(), self.config.client_id.clone());
                for key in keys {
                    match self
                        .client
                        .resolve(&self.config.namespace, &self.config.env, &key, &context)
                        .await
                    {
                        Ok(Some(config)) => {
                            fetched += 1;
                            self.apply(config).await?;
                        }
                        Ok(None) => tracing::warn!(key, "nothing is released for this key"),
                        Err(e) => tracing::warn!(key, "cannot fetch: {e}"),
                    }
                }
            }
            None => {
                // A fresh snapshot: every key that resolves, not only what changed.
                let mut watcher = self.client.watch(self.watch_options());
                if wait_connected(&watcher, self.client.servers().len()).await {
                    let mut synced = watcher.synced();
                    loop {
                        let update = tokio::select! {
                            biased;
                            update = watcher.next() => update,
                            // Everything owed at connect has arrived and waits in the watcher.
                            _ = synced.wait_for(|n| *n > 0) => watcher.try_next(),
                            // A server that does not say `: synced`: a quiet moment ends it.
                            _ = tokio::time::sleep(ONCE_QUIET) => None,
                        };
                        let Some(update) = update else { break };
                        fetched += usize::from(matches!(update, Update::Config { .. }));
                        self.handle(update).await?;
                    }
                } else if let Some(why) = watcher.error() {
                    tracing::warn!("cannot watch: {why}");
                }
                watcher.close();
            }
        }
        if fetched == 0 {
            if self.state.configs.is_empty() {
                return Err(AgentError::NothingToServe);
            }
            tracing::warn!(
                "nothing fetched; keeping the {} configs already in {}",
                self.state.configs.len(),
                self.config.dir.display()
            );
        }
        Ok(())
    }

    async fn handle(&mut self, update: Update) -> Result<(), AgentError> {
        let id = update.id().map(str::to_string);
        match update {
            Update::Config { config, .. } => self.apply(config).await?,
            Update::Deleted { key, .. } => self.delete(&key).await?,
            // The agent never asks for rules mode.
            Update::Rules { .. } => {}
        }
        if id.is_some() {
            self.state.last_event_id = id;
            self.state.subscription = Some(self.subscription.clone());
            self.save()?;
        }
        Ok(())
    }

    async fn apply(&mut self, config: Resolved) -> Result<(), AgentError> {
        let key = config.key.clone();
        if let Err(why) = check_file_key(&key) {
            tracing::error!("skipping: {why}");
            return Ok(());
        }
        let path = self.config.dir.join(&key);
        let previous = read_optional(&path)?;
        let served = Served {
            version: config.version,
            lane: config.lane,
            checksum: config.checksum.clone(),
        };
        let unchanged = self.state.configs.get(&key) == Some(&served)
            && previous.as_deref().map(sha256) == Some(config.checksum.clone());
        let outcome = if unchanged {
            Ok(())
        } else {
            write_atomic(&self.config.dir, &key, config.content.as_bytes())?;
            self.take(&key, Some(config.version), &path, previous.as_deref())
                .await?
        };
        let (status, message) = match outcome {
            Ok(()) => {
                if !unchanged {
                    tracing::info!(key, version = config.version, lane = ?config.lane, "applied");
                }
                self.state.configs.insert(key.clone(), served);
                self.save()?;
                (ReportStatus::Applied, None)
            }
            Err(why) => {
                tracing::error!(key, version = config.version, "not applied: {why}");
                (ReportStatus::Failed, Some(why))
            }
        };
        self.report(&key, config.version, status, message).await
    }

    async fn delete(&mut self, key: &str) -> Result<(), AgentError> {
        if check_file_key(key).is_err() {
            return Ok(());
        }
        let path = self.config.dir.join(key);
        let previous = read_optional(&path)?;
        if previous.is_none() {
            self.state.configs.remove(key);
            return Ok(());
        }
        std::fs::remove_file(&path).map_err(io(format!("cannot remove {}", path.display())))?;
        match self.take(key, None, &path, previous.as_deref()).await? {
            Ok(()) => {
                tracing::info!(key, "config deleted on the server; file removed");
                self.state.configs.remove(key);
                self.save()
            }
            Err(why) => {
                tracing::error!(key, "kept the file of a deleted config: {why}");
                Ok(())
            }
        }
    }

    /// After `key`'s file changed (to `version`, or removed): reloads, then checks health. If
    /// either fails, the `previous` file is put back (and, after a failed check, reloaded again,
    /// so the service runs the previous version); the inner `Err` says why, for the report.
    async fn take(
        &self,
        key: &str,
        version: Option<i64>,
        path: &Path,
        previous: Option<&[u8]>,
    ) -> Result<Result<(), String>, AgentError> {
        if let Err(why) = self.run_hook(Hook::Reload, key, version, path).await {
            self.restore(key, previous)?;
            return Ok(Err(why));
        }
        let Err(why) = self.run_hook(Hook::Check, key, version, path).await else {
            return Ok(Ok(()));
        };
        self.restore(key, previous)?;
        let previous_version = self.state.configs.get(key).map(|s| s.version);
        if let Err(again) = self
            .run_hook(Hook::Reload, key, previous_version, path)
            .await
        {
            tracing::error!(key, "reloading the previous file failed too: {again}");
        }
        Ok(Err(why))
    }

    /// Puts back the file as it was before a failed reload (or removes it if there was none).
    fn restore(&self, key: &str, previous: Option<&[u8]>) -> Result<(), AgentError> {
        match previous {
            Some(bytes) => write_atomic(&self.config.dir, key, bytes),
            None => {
                let path = self.config.dir.join(key);
                std::fs::remove_file(&path)
                    .or_else(|e| match e.kind() {
                        std::io::ErrorKind::NotFound => Ok(()),
                        _ => Err(e),
                    })
                    .map_err(io(format!("cannot remove {}", path.display())))
            }
        }
    }

    /// Runs `--exec` or `--check` (if given) for `key` at `version`; `Err` carries the message
    /// for the report.
    async fn run_hook(
        &self,
        hook: Hook,
        key: &str,
        version: Option<i64>,
        path: &Path,
    ) -> Result<(), String> {
        let (command, what) = match hook {
            Hook::Reload => (&self.config.exec, "reload command"),
            Hook::Check => (&self.config.check, "health check"),
        };
        let Some(command) = command else {
            return Ok(());
        };
        let output = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .env("GRAYCAST_KEY", key)
            .env(
                "GRAYCAST_VERSION",
                version.map(|v| v.to_string()).unwrap_or_default(),
            )
            .env("GRAYCAST_FILE", path)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::inherit())
            .stderr(std::process::Stdio::piped())
            .output()
            .await
            .map_err(|e| format!("cannot run the {what}: {e}"))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        for line in stderr.lines() {
            tracing::info!(key, "{what}: {line}");
        }
        if output.status.success() {
            return Ok(());
        }
        let status = match output.status.code() {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".to_string(),
        };
        let last = stderr
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("(no output on stderr)");
        // The server keeps messages up to 2,000 characters.
        let message: String = format!("{what} failed with {status}: {last}")
            .chars()
            .take(1000)
            .collect();
        Err(message)
    }

    /// Reports an outcome; one the server cannot take now (unreachable, or
    /// failing) is kept, replacing any older one for the key, and sent again
    /// when the stream next connects, also after a restart of the agent.
    async fn report(
        &mut self,
        key: &str,
        version: i64,
        status: ReportStatus,
        message: Option<String>,
    ) -> Result<(), AgentError> {
        let report = Report {
            client_id: self.config.client_id.clone(),
            namespace: self.config.namespace.clone(),
            env: self.config.env.clone(),
            key: key.to_string(),
            version,
            status,
            message,
        };
        self.send_report(report).await
    }

    /// Sends the reports the server missed, key by key.
    async fn report_unreported(&mut self) -> Result<(), AgentError> {
        let pending = std::mem::take(&mut self.state.unreported);
        if pending.is_empty() {
            return Ok(());
        }
        tracing::info!(count = pending.len(), "sending reports the server missed");
        for (_, report) in pending {
            self.send_report(report).await?;
        }
        // Those sent are gone from memory; the file must forget them too.
        self.save()
    }

    async fn send_report(&mut self, report: Report) -> Result<(), AgentError> {
        let (key, version, status) = (report.key.clone(), report.version, report.status);
        let changed = match self.client.report(&report).await {
            Ok(()) => self.state.unreported.remove(&key).is_some(),
            Err(e) if e.is_transient() => {
                tracing::warn!(
                    key,
                    version,
                    "cannot report {} now, will again on reconnect: {e}",
                    status.as_str()
                );
                self.state.unreported.insert(key, report);
                true
            }
            Err(e) => {
                // Refused (a token without the right, …): sending it again changes nothing.
                tracing::warn!(key, version, "report {} refused: {e}", status.as_str());
                self.state.unreported.remove(&key).is_some()
            }
        };
        if changed {
            self.save()?;
        }
        Ok(())
    }

    fn save(&self) -> Result<(), AgentError> {
        let bytes = serde_json::to_vec_pretty(&self.state).expect("state serializes");
        write_atomic(&self.config.dir.join(STATE_DIR), "state.json", &bytes)
    }
}

/// How long `--once` waits after the last initial event before it considers
/// the snapshot whole, from a server that does not send `: synced`.
const ONCE_QUIET: Duration = Duration::from_millis(1500);

/// The two commands the agent runs after a file changed.
#[derive(Clone, Copy)]
enum Hook {
    Reload,
    Check,
}

/// Waits until the watcher connected (true), or closed or tried each of the `servers` once in
/// vain (false).
async fn wait_connected(watcher: &Watcher, servers: usize) -> bool {
    let mut states = watcher.states();
    let mut failures = watcher.failures();
    loop {
        match *states.borrow_and_update() {
            WatchState::Connected => return true,
            WatchState::Closed => return false,
            _ => {}
        }
        if *failures.borrow_and_update() as usize >= servers {
            return false;
        }
        let changed = tokio::select! {
            changed = states.changed() => changed,
            changed = failures.changed() => changed,
        };
        if changed.is_err() {
            return false;
        }
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, AgentError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(format!("cannot read {}", path.display()))(e)),
    }
}

/// Replaces `dir/name` with `bytes` so that readers see the old or the new file, never a mix:
/// temp file in the same directory, fsync, rename, fsync of the directory.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), AgentError> {
    let temp = dir.join(format!(".{name}{TEMP_SUFFIX}"));
    let target = dir.join(name);
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, &target)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        io(format!("cannot write {}", target.display()))(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_keys_cannot_escape_the_directory() {
        for key in ["app.json", "a-b_c.yaml", ".env", "v1.2"] {
            assert!(check_file_key(key).is_ok(), "{key}");
        }
        for key in [
            "",
            ".",
            "..",
            "../etc",
            "a/b",
            "a\\b",
            ".graycast",
            "x.graycast-tmp",
            "a..b",
        ] {
            assert!(check_file_key(key).is_err(), "{key}");
        }
    }

    #[test]
    fn atomic_write_replaces_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), "app.json", b"{\"a\":1}").unwrap();
        write_atomic(dir.path(), "app.json", b"{}").unwrap();
        assert_eq!(std::fs::read(dir.path().join("app.json")).unwrap(), b"{}");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("app.json")]);
    }

    #[test]
    fn checksum_matches_the_servers_format() {
        assert_eq!(
            sha256(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
