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
/// Bad keys allowed per client address within [`FAILURE_WINDOW`] before 429.
const MAX_FAILURES: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// The dashboard key, kept only as its SHA-256.
pub struct DashKey {
    digest: [u8; 32],
}

impl std::fmt::Debug for DashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DashKey(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("DASHBOARD_KEY is set but empty; set a real key, or unset it to use the generated one in {0}")]
    EmptyEnv(String),
    #[error("the dashboard key file {0} is empty; delete it to generate a new key, or write a key into it")]
    EmptyFile(String),
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
        if let Some(key) = env_key {
            if key.trim().is_empty() {
                return Err(KeyError::EmptyEnv(shown));
            }
            return Ok(Self::new(key.trim()));
        }
        let io = |source| KeyError::Io {
            path: shown.clone(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(key) if key.trim().is_empty() => Err(KeyError::EmptyFile(shown)),
            Ok(key) => Ok(Self::new(key.trim())),
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

/// Counts bad keys per client address; past the limit, answers 429 until the window
/// passes. Never a permanent lock-out: the operator can always try again later.
#[derive(Default)]
pub struct Throttle {
    map: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Throttle {
    /// Seconds to wait, when `ip` is over the limit.
    pub fn retry_after(&self, ip: IpAddr) -> Option<u64> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let (since, count) = *map.get(&ip)?;
        let elapsed = since.elapsed();
        (count >= MAX_FAILURES && elapsed < FAILURE_WINDOW)
            .then(|| (FAILURE_WINDOW - elapsed).as_secs().max(1))
    }

    pub fn record_failure(&self, ip: IpAddr) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(ip).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= FAILURE_WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
        if map.len() > 10_000 {
            map.retain(|_, (since, _)| since.elapsed() < FAILURE_WINDOW);
        }
    }
}

/// How a request proved itself.
enum Credential {
    Key,
    Session,
    BadKey,
    None,
}

fn credential(state: &AppState, headers: &HeaderMap) -> Credential {
    if let Some(key) = headers.get(KEY_HEADER) {
        return match key.to_str() {
            Ok(k) if state.key.matches(k) => Credential::Key,
            _ => Credential::BadKey,
        };
    }
    match session_id(headers) {
        Some(id) if state.sessions.touch(&id) => Credential::Session,
        _ => Credential::None,
    }
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

/// The guard in front of every route: API paths need the key or a session (401 JSON
/// otherwise), pages need a session (redirect to /login otherwise), and mutations riding
/// on a session cookie must come from our own origin.
pub async fn guard(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if public(path) {
        return next.run(request).await;
    }
    let api = is_api(path);
    let mutating = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    match credential(&state, request.headers()) {
        Credential::Key => {
            let cli = request
                .headers()
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ua| ua.starts_with("echopilot"));
            let actor = if cli { "cli" } else { "key" };
            audited(&state, actor.into(), peer, mutating, request, next).await
        }
        Credential::Session => {
            if mutating && cross_site(request.headers()) {
                tracing::warn!(%peer, path, "cross-site request refused");
                return ApiError::Forbidden("cross-site request refused".into()).into_response();
            }
            // Sessions are named by a short hash of their id: enough to tell two apart,
            // useless for taking one over.
            let id = session_id(request.headers()).unwrap_or_default();
            let tag = hex::encode(&Sha256::digest(id.as_bytes())[..3]);
            audited(
                &state,
                format!("session {tag}"),
                peer,
                mutating,
                request,
                next,
            )
            .await
        }
        Credential::BadKey => {
            if let Some(secs) = state.throttle.retry_after(peer.ip()) {
                return ApiError::TooManyAttempts(secs).into_response();
            }
            state.throttle.record_failure(peer.ip());
            tracing::warn!(%peer, path, "wrong dashboard key");
            ApiError::Unauthorized("wrong dashboard key".into()).into_response()
        }
        Credential::None if api => ApiError::Unauthorized(
            "missing credentials: send the dashboard key in the X-Dash-Key header, or log in"
                .into(),
        )
        .into_response(),
        Credential::None => Redirect::to("/login").into_response(),
    }
}

/// Runs the request; a change (any method but GET, HEAD, OPTIONS) goes into the audit log
/// with who made it and how it was answered.
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
    let action = format!("{} {}", request.method(), request.uri().path());
    let response = next.run(request).await;
    let entry = engine::store::AuditEntry {
        at: chrono::Utc::now(),
        actor,
        ip: peer.ip().to_string(),
        action,
        status: response.status().as_u16(),
    };
    if let Err(e) = state.engine.store().record_audit(&entry).await {
        tracing::error!(error = %e, action = entry.action, "cannot record an audit entry");
    }
    response
}

/// Status for a login with a bad key; shared by the JSON and form logins.
pub fn login_refused(state: &AppState, peer: IpAddr) -> Result<(), ApiError> {
    if let Some(secs) = state.throttle.retry_after(peer) {
        return Err(ApiError::TooManyAttempts(secs));
    }
    state.throttle.record_failure(peer);
    tracing::warn!(%peer, "failed login");
    Err(ApiError::Unauthorized("wrong dashboard key".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
