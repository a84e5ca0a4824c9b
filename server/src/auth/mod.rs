//! Who may do what: the guard in front of every route, and its parts.
//!
//! - [`key`]: the dashboard key (the root secret).
//! - [`session`]: browser sessions and the cross-site check.
//! - [`throttle`]: key guesses throttled, never a permanent lock-out.
//! - [`hosts`]: the Host names the server answers to.
//! - [`audit`]: the audit trail.

pub mod audit;
pub mod hosts;
pub mod key;
pub mod session;
pub mod throttle;

pub use audit::{record, Actor, Audit};
pub use hosts::AllowedHosts;
pub use key::{DashKey, KeyError};
pub use session::{behind_tls, cross_site, session_cookie, session_id, session_tag, Sessions};
pub use throttle::Throttle;

use crate::api::ApiError;
use crate::startup::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use std::net::{IpAddr, SocketAddr};

/// The header scripts send the key in.
pub const KEY_HEADER: &str = "x-dash-key";

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
    // The key in `X-Dash-Key`, or as a bearer token (what Prometheus' scrape config sends).
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|v| header::HeaderValue::from_str(v.trim()).ok());
    if let Some(key) = headers.get(KEY_HEADER).cloned().or(bearer) {
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
/// Paths anyone may reach: the login page and its assets, probes, login itself, and the
/// pings of inbound checks (their token is their secret).
pub(crate) fn public(path: &str) -> bool {
    matches!(
        path,
        "/login" | "/favicon.ico" | "/healthz" | "/readyz" | "/api/session" | "/api/session/logout"
    ) || path.starts_with("/pkg/")
        || path.starts_with("/ping/")
}

/// Answered 401 (not redirected to the login page) without credentials: the API, and the
/// Prometheus scrape.
pub(crate) fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/") || path == "/metrics"
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
    if public(path) || (path == "/metrics" && state.metrics_public) {
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
            audit::audited(&state, "key".into(), peer, mutating, request, next).await
        }
        Credential::Session(tag) => {
            if mutating && cross_site(request.headers()) {
                tracing::warn!(%peer, path, "cross-site request refused");
                return ApiError::Forbidden("cross-site request refused".into()).into_response();
            }
            audit::audited(&state, tag, peer, mutating, request, next).await
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
/// Status for a login with a bad key; shared by the JSON and form logins.
pub fn login_refused(state: &AppState, peer: IpAddr) -> ApiError {
    state.throttle.record_failure(peer);
    tracing::warn!(%peer, "failed login");
    ApiError::Unauthorized("wrong dashboard key".into())
}
