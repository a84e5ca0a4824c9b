//! Every node's work: executing the runs it is given. A run starts as a row the store
//! already holds (`running`); here its kind is called under the guard ([`guard`]), what
//! it printed is scrubbed of its job's secrets, and its end is recorded — only if it is
//! still running, so a run someone else ended (cancelled, interrupted) keeps their
//! record. Then the job's queued run starts, and a failure is retried if the job allows
//! ([`retry`]).
//!
//! - [`guard`]: timeout, panic capture and shutdown around one kind call.
//! - [`retry`]: whether and when a run is tried again (pure).
//! - [`claim`]: run now — started here on one node, queued for any node to claim on
//!   several.

pub mod claim;
pub mod guard;
pub mod retry;

use crate::error::Result;
use crate::kinds::JobContext;
use crate::live_log::{LiveLogs, RunLog};
use crate::model::{Job, Overlap, Run, RunStatus, Trigger};
use crate::secrets::Redactor;
use crate::store::{NewRun, RunEnd};
use crate::Engine;
use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The runner's state in memory.
pub(crate) struct State {
    /// Where jobs' code runs: a runtime of its own, so a job that blocks its thread
    /// (a badly written kind, a synchronous library) never stalls the firing loop, the
    /// elector or the API on the engine's runtime.
    jobs: JobsRuntime,
    /// Cancelled when runs in flight are abandoned: at the end of the shutdown grace (not
    /// at its start: runs keep their grace period), or when this node learns it was
    /// declared gone. Replaced after the latter, so later runs get a fresh one.
    abandon: std::sync::Mutex<CancellationToken>,
    /// The logs of runs in flight here.
    pub logs: LiveLogs,
    /// Runs executing here now.
    in_flight: AtomicUsize,
    /// Wakes the claimer: a run no node has was announced (several nodes).
    pub claims: tokio::sync::Notify,
    /// Each run in flight here by id: cancelled when an operator cancels the run, which
    /// stops its work (the kind's task is aborted: a request dropped, a process group
    /// killed).
    stops: std::sync::Mutex<std::collections::HashMap<i64, CancellationToken>>,
}

impl State {
    pub fn new() -> std::io::Result<Self> {
        Ok(State {
            jobs: JobsRuntime::new()?,
            abandon: Default::default(),
            logs: LiveLogs::default(),
            in_flight: AtomicUsize::new(0),
            claims: tokio::sync::Notify::new(),
            stops: Default::default(),
        })
    }
}

/// The jobs' runtime, shut down without waiting when the engine goes (its tasks were
/// waited for, or abandoned, by then).
struct JobsRuntime {
    runtime: std::sync::Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
}

/// Threads for jobs' code: jobs mostly wait on I/O; a blocking one holds only its own.
const JOB_THREADS: usize = 2;

impl JobsRuntime {
    fn new() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(JOB_THREADS)
            .thread_name("echopilot-job")
            .enable_all()
            .build()?;
        Ok(JobsRuntime {
            handle: runtime.handle().clone(),
            runtime: std::sync::Mutex::new(Some(runtime)),
        })
    }
}

impl Drop for JobsRuntime {
    fn drop(&mut self) {
        // Not a blocking shutdown: dropping a runtime inside another one's task panics.
        if let Some(runtime) = self
            .runtime
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            runtime.shutdown_background();
        }
    }
}

/// Which attempt a run is, and of what.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunMeta {
    pub attempt: u32,
    pub scheduled_at: Option<DateTime<Utc>>,
    /// The id of the chain's first attempt: retries share it.
    pub first_run: i64,
}

impl RunMeta {
    pub fn first(run_id: i64, scheduled_at: Option<DateTime<Utc>>) -> Self {
        RunMeta {
            attempt: 1,
            scheduled_at,
            first_run: run_id,
        }
    }
}

/// Runs executing on this node.
pub(crate) fn in_flight(engine: &Engine) -> usize {
    engine.inner.runner.in_flight.load(Ordering::Relaxed)
}

/// Ends the shutdown grace: every run still in flight is cancelled and recorded as
/// `interrupted`.
pub(crate) fn abandon(engine: &Engine) {
    abandon_token(engine).cancel();
}

/// Abandons every run in flight here (this node was declared gone: its runs were
/// rescued, and their ends would be refused), then carries on with a fresh token.
pub(crate) fn abandon_all(engine: &Engine) {
    let mut token = engine
        .inner
        .runner
        .abandon
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    token.cancel();
    *token = CancellationToken::new();
}

fn abandon_token(engine: &Engine) -> CancellationToken {
    engine
        .inner
        .runner
        .abandon
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// Stops the work of run `id` if it is in flight here (it was cancelled); false if not.
pub(crate) fn stop(engine: &Engine, id: i64) -> bool {
    let stops = engine
        .inner
        .runner
        .stops
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    stops.get(&id).map(CancellationToken::cancel).is_some()
}

/// How a run outside any slot starts: why, with which overrides, rerunning what.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub trigger: Trigger,
    /// Params merged over the job's (top-level keys replaced) for this run only.
    pub params: Option<serde_json::Value>,
    pub rerun_of: Option<i64>,
}

impl RunRequest {
    pub fn new(trigger: Trigger) -> Self {
        RunRequest {
            trigger,
            params: None,
            rerun_of: None,
        }
    }
}

/// The job as this run executes it: its params with the run's overrides merged over.
pub(crate) fn with_overrides(mut job: Job, overrides: Option<&serde_json::Value>) -> Job {
    if let (Some(over), Some(params)) = (
        overrides.and_then(|o| o.as_object()),
        job.params.as_object_mut(),
    ) {
        for (k, v) in over {
            params.insert(k.clone(), v.clone());
        }
    }
    job
}

/// Executes a run the store already started here (a queued run taken over).
pub(crate) fn launch_stored(engine: &Engine, run: Run) {
    match engine.job(&run.job_id) {
        Ok(job) => launch(
            engine,
            job,
            run.id,
            RunMeta {
                attempt: run.attempt,
                scheduled_at: run.scheduled_at,
                first_run: run.id,
            },
            run.params,
        ),
        Err(_) => {
            // Its job is gone: nothing can run it; say so rather than leave it running.
            let e = engine.clone();
            engine.spawn(async move {
                let end = RunEnd {
                    id: run.id,
                    status: RunStatus::Failed,
                    at: e.now(),
                    output: None,
                    error: Some("its job no longer exists"),
                    log: None,
                };
                if let Err(err) = e.inner.store.finish_run(&end).await {
                    tracing::warn!(error = %crate::error::chain(&err), run_id = run.id, "cannot end a run whose job is gone");
                }
            });
        }
    }
}

/// Records a run that starts now and executes it (run now, retries).
pub(crate) async fn start(
    engine: &Engine,
    job: Job,
    req: RunRequest,
    meta: Option<RunMeta>,
) -> Result<Run> {
    let now = engine.now();
    let attempt = meta.map_or(1, |m| m.attempt);
    let params = req.params.as_ref().map(|p| p.to_string());
    let id = engine
        .inner
        .store
        .start_run(&NewRun {
            job_id: &job.id,
            overlap: job.overlap,
            trigger: req.trigger,
            attempt,
            started_at: now,
            node: &engine.inner.config.node,
            params: params.as_deref(),
            rerun_of: req.rerun_of,
        })
        .await?;
    let run = Run {
        id,
        job_id: job.id.clone(),
        trigger: req.trigger,
        status: RunStatus::Running,
        scheduled_at: None,
        started_at: Some(now),
        finished_at: None,
        attempt,
        output: serde_json::json!({}),
        error: None,
        node: engine.inner.config.node.clone(),
        params: req.params.clone(),
        rerun_of: req.rerun_of,
        reruns: None,
    };
    launch(
        engine,
        job,
        id,
        meta.unwrap_or(RunMeta::first(id, None)),
        req.params,
    );
    // What was just committed; no need to read it back.
    Ok(run)
}

/// Executes an already recorded running run in its own tracked task: `job` as it is, with
/// the run's `overrides` merged over its params (kept for a retry of this run).
pub(crate) fn launch(
    engine: &Engine,
    job: Job,
    run_id: i64,
    meta: RunMeta,
    overrides: Option<serde_json::Value>,
) {
    let job = with_overrides(job, overrides.as_ref());
    let state = &engine.inner.runner;
    state.in_flight.fetch_add(1, Ordering::Relaxed);
    // Opened before the task starts, so the run is followable as soon as it exists.
    let log = state.logs.open(run_id, Redactor::for_params(&job.params));
    let stop = abandon_token(engine).child_token();
    state
        .stops
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(run_id, stop.clone());
    let e = engine.clone();
    let run = Execution {
        job,
        run_id,
        meta,
        overrides,
    };
    // Every line logged about the run carries its id and job.
    let span = tracing::info_span!("run", run_id, job = %run.job.id);
    engine.spawn(tracing::Instrument::instrument(
        async move { execute(&e, run, log, stop).await },
        span,
    ));
}

/// A run being executed: the job with the run's overrides merged, and the overrides alone.
struct Execution {
    job: Job,
    run_id: i64,
    meta: RunMeta,
    overrides: Option<serde_json::Value>,
}

/// Runs the kind under the guard, records the outcome, starts whatever was queued behind
/// it, and schedules a retry if the policy says so.
async fn execute(engine: &Engine, run: Execution, log: RunLog, stop: CancellationToken) {
    let Execution {
        job,
        run_id,
        meta,
        overrides,
    } = run;
    let inner = &engine.inner;
    let state = &inner.runner;
    let abandon = abandon_token(engine);
    let attempt = meta.attempt;
    engine.event(
        "run_started",
        serde_json::json!({ "job": job.id, "run": run_id, "attempt": attempt }),
    );
    log.line(&format!(
        "{} run {run_id} of {} started (attempt {attempt}, kind {})",
        engine.now().format("%H:%M:%S%.3f"),
        job.id,
        job.kind
    ));
    inner.notifier.run_started();
    tracing::debug!(attempt, kind = %job.kind, "run started");
    let started = engine.now();
    // The lag of a slot's first attempt (a retry keeps its chain's slot).
    inner.metrics.run_started(
        meta.scheduled_at
            .filter(|_| attempt == 1)
            .map(|s| started - s),
    );
    let outcome = match inner.kinds.get(&job.kind) {
        None => guard::Outcome {
            status: RunStatus::Failed,
            output: None,
            error: Some(format!("unknown kind {:?}", job.kind)),
        },
        Some(kind) => {
            let ctx = JobContext {
                run_id,
                job: job.clone(),
                attempt,
                scheduled_at: meta.scheduled_at,
                first_run: meta.first_run,
                cancel: stop.child_token(),
                log: log.clone(),
                engine: engine.clone(),
            };
            let timeout = Duration::from_secs(job.timeout_secs);
            let run = guard::run(kind, ctx, timeout, &abandon, &stop, &state.jobs.handle);
            if inner.store.shared() {
                share_log_while(engine, run_id, &log, &stop, run).await
            } else {
                run.await
            }
        }
    };
    // No longer executing here, whatever its record says next (status reads this).
    state.in_flight.fetch_sub(1, Ordering::Relaxed);
    state
        .stops
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&run_id);
    // What a run prints never keeps its job's secrets.
    let redactor = log.redactor();
    let output = outcome.output.map(|o| redactor.value(&o));
    let error = outcome.error.map(|e| redactor.text(&e));
    let status = outcome.status;
    fail::fail_point!("before_finish", |_| std::process::abort());
    log.line(&format!(
        "{} {}{}",
        engine.now().format("%H:%M:%S%.3f"),
        status.as_str(),
        error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    ));
    let text = state.logs.end(&log);
    let end = RunEnd {
        id: run_id,
        status,
        at: engine.now(),
        output: output.as_ref(),
        error: error.as_deref(),
        log: Some(&text),
    };
    let recorded = record_end(engine, &end).await;
    state.logs.forget(run_id);
    inner.notifier.run_ended();
    engine.event(
        "run_finished",
        serde_json::json!({ "job": job.id, "run": run_id, "status": status.as_str() }),
    );
    match recorded {
        Some(true) => {
            inner
                .metrics
                .run_ended(&job.id, status.as_str(), Some(end.at - started), end.at)
        }
        Some(false) => {
            // Someone ended it first (cancelled it, or recovery interrupted it): theirs
            // stands, and nothing follows from this one but its log (kept if cancelled).
            if let Err(e) = inner.store.keep_log(run_id, &text).await {
                tracing::warn!(error = %crate::error::chain(&e), run_id, "cannot keep the log of a cancelled run");
            }
            tracing::info!(
                run_id,
                job = job.id,
                "the run was ended elsewhere; its result is dropped"
            );
            return;
        }
        // Shutting down with the store out of reach: the next boot decides.
        None => return,
    }
    if job.overlap == Overlap::Queue {
        start_queued(engine, &job.id).await;
    }
    if retry::should_retry(status, attempt, job.retries, abandon.is_cancelled()) {
        let base = engine.job(&job.id).unwrap_or(job);
        schedule_retry(
            engine,
            base,
            RunMeta {
                attempt: attempt + 1,
                ..meta
            },
            overrides,
        );
    }
}

/// How often the log of a run in flight is written where other nodes can follow it.
const SHARE_LOG_EVERY: Duration = Duration::from_secs(1);

/// Runs `run` to its end, meanwhile keeping the run's log so far in the store whenever it
/// grew (several nodes: a follower on another node reads it there), and looking whether
/// it was cancelled (should the announcement have been missed: its work stops then).
async fn share_log_while(
    engine: &Engine,
    run_id: i64,
    log: &RunLog,
    stop: &CancellationToken,
    run: impl std::future::Future<Output = guard::Outcome>,
) -> guard::Outcome {
    tokio::pin!(run);
    let mut tick = tokio::time::interval(SHARE_LOG_EVERY);
    tick.tick().await;
    let mut shared = 0;
    loop {
        tokio::select! {
            outcome = &mut run => return outcome,
            _ = tick.tick() => {
                let text = log.text();
                if text.len() != shared {
                    shared = text.len();
                    if let Err(e) = engine.inner.store.save_log(run_id, &text).await {
                        tracing::debug!(error = %crate::error::chain(&e), run_id, "cannot share a run's log yet");
                    }
                }
                if let Ok(Some(r)) = engine.inner.store.get_run(run_id).await {
                    if r.status == RunStatus::Cancelled {
                        stop.cancel();
                    }
                }
            }
        }
    }
}

/// Records a run's end, retrying through a store outage (locked SQLite, a database that
/// went away) so no run is left `running` once the store is back. `Some(false)` when the
/// run was no longer running; `None` when shutdown came first (the next boot marks it
/// interrupted).
async fn record_end(engine: &Engine, end: &RunEnd<'_>) -> Option<bool> {
    let mut delay = Duration::from_millis(200);
    loop {
        match engine.inner.store.finish_run(end).await {
            Ok(recorded) => return Some(recorded),
            Err(e) => {
                tracing::warn!(error = %crate::error::chain(&e), run_id = end.id, ?delay, "cannot record the end of a run yet; retrying");
                if abandon_token(engine).is_cancelled() && delay > Duration::from_secs(2) {
                    return None;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Starts the run queued behind the one that just ended (overlap = queue), as its own row
/// says (its slot, its overrides) with the job as it is now.
async fn start_queued(engine: &Engine, job_id: &str) {
    let store = &engine.inner.store;
    let node = &engine.inner.config.node;
    let started = match store.start_queued(job_id, node, engine.now()).await {
        Ok(Some(id)) => store.get_run(id).await,
        Ok(None) => Ok(None),
        Err(e) => Err(e),
    };
    match started {
        Ok(Some(run)) => launch_stored(engine, run),
        Ok(None) => {}
        Err(e) => {
            tracing::error!(error = %crate::error::chain(&e), job = job_id, "cannot start a queued run")
        }
    }
}

/// Retries after the backoff, as a new run row (attempt `meta.attempt`, keeping the
/// chain's slot and first run, so receivers see one idempotency key for the whole chain).
/// A pending retry never holds up shutdown: it ends when firing stops.
fn schedule_retry(engine: &Engine, job: Job, meta: RunMeta, overrides: Option<serde_json::Value>) {
    let backoff = retry::backoff(job.retry_backoff_secs, meta.attempt);
    let e = engine.clone();
    engine.spawn(async move {
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = e.inner.shutdown.cancelled() => return,
        }
        let id = job.id.clone();
        let req = RunRequest {
            params: overrides,
            ..RunRequest::new(Trigger::Retry)
        };
        if let Err(err) = start(&e, job, req, Some(meta)).await {
            tracing::error!(error = %crate::error::chain(&err), job = id, "cannot record a retry");
        }
    });
}

/// Boot, on every node: this node's runs left queued or running by its previous process
/// become `interrupted`, and are retried if their job allows.
pub(crate) async fn recover(engine: &Engine) -> Result<()> {
    let interrupted = engine
        .inner
        .store
        .interrupt_runs_of(
            &engine.inner.config.node,
            "the server stopped while this run was in flight",
            engine.now(),
        )
        .await?;
    if !interrupted.is_empty() {
        engine.event(
            "runs_interrupted",
            serde_json::json!({ "count": interrupted.len() }),
        );
    }
    retry_interrupted(engine, interrupted);
    Ok(())
}

/// Retries interrupted runs whose job allows another attempt.
pub(crate) fn retry_interrupted(engine: &Engine, runs: Vec<Run>) {
    for run in runs {
        if let Ok(job) = engine.job(&run.job_id) {
            if run.attempt <= job.retries {
                let meta = RunMeta {
                    attempt: run.attempt + 1,
                    scheduled_at: run.scheduled_at,
                    first_run: run.id,
                };
                schedule_retry(engine, job, meta, run.params.clone());
            }
        }
    }
}
