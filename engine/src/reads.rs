//! The read models the dashboards and reports need: the overview, the last day's figures
//! (cached), the jobs list with each job's last run (one query), reports, the audit log,
//! readiness, schedule previews.

use crate::error::{EngineError, Result};
use crate::model::{
    AuditEntry, HourCount, Job, JobStats, PreviewSlot, Run, RunQuery, RunStatus, Schedule,
};
use crate::Engine;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the dashboard's day figures are served before they are recomputed.
pub const DAY_FIGURES_TTL: Duration = Duration::from_secs(10);

/// The last 24 hours at a glance: runs per hour and per job figures.
#[derive(Debug, Clone, PartialEq)]
pub struct DayFigures {
    pub computed_at: DateTime<Utc>,
    pub hours: Vec<HourCount>,
    pub jobs: Vec<JobStats>,
}

/// The overview: health from the last self-heal, the last day's problems and figures.
#[derive(Debug, Clone)]
pub struct Overview {
    pub health: Option<Run>,
    /// Failed, timed out, interrupted and skipped runs of the last 24 h, newest first (not
    /// the slots an operator's pause swallowed on purpose).
    pub problems: Vec<Run>,
    pub day: Arc<DayFigures>,
}

/// A job in the jobs list: masked as reads show jobs, with its newest run.
#[derive(Debug, Clone)]
pub struct JobSummary {
    pub job: Job,
    pub last_run: Option<Run>,
}

/// A schedule's next slots and its words, as a preview shows them.
#[derive(Debug, Clone)]
pub struct SchedulePreview {
    pub description: String,
    pub slots: Vec<PreviewSlot>,
}

/// Most slots a preview lists.
pub const MAX_PREVIEW: usize = 100;

/// The cached day figures.
#[derive(Default)]
pub(crate) struct Cache {
    /// The last day's figures as last computed (see [`Engine::day_figures`]).
    day: Mutex<Option<Arc<DayFigures>>>,
    refreshing: AtomicBool,
}

impl Engine {
    /// The last 24 hours' figures for dashboards. Counting a busy day takes SQLite tens of
    /// milliseconds, so they are kept for [`DAY_FIGURES_TTL`]: past it, the kept figures
    /// are served while fresh ones are computed in the background (only the first call
    /// after start waits).
    pub async fn day_figures(&self) -> Result<Arc<DayFigures>> {
        let cache = &self.inner.reads;
        let kept = cache.day.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let now = self.now();
        let stale =
            |f: &DayFigures| (now - f.computed_at).to_std().unwrap_or_default() >= DAY_FIGURES_TTL;
        match kept {
            Some(f) if !stale(&f) => Ok(f),
            Some(f) => {
                if !cache.refreshing.swap(true, Ordering::AcqRel) {
                    let engine = self.clone();
                    self.spawn(async move {
                        if let Err(e) = engine.compute_day_figures().await {
                            tracing::warn!(error = %crate::error::chain(&e), "cannot refresh the day's figures");
                        }
                        engine.inner.reads.refreshing.store(false, Ordering::Release);
                    });
                }
                Ok(f)
            }
            None => self.compute_day_figures().await,
        }
    }

    async fn compute_day_figures(&self) -> Result<Arc<DayFigures>> {
        let now = self.now();
        let store = &self.inner.store;
        let figures = Arc::new(DayFigures {
            computed_at: now,
            hours: store.hourly_counts(now, 24).await?,
            jobs: store
                .job_stats_since(now - chrono::Duration::hours(24))
                .await?,
        });
        *self
            .inner
            .reads
            .day
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(figures.clone());
        Ok(figures)
    }

    /// The overview page's data.
    pub async fn overview(&self) -> Result<Overview> {
        let day = self.day_figures().await?;
        let since = self.now() - chrono::Duration::hours(24);
        let problems = self
            .recent_runs(
                since,
                &[
                    RunStatus::Failed,
                    RunStatus::TimedOut,
                    RunStatus::Interrupted,
                    RunStatus::Skipped,
                ],
                10,
            )
            .await?;
        let health = self
            .latest_report(crate::automations::self_heal::KIND)
            .await?;
        Ok(Overview {
            health,
            problems,
            day,
        })
    }

    /// Runs with one of `statuses` that started (or ended) at or after `since`: the newest
    /// `limit` of them, newest first.
    pub async fn recent_runs(
        &self,
        since: DateTime<Utc>,
        statuses: &[RunStatus],
        limit: u32,
    ) -> Result<Vec<Run>> {
        let mut out = Vec::new();
        for status in statuses {
            let q = RunQuery {
                status: Some(*status),
                limit,
                ..Default::default()
            };
            out.extend(
                self.inner
                    .store
                    .list_runs(&q)
                    .await?
                    .into_iter()
                    .filter(|r| r.started_at.or(r.finished_at).is_some_and(|t| t >= since))
                    .filter(|r| !r.swallowed()),
            );
        }
        out.sort_by_key(|r| std::cmp::Reverse(r.id));
        out.truncate(limit as usize);
        Ok(out)
    }

    /// Every job (masked) with its newest run; the runs come from one query.
    pub async fn job_summaries(&self) -> Result<Vec<JobSummary>> {
        let mut last: HashMap<String, Run> = self
            .inner
            .store
            .last_runs()
            .await?
            .into_iter()
            .map(|r| (r.job_id.clone(), r))
            .collect();
        Ok(self
            .with_drift(self.list_jobs())
            .await?
            .into_iter()
            .map(|job| JobSummary {
                last_run: last.remove(&job.id),
                job,
            })
            .collect())
    }

    /// The newest run of `job_id` that ended with an output (a report), if any.
    pub async fn latest_report(&self, job_id: &str) -> Result<Option<Run>> {
        self.inner.store.latest_report(job_id).await
    }

    /// Per job figures of the runs since `since` (the metrics summary's).
    pub async fn job_stats_since(&self, since: DateTime<Utc>) -> Result<Vec<JobStats>> {
        self.inner.store.job_stats_since(since).await
    }

    /// The newest `limit` audit entries, newest first.
    pub async fn audit(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        self.inner.store.list_audit(limit).await
    }

    pub async fn record_audit(&self, entry: &AuditEntry) -> Result<()> {
        self.inner.store.record_audit(entry).await
    }

    /// Ready when the store takes writes.
    pub async fn ready(&self) -> Result<()> {
        self.inner.store.ping_write().await
    }

    /// The next `count` (1-100) slots of a schedule after `from` (RFC 3339; default now),
    /// with the schedule in words. A bad field is `Invalid`, naming it.
    /// The next `count` slots of a schedule from `from` (now, if empty); for job `job` (the
    /// one being edited, or a new one), each slot a pause or a maintenance window swallows
    /// says so.
    pub fn preview_schedule(
        &self,
        schedule: &str,
        timezone: &str,
        from: Option<&str>,
        count: usize,
        job: Option<&str>,
    ) -> Result<SchedulePreview> {
        let parsed =
            Schedule::parse(schedule, timezone).map_err(|e| EngineError::Invalid(e.into()))?;
        let from = match from.filter(|f| !f.is_empty()) {
            Some(f) => DateTime::parse_from_rfc3339(f)
                .map_err(|e| crate::model::ValidationError {
                    field: "from".into(),
                    message: format!("{f:?} is not an RFC 3339 time: {e}"),
                })?
                .with_timezone(&Utc),
            None => self.now(),
        };
        if !(1..=MAX_PREVIEW).contains(&count) {
            return Err(crate::model::ValidationError {
                field: "count".into(),
                message: format!("{count} is out of range 1-{MAX_PREVIEW}"),
            }
            .into());
        }
        let id = job.unwrap_or_default();
        let paused = self.inner.jobs.get(id).and_then(|j| j.paused);
        let mut slots = parsed.preview(from, count);
        for s in &mut slots {
            s.swallowed = crate::pause::swallowed_by(self, id, paused.as_ref(), s.at);
        }
        Ok(SchedulePreview {
            description: crate::model::describe(schedule),
            slots,
        })
    }
}
