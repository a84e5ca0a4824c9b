//! Outbound requests against servers on loopback (RELIABILITY 26, 27): HTTP jobs and the
//! built-ins' own calls are refused unless allowed — directly, by DNS name, as an
//! IPv4-mapped address, after a redirect — and, once allowed, bodies are capped, secrets
//! masked in what runs print, and never re-sent to another host on a redirect.

use engine::testing::{Options, TestEngine};
use engine::{JobSpec, Run, RunStatus, Trigger};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

async fn open(dir: &std::path::Path, allow: &[&str]) -> TestEngine {
    Options::new(dir).allow(allow).open().await
}

async fn fetch(engine: &TestEngine, params: serde_json::Value) -> Run {
    engine.run_job("get", "http", params, 10).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_is_refused_directly_by_name_mapped_and_unspecified() {
    let hits = Arc::new(AtomicUsize::new(0));
    let port = server(hits.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), &[]).await;
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
    let engine = open(dir.path(), &["127.0.0.1"]).await;
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
    let engine = open(dir.path(), &["127.0.0.1"]).await;
    let base = format!("http://127.0.0.1:{port}");
    let run = fetch(&engine, serde_json::json!({ "url": format!("{base}/ok"), "headers": { "Authorization": "Bearer s3cret", "Accept": "text/plain" } })).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(run.output["body"], "hello");
    assert_eq!(run.output["request_headers"]["Authorization"], "••••");
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
    let engine = open(dir.path(), &["127.0.0.1"]).await;
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
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dns_answer_that_turns_to_loopback_after_the_check_is_never_connected_to() {
    let hits = Arc::new(AtomicUsize::new(0));
    let port = server(hits.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), &[]).await;
    let lookups = Arc::new(AtomicUsize::new(0));
    let counted = lookups.clone();
    // A rebinding name: the first answer is a public address, every later one loopback.
    engine.outbound().set_resolver(Arc::new(move |_host, port| {
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

/// One request as a recording server saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    head: String,
    body: String,
}

/// A server that records every request whole and answers by path: `/hop-to/<port>`
/// redirects (307) to `/land` on that port, `/same` redirects (307) to `/land` here,
/// `/fail` answers 500, anything else 200 "ok".
async fn recorder(seen: Arc<std::sync::Mutex<Vec<Seen>>>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let Some((head, body)) = crate::support::read_request(&mut sock).await else {
                    return;
                };
                let body = String::from_utf8_lossy(&body).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                seen.lock().unwrap().push(Seen {
                    path: path.clone(),
                    head,
                    body,
                });
                let answer = if let Some(to) = path.strip_prefix("/hop-to/") {
                    format!("HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:{to}/land\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                } else if path == "/fail" {
                    "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        .to_string()
                } else if path == "/same" {
                    format!("HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:{port}/land\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                } else {
                    "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                        .to_string()
                };
                let _ = sock.write_all(answer.as_bytes()).await;
            });
        }
    });
    port
}

async fn run_job(engine: &TestEngine, id: &str, kind: &str, params: serde_json::Value) -> Run {
    engine.run_job(id, kind, params, 20).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_ins_reach_no_loopback_private_or_metadata_address() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let port = recorder(seen.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), &[]).await;
    // Names an attacker would aim at: the cloud metadata service and an intranet host.
    engine.outbound().set_resolver(Arc::new(|host, port| {
        let ip = match host {
            "metadata.test" => "169.254.169.254",
            "intranet.test" => "10.0.0.5",
            _ => "127.0.0.1",
        };
        Ok(vec![std::net::SocketAddr::new(ip.parse().unwrap(), port)])
    }));
    let local = format!("http://127.0.0.1:{port}");

    let heal = run_job(
        &engine,
        "heal",
        "self-heal",
        serde_json::json!({ "health_targets": [
            { "name": "local", "url": format!("{local}/health") },
            { "name": "metadata", "url": "http://metadata.test/latest/meta-data/" },
            { "name": "v6", "url": format!("http://[::1]:{port}/health") },
        ] }),
    )
    .await;
    let checks = heal.output["checks"].as_array().unwrap().clone();
    let message = |name: &str| {
        checks
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| {
                (
                    c["status"].clone(),
                    c["message"].as_str().unwrap_or("").to_string(),
                )
            })
            .unwrap()
    };
    for (name, why) in [
        ("http:local", "loopback"),
        ("http:metadata", "link-local"),
        ("http:v6", "loopback"),
    ] {
        let (status, text) = message(name);
        assert_eq!(status, "fail", "{name}: {text}");
        assert!(text.contains(why), "{name}: {text}");
    }

    let fin = run_job(
        &engine,
        "fin",
        "finance-metrics",
        serde_json::json!({ "source_url": format!("{local}/ledger.json") }),
    )
    .await;
    assert_eq!(fin.status, RunStatus::Failed);
    assert!(
        fin.error.as_deref().unwrap().contains("loopback"),
        "{fin:?}"
    );

    // The model's answer would become the brief: a loopback "model" must never be asked.
    let brief = run_job(
        &engine,
        "brief",
        "ceo-brief",
        serde_json::json!({
            "llm_base_url": format!("{local}/v1"), "llm_model": "m",
            "webhook_url": "http://intranet.test/hook",
        }),
    )
    .await;
    assert_eq!(brief.output["source"], "template");
    assert!(
        brief.output["llm_error"]
            .as_str()
            .unwrap()
            .contains("loopback"),
        "{}",
        brief.output
    );
    assert_eq!(brief.status, RunStatus::Failed, "the webhook was refused");
    assert!(
        brief.error.as_deref().unwrap().contains("private"),
        "{:?}",
        brief.error
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "no request left the guard: {:?}",
        seen.lock().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_base_url_aimed_elsewhere_by_a_fragment_or_query_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), &["127.0.0.1"]).await;
    for base in ["http://127.0.0.1:9/admin#", "http://127.0.0.1:9/x?path="] {
        let err = engine
            .create_job(JobSpec {
                id: Some("b".into()),
                kind: Some("ceo-brief".into()),
                schedule: Some("@every 24h".into()),
                params: Some(serde_json::json!({ "llm_base_url": base, "llm_model": "m" })),
                ..Default::default()
            })
            .await
            .unwrap_err();
        match err {
            engine::EngineError::Invalid(v) => {
                assert_eq!(v.field, "params.llm_base_url");
                assert!(v.message.contains("query or fragment"), "{}", v.message);
            }
            other => panic!("{base}: {other}"),
        }
    }
    assert_eq!(
        engine::automations::brief::completions_url("https://api.example.com/v1/")
            .unwrap()
            .as_str(),
        "https://api.example.com/v1/chat/completions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_and_the_body_are_not_resent_when_a_redirect_changes_host_or_port() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let a = recorder(seen.clone()).await;
    let b = recorder(seen.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), &["127.0.0.1"]).await;
    let params = |path: String| {
        serde_json::json!({
            "url": format!("http://127.0.0.1:{a}{path}"),
            "method": "POST",
            "headers": {
                "Authorization": "Bearer top-secret-1",
                "Cookie": "sid=top-secret-2",
                "X-Api-Key": "top-secret-3",
                "X-Trace": "kept",
            },
            "body": "payload top-secret-4",
        })
    };
    let run = run_job(&engine, "hop", "http", params(format!("/hop-to/{b}"))).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let landed = seen
        .lock()
        .unwrap()
        .iter()
        .find(|s| s.path == "/land")
        .cloned()
        .unwrap();
    for secret in [
        "top-secret-1",
        "top-secret-2",
        "top-secret-3",
        "top-secret-4",
    ] {
        assert!(
            !landed.head.contains(secret) && !landed.body.contains(secret),
            "{secret} reached the other port: {landed:?}"
        );
    }
    assert!(
        landed.head.to_ascii_lowercase().contains("x-trace: kept"),
        "{landed:?}"
    );

    // The same origin keeps them: the guard drops only what crosses to another host.
    seen.lock().unwrap().clear();
    let run = run_job(&engine, "same", "http", params("/same".into())).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let landed = seen
        .lock()
        .unwrap()
        .iter()
        .find(|s| s.path == "/land")
        .cloned()
        .unwrap();
    assert!(landed.head.contains("Bearer top-secret-1"), "{landed:?}");
    assert_eq!(landed.body, "payload top-secret-4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_params_are_write_only_and_scrubbed_from_what_runs_print() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let port = recorder(seen.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), &["127.0.0.1"]).await;
    let url = format!("http://bob:pw-9d2f@127.0.0.1:{port}/missing?token=tok-7c1a&page=1");
    let params = serde_json::json!({
        "url": url,
        "headers": { "x_api_key": "key-4b8e", "X-Signature": "sig-0a3c", "Accept": "*/*" },
        "expected_status": 204,
    });
    let run = run_job(&engine, "s", "http", params.clone()).await;
    assert_eq!(run.status, RunStatus::Failed, "200 is not the expected 204");
    let printed = format!(
        "{} {} {}",
        run.output,
        run.error.clone().unwrap_or_default(),
        engine.follow_log(run.id).await.unwrap().so_far
    );
    for secret in ["pw-9d2f", "tok-7c1a", "key-4b8e", "sig-0a3c"] {
        assert!(!printed.contains(secret), "{secret} printed: {printed}");
    }
    assert!(printed.contains("page=1"), "{printed}");

    // Reads show masks; a job sent back as read keeps its secrets (the request proves it).
    let shown = engine.get_job("s").unwrap();
    let text = shown.params.to_string();
    for secret in ["pw-9d2f", "tok-7c1a", "key-4b8e", "sig-0a3c"] {
        assert!(!text.contains(secret), "{secret} readable: {text}");
    }
    assert!(engine
        .list_jobs()
        .iter()
        .all(|j| !j.params.to_string().contains("key-4b8e")));
    engine
        .update_job(
            "s",
            JobSpec {
                params: Some(shown.params.clone()),
                ..Default::default()
            },
            true,
        )
        .await
        .unwrap();
    seen.lock().unwrap().clear();
    let run = engine.run_now("s", Trigger::Api).await.unwrap();
    engine
        .wait_run(run.id, Duration::from_secs(20))
        .await
        .unwrap();
    let sent = seen.lock().unwrap()[0].clone();
    assert!(sent.path.contains("token=tok-7c1a"), "{sent:?}");
    assert!(
        sent.head.contains("key-4b8e") && sent.head.contains("sig-0a3c"),
        "{sent:?}"
    );
    assert!(
        sent.head
            .to_ascii_lowercase()
            .contains("authorization: basic"),
        "the URL's credentials were kept: {sent:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_path_outside_the_ledger_directories_is_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), &[]).await;
    for path in ["/etc/shadow", "/etc/passwd", "../../../../../etc/passwd"] {
        let run = run_job(
            &engine,
            "fin",
            "finance-metrics",
            serde_json::json!({ "ledger_path": path }),
        )
        .await;
        assert_eq!(run.status, RunStatus::Failed);
        let error = run.error.unwrap();
        assert!(
            error.contains("outside the ledger directories"),
            "{path}: {error}"
        );
        assert!(
            !error.contains("line"),
            "nothing of the file shows: {error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newlines_in_a_target_name_cannot_forge_lines_in_the_run_log() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), &[]).await;
    let forged = "x\n12:00:00.000 run 1 of self-heal succeeded\r\u{1b}[2K";
    let run = run_job(
        &engine,
        "heal",
        "self-heal",
        serde_json::json!({ "health_targets": [{ "name": forged, "url": "http://127.0.0.1:1/" }] }),
    )
    .await;
    assert_eq!(run.status, RunStatus::Failed);
    let log = engine.follow_log(run.id).await.unwrap().so_far;
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "a start line and an end line only: {log:?}");
    assert!(
        lines[0].contains("started") && lines[1].contains("failed"),
        "{log:?}"
    );
    assert!(
        lines[1].contains("x\\n12:00:00.000 run 1 of self-heal succeeded\\r\\u{1b}"),
        "{log:?}"
    );
}

/// The value of header `name` (lowercase) in a request's head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_get_one_idempotency_key_per_slot_or_run_kept_through_retries() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let port = recorder(seen.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let slot = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 3, 2, 9, 1, 0).unwrap();
    let clock = engine::ManualClock::new(slot - chrono::Duration::seconds(30));
    let t = Options::new(dir.path())
        .allow(&["127.0.0.1"])
        .clock(Arc::new(clock.clone()))
        .open()
        .await;
    // A scheduled run that fails once and is retried at once.
    t.engine
        .create_job(JobSpec {
            id: Some("hook".into()),
            kind: Some("http".into()),
            schedule: Some("0 * * * * *".into()),
            retries: Some(1),
            retry_backoff_secs: Some(0),
            params: Some(serde_json::json!({ "url": format!("http://127.0.0.1:{port}/fail"), "method": "POST" })),
            ..JobSpec::default()
        })
        .await
        .unwrap();
    clock.set(slot + chrono::Duration::milliseconds(5));
    t.engine
        .fire_due(slot + chrono::Duration::milliseconds(5))
        .await;
    t.wait_until("both attempts", Duration::from_secs(10), || async {
        t.runs_of("hook")
            .await
            .iter()
            .filter(|r| r.status == RunStatus::Failed)
            .count()
            == 2
    })
    .await;
    let heads: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.head.clone())
        .collect();
    assert_eq!(heads.len(), 2, "one request per attempt");
    for head in &heads {
        assert_eq!(
            header(head, "idempotency-key"),
            Some("hook:2026-03-02T09:01:00Z"),
            "{head}"
        );
        assert_eq!(
            header(head, "x-echopilot-scheduled-at"),
            Some("2026-03-02T09:01:00Z"),
            "{head}"
        );
    }
    // A manual run: keyed by its run id, no slot.
    seen.lock().unwrap().clear();
    let run = t
        .run_job(
            "manual",
            "http",
            serde_json::json!({ "url": format!("http://127.0.0.1:{port}/ok") }),
            10,
        )
        .await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    let head = seen.lock().unwrap()[0].head.clone();
    assert_eq!(
        header(&head, "idempotency-key"),
        Some(format!("manual:{}", run.id).as_str())
    );
    assert_eq!(header(&head, "x-echopilot-scheduled-at"), None);
    // A job's own key wins.
    seen.lock().unwrap().clear();
    t.run_job(
        "own",
        "http",
        serde_json::json!({ "url": format!("http://127.0.0.1:{port}/ok"), "headers": { "Idempotency-Key": "mine" } }),
        10,
    )
    .await;
    let head = seen.lock().unwrap()[0].head.clone();
    assert_eq!(header(&head, "idempotency-key"), Some("mine"));
    assert_eq!(head.matches("dempotency-key").count(), 1, "{head}");
    t.close().await;
}
