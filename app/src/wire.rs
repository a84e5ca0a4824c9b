//! Types that cross the wire between the server and the browser. Times arrive formatted
//! and figures rounded, so the WASM bundle carries no date or number formatting; the
//! mapping from engine types lives in [`crate::ssr`], which only the server compiles.

use serde::{Deserialize, Serialize};

/// `running` | `stopped` | `stalled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchedulerState {
    Running,
    Stopped,
    Stalled,
}

impl SchedulerState {
    /// The word the dashboard shows.
    pub fn label(self) -> &'static str {
        match self {
            SchedulerState::Running => "Running",
            SchedulerState::Stopped => "Stopped",
            SchedulerState::Stalled => "Stalled",
        }
    }
}

/// A job's next planned run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextRun {
    pub job: String,
    pub at: String,
}

/// The overview's status card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchedulerStatus {
    pub state: SchedulerState,
    pub pid: u32,
    pub uptime_secs: u64,
    pub heartbeat_age_secs: Option<u64>,
    pub heartbeat_interval_secs: u64,
    pub next_runs: Vec<NextRun>,
    pub node: String,
    /// `only node` (SQLite), `leader (epoch 7)` or `follower`.
    pub role: String,
    pub loop_lag_ms: Option<String>,
    pub active_runs: usize,
    /// The pause of everything in force, if any.
    pub paused: Option<PauseNote>,
}

/// A pause as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseNote {
    pub reason: String,
    pub by: String,
    pub since: String,
    /// Empty: until resumed.
    pub until: Option<String>,
}

/// Everything paused now, for the banner on every page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Pauses {
    pub all: Option<PauseNote>,
    /// Paused jobs by id.
    pub jobs: Vec<(String, PauseNote)>,
}

/// A maintenance window as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowRow {
    pub id: String,
    pub name: String,
    /// "0 0 2 * * SUN for 2h (Europe/Warsaw): At 02:00, only on Sunday" or the one-off span.
    pub when: String,
    /// "every job" or the ids.
    pub jobs: String,
}

/// What a bulk action over the runs filter would do, or did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkCount {
    pub count: usize,
    /// More matched than one action takes.
    pub more: bool,
}

/// A run as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    pub id: i64,
    pub job: String,
    pub trigger: String,
    pub status: String,
    pub attempt: u32,
    /// When it started, or was scheduled for, or ended.
    pub when: String,
    pub duration: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunsPage {
    pub runs: Vec<RunRow>,
    /// The cursor for the next (older) page.
    pub next: Option<i64>,
    /// Every job id, for the filter.
    pub jobs: Vec<String>,
}

/// A table drawn from a report (finance months, metrics per job, health checks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunDetail {
    pub run: RunRow,
    pub finished: bool,
    pub node: String,
    pub scheduled: Option<String>,
    pub started: Option<String>,
    pub ended: Option<String>,
    /// The output as pretty-printed JSON.
    pub output: String,
    /// The stored log (complete once the run has finished).
    pub log: String,
    pub tables: Vec<Table>,
    /// The params it ran with over its job's (pretty JSON, secrets masked), if any.
    pub params: Option<String>,
    pub rerun_of: Option<i64>,
    pub reruns: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub schedule: String,
    pub words: String,
    pub timezone: String,
    pub enabled: bool,
    pub next_run: Option<String>,
    pub last_status: Option<String>,
    pub last_run: Option<i64>,
    pub paused: Option<PauseNote>,
    /// Applied from a file (`jobs apply`), and edited by other means since.
    pub from_file: bool,
    pub drift: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobsPage {
    pub jobs: Vec<JobRow>,
}

/// What the job form edits; `params` is JSON text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobForm {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub schedule: String,
    pub timezone: String,
    pub timeout_secs: u64,
    pub retries: u32,
    pub retry_backoff_secs: u64,
    pub overlap: String,
    pub misfire: String,
    pub params: String,
    pub enabled: bool,
    /// The kinds this server can run (shell only when enabled).
    pub kinds: Vec<String>,
}

/// A schedule's next fire times, or why it is not one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preview {
    pub words: String,
    pub slots: Vec<Slot>,
    /// `field: message` when the schedule or zone is refused.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slot {
    pub local: String,
    pub utc: String,
    pub change: Option<String>,
    /// Why it would not run (`maintenance: <name>`, `paused: …`).
    pub swallowed: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub state: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub at: String,
    pub run_id: i64,
    pub checks: Vec<Check>,
    pub repairs: Vec<String>,
}

/// A bar of a chart: its label, value and the value as shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub text: String,
}

/// Runs in one hour, by outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HourBar {
    pub label: String,
    pub succeeded: u64,
    pub failed: u64,
    pub skipped: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    pub health: Option<Health>,
    /// Failed, timed-out, interrupted and skipped (missed) runs of the last 24 h.
    pub problems: Vec<RunRow>,
    pub hours: Vec<HourBar>,
    pub p95: Vec<Bar>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Brief {
    pub run_id: i64,
    pub at: String,
    pub source: String,
    /// Rendered from the brief's markdown on the server; raw HTML in it is escaped.
    pub html: String,
    /// The facts it was written from, pretty-printed JSON.
    pub facts: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Month {
    pub month: String,
    pub revenue: f64,
    pub expenses: f64,
    pub net: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finance {
    pub run_id: i64,
    pub at: String,
    pub source: String,
    pub months: Vec<Month>,
    /// The latest month's figures, as shown: MRR, burn, cash, runway, growth.
    pub latest: Vec<(String, String)>,
    pub table: Table,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub success: Vec<Bar>,
    pub table: Table,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub ip: String,
    pub action: String,
    pub target: String,
    pub details: String,
    pub status: u16,
}

/// The nodes page: every node sharing the store, and who led.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    /// `sqlite` (one node) or `postgres` (several).
    pub store: String,
    pub nodes: Vec<NodeRow>,
    /// Newest term first (empty on SQLite).
    pub leaders: Vec<LeaderRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRow {
    pub id: String,
    pub name: String,
    pub pid: u32,
    pub version: String,
    pub started: String,
    /// `0.4 s ago`.
    pub heartbeat: String,
    pub alive: bool,
    pub running: u64,
    /// `+12 ms` (its clock minus the database's).
    pub clock_offset: String,
    /// Off by more than a second: worth fixing (time sync).
    pub clock_warning: bool,
    pub leader: bool,
    /// The node that rendered the page.
    pub this: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaderRow {
    pub epoch: i64,
    pub holder: String,
    pub from: String,
    /// Empty while the term lasts.
    pub until: String,
    /// `resigned` (a graceful handoff), `expired` (its holder stopped renewing), or empty.
    pub how: String,
    pub lasted: String,
}

/// An alert incident as the Alerts page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentRow {
    pub id: i64,
    pub rule: String,
    /// `job:<id>`, `check:<id>`, `system:<what>`.
    pub subject: String,
    /// The job it is about, for a link.
    pub job: Option<String>,
    pub open: bool,
    /// Why nobody was told (a pause, a window), when so.
    pub suppressed: Option<String>,
    pub opened: String,
    pub closed: String,
    pub message: String,
    pub run: Option<i64>,
    pub deliveries: Vec<DeliveryRow>,
}

/// One notice to one channel, with how its attempts went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRow {
    pub channel: String,
    pub event: String,
    pub status: String,
    pub attempts: u32,
    pub code: String,
    pub error: String,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRow {
    pub id: String,
    pub kind: String,
    /// The URL (credentials masked) or the SMTP relay and recipients.
    pub target: String,
    /// A secret or password is set (never shown).
    pub secret: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRow {
    pub id: String,
    pub on: String,
    /// "every job and check" or the ids.
    pub scope: String,
    /// Threshold, window, grace, reminders.
    pub detail: String,
    pub channels: String,
}

/// One ping of an inbound check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingRow {
    pub at: String,
    /// success, start, fail.
    pub kind: String,
    pub source: String,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRow {
    pub id: String,
    pub name: String,
    /// new, up, late, down.
    pub state: String,
    /// "every 1h, grace 10m" or the schedule.
    pub expect: String,
    pub last_ping: String,
    pub due: String,
    pub ping_url: String,
}
