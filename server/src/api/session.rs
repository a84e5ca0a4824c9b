//! Logging in and out of the dashboard: the key traded for a server-side session.

use super::ApiError;
use crate::auth::{self, behind_tls, login_refused, session_cookie, session_id};
use crate::startup::AppState;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginForm {
    /// The dashboard key.
    key: String,
}

/// `POST /api/session`: JSON `{"key"}` → 204 + cookie; form `key=` → 303 to `/` (or back
/// to the login page with an error). While the client is throttled the key is not even
/// compared. Every attempt is in the audit log.
#[utoipa::path(post, path = "/api/session", tag = "session",
    request_body(content(
        (LoginForm = "application/json"),
        (LoginForm = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 204, description = "Logged in (JSON): the session cookie is set.",
            headers(("set-cookie" = String, description = "`echopilot_session` (`__Host-echopilot_session; Secure` behind TLS), HttpOnly, SameSite=Strict."))),
        (status = 303, description = "Logged in (form): to `/`; refused: back to `/login?error=...`.",
            headers(("location" = String))),
        (status = 401, description = "A wrong key.", body = super::ErrorBody),
        (status = 403, description = "A cross-site login.", body = super::ErrorBody),
        (status = 429, description = "Too many failed attempts: `Retry-After` says when to try again.", body = super::ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if auth::cross_site(&headers) {
        return ApiError::Forbidden("cross-site login refused".into()).into_response();
    }
    let parsed: Result<LoginForm, String> = if form {
        serde_urlencoded::from_bytes::<LoginForm>(&body)
            .map_err(|e| format!("form has no key field: {e}"))
    } else {
        serde_json::from_slice(&body).map_err(|e| format!("body is not JSON {{\"key\": ...}}: {e}"))
    };
    let key = match parsed {
        Ok(f) => f.key,
        Err(message) => return ApiError::BadRequest(message).into_response(),
    };
    let outcome = if let Some(secs) = state.throttle.retry_after(peer.ip()) {
        Err(ApiError::TooManyAttempts(secs))
    } else if state.key.matches(&key) {
        state.throttle.record_success(peer.ip());
        Ok(())
    } else {
        Err(login_refused(&state, peer.ip()))
    };
    let (actor, action, status) = match &outcome {
        Ok(()) => ("key", "login", StatusCode::NO_CONTENT),
        Err(ApiError::TooManyAttempts(_)) => (
            "anonymous",
            "login throttled",
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(_) => ("anonymous", "login failed", StatusCode::UNAUTHORIZED),
    };
    // A throttled attempt was not checked, and recording each would let a flood of them
    // flood the log; the lock-out itself follows from the failures that are recorded.
    if status != StatusCode::TOO_MANY_REQUESTS {
        auth::record(
            &state,
            auth::Audit {
                actor: actor.into(),
                peer,
                action: action.into(),
                target: String::new(),
                details: String::new(),
                status: status.as_u16(),
            },
        )
        .await;
    }
    if let Err(refused) = outcome {
        return match (form, refused) {
            (true, ApiError::TooManyAttempts(_)) => {
                Redirect::to("/login?error=throttled").into_response()
            }
            (true, _) => Redirect::to("/login?error=key").into_response(),
            (false, e) => e.into_response(),
        };
    }
    tracing::info!(%peer, "login");
    let id = state.sessions.create();
    let cookie = [(
        header::SET_COOKIE,
        session_cookie(Some(&id), behind_tls(&headers)),
    )];
    if form {
        (cookie, Redirect::to("/")).into_response()
    } else {
        (StatusCode::NO_CONTENT, cookie).into_response()
    }
}

/// Ends the session on the server and records who logged out.
async fn end_session(state: &AppState, peer: SocketAddr, headers: &HeaderMap) {
    if let Some(id) = session_id(headers) {
        let live = state.sessions.touch(&id);
        state.sessions.remove(&id);
        if live {
            auth::record(
                state,
                auth::Audit {
                    actor: auth::session_tag(&id),
                    peer,
                    action: "logout".into(),
                    target: String::new(),
                    details: String::new(),
                    status: 204,
                },
            )
            .await;
        }
    }
}

/// `DELETE /api/session`: ends the session on the server too.
#[utoipa::path(delete, path = "/api/session", tag = "session",
    responses((status = 204, description = "Logged out: the cookie is cleared.",
        headers(("set-cookie" = String)))))]
pub async fn logout(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    end_session(&state, peer, &headers).await;
    (
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            session_cookie(None, behind_tls(&headers)),
        )],
    )
        .into_response()
}

/// `POST /api/session/logout`: the dashboard's log-out form.
#[utoipa::path(post, path = "/api/session/logout", tag = "session",
    responses((status = 303, description = "Logged out: to `/login`, the cookie cleared.",
            headers(("location" = String), ("set-cookie" = String))),
        (status = 403, description = "A cross-site log-out.", body = super::ErrorBody)))]
pub async fn logout_form(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if auth::cross_site(&headers) {
        return ApiError::Forbidden("cross-site logout refused".into()).into_response();
    }
    end_session(&state, peer, &headers).await;
    (
        [(
            header::SET_COOKIE,
            session_cookie(None, behind_tls(&headers)),
        )],
        Redirect::to("/login"),
    )
        .into_response()
}
