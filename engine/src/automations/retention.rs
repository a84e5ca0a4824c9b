//! Retention cleanup: deletes finished runs older than `retention_days` (default 30) while
//! keeping the newest `keep_last` (default 100) of every job whatever their age, deletes
//! audit entries and event-log files older than the same cut-off, reclaims the store's space, and reports
//! what it deleted.

use crate::kinds::{number_in, JobContext, JobFailure, JobResult};

pub const KIND: &str = "retention-cleanup";
/// A hundred years: past that a cut-off is not a date any more.
const MAX_DAYS: u64 = 36_500;

pub fn check_params(params: &serde_json::Value) -> Result<(), crate::ValidationError> {
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
    let cutoff = chrono::Utc::now() - chrono::Duration::days(days as i64);
    let fail = |what: &str, e: &dyn std::fmt::Display| JobFailure::new(format!("{what}: {e}"));
    let runs = engine
        .store()
        .delete_old_runs(cutoff, keep_last)
        .await
        .map_err(|e| fail("cannot delete old runs", &e))?;
    let audit = engine
        .store()
        .delete_old_audit(cutoff)
        .await
        .map_err(|e| fail("cannot delete old audit entries", &e))?;
    let logs = prune_logs(&engine.config().data_dir.join("logs"), cutoff.date_naive())
        .map_err(|e| fail("cannot prune the event log", &e))?;
    if runs > 0 {
        engine
            .store()
            .vacuum()
            .await
            .map_err(|e| fail("cannot reclaim the store's space", &e))?;
    }
    Ok(serde_json::json!({
        "retention_days": days,
        "keep_last": keep_last,
        "cutoff": cutoff,
        "runs_deleted": runs,
        "audit_entries_deleted": audit,
        "log_files_deleted": logs,
        "space_reclaimed": runs > 0,
    }))
}

/// Deletes `events.<date>.jsonl` files dated before `cutoff`; returns their names.
pub fn prune_logs(
    dir: &std::path::Path,
    cutoff: chrono::NaiveDate,
) -> std::io::Result<Vec<String>> {
    let mut deleted = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(deleted),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let date = name
            .strip_prefix("events.")
            .and_then(|rest| rest.strip_suffix(".jsonl"))
            .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
        if date.is_some_and(|d| d < cutoff) {
            std::fs::remove_file(entry.path())?;
            deleted.push(name);
        }
    }
    deleted.sort();
    Ok(deleted)
}
