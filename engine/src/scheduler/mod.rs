//! The leader's work: deciding which runs exist. Only the node that leads runs any of it;
//! what it decides to run is handed to the runner ([`crate::runner`]), which every node
//! has.
//!
//! - [`plan`]: the pure decisions — which slots are due, which were missed, what the
//!   misfire policy makes of them. Unit-tested without a runtime or a store.
//! - [`fire`]: the firing loop — sleep until the next slot (no polling), claim it in the
//!   store (where the overlap policy is decided), start it on its instant; heartbeats.
//! - [`recover`]: what a new leader does first — runs of dead nodes interrupted, slots
//!   missed while nobody led recorded per the misfire policy.
//! - [`watchdog`]: restarts a loop whose heartbeat went stale.
//!
//! The loop is one tracked task with its own cancellation token: stop cancels it (runs in
//! flight are not touched), restart replaces it, and so does the watchdog.

pub mod fire;
pub mod plan;
pub mod recover;
pub mod watchdog;

use crate::error::Result;
use crate::model::DesiredState;
use crate::Engine;
use chrono::{DateTime, Utc};
use std::sync::Mutex;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The scheduler's state in memory.
pub(crate) struct State {
    /// Serialises start/stop/restart (and the watchdog's restarts), which await store
    /// writes; a tokio mutex because it is held across those awaits.
    control: tokio::sync::Mutex<()>,
    /// Serialises firing, so the loop, a takeover and a test driving time by hand never
    /// interleave; it guards what the leader knows it recorded.
    firing: tokio::sync::Mutex<Firing>,
    /// The std mutexes below are held only for short, await-free sections.
    loop_token: Mutex<Option<CancellationToken>>,
    desired: Mutex<DesiredState>,
    /// The scheduler-wide pause, as the store holds it.
    pause: Mutex<Option<crate::model::Pause>>,
    /// The maintenance windows, as the store holds them.
    windows: Mutex<std::sync::Arc<Vec<crate::model::OpenWindow>>>,
    last_heartbeat: Mutex<Option<DateTime<Utc>>>,
    /// How late the loop woke for its last slot, in ms (the watchdog's measure).
    loop_lag_ms: Mutex<Option<f64>>,
    /// How many times the watchdog had to restart the loop.
    loop_restarts: Mutex<u64>,
}

/// What the leader knows it recorded, under the firing lock.
#[derive(Default)]
pub(crate) struct Firing {
    /// The epoch whose takeover is done. The loop claims only under it, so a slot claimed
    /// by a new leader never hides the gap before it from the takeover that records it.
    taken: Option<i64>,
    /// A leader write failed since: the next pass takes over again from the store, so the
    /// slot it was for gets its row (idempotent: a slot has one row whoever writes it).
    failed: bool,
}

impl Firing {
    /// Whether the loop may claim under `epoch`.
    fn ready(&self, epoch: i64) -> bool {
        self.taken == Some(epoch) && !self.failed
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section here is an assignment that cannot panic half-way, so a
    // poisoned lock still guards consistent data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    pub fn new(desired: DesiredState, pause: Option<crate::model::Pause>) -> Self {
        State {
            pause: Mutex::new(pause),
            windows: Default::default(),
            control: tokio::sync::Mutex::new(()),
            firing: tokio::sync::Mutex::new(Firing::default()),
            loop_token: Mutex::new(None),
            desired: Mutex::new(desired),
            last_heartbeat: Mutex::new(None),
            loop_lag_ms: Mutex::new(None),
            loop_restarts: Mutex::new(0),
        }
    }
}

/// What status reads of the scheduler.
pub(crate) struct Snapshot {
    pub desired: DesiredState,
    pub loop_active: bool,
    pub last_heartbeat: Option<DateTime<Utc>>,
    pub loop_lag_ms: Option<f64>,
    pub loop_restarts: u64,
}

pub(crate) fn snapshot(engine: &Engine) -> Snapshot {
    let s = &engine.inner.scheduler;
    Snapshot {
        desired: *lock(&s.desired),
        loop_active: loop_active(engine),
        last_heartbeat: *lock(&s.last_heartbeat),
        loop_lag_ms: *lock(&s.loop_lag_ms),
        loop_restarts: *lock(&s.loop_restarts),
    }
}

/// Starts the scheduler's part on this node: if it leads already (SQLite: always), the
/// leader's recovery first; then the loop (if the operator wants it running) and its
/// watchdog. The loop runs on every node — claims are written only while this node leads
/// — and a supervisor takes up the leader's recovery whenever leadership comes here.
pub(crate) async fn lead(engine: &Engine) -> Result<()> {
    let running = desired(engine) == DesiredState::Running;
    if engine.inner.notifier.is_leader() {
        recover::take_over(engine, running).await?;
    }
    if running {
        spawn_loop(engine).await;
    }
    watchdog::spawn(engine);
    if engine.inner.store.shared() {
        let e = engine.clone();
        engine.spawn(async move { supervise(&e).await });
    }
    Ok(())
}

/// Takes up the leader's recovery each time this node comes to lead.
async fn supervise(engine: &Engine) {
    let mut leadership = engine.inner.notifier.leadership();
    let shutdown = engine.inner.shutdown.clone();
    // From "not leading", so leadership that came before this task started is taken up
    // too (a takeover already done for the epoch is not done again). By epoch: a lease
    // lost and taken again between two looks is a new term to take up.
    let mut led: Option<i64> = None;
    loop {
        let leads = *leadership.borrow_and_update();
        if leads.is_some() && leads != led {
            // Until it is done this node fires nothing, so it is retried while it leads.
            let mut delay = Duration::from_millis(200);
            loop {
                let running = desired(engine) == DesiredState::Running;
                let Err(e) = recover::take_over(engine, running).await else {
                    break;
                };
                tracing::error!(error = %crate::error::chain(&e), ?delay, "cannot take up the leader's work yet; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
                if !engine.inner.notifier.is_leader() {
                    break;
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            engine.event(
                "leadership_taken",
                serde_json::json!({ "epoch": engine.inner.notifier.epoch() }),
            );
        } else if leads.is_none() && led.is_some() {
            engine.event("leadership_lost", serde_json::json!({}));
        }
        led = leads;
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = leadership.changed() => if changed.is_err() { return },
        }
    }
}

/// The scheduler-wide pause in force, as this node knows it.
pub(crate) fn pause(engine: &Engine) -> Option<crate::model::Pause> {
    lock(&engine.inner.scheduler.pause).clone()
}

/// Sets the scheduler-wide pause here, as the store now holds it, and wakes the loop (to
/// plan for its end).
pub(crate) fn set_pause(engine: &Engine, pause: Option<crate::model::Pause>) {
    *lock(&engine.inner.scheduler.pause) = pause;
    engine.inner.notifier.jobs_changed();
}

/// The maintenance windows, as this node knows them.
pub(crate) fn windows(engine: &Engine) -> std::sync::Arc<Vec<crate::model::OpenWindow>> {
    lock(&engine.inner.scheduler.windows).clone()
}

pub(crate) fn set_windows(engine: &Engine, windows: Vec<crate::model::OpenWindow>) {
    *lock(&engine.inner.scheduler.windows) = std::sync::Arc::new(windows);
}

pub(crate) fn desired(engine: &Engine) -> DesiredState {
    *lock(&engine.inner.scheduler.desired)
}

/// Follows the operator's intent as another node recorded it (PostgreSQL): the loop
/// starts or stops here too, without writing the intent again.
pub(crate) async fn follow_desired(engine: &Engine) {
    engine.follow_pause().await;
    engine.follow_windows().await;
    let stored = match engine.inner.store.desired_state().await {
        Ok(Some(d)) => d,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %crate::error::chain(&e), "cannot read the operator's intent");
            return;
        }
    };
    let _control = engine.inner.scheduler.control.lock().await;
    if desired(engine) == stored {
        return;
    }
    *lock(&engine.inner.scheduler.desired) = stored;
    match stored {
        DesiredState::Running => {
            if !loop_active(engine) {
                engine.inner.jobs.skip_to(engine.now());
                spawn_loop(engine).await;
            }
        }
        DesiredState::Stopped => {
            cancel_loop(engine);
        }
    }
}

pub(crate) async fn start(engine: &Engine) -> Result<()> {
    let _control = engine.inner.scheduler.control.lock().await;
    set_desired(engine, DesiredState::Running).await?;
    if !loop_active(engine) {
        engine.inner.jobs.skip_to(engine.now());
        spawn_loop(engine).await;
        engine.event("scheduler_started", serde_json::json!({}));
    }
    Ok(())
}

pub(crate) async fn stop(engine: &Engine) -> Result<()> {
    let _control = engine.inner.scheduler.control.lock().await;
    set_desired(engine, DesiredState::Stopped).await?;
    if cancel_loop(engine) {
        engine.event("scheduler_stopped", serde_json::json!({}));
    }
    Ok(())
}

pub(crate) async fn restart(engine: &Engine) -> Result<()> {
    let _control = engine.inner.scheduler.control.lock().await;
    let was_running = loop_active(engine);
    set_desired(engine, DesiredState::Running).await?;
    cancel_loop(engine);
    if !was_running {
        engine.inner.jobs.skip_to(engine.now());
    }
    spawn_loop(engine).await;
    engine.event("scheduler_restarted", serde_json::json!({}));
    Ok(())
}

/// Gives leadership up (at shutdown) once the claims in flight are done, and before the
/// loop begins another: a claim fenced by this node's own resignation would leave its slot
/// to the next leader, as missed. Bounded by the lease's TTL: a claim stuck on a database
/// that does not answer is fenced by then anyway.
pub(crate) async fn resign(engine: &Engine) {
    let bound = engine
        .inner
        .cluster
        .as_ref()
        .map_or(Duration::from_secs(1), |c| c.ttl);
    let firing = tokio::time::timeout(bound, engine.inner.scheduler.firing.lock()).await;
    if firing.is_err() {
        tracing::warn!(?bound, "claims still in flight; resigning without them");
    }
    engine.inner.election.resign(engine, false).await;
    drop(firing);
}

/// Stops firing for shutdown, leaving the stored intent as it is.
pub(crate) fn stop_loop(engine: &Engine) {
    cancel_loop(engine);
}

/// Cancels the loop; true if one was running.
fn cancel_loop(engine: &Engine) -> bool {
    match lock(&engine.inner.scheduler.loop_token).take() {
        Some(token) => {
            token.cancel();
            true
        }
        None => false,
    }
}

pub(crate) fn loop_active(engine: &Engine) -> bool {
    lock(&engine.inner.scheduler.loop_token)
        .as_ref()
        .is_some_and(|t| !t.is_cancelled())
}

async fn set_desired(engine: &Engine, desired: DesiredState) -> Result<()> {
    engine
        .inner
        .store
        .set_desired_state(desired, engine.now())
        .await?;
    *lock(&engine.inner.scheduler.desired) = desired;
    Ok(())
}

/// Records a first heartbeat (so status right after start says running) and spawns the
/// loop.
async fn spawn_loop(engine: &Engine) {
    let token = engine.inner.shutdown.child_token();
    *lock(&engine.inner.scheduler.loop_token) = Some(token.clone());
    fire::heartbeat(engine).await;
    let e = engine.clone();
    engine.spawn(async move { fire::run_loop(&e, token).await });
}
