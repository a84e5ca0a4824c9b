//! Job kinds: what a job does. A kind is a plain async function from a [`JobContext`] to
//! a JSON output or a [`JobFailure`]; timeout, retry, panic capture and cancellation are
//! applied around it by the runner, never inside it.

use crate::model::{Job, ValidationError};
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
/// Checks a job's params when it is saved: the kind's fields, their types and ranges.
pub type CheckFn = fn(&serde_json::Value) -> Result<(), ValidationError>;

#[derive(Clone)]
struct Kind {
    run: KindFn,
    check: Option<CheckFn>,
}

/// The registry of kinds the engine can run.
#[derive(Clone, Default)]
pub struct Kinds {
    map: HashMap<String, Kind>,
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
        kinds.register_checked("noop", noop, check_noop);
        kinds.register_checked(
            crate::http_job::KIND,
            crate::http_job::run,
            crate::http_job::check,
        );
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
        self.map.insert(
            name.to_string(),
            Kind {
                run: Arc::new(move |ctx| Box::pin(f(ctx))),
                check: None,
            },
        );
        self
    }

    /// Adds a kind whose params are checked by `check` whenever a job of it is saved.
    pub fn register_checked<F, Fut>(&mut self, name: &str, f: F, check: CheckFn) -> &mut Self
    where
        F: Fn(JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = JobResult> + Send + 'static,
    {
        self.register(name, f);
        if let Some(kind) = self.map.get_mut(name) {
            kind.check = Some(check);
        }
        self
    }

    pub fn get(&self, name: &str) -> Option<KindFn> {
        self.map.get(name).map(|k| k.run.clone())
    }

    /// Checks `params` for a job of kind `name` (kinds without a check accept any object).
    pub fn check(&self, name: &str, params: &serde_json::Value) -> Result<(), ValidationError> {
        match self.map.get(name).and_then(|k| k.check) {
            Some(check) => check(params),
            None => Ok(()),
        }
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<_> = self.map.keys().cloned().collect();
        names.sort();
        names
    }
}

/// A whole-number param within `range`, when present; the error names `params.<field>`.
pub fn number_in(
    params: &serde_json::Value,
    field: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Option<u64>, ValidationError> {
    let Some(v) = params.get(field).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    match v.as_u64() {
        Some(n) if range.contains(&n) => Ok(Some(n)),
        _ => Err(ValidationError {
            field: format!("params.{field}"),
            message: format!(
                "{v} is not a whole number in range {}-{}",
                range.start(),
                range.end()
            ),
        }),
    }
}

/// A string param, when present; the error names `params.<field>`.
pub fn string_param<'a>(
    params: &'a serde_json::Value,
    field: &str,
) -> Result<Option<&'a str>, ValidationError> {
    match params.get(field) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ValidationError {
            field: format!("params.{field}"),
            message: format!("{other} is not a string"),
        }),
    }
}

fn check_noop(params: &serde_json::Value) -> Result<(), ValidationError> {
    number_in(params, "duration_ms", 0..=7 * 24 * 3600 * 1000)?;
    Ok(())
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
