//! The dashboard key, browser sessions, and the guard in front of every route.
//!
//! The key is the root secret. It is compared in constant time (both sides hashed first,
//! so even the length leaks nothing), never logged, and never stored in the browser: a
//! browser trades it at login for a random session id in an HttpOnly, SameSite=Strict
//! cookie, kept server-side and killed at logout.

use crate::api::ApiError;
use crate::startup::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// The header scripts send the key in.
pub const KEY_HEADER: &str = "x-dash-key";
/// The session cookie. (`__Host-` needs TLS, which a loopback server does not have.)
pub const SESSION_COOKIE: &str = "echopilot_session";
/// A session ends after this long without requests...
const SESSION_IDLE: Duration = Duration::from_secs(12 * 3600);
/// ...and after this long in any case.
const SESSION_MAX: Duration = Duration::from_secs(7 * 24 * 3600);

/// The dashboard key, kept only as its SHA-256.
pub struct DashKey {
    digest: [u8; 32],
}

impl std::fmt::Debug for DashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DashKey(..)")
    }
}

/// Shorter keys are refused at start-up: a key is the only thing between the network and
/// shell access, and short ones fall to guessing even through the throttle.
pub const MIN_KEY_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("DASHBOARD_KEY is set but empty; set a real key, or unset it to use the generated one in {0}")]
    EmptyEnv(String),
    #[error("the dashboard key file {0} is empty; delete it to generate a new key, or write a key into it")]
    EmptyFile(String),
    #[error("the dashboard key from {0} is {1} characters; use at least {MIN_KEY_LEN} (for example `openssl rand -hex 32`)")]
    TooShort(String, usize),
    #[error("cannot read or create the dashboard key file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl DashKey {
    pub fn new(key: &str) -> Self {
        Self {
            digest: Sha256::digest(key.as_bytes()).into(),
        }
    }

    /// Constant-time comparison of `candidate` with the key.
    pub fn matches(&self, candidate: &str) -> bool {
        let other: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        self.digest.ct_eq(&other).into()
    }

    /// The key from `DASHBOARD_KEY` (`env_key`), else `<dir>/dashboard.key`, else a new
    /// random key written there with mode 0600 and printed once.
    pub fn load_or_create(env_key: Option<&str>, dir: &Path) -> Result<Self, KeyError> {
        let path = dir.join("dashboard.key");
        let shown = path.display().to_string();
        let checked = |from: &str, key: &str| {
            let n = key.chars().count();
            if n < MIN_KEY_LEN {
                Err(KeyError::TooShort(from.to_string(), n))
            } else {
                Ok(Self::new(key))
            }
        };
        if let Some(key) = env_key {
            if key.trim().is_empty() {
                return Err(KeyError::EmptyEnv(shown));
            }
            return checked("DASHBOARD_KEY", key.trim());
        }
        let io = |source| KeyError::Io {
            path: shown.clone(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(key) if key.trim().is_empty() => Err(KeyError::EmptyFile(shown)),
            Ok(key) => checked(&shown, key.trim()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                let key = random_hex(32);
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(io)?;
                file.write_all(format!("{key}\n").as_bytes()).map_err(io)?;
                file.sync_all().map_err(io)?;
                // Printed once, on the terminal of the operator who started the server;
                // never sent to the log.
                println!("Generated a dashboard key (saved in {shown}, mode 0600):\n  {key}");
                Ok(Self::new(&key))
            }
            Err(e) => Err(io(e)),
        }
    }
}

/// `n` random bytes as hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    // The OS random source failing is not something a server can carry on without.
    getrandom::fill(&mut bytes).expect("the OS random number generator is unavailable");
    hex::encode(bytes)
}

struct Session {
    created: Instant,
    last_seen: Instant,
}

/// Server-side sessions: random ids (256 bits) mapped to their timestamps.
#[derive(Default)]
pub struct Sessions {
    /// A std mutex: every access is a short map operation, never held across an await.
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn create(&self) -> String {
        let id = random_hex(32);
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| live(s, now));
        map.insert(
            id.clone(),
            Session {
                created: now,
                last_seen: now,
            },
        );
        id
    }

    /// True (and the session's idle clock reset) when `id` is a live session.
    pub fn touch(&self, id: &str) -> bool {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(id) {
            Some(s) if live(s, now) => {
                s.last_seen = now;
                true
            }
            Some(_) => {
                map.remove(id);
                false
            }
            None => false,
        }
    }

    pub fn remove(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

fn live(s: &Session, now: Instant) -> bool {
    now.duration_since(s.last_seen) < SESSION_IDLE && now.duration_since(s.created) < SESSION_MAX
}

/// Bad keys allowed per client address within [`FAILURE_WINDOW`] before a lock-out...
const ADDRESS_FAILURES: u32 = 10;
/// ...and from all addresses together, so many addresses cannot guess in parallel.
const GLOBAL_FAILURES: u32 = 100;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// The first lock-out; each next one doubles, up to [`MAX_LOCKOUT`].
const FIRST_LOCKOUT: Duration = Duration::from_secs(60);
const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// After this long without a failure, past lock-outs are forgotten.
const FORGIVE_AFTER: Duration = Duration::from_secs(3600);

/// Where failures are counted: one address, except that all of loopback is one client
/// (every 127.x.y.z reaches us from the same machine) and an IPv6 client is its /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Bucket {
    Loopback,
    V4(std::net::Ipv4Addr),
    V6Prefix(u64),
}

fn bucket(ip: IpAddr) -> Bucket {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => Bucket::Loopback,
        IpAddr::V4(v4) => Bucket::V4(v4),
        IpAddr::V6(v6) if v6.is_loopback() => Bucket::Loopback,
        IpAddr::V6(v6) => Bucket::V6Prefix((u128::from(v6) >> 64) as u64),
    }
}

/// Failures and lock-outs of one bucket.
#[derive(Debug, Default, Clone, Copy)]
struct Strikes {
    window_start: Option<Instant>,
    failures: u32,
    locked_until: Option<Instant>,
    lockouts: u32,
    last_failure: Option<Instant>,
}

impl Strikes {
    fn locked(&self, now: Instant) -> Option<Duration> {
        self.locked_until
            .and_then(|until| until.checked_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    fn fail(&mut self, now: Instant, limit: u32) {
        if self
            .last_failure
            .is_some_and(|t| now.duration_since(t) >= FORGIVE_AFTER)
        {
            *self = Strikes::default();
        }
        self.last_failure = Some(now);
        if self
            .window_start
            .is_none_or(|t| now.duration_since(t) >= FAILURE_WINDOW)
        {
            self.window_start = Some(now);
            self.failures = 0;
        }
        self.failures += 1;
        if self.failures >= limit {
            let lockout = FIRST_LOCKOUT
                .saturating_mul(1 << self.lockouts.min(10))
                .min(MAX_LOCKOUT);
            self.locked_until = Some(now + lockout);
            self.lockouts += 1;
            self.failures = 0;
            self.window_start = None;
        }
    }
}

/// Throttles key guessing. While a client (or everyone, past the global limit) is locked
/// out, no key is even compared: the answer is 429 with `Retry-After`, so a throttled
/// client learns nothing. Lock-outs grow (1, 2, 4 ... 15 minutes) but always end: the
/// operator is never locked out for good, and a browser session keeps working throughout.
#[derive(Default)]
pub struct Throttle {
    /// A std mutex: every access is a few map operations, never held across an await.
    state: Mutex<ThrottleState>,
}

#[derive(Default)]
struct ThrottleState {
    buckets: HashMap<Bucket, Strikes>,
    global: Strikes,
}

impl Throttle {
    /// Seconds to wait, when `ip` (or everyone) is locked out.
    pub fn retry_after(&self, ip: IpAddr) -> Option<u64> {
        self.retry_after_at(ip, Instant::now())
    }

    fn retry_after_at(&self, ip: IpAddr, now: Instant) -> Option<u64> {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mine = s.buckets.get(&bucket(ip)).and_then(|b| b.locked(now));
        let wait = mine.max(s.global.locked(now))?;
        Some(wait.as_secs_f64().ceil().max(1.0) as u64)
    }

    pub fn record_failure(&self, ip: IpAddr) {
        self.record_failure_at(ip, Instant::now());
    }

    fn record_failure_at(&self, ip: IpAddr, now: Instant) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.buckets
            .entry(bucket(ip))
            .or_default()
            .fail(now, ADDRESS_FAILURES);
        s.global.fail(now, GLOBAL_FAILURES);
        if s.buckets.len() > 10_000 {
            s.buckets.retain(|_, b| {
                b.last_failure
                    .is_some_and(|t| now.duration_since(t) < FORGIVE_AFTER)
            });
        }
    }

    /// A right key from `ip`: its own strikes are forgotten.
    pub fn record_success(&self, ip: IpAddr) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.buckets.remove(&bucket(ip));
    }
}

/// The Host names requests may carry. A page on a DNS name that rebinds to 127.0.0.1 is
/// same-origin with itself, not with us: its requests carry its own name as Host, and
/// are refused here before any credential is looked at.
pub struct AllowedHosts {
    names: Vec<String>,
}

impl AllowedHosts {
    pub fn new(names: &[String]) -> Self {
        AllowedHosts {
            names: names
                .iter()
                .map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase())
                .filter(|n| !n.is_empty())
                .collect(),
        }
    }

    /// Loopback names, IP addresses (no DNS is involved, so nothing can rebind) and the
    /// configured names are allowed, with any port.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim();
        let name = if let Some(rest) = host.strip_prefix('[') {
            rest.split(']').next().unwrap_or_default()
        } else {
            host.rsplit_once(':')
                .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
                .map_or(host, |(name, _)| name)
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        name.parse::<IpAddr>().is_ok()
            || name == "localhost"
            || name.ends_with(".localhost")
            || self.names.contains(&name)
    }
}

/// How a request proved itself.
enum Credential {
    Key,
    Session(String),
    BadKey,
    /// A key was sent while its sender is locked out: it was not even compared.
    Throttled(u64),
    None,
}

fn credential(state: &AppState, headers: &HeaderMap, peer: IpAddr) -> Credential {
    if let Some(key) = headers.get(KEY_HEADER) {
        if let Some(secs) = state.throttle.retry_after(peer) {
            return Credential::Throttled(secs);
        }
        return match key.to_str() {
            Ok(k) if state.key.matches(k) => Credential::Key,
            _ => Credential::BadKey,
        };
    }
    match session_id(headers) {
        Some(id) if state.sessions.touch(&id) => Credential::Session(session_tag(&id)),
        _ => Credential::None,
    }
}

/// A session as the audit log names it: a short hash of its id, enough to tell two
/// apart, useless for taking one over.
pub fn session_tag(id: &str) -> String {
    format!(
        "session {}",
        hex::encode(&Sha256::digest(id.as_bytes())[..3])
    )
}

/// The session id from the Cookie header, if any.
pub fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
}

/// `Set-Cookie` for a new session, or for clearing it (`None`).
pub fn session_cookie(id: Option<&str>) -> HeaderValue {
    let value = match id {
        Some(id) => format!(
            "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
            SESSION_MAX.as_secs()
        ),
        None => format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    };
    // Built only from a hex id and fixed text, so always a valid header value.
    HeaderValue::from_str(&value).expect("cookie text is ASCII")
}

/// True when a browser says this request comes from another site. Requests riding on a
/// session cookie must not (CSRF); scripts with the key header send neither header.
pub fn cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return !matches!(site, "same-origin" | "none");
    }
    match (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) {
        (Some(origin), Some(host)) => {
            let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
            origin_host != host
        }
        (Some(_), None) => true,
        _ => false,
    }
}

/// Paths anyone may reach: the login page and its assets, probes, and login itself.
fn public(path: &str) -> bool {
    matches!(
        path,
        "/login" | "/favicon.ico" | "/healthz" | "/readyz" | "/api/session" | "/api/session/logout"
    ) || path.starts_with("/pkg/")
}

fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// The guard in front of every route: the Host must be ours (DNS rebinding); API paths
/// need the key or a session (401 JSON otherwise), pages need a session (redirect to
/// /login otherwise), and mutations riding on a session cookie must come from our own
/// origin. Keys are not compared while their sender is throttled.
pub async fn guard(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(host) = request
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or("\u{fffd}"))
    {
        if !state.hosts.allows(host) {
            let shown = crate::api::printable(host);
            tracing::warn!(%peer, host = %shown, "request for a host name this server does not serve");
            return ApiError::Forbidden(format!(
                "this server does not answer to the host name {shown}; the operator can allow it with --allowed-hosts"
            ))
            .into_response();
        }
    }
    let path = request.uri().path();
    if public(path) {
        return next.run(request).await;
    }
    let api = is_api(path);
    let mutating = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    match credential(&state, request.headers(), peer.ip()) {
        Credential::Key => {
            state.throttle.record_success(peer.ip());
            audited(&state, "key".into(), peer, mutating, request, next).await
        }
        Credential::Session(tag) => {
            if mutating && cross_site(request.headers()) {
                tracing::warn!(%peer, path, "cross-site request refused");
                return ApiError::Forbidden("cross-site request refused".into()).into_response();
            }
            audited(&state, tag, peer, mutating, request, next).await
        }
        Credential::Throttled(secs) => ApiError::TooManyAttempts(secs).into_response(),
        Credential::BadKey => {
            state.throttle.record_failure(peer.ip());
            tracing::warn!(%peer, path, "wrong dashboard key");
            let action = format!("{} {}", request.method(), path);
            let refused = ApiError::Unauthorized("wrong dashboard key".into()).into_response();
            record(
                &state,
                Audit {
                    actor: "wrong key".into(),
                    peer,
                    action,
                    target: String::new(),
                    details: String::new(),
                    status: refused.status().as_u16(),
                },
            )
            .await;
            refused
        }
        Credential::None if api => ApiError::Unauthorized(
            "missing credentials: send the dashboard key in the X-Dash-Key header, or log in"
                .into(),
        )
        .into_response(),
        Credential::None => Redirect::to("/login").into_response(),
    }
}

/// One audit entry to record.
pub struct Audit {
    pub actor: String,
    pub peer: SocketAddr,
    pub action: String,
    pub target: String,
    pub details: String,
    pub status: u16,
}

/// Writes an audit entry; a store that refuses it is logged, never the caller's problem.
pub async fn record(state: &AppState, a: Audit) {
    let entry = engine::model::AuditEntry {
        at: chrono::Utc::now(),
        actor: a.actor,
        ip: a.peer.ip().to_string(),
        action: a.action,
        target: a.target,
        details: a.details,
        status: a.status,
    };
    if let Err(e) = state.engine.record_audit(&entry).await {
        tracing::error!(error = %engine::error::chain(&e), action = entry.action, "cannot record an audit entry");
    }
}

/// Most characters of a request's arguments kept in its audit entry.
const MAX_AUDIT_DETAILS: usize = 2000;

/// Runs the request; a change (any method but GET, HEAD, OPTIONS) goes into the audit log
/// with who made it, what it was about (the job or run), its arguments with secrets
/// masked, and how it was answered.
async fn audited(
    state: &AppState,
    actor: String,
    peer: SocketAddr,
    mutating: bool,
    request: Request,
    next: Next,
) -> Response {
    if !mutating {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, crate::startup::MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::PayloadTooLarge(format!(
                "the body is larger than {} bytes",
                crate::startup::MAX_BODY_BYTES
            ))
            .into_response()
        }
    };
    let action = format!("{} {}", parts.method, parts.uri.path());
    let args = arguments(&parts.headers, &bytes);
    let target = target(parts.uri.path(), &args);
    let mut details = if args.as_object().is_some_and(|m| m.is_empty()) {
        String::new()
    } else {
        args.to_string()
    };
    if details.len() > MAX_AUDIT_DETAILS {
        let mut cut = MAX_AUDIT_DETAILS;
        while !details.is_char_boundary(cut) {
            cut -= 1;
        }
        details.truncate(cut);
        details.push('…');
    }
    let request = Request::from_parts(parts, axum::body::Body::from(bytes));
    let response = next.run(request).await;
    record(
        state,
        Audit {
            actor,
            peer,
            action,
            target,
            details,
            status: response.status().as_u16(),
        },
    )
    .await;
    response
}

/// A request's arguments as JSON with every secret masked: a form (server functions; a
/// `params` field holding JSON is masked inside), or a JSON body.
fn arguments(headers: &HeaderMap, body: &[u8]) -> serde_json::Value {
    use serde_json::Value;
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    let value = if form {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
        Value::Object(
            pairs
                .into_iter()
                .map(|(k, v)| {
                    let v = match serde_json::from_str::<Value>(&v) {
                        Ok(parsed @ Value::Object(_)) => parsed,
                        _ => Value::String(v),
                    };
                    (k, v)
                })
                .collect(),
        )
    } else if body.is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(format!("({} bytes, not JSON)", body.len())))
    };
    engine::secrets::mask_params(&value)
}

/// What a change was about: `job <id>` or `run <id>`, from the path or the arguments.
fn target(path: &str, args: &serde_json::Value) -> String {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api", "jobs", id, ..] => return format!("job {id}"),
        ["api", "runs", id, ..] => return format!("run {id}"),
        _ => {}
    }
    let arg = |k: &str| {
        args.get(k)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
    };
    if let Some(id) = arg("original").or_else(|| arg("id")) {
        return format!("job {id}");
    }
    String::new()
}

/// Status for a login with a bad key; shared by the JSON and form logins.
pub fn login_refused(state: &AppState, peer: IpAddr) -> ApiError {
    state.throttle.record_failure(peer);
    tracing::warn!(%peer, "failed login");
    ApiError::Unauthorized("wrong dashboard key".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockouts_grow_end_and_count_all_of_loopback_as_one_client() {
        let t = Throttle::default();
        let start = Instant::now();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.9.9.9".parse().unwrap();
        let six: IpAddr = "::1".parse().unwrap();
        for _ in 0..ADDRESS_FAILURES {
            assert_eq!(t.retry_after_at(a, start), None);
            t.record_failure_at(a, start);
        }
        assert_eq!(t.retry_after_at(a, start), Some(60));
        assert_eq!(t.retry_after_at(b, start), Some(60), "127/8 is one client");
        assert_eq!(t.retry_after_at(six, start), Some(60), "so is ::1");
        let other: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(t.retry_after_at(other, start), None);
        // The lock-out ends: the operator gets back in.
        let later = start + Duration::from_secs(61);
        assert_eq!(t.retry_after_at(a, later), None);
        // The next one is twice as long, and so on, up to the cap.
        let mut now = later;
        let mut seen = Vec::new();
        for _ in 0..6 {
            for _ in 0..ADDRESS_FAILURES {
                t.record_failure_at(a, now);
            }
            let wait = t.retry_after_at(a, now).unwrap();
            seen.push(wait);
            now += Duration::from_secs(wait + 1);
            assert_eq!(t.retry_after_at(a, now), None, "never for good");
        }
        assert_eq!(seen, vec![120, 240, 480, 900, 900, 900]);
        // A right key forgets the address's strikes.
        t.record_success(a);
        t.record_failure_at(a, now);
        assert_eq!(t.retry_after_at(a, now), None);
    }

    #[test]
    fn many_addresses_guessing_together_lock_everyone_out_for_a_while() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 0..GLOBAL_FAILURES {
            // Nine guesses per address: each stays under its own limit.
            let ip = IpAddr::from([198, 51, (i / 9 / 250) as u8, (i / 9 % 250) as u8 + 1]);
            t.record_failure_at(ip, now);
        }
        let fresh: IpAddr = "203.0.113.1".parse().unwrap();
        assert_eq!(t.retry_after_at(fresh, now), Some(60));
        assert_eq!(t.retry_after_at(fresh, now + Duration::from_secs(61)), None);
    }

    #[test]
    fn hosts_are_loopback_names_ip_addresses_or_configured_names() {
        let h = AllowedHosts::new(&["dash.example.com".into()]);
        for ok in [
            "localhost:3000",
            "127.0.0.1:3000",
            "[::1]:3000",
            "192.0.2.5",
            "app.localhost",
            "dash.example.com",
            "Dash.Example.Com.:443",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "localhost.evil.example:3000",
            "dash.example.com.evil",
            "",
        ] {
            assert!(!h.allows(bad), "{bad}");
        }
    }

    #[test]
    fn key_matches_only_itself() {
        let key = DashKey::new("correct horse");
        assert!(key.matches("correct horse"));
        assert!(!key.matches("correct hors"));
        assert!(!key.matches(""));
    }

    #[test]
    fn empty_env_key_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let err = DashKey::load_or_create(Some("  "), dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("DASHBOARD_KEY is set but empty"),
            "{err}"
        );
    }

    #[test]
    fn generated_key_is_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        DashKey::load_or_create(None, dir.path()).unwrap();
        let path = dir.path().join("dashboard.key");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let written = std::fs::read_to_string(&path).unwrap();
        let again = DashKey::load_or_create(None, dir.path()).unwrap();
        assert!(again.matches(written.trim()));
    }

    #[test]
    fn cross_site_is_judged_by_fetch_metadata_then_origin() {
        let mut h = HeaderMap::new();
        assert!(!cross_site(&h), "no browser headers: a script");
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(cross_site(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(!cross_site(&h));
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:3000"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(cross_site(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:3000"),
        );
        assert!(!cross_site(&h));
    }

    #[test]
    fn session_id_is_read_from_among_other_cookies() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; echopilot_session=abc; b=2"),
        );
        assert_eq!(session_id(&h).as_deref(), Some("abc"));
    }
}
