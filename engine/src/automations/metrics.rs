//! Metrics summary: per job, over the last 24 h, runs, success rate, failures and p50 /
//! p95 duration; for the process, uptime, memory, CPU time and free disk.

use crate::kinds::{JobContext, JobFailure, JobResult};
use crate::model::RunStatus;
use crate::store::RunTiming;
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

/// One job's figures over a window of its runs.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JobStats {
    pub job: String,
    /// Runs that ended succeeded, failed, timed out or interrupted.
    pub runs: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub success_rate: Option<f64>,
    pub p50_ms: Option<i64>,
    pub p95_ms: Option<i64>,
}

/// Per job figures from `runs`, by job id.
pub fn job_stats(runs: &[RunTiming]) -> Vec<JobStats> {
    let mut per_job: BTreeMap<&str, (u64, u64, Vec<i64>)> = BTreeMap::new();
    for r in runs {
        let entry = per_job.entry(&r.job_id).or_default();
        match r.status {
            RunStatus::Succeeded => entry.0 += 1,
            RunStatus::Failed | RunStatus::TimedOut | RunStatus::Interrupted => entry.1 += 1,
            // Skipped, queued, running and cancelled runs say nothing about success.
            _ => continue,
        }
        if let Some(d) = r.duration_ms {
            entry.2.push(d);
        }
    }
    per_job
        .into_iter()
        .map(|(job, (ok, failed, mut durations))| {
            durations.sort_unstable();
            let runs = ok + failed;
            JobStats {
                job: job.to_string(),
                runs,
                succeeded: ok,
                failed,
                success_rate: (runs > 0).then(|| ok as f64 / runs as f64),
                p50_ms: quantile(&durations, 0.50),
                p95_ms: quantile(&durations, 0.95),
            }
        })
        .collect()
}

/// Runs per hour: succeeded, failed (failed, timed out, interrupted) and skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct HourCount {
    /// The hour's start, ms since the epoch.
    pub hour_ms: i64,
    pub succeeded: u64,
    pub failed: u64,
    pub skipped: u64,
}

/// The `hours` whole hours up to and including the one holding `now`, oldest first.
pub fn hourly(
    runs: &[RunTiming],
    now: chrono::DateTime<chrono::Utc>,
    hours: usize,
) -> Vec<HourCount> {
    const HOUR: i64 = 3_600_000;
    let last = now.timestamp_millis().div_euclid(HOUR) * HOUR;
    let first = last - (hours as i64 - 1) * HOUR;
    let mut out: Vec<HourCount> = (0..hours as i64)
        .map(|k| HourCount {
            hour_ms: first + k * HOUR,
            ..HourCount::default()
        })
        .collect();
    for r in runs {
        let Ok(k) = usize::try_from((r.at_ms - first).div_euclid(HOUR)) else {
            continue;
        };
        let Some(h) = out.get_mut(k) else { continue };
        match r.status {
            RunStatus::Succeeded => h.succeeded += 1,
            RunStatus::Failed | RunStatus::TimedOut | RunStatus::Interrupted => h.failed += 1,
            RunStatus::Skipped => h.skipped += 1,
            _ => {}
        }
    }
    out
}

pub async fn run(ctx: JobContext) -> JobResult {
    let engine = &ctx.engine;
    let since = chrono::Utc::now() - chrono::Duration::hours(24);
    let runs = engine
        .store()
        .runs_since(since)
        .await
        .map_err(|e| JobFailure::new(format!("cannot read the run history: {e}")))?;
    let status = engine.status();
    Ok(serde_json::json!({
        "window_hours": 24,
        "jobs": job_stats(&runs),
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
