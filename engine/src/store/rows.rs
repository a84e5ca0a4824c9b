//! Rows as every backend reads them: plain columns (`FromRow` for any database), turned
//! into the model's records in one place. A value the engine does not understand is
//! `Corrupt`, naming it.

use crate::error::{EngineError, Result};
use crate::model::{AuditEntry, Job, Misfire, Overlap, Run, RunStatus, Trigger};
use crate::store::StoredJob;
use chrono::DateTime;

/// The job columns, in the order the backends select them.
pub const JOB_COLUMNS: &str = "id, name, kind, schedule, timezone, enabled, timeout_secs, retries, retry_backoff_secs, overlap, misfire, params, last_slot_ms";
/// The run columns, in the order the backends select them.
pub const RUN_COLUMNS: &str = "id, job_id, trigger, status, scheduled_ms, started_ms, finished_ms, attempt, output, error, node";

/// The run columns prefixed with a table alias (`r.id, r.job_id, ...`).
pub fn run_columns_of(alias: &str) -> String {
    RUN_COLUMNS
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(sqlx::FromRow)]
pub struct JobRow {
    id: String,
    name: String,
    kind: String,
    schedule: String,
    timezone: String,
    enabled: bool,
    timeout_secs: i64,
    retries: i64,
    retry_backoff_secs: i64,
    overlap: String,
    misfire: String,
    params: String,
    last_slot_ms: i64,
}

impl TryFrom<JobRow> for StoredJob {
    type Error = EngineError;

    fn try_from(r: JobRow) -> Result<StoredJob> {
        let corrupt = |what: &str, v: &str| EngineError::Corrupt(format!("job {what} {v:?}"));
        let job = Job {
            overlap: Overlap::parse(&r.overlap).ok_or_else(|| corrupt("overlap", &r.overlap))?,
            misfire: Misfire::parse(&r.misfire).ok_or_else(|| corrupt("misfire", &r.misfire))?,
            params: serde_json::from_str(&r.params).map_err(|_| corrupt("params", &r.params))?,
            id: r.id,
            name: r.name,
            kind: r.kind,
            schedule: r.schedule,
            timezone: r.timezone,
            enabled: r.enabled,
            timeout_secs: r.timeout_secs.max(1) as u64,
            retries: r.retries.max(0) as u32,
            retry_backoff_secs: r.retry_backoff_secs.max(0) as u64,
            next_run_at: None,
        };
        Ok(StoredJob {
            job,
            last_slot: DateTime::from_timestamp_millis(r.last_slot_ms)
                .ok_or_else(|| corrupt("last_slot_ms", &r.last_slot_ms.to_string()))?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct RunRow {
    id: i64,
    job_id: String,
    trigger: String,
    status: String,
    scheduled_ms: Option<i64>,
    started_ms: Option<i64>,
    finished_ms: Option<i64>,
    attempt: i64,
    output: Option<String>,
    error: Option<String>,
    node: String,
}

impl TryFrom<RunRow> for Run {
    type Error = EngineError;

    fn try_from(r: RunRow) -> Result<Run> {
        let from_ms = |ms: Option<i64>| ms.and_then(DateTime::from_timestamp_millis);
        Ok(Run {
            id: r.id,
            trigger: Trigger::parse(&r.trigger)
                .ok_or_else(|| EngineError::Corrupt(format!("run trigger {:?}", r.trigger)))?,
            status: RunStatus::parse(&r.status)
                .ok_or_else(|| EngineError::Corrupt(format!("run status {:?}", r.status)))?,
            scheduled_at: from_ms(r.scheduled_ms),
            started_at: from_ms(r.started_ms),
            finished_at: from_ms(r.finished_ms),
            attempt: r.attempt.max(1) as u32,
            // A report that is not JSON (written by hand, say) is still shown, as text.
            output: r
                .output
                .map(|o| serde_json::from_str(&o).unwrap_or(serde_json::Value::String(o)))
                .unwrap_or_else(|| serde_json::json!({})),
            job_id: r.job_id,
            error: r.error,
            node: r.node,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct AuditRow {
    at_ms: i64,
    actor: String,
    ip: String,
    action: String,
    status: i64,
    target: String,
    details: String,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        AuditEntry {
            at: DateTime::from_timestamp_millis(r.at_ms).unwrap_or_default(),
            actor: r.actor,
            ip: r.ip,
            action: r.action,
            target: r.target,
            details: r.details,
            status: u16::try_from(r.status).unwrap_or(0),
        }
    }
}

/// A run from any backend's row.
pub fn run<'r, R: sqlx::Row>(row: &'r R) -> Result<Run>
where
    RunRow: sqlx::FromRow<'r, R>,
{
    Run::try_from(<RunRow as sqlx::FromRow<R>>::from_row(row)?)
}

/// A job from any backend's row.
pub fn job<'r, R: sqlx::Row>(row: &'r R) -> Result<StoredJob>
where
    JobRow: sqlx::FromRow<'r, R>,
{
    StoredJob::try_from(<JobRow as sqlx::FromRow<R>>::from_row(row)?)
}

/// An audit entry from any backend's row.
pub fn audit<'r, R: sqlx::Row>(row: &'r R) -> Result<AuditEntry>
where
    AuditRow: sqlx::FromRow<'r, R>,
{
    Ok(<AuditRow as sqlx::FromRow<R>>::from_row(row)?.into())
}
