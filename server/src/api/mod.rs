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
//! - [`probes`]: `/healthz`, `/readyz`.

pub mod alerts;
pub mod jobs;
pub mod maintenance;
pub mod probes;
pub mod runs;
pub mod scheduler;
pub mod session;

use axum::extract::rejection::JsonRejection;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

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
        let mut error = serde_json::json!({ "code": code, "message": message });
        if let ApiError::Invalid { field, message } = &self {
            error["field"] = field.clone().into();
            error["message"] = message.clone().into();
        }
        let body = Json(serde_json::json!({ "error": error }));
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

/// Unknown `/api` paths.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such API route".into())
}

/// Text from a request shown back in a message or log line: control characters encoded.
pub fn printable(text: &str) -> String {
    engine::secrets::escape_controls(text).into_owned()
}
