//! Jobs, runs and schedules over real HTTP, and durability across real process deaths
//! (RELIABILITY 1 and 8).

use crate::support::{client, read_events, spawn, spawn_app, Opts, KEY};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use reqwest::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_crud_with_precise_errors() {
    let app = spawn_app().await;
    let job = json!({ "id": "nightly", "name": "Nightly", "kind": "noop", "schedule": "0 0 3 * * *", "timezone": "Europe/Warsaw" });
    let (s, created) = app.send(Method::POST, "/api/jobs", Some(job.clone())).await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["id"], "nightly");
    assert_eq!(created["overlap"], "skip");
    assert_eq!(created["misfire"], "run_once");
    assert!(
        created["next_run_at"].as_str().unwrap().ends_with('Z'),
        "RFC 3339 UTC: {created}"
    );

    let (s, body) = app.send(Method::POST, "/api/jobs", Some(job.clone())).await;
    assert_eq!(s, 409, "{body}");

    let (s, body) = app
        .send(
            Method::POST,
            "/api/jobs",
            Some(json!({ "id": "x", "kind": "noop", "schedule": "0 0 25 * * *" })),
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(body["error"]["field"], "schedule");
    assert_eq!(body["error"]["message"], "hour: 25 is out of range 0-23");

    let (s, body) = app.send(Method::POST,
        "/api/jobs",
        Some(
            json!({ "id": "x", "kind": "noop", "schedule": "@every 1m", "timezone": "Mars/Base" }),
        ),
    )
    .await;
    assert_eq!(s, 422);
    assert_eq!(body["error"]["field"], "timezone");

    let (s, body) = app
        .send(
            Method::PATCH,
            "/api/jobs/nightly",
            Some(json!({ "enabled": false })),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["enabled"], false);
    assert_eq!(
        body["schedule"], "0 0 3 * * *",
        "PATCH keeps the other fields"
    );
    assert!(body["next_run_at"].is_null());

    let (s, _) = app.send(Method::GET, "/api/jobs/missing", None).await;
    assert_eq!(s, 404);
    let (s, list) = app.send(Method::GET, "/api/jobs", None).await;
    assert_eq!(s, 200);
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|j| j["id"] == "nightly"));
    let (s, _) = app.send(Method::DELETE, "/api/jobs/nightly", None).await;
    assert_eq!(s, 204);
    let (s, _) = app.send(Method::DELETE, "/api/jobs/nightly", None).await;
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_400_with_the_position_and_oversized_is_413() {
    let app = spawn_app().await;
    let r = client()
        .post(format!("{}/api/jobs", app.url))
        .header("X-Dash-Key", KEY)
        .header("content-type", "application/json")
        .body("{\"id\": \"a\",\n \"kind\": }")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("line 2 column"), "{msg}");

    let big = json!({ "id": "big", "kind": "noop", "schedule": "@every 1m", "params": { "blob": "x".repeat(1024 * 1024) } });
    let (s, body) = app.send(Method::POST, "/api/jobs", Some(big)).await;
    assert_eq!(s, 413, "{body}");
    let (s, _) = app.send(Method::GET, "/api/jobs/big", None).await;
    assert_eq!(s, 404, "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_now_with_wait_returns_the_finished_run_and_runs_list_pages() {
    let app = spawn_app().await;
    app.send(
        Method::POST,
        "/api/jobs",
        Some(json!({ "id": "quick", "kind": "noop", "schedule": "@every 1h" })),
    )
    .await;
    let (s, body) = app
        .send(Method::POST, "/api/jobs/quick/run?wait=true", None)
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["run"]["status"], "succeeded");
    assert_eq!(body["run"]["trigger"], "api");
    let (s, body) = app.send(Method::POST, "/api/jobs/quick/run", None).await;
    assert_eq!(s, 202);
    assert_eq!(body["run"]["status"], "running");
    for _ in 0..3 {
        app.send(Method::POST, "/api/jobs/quick/run?wait=true", None)
            .await;
    }
    let (s, page1) = app
        .send(Method::GET, "/api/runs?job=quick&limit=3", None)
        .await;
    assert_eq!(s, 200);
    let runs = page1["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    assert!(
        runs[0]["id"].as_i64() > runs[1]["id"].as_i64(),
        "newest first"
    );
    let cursor = page1["next"].as_i64().expect("a next cursor");
    let (_, page2) = app
        .send(
            Method::GET,
            &format!("/api/runs?job=quick&limit=3&before={cursor}"),
            None,
        )
        .await;
    assert_eq!(page2["runs"].as_array().unwrap().len(), 2);
    assert!(page2["next"].is_null());
    let id = runs[0]["id"].as_i64().unwrap();
    let (s, one) = app
        .send(Method::GET, &format!("/api/runs/{id}"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(one["id"], id);
    let (s, _) = app.send(Method::GET, "/api/runs/999999", None).await;
    assert_eq!(s, 404);
    let (s, body) = app
        .send(Method::GET, "/api/runs?status=exploded", None)
        .await;
    assert_eq!(s, 422);
    assert_eq!(body["error"]["field"], "status");
    let (s, _) = app.send(Method::POST, "/api/jobs/missing/run", None).await;
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_preview_lists_slots_in_utc_and_names_bad_fields() {
    let app = spawn_app().await;
    let (s, body) = app.send(Method::GET, "/api/schedule/preview?schedule=0%2030%202%20*%20*%20*&timezone=America/New_York&from=2026-03-07T12:00:00Z&count=3", None).await;
    assert_eq!(s, 200, "{body}");
    // 2026-03-08 is spring-forward day in New York: 02:30 does not exist, it runs at 03:00 EDT.
    assert_eq!(
        body["times"],
        json!([
            "2026-03-08T07:00:00Z",
            "2026-03-09T06:30:00Z",
            "2026-03-10T06:30:00Z"
        ])
    );
    let (s, body) = app
        .send(
            Method::GET,
            "/api/schedule/preview?schedule=0%200%2025%20*%20*%20*",
            None,
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(body["error"]["message"], "hour: 25 is out of range 0-23");
    let (s, body) = app
        .send(
            Method::GET,
            "/api/schedule/preview?schedule=@every%2010s&count=101",
            None,
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(body["error"]["field"], "count");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_fifty_runs_in_flight_loses_and_duplicates_nothing() {
    // An HTTP endpoint that accepts and never answers, so HTTP runs stay in flight.
    let hold = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hold_port = hold.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut open = Vec::new();
        for conn in hold.incoming().flatten() {
            open.push(conn);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let opts = Opts {
        data_dir: Some(dir.path().join("data")),
        env: vec![
            ("ECHOPILOT_ALLOW_SHELL".into(), "true".into()),
            ("ECHOPILOT_HTTP_ALLOW".into(), "127.0.0.1".into()),
        ],
        ..Opts::default()
    };
    let mut app = spawn(opts.clone()).unwrap();
    let jobs = [
        json!({ "id": "fast", "kind": "noop", "schedule": "@every 24h", "overlap": "allow" }),
        json!({ "id": "slow", "kind": "noop", "schedule": "@every 24h", "overlap": "allow", "params": { "duration_ms": 60000 } }),
        json!({ "id": "sleeper", "kind": "shell", "schedule": "@every 24h", "overlap": "allow", "params": { "argv": ["sleep", "30"] } }),
        json!({ "id": "hanging-http", "kind": "http", "schedule": "@every 24h", "overlap": "allow", "params": { "url": format!("http://127.0.0.1:{hold_port}/") } }),
    ];
    for job in jobs {
        let (s, body) = app.send(Method::POST, "/api/jobs", Some(job)).await;
        assert_eq!(s, 201, "{body}");
    }
    let ours = |r: &Value| {
        ["fast", "slow", "sleeper", "hanging-http"]
            .contains(&r["job_id"].as_str().unwrap_or_default())
    };
    let mut dispatched = Vec::new();
    for i in 0..60 {
        // 10 finish at once; 20 noop, 20 shell and 10 HTTP runs stay in flight.
        let job = match i % 6 {
            0 => "fast",
            1 | 2 => "slow",
            3 | 4 => "sleeper",
            _ => "hanging-http",
        };
        let (s, body) = app
            .send(Method::POST, &format!("/api/jobs/{job}/run"), None)
            .await;
        assert_eq!(s, 202, "{body}");
        dispatched.push(body["run"]["id"].as_i64().unwrap());
    }
    let live = app
        .wait_for(
            "/api/runs?status=running&limit=500",
            Duration::from_secs(10),
            |v| {
                v["runs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|r| ours(r))
                    .count()
                    == 50
            },
        )
        .await;
    let kinds: std::collections::BTreeSet<&str> = live["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| ours(r))
        .map(|r| r["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.len(),
        3,
        "noop, shell and HTTP runs in flight: {kinds:?}"
    );
    app.signal(libc::SIGKILL);
    app.wait_exit(Duration::from_secs(10));

    let app = spawn(opts).unwrap();
    let (_, all) = app.send(Method::GET, "/api/runs?limit=500", None).await;
    // Only this test's jobs: a built-in job may have fired meanwhile.
    let runs: Vec<&Value> = all["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| ours(r))
        .collect();
    let mut ids: Vec<i64> = runs.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    ids.sort();
    dispatched.sort();
    assert_eq!(
        ids, dispatched,
        "run rows equal dispatches: none lost, none added"
    );
    for r in runs {
        let expected = if r["job_id"] == "fast" {
            "succeeded"
        } else {
            "interrupted"
        };
        assert_eq!(r["status"], expected, "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_runs_in_flight_gives_them_the_grace_then_interrupts_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Opts {
        data_dir: Some(dir.path().join("data")),
        ..Opts::default()
    };
    let mut app = spawn(opts.clone()).unwrap();
    app.send(Method::POST, "/api/jobs", Some(json!({ "id": "slow", "kind": "noop", "schedule": "@every 24h", "overlap": "allow", "params": { "duration_ms": 60000 } }))).await;
    app.send(Method::POST, "/api/jobs", Some(json!({ "id": "short", "kind": "noop", "schedule": "@every 24h", "overlap": "allow", "params": { "duration_ms": 1500 } }))).await;
    for i in 0..10 {
        let job = if i < 2 { "short" } else { "slow" };
        app.send(Method::POST, &format!("/api/jobs/{job}/run"), None)
            .await;
    }
    app.wait_for(
        "/api/runs?status=running&limit=500",
        Duration::from_secs(10),
        |v| v["runs"].as_array().unwrap().len() == 10,
    )
    .await;
    let started = Instant::now();
    app.signal(libc::SIGTERM);
    let status = app.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{status:?}\n{}", app.stderr());
    // The grace (5 s in tests) was given: the short runs finished inside it.
    assert!(started.elapsed() >= Duration::from_secs(1));
    let app = spawn(opts).unwrap();
    let (_, all) = app.send(Method::GET, "/api/runs?limit=500", None).await;
    let runs: Vec<&Value> = all["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["job_id"] == "slow" || r["job_id"] == "short")
        .collect();
    assert_eq!(runs.len(), 10);
    for r in runs {
        let expected = if r["job_id"] == "short" {
            "succeeded"
        } else {
            "interrupted"
        };
        assert_eq!(r["status"], expected, "{r}");
        if expected == "interrupted" {
            assert!(r["error"].as_str().unwrap().contains("shut down"), "{r}");
        }
    }
}

/// Deletes the built-in jobs, so only the test's own job may reach a fail point.
#[cfg(feature = "failpoints")]
pub(crate) async fn only_test_jobs(app: &crate::support::TestServer) {
    for builtin in [
        "self-heal",
        "metrics-summary",
        "retention-cleanup",
        "finance-metrics",
        "ceo-brief",
    ] {
        app.send(Method::DELETE, &format!("/api/jobs/{builtin}"), None)
            .await;
    }
}

/// RELIABILITY 2: the process dies at a fault-injection point; after a restart the run
/// it was handling is visible as interrupted, never missing.
#[cfg(feature = "failpoints")]
async fn crash_at(point: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut app = spawn(Opts {
        data_dir: Some(data.clone()),
        env: vec![("FAILPOINTS".into(), format!("{point}=return"))],
        ..Opts::default()
    })
    .unwrap();
    only_test_jobs(&app).await;
    app.send(
        Method::POST,
        "/api/jobs",
        Some(json!({ "id": "tick", "kind": "noop", "schedule": "* * * * * *" })),
    )
    .await;
    let status = app.wait_exit(Duration::from_secs(15));
    assert!(
        !status.success(),
        "the fail point {point} aborts the process"
    );
    let app = spawn(Opts {
        data_dir: Some(data),
        ..Opts::default()
    })
    .unwrap();
    let (_, all) = app
        .send(
            Method::GET,
            "/api/runs?job=tick&status=interrupted&limit=10",
            None,
        )
        .await;
    let runs = all["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{point}: {all}");
    assert_eq!(runs[0]["trigger"], "schedule");
    assert!(runs[0]["scheduled_at"].is_string());
}

#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_claiming_a_slot_and_starting_it_leaves_an_interrupted_run() {
    crash_at("after_claim").await;
}

#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_starting_a_run_and_recording_its_end_leaves_an_interrupted_run() {
    crash_at("before_finish").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_jobs_are_seeded_once_and_the_seed_self_heal_route_runs_one() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Opts {
        data_dir: Some(dir.path().join("data")),
        ..Opts::default()
    };
    let mut app = spawn(opts.clone()).unwrap();
    let (_, jobs) = app.send(Method::GET, "/api/jobs", None).await;
    let ids: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "ceo-brief",
            "finance-metrics",
            "metrics-summary",
            "retention-cleanup",
            "self-heal"
        ]
    );

    let (s, body) = app
        .send(Method::POST, "/api/self-heal?wait=true", None)
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["run"]["job_id"], "self-heal");
    assert_eq!(body["run"]["output"]["checks"][0]["name"], "store_writable");
    let (s, body) = app.send(Method::POST, "/api/self-heal", None).await;
    assert_eq!(s, 202, "{body}");
    let (s, body) = app
        .send(Method::POST, "/api/exec/brief?wait=true", None)
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["run"]["job_id"], "ceo-brief");
    assert_eq!(body["run"]["output"]["source"], "template");
    assert!(body["run"]["output"]["markdown"]
        .as_str()
        .unwrap()
        .starts_with("# CEO brief"));

    // A deleted built-in stays deleted across a restart.
    app.send(Method::DELETE, "/api/jobs/metrics-summary", None)
        .await;
    app.signal(libc::SIGTERM);
    app.wait_exit(Duration::from_secs(20));
    let app = spawn(opts).unwrap();
    let (_, jobs) = app.send(Method::GET, "/api/jobs", None).await;
    assert_eq!(jobs.as_array().unwrap().len(), 4, "{jobs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_run_prints_the_run_and_exits_non_zero_when_it_failed() {
    let app = spawn_app().await;
    app.send(Method::POST, "/api/jobs", Some(json!({ "id": "bad", "kind": "noop", "schedule": "@every 24h", "params": { "fail": true } }))).await;
    let url = app.url.clone();
    let (ok, failed, missing) = tokio::task::spawn_blocking(move || {
        let run = |job: &str| {
            std::process::Command::new(crate::support::bin())
                .args(["run", job, "--wait", "--json"])
                .env("ECHOPILOT_URL", &url)
                .env("DASHBOARD_KEY", KEY)
                .output()
                .unwrap()
        };
        (run("metrics-summary"), run("bad"), run("nope"))
    })
    .await
    .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let body: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(body["run"]["status"], "succeeded");
    assert_eq!(body["run"]["trigger"], "cli");
    assert!(
        body["run"]["output"]["process"]["rss_bytes"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(failed.status.code(), Some(2));
    let body: Value = serde_json::from_slice(&failed.stdout).unwrap();
    assert_eq!(body["run"]["status"], "failed");
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("404"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_log_streams_while_the_run_lasts_then_ends_with_its_status() {
    let app = spawn_app().await;
    let job = json!({ "id": "slow", "kind": "noop", "schedule": "@every 24h", "params": { "duration_ms": 1500 } });
    assert_eq!(app.send(Method::POST, "/api/jobs", Some(job)).await.0, 201);
    let mut activity = app.get("/api/events").await;
    assert_eq!(
        activity.headers()["content-type"],
        "text/event-stream",
        "activity is an event stream"
    );
    let (_, run) = app.send(Method::POST, "/api/jobs/slow/run", None).await;
    let id = run["run"]["id"].as_i64().unwrap();
    let mut log = app.get(&format!("/api/runs/{id}/log")).await;
    assert_eq!(log.status(), 200);
    let events = read_events(&mut log, Duration::from_secs(10), |ev| {
        ev.iter().any(|(k, _)| k == "end")
    })
    .await;
    let text: String = events
        .iter()
        .filter(|(k, _)| k == "log")
        .map(|(_, d)| d.as_str())
        .collect::<Vec<_>>()
        .join("");
    assert!(
        text.contains(&format!("run {id} of slow started")),
        "{text}"
    );
    assert!(text.trim_end().ends_with("succeeded"), "{text}");
    assert_eq!(
        events.last().unwrap(),
        &("end".to_string(), "succeeded".to_string())
    );
    // The run's start and end were announced on the activity stream.
    read_events(&mut activity, Duration::from_secs(5), |ev| {
        ev.iter().any(|(k, _)| k == "runs")
    })
    .await;
    // An ended run replays its stored log; an unknown one is a 404 before any stream.
    let mut again = app.get(&format!("/api/runs/{id}/log")).await;
    let replay = read_events(&mut again, Duration::from_secs(5), |ev| {
        ev.iter().any(|(k, _)| k == "end")
    })
    .await;
    assert_eq!(replay[0], ("log".to_string(), text.clone()));
    assert_eq!(app.get("/api/runs/999999/log").await.status(), 404);
}

/// The dashboard's job form posts to the `save_job` server function: bad input is refused
/// with 422 and the precise message, and nothing is saved; fixed, it saves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboards_job_form_refuses_bad_input_with_422_and_saves_nothing() {
    let app = spawn_app().await;
    let save = |schedule: &'static str, timeout: &'static str| {
        let mut url = reqwest::Url::parse("http://form.invalid/").unwrap();
        url.query_pairs_mut().extend_pairs([
            ("original", ""),
            ("id", "form-job"),
            ("name", "From the form"),
            ("kind", "noop"),
            ("schedule", schedule),
            ("timezone", "UTC"),
            ("timeout_secs", timeout),
            ("retries", "0"),
            ("overlap", "skip"),
            ("misfire", "run_once"),
            ("params", ""),
        ]);
        let body = url.query().unwrap().to_string();
        let request = client()
            .post(format!("{}/api/fn/save_job", app.url))
            .header("X-Dash-Key", KEY)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        async move {
            let r = request.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    for (schedule, timeout, says) in [
        ("0 0 25 * * *", "60", "hour: 25 is out of range 0-23"),
        (
            "@every 1m",
            "soon",
            r#"timeout_secs: "soon" is not a whole number"#,
        ),
    ] {
        let (status, text) = save(schedule, timeout).await;
        assert_eq!(status, 422, "{text}");
        assert!(text.contains(says), "{says} in {text}");
        let (s, _) = app.send(Method::GET, "/api/jobs/form-job", None).await;
        assert_eq!(s, 404, "nothing saved");
    }
    let (status, text) = save("@every 1m", "60").await;
    assert_eq!(status, 200, "{text}");
    let (s, job) = app.send(Method::GET, "/api/jobs/form-job", None).await;
    assert_eq!(s, 200);
    assert_eq!(job["name"], "From the form");
}

/// A slot whose claim the store failed is not lost: the next pass takes the leader's work
/// up again and the slot runs, late, as itself; every slot after it has its row.
#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_whose_claim_failed_runs_late_on_the_next_pass_and_none_is_lost() {
    let app = spawn(Opts {
        env: vec![("FAILPOINTS".into(), "claim_slot=1*return->off".into())],
        ..Opts::default()
    })
    .unwrap();
    only_test_jobs(&app).await;
    let (status, _) = app
        .send(
            Method::POST,
            "/api/jobs",
            // Overlap allowed: a late first run still finishing (a loaded machine) must
            // not turn the second slot into a skip; claims are under test, not overlap.
            Some(json!({ "id": "tick", "kind": "noop", "schedule": "* * * * * *", "overlap": "allow" })),
        )
        .await;
    assert_eq!(status, 201);
    let deadline = Instant::now() + Duration::from_secs(20);
    let runs = loop {
        let (_, all) = app
            .send(Method::GET, "/api/runs?job=tick&limit=100", None)
            .await;
        let runs = all["runs"].as_array().unwrap().clone();
        if runs.len() >= 4 {
            break runs;
        }
        assert!(Instant::now() < deadline, "too few runs: {all}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let at = |r: &serde_json::Value, field: &str| {
        chrono::DateTime::parse_from_rfc3339(r[field].as_str().unwrap()).unwrap()
    };
    let mut runs = runs;
    runs.sort_by_key(|r| at(r, "scheduled_at"));
    for pair in runs.windows(2) {
        let gap = at(&pair[1], "scheduled_at") - at(&pair[0], "scheduled_at");
        assert_eq!(gap.num_seconds(), 1, "a slot has no row: {pair:?}");
    }
    // The failed claim was the first slot's: it started after its instant, on the next
    // pass; the others were claimed ahead and start on the dot.
    let first = &runs[0];
    assert_eq!(first["trigger"], "schedule", "{first}");
    assert!(
        at(first, "started_at") > at(first, "scheduled_at"),
        "{first}"
    );
    let second = &runs[1];
    assert_eq!(
        at(second, "started_at"),
        at(second, "scheduled_at"),
        "{second}"
    );
}
