//! Test support: the app in-process on port 0 ([`spawn_app`], for API tests), or the
//! real `echopilot` binary as a process ([`spawn`], for signals, `kill -9` and start-up),
//! each with a fresh data dir; both talked to over real HTTP through [`Http`].

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const KEY: &str = "test-key-0123456789";
const START_DEADLINE: Duration = Duration::from_secs(30);

/// The `echopilot` binary the process tests start: this build's, or `ECHOPILOT_TEST_BIN`
/// (`make chaos` runs the release binary, as operators do).
pub fn bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("ECHOPILOT_TEST_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_echopilot").to_string())
    })
}

/// Talks to a server over HTTP, with the key.
pub struct Http {
    pub url: String,
}

/// A running server process. Killed when dropped.
pub struct TestServer {
    pub child: Child,
    http: Http,
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
    /// More flags for `serve`.
    pub args: Vec<String>,
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

/// The app running in this test's process (and runtime) on port 0, with a fresh data
/// dir: built by the same `startup::build` the binary uses, stopped when dropped.
pub struct TestApp {
    http: Http,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for TestApp {
    type Target = Http;
    fn deref(&self) -> &Http {
        &self.http
    }
}

impl TestApp {
    /// The server's process: this one.
    pub fn pid(&self) -> i32 {
        std::process::id() as i32
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts the app in-process (the test needs a multi-threaded runtime when it also makes
/// blocking calls, such as running the CLI).
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// [`spawn_app`] with more flags (`--http-allow 127.0.0.1`).
pub async fn spawn_app_with(flags: &[&str]) -> TestApp {
    use clap::Parser;
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let cli = echopilot::config::Cli::parse_from(
        [
            "echopilot",
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--data-dir",
            data_dir.to_str().expect("a UTF-8 temp path"),
            "--shutdown-grace-secs",
            "5",
        ]
        .into_iter()
        .chain(flags.iter().copied()),
    );
    let echopilot::config::Command::Serve(mut args) = cli.command else {
        unreachable!("parsed as serve")
    };
    args.dashboard_key = Some(KEY.into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let app = echopilot::startup::build(*args, listener)
        .await
        .expect("the app builds");
    let url = format!("http://{}", app.address());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        http: Http { url },
        stop: Some(stop),
        _dir: dir,
    }
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
    cmd.args(&opts.args);
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
                http: Http { url },
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
}

impl std::ops::Deref for TestServer {
    type Target = Http;
    fn deref(&self) -> &Http {
        &self.http
    }
}

impl Http {
    /// `method path` with the key and an optional JSON body; answers the status and the
    /// body (JSON, or the text as a JSON string).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = client()
            .request(method, format!("{}{path}", self.url))
            .header("X-Dash-Key", KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
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

    /// Polls `GET path` until `pred` holds for its body, up to `within`; answers the body.
    pub async fn wait_for(
        &self,
        path: &str,
        within: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            let (_, body) = self.send(reqwest::Method::GET, path, None).await;
            if pred(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "{path} never matched; last: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
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

/// Runs the CLI against `url` with `key`.
/// Runs a client command with `--json` (what tests read), against `url` with `key`.
pub fn cli(args: &[&str], url: &str, key: &str) -> std::process::Output {
    Command::new(bin())
        .args(args)
        .arg("--json")
        .env("ECHOPILOT_URL", url)
        .env("DASHBOARD_KEY", key)
        .output()
        .unwrap()
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

/// Reads server-sent events from `r` until `until` says stop or the deadline passes;
/// returns `(event, data)` pairs.
pub async fn read_events(
    r: &mut reqwest::Response,
    within: Duration,
    until: impl Fn(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = String::new();
    let mut events = Vec::new();
    while !until(&events) {
        let chunk = tokio::time::timeout_at(deadline, r.chunk())
            .await
            .expect("the next event arrives in time")
            .unwrap()
            .expect("the stream stays open until told");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut kind = String::from("message");
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(k) = line.strip_prefix("event:") {
                    kind = k.trim().to_string();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push(d.strip_prefix(' ').unwrap_or(d).to_string());
                }
            }
            if !data.is_empty() {
                events.push((kind, data.join("\n")));
            }
        }
    }
    events
}
