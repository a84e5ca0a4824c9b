//! HTTP jobs against a server on loopback (RELIABILITY 26): refused unless allowed —
//! directly, by DNS name, as an IPv4-mapped address, after a redirect — and, once
//! allowed, bodies capped and secret headers masked.

mod common;

use engine::{Engine, JobSpec, Run, RunStatus, Trigger};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A ledger as an HTTP JSON source serves it: two months of a tiny business.
const LEDGER: &str = r#"[
  {"date": "2026-01-05", "amount": "1200.50", "currency": "USD", "category": "subscription", "type": "revenue", "description": "plans"},
  {"date": "2026-01-09", "amount": "300", "currency": "USD", "category": "services", "type": "revenue"},
  {"date": "2026-01-20", "amount": "900.25", "currency": "USD", "category": "payroll", "type": "expense"},
  {"date": "2026-02-05", "amount": "1500", "currency": "USD", "category": "subscription", "type": "revenue"},
  {"date": "2026-02-21", "amount": "2000", "currency": "USD", "category": "payroll", "type": "expense"}
]"#;
/// Row 2 has a date that is not one, row 3 an amount that is not a number.
const BAD_LEDGER: &str = r#"[
  {"date": "2026-01-05", "amount": "10", "currency": "USD", "category": "subscription", "type": "revenue"},
  {"date": "2026-13-40", "amount": "10", "currency": "USD", "category": "subscription", "type": "revenue"},
  {"date": "2026-01-07", "amount": "ten", "currency": "USD", "category": "subscription", "type": "revenue"}
]"#;

/// Serves `/ok` (200 "hello"), `/ledger.json` and `/ledger-bad.json`, `/big` (2 MiB), `/teapot` (418) and `/to-mapped`
/// (302 to the same server through an IPv4-mapped IPv6 address). Counts requests.
async fn server(hits: Arc<AtomicUsize>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let hits = hits.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                hits.fetch_add(1, Ordering::SeqCst);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (status, extra, body) = match path.as_str() {
                    "/ok" => ("200 OK", String::new(), b"hello".to_vec()),
                    "/big" => ("200 OK", String::new(), vec![b'x'; 2 * 1024 * 1024]),
                    "/to-mapped" => (
                        "302 Found",
                        format!("location: http://[::ffff:127.0.0.1]:{port}/ok\r\n"),
                        Vec::new(),
                    ),
                    "/ledger.json" => ("200 OK", String::new(), LEDGER.as_bytes().to_vec()),
                    "/ledger-bad.json" => ("200 OK", String::new(), BAD_LEDGER.as_bytes().to_vec()),
                    _ => ("418 I'm a teapot", String::new(), b"no".to_vec()),
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&body).await;
            });
        }
    });
    port
}

async fn open(dir: &std::path::Path, allow: &[&str]) -> (Engine, CancellationToken, TaskTracker) {
    common::open(dir, allow, false).await
}

async fn fetch(engine: &Engine, params: serde_json::Value) -> Run {
    let _ = engine.delete_job("get").await;
    engine
        .create_job(JobSpec {
            id: Some("get".into()),
            kind: Some("http".into()),
            schedule: Some("@every 24h".into()),
            timeout_secs: Some(10),
            params: Some(params),
            ..Default::default()
        })
        .await
        .unwrap();
    let run = engine.run_now("get", Trigger::Api).await.unwrap();
    engine
        .wait_run(run.id, Duration::from_secs(20))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_is_refused_directly_by_name_mapped_and_unspecified() {
    let hits = Arc::new(AtomicUsize::new(0));
    let port = server(hits.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, ..) = open(dir.path(), &[]).await;
    for (url, why) in [
        (format!("http://127.0.0.1:{port}/ok"), "loopback"),
        (format!("http://localhost:{port}/ok"), "loopback"),
        (
            format!("http://[::ffff:127.0.0.1]:{port}/ok"),
            "IPv4-mapped",
        ),
        (format!("http://0.0.0.0:{port}/ok"), "unspecified"),
    ] {
        let run = fetch(&engine, serde_json::json!({ "url": url })).await;
        assert_eq!(run.status, RunStatus::Failed, "{url}");
        assert!(
            run.error.as_deref().unwrap().contains(why),
            "{url}: {:?}",
            run.error
        );
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "no request left the guard");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_host_cannot_redirect_to_a_refused_address() {
    let hits = Arc::new(AtomicUsize::new(0));
    let port = server(hits.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, ..) = open(dir.path(), &["127.0.0.1"]).await;
    let run = fetch(
        &engine,
        serde_json::json!({ "url": format!("http://127.0.0.1:{port}/to-mapped") }),
    )
    .await;
    assert_eq!(run.status, RunStatus::Failed);
    assert!(
        run.error.as_deref().unwrap().contains("IPv4-mapped"),
        "{:?}",
        run.error
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "only the first hop was sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_requests_cap_the_body_mask_secrets_and_check_the_status() {
    let hits = Arc::new(AtomicUsize::new(0));
    let port = server(hits.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, ..) = open(dir.path(), &["127.0.0.1"]).await;
    let base = format!("http://127.0.0.1:{port}");
    let run = fetch(&engine, serde_json::json!({ "url": format!("{base}/ok"), "headers": { "Authorization": "Bearer s3cret", "Accept": "text/plain" } })).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(run.output["body"], "hello");
    assert_eq!(run.output["request_headers"]["Authorization"], "***");
    assert!(
        !run.output.to_string().contains("s3cret"),
        "the secret is not stored"
    );
    let run = fetch(&engine, serde_json::json!({ "url": format!("{base}/big") })).await;
    assert_eq!(run.output["body_bytes"], 1024 * 1024);
    assert_eq!(run.output["truncated"], true);
    let run = fetch(
        &engine,
        serde_json::json!({ "url": format!("{base}/teapot") }),
    )
    .await;
    assert_eq!(run.status, RunStatus::Failed);
    assert!(
        run.error
            .as_deref()
            .unwrap()
            .contains("answered 418, expected 2xx"),
        "{:?}",
        run.error
    );
    let run = fetch(
        &engine,
        serde_json::json!({ "url": format!("{base}/teapot"), "expected_status": 418 }),
    )
    .await;
    assert_eq!(run.status, RunStatus::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finance_metrics_reads_a_ledger_from_an_http_json_source() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, ..) = open(dir.path(), &[]).await;
    let port = server(Arc::new(AtomicUsize::new(0))).await;
    let finance = |path: &str| {
        let engine = engine.clone();
        let url = format!("http://127.0.0.1:{port}{path}");
        async move {
            let _ = engine.delete_job("fin").await;
            engine
                .create_job(JobSpec {
                    id: Some("fin".into()),
                    kind: Some("finance-metrics".into()),
                    schedule: Some("@every 24h".into()),
                    params: Some(serde_json::json!({ "source_url": url, "starting_cash": 10000 })),
                    ..Default::default()
                })
                .await
                .unwrap();
            let run = engine.run_now("fin", Trigger::Api).await.unwrap();
            engine
                .wait_run(run.id, Duration::from_secs(20))
                .await
                .unwrap()
        }
    };
    let run = finance("/ledger.json").await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let out = &run.output;
    assert_eq!(out["entries"], 5);
    assert!(out["source"].as_str().unwrap().ends_with("/ledger.json"));
    let jan = &out["months"][0];
    assert_eq!(jan["month"], "2026-01");
    assert_eq!(jan["revenue"], 1500.5);
    assert_eq!(jan["expenses"], 900.25);
    assert_eq!(jan["net"], 600.25);
    assert_eq!(jan["mrr"], 1200.5, "only subscription revenue is recurring");
    let feb = &out["months"][1];
    assert_eq!(feb["net"], -500.0);
    assert_eq!(feb["cash"], 10100.25, "starting cash plus both months' net");
    assert_eq!(out["totals"]["revenue"], 3000.5);

    let bad = finance("/ledger-bad.json").await;
    assert_eq!(bad.status, RunStatus::Failed);
    let error = bad.error.unwrap();
    assert!(error.contains("line 2: date"), "{error}");
    assert!(error.contains("line 3: amount"), "{error}");
    assert!(!error.contains("line 1"), "{error}");

    let not_json = finance("/ok").await;
    assert!(
        not_json
            .error
            .as_deref()
            .unwrap_or("")
            .contains("is not a JSON array of rows"),
        "{not_json:?}"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dns_answer_that_turns_to_loopback_after_the_check_is_never_connected_to() {
    let hits = Arc::new(AtomicUsize::new(0));
    let port = server(hits.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, ..) = open(dir.path(), &[]).await;
    let lookups = Arc::new(AtomicUsize::new(0));
    let counted = lookups.clone();
    // A rebinding name: the first answer is a public address, every later one loopback.
    engine.set_resolver(Arc::new(move |_host, port| {
        let ip = if counted.fetch_add(1, Ordering::SeqCst) == 0 {
            "192.0.2.10"
        } else {
            "127.0.0.1"
        };
        Ok(vec![std::net::SocketAddr::new(ip.parse().unwrap(), port)])
    }));
    let run = fetch(
        &engine,
        serde_json::json!({ "url": format!("http://rebind.example:{port}/ok") }),
    )
    .await;
    assert_ne!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(
        lookups.load(Ordering::SeqCst),
        1,
        "checked once, then pinned"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0, "loopback was never reached");

    // The same name checked again (a new run) now answers loopback and is refused.
    let again = fetch(
        &engine,
        serde_json::json!({ "url": format!("http://rebind.example:{port}/ok") }),
    )
    .await;
    assert!(
        again.error.as_deref().unwrap_or("").contains("loopback"),
        "{again:?}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}
