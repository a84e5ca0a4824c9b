//! Job kinds: what a job does. A kind is a plain async function from a [`JobContext`] to
//! a JSON output or a [`JobFailure`]; timeout, retry, panic capture and cancellation are
//! applied around it by the runner ([`crate::runner`]), never inside it. A kind may
//! register a check of its params, run whenever a job of it is saved.
//!
//! - [`noop`]: does nothing (benchmarks, tests, smoke checks).
//! - [`http`]: one HTTP request through the guarded client.
//! - [`shell`]: a program from an argv list, off unless the server allows it.
//! - the built-in automations register themselves from [`crate::automations`].

pub mod http;
pub mod noop;
pub mod shell;

use crate::model::{Job, ValidationError};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What a kind gets to work with.
#[derive(Clone)]
pub struct JobContext {
    pub run_id: i64,
    pub job: Job,
    pub attempt: u32,
    /// The slot this run's chain was scheduled for (`None` for manual runs); retries keep
    /// it.
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

impl JobContext {
    /// Now, by the engine's clock (tests move it by hand).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.engine.now()
    }

    /// What a receiver can deduplicate this execution by: `<job>:<slot>` for a scheduled
    /// run, `<job>:<first run id>` otherwise. The same for every retry of a chain and on
    /// whichever node it executes.
    pub fn idempotency_key(&self) -> String {
        match self.scheduled_at {
            Some(slot) => format!("{}:{}", self.job.id, rfc3339(slot)),
            None => format!("{}:{}", self.job.id, self.first_run),
        }
    }

    /// The slot in RFC 3339 (UTC, seconds), for headers and the environment.
    pub fn scheduled_at_text(&self) -> Option<String> {
        self.scheduled_at.map(rfc3339)
    }
}

fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
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
pub(crate) type KindFn = Arc<dyn Fn(JobContext) -> JobFuture + Send + Sync>;
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
        kinds
            .register_checked(noop::KIND, noop::run, noop::check)
            .register_checked(http::KIND, http::run, http::check)
            .register_checked(shell::KIND, shell::run, shell::check);
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

    pub(crate) fn get(&self, name: &str) -> Option<KindFn> {
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
