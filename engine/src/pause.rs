//! Pausing: one job, or everything, with a reason, by someone, until a moment or until
//! resumed. The pause lives in the store (compare-and-set, announced), so every node sees
//! it and whichever leads records the slots it swallows — `skipped`, their reason
//! beginning `paused:` — and resumes it when it ends, surviving restarts. On resume the
//! job's misfire policy decides whether one catch-up run happens (`run_once`: one, if any
//! slot was swallowed). Runs in flight finish unless the pause asks to cancel them.

use crate::error::{EngineError, Result};
use crate::model::{AuditEntry, Job, Misfire, Pause, PauseRequest, Schedule, Trigger};
use crate::runner::{self, RunRequest};
use crate::Engine;
use chrono::{DateTime, Utc};

/// Who resumes a pause that ended by itself.
const SCHEDULER: &str = "scheduler";

impl Engine {
    /// Pauses job `id` as asked by `by`; a pause in force is replaced (a new reason or
    /// end). `Invalid` naming the field for a request that does not check out (nothing
    /// changes), `NotFound` for no such job.
    pub async fn pause_job(&self, id: &str, req: &PauseRequest, by: &str) -> Result<Job> {
        let job = self.job(id)?;
        let pause = req.pause(by, self.now())?;
        self.swap_job_pause(&job, Some(&pause)).await?;
        self.event(
            "job_paused",
            serde_json::json!({ "job": id, "by": by, "reason": pause.reason, "until": pause.until }),
        );
        if req.cancel_running {
            self.cancel_runs_of(
                Some(id),
                &format!("cancelled by {by}: paused ({})", pause.reason),
            )
            .await?;
        }
        self.get_job(id)
    }

    /// Ends job `id`'s pause now; `Conflict` when it is not paused. Its misfire policy
    /// decides whether one catch-up run follows.
    pub async fn resume_job(&self, id: &str, by: &str) -> Result<Job> {
        let job = self.job(id)?;
        let Some(pause) = job.paused.clone() else {
            return Err(EngineError::Conflict(format!("job {id:?} is not paused")));
        };
        self.swap_job_pause(&job, None).await?;
        self.resumed(&job, &pause, by).await;
        self.get_job(id)
    }

    /// Pauses everything (`POST /api/automations/stop` with a reason): the scheduler keeps
    /// running and records every slot it swallows.
    pub async fn pause_all(&self, req: &PauseRequest, by: &str) -> Result<Pause> {
        let pause = req.pause(by, self.now())?;
        let current = self.scheduler_paused();
        let from = current.as_ref().map(Pause::to_text);
        if !self
            .inner
            .store
            .swap_scheduler_pause(from.as_deref(), Some(&pause.to_text()))
            .await?
        {
            self.follow_pause().await;
            return Err(EngineError::Conflict(
                "the scheduler's pause changed meanwhile; look again and retry".into(),
            ));
        }
        crate::scheduler::set_pause(self, Some(pause.clone()));
        self.event(
            "scheduler_paused",
            serde_json::json!({ "by": by, "reason": pause.reason, "until": pause.until }),
        );
        if req.cancel_running {
            self.cancel_runs_of(
                None,
                &format!("cancelled by {by}: paused ({})", pause.reason),
            )
            .await?;
        }
        Ok(pause)
    }

    /// Ends the scheduler-wide pause now, if there is one (true); each job's misfire
    /// policy decides whether one catch-up run follows.
    pub async fn resume_all(&self, by: &str) -> Result<bool> {
        let Some(pause) = self.scheduler_paused() else {
            return Ok(false);
        };
        if !self
            .inner
            .store
            .swap_scheduler_pause(Some(&pause.to_text()), None)
            .await?
        {
            self.follow_pause().await;
            return Ok(false);
        }
        crate::scheduler::set_pause(self, None);
        for job in self.inner.jobs.list() {
            if job.paused.is_none() {
                self.catch_up(&job, &pause).await;
            }
        }
        self.audit_resume(by, "scheduler", &pause).await;
        self.event("scheduler_resumed", serde_json::json!({ "by": by }));
        Ok(true)
    }

    /// The scheduler-wide pause in force, as this node knows it.
    pub fn scheduler_paused(&self) -> Option<Pause> {
        crate::scheduler::pause(self)
    }

    /// Re-reads the scheduler-wide pause (another node changed it).
    pub(crate) async fn follow_pause(&self) {
        match self.inner.store.scheduler_pause().await {
            Ok(text) => {
                crate::scheduler::set_pause(self, text.as_deref().and_then(Pause::from_text))
            }
            Err(e) => {
                tracing::warn!(error = %crate::error::chain(&e), "cannot read the scheduler's pause")
            }
        }
    }

    /// Replaces `job`'s pause in the store (only if it is still what this node knows) and
    /// here; `Conflict` when another change came first (the jobs are re-read).
    async fn swap_job_pause(&self, job: &Job, to: Option<&Pause>) -> Result<()> {
        let from = job.paused.as_ref().map(Pause::to_text);
        let to_text = to.map(Pause::to_text);
        let swapped = self
            .inner
            .store
            .swap_job_pause(&job.id, from.as_deref(), to_text.as_deref(), self.now())
            .await?;
        if !swapped {
            crate::jobs::reload(self).await;
            return Err(EngineError::Conflict(format!(
                "job {:?}'s pause changed meanwhile; look again and retry",
                job.id
            )));
        }
        self.inner.jobs.set_pause(&job.id, to.cloned());
        self.inner.notifier.jobs_changed();
        Ok(())
    }

    /// After a pause of `job` ended: its catch-up, the audit entry, the event.
    async fn resumed(&self, job: &Job, pause: &Pause, by: &str) {
        if self.scheduler_paused().is_none() {
            self.catch_up(job, pause).await;
        }
        self.audit_resume(by, &format!("job {}", job.id), pause)
            .await;
        self.event(
            "job_resumed",
            serde_json::json!({ "job": job.id, "by": by }),
        );
    }

    /// One catch-up run of `job` if its misfire policy is `run_once` and `pause`
    /// swallowed at least one of its slots.
    async fn catch_up(&self, job: &Job, pause: &Pause) {
        if !job.enabled || job.misfire != Misfire::RunOnce {
            return;
        }
        let Ok(schedule) = Schedule::parse(&job.schedule, &job.timezone) else {
            return;
        };
        let end = pause.until.map_or(self.now(), |u| u.min(self.now()));
        let swallowed = !schedule
            .slots_between(pause.since - chrono::Duration::milliseconds(1), end, 1)
            .is_empty();
        if !swallowed {
            return;
        }
        let Ok(job) = self.job(&job.id) else { return };
        if let Err(e) = runner::claim::run_now(self, job, RunRequest::new(Trigger::CatchUp)).await {
            tracing::error!(error = %crate::error::chain(&e), "cannot start the catch-up run after a pause");
        }
    }

    async fn audit_resume(&self, by: &str, target: &str, pause: &Pause) {
        let action = if by == SCHEDULER {
            "resume (the pause ended)"
        } else {
            "resume"
        };
        let entry = AuditEntry {
            at: self.now(),
            actor: by.to_string(),
            ip: String::new(),
            action: action.into(),
            target: target.to_string(),
            details: serde_json::json!({ "pause": pause }).to_string(),
            status: 200,
        };
        if let Err(e) = self.record_audit(&entry).await {
            tracing::warn!(error = %crate::error::chain(&e), "cannot record the resume in the audit log");
        }
    }

    /// Cancels every queued or running run (of `job`, or of every job).
    async fn cancel_runs_of(&self, job: Option<&str>, error: &str) -> Result<()> {
        for status in [
            crate::model::RunStatus::Running,
            crate::model::RunStatus::Queued,
        ] {
            let q = crate::model::RunQuery {
                job: job.map(str::to_string),
                status: Some(status),
                limit: crate::runs::MAX_PAGE,
                ..Default::default()
            };
            for run in self.inner.store.list_runs(&q).await? {
                self.cancel(run.id, error).await?;
            }
        }
        Ok(())
    }
}

/// Why `slot` of `job` is not run, if a pause or a maintenance window swallows it: the
/// job's own pause first, then the scheduler-wide one, then the windows by id.
pub(crate) fn swallowed(engine: &Engine, job: &Job, slot: DateTime<Utc>) -> Option<String> {
    swallowed_by(engine, &job.id, job.paused.as_ref(), slot)
}

/// [`swallowed`], for job `id` with pause `paused` (the preview of a job being edited).
pub(crate) fn swallowed_by(
    engine: &Engine,
    id: &str,
    paused: Option<&Pause>,
    slot: DateTime<Utc>,
) -> Option<String> {
    paused
        .into_iter()
        .chain(engine.scheduler_paused().as_ref())
        .find(|p| p.covers(slot))
        .map(Pause::ledger_reason)
        .or_else(|| {
            crate::scheduler::windows(engine)
                .iter()
                .find(|w| w.holds(id, slot))
                .map(crate::model::OpenWindow::ledger_reason)
        })
}

/// The leader's part: pauses whose end has come are resumed (once, whichever node leads:
/// the store's compare-and-set decides), with their catch-up runs.
pub(crate) async fn resume_ended(engine: &Engine) {
    if crate::leader::epoch(engine).is_none() {
        return;
    }
    let now = engine.now();
    if engine.scheduler_paused().is_some_and(|p| p.ended(now)) {
        if let Err(e) = engine.resume_all(SCHEDULER).await {
            tracing::warn!(error = %crate::error::chain(&e), "cannot resume the scheduler's pause yet");
        }
    }
    for job in engine.inner.jobs.list() {
        let Some(pause) = job.paused.clone().filter(|p| p.ended(now)) else {
            continue;
        };
        match engine.swap_job_pause(&job, None).await {
            Ok(()) => engine.resumed(&job, &pause, SCHEDULER).await,
            Err(e) => {
                tracing::info!(error = %crate::error::chain(&e), job = job.id, "the pause was changed meanwhile")
            }
        }
    }
}

/// The earliest moment a pause in force ends (the loop wakes for it).
pub(crate) fn next_end(engine: &Engine) -> Option<DateTime<Utc>> {
    let all = engine.scheduler_paused().and_then(|p| p.until);
    match (engine.inner.jobs.next_pause_end(), all) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
