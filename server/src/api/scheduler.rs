//! The scheduler's controls, kept from the seed: `GET /api/automations/status`, `POST
//! /api/automations/start|stop|restart`, each answering the status after the change.

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

pub async fn restart(State(state): State<AppState>) -> ApiResult<Json<Status>> {
    Ok(Json(state.engine.restart().await?))
}
