//! The walking skeleton over real HTTP, each test on its own data dir: the app in-process
//! where only the API is under test, a real `echopilot` process for signals, the PID lock,
//! the key and start-up.

use crate::support::{cli, client, pid_file, spawn, spawn_app, Opts, KEY};
use std::process::Command;
use std::time::Duration;

/// Every REST route the router has, from the one list it is built from
/// (`api::routes`, which is also the OpenAPI document), so a route added there is in the
/// matrix without anyone remembering to list it: each `(method, path)` with its path
/// parameters filled in.
fn routes() -> Vec<(String, String)> {
    let doc = echopilot::api::openapi::document(echopilot::api::routes().into_openapi());
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let path = path
            .replace("{id}", "1")
            .replace("{token}", "0123456789abcdef0123456789abcdef")
            .replace("{kind}", "fail");
        for method in item.as_object().expect("a path item").keys() {
            out.push((method.to_uppercase(), path.clone()));
        }
    }
    out.sort();
    out
}

/// Reached without the key: the probes, logging in and out, pings (their token is the
/// secret).
fn public(path: &str) -> bool {
    ["/healthz", "/readyz", "/api/session", "/api/session/logout"].contains(&path)
        || path.starts_with("/ping/")
}

async fn send(method: &str, url: &str, key: Option<&str>) -> reqwest::Response {
    let req = client().request(method.parse().unwrap(), url);
    let req = match key {
        Some(k) => req.header("X-Dash-Key", k),
        None => req,
    };
    req.send().await.expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_route_answers_401_json_without_or_with_a_wrong_key() {
    let app = spawn_app().await;
    let routes = routes();
    assert!(routes.len() > 40, "the routes were read: {routes:?}");
    for want in [
        ("GET", "/api/alerts/incidents"),
        ("POST", "/api/jobs/apply"),
        ("DELETE", "/api/checks/1"),
        ("GET", "/metrics"),
    ] {
        assert!(
            routes.iter().any(|(m, p)| m == want.0 && p == want.1),
            "{want:?} in {routes:?}"
        );
    }
    // Every server function too, as the dashboard calls them.
    let functions: Vec<(String, String)> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, method)| (method.to_string(), path.to_string()))
        .collect();
    assert!(functions.len() > 30, "{functions:?}");
    let everything = routes
        .iter()
        .filter(|(_, p)| !public(p))
        .chain(functions.iter())
        .cloned()
        .chain([("GET".to_string(), "/api/no-such-route".to_string())]);
    let everything: Vec<(String, String)> = everything.collect();
    for key in [None, Some("wrong-key")] {
        if key.is_some() {
            // Nothing changed behind the refusals (checked before wrong keys throttle us).
            let s = app.json("GET", "/api/automations/status").await;
            assert_eq!(s["state"], "running");
            assert_eq!(
                app.json("GET", "/api/jobs").await.as_array().map(Vec::len),
                Some(5),
                "the built-ins only"
            );
        }
        for (method, path) in &everything {
            let r = send(method, &format!("{}{path}", app.url), key).await;
            // Ten wrong keys from loopback and the rest are throttled: refused all the same.
            let status = r.status().as_u16();
            let want: &[u16] = if key.is_some() { &[401, 429] } else { &[401] };
            assert!(
                want.contains(&status),
                "{method} {path} with {key:?}: {status}"
            );
            let body: serde_json::Value = r.json().await.unwrap();
            let code = if status == 429 {
                "too_many_attempts"
            } else {
                "unauthorized"
            };
            assert_eq!(body["error"]["code"], code, "{method} {path}: {body}");
            assert!(body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()));
        }
    }
}

/// RELIABILITY 23 over the whole surface: a cross-site request riding on a valid session
/// cookie is refused on every mutating route and server function.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mutating_route_and_server_function_refuses_a_cross_site_request_on_the_cookie() {
    let app = spawn_app().await;
    let login = client()
        .post(format!("{}/api/session", app.url))
        .json(&serde_json::json!({ "key": KEY }))
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let functions =
        leptos::server_fn::axum::server_fn_paths().map(|(p, m)| (m.to_string(), p.to_string()));
    let mutating: Vec<(String, String)> = routes()
        .into_iter()
        .chain(functions)
        .filter(|(m, p)| m != "GET" && !public(p))
        .collect();
    assert!(mutating.len() > 40, "{mutating:?}");
    for (method, path) in mutating {
        let r = client()
            .request(method.parse().unwrap(), format!("{}{path}", app.url))
            .header("cookie", &cookie)
            .header("sec-fetch-site", "cross-site")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{method} {path}");
    }
    let s = app.json("GET", "/api/automations/status").await;
    assert_eq!(s["state"], "running", "nothing changed behind the refusals");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_api_route_is_a_json_404() {
    let app = spawn_app().await;
    let r = app.get("/api/no-such-route").await;
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_has_the_contract_fields() {
    let app = spawn_app().await;
    let s = app.json("GET", "/api/automations/status").await;
    for field in [
        "state",
        "running",
        "pid",
        "started_at",
        "uptime_secs",
        "last_heartbeat",
        "heartbeat_age_secs",
        "next_runs",
        "node",
    ] {
        assert!(s.get(field).is_some(), "status lacks {field}: {s}");
    }
    assert_eq!(s["pid"], app.pid());
    assert_eq!(s["running"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_and_stop_are_idempotent() {
    let app = spawn_app().await;
    for _ in 0..2 {
        let s = app.json("POST", "/api/automations/stop").await;
        assert_eq!(s["state"], "stopped");
        assert_eq!(s["running"], false);
    }
    for _ in 0..2 {
        let s = app.json("POST", "/api/automations/start").await;
        assert_eq!(s["state"], "running");
        assert_eq!(s["running"], true);
    }
    let s = app.json("POST", "/api/automations/restart").await;
    assert_eq!(s["state"], "running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_scheduler_stays_stopped_after_restart_and_running_one_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Opts {
        data_dir: Some(dir.path().join("data")),
        ..Opts::default()
    };

    let mut app = spawn(opts.clone()).unwrap();
    app.json("POST", "/api/automations/stop").await;
    app.signal(libc::SIGTERM);
    assert!(app.wait_exit(Duration::from_secs(20)).success());

    let mut app = spawn(opts.clone()).unwrap();
    let s = app.json("GET", "/api/automations/status").await;
    assert_eq!(s["state"], "stopped", "intent lost across a restart: {s}");
    app.json("POST", "/api/automations/start").await;
    app.signal(libc::SIGKILL);
    app.wait_exit(Duration::from_secs(20));

    let app = spawn(opts).unwrap();
    let s = app.json("GET", "/api/automations/status").await;
    assert_eq!(
        s["state"], "running",
        "a running scheduler must resume by itself: {s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_is_recorded_every_interval_and_written_to_the_event_log() {
    let app = spawn(Opts {
        heartbeat_secs: Some(1),
        ..Opts::default()
    })
    .unwrap();
    let first = app.json("GET", "/api/automations/status").await["last_heartbeat"].clone();
    let later = app
        .wait_status(Duration::from_secs(10), |s| s["last_heartbeat"] != first)
        .await;
    assert_eq!(later["state"], "running");
    // The event log's files (the server's own log files are next to them).
    let logs = std::fs::read_dir(app.data_dir.join("logs")).unwrap();
    let text: String = logs
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("events."))
        })
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let beats = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("each line is JSON"))
        .filter(|v| v["event"] == "heartbeat")
        .count();
    assert!(beats >= 2, "expected heartbeat lines, got:\n{text}");
}

#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_whose_heartbeat_stops_is_reported_stalled() {
    // The first heartbeat is written, every later one is skipped.
    let app = spawn(Opts {
        heartbeat_secs: Some(1),
        env: vec![("FAILPOINTS".into(), "heartbeat=1*off->return".into())],
        ..Opts::default()
    })
    .unwrap();
    let s = app
        .wait_status(Duration::from_secs(15), |s| s["state"] == "stalled")
        .await;
    assert_eq!(s["running"], false);
    assert!(s["heartbeat_age_secs"].as_f64().unwrap() > 2.0, "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_server_on_the_same_data_dir_is_refused() {
    let first = spawn(Opts::default()).unwrap();
    let err = spawn(Opts {
        data_dir: Some(first.data_dir.clone()),
        ..Opts::default()
    })
    .err()
    .expect("second server must not start");
    assert!(!err.0.success());
    assert!(err.1.contains("already running"), "stderr: {}", err.1);
    assert!(
        err.1.contains(&first.pid().to_string()),
        "names the holder's pid: {}",
        err.1
    );
    // The first one is untouched.
    assert_eq!(
        first.json("GET", "/api/automations/status").await["pid"],
        first.pid()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_sigint_exit_0_and_remove_the_pid_file() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let mut app = spawn(Opts::default()).unwrap();
        let pid_path = pid_file(&app.data_dir);
        let written = std::fs::read_to_string(&pid_path).unwrap();
        assert_eq!(written.trim(), app.pid().to_string());
        app.signal(sig);
        let status = app.wait_exit(Duration::from_secs(20));
        assert!(
            status.success(),
            "signal {sig} → {status:?}\n{}",
            app.stderr()
        );
        assert!(
            !pid_path.exists(),
            "PID file left behind after signal {sig}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_pid_file_left_by_kill_9_does_not_block_the_next_start() {
    let mut app = spawn(Opts::default()).unwrap();
    let dir = app.data_dir.clone();
    app.signal(libc::SIGKILL);
    app.wait_exit(Duration::from_secs(20));
    assert!(
        pid_file(&dir).exists(),
        "kill -9 leaves the file (that is the case under test)"
    );
    let next = spawn(Opts {
        data_dir: Some(dir.clone()),
        ..Opts::default()
    })
    .expect("restart after kill -9");
    let written = std::fs::read_to_string(pid_file(&dir)).unwrap();
    assert_eq!(written.trim(), next.pid().to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_key_refuses_to_start() {
    let err = spawn(Opts {
        env: vec![("DASHBOARD_KEY".into(), "".into())],
        ..Opts::default()
    })
    .err()
    .expect("must refuse");
    assert!(
        err.1.contains("DASHBOARD_KEY is set but empty"),
        "{}",
        err.1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_key_is_printed_once_saved_0600_and_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = Command::new(crate::support::bin())
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env_remove("DASHBOARD_KEY")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read until the listening line, then stop the server.
    use std::io::BufRead;
    let mut child = out;
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("EchoPilot is running on") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let key = std::fs::read_to_string(data.join("dashboard.key")).unwrap();
    assert!(
        printed.contains(key.trim()),
        "key printed on first start: {printed}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(data.join("dashboard.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_dir_that_is_a_file_or_holds_a_corrupt_store_refuses_to_start_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let err = spawn(Opts {
        data_dir: Some(file.clone()),
        ..Opts::default()
    })
    .err()
    .expect("refused");
    assert!(
        err.1.contains(&file.display().to_string()),
        "names the path: {}",
        err.1
    );

    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("echopilot.db"), vec![0x42u8; 8192]).unwrap();
    let err = spawn(Opts {
        data_dir: Some(data.clone()),
        ..Opts::default()
    })
    .err()
    .expect("refused");
    assert!(err.1.contains("echopilot.db"), "names the store: {}", err.1);
    assert!(err.1.contains("not a database"), "says why: {}", err.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_tls_proxy_the_session_cookie_is_host_prefixed_and_secure() {
    let app = spawn_app().await;
    let login = client()
        .post(format!("{}/api/session", app.url))
        .header("x-forwarded-proto", "https")
        .json(&serde_json::json!({"key": KEY}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 204);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("__Host-echopilot_session="), "{cookie}");
    assert!(
        cookie.contains("; Secure") && cookie.contains("Path=/") && !cookie.contains("Domain"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_string();
    let status = client()
        .get(format!("{}/api/automations/status", app.url))
        .header("cookie", pair)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200, "the prefixed cookie is a session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_gives_an_httponly_strict_session_that_logout_kills() {
    let app = spawn_app().await;
    let c = client();
    let wrong = c
        .post(format!("{}/api/session", app.url))
        .json(&serde_json::json!({"key": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let r = c
        .post(format!("{}/api/session", app.url))
        .json(&serde_json::json!({"key": KEY}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_string();
    let id = pair.split_once('=').unwrap().1;
    assert!(id.len() >= 32, "session id carries at least 128 bits: {id}");

    let with_cookie = |m: reqwest::Method, path: &str| {
        c.request(m, format!("{}{path}", app.url))
            .header("cookie", pair.clone())
    };
    assert_eq!(
        with_cookie(reqwest::Method::GET, "/api/automations/status")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // A cross-site POST riding on the cookie is refused, and changes nothing.
    let forged = with_cookie(reqwest::Method::POST, "/api/automations/stop")
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(
        app.json("GET", "/api/automations/status").await["state"],
        "running"
    );
    let same = with_cookie(reqwest::Method::POST, "/api/automations/stop")
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 200);

    assert_eq!(
        with_cookie(reqwest::Method::DELETE, "/api/session")
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        with_cookie(reqwest::Method::GET, "/api/automations/status")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_redirect_to_login_without_a_session() {
    let app = spawn_app().await;
    let r = client().get(format!("{}/", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login");
    let login = client()
        .get(format!("{}/login", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    assert!(login.text().await.unwrap().contains("Dashboard key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_gets_413() {
    let app = spawn_app().await;
    let body = vec![b'a'; 1024 * 1024 + 1];
    let r = client()
        .post(format!("{}/api/session", app.url))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_controls_the_scheduler_and_status_exit_codes_tell_the_state() {
    let app = spawn_app().await;
    let url = app.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        let status = cli(&["scheduler", "status"], &url, KEY);
        let stop = cli(&["scheduler", "stop"], &url, KEY);
        let stopped = cli(&["scheduler", "status"], &url, KEY);
        let start = cli(&["scheduler", "start"], &url, KEY);
        let restart = cli(&["scheduler", "restart"], &url, KEY);
        let bad_key = cli(&["scheduler", "status"], &url, "wrong");
        (status, stop, stopped, start, restart, bad_key)
    })
    .await
    .unwrap();
    let json =
        |o: &std::process::Output| serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap();
    assert_eq!(out.0.status.code(), Some(0));
    assert_eq!(json(&out.0)["state"], "running");
    assert_eq!(out.1.status.code(), Some(0));
    assert_eq!(json(&out.1)["state"], "stopped");
    assert_eq!(out.2.status.code(), Some(3));
    assert_eq!(out.3.status.code(), Some(0));
    assert_eq!(json(&out.3)["state"], "running");
    assert_eq!(out.4.status.code(), Some(0));
    assert_eq!(out.5.status.code(), Some(1));
    let msg = String::from_utf8_lossy(&out.5.stderr);
    assert_eq!(msg.lines().count(), 1, "one line: {msg}");
    assert!(msg.contains("401"), "{msg}");
}

#[test]
fn cli_against_a_dead_server_prints_one_line_naming_the_url_and_exits_1() {
    // A port that was just free: bind, read it, release it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = cli(&["scheduler", "status"], &url, KEY);
    assert_eq!(out.status.code(), Some(1));
    let msg = String::from_utf8_lossy(&out.stderr);
    assert_eq!(msg.lines().count(), 1, "{msg}");
    assert!(msg.contains(&url), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_started_together_a_hundred_times_exactly_one_runs() {
    for round in 0..100 {
        let dir = tempfile::tempdir().unwrap();
        let opts = Opts {
            data_dir: Some(dir.path().join("data")),
            ..Opts::default()
        };
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| spawn(opts.clone()));
            let b = s.spawn(|| spawn(opts.clone()));
            (a.join().unwrap(), b.join().unwrap())
        });
        let up = [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count();
        assert_eq!(up, 1, "round {round}: {up} servers running on one data dir");
        let refused = a.as_ref().err().or(b.as_ref().err()).unwrap();
        assert!(
            refused.1.contains("already running"),
            "round {round}: {}",
            refused.1
        );
    }
}

/// The CLI without `--json`, as a person types it.
fn cli_plain(args: &[&str], url: &str) -> std::process::Output {
    std::process::Command::new(crate::support::bin())
        .args(args)
        .env("ECHOPILOT_URL", url)
        .env("DASHBOARD_KEY", KEY)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_does_what_the_dashboard_does_for_jobs_and_runs_in_tables_or_json() {
    let app = spawn_app().await;
    let url = app.url.clone();
    tokio::task::spawn_blocking(move || {
        let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).to_string();
        let json = |o: &std::process::Output| -> serde_json::Value {
            serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}{}", text(o), String::from_utf8_lossy(&o.stderr)))
        };
        let spec = r#"{"id":"hello","kind":"noop","schedule":"@every 1h","params":{"duration_ms":300,"fail":false}}"#;
        let added = cli(&["jobs", "add", spec], &url, KEY);
        assert_eq!(json(&added)["id"], "hello");
        let list = cli_plain(&["jobs", "list"], &url);
        assert!(list.status.success());
        let table = text(&list);
        let header = table.lines().next().unwrap_or_default();
        assert!(header.starts_with("ID") && header.contains("SCHEDULE"), "{table}");
        assert!(table.lines().any(|l| l.starts_with("hello ")), "{table}");
        let shown = text(&cli_plain(&["jobs", "show", "hello"], &url));
        assert!(shown.lines().any(|l| l.starts_with("schedule") && l.ends_with("@every 1h")), "{shown}");
        let edited = cli(&["jobs", "edit", "hello", r#"{"schedule":"@every 2h"}"#], &url, KEY);
        assert_eq!(json(&edited)["schedule"], "@every 2h");
        assert_eq!(json(&cli(&["jobs", "disable", "hello"], &url, KEY))["enabled"], false);
        assert_eq!(json(&cli(&["jobs", "enable", "hello"], &url, KEY))["enabled"], true);

        let run = json(&cli(&["run", "hello", "--wait"], &url, KEY));
        let id = run["run"]["id"].as_i64().unwrap().to_string();
        let runs = text(&cli_plain(&["runs", "list", "--job", "hello"], &url));
        assert!(runs.lines().next().unwrap_or_default().starts_with("ID"), "{runs}");
        assert!(runs.contains("succeeded"), "{runs}");
        assert_eq!(json(&cli(&["runs", "show", &id], &url, KEY))["status"], "succeeded");
        let log = cli_plain(&["runs", "log", &id], &url);
        assert!(log.status.success() && text(&log).contains("succeeded"), "{}", text(&log));

        // Followed live: the log as it is written, then the exit code says how it ended.
        let started = json(&cli(&["run", "hello"], &url, KEY));
        let live = started["run"]["id"].as_i64().unwrap().to_string();
        let followed = cli_plain(&["runs", "log", &live, "-f"], &url);
        assert_eq!(followed.status.code(), Some(0), "{}", String::from_utf8_lossy(&followed.stderr));
        let out = text(&followed);
        assert!(out.contains("started") && out.contains("succeeded"), "{out}");
        let failing = json(&cli(&["run", "hello", "--param", "fail=true"], &url, KEY));
        let failed = failing["run"]["id"].as_i64().unwrap().to_string();
        assert_eq!(cli_plain(&["runs", "log", &failed, "-f"], &url).status.code(), Some(2));

        let bad = cli_plain(&["jobs", "add", "{not json"], &url);
        assert_eq!(bad.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&bad.stderr).contains("not JSON"));
        assert_eq!(cli(&["jobs", "rm", "hello"], &url, KEY).status.code(), Some(0));
        let gone = cli_plain(&["jobs", "show", "hello"], &url);
        assert_eq!(gone.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&gone.stderr).contains("404"));
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_as_code_export_apply_with_a_dry_run_diff_prune_and_drift() {
    let app = spawn_app().await;
    let job = serde_json::json!({ "id": "manual", "kind": "noop", "schedule": "@every 1h",
                                  "params": { "duration_ms": 0, "api_token": "s3cret" } });
    assert_eq!(
        app.send(reqwest::Method::POST, "/api/jobs", Some(job))
            .await
            .0,
        201
    );
    let url = app.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jobs.toml");
    let f = file.to_str().unwrap().to_string();
    let (u, f2) = (url.clone(), f.clone());
    let out = tokio::task::spawn_blocking(move || {
        let export = cli_plain(&["jobs", "export"], &u);
        let exported = String::from_utf8_lossy(&export.stdout).to_string();
        // Applied back as exported: nothing changes, secrets included (masked, kept).
        std::fs::write(&f2, &exported).unwrap();
        let same = cli(&["jobs", "apply", &f2], &u, KEY);
        // The file changed: manual's schedule, a new job.
        let edited = exported.replace("schedule = \"@every 1h\"", "schedule = \"@every 2h\"")
            + "\n[[jobs]]\nid = \"from-file\"\nkind = \"noop\"\nschedule = \"@every 5m\"\n";
        std::fs::write(&f2, edited).unwrap();
        let dry = cli_plain(&["jobs", "apply", &f2, "--dry-run"], &u);
        (exported, same, dry)
    })
    .await
    .unwrap();
    let (exported, same, dry) = out;
    assert!(
        exported.contains("[[jobs]]") && exported.contains("id = \"manual\""),
        "{exported}"
    );
    assert!(
        !exported.contains("s3cret") && exported.contains("********"),
        "secrets masked: {exported}"
    );
    let same: serde_json::Value = serde_json::from_slice(&same.stdout).unwrap();
    assert_eq!(
        (
            same["added"].as_array().unwrap().len(),
            same["changed"].as_array().unwrap().len()
        ),
        (0, 0),
        "{same}"
    );
    let diff = String::from_utf8_lossy(&dry.stdout).to_string();
    assert!(diff.contains("+ from-file\n"), "{diff}");
    assert!(
        diff.contains("~ manual\n") && diff.contains("schedule: \"@every 1h\" → \"@every 2h\""),
        "{diff}"
    );
    assert!(diff.contains("(dry run: nothing was changed)"), "{diff}");
    assert_eq!(
        app.send(reqwest::Method::GET, "/api/jobs/from-file", None)
            .await
            .0,
        404,
        "a dry run changes nothing"
    );

    let (u, f2) = (url.clone(), f.clone());
    let applied = tokio::task::spawn_blocking(move || cli(&["jobs", "apply", &f2], &u, KEY))
        .await
        .unwrap();
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let (_, job) = app
        .send(reqwest::Method::GET, "/api/jobs/from-file", None)
        .await;
    assert_eq!(
        (job["from_file"].as_bool(), job["drift"].as_bool()),
        (Some(true), Some(false)),
        "{job}"
    );
    let (_, manual) = app
        .send(reqwest::Method::GET, "/api/jobs/manual", None)
        .await;
    assert_eq!(manual["schedule"], "@every 2h");
    // Edited by hand since: drifted.
    let (s, _) = app
        .send(
            reqwest::Method::PATCH,
            "/api/jobs/from-file",
            Some(serde_json::json!({ "schedule": "@every 7m" })),
        )
        .await;
    assert_eq!(s, 200);
    let (_, job) = app
        .send(reqwest::Method::GET, "/api/jobs/from-file", None)
        .await;
    assert_eq!(job["drift"], true, "{job}");

    // A bad job anywhere in the file: 422 naming it, nothing applied.
    let bad = serde_json::json!({ "jobs": [
        { "id": "fine", "kind": "noop", "schedule": "@every 1m" },
        { "id": "broken", "kind": "noop", "schedule": "every tuesday-ish" },
    ]});
    let (s, body) = app
        .send(reqwest::Method::POST, "/api/jobs/apply", Some(bad))
        .await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["error"]["field"], "jobs[1].schedule", "{body}");
    assert_eq!(
        app.send(reqwest::Method::GET, "/api/jobs/fine", None)
            .await
            .0,
        404,
        "one transaction: nothing applied"
    );

    // Prune: what the file does not name goes.
    let only = serde_json::json!({ "jobs": [{ "id": "from-file", "kind": "noop", "schedule": "@every 5m" }] });
    let (s, plan) = app
        .send(
            reqwest::Method::POST,
            "/api/jobs/apply?prune=true",
            Some(only),
        )
        .await;
    assert_eq!(s, 200, "{plan}");
    assert!(
        plan["removed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "manual"),
        "{plan}"
    );
    assert_eq!(
        app.send(reqwest::Method::GET, "/api/jobs/manual", None)
            .await
            .0,
        404
    );
    let (_, job) = app
        .send(reqwest::Method::GET, "/api/jobs/from-file", None)
        .await;
    assert_eq!(
        job["drift"], false,
        "applied again: in step with the file: {job}"
    );
}
