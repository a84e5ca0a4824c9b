//! The `http` job kind: one HTTP request per run, sent through the guarded client
//! ([`crate::outbound`]: address checks, DNS pinning, every redirect hop checked, secrets
//! never re-sent to another host).
//!
//! Params: `url`, `method` (GET), `headers` (object), `body` (string or JSON),
//! `expected_status` (a number; default any 2xx). The response body is kept up to 1 MiB;
//! secret-looking headers are masked in the stored output.

use crate::kinds::{JobContext, JobFailure, JobResult};
use crate::outbound::{Method, Outbound, Request};
use crate::secrets;
use serde_json::{json, Value};
use std::time::Duration;

pub const KIND: &str = "http";
/// Most response bytes kept.
pub const MAX_BODY: usize = 1024 * 1024;

/// Headers as stored in the run's output: secret-looking values masked.
pub fn masked(headers: &serde_json::Map<String, Value>) -> Value {
    Value::Object(
        headers
            .iter()
            .map(|(k, v)| {
                let v = if secrets::is_secret_name(k) {
                    json!(secrets::MASK)
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect(),
    )
}

/// Checks params when a job is saved: the fields the run needs, with their types.
pub fn check(params: &Value) -> Result<(), crate::model::ValidationError> {
    let invalid = |field: &str, message: String| crate::model::ValidationError {
        field: format!("params.{field}"),
        message,
    };
    let url = params
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("url", "required: the URL to request".into()))?;
    Outbound::parse_url("url", url).map_err(|e| invalid("url", e.to_string()))?;
    if let Some(m) = params.get("method") {
        let ok = m
            .as_str()
            .is_some_and(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).is_ok());
        if !ok {
            return Err(invalid("method", format!("{m} is not an HTTP method")));
        }
    }
    if let Some(h) = params.get("headers") {
        let ok = h
            .as_object()
            .is_some_and(|h| h.values().all(|v| v.is_string() || v.is_number()));
        if !ok {
            return Err(invalid(
                "headers",
                "must be an object of header names to strings".into(),
            ));
        }
    }
    if let Some(s) = params.get("expected_status") {
        if !s.as_u64().is_some_and(|s| (100..=599).contains(&s)) {
            return Err(invalid(
                "expected_status",
                format!("{s} is not a status 100-599"),
            ));
        }
    }
    Ok(())
}

pub async fn run(ctx: JobContext) -> JobResult {
    let p = &ctx.job.params;
    let fail = |m: String| JobFailure::new(m);
    let url = Outbound::parse_url(
        "params.url",
        p.get("url")
            .and_then(|v| v.as_str())
            .ok_or_else(|| fail("params.url is required".into()))?,
    )
    .map_err(|e| fail(e.to_string()))?;
    let method = Method::from_bytes(
        p.get("method")
            .and_then(|v| v.as_str())
            .unwrap_or("GET")
            .to_ascii_uppercase()
            .as_bytes(),
    )
    .map_err(|_| fail("params.method is not an HTTP method".into()))?;
    let headers = p
        .get("headers")
        .and_then(|v| v.as_object())
        .cloned()
        .unwrap_or_default();
    let mut req = Request::new(method, url, Duration::from_secs(ctx.job.timeout_secs));
    req.max_body = MAX_BODY;
    for (k, v) in &headers {
        let value = v.as_str().map_or_else(|| v.to_string(), str::to_string);
        req = req.header(k, value);
    }
    // For receivers to deduplicate by (unless the job sets its own).
    let has = |name: &str| headers.keys().any(|k| k.eq_ignore_ascii_case(name));
    if !has("idempotency-key") {
        req = req.header("idempotency-key", ctx.idempotency_key());
    }
    if let (Some(slot), false) = (ctx.scheduled_at_text(), has("x-echopilot-scheduled-at")) {
        req = req.header("x-echopilot-scheduled-at", slot);
    }
    req.body = match p.get("body") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone().into_bytes()),
        Some(other) => Some(other.to_string().into_bytes()),
    };
    let response = ctx
        .engine
        .outbound()
        .send(req)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let status = response.status;
    let out = json!({
        "url": secrets::mask_url(response.url.as_str()),
        "redirects": response.redirects,
        "status": status,
        "request_headers": masked(&headers),
        "body": response.text(),
        "body_bytes": response.body.len(),
        "truncated": response.truncated,
    });
    let ok = match p.get("expected_status").and_then(|v| v.as_u64()) {
        Some(want) => u64::from(status) == want,
        None => response.is_success(),
    };
    if ok {
        Ok(out)
    } else {
        Err(JobFailure {
            message: format!(
                "{} answered {status}, expected {}",
                secrets::mask_url(response.url.as_str()),
                p.get("expected_status")
                    .map_or("2xx".to_string(), |v| v.to_string())
            ),
            output: Some(out),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_headers_are_masked() {
        let h = serde_json::json!({ "Authorization": "Bearer x", "X-Api-Key": "k", "X-Access-Key": "a", "X-Signature": "s", "Accept": "text/plain" });
        let m = masked(h.as_object().unwrap());
        assert_eq!(
            m,
            serde_json::json!({ "Authorization": "••••", "X-Api-Key": "••••", "X-Access-Key": "••••", "X-Signature": "••••", "Accept": "text/plain" })
        );
    }
}
