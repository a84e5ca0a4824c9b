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
#[utoipa::path(get, path = "/api/jobs", tag = "jobs",
    responses((status = 200, description = "Every job.", body = Vec<Job>)))]
pub async fn list_jobs(State(state): State<AppState>) -> ApiResult<Json<Vec<Job>>> {
    Ok(Json(
        state.engine.with_drift(state.engine.list_jobs()).await?,
    ))
}

/// Every job's definition (secrets masked), as `apply` takes it back.
#[utoipa::path(get, path = "/api/jobs/export", tag = "jobs",
    responses((status = 200, description = "Every job's definition.", body = JobsFile)))]
pub async fn export_jobs(State(state): State<AppState>) -> Json<JobsFile> {
    Json(JobsFile {
        jobs: state.engine.export_jobs(),
    })
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ApplyQuery {
    /// Only say what would change.
    #[serde(default)]
    dry_run: bool,
    /// Also delete the jobs the file does not name.
    #[serde(default)]
    prune: bool,
}

/// Job definitions, as `export` writes them and `apply` takes them.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct JobsFile {
    #[schema(value_type = Vec<JobSpec>)]
    jobs: Vec<serde_json::Value>,
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyBody {
    jobs: Vec<JobSpec>,
}

/// `POST /api/jobs/apply[?dry_run=true][&prune=true]` with `{"jobs": [...]}`: what
/// changes (added, changed field by field, removed), applied in one transaction unless
/// dry.
#[utoipa::path(post, path = "/api/jobs/apply", tag = "jobs", params(ApplyQuery),
    request_body = ApplyBody,
    responses((status = 200, description = "What changed (or, dry, would change).", body = engine::apply::Applied)))]
pub async fn apply_jobs(
    State(state): State<AppState>,
    Query(q): Query<ApplyQuery>,
    ApiJson(body): ApiJson<ApplyBody>,
) -> ApiResult<Json<engine::apply::Applied>> {
    Ok(Json(
        state
            .engine
            .apply_jobs(body.jobs, q.prune, q.dry_run)
            .await?,
    ))
}

/// Creates a job (every field but `id` has a default).
#[utoipa::path(post, path = "/api/jobs", tag = "jobs", request_body = JobSpec,
    responses((status = 201, description = "The job created.", body = Job),
        (status = 409, description = "A job has that id.", body = super::ErrorBody)))]
pub async fn create_job(
    State(state): State<AppState>,
    ApiJson(spec): ApiJson<JobSpec>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    Ok((
        StatusCode::CREATED,
        Json(state.engine.create_job(spec).await?),
    ))
}

/// One job.
#[utoipa::path(get, path = "/api/jobs/{id}", tag = "jobs", params(("id" = String, Path, description = "The job's id.")),
    responses((status = 200, description = "The job.", body = Job)))]
pub async fn get_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Job>> {
    let job = state.engine.get_job(&id)?;
    let mut marked = state.engine.with_drift(vec![job]).await?;
    Ok(Json(marked.remove(0)))
}

/// Replaces a job: fields left out take their defaults.
#[utoipa::path(put, path = "/api/jobs/{id}", tag = "jobs", params(("id" = String, Path, description = "The job's id.")), request_body = JobSpec,
    responses((status = 200, description = "The job as replaced.", body = Job)))]
pub async fn replace_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(spec): ApiJson<JobSpec>,
) -> ApiResult<Json<Job>> {
    Ok(Json(state.engine.update_job(&id, spec, false).await?))
}

/// Changes the fields given; the others are kept.
#[utoipa::path(patch, path = "/api/jobs/{id}", tag = "jobs", params(("id" = String, Path, description = "The job's id.")), request_body = JobSpec,
    responses((status = 200, description = "The job as changed.", body = Job)))]
pub async fn patch_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(spec): ApiJson<JobSpec>,
) -> ApiResult<Json<Job>> {
    Ok(Json(state.engine.update_job(&id, spec, true).await?))
}

/// Deletes a job (its run history stays).
#[utoipa::path(delete, path = "/api/jobs/{id}", tag = "jobs", params(("id" = String, Path, description = "The job's id.")),
    responses((status = 204, description = "Deleted.")))]
pub async fn delete_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.engine.delete_job(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Wait (up to 30 s) until the run has ended.
    #[serde(default)]
    pub wait: bool,
}

/// A run started: `{"run"}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Started {
    pub run: engine::Run,
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
        return Ok((StatusCode::ACCEPTED, Json(Started { run })).into_response());
    }
    let run = state.engine.wait_run(run.id, engine::MAX_WAIT).await?;
    let status = if run.status.is_finished() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(Started { run })).into_response())
}

/// The optional body of run now: params merged over the job's for this run only.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    /// Merged over the job's params, for this run only.
    params: Option<serde_json::Value>,
}

/// Runs a job now, with the job's params or with overrides.
#[utoipa::path(post, path = "/api/jobs/{id}/run", tag = "jobs", params(("id" = String, Path, description = "The job's id."), WaitQuery),
    request_body(content = Option<RunBody>, description = "Optional: params for this run only."),
    responses(
        (status = 202, description = "Started (or, with `wait`, not ended within 30 s).", body = Started),
        (status = 200, description = "With `wait`: the run, ended.", body = Started),
        (status = 409, description = "The job's overlap policy refused the run.", body = super::ErrorBody)))]
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
#[utoipa::path(post, path = "/api/jobs/{id}/pause", tag = "jobs", params(("id" = String, Path, description = "The job's id.")), request_body = PauseRequest,
    responses((status = 200, description = "The job, paused.", body = Job)))]
pub async fn pause_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Extension(Actor(by)): Extension<Actor>,
    ApiJson(req): ApiJson<PauseRequest>,
) -> ApiResult<Json<Job>> {
    Ok(Json(state.engine.pause_job(&id, &req, &by).await?))
}

/// `POST /api/jobs/{id}/resume`: the job, its pause ended (409 when it was not paused).
#[utoipa::path(post, path = "/api/jobs/{id}/resume", tag = "jobs", params(("id" = String, Path, description = "The job's id.")),
    responses((status = 200, description = "The job, resumed.", body = Job),
        (status = 409, description = "It was not paused.", body = super::ErrorBody)))]
pub async fn resume_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Extension(Actor(by)): Extension<Actor>,
) -> ApiResult<Json<Job>> {
    Ok(Json(state.engine.resume_job(&id, &by).await?))
}

/// `POST /api/self-heal` (kept from the seed): runs the self-heal job now.
#[utoipa::path(post, path = "/api/self-heal", tag = "jobs", params(WaitQuery),
    responses(
        (status = 202, description = "Started.", body = Started),
        (status = 200, description = "With `wait`: the run, ended.", body = Started)))]
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
#[utoipa::path(post, path = "/api/exec/brief", tag = "jobs", params(WaitQuery),
    responses(
        (status = 202, description = "Started.", body = Started),
        (status = 200, description = "With `wait`: the run, ended.", body = Started)))]
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
