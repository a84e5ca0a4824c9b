//! Leadership: which node decides which runs exist (fires schedules, catches up missed
//! slots, watches the loop). The scheduler runs while this node leads and stops when it
//! does not; every node runs the runs it is given either way.
//!
//! On SQLite there is one node by construction — the data-dir lock lets a single server
//! open the store — so that node leads from the start and never stops. PostgreSQL brings
//! a lease with an epoch here; the rest of the engine only listens to the notifier's
//! leadership signal.

use crate::notify::Notifier;

/// How this node comes to lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Election {
    /// The only node (SQLite behind the data-dir lock): leads at once, for good.
    Sole,
}

impl Election {
    /// Takes leadership as this election allows and announces it.
    pub fn begin(self, notifier: &Notifier) {
        match self {
            Election::Sole => notifier.set_leader(Some(0)),
        }
    }

    /// Gives leadership up (at shutdown), announcing it so another node may take over.
    pub fn resign(self, notifier: &Notifier) {
        match self {
            Election::Sole => notifier.set_leader(None),
        }
    }
}

/// Stops leading at once: a leader write was refused because `epoch` is stale (another
/// node took the lease). Firing stops with the next claim; the election decides anew.
pub(crate) fn step_down(engine: &crate::Engine, epoch: i64) {
    let notifier = &engine.inner.notifier;
    if notifier.epoch() == Some(epoch) {
        notifier.set_leader(None);
    }
}
