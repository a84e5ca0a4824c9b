//! Several real `echopilot` processes on one real PostgreSQL (the private cluster of
//! `scripts/with-postgres.sh`), each reaching it through its own [`proxy::Proxy`], with an
//! independent [`witness::Witness`] of executions.
//!
//! - [`nodes`]: what several nodes promise one at a time — status, run now anywhere,
//!   waiting and following a run on another node, 503 when cut off, bad URLs, shell
//!   children dying with a `kill -9`'d server.
//! - [`chaos`]: the faults, round after round, and the figures (`make chaos` prints them).

mod chaos;
mod nodes;
mod proxy;
mod witness;

use crate::support::{spawn, Opts, TestServer};
use proxy::Proxy;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use witness::Witness;

/// One node: its proxy, and its server process while it is up.
pub struct Node {
    pub name: String,
    pub proxy: Proxy,
    pub server: Option<TestServer>,
    /// The id of its current process in the registry.
    pub id: String,
    pub data_dir: PathBuf,
    pub skew_ms: i64,
    /// More environment for its processes (failpoints).
    pub env: Vec<(String, String)>,
}

impl Node {
    pub fn up(&self) -> &TestServer {
        self.server.as_ref().expect("the node is up")
    }

    pub fn pid(&self) -> i32 {
        self.up().pid()
    }
}

pub struct Cluster {
    /// The test's own way in (not through any proxy).
    pub db: sqlx::PgPool,
    /// The database's URL, as a node would be given it, but for `port`.
    db_url: reqwest::Url,
    pub witness: Witness,
    pub nodes: Vec<Node>,
    pub ttl_secs: u64,
    pub dir: tempfile::TempDir,
}

/// The flags a node gets besides the database and its name.
const GRACE_SECS: &str = "2";

impl Cluster {
    /// `n` nodes (`n1`…), with a fresh database and lease TTL `ttl_secs`; node `i` with
    /// `skews[i]` ms on its clock (missing: none). The first node up leads.
    pub async fn start(n: usize, ttl_secs: u64, skews: &[i64]) -> Cluster {
        Self::start_with(n, ttl_secs, skews, |_| Vec::new()).await
    }

    /// [`Cluster::start`], node `i`'s processes with `env(i)` too.
    pub async fn start_with(
        n: usize,
        ttl_secs: u64,
        skews: &[i64],
        env: impl Fn(usize) -> Vec<(String, String)>,
    ) -> Cluster {
        let admin = engine::testing::postgres_url();
        let dir = tempfile::tempdir().expect("temp dir");
        let name = format!(
            "c_{}_{:x}",
            std::process::id(),
            witness::wall_ms() as u64 & 0xffff_ffff
        );
        let url = engine::testing::fresh_database(&admin, &name).await;
        let db = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .expect("the test database answers");
        let db_url = reqwest::Url::parse(&url).expect("a URL");
        let upstream: SocketAddr = format!(
            "{}:{}",
            db_url.host_str().expect("a host"),
            db_url.port().unwrap_or(5432)
        )
        .parse()
        .expect("a loopback address");
        let mut nodes = Vec::new();
        for i in 0..n {
            let name = format!("n{}", i + 1);
            nodes.push(Node {
                data_dir: dir.path().join(&name),
                name,
                proxy: Proxy::start(upstream).await,
                server: None,
                id: String::new(),
                skew_ms: skews.get(i).copied().unwrap_or(0),
                env: env(i),
            });
        }
        let mut cluster = Cluster {
            db,
            db_url,
            witness: Witness::start().await,
            nodes,
            ttl_secs,
            dir,
        };
        for i in 0..n {
            cluster.boot(i).await;
        }
        cluster
    }

    /// Starts node `i` (again): a new process, a new id.
    pub async fn boot(&mut self, i: usize) {
        let node = &self.nodes[i];
        let mut url = self.db_url.clone();
        url.set_port(Some(node.proxy.port)).expect("a port");
        let opts = Opts {
            data_dir: Some(node.data_dir.clone()),
            grace_secs: Some(GRACE_SECS.parse().expect("a number")),
            heartbeat_secs: Some(5),
            env: [
                ("ECHOPILOT_DATABASE_URL".into(), url.to_string()),
                ("ECHOPILOT_CLOCK_SKEW_MS".into(), node.skew_ms.to_string()),
                ("RUST_LOG".into(), "warn,engine::cluster=debug".into()),
            ]
            .into_iter()
            .chain(node.env.iter().cloned())
            .collect(),
            args: [
                "--node",
                &node.name,
                "--lease-ttl-secs",
                &self.ttl_secs.to_string(),
                "--http-allow",
                "127.0.0.1",
                "--allow-shell",
            ]
            .map(String::from)
            .to_vec(),
            ..Opts::default()
        };
        let server = tokio::task::spawn_blocking(move || spawn(opts))
            .await
            .expect("the spawner")
            .unwrap_or_else(|(status, err)| panic!("node did not start ({status}): {err}"));
        let status = server.json("GET", "/api/automations/status").await;
        let node = &mut self.nodes[i];
        node.id = status["node"].as_str().expect("a node id").to_string();
        node.server = Some(server);
    }

    /// Sends `sig` to node `i`.
    pub fn signal(&self, i: usize, sig: i32) {
        self.nodes[i].up().signal(sig);
    }

    /// Kills node `i` with SIGKILL and reaps it.
    pub fn kill(&mut self, i: usize) {
        let mut server = self.nodes[i].server.take().expect("the node is up");
        server.signal(libc::SIGKILL);
        server.wait_exit(Duration::from_secs(10));
    }

    /// Stops node `i` with SIGTERM, waiting for it to exit by itself.
    pub fn terminate(&mut self, i: usize) {
        let mut server = self.nodes[i].server.take().expect("the node is up");
        server.signal(libc::SIGTERM);
        let status = server.wait_exit(Duration::from_secs(30));
        assert!(
            status.success(),
            "{} exited {status}: {}",
            self.nodes[i].name,
            server.stderr()
        );
    }

    /// The lease as the database has it: `(epoch, holder)` while someone holds it.
    pub async fn lease(&self) -> Option<(i64, String)> {
        sqlx::query_as(
            "SELECT epoch, holder FROM scheduler_lease
             WHERE id = 1 AND holder IS NOT NULL AND expires_ms > echopilot_now_ms()",
        )
        .fetch_optional(&self.db)
        .await
        .expect("the lease is readable")
    }

    /// The node (index) holding the lease, waiting for one (up to `within`).
    pub async fn leader(&self, within: Duration) -> (usize, i64) {
        self.leader_after(0, within).await
    }

    /// The node (index) holding the lease with an epoch newer than `epoch`, waiting for
    /// one (up to `within`).
    pub async fn leader_after(&self, epoch: i64, within: Duration) -> (usize, i64) {
        let deadline = Instant::now() + within;
        let newer = epoch;
        loop {
            if let Some((epoch, holder)) = self.lease().await.filter(|(e, _)| *e > newer) {
                if let Some(i) = self
                    .nodes
                    .iter()
                    .position(|n| n.server.is_some() && n.id == holder)
                {
                    return (i, epoch);
                }
            }
            assert!(
                Instant::now() < deadline,
                "no node up leads after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every node that is up is in the registry and heartbeating.
    pub async fn settled(&self, within: Duration) {
        let deadline = Instant::now() + within;
        self.leader(within).await;
        loop {
            let alive: Vec<String> =
                sqlx::query_scalar("SELECT id FROM nodes WHERE expires_ms > echopilot_now_ms()")
                    .fetch_all(&self.db)
                    .await
                    .expect("the registry is readable");
            if self
                .nodes
                .iter()
                .filter(|n| n.server.is_some())
                .all(|n| alive.contains(&n.id))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nodes did not all join: {alive:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits (up to `within`) until the leader is done recovering — its loop claims one
    /// slot of every every-second job ahead, so they start on their instant (a takeover's
    /// late slots start after theirs, and a claim held up by the last fault has no row
    /// yet) — so one fault does not fall into the recovery from the last.
    pub async fn fires_on_time(&self, within: Duration) {
        let deadline = Instant::now() + within;
        // A slot after the fault: one before it says nothing of the recovery.
        let since = self.db_now_ms().await;
        loop {
            let (_, epoch) = self.leader(within).await;
            let on_time: Option<i64> = sqlx::query_scalar(
                "SELECT r.scheduled_ms FROM runs r JOIN jobs j ON j.id = r.job_id
                 WHERE r.epoch = $1 AND r.trigger = 'schedule' AND r.started_ms = r.scheduled_ms
                   AND r.scheduled_ms > $2 AND j.schedule = '* * * * * *'
                 GROUP BY r.scheduled_ms
                 HAVING count(*) = (SELECT count(*) FROM jobs
                                    WHERE schedule = '* * * * * *' AND enabled)
                 LIMIT 1",
            )
            .bind(epoch)
            .bind(since)
            .fetch_optional(&self.db)
            .await
            .expect("runs are readable");
            if on_time.is_some() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the leader of epoch {epoch} does not fire every job on time"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The database's clock, in ms.
    pub async fn db_now_ms(&self) -> i64 {
        sqlx::query_scalar("SELECT echopilot_now_ms()")
            .fetch_one(&self.db)
            .await
            .expect("the database answers")
    }

    /// Runs still `running` on node id `node`.
    pub async fn running_on(&self, node: &str) -> Vec<i64> {
        sqlx::query_scalar("SELECT id FROM runs WHERE node = $1 AND status = 'running'")
            .bind(node)
            .fetch_all(&self.db)
            .await
            .expect("runs are readable")
    }

    /// The first run (not a skipped slot) recorded under an epoch newer than `epoch`: when
    /// it was recorded (database clock, ms).
    pub async fn first_fire_after(&self, epoch: i64) -> Option<i64> {
        sqlx::query_scalar(
            "SELECT min(recorded_ms) FROM runs WHERE epoch > $1 AND status <> 'skipped'",
        )
        .bind(epoch)
        .fetch_one(&self.db)
        .await
        .expect("runs are readable")
    }

    /// The lines of the running nodes' logs that `keep` keeps, each after its node's name.
    pub fn log_lines(&self, keep: impl Fn(&str) -> bool) -> Vec<String> {
        self.nodes
            .iter()
            .filter_map(|n| Some((n, n.server.as_ref()?.stderr())))
            .flat_map(|(n, log)| {
                log.lines()
                    .filter(|l| keep(l))
                    .map(|l| format!("{}: {l}", n.name))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Any node that is up, to talk to.
    pub fn any(&self) -> &TestServer {
        self.nodes
            .iter()
            .find_map(|n| n.server.as_ref())
            .expect("a node is up")
    }

    /// Stops every node gracefully.
    pub fn stop_all(&mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].server.is_some() {
                self.terminate(i);
            }
        }
    }
}

/// Whether `pid` is gone (or a zombie no one reaped yet: it runs no more either way).
pub fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

/// Polls `check` every 20 ms until it answers `Some`, up to `within`; `None` past it.
pub async fn within<T, F, Fut>(within: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
