//! The run use cases the edges call: run now, read a run with its log, page through the
//! history, wait for a run, follow its log live, end stuck runs, prune old history.

use crate::error::{EngineError, Result};
use crate::live_log::Follow;
use crate::model::{Run, RunQuery, RunStatus, Trigger, ValidationError};
use crate::runner;
use crate::store::RunEnd;
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
}

/// One page of runs, newest first, and the cursor of the next (older) page.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
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
        let job = self.job(job_id)?;
        runner::claim::run_now(self, job, trigger).await
    }

    pub async fn get_run(&self, id: i64) -> Result<Run> {
        self.inner
            .store
            .get_run(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no run with id {id}")))
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
        let q = RunQuery {
            job: req.job.filter(|j| !j.is_empty()),
            status,
            before: req.before,
            limit: req.limit,
        };
        let runs = self.inner.store.list_runs(&q).await?;
        let next = (runs.len() == req.limit as usize)
            .then(|| runs.last().map(|r| r.id))
            .flatten();
        Ok(RunsPage { runs, next })
    }

    /// Runs matching `q`, newest first (at most 500).
    pub async fn list_runs(&self, q: &RunQuery) -> Result<Vec<Run>> {
        self.inner.store.list_runs(q).await
    }

    /// Waits until run `id` has finished or `within` (at most [`MAX_WAIT`]) has passed;
    /// returns it either way.
    pub async fn wait_run(&self, id: i64, within: Duration) -> Result<Run> {
        let mut ended = self.inner.notifier.ended();
        let deadline = tokio::time::Instant::now() + within.min(MAX_WAIT);
        loop {
            let run = self.get_run(id).await?;
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

    /// Ends a running run as `cancelled` with `reason`; false when it had already ended
    /// (its own end then stands).
    pub async fn cancel_run(&self, id: i64, reason: &str) -> Result<bool> {
        let cancelled = self
            .inner
            .store
            .finish_run(&RunEnd {
                id,
                status: RunStatus::Cancelled,
                at: self.now(),
                output: None,
                error: Some(reason),
                log: None,
            })
            .await?;
        if cancelled {
            self.inner.notifier.run_ended();
        }
        Ok(cancelled)
    }

    /// Deletes ended runs and audit entries older than `cutoff` (keeping the newest
    /// `keep_last` runs of every job) and event-log files dated before it; reclaims the
    /// space when runs went.
    pub async fn prune_history(&self, cutoff: DateTime<Utc>, keep_last: u32) -> Result<Pruned> {
        let store = &self.inner.store;
        let runs = store.delete_old_runs(cutoff, keep_last).await?;
        let audit_entries = store.delete_old_audit(cutoff).await?;
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
            log_files,
        })
    }
}

/// What [`Engine::prune_history`] deleted.
#[derive(Debug, Clone, PartialEq)]
pub struct Pruned {
    pub runs: u64,
    pub audit_entries: u64,
    pub log_files: Vec<String>,
}
