//! Types that cross the wire between the server and the browser. They mirror the
//! engine's types field for field (the REST contract of DESIGN.md) but compile to WASM;
//! the mapping from engine types lives in the ssr-only part of this module.

use chrono::{DateTime, Utc};
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
    pub at: DateTime<Utc>,
}

/// `GET /api/automations/status` and the overview's status card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchedulerStatus {
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
    pub loop_lag_ms: Option<f64>,
    pub loop_restarts: u64,
    pub active_runs: usize,
}

#[cfg(feature = "ssr")]
mod from_engine {
    use super::*;

    impl From<engine::SchedulerState> for SchedulerState {
        fn from(s: engine::SchedulerState) -> Self {
            match s {
                engine::SchedulerState::Running => SchedulerState::Running,
                engine::SchedulerState::Stopped => SchedulerState::Stopped,
                engine::SchedulerState::Stalled => SchedulerState::Stalled,
            }
        }
    }

    impl From<engine::Status> for SchedulerStatus {
        fn from(s: engine::Status) -> Self {
            SchedulerStatus {
                state: s.state.into(),
                running: s.running,
                pid: s.pid,
                started_at: s.started_at,
                uptime_secs: s.uptime_secs,
                last_heartbeat: s.last_heartbeat,
                heartbeat_age_secs: s.heartbeat_age_secs,
                heartbeat_interval_secs: s.heartbeat_interval_secs,
                next_runs: s
                    .next_runs
                    .into_iter()
                    .map(|n| NextRun {
                        job: n.job,
                        at: n.at,
                    })
                    .collect(),
                node: s.node,
                loop_lag_ms: s.loop_lag_ms,
                loop_restarts: s.loop_restarts,
                active_runs: s.active_runs,
            }
        }
    }
}
