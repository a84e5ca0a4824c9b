//! Test support: start the real `echopilot` binary on port 0 with a fresh data dir and
//! talk to it over real HTTP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const KEY: &str = "test-key-0123456789";
const START_DEADLINE: Duration = Duration::from_secs(30);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_echopilot")
}

/// A running server process. Killed when dropped.
pub struct TestServer {
    pub child: Child,
    pub url: String,
    pub data_dir: PathBuf,
    /// Keeps the temp dir alive when the server made it.
    _dir: Option<tempfile::TempDir>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

/// Options for [`spawn`].
#[derive(Default, Clone)]
pub struct Opts {
    pub data_dir: Option<PathBuf>,
    pub heartbeat_secs: Option<u64>,
    /// Seconds of shutdown grace (default 5).
    pub grace_secs: Option<u64>,
    pub env: Vec<(String, String)>,
    /// Environment variables removed (e.g. DASHBOARD_KEY, to use the key file).
    pub unset: Vec<String>,
}

impl Opts {
    /// Options with these environment variables set.
    pub fn env(vars: &[(&str, &str)]) -> Self {
        Opts {
            env: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Opts::default()
        }
    }
}

pub fn spawn_app() -> TestServer {
    spawn(Opts::default()).expect("server starts")
}

/// Starts a server; `Err` carries its exit status and stderr when it refused to start.
pub fn spawn(opts: Opts) -> Result<TestServer, (ExitStatus, String)> {
    let (dir, data_dir) = match opts.data_dir {
        Some(d) => (None, d),
        None => {
            let d = tempfile::tempdir().expect("temp dir");
            let p = d.path().join("data");
            (Some(d), p)
        }
    };
    let mut cmd = Command::new(bin());
    cmd.args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir)
        .args([
            "--heartbeat-secs",
            &opts.heartbeat_secs.unwrap_or(60).to_string(),
        ])
        .args([
            "--shutdown-grace-secs",
            &opts.grace_secs.unwrap_or(5).to_string(),
        ])
        .env("DASHBOARD_KEY", KEY)
        .env("RUST_LOG", "info")
        .env_remove("ECHOPILOT_BIND")
        .env_remove("ECHOPILOT_DATA_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in &opts.env {
        cmd.env(k, v);
    }
    for k in &opts.unset {
        cmd.env_remove(k);
    }
    let mut child = cmd.spawn().expect("spawn echopilot");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let err_text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    {
        let err_text = err_text.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut t = err_text.lock().unwrap();
                t.push_str(&line);
                t.push('\n');
            }
        });
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("EchoPilot is running on ") {
                let url = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let _ = tx.send(url);
            }
        }
    });
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        if let Ok(url) = rx.recv_timeout(Duration::from_millis(20)) {
            return Ok(TestServer {
                child,
                url,
                data_dir,
                _dir: dir,
                stderr: err_text,
            });
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            // Give the stderr reader a moment to drain what the process wrote.
            let drained = Instant::now() + Duration::from_secs(2);
            while Instant::now() < drained && err_text.lock().unwrap().is_empty() {
                std::thread::sleep(Duration::from_millis(10));
            }
            return Err((status, err_text.lock().unwrap().clone()));
        }
        assert!(
            Instant::now() < deadline,
            "server did not start within {START_DEADLINE:?}"
        );
    }
}

impl TestServer {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY-free: libc::kill with our own child's pid.
        let rc = unsafe_kill(self.pid(), sig);
        assert_eq!(rc, 0, "kill({sig}) failed");
    }

    /// Waits for the process to exit, up to `within`.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn client(&self) -> reqwest::Client {
        client()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        client()
            .get(format!("{}{path}", self.url))
            .header("X-Dash-Key", KEY)
            .send()
            .await
            .expect("request")
    }

    pub async fn post(&self, path: &str) -> reqwest::Response {
        client()
            .post(format!("{}{path}", self.url))
            .header("X-Dash-Key", KEY)
            .send()
            .await
            .expect("request")
    }

    pub async fn json(&self, method: &str, path: &str) -> serde_json::Value {
        let r = if method == "GET" {
            self.get(path).await
        } else {
            self.post(path).await
        };
        assert!(r.status().is_success(), "{method} {path} → {}", r.status());
        r.json().await.expect("json body")
    }

    /// Logs in with the key; answers the `Cookie` header value of the new session.
    pub async fn session(&self) -> String {
        let r = client()
            .post(format!("{}/api/session", self.url))
            .json(&serde_json::json!({ "key": KEY }))
            .send()
            .await
            .expect("login");
        assert_eq!(r.status(), 204, "login");
        let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
        cookie.split(';').next().unwrap().to_string()
    }

    /// `GET path` as a logged-in browser would; answers the status and the body text.
    pub async fn page(&self, cookie: &str, path: &str) -> (u16, String) {
        let r = client()
            .get(format!("{}{path}", self.url))
            .header("cookie", cookie)
            .send()
            .await
            .expect("page");
        let status = r.status().as_u16();
        (status, r.text().await.unwrap_or_default())
    }

    /// Polls `GET /api/runs/{id}` until the run has finished; answers it.
    pub async fn wait_run(&self, id: i64) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let run = self.json("GET", &format!("/api/runs/{id}")).await;
            if !matches!(run["status"].as_str(), Some("queued" | "running")) {
                return run;
            }
            assert!(Instant::now() < deadline, "run {id} did not finish: {run}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Polls `GET /api/automations/status` until `pred` holds, up to `within`.
    pub async fn wait_status(
        &self,
        within: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            let s = self.json("GET", "/api/automations/status").await;
            if pred(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "status never matched; last: {s}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

pub fn pid_file(dir: &Path) -> PathBuf {
    dir.join("echopilot.pid")
}

fn unsafe_kill(pid: i32, sig: i32) -> i32 {
    // Sending a signal to a child we spawned; the only unsafe call in the tests.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(pid, sig)
    }
}
