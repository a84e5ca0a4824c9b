//! The notifier: the one way the engine's parts and its edges hear that something
//! changed — a run started or ended, the jobs changed, leadership moved. In one process
//! it is a few watch channels; with several nodes on PostgreSQL the same signals arrive
//! over LISTEN/NOTIFY, so `?wait=true`, `/api/events` and live logs see runs that execute
//! elsewhere.
//!
//! Each signal is a counter (or, for leadership, a flag) that only moves forward:
//! listeners wake on a change and read the store for what it means, so a burst of
//! changes costs one wake-up, and a listener that fell behind never misses the latest.

use tokio::sync::watch;

#[derive(Debug)]
pub struct Notifier {
    /// Bumped whenever a run starts or ends (live views of the runs).
    runs: watch::Sender<u64>,
    /// Bumped whenever a run ends (callers waiting for one).
    ended: watch::Sender<u64>,
    /// Bumped whenever a job is created, changed or deleted (the firing loop re-plans).
    jobs: watch::Sender<u64>,
    /// This node's leader epoch while it leads (fires schedules); `None` while it does not.
    leader: watch::Sender<Option<i64>>,
}

impl Default for Notifier {
    fn default() -> Self {
        Notifier {
            runs: watch::Sender::new(0),
            ended: watch::Sender::new(0),
            jobs: watch::Sender::new(0),
            leader: watch::Sender::new(None),
        }
    }
}

impl Notifier {
    pub fn run_started(&self) {
        self.runs.send_modify(|n| *n += 1);
    }

    pub fn run_ended(&self) {
        self.runs.send_modify(|n| *n += 1);
        self.ended.send_modify(|n| *n += 1);
    }

    pub fn jobs_changed(&self) {
        self.jobs.send_modify(|n| *n += 1);
    }

    /// Announces that this node leads with `epoch`, or (`None`) that it does not.
    pub fn set_leader(&self, epoch: Option<i64>) {
        self.leader
            .send_if_modified(|l| std::mem::replace(l, epoch) != epoch);
    }

    /// Changes whenever a run starts or ends.
    pub fn runs(&self) -> watch::Receiver<u64> {
        self.runs.subscribe()
    }

    /// Changes whenever a run ends.
    pub fn ended(&self) -> watch::Receiver<u64> {
        self.ended.subscribe()
    }

    /// Changes whenever the jobs change.
    pub fn jobs(&self) -> watch::Receiver<u64> {
        self.jobs.subscribe()
    }

    /// This node's leadership (its epoch while it leads), and its changes.
    pub fn leadership(&self) -> watch::Receiver<Option<i64>> {
        self.leader.subscribe()
    }

    pub fn is_leader(&self) -> bool {
        self.leader.borrow().is_some()
    }

    /// The epoch this node leads with, if it leads.
    pub fn epoch(&self) -> Option<i64> {
        *self.leader.borrow()
    }
}
