//! Runs: `GET /api/runs?job=&status=&limit=&before=` (newest first, with the next page's
//! cursor), `GET /api/runs/{id}[?wait=true]`; and `GET /api/schedule/preview`.

use super::ApiResult;
use crate::startup::AppState;
use axum::extract::{Path, Query, State};
use axum::Json;
use engine::{Run, RunsPage, RunsRequest};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct RunsQuery {
    job: Option<String>,
    status: Option<String>,
    limit: Option<u32>,
    before: Option<i64>,
}

pub async fn list_runs(
    State(state): State<AppState>,
    Query(q): Query<RunsQuery>,
) -> ApiResult<Json<RunsPage>> {
    let page = state
        .engine
        .runs_page(RunsRequest {
            job: q.job,
            status: q.status,
            limit: q.limit.unwrap_or(50),
            before: q.before,
        })
        .await?;
    Ok(Json(page))
}

/// `GET /api/runs/{id}[?wait=true]`: the run; with `wait`, once it has ended (up to 30 s;
/// then as it is), on whichever node it executes.
pub async fn get_run(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<super::jobs::WaitQuery>,
) -> ApiResult<Json<Run>> {
    Ok(Json(if q.wait {
        state.engine.wait_run(id, engine::MAX_WAIT).await?
    } else {
        state.engine.get_run(id).await?
    }))
}

#[derive(Deserialize)]
pub struct PreviewQuery {
    schedule: String,
    #[serde(default)]
    timezone: String,
    from: Option<String>,
    count: Option<usize>,
}

pub async fn schedule_preview(
    State(state): State<AppState>,
    Query(q): Query<PreviewQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let preview = state.engine.preview_schedule(
        &q.schedule,
        &q.timezone,
        q.from.as_deref(),
        q.count.unwrap_or(5),
    )?;
    let times: Vec<String> = preview
        .slots
        .iter()
        .map(|s| s.at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .collect();
    Ok(Json(serde_json::json!({
        "description": preview.description,
        "times": times,
        "slots": preview.slots,
    })))
}
