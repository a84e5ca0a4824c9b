//! The scheduler: the [`Engine`] handle with its control surface (start, stop, restart,
//! status), the firing loop, jobs and runs.
//!
//! - The operator's intent is written to the store *before* the scheduler acts on it, so a
//!   server killed at any point comes back in the state it was last asked to be in.
//! - The firing loop is one tracked task with its own cancellation token. It computes
//!   each job's next slot itself (UTC, from cron + zone), sleeps until the earliest slot or
//!   heartbeat (no polling), claims each slot as a unique (job, slot) row, then runs it.
//!   Stop cancels the loop (in-flight runs are not touched); restart also revives a loop
//!   that stalled; a watchdog restarts a loop whose heartbeat went stale.
//! - Every run executes in its own task under a timeout; a panic or error becomes a failed
//!   run and never reaches the loop.
//! - On boot, runs left in flight by a dead process become `interrupted`, and the slots
//!   missed while down follow each job's misfire policy, each one recorded.

use crate::clock::Clock;
use crate::error::{EngineError, Result};
use crate::events::EventLog;
use crate::kinds::{JobContext, JobFailure, Kinds};
use crate::live_log::{Follow, LiveLogs, RunLog};
use crate::model::{
    Job, JobSpec, Misfire, Overlap, Run, RunQuery, RunStatus, Trigger, ValidationError,
};
use crate::schedule::Schedule;
use crate::store::{DesiredState, Heartbeat, NewRun, NextRun, Store};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Most missed slots recorded one by one per job at boot; past that, the rest are counted
/// in the event log, so a long outage of an every-second job cannot flood the store.
const MAX_CATCH_UP_SLOTS: usize = 10_000;
/// How far ahead of a slot the loop claims it, so the commit is done when the slot comes.
const CLAIM_LEAD: Duration = Duration::from_millis(10);
/// Longest a caller may wait for a run (`?wait=true`).
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// How the engine is set up; the server fills it from flags, env and config.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where the SQLite file, logs and everything else the engine writes live.
    pub data_dir: PathBuf,
    /// How often the scheduler records a heartbeat. Status says `stalled` past twice this.
    pub heartbeat: Duration,
    /// This node's name in heartbeats and runs.
    pub node: String,
    /// Hosts (names or IP addresses) HTTP jobs may reach even though they are loopback,
    /// private or link-local.
    pub http_allow: Vec<String>,
    /// Whether `shell` jobs may be created and run.
    pub allow_shell: bool,
    /// Directories `finance-metrics` may read a ledger file from.
    pub ledger_dirs: Vec<PathBuf>,
    /// The model endpoint the CEO brief asks, when configured.
    pub llm: LlmConfig,
}

impl EngineConfig {
    /// Defaults for a data dir: heartbeat every 60 s, node `local`, nothing allowed beyond
    /// the defaults, ledgers read from the data dir and `examples/`, no model.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        EngineConfig {
            ledger_dirs: vec![data_dir.clone(), PathBuf::from("examples")],
            data_dir,
            heartbeat: Duration::from_secs(60),
            node: "local".into(),
            http_allow: Vec::new(),
            allow_shell: false,
            llm: LlmConfig::default(),
        }
    }
}

/// An OpenAI-compatible endpoint for the CEO brief's narrative.
#[derive(Clone, Default)]
pub struct LlmConfig {
    pub base_url: Option<String>,
    pub model: Option<String>,
    /// Sent as a bearer token; never shown, never logged.
    pub api_key: Option<String>,
}

impl std::fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field(
                "api_key",
                &self.api_key.as_ref().map(|_| crate::secrets::MASK),
            )
            .finish()
    }
}

/// The state status reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchedulerState {
    Running,
    Stopped,
    /// Asked to run, but the heartbeat is older than twice its interval.
    Stalled,
}

/// A snapshot of the scheduler, as `GET /api/automations/status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub state: SchedulerState,
    pub running: bool,
    pub pid: u32,
    pub started_at: DateTime<Utc>,
    pub uptime_secs: u64,
    pub last_heartbeat: Option<DateTime<Utc>>,
    pub heartbeat_age_secs: Option<f64>,
    pub heartbeat_interval_secs: u64,
    pub next_runs: Vec<NextRun>,
    pub node: String,
    /// How late the firing loop woke for its last slot, in ms (the watchdog's measure).
    pub loop_lag_ms: Option<f64>,
    /// How many times the watchdog had to restart the loop.
    pub loop_restarts: u64,
    pub active_runs: usize,
}

/// A job in memory: its parsed schedule and what the loop needs to fire it.
struct JobState {
    job: Job,
    schedule: Schedule,
    /// The last slot handled (fired, skipped or deliberately passed over).
    cursor: DateTime<Utc>,
    next: Option<DateTime<Utc>>,
    active: usize,
    /// Ids of runs waiting for the active one (overlap = queue).
    queue: VecDeque<i64>,
}

/// Which attempt a run is, and of what.
#[derive(Debug, Clone, Copy)]
struct RunMeta {
    attempt: u32,
    scheduled_at: Option<DateTime<Utc>>,
    /// The id of the chain's first attempt: retries share it.
    first_run: i64,
}

impl RunMeta {
    fn first(run_id: i64, scheduled_at: Option<DateTime<Utc>>) -> Self {
        RunMeta {
            attempt: 1,
            scheduled_at,
            first_run: run_id,
        }
    }
}

/// A slot claimed for a run that is yet to start.
struct Claimed {
    job: Job,
    run_id: i64,
    slot: DateTime<Utc>,
}

/// The engine handle: cheap to clone, shared by the REST API, server functions and CLI
/// paths of the server.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("node", &self.inner.config.node)
            .finish_non_exhaustive()
    }
}

struct Inner {
    config: EngineConfig,
    store: Store,
    events: EventLog,
    clock: Arc<dyn Clock>,
    kinds: Kinds,
    pid: u32,
    started_at: DateTime<Utc>,
    /// Every long-lived task and every run is spawned here so shutdown can wait for it.
    tracker: TaskTracker,
    /// The server's root token; the loop's token is a child of it.
    shutdown: CancellationToken,
    /// Cancelled when in-flight runs are abandoned at the end of the shutdown grace.
    runs_cancel: CancellationToken,
    /// Serialises start/stop/restart, which await store writes; a tokio mutex because it
    /// is held across those awaits.
    control: tokio::sync::Mutex<()>,
    /// Serialises firing, so the loop and a test driving time by hand never interleave.
    firing: tokio::sync::Mutex<()>,
    /// Wakes the loop when jobs change.
    wake: tokio::sync::Notify,
    /// Bumped whenever a run finishes; waiters for a run watch it.
    finished: tokio::sync::watch::Sender<u64>,
    /// Bumped whenever a run starts or finishes; live views of the runs watch it.
    activity: tokio::sync::watch::Sender<u64>,
    /// The logs of runs in flight.
    logs: LiveLogs,
    /// The std mutexes below are held only for short, await-free sections.
    loop_token: Mutex<Option<CancellationToken>>,
    desired: Mutex<DesiredState>,
    last_heartbeat: Mutex<Option<DateTime<Utc>>>,
    jobs: Mutex<HashMap<String, JobState>>,
    loop_lag_ms: Mutex<Option<f64>>,
    loop_restarts: Mutex<u64>,
    /// The last day's figures as last computed (see [`Engine::day_figures`]).
    day: Mutex<Option<Arc<DayFigures>>>,
    day_refreshing: std::sync::atomic::AtomicBool,
    /// The guarded client every outbound request goes through.
    outbound: crate::outbound::Outbound,
}

/// The last 24 hours at a glance: runs per hour and per job figures.
#[derive(Debug, Clone, PartialEq)]
pub struct DayFigures {
    pub computed_at: DateTime<Utc>,
    pub hours: Vec<crate::store::HourCount>,
    pub jobs: Vec<crate::store::JobStats>,
}

/// How long the dashboard's day figures are served before they are recomputed.
pub const DAY_FIGURES_TTL: Duration = Duration::from_secs(10);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section here is a few assignments that cannot panic half-way, so a
    // poisoned lock still guards consistent data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Engine {
    /// Opens the data dir and store, recovers from a previous crash, and brings the
    /// scheduler to its stored intent (running on a fresh data dir).
    pub async fn open(
        config: EngineConfig,
        kinds: Kinds,
        clock: Arc<dyn Clock>,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> Result<Self> {
        let dir = &config.data_dir;
        let dir_err = |source| EngineError::DataDir {
            path: dir.clone(),
            source,
        };
        crate::data_dir::prepare(dir).map_err(dir_err)?;
        // Prove the directory takes writes now, rather than at the first heartbeat.
        probe_writable(dir).map_err(dir_err)?;
        let db = dir.join("echopilot.db");
        crate::data_dir::create_private_file(&db).map_err(dir_err)?;
        let store = Store::open_sqlite(&db).await?;
        let events = EventLog::open(&dir.join("logs"))?;
        let desired = store
            .desired_state()
            .await?
            .unwrap_or(DesiredState::Running);
        let started_at = clock.now();
        let engine = Engine {
            inner: Arc::new(Inner {
                pid: std::process::id(),
                started_at,
                store,
                events,
                clock,
                kinds,
                tracker,
                // Not a child of `shutdown`: runs keep their grace period after it fires.
                runs_cancel: CancellationToken::new(),
                shutdown,
                control: tokio::sync::Mutex::new(()),
                firing: tokio::sync::Mutex::new(()),
                wake: tokio::sync::Notify::new(),
                finished: tokio::sync::watch::Sender::new(0),
                activity: tokio::sync::watch::Sender::new(0),
                logs: LiveLogs::default(),
                loop_token: Mutex::new(None),
                desired: Mutex::new(desired),
                last_heartbeat: Mutex::new(None),
                jobs: Mutex::new(HashMap::new()),
                loop_lag_ms: Mutex::new(None),
                loop_restarts: Mutex::new(0),
                outbound: crate::outbound::Outbound::new(config.http_allow.clone()),
                day: Mutex::new(None),
                day_refreshing: std::sync::atomic::AtomicBool::new(false),
                config,
            }),
        };
        engine.event("server_started", serde_json::json!({ "desired": desired }));
        engine.recover(desired == DesiredState::Running).await?;
        if desired == DesiredState::Running {
            engine.spawn_loop().await;
        }
        engine.spawn_watchdog();
        Ok(engine)
    }

    /// The store, for callers that read history directly.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    pub fn kinds(&self) -> Vec<String> {
        self.inner.kinds.names()
    }

    // ---- control -----------------------------------------------------------------

    /// Starts the scheduler (idempotent) and remembers that it should run. Slots that
    /// passed while it was stopped are not caught up: stopping was the operator's choice.
    pub async fn start(&self) -> Result<Status> {
        let _control = self.inner.control.lock().await;
        self.set_desired(DesiredState::Running).await?;
        if !self.loop_active() {
            self.reset_cursors(self.inner.clock.now());
            self.spawn_loop().await;
            self.event("scheduler_started", serde_json::json!({}));
        }
        Ok(self.status())
    }

    /// Stops firing (idempotent) and remembers that it should stay stopped. Runs already
    /// in flight are left to finish.
    pub async fn stop(&self) -> Result<Status> {
        let _control = self.inner.control.lock().await;
        self.set_desired(DesiredState::Stopped).await?;
        if let Some(token) = lock(&self.inner.loop_token).take() {
            token.cancel();
            self.event("scheduler_stopped", serde_json::json!({}));
        }
        Ok(self.status())
    }

    /// Stops and starts the loop; revives a stalled one.
    pub async fn restart(&self) -> Result<Status> {
        let _control = self.inner.control.lock().await;
        let was_running = self.loop_active();
        self.set_desired(DesiredState::Running).await?;
        if let Some(token) = lock(&self.inner.loop_token).take() {
            token.cancel();
        }
        if !was_running {
            self.reset_cursors(self.inner.clock.now());
        }
        self.spawn_loop().await;
        self.event("scheduler_restarted", serde_json::json!({}));
        Ok(self.status())
    }

    /// The scheduler's state now. Reads memory only, so it is cheap enough to poll.
    pub fn status(&self) -> Status {
        let inner = &self.inner;
        let now = inner.clock.now();
        let desired = *lock(&inner.desired);
        let last = *lock(&inner.last_heartbeat);
        let age = last.map(|at| (now - at).num_milliseconds().max(0) as f64 / 1000.0);
        let limit = 2.0 * inner.config.heartbeat.as_secs_f64();
        let state = match desired {
            DesiredState::Stopped => SchedulerState::Stopped,
            DesiredState::Running => {
                let fresh = age.is_some_and(|a| a <= limit);
                if fresh && self.loop_active() {
                    SchedulerState::Running
                } else {
                    SchedulerState::Stalled
                }
            }
        };
        let (next_runs, active_runs) = {
            let jobs = lock(&inner.jobs);
            let active = jobs.values().map(|s| s.active).sum();
            (
                if state == SchedulerState::Stopped {
                    Vec::new()
                } else {
                    next_runs(&jobs)
                },
                active,
            )
        };
        Status {
            state,
            running: state == SchedulerState::Running,
            pid: inner.pid,
            started_at: inner.started_at,
            uptime_secs: (now - inner.started_at).num_seconds().max(0) as u64,
            last_heartbeat: last,
            heartbeat_age_secs: age,
            heartbeat_interval_secs: inner.config.heartbeat.as_secs(),
            next_runs,
            node: inner.config.node.clone(),
            loop_lag_ms: *lock(&inner.loop_lag_ms),
            loop_restarts: *lock(&inner.loop_restarts),
            active_runs,
        }
    }

    /// Stops firing for process shutdown without changing the stored intent: a server
    /// that was running before SIGTERM resumes by itself when started again. In-flight
    /// runs keep going; see [`Engine::abandon_runs`].
    pub async fn shutdown(&self) {
        if let Some(token) = lock(&self.inner.loop_token).take() {
            token.cancel();
        }
        self.event("server_stopping", serde_json::json!({}));
    }

    /// Ends the grace period: every run still in flight is cancelled and recorded as
    /// `interrupted`.
    pub fn abandon_runs(&self) {
        self.inner.runs_cancel.cancel();
    }

    /// Closes the store; call after every tracked task has finished.
    pub async fn close(&self) {
        self.inner.store.close().await;
    }

    // ---- jobs --------------------------------------------------------------------

    /// Every job, with its next run time; secret params masked.
    pub fn list_jobs(&self) -> Vec<Job> {
        let jobs = lock(&self.inner.jobs);
        let mut out: Vec<Job> = jobs.values().map(|s| job_view(s).masked()).collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// One job as callers see it: secret params masked (they are write-only).
    pub fn get_job(&self, id: &str) -> Result<Job> {
        self.job(id).map(|j| j.masked())
    }

    /// One job with its params in clear, for running it.
    fn job(&self, id: &str) -> Result<Job> {
        lock(&self.inner.jobs)
            .get(id)
            .map(job_view)
            .ok_or_else(|| EngineError::NotFound(format!("no job with id {id:?}")))
    }

    /// Creates a job. Its first slot is the first one after now (no backlog).
    pub async fn create_job(&self, spec: JobSpec) -> Result<Job> {
        let (job, schedule) = Job::from_spec(spec, None)?;
        self.check_kind(&job)?;
        let now = self.inner.clock.now();
        self.inner.store.insert_job(&job, now).await?;
        self.install(job.clone(), schedule, now);
        self.event("job_created", serde_json::json!({ "job": job.id }));
        self.get_job(&job.id)
    }

    /// Replaces (`merge = false`, PUT) or patches (`merge = true`, PATCH) a job.
    /// Masked secrets sent back (a job read from the API, saved again) keep their stored
    /// values.
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
        let now = self.inner.clock.now();
        let timing_changed = job.schedule != current.schedule
            || job.timezone != current.timezone
            || (job.enabled && !current.enabled);
        self.inner
            .store
            .update_job(&job, timing_changed, now)
            .await?;
        {
            let mut jobs = lock(&self.inner.jobs);
            if let Some(state) = jobs.get_mut(id) {
                if timing_changed {
                    state.cursor = now;
                }
                state.next = if job.enabled {
                    schedule.next_after(state.cursor.max(now))
                } else {
                    None
                };
                state.job = job;
                state.schedule = schedule;
            }
        }
        self.inner.wake.notify_one();
        self.event("job_updated", serde_json::json!({ "job": id }));
        self.get_job(id)
    }

    pub async fn delete_job(&self, id: &str) -> Result<()> {
        if !self.inner.store.delete_job(id).await? {
            return Err(EngineError::NotFound(format!("no job with id {id:?}")));
        }
        lock(&self.inner.jobs).remove(id);
        self.inner.wake.notify_one();
        self.event("job_deleted", serde_json::json!({ "job": id }));
        Ok(())
    }

    /// Creates the job unless one with its id exists; for seeding defaults.
    pub async fn ensure_job(&self, spec: JobSpec) -> Result<bool> {
        let id = spec.id.clone().unwrap_or_default();
        if lock(&self.inner.jobs).contains_key(&id) {
            return Ok(false);
        }
        match self.create_job(spec).await {
            Ok(_) => Ok(true),
            Err(EngineError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn check_kind(&self, job: &Job) -> Result<()> {
        if job.kind == crate::shell_job::KIND {
            let invalid = |field: &str, message: String| -> EngineError {
                ValidationError {
                    field: field.into(),
                    message,
                }
                .into()
            };
            if !self.inner.config.allow_shell {
                return Err(invalid(
                    "kind",
                    "shell jobs are off; start the server with --allow-shell to use them".into(),
                ));
            }
            crate::shell_job::argv(&job.params).map_err(|m| invalid("params", m))?;
        }
        if self.inner.kinds.get(&job.kind).is_none() {
            return Err(ValidationError {
                field: "kind".into(),
                message: format!(
                    "unknown kind {:?}; available: {}",
                    job.kind,
                    self.inner.kinds.names().join(", ")
                ),
            }
            .into());
        }
        self.inner.kinds.check(&job.kind, &job.params)?;
        Ok(())
    }

    fn install(&self, job: Job, schedule: Schedule, cursor: DateTime<Utc>) {
        let next = if job.enabled {
            schedule.next_after(cursor)
        } else {
            None
        };
        lock(&self.inner.jobs).insert(
            job.id.clone(),
            JobState {
                job,
                schedule,
                cursor,
                next,
                active: 0,
                queue: VecDeque::new(),
            },
        );
        self.inner.wake.notify_one();
    }

    fn reset_cursors(&self, now: DateTime<Utc>) {
        for state in lock(&self.inner.jobs).values_mut() {
            state.cursor = state.cursor.max(now);
            state.next = if state.job.enabled {
                state.schedule.next_after(state.cursor)
            } else {
                None
            };
        }
    }

    // ---- runs --------------------------------------------------------------------

    /// Starts a run of `job_id` now, whatever the scheduler's state.
    pub async fn run_now(&self, job_id: &str, trigger: Trigger) -> Result<Run> {
        let job = self.job(job_id)?;
        let now = self.inner.clock.now();
        let id = self
            .inner
            .store
            .insert_run(&NewRun {
                job_id,
                trigger,
                status: RunStatus::Running,
                scheduled_at: None,
                started_at: Some(now),
                attempt: 1,
                error: None,
                node: &self.inner.config.node,
            })
            .await?
            .ok_or_else(|| {
                EngineError::Corrupt("a manual run collided with a slot claim".into())
            })?;
        self.begin(job, id, RunMeta::first(id, None));
        // What was just committed; no need to read it back.
        Ok(Run {
            id,
            job_id: job_id.to_string(),
            trigger,
            status: RunStatus::Running,
            scheduled_at: None,
            started_at: Some(now),
            finished_at: None,
            attempt: 1,
            output: serde_json::json!({}),
            error: None,
            node: self.inner.config.node.clone(),
        })
    }

    pub async fn get_run(&self, id: i64) -> Result<Run> {
        self.inner
            .store
            .get_run(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no run with id {id}")))
    }

    pub async fn list_runs(&self, q: &RunQuery) -> Result<Vec<Run>> {
        self.inner.store.list_runs(q).await
    }

    /// Run `id`'s log: the text so far and, while the run is in flight on this node, its
    /// new chunks as they are written.
    pub async fn follow_log(&self, id: i64) -> Result<Follow> {
        if let Some(follow) = self.inner.logs.follow(id) {
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

    /// The last 24 hours' figures for dashboards. Counting a busy day takes SQLite tens of
    /// milliseconds, so they are kept for [`DAY_FIGURES_TTL`]: past it, the kept figures
    /// are served while fresh ones are computed in the background (only the first call
    /// after start waits).
    pub async fn day_figures(&self) -> Result<Arc<DayFigures>> {
        use std::sync::atomic::Ordering;
        let kept = lock(&self.inner.day).clone();
        let now = self.inner.clock.now();
        let stale =
            |f: &DayFigures| (now - f.computed_at).to_std().unwrap_or_default() >= DAY_FIGURES_TTL;
        match kept {
            Some(f) if !stale(&f) => Ok(f),
            Some(f) => {
                if !self.inner.day_refreshing.swap(true, Ordering::AcqRel) {
                    let engine = self.clone();
                    self.inner.tracker.spawn(async move {
                        if let Err(e) = engine.compute_day_figures().await {
                            tracing::warn!(error = %e, "cannot refresh the day's figures");
                        }
                        engine.inner.day_refreshing.store(false, Ordering::Release);
                    });
                }
                Ok(f)
            }
            None => self.compute_day_figures().await,
        }
    }

    async fn compute_day_figures(&self) -> Result<Arc<DayFigures>> {
        let now = self.inner.clock.now();
        let store = &self.inner.store;
        let figures = Arc::new(DayFigures {
            computed_at: now,
            hours: store.hourly_counts(now, 24).await?,
            jobs: store
                .job_stats_since(now - chrono::Duration::hours(24))
                .await?,
        });
        *lock(&self.inner.day) = Some(figures.clone());
        Ok(figures)
    }

    /// The guarded client for every outbound request (kinds and automations use it).
    pub fn outbound(&self) -> &crate::outbound::Outbound {
        &self.inner.outbound
    }

    /// Cancelled when the server begins to shut down; long-lived streams end on it.
    pub fn shutting_down(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// A counter bumped whenever a run starts or finishes, for views that show runs live.
    pub fn activity(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.activity.subscribe()
    }

    /// Waits until run `id` has finished or `within` has passed; returns it either way.
    pub async fn wait_run(&self, id: i64, within: Duration) -> Result<Run> {
        let mut finished = self.inner.finished.subscribe();
        let deadline = tokio::time::Instant::now() + within.min(MAX_WAIT);
        loop {
            let run = self.get_run(id).await?;
            if run.status.is_finished() {
                return Ok(run);
            }
            if tokio::time::timeout_at(deadline, finished.changed())
                .await
                .is_err()
            {
                return Ok(run);
            }
        }
    }

    /// Marks a run active in memory and executes it in its own tracked task.
    fn begin(&self, job: Job, run_id: i64, meta: RunMeta) {
        self.mark_active(&job.id);
        self.launch(job, run_id, meta);
    }

    /// Counts a run as active for the overlap policy, from its claim on.
    fn mark_active(&self, job_id: &str) {
        if let Some(state) = lock(&self.inner.jobs).get_mut(job_id) {
            state.active += 1;
        }
    }

    /// Executes an already active run in its own tracked task.
    fn launch(&self, job: Job, run_id: i64, meta: RunMeta) {
        let engine = self.clone();
        // Opened before the task starts, so the run is followable as soon as it exists.
        let log = self
            .inner
            .logs
            .open(run_id, crate::secrets::Redactor::for_params(&job.params));
        self.inner
            .tracker
            .spawn(async move { engine.execute(job, run_id, meta, log).await });
    }

    /// Runs the kind under the job's timeout, in a task of its own so that a panic is
    /// caught as a `JoinError` and a hung job can be abandoned; records the outcome;
    /// starts whatever was queued behind it; schedules a retry if the policy says so.
    async fn execute(&self, job: Job, run_id: i64, meta: RunMeta, log: RunLog) {
        let RunMeta {
            attempt,
            scheduled_at,
            first_run,
        } = meta;
        let inner = &self.inner;
        self.event(
            "run_started",
            serde_json::json!({ "job": job.id, "run": run_id, "attempt": attempt }),
        );
        let cancel = inner.runs_cancel.child_token();
        log.line(&format!(
            "{} run {run_id} of {} started (attempt {attempt}, kind {})",
            inner.clock.now().format("%H:%M:%S%.3f"),
            job.id,
            job.kind
        ));
        inner.activity.send_modify(|n| *n += 1);
        let (status, output, error) = match inner.kinds.get(&job.kind) {
            None => (
                RunStatus::Failed,
                None,
                Some(format!("unknown kind {:?}", job.kind)),
            ),
            Some(kind) => {
                let ctx = JobContext {
                    run_id,
                    job: job.clone(),
                    attempt,
                    scheduled_at,
                    first_run,
                    cancel: cancel.clone(),
                    log: log.clone(),
                    engine: self.clone(),
                };
                let mut task = tokio::spawn(kind(ctx));
                let timeout = Duration::from_secs(job.timeout_secs);
                tokio::select! {
                    joined = tokio::time::timeout(timeout, &mut task) => match joined {
                        Ok(Ok(Ok(out))) => (RunStatus::Succeeded, Some(out), None),
                        Ok(Ok(Err(JobFailure { message, output }))) => (RunStatus::Failed, output, Some(message)),
                        Ok(Err(e)) if e.is_panic() => (RunStatus::Failed, None, Some(format!("the job panicked: {}", panic_message(e)))),
                        Ok(Err(_)) => (RunStatus::Cancelled, None, Some("the job was cancelled".into())),
                        Err(_) => {
                            cancel.cancel();
                            task.abort();
                            (RunStatus::TimedOut, None, Some(format!("timed out after {} s", job.timeout_secs)))
                        }
                    },
                    () = inner.runs_cancel.cancelled() => {
                        task.abort();
                        (RunStatus::Interrupted, None, Some("the server shut down before the run finished".into()))
                    }
                }
            }
        };
        // A kind that noticed the shutdown cancellation first still ends as interrupted.
        let (status, error) = if inner.runs_cancel.is_cancelled() && status != RunStatus::Succeeded
        {
            (
                RunStatus::Interrupted,
                Some("the server shut down before the run finished".to_string()),
            )
        } else {
            (status, error)
        };
        // What a run prints never keeps its job's secrets.
        let redactor = log.redactor();
        let output = output.map(|o| redactor.value(&o));
        let error = error.map(|e| redactor.text(&e));
        fail::fail_point!("before_finish", |_| std::process::abort());
        log.line(&format!(
            "{} {}{}",
            inner.clock.now().format("%H:%M:%S%.3f"),
            status.as_str(),
            error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ));
        let text = inner.logs.end(&log);
        self.record_finish(run_id, status, output.as_ref(), error.as_deref(), &text)
            .await;
        inner.logs.forget(run_id);
        inner.activity.send_modify(|n| *n += 1);
        self.event(
            "run_finished",
            serde_json::json!({ "job": job.id, "run": run_id, "status": status.as_str() }),
        );
        inner.finished.send_modify(|n| *n += 1);

        let next_queued = {
            let mut jobs = lock(&inner.jobs);
            jobs.get_mut(&job.id).and_then(|s| {
                s.active = s.active.saturating_sub(1);
                s.queue.pop_front()
            })
        };
        if let Some(queued) = next_queued {
            if let Err(e) = inner.store.mark_started(queued, inner.clock.now()).await {
                tracing::error!(error = %e, run_id = queued, "cannot start a queued run");
            } else {
                self.begin(job.clone(), queued, RunMeta::first(queued, None));
            }
        }
        let retry = matches!(status, RunStatus::Failed | RunStatus::TimedOut)
            && attempt <= job.retries
            && !inner.runs_cancel.is_cancelled();
        if retry {
            self.schedule_retry(job, attempt + 1, meta.first_run);
        }
    }

    /// Records a run's end, retrying through a store outage (locked SQLite, a database
    /// that went away) so no run is left `running` once the store is back. If the process
    /// dies first, the next boot marks the run interrupted.
    async fn record_finish(
        &self,
        run_id: i64,
        status: RunStatus,
        output: Option<&serde_json::Value>,
        error: Option<&str>,
        log: &str,
    ) {
        let inner = &self.inner;
        let mut delay = Duration::from_millis(200);
        loop {
            match inner
                .store
                .finish_run(run_id, status, inner.clock.now(), output, error, Some(log))
                .await
            {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, run_id, ?delay, "cannot record the end of a run yet; retrying");
                    if inner.runs_cancel.is_cancelled() && delay > Duration::from_secs(2) {
                        // Shutting down: leave it to the next boot.
                        return;
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Retries after `retry_backoff_secs * 2^(attempt-2)`, as a new run row.
    fn schedule_retry(&self, job: Job, attempt: u32, first_run: i64) {
        let backoff = Duration::from_secs(
            job.retry_backoff_secs
                .saturating_mul(1u64 << (attempt - 2).min(16))
                .min(crate::model::MAX_RETRY_BACKOFF_SECS),
        );
        let engine = self.clone();
        self.inner.tracker.spawn(async move {
            // A pending retry never holds up shutdown: it ends when firing stops.
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = engine.inner.shutdown.cancelled() => return,
                () = engine.inner.runs_cancel.cancelled() => return,
            }
            let now = engine.inner.clock.now();
            let claimed = engine
                .inner
                .store
                .insert_run(&NewRun {
                    job_id: &job.id,
                    trigger: Trigger::Retry,
                    status: RunStatus::Running,
                    scheduled_at: None,
                    started_at: Some(now),
                    attempt,
                    error: None,
                    node: &engine.inner.config.node,
                })
                .await;
            match claimed {
                Ok(Some(id)) => engine.begin(
                    job,
                    id,
                    RunMeta {
                        attempt,
                        scheduled_at: None,
                        first_run,
                    },
                ),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, job = job.id, "cannot record a retry"),
            }
        });
    }

    // ---- firing ------------------------------------------------------------------

    /// Fires every slot due at `now` at once. Tests with an injected clock drive time
    /// through this; the loop uses [`Engine::claim_due`] and starts runs on the dot.
    pub async fn fire_due(&self, now: DateTime<Utc>) {
        for c in self.claim_due(now, now).await {
            self.launch(c.job, c.run_id, RunMeta::first(c.run_id, Some(c.slot)));
        }
    }

    /// Claims every slot due up to `horizon` (which may be a little ahead of `now`, so the
    /// claim is committed before the slot's instant) and returns the runs to start.
    async fn claim_due(&self, now: DateTime<Utc>, horizon: DateTime<Utc>) -> Vec<Claimed> {
        let _firing = self.inner.firing.lock().await;
        let due: Vec<(Job, Vec<DateTime<Utc>>)> = {
            let mut jobs = lock(&self.inner.jobs);
            jobs.values_mut()
                .filter(|s| s.job.enabled && s.next.is_some_and(|n| n <= horizon))
                .map(|s| {
                    let slots = s
                        .schedule
                        .slots_between(s.cursor, horizon, MAX_CATCH_UP_SLOTS);
                    if let Some(last) = slots.last() {
                        s.cursor = *last;
                    }
                    s.next = s.schedule.next_after(s.cursor.max(now));
                    (s.job.clone(), slots)
                })
                .collect()
        };
        let mut claimed = Vec::new();
        for (job, slots) in due {
            // More than one slot due means the loop fell behind; the earlier ones follow
            // the misfire policy like slots missed while the server was down.
            if let Some((last, missed)) = slots.split_last() {
                if !missed.is_empty() {
                    self.record_missed(&job, missed, "the scheduler fell behind", now)
                        .await;
                }
                claimed.extend(self.fire_slot(&job, *last, Trigger::Schedule, now).await);
            }
        }
        claimed.sort_by_key(|c| c.slot);
        claimed
    }

    /// Waits until the clock reads `at`: a timer to within two milliseconds (tokio's timer
    /// rounds up to whole milliseconds), then yielding until the instant.
    async fn wait_until(&self, at: DateTime<Utc>) {
        let clock = &self.inner.clock;
        if let Ok(ahead) = (at - clock.now() - chrono::Duration::milliseconds(2)).to_std() {
            tokio::time::sleep(ahead).await;
        }
        // Bounded: a clock that does not move (tests) must not spin forever.
        let give_up = tokio::time::Instant::now() + Duration::from_millis(50);
        while clock.now() < at && tokio::time::Instant::now() < give_up {
            tokio::task::yield_now().await;
        }
    }

    /// Claims `slot`, applying the overlap policy; returns the run to start, if any.
    async fn fire_slot(
        &self,
        job: &Job,
        slot: DateTime<Utc>,
        trigger: Trigger,
        now: DateTime<Utc>,
    ) -> Option<Claimed> {
        let (active, queued) = {
            let jobs = lock(&self.inner.jobs);
            jobs.get(&job.id)
                .map_or((0, 0), |s| (s.active, s.queue.len()))
        };
        let node = &self.inner.config.node;
        let claim = |status, error| NewRun {
            job_id: &job.id,
            trigger,
            status,
            scheduled_at: Some(slot),
            started_at: Some(now.max(slot)), // claimed a little ahead; starts on the slot
            attempt: 1,
            error,
            node,
        };
        let outcome = if active == 0 || job.overlap == Overlap::Allow {
            self.inner
                .store
                .insert_run(&claim(RunStatus::Running, None))
                .await
                .map(|id| id.map(|id| (id, RunStatus::Running)))
        } else if job.overlap == Overlap::Queue && queued == 0 {
            let mut run = claim(RunStatus::Queued, None);
            run.started_at = None;
            self.inner
                .store
                .insert_run(&run)
                .await
                .map(|id| id.map(|id| (id, RunStatus::Queued)))
        } else {
            let why = if job.overlap == Overlap::Queue {
                "a run is already queued behind the active one"
            } else {
                "the previous run is still active (overlap = skip)"
            };
            self.inner
                .store
                .insert_run(&claim(RunStatus::Skipped, Some(why)))
                .await
                .map(|id| id.map(|id| (id, RunStatus::Skipped)))
        };
        match outcome {
            Ok(Some((id, RunStatus::Running))) => {
                fail::fail_point!("after_claim", |_| std::process::abort());
                self.mark_active(&job.id);
                return Some(Claimed {
                    job: job.clone(),
                    run_id: id,
                    slot,
                });
            }
            Ok(Some((id, RunStatus::Queued))) => {
                let mut jobs = lock(&self.inner.jobs);
                if let Some(s) = jobs.get_mut(&job.id) {
                    s.queue.push_back(id);
                }
            }
            Ok(Some((_, _))) => {}
            // Another claim of this slot won: it runs there, not here.
            Ok(None) => tracing::debug!(job = job.id, %slot, "slot already claimed"),
            Err(e) => {
                tracing::error!(error = %e, job = job.id, %slot, "cannot claim a slot; it is not run")
            }
        }
        None
    }

    /// Records missed slots per the misfire policy: all skipped, or all but the latest
    /// skipped and the latest run once.
    async fn record_missed(
        &self,
        job: &Job,
        missed: &[DateTime<Utc>],
        why: &str,
        now: DateTime<Utc>,
    ) {
        let (skip, run_once) = match job.misfire {
            Misfire::Skip => (missed, None),
            Misfire::RunOnce => match missed.split_last() {
                Some((last, rest)) => (rest, Some(*last)),
                None => (missed, None),
            },
        };
        let reason = format!("missed: {why} (misfire = {})", job.misfire.as_str());
        if let Err(e) = self
            .inner
            .store
            .insert_skipped_slots(&job.id, skip, &reason, now, &self.inner.config.node)
            .await
        {
            tracing::error!(error = %e, job = job.id, "cannot record missed slots");
        }
        if let Some(slot) = run_once {
            if let Some(c) = self.fire_slot(job, slot, Trigger::CatchUp, now).await {
                self.launch(c.job, c.run_id, RunMeta::first(c.run_id, Some(c.slot)));
            }
        }
    }

    /// Boot: interrupted runs, jobs into memory, missed slots per misfire policy.
    async fn recover(&self, running: bool) -> Result<()> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let interrupted = inner
            .store
            .interrupt_unfinished("the server stopped while this run was in flight", now)
            .await?;
        if !interrupted.is_empty() {
            self.event(
                "runs_interrupted",
                serde_json::json!({ "count": interrupted.len() }),
            );
        }
        let mut catch_up = Vec::new();
        for (job, last_slot_ms) in inner.store.list_jobs().await? {
            let schedule = match Schedule::parse(&job.schedule, &job.timezone) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(job = job.id, error = %e, "stored job has an invalid schedule; it will not fire until fixed");
                    continue;
                }
            };
            let last = DateTime::from_timestamp_millis(last_slot_ms).unwrap_or(now);
            if running && job.enabled {
                let all = schedule.slots_between(last, now, MAX_CATCH_UP_SLOTS + 1);
                if all.len() > MAX_CATCH_UP_SLOTS {
                    self.event(
                        "catch_up_truncated",
                        serde_json::json!({ "job": job.id, "recorded": MAX_CATCH_UP_SLOTS }),
                    );
                }
                let missed: Vec<_> = all.into_iter().take(MAX_CATCH_UP_SLOTS).collect();
                if !missed.is_empty() {
                    catch_up.push((job.clone(), missed));
                }
            }
            self.install(job, schedule, now.max(last));
        }
        for (job, missed) in catch_up {
            self.record_missed(&job, &missed, "the server was down", now)
                .await;
        }
        for run in interrupted {
            if let Ok(job) = self.job(&run.job_id) {
                if run.attempt <= job.retries {
                    self.schedule_retry(job, run.attempt + 1, run.id);
                }
            }
        }
        Ok(())
    }

    fn loop_active(&self) -> bool {
        lock(&self.inner.loop_token)
            .as_ref()
            .is_some_and(|t| !t.is_cancelled())
    }

    async fn set_desired(&self, desired: DesiredState) -> Result<()> {
        self.inner
            .store
            .set_desired_state(desired, self.inner.clock.now())
            .await?;
        *lock(&self.inner.desired) = desired;
        Ok(())
    }

    /// Records a first heartbeat (so status right after start says running) and spawns
    /// the loop.
    async fn spawn_loop(&self) {
        let token = self.inner.shutdown.child_token();
        *lock(&self.inner.loop_token) = Some(token.clone());
        self.heartbeat().await;
        let engine = self.clone();
        self.inner
            .tracker
            .spawn(async move { engine.run_loop(token).await });
    }

    /// The firing loop: sleep until the earliest slot or heartbeat, fire, repeat.
    async fn run_loop(&self, token: CancellationToken) {
        let inner = &self.inner;
        let every = inner.config.heartbeat;
        let lead = chrono::Duration::from_std(CLAIM_LEAD).unwrap_or_default();
        let mut next_beat = tokio::time::Instant::now() + every;
        loop {
            // Claim what falls due within the lead, then start each run on its instant:
            // the claim's commit is off the critical path.
            let now = inner.clock.now();
            let claimed = self.claim_due(now, now + lead).await;
            let mut i = 0;
            while i < claimed.len() {
                let slot = claimed[i].slot;
                self.wait_until(slot).await;
                let lag =
                    (inner.clock.now() - slot).num_microseconds().unwrap_or(0) as f64 / 1000.0;
                *lock(&inner.loop_lag_ms) = Some(lag.max(0.0));
                while i < claimed.len() && claimed[i].slot == slot {
                    let c = &claimed[i];
                    self.launch(
                        c.job.clone(),
                        c.run_id,
                        RunMeta::first(c.run_id, Some(c.slot)),
                    );
                    i += 1;
                }
            }
            let next_slot = lock(&inner.jobs).values().filter_map(|s| s.next).min();
            let slot_at = next_slot.map(|t| {
                let wait = (t - lead - inner.clock.now())
                    .to_std()
                    .unwrap_or(Duration::ZERO);
                tokio::time::Instant::now() + wait
            });
            let wake = slot_at.map_or(next_beat, |s| s.min(next_beat));
            tokio::select! {
                () = token.cancelled() => break,
                () = inner.wake.notified() => continue,
                () = tokio::time::sleep_until(wake) => {}
            }
            if tokio::time::Instant::now() >= next_beat {
                self.heartbeat().await;
                next_beat += every;
                let now = tokio::time::Instant::now();
                if next_beat < now {
                    // Fell behind (suspended process, blocked runtime): beat from now on
                    // rather than bursting to catch up.
                    next_beat = now + every;
                }
            }
        }
    }

    /// Restarts the loop when its heartbeat goes stale while it should be running: a
    /// loop that died or hangs is replaced, logged, and counted in status.
    fn spawn_watchdog(&self) {
        let engine = self.clone();
        let shutdown = self.inner.shutdown.clone();
        self.inner.tracker.spawn(async move {
            let every = engine.inner.config.heartbeat;
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(every) => {}
                }
                if engine.status().state == SchedulerState::Stalled && !shutdown.is_cancelled() {
                    let _control = engine.inner.control.lock().await;
                    if *lock(&engine.inner.desired) != DesiredState::Running {
                        continue;
                    }
                    tracing::warn!("the scheduler loop stalled; restarting it");
                    if let Some(token) = lock(&engine.inner.loop_token).take() {
                        token.cancel();
                    }
                    *lock(&engine.inner.loop_restarts) += 1;
                    engine.spawn_loop().await;
                    engine.event("loop_restarted", serde_json::json!({ "by": "watchdog" }));
                }
            }
        });
    }

    /// Records one heartbeat: a store row, an event-log line and the in-memory copy.
    async fn heartbeat(&self) {
        fail::fail_point!("heartbeat", |_| ());
        let inner = &self.inner;
        let hb = Heartbeat {
            node: inner.config.node.clone(),
            pid: inner.pid,
            started_at: inner.started_at,
            at: inner.clock.now(),
            next_runs: next_runs(&lock(&inner.jobs)),
        };
        if let Err(e) = inner.store.record_heartbeat(&hb).await {
            // The tick still counts in memory: the loop is alive even if the store is not.
            tracing::warn!(error = %e, "cannot store the heartbeat");
        }
        *lock(&inner.last_heartbeat) = Some(hb.at);
        self.event(
            "heartbeat",
            serde_json::json!({ "next_runs": hb.next_runs }),
        );
    }

    fn event(&self, name: &str, fields: serde_json::Value) {
        let inner = &self.inner;
        let mut fields = fields;
        if let Some(map) = fields.as_object_mut() {
            map.insert("node".into(), inner.config.node.clone().into());
            map.insert("pid".into(), inner.pid.into());
        }
        inner.events.write(name, fields);
    }
}

fn job_view(s: &JobState) -> Job {
    let mut job = s.job.clone();
    job.next_run_at = s.next;
    job
}

fn next_runs(jobs: &HashMap<String, JobState>) -> Vec<NextRun> {
    let mut out: Vec<NextRun> = jobs
        .values()
        .filter_map(|s| {
            s.next.map(|at| NextRun {
                job: s.job.id.clone(),
                at,
            })
        })
        .collect();
    out.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.job.cmp(&b.job)));
    out
}

fn panic_message(e: tokio::task::JoinError) -> String {
    let payload = e.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Creates and removes a file in `dir`, proving it is writable.
fn probe_writable(dir: &std::path::Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".write-probe-{}", std::process::id()));
    std::fs::write(&probe, b"ok")?;
    std::fs::remove_file(&probe)
}
