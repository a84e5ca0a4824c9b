//! The scheduler's controls, kept from the seed: `GET /api/automations/status`, `POST
//! /api/automations/start|stop|restart`, each answering the status after the change (a
//! stop with `{reason, until? | for?}` pauses everything instead: slots are recorded
//! skipped, and start resumes); and `GET /api/leaders`, who led (several nodes), newest
//! term first.

use super::ApiResult;
use crate::auth::Actor;
use crate::startup::AppState;
use axum::extract::State;
use axum::{Extension, Json};
use engine::{PauseRequest, Status};

/// The scheduler's state: running, stopped, stalled or paused, its heartbeat, the next
/// runs, the nodes.
#[utoipa::path(get, path = "/api/automations/status", tag = "scheduler",
    responses((status = 200, description = "The scheduler's status.", body = Status)))]
pub async fn status(State(state): State<AppState>) -> Json<Status> {
    Json(state.engine.status())
}

/// Starts the scheduler, ending a pause of everything if one is in force.
#[utoipa::path(post, path = "/api/automations/start", tag = "scheduler",
    responses((status = 200, description = "The status after starting.", body = Status)))]
pub async fn start(
    State(state): State<AppState>,
    Extension(Actor(by)): Extension<Actor>,
) -> ApiResult<Json<Status>> {
    state.engine.resume_all(&by).await?;
    Ok(Json(state.engine.start().await?))
}

/// Stops the scheduler; with a body `{reason, until? | for?, cancel_running?}`, pauses
/// everything instead (the status then says `paused`).
#[utoipa::path(post, path = "/api/automations/stop", tag = "scheduler",
    request_body(content = Option<PauseRequest>, description = "Optional: pause everything instead of stopping."),
    responses((status = 200, description = "The status after stopping (or pausing).", body = Status)))]
pub async fn stop(
    State(state): State<AppState>,
    Extension(Actor(by)): Extension<Actor>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Status>> {
    match super::optional_json::<PauseRequest>(&body)? {
        Some(req) => {
            state.engine.pause_all(&req, &by).await?;
            Ok(Json(state.engine.status()))
        }
        None => Ok(Json(state.engine.stop().await?)),
    }
}

/// `GET /api/leaders`: `{"leaders": [{epoch, holder, acquired_at, ended_at, ended_how}]}`,
/// the newest 50 terms (empty on SQLite: one node leads for good).
#[utoipa::path(get, path = "/api/leaders", tag = "scheduler",
    responses((status = 200, description = "The newest 50 terms, newest first.", body = Leaders)))]
pub async fn leaders(State(state): State<AppState>) -> ApiResult<Json<Leaders>> {
    let terms = state.engine.leader_history(50).await?;
    Ok(Json(Leaders { leaders: terms }))
}

/// Who led, newest term first.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Leaders {
    pub leaders: Vec<engine::LeaderTerm>,
}

/// Stops and starts the scheduler's loop.
#[utoipa::path(post, path = "/api/automations/restart", tag = "scheduler",
    responses((status = 200, description = "The status after restarting.", body = Status)))]
pub async fn restart(State(state): State<AppState>) -> ApiResult<Json<Status>> {
    Ok(Json(state.engine.restart().await?))
}
