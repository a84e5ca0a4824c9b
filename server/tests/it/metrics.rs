//! `/metrics`: a server that ran jobs is scraped and the text parsed with a Prometheus
//! text parser — runs by job and status, the schedule lag and run durations, skipped
//! slots by reason, last success, scheduler state and leadership, HTTP requests by route,
//! store latency. The key is needed (header or bearer token) unless `--metrics-public`.

use crate::support::{spawn, spawn_app, Opts, KEY};
use prometheus_parse::{Scrape, Value};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

async fn scrape(url: &str, auth: Option<(&str, String)>) -> (u16, String) {
    let mut req = crate::support::client().get(format!("{url}/metrics"));
    if let Some((name, value)) = auth {
        req = req.header(name, value);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text")
}

/// The value of `metric` with these labels (counters, gauges, a histogram's count).
fn value(s: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples
        .iter()
        .filter(|x| x.metric == metric)
        .find(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match &x.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(b) => b.iter().map(|c| c.count).fold(0.0, f64::max),
            Value::Summary(_) => f64::NAN,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_after_a_few_runs_parses_and_counts_what_happened() {
    let app = spawn_app().await;
    for job in [
        json!({ "id": "tick", "kind": "noop", "schedule": "* * * * * *" }),
        json!({ "id": "slow", "kind": "noop", "schedule": "* * * * * *", "overlap": "skip", "params": { "duration_ms": 1500 } }),
        json!({ "id": "boom", "kind": "noop", "schedule": "0 0 3 * * *", "params": { "fail": true } }),
    ] {
        assert_eq!(app.send(Method::POST, "/api/jobs", Some(job)).await.0, 201);
    }
    assert_eq!(
        app.send(Method::POST, "/api/jobs/boom/run?wait=true", None)
            .await
            .0,
        200
    );
    app.wait_for(
        "/api/runs?job=slow&status=skipped",
        Duration::from_secs(20),
        |b| b["runs"].as_array().is_some_and(|r| !r.is_empty()),
    )
    .await;
    app.wait_for(
        "/api/runs?job=tick&status=succeeded",
        Duration::from_secs(20),
        |b| b["runs"].as_array().is_some_and(|r| r.len() >= 2),
    )
    .await;

    assert_eq!(scrape(&app.url, None).await.0, 401, "the key is needed");
    let (s, by_bearer) = scrape(&app.url, Some(("authorization", format!("Bearer {KEY}")))).await;
    assert_eq!(s, 200, "a bearer token, as Prometheus sends it");
    let (s, text) = scrape(&app.url, Some(("x-dash-key", KEY.to_string()))).await;
    assert_eq!(s, 200);
    assert!(!by_bearer.is_empty());
    let m = parse(&text);
    let v = |metric: &str, labels: &[(&str, &str)]| {
        value(&m, metric, labels).unwrap_or_else(|| panic!("{metric} {labels:?} in:\n{text}"))
    };
    assert!(
        v(
            "echopilot_runs_total",
            &[("job", "tick"), ("status", "succeeded")]
        ) >= 2.0
    );
    assert_eq!(
        v(
            "echopilot_runs_total",
            &[("job", "boom"), ("status", "failed")]
        ),
        1.0
    );
    assert!(
        v("echopilot_schedule_lag_seconds_count", &[]) >= 2.0,
        "each slot's lag"
    );
    assert!(v("echopilot_run_duration_seconds_count", &[("job", "tick")]) >= 2.0);
    assert!(
        v(
            "echopilot_slots_skipped_total",
            &[("job", "slow"), ("reason", "overlap")]
        ) >= 1.0
    );
    let last = v(
        "echopilot_last_success_timestamp_seconds",
        &[("job", "tick")],
    );
    assert!(
        (last - chrono::Utc::now().timestamp() as f64).abs() < 60.0,
        "{last}"
    );
    assert_eq!(v("echopilot_scheduler_state", &[("state", "running")]), 1.0);
    assert_eq!(v("echopilot_scheduler_state", &[("state", "stalled")]), 0.0);
    assert_eq!(v("echopilot_leader", &[]), 1.0);
    assert!(
        v(
            "echopilot_http_requests_total",
            &[
                ("route", "/api/jobs"),
                ("method", "POST"),
                ("status", "201")
            ]
        ) >= 3.0
    );
    assert!(
        v(
            "echopilot_http_requests_total",
            &[("route", "/metrics"), ("method", "GET"), ("status", "401")]
        ) >= 1.0,
        "refused scrapes count too"
    );
    assert!(
        v(
            "echopilot_store_operation_seconds_count",
            &[("op", "claim_slot")]
        ) >= 2.0
    );
    assert!(
        v(
            "echopilot_store_operation_seconds_count",
            &[("op", "finish_run")]
        ) >= 2.0
    );
    // Routes are patterns, not paths: one series for every job's run.
    assert!(!text.contains("route=\"/api/jobs/boom/run\""), "{text}");
    assert!(text.contains("route=\"/api/jobs/{id}/run\""), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_metrics_public_a_scraper_needs_no_key_and_nothing_else_opens() {
    let server = spawn(Opts {
        args: vec!["--metrics-public".into()],
        ..Opts::default()
    })
    .unwrap();
    let (s, text) = scrape(&server.url, None).await;
    assert_eq!(s, 200);
    assert!(text.contains("echopilot_scheduler_state"));
    let status = crate::support::client()
        .get(format!("{}/api/jobs", server.url))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
}
