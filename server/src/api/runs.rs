//! Runs: `GET /api/runs?job=&status=&limit=&before=&after=` (newest first, with the next
//! page's cursor), `GET /api/runs/{id}[?wait=true]`, cancel and rerun one run or every
//! run a filter matches; and `GET /api/schedule/preview`.

use super::ApiResult;
use crate::auth::Actor;
use crate::startup::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use engine::{BulkDone, Run, RunsPage, RunsRequest};
use serde::Deserialize;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// Only this job's runs.
    job: Option<String>,
    /// Only runs in this status (`failed`, `running`, ...).
    status: Option<String>,
    /// How many (default 50, at most 500).
    limit: Option<u32>,
    /// The cursor: only runs older than this id (the page's `next`).
    before: Option<i64>,
    /// Only runs newer than this id.
    after: Option<i64>,
}

/// Run history, newest first, a page at a time.
#[utoipa::path(get, path = "/api/runs", tag = "runs", params(RunsQuery),
    responses((status = 200, description = "A page of runs and the next page's cursor.", body = RunsPage)))]
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
#[utoipa::path(get, path = "/api/runs/{id}", tag = "runs", params(("id" = i64, Path, description = "The run's id."), super::jobs::WaitQuery),
    responses((status = 200, description = "The run.", body = Run)))]
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PreviewQuery {
    /// A cron expression (with seconds), or `@every 90s`.
    schedule: String,
    /// The zone it is read in (default UTC).
    #[serde(default)]
    timezone: String,
    /// From when (RFC 3339; default now).
    from: Option<String>,
    /// How many slots (default 5).
    count: Option<usize>,
    /// The job the preview is for: slots its pause or a maintenance window swallows say so.
    job: Option<String>,
}

/// A schedule's next slots, in words and in time.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Preview {
    /// The schedule in words.
    pub description: String,
    /// The slots' times, RFC 3339 in UTC.
    pub times: Vec<String>,
    pub slots: Vec<engine::PreviewSlot>,
}

/// The next slots of a schedule, before saving it.
#[utoipa::path(get, path = "/api/schedule/preview", tag = "runs", params(PreviewQuery),
    responses((status = 200, description = "The next slots.", body = Preview),
        (status = 422, description = "A schedule, zone or `from` to fix: `error.field` names it.", body = super::ErrorBody)))]
pub async fn schedule_preview(
    State(state): State<AppState>,
    Query(q): Query<PreviewQuery>,
) -> ApiResult<Json<Preview>> {
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
    Ok(Json(Preview {
        description: preview.description,
        times,
        slots: preview.slots,
    }))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    /// Recorded in the run's error: `cancelled by <who>: <why>`.
    reason: Option<String>,
}

/// `POST /api/runs/{id}/cancel` `{reason?}`: the run, ended `cancelled` (its work
/// stopped); 409 saying its status once it has ended, 404 for no such run.
#[utoipa::path(post, path = "/api/runs/{id}/cancel", tag = "runs", params(("id" = i64, Path, description = "The run's id.")),
    request_body(content = Option<CancelBody>, description = "Optional: why."),
    responses((status = 200, description = "The run, cancelled.", body = Run),
        (status = 409, description = "It has already ended.", body = super::ErrorBody)))]
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
#[utoipa::path(post, path = "/api/runs/{id}/rerun", tag = "runs", params(("id" = i64, Path, description = "The run's id.")),
    responses((status = 202, description = "The new run.", body = super::jobs::Started),
        (status = 409, description = "It has not ended yet.", body = super::ErrorBody)))]
pub async fn rerun_run(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<(StatusCode, Json<super::jobs::Started>)> {
    let run = state.engine.rerun(id).await?;
    Ok((StatusCode::ACCEPTED, Json(super::jobs::Started { run })))
}

/// The runs-page filter a bulk action takes, and whether only to count.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkBody {
    job: Option<String>,
    status: Option<String>,
    before: Option<i64>,
    after: Option<i64>,
    /// Only count what it would act on.
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
#[utoipa::path(post, path = "/api/runs/cancel", tag = "runs",
    request_body(content = Option<BulkBody>, description = "Optional: the filter (default: every queued or running run)."),
    responses((status = 200, description = "What was cancelled (or, dry, would be).", body = BulkDone)))]
pub async fn bulk_cancel(
    State(state): State<AppState>,
    Extension(Actor(by)): Extension<Actor>,
    body: axum::body::Bytes,
) -> ApiResult<Json<engine::BulkDone>> {
    bulk(&state, engine::Bulk::Cancel, &by, &body).await
}

/// `POST /api/runs/rerun` with the same filter: reruns every ended run it matches.
#[utoipa::path(post, path = "/api/runs/rerun", tag = "runs",
    request_body(content = Option<BulkBody>, description = "Optional: the filter."),
    responses((status = 200, description = "The reruns started (or, dry, that would be).", body = BulkDone)))]
pub async fn bulk_rerun(
    State(state): State<AppState>,
    Extension(Actor(by)): Extension<Actor>,
    body: axum::body::Bytes,
) -> ApiResult<Json<engine::BulkDone>> {
    bulk(&state, engine::Bulk::Rerun, &by, &body).await
}
