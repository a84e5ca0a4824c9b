//! Maintenance windows: `GET|POST /api/maintenance`, `GET|PUT|DELETE
//! /api/maintenance/{id}` with `{id, name, schedule?, duration?, start?, end?, timezone,
//! jobs?}`.

use super::{ApiJson, ApiResult};
use crate::startup::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use engine::{Window, WindowSpec};

pub async fn list(State(state): State<AppState>) -> Json<Vec<Window>> {
    Json(state.engine.list_windows())
}

pub async fn create(
    State(state): State<AppState>,
    ApiJson(spec): ApiJson<WindowSpec>,
) -> ApiResult<(StatusCode, Json<Window>)> {
    Ok((
        StatusCode::CREATED,
        Json(state.engine.create_window(spec).await?),
    ))
}

pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Window>> {
    Ok(Json(state.engine.get_window(&id)?))
}

pub async fn replace(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(spec): ApiJson<WindowSpec>,
) -> ApiResult<Json<Window>> {
    Ok(Json(state.engine.update_window(&id, spec).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.engine.delete_window(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
