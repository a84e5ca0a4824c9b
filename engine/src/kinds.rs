//! Job kinds: what a job does. A kind is a plain async function from a [`JobContext`] to
//! a JSON output or a [`JobFailure`]; timeout, retry, panic capture and cancellation are
//! applied around it by the runner, never inside it.

use crate::model::Job;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What a kind gets to work with.
#[derive(Clone)]
pub struct JobContext {
    pub run_id: i64,
    pub job: Job,
    pub attempt: u32,
    /// The slot this run was scheduled for (`None` for manual runs and retries).
    pub scheduled_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The id of the first attempt; every retry of the same run shares it, so a kind can
    /// make side effects (sending a message) happen once per chain.
    pub first_run: i64,
    /// Cancelled when the run is abandoned (timeout, shutdown): stop promptly.
    pub cancel: CancellationToken,
    /// The run's log: what is appended here is followed live and stored with the run.
    pub log: crate::live_log::RunLog,
    /// The engine, for built-in automations that inspect or repair it.
    pub engine: crate::Engine,
}

/// A failed run: the message shown to the operator, and any partial output.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct JobFailure {
    pub message: String,
    pub output: Option<serde_json::Value>,
}

impl JobFailure {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            output: None,
        }
    }
}

pub type JobResult = Result<serde_json::Value, JobFailure>;
pub type JobFuture = Pin<Box<dyn Future<Output = JobResult> + Send>>;
type KindFn = Arc<dyn Fn(JobContext) -> JobFuture + Send + Sync>;

/// The registry of kinds the engine can run.
#[derive(Clone, Default)]
pub struct Kinds {
    map: HashMap<String, KindFn>,
}

impl std::fmt::Debug for Kinds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.map.keys()).finish()
    }
}

impl Kinds {
    /// The kinds every engine has: `noop` and the built-in automations.
    pub fn builtin() -> Self {
        let mut kinds = Kinds::default();
        kinds.register("noop", noop);
        kinds.register(crate::http_job::KIND, crate::http_job::run);
        kinds.register(crate::shell_job::KIND, crate::shell_job::run);
        crate::automations::register(&mut kinds);
        kinds
    }

    /// Adds (or replaces) a kind.
    pub fn register<F, Fut>(&mut self, name: &str, f: F) -> &mut Self
    where
        F: Fn(JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = JobResult> + Send + 'static,
    {
        self.map
            .insert(name.to_string(), Arc::new(move |ctx| Box::pin(f(ctx))));
        self
    }

    pub fn get(&self, name: &str) -> Option<KindFn> {
        self.map.get(name).cloned()
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<_> = self.map.keys().cloned().collect();
        names.sort();
        names
    }
}

/// Does nothing, optionally for `duration_ms`; fails when `params.fail` is true. For
/// benchmarks, tests and smoke checks.
async fn noop(ctx: JobContext) -> JobResult {
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
