//! The one harness the engine's tests and the benchmarks share: an engine on a data dir
//! with test defaults (hourly heartbeats, ledgers from the repository's `examples/`), the
//! clock and kinds a test chooses, and a few helpers to look at what happened — all
//! through the engine's own use cases, never around them.
//!
//! The backend is SQLite in the data dir, or — with `ECHOPILOT_TEST_BACKEND=postgres` —
//! PostgreSQL at `ECHOPILOT_TEST_DATABASE_URL` (which `scripts/with-postgres.sh` sets),
//! one database per data dir, so a test that reopens its engine finds its data again.

use crate::{Clock, Engine, EngineConfig, Kinds, Run, RunQuery, SystemClock};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How a test engine is opened.
pub struct Options {
    pub config: EngineConfig,
    pub kinds: Kinds,
    pub clock: Arc<dyn Clock>,
}

impl Options {
    /// Test defaults on `dir`: node `t`, hourly heartbeats, the built-in kinds, the system
    /// clock, ledgers from the data dir and `../examples` (tests run in a crate's folder).
    pub fn new(dir: &Path) -> Self {
        Options {
            config: EngineConfig {
                heartbeat: Duration::from_secs(3600),
                node: "t".into(),
                ledger_dirs: vec![dir.to_path_buf(), "../examples".into()],
                ..EngineConfig::new(dir)
            },
            kinds: Kinds::builtin(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Hosts outbound requests may reach although they are loopback or private.
    pub fn allow(mut self, hosts: &[&str]) -> Self {
        self.config.http_allow = hosts.iter().map(|h| h.to_string()).collect();
        self
    }

    pub fn shell(mut self, allowed: bool) -> Self {
        self.config.allow_shell = allowed;
        self
    }

    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn kinds(mut self, kinds: Kinds) -> Self {
        self.kinds = kinds;
        self
    }

    pub fn node(mut self, node: &str) -> Self {
        self.config.node = node.into();
        self
    }

    pub async fn open(mut self) -> TestEngine {
        self.config.database_url = database_for(&self.config.data_dir).await;
        let engine = Engine::open(self.config, self.kinds, self.clock)
            .await
            .expect("the engine opens");
        TestEngine { engine }
    }
}

/// An engine under test.
pub struct TestEngine {
    pub engine: Engine,
}

impl std::ops::Deref for TestEngine {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        &self.engine
    }
}

impl TestEngine {
    /// An engine on `dir` with the test defaults.
    pub async fn open(dir: &Path) -> Self {
        Options::new(dir).open().await
    }

    /// Every run of `job`, oldest first.
    pub async fn runs_of(&self, job: &str) -> Vec<Run> {
        self.history().runs_of(job).await.expect("runs are listed")
    }

    /// A handle for reading the run history (cheap to clone into wait conditions).
    pub fn history(&self) -> History {
        History {
            engine: self.engine.clone(),
        }
    }

    /// Creates job `id` (replacing one of that id) of `kind` with `params`, runs it now and
    /// waits for its end (up to 25 s); answers the run.
    pub async fn run_job(
        &self,
        id: &str,
        kind: &str,
        params: serde_json::Value,
        timeout_secs: u64,
    ) -> Run {
        let _ = self.engine.delete_job(id).await;
        self.engine
            .create_job(crate::JobSpec {
                id: Some(id.into()),
                kind: Some(kind.into()),
                schedule: Some("@every 24h".into()),
                timeout_secs: Some(timeout_secs),
                params: Some(params),
                ..Default::default()
            })
            .await
            .expect("the job is created");
        let run = self
            .engine
            .run_now(id, crate::Trigger::Api)
            .await
            .expect("the run starts");
        self.engine
            .wait_run(run.id, Duration::from_secs(25))
            .await
            .expect("the run is read")
    }

    /// Waits (polling, up to `within`) until `pred` holds; panics naming `what` if not.
    pub async fn wait_until<F, Fut>(&self, what: &str, within: Duration, pred: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + within;
        while !pred().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Shuts down as a server would, but with no grace: runs still in flight are
    /// interrupted at once.
    pub async fn close(self) {
        self.engine.shutdown(Duration::ZERO).await;
    }
}

/// Reads the run history through the engine.
#[derive(Clone)]
pub struct History {
    engine: Engine,
}

impl History {
    /// Every run of `job`, oldest first.
    pub async fn runs_of(&self, job: &str) -> crate::Result<Vec<Run>> {
        let mut all = Vec::new();
        let mut before = None;
        loop {
            let page = self
                .engine
                .list_runs(&RunQuery {
                    job: Some(job.into()),
                    before,
                    limit: 500,
                    ..RunQuery::default()
                })
                .await?;
            let done = page.len() < 500;
            before = page.last().map(|r| r.id);
            all.extend(page);
            if done {
                break;
            }
        }
        all.reverse();
        Ok(all)
    }

    pub async fn list_runs(&self, q: &RunQuery) -> crate::Result<Vec<Run>> {
        self.engine.list_runs(q).await
    }
}

/// The backend the tests run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    /// A PostgreSQL server, by a superuser's URL (each test makes its own database).
    Postgres(String),
}

/// The backend chosen by `ECHOPILOT_TEST_BACKEND` (`sqlite`, the default, or `postgres`).
/// Asking for PostgreSQL without a server fails the test: it is never skipped.
pub fn backend() -> Backend {
    match std::env::var("ECHOPILOT_TEST_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres(postgres_url()),
        Ok("sqlite") | Err(_) => Backend::Sqlite,
        Ok(other) => panic!("ECHOPILOT_TEST_BACKEND={other:?}: expected sqlite or postgres"),
    }
}

/// The test server's URL; a test that needs PostgreSQL fails without one.
pub fn postgres_url() -> String {
    std::env::var("ECHOPILOT_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!("ECHOPILOT_TEST_DATABASE_URL is not set: run the tests through scripts/with-postgres.sh (make test does)")
    })
}

/// The store a test engine on `dir` uses, opened again (as another process would).
pub async fn open_store(dir: &Path) -> crate::store::Store {
    match database_for(dir).await {
        Some(url) => crate::store::Store::open_postgres(
            &url,
            "test-writer",
            std::time::Duration::from_secs(10),
        )
        .await
        .expect("the store opens"),
        None => crate::store::Store::open_sqlite(&dir.join("echopilot.db"))
            .await
            .expect("the store opens"),
    }
}

/// On PostgreSQL, the URL of the database that belongs to `dir` (created when missing);
/// on SQLite, `None` (the store is the data dir's file).
pub async fn database_for(dir: &Path) -> Option<String> {
    let Backend::Postgres(admin) = backend() else {
        return None;
    };
    Some(fresh_database(&admin, &database_name(dir)).await)
}

/// A database named `name` on the server at `admin` (created when missing); its URL.
pub async fn fresh_database(admin: &str, name: &str) -> String {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .expect("the test PostgreSQL answers");
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut conn)
        .await
        .expect("pg_database is readable");
    if exists.is_none() {
        // Names are made of hex digits here; nothing of a caller's reaches the SQL.
        let created = sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await;
        if let Err(e) = created {
            // Another test of the same data dir made it first: as good.
            if !e.to_string().contains("already exists") {
                panic!("cannot create the test database {name}: {e}");
            }
        }
    }
    let _ = conn.close().await;
    let mut url = reqwest::Url::parse(admin).expect("the test database URL parses");
    url.set_path(name);
    url.to_string()
}

/// A database name for `dir`: `t_` and a hash of its path (FNV-1a), stable per dir.
fn database_name(dir: &Path) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in dir.as_os_str().as_encoded_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("t_{h:016x}")
}

/// Makes `node` the leader of `store` and answers its epoch: on PostgreSQL it takes the
/// lease (from whoever held it) for an hour; SQLite has one leader for good, epoch 0.
pub async fn lead(store: &crate::store::Store, node: &str) -> i64 {
    let Some(pg) = store.postgres() else { return 0 };
    expire_lease(store).await;
    match pg
        .acquire_lease(node, 3_600_000)
        .await
        .expect("the lease is readable")
    {
        crate::store::postgres::lease::Acquired::Granted(grant) => grant.epoch,
        held => panic!("an expired lease is taken, not {held:?}"),
    }
}

/// Lets the lease lapse now (as if its holder died long ago). SQLite: nothing to do.
pub async fn expire_lease(store: &crate::store::Store) {
    if let Some(pg) = store.postgres() {
        sqlx::query("UPDATE scheduler_lease SET expires_ms = 0")
            .execute(pg.pool())
            .await
            .expect("the lease can be expired");
    }
}

/// Reads one HTTP request from `sock`: its head as text and its body (by
/// `content-length`); `None` when the client went away first.
pub async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::io::AsyncReadExt::read(sock, &mut chunk)
            .await
            .unwrap_or(0);
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .and_then(|v| v.trim().parse().ok())
                })
                .unwrap_or(0);
            while buf.len() < i + 4 + len {
                let n = tokio::io::AsyncReadExt::read(sock, &mut chunk)
                    .await
                    .unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some((head, buf[i + 4..].to_vec()));
        }
    }
}

pub mod peers;
