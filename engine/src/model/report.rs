//! Figures over the run history, and the audit log's entries.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One job's figures over a window of its runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobStats {
    pub job: String,
    /// Runs that ended succeeded, failed, timed out or interrupted.
    pub runs: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub success_rate: Option<f64>,
    /// Nearest-rank percentiles of the durations.
    pub p50_ms: Option<i64>,
    pub p95_ms: Option<i64>,
}

/// Runs in one hour: succeeded, failed (failed, timed out, interrupted) and skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HourCount {
    /// The hour's start, ms since the epoch.
    pub hour_ms: i64,
    pub succeeded: u64,
    pub failed: u64,
    pub skipped: u64,
}

/// One line of the audit log.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    /// `key` (the X-Dash-Key header), `session <id hash>`, `wrong key` or `anonymous`:
    /// always from the credential, never from a header the client chose.
    pub actor: String,
    pub ip: String,
    /// `METHOD /path`, or `login`, `login failed`, `logout`.
    pub action: String,
    /// What the change was about (`job nightly`, `run 42`), when known.
    pub target: String,
    /// The request's arguments as JSON, secrets masked.
    pub details: String,
    /// The HTTP status the request was answered with.
    pub status: u16,
}
