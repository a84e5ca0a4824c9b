//! PostgreSQL: the backend for several nodes on one database. The same operations as
//! SQLite, with what several nodes need on top: every leader write is fenced by the
//! leader's epoch in the same statement ([`lease`]), nodes register and heartbeat
//! ([`nodes`]), and every change is announced with NOTIFY so other nodes hear it.
//!
//! Two pools: the main one for the engine's work, and a small one of its own for the
//! lease and the node heartbeat, so a burst of runs can never starve the elector (River
//! #695). Every connection names itself (`application_name = echopilot:<node>`) so an
//! operator — or a chaos test — can find a node's sessions, and carries statement, lock
//! and idle-in-transaction timeouts and TCP keepalives so nothing waits on a dead peer
//! for long. The idle-in-transaction timeout is half the lease: every leader write holds
//! the lease row `FOR KEY SHARE` until it commits, which a takeover waits for, so a leader
//! frozen mid-transaction (SIGSTOP, a partition) must not hold the next one off longer.
//!
//! - [`jobs`], [`runs`], [`reports`]: the interface's operations.
//! - [`lease`]: the leader's lease and its history.
//! - [`nodes`]: the node registry and the rescue of dead nodes' runs.

mod alerts;
mod batch;
mod controls;
mod jobs;
pub mod lease;
pub mod nodes;
mod reports;
mod runs;

pub use runs::UNCLAIMED;

use crate::error::{EngineError, Result};
use crate::model::{DesiredState, Heartbeat};
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Row};
use std::str::FromStr;
use std::time::Duration;

/// How long opening the store waits for PostgreSQL to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Migrations compiled into the binary.
static PG_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The channel every change is announced on; the payload says what changed.
pub const CHANNEL: &str = "echopilot";

/// One reading of the database's clock: see [`PgStore::clock_sample`].
#[derive(Debug, Clone, Copy)]
pub struct ClockSample {
    pub sent_wall_us: i64,
    pub db_ms: i64,
    pub rtt: Duration,
}

/// A cheap, cloneable handle on the database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The lease's and the heartbeat's own connections.
    control: PgPool,
    /// Where the database is, credentials masked: for messages.
    shown: String,
    /// Group commit for runs queued and runs ended.
    batch: batch::Batcher,
}

fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

impl PgStore {
    /// Connects (naming this node in every session), applies the migrations.
    pub async fn open(url: &str, node: &str, ttl: Duration) -> Result<Self> {
        let shown = crate::secrets::mask_url(url);
        let open_err = |source| EngineError::OpenStore {
            path: shown.clone(),
            source,
        };
        let idle_in_transaction =
            format!("{}ms", (ttl / 2).max(Duration::from_secs(1)).as_millis());
        let options = PgConnectOptions::from_str(url)
            .map_err(open_err)?
            .application_name(&format!("echopilot:{node}"))
            .options([
                ("statement_timeout", "30s"),
                ("lock_timeout", "10s"),
                ("idle_in_transaction_session_timeout", &*idle_in_transaction),
                // The server finds a vanished node's sessions in ~11 s, not hours.
                ("tcp_keepalives_idle", "5"),
                ("tcp_keepalives_interval", "2"),
                ("tcp_keepalives_count", "3"),
            ]);
        // One connection first, so a wrong address or password is reported as itself
        // rather than as a pool that timed out.
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
            Ok(Ok(first)) => drop(first.close().await),
            Ok(Err(e)) => return Err(open_err(e)),
            Err(_) => {
                return Err(open_err(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
                ))))
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await
            .map_err(open_err)?;
        PG_MIGRATIONS
            .run(&pool)
            .await
            .map_err(|source| EngineError::Migrate {
                path: shown.clone(),
                source,
            })?;
        // The elector's, and the chores' (clock, heartbeat, registry) beside it.
        let control = PgPoolOptions::new()
            .max_connections(3)
            .acquire_timeout(Duration::from_secs(2))
            // A lock wait ends by itself before the elector gives up on the statement
            // (a cancelled statement leaves the connection busy until it ends).
            .connect_with(options.options([("statement_timeout", "3s"), ("lock_timeout", "300ms")]))
            .await
            .map_err(open_err)?;
        Ok(PgStore {
            batch: batch::Batcher::spawn(pool.clone()),
            pool,
            control,
            shown,
        })
    }

    /// The main pool (the notifier's LISTEN connection comes from it).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The database's address, credentials masked.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// One reading of the database's clock (ms) against `wall` (µs, read as the query is
    /// sent): the round trip is timed on a connection already in hand, so a wait for the
    /// pool does not skew the offset.
    pub async fn clock_sample(&self, wall: impl Fn() -> i64) -> Result<ClockSample> {
        let mut conn = self.control.acquire().await?;
        let sent_wall_us = wall();
        let sent = std::time::Instant::now();
        let db_ms = sqlx::query_scalar("SELECT echopilot_now_ms()")
            .fetch_one(&mut *conn)
            .await?;
        Ok(ClockSample {
            sent_wall_us,
            db_ms,
            rtt: sent.elapsed(),
        })
    }

    pub async fn desired_state(&self) -> Result<Option<DesiredState>> {
        let row: Option<String> =
            sqlx::query_scalar("SELECT desired FROM scheduler_state WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?;
        row.map(|d| DesiredState::parse(&d)).transpose()
    }

    /// Recorded, and announced: every node's loop follows the operator's intent.
    pub async fn set_desired_state(&self, desired: DesiredState, at: DateTime<Utc>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO scheduler_state (id, desired, updated_at) VALUES (1, $1, $2)
             ON CONFLICT (id) DO UPDATE SET desired = excluded.desired, updated_at = excluded.updated_at",
        )
        .bind(desired.as_str())
        .bind(at)
        .execute(&mut *tx)
        .await?;
        notify(&mut *tx, "desired").await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn record_heartbeat(&self, hb: &Heartbeat) -> Result<()> {
        let next_runs = serde_json::to_string(&hb.next_runs)
            .map_err(|e| EngineError::Corrupt(format!("next runs do not serialise: {e}")))?;
        sqlx::query(
            "INSERT INTO heartbeats (node, pid, started_at, at, next_runs) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (node) DO UPDATE SET pid = excluded.pid, started_at = excluded.started_at,
                 at = excluded.at, next_runs = excluded.next_runs",
        )
        .bind(&hb.node)
        .bind(i64::from(hb.pid))
        .bind(hb.started_at)
        .bind(hb.at)
        .bind(next_runs)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn last_heartbeat(&self, node: &str) -> Result<Option<Heartbeat>> {
        let row = sqlx::query(
            "SELECT node, pid, started_at, at, next_runs FROM heartbeats WHERE node = $1",
        )
        .bind(node)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let next_runs: String = row.try_get("next_runs")?;
        let pid: i64 = row.try_get("pid")?;
        Ok(Some(Heartbeat {
            node: row.try_get("node")?,
            pid: u32::try_from(pid)
                .map_err(|_| EngineError::Corrupt(format!("heartbeat pid {pid} out of range")))?,
            started_at: row.try_get("started_at")?,
            at: row.try_get("at")?,
            next_runs: serde_json::from_str(&next_runs)
                .map_err(|e| EngineError::Corrupt(format!("heartbeat next_runs: {e}")))?,
        }))
    }

    /// A real write, so a read-only or full database fails it.
    pub async fn ping_write(&self) -> Result<()> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('write-probe', echopilot_now_ms()::TEXT)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn fact(&self, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn record_fact(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Now by the database's clock, in ms.
    pub async fn db_now_ms(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT echopilot_now_ms()")
            .fetch_one(&self.control)
            .await?)
    }

    pub async fn close(&self) {
        self.control.close().await;
        self.pool.close().await;
    }
}

/// Announces `what` to every node listening (delivered when the statement's transaction
/// commits; outside one, at once).
async fn notify<'e, E>(executor: E, what: &str) -> Result<()>
where
    E: sqlx::PgExecutor<'e>,
{
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(what)
        .execute(executor)
        .await?;
    Ok(())
}
