//! `make bench` figures for the engine (issue: "Engine: jobs, runs and a schedule you can
//! trust"):
//!
//! 1. manual no-op runs recorded per second into SQLite (target ≥ 10,000/s);
//! 2. `GET /api/runs` latency with 1,000,000 runs in history, through the real release
//!    server over HTTP (target p99 ≤ 20 ms).
//!
//! Lateness of the every-second job is measured by `../shared/bench` against the server
//! started with `--bench` (see `scripts/bench.sh`). Prints one JSON line per figure.

use engine::testing::{Options, TestEngine};
use engine::{JobSpec, Overlap, RunQuery, RunStatus, Trigger};
use std::time::{Duration, Instant};

mod release_server;

const RUNS: usize = 64_000;
const HISTORY: i64 = 1_000_000;
const QUERIES: usize = 400;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The engine as the benchmarks run it: the shared test harness, with a minute's
/// heartbeat as a server has.
async fn open(dir: &std::path::Path) -> TestEngine {
    let mut options = Options::new(dir).node("bench");
    options.config.heartbeat = Duration::from_secs(60);
    options.open().await
}

async fn runs_per_second() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).await;
    engine
        .create_job(JobSpec {
            id: Some("noop".into()),
            kind: Some("noop".into()),
            schedule: Some("@every 24h".into()),
            overlap: Some(Overlap::Allow),
            ..JobSpec::default()
        })
        .await
        .unwrap();
    let start = Instant::now();
    let mut dispatchers = Vec::new();
    // Callers in flight at once, as concurrent API requests would be.
    const CALLERS: usize = 64;
    for _ in 0..CALLERS {
        let engine = engine.engine.clone();
        dispatchers.push(tokio::spawn(async move {
            for _ in 0..RUNS / CALLERS {
                engine.run_now("noop", Trigger::Api).await.unwrap();
            }
        }));
    }
    for d in dispatchers {
        d.await.unwrap();
    }
    // Wait until every run is recorded as finished.
    loop {
        let open = engine
            .list_runs(&RunQuery {
                status: Some(RunStatus::Running),
                limit: 1,
                ..RunQuery::default()
            })
            .await
            .unwrap();
        if open.is_empty() && engine.status().active_runs == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{{\"figure\": \"manual_noop_runs_per_sec\", \"runs\": {RUNS}, \"seconds\": {secs:.3}, \"runs_per_sec\": {:.0}, \"target\": \">= 10000\"}}", RUNS as f64 / secs);
    engine.close().await;
}

async fn runs_listing_with_a_million_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let engine = open(&data).await;
        for id in ["alpha", "beta", "gamma", "delta"] {
            engine
                .create_job(JobSpec {
                    id: Some(id.into()),
                    kind: Some("noop".into()),
                    schedule: Some("@every 24h".into()),
                    ..JobSpec::default()
                })
                .await
                .unwrap();
        }
        engine.close().await;
    }
    // Seed a million finished runs straight into the file, in one transaction.
    let seed_start = Instant::now();
    let status = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!(
            r#"
import sqlite3, random
db = sqlite3.connect("{db}")
jobs = ["alpha", "beta", "gamma", "delta"]
statuses = ["succeeded"] * 8 + ["failed", "skipped"]
import time
# The history ends now and spans the default 30-day retention: one run every 2.6 s,
# so the overview's last 24 hours hold ~33,000 of them.
step = 30 * 86400 * 1000 // {HISTORY}
t0 = int(time.time() * 1000) - {HISTORY} * step
rows = ((jobs[i % 4], "schedule", statuses[i % 10], t0 + i * step + (i % 4), t0 + i * step + 5, t0 + i * step + 40 + i % 97, 1, '{{"ok": true}}', "bench") for i in range({HISTORY}))
db.executemany("INSERT INTO runs (job_id, trigger, status, scheduled_ms, started_ms, finished_ms, attempt, output, node) VALUES (?,?,?,?,?,?,?,?,?)", rows)
db.commit()
"#,
            db = data.join("echopilot.db").display()
        ))
        .status()
        .expect("python3 seeds the store");
    assert!(status.success());
    let seeded = seed_start.elapsed().as_secs_f64();

    let (mut child, url) = release_server::start(&["--data-dir", &data.display().to_string()], &[]);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let paths = [
        "/api/runs",
        "/api/runs?job=beta",
        "/api/runs?status=failed",
        "/api/runs?job=gamma&status=failed",
        "/api/runs?limit=100&before=500000",
    ];
    let mut all = Vec::new();
    for path in paths {
        let mut ms = Vec::new();
        for _ in 0..QUERIES / paths.len() {
            let t = Instant::now();
            let r = client
                .get(format!("{url}{path}"))
                .header("X-Dash-Key", release_server::KEY)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let body: serde_json::Value = r.json().await.unwrap();
            assert!(!body["runs"].as_array().unwrap().is_empty());
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
        eprintln!(
            "  GET {path}: p50 {:.2} ms, p99 {:.2} ms",
            percentile(&ms, 0.5),
            percentile(&ms, 0.99)
        );
        all.extend(ms);
    }
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{{\"figure\": \"get_runs_with_1m_history\", \"runs_in_store\": {HISTORY}, \"seed_secs\": {seeded:.1}, \"requests\": {}, \"p50_ms\": {:.2}, \"p99_ms\": {:.2}, \"max_ms\": {:.2}, \"target\": \"p99 <= 20\"}}",
        all.len(),
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.last().unwrap()
    );
    overview_render(&client, &url).await;
    let _ = child.kill();
    let _ = child.wait();
}

/// The overview page rendered on the server for a logged-in browser, whole body read.
async fn overview_render(client: &reqwest::Client, url: &str) {
    // The login answers with the cookie and a redirect, which must not be followed.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = no_redirects
        .post(format!("{url}/api/session"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={}", release_server::KEY))
        .send()
        .await
        .unwrap();
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split(';').next())
        .expect("the login sets a session cookie")
        .to_string();
    let mut ms = Vec::new();
    for k in 0..60 {
        let t = Instant::now();
        let r = client
            .get(format!("{url}/"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let html = r.text().await.unwrap();
        assert!(
            html.contains("Runs per hour"),
            "the overview rendered its charts"
        );
        // The first renders warm the caches; they are not the steady state.
        if k >= 10 {
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{{\"figure\": \"overview_server_render_with_1m_runs\", \"renders\": {}, \"p50_ms\": {:.2}, \"p99_ms\": {:.2}, \"max_ms\": {:.2}, \"target\": \"<= 20\"}}",
        ms.len(),
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms.last().unwrap()
    );
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // BENCH_ONLY=history skips the throughput figure.
        if std::env::var("BENCH_ONLY").as_deref() != Ok("history") {
            runs_per_second().await;
        }
        runs_listing_with_a_million_runs().await;
    });
}
