//! The run use cases the edges call: run now, read a run with its log, page through the
//! history, wait for a run, follow its log live, end stuck runs, prune old history.

use crate::error::{EngineError, Result};
use crate::live_log::Follow;
use crate::model::{Run, RunQuery, RunStatus, Trigger, ValidationError};
use crate::runner::{self, RunRequest};
use crate::Engine;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// Longest a caller may wait for a run (`?wait=true`).
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// Most runs on one page of the history.
pub const MAX_PAGE: u32 = 500;

/// A page of the run history as a caller asks for it: raw filters, checked here once for
/// every edge.
#[derive(Debug, Clone, Default)]
pub struct RunsRequest {
    pub job: Option<String>,
    /// A run status by name; empty means any.
    pub status: Option<String>,
    pub limit: u32,
    /// The cursor: only runs older than this id.
    pub before: Option<i64>,
    /// Only runs newer than this id.
    pub after: Option<i64>,
}

/// One page of runs, newest first, and the cursor of the next (older) page.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct RunsPage {
    pub runs: Vec<Run>,
    pub next: Option<i64>,
}

/// A run with its stored log.
#[derive(Debug, Clone, PartialEq)]
pub struct RunDetail {
    pub run: Run,
    pub log: String,
}

impl Engine {
    /// Starts a run of `job_id` now, whatever the scheduler's state.
    pub async fn run_now(&self, job_id: &str, trigger: Trigger) -> Result<Run> {
        self.run_with(job_id, trigger, None).await
    }

    /// Starts a run of `job_id` now with `overrides` merged over its params for this run
    /// only: each must name a param the job has, and the merged params must pass the
    /// kind's check (`Invalid` naming `params.<key>` otherwise; nothing is started).
    pub async fn run_with(
        &self,
        job_id: &str,
        trigger: Trigger,
        overrides: Option<serde_json::Value>,
    ) -> Result<Run> {
        let job = self.job(job_id)?;
        let params = match overrides {
            Some(o) => Some(self.check_overrides(&job, o)?),
            None => None,
        };
        let req = RunRequest {
            trigger,
            params,
            rerun_of: None,
        };
        Ok(runner::claim::run_now(self, job, req).await?.shown())
    }

    /// Starts an ended run again as a new run of its job, with the params it ran with
    /// (`trigger: rerun`, `rerun_of` the original). `Conflict` while it is still queued or
    /// running.
    pub async fn rerun(&self, id: i64) -> Result<Run> {
        let original = self.stored_run(id).await?;
        if !original.status.is_finished() {
            return Err(EngineError::Conflict(format!(
                "run {id} is still {}; cancel it or wait for it to end",
                original.status.as_str()
            )));
        }
        let job = self.job(&original.job_id)?;
        let req = RunRequest {
            trigger: Trigger::Rerun,
            params: original.params,
            rerun_of: Some(id),
        };
        Ok(runner::claim::run_now(self, job, req).await?.shown())
    }

    /// Overrides checked against the job: an object, each key a param the job has, the
    /// merged params valid for its kind; secrets sent back masked keep their values.
    fn check_overrides(
        &self,
        job: &crate::model::Job,
        o: serde_json::Value,
    ) -> Result<serde_json::Value> {
        let invalid = |field: String, message: String| -> EngineError {
            ValidationError { field, message }.into()
        };
        let Some(map) = o.as_object() else {
            return Err(invalid(
                "params".into(),
                "must be a JSON object of the params to override".into(),
            ));
        };
        let known = job.params.as_object();
        for key in map.keys() {
            if !known.is_some_and(|k| k.contains_key(key)) {
                let has: Vec<&str> = known
                    .map(|k| k.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                return Err(invalid(
                    format!("params.{key}"),
                    format!(
                        "job {:?} has no param {key:?} to override (it has: {})",
                        job.id,
                        if has.is_empty() {
                            "none".to_string()
                        } else {
                            has.join(", ")
                        }
                    ),
                ));
            }
        }
        let o = crate::secrets::restore_params(o, &job.params);
        let merged = runner::with_overrides(job.clone(), Some(&o));
        self.inner.kinds.check(&job.kind, &merged.params)?;
        Ok(o)
    }

    /// Cancels a queued or running run: it ends `cancelled` saying by whom and why, and
    /// its work stops wherever it executes. `NotFound` for no such run, `Conflict` (saying
    /// its status) once it has ended.
    pub async fn cancel_run(&self, id: i64, reason: Option<&str>, by: &str) -> Result<Run> {
        let run = self.stored_run(id).await?;
        let ended = |status: RunStatus| {
            EngineError::Conflict(format!("run {id} has already ended: {}", status.as_str()))
        };
        if run.status.is_finished() {
            return Err(ended(run.status));
        }
        // Optional here; when given, held to the same rules as every reason.
        let reason = match reason.map(str::trim).filter(|r| !r.is_empty()) {
            Some(r) => Some(crate::model::pause::valid_reason(Some(r))?),
            None => None,
        };
        let error = match reason {
            Some(r) => format!("cancelled by {by}: {r}"),
            None => format!("cancelled by {by}"),
        };
        if !self.cancel(id, &error).await? {
            return Err(ended(self.stored_run(id).await?.status));
        }
        self.event(
            "run_cancelled",
            serde_json::json!({ "run": id, "job": run.job_id, "by": by }),
        );
        self.get_run(id).await
    }

    /// Ends a queued or running run as `cancelled` with `error` and stops its work; false
    /// when it had already ended (its own end then stands).
    pub(crate) async fn cancel(&self, id: i64, error: &str) -> Result<bool> {
        let cancelled = self.inner.store.cancel_run(id, error, self.now()).await?;
        if cancelled {
            // Here at once; on other nodes when they hear of it (several nodes).
            runner::stop(self, id);
            self.inner.notifier.run_ended();
        }
        Ok(cancelled)
    }

    /// A run as stored: params in clear (for running it again).
    async fn stored_run(&self, id: i64) -> Result<Run> {
        self.inner
            .store
            .get_run(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no run with id {id}")))
    }

    /// One run as callers see it: its reruns listed, secret params masked.
    pub async fn get_run(&self, id: i64) -> Result<Run> {
        let mut run = self.stored_run(id).await?.shown();
        run.reruns = Some(self.inner.store.reruns_of(id).await?);
        Ok(run)
    }

    /// A run and its stored log (empty while it runs: follow it live with
    /// [`Engine::follow_log`]).
    pub async fn run_detail(&self, id: i64) -> Result<RunDetail> {
        let run = self.get_run(id).await?;
        let log = self.inner.store.run_log(id).await?.unwrap_or_default();
        Ok(RunDetail { run, log })
    }

    /// Runs newest first, filtered as asked; the filters are checked here (an unknown
    /// status, a limit out of 1-500: `Invalid` naming the field).
    pub async fn runs_page(&self, req: RunsRequest) -> Result<RunsPage> {
        let q = self.run_query(req)?;
        let runs = self.list_runs(&q).await?;
        let next = (runs.len() == q.limit as usize)
            .then(|| runs.last().map(|r| r.id))
            .flatten();
        Ok(RunsPage { runs, next })
    }

    /// A runs filter checked once for every edge and use.
    fn run_query(&self, req: RunsRequest) -> Result<RunQuery> {
        let status = match req.status.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => Some(RunStatus::parse(s).ok_or_else(|| ValidationError {
                field: "status".into(),
                message: format!("{s:?} is not a run status (queued, running, succeeded, failed, timed_out, cancelled, interrupted, skipped)"),
            })?),
            None => None,
        };
        if !(1..=MAX_PAGE).contains(&req.limit) {
            return Err(ValidationError {
                field: "limit".into(),
                message: format!("{} is out of range 1-{MAX_PAGE}", req.limit),
            }
            .into());
        }
        if let Some(job) = req.job.as_deref().filter(|j| !j.is_empty()) {
            crate::model::validate_id(job).map_err(|e| ValidationError {
                field: "job".into(),
                message: e.message,
            })?;
        }
        Ok(RunQuery {
            job: req.job.filter(|j| !j.is_empty()),
            status,
            before: req.before,
            after: req.after,
            limit: req.limit,
        })
    }

    /// Runs matching `q`, newest first (at most 500), secret params masked.
    pub async fn list_runs(&self, q: &RunQuery) -> Result<Vec<Run>> {
        let runs = self.inner.store.list_runs(q).await?;
        Ok(runs.into_iter().map(Run::shown).collect())
    }

    /// Cancels (`action = Cancel`) every queued or running run matching the filter, or
    /// reruns every ended one (`Rerun`), at most [`MAX_PAGE`] of them; with `dry_run`,
    /// only answers which runs that would be (to show the count and confirm first). A
    /// filter that does not check out changes nothing.
    pub async fn bulk(
        &self,
        action: Bulk,
        req: RunsRequest,
        dry_run: bool,
        by: &str,
    ) -> Result<BulkDone> {
        let mut req = req;
        req.limit = MAX_PAGE;
        let q = self.run_query(req)?;
        let runs = self.inner.store.list_runs(&q).await?;
        let more = runs.len() == MAX_PAGE as usize;
        let chosen: Vec<Run> = runs
            .into_iter()
            .filter(|r| match action {
                Bulk::Cancel => !r.status.is_finished(),
                Bulk::Rerun => r.status.is_finished(),
            })
            .collect();
        if dry_run {
            return Ok(BulkDone {
                count: chosen.len(),
                runs: chosen.into_iter().map(Run::shown).collect(),
                more,
            });
        }
        let mut done = Vec::new();
        for run in chosen {
            let acted = match action {
                Bulk::Cancel => self
                    .cancel(run.id, &format!("cancelled by {by} (bulk)"))
                    .await?
                    .then_some(run),
                Bulk::Rerun => Some(self.rerun(run.id).await?),
            };
            done.extend(acted);
        }
        if action == Bulk::Cancel && !done.is_empty() {
            self.event(
                "runs_cancelled",
                serde_json::json!({ "count": done.len(), "by": by }),
            );
        }
        Ok(BulkDone {
            count: done.len(),
            runs: done.into_iter().map(Run::shown).collect(),
            more,
        })
    }

    /// Waits until run `id` has finished or `within` (at most [`MAX_WAIT`]) has passed;
    /// returns it either way.
    pub async fn wait_run(&self, id: i64, within: Duration) -> Result<Run> {
        let mut ended = self.inner.notifier.ended();
        let deadline = tokio::time::Instant::now() + within.min(MAX_WAIT);
        loop {
            let run = self.stored_run(id).await?.shown();
            if run.status.is_finished() {
                return Ok(run);
            }
            if tokio::time::timeout_at(deadline, ended.changed())
                .await
                .is_err()
            {
                return Ok(run);
            }
        }
    }

    /// Run `id`'s log: the text so far and, while the run is in flight on this node, its
    /// new chunks as they are written.
    pub async fn follow_log(&self, id: i64) -> Result<Follow> {
        if let Some(follow) = self.inner.runner.logs.follow(id) {
            return Ok(follow);
        }
        // Ended (or never started here): the stored log is the whole of it.
        let so_far = self
            .inner
            .store
            .run_log(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no run with id {id}")))?;
        Ok(Follow { so_far, live: None })
    }

    /// Runs still running `grace` past their job's timeout.
    pub async fn stuck_runs(&self, grace: Duration) -> Result<Vec<Run>> {
        self.inner.store.stuck_runs(self.now(), grace).await
    }

    /// Deletes ended runs, audit entries and alert history older than `cutoff` (keeping the newest
    /// `keep_last` runs of every job) and event-log files dated before it; reclaims the
    /// space when runs went.
    pub async fn prune_history(&self, cutoff: DateTime<Utc>, keep_last: u32) -> Result<Pruned> {
        let store = &self.inner.store;
        let runs = store.delete_old_runs(cutoff, keep_last).await?;
        let audit_entries = store.delete_old_audit(cutoff).await?;
        let alerts = store.delete_old_alerts(cutoff).await?;
        let log_files = crate::events::prune(
            &self.inner.config.data_dir.join("logs"),
            cutoff.date_naive(),
        )
        .map_err(|source| EngineError::EventLog {
            path: self.inner.config.data_dir.join("logs"),
            source,
        })?;
        if runs > 0 {
            store.reclaim_space().await?;
        }
        Ok(Pruned {
            runs,
            audit_entries,
            alerts,
            log_files,
        })
    }
}

/// What a bulk action does to the runs a filter matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bulk {
    Cancel,
    Rerun,
}

/// What a bulk action did (or, dry, would do).
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct BulkDone {
    pub count: usize,
    /// The runs acted on (cancelled), or started (reruns).
    pub runs: Vec<Run>,
    /// More runs matched than one action takes ([`MAX_PAGE`]): do it again.
    pub more: bool,
}

/// What [`Engine::prune_history`] deleted.
#[derive(Debug, Clone, PartialEq)]
pub struct Pruned {
    pub runs: u64,
    pub audit_entries: u64,
    /// Pings, closed incidents and their deliveries.
    pub alerts: u64,
    pub log_files: Vec<String>,
}
