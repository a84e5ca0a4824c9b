//! Metrics summary: per job, over the last 24 h, runs, success rate, failures and p50 /
//! p95 duration; for the process, uptime, memory, CPU time and free disk.

use crate::kinds::{JobContext, JobFailure, JobResult};
use crate::model::RunStatus;
use std::collections::BTreeMap;

pub const KIND: &str = "metrics-summary";

/// The value at quantile `q` of sorted `xs` (nearest rank).
pub fn quantile(xs: &[i64], q: f64) -> Option<i64> {
    if xs.is_empty() {
        return None;
    }
    let rank = ((q * xs.len() as f64).ceil() as usize).clamp(1, xs.len());
    Some(xs[rank - 1])
}

pub async fn run(ctx: JobContext) -> JobResult {
    let engine = &ctx.engine;
    let since = chrono::Utc::now() - chrono::Duration::hours(24);
    let runs = engine
        .store()
        .runs_since(since)
        .await
        .map_err(|e| JobFailure::new(format!("cannot read the run history: {e}")))?;
    let mut per_job: BTreeMap<String, (u64, u64, u64, Vec<i64>)> = BTreeMap::new();
    for r in runs {
        let entry = per_job.entry(r.job_id).or_default();
        match r.status {
            RunStatus::Succeeded => entry.1 += 1,
            RunStatus::Failed | RunStatus::TimedOut | RunStatus::Interrupted => entry.2 += 1,
            // Skipped, queued, running and cancelled runs say nothing about success.
            _ => continue,
        }
        entry.0 += 1;
        if let Some(d) = r.duration_ms {
            entry.3.push(d);
        }
    }
    let jobs: Vec<_> = per_job
        .into_iter()
        .map(|(job, (runs, ok, failed, mut durations))| {
            durations.sort_unstable();
            serde_json::json!({
                "job": job,
                "runs": runs,
                "succeeded": ok,
                "failed": failed,
                "success_rate": if runs == 0 { None } else { Some(ok as f64 / runs as f64) },
                "p50_ms": quantile(&durations, 0.50),
                "p95_ms": quantile(&durations, 0.95),
            })
        })
        .collect();
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

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let xs: Vec<i64> = (1..=100).collect();
        assert_eq!(quantile(&xs, 0.5), Some(50));
        assert_eq!(quantile(&xs, 0.95), Some(95));
        assert_eq!(quantile(&[7], 0.95), Some(7));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
