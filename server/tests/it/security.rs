//! The outside probe's findings, each performed as the attack against a real server on
//! loopback (RELIABILITY 19-28): stored XSS, readable secrets, a private data dir, key
//! guessing through the throttle, DNS rebinding, slow clients, audit gaps, secrets in the
//! server's environment, unbounded inputs.

use crate::support::{spawn, spawn_app, Opts, KEY};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Markup that runs script wherever it is not escaped.
const HOSTILE: &str = r#"</textarea><script>alert(1)</script><img src=x onerror=alert(2)>"'&"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_escapes_hostile_text_in_every_field() {
    let app = spawn(Opts::env(&[("ECHOPILOT_ALLOW_SHELL", "true")])).unwrap();
    let (s, job) = app.send(reqwest::Method::POST,
        "/api/jobs",
        Some(serde_json::json!({
            "id": "xss", "name": HOSTILE, "kind": "shell", "schedule": "@every 24h",
            "params": { "argv": ["sh", "-c", "printf '%s' \"$X\"; printf '%s' \"$X\" >&2; exit 3"],
                        "env": { "X": HOSTILE }, "note": HOSTILE },
        })),
    )
    .await;
    assert_eq!(s, 201, "{job}");
    let (_, started) = app
        .send(reqwest::Method::POST, "/api/jobs/xss/run?wait=true", None)
        .await;
    let run_id = started["run"]["id"].as_i64().unwrap();
    assert_eq!(started["run"]["status"], "failed", "{started}");
    // A brief whose facts hold the hostile failure.
    app.send(reqwest::Method::POST, "/api/exec/brief?wait=true", None)
        .await;
    let cookie = app.session().await;
    for path in [
        "/".to_string(),
        "/jobs".into(),
        "/jobs/xss".into(),
        "/jobs/new".into(),
        "/runs".into(),
        "/runs?job=xss".into(),
        format!("/runs/{run_id}"),
        "/briefs".into(),
        "/finance".into(),
        "/metrics".into(),
        "/audit".into(),
        "/nodes".into(),
    ] {
        let (status, html) = app.page(&cookie, &path).await;
        assert_eq!(status, 200, "{path}");
        for raw in [
            "<script>alert(1)",
            "<img src=x onerror",
            "</textarea><script>",
        ] {
            assert!(!html.contains(raw), "{path} renders {raw:?} unescaped");
        }
    }
    // The job form shows the params escaped, yet whole: the text survives a round trip.
    let (_, form) = app.page(&cookie, "/jobs/xss").await;
    assert!(
        form.contains("&lt;/textarea&gt;&lt;script&gt;alert(1)"),
        "the params are in the form, escaped"
    );
}

/// A loopback server that records each request's head; answers 200 "ok".
fn recorder() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut buf = vec![0u8; 16384];
            let n = stream.read(&mut buf).unwrap_or(0);
            kept.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..n]).to_string());
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_params_are_write_only_in_the_api_and_the_dashboard_and_kept_when_sent_back() {
    let (port, seen) = recorder();
    let app = spawn(Opts::env(&[("ECHOPILOT_HTTP_ALLOW", "127.0.0.1")])).unwrap();
    let secrets = ["Bearer tok-5e1d", "pw-77aa", "qs-93bc", "hook-k3y"];
    let (s, created) = app
        .send(
            reqwest::Method::POST,
            "/api/jobs",
            Some(serde_json::json!({
                "id": "api", "kind": "http", "schedule": "@every 24h",
                "params": {
                    "url": format!("http://127.0.0.1:{port}/x?access_token=qs-93bc"),
                    "headers": { "Authorization": "Bearer tok-5e1d" },
                    "password": "pw-77aa",
                    "webhook_url": "https://hooks.example.com/hook-k3y",
                },
            })),
        )
        .await;
    assert_eq!(s, 201);
    let (_, one) = app.send(reqwest::Method::GET, "/api/jobs/api", None).await;
    let (_, all) = app.send(reqwest::Method::GET, "/api/jobs", None).await;
    let cookie = app.session().await;
    let (_, page) = app.page(&cookie, "/jobs/api").await;
    for shown in [created.to_string(), one.to_string(), all.to_string(), page] {
        for secret in secrets {
            assert!(!shown.contains(secret), "{secret} is readable: {shown}");
        }
    }
    assert_eq!(one["params"]["password"], "••••");
    assert_eq!(one["params"]["headers"]["Authorization"], "••••");

    // The job as read, sent back whole: the request still carries the real secrets.
    let (s, _) = app
        .send(reqwest::Method::PUT, "/api/jobs/api", Some(one.clone()))
        .await;
    assert_eq!(s, 200);
    let (_, ran) = app
        .send(reqwest::Method::POST, "/api/jobs/api/run?wait=true", None)
        .await;
    assert_eq!(ran["run"]["status"], "succeeded", "{ran}");
    let head = seen.lock().unwrap().last().cloned().unwrap();
    assert!(head.contains("access_token=qs-93bc"), "{head}");
    assert!(head.contains("Bearer tok-5e1d"), "{head}");
    assert!(
        !ran.to_string().contains("qs-93bc"),
        "the run's output masks it: {ran}"
    );
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every file under `dir` with a mode other than `file_mode`, and every directory other
/// than `dir_mode`.
fn loose(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let m = mode(&path);
        if path.is_dir() {
            if m != 0o700 {
                out.push(format!("{} {m:o}", path.display()));
            }
            out.extend(loose(&path));
        } else if m != 0o600 {
            out.push(format!("{} {m:o}", path.display()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_dir_is_0700_and_every_file_in_it_0600_even_when_left_looser() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let opts = Opts {
        data_dir: Some(data.clone()),
        ..Opts::default()
    };
    let mut app = spawn(opts.clone()).unwrap();
    app.send(reqwest::Method::POST, "/api/self-heal?wait=true", None)
        .await;
    assert_eq!(mode(&data), 0o700);
    assert!(data.join("echopilot.db").exists() && data.join("logs").is_dir());
    assert_eq!(loose(&data), Vec::<String>::new());
    app.signal(libc::SIGTERM);
    app.wait_exit(Duration::from_secs(20));

    // An older data dir, world-readable: tightened at the next start.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        data.join("echopilot.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let app = spawn(opts).unwrap();
    app.send(reqwest::Method::POST, "/api/self-heal?wait=true", None)
        .await;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(loose(&data), Vec::<String>::new());
}

/// A client bound to `local` (any 127.x.y.z reaches the server from this machine).
fn client_from(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local.parse::<std::net::IpAddr>().unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_client_learns_nothing_and_all_of_loopback_is_one_client() {
    let app = spawn_app().await;
    // A browser logged in before the guessing starts keeps working throughout.
    let cookie = app.session().await;
    let guess = |from: &'static str, key: &'static str| {
        let url = format!("{}/api/jobs", app.url);
        async move {
            let r = client_from(from)
                .get(url)
                .header("X-Dash-Key", key)
                .send()
                .await
                .unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (r.status().as_u16(), retry)
        }
    };
    for _ in 0..10 {
        assert_eq!(guess("127.0.0.1", "wrong-key-000000").await.0, 401);
    }
    let (status, retry) = guess("127.0.0.1", "wrong-key-000000").await;
    assert_eq!(status, 429);
    let secs: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&secs), "{secs}");
    // While throttled the key is not even compared: the right one is refused the same way.
    assert_eq!(guess("127.0.0.1", KEY).await.0, 429);
    // Another loopback address is the same client, not a fresh bucket.
    assert_eq!(guess("127.0.0.2", KEY).await.0, 429);
    assert_eq!(guess("127.0.0.3", "wrong-key-000000").await.0, 429);
    let login = client_from("127.0.0.4")
        .post(format!("{}/api/session", app.url))
        .json(&serde_json::json!({ "key": KEY }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 429, "logins are throttled the same way");
    let (status, _) = app.page(&cookie, "/api/automations/status").await;
    assert_eq!(status, 200, "the operator's session is not locked out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_keys_are_refused_at_start_up() {
    let (status, stderr) = spawn(Opts::env(&[("DASHBOARD_KEY", "a")]))
        .map(|_| ())
        .unwrap_err();
    assert!(!status.success());
    assert!(stderr.contains("at least 16"), "{stderr}");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("dashboard.key"), "short-key\n").unwrap();
    let (_, stderr) = spawn(Opts {
        data_dir: Some(data.clone()),
        unset: vec!["DASHBOARD_KEY".into()],
        ..Opts::default()
    })
    .map(|_| ())
    .unwrap_err();
    assert!(
        stderr.contains("is 9 characters; use at least 16"),
        "{stderr}"
    );
}

/// Sends a raw request with the given Host header; answers the status line.
fn raw_status(url: &str, host: &str, extra: &str) -> String {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /api/automations/status HTTP/1.1\r\nHost: {host}\r\nX-Dash-Key: {KEY}\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.lines().next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_host_header_is_refused_before_any_credential_is_looked_at() {
    let app = spawn(Opts::env(&[(
        "ECHOPILOT_ALLOWED_HOSTS",
        "dash.example.com",
    )]))
    .unwrap();
    let port = app.url.rsplit(':').next().unwrap().to_string();
    // A rebinding name: the page's origin matches its own Host, so only the Host tells.
    let rebind = format!("rebind.attacker.example:{port}");
    assert!(
        raw_status(&app.url, &rebind, &format!("Origin: http://{rebind}\r\n")).contains(" 403 ")
    );
    for ok in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        "dash.example.com".to_string(),
        "DASH.example.com:443".to_string(),
    ] {
        assert!(raw_status(&app.url, &ok, "").contains(" 200 "), "{ok}");
    }
    // The login page and probes too: nothing is served under a foreign name.
    let addr = app.url.trim_start_matches("http://").to_string();
    let mut s = TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let app = spawn(Opts::env(&[("ECHOPILOT_HEADER_TIMEOUT_SECS", "1")])).unwrap();
    let addr = app.url.trim_start_matches("http://").to_string();
    for partial in ["GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", ""] {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(partial.as_bytes()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 256];
        // EOF (0) or a reset: either way the server let go; a timeout means it did not.
        match s.read(&mut buf) {
            Ok(_) => {}
            Err(e) => assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "still open after {:?}",
                started.elapsed()
            ),
        }
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    // And the server still serves.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_a_new_connection_gets_503_and_the_held_ones_are_let_go() {
    let app = spawn(Opts::env(&[
        ("ECHOPILOT_MAX_CONNECTIONS", "3"),
        ("ECHOPILOT_HEADER_TIMEOUT_SECS", "60"),
    ]))
    .unwrap();
    let addr = app.url.trim_start_matches("http://").to_string();
    let held: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    // The three are accepted (and hold their places) before the fourth arrives.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let line = raw_status(&app.url, "127.0.0.1", "");
        if line.contains(" 503 ") || Instant::now() > deadline {
            break line;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.contains(" 503 "), "{status}");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if raw_status(&app.url, "127.0.0.1", "").contains(" 200 ") {
            break;
        }
        assert!(Instant::now() < deadline, "places were not freed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_failures_logouts_and_wrong_keys_are_audited_with_the_actor_from_the_credential() {
    let app = spawn_app().await;
    let c = app.client();
    // A wrong key, a failed and a good login, and a log-out.
    let r = c
        .get(format!("{}/api/jobs", app.url))
        .header("X-Dash-Key", "not-the-key-00000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(format!("{}/api/session", app.url))
        .json(&serde_json::json!({ "key": "not-the-key-00000" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let cookie = app.session().await;
    // Server functions: which job, and the arguments with their secrets masked.
    app.send(
        reqwest::Method::POST,
        "/api/jobs",
        Some(serde_json::json!({ "id": "victim", "kind": "noop", "schedule": "@every 24h" })),
    )
    .await;
    let form = |pairs: &[(&str, &str)]| serde_urlencoded::to_string(pairs).unwrap();
    let r = c
        .post(format!("{}/api/fn/save_job", app.url))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("original", ""),
            ("id", "saved"),
            ("name", "Saved"),
            ("kind", "noop"),
            ("schedule", "@every 24h"),
            ("timezone", "UTC"),
            ("timeout_secs", "60"),
            ("retries", "0"),
            ("overlap", "skip"),
            ("misfire", "skip"),
            ("params", r#"{"password": "pw-audit-1", "n": 1}"#),
        ]))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let r = c
        .post(format!("{}/api/fn/delete_job", app.url))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("id", "victim")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "the dashboard's delete needs a reason");
    let r = c
        .post(format!("{}/api/fn/delete_job", app.url))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("id", "victim"), ("reason", "replaced by v2")]))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    // A job edit is recorded with what it changed, field by field, secrets masked.
    let (s, _) = app
        .send(
            reqwest::Method::PATCH,
            "/api/jobs/saved",
            Some(serde_json::json!({ "timeout_secs": 90, "params": { "password": "pw-audit-2", "n": 2 } })),
        )
        .await;
    assert_eq!(s, 200);
    // A client calling itself the CLI is still just the key.
    let r = c
        .post(format!("{}/api/automations/start", app.url))
        .header("X-Dash-Key", KEY)
        .header("user-agent", "echopilot-cli/9.9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .delete(format!("{}/api/session", app.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    let audit = app.json("GET", "/api/fn/list_audit").await;
    let entries = audit.as_array().unwrap();
    let find = |action: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action:?} in {audit}"))
            .clone()
    };
    assert_eq!(find("GET /api/jobs")["actor"], "wrong key");
    assert_eq!(find("login failed")["status"], 401);
    assert_eq!(find("login")["actor"], "key");
    let delete = entries
        .iter()
        .find(|e| e["action"] == "POST /api/fn/delete_job" && e["status"] == 200)
        .unwrap_or_else(|| panic!("no delete in {audit}"));
    assert_eq!(delete["target"], "job victim");
    assert!(
        delete["details"]
            .as_str()
            .unwrap()
            .contains("replaced by v2"),
        "{delete}"
    );
    let edit = find("PATCH /api/jobs/saved");
    let changed: serde_json::Value =
        serde_json::from_str(edit["details"].as_str().unwrap()).unwrap();
    assert_eq!(
        changed["changed"]["timeout_secs"],
        serde_json::json!({ "from": 60, "to": 90 }),
        "{edit}"
    );
    assert_eq!(
        changed["changed"]["params.n"],
        serde_json::json!({ "from": 1, "to": 2 }),
        "{edit}"
    );
    assert!(!edit.to_string().contains("pw-audit-2"), "{edit}");
    assert!(
        delete["actor"].as_str().unwrap().starts_with("session "),
        "{delete}"
    );
    let save = find("POST /api/fn/save_job");
    assert_eq!(save["target"], "job saved");
    let details = save["details"].as_str().unwrap();
    assert!(
        !details.contains("pw-audit-1") && details.contains("••••"),
        "{details}"
    );
    assert_eq!(find("POST /api/automations/start")["actor"], "key");
    assert!(find("logout")["actor"]
        .as_str()
        .unwrap()
        .starts_with("session "));
    assert!(!audit.to_string().contains("\"cli\""), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_jobs_cannot_read_the_servers_secrets_from_its_environment() {
    let app = spawn(Opts::env(&[
        ("ECHOPILOT_ALLOW_SHELL", "true"),
        ("ECHOPILOT_LLM_API_KEY", "sk-from-env-41c2"),
    ]))
    .unwrap();
    app.send(reqwest::Method::POST,
        "/api/jobs",
        Some(serde_json::json!({
            "id": "peek", "kind": "shell", "schedule": "@every 24h",
            "params": { "argv": ["sh", "-c", "tr '\\0' '\\n' < /proc/$PPID/environ; echo; tr '\\0' ' ' < /proc/$PPID/cmdline"] },
        })),
    )
    .await;
    let (_, ran) = app
        .send(reqwest::Method::POST, "/api/jobs/peek/run?wait=true", None)
        .await;
    assert_eq!(ran["run"]["status"], "succeeded", "{ran}");
    let stdout = ran["run"]["output"]["stdout"].as_str().unwrap();
    assert!(
        stdout.contains("serve"),
        "the parent's command line was read: {stdout}"
    );
    assert!(!stdout.contains(KEY), "DASHBOARD_KEY leaked: {stdout}");
    assert!(
        !stdout.contains("sk-from-env-41c2"),
        "the model key leaked: {stdout}"
    );
    // The key still opens the API: it moved out of the environment, not away.
    assert_eq!(app.get("/api/jobs").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_numbers_and_oversized_fields_get_422_naming_the_field_and_save_nothing() {
    let app = spawn_app().await;
    let job = |extra: serde_json::Value| {
        let mut j = serde_json::json!({ "id": "big", "kind": "noop", "schedule": "@every 24h" });
        for (k, v) in extra.as_object().unwrap() {
            j[k] = v.clone();
        }
        j
    };
    for (extra, field) in [
        (
            serde_json::json!({ "retry_backoff_secs": u64::MAX }),
            "retry_backoff_secs",
        ),
        (
            serde_json::json!({ "schedule": format!("0 0 * * * *{}", " ".repeat(900_000)) }),
            "schedule",
        ),
        (
            serde_json::json!({ "timezone": "A".repeat(200) }),
            "timezone",
        ),
        (
            serde_json::json!({ "params": { "duration_ms": u64::MAX } }),
            "params.duration_ms",
        ),
        (
            serde_json::json!({ "kind": "retention-cleanup", "params": { "retention_days": 1u64 << 40 } }),
            "params.retention_days",
        ),
        (
            serde_json::json!({ "kind": "self-heal", "params": { "min_free_mb": -1 } }),
            "params.min_free_mb",
        ),
    ] {
        let (status, body) = app
            .send(reqwest::Method::POST, "/api/jobs", Some(job(extra)))
            .await;
        assert_eq!(status, 422, "{field}: {body}");
        assert_eq!(body["error"]["field"], field, "{body}");
    }
    let (status, _) = app.send(reqwest::Method::GET, "/api/jobs/big", None).await;
    assert_eq!(status, 404, "nothing was saved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_retry_does_not_hold_up_shutdown() {
    let mut app = spawn(Opts {
        grace_secs: Some(120),
        ..Opts::default()
    })
    .unwrap();
    app.send(
        reqwest::Method::POST,
        "/api/jobs",
        Some(
            serde_json::json!({ "id": "flaky", "kind": "noop", "schedule": "@every 24h",
            "retries": 3, "retry_backoff_secs": 3600, "params": { "fail": true } }),
        ),
    )
    .await;
    let (_, ran) = app
        .send(reqwest::Method::POST, "/api/jobs/flaky/run?wait=true", None)
        .await;
    assert_eq!(ran["run"]["status"], "failed");
    app.signal(libc::SIGTERM);
    // Well inside the 120 s grace: the hour-long backoff is not waited for.
    let status = app.wait_exit(Duration::from_secs(30));
    assert!(status.success());
}

/// RELIABILITY 27: scripts run only from this origin or with this response's nonce — no
/// `'unsafe-inline'` — and pages say no referrer and ask for no device features.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_allow_only_their_own_nonced_inline_script_and_send_strict_headers() {
    let app = spawn_app().await;
    let page = |path: &'static str| {
        let url = format!("{}{path}", app.url);
        async move {
            let r = crate::support::client().get(url).send().await.unwrap();
            let h = r.headers().clone();
            (h, r.text().await.unwrap())
        }
    };
    let (h1, body) = page("/login").await;
    let csp = h1["content-security-policy"].to_str().unwrap().to_string();
    let script_src = csp
        .split(';')
        .find(|d| d.trim().starts_with("script-src"))
        .unwrap();
    assert!(!script_src.contains("unsafe-inline"), "{csp}");
    let nonce = script_src
        .split_whitespace()
        .find_map(|s| s.strip_prefix("'nonce-")?.strip_suffix('\''))
        .unwrap_or_else(|| panic!("a nonce in {csp}"));
    assert!(nonce.len() >= 16, "{nonce}");
    assert!(
        body.contains(&format!("nonce=\"{nonce}\"")),
        "the hydration script carries it"
    );
    // Every inline script carries it.
    for script in body.split("<script").skip(1) {
        let tag = script.split('>').next().unwrap_or_default();
        assert!(
            tag.contains("src=") || tag.contains(&format!("nonce=\"{nonce}\"")),
            "<script{tag}>"
        );
    }
    let (h2, _) = page("/login").await;
    assert_ne!(
        h1["content-security-policy"], h2["content-security-policy"],
        "a fresh nonce per response"
    );
    assert_eq!(h1["referrer-policy"], "no-referrer");
    assert!(h1["permissions-policy"]
        .to_str()
        .unwrap()
        .contains("camera=()"));
    let (api, _) = page("/healthz").await;
    let csp = api["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self' 'wasm-unsafe-eval';"),
        "no inline script at all off a page: {csp}"
    );
}
