//! REST handlers and the API's error type. Handlers are thin: each calls one engine
//! method — the same one the dashboard's server function calls — and maps the result.

use crate::auth::{self, login_refused, session_cookie, session_id};
use crate::startup::AppState;
use app::wire::SchedulerStatus;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde::Deserialize;
use std::net::SocketAddr;

/// Every error the API answers with, as `{"error": {"code", "message"}}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("too many failed attempts; try again in {0} s")]
    TooManyAttempts(u64),
    /// Store and other unexpected failures: logged with their cause, shown opaquely.
    #[error(transparent)]
    Internal(#[from] engine::EngineError),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::TooManyAttempts(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            ApiError::Internal(e) => {
                tracing::error!(error = %e, "request failed");
                "internal error; see the server log".to_string()
            }
            other => other.to_string(),
        };
        let body = Json(serde_json::json!({ "error": { "code": code, "message": message } }));
        let mut response = (status, body).into_response();
        if let ApiError::TooManyAttempts(secs) = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, secs.into());
        }
        response
    }
}

type ApiResult<T> = Result<T, ApiError>;

pub async fn status(State(state): State<AppState>) -> Json<SchedulerStatus> {
    Json(state.engine.status().into())
}

pub async fn start(State(state): State<AppState>) -> ApiResult<Json<SchedulerStatus>> {
    Ok(Json(state.engine.start().await?.into()))
}

pub async fn stop(State(state): State<AppState>) -> ApiResult<Json<SchedulerStatus>> {
    Ok(Json(state.engine.stop().await?.into()))
}

pub async fn restart(State(state): State<AppState>) -> ApiResult<Json<SchedulerStatus>> {
    Ok(Json(state.engine.restart().await?.into()))
}

/// Unknown `/api` paths.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such API route".into())
}

#[derive(Deserialize)]
pub struct LoginForm {
    key: String,
}

/// `POST /api/session`: JSON `{"key"}` → 204 + cookie; form `key=` → 303 to `/` (or back
/// to the login page with an error).
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
    if !state.key.matches(&key) {
        let refused = login_refused(&state, peer.ip());
        return match (form, refused) {
            (true, Err(ApiError::TooManyAttempts(_))) => Redirect::to("/login?error=throttled").into_response(),
            (true, _) => Redirect::to("/login?error=key").into_response(),
            (false, Err(e)) => e.into_response(),
            (false, Ok(())) => StatusCode::UNAUTHORIZED.into_response(),
        };
    }
    tracing::info!(%peer, "login");
    let id = state.sessions.create();
    let cookie = [(header::SET_COOKIE, session_cookie(Some(&id)))];
    if form {
        (cookie, Redirect::to("/")).into_response()
    } else {
        (StatusCode::NO_CONTENT, cookie).into_response()
    }
}

/// `DELETE /api/session`: ends the session on the server too.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(id) = session_id(&headers) {
        state.sessions.remove(&id);
    }
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, session_cookie(None))]).into_response()
}

/// `POST /api/session/logout`: the dashboard's log-out form.
pub async fn logout_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if auth::cross_site(&headers) {
        return ApiError::Forbidden("cross-site logout refused".into()).into_response();
    }
    if let Some(id) = session_id(&headers) {
        state.sessions.remove(&id);
    }
    ([(header::SET_COOKIE, session_cookie(None))], Redirect::to("/login")).into_response()
}

pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the store takes writes.
pub async fn readyz(State(state): State<AppState>) -> ApiResult<&'static str> {
    state.engine.store().ping_write().await?;
    Ok("ready")
}
