//! Runs: one execution (or skipped slot) of a job, why it started and where it is.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Why a run started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Schedule,
    Manual,
    Api,
    Cli,
    Retry,
    CatchUp,
}

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
    Interrupted,
    Skipped,
}

impl RunStatus {
    pub fn is_finished(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

text_enum!(Trigger { Schedule => "schedule", Manual => "manual", Api => "api", Cli => "cli", Retry => "retry", CatchUp => "catch_up" });
text_enum!(RunStatus {
    Queued => "queued", Running => "running", Succeeded => "succeeded", Failed => "failed",
    TimedOut => "timed_out", Cancelled => "cancelled", Interrupted => "interrupted", Skipped => "skipped",
});

/// One execution (or skipped slot) of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: i64,
    pub job_id: String,
    pub trigger: Trigger,
    pub status: RunStatus,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub attempt: u32,
    pub output: serde_json::Value,
    pub error: Option<String>,
    pub node: String,
}

/// Filters and paging for run listings.
#[derive(Debug, Clone, Default)]
pub struct RunQuery {
    pub job: Option<String>,
    pub status: Option<RunStatus>,
    /// Only runs with an id below this (the cursor of the previous page).
    pub before: Option<i64>,
    pub limit: u32,
}
