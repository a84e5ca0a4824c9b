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
