//! Who is calling: passwords, API tokens, sessions, the sign-in throttle and
//! the same-origin rule for cookie-authenticated mutations.

use super::metrics::Metrics;
use super::SESSION_COOKIE;
use super::{db, AppState, Core};
use crate::model::{Role, TokenInfo, User};
use crate::{Error, Result};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tower_sessions::Session;

/// Session key holding the signed-in user's id.
pub const SESSION_USER_ID: &str = "user_id";

/// Hashes with argon2id (the crate default) off the async runtime.
pub async fn hash_password(password: &str) -> Result<String> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(Error::internal)
    })
    .await
    .map_err(Error::internal)?
}

/// Whether `password` matches `hash` (with the parameters the hash names);
/// a malformed hash never matches. Blocking: run it through [`PasswordChecks`].
fn password_matches(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// How sign-in is limited; docs/api.md describes the defaults.
#[derive(Debug, Clone)]
pub struct LoginLimits {
    /// The sliding window failed sign-ins are counted over.
    pub window: Duration,
    /// Failed sign-ins per (username, source address) within the window.
    pub per_name_and_source: usize,
    /// Failed sign-ins per source address (IPv6: per /64), whatever the username.
    pub per_source: usize,
    /// Password verifications running at once (each holds 19 MiB for argon2).
    pub checks_at_once: usize,
    /// Sign-ins that may wait for a verification; beyond them, 429.
    pub checks_queued: usize,
}

impl Default for LoginLimits {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            window: Duration::from_secs(60),
            per_name_and_source: 5,
            per_source: 20,
            checks_at_once: cpus,
            checks_queued: 4 * cpus,
        }
    }
}

/// Runs password verifications a few at a time on the blocking pool: argon2
/// takes 19 MiB and a core's worth of time per check, so unbounded parallel
/// sign-ins would take the server's memory (up to 512 blocking threads).
pub struct PasswordChecks {
    slots: Arc<Semaphore>,
    /// Sign-ins running or waiting for a slot.
    admitted: AtomicUsize,
    max_admitted: usize,
    metrics: Arc<Metrics>,
}

impl PasswordChecks {
    pub fn new(limits: &LoginLimits, metrics: Arc<Metrics>) -> Self {
        let at_once = limits.checks_at_once.max(1);
        Self {
            slots: Arc::new(Semaphore::new(at_once)),
            admitted: AtomicUsize::new(0),
            max_admitted: at_once + limits.checks_queued,
            metrics,
        }
    }

    /// Whether `password` matches `hash`; 429 (retry in a second) while
    /// every slot is busy and the queue is full.
    pub async fn verify(&self, password: &str, hash: &str) -> Result<bool> {
        let (password, hash) = (password.to_string(), hash.to_string());
        self.run(move || password_matches(&password, &hash)).await
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        if self.admitted.fetch_add(1, Ordering::SeqCst) >= self.max_admitted {
            self.admitted.fetch_sub(1, Ordering::SeqCst);
            self.metrics.password_check_refused();
            return Err(Error::retry_in(
                "The server is busy checking other sign-ins; try again in a second.",
                Duration::from_secs(1),
            ));
        }
        let _admitted = Admitted(&self.admitted);
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(Error::internal)?;
        let metrics = self.metrics.clone();
        // The slot goes with the work: a caller that gives up does not free
        // it before the verification really ends.
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            metrics.password_check_started();
            let result = work();
            metrics.password_check_ended();
            result
        })
        .await
        .map_err(Error::internal)
    }
}

struct Admitted<'a>(&'a AtomicUsize);

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

pub fn random_password() -> String {
    random_string(20)
}

fn random_string(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A new API token secret: `gc_` and 40 random characters (about 234 bits).
pub fn new_token_secret() -> String {
    format!("gc_{}", random_string(40))
}

/// Tokens are long random strings, so one SHA-256 is enough to store them safely.
pub fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub const TOKEN_PREFIX_LEN: usize = 8;

/// Which tokens had their `last_used_at` written recently: the database keeps
/// it to the minute, so a token used again within the minute (a fleet of
/// subscribers reconnecting with one token) costs no write.
#[derive(Default)]
pub struct TokenUse {
    touched: Mutex<HashMap<i64, Instant>>,
}

const TOKEN_USE_EVERY: Duration = Duration::from_secs(60);

impl TokenUse {
    /// Whether `last_used_at` of token `id` should be written now.
    pub fn due(&self, id: i64) -> bool {
        let mut touched = self.touched.lock().expect("token use lock");
        let now = Instant::now();
        if touched
            .get(&id)
            .is_some_and(|at| now.duration_since(*at) < TOKEN_USE_EVERY)
        {
            return false;
        }
        if touched.len() > 10_000 {
            touched.retain(|_, at| now.duration_since(*at) < TOKEN_USE_EVERY);
        }
        touched.insert(id, now);
        true
    }
}

/// Counts failed sign-ins over a sliding window, per (username, source
/// address) and per source address: a guesser is stopped at its address, and
/// the owner signing in from elsewhere is not locked out by it. An attempt is
/// counted as a failure *before* its password is verified (and forgotten if it
/// succeeds), so parallel guesses cannot slip past the count while the slow
/// verifications run.
pub struct LoginThrottle {
    window: Duration,
    per_name_and_source: usize,
    per_source: usize,
    failures: Mutex<Failures>,
}

/// Sources tracked at once; when all have recent failures, sign-ins from new
/// addresses are refused (fail closed) until some leave the window.
const MAX_SOURCES: usize = 20_000;
/// (username, source) pairs tracked at once; beyond, only the per-source count holds.
const MAX_PAIRS: usize = 100_000;
/// Maps are swept of stale entries when they reach this size (then twice the size left).
const SWEEP_AT: usize = 1024;

#[derive(Default)]
struct Failures {
    by_source: HashMap<IpAddr, VecDeque<Instant>>,
    by_pair: HashMap<(String, IpAddr), VecDeque<Instant>>,
    sweep_sources_at: usize,
    sweep_pairs_at: usize,
}

/// A sign-in counted as failed until it is [`LoginThrottle::succeeded`] or
/// [`LoginThrottle::release`]d.
#[derive(Debug)]
pub struct Attempt {
    pair: Option<(String, IpAddr)>,
    source: IpAddr,
    at: Instant,
}

impl LoginThrottle {
    pub fn new(limits: &LoginLimits) -> Self {
        Self {
            window: limits.window,
            per_name_and_source: limits.per_name_and_source.max(1),
            per_source: limits.per_source.max(1),
            failures: Mutex::default(),
        }
    }

    /// Counts a sign-in for `username` (`None`: a name no user can have) from
    /// `source`, or refuses it with 429 while either count is full.
    pub fn reserve(&self, username: Option<&str>, source: IpAddr) -> Result<Attempt> {
        let mut failures = self.failures.lock().expect("throttle lock");
        self.reserve_locked(&mut failures, username, source, Instant::now())
    }

    fn reserve_locked(
        &self,
        f: &mut Failures,
        username: Option<&str>,
        source: IpAddr,
        now: Instant,
    ) -> Result<Attempt> {
        let window = self.window;
        let source = source_key(source);
        if !f.by_source.contains_key(&source) {
            if f.by_source.len() >= f.sweep_sources_at.max(SWEEP_AT) {
                f.by_source
                    .retain(|_, times| recent(times, now, window) > 0);
                f.sweep_sources_at = f.by_source.len() * 2;
            }
            if f.by_source.len() >= MAX_SOURCES {
                return Err(Error::retry_in(
                    "Sign-in is refused for now: too many addresses failed to sign in recently; try again later.",
                    window,
                ));
            }
        }
        let times = f.by_source.entry(source).or_default();
        if recent(times, now, window) >= self.per_source {
            let wait = window.saturating_sub(now.duration_since(times[0]));
            return Err(Error::retry_in(
                format!(
                    "Too many failed sign-ins from your address; try again in {} seconds.",
                    wait.as_secs().max(1)
                ),
                wait,
            ));
        }
        let pair = username.map(|name| (name.to_string(), source));
        if let Some(key) = &pair {
            if let Some(times) = f.by_pair.get_mut(key) {
                if recent(times, now, window) >= self.per_name_and_source {
                    let wait = window.saturating_sub(now.duration_since(times[0]));
                    return Err(Error::retry_in(
                        format!(
                            "Too many failed sign-ins for {:?} from your address; try again in {} seconds.",
                            key.0,
                            wait.as_secs().max(1)
                        ),
                        wait,
                    ));
                }
            }
        }
        f.by_source.entry(source).or_default().push_back(now);
        let pair = pair.filter(|key| {
            if f.by_pair.contains_key(key) {
                return true;
            }
            if f.by_pair.len() >= f.sweep_pairs_at.max(SWEEP_AT) {
                f.by_pair.retain(|_, times| recent(times, now, window) > 0);
                f.sweep_pairs_at = f.by_pair.len() * 2;
            }
            f.by_pair.len() < MAX_PAIRS
        });
        if let Some(key) = &pair {
            f.by_pair.entry(key.clone()).or_default().push_back(now);
        }
        Ok(Attempt {
            pair,
            source,
            at: now,
        })
    }

    /// The attempt signed in: it is not a failure, and that username's earlier
    /// failures from that address are forgotten (the address's are not, so
    /// signing in to one's own account does not buy more guesses elsewhere).
    pub fn succeeded(&self, attempt: Attempt) {
        let mut f = self.failures.lock().expect("throttle lock");
        if let Some(pair) = &attempt.pair {
            f.by_pair.remove(pair);
        }
        if let Some(times) = f.by_source.get_mut(&attempt.source) {
            forget(times, attempt.at);
        }
    }

    /// The attempt was not verified (the server was busy): it counts for nothing.
    pub fn release(&self, attempt: Attempt) {
        let mut f = self.failures.lock().expect("throttle lock");
        if let Some(pair) = &attempt.pair {
            if let Some(times) = f.by_pair.get_mut(pair) {
                forget(times, attempt.at);
            }
        }
        if let Some(times) = f.by_source.get_mut(&attempt.source) {
            forget(times, attempt.at);
        }
    }
}

/// Drops the times that left the window; how many remain.
fn recent(times: &mut VecDeque<Instant>, now: Instant, window: Duration) -> usize {
    while times
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= window)
    {
        times.pop_front();
    }
    times.len()
}

fn forget(times: &mut VecDeque<Instant>, at: Instant) {
    if let Some(i) = times.iter().position(|t| *t == at) {
        times.remove(i);
    }
}

/// The address failures are counted by: IPv4 as is, IPv6 by its /64 (what
/// one subscriber usually gets), IPv4-mapped IPv6 as IPv4.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// Where a request comes from, as far as the server can tell: the peer's
/// address, or for a trusted proxy the client it forwarded for; and whether
/// the browser reached the server over HTTPS (told only by a trusted proxy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    pub addr: IpAddr,
    pub https: bool,
}

impl Client {
    /// `peer` is the connection's address (`None` outside the connection loop).
    pub fn of(headers: &HeaderMap, peer: Option<IpAddr>, trusted_proxies: &[IpAddr]) -> Self {
        let peer = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let trusted = |ip: &IpAddr| trusted_proxies.contains(ip);
        if !trusted(&peer) {
            return Self {
                addr: peer,
                https: false,
            };
        }
        // Each proxy appends the address it got the request from: the first
        // from the right that is not a trusted proxy is the client.
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|entry| forwarded_ip(entry.trim()))
            .collect();
        let addr = forwarded
            .iter()
            .rev()
            .find(|ip| !trusted(ip))
            .copied()
            .unwrap_or(peer);
        let https = headers
            .get_all("x-forwarded-proto")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
        Self { addr, https }
    }
}

/// `203.0.113.7`, `203.0.113.7:4711`, `2001:db8::1` or `[2001:db8::1]:4711`.
fn forwarded_ip(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// Tells every request who sent it ([`Client`], as an extension), and marks
/// the session cookie `Secure` for browsers a trusted proxy says came over HTTPS.
pub async fn identify_client(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let client = Client::of(request.headers(), peer, &state.config.trusted_proxies);
    request.extensions_mut().insert(client);
    let mut response = next.run(request).await;
    if client.https && !state.config.secure_cookies {
        mark_cookies_secure(response.headers_mut());
    }
    response
}

fn mark_cookies_secure(headers: &mut HeaderMap) {
    let cookies: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    if cookies.is_empty() {
        return;
    }
    headers.remove(header::SET_COOKIE);
    for cookie in cookies {
        let secure = cookie
            .to_str()
            .map(|c| {
                c.split(';')
                    .skip(1)
                    .any(|a| a.trim().eq_ignore_ascii_case("secure"))
            })
            .unwrap_or(true);
        let cookie = if secure {
            cookie
        } else {
            let mut bytes = cookie.as_bytes().to_vec();
            bytes.extend_from_slice(b"; Secure");
            HeaderValue::from_bytes(&bytes).unwrap_or(cookie)
        };
        headers.append(header::SET_COOKIE, cookie);
    }
}

/// What the dashboard's pages need and nothing more (see docs/api.md): the
/// hydration script and the resources streamed with a page are inline
/// scripts, the front end is WebAssembly, the live pages use EventSource.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

/// Browser hardening headers on every response.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}

/// The authenticated caller of a route or server function.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Shown in the audit trail: the username, or `token:<name>`.
    pub name: String,
    pub role: Role,
    pub env: Option<String>,
    pub namespace: Option<String>,
    pub user_id: Option<i64>,
    pub token_id: Option<i64>,
}

impl Actor {
    pub fn from_user(user: &User) -> Self {
        Self {
            name: user.username.clone(),
            role: user.role,
            env: user.env.clone(),
            namespace: None,
            user_id: Some(user.id),
            token_id: None,
        }
    }

    pub fn from_token(token: &TokenInfo) -> Self {
        Self {
            name: format!("token:{}", token.name),
            role: token.role,
            env: token.env.clone(),
            namespace: token.namespace.clone(),
            user_id: None,
            token_id: Some(token.id),
        }
    }

    /// The caller for actions taken from the command line on the database.
    pub fn cli() -> Self {
        Self {
            name: "cli".into(),
            role: Role::Admin,
            env: None,
            namespace: None,
            user_id: None,
            token_id: None,
        }
    }

    /// 403 unless the caller has at least `role`.
    pub fn require(&self, role: Role) -> Result<()> {
        if self.role >= role {
            Ok(())
        } else {
            Err(Error::forbidden(format!(
                "This needs the {role} role; you are {}.",
                self.role
            )))
        }
    }

    /// 403 unless the caller has `role` and its limits allow `namespace` and `env`.
    pub fn require_in(&self, role: Role, namespace: Option<&str>, env: Option<&str>) -> Result<()> {
        self.require(role)?;
        if let (Some(limit), Some(env)) = (&self.env, env) {
            if limit != env {
                return Err(Error::forbidden(format!(
                    "You are limited to the {limit} environment."
                )));
            }
        }
        if let (Some(limit), Some(ns)) = (&self.namespace, namespace) {
            if limit != ns {
                return Err(Error::forbidden(format!(
                    "This token is limited to the {limit} namespace."
                )));
            }
        }
        Ok(())
    }

    /// The caller's limits in words ("the staging environment"), `None` without any.
    pub fn limits(&self) -> Option<String> {
        match (&self.namespace, &self.env) {
            (None, None) => None,
            (Some(ns), None) => Some(format!("the {ns} namespace")),
            (None, Some(env)) => Some(format!("the {env} environment")),
            (Some(ns), Some(env)) => Some(format!("the {ns} namespace and the {env} environment")),
        }
    }

    /// 403 unless the caller has `role` and neither an environment nor a
    /// namespace limit: for what spans every environment and namespace (users,
    /// environments). `what` names the action, e.g. "Managing users".
    pub fn require_unlimited(&self, role: Role, what: &str) -> Result<()> {
        self.require(role)?;
        match self.limits() {
            None => Ok(()),
            Some(limits) => Err(Error::forbidden(format!(
                "{what} is for admins without limits, and you are limited to {limits}; \
                 ask an admin without limits."
            ))),
        }
    }

    /// Whether something limited to `namespace` and `env` (`None`: not
    /// limited) lies inside the caller's limits, i.e. is limited at least as
    /// narrowly as the caller.
    pub fn covers(&self, namespace: Option<&str>, env: Option<&str>) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|limit| namespace == Some(limit))
            && self.env.as_deref().is_none_or(|limit| env == Some(limit))
    }
}

/// Resolves the caller from a bearer token or the session cookie.
pub async fn actor_from_parts(parts: &mut Parts, state: &Core) -> Result<Actor> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let secret = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(Error::unauthorized)?;
        let token = db::tokens::find_active_by_hash(&state.db, &token_hash(secret))
            .await?
            .ok_or_else(Error::unauthorized)?;
        if state.token_use.due(token.id) {
            db::tokens::touch(&state.db, token.id).await?;
        }
        return Ok(Actor::from_token(&token));
    }
    let session = Session::from_request_parts(parts, state)
        .await
        .map_err(|_| Error::unauthorized())?;
    session_user(&session, state)
        .await?
        .map(|u| Actor::from_user(&u))
        .ok_or_else(Error::unauthorized)
}

/// The enabled user signed in on this session, if any.
pub async fn session_user(session: &Session, state: &Core) -> Result<Option<User>> {
    let Some(id) = session
        .get::<i64>(SESSION_USER_ID)
        .await
        .map_err(Error::internal)?
    else {
        return Ok(None);
    };
    Ok(db::users::find(&state.db, id)
        .await?
        .filter(|u| !u.disabled))
}

impl FromRequestParts<AppState> for Actor {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        actor_from_parts(parts, state).await
    }
}

/// Refuses state-changing requests that a browser sent from another origin.
/// Only a request with an `Authorization` header and no session cookie passes
/// unchecked: whatever else it carries, a request with the cookie may be
/// authenticated by it (server functions know no other credential).
pub async fn same_origin(request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let not_by_cookie = request.headers().contains_key(header::AUTHORIZATION)
        && !has_session_cookie(request.headers());
    if safe || not_by_cookie {
        return next.run(request).await;
    }
    let headers = request.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            headers
                .get(header::REFERER)
                .and_then(|r| r.to_str().ok())
                .and_then(origin_of_url)
        });
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site");
    let allowed = match (&origin, host) {
        _ if cross_site => false,
        (Some(origin), Some(host)) => origin_host(origin) == Some(host),
        (Some(_), None) => false,
        // No Origin at all: not a browser (browsers send it on every POST).
        (None, _) => true,
    };
    if allowed {
        next.run(request).await
    } else {
        Error::forbidden("Cross-origin request refused: this server accepts cookie-authenticated changes only from its own pages.")
            .into_response()
    }
}

/// Whether any `Cookie` header names the session cookie.
fn has_session_cookie(headers: &HeaderMap) -> bool {
    headers.get_all(header::COOKIE).iter().any(|value| {
        value.as_bytes().split(|b| *b == b';').any(|pair| {
            let name = pair.split(|b| *b == b'=').next().unwrap_or_default();
            name.trim_ascii() == SESSION_COOKIE.as_bytes()
        })
    })
}

/// `http://host:port/path` → `http://host:port`.
fn origin_of_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next()?;
    Some(format!("{scheme}://{host}"))
}

fn origin_host(origin: &str) -> Option<&str> {
    let (_, host) = origin.split_once("://")?;
    Some(host.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> LoginLimits {
        LoginLimits {
            window: Duration::from_secs(60),
            per_name_and_source: 5,
            per_source: 20,
            checks_at_once: 2,
            checks_queued: 1,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn throttle_blocks_a_name_at_one_address_only() {
        let throttle = LoginThrottle::new(&limits());
        let (attacker, owner) = (ip("127.0.0.2"), ip("127.0.0.1"));
        for _ in 0..5 {
            throttle.reserve(Some("alice"), attacker).unwrap();
        }
        let refused = throttle.reserve(Some("alice"), attacker).unwrap_err();
        assert_eq!(refused.status, 429);
        assert!(refused.retry_after.is_some_and(|s| (1..=60).contains(&s)));
        let attempt = throttle.reserve(Some("alice"), owner).unwrap();
        throttle.succeeded(attempt);
        assert!(
            throttle.reserve(Some("bob"), attacker).is_ok(),
            "another name from the same address is counted apart (up to the address's limit)"
        );
    }

    #[test]
    fn throttle_blocks_an_address_whatever_the_names() {
        let throttle = LoginThrottle::new(&limits());
        let attacker = ip("10.0.0.9");
        for n in 0..20 {
            throttle
                .reserve(Some(&format!("user{n}")), attacker)
                .unwrap();
        }
        assert_eq!(
            throttle
                .reserve(Some("fresh-name"), attacker)
                .unwrap_err()
                .status,
            429
        );
        assert_eq!(throttle.reserve(None, attacker).unwrap_err().status, 429);
        assert!(throttle
            .reserve(Some("fresh-name"), ip("10.0.0.10"))
            .is_ok());
    }

    #[test]
    fn parallel_attempts_cannot_pass_the_count() {
        let throttle = Arc::new(LoginThrottle::new(&limits()));
        let threads: Vec<_> = (0..60)
            .map(|_| {
                let throttle = throttle.clone();
                std::thread::spawn(move || throttle.reserve(Some("alice"), ip("127.0.0.2")).is_ok())
            })
            .collect();
        let passed = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|ok| *ok)
            .count();
        assert_eq!(
            passed, 5,
            "only five attempts are let through to verification"
        );
    }

    #[test]
    fn success_forgets_the_names_failures_and_release_counts_nothing() {
        let throttle = LoginThrottle::new(&limits());
        let here = ip("192.0.2.1");
        for _ in 0..4 {
            throttle.reserve(Some("alice"), here).unwrap();
        }
        let attempt = throttle.reserve(Some("alice"), here).unwrap();
        throttle.succeeded(attempt);
        for _ in 0..5 {
            throttle.reserve(Some("alice"), here).unwrap();
        }
        assert!(throttle.reserve(Some("alice"), here).is_err());
        // The address keeps its 9 failures: 11 more reach its limit of 20.
        let busy = throttle.reserve(Some("carol"), here).unwrap();
        throttle.release(busy);
        for n in 0..11 {
            throttle.reserve(Some(&format!("u{n}")), here).unwrap();
        }
        assert!(throttle.reserve(Some("dave"), here).is_err());
    }

    #[test]
    fn failures_leave_the_window() {
        let throttle = LoginThrottle::new(&limits());
        let here = ip("192.0.2.1");
        let start = Instant::now();
        let mut f = throttle.failures.lock().unwrap();
        for _ in 0..5 {
            throttle
                .reserve_locked(&mut f, Some("alice"), here, start)
                .unwrap();
        }
        assert!(throttle
            .reserve_locked(&mut f, Some("alice"), here, start + Duration::from_secs(59))
            .is_err());
        assert!(throttle
            .reserve_locked(&mut f, Some("alice"), here, start + Duration::from_secs(60))
            .is_ok());
    }

    #[test]
    fn stale_entries_are_swept_so_the_maps_stay_bounded() {
        let throttle = LoginThrottle::new(&limits());
        let start = Instant::now();
        let mut f = throttle.failures.lock().unwrap();
        for n in 0..5000u32 {
            let source = IpAddr::V4(Ipv4Addr::from(n));
            // Each minute a new batch of addresses: the old ones are stale.
            let now = start + Duration::from_secs(61 * u64::from(n / 500));
            throttle
                .reserve_locked(&mut f, Some("alice"), source, now)
                .unwrap();
        }
        assert!(f.by_source.len() <= 2 * SWEEP_AT, "{}", f.by_source.len());
        assert!(f.by_pair.len() <= 2 * SWEEP_AT, "{}", f.by_pair.len());
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        assert_eq!(
            source_key(ip("2001:db8:1:2:aaaa::1")),
            source_key(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            source_key(ip("2001:db8:1:2::1")),
            source_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(source_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn forwarded_headers_count_only_from_a_trusted_proxy() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "198.51.100.1, 203.0.113.7".parse().unwrap(),
        );
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        let proxy = ip("10.0.0.1");
        assert_eq!(
            Client::of(&headers, Some(ip("10.0.0.2")), &[proxy]),
            Client {
                addr: ip("10.0.0.2"),
                https: false
            },
            "an untrusted peer's headers are ignored"
        );
        assert_eq!(
            Client::of(&headers, Some(proxy), &[proxy]),
            Client {
                addr: ip("203.0.113.7"),
                https: true
            },
            "the entry the proxy appended, not what the client claimed before it"
        );
        headers.insert("x-forwarded-for", "203.0.113.7, 10.0.0.3".parse().unwrap());
        headers.insert("x-forwarded-proto", "http".parse().unwrap());
        assert_eq!(
            Client::of(&headers, Some(proxy), &[proxy, ip("10.0.0.3")]),
            Client {
                addr: ip("203.0.113.7"),
                https: false
            },
            "a chain of trusted proxies is walked"
        );
    }

    #[test]
    fn secure_is_added_to_cookies_once() {
        let mut headers = HeaderMap::new();
        headers.append(header::SET_COOKIE, "a=1; HttpOnly".parse().unwrap());
        headers.append(header::SET_COOKIE, "b=2; Secure".parse().unwrap());
        mark_cookies_secure(&mut headers);
        let cookies: Vec<_> = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(cookies, ["a=1; HttpOnly; Secure", "b=2; Secure"]);
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        assert!(!has_session_cookie(&headers));
        headers.insert(header::COOKIE, "x=1; graycast_session_x=2".parse().unwrap());
        assert!(!has_session_cookie(&headers));
        headers.append(
            header::COOKIE,
            "x=1;  graycast_session=abc".parse().unwrap(),
        );
        assert!(has_session_cookie(&headers));
    }

    // The gate is held across awaits on purpose: the checks block on it in
    // their blocking threads until the test opens it.
    #[allow(clippy::await_holding_lock)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn password_checks_run_at_most_n_at_once_and_refuse_beyond_the_queue() {
        let checks = Arc::new(PasswordChecks::new(&limits(), Arc::new(Metrics::default())));
        let gate = Arc::new(std::sync::RwLock::new(()));
        let closed = gate.write().unwrap();
        let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let (checks, gate, now, peak) =
                    (checks.clone(), gate.clone(), now.clone(), peak.clone());
                tokio::spawn(async move {
                    checks
                        .run(move || {
                            let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                            peak.fetch_max(running, Ordering::SeqCst);
                            drop(gate.read().unwrap());
                            now.fetch_sub(1, Ordering::SeqCst);
                        })
                        .await
                })
            })
            .collect();
        // Two run (blocked on the gate), the third waits in the queue of one.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(now.load(Ordering::SeqCst) == 2 && checks.admitted.load(Ordering::SeqCst) == 3) {
            assert!(Instant::now() < deadline, "the checks did not start");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let refused = checks.run(|| ()).await.unwrap_err();
        assert_eq!(refused.status, 429);
        assert_eq!(refused.retry_after, Some(1));
        drop(closed);
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(
            peak.load(Ordering::SeqCst),
            2,
            "never more than two at once"
        );
        assert!(checks.run(|| ()).await.is_ok(), "free again once they end");
    }

    #[test]
    fn token_use_is_written_once_a_minute_per_token() {
        let uses = TokenUse::default();
        assert!(uses.due(1), "the first use is written");
        assert!(!uses.due(1), "a second use within the minute is not");
        assert!(uses.due(2), "another token is");
        uses.touched
            .lock()
            .unwrap()
            .insert(1, Instant::now() - TOKEN_USE_EVERY);
        assert!(uses.due(1), "a minute later it is written again");
    }

    #[test]
    fn token_secrets_are_random_and_hashed() {
        let a = new_token_secret();
        let b = new_token_secret();
        assert_ne!(a, b);
        assert!(a.starts_with("gc_") && a.len() == 43);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[test]
    fn environment_limit_is_enforced() {
        let actor = Actor {
            env: Some("staging".into()),
            ..Actor::cli()
        };
        assert!(actor.require_in(Role::Admin, None, Some("staging")).is_ok());
        assert_eq!(
            actor
                .require_in(Role::Viewer, None, Some("prod"))
                .unwrap_err()
                .status,
            403
        );
    }

    #[test]
    fn limits_cover_only_what_is_limited_as_narrowly() {
        let unlimited = Actor::cli();
        assert!(unlimited.covers(None, None));
        assert!(unlimited
            .require_unlimited(Role::Admin, "Managing users")
            .is_ok());
        let staging = Actor {
            env: Some("staging".into()),
            ..Actor::cli()
        };
        assert!(staging.covers(Some("shop"), Some("staging")));
        assert!(!staging.covers(None, None));
        assert!(!staging.covers(None, Some("prod")));
        let refused = staging
            .require_unlimited(Role::Admin, "Managing users")
            .unwrap_err();
        assert_eq!(refused.status, 403);
        assert!(
            refused.message.contains("the staging environment"),
            "{refused}"
        );
        let shop = Actor {
            namespace: Some("shop".into()),
            ..Actor::cli()
        };
        assert!(shop.covers(Some("shop"), None));
        assert!(!shop.covers(Some("other"), Some("prod")));
        assert!(!shop.covers(None, Some("prod")));
    }

    #[test]
    fn origin_parsing() {
        assert_eq!(
            origin_of_url("http://127.0.0.1:8080/login?x").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin_host("http://127.0.0.1:8080"), Some("127.0.0.1:8080"));
        assert_eq!(origin_host("null"), None);
    }
}
