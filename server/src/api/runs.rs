//! Runs: `GET /api/runs?job=&status=&limit=&before=&after=` (newest first, with the next
//! page's cursor), `GET /api/runs/{id}[?wait=true]`, cancel and rerun one run or every
//! run a filter matches; and `GET /api/schedule/preview`.

use super::ApiResult;
use crate::auth::Actor;
use crate::startup::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use engine::{Run, RunsPage, RunsRequest};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct RunsQuery {
    job: Option<String>,
    status: Option<String>,
    limit: Option<u32>,
    before: Option<i64>,
    after: Option<i64>,
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
            after: q.after,
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
    /// The job the preview is for: slots its pause or a maintenance window swallows say so.
    job: Option<String>,
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
        q.job.as_deref(),
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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    reason: Option<String>,
}

/// `POST /api/runs/{id}/cancel` `{reason?}`: the run, ended `cancelled` (its work
/// stopped); 409 saying its status once it has ended, 404 for no such run.
pub async fn cancel_run(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Extension(Actor(by)): Extension<Actor>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Run>> {
    let body: CancelBody = super::optional_json(&body)?.unwrap_or_default();
    Ok(Json(
        state
            .engine
            .cancel_run(id, body.reason.as_deref(), &by)
            .await?,
    ))
}

/// `POST /api/runs/{id}/rerun`: `202 {"run"}`, a new run with the same params (`trigger:
/// rerun`, `rerun_of`); 409 while the original is still queued or running.
pub async fn rerun_run(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let run = state.engine.rerun(id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "run": run })),
    ))
}

/// The runs-page filter a bulk action takes, and whether only to count.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BulkBody {
    job: Option<String>,
    status: Option<String>,
    before: Option<i64>,
    after: Option<i64>,
    #[serde(default)]
    dry_run: bool,
}

async fn bulk(
    state: &AppState,
    action: engine::Bulk,
    by: &str,
    body: &[u8],
) -> ApiResult<Json<engine::BulkDone>> {
    let b: BulkBody = super::optional_json(body)?.unwrap_or_default();
    let req = RunsRequest {
        job: b.job,
        status: b.status,
        limit: engine::runs::MAX_PAGE,
        before: b.before,
        after: b.after,
    };
    Ok(Json(state.engine.bulk(action, req, b.dry_run, by).await?))
}

/// `POST /api/runs/cancel` `{job?, status?, before?, after?, dry_run?}`: cancels every
/// queued or running run the filter matches; `{count, runs, more}`.
pub async fn bulk_cancel(
    State(state): State<AppState>,
    Extension(Actor(by)): Extension<Actor>,
    body: axum::body::Bytes,
) -> ApiResult<Json<engine::BulkDone>> {
    bulk(&state, engine::Bulk::Cancel, &by, &body).await
}

/// `POST /api/runs/rerun` with the same filter: reruns every ended run it matches.
pub async fn bulk_rerun(
    State(state): State<AppState>,
    Extension(Actor(by)): Extension<Actor>,
    body: axum::body::Bytes,
) -> ApiResult<Json<engine::BulkDone>> {
    bulk(&state, engine::Bulk::Rerun, &by, &body).await
}
