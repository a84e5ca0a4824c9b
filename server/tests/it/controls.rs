//! The operator's controls over real HTTP, with real processes and real time: cancel
//! (a shell job's whole process group killed, an HTTP request to a slow server aborted),
//! rerun and run with overrides, bulk cancel, pause with an end that survives a restart.

use crate::support::{cli, spawn, spawn_app, Opts, KEY};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_shell_job_kills_its_process_group_even_a_child_ignoring_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let server = spawn(Opts {
        args: vec!["--allow-shell".into()],
        ..Opts::default()
    })
    .unwrap();
    // The shell and a child that ignores SIGTERM, both writing their pids.
    let script = format!(
        "trap '' TERM; (trap '' TERM; echo $$ child >> {p}; exec sleep 300) & echo $$ >> {p}; echo started; wait",
        p = pids.display()
    );
    let job = json!({ "id": "stubborn", "kind": "shell", "schedule": "0 0 3 * * *",
                      "timeout_secs": 600, "params": { "argv": ["sh", "-c", script] } });
    let (s, body) = server.send(Method::POST, "/api/jobs", Some(job)).await;
    assert_eq!(s, 201, "{body}");
    let (s, body) = server
        .send(Method::POST, "/api/jobs/stubborn/run", None)
        .await;
    assert_eq!(s, 202, "{body}");
    let id = body["run"]["id"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let procs: Vec<i32> = loop {
        let text = std::fs::read_to_string(&pids).unwrap_or_default();
        let found: Vec<i32> = text
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        if found.len() >= 2 {
            break found;
        }
        assert!(Instant::now() < deadline, "the job never started: {text:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(procs.iter().all(|p| alive(*p)));

    let (s, run) = server
        .send(
            Method::POST,
            &format!("/api/runs/{id}/cancel"),
            Some(json!({ "reason": "wrong target" })),
        )
        .await;
    assert_eq!(s, 200, "{run}");
    assert_eq!(run["status"], "cancelled");
    assert_eq!(run["error"], "cancelled by key: wrong target");
    let deadline = Instant::now() + Duration::from_secs(5);
    while procs.iter().any(|p| alive(*p)) {
        assert!(
            Instant::now() < deadline,
            "the process group outlived the cancel: {procs:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The killed program's exit reached the runner, whose record was refused: the
    // cancel stands, and the log it printed is kept.
    let run = server
        .wait_for(
            &format!("/api/runs/{id}/log"),
            Duration::from_secs(5),
            |b| {
                b.as_str()
                    .is_some_and(|t| t.contains("started") && t.contains("cancelled"))
            },
        )
        .await;
    assert!(run.as_str().unwrap().contains("cancelled"), "{run}");
    let (_, after) = server
        .send(Method::GET, &format!("/api/runs/{id}"), None)
        .await;
    assert_eq!(after["status"], "cancelled", "{after}");
    assert_eq!(after["error"], "cancelled by key: wrong target");

    // An ended run: 409 saying its status; an unknown one: 404.
    let (s, body) = server
        .send(Method::POST, &format!("/api/runs/{id}/cancel"), None)
        .await;
    assert_eq!(s, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already ended: cancelled"),
        "{body}"
    );
    let (s, body) = server
        .send(Method::POST, "/api/runs/999999/cancel", None)
        .await;
    assert_eq!(s, 404, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_an_http_job_aborts_its_request_to_a_slow_server() {
    // A server that reads the request and never answers; it sees the connection close.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        loop {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = closed_tx.send(());
    });
    let server = spawn(Opts {
        args: vec!["--http-allow".into(), "127.0.0.1".into()],
        ..Opts::default()
    })
    .unwrap();
    let job = json!({ "id": "slow", "kind": "http", "schedule": "0 0 3 * * *", "timeout_secs": 600,
                      "params": { "url": format!("http://127.0.0.1:{port}/slow") } });
    let (s, body) = server.send(Method::POST, "/api/jobs", Some(job)).await;
    assert_eq!(s, 201, "{body}");
    let (_, body) = server.send(Method::POST, "/api/jobs/slow/run", None).await;
    let id = body["run"]["id"].as_i64().unwrap();
    server
        .wait_for(&format!("/api/runs/{id}"), Duration::from_secs(5), |r| {
            r["status"] == "running"
        })
        .await;
    let (s, run) = server
        .send(Method::POST, &format!("/api/runs/{id}/cancel"), None)
        .await;
    assert_eq!(s, 200, "{run}");
    assert_eq!(run["error"], "cancelled by key");
    tokio::time::timeout(Duration::from_secs(5), closed_rx)
        .await
        .expect("the request was not aborted")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_and_overrides_are_recorded_linked_and_checked() {
    let app = spawn_app().await;
    let job = json!({ "id": "greet", "kind": "noop", "schedule": "0 0 3 * * *",
                      "params": { "duration_ms": 0, "note": "a", "api_token": "s3cret" } });
    assert_eq!(app.send(Method::POST, "/api/jobs", Some(job)).await.0, 201);
    // Overrides: merged for this run only, shown with secrets masked.
    let (s, body) = app
        .send(
            Method::POST,
            "/api/jobs/greet/run?wait=true",
            Some(json!({ "params": { "note": "b", "api_token": "other" } })),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let first = &body["run"];
    assert_eq!(first["status"], "succeeded");
    assert_eq!(first["params"]["note"], "b");
    assert_ne!(
        first["params"]["api_token"], "other",
        "a secret is never echoed: {first}"
    );
    assert!(!body.to_string().contains("other"), "{body}");
    let (_, job) = app.send(Method::GET, "/api/jobs/greet", None).await;
    assert_eq!(job["params"]["note"], "a", "the job itself is unchanged");

    // Bad overrides: 422 naming the param; nothing runs.
    let before = app.send(Method::GET, "/api/runs?job=greet", None).await.1["runs"]
        .as_array()
        .unwrap()
        .len();
    let (s, body) = app
        .send(
            Method::POST,
            "/api/jobs/greet/run",
            Some(json!({ "params": { "nope": 1 } })),
        )
        .await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["error"]["field"], "params.nope");
    let (s, body) = app
        .send(
            Method::POST,
            "/api/jobs/greet/run",
            Some(json!({ "params": { "duration_ms": "soon" } })),
        )
        .await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["error"]["field"], "params.duration_ms");
    let after = app.send(Method::GET, "/api/runs?job=greet", None).await.1["runs"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after, "no run was started by a refused request");

    // Rerun: a new run with the same params, linked both ways.
    let id = first["id"].as_i64().unwrap();
    let (s, body) = app
        .send(Method::POST, &format!("/api/runs/{id}/rerun"), None)
        .await;
    assert_eq!(s, 202, "{body}");
    let rerun = &body["run"];
    assert_eq!(rerun["trigger"], "rerun");
    assert_eq!(rerun["rerun_of"], id);
    assert_eq!(rerun["params"]["note"], "b");
    let rerun_id = rerun["id"].as_i64().unwrap();
    let (_, original) = app
        .send(Method::GET, &format!("/api/runs/{id}"), None)
        .await;
    assert_eq!(original["reruns"], json!([rerun_id]));
    let (s, _) = app.send(Method::POST, "/api/runs/999999/rerun", None).await;
    assert_eq!(s, 404);

    // A retry runs with the overrides of the run it retries, and records them.
    let job = json!({ "id": "flaky", "kind": "noop", "schedule": "0 0 3 * * *", "retries": 1,
                      "retry_backoff_secs": 0, "params": { "fail": false } });
    assert_eq!(app.send(Method::POST, "/api/jobs", Some(job)).await.0, 201);
    let (s, body) = app
        .send(
            Method::POST,
            "/api/jobs/flaky/run?wait=true",
            Some(json!({ "params": { "fail": true } })),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["run"]["status"], "failed");
    let runs = app
        .wait_for("/api/runs?job=flaky", Duration::from_secs(10), |b| {
            b["runs"].as_array().is_some_and(|r| {
                r.iter()
                    .any(|r| r["trigger"] == "retry" && r["status"] != "running")
            })
        })
        .await;
    let retry = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["trigger"] == "retry")
        .unwrap();
    assert_eq!(retry["attempt"], 2, "{retry}");
    assert_eq!(retry["params"], json!({ "fail": true }), "{retry}");
    assert_eq!(
        retry["status"], "failed",
        "it failed as asked again: {retry}"
    );

    // A run queued behind another keeps its own overrides when it starts.
    let job = json!({ "id": "line", "kind": "noop", "schedule": "0 0 3 * * *", "overlap": "queue",
                      "params": { "duration_ms": 0, "fail": false } });
    assert_eq!(app.send(Method::POST, "/api/jobs", Some(job)).await.0, 201);
    let (s, body) = app
        .send(
            Method::POST,
            "/api/jobs/line/run",
            Some(json!({ "params": { "duration_ms": 300 } })),
        )
        .await;
    assert_eq!(s, 202, "{body}");
    let (s, body) = app
        .send(
            Method::POST,
            "/api/jobs/line/run",
            Some(json!({ "params": { "fail": true } })),
        )
        .await;
    assert_eq!(s, 202, "{body}");
    let queued = body["run"]["id"].as_i64().unwrap();
    let run = app
        .wait_for(
            &format!("/api/runs/{queued}"),
            Duration::from_secs(10),
            |r| r["finished_at"].is_string(),
        )
        .await;
    assert_eq!(run["status"], "failed", "its own fail = true held: {run}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_cancel_takes_the_runs_filter_counts_first_and_refuses_a_bad_filter() {
    let app = spawn_app().await;
    let job = json!({ "id": "sleepy", "kind": "noop", "schedule": "0 0 3 * * *", "overlap": "allow",
                      "timeout_secs": 600, "params": { "duration_ms": 600000 } });
    assert_eq!(app.send(Method::POST, "/api/jobs", Some(job)).await.0, 201);
    for _ in 0..50 {
        assert_eq!(
            app.send(Method::POST, "/api/jobs/sleepy/run", None).await.0,
            202
        );
    }
    // A malformed filter changes nothing.
    let (s, body) = app
        .send(
            Method::POST,
            "/api/runs/cancel",
            Some(json!({ "job": "sleepy", "status": "sleeping" })),
        )
        .await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["error"]["field"], "status");
    let (s, body) = app
        .send(
            Method::POST,
            "/api/runs/cancel",
            Some(json!({ "jobs": "sleepy" })),
        )
        .await;
    assert_eq!(s, 422, "{body}");
    // Counted first, then done.
    let (s, dry) = app
        .send(
            Method::POST,
            "/api/runs/cancel",
            Some(json!({ "job": "sleepy", "dry_run": true })),
        )
        .await;
    assert_eq!(s, 200, "{dry}");
    assert_eq!(dry["count"], 50);
    let (_, running) = app
        .send(
            Method::GET,
            "/api/runs?job=sleepy&status=running&limit=100",
            None,
        )
        .await;
    assert_eq!(
        running["runs"].as_array().unwrap().len(),
        50,
        "a dry run cancels nothing"
    );
    let (s, done) = app
        .send(
            Method::POST,
            "/api/runs/cancel",
            Some(json!({ "job": "sleepy" })),
        )
        .await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(done["count"], 50);
    let (_, cancelled) = app
        .send(
            Method::GET,
            "/api/runs?job=sleepy&status=cancelled&limit=100",
            None,
        )
        .await;
    assert_eq!(cancelled["runs"].as_array().unwrap().len(), 50);
    app.wait_for("/api/automations/status", Duration::from_secs(5), |s| {
        s["active_runs"] == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_with_an_end_swallows_slots_visibly_and_ends_by_itself_across_a_restart() {
    let mut server = spawn(Opts::default()).unwrap();
    let job =
        json!({ "id": "tick", "kind": "noop", "schedule": "@every 1s", "misfire": "run_once" });
    assert_eq!(
        server.send(Method::POST, "/api/jobs", Some(job)).await.0,
        201
    );
    // Bad pauses change nothing.
    let (s, body) = server
        .send(
            Method::POST,
            "/api/jobs/tick/pause",
            Some(json!({ "reason": "x", "until": "2020-01-01T00:00:00Z" })),
        )
        .await;
    assert_eq!(
        (s, body["error"]["field"].clone()),
        (422, json!("until")),
        "{body}"
    );
    let (s, body) = server
        .send(
            Method::POST,
            "/api/jobs/tick/pause",
            Some(json!({ "for": "3s" })),
        )
        .await;
    assert_eq!(
        (s, body["error"]["field"].clone()),
        (422, json!("reason")),
        "{body}"
    );
    let (s, body) = server
        .send(
            Method::POST,
            "/api/jobs/nope/pause",
            Some(json!({ "reason": "x" })),
        )
        .await;
    assert_eq!(s, 404, "{body}");
    let (_, job) = server.send(Method::GET, "/api/jobs/tick", None).await;
    assert!(job["paused"].is_null(), "{job}");

    let (s, job) = server
        .send(
            Method::POST,
            "/api/jobs/tick/pause",
            Some(json!({ "reason": "db migration", "for": "3s" })),
        )
        .await;
    assert_eq!(s, 200, "{job}");
    assert_eq!(job["paused"]["reason"], "db migration");
    assert_eq!(job["paused"]["by"], "key");
    let until = job["paused"]["until"].as_str().unwrap().to_string();
    let since = job["paused"]["since"].as_str().unwrap().to_string();
    // A slot swallowed, then a restart in the middle of the pause.
    server
        .wait_for(
            "/api/runs?job=tick&status=skipped",
            Duration::from_secs(5),
            |b| b["runs"].as_array().is_some_and(|r| !r.is_empty()),
        )
        .await;
    server.signal(nix::sys::signal::Signal::SIGTERM as i32);
    assert!(server.wait_exit(Duration::from_secs(10)).success());
    let data_dir = server.data_dir.clone();
    let server = spawn(Opts {
        data_dir: Some(data_dir),
        ..Opts::default()
    })
    .unwrap();
    // It ends by itself, and the job runs again.
    let job = server
        .wait_for("/api/jobs/tick", Duration::from_secs(10), |j| {
            j["paused"].is_null()
        })
        .await;
    assert!(job["paused"].is_null());
    server
        .wait_for(
            "/api/runs?job=tick&status=succeeded",
            Duration::from_secs(5),
            |b| {
                b["runs"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|r| r["trigger"] == "schedule"))
            },
        )
        .await;
    let (_, page) = server
        .send(Method::GET, "/api/runs?job=tick&limit=100", None)
        .await;
    let runs = page["runs"].as_array().unwrap();
    let at = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap();
    let (since, until) = (at(&since), at(&until));
    let paused: Vec<&Value> = runs
        .iter()
        .filter(|r| {
            r["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("paused: db migration (by key, until "))
        })
        .collect();
    assert!(
        paused.len() >= 2,
        "the swallowed slots are in the ledger: {page}"
    );
    for r in &paused {
        assert_eq!(r["status"], "skipped");
        let slot = at(r["scheduled_at"].as_str().unwrap());
        assert!(
            slot >= since && slot < until,
            "only slots inside the pause are swallowed: {r}"
        );
    }
    for r in runs
        .iter()
        .filter(|r| r["status"] == "succeeded" && !r["scheduled_at"].is_null())
    {
        let slot = at(r["scheduled_at"].as_str().unwrap());
        assert!(
            slot < since || slot >= until,
            "no slot inside the pause ran: {r}"
        );
    }
    // run_once: one catch-up run on resume.
    let catch_ups = runs
        .iter()
        .filter(|r| r["trigger"] == "catch_up" && r["scheduled_at"].is_null())
        .count();
    assert_eq!(catch_ups, 1, "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_runs_with_params_cancels_pauses_and_resumes() {
    let app = spawn_app().await;
    let job = json!({ "id": "sleepy", "kind": "noop", "schedule": "0 0 3 * * *", "timeout_secs": 600,
                      "params": { "duration_ms": 0 } });
    assert_eq!(app.send(Method::POST, "/api/jobs", Some(job)).await.0, 201);
    let url = app.url.clone();
    let json = |o: &std::process::Output| -> Value {
        serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&o.stderr)))
    };
    let u = url.clone();
    let run = tokio::task::spawn_blocking(move || {
        cli(&["run", "sleepy", "--param", "duration_ms=600000"], &u, KEY)
    })
    .await
    .unwrap();
    assert_eq!(run.status.code(), Some(0));
    let run = json(&run);
    assert_eq!(run["run"]["params"]["duration_ms"], 600000);
    let id = run["run"]["id"].as_i64().unwrap().to_string();
    let u = url.clone();
    let out = tokio::task::spawn_blocking(move || {
        let cancel = cli(&["runs", "cancel", &id, "--reason", "by hand"], &u, KEY);
        let again = cli(&["runs", "cancel", &id], &u, KEY);
        let pause = cli(
            &[
                "jobs",
                "pause",
                "sleepy",
                "--reason",
                "vendor outage",
                "--for",
                "1h",
            ],
            &u,
            KEY,
        );
        let resume = cli(&["jobs", "resume", "sleepy"], &u, KEY);
        let bad = cli(&["run", "sleepy", "--param", "nope"], &u, KEY);
        let stop = cli(
            &[
                "scheduler",
                "stop",
                "--reason",
                "maintenance",
                "--for",
                "2h",
            ],
            &u,
            KEY,
        );
        let start = cli(&["scheduler", "start"], &u, KEY);
        (cancel, again, pause, resume, bad, stop, start)
    })
    .await
    .unwrap();
    assert_eq!(json(&out.0)["status"], "cancelled");
    assert_eq!(json(&out.0)["error"], "cancelled by key: by hand");
    assert_eq!(out.1.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.1.stderr).contains("409"),
        "{:?}",
        out.1
    );
    assert_eq!(json(&out.2)["paused"]["reason"], "vendor outage");
    assert!(json(&out.3)["paused"].is_null());
    assert_eq!(out.4.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.4.stderr).contains("KEY=VALUE"));
    let stopped = json(&out.5);
    assert_eq!(stopped["paused"]["reason"], "maintenance");
    assert_eq!(
        stopped["state"], "running",
        "a pause keeps the scheduler recording slots"
    );
    assert!(json(&out.6)["paused"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_windows_crud_with_precise_errors_and_a_live_window_swallows_slots() {
    let app = spawn_app().await;
    let job = json!({ "id": "tick", "kind": "noop", "schedule": "@every 1s" });
    assert_eq!(app.send(Method::POST, "/api/jobs", Some(job)).await.0, 201);
    for (body, field) in [
        (
            json!({ "id": "w", "name": "w", "schedule": "0 0 2 * * SUN", "duration": "0s" }),
            "duration",
        ),
        (
            json!({ "id": "w", "name": "w", "start": "2026-12-02T10:00:00Z", "end": "2026-12-02T09:00:00Z" }),
            "end",
        ),
        (
            json!({ "id": "w", "name": "w", "schedule": "0 0 2 * * SUN" }),
            "duration",
        ),
        (
            json!({ "id": "w", "schedule": "0 0 2 * * SUN", "duration": "2h" }),
            "name",
        ),
        (
            json!({ "id": "w", "name": "w", "schedule": "0 0 2 * * SUN", "duration": "2h", "jobs": ["ghost"] }),
            "jobs",
        ),
        (
            json!({ "id": "w", "name": "w", "schedule": "0 0 2 * * SUN", "duration": "2h", "when": "now" }),
            "body",
        ),
    ] {
        let (s, b) = app
            .send(Method::POST, "/api/maintenance", Some(body.clone()))
            .await;
        assert_eq!(
            (s, b["error"]["field"].as_str()),
            (422, Some(field)),
            "{body} → {b}"
        );
    }
    let (_, list) = app.send(Method::GET, "/api/maintenance", None).await;
    assert_eq!(list, json!([]), "nothing was stored");

    // A one-off window open now, for `tick`: its slots are skipped, saying so.
    let now = chrono::Utc::now();
    let window = json!({ "id": "deploy", "name": "Deploy freeze", "jobs": ["tick"],
        "start": (now - chrono::Duration::seconds(5)).to_rfc3339(),
        "end": (now + chrono::Duration::hours(1)).to_rfc3339() });
    let (s, created) = app
        .send(Method::POST, "/api/maintenance", Some(window.clone()))
        .await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["timezone"], "UTC");
    let (s, _) = app
        .send(Method::POST, "/api/maintenance", Some(window))
        .await;
    assert_eq!(s, 409);
    let page = app
        .wait_for(
            "/api/runs?job=tick&status=skipped",
            Duration::from_secs(5),
            |b| b["runs"].as_array().is_some_and(|r| !r.is_empty()),
        )
        .await;
    assert_eq!(page["runs"][0]["error"], "maintenance: Deploy freeze");
    // The preview says so too.
    let (_, preview) = app
        .send(
            Method::GET,
            "/api/schedule/preview?schedule=%40every%201s&job=tick&count=3",
            None,
        )
        .await;
    assert!(
        preview["slots"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["swallowed"] == "maintenance: Deploy freeze"),
        "{preview}"
    );

    // Replaced with one that has ended: tick runs again.
    let ended = json!({ "name": "Deploy freeze", "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z" });
    let (s, body) = app
        .send(Method::PUT, "/api/maintenance/deploy", Some(ended))
        .await;
    assert_eq!(s, 200, "{body}");
    let (_, got) = app.send(Method::GET, "/api/maintenance/deploy", None).await;
    assert_eq!(got["end"], "2026-01-01T01:00:00Z");
    let since = chrono::Utc::now();
    app.wait_for(
        "/api/runs?job=tick&status=succeeded",
        Duration::from_secs(5),
        |b| {
            b["runs"].as_array().is_some_and(|r| {
                r.iter().any(|r| {
                    r["started_at"]
                        .as_str()
                        .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap() > since)
                })
            })
        },
    )
    .await;
    assert_eq!(
        app.send(Method::DELETE, "/api/maintenance/deploy", None)
            .await
            .0,
        204
    );
    assert_eq!(
        app.send(Method::DELETE, "/api/maintenance/deploy", None)
            .await
            .0,
        404
    );
    assert_eq!(
        app.send(Method::GET, "/api/maintenance/deploy", None)
            .await
            .0,
        404
    );

    // And from the CLI.
    let u = app.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        let add = cli(
            &[
                "maintenance",
                "add",
                "sundays",
                "--name",
                "Sunday backups",
                "--schedule",
                "0 0 2 * * SUN",
                "--duration",
                "2h",
                "--timezone",
                "Europe/Warsaw",
            ],
            &u,
            KEY,
        );
        let list = cli(&["maintenance", "list"], &u, KEY);
        let delete = cli(&["maintenance", "delete", "sundays"], &u, KEY);
        (add, list, delete)
    })
    .await
    .unwrap();
    assert_eq!(
        out.0.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.0.stderr)
    );
    let list: Value = serde_json::from_slice(&out.1.stdout).unwrap();
    assert_eq!(list[0]["timezone"], "Europe/Warsaw");
    assert_eq!(list[0]["duration"], "2h");
    assert_eq!(out.2.status.code(), Some(0));
}
