//! Leadership: which node decides which runs exist (fires schedules, catches up missed
//! slots, rescues the runs of dead nodes). Every node runs the firing loop; only the
//! leader's claims are written — the store refuses the others' (fencing by epoch) and the
//! loop does not try while this node does not lead. Every node executes the runs it is
//! given either way.
//!
//! On SQLite there is one node by construction — the data-dir lock lets a single server
//! open the store — so that node leads from the start, with epoch 0, and never stops. On
//! PostgreSQL a lease with an epoch decides ([`crate::cluster`]). The rest of the engine
//! only listens to the notifier's leadership signal.

use crate::Engine;

/// How this node comes to lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Election {
    /// The only node (SQLite behind the data-dir lock): leads at once, for good.
    Sole,
    /// One of several on PostgreSQL: whoever holds the lease ([`crate::cluster`]).
    Lease,
}

impl Election {
    /// Takes part: leads at once (sole), or joins the cluster (lease; leads before this
    /// returns when no other node holds the lease).
    pub(crate) async fn begin(self, engine: &Engine) -> crate::Result<()> {
        match self {
            Election::Sole => {
                engine.inner.notifier.set_leader(Some(0));
                Ok(())
            }
            Election::Lease => match (engine.inner.store.postgres(), &engine.inner.cluster) {
                (Some(pg), Some(cluster)) => crate::cluster::join(engine, pg, cluster).await,
                _ => Ok(()),
            },
        }
    }

    /// Gives leadership up (at shutdown), announcing it so another node may take over at
    /// once; with `runs_done`, the node also leaves the registry.
    pub(crate) async fn resign(self, engine: &Engine, runs_done: bool) {
        match self {
            Election::Sole => engine.inner.notifier.set_leader(None),
            Election::Lease => {
                if let Some(pg) = engine.inner.store.postgres() {
                    crate::cluster::leave(engine, pg, runs_done).await;
                }
            }
        }
    }
}

/// The epoch this node leads with, for a leader write about to be made; `None` when it
/// does not lead, or when its deadline passed (it then steps down here, even if the
/// elector is itself stuck on an unresponsive database).
pub(crate) fn epoch(engine: &Engine) -> Option<i64> {
    let epoch = engine.inner.notifier.epoch()?;
    let deadline = *engine
        .inner
        .leader_deadline
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if deadline.is_some_and(|until| std::time::Instant::now() >= until) {
        tracing::warn!(epoch, "the lease's deadline passed; stepping down");
        step_down(engine, epoch);
        return None;
    }
    Some(epoch)
}

/// Stops leading at once: a leader write was refused because `epoch` is stale (another
/// node took the lease), or the lease's deadline passed. Claims stop with the next slot;
/// the elector decides anew.
pub(crate) fn step_down(engine: &Engine, epoch: i64) {
    let notifier = &engine.inner.notifier;
    if notifier.epoch() == Some(epoch) {
        notifier.set_leader(None);
    }
}
