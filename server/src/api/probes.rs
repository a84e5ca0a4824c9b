//! Probes for load balancers and supervisors: alive, and ready (the store takes writes).

use super::ApiResult;
use crate::startup::AppState;
use axum::extract::State;

pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the store takes writes.
pub async fn readyz(State(state): State<AppState>) -> ApiResult<&'static str> {
    state.engine.ready().await?;
    Ok("ready")
}
