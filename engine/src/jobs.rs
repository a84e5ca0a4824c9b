//! The jobs: an in-memory table of every job with its parsed schedule and its place in
//! time (rebuilt from the store at boot — the store is the truth), and the job use cases
//! the edges call (create, update, delete, read; secrets masked on the way out).

use crate::error::{EngineError, Result};
use crate::model::{Job, JobSpec, NextRun, Schedule, ValidationError};
use crate::scheduler::plan;
use crate::Engine;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Mutex;

/// One job as the scheduler tracks it.
struct Entry {
    job: Job,
    schedule: Schedule,
    /// The last slot handled (fired, skipped or deliberately passed over).
    cursor: DateTime<Utc>,
    next: Option<DateTime<Utc>>,
}

impl Entry {
    fn view(&self) -> Job {
        let mut job = self.job.clone();
        job.next_run_at = self.next;
        job
    }

    fn replan(&mut self, now: DateTime<Utc>) {
        self.next = if self.job.enabled {
            plan::next(&self.schedule, self.cursor, now)
        } else {
            None
        };
    }
}

/// Every job by id. A std mutex: each access is a few map operations, never held across
/// an await.
#[derive(Default)]
pub(crate) struct JobTable {
    map: Mutex<HashMap<String, Entry>>,
    /// Bumped by every change made here, so a re-read from the store that started before
    /// a change cannot undo it.
    generation: std::sync::atomic::AtomicU64,
}

/// A job found due, with the slots to fire and those the loop missed.
pub(crate) struct DueJob {
    pub job: Job,
    pub due: plan::Due,
}

impl JobTable {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // Every critical section is a few assignments that cannot panic half-way, so a
        // poisoned lock still guards consistent data.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn changed(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Puts `job` in the table, its first slot the first after `cursor`.
    pub fn install(&self, job: Job, schedule: Schedule, cursor: DateTime<Utc>) {
        let mut entry = Entry {
            job,
            schedule,
            cursor,
            next: None,
        };
        entry.replan(cursor);
        // Bumped first: a re-read that started before this sees it and reads again.
        self.changed();
        self.map().insert(entry.job.id.clone(), entry);
    }

    /// Replaces a job's definition; a new timing starts from `now` (no backlog).
    pub fn replace(&self, job: Job, schedule: Schedule, timing_changed: bool, now: DateTime<Utc>) {
        self.changed();
        if let Some(entry) = self.map().get_mut(&job.id) {
            if timing_changed {
                entry.cursor = now;
            }
            entry.job = job;
            entry.schedule = schedule;
            entry.replan(now);
        }
    }

    pub fn remove(&self, id: &str) -> bool {
        self.changed();
        self.map().remove(id).is_some()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.map().contains_key(id)
    }

    /// One job with its params in clear (for running it) and its next run.
    pub fn get(&self, id: &str) -> Option<Job> {
        self.map().get(id).map(Entry::view)
    }

    /// Every job, by id.
    pub fn list(&self) -> Vec<Job> {
        let mut out: Vec<Job> = self.map().values().map(Entry::view).collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Moves every cursor up to `now`: slots passed while the scheduler was stopped are
    /// not caught up (stopping was the operator's choice).
    pub fn skip_to(&self, now: DateTime<Utc>) {
        for entry in self.map().values_mut() {
            entry.cursor = entry.cursor.max(now);
            entry.replan(now);
        }
    }

    /// Puts each job's cursor where recovery left it (its last claimed slot or now,
    /// whichever is later): the follower's own cursor may have run ahead of what was
    /// recorded, and a clock stepped back must not make a claimed slot due again.
    pub fn place(&self, cursors: &HashMap<String, DateTime<Utc>>, now: DateTime<Utc>) {
        for (id, entry) in self.map().iter_mut() {
            if let Some(at) = cursors.get(id) {
                entry.cursor = *at;
                entry.replan(now);
            }
        }
    }

    /// Follows the stored jobs (another node changed them), each with its stored cursor:
    /// new ones, and changed ones whose timing changed, start from it (the moment of the
    /// change, so the slots since are handled, not lost, when the news comes late); other
    /// changed ones keep their place; removed ones go. Does nothing (false) if the table
    /// changed here since `generation`: the stored list may predate that change, so the
    /// caller reads again.
    pub fn sync(
        &self,
        generation: u64,
        stored: Vec<(Job, Schedule, DateTime<Utc>)>,
        now: DateTime<Utc>,
    ) -> bool {
        let mut map = self.map();
        if self.generation() != generation {
            return false;
        }
        let ids: std::collections::HashSet<String> =
            stored.iter().map(|(j, _, _)| j.id.clone()).collect();
        map.retain(|id, _| ids.contains(id));
        for (job, schedule, cursor) in stored {
            match map.get_mut(&job.id) {
                Some(entry) if entry.job == job => {}
                Some(entry) => {
                    let timing_changed = entry.job.schedule != job.schedule
                        || entry.job.timezone != job.timezone
                        || (job.enabled && !entry.job.enabled);
                    if timing_changed {
                        entry.cursor = cursor;
                    }
                    entry.job = job;
                    entry.schedule = schedule;
                    entry.replan(now);
                }
                None => {
                    let mut entry = Entry {
                        job,
                        schedule,
                        cursor,
                        next: None,
                    };
                    entry.replan(now);
                    map.insert(entry.job.id.clone(), entry);
                }
            }
        }
        true
    }

    /// Sets (or clears) a job's pause here, as the store now holds it.
    pub fn set_pause(&self, id: &str, pause: Option<crate::model::Pause>) {
        self.changed();
        if let Some(entry) = self.map().get_mut(id) {
            entry.job.paused = pause;
        }
    }

    /// The earliest end of a job's pause.
    pub fn next_pause_end(&self) -> Option<DateTime<Utc>> {
        self.map()
            .values()
            .filter_map(|e| e.job.paused.as_ref()?.until)
            .min()
    }

    /// The earliest slot any job waits for.
    pub fn earliest(&self) -> Option<DateTime<Utc>> {
        self.map().values().filter_map(|e| e.next).min()
    }

    /// Each job's next run, soonest first.
    pub fn next_runs(&self) -> Vec<NextRun> {
        let mut out: Vec<NextRun> = self
            .map()
            .values()
            .filter_map(|e| {
                e.next.map(|at| NextRun {
                    job: e.job.id.clone(),
                    at,
                })
            })
            .collect();
        out.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.job.cmp(&b.job)));
        out
    }

    /// Takes every slot due up to `horizon`, advancing the cursors past them.
    pub fn take_due(&self, now: DateTime<Utc>, horizon: DateTime<Utc>) -> Vec<DueJob> {
        let mut map = self.map();
        map.values_mut()
            .filter(|e| e.job.enabled && e.next.is_some_and(|n| n <= horizon))
            .filter_map(|e| {
                let due = plan::due(&e.schedule, e.cursor, horizon);
                if let Some(d) = &due {
                    e.cursor = d.slot;
                }
                e.replan(now);
                due.map(|due| DueJob {
                    job: e.job.clone(),
                    due,
                })
            })
            .collect()
    }
}

/// Re-reads the jobs from the store (another node changed them) and wakes the loop.
pub(crate) async fn reload(engine: &Engine) {
    let jobs = &engine.inner.jobs;
    loop {
        let generation = jobs.generation();
        let stored = match engine.inner.store.load_jobs().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %crate::error::chain(&e), "cannot re-read the jobs");
                return;
            }
        };
        let parsed = stored
            .into_iter()
            .filter_map(|s| {
                let schedule = Schedule::parse(&s.job.schedule, &s.job.timezone).ok()?;
                Some((s.job, schedule, s.last_slot))
            })
            .collect();
        if jobs.sync(generation, parsed, engine.now()) {
            break;
        }
    }
    engine.inner.notifier.jobs_changed();
}

impl Engine {
    /// Every job, with its next run time; secret params masked.
    pub fn list_jobs(&self) -> Vec<Job> {
        self.inner
            .jobs
            .list()
            .into_iter()
            .map(Job::masked)
            .collect()
    }

    /// One job as callers see it: secret params masked (they are write-only).
    pub fn get_job(&self, id: &str) -> Result<Job> {
        self.job(id).map(Job::masked)
    }

    /// One job with its params in clear, for running it.
    pub(crate) fn job(&self, id: &str) -> Result<Job> {
        self.inner
            .jobs
            .get(id)
            .ok_or_else(|| EngineError::NotFound(format!("no job with id {id:?}")))
    }

    /// The kinds jobs may have here (`shell` only when the server allows it).
    pub fn kinds(&self) -> Vec<String> {
        let shell = self.inner.config.allow_shell;
        self.inner
            .kinds
            .names()
            .into_iter()
            .filter(|k| shell || k != crate::kinds::shell::KIND)
            .collect()
    }

    /// Creates a job. Its first slot is the first one after now (no backlog).
    pub async fn create_job(&self, spec: JobSpec) -> Result<Job> {
        let (job, schedule) = Job::from_spec(spec, None)?;
        self.check_kind(&job)?;
        let now = self.now();
        self.inner.store.insert_job(&job, now).await?;
        let id = job.id.clone();
        self.inner.jobs.install(job, schedule, now);
        self.inner.notifier.jobs_changed();
        self.event("job_created", serde_json::json!({ "job": id }));
        self.get_job(&id)
    }

    /// Replaces (`merge = false`, PUT) or patches (`merge = true`, PATCH) a job. Masked
    /// secrets sent back (a job read from the API, saved again) keep their stored values.
    pub async fn update_job(&self, id: &str, spec: JobSpec, merge: bool) -> Result<Job> {
        let current = self.job(id)?;
        let mut spec = spec;
        if spec.id.is_none() {
            spec.id = Some(id.to_string());
        }
        spec.params = spec
            .params
            .map(|p| crate::secrets::restore_params(p, &current.params));
        let (job, schedule) = if merge {
            Job::from_spec(spec, Some(&current))?
        } else {
            if spec.id.as_deref() != Some(id) {
                return Err(ValidationError {
                    field: "id".into(),
                    message: "the id of a job cannot change".into(),
                }
                .into());
            }
            Job::from_spec(spec, None)?
        };
        self.check_kind(&job)?;
        // Pausing has its own calls; an edit keeps the pause as it is.
        let mut job = job;
        job.paused = current.paused.clone();
        let now = self.now();
        let timing_changed = job.schedule != current.schedule
            || job.timezone != current.timezone
            || (job.enabled && !current.enabled);
        self.inner
            .store
            .update_job(&job, timing_changed, now)
            .await?;
        self.inner.jobs.replace(job, schedule, timing_changed, now);
        self.inner.notifier.jobs_changed();
        self.event("job_updated", serde_json::json!({ "job": id }));
        self.get_job(id)
    }

    pub async fn delete_job(&self, id: &str) -> Result<()> {
        if !self.inner.store.delete_job(id).await? {
            return Err(EngineError::NotFound(format!("no job with id {id:?}")));
        }
        self.inner.jobs.remove(id);
        self.inner.notifier.jobs_changed();
        self.event("job_deleted", serde_json::json!({ "job": id }));
        Ok(())
    }

    /// Creates the job unless one with its id exists; for seeding defaults.
    pub async fn ensure_job(&self, spec: JobSpec) -> Result<bool> {
        let id = spec.id.clone().unwrap_or_default();
        if self.inner.jobs.contains(&id) {
            return Ok(false);
        }
        match self.create_job(spec).await {
            Ok(_) => Ok(true),
            Err(EngineError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Refuses kinds this server cannot run and params the kind would refuse.
    pub(crate) fn check_kind(&self, job: &Job) -> Result<()> {
        let invalid = |field: &str, message: String| -> EngineError {
            ValidationError {
                field: field.into(),
                message,
            }
            .into()
        };
        if job.kind == crate::kinds::shell::KIND && !self.inner.config.allow_shell {
            return Err(invalid(
                "kind",
                "shell jobs are off; start the server with --allow-shell to use them".into(),
            ));
        }
        if self.inner.kinds.get(&job.kind).is_none() {
            return Err(invalid(
                "kind",
                format!(
                    "unknown kind {:?}; available: {}",
                    job.kind,
                    self.kinds().join(", ")
                ),
            ));
        }
        self.inner.kinds.check(&job.kind, &job.params)?;
        Ok(())
    }
}
