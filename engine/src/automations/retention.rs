//! Retention cleanup: deletes finished runs older than `retention_days` (default 30) while
//! keeping the newest `keep_last` (default 100) of every job whatever their age, deletes
//! audit entries and event-log files older than the same cut-off, reclaims the store's space, and reports
//! what it deleted.

use crate::kinds::{number_in, JobContext, JobFailure, JobResult};

pub const KIND: &str = "retention-cleanup";
/// A hundred years: past that a cut-off is not a date any more.
const MAX_DAYS: u64 = 36_500;

pub fn check_params(params: &serde_json::Value) -> Result<(), crate::model::ValidationError> {
    number_in(params, "retention_days", 1..=MAX_DAYS)?;
    number_in(params, "keep_last", 0..=1_000_000)?;
    Ok(())
}

pub async fn run(ctx: JobContext) -> JobResult {
    let engine = &ctx.engine;
    let params = &ctx.job.params;
    let days = params
        .get("retention_days")
        .and_then(|v| v.as_u64())
        .unwrap_or(30)
        .clamp(1, MAX_DAYS);
    let keep_last = params
        .get("keep_last")
        .and_then(|v| v.as_u64())
        .unwrap_or(100)
        .min(u64::from(u32::MAX)) as u32;
    let cutoff = ctx.now() - chrono::Duration::days(days as i64);
    let pruned = engine.prune_history(cutoff, keep_last).await.map_err(|e| {
        JobFailure::new(format!(
            "cannot prune the history: {}",
            crate::error::chain(&e)
        ))
    })?;
    Ok(serde_json::json!({
        "retention_days": days,
        "keep_last": keep_last,
        "cutoff": cutoff,
        "runs_deleted": pruned.runs,
        "audit_entries_deleted": pruned.audit_entries,
        "alert_rows_deleted": pruned.alerts,
        "log_files_deleted": pruned.log_files,
        "space_reclaimed": pruned.runs > 0,
    }))
}
