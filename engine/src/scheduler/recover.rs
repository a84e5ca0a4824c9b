//! What a node does when it comes to lead — at boot on SQLite, at each takeover on
//! PostgreSQL — and, while it leads, again and again: the runs of nodes that are gone are
//! interrupted (retried if their job allows) and queued runs nobody starts are started;
//! the slots missed while nobody fired follow each job's misfire policy, every one
//! recorded, so each slot either ran once or has a row that says why not.

use super::{fire, lock, plan, Firing};
use crate::error::Result;
use crate::runner;
use crate::Engine;
use futures_util::StreamExt;

/// Jobs a takeover handles at once.
const TAKE_OVER_AT_ONCE: usize = 16;

/// Takes up the leader's work: rescue, then (with the scheduler running) the missed slots
/// since each job's last claimed slot. Holds the firing lock, so the loop claims nothing
/// meanwhile, and leaves every job's cursor at now: what follows is the loop's. Done once
/// per epoch, and again after a leader write failed; an error leaves it to be done again.
pub(crate) async fn take_over(engine: &Engine, running: bool) -> Result<()> {
    let mut firing = engine.inner.scheduler.firing.lock().await;
    take_over_locked(engine, &mut firing, running).await
}

/// [`take_over`], for a caller holding the firing lock.
pub(crate) async fn take_over_locked(
    engine: &Engine,
    firing: &mut Firing,
    running: bool,
) -> Result<()> {
    let inner = &engine.inner;
    let Some(epoch) = crate::leader::epoch(engine) else {
        return Ok(());
    };
    if firing.ready(epoch) {
        return Ok(());
    }
    let shared = inner.store.shared();
    let again = firing.taken == Some(epoch);
    // When this node's term began, by the database (or when it found a write of its own
    // lost): slots due after it were not missed, only late while taking over took time.
    let began = inner
        .cluster
        .as_ref()
        .and_then(|c| c.term_began(epoch))
        .filter(|_| !again)
        .unwrap_or_else(|| engine.now());
    tracing::info!(epoch, %began, "taking up the leader's work");
    let why = if again {
        "a write to the store failed"
    } else if shared {
        "no node led"
    } else {
        "the server was down"
    };
    rescue(engine, epoch).await;
    let now = engine.now();
    let mut cursors = std::collections::HashMap::new();
    let mut work = Vec::new();
    for stored in inner.store.load_jobs().await? {
        cursors.insert(stored.job.id.clone(), stored.last_slot.max(now));
        if running && stored.job.enabled {
            work.push(stored);
        }
    }
    // Each job's slots are its own: several jobs at once, so a takeover of many jobs is
    // not their round trips end to end.
    let each = work.into_iter().map(|stored| async move {
        let job = stored.job;
        let Ok(schedule) = crate::model::Schedule::parse(&job.schedule, &job.timezone) else {
            return Ok(());
        };
        let (missed, truncated) = plan::missed_while_down(&schedule, stored.last_slot, now);
        if truncated {
            engine.event(
                "catch_up_truncated",
                serde_json::json!({ "job": job.id, "recorded": plan::MAX_CATCH_UP_SLOTS }),
            );
        }
        // Late in a handoff between two nodes, or after a failed write: those slots
        // run now, as themselves, and for `run_once` they are the catch-up, so all
        // before them are skipped. (A single server was down at every slot it missed:
        // its misfire policy decides.)
        let (gap, late) = if shared || again {
            plan::split_late(&missed, began)
        } else {
            (&missed[..], &[][..])
        };
        if late.is_empty() {
            if !gap.is_empty() {
                fire::record_missed(engine, &job, gap, why, now).await?;
            }
        } else {
            if !gap.is_empty() {
                let reason = format!("missed: {why}; a later slot ran instead");
                fire::skip_slots(engine, &job, gap, &reason, now).await?;
            }
            for slot in late {
                fire::fire_late(engine, &job, *slot, now).await?;
            }
        }
        Ok::<(), crate::EngineError>(())
    });
    let done: Vec<Result<()>> = futures_util::stream::iter(each)
        .buffer_unordered(TAKE_OVER_AT_ONCE)
        .collect()
        .await;
    done.into_iter().collect::<Result<()>>()?;
    inner.jobs.place(&cursors, now);
    // Pauses that ended while nobody led end now (their slots were recorded above).
    crate::pause::resume_ended(engine).await;
    // The loop may be asleep until a slot planned before the cursors moved: it plans anew.
    inner.notifier.jobs_changed();
    *lock(&inner.scheduler.loop_lag_ms) = None;
    *firing = Firing {
        taken: Some(epoch),
        failed: false,
    };
    Ok(())
}

/// The runs of nodes that are gone: running ones interrupted (retried if their job
/// allows), queued ones started here.
pub(crate) async fn rescue(engine: &Engine, epoch: i64) {
    let inner = &engine.inner;
    let now = engine.now();
    match inner
        .store
        .interrupt_orphans(
            &inner.config.node,
            epoch,
            "the node running it is gone",
            now,
        )
        .await
    {
        Ok(orphans) => {
            if !orphans.is_empty() {
                engine.event(
                    "runs_interrupted",
                    serde_json::json!({ "count": orphans.len(), "of": "nodes that are gone" }),
                );
            }
            runner::retry_interrupted(engine, orphans);
        }
        Err(e) => {
            tracing::warn!(error = %crate::error::chain(&e), "cannot rescue the runs of nodes that are gone")
        }
    }
    match inner.store.start_free_queued(&inner.config.node, now).await {
        Ok(started) => {
            for run in started {
                runner::launch_stored(engine, run);
            }
        }
        Err(e) => {
            tracing::warn!(error = %crate::error::chain(&e), "cannot start the queued runs")
        }
    }
}
