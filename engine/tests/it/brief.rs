//! The CEO brief against a small OpenAI-compatible server on loopback, written for these
//! tests: success (usage recorded), timeout, malformed answer and HTTP 500 (template),
//! and a webhook that must receive each brief once.

use engine::testing::{Options, TestEngine};
use engine::{JobSpec, RunStatus, Trigger};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Seen {
    chat_bodies: Mutex<Vec<serde_json::Value>>,
    hooks: Mutex<Vec<serde_json::Value>>,
    auth: Mutex<Vec<String>>,
    requests: AtomicUsize,
}

/// Serves `/<mode>/chat/completions` (mode: ok, slow, bad, err) and `/hook`.
async fn fake_server(seen: Arc<Seen>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let Some((head, body)) = crate::support::read_request(&mut sock).await else {
                    return;
                };
                seen.requests.fetch_add(1, Ordering::SeqCst);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                if let Some(a) = head
                    .lines()
                    .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                {
                    seen.auth.lock().unwrap().push(a.to_string());
                }
                let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let (status, reply) = match path.as_str() {
                    "/hook" => {
                        seen.hooks.lock().unwrap().push(json);
                        ("200 OK", "ok".to_string())
                    }
                    "/ok/chat/completions" => {
                        seen.chat_bodies.lock().unwrap().push(json);
                        ("200 OK", serde_json::json!({ "choices": [{ "message": { "role": "assistant", "content": "# Brief\n\nAll is well." } }], "usage": { "prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150 } }).to_string())
                    }
                    "/slow/chat/completions" => {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        ("200 OK", "{}".to_string())
                    }
                    "/bad/chat/completions" => ("200 OK", "this is not json".to_string()),
                    _ => (
                        "500 Internal Server Error",
                        "{\"error\": \"boom\"}".to_string(),
                    ),
                };
                let resp = format!("HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}", reply.len());
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

/// The model's key, as the server's configuration gives it.
const API_KEY: &str = "sk-test-0f9e";

/// An engine that may reach the fake server on loopback, with the model's key configured.
async fn open(dir: &std::path::Path) -> TestEngine {
    let mut options = Options::new(dir).allow(&["127.0.0.1"]);
    options.config.llm.api_key = Some(API_KEY.into());
    options.open().await
}

async fn brief(engine: &TestEngine, params: serde_json::Value) -> engine::Run {
    engine
        .run_job(
            "brief",
            "ceo-brief",
            params,
            engine::model::DEFAULT_TIMEOUT_SECS,
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_brief_uses_the_model_when_it_answers_and_the_template_otherwise() {
    let seen = Arc::new(Seen::default());
    let base = fake_server(seen.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).await;
    // Facts to write from: a finance snapshot of the sample ledger.
    engine
        .create_job(JobSpec {
            id: Some("finance-metrics".into()),
            kind: Some("finance-metrics".into()),
            schedule: Some("@every 1h".into()),
            params: Some(serde_json::json!({ "ledger_path": "../examples/ledger.csv" })),
            ..Default::default()
        })
        .await
        .unwrap();
    let f = engine
        .run_now("finance-metrics", Trigger::Api)
        .await
        .unwrap();
    assert_eq!(
        engine
            .wait_run(f.id, Duration::from_secs(20))
            .await
            .unwrap()
            .status,
        RunStatus::Succeeded
    );

    let run = brief(&engine, serde_json::json!({ "llm_base_url": format!("{base}/ok"), "llm_model": "test-model", "webhook_url": format!("{base}/hook") })).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(run.output["source"], "llm");
    assert_eq!(run.output["markdown"], "# Brief\n\nAll is well.");
    assert_eq!(run.output["usage"]["total_tokens"], 150);
    let sent = seen.chat_bodies.lock().unwrap()[0].clone();
    assert_eq!(sent["model"], "test-model");
    assert_eq!(
        seen.auth.lock().unwrap()[0].to_ascii_lowercase(),
        format!("authorization: bearer {API_KEY}")
    );
    assert!(
        !run.output.to_string().contains(API_KEY),
        "the key is never printed"
    );
    let facts: serde_json::Value =
        serde_json::from_str(sent["messages"][1]["content"].as_str().unwrap()).unwrap();
    assert_eq!(
        facts["finance"]["report"]["months"]
            .as_array()
            .unwrap()
            .len(),
        24,
        "the facts went as JSON"
    );
    let hooks = seen.hooks.lock().unwrap().clone();
    assert_eq!(
        hooks,
        vec![serde_json::json!({ "text": "# Brief\n\nAll is well." })]
    );

    for (mode, why) in [("slow", "timed out"), ("bad", "not JSON"), ("err", "500")] {
        let run = brief(&engine, serde_json::json!({ "llm_base_url": format!("{base}/{mode}"), "llm_model": "m", "llm_timeout_secs": 1 })).await;
        assert_eq!(run.status, RunStatus::Succeeded, "{mode}: {run:?}");
        assert_eq!(run.output["source"], "template", "{mode}");
        assert!(
            run.output["llm_error"].as_str().unwrap().contains(why),
            "{mode}: {}",
            run.output["llm_error"]
        );
        let md = run.output["markdown"].as_str().unwrap();
        assert!(md.starts_with("# CEO brief — "), "{md}");
        assert!(
            md.contains("## Finance") && md.contains("| Revenue | $"),
            "{md}"
        );
    }
    // No configuration at all: the template, and no request made.
    let before = seen.requests.load(Ordering::SeqCst);
    let run = brief(&engine, serde_json::json!({})).await;
    assert_eq!(run.output["source"], "template");
    assert_eq!(seen.requests.load(Ordering::SeqCst), before);

    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_brief_is_not_posted_twice() {
    let seen = Arc::new(Seen::default());
    let base = fake_server(seen.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).await;
    engine
        .create_job(JobSpec {
            id: Some("brief".into()),
            kind: Some("ceo-brief".into()),
            schedule: Some("@every 24h".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let job = engine.get_job("brief").unwrap();
    // Two attempts of one chain (same first run), as a retry would be.
    for attempt in 1..=2 {
        let ctx = engine::JobContext {
            run_id: 100 + attempt,
            job: job.clone(),
            attempt: attempt as u32,
            scheduled_at: None,
            first_run: 100,
            cancel: CancellationToken::new(),
            log: engine::RunLog::default(),
            engine: engine.engine.clone(),
        };
        let out = engine::automations::brief::deliver(&ctx, &format!("{base}/hook"), "# Brief")
            .await
            .unwrap();
        assert_eq!(out["sent"], attempt == 1, "{out}");
    }
    assert_eq!(seen.hooks.lock().unwrap().len(), 1);
    engine.close().await;
}
