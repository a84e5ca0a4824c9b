//! Runs: one execution (or skipped slot) of a job, why it started and where it is.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Why a run started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Schedule,
    Manual,
    Api,
    Cli,
    Retry,
    CatchUp,
    /// An ended run started again with the same params (`rerun_of` says which).
    Rerun,
}

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

text_enum!(Trigger { Schedule => "schedule", Manual => "manual", Api => "api", Cli => "cli", Retry => "retry", CatchUp => "catch_up", Rerun => "rerun" });
text_enum!(RunStatus {
    Queued => "queued", Running => "running", Succeeded => "succeeded", Failed => "failed",
    TimedOut => "timed_out", Cancelled => "cancelled", Interrupted => "interrupted", Skipped => "skipped",
});

/// One execution (or skipped slot) of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// The params merged over its job's for this run only (secrets masked on reads);
    /// `None`: it ran with its job's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<serde_json::Value>,
    /// The run this one reruns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun_of: Option<i64>,
    /// The reruns of this one, oldest first (on reads of one run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reruns: Option<Vec<i64>>,
}

/// Filters and paging for run listings.
#[derive(Debug, Clone, Default)]
pub struct RunQuery {
    pub job: Option<String>,
    pub status: Option<RunStatus>,
    /// Only runs with an id below this (the cursor of the previous page).
    pub before: Option<i64>,
    /// Only runs with an id above this.
    pub after: Option<i64>,
    pub limit: u32,
}

impl Run {
    /// A slot skipped on purpose: an operator's pause or a maintenance window swallowed it.
    pub fn swallowed(&self) -> bool {
        self.status == RunStatus::Skipped
            && self
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with("paused:") || e.starts_with("maintenance:"))
    }

    /// The run as reads show it: secret params masked.
    pub fn shown(mut self) -> Run {
        if let Some(p) = &self.params {
            self.params = Some(crate::secrets::mask_params(p));
        }
        self
    }
}
