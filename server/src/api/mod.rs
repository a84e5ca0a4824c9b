//! The REST API: handlers by resource, and the one error type they answer with. Handlers
//! are thin: each calls one engine method — the same one the dashboard's server function
//! calls — and maps the result; engine errors become statuses here, once, by their kind.
//!
//! - [`scheduler`]: status, start, stop, restart (the seed's routes).
//! - [`jobs`]: jobs CRUD, run now (and the seed's self-heal and brief routes).
//! - [`runs`]: run history and one run, cancel and rerun; the schedule preview.
//! - [`maintenance`]: maintenance windows CRUD.
//! - [`alerts`]: channels, rules, incidents, inbound checks and their pings.
//! - [`session`]: log in and out.
//! - [`probes`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`openapi`]: the document of all of it, `/api/openapi.json` and `/api/docs`.
//!
//! [`routes`] is the one list of routes: each is served and documented from its handler's
//! `#[utoipa::path]`.

pub mod alerts;
pub mod jobs;
pub mod maintenance;
pub mod openapi;
pub mod probes;
pub mod runs;
pub mod scheduler;
pub mod session;

use axum::extract::rejection::JsonRejection;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every REST route, each served by its handler and documented by its annotation.
pub fn routes() -> OpenApiRouter<crate::startup::AppState> {
    OpenApiRouter::with_openapi(<openapi::ApiDoc as utoipa::OpenApi>::openapi())
        .routes(routes!(scheduler::status))
        .routes(routes!(scheduler::start))
        .routes(routes!(scheduler::stop))
        .routes(routes!(scheduler::restart))
        .routes(routes!(scheduler::leaders))
        .routes(routes!(jobs::list_jobs, jobs::create_job))
        .routes(routes!(
            jobs::get_job,
            jobs::replace_job,
            jobs::patch_job,
            jobs::delete_job
        ))
        .routes(routes!(jobs::export_jobs))
        .routes(routes!(jobs::apply_jobs))
        .routes(routes!(jobs::run_job))
        .routes(routes!(jobs::pause_job))
        .routes(routes!(jobs::resume_job))
        .routes(routes!(maintenance::list, maintenance::create))
        .routes(routes!(
            maintenance::get,
            maintenance::replace,
            maintenance::delete
        ))
        .routes(routes!(alerts::list_channels, alerts::create_channel))
        .routes(routes!(
            alerts::get_channel,
            alerts::replace_channel,
            alerts::delete_channel
        ))
        .routes(routes!(alerts::test_channel))
        .routes(routes!(alerts::list_rules, alerts::create_rule))
        .routes(routes!(
            alerts::get_rule,
            alerts::replace_rule,
            alerts::delete_rule
        ))
        .routes(routes!(alerts::incidents))
        .routes(routes!(alerts::list_checks, alerts::create_check))
        .routes(routes!(
            alerts::get_check,
            alerts::replace_check,
            alerts::delete_check
        ))
        .routes(routes!(alerts::ping_success))
        .routes(routes!(alerts::ping_kind))
        .routes(routes!(runs::list_runs))
        .routes(routes!(runs::bulk_cancel))
        .routes(routes!(runs::bulk_rerun))
        .routes(routes!(runs::get_run))
        .routes(routes!(runs::cancel_run))
        .routes(routes!(runs::rerun_run))
        .routes(routes!(crate::live::run_log))
        .routes(routes!(crate::live::events))
        .routes(routes!(runs::schedule_preview))
        .routes(routes!(crate::bench::ticks))
        .routes(routes!(jobs::self_heal))
        .routes(routes!(jobs::exec_brief))
        .routes(routes!(session::login, session::logout))
        .routes(routes!(session::logout_form))
        .routes(routes!(probes::metrics))
        .routes(routes!(probes::healthz))
        .routes(routes!(probes::readyz))
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(openapi::docs))
}

/// Every error answer: `{"error": {"code", "message", "field"?}}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// What kind of error: `bad_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `conflict`, `invalid`, `payload_too_large`, `too_many_attempts`, `unavailable`,
    /// `internal`; and from outside the handlers `method_not_allowed`, `timeout`,
    /// `unsupported_media_type`.
    pub code: String,
    pub message: String,
    /// The field to fix (`invalid` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

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
    /// The store is busy or out of reach for now: 503 with `Retry-After`.
    #[error("the store is busy; try again in a moment")]
    Unavailable(#[source] engine::EngineError),
    /// Store and other unexpected failures: logged with their causes, shown opaquely.
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
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            ApiError::Internal(e) => {
                tracing::error!(error = %engine::error::chain(e), "request failed");
                "internal error; see the server log".to_string()
            }
            ApiError::Unavailable(e) => {
                tracing::warn!(error = %engine::error::chain(e), "store unavailable");
                self.to_string()
            }
            other => other.to_string(),
        };
        let error = match &self {
            ApiError::Invalid { field, message } => ErrorDetail {
                code: code.into(),
                message: message.clone(),
                field: Some(field.clone()),
            },
            _ => ErrorDetail {
                code: code.into(),
                message,
                field: None,
            },
        };
        let body = Json(ErrorBody { error });
        let mut response = (status, body).into_response();
        let retry_after = match self {
            ApiError::TooManyAttempts(secs) => Some(secs),
            ApiError::Unavailable(_) => Some(1),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, secs.into());
        }
        response
    }
}

impl From<engine::EngineError> for ApiError {
    /// The one place engine errors become API answers: by their kind.
    fn from(e: engine::EngineError) -> Self {
        use engine::ErrorKind as K;
        match e.kind() {
            K::Invalid => ApiError::Invalid {
                field: e.field().unwrap_or("body").to_string(),
                message: match e {
                    engine::EngineError::Invalid(v) => v.message,
                    other => other.to_string(),
                },
            },
            K::NotFound => ApiError::NotFound(e.to_string()),
            K::Conflict => ApiError::Conflict(e.to_string()),
            K::Unavailable => ApiError::Unavailable(e),
            K::Internal => ApiError::Internal(e),
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

/// An optional JSON body: none when empty; otherwise parsed, its faults answered like
/// [`ApiJson`]'s (400 with the position, 422 naming the field).
pub(crate) fn optional_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<Option<T>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body).map(Some).map_err(|e| {
        if e.is_data() {
            ApiError::Invalid {
                field: "body".into(),
                message: e.to_string(),
            }
        } else {
            ApiError::BadRequest(format!("malformed JSON: {e}"))
        }
    })
}

/// `Json` whose rejections are our JSON errors (400 with the position, 413, 422).
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// Every error an API path answers is JSON, whoever made it: besides the handlers' own,
/// axum's rejections (a malformed query or path parameter), the body limit's 413, the
/// timeout's 408 — their text becomes the message. The dashboard's server functions
/// (`/api/fn/...`) answer in their own encoding, which their client reads.
pub async fn errors_as_json(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path();
    let api = crate::auth::is_api(path) && !path.starts_with("/api/fn/");
    let response = next.run(request).await;
    let status = response.status();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !api || json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let message = match text.trim() {
        "" => status.canonical_reason().unwrap_or("error").to_lowercase(),
        t => printable(t),
    };
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid",
        _ if status.is_server_error() => "internal",
        _ => "error",
    };
    let error = ErrorDetail {
        code: code.into(),
        message,
        field: None,
    };
    (status, Json(ErrorBody { error })).into_response()
}

/// Unknown `/api` paths.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such API route".into())
}

/// Text from a request shown back in a message or log line: control characters encoded.
pub fn printable(text: &str) -> String {
    engine::secrets::escape_controls(text).into_owned()
}
