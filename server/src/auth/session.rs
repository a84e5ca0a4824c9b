//! Browser sessions: the key traded at login for a random id (256 bits) in an HttpOnly,
//! SameSite=Strict cookie, kept server-side with idle and absolute timeouts, killed at
//! logout; and the cross-site check for requests that ride on the cookie.

use super::key::random_hex;
use axum::http::{header, HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The session cookie over plain HTTP (a loopback server has no TLS)...
pub const SESSION_COOKIE: &str = "echopilot_session";
/// ...and behind a TLS reverse proxy (`X-Forwarded-Proto: https`): `__Host-`, `Secure`,
/// so no other host or plain-HTTP page can set or read it.
pub const TLS_SESSION_COOKIE: &str = "__Host-echopilot_session";
/// A session ends after this long without requests...
const SESSION_IDLE: Duration = Duration::from_secs(12 * 3600);
/// ...and after this long in any case.
const SESSION_MAX: Duration = Duration::from_secs(7 * 24 * 3600);

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
        .find(|(name, _)| *name == TLS_SESSION_COOKIE || *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
}

/// Whether the browser reached us over TLS through a reverse proxy that says so.
pub fn behind_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// `Set-Cookie` for a new session, or for clearing it (`None`); `tls`: the `__Host-`,
/// `Secure` cookie of a server behind a TLS proxy ([`behind_tls`]).
pub fn session_cookie(id: Option<&str>, tls: bool) -> HeaderValue {
    let (name, secure) = if tls {
        (TLS_SESSION_COOKIE, "; Secure")
    } else {
        (SESSION_COOKIE, "")
    };
    let value = match id {
        Some(id) => format!(
            "{name}={id}; Path=/; HttpOnly; SameSite=Strict{secure}; Max-Age={}",
            SESSION_MAX.as_secs()
        ),
        None => format!("{name}=; Path=/; HttpOnly; SameSite=Strict{secure}; Max-Age=0"),
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

#[cfg(test)]
mod tests {
    use super::*;

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
