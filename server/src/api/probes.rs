//! Probes for load balancers and supervisors: alive, and ready (the store takes writes).

use super::ApiResult;
use crate::startup::AppState;
use axum::extract::State;

/// Alive: answers while the process serves.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "`ok`", content_type = "text/plain", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the store takes writes.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "`ready`", content_type = "text/plain", body = String)))]
pub async fn readyz(State(state): State<AppState>) -> ApiResult<&'static str> {
    state.engine.ready().await?;
    Ok("ready")
}

/// `GET /metrics`: every metric in the Prometheus text format (the key is needed unless
/// the server runs with `--metrics-public`).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4.", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.engine.metrics_text(),
    )
}
