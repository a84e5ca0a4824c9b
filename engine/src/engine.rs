//! The [`Engine`]: the one handle the edges hold. It opens the parts in order, owns their
//! shutdown, carries the scheduler's controls, and — in the modules beside it — one method
//! per use case ([`crate::jobs`], [`crate::runs`], [`crate::reads`]). There is no way to
//! the store from outside: every read and write goes through a use case.
//!
//! - The operator's intent is written to the store *before* the scheduler acts on it, so a
//!   server killed at any point comes back in the state it was last asked to be in.
//! - Boot: the store and the jobs table, then this node's runs left by a dead process are
//!   interrupted (the runner's part), then leadership: the leader catches up missed slots
//!   and starts firing (the scheduler's part).

use crate::clock::Clock;
use crate::config::EngineConfig;
use crate::error::{EngineError, Result};
use crate::events::EventLog;
use crate::jobs::JobTable;
use crate::kinds::Kinds;
use crate::leader::Election;
use crate::model::{DesiredState, SchedulerState, Status};
use crate::notify::Notifier;
use crate::outbound::Outbound;
use crate::store::Store;
use crate::{reads, runner, scheduler};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long abandoned runs get to record themselves as interrupted.
const ABANDON_WAIT: Duration = Duration::from_secs(5);

/// The engine handle: cheap to clone, shared by the REST API, the dashboard's server
/// functions and the automations.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("node", &self.inner.config.node)
            .finish_non_exhaustive()
    }
}

/// The parts, each with one job; the modules that act for them hold no state of their own.
pub(crate) struct Inner {
    pub config: EngineConfig,
    pub store: Store,
    pub events: EventLog,
    pub clock: Arc<dyn Clock>,
    pub kinds: Kinds,
    /// The guarded client every outbound request goes through.
    pub outbound: Outbound,
    /// "A run changed", "the jobs changed", "leadership moved".
    pub notifier: Notifier,
    pub election: Election,
    /// This node's part in a cluster (PostgreSQL only).
    pub cluster: Option<crate::cluster::State>,
    /// Monotonic: when this node stops acting as leader unless its lease is renewed.
    pub leader_deadline: std::sync::Mutex<Option<std::time::Instant>>,
    pub jobs: JobTable,
    /// The leader's part: the firing loop, its heartbeat and its watchdog.
    pub scheduler: scheduler::State,
    /// Every node's part: the runs executing here.
    pub runner: runner::State,
    /// The dashboards' cached figures.
    pub reads: reads::Cache,
    /// What alerting remembers between passes.
    pub alerts: crate::alerts::State,
    /// The Prometheus families.
    pub metrics: crate::metrics::Metrics,
    pub pid: u32,
    pub started_at: DateTime<Utc>,
    /// Every long-lived task and every run is spawned here so shutdown can wait for it.
    pub tracker: TaskTracker,
    /// The runtime the engine was opened on: its own tasks run there, never on the jobs'.
    pub main: tokio::runtime::Handle,
    /// Cancelled when shutdown begins: firing stops, streams end.
    pub shutdown: CancellationToken,
}

impl Engine {
    /// Opens the data dir and store, recovers from a previous crash, and brings the
    /// scheduler to its stored intent (running on a fresh data dir).
    pub async fn open(
        mut config: EngineConfig,
        kinds: Kinds,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let dir = config.data_dir.clone();
        let dir_err = |source| EngineError::DataDir {
            path: dir.clone(),
            source,
        };
        crate::data_dir::prepare(&dir).map_err(dir_err)?;
        // Prove the directory takes writes now, rather than at the first heartbeat.
        crate::data_dir::probe_writable(&dir).map_err(dir_err)?;
        let mut started_at = clock.now();
        let (store, election, cluster, clock) = match config.database_url.clone() {
            Some(url) => {
                // A node id new per process start: the registry and the runs tell this
                // life of the node from the last one.
                let name = config.node.clone();
                let id = format!(
                    "{name}-{}-{:x}",
                    std::process::id(),
                    started_at.timestamp_subsec_micros()
                );
                config.node = id.clone();
                let store = Store::open_postgres(&url, &id, config.lease_ttl).await?;
                let db_clock = config
                    .follow_db_clock
                    .then(|| Arc::new(crate::clock::DbClock::new(clock.clone())));
                let clock: Arc<dyn Clock> = match &db_clock {
                    Some(c) => c.clone(),
                    None => clock,
                };
                let cluster = crate::cluster::State::new(id, name, config.lease_ttl, db_clock);
                if let Some(pg) = store.postgres() {
                    crate::cluster::sync_clock(pg, &cluster).await?;
                    started_at = clock.now();
                }
                (store, Election::Lease, Some(cluster), clock)
            }
            None => {
                let db = dir.join("echopilot.db");
                crate::data_dir::create_private_file(&db).map_err(dir_err)?;
                (Store::open_sqlite(&db).await?, Election::Sole, None, clock)
            }
        };
        let events = EventLog::open(&dir.join("logs"))?;
        let desired = store
            .desired_state()
            .await?
            .unwrap_or(DesiredState::Running);
        let pause = store
            .scheduler_pause()
            .await?
            .as_deref()
            .and_then(crate::model::Pause::from_text);
        let engine = Engine {
            inner: Arc::new(Inner {
                pid: std::process::id(),
                started_at,
                outbound: Outbound::new(config.http_allow.clone()),
                store,
                events,
                clock,
                kinds,
                notifier: Notifier::default(),
                election,
                cluster,
                leader_deadline: std::sync::Mutex::new(None),
                jobs: JobTable::default(),
                scheduler: scheduler::State::new(desired, pause),
                runner: runner::State::new().map_err(EngineError::Threads)?,
                reads: reads::Cache::default(),
                alerts: Default::default(),
                metrics: Default::default(),
                tracker: TaskTracker::new(),
                main: tokio::runtime::Handle::current(),
                shutdown: CancellationToken::new(),
                config,
            }),
        };
        engine.event("server_started", serde_json::json!({ "desired": desired }));
        engine.load_jobs().await?;
        engine.follow_windows().await;
        runner::recover(&engine).await?;
        engine.inner.election.begin(&engine).await?;
        scheduler::lead(&engine).await?;
        engine.spawn(crate::alerts::run(engine.clone()));
        Ok(engine)
    }

    /// The jobs table, from the store.
    async fn load_jobs(&self) -> Result<()> {
        for stored in self.inner.store.load_jobs().await? {
            let job = stored.job;
            match crate::model::Schedule::parse(&job.schedule, &job.timezone) {
                // Catch-up since the last claimed slot is recovery's; the loop starts now.
                Ok(schedule) => {
                    let cursor = stored.last_slot.max(self.now());
                    self.inner.jobs.install(job, schedule, cursor)
                }
                Err(e) => {
                    tracing::error!(job = job.id, error = %e, "stored job has an invalid schedule; it will not fire until fixed")
                }
            }
        }
        Ok(())
    }

    /// Shuts the engine down, in order, within `grace` for the runs: leadership is given
    /// up (once the leader's claims in flight are done), firing stops, runs in flight get
    /// the grace period, whatever is still running after it is cancelled and recorded as
    /// interrupted, and the store is flushed and closed. The stored intent is not changed:
    /// a server that was running resumes by itself when started again. Call once; nothing
    /// else stops the engine.
    pub async fn shutdown(&self, grace: Duration) {
        let inner = &self.inner;
        self.event("server_stopping", serde_json::json!({}));
        // At once: another node takes over while this one's runs finish.
        scheduler::resign(self).await;
        inner.shutdown.cancel();
        scheduler::stop_loop(self);
        inner.tracker.close();
        let mut runs_done = true;
        if tokio::time::timeout(grace, inner.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                ?grace,
                "runs still in flight after the grace period; interrupting them"
            );
            runner::abandon(self);
            if tokio::time::timeout(ABANDON_WAIT, inner.tracker.wait())
                .await
                .is_err()
            {
                runs_done = false;
                tracing::warn!(
                    "some runs did not stop; the next start records them as interrupted"
                );
            }
        }
        // Leaves the registry only with nothing left to rescue.
        inner.election.resign(self, runs_done).await;
        inner.store.close().await;
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The engine's clock: every part and every automation reads time here.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// The guarded client for every outbound request (kinds and automations use it).
    pub fn outbound(&self) -> &Outbound {
        &self.inner.outbound
    }

    /// The notifier: live views and waiters subscribe to its signals.
    pub fn notifier(&self) -> &Notifier {
        &self.inner.notifier
    }

    /// Cancelled when the engine begins to shut down; long-lived streams end on it.
    pub fn shutting_down(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    // ---- control -----------------------------------------------------------------

    /// Starts the scheduler (idempotent) and remembers that it should run. Slots that
    /// passed while it was stopped are not caught up: stopping was the operator's choice.
    pub async fn start(&self) -> Result<Status> {
        scheduler::start(self).await?;
        Ok(self.status())
    }

    /// Stops firing (idempotent) and remembers that it should stay stopped. Runs already
    /// in flight are left to finish.
    pub async fn stop(&self) -> Result<Status> {
        scheduler::stop(self).await?;
        Ok(self.status())
    }

    /// Stops and starts the loop; revives a stalled one.
    pub async fn restart(&self) -> Result<Status> {
        scheduler::restart(self).await?;
        Ok(self.status())
    }

    /// The scheduler's state now. Reads memory only, so it is cheap enough to poll.
    pub fn status(&self) -> Status {
        let inner = &self.inner;
        let now = self.now();
        let s = scheduler::snapshot(self);
        let age = s
            .last_heartbeat
            .map(|at| (now - at).num_milliseconds().max(0) as f64 / 1000.0);
        let limit = 2.0 * inner.config.heartbeat.as_secs_f64();
        let state = match s.desired {
            DesiredState::Stopped => SchedulerState::Stopped,
            DesiredState::Running => {
                let fresh = age.is_some_and(|a| a <= limit);
                if fresh && s.loop_active {
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
            last_heartbeat: s.last_heartbeat,
            heartbeat_age_secs: age,
            heartbeat_interval_secs: inner.config.heartbeat.as_secs(),
            next_runs: if state == SchedulerState::Stopped {
                Vec::new()
            } else {
                inner.jobs.next_runs()
            },
            node: inner.config.node.clone(),
            loop_lag_ms: s.loop_lag_ms,
            loop_restarts: s.loop_restarts,
            active_runs: runner::in_flight(self),
            store: if inner.store.shared() {
                "postgres"
            } else {
                "sqlite"
            }
            .into(),
            leader: inner.notifier.is_leader(),
            epoch: inner.notifier.epoch(),
            nodes: self.nodes(now),
            paused: self.scheduler_paused(),
        }
    }

    /// The nodes sharing the store, as last read (PostgreSQL), or this one (SQLite).
    fn nodes(&self, now: DateTime<Utc>) -> Vec<crate::model::NodeStatus> {
        let inner = &self.inner;
        let Some(cluster) = &inner.cluster else {
            return vec![crate::model::NodeStatus {
                id: inner.config.node.clone(),
                name: inner.config.node.clone(),
                pid: inner.pid,
                version: env!("CARGO_PKG_VERSION").into(),
                started_at: inner.started_at,
                heartbeat_age_secs: 0.0,
                alive: true,
                running: runner::in_flight(self) as u64,
                clock_offset_ms: 0,
                leader: true,
            }];
        };
        cluster
            .nodes()
            .into_iter()
            .map(|n| crate::model::NodeStatus {
                heartbeat_age_secs: (now - n.heartbeat_at).num_milliseconds().max(0) as f64
                    / 1000.0,
                alive: n.expires_at > now,
                id: n.id,
                name: n.name,
                pid: n.pid,
                version: n.version,
                started_at: n.started_at,
                running: n.running,
                clock_offset_ms: n.clock_offset_ms,
                leader: n.leader,
            })
            .collect()
    }

    /// Who led, newest term first (PostgreSQL; SQLite has one leader for good and keeps
    /// no history).
    pub async fn leader_history(&self, limit: u32) -> Result<Vec<crate::model::LeaderTerm>> {
        self.inner.store.leader_history(limit.clamp(1, 500)).await
    }

    // ---- small facts -------------------------------------------------------------

    /// A small fact kept in the store (the built-ins were seeded, a brief was delivered).
    pub async fn fact(&self, key: &str) -> Result<Option<String>> {
        self.inner.store.fact(key).await
    }

    pub async fn record_fact(&self, key: &str, value: &str) -> Result<()> {
        self.inner.store.record_fact(key, value).await
    }

    /// Spawns one of the engine's own tasks, tracked for shutdown, on the engine's runtime
    /// (a job's code runs on the runner's own, so it can never stall these).
    pub(crate) fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.tracker.spawn_on(task, &self.inner.main)
    }

    /// Writes one event-log line, tagged with this node and process.
    pub(crate) fn event(&self, name: &str, fields: serde_json::Value) {
        let inner = &self.inner;
        let mut fields = fields;
        if let Some(map) = fields.as_object_mut() {
            map.insert("node".into(), inner.config.node.clone().into());
            map.insert("pid".into(), inner.pid.into());
        }
        inner.events.write(name, fields);
    }
}
