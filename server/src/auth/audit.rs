//! The audit trail: every change, with who made it (from the credential), from where, what
//! it was about and its arguments (secrets masked), and how it was answered; logins,
//! failed logins, log-outs and wrong keys too.

use crate::api::ApiError;
use crate::startup::AppState;
use axum::extract::Request;
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

pub use engine::Actor;

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
pub(super) async fn audited(
    state: &AppState,
    actor: String,
    peer: SocketAddr,
    mutating: bool,
    request: Request,
    next: Next,
) -> Response {
    let mut request = request;
    request.extensions_mut().insert(Actor(actor.clone()));
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
    let mut args = arguments(&parts.headers, &bytes);
    let target = target(parts.uri.path(), &args);
    // A job's edit is recorded with what it changed, field by field.
    let job_id = target.strip_prefix("job ").map(str::to_string);
    let before = job_id
        .as_deref()
        .and_then(|id| state.engine.get_job(id).ok());
    let request = Request::from_parts(parts, axum::body::Body::from(bytes));
    let response = next.run(request).await;
    let after = job_id
        .as_deref()
        .and_then(|id| state.engine.get_job(id).ok());
    if let (Some(b), Some(a), Some(m)) = (&before, &after, args.as_object_mut()) {
        let changed = b.changes(a);
        if !changed.is_empty() {
            m.insert("changed".into(), changed.into());
        }
    }
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
        ["api", "runs", id, ..] if id.parse::<i64>().is_ok() => return format!("run {id}"),
        ["api", "maintenance", id, ..] => return format!("window {id}"),
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
