//! Deployment: the systemd unit passes `systemd-analyze verify` (where systemd is
//! installed), and the server speaks the notify protocol it declares — `READY=1` once it
//! serves, `WATCHDOG=1` at half the watchdog interval, `STOPPING=1` on SIGTERM — to a
//! real datagram socket.

use crate::support::{bin, spawn, Opts};
use std::time::{Duration, Instant};

#[test]
fn the_systemd_unit_verifies() {
    let Ok(out) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        eprintln!("systemd-analyze is not installed here: nothing to verify with");
        return;
    };
    assert!(out.status.success());
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/echopilot.service"
    ))
    .unwrap();
    for want in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "StateDirectory=echopilot",
    ] {
        assert!(unit.contains(want), "the unit has {want}");
    }
    // Verified against the binary under test (verify checks the executable exists).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("echopilot.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/echopilot", bin())).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}

/// Reads notifications until one says `want` (kept in `said`), up to `deadline`.
async fn hear(
    sock: &tokio::net::UnixDatagram,
    said: &mut Vec<String>,
    deadline: Instant,
    want: &str,
) {
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, sock.recv(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {want} within the deadline; heard {said:?}"))
            .unwrap();
        let msg = String::from_utf8_lossy(&buf[..n]).to_string();
        said.push(msg.clone());
        if msg.lines().any(|l| l == want) {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_tells_systemd_it_is_ready_alive_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = tokio::net::UnixDatagram::bind(&path).unwrap();
    let mut server = spawn(Opts::env(&[
        ("NOTIFY_SOCKET", path.to_str().unwrap()),
        ("WATCHDOG_USEC", "1000000"),
    ]))
    .expect("the server starts");
    let mut said = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    hear(&sock, &mut said, deadline, "READY=1").await;
    hear(&sock, &mut said, deadline, "WATCHDOG=1").await;
    server.signal(libc::SIGTERM);
    hear(&sock, &mut said, deadline, "STOPPING=1").await;
    assert!(server.wait_exit(Duration::from_secs(20)).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_json_lines_in_a_private_file_per_day_with_the_run_on_every_line_about_it() {
    let server = spawn(Opts {
        args: vec!["--log-json".into()],
        env: vec![("RUST_LOG".into(), "info,engine::runner=debug".into())],
        ..Opts::default()
    })
    .expect("the server starts");
    let (s, _) = server
        .send(
            reqwest::Method::POST,
            "/api/jobs",
            Some(serde_json::json!({ "id": "hello", "kind": "noop", "schedule": "@every 1h" })),
        )
        .await;
    assert_eq!(s, 201);
    let (_, run) = server
        .send(reqwest::Method::POST, "/api/jobs/hello/run?wait=true", None)
        .await;
    let id = run["run"]["id"].as_i64().unwrap();
    let logs = server.data_dir.join("logs");
    let today = chrono::Utc::now().format("%Y-%m-%d");
    let file = logs.join(format!("echopilot.{today}.log"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.contains("run started")) {
            break l.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no run line in {}: {text}",
            file.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(v["span"]["run_id"], id, "{line}");
    assert_eq!(v["span"]["job"], "hello", "{line}");
    assert_eq!(v["level"], "DEBUG");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the log file is the server's alone");
    assert!(
        server
            .stderr()
            .lines()
            .filter(|l| !l.is_empty())
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "stderr is JSON lines too"
    );
}
