//! Self-heal: checks that EchoPilot can do its work, repairs what it can, and reports each
//! check as pass / warn / fail with a message. Params: `min_free_mb` (default 500) and
//! `health_targets` (`[{"name": "...", "url": "https://..."}]`, checked with a GET).

use crate::kinds::{number_in, string_param, JobContext, JobFailure, JobResult};
use crate::model::{SchedulerState, ValidationError};
use serde::Serialize;
use std::time::Duration;

pub const KIND: &str = "self-heal";
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// A run is stuck when it is still `running` this long past its job's timeout.
const STUCK_GRACE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

#[derive(Debug, Serialize)]
struct Check {
    name: String,
    status: Verdict,
    message: String,
}

fn check(name: &str, status: Verdict, message: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        status,
        message: message.into(),
    }
}

/// Most health targets one job checks.
const MAX_TARGETS: usize = 50;

pub fn check_params(params: &serde_json::Value) -> Result<(), ValidationError> {
    number_in(params, "min_free_mb", 0..=10_000_000)?;
    let Some(targets) = params.get("health_targets").filter(|t| !t.is_null()) else {
        return Ok(());
    };
    let invalid = |message: String| ValidationError {
        field: "params.health_targets".into(),
        message,
    };
    let list = targets
        .as_array()
        .ok_or_else(|| invalid("must be a list of {\"name\", \"url\"}".into()))?;
    if list.len() > MAX_TARGETS {
        return Err(invalid(format!(
            "{} targets is more than {MAX_TARGETS}",
            list.len()
        )));
    }
    for (i, t) in list.iter().enumerate() {
        let url = string_param(t, "url")
            .ok()
            .flatten()
            .ok_or_else(|| invalid(format!("target {i} has no \"url\"")))?;
        crate::outbound::Outbound::parse_url("url", url)
            .map_err(|e| invalid(format!("target {i}: {e}")))?;
        if !t.get("name").is_none_or(|n| n.is_string()) {
            return Err(invalid(format!("target {i}: name must be a string")));
        }
    }
    Ok(())
}

pub async fn run(ctx: JobContext) -> JobResult {
    let engine = &ctx.engine;
    let params = &ctx.job.params;
    let mut checks = Vec::new();
    let mut repairs: Vec<String> = Vec::new();

    checks.push(match engine.ready().await {
        Ok(()) => check("store_writable", Verdict::Pass, "the store accepts writes"),
        Err(e) => check(
            "store_writable",
            Verdict::Fail,
            format!("the store refuses writes: {}", crate::error::chain(&e)),
        ),
    });

    let min_free = params
        .get("min_free_mb")
        .and_then(|v| v.as_u64())
        .unwrap_or(500)
        * 1024
        * 1024;
    checks.push(match super::disk_free(&engine.config().data_dir) {
        Some(free) if free < min_free => check(
            "disk_free",
            Verdict::Fail,
            format!("{} MiB free, below {} MiB", free >> 20, min_free >> 20),
        ),
        Some(free) if free < 2 * min_free => check(
            "disk_free",
            Verdict::Warn,
            format!("{} MiB free, close to {} MiB", free >> 20, min_free >> 20),
        ),
        Some(free) => check(
            "disk_free",
            Verdict::Pass,
            format!("{} MiB free", free >> 20),
        ),
        None => check("disk_free", Verdict::Warn, "cannot read free disk space"),
    });

    let status = engine.status();
    checks.push(match status.state {
        SchedulerState::Running => check(
            "heartbeat",
            Verdict::Pass,
            format!(
                "fresh ({:.0} s old)",
                status.heartbeat_age_secs.unwrap_or(0.0)
            ),
        ),
        SchedulerState::Stopped => check(
            "heartbeat",
            Verdict::Warn,
            "the scheduler is stopped by the operator",
        ),
        SchedulerState::Stalled => match engine.restart().await {
            Ok(s) if s.state == SchedulerState::Running => {
                repairs.push("restarted the stalled scheduler loop".into());
                check(
                    "heartbeat",
                    Verdict::Warn,
                    "was stalled; restarted the scheduler loop",
                )
            }
            Ok(_) | Err(_) => check(
                "heartbeat",
                Verdict::Fail,
                "stalled, and restarting the loop did not help",
            ),
        },
    });

    checks.push(match engine.stuck_runs(STUCK_GRACE).await {
        Ok(stuck) if stuck.is_empty() => {
            check("stuck_runs", Verdict::Pass, "no run is past its timeout")
        }
        Ok(stuck) => {
            let mut cancelled = 0;
            for r in &stuck {
                let why = "cancelled by self-heal: still running long after its timeout";
                // Only if still running: a run that ended meanwhile keeps its own end.
                if engine.cancel(r.id, why).await.unwrap_or(false) {
                    cancelled += 1;
                }
            }
            repairs.push(format!("cancelled {cancelled} stuck run(s)"));
            check(
                "stuck_runs",
                Verdict::Warn,
                format!(
                    "{} run(s) were stuck past their timeout; cancelled {cancelled}",
                    stuck.len()
                ),
            )
        }
        Err(e) => check(
            "stuck_runs",
            Verdict::Fail,
            format!("cannot look for stuck runs: {e}"),
        ),
    });

    if let Some(targets) = params.get("health_targets").and_then(|v| v.as_array()) {
        for t in targets {
            let url = t.get("url").and_then(|u| u.as_str()).unwrap_or_default();
            let shown = crate::secrets::mask_url(url);
            let name = format!(
                "http:{}",
                t.get("name")
                    .and_then(|n| n.as_str())
                    .unwrap_or(shown.as_str())
            );
            // Through the guarded client: a health target is an outbound request like any.
            checks.push(match engine.outbound().get(url, HTTP_TIMEOUT).await {
                Ok(r) if r.is_success() => check(
                    &name,
                    Verdict::Pass,
                    format!("{shown} answered {}", r.status),
                ),
                Ok(r) => check(
                    &name,
                    Verdict::Fail,
                    format!("{shown} answered {}", r.status),
                ),
                Err(e) => check(&name, Verdict::Fail, format!("{shown} unreachable: {e}")),
            });
        }
    }

    let overall = checks
        .iter()
        .map(|c| c.status)
        .max()
        .unwrap_or(Verdict::Pass);
    let report = serde_json::json!({ "status": overall, "checks": checks, "repairs": repairs });
    if overall == Verdict::Fail {
        let failed: Vec<_> = checks
            .iter()
            .filter(|c| c.status == Verdict::Fail)
            .map(|c| format!("{}: {}", c.name, c.message))
            .collect();
        return Err(JobFailure {
            message: format!("self-heal found failures: {}", failed.join("; ")),
            output: Some(report),
        });
    }
    Ok(report)
}
