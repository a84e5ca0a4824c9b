//! Shell jobs (RELIABILITY 24, 25 and the kill at timeout): argv only, refused unless
//! enabled, and a child that ignores SIGTERM dies with its whole process group.

mod common;

use engine::{Engine, JobSpec, Run, RunStatus, Trigger};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

async fn open(
    dir: &std::path::Path,
    allow_shell: bool,
) -> (Engine, CancellationToken, TaskTracker) {
    common::open(dir, &[], allow_shell).await
}

async fn shell(engine: &Engine, params: serde_json::Value, timeout: u64) -> Run {
    let _ = engine.delete_job("sh").await;
    engine
        .create_job(JobSpec {
            id: Some("sh".into()),
            kind: Some("shell".into()),
            schedule: Some("@every 24h".into()),
            timeout_secs: Some(timeout),
            params: Some(params),
            ..Default::default()
        })
        .await
        .unwrap();
    let run = engine.run_now("sh", Trigger::Api).await.unwrap();
    engine
        .wait_run(run.id, Duration::from_secs(20))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_jobs_are_refused_unless_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, ..) = open(dir.path(), false).await;
    let err = engine
        .create_job(JobSpec {
            id: Some("sh".into()),
            kind: Some("shell".into()),
            schedule: Some("@every 1h".into()),
            params: Some(serde_json::json!({ "argv": ["true"] })),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("kind: shell jobs are off"),
        "{err}"
    );
    assert!(engine.list_jobs().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injection_payloads_reach_the_program_as_plain_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, ..) = open(dir.path(), true).await;
    let payloads = [
        "; id", "$(id)", "`id`", "a\nid", "--", "-x", "| id", "&& id",
    ];
    let mut argv = vec!["printf", "%s|"];
    argv.extend(payloads);
    let run = shell(
        &engine,
        serde_json::json!({ "argv": argv, "env": { "INJECT": "$(id)" } }),
        10,
    )
    .await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let expected: String = payloads.iter().map(|p| format!("{p}|")).collect();
    assert_eq!(
        run.output["stdout"], expected,
        "printed literally; nothing else ran"
    );
    assert_eq!(run.output["exit_code"], 0);
    let run = shell(
        &engine,
        serde_json::json!({ "argv": ["sh", "-c", "exit 3"] }),
        10,
    )
    .await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.output["exit_code"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_ignoring_sigterm_is_killed_with_its_group_at_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, ..) = open(dir.path(), true).await;
    let pidfile = dir.path().join("grandchild.pid");
    let script = format!(
        "trap '' TERM; sleep 300 & echo $! > {}; wait",
        pidfile.display()
    );
    let run = shell(
        &engine,
        serde_json::json!({ "argv": ["sh", "-c", script] }),
        1,
    )
    .await;
    assert_eq!(run.status, RunStatus::TimedOut, "{run:?}");
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
        // Gone, or a zombie waiting for init to reap it: either way, not running.
        if state
            .as_deref()
            .is_none_or(|s| s.split_whitespace().nth(2) == Some("Z"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the grandchild {pid} survived the timeout: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
