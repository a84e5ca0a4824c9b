//! Metrics summary: per job, over the last 24 h, runs, success rate, failures and p50 /
//! p95 duration; for the process, uptime, memory, CPU time and free disk.

use crate::kinds::{JobContext, JobFailure, JobResult};

pub const KIND: &str = "metrics-summary";

pub async fn run(ctx: JobContext) -> JobResult {
    let engine = &ctx.engine;
    let since = ctx.now() - chrono::Duration::hours(24);
    let jobs = engine
        .job_stats_since(since)
        .await
        .map_err(|e| JobFailure::new(format!("cannot read the run history: {e}")))?;
    let status = engine.status();
    Ok(serde_json::json!({
        "window_hours": 24,
        "jobs": jobs,
        "process": {
            "pid": status.pid,
            "uptime_secs": status.uptime_secs,
            "rss_bytes": super::rss_bytes(),
            "cpu_secs": super::cpu_secs(),
            "disk_free_bytes": super::disk_free(&engine.config().data_dir),
        },
    }))
}
