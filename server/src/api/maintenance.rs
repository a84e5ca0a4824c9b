//! Maintenance windows: `GET|POST /api/maintenance`, `GET|PUT|DELETE
//! /api/maintenance/{id}` with `{id, name, schedule?, duration?, start?, end?, timezone,
//! jobs?}`.

use super::{ApiJson, ApiResult};
use crate::startup::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use engine::{Window, WindowSpec};

/// Every maintenance window.
#[utoipa::path(get, path = "/api/maintenance", tag = "maintenance",
    responses((status = 200, description = "Every window.", body = Vec<Window>)))]
pub async fn list(State(state): State<AppState>) -> Json<Vec<Window>> {
    Json(state.engine.list_windows())
}

/// Adds a window: recurring (`schedule` and `duration`) or one-off (`start` and `end`).
#[utoipa::path(post, path = "/api/maintenance", tag = "maintenance", request_body = WindowSpec,
    responses((status = 201, description = "The window added.", body = Window),
        (status = 409, description = "A window has that id.", body = super::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    ApiJson(spec): ApiJson<WindowSpec>,
) -> ApiResult<(StatusCode, Json<Window>)> {
    Ok((
        StatusCode::CREATED,
        Json(state.engine.create_window(spec).await?),
    ))
}

/// One window.
#[utoipa::path(get, path = "/api/maintenance/{id}", tag = "maintenance", params(("id" = String, Path, description = "The window's id.")),
    responses((status = 200, description = "The window.", body = Window)))]
pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Window>> {
    Ok(Json(state.engine.get_window(&id)?))
}

/// Replaces a window.
#[utoipa::path(put, path = "/api/maintenance/{id}", tag = "maintenance", params(("id" = String, Path, description = "The window's id.")),
    request_body = WindowSpec,
    responses((status = 200, description = "The window as replaced.", body = Window)))]
pub async fn replace(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(spec): ApiJson<WindowSpec>,
) -> ApiResult<Json<Window>> {
    Ok(Json(state.engine.update_window(&id, spec).await?))
}

/// Deletes a window.
#[utoipa::path(delete, path = "/api/maintenance/{id}", tag = "maintenance", params(("id" = String, Path, description = "The window's id.")),
    responses((status = 204, description = "Deleted.")))]
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.engine.delete_window(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
