//! The engine on a real SQLite file, with an injected clock where time matters
//! (RELIABILITY 3-7, 12, 14 and crash recovery).

use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use engine::store::Store;
use engine::store::{Claim, NewRun, RunEnd, SlotClaim};
use engine::testing::{self, History, Options, TestEngine};
use engine::{
    JobFailure, JobSpec, Kinds, ManualClock, Misfire, Overlap, RunQuery, RunStatus, Trigger,
};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The engine on a temp dir with the test kinds below (a job that hangs, one that panics,
/// one that blocks its thread, one that fails twice), shell allowed, and `clock`.
async fn harness(dir: &Path, clock: Arc<dyn engine::Clock>) -> TestEngine {
    let mut kinds = Kinds::builtin();
    kinds
        .register("hang", |_ctx| async {
            std::future::pending::<()>().await;
            Ok(serde_json::json!({}))
        })
        .register("panic", |_ctx| async { panic!("boom in a job") })
        .register("block", |_ctx| async {
            // Blocks its worker thread outright, as a badly written job would.
            std::thread::sleep(Duration::from_secs(5));
            Ok(serde_json::json!({}))
        })
        .register("flaky", |ctx| async move {
            if ctx.attempt < 3 {
                Err(JobFailure::new(format!("attempt {} fails", ctx.attempt)))
            } else {
                Ok(serde_json::json!({"attempt": ctx.attempt}))
            }
        });
    Options::new(dir)
        .kinds(kinds)
        .clock(clock)
        .shell(true)
        .open()
        .await
}

fn at(h: u32, m: u32, s: u32, ms: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, h, m, s).unwrap() + Span::milliseconds(ms)
}

fn spec(id: &str, kind: &str, schedule: &str) -> JobSpec {
    JobSpec {
        id: Some(id.into()),
        kind: Some(kind.into()),
        schedule: Some(schedule.into()),
        ..JobSpec::default()
    }
}

async fn wait_until<F: Fn() -> Fut, Fut: std::future::Future<Output = bool>>(
    what: &str,
    within: Duration,
    f: F,
) {
    let deadline = Instant::now() + within;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn statuses(store: &History, job: &str) -> Vec<(Trigger, RunStatus)> {
    store
        .runs_of(job)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.trigger, r.status))
        .collect()
}

async fn misfire_across_downtime(policy: Misfire) -> Vec<(Trigger, RunStatus)> {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at(8, 0, 30, 0));
    let h = harness(dir.path(), Arc::new(clock.clone())).await;
    let mut s = spec("minutely", "noop", "0 * * * * *");
    s.misfire = Some(policy);
    // Minutes are fired back to back below; overlap must not turn any into skips.
    s.overlap = Some(Overlap::Allow);
    h.engine.create_job(s).await.unwrap();
    // Up from 08:00:30 to 08:29: every minute fires.
    for minute in 1..=29 {
        clock.set(at(8, minute, 0, 5));
        h.engine.fire_due(clock.now_utc()).await;
    }
    let store = h.history();
    wait_until("the 29 runs", Duration::from_secs(10), || async {
        store
            .runs_of("minutely")
            .await
            .unwrap()
            .iter()
            .all(|r| r.status == RunStatus::Succeeded)
    })
    .await;
    h.close().await;
    // Down from 08:29 to 10:21:05 (the last slot late by more than a handoff's grace, so
    // every backend treats it as missed).
    clock.set(at(10, 21, 5, 0));
    let h = harness(dir.path(), Arc::new(clock.clone())).await;
    let store = h.history();
    wait_until("catch-up to settle", Duration::from_secs(10), || async {
        store
            .runs_of("minutely")
            .await
            .unwrap()
            .iter()
            .all(|r| r.status.is_finished())
    })
    .await;
    let runs = statuses(&h.history(), "minutely").await;
    h.close().await;
    runs
}

/// Writes a run that started at `start` and ended at `end` with `status`.
async fn ended_run(
    store: &Store,
    job: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    status: RunStatus,
) -> i64 {
    let id = store
        .start_run(&NewRun {
            job_id: job,
            overlap: Overlap::Allow,
            trigger: Trigger::Api,
            attempt: 1,
            started_at: start,
            node: "t",
            params: None,
            rerun_of: None,
        })
        .await
        .unwrap();
    store
        .finish_run(&RunEnd {
            id,
            status,
            at: end,
            output: None,
            error: None,
            log: None,
        })
        .await
        .unwrap();
    id
}

trait NowUtc {
    fn now_utc(&self) -> DateTime<Utc>;
}
impl NowUtc for ManualClock {
    fn now_utc(&self) -> DateTime<Utc> {
        engine::Clock::now(self)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misfire_skip_records_every_missed_slot_and_runs_none() {
    let runs = misfire_across_downtime(Misfire::Skip).await;
    let before: Vec<_> = runs.iter().take(29).collect();
    assert!(before
        .iter()
        .all(|r| **r == (Trigger::Schedule, RunStatus::Succeeded)));
    let after = &runs[29..];
    // 08:30 .. 10:21 inclusive: 112 slots, each recorded, none run.
    assert_eq!(after.len(), 112, "{after:?}");
    assert!(after
        .iter()
        .all(|r| *r == (Trigger::Schedule, RunStatus::Skipped)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misfire_run_once_runs_exactly_one_and_records_the_rest() {
    let runs = misfire_across_downtime(Misfire::RunOnce).await;
    let after = &runs[29..];
    assert_eq!(after.len(), 112, "{after:?}");
    assert_eq!(
        after.iter().filter(|r| r.1 == RunStatus::Skipped).count(),
        111
    );
    assert_eq!(
        after
            .iter()
            .filter(|r| **r == (Trigger::CatchUp, RunStatus::Succeeded))
            .count(),
        1
    );
}

async fn overlap(policy: Overlap) -> (usize, Vec<RunStatus>) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at(9, 0, 30, 0));
    let h = harness(dir.path(), Arc::new(clock.clone())).await;
    let mut s = spec("long", "noop", "0 * * * * *");
    s.overlap = Some(policy);
    s.params = Some(serde_json::json!({ "duration_ms": 150_000 }));
    h.engine.create_job(s).await.unwrap();
    for minute in 1..=3 {
        clock.set(at(9, minute, 0, 5));
        h.engine.fire_due(clock.now_utc()).await;
    }
    let active = h.engine.status().active_runs;
    let runs = h
        .runs_of("long")
        .await
        .into_iter()
        .map(|r| r.status)
        .collect();
    h.close().await;
    (active, runs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_allow_runs_alongside() {
    let (active, runs) = overlap(Overlap::Allow).await;
    assert!(active >= 2, "{active} active");
    assert_eq!(runs, vec![RunStatus::Running; 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_skip_keeps_one_active_and_records_the_skipped_slots() {
    let (active, runs) = overlap(Overlap::Skip).await;
    assert_eq!(active, 1);
    assert_eq!(
        runs,
        vec![RunStatus::Running, RunStatus::Skipped, RunStatus::Skipped]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_queue_keeps_at_most_one_waiting() {
    let (active, runs) = overlap(Overlap::Queue).await;
    assert_eq!(active, 1);
    assert_eq!(
        runs,
        vec![RunStatus::Running, RunStatus::Queued, RunStatus::Skipped]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_jobs_due_in_the_same_second_make_five_hundred_runs() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at(7, 0, 30, 0));
    let h = harness(dir.path(), Arc::new(clock.clone())).await;
    for i in 0..500 {
        h.engine
            .create_job(spec(&format!("burst-{i}"), "noop", "0 * * * * *"))
            .await
            .unwrap();
    }
    clock.set(at(7, 1, 0, 1));
    h.engine.fire_due(clock.now_utc()).await;
    let store = h.history();
    wait_until("500 runs to finish", Duration::from_secs(60), || async {
        store
            .list_runs(&RunQuery {
                status: Some(RunStatus::Succeeded),
                limit: 500,
                ..RunQuery::default()
            })
            .await
            .unwrap()
            .len()
            == 500
    })
    .await;
    let all = store
        .list_runs(&RunQuery {
            limit: 500,
            before: None,
            ..RunQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 500);
    let mut jobs: Vec<_> = all.iter().map(|r| r.job_id.clone()).collect();
    jobs.sort();
    jobs.dedup();
    assert_eq!(jobs.len(), 500, "one run per job");
    h.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_job_times_out_panicking_job_fails_and_others_are_unaffected() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path(), Arc::new(engine::SystemClock)).await;
    let mut hang = spec("hang", "hang", "@every 1h");
    hang.timeout_secs = Some(1);
    h.engine.create_job(hang).await.unwrap();
    h.engine
        .create_job(spec("panic", "panic", "@every 1h"))
        .await
        .unwrap();
    h.engine
        .create_job(spec("fine", "noop", "@every 1h"))
        .await
        .unwrap();
    let hung = h.engine.run_now("hang", Trigger::Api).await.unwrap();
    let panicked = h.engine.run_now("panic", Trigger::Api).await.unwrap();
    let fine = h.engine.run_now("fine", Trigger::Api).await.unwrap();
    let wait = Duration::from_secs(10);
    let hung = h.engine.wait_run(hung.id, wait).await.unwrap();
    assert_eq!(hung.status, RunStatus::TimedOut);
    assert_eq!(hung.error.as_deref(), Some("timed out after 1 s"));
    let panicked = h.engine.wait_run(panicked.id, wait).await.unwrap();
    assert_eq!(panicked.status, RunStatus::Failed);
    assert!(panicked.error.as_deref().unwrap().contains("boom in a job"));
    assert_eq!(
        h.engine.wait_run(fine.id, wait).await.unwrap().status,
        RunStatus::Succeeded
    );
    assert_eq!(h.engine.status().active_runs, 0);
    h.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_keep_firing_on_schedule_while_another_blocks_a_worker_thread() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path(), Arc::new(engine::SystemClock)).await;
    h.engine
        .create_job(spec("ticker", "noop", "* * * * * *"))
        .await
        .unwrap();
    h.engine
        .create_job(spec("blocker", "block", "@every 1h"))
        .await
        .unwrap();
    let store = h.history();
    wait_until("the ticker to fire", Duration::from_secs(5), || async {
        !store.runs_of("ticker").await.unwrap().is_empty()
    })
    .await;
    let before = store.runs_of("ticker").await.unwrap().len();
    let blocked = h.engine.run_now("blocker", Trigger::Api).await.unwrap();
    let finished = h
        .engine
        .wait_run(blocked.id, Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(finished.status, RunStatus::Succeeded);
    let during = store.runs_of("ticker").await.unwrap().len() - before;
    assert!(
        during >= 4,
        "only {during} ticks fired while a worker was blocked for 5 s"
    );
    h.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_runs_are_retried_as_new_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path(), Arc::new(engine::SystemClock)).await;
    let mut s = spec("flaky", "flaky", "@every 1h");
    s.retries = Some(2);
    s.retry_backoff_secs = Some(0);
    h.engine.create_job(s).await.unwrap();
    h.engine.run_now("flaky", Trigger::Api).await.unwrap();
    let store = h.history();
    wait_until("three attempts", Duration::from_secs(10), || async {
        store
            .runs_of("flaky")
            .await
            .unwrap()
            .iter()
            .filter(|r| r.status.is_finished())
            .count()
            == 3
    })
    .await;
    let runs = store.runs_of("flaky").await.unwrap();
    let seen: Vec<_> = runs
        .iter()
        .map(|r| (r.attempt, r.trigger, r.status))
        .collect();
    assert_eq!(
        seen,
        vec![
            (1, Trigger::Api, RunStatus::Failed),
            (2, Trigger::Retry, RunStatus::Failed),
            (3, Trigger::Retry, RunStatus::Succeeded)
        ]
    );
    h.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_left_running_by_a_dead_process_become_interrupted_at_boot() {
    let dir = tempfile::tempdir().unwrap();
    let store = testing::open_store(dir.path()).await;
    // The process that died was this node ("t") in its previous life.
    let epoch = testing::lead(&store, "t").await;
    let t = at(6, 0, 0, 0);
    let (mut job, _) = engine::Job::from_spec(spec("gone", "noop", "@every 24h"), None).unwrap();
    job.overlap = Overlap::Queue;
    // Off: only what was left behind is under test, no catch-up of its slots.
    job.enabled = false;
    store.insert_job(&job, t).await.unwrap();
    // What it left: a run in flight, one queued behind it, one ended.
    let start = |node: &'static str| NewRun {
        job_id: "gone",
        overlap: Overlap::Queue,
        trigger: Trigger::Api,
        attempt: 1,
        started_at: t,
        node,
        params: None,
        rerun_of: None,
    };
    store.start_run(&start("t")).await.unwrap();
    let queued = store
        .claim_slot(&SlotClaim {
            job_id: "gone",
            slot: t,
            trigger: Trigger::Schedule,
            overlap: Overlap::Queue,
            started_at: t,
            node: "t",
            epoch,
        })
        .await
        .unwrap();
    assert!(matches!(queued, Claim::Queued(_)), "{queued:?}");
    let done = store.start_run(&start("t")).await.unwrap();
    store
        .finish_run(&RunEnd {
            id: done,
            status: RunStatus::Succeeded,
            at: t,
            output: None,
            error: None,
            log: None,
        })
        .await
        .unwrap();
    // It died holding the lease: the lease lapses, as it would.
    testing::expire_lease(&store).await;
    store.close().await;
    let h = harness(dir.path(), Arc::new(engine::SystemClock)).await;
    let history = h.history();
    h.wait_until("every run to end", Duration::from_secs(10), || async {
        history
            .runs_of("gone")
            .await
            .unwrap()
            .iter()
            .all(|r| r.status.is_finished())
    })
    .await;
    let runs: Vec<RunStatus> = statuses(&history, "gone")
        .await
        .iter()
        .map(|r| r.1)
        .collect();
    // The run in flight is interrupted either way. The queued one: on SQLite the node that
    // comes back is the same node and interrupts what it left; on PostgreSQL a node is new
    // with every start, the old one is gone, and the leader takes its queued run over.
    let queued_ends = match testing::backend() {
        testing::Backend::Sqlite => RunStatus::Interrupted,
        testing::Backend::Postgres(_) => RunStatus::Succeeded,
    };
    assert_eq!(
        runs,
        vec![RunStatus::Interrupted, queued_ends, RunStatus::Succeeded]
    );
    h.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wall_clock_stepped_back_an_hour_never_runs_a_slot_twice() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at(9, 59, 30, 0));
    let h = harness(dir.path(), Arc::new(clock.clone())).await;
    h.engine
        .create_job(spec("m", "noop", "0 * * * * *"))
        .await
        .unwrap();
    clock.set(at(10, 0, 0, 5));
    h.engine.fire_due(clock.now_utc()).await;
    // The clock jumps back an hour, then walks forward again, live...
    for minute in 0..=59 {
        clock.set(at(9, minute, 0, 5));
        h.engine.fire_due(clock.now_utc()).await;
    }
    h.close().await;
    // ...and across a restart.
    clock.set(at(9, 30, 0, 5));
    let h = harness(dir.path(), Arc::new(clock.clone())).await;
    clock.set(at(10, 1, 0, 5));
    h.engine.fire_due(clock.now_utc()).await;
    let runs = h.history().runs_of("m").await.unwrap();
    let mut slots: Vec<_> = runs.iter().filter_map(|r| r.scheduled_at).collect();
    let n = slots.len();
    slots.dedup();
    assert_eq!(slots.len(), n, "a slot ran twice: {runs:?}");
    assert_eq!(slots, vec![at(10, 0, 0, 0), at(10, 1, 0, 0)]);
    h.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_the_field_named_and_nothing_saved() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path(), Arc::new(engine::SystemClock)).await;
    let err = h
        .engine
        .create_job(spec("bad", "noop", "0 0 25 * * *"))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "schedule: hour: 25 is out of range 0-23");
    let err = h
        .engine
        .create_job(spec("Bad Id", "noop", "@every 1m"))
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("id:"), "{err}");
    let err = h
        .engine
        .create_job(spec("x", "rocket", "@every 1m"))
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("kind: unknown kind"), "{err}");
    assert!(h.engine.list_jobs().is_empty());
    // Nothing was saved: a fresh engine on the same store finds no job either.
    h.close().await;
    let h = harness(dir.path(), Arc::new(engine::SystemClock)).await;
    assert!(h.engine.list_jobs().is_empty());
    h.engine
        .create_job(spec("ok", "noop", "@every 1m"))
        .await
        .unwrap();
    let err = h
        .engine
        .create_job(spec("ok", "noop", "@every 1m"))
        .await
        .unwrap_err();
    assert!(matches!(err, engine::EngineError::Conflict(_)), "{err}");
    h.close().await;
}

#[test]
fn parser_never_panics_on_arbitrary_input() {
    use proptest::prelude::*;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 3000,
        ..ProptestConfig::default()
    });
    let token = prop_oneof!["[0-9*/,\\-?LW#]{1,6}", "[A-Za-z]{1,4}", "[0-9]{1,12}"];
    let fields = proptest::collection::vec(token, 0..8).prop_map(|v| v.join(" "));
    let any = prop_oneof![fields, ".{0,64}", "@every [0-9a-z]{0,10}"];
    runner
        .run(
            &(any, prop_oneof!["", "UTC", "Europe/Warsaw", ".{0,10}"]),
            |(s, tz)| {
                if let Ok(sched) = engine::Schedule::parse(&s, &tz) {
                    let _ = sched.upcoming(Utc::now(), 3);
                }
                Ok(())
            },
        )
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_path_through_a_fall_back_day_has_no_drift_and_no_double_fire() {
    // RELIABILITY 10: the firing path itself, driven by an injected clock minute by
    // minute through New York's fall-back day (2026-11-01, 25 hours long).
    let dir = tempfile::tempdir().unwrap();
    let start = Utc.with_ymd_and_hms(2026, 11, 1, 4, 0, 0).unwrap(); // 00:00 EDT
    let clock = ManualClock::new(start - Span::seconds(30));
    let h = harness(dir.path(), Arc::new(clock.clone())).await;
    for (id, schedule) in [
        ("half-hourly", "0 */30 * * * *"),
        ("at-0130", "0 30 1 * * *"),
    ] {
        let mut s = spec(id, "noop", schedule);
        s.timezone = Some("America/New_York".into());
        s.overlap = Some(Overlap::Allow);
        h.engine.create_job(s).await.unwrap();
    }
    for minute in 0..=(25 * 60) {
        clock.set(start + Span::minutes(minute) + Span::milliseconds(3));
        h.engine.fire_due(clock.now_utc()).await;
    }
    let store = h.history();
    let half = store.runs_of("half-hourly").await.unwrap();
    assert_eq!(
        half.len(),
        51,
        "50 half hours in a 25 h day, plus the next midnight"
    );
    let fixed = store.runs_of("at-0130").await.unwrap();
    assert_eq!(
        fixed.len(),
        1,
        "01:30 comes twice on the wall clock, runs once: {fixed:?}"
    );
    assert_eq!(
        fixed[0].scheduled_at,
        Some(Utc.with_ymd_and_hms(2026, 11, 1, 5, 30, 0).unwrap()),
        "the first 01:30 (EDT)"
    );
    for r in half.iter().chain(fixed.iter()) {
        assert!(
            r.started_at.unwrap() - r.scheduled_at.unwrap() < Span::seconds(1),
            "no drift: {r:?}"
        );
    }
    h.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wall_clock_jumping_forward_follows_the_misfire_policy() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at(11, 0, 30, 0));
    let h = harness(dir.path(), Arc::new(clock.clone())).await;
    h.engine
        .create_job(spec("m", "noop", "0 * * * * *"))
        .await
        .unwrap(); // misfire = run_once
    clock.set(at(12, 0, 30, 0));
    h.engine.fire_due(clock.now_utc()).await;
    let store = h.history();
    wait_until("the catch-up run", Duration::from_secs(10), || async {
        store
            .runs_of("m")
            .await
            .unwrap()
            .iter()
            .all(|r| r.status.is_finished())
    })
    .await;
    let runs = statuses(&store, "m").await;
    assert_eq!(runs.len(), 60);
    assert_eq!(
        runs.iter().filter(|r| r.1 == RunStatus::Skipped).count(),
        59
    );
    assert_eq!(
        runs.iter().filter(|r| r.1 == RunStatus::Succeeded).count(),
        1
    );
    h.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_stalls_nothing_for_good_and_the_scheduler_resumes_by_itself() {
    // RELIABILITY 13: another process holds the database's lock for 12 s (SQLite: its
    // write lock, past the 10 s busy timeout; PostgreSQL: the runs table, past the 10 s
    // lock timeout) while runs are in flight and slots come due.
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path(), Arc::new(engine::SystemClock)).await;
    let mut s = spec("ticker", "noop", "* * * * * *");
    s.params = Some(serde_json::json!({ "duration_ms": 1500 }));
    s.overlap = Some(Overlap::Allow);
    h.engine.create_job(s).await.unwrap();
    let store = h.history();
    wait_until("a run in flight", Duration::from_secs(5), || async {
        store
            .runs_of("ticker")
            .await
            .unwrap()
            .iter()
            .any(|r| r.status == RunStatus::Running)
    })
    .await;

    let outage = Duration::from_secs(12);
    match testing::database_for(dir.path()).await {
        None => {
            let url = format!("sqlite://{}", dir.path().join("echopilot.db").display());
            let other = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect(&url)
                .await
                .unwrap();
            let mut conn = other.acquire().await.unwrap();
            sqlx::query("BEGIN EXCLUSIVE")
                .execute(&mut *conn)
                .await
                .unwrap();
            tokio::time::sleep(outage).await;
            sqlx::query("COMMIT").execute(&mut *conn).await.unwrap();
            drop(conn);
            other.close().await;
        }
        Some(url) => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            let mut tx = conn.begin().await.unwrap();
            sqlx::query("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await
                .unwrap();
            tokio::time::sleep(outage).await;
            tx.commit().await.unwrap();
        }
    }
    let released = Utc::now();

    // The scheduler claims new slots again without a restart...
    wait_until(
        "a slot fired after the outage",
        Duration::from_secs(10),
        || async {
            store.runs_of("ticker").await.unwrap().iter().any(|r| {
                r.scheduled_at.is_some_and(|t| t > released) && r.status == RunStatus::Succeeded
            })
        },
    )
    .await;
    // ...and no run that was in flight during the outage is left stuck.
    wait_until(
        "every earlier run recorded as finished",
        Duration::from_secs(15),
        || async {
            store
                .runs_of("ticker")
                .await
                .unwrap()
                .iter()
                .filter(|r| r.scheduled_at.is_some_and(|t| t < released))
                .all(|r| r.status.is_finished())
        },
    )
    .await;
    h.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_committed_runs_get_the_ids_of_their_own_rows() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path(), Arc::new(engine::SystemClock)).await;
    for id in ["a", "b", "c"] {
        let mut s = spec(id, "noop", "@every 1h");
        s.overlap = Some(Overlap::Allow);
        h.engine.create_job(s).await.unwrap();
    }
    let mut calls = Vec::new();
    for i in 0..300 {
        let engine = h.engine.clone();
        let job = ["a", "b", "c"][i % 3];
        calls.push(tokio::spawn(async move {
            (job, engine.run_now(job, Trigger::Api).await.unwrap().id)
        }));
    }
    let mut ids = Vec::new();
    for c in calls {
        let (job, id) = c.await.unwrap();
        let stored = h.engine.get_run(id).await.unwrap();
        assert_eq!(stored.job_id, job, "run {id} belongs to another job");
        ids.push(id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 300);
    h.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_runs_and_logs_but_keeps_the_last_n_of_every_job() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path(), Arc::new(engine::SystemClock)).await;
    let store = h.history();
    let old = Utc::now() - Span::days(60);
    let new = Utc::now() - Span::hours(1);
    // job "busy": 5 old + 2 new runs; job "rare": 3 old runs only, written as another
    // process would.
    let writer = testing::open_store(dir.path()).await;
    for (job, t, n) in [("busy", old, 5), ("busy", new, 2), ("rare", old, 3)] {
        for _ in 0..n {
            ended_run(&writer, job, t, t, RunStatus::Succeeded).await;
        }
    }
    writer.close().await;
    let logs = dir.path().join("logs");
    std::fs::write(logs.join("events.2020-01-01.jsonl"), "{}\n").unwrap();
    std::fs::write(logs.join("echopilot.2020-01-01.log"), "old\n").unwrap();
    let mut s = spec("cleanup", "retention-cleanup", "@every 24h");
    s.params = Some(serde_json::json!({ "retention_days": 30, "keep_last": 2 }));
    h.engine.create_job(s).await.unwrap();
    let run = h.engine.run_now("cleanup", Trigger::Api).await.unwrap();
    let run = h
        .engine
        .wait_run(run.id, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    // busy: the 5 old ones go (2 newer kept anyway); rare: the newest 2 old ones stay.
    assert_eq!(run.output["runs_deleted"], 6, "{}", run.output);
    assert_eq!(
        run.output["log_files_deleted"],
        serde_json::json!(["echopilot.2020-01-01.log", "events.2020-01-01.jsonl"])
    );
    assert_eq!(store.runs_of("busy").await.unwrap().len(), 2);
    assert_eq!(store.runs_of("rare").await.unwrap().len(), 2);
    assert!(!logs.join("events.2020-01-01.jsonl").exists());
    assert!(
        std::fs::read_dir(&logs).unwrap().count() >= 1,
        "today's log stays"
    );
    h.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_heal_reports_every_check_and_cancels_runs_stuck_past_their_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path(), Arc::new(engine::SystemClock)).await;
    let mut quick = spec("quick", "noop", "@every 24h");
    quick.timeout_secs = Some(1);
    h.engine.create_job(quick).await.unwrap();
    // A row left running an hour ago with nothing in memory behind it.
    let writer = testing::open_store(dir.path()).await;
    let stuck = writer
        .start_run(&NewRun {
            job_id: "quick",
            overlap: Overlap::Skip,
            trigger: Trigger::Api,
            attempt: 1,
            started_at: Utc::now() - Span::hours(1),
            node: "t",
            params: None,
            rerun_of: None,
        })
        .await
        .unwrap();
    writer.close().await;
    let mut s = spec("heal", "self-heal", "@every 24h");
    s.params = Some(serde_json::json!({ "min_free_mb": 1 }));
    h.engine.create_job(s).await.unwrap();
    let run = h.engine.run_now("heal", Trigger::Api).await.unwrap();
    let run = h
        .engine
        .wait_run(run.id, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let checks: Vec<(String, String)> = run.output["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let names: Vec<&str> = checks.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        names,
        ["store_writable", "disk_free", "heartbeat", "stuck_runs"]
    );
    assert_eq!(checks[0].1, "pass");
    assert_eq!(checks[3].1, "warn");
    assert_eq!(run.output["status"], "warn");
    assert_eq!(
        h.engine.get_run(stuck).await.unwrap().status,
        RunStatus::Cancelled
    );
    h.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finance_metrics_on_the_sample_ledger_match_totals_computed_independently() {
    // The test's own arithmetic: split lines, strip the decimal point, add cents.
    let text = std::fs::read_to_string("../examples/ledger.csv").unwrap();
    let (mut revenue, mut expenses) = (0i64, 0i64);
    let mut months = std::collections::BTreeSet::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let cents: i64 = f[1].replace('.', "").parse().unwrap();
        months.insert(&f[0][..7]);
        if f[4] == "revenue" {
            revenue += cents
        } else {
            expenses += cents
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path(), Arc::new(engine::SystemClock)).await;
    let mut s = spec("finance", "finance-metrics", "@every 1h");
    s.params = Some(serde_json::json!({ "ledger_path": "../examples/ledger.csv" }));
    h.engine.create_job(s).await.unwrap();
    let run = h.engine.run_now("finance", Trigger::Api).await.unwrap();
    let run = h
        .engine
        .wait_run(run.id, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let out = &run.output;
    assert_eq!(out["months"].as_array().unwrap().len(), months.len());
    assert_eq!(months.len(), 24, "two years");
    let cents = |v: &serde_json::Value| (v.as_f64().unwrap() * 100.0).round() as i64;
    assert_eq!(cents(&out["totals"]["revenue"]), revenue);
    assert_eq!(cents(&out["totals"]["expenses"]), expenses);
    assert_eq!(cents(&out["totals"]["net"]), revenue - expenses);
    let sum_of_months: i64 = out["months"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| cents(&m["revenue"]))
        .sum();
    assert_eq!(sum_of_months, revenue);

    // A ledger with bad rows fails the run, names the lines, and writes no snapshot.
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        format!(
            "{}\n2026-02-30,5.00,USD,x,revenue,\n2026-03-01,-3,USD,x,expense,\n",
            text.trim_end()
        ),
    )
    .unwrap();
    let lines = text.lines().count();
    h.engine
        .update_job(
            "finance",
            engine::JobSpec {
                params: Some(serde_json::json!({ "ledger_path": bad })),
                ..Default::default()
            },
            true,
        )
        .await
        .unwrap();
    let run = h.engine.run_now("finance", Trigger::Api).await.unwrap();
    let run = h
        .engine
        .wait_run(run.id, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.unwrap();
    assert!(
        error.contains(&format!("line {}: date", lines + 1)),
        "{error}"
    );
    assert!(
        error.contains(&format!("line {}: amount", lines + 2)),
        "{error}"
    );
    assert_eq!(run.output, serde_json::json!({}), "no snapshot");
    h.close().await;
}
