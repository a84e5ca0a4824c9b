//! The scheduler as status shows it: its state, the operator's intent, heartbeats.

use crate::error::{EngineError, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What the operator last asked the scheduler to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DesiredState {
    Running,
    Stopped,
}

impl DesiredState {
    pub fn as_str(self) -> &'static str {
        match self {
            DesiredState::Running => "running",
            DesiredState::Stopped => "stopped",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "running" => Ok(DesiredState::Running),
            "stopped" => Ok(DesiredState::Stopped),
            other => Err(EngineError::Corrupt(format!(
                "scheduler_state.desired is {other:?}, expected running or stopped"
            ))),
        }
    }
}

/// A job's next planned run, as recorded with each heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NextRun {
    pub job: String,
    pub at: DateTime<Utc>,
}

/// One heartbeat of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub node: String,
    pub pid: u32,
    pub started_at: DateTime<Utc>,
    pub at: DateTime<Utc>,
    pub next_runs: Vec<NextRun>,
}

/// The state status reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SchedulerState {
    Running,
    Stopped,
    /// Asked to run, but the heartbeat is older than twice its interval.
    Stalled,
}

/// A snapshot of the scheduler, as `GET /api/automations/status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Status {
    pub state: SchedulerState,
    pub running: bool,
    pub pid: u32,
    pub started_at: DateTime<Utc>,
    pub uptime_secs: u64,
    pub last_heartbeat: Option<DateTime<Utc>>,
    pub heartbeat_age_secs: Option<f64>,
    pub heartbeat_interval_secs: u64,
    pub next_runs: Vec<NextRun>,
    pub node: String,
    /// How late the firing loop woke for its last slot, in ms (the watchdog's measure).
    pub loop_lag_ms: Option<f64>,
    /// How many times the watchdog had to restart the loop.
    pub loop_restarts: u64,
    pub active_runs: usize,
    /// `sqlite` (one node) or `postgres` (several).
    pub store: String,
    /// Whether this node holds the leader's lease (SQLite: always).
    pub leader: bool,
    /// The lease's epoch while this node leads (SQLite: 0).
    pub epoch: Option<i64>,
    /// The nodes sharing the store (SQLite: this one), newest first.
    pub nodes: Vec<NodeStatus>,
    /// The pause of everything in force, if any: slots are recorded skipped meanwhile.
    pub paused: Option<super::Pause>,
}

/// A node as status shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeStatus {
    pub id: String,
    pub name: String,
    pub pid: u32,
    pub version: String,
    pub started_at: DateTime<Utc>,
    /// Seconds since its last heartbeat.
    pub heartbeat_age_secs: f64,
    /// False once its heartbeat expired (its runs are being or were rescued).
    pub alive: bool,
    /// Runs executing there.
    pub running: u64,
    /// Its wall clock minus the database's, in ms.
    pub clock_offset_ms: i64,
    /// Whether it holds the leader's lease.
    pub leader: bool,
}

/// A node in the registry (several nodes on PostgreSQL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// New per process start: `<name>-<pid>-<random>`.
    pub id: String,
    /// The node's configured name (`--node`, else the host name).
    pub name: String,
    pub pid: u32,
    pub version: String,
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat, by the database's clock.
    pub heartbeat_at: DateTime<Utc>,
    /// When it counts as gone unless it beats again.
    pub expires_at: DateTime<Utc>,
    /// Runs executing there.
    pub running: u64,
    /// Its wall clock minus the database's, in ms, as it last measured.
    pub clock_offset_ms: i64,
    /// Whether it holds an unexpired lease (as read; not stored with the node).
    pub leader: bool,
}

/// One leader's term.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LeaderTerm {
    pub epoch: i64,
    /// The node id that held the lease.
    pub holder: String,
    pub acquired_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// `resigned`, `expired` (taken over after its lease lapsed), or still leading.
    pub ended_how: Option<String>,
}
