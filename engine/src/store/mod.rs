//! The store: the one interface the engine reads and writes through. Its operations are
//! named for what the engine needs (claim a slot, finish a run if it is still running),
//! not for tables, and each states its contract; every backend implements all of them
//! and passes the same conformance suite (`tests/it/store.rs`).
//!
//! - [`Store`]: the interface — the handle the engine holds, one variant per backend,
//!   each operation documented with its contract and forwarded to the backend (so a
//!   backend that lacks one does not compile).
//! - [`sqlite`]: SQLite in the data dir (single writer, group commit).
//!
//! What must hold across nodes is decided here, atomically, not in memory: the overlap
//! policy in the slot claim, "finish only if still running", interrupts scoped to a node.

pub mod postgres;
pub mod rows;
pub mod sqlite;

use crate::error::Result;
use crate::model::{
    AuditEntry, DesiredState, Heartbeat, HourCount, Job, JobStats, LeaderTerm, NodeInfo, Overlap,
    Run, RunQuery, RunStatus, Trigger,
};
use chrono::{DateTime, Utc};

/// A slot to claim: the unique (job, slot) row that says it runs once.
#[derive(Debug, Clone, Copy)]
pub struct SlotClaim<'a> {
    pub job_id: &'a str,
    pub slot: DateTime<Utc>,
    /// `Schedule`, or `CatchUp` for the one run a misfire policy allows.
    pub trigger: Trigger,
    /// Decided against the job's active runs in the store, atomically with the claim.
    pub overlap: Overlap,
    /// When the run is recorded as started (the loop claims a little ahead of the slot).
    pub started_at: DateTime<Utc>,
    pub node: &'a str,
    /// The claiming leader's epoch: a claim with a stale one is refused in the same
    /// statement ([`Claim::Fenced`]). SQLite has one leader for good: 0.
    pub epoch: i64,
}

/// How a slot claim came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Recorded running: start it now.
    Run(i64),
    /// Recorded queued behind the job's active run (overlap = queue).
    Queued(i64),
    /// Recorded skipped, with the reason (overlap = skip, or the queue already holds one).
    Skipped(i64),
    /// Another claim of the same (job, slot) got there first; nothing was written.
    Taken,
    /// The claimant's epoch is stale (another node leads now); nothing was written.
    Fenced,
}

/// A run that starts at once, outside any slot (run now, a retry).
#[derive(Debug, Clone, Copy)]
pub struct NewRun<'a> {
    pub job_id: &'a str,
    /// The job's policy: a `skip` or `queue` job's start is serialised with its claims.
    pub overlap: Overlap,
    pub trigger: Trigger,
    pub attempt: u32,
    pub started_at: DateTime<Utc>,
    pub node: &'a str,
    /// Params merged over the job's for this run only (JSON text of the overrides).
    pub params: Option<&'a str>,
    /// The run this one reruns.
    pub rerun_of: Option<i64>,
}

/// The end of a run, as its runner (or whoever ends it) records it.
#[derive(Debug, Clone, Copy)]
pub struct RunEnd<'a> {
    pub id: i64,
    pub status: RunStatus,
    pub at: DateTime<Utc>,
    pub output: Option<&'a serde_json::Value>,
    pub error: Option<&'a str>,
    /// `None` keeps the stored log (a run ended by someone other than its runner).
    pub log: Option<&'a str>,
}

/// A notice to queue with an incident's change: one delivery to one channel.
#[derive(Debug, Clone, Copy)]
pub struct Notice<'a> {
    pub channel: &'a str,
    pub event: crate::model::alert::AlertEvent,
    /// The event as JSON text (what a webhook receives).
    pub body: &'a str,
}

/// An incident to open, with the notices it sends (none when suppressed).
#[derive(Debug, Clone, Copy)]
pub struct NewIncident<'a> {
    pub rule: &'a str,
    pub subject: &'a str,
    pub at: DateTime<Utc>,
    pub run: Option<i64>,
    pub message: &'a str,
    pub suppressed: Option<&'a str>,
    pub notices: &'a [Notice<'a>],
}

/// How one attempt of a delivery came out.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryEnd<'a> {
    pub id: i64,
    /// `Sent`, `Failed` (no attempts left), or `Pending` again (retried at `next_at`).
    pub status: crate::model::alert::DeliveryStatus,
    pub next_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
    pub code: Option<u16>,
    pub error: Option<&'a str>,
}

/// A file of jobs to apply at once ([`Store::apply_jobs`]).
#[derive(Debug, Clone, Copy)]
pub struct JobsPlan<'a> {
    pub insert: &'a [Job],
    /// Each with whether its slot cursor restarts (its timing changed).
    pub update: &'a [(Job, bool)],
    pub delete: &'a [String],
    /// JSON `{id: digest}` of every job applied from a file (the drift check's reference).
    pub applied: &'a str,
}

/// Where the digests of the jobs applied from a file are kept (`meta`).
pub const JOBS_APPLIED: &str = "jobs_applied";

/// A job as stored, with the last slot it claimed (where catch-up starts).
#[derive(Debug, Clone)]
pub struct StoredJob {
    pub job: Job,
    pub last_slot: DateTime<Utc>,
}

/// The store the engine holds: one variant per backend, each operation forwarded.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

impl Store {
    /// Opens (creating if missing) the SQLite file at `path` and applies its migrations.
    pub async fn open_sqlite(path: &std::path::Path) -> Result<Self> {
        Ok(Store::Sqlite(sqlite::SqliteStore::open(path).await?))
    }

    /// Connects to PostgreSQL at `url` (sessions named after `node`, timeouts fitted to
    /// the lease's `ttl`) and migrates it.
    pub async fn open_postgres(url: &str, node: &str, ttl: std::time::Duration) -> Result<Self> {
        Ok(Store::Postgres(
            postgres::PgStore::open(url, node, ttl).await?,
        ))
    }

    /// Whether several nodes may share this store (and so work is announced and logs of
    /// running runs are shared through it).
    pub fn shared(&self) -> bool {
        matches!(self, Store::Postgres(_))
    }

    /// The PostgreSQL backend, for what only several nodes need (the lease, the registry).
    pub fn postgres(&self) -> Option<&postgres::PgStore> {
        match self {
            Store::Postgres(pg) => Some(pg),
            Store::Sqlite(_) => None,
        }
    }
}

/// The longest any one PostgreSQL operation may take (statements time out at 30 s on the
/// server; this catches the connection that never answers).
const PG_DEADLINE: std::time::Duration = std::time::Duration::from_secs(15);

/// What an operation answers when the database did not answer in time.
trait TimedOut {
    fn timed_out() -> Self;
}

impl<T> TimedOut for Result<T> {
    fn timed_out() -> Self {
        Err(crate::EngineError::StoreTimeout(PG_DEADLINE))
    }
}

impl TimedOut for () {
    fn timed_out() -> Self {}
}

/// Records an operation's latency when it ends (whichever way it ends).
struct Timed(&'static str, std::time::Instant);

impl Drop for Timed {
    fn drop(&mut self) {
        crate::metrics::store_op(self.0, self.1.elapsed());
    }
}

/// Writes the interface: each operation with its contract, forwarded to the backend.
macro_rules! interface {
    ($( $(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty; )*) => {
        impl Store {
            $(
                $(#[$doc])*
                pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    let _timed = Timed(stringify!($name), std::time::Instant::now());
                    match self {
                        Store::Sqlite(s) => s.$name($($arg),*).await,
                        // A connection that went silent (a network cut off without a
                        // reset) answers nothing, ever: bounded here, so callers see
                        // `Unavailable`; an unfinished transaction is rolled back with
                        // its connection.
                        Store::Postgres(s) => tokio::time::timeout(PG_DEADLINE, s.$name($($arg),*))
                            .await
                            .unwrap_or_else(|_| TimedOut::timed_out()),
                    }
                }
            )*
        }
    };
}

interface! {
    // ---- the scheduler's intent and liveness -------------------------------------

    /// What the operator last asked the scheduler to be; `None` on a new store.
    fn desired_state(&self) -> Result<Option<DesiredState>>;
    /// Records the intent durably (before the scheduler acts on it).
    fn set_desired_state(&self, desired: DesiredState, at: DateTime<Utc>) -> Result<()>;
    /// Replaces `hb.node`'s heartbeat.
    fn record_heartbeat(&self, hb: &Heartbeat) -> Result<()>;
    fn last_heartbeat(&self, node: &str) -> Result<Option<Heartbeat>>;
    /// Succeeds only if the store takes a write right now.
    fn ping_write(&self) -> Result<()>;
    /// A small fact about the store itself (built-ins seeded, a brief delivered).
    fn fact(&self, key: &str) -> Result<Option<String>>;
    fn record_fact(&self, key: &str, value: &str) -> Result<()>;

    // ---- jobs --------------------------------------------------------------------

    /// Adds a job whose last slot is `now` (no backlog). `Conflict` if its id exists.
    fn insert_job(&self, job: &Job, now: DateTime<Utc>) -> Result<()>;
    /// Replaces a job's fields; `reset_slot` moves its last slot to `now` (a new schedule
    /// starts fresh). `NotFound` if there is no such job.
    fn update_job(&self, job: &Job, reset_slot: bool, now: DateTime<Utc>) -> Result<()>;
    /// Deletes a job (its runs stay as history); false if there was none.
    fn delete_job(&self, id: &str) -> Result<bool>;
    /// Every job with its last claimed slot, by id.
    fn load_jobs(&self) -> Result<Vec<StoredJob>>;
    /// Applies a file of jobs in one transaction: inserts, updates (resetting the slot
    /// cursor where asked), deletes, and the digests of the jobs as applied
    /// ([`JOBS_APPLIED`]). `Conflict` (nothing written) when a job was added or deleted
    /// meanwhile. Announced as a change of the jobs.
    fn apply_jobs(&self, plan: &JobsPlan<'_>, now: DateTime<Utc>) -> Result<()>;
    /// The newest run of every job that has one, in one query (the jobs list).
    fn last_runs(&self) -> Result<Vec<Run>>;

    // ---- runs: every change is a compare-and-set ---------------------------------

    /// Claims a slot: one row per (job, slot) whoever claims it, and — in the same atomic
    /// step — the job's overlap policy against its running runs: `allow` runs; `skip`
    /// runs unless one is running (then `Skipped`); `queue` runs, or queues behind a
    /// running one, or is `Skipped` when one already waits. The job's last slot advances.
    fn claim_slot(&self, c: &SlotClaim<'_>) -> Result<Claim>;
    /// Records missed slots as skipped with `reason` (a slot already claimed keeps its
    /// row) and advances the job's last slot; answers how many were recorded. Fenced by
    /// `epoch` like a claim (a stale leader records nothing: `Ok(0)`).
    fn record_skipped_slots(&self, job_id: &str, slots: &[DateTime<Utc>], reason: &str, now: DateTime<Utc>, node: &str, epoch: i64) -> Result<u64>;
    /// Records a run that starts now, outside any slot (run now, a retry); answers its id.
    fn start_run(&self, r: &NewRun<'_>) -> Result<i64>;
    /// Starts the oldest queued run of `job_id` on `node` unless one of the job's runs is
    /// running; answers its id.
    fn start_queued(&self, job_id: &str, node: &str, at: DateTime<Utc>) -> Result<Option<i64>>;
    /// Starts, on `node`, the oldest queued run of every job none of whose runs is running
    /// (queued runs left by a node that is gone, or whose start was missed); answers them.
    fn start_free_queued(&self, node: &str, at: DateTime<Utc>) -> Result<Vec<Run>>;
    /// Records a run's end **only if it is still running**; false when someone else ended
    /// it first (cancelled, interrupted), whose record then stands.
    fn finish_run(&self, end: &RunEnd<'_>) -> Result<bool>;
    /// Keeps a running run's log so far where other nodes can read it (SQLite: one node
    /// follows its runs in memory; nothing to do).
    fn save_log(&self, id: i64, log: &str) -> Result<()>;
    /// Ends as `interrupted` every queued or running run of `node` (its process is gone);
    /// answers them.
    fn interrupt_runs_of(&self, node: &str, reason: &str, at: DateTime<Utc>) -> Result<Vec<Run>>;
    /// The leader's rescue: ends as `interrupted` every running run whose node is gone — on
    /// SQLite every node but `node` (the data-dir lock proves no other process lives), on
    /// PostgreSQL every node whose heartbeat expired. Their queued runs stay queued, for
    /// `start_free_queued` to take over. Fenced by `epoch`.
    fn interrupt_orphans(&self, node: &str, epoch: i64, reason: &str, at: DateTime<Utc>) -> Result<Vec<Run>>;
    /// The nodes in the registry, newest first (SQLite keeps none: one node).
    fn list_nodes(&self) -> Result<Vec<NodeInfo>>;
    /// The last `limit` leaders' terms, newest first (SQLite: none, one leader for good).
    fn leader_history(&self, limit: u32) -> Result<Vec<LeaderTerm>>;

    // ---- the operator's controls: compare-and-set, announced to every node ---------

    /// Ends a queued or running run as `cancelled` with `error`; false when it had ended
    /// already (its own end then stands). Announced, so the node running it stops it.
    fn cancel_run(&self, id: i64, error: &str, at: DateTime<Utc>) -> Result<bool>;
    /// Keeps the whole log of a run cancelled while it ran here (its runner's record of
    /// the end was refused).
    fn keep_log(&self, id: i64, log: &str) -> Result<()>;
    /// The ids of the reruns of run `id`, oldest first.
    fn reruns_of(&self, id: i64) -> Result<Vec<i64>>;
    /// Replaces a job's pause (JSON text; `None`: not paused) only if it still is `from`;
    /// false otherwise, or when there is no such job. Announced as a change of the jobs.
    fn swap_job_pause(&self, job_id: &str, from: Option<&str>, to: Option<&str>, now: DateTime<Utc>) -> Result<bool>;
    /// The scheduler-wide pause (JSON text), if one is in force.
    fn scheduler_pause(&self) -> Result<Option<String>>;
    /// Replaces the scheduler-wide pause only if it still is `from`; false otherwise.
    /// Announced as a change of the operator's intent.
    fn swap_scheduler_pause(&self, from: Option<&str>, to: Option<&str>) -> Result<bool>;

    /// Every maintenance window, by id.
    fn list_windows(&self) -> Result<Vec<crate::model::Window>>;
    /// Adds (`create`; false if its id exists) or replaces (false if there is none) a
    /// window. Announced as a change of the operator's intent.
    fn put_window(&self, w: &crate::model::Window, create: bool, now: DateTime<Utc>) -> Result<bool>;
    /// Deletes a window; false if there was none. Announced likewise.
    fn delete_window(&self, id: &str) -> Result<bool>;

    // ---- alerts ----------------------------------------------------------------------

    /// The definitions (JSON text) of every `what` (`channel`, `rule`, `check`), by id.
    fn alert_items(&self, what: &str) -> Result<Vec<String>>;
    /// Adds (`create`; false if its id exists) or replaces (false if there is none) one.
    fn put_alert_item(&self, what: &str, id: &str, body: &str, create: bool, now: DateTime<Utc>) -> Result<bool>;
    /// Deletes one; false if there was none.
    fn delete_alert_item(&self, what: &str, id: &str) -> Result<bool>;
    /// The newest incident of every (rule, subject) pair, without deliveries.
    fn latest_incidents(&self) -> Result<Vec<crate::model::alert::Incident>>;
    /// Open incidents first, then the newest, at most `limit`, each with its deliveries.
    fn list_incidents(&self, limit: u32) -> Result<Vec<crate::model::alert::Incident>>;
    /// Opens an incident and queues its notices, in one transaction; `None` (nothing
    /// written) when one is open for its (rule, subject) already.
    fn open_incident(&self, i: &NewIncident<'_>) -> Result<Option<i64>>;
    /// Closes an open incident and queues its notices; false if it was not open.
    fn close_incident(&self, id: i64, at: DateTime<Utc>, closed_by: Option<i64>, notices: &[Notice<'_>]) -> Result<bool>;
    /// Records a reminder of an open incident last notified at `since`, and queues its
    /// notices; false when it closed or someone reminded first.
    fn remind_incident(&self, id: i64, at: DateTime<Utc>, since: Option<DateTime<Utc>>, notices: &[Notice<'_>]) -> Result<bool>;
    /// Deliveries whose next attempt is due (pending, or a claimed attempt whose sender
    /// went silent), oldest first.
    fn due_deliveries(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<crate::model::alert::Delivery>>;
    /// Claims the next attempt of a due delivery until `until` (one sender per attempt,
    /// whichever node); false when another claimed it or it is no longer due.
    fn claim_delivery(&self, id: i64, now: DateTime<Utc>, until: DateTime<Utc>) -> Result<bool>;
    /// Records how a claimed attempt came out.
    fn finish_delivery(&self, end: &DeliveryEnd<'_>) -> Result<()>;
    /// Deletes pings, closed incidents (with their deliveries) from before `cutoff` — but
    /// never the newest incident of a (rule, subject), nor a check's newest pings;
    /// answers how many rows went.
    fn delete_old_alerts(&self, cutoff: DateTime<Utc>) -> Result<u64>;
    fn record_ping(&self, check_id: &str, p: &crate::model::alert::Ping) -> Result<()>;
    /// A check's newest pings, newest first.
    fn pings(&self, check_id: &str, limit: u32) -> Result<Vec<crate::model::alert::Ping>>;
    /// The newest ping of each kind of every check (without bodies).
    fn last_pings(&self) -> Result<Vec<(String, crate::model::alert::Ping)>>;

    // ---- reading runs --------------------------------------------------------------

    fn get_run(&self, id: i64) -> Result<Option<Run>>;
    /// A run's stored log (empty until it ends); `None` when there is no such run.
    fn run_log(&self, id: i64) -> Result<Option<String>>;
    /// Newest first, filtered, at most `q.limit` (1-500), ids below `q.before`.
    fn list_runs(&self, q: &RunQuery) -> Result<Vec<Run>>;
    /// Runs still running `grace` past their job's timeout.
    fn stuck_runs(&self, now: DateTime<Utc>, grace: std::time::Duration) -> Result<Vec<Run>>;
    /// The newest run of `job_id` that ended with an output (a report).
    fn latest_report(&self, job_id: &str) -> Result<Option<Run>>;
    /// Per job figures of the runs that started (or ended) at or after `since`.
    fn job_stats_since(&self, since: DateTime<Utc>) -> Result<Vec<JobStats>>;
    /// Runs per hour for the `hours` whole hours up to the one holding `now`, oldest first.
    fn hourly_counts(&self, now: DateTime<Utc>, hours: usize) -> Result<Vec<HourCount>>;

    // ---- retention and audit --------------------------------------------------------

    /// Deletes ended runs that ended before `cutoff`, keeping the newest `keep_last` of
    /// every job whatever their age; answers how many went.
    fn delete_old_runs(&self, cutoff: DateTime<Utc>, keep_last: u32) -> Result<u64>;
    fn delete_old_audit(&self, cutoff: DateTime<Utc>) -> Result<u64>;
    /// Gives the space of deleted rows back.
    fn reclaim_space(&self) -> Result<()>;
    /// Records an entry, control characters in its text encoded.
    fn record_audit(&self, e: &AuditEntry) -> Result<()>;
    /// The newest `limit` entries, newest first.
    fn list_audit(&self, limit: u32) -> Result<Vec<AuditEntry>>;
    /// Flushes and closes; call once nothing writes any more.
    fn close(&self) -> ();
}

/// Why a slot claimed under `skip` was not run (the ledger's reason).
pub const SKIPPED_ACTIVE: &str = "the previous run is still active (overlap = skip)";
/// Why a slot claimed under `queue` was not run: one already waits.
pub const SKIPPED_QUEUE_FULL: &str = "a run is already queued behind the active one";
