//! What a node does first when it comes to lead: the runs of nodes that are gone are
//! interrupted (retried if their job allows), and the slots missed while nobody fired
//! follow each job's misfire policy, every one recorded.

use super::{fire, plan};
use crate::error::Result;
use crate::runner;
use crate::Engine;

/// Recovery for a new leader; `running` says whether missed slots are caught up (a
/// scheduler the operator stopped does not catch up).
pub(crate) async fn run(engine: &Engine, running: bool) -> Result<()> {
    let inner = &engine.inner;
    let now = engine.now();
    let Some(epoch) = inner.notifier.epoch() else {
        return Ok(());
    };
    let orphans = inner
        .store
        .interrupt_orphans(
            &inner.config.node,
            epoch,
            "the node running it is gone",
            now,
        )
        .await?;
    if !orphans.is_empty() {
        engine.event(
            "runs_interrupted",
            serde_json::json!({ "count": orphans.len(), "of": "other nodes" }),
        );
    }
    runner::retry_interrupted(engine, orphans);
    if !running {
        return Ok(());
    }
    for stored in inner.store.load_jobs().await? {
        let job = stored.job;
        if !job.enabled {
            continue;
        }
        let Ok(schedule) = crate::model::Schedule::parse(&job.schedule, &job.timezone) else {
            continue;
        };
        let (missed, truncated) = plan::missed_while_down(&schedule, stored.last_slot, now);
        if truncated {
            engine.event(
                "catch_up_truncated",
                serde_json::json!({ "job": job.id, "recorded": plan::MAX_CATCH_UP_SLOTS }),
            );
        }
        if !missed.is_empty() {
            fire::record_missed(engine, &job, &missed, "the server was down", now).await;
        }
    }
    Ok(())
}
