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

/// Serves `/ok` (200 "hello"), `/big` (2 MiB), `/teapot` (418) and `/to-mapped`
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
