//! Rows as every backend reads them: plain columns (`FromRow` for any database), turned
//! into the model's records in one place. A value the engine does not understand is
//! `Corrupt`, naming it.

use crate::error::{EngineError, Result};
use crate::model::alert::{AlertEvent, Delivery, DeliveryStatus, Incident, Ping, PingKind};
use crate::model::{AuditEntry, Job, Misfire, Overlap, Run, RunStatus, Trigger};
use crate::store::StoredJob;
use chrono::DateTime;

/// The job columns, in the order the backends select them.
pub const JOB_COLUMNS: &str = "id, name, kind, schedule, timezone, enabled, timeout_secs, retries, retry_backoff_secs, overlap, misfire, params, last_slot_ms, pause";
/// The run columns, in the order the backends select them.
pub const RUN_COLUMNS: &str = "id, job_id, trigger, status, scheduled_ms, started_ms, finished_ms, attempt, output, error, node, params, rerun_of";

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
    pause: Option<String>,
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
            paused: r.pause.as_deref().and_then(crate::model::Pause::from_text),
            from_file: false,
            drift: false,
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
    params: Option<String>,
    rerun_of: Option<i64>,
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
            params: r.params.and_then(|p| serde_json::from_str(&p).ok()),
            rerun_of: r.rerun_of,
            reruns: None,
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

/// A maintenance window from its stored definition.
pub fn window(body: &str) -> Result<crate::model::Window> {
    serde_json::from_str(body)
        .map_err(|e| EngineError::Corrupt(format!("maintenance window {body:?}: {e}")))
}

/// An audit entry from any backend's row.
pub fn audit<'r, R: sqlx::Row>(row: &'r R) -> Result<AuditEntry>
where
    AuditRow: sqlx::FromRow<'r, R>,
{
    Ok(<AuditRow as sqlx::FromRow<R>>::from_row(row)?.into())
}

/// One job's counts and percentiles, as both backends count them.
#[derive(sqlx::FromRow)]
pub struct StatsRow {
    job_id: String,
    ok: i64,
    bad: i64,
    p50: Option<i64>,
    p95: Option<i64>,
}

impl From<StatsRow> for crate::model::JobStats {
    fn from(r: StatsRow) -> Self {
        let runs = (r.ok + r.bad).max(0) as u64;
        crate::model::JobStats {
            job: r.job_id,
            runs,
            succeeded: r.ok.max(0) as u64,
            failed: r.bad.max(0) as u64,
            success_rate: (runs > 0).then(|| r.ok as f64 / runs as f64),
            p50_ms: r.p50.map(|d| d.max(0)),
            p95_ms: r.p95.map(|d| d.max(0)),
        }
    }
}

/// Runs in one hour (`h`: the hour's start in ms divided by an hour).
#[derive(sqlx::FromRow)]
pub struct HourRow {
    h: i64,
    ok: i64,
    bad: i64,
    skipped: i64,
}

pub const HOUR_MS: i64 = 3_600_000;

/// The first of the `hours` whole hours that end with the one holding `now_ms`.
pub fn first_hour(now_ms: i64, hours: usize) -> i64 {
    now_ms.div_euclid(HOUR_MS) * HOUR_MS - (hours as i64 - 1) * HOUR_MS
}

/// The `hours` hours from `first`, oldest first, filled from the counted rows.
pub fn hours(first: i64, hours: usize, rows: Vec<HourRow>) -> Vec<crate::model::HourCount> {
    let mut out: Vec<crate::model::HourCount> = (0..hours as i64)
        .map(|k| crate::model::HourCount {
            hour_ms: first + k * HOUR_MS,
            ..Default::default()
        })
        .collect();
    for r in rows {
        let slot = usize::try_from(r.h * HOUR_MS - first)
            .ok()
            .and_then(|off| out.get_mut(off / HOUR_MS as usize));
        if let Some(slot) = slot {
            slot.succeeded = r.ok.max(0) as u64;
            slot.failed = r.bad.max(0) as u64;
            slot.skipped = r.skipped.max(0) as u64;
        }
    }
    out
}

/// The incident columns, in the order the backends select them.
pub const INCIDENT_COLUMNS: &str =
    "id, rule_id, subject, opened_ms, closed_ms, run_id, closed_by, message, suppressed, notified_ms";
/// The delivery columns, in the order the backends select them.
pub const DELIVERY_COLUMNS: &str =
    "id, incident_id, channel_id, event, status, attempts, next_ms, created_ms, done_ms, code, error, body";

#[derive(sqlx::FromRow)]
pub struct IncidentRow {
    id: i64,
    rule_id: String,
    subject: String,
    opened_ms: i64,
    closed_ms: Option<i64>,
    run_id: Option<i64>,
    closed_by: Option<i64>,
    message: String,
    suppressed: Option<String>,
    notified_ms: Option<i64>,
}

impl From<IncidentRow> for Incident {
    fn from(r: IncidentRow) -> Self {
        let at = |ms: Option<i64>| ms.and_then(DateTime::from_timestamp_millis);
        Incident {
            id: r.id,
            rule: r.rule_id,
            subject: r.subject,
            opened_at: DateTime::from_timestamp_millis(r.opened_ms).unwrap_or_default(),
            closed_at: at(r.closed_ms),
            run: r.run_id,
            closed_by: r.closed_by,
            message: r.message,
            suppressed: r.suppressed,
            notified_at: at(r.notified_ms),
            deliveries: Vec::new(),
        }
    }
}

#[derive(sqlx::FromRow)]
pub struct DeliveryRow {
    id: i64,
    incident_id: Option<i64>,
    channel_id: String,
    event: String,
    status: String,
    attempts: i64,
    next_ms: i64,
    created_ms: i64,
    done_ms: Option<i64>,
    code: Option<i64>,
    error: Option<String>,
    body: String,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = EngineError;

    fn try_from(r: DeliveryRow) -> Result<Delivery> {
        let at = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap_or_default();
        Ok(Delivery {
            id: r.id,
            incident: r.incident_id,
            channel: r.channel_id,
            event: AlertEvent::parse(&r.event)
                .ok_or_else(|| EngineError::Corrupt(format!("delivery event {:?}", r.event)))?,
            status: DeliveryStatus::parse(&r.status)
                .ok_or_else(|| EngineError::Corrupt(format!("delivery status {:?}", r.status)))?,
            attempts: r.attempts.max(0) as u32,
            next_at: at(r.next_ms),
            created_at: at(r.created_ms),
            done_at: r.done_ms.map(at),
            code: r.code.and_then(|c| u16::try_from(c).ok()),
            error: r.error,
            body: serde_json::from_str(&r.body).unwrap_or(serde_json::Value::String(r.body)),
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct PingRow {
    at_ms: i64,
    kind: String,
    body: Option<String>,
    source: Option<String>,
}

impl From<PingRow> for Ping {
    fn from(r: PingRow) -> Self {
        Ping {
            at: DateTime::from_timestamp_millis(r.at_ms).unwrap_or_default(),
            kind: PingKind::parse(&r.kind).unwrap_or(PingKind::Success),
            body: r.body,
            source: r.source,
        }
    }
}
