//! `make bench` figures for several nodes on PostgreSQL (issue: "Several nodes on
//! PostgreSQL"), against the database at `ECHOPILOT_TEST_DATABASE_URL` (scripts/bench.sh
//! starts a private one with PostgreSQL's default durability):
//!
//! 1. manual no-op runs recorded per second by 3 nodes on one PostgreSQL (target ≥ 5,000);
//! 2. lateness of an every-second job on the PostgreSQL leader, through the real release
//!    server (`--bench`), p99 (target ≤ 5 ms).
//!
//! Prints one JSON line per figure.

use engine::{Engine, EngineConfig, JobSpec, Kinds, Overlap, SystemClock, Trigger};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod release_server;

const RUNS: usize = 30_000;
const CALLERS: usize = 96;
const NODES: usize = 3;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn admin_url() -> String {
    std::env::var("ECHOPILOT_TEST_DATABASE_URL").expect(
        "ECHOPILOT_TEST_DATABASE_URL: run through scripts/with-postgres.sh (make bench does)",
    )
}

async fn database(name: &str) -> String {
    engine::testing::fresh_database(&admin_url(), name).await
}

async fn node(dir: &std::path::Path, url: &str, name: &str) -> Engine {
    let config = EngineConfig {
        node: name.into(),
        heartbeat: Duration::from_secs(60),
        database_url: Some(url.into()),
        lease_ttl: Duration::from_secs(10),
        follow_db_clock: true,
        ..EngineConfig::new(dir.join(name))
    };
    Engine::open(config, Kinds::builtin(), Arc::new(SystemClock))
        .await
        .expect("the node opens")
}

async fn runs_per_second() {
    let dir = tempfile::tempdir().unwrap();
    let url = database(&format!("bench_runs_{}", std::process::id())).await;
    let mut nodes = Vec::new();
    for i in 0..NODES {
        nodes.push(node(dir.path(), &url, &format!("b{i}")).await);
    }
    nodes[0]
        .create_job(JobSpec {
            id: Some("noop".into()),
            kind: Some("noop".into()),
            schedule: Some("@every 24h".into()),
            overlap: Some(Overlap::Allow),
            ..JobSpec::default()
        })
        .await
        .unwrap();
    // Every node knows the job before the clock starts.
    for n in &nodes {
        while n.get_job("noop").is_err() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let start = Instant::now();
    let mut callers = Vec::new();
    // Callers spread over the nodes, as API requests behind a load balancer would be.
    for c in 0..CALLERS {
        let engine = nodes[c % NODES].clone();
        callers.push(tokio::spawn(async move {
            let mut last = 0;
            for _ in 0..RUNS / CALLERS {
                last = engine.run_now("noop", Trigger::Api).await.unwrap().id;
            }
            last
        }));
    }
    let mut ids = Vec::new();
    for c in callers {
        ids.push(c.await.unwrap());
    }
    let pg = sqlx::PgPool::connect(&url).await.unwrap();
    loop {
        let open: i64 =
            sqlx::query_scalar("SELECT count(*) FROM runs WHERE status IN ('queued', 'running')")
                .fetch_one(&pg)
                .await
                .unwrap();
        if open == 0 {
            break;
        }
        // Not too often: the count is a query the database must also serve.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    let by_node: Vec<(String, i64)> = sqlx::query_as(
        "SELECT node, count(*) FROM runs WHERE status = 'succeeded' GROUP BY node ORDER BY node",
    )
    .fetch_all(&pg)
    .await
    .unwrap();
    let done: i64 = by_node.iter().map(|(_, n)| n).sum();
    assert_eq!(
        done as usize,
        RUNS / CALLERS * CALLERS,
        "every run succeeded once"
    );
    println!(
        "{{\"figure\": \"manual_noop_runs_per_sec_3_nodes_postgres\", \"runs\": {done}, \"seconds\": {secs:.3}, \"runs_per_sec\": {:.0}, \"by_node\": {:?}, \"target\": \">= 5000\"}}",
        done as f64 / secs,
        by_node.iter().map(|(_, n)| *n).collect::<Vec<_>>()
    );
    for n in nodes {
        n.shutdown(Duration::from_secs(5)).await;
    }
}

/// The release server, leading alone on PostgreSQL with the every-second bench job.
async fn lateness_on_the_leader() {
    let secs: u64 = std::env::var("BENCH_LATENESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let dir = tempfile::tempdir().unwrap();
    let url = database(&format!("bench_late_{}", std::process::id())).await;
    let data = dir.path().join("data").display().to_string();
    let (mut child, base) = release_server::start(
        &["--bench", "--data-dir", &data],
        &[("ECHOPILOT_DATABASE_URL", &url)],
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    // The first seconds warm up (connections, the first takeover).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let since = chrono::Utc::now().timestamp_millis();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let get = |path: String| {
        let request = client
            .get(format!("{base}{path}"))
            .header("X-Dash-Key", release_server::KEY);
        async move {
            request
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let ticks = get(format!("/api/bench/ticks?since_ms={since}")).await;
    let ticks = ticks.as_array().expect("ticks are a list").clone();
    let status = get("/api/automations/status".into()).await;
    assert_eq!(status["leader"], true, "the bench server leads: {status}");
    let mut late: Vec<f64> = ticks
        .iter()
        .map(|t| t["started_ms"].as_f64().unwrap() - t["scheduled_ms"].as_f64().unwrap())
        .collect();
    late.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert!(
        late.len() as u64 >= secs - 2,
        "{} ticks in {secs} s",
        late.len()
    );
    println!(
        "{{\"figure\": \"every_second_lateness_postgres_leader\", \"ticks\": {}, \"p50_ms\": {:.2}, \"p99_ms\": {:.2}, \"max_ms\": {:.2}, \"clock_offset_ms\": {}, \"target\": \"p99 <= 5\"}}",
        late.len(),
        percentile(&late, 0.5),
        percentile(&late, 0.99),
        late.last().unwrap(),
        status["nodes"][0]["clock_offset_ms"]
    );
    let _ = child.kill();
    let _ = child.wait();
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // BENCH_ONLY=lateness skips the throughput figure, BENCH_ONLY=runs the lateness.
        let only = std::env::var("BENCH_ONLY").unwrap_or_default();
        if only != "lateness" {
            runs_per_second().await;
        }
        if only != "runs" {
            lateness_on_the_leader().await;
        }
    });
}
