//! Run now, and the runs no node has yet. On one node (SQLite) a run now starts at once;
//! on several (PostgreSQL) it is a queued row without a node, and every node claims such
//! rows (`SKIP LOCKED`) when told and every second, while it has room.

use super::{in_flight, launch_stored, start, RunRequest};
use crate::error::Result;
use crate::model::{Job, Run, RunStatus};
use crate::store::NewRun;
use crate::Engine;
use std::time::Duration;

/// Run now. On one node (SQLite) the run starts here at once. On several (PostgreSQL) it
/// is queued for whichever node claims it first: this one is woken at once, the others
/// by the announcement, so the work spreads over the nodes with room.
pub(crate) async fn run_now(engine: &Engine, job: Job, req: RunRequest) -> Result<Run> {
    let Some(pg) = engine.inner.store.postgres() else {
        return start(engine, job, req, None).await;
    };
    let params = req.params.as_ref().map(|p| p.to_string());
    let id = pg
        .enqueue_run(&NewRun {
            job_id: &job.id,
            overlap: job.overlap,
            trigger: req.trigger,
            attempt: 1,
            started_at: engine.now(),
            node: crate::store::postgres::UNCLAIMED,
            params: params.as_deref(),
            rerun_of: req.rerun_of,
        })
        .await?;
    engine.inner.runner.claims.notify_one();
    Ok(Run {
        id,
        job_id: job.id,
        trigger: req.trigger,
        status: RunStatus::Queued,
        scheduled_at: None,
        started_at: None,
        finished_at: None,
        attempt: 1,
        output: serde_json::json!({}),
        error: None,
        node: String::new(),
        params: req.params,
        rerun_of: req.rerun_of,
        reruns: None,
    })
}

/// Most runs claimed at once.
const CLAIM_BATCH: u32 = 256;
/// A node claims no more while this many runs execute on it.
const CLAIM_ROOM: usize = 512;
/// How often a node looks for unclaimed runs without being told (announcements can be
/// missed: a LISTEN connection being re-made, a transaction pooler in between).
const CLAIM_POLL: Duration = Duration::from_secs(1);

/// Several nodes: claims the runs no node has yet, when told and every second, while this
/// node has room.
pub(crate) async fn claimer(engine: &Engine) {
    let Some(pg) = engine.inner.store.postgres() else {
        return;
    };
    let node = engine.inner.config.node.clone();
    let shutdown = engine.inner.shutdown.clone();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = engine.inner.runner.claims.notified() => {}
            () = tokio::time::sleep(CLAIM_POLL) => {}
        }
        loop {
            let room = CLAIM_ROOM.saturating_sub(in_flight(engine));
            let limit = CLAIM_BATCH.min(room as u32);
            if limit == 0 || shutdown.is_cancelled() {
                break;
            }
            let claimed = match pg.claim_pending(&node, engine.now(), limit).await {
                Ok(runs) => runs,
                Err(e) => {
                    tracing::warn!(error = %crate::error::chain(&e), "cannot claim runs");
                    break;
                }
            };
            let full = claimed.len() as u32 == limit;
            for run in claimed {
                launch_stored(engine, run);
            }
            if !full {
                break;
            }
        }
    }
}
