//! Alerts through the real server: a failing job and a missed slot (the server stopped
//! with SIGTERM and started again) each reach a webhook receiver that checks the signature
//! and an SMTP server on loopback exactly once, and their recoveries too; the API refuses
//! bad rules naming the field, keeps secrets write-only, guards channel URLs like HTTP
//! jobs; pings need no key, answer 404 for a wrong token and are rate-limited.

use crate::support::{cli, spawn, spawn_app, Opts, KEY};
use engine::alerts::send::signature;
use engine::testing::peers::{Mail, Received, Receiver, SmtpSink};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Waits until `pred` holds of what the peers got, up to `within`.
async fn wait_peers(what: &str, within: Duration, pred: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn events(got: &[Received]) -> Vec<(String, String)> {
    got.iter()
        .map(|r| {
            let b = r.json();
            (
                b["event"].as_str().unwrap_or_default().to_string(),
                b["subject"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn subjects(mail: &[Mail]) -> Vec<String> {
    mail.iter()
        .map(|m| m.subject().unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_and_a_missed_slot_reach_a_webhook_and_an_inbox_exactly_once_and_so_do_their_recoveries(
) {
    let hook = Receiver::start(&[]).await;
    let smtp = SmtpSink::start("ops", "hunter2").await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let opts = || Opts {
        data_dir: Some(data_dir.clone()),
        args: vec!["--http-allow".into(), "127.0.0.1".into()],
        ..Opts::default()
    };
    let mut server = spawn(opts()).expect("the server starts");
    let post = |path: &str, body: Value| {
        let (path, body, http) = (path.to_string(), body, &server);
        async move {
            let (s, b) = http.send(Method::POST, &path, Some(body)).await;
            assert!(s == 201 || s == 200 || s == 202, "{path}: {s} {b}");
            b
        }
    };
    post(
        "/api/alerts/channels",
        json!({ "id": "hook", "kind": "webhook", "url": hook.url, "secret": "whsec-1" }),
    )
    .await;
    post(
        "/api/alerts/channels",
        json!({ "id": "mail", "kind": "email", "host": "127.0.0.1", "port": smtp.port, "tls": "none",
                "from": "echopilot@example.com", "to": ["oncall@example.com"], "user": "ops", "password": "hunter2" }),
    )
    .await;
    post("/api/jobs", json!({ "id": "boom", "kind": "noop", "schedule": "0 0 3 * * *", "params": { "fail": true } })).await;
    post("/api/jobs", json!({ "id": "tick", "kind": "noop", "schedule": "*/2 * * * * *", "misfire": "skip", "overlap": "allow" })).await;
    post(
        "/api/alerts/rules",
        json!({ "id": "failures", "on": "failed", "jobs": ["boom"], "channels": ["hook", "mail"] }),
    )
    .await;
    post(
        "/api/alerts/rules",
        json!({ "id": "gaps", "on": "missed", "jobs": ["tick"], "channels": ["hook", "mail"] }),
    )
    .await;

    // A failure: one notice on each channel.
    let run = post("/api/jobs/boom/run?wait=true", json!({})).await;
    assert_eq!(run["run"]["status"], "failed");
    wait_peers("the failure's notices", Duration::from_secs(20), || {
        !hook.received().is_empty() && !smtp.mail().is_empty()
    })
    .await;
    let first = &hook.received()[0];
    assert_eq!(
        first.header("x-echopilot-signature"),
        Some(signature("whsec-1", &first.body)),
        "signed with the channel's secret"
    );
    assert!(first
        .header("x-echopilot-timestamp")
        .is_some_and(|t| t.parse::<i64>().is_ok()));
    let body = first.json();
    assert_eq!(
        (body["event"].as_str(), body["job"].as_str()),
        (Some("opened"), Some("boom"))
    );
    assert_eq!(body["run"], run["run"]["id"]);
    assert!(body["incident"].as_i64().is_some(), "{body}");
    let mail = &smtp.mail()[0];
    assert_eq!(mail.to, ["oncall@example.com"]);
    assert!(
        mail.subject().unwrap_or_default().contains("job boom"),
        "{:?}",
        mail.subject()
    );
    assert!(
        mail.data.contains("asked to fail"),
        "the mail names the error:\n{}",
        mail.data
    );
    println!(
        "--- webhook body as received ---\n{}\n--- mail as received ---\n{}",
        String::from_utf8_lossy(&first.body),
        mail.data
    );

    // Its recovery: one notice each.
    let ok = post(
        "/api/jobs/boom/run?wait=true",
        json!({ "params": { "fail": false } }),
    )
    .await;
    assert_eq!(ok["run"]["status"], "succeeded");
    wait_peers("the recovery's notices", Duration::from_secs(20), || {
        hook.received().len() >= 2 && smtp.mail().len() >= 2
    })
    .await;

    // A missed slot: the server stopped across several of tick's slots.
    let ran = server
        .wait_for(
            "/api/runs?job=tick&status=succeeded",
            Duration::from_secs(20),
            |b| b["runs"].as_array().is_some_and(|r| !r.is_empty()),
        )
        .await;
    assert!(!ran["runs"].as_array().unwrap().is_empty());
    server.signal(libc::SIGTERM);
    server.wait_exit(Duration::from_secs(20));
    tokio::time::sleep(Duration::from_secs(5)).await; // the downtime under test
    let server = spawn(opts()).expect("the server starts again");
    wait_peers(
        "the missed slot's notices, then its recovery's",
        Duration::from_secs(30),
        || hook.received().len() >= 4 && smtp.mail().len() >= 4,
    )
    .await;
    let (_, incidents) = server
        .send(Method::GET, "/api/alerts/incidents", None)
        .await;
    let incidents = incidents["incidents"].as_array().unwrap().clone();
    assert_eq!(incidents.len(), 2, "{incidents:#?}");
    for i in &incidents {
        assert!(i["closed_at"].is_string(), "{i}");
        let d = i["deliveries"].as_array().unwrap();
        assert_eq!(d.len(), 4, "opened and recovered, on two channels: {i}");
        assert!(
            d.iter()
                .all(|d| d["status"] == "sent" && d["attempts"] == 1),
            "{i}"
        );
    }
    // Exactly once: two more of the leader's passes add nothing.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        events(&hook.received()),
        [
            ("opened".into(), "job:boom".into()),
            ("recovered".into(), "job:boom".into()),
            ("opened".into(), "job:tick".into()),
            ("recovered".into(), "job:tick".into()),
        ]
    );
    let subjects = subjects(&smtp.mail());
    assert_eq!(subjects.len(), 4, "{subjects:?}");
    assert!(subjects[2].contains("missed its slot"), "{subjects:?}");
    assert!(subjects[3].contains("recovered"), "{subjects:?}");
    let missed = &hook.received()[2];
    assert_eq!(
        missed.header("x-echopilot-signature"),
        Some(signature("whsec-1", &missed.body))
    );
    println!(
        "--- missed-slot webhook body ---\n{}",
        String::from_utf8_lossy(&missed.body)
    );

    // The CLI reads the same.
    let out = cli(&["alerts", "incidents"], &server.url, KEY);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["incidents"].as_array().unwrap().len(), 2);
    let out = cli(&["alerts", "channels", "test", "hook"], &server.url, KEY);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(events(&hook.received()).last().unwrap().0, "test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alert_api_refuses_bad_input_masks_secrets_and_guards_channel_urls() {
    let app = spawn_app().await;
    let (s, b) = app
        .send(Method::POST, "/api/alerts/channels", Some(json!({ "id": "hook", "kind": "webhook", "url": "http://127.0.0.1:9/x", "secret": "topsecret" })))
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["secret"], "********");
    let (_, listed) = app.send(Method::GET, "/api/alerts/channels", None).await;
    assert!(!listed.to_string().contains("topsecret"), "{listed}");
    // This server allows no private hosts: the guard refuses the loopback address.
    let (s, tested) = app
        .send(Method::POST, "/api/alerts/channels/hook/test", None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(tested["ok"], false);
    assert!(
        tested["error"]
            .as_str()
            .unwrap_or_default()
            .contains("loopback"),
        "{tested}"
    );
    let (s, b) = app
        .send(
            Method::POST,
            "/api/alerts/channels",
            Some(json!({ "id": "meta", "kind": "slack", "url": "http://169.254.169.254/latest" })),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (_, tested) = app
        .send(Method::POST, "/api/alerts/channels/meta/test", None)
        .await;
    assert!(
        tested["error"]
            .as_str()
            .unwrap_or_default()
            .contains("link-local"),
        "{tested}"
    );

    assert_eq!(
        app.send(
            Method::POST,
            "/api/jobs",
            Some(json!({ "id": "j", "kind": "noop", "schedule": "0 0 3 * * *" }))
        )
        .await
        .0,
        201
    );
    for (rule, field) in [
        (
            json!({ "id": "r", "on": "consecutive_failures", "threshold": 0, "channels": ["hook"] }),
            "threshold",
        ),
        (
            json!({ "id": "r", "on": "failed", "jobs": ["ghost"], "channels": ["hook"] }),
            "jobs[0]",
        ),
        (
            json!({ "id": "r", "on": "failed", "channels": ["hook"], "colour": "red" }),
            "colour",
        ),
    ] {
        let (s, b) = app
            .send(Method::POST, "/api/alerts/rules", Some(rule.clone()))
            .await;
        assert_eq!(s, 422, "{rule}: {b}");
        assert!(
            b["error"]["field"] == field
                || b["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(field),
            "{rule}: {b}"
        );
    }
    let (_, rules) = app.send(Method::GET, "/api/alerts/rules", None).await;
    assert_eq!(rules, json!([]), "nothing half-written");
    let (s, _) = app.send(Method::GET, "/api/alerts/rules/nope", None).await;
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_need_no_key_a_wrong_token_is_404_and_a_flood_is_throttled() {
    let app = spawn_app().await;
    let (s, check) = app
        .send(
            Method::POST,
            "/api/checks",
            Some(
                json!({ "id": "backup", "name": "nightly backup", "period": "1h", "grace": "10m" }),
            ),
        )
        .await;
    assert_eq!(s, 201, "{check}");
    let url = check["ping_url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&format!("{}/ping/", app.url)), "{url}");
    assert_eq!(check["state"], "new");
    let anon = reqwest::Client::new();
    assert_eq!(
        anon.get(&url).send().await.unwrap().status(),
        200,
        "no key needed"
    );
    let fail = anon
        .post(format!("{url}/fail"))
        .body("disk full")
        .send()
        .await
        .unwrap();
    assert_eq!(fail.status(), 200);
    assert_eq!(
        anon.post(format!("{url}/other"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let wrong = anon
        .get(format!("{}/ping/0123456789abcdef0123456789abcdef", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 404);
    // Nothing else is reachable without the key.
    assert_eq!(
        anon.get(format!("{}/api/checks", app.url))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let (_, shown) = app.send(Method::GET, "/api/checks/backup", None).await;
    assert_eq!(
        shown["state"], "down",
        "its last ping said it failed: {shown}"
    );
    let pings = shown["pings"].as_array().unwrap();
    assert_eq!(pings.len(), 2);
    assert_eq!(
        (pings[0]["kind"].as_str(), pings[0]["body"].as_str()),
        (Some("fail"), Some("disk full"))
    );
    // A flood from one address is cut off.
    let mut statuses = Vec::new();
    for _ in 0..130 {
        statuses.push(anon.get(&url).send().await.unwrap().status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    let (s, _) = app
        .send(
            Method::POST,
            "/api/checks",
            Some(json!({ "id": "bad", "period": "1h" })),
        )
        .await;
    assert_eq!(s, 422, "grace is required");
    let out = cli(&["checks", "list"], &app.url, KEY);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("nightly backup"));
}
