//! Shell jobs (RELIABILITY 24, 25 and the kill at timeout): argv only, refused unless
//! enabled, and a child that ignores SIGTERM dies with its whole process group.

use engine::testing::{Options, TestEngine};
use engine::{JobSpec, Run, RunStatus, Trigger};
use std::time::{Duration, Instant};

async fn open(dir: &std::path::Path, allow_shell: bool) -> TestEngine {
    Options::new(dir).shell(allow_shell).open().await
}

async fn shell(engine: &TestEngine, params: serde_json::Value, timeout: u64) -> Run {
    engine.run_job("sh", "shell", params, timeout).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_jobs_are_refused_unless_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), false).await;
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
    let engine = open(dir.path(), true).await;
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
    let engine = open(dir.path(), true).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_streams_into_the_live_log_while_the_program_runs() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), true).await;
    let gate = dir.path().join("gate");
    // Prints a line, then waits for the test to open the gate before printing another.
    let script = format!(
        "echo first line; echo to stderr >&2; while [ ! -e '{}' ]; do sleep 0.02; done; echo second line",
        gate.display()
    );
    engine
        .create_job(JobSpec {
            id: Some("talk".into()),
            kind: Some("shell".into()),
            schedule: Some("@every 24h".into()),
            timeout_secs: Some(20),
            params: Some(serde_json::json!({ "argv": ["sh", "-c", script] })),
            ..Default::default()
        })
        .await
        .unwrap();
    let run = engine.run_now("talk", Trigger::Api).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    // On several nodes the run is queued until a node (this one, the only one) claims it.
    let follow = loop {
        let follow = engine.follow_log(run.id).await.unwrap();
        if follow.live.is_some() {
            break follow;
        }
        assert!(Instant::now() < deadline, "the run starts here");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let mut seen = follow.so_far.clone();
    let mut live = follow.live.expect("the run is in flight");
    while !(seen.contains("first line") && seen.contains("to stderr")) {
        let chunk = tokio::time::timeout_at(deadline.into(), live.recv())
            .await
            .expect("the first lines arrive while the program still runs")
            .unwrap();
        seen.push_str(&chunk);
    }
    assert_eq!(
        engine.get_run(run.id).await.unwrap().status,
        RunStatus::Running,
        "followed live, not read back after the end"
    );
    assert!(!seen.contains("second line"));
    std::fs::write(&gate, "").unwrap();
    // The stream closes when the run ends, after the last chunk.
    while let Ok(chunk) = tokio::time::timeout_at(deadline.into(), live.recv())
        .await
        .expect("the run ends")
    {
        seen.push_str(&chunk);
    }
    let done = engine
        .wait_run(run.id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(done.status, RunStatus::Succeeded, "{done:?}");
    assert!(seen.contains("second line"), "{seen}");
    assert!(seen.trim_end().ends_with("succeeded"), "{seen}");
    // What was followed is what is stored, and an ended run is followed from the store.
    let after = engine.follow_log(run.id).await.unwrap();
    assert!(after.live.is_none());
    assert_eq!(after.so_far, seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn programs_learn_which_execution_they_are_and_a_job_cannot_fake_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), true).await;
    let run = shell(
        &engine,
        serde_json::json!({
            "argv": ["sh", "-c", "printf '%s|%s|%s|%s|%s' \"$ECHOPILOT_RUN_ID\" \"$ECHOPILOT_JOB_ID\" \"$ECHOPILOT_ATTEMPT\" \"${ECHOPILOT_SCHEDULED_AT-unset}\" \"$ECHOPILOT_IDEMPOTENCY_KEY\""],
            "env": { "ECHOPILOT_RUN_ID": "999" },
        }),
        10,
    )
    .await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(
        run.output["stdout"],
        format!("{id}|sh|1||sh:{id}", id = run.id),
        "a manual run: its own id, an empty slot"
    );
}
