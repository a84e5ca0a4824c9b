//! The scheduler's control surface: start, stop, restart, status, and the heartbeat loop.
//!
//! The operator's intent is written to the store *before* the scheduler acts on it, so a
//! server killed at any point comes back in the state it was last asked to be in. The loop
//! runs as one tracked task with its own cancellation token: stop cancels it (in-flight
//! runs are not touched), start spawns it again, restart does both, which also revives a
//! loop that stalled.

use crate::clock::Clock;
use crate::error::{EngineError, Result};
use crate::events::EventLog;
use crate::store::{DesiredState, Heartbeat, NextRun, Store};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How the engine is set up; the server fills it from flags, env and config.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where the SQLite file, logs and everything else the engine writes live.
    pub data_dir: PathBuf,
    /// How often the scheduler records a heartbeat. Status says `stalled` past twice this.
    pub heartbeat: Duration,
    /// This node's name in heartbeats and runs.
    pub node: String,
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
}

/// The engine handle: cheap to clone, shared by the REST API, server functions and CLI
/// paths of the server.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("node", &self.inner.config.node).finish_non_exhaustive()
    }
}

struct Inner {
    config: EngineConfig,
    store: Store,
    events: EventLog,
    clock: Arc<dyn Clock>,
    pid: u32,
    started_at: DateTime<Utc>,
    /// Every long-lived task is spawned here so shutdown can wait for it.
    tracker: TaskTracker,
    /// The server's root token; the loop's token is a child of it.
    shutdown: CancellationToken,
    /// Serialises start/stop/restart, which await store writes; a tokio mutex because it
    /// is held across those awaits.
    control: tokio::sync::Mutex<()>,
    /// The loop's token while it runs. A std mutex: held only to swap the token.
    loop_token: Mutex<Option<CancellationToken>>,
    /// The intent, mirrored from the store so status needs no query.
    desired: Mutex<DesiredState>,
    last_heartbeat: Mutex<Option<DateTime<Utc>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these short locks cannot leave the value half-written
    // (each is a plain assignment), so a poisoned lock is still safe to use.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Engine {
    /// Opens the data dir and store, and brings the scheduler to its stored intent
    /// (running on a fresh data dir).
    pub async fn open(
        config: EngineConfig,
        clock: Arc<dyn Clock>,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> Result<Self> {
        let dir = &config.data_dir;
        let dir_err = |source| EngineError::DataDir {
            path: dir.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(dir_err)?;
        // Prove the directory takes writes now, rather than at the first heartbeat.
        probe_writable(dir).map_err(dir_err)?;
        let store = Store::open_sqlite(&dir.join("echopilot.db")).await?;
        let events = EventLog::open(&dir.join("logs"))?;
        let desired = store.desired_state().await?.unwrap_or(DesiredState::Running);
        let started_at = clock.now();
        let engine = Engine {
            inner: Arc::new(Inner {
                pid: std::process::id(),
                started_at,
                store,
                events,
                clock,
                tracker,
                shutdown,
                control: tokio::sync::Mutex::new(()),
                loop_token: Mutex::new(None),
                desired: Mutex::new(desired),
                last_heartbeat: Mutex::new(None),
                config,
            }),
        };
        engine.event("server_started", serde_json::json!({ "desired": desired }));
        if desired == DesiredState::Running {
            engine.spawn_loop().await;
        }
        Ok(engine)
    }

    /// The store, for callers that read history directly.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Starts the scheduler (idempotent) and remembers that it should run.
    pub async fn start(&self) -> Result<Status> {
        let _control = self.inner.control.lock().await;
        self.set_desired(DesiredState::Running).await?;
        if !self.loop_active() {
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
        self.set_desired(DesiredState::Running).await?;
        if let Some(token) = lock(&self.inner.loop_token).take() {
            token.cancel();
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
        Status {
            state,
            running: state == SchedulerState::Running,
            pid: inner.pid,
            started_at: inner.started_at,
            uptime_secs: (now - inner.started_at).num_seconds().max(0) as u64,
            last_heartbeat: last,
            heartbeat_age_secs: age,
            heartbeat_interval_secs: inner.config.heartbeat.as_secs(),
            next_runs: Vec::new(),
            node: inner.config.node.clone(),
        }
    }

    /// Stops the loop for process shutdown without changing the stored intent: a server
    /// that was running before SIGTERM resumes by itself when started again.
    pub async fn shutdown(&self) {
        if let Some(token) = lock(&self.inner.loop_token).take() {
            token.cancel();
        }
        self.event("server_stopping", serde_json::json!({}));
    }

    /// Closes the store; call after every tracked task has finished.
    pub async fn close(&self) {
        self.inner.store.close().await;
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
    /// the loop that keeps recording them.
    async fn spawn_loop(&self) {
        let token = self.inner.shutdown.child_token();
        *lock(&self.inner.loop_token) = Some(token.clone());
        self.heartbeat().await;
        let engine = self.clone();
        self.inner.tracker.spawn(async move {
            let every = engine.inner.config.heartbeat;
            let mut next = tokio::time::Instant::now() + every;
            loop {
                tokio::select! {
                    () = token.cancelled() => break,
                    () = tokio::time::sleep_until(next) => {}
                }
                engine.heartbeat().await;
                next += every;
                let now = tokio::time::Instant::now();
                if next < now {
                    // We fell behind (suspended process, blocked runtime): tick from now
                    // rather than bursting to catch up.
                    next = now + every;
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
            next_runs: Vec::new(),
        };
        if let Err(e) = inner.store.record_heartbeat(&hb).await {
            // The tick still counts in memory: the scheduler is alive, the store is not.
            // Self-heal reports the store; status keeps telling the truth about the loop.
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

/// Creates and removes a file in `dir`, proving it is writable.
fn probe_writable(dir: &std::path::Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".write-probe-{}", std::process::id()));
    std::fs::write(&probe, b"ok")?;
    std::fs::remove_file(&probe)
}
