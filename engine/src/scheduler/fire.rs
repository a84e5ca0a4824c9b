//! The firing loop: sleep until the earliest slot or heartbeat (no polling), claim what
//! falls due a little ahead of its instant (so the commit is off the critical path), then
//! hand each run to the runner on its instant. A slot is a unique row in the store: it is
//! claimed once, whoever claims it, and the store decides the overlap policy in the same
//! step. Slots the loop fell behind on follow the job's misfire policy.

use super::{lock, plan};
use crate::error::Result;
use crate::model::{Heartbeat, Job, Trigger};
use crate::runner::{self, RunMeta};
use crate::store::{Claim, SlotClaim};
use crate::Engine;
use chrono::{DateTime, Utc};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How far ahead of a slot the loop claims it, so the commit is done when the slot comes.
const CLAIM_LEAD: Duration = Duration::from_millis(10);

/// A slot claimed for a run that is yet to start.
pub(crate) struct Claimed {
    job: Job,
    run_id: i64,
    slot: DateTime<Utc>,
}

impl Claimed {
    fn launch(self, engine: &Engine) {
        runner::launch(
            engine,
            self.job,
            self.run_id,
            RunMeta::first(self.run_id, Some(self.slot)),
            None,
        );
    }
}

impl Engine {
    /// Fires every slot due at `now` at once. Tests with an injected clock drive time
    /// through this; the loop claims a little ahead and starts runs on the dot.
    pub async fn fire_due(&self, now: DateTime<Utc>) {
        for c in claim_due(self, now, now).await {
            c.launch(self);
        }
    }
}

pub(crate) async fn run_loop(engine: &Engine, token: CancellationToken) {
    let inner = &engine.inner;
    let every = inner.config.heartbeat;
    let lead = chrono::Duration::from_std(CLAIM_LEAD).unwrap_or_default();
    let mut jobs_changed = inner.notifier.jobs();
    let mut next_beat = tokio::time::Instant::now() + every;
    loop {
        // Claim what falls due within the lead, then start each run on its instant.
        let now = engine.now();
        let claimed = claim_due(engine, now, now + lead).await;
        let mut claimed = claimed.into_iter().peekable();
        while let Some(slot) = claimed.peek().map(|c| c.slot) {
            wait_until(engine, slot).await;
            let lag = (engine.now() - slot).num_microseconds().unwrap_or(0) as f64 / 1000.0;
            *lock(&inner.scheduler.loop_lag_ms) = Some(lag.max(0.0));
            while let Some(c) = claimed.next_if(|c| c.slot == slot) {
                c.launch(engine);
            }
        }
        // A pause that ended is resumed by the leader (its catch-up run with it); one whose
        // resume is still to come (another node leads, or the store refused) is tried again
        // at the next wake, not spun on.
        let mut pause_end = crate::pause::next_end(engine);
        if pause_end.is_some_and(|end| end <= engine.now()) {
            crate::pause::resume_ended(engine).await;
            pause_end = crate::pause::next_end(engine).filter(|end| *end > engine.now());
        }
        let at = |t: DateTime<Utc>| {
            let wait = (t - engine.now()).to_std().unwrap_or(Duration::ZERO);
            tokio::time::Instant::now() + wait
        };
        let slot_at = inner.jobs.earliest().map(|t| at(t - lead));
        let wake = [slot_at, pause_end.map(at)]
            .into_iter()
            .flatten()
            .fold(next_beat, std::cmp::min);
        tokio::select! {
            () = token.cancelled() => break,
            changed = jobs_changed.changed() => {
                if changed.is_err() { break; }
                continue;
            }
            () = tokio::time::sleep_until(wake) => {}
        }
        if tokio::time::Instant::now() >= next_beat {
            heartbeat(engine).await;
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

/// Claims every slot due up to `horizon` (which may be a little ahead of `now`) and
/// returns the runs to start, soonest first.
async fn claim_due(engine: &Engine, now: DateTime<Utc>, horizon: DateTime<Utc>) -> Vec<Claimed> {
    let mut firing = engine.inner.scheduler.firing.lock().await;
    let epoch = crate::leader::epoch(engine);
    // Leading, but the takeover is not done (or a write failed since): it comes first.
    if epoch.is_some_and(|e| !firing.ready(e)) {
        let running = super::desired(engine) == crate::model::DesiredState::Running;
        if let Err(e) = super::recover::take_over_locked(engine, &mut firing, running).await {
            tracing::error!(error = %crate::error::chain(&e), "cannot take up the leader's work yet; retrying");
        }
    }
    // A follower's cursors move on without claims, and so do a new leader's until its
    // takeover is done (the takeover places them again from the store).
    let leads = epoch.is_some_and(|e| firing.ready(e));
    let due = engine.inner.jobs.take_due(now, horizon);
    if !leads {
        return Vec::new();
    }
    // Each job's claim is its own; all of them at once, so many jobs due together do not
    // queue behind one another's round trips.
    let claims = due.iter().map(|due| async move {
        // More than one slot due means the loop fell behind: the latest runs now, so the
        // earlier ones are all skipped (for `run_once` the latest *is* the one run).
        let skipped = if due.due.missed.is_empty() {
            Ok(true)
        } else {
            let reason = "missed: the scheduler fell behind; the latest slot ran instead";
            skip_slots(engine, &due.job, &due.due.missed, reason, now).await
        };
        let claim = claim(engine, &due.job, due.due.slot, Trigger::Schedule, now).await;
        (skipped.is_err() || claim.is_err(), claim.ok().flatten())
    });
    let mut claimed = Vec::new();
    for (failed, c) in futures_util::future::join_all(claims).await {
        // A slot left without its row: the next pass takes over again and records it.
        firing.failed |= failed;
        claimed.extend(c);
    }
    claimed.sort_by_key(|c| c.slot);
    claimed
}

/// Claims `slot`; returns the run to start, if the store's overlap decision says run. An
/// error (logged here) means the slot has no row yet.
async fn claim(
    engine: &Engine,
    job: &Job,
    slot: DateTime<Utc>,
    trigger: Trigger,
    now: DateTime<Utc>,
) -> Result<Option<Claimed>> {
    // Not leading (any more): nothing is claimed; the store would refuse it anyway.
    let Some(epoch) = crate::leader::epoch(engine) else {
        return Ok(None);
    };
    // A pause swallows it: recorded skipped, saying which pause.
    if let Some(reason) = crate::pause::swallowed(engine, job, slot) {
        let node = &engine.inner.config.node;
        engine
            .inner
            .store
            .record_skipped_slots(&job.id, &[slot], &reason, now, node, epoch)
            .await?;
        engine.inner.metrics.skipped(&job.id, &reason, 1);
        return Ok(None);
    }
    let claim = SlotClaim {
        job_id: &job.id,
        slot,
        trigger,
        overlap: job.overlap,
        // Claimed a little ahead; it starts on the slot.
        started_at: now.max(slot),
        node: &engine.inner.config.node,
        epoch,
    };
    let claimed = async {
        fail::fail_point!("claim_slot", |_| Err(crate::EngineError::StoreTimeout(
            Duration::ZERO
        )));
        if let Some(ms) = injected_claim_delay() {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        engine.inner.store.claim_slot(&claim).await
    };
    match claimed.await {
        Ok(Claim::Run(run_id)) => {
            fail::fail_point!("after_claim", |_| std::process::abort());
            Ok(Some(Claimed {
                job: job.clone(),
                run_id,
                slot,
            }))
        }
        // Queued: the runner starts it when the job's active run ends.
        Ok(Claim::Queued(_)) => Ok(None),
        Ok(Claim::Skipped(_)) => {
            let why = match job.overlap {
                crate::model::Overlap::Queue => crate::store::SKIPPED_QUEUE_FULL,
                _ => crate::store::SKIPPED_ACTIVE,
            };
            engine.inner.metrics.skipped(&job.id, why, 1);
            Ok(None)
        }
        // Another claim of this slot won: it runs there, not here.
        Ok(Claim::Taken) => {
            tracing::debug!(job = job.id, %slot, "slot already claimed");
            Ok(None)
        }
        Ok(Claim::Fenced) => {
            tracing::warn!(job = job.id, %slot, epoch, "the lease moved on; this node no longer leads");
            crate::leader::step_down(engine, epoch);
            Ok(None)
        }
        Err(e) => {
            tracing::error!(error = %crate::error::chain(&e), job = job.id, %slot, "cannot claim a slot yet; the leader's work is taken up again");
            Err(e)
        }
    }
}

/// How long a fault-injection test makes every claim take (`claim_slot_delay=return(ms)`),
/// waited for without holding up a thread.
fn injected_claim_delay() -> Option<u64> {
    fail::fail_point!("claim_slot_delay", |ms| ms.and_then(|ms| ms.parse().ok()));
    None
}

/// Records slots missed while nobody fired (down, or no leader) per the misfire policy:
/// all skipped, or all but the latest skipped and the latest run once.
pub(crate) async fn record_missed(
    engine: &Engine,
    job: &Job,
    missed: &[DateTime<Utc>],
    why: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let plan = plan::misfire(job.misfire, missed);
    let reason = format!("missed: {why} (misfire = {})", job.misfire.as_str());
    if !skip_slots(engine, job, &plan.skipped, &reason, now).await? {
        return Ok(());
    }
    if let Some(slot) = plan.catch_up {
        if let Some(c) = claim(engine, job, slot, Trigger::CatchUp, now).await? {
            c.launch(engine);
        }
    }
    Ok(())
}

/// Claims and starts `slot`, which is a little late (see [`plan::LATE_GRACE`]).
pub(crate) async fn fire_late(
    engine: &Engine,
    job: &Job,
    slot: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<()> {
    if let Some(c) = claim(engine, job, slot, Trigger::Schedule, now).await? {
        c.launch(engine);
    }
    Ok(())
}

/// Records `slots` as skipped with the reason — or, for those a pause swallows, the
/// pause's; false when this node does not lead.
pub(crate) async fn skip_slots(
    engine: &Engine,
    job: &Job,
    slots: &[DateTime<Utc>],
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let Some(epoch) = crate::leader::epoch(engine) else {
        return Ok(false);
    };
    let node = &engine.inner.config.node;
    let store = &engine.inner.store;
    // Runs of slots with one reason, in order (a pause began or ended among them).
    let mut groups: Vec<(String, Vec<DateTime<Utc>>)> = Vec::new();
    for slot in slots {
        let why = crate::pause::swallowed(engine, job, *slot).unwrap_or_else(|| reason.to_string());
        match groups.last_mut() {
            Some((r, s)) if *r == why => s.push(*slot),
            _ => groups.push((why, vec![*slot])),
        }
    }
    for (why, slots) in groups {
        let recorded = store
            .record_skipped_slots(&job.id, &slots, &why, now, node, epoch)
            .await;
        if let Ok(n) = recorded {
            engine.inner.metrics.skipped(&job.id, &why, n);
        }
        if let Err(e) = recorded {
            tracing::error!(error = %crate::error::chain(&e), job = job.id, "cannot record missed slots yet; the leader's work is taken up again");
            return Err(e);
        }
    }
    Ok(true)
}

/// Waits until the clock reads `at`: a timer to within two milliseconds (tokio's timer
/// rounds up to whole milliseconds), then yielding until the instant.
async fn wait_until(engine: &Engine, at: DateTime<Utc>) {
    if let Ok(ahead) = (at - engine.now() - chrono::Duration::milliseconds(2)).to_std() {
        tokio::time::sleep(ahead).await;
    }
    // Bounded: a clock that does not move (tests) must not spin forever.
    let give_up = tokio::time::Instant::now() + Duration::from_millis(50);
    while engine.now() < at && tokio::time::Instant::now() < give_up {
        tokio::task::yield_now().await;
    }
}

/// Records one heartbeat: a store row, an event-log line and the in-memory copy.
pub(crate) async fn heartbeat(engine: &Engine) {
    fail::fail_point!("heartbeat", |_| ());
    let inner = &engine.inner;
    let hb = Heartbeat {
        node: inner.config.node.clone(),
        pid: inner.pid,
        started_at: inner.started_at,
        at: engine.now(),
        next_runs: inner.jobs.next_runs(),
    };
    if let Err(e) = inner.store.record_heartbeat(&hb).await {
        // The tick still counts in memory: the loop is alive even if the store is not.
        tracing::warn!(error = %crate::error::chain(&e), "cannot store the heartbeat");
    }
    *lock(&inner.scheduler.last_heartbeat) = Some(hb.at);
    engine.event(
        "heartbeat",
        serde_json::json!({ "next_runs": hb.next_runs }),
    );
}
