//! The `noop` kind: does nothing, optionally for `duration_ms`; fails when `params.fail`
//! is true. For benchmarks, tests and smoke checks.

use super::{number_in, JobContext, JobFailure, JobResult};
use crate::model::ValidationError;
use std::time::Duration;

pub const KIND: &str = "noop";

pub fn check(params: &serde_json::Value) -> Result<(), ValidationError> {
    number_in(params, "duration_ms", 0..=7 * 24 * 3600 * 1000)?;
    Ok(())
}

pub async fn run(ctx: JobContext) -> JobResult {
    let ms = ctx
        .job
        .params
        .get("duration_ms")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    if ms > 0 {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(ms)) => {}
            () = ctx.cancel.cancelled() => return Err(JobFailure::new("cancelled")),
        }
    }
    if ctx.job.params.get("fail").and_then(|v| v.as_bool()) == Some(true) {
        return Err(JobFailure::new("asked to fail (params.fail = true)"));
    }
    Ok(serde_json::json!({ "slept_ms": ms }))
}
