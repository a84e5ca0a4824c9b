//! SQLite in the data dir: the first backend of [`crate::store::Store`].
//!
//! SQLite allows one writer at a time. Rather than let many connections race for the
//! write lock and hit "database is locked", every write goes through a pool of exactly
//! one connection and opens its transaction with `BEGIN IMMEDIATE`, so the lock is taken
//! up front and writers queue in the pool instead of failing. Reads use a separate pool
//! and, thanks to WAL, never wait for the writer. The hot writes (slot claims, run starts
//! and ends) are group-committed by [`writer`].
//!
//! - [`jobs`]: jobs and their slot cursors.
//! - [`runs`]: the runs' state machine and run listings.
//! - [`reports`]: figures, retention and the audit log.

mod alerts;
mod controls;
mod jobs;
mod reports;
mod runs;
mod writer;

use crate::error::{EngineError, Result};
use crate::model::{DesiredState, Heartbeat};
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Migrations compiled into the binary, so a fresh data dir needs no set-up.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A cheap, cloneable handle on one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Exactly one connection: the single writer (see the module docs).
    writer: SqlitePool,
    /// Readers; WAL lets them proceed while the writer holds its lock.
    reader: SqlitePool,
    /// The group-commit queue for run rows (see [`writer`]).
    batch: tokio::sync::mpsc::Sender<writer::Op>,
}

/// Milliseconds since the epoch, the store's time format.
fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

impl SqliteStore {
    /// Opens (creating if missing) the SQLite file at `path` and applies migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        let shown = path.display().to_string();
        let open_err = |source| EngineError::OpenStore {
            path: shown.clone(),
            source,
        };
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await
            .map_err(open_err)?;
        SQLITE_MIGRATIONS
            .run(&writer)
            .await
            .map_err(|source| EngineError::Migrate {
                path: shown.clone(),
                source,
            })?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.read_only(true))
            .await
            .map_err(open_err)?;
        let batch = writer::spawn(writer.clone());
        Ok(Self {
            writer,
            reader,
            batch,
        })
    }

    /// Queues a write for the group-commit task and waits for its committed answer.
    async fn submit<T>(
        &self,
        op: writer::Op,
        answer: tokio::sync::oneshot::Receiver<Result<T, Arc<sqlx::Error>>>,
    ) -> Result<T> {
        self.batch
            .send(op)
            .await
            .map_err(|_| EngineError::WriterGone)?;
        answer
            .await
            .map_err(|_| EngineError::WriterGone)?
            .map_err(EngineError::Write)
    }

    /// The stored intent, or `None` on a store that has never been told.
    pub async fn desired_state(&self) -> Result<Option<DesiredState>> {
        let row = sqlx::query("SELECT desired FROM scheduler_state WHERE id = 1")
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| DesiredState::parse(r.get::<&str, _>(0)))
            .transpose()
    }

    /// Records the operator's intent durably before the scheduler acts on it.
    pub async fn set_desired_state(&self, desired: DesiredState, at: DateTime<Utc>) -> Result<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO scheduler_state (id, desired, updated_at) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET desired = excluded.desired, updated_at = excluded.updated_at",
        )
        .bind(desired.as_str())
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores a node's latest heartbeat.
    pub async fn record_heartbeat(&self, hb: &Heartbeat) -> Result<()> {
        let next_runs = serde_json::to_string(&hb.next_runs)
            .map_err(|e| EngineError::Corrupt(format!("next runs do not serialise: {e}")))?;
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO heartbeats (node, pid, started_at, at, next_runs) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (node) DO UPDATE SET pid = excluded.pid, started_at = excluded.started_at,
                 at = excluded.at, next_runs = excluded.next_runs",
        )
        .bind(&hb.node)
        .bind(i64::from(hb.pid))
        .bind(hb.started_at)
        .bind(hb.at)
        .bind(next_runs)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The latest stored heartbeat of `node`.
    pub async fn last_heartbeat(&self, node: &str) -> Result<Option<Heartbeat>> {
        let row = sqlx::query(
            "SELECT node, pid, started_at, at, next_runs FROM heartbeats WHERE node = ?1",
        )
        .bind(node)
        .fetch_optional(&self.reader)
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

    /// A cheap write probe: proves the store accepts writes right now.
    pub async fn ping_write(&self) -> Result<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("SELECT 1").execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A small fact about the store itself.
    pub async fn fact(&self, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = ?1")
            .bind(key)
            .fetch_optional(&self.reader)
            .await?)
    }

    pub async fn record_fact(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Closes both pools, flushing the WAL on the way out.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}
