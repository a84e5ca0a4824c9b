//! Jobs: `GET|POST /api/jobs`, `GET|PUT|PATCH|DELETE /api/jobs/{id}`, `POST
//! /api/jobs/{id}/run[?wait=true]` (with `{"params": {…}}` overrides), `POST
//! /api/jobs/{id}/pause|resume`, and the seed's `POST /api/self-heal` and `POST
//! /api/exec/brief`.

use super::{ApiJson, ApiResult};
use crate::auth::{self, Actor};
use crate::startup::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use engine::{Job, JobSpec, PauseRequest, Trigger};
use serde::Deserialize;

/// Every job, each saying whether it was applied from a file and has drifted since.
pub async fn list_jobs(State(state): State<AppState>) -> ApiResult<Json<Vec<Job>>> {
    Ok(Json(
        state.engine.with_drift(state.engine.list_jobs()).await?,
    ))
}

/// `GET /api/jobs/export`: every job's definition (secrets masked), as `apply` takes it.
pub async fn export_jobs(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "jobs": state.engine.export_jobs() }))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyQuery {
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    prune: bool,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyBody {
    jobs: Vec<engine::JobSpec>,
}

/// `POST /api/jobs/apply[?dry_run=true][&prune=true]` with `{"jobs": [...]}`: what
/// changes (added, changed field by field, removed), applied in one transaction unless
/// dry.
pub async fn apply_jobs(
    State(state): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<ApplyQuery>,
    ApiJson(body): ApiJson<ApplyBody>,
) -> ApiResult<Json<engine::apply::Applied>> {
    Ok(Json(
        state
            .engine
            .apply_jobs(body.jobs, q.prune, q.dry_run)
            .await?,
    ))
}

pub async fn create_job(
    State(state): State<AppState>,
    ApiJson(spec): ApiJson<JobSpec>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    Ok((
        StatusCode::CREATED,
        Json(state.engine.create_job(spec).await?),
    ))
}

pub async fn get_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Job>> {
    let job = state.engine.get_job(&id)?;
    let mut marked = state.engine.with_drift(vec![job]).await?;
    Ok(Json(marked.remove(0)))
}

pub async fn replace_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(spec): ApiJson<JobSpec>,
) -> ApiResult<Json<Job>> {
    Ok(Json(state.engine.update_job(&id, spec, false).await?))
}

pub async fn patch_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(spec): ApiJson<JobSpec>,
) -> ApiResult<Json<Job>> {
    Ok(Json(state.engine.update_job(&id, spec, true).await?))
}

pub async fn delete_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.engine.delete_job(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct WaitQuery {
    #[serde(default)]
    pub wait: bool,
}

/// Who asked for a manual run: the CLI says so in a header; the key means a script; a
/// session means the dashboard.
fn trigger_of(headers: &HeaderMap) -> Trigger {
    if headers
        .get("x-echopilot-client")
        .is_some_and(|v| v == "cli")
    {
        Trigger::Cli
    } else if headers.contains_key(auth::KEY_HEADER) {
        Trigger::Api
    } else {
        Trigger::Manual
    }
}

/// Starts `job` now: `202 {"run"}`, or with `?wait=true` waits up to 30 s and answers
/// `200 {"run"}` once it finished (202 if it had not by then).
pub async fn run_job_now(
    state: &AppState,
    job: &str,
    trigger: Trigger,
    overrides: Option<serde_json::Value>,
    wait: bool,
) -> ApiResult<Response> {
    let run = state.engine.run_with(job, trigger, overrides).await?;
    if !wait {
        return Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "run": run })),
        )
            .into_response());
    }
    let run = state.engine.wait_run(run.id, engine::MAX_WAIT).await?;
    let status = if run.status.is_finished() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(serde_json::json!({ "run": run }))).into_response())
}

/// The optional body of run now: params merged over the job's for this run only.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    params: Option<serde_json::Value>,
}

pub async fn run_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let body: RunBody = super::optional_json(&body)?.unwrap_or_default();
    run_job_now(&state, &id, trigger_of(&headers), body.params, q.wait).await
}

/// `POST /api/jobs/{id}/pause` `{reason, until? | for?, cancel_running?}`: the job, with
/// `paused: {reason, by, since, until}`.
pub async fn pause_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Extension(Actor(by)): Extension<Actor>,
    ApiJson(req): ApiJson<PauseRequest>,
) -> ApiResult<Json<Job>> {
    Ok(Json(state.engine.pause_job(&id, &req, &by).await?))
}

/// `POST /api/jobs/{id}/resume`: the job, its pause ended (409 when it was not paused).
pub async fn resume_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Extension(Actor(by)): Extension<Actor>,
) -> ApiResult<Json<Job>> {
    Ok(Json(state.engine.resume_job(&id, &by).await?))
}

/// `POST /api/self-heal` (kept from the seed): runs the self-heal job now.
pub async fn self_heal(
    State(state): State<AppState>,
    Query(q): Query<WaitQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    run_job_now(
        &state,
        engine::automations::self_heal::KIND,
        trigger_of(&headers),
        None,
        q.wait,
    )
    .await
}

/// `POST /api/exec/brief` (kept from the seed): writes the CEO brief now.
pub async fn exec_brief(
    State(state): State<AppState>,
    Query(q): Query<WaitQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    run_job_now(
        &state,
        engine::automations::brief::KIND,
        trigger_of(&headers),
        None,
        q.wait,
    )
    .await
}
