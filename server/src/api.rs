//! REST handlers and the API's error type. Handlers are thin: each calls one engine
//! method — the same one the dashboard's server function calls — and maps the result.

use crate::auth::{self, login_refused, session_cookie, session_id};
use crate::startup::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use engine::Status;
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
    #[error("{0}")]
    Conflict(String),
    /// A field the caller must fix.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("too many failed attempts; try again in {0} s")]
    TooManyAttempts(u64),
    /// Store and other unexpected failures: logged with their cause, shown opaquely.
    #[error(transparent)]
    Internal(engine::EngineError),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
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
        let mut error = serde_json::json!({ "code": code, "message": message });
        if let ApiError::Invalid { field, message } = &self {
            error["field"] = field.clone().into();
            error["message"] = message.clone().into();
        }
        let body = Json(serde_json::json!({ "error": error }));
        let mut response = (status, body).into_response();
        if let ApiError::TooManyAttempts(secs) = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, secs.into());
        }
        response
    }
}

impl From<engine::EngineError> for ApiError {
    fn from(e: engine::EngineError) -> Self {
        use engine::EngineError as E;
        match e {
            E::Invalid(v) => ApiError::Invalid {
                field: v.field,
                message: v.message,
            },
            E::NotFound(m) => ApiError::NotFound(m),
            E::Conflict(m) => ApiError::Conflict(m),
            other => ApiError::Internal(other),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            // serde's message carries the line and column of the fault.
            JsonRejection::JsonSyntaxError(e) => {
                ApiError::BadRequest(format!("malformed JSON: {}", root_cause(&e)))
            }
            JsonRejection::JsonDataError(e) => ApiError::Invalid {
                field: "body".into(),
                message: root_cause(&e),
            },
            JsonRejection::MissingJsonContentType(_) => ApiError::BadRequest(
                "send the body as JSON with Content-Type: application/json".into(),
            ),
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge(format!(
                    "the body is larger than {} bytes",
                    crate::startup::MAX_BODY_BYTES
                ))
            }
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}

/// The innermost cause of an error, which names what actually went wrong
/// ("Connection refused", "expected value at line 2 column 10").
pub(crate) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// `Json` whose rejections are our JSON errors (400 with the position, 413, 422).
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

pub(crate) type ApiResult<T> = Result<T, ApiError>;

pub async fn status(State(state): State<AppState>) -> Json<Status> {
    Json(state.engine.status())
}

pub async fn start(State(state): State<AppState>) -> ApiResult<Json<Status>> {
    Ok(Json(state.engine.start().await?))
}

pub async fn stop(State(state): State<AppState>) -> ApiResult<Json<Status>> {
    Ok(Json(state.engine.stop().await?))
}

pub async fn restart(State(state): State<AppState>) -> ApiResult<Json<Status>> {
    Ok(Json(state.engine.restart().await?))
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
/// to the login page with an error). While the client is throttled the key is not even
/// compared. Every attempt is in the audit log.
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
    let cookie = [(header::SET_COOKIE, session_cookie(Some(&id)))];
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
pub async fn logout(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    end_session(&state, peer, &headers).await;
    (
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, session_cookie(None))],
    )
        .into_response()
}

/// `POST /api/session/logout`: the dashboard's log-out form.
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
        [(header::SET_COOKIE, session_cookie(None))],
        Redirect::to("/login"),
    )
        .into_response()
}

/// Text from a request shown back in a message or log line: control characters encoded.
pub fn printable(text: &str) -> String {
    engine::secrets::escape_controls(text).into_owned()
}

pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the store takes writes.
pub async fn readyz(State(state): State<AppState>) -> ApiResult<&'static str> {
    state.engine.store().ping_write().await?;
    Ok("ready")
}

// ---- jobs, runs, schedule preview ----------------------------------------------------

use engine::{Job, JobSpec, Run, RunQuery, RunStatus, Trigger};

pub async fn list_jobs(State(state): State<AppState>) -> Json<Vec<Job>> {
    Json(state.engine.list_jobs())
}

pub async fn create_job(
    State(state): State<AppState>,
    ApiJson(spec): ApiJson<JobSpec>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    Ok((
        StatusCode::CREATED,
        Json(state.engine.create_job(spec).await?),
    ))
}

pub async fn get_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Job>> {
    Ok(Json(state.engine.get_job(&id)?))
}

pub async fn replace_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(spec): ApiJson<JobSpec>,
) -> ApiResult<Json<Job>> {
    Ok(Json(state.engine.update_job(&id, spec, false).await?))
}

pub async fn patch_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(spec): ApiJson<JobSpec>,
) -> ApiResult<Json<Job>> {
    Ok(Json(state.engine.update_job(&id, spec, true).await?))
}

pub async fn delete_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.engine.delete_job(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct WaitQuery {
    #[serde(default)]
    wait: bool,
}

/// Who asked for a manual run: the CLI says so in a header; the key means a script; a
/// session means the dashboard.
fn trigger_of(headers: &HeaderMap) -> Trigger {
    if headers
        .get("x-echopilot-client")
        .is_some_and(|v| v == "cli")
    {
        Trigger::Cli
    } else if headers.contains_key(auth::KEY_HEADER) {
        Trigger::Api
    } else {
        Trigger::Manual
    }
}

/// Starts `job` now: `202 {"run"}`, or with `?wait=true` waits up to 30 s and answers
/// `200 {"run"}` once it finished (202 if it had not by then).
pub async fn run_job_now(
    state: &AppState,
    job: &str,
    trigger: Trigger,
    wait: bool,
) -> ApiResult<Response> {
    let run = state.engine.run_now(job, trigger).await?;
    if !wait {
        return Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "run": run })),
        )
            .into_response());
    }
    let run = state
        .engine
        .wait_run(run.id, engine::scheduler::MAX_WAIT)
        .await?;
    let status = if run.status.is_finished() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(serde_json::json!({ "run": run }))).into_response())
}

pub async fn run_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    run_job_now(&state, &id, trigger_of(&headers), q.wait).await
}

/// `POST /api/self-heal` (kept from the seed): runs the self-heal job now.
pub async fn self_heal(
    State(state): State<AppState>,
    Query(q): Query<WaitQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    run_job_now(
        &state,
        engine::automations::self_heal::KIND,
        trigger_of(&headers),
        q.wait,
    )
    .await
}

/// `POST /api/exec/brief` (kept from the seed): writes the CEO brief now.
pub async fn exec_brief(
    State(state): State<AppState>,
    Query(q): Query<WaitQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    run_job_now(
        &state,
        engine::automations::brief::KIND,
        trigger_of(&headers),
        q.wait,
    )
    .await
}

#[derive(Deserialize)]
pub struct RunsQuery {
    job: Option<String>,
    status: Option<String>,
    limit: Option<u32>,
    before: Option<i64>,
}

pub async fn list_runs(
    State(state): State<AppState>,
    Query(q): Query<RunsQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(RunStatus::parse(s).ok_or_else(|| ApiError::Invalid {
            field: "status".into(),
            message: format!("{s:?} is not a run status (queued, running, succeeded, failed, timed_out, cancelled, interrupted, skipped)"),
        })?),
        None => None,
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::Invalid {
            field: "limit".into(),
            message: format!("{limit} is out of range 1-500"),
        });
    }
    let query = RunQuery {
        job: q.job.filter(|j| !j.is_empty()),
        status,
        before: q.before,
        limit,
    };
    let runs = state.engine.list_runs(&query).await?;
    let next = (runs.len() == limit as usize)
        .then(|| runs.last().map(|r| r.id))
        .flatten();
    Ok(Json(serde_json::json!({ "runs": runs, "next": next })))
}

pub async fn get_run(State(state): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<Run>> {
    Ok(Json(state.engine.get_run(id).await?))
}

#[derive(Deserialize)]
pub struct PreviewQuery {
    schedule: String,
    #[serde(default)]
    timezone: String,
    from: Option<String>,
    count: Option<usize>,
}

pub async fn schedule_preview(Query(q): Query<PreviewQuery>) -> ApiResult<Json<serde_json::Value>> {
    let schedule =
        engine::Schedule::parse(&q.schedule, &q.timezone).map_err(|e| ApiError::Invalid {
            field: e.field.to_string(),
            message: e.message,
        })?;
    let from = match q.from.as_deref().filter(|f| !f.is_empty()) {
        Some(f) => chrono::DateTime::parse_from_rfc3339(f)
            .map_err(|e| ApiError::Invalid {
                field: "from".into(),
                message: format!("{f:?} is not an RFC 3339 time: {e}"),
            })?
            .with_timezone(&chrono::Utc),
        None => chrono::Utc::now(),
    };
    let count = q.count.unwrap_or(5);
    if !(1..=100).contains(&count) {
        return Err(ApiError::Invalid {
            field: "count".into(),
            message: format!("{count} is out of range 1-100"),
        });
    }
    let slots = schedule.preview(from, count);
    let times: Vec<String> = slots
        .iter()
        .map(|s| s.at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .collect();
    Ok(Json(serde_json::json!({
        "description": engine::describe_schedule(&q.schedule),
        "times": times,
        "slots": slots,
    })))
}
