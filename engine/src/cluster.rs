//! Several nodes on one PostgreSQL: what each node does to take part.
//!
//! - **The elector**: every `ttl / 5` the leader renews its lease; the others try to take
//!   it. A leader stops acting on its own monotonic deadline — counted from when it *sent*
//!   the renewal that succeeded, one safety margin short of the lease — so it has stopped
//!   before the database could hand the lease to another node. A resignation wakes the
//!   others at once (LISTEN), so a graceful handoff takes one round trip.
//! - **The registry**: each node registers at start (a new id per process) and beats with
//!   every round; a beat that matches no row means it was declared gone, its runs rescued:
//!   it abandons what it still runs (their ends would be refused anyway) and joins again.
//! - **The rescue**: the leader interrupts the runs of nodes that are gone (retried if
//!   their job allows) and starts queued runs nobody is starting.
//! - **The listener**: LISTEN for the other nodes' changes — runs, jobs, the lease, the
//!   operator's intent, runs waiting for a node — turned into the notifier's signals. It
//!   never waits on the database: jobs and intent are re-read by a task of their own
//!   (a burst of changes costs one re-read, and never delays a resignation behind it).
//!   It reconnects by itself, and on each (re)connect re-reads what it may have missed.
//! - **The claimer**: runs started with "run now" are queued for any node; each node
//!   claims them (`SKIP LOCKED`) when told and every second ([`crate::runner::claim::claimer`]).
//! - **The clock**: each elector round reads the database's clock on a connection in
//!   hand (so no wait for the pool skews it); the offset is taken from the quickest of
//!   the last round trips, and with `follow_db_clock` the engine reads time as the
//!   database's.

use crate::error::Result;
use crate::model::NodeInfo;
use crate::store::postgres::lease::{Acquired, Grant};
use crate::store::postgres::{PgStore, CHANNEL};
use crate::Engine;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A node's part in the cluster.
pub(crate) struct State {
    /// This node's id in the registry and on its runs.
    pub node_id: String,
    /// The node's configured name.
    pub name: String,
    pub ttl: Duration,
    /// Wakes the elector (a resignation was announced).
    wake: tokio::sync::Notify,
    /// Whether this node hears announcements now (its LISTEN connection is up). While it
    /// does not, a follower tries for the lease more often: a resignation it cannot hear
    /// must not wait for the next round.
    listening: std::sync::atomic::AtomicBool,
    /// The epoch this node last came to lead with, and when that term began (the
    /// database's clock).
    term: Mutex<Option<(i64, chrono::DateTime<chrono::Utc>)>>,
    /// Set at shutdown, before the lease is resigned: the elector takes it no more.
    leaving: std::sync::atomic::AtomicBool,
    /// Another node changed the jobs or the desired state: read them again. Announcements
    /// that come during a read make one more read, not one each.
    stale: tokio::sync::Notify,
    /// The registry as last read (status reads it without a query).
    nodes: Mutex<Vec<NodeInfo>>,
    /// The engine's clock when it follows the database's.
    pub db_clock: Option<Arc<crate::clock::DbClock<Arc<dyn crate::Clock>>>>,
    /// Wall minus database clock, in ms, as last measured.
    offset_ms: std::sync::atomic::AtomicI64,
    /// The last few measurements: (round trip, offset in µs).
    samples: Mutex<std::collections::VecDeque<(Duration, i64)>>,
}

impl State {
    pub fn new(
        node_id: String,
        name: String,
        ttl: Duration,
        db_clock: Option<Arc<crate::clock::DbClock<Arc<dyn crate::Clock>>>>,
    ) -> Self {
        State {
            node_id,
            name,
            ttl,
            wake: tokio::sync::Notify::new(),
            listening: std::sync::atomic::AtomicBool::new(false),
            term: Mutex::new(None),
            leaving: std::sync::atomic::AtomicBool::new(false),
            stale: tokio::sync::Notify::new(),
            nodes: Mutex::new(Vec::new()),
            db_clock,
            offset_ms: std::sync::atomic::AtomicI64::new(0),
            samples: Mutex::default(),
        }
    }

    /// When this node's term with `epoch` began, by the database's clock.
    pub fn term_began(&self, epoch: i64) -> Option<chrono::DateTime<chrono::Utc>> {
        let term = *self.term.lock().unwrap_or_else(|e| e.into_inner());
        term.filter(|(e, _)| *e == epoch).map(|(_, t)| t)
    }

    /// The registry as last read.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }
}

fn ttl_ms(ttl: Duration) -> i64 {
    ttl.as_millis() as i64
}

/// How often the elector renews or tries for the lease, and the chores run: TTL/5.
fn round_of(ttl: Duration) -> Duration {
    (ttl / 5).max(Duration::from_millis(100))
}

/// How early a leader stops acting before its lease would lapse.
fn margin(ttl: Duration) -> Duration {
    (ttl / 5).min(Duration::from_secs(1))
}

/// The node's wall clock in µs (uncorrected), for measuring the offset.
fn wall_us(engine: &Engine, cluster: &State) -> i64 {
    match &cluster.db_clock {
        Some(c) => c.wall().timestamp_micros(),
        None => engine.now().timestamp_micros(),
    }
}

/// Measures this node's clock against the database's, a few round trips, before the
/// engine reads the time for anything (the jobs' cursors, the boot recovery).
pub(crate) async fn sync_clock(pg: &PgStore, cluster: &State) -> Result<()> {
    let Some(clock) = &cluster.db_clock else {
        return Ok(());
    };
    for _ in 0..3 {
        let s = pg.clock_sample(|| clock.wall().timestamp_micros()).await?;
        measure(cluster, s.sent_wall_us, s.db_ms, s.rtt);
    }
    Ok(())
}

/// One more reading of this node's clock against the database's (each elector round).
async fn sample_clock(engine: &Engine, pg: &PgStore, cluster: &State) {
    match pg.clock_sample(|| wall_us(engine, cluster)).await {
        Ok(s) => measure(cluster, s.sent_wall_us, s.db_ms, s.rtt),
        Err(e) => {
            tracing::debug!(error = %crate::error::chain(&e), "cannot read the database's clock")
        }
    }
}

/// Registers this node and tries once for the lease, so a first node leads before
/// `open` returns; then starts the elector and the listener.
pub(crate) async fn join(engine: &Engine, pg: &PgStore, cluster: &State) -> Result<()> {
    pg.register_node(&me(engine, cluster), ttl_ms(cluster.ttl))
        .await?;
    let sent = Instant::now();
    if let Acquired::Granted(grant) = pg
        .acquire_lease(&cluster.node_id, ttl_ms(cluster.ttl))
        .await?
    {
        lead(engine, cluster, grant, sent);
    }
    refresh_nodes(pg, cluster).await;
    let e = engine.clone();
    let store = pg.clone();
    engine.spawn(async move { elector(&e, &store).await });
    let e = engine.clone();
    let store = pg.clone();
    engine.spawn(async move { chores(&e, &store).await });
    let e = engine.clone();
    let store = pg.clone();
    engine.spawn(async move { listener(&e, &store).await });
    let e = engine.clone();
    engine.spawn(async move { follow(&e).await });
    let e = engine.clone();
    engine.spawn(async move { crate::runner::claim::claimer(&e).await });
    Ok(())
}

/// This node leads from now, with the lease granted for a request sent at `sent`: its
/// deadline, and when its term began by the database (the takeover counts late slots
/// from there), are set before the notifier says so.
fn lead(engine: &Engine, cluster: &State, grant: Grant, sent: Instant) {
    *deadline(engine) = Some(sent + cluster.ttl - margin(cluster.ttl));
    let began = chrono::DateTime::from_timestamp_millis(grant.db_now_ms);
    *cluster.term.lock().unwrap_or_else(|e| e.into_inner()) = began.map(|t| (grant.epoch, t));
    tracing::info!(epoch = grant.epoch, "this node leads");
    engine.inner.notifier.set_leader(Some(grant.epoch));
}

/// This node as the registry records it.
fn me(engine: &Engine, cluster: &State) -> NodeInfo {
    let now = engine.now();
    NodeInfo {
        id: cluster.node_id.clone(),
        name: cluster.name.clone(),
        pid: engine.inner.pid,
        version: env!("CARGO_PKG_VERSION").into(),
        started_at: engine.inner.started_at,
        heartbeat_at: now,
        expires_at: now,
        running: crate::runner::in_flight(engine) as u64,
        clock_offset_ms: cluster.offset_ms(),
        leader: false,
    }
}

/// The leader's deadline (monotonic), while it leads.
fn deadline(engine: &Engine) -> std::sync::MutexGuard<'_, Option<Instant>> {
    engine
        .inner
        .leader_deadline
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Records the offset between this node's wall clock and the database's, from a
/// single-statement round trip that began at `sent_wall_us`, took `rtt`, and read the
/// database's clock (`db_ms`, whole ms) somewhere in between — halfway, as far as anyone
/// can tell. As NTP does, the offset used is that of the quickest of the last few round
/// trips: a slow one says little about when the database read its clock.
fn measure(cluster: &State, sent_wall_us: i64, db_ms: i64, rtt: Duration) {
    // In µs: the database's ms are floored, so their middle is +500 µs.
    let sample = sent_wall_us + rtt.as_micros() as i64 / 2 - (db_ms * 1000 + 500);
    let offset = {
        let mut samples = cluster.samples.lock().unwrap_or_else(|e| e.into_inner());
        if samples.len() == CLOCK_SAMPLES {
            samples.pop_front();
        }
        samples.push_back((rtt, sample));
        let best = samples
            .iter()
            .min_by_key(|(rtt, _)| *rtt)
            .map_or(sample, |s| s.1);
        (best as f64 / 1000.0).round() as i64
    };
    let before = cluster.offset_ms.swap(offset, Ordering::Relaxed);
    if let Some(c) = &cluster.db_clock {
        c.set_offset_ms(offset);
    }
    if offset.abs() > 1000 && before.abs() <= 1000 {
        tracing::warn!(
            offset_ms = offset,
            "this node's clock is off from the database's by more than a second; the engine follows the database's"
        );
    }
}

/// Round trips the clock offset is chosen from.
const CLOCK_SAMPLES: usize = 8;

/// How often a follower that hears no announcements (its LISTEN connection is down) tries
/// for the lease: a cheap read on the lease pool, so a resignation is taken up at once.
const DEAF_ROUND: Duration = Duration::from_millis(50);

async fn refresh_nodes(pg: &PgStore, cluster: &State) {
    match pg.list_nodes().await {
        Ok(nodes) => *cluster.nodes.lock().unwrap_or_else(|e| e.into_inner()) = nodes,
        Err(e) => {
            tracing::debug!(error = %crate::error::chain(&e), "cannot read the node registry")
        }
    }
}

async fn elector(engine: &Engine, pg: &PgStore) {
    let Some(cluster) = engine.inner.cluster.as_ref() else {
        return;
    };
    let ttl = cluster.ttl;
    let every = round_of(ttl);
    let shutdown = engine.inner.shutdown.clone();
    // A follower tries again when the holder's lease runs out, not a round later.
    let mut wait = every;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
            () = cluster.wake.notified() => tracing::debug!("the lease was announced; trying it now"),
        }
        wait = every;
        let leading = engine.inner.notifier.epoch();
        let sent = Instant::now();
        match leading {
            Some(epoch) => {
                // The renewal may not outlive the deadline: past it this node stops.
                let until = deadline(engine).unwrap_or(sent);
                let left = until.saturating_duration_since(sent);
                match tokio::time::timeout(
                    left,
                    pg.renew_lease(&cluster.node_id, epoch, ttl_ms(ttl)),
                )
                .await
                {
                    Ok(Ok(Some(_))) => *deadline(engine) = Some(sent + ttl - margin(ttl)),
                    Ok(Ok(None)) => {
                        tracing::warn!(epoch, "the lease was lost; stepping down");
                        crate::leader::step_down(engine, epoch);
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %crate::error::chain(&e), "cannot renew the lease");
                        if Instant::now() >= until {
                            crate::leader::step_down(engine, epoch);
                        }
                    }
                    Err(_) => {
                        tracing::warn!(
                            epoch,
                            "the lease's deadline passed before it was renewed; stepping down"
                        );
                        crate::leader::step_down(engine, epoch);
                    }
                }
            }
            // Read after `leading`: a node resigning set this before it stopped leading.
            None if cluster.leaving.load(Ordering::SeqCst) => return,
            None => {
                match tokio::time::timeout(every, pg.acquire_lease(&cluster.node_id, ttl_ms(ttl)))
                    .await
                    .unwrap_or(Err(crate::EngineError::StoreTimeout(every)))
                {
                    Ok(Acquired::Granted(grant)) => lead(engine, cluster, grant, sent),
                    Ok(Acquired::Held { left_ms }) => {
                        let left = Duration::from_millis(left_ms.max(0) as u64);
                        let round = if cluster.listening.load(Ordering::SeqCst) {
                            every
                        } else {
                            DEAF_ROUND
                        };
                        wait = (left + Duration::from_millis(2)).min(round);
                    }
                    Err(e) => {
                        tracing::debug!(error = %crate::error::chain(&e), "cannot try for the lease")
                    }
                }
            }
        }
        // A deadline that passed while the renewal was still on its way.
        if let (Some(epoch), Some(until)) = (engine.inner.notifier.epoch(), *deadline(engine)) {
            if Instant::now() >= until {
                crate::leader::step_down(engine, epoch);
            }
        }
    }
}

/// Every elector round's other work, in a task of its own so the elector answers a
/// resignation at once: the clock, the heartbeat, the rescue (leading) and the registry.
async fn chores(engine: &Engine, pg: &PgStore) {
    let Some(cluster) = engine.inner.cluster.as_ref() else {
        return;
    };
    let every = round_of(cluster.ttl);
    let shutdown = engine.inner.shutdown.clone();
    loop {
        // Bounded, so a database that stopped answering cannot hold them past a round.
        let round = async {
            sample_clock(engine, pg, cluster).await;
            beat(engine, pg, cluster).await;
            if let Some(epoch) = crate::leader::epoch(engine) {
                crate::scheduler::recover::rescue(engine, epoch).await;
            }
            refresh_nodes(pg, cluster).await;
        };
        if tokio::time::timeout(cluster.ttl / 2, round).await.is_err() {
            tracing::warn!("the node's heartbeat and rescue did not finish in time");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// One registry heartbeat; a node found declared gone gives up its runs and joins again.
async fn beat(engine: &Engine, pg: &PgStore, cluster: &State) {
    let running = crate::runner::in_flight(engine) as u64;
    match pg
        .beat_node(
            &cluster.node_id,
            running,
            cluster.offset_ms(),
            ttl_ms(cluster.ttl),
        )
        .await
    {
        Ok(Some(_)) => {}
        Ok(None) => {
            tracing::error!("this node was declared gone (its heartbeat expired); its runs were rescued; joining again");
            crate::runner::abandon_all(engine);
            if let Err(e) = pg
                .register_node(&me(engine, cluster), ttl_ms(cluster.ttl))
                .await
            {
                tracing::warn!(error = %crate::error::chain(&e), "cannot join the registry again");
            }
        }
        Err(e) => {
            tracing::warn!(error = %crate::error::chain(&e), "cannot record this node's heartbeat")
        }
    }
}

/// Reads the jobs and the desired state again whenever another node changed them, off the
/// listener, so a burst of changes never delays the announcements behind it (a
/// resignation, work to claim).
async fn follow(engine: &Engine) {
    let Some(cluster) = engine.inner.cluster.as_ref() else {
        return;
    };
    let shutdown = engine.inner.shutdown.clone();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = cluster.stale.notified() => catch_up(engine).await,
        }
    }
}

/// Turns the other nodes' announcements into the notifier's signals; never waits on the
/// database itself.
async fn listener(engine: &Engine, pg: &PgStore) {
    let Some(cluster) = engine.inner.cluster.as_ref() else {
        return;
    };
    let shutdown = engine.inner.shutdown.clone();
    let mut delay = Duration::from_millis(100);
    loop {
        let mut listen = match sqlx::postgres::PgListener::connect_with(pg.pool()).await {
            Ok(mut l) => match l.listen(CHANNEL).await {
                Ok(()) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot LISTEN; retrying");
                    wait_or_stop(&shutdown, &mut delay).await;
                    if shutdown.is_cancelled() {
                        return;
                    }
                    continue;
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot connect for LISTEN; retrying");
                wait_or_stop(&shutdown, &mut delay).await;
                if shutdown.is_cancelled() {
                    return;
                }
                continue;
            }
        };
        delay = Duration::from_millis(100);
        // Whatever was announced while nobody listened: read again, and look at the lease.
        cluster.listening.store(true, Ordering::SeqCst);
        cluster.stale.notify_one();
        cluster.wake.notify_one();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                got = listen.recv() => match got {
                    Ok(n) => heard(engine, cluster, n.payload()),
                    Err(e) => {
                        cluster.listening.store(false, Ordering::SeqCst);
                        tracing::warn!(error = %e, "LISTEN connection lost; reconnecting");
                        break;
                    }
                },
            }
        }
    }
}

async fn wait_or_stop(shutdown: &tokio_util::sync::CancellationToken, delay: &mut Duration) {
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = tokio::time::sleep(*delay) => {}
    }
    // A second at most: until it is back this node hears nothing (the lease is polled for
    // meanwhile, the rest waits for its own polls).
    *delay = (*delay * 2).min(Duration::from_secs(1));
}

fn heard(engine: &Engine, cluster: &State, what: &str) {
    let notifier = &engine.inner.notifier;
    match what {
        "runs" => notifier.run_started(),
        "work" => engine.inner.runner.claims.notify_one(),
        "ended" => notifier.run_ended(),
        "jobs" | "desired" => cluster.stale.notify_one(),
        "lease" => cluster.wake.notify_one(),
        other => {
            // An operator cancelled a run: its work stops if it executes here.
            if let Some(id) = other.strip_prefix("cancel ").and_then(|id| id.parse().ok()) {
                crate::runner::stop(engine, id);
            }
        }
    }
}

async fn catch_up(engine: &Engine) {
    crate::jobs::reload(engine).await;
    crate::scheduler::follow_desired(engine).await;
    engine.inner.notifier.run_ended();
}

/// Leaves the cluster at shutdown: the lease is resigned (another node takes over at
/// once) and, with no runs left here, the node leaves the registry. The caller holds the
/// firing lock ([`crate::scheduler::resign`]): the claims in flight are done and none
/// begins until this node stops leading, so the next leader's takeover starts from the
/// last slot this one recorded.
pub(crate) async fn leave(engine: &Engine, pg: &PgStore, runs_done: bool) {
    let Some(cluster) = engine.inner.cluster.as_ref() else {
        return;
    };
    cluster.leaving.store(true, Ordering::SeqCst);
    if let Some(epoch) = engine.inner.notifier.epoch() {
        let resigned = tokio::time::timeout(cluster.ttl, pg.resign_lease(&cluster.node_id, epoch))
            .await
            .unwrap_or(Err(crate::EngineError::StoreTimeout(cluster.ttl)));
        if let Err(e) = resigned {
            tracing::warn!(error = %crate::error::chain(&e), "cannot resign the lease; it lapses by itself");
        }
        engine.inner.notifier.set_leader(None);
    }
    if runs_done {
        if let Err(e) = pg.leave(&cluster.node_id).await {
            tracing::warn!(error = %crate::error::chain(&e), "cannot leave the registry; the entry lapses by itself");
        }
    }
}
