//! The scheduler's controls, kept from the seed: `GET /api/automations/status`, `POST
//! /api/automations/start|stop|restart`, each answering the status after the change; and
//! `GET /api/leaders`, who led (several nodes), newest term first.

use super::ApiResult;
use crate::startup::AppState;
use axum::extract::State;
use axum::Json;
use engine::Status;

pub async fn status(State(state): State<AppState>) -> Json<Status> {
    Json(state.engine.status())
}

pub async fn start(State(state): State<AppState>) -> ApiResult<Json<Status>> {
    Ok(Json(state.engine.start().await?))
}

pub async fn stop(State(state): State<AppState>) -> ApiResult<Json<Status>> {
    Ok(Json(state.engine.stop().await?))
}

/// `GET /api/leaders`: `{"leaders": [{epoch, holder, acquired_at, ended_at, ended_how}]}`,
/// the newest 50 terms (empty on SQLite: one node leads for good).
pub async fn leaders(State(state): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    let terms = state.engine.leader_history(50).await?;
    Ok(Json(serde_json::json!({ "leaders": terms })))
}

pub async fn restart(State(state): State<AppState>) -> ApiResult<Json<Status>> {
    Ok(Json(state.engine.restart().await?))
}
