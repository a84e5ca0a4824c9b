//! The guard around one kind call: a timeout, panic capture, and the shutdown's
//! cancellation, applied from outside so a kind is a plain async function.

use crate::kinds::{JobContext, JobFailure, KindFn};
use crate::model::RunStatus;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How a run ended, before anyone else had a say.
pub(crate) struct Outcome {
    pub status: RunStatus,
    pub output: Option<serde_json::Value>,
    pub error: Option<String>,
}

impl Outcome {
    fn failed(status: RunStatus, error: String) -> Self {
        Outcome {
            status,
            output: None,
            error: Some(error),
        }
    }
}

const INTERRUPTED: &str = "the server shut down before the run finished";

/// Runs `kind` in a task of its own on the jobs' runtime (`jobs`) — so a panic is caught
/// as a `JoinError`, a hung job can be abandoned, and a job that blocks its thread blocks
/// only the jobs' — under `timeout`, until `abandon` (the end of the shutdown grace) or
/// `stop` (an operator cancelled the run: its task is aborted, which drops a request in
/// flight and kills a shell job's process group).
pub(crate) async fn run(
    kind: KindFn,
    ctx: JobContext,
    timeout: Duration,
    abandon: &CancellationToken,
    stop: &CancellationToken,
    jobs: &tokio::runtime::Handle,
) -> Outcome {
    let cancel = ctx.cancel.clone();
    let mut task = jobs.spawn(kind(ctx));
    let outcome = tokio::select! {
        joined = tokio::time::timeout(timeout, &mut task) => match joined {
            Ok(Ok(Ok(out))) => Outcome { status: RunStatus::Succeeded, output: Some(out), error: None },
            Ok(Ok(Err(JobFailure { message, output }))) => Outcome { status: RunStatus::Failed, output, error: Some(message) },
            Ok(Err(e)) if e.is_panic() => Outcome::failed(RunStatus::Failed, format!("the job panicked: {}", panic_message(e))),
            Ok(Err(_)) => Outcome::failed(RunStatus::Cancelled, "the job was cancelled".into()),
            Err(_) => {
                cancel.cancel();
                task.abort();
                Outcome::failed(RunStatus::TimedOut, format!("timed out after {} s", timeout.as_secs()))
            }
        },
        () = abandon.cancelled() => {
            task.abort();
            Outcome::failed(RunStatus::Interrupted, INTERRUPTED.into())
        }
        () = stop.cancelled(), if !abandon.is_cancelled() => {
            task.abort();
            Outcome::failed(RunStatus::Cancelled, "cancelled by an operator".into())
        }
    };
    // A kind that noticed the shutdown's cancellation first still ends as interrupted.
    if abandon.is_cancelled() && outcome.status != RunStatus::Succeeded {
        return Outcome::failed(RunStatus::Interrupted, INTERRUPTED.into());
    }
    outcome
}

fn panic_message(e: tokio::task::JoinError) -> String {
    let payload = e.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}
