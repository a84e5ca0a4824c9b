//! The durable store: the source of truth for the scheduler's intent and heartbeats (and,
//! as the engine grows, jobs and runs). SQLite in the data dir by default.
//!
//! SQLite allows one writer at a time. Rather than let many connections race for the
//! write lock and hit "database is locked", every write goes through a pool of exactly
//! one connection and opens its transaction with `BEGIN IMMEDIATE`, so the lock is taken
//! up front and writers queue in the pool instead of failing. Reads use a separate pool
//! and, thanks to WAL, never wait for the writer.

use crate::error::{EngineError, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;
use std::path::Path;
use std::time::Duration;

/// Migrations compiled into the binary, so a fresh data dir needs no set-up.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// What the operator last asked the scheduler to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DesiredState {
    Running,
    Stopped,
}

impl DesiredState {
    fn as_str(self) -> &'static str {
        match self {
            DesiredState::Running => "running",
            DesiredState::Stopped => "stopped",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "running" => Ok(DesiredState::Running),
            "stopped" => Ok(DesiredState::Stopped),
            other => Err(EngineError::Corrupt(format!(
                "scheduler_state.desired is {other:?}, expected running or stopped"
            ))),
        }
    }
}

/// A job's next planned run, as recorded with each heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextRun {
    pub job: String,
    pub at: DateTime<Utc>,
}

/// One heartbeat of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub node: String,
    pub pid: u32,
    pub started_at: DateTime<Utc>,
    pub at: DateTime<Utc>,
    pub next_runs: Vec<NextRun>,
}

/// A cheap, cloneable handle on the store.
#[derive(Debug, Clone)]
pub struct Store {
    /// Exactly one connection: the single writer (see the module docs).
    writer: SqlitePool,
    /// Readers; WAL lets them proceed while the writer holds its lock.
    reader: SqlitePool,
    /// The group-commit queue for run rows (see [`crate::writer`]).
    batch: tokio::sync::mpsc::Sender<crate::writer::Op>,
}

impl Store {
    /// Opens (creating if missing) the SQLite file at `path` and applies migrations.
    pub async fn open_sqlite(path: &Path) -> Result<Self> {
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
        let batch = crate::writer::spawn(writer.clone());
        Ok(Self {
            writer,
            reader,
            batch,
        })
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

    /// Closes both pools, flushing the WAL on the way out.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

// ---- jobs and runs -------------------------------------------------------------------

use crate::model::{Job, Misfire, Overlap, Run, RunQuery, RunStatus, Trigger};

/// Milliseconds since the epoch, the store's time format.
pub fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.and_then(DateTime::from_timestamp_millis)
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// `SELECT <run columns> FROM runs` followed by `$tail`, as one static string.
macro_rules! select_runs {
    ($tail:literal) => {
        concat!(
            "SELECT id, job_id, trigger, status, scheduled_ms, started_ms, finished_ms, attempt, output, error, node FROM runs",
            $tail
        )
    };
}

const JOB_COLUMNS: &str = "id, name, kind, schedule, timezone, enabled, timeout_secs, retries, retry_backoff_secs, overlap, misfire, params, last_slot_ms";
const RUN_COLUMNS: &str = "id, job_id, trigger, status, scheduled_ms, started_ms, finished_ms, attempt, output, error, node";

fn job_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<(Job, i64)> {
    let corrupt = |what: &str, v: &str| EngineError::Corrupt(format!("job {what} {v:?}"));
    let overlap: String = row.try_get("overlap")?;
    let misfire: String = row.try_get("misfire")?;
    let params: String = row.try_get("params")?;
    let job = Job {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        kind: row.try_get("kind")?,
        schedule: row.try_get("schedule")?,
        timezone: row.try_get("timezone")?,
        enabled: row.try_get("enabled")?,
        timeout_secs: row.try_get::<i64, _>("timeout_secs")?.max(1) as u64,
        retries: row.try_get::<i64, _>("retries")?.max(0) as u32,
        retry_backoff_secs: row.try_get::<i64, _>("retry_backoff_secs")?.max(0) as u64,
        overlap: Overlap::parse(&overlap).ok_or_else(|| corrupt("overlap", &overlap))?,
        misfire: Misfire::parse(&misfire).ok_or_else(|| corrupt("misfire", &misfire))?,
        params: serde_json::from_str(&params).map_err(|_| corrupt("params", &params))?,
        next_run_at: None,
    };
    Ok((job, row.try_get("last_slot_ms")?))
}

fn run_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Run> {
    let trigger: String = row.try_get("trigger")?;
    let status: String = row.try_get("status")?;
    let output: Option<String> = row.try_get("output")?;
    Ok(Run {
        id: row.try_get("id")?,
        job_id: row.try_get("job_id")?,
        trigger: Trigger::parse(&trigger)
            .ok_or_else(|| EngineError::Corrupt(format!("run trigger {trigger:?}")))?,
        status: RunStatus::parse(&status)
            .ok_or_else(|| EngineError::Corrupt(format!("run status {status:?}")))?,
        scheduled_at: from_ms(row.try_get("scheduled_ms")?),
        started_at: from_ms(row.try_get("started_ms")?),
        finished_at: from_ms(row.try_get("finished_ms")?),
        attempt: row.try_get::<i64, _>("attempt")?.max(1) as u32,
        output: output
            .map(|o| serde_json::from_str(&o).unwrap_or(serde_json::Value::String(o)))
            .unwrap_or_else(|| serde_json::json!({})),
        error: row.try_get("error")?,
        node: row.try_get("node")?,
    })
}

/// A new run row.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub job_id: &'a str,
    pub trigger: Trigger,
    pub status: RunStatus,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub attempt: u32,
    pub error: Option<&'a str>,
    pub node: &'a str,
}

impl Store {
    pub async fn insert_job(&self, job: &Job, now: DateTime<Utc>) -> Result<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let r = sqlx::query(
            "INSERT INTO jobs (id, name, kind, schedule, timezone, enabled, timeout_secs, retries, retry_backoff_secs,
                               overlap, misfire, params, last_slot_ms, created_ms, updated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13, ?13)",
        )
        .bind(&job.id)
        .bind(&job.name)
        .bind(&job.kind)
        .bind(&job.schedule)
        .bind(&job.timezone)
        .bind(job.enabled)
        .bind(job.timeout_secs as i64)
        .bind(i64::from(job.retries))
        .bind(job.retry_backoff_secs as i64)
        .bind(job.overlap.as_str())
        .bind(job.misfire.as_str())
        .bind(job.params.to_string())
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await;
        match r {
            Err(e) if is_unique_violation(&e) => {
                return Err(EngineError::Conflict(format!(
                    "a job with id {:?} already exists",
                    job.id
                )))
            }
            r => r?,
        };
        tx.commit().await?;
        Ok(())
    }

    /// Replaces a job's fields. Changing the schedule restarts catch-up from `now`.
    pub async fn update_job(&self, job: &Job, reset_slot: bool, now: DateTime<Utc>) -> Result<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query(
            "UPDATE jobs SET name = ?2, kind = ?3, schedule = ?4, timezone = ?5, enabled = ?6, timeout_secs = ?7,
                 retries = ?8, retry_backoff_secs = ?9, overlap = ?10, misfire = ?11, params = ?12, updated_ms = ?13,
                 last_slot_ms = CASE WHEN ?14 THEN ?13 ELSE last_slot_ms END
             WHERE id = ?1",
        )
        .bind(&job.id)
        .bind(&job.name)
        .bind(&job.kind)
        .bind(&job.schedule)
        .bind(&job.timezone)
        .bind(job.enabled)
        .bind(job.timeout_secs as i64)
        .bind(i64::from(job.retries))
        .bind(job.retry_backoff_secs as i64)
        .bind(job.overlap.as_str())
        .bind(job.misfire.as_str())
        .bind(job.params.to_string())
        .bind(to_ms(now))
        .bind(reset_slot)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(EngineError::NotFound(format!(
                "no job with id {:?}",
                job.id
            )));
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_job(&self, id: &str) -> Result<bool> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query("DELETE FROM jobs WHERE id = ?1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Every job with the last slot it claimed (ms).
    pub async fn list_jobs(&self) -> Result<Vec<(Job, i64)>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs ORDER BY id"
        )))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(job_from_row).collect()
    }

    pub async fn get_job(&self, id: &str) -> Result<Option<Job>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"
        )))
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref()
            .map(job_from_row)
            .transpose()
            .map(|o| o.map(|(j, _)| j))
    }

    /// Inserts a run row; for scheduled triggers this is the claim of the slot, and
    /// `None` means another claim of the same (job, slot) got there first.
    pub async fn insert_run(&self, run: &NewRun<'_>) -> Result<Option<i64>> {
        let row = crate::writer::RunRow {
            job_id: run.job_id.to_string(),
            trigger: run.trigger.as_str(),
            status: run.status.as_str(),
            scheduled_at: run.scheduled_at,
            started_at: run.started_at,
            attempt: run.attempt,
            error: run.error.map(str::to_string),
            node: run.node.to_string(),
            advances_slot: matches!(run.trigger, Trigger::Schedule | Trigger::CatchUp),
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.submit(crate::writer::Op::InsertRun(row, reply), answer)
            .await
    }

    /// Queues a write for the group-commit task and waits for its committed answer.
    async fn submit<T>(
        &self,
        op: crate::writer::Op,
        answer: tokio::sync::oneshot::Receiver<Result<T, String>>,
    ) -> Result<T> {
        let gone = || EngineError::Write("the store's writer has stopped".into());
        self.batch.send(op).await.map_err(|_| gone())?;
        answer
            .await
            .map_err(|_| gone())?
            .map_err(EngineError::Write)
    }

    /// Records many skipped slots of one job in one transaction (catch-up after downtime).
    pub async fn insert_skipped_slots(
        &self,
        job_id: &str,
        slots: &[DateTime<Utc>],
        reason: &str,
        now: DateTime<Utc>,
        node: &str,
    ) -> Result<u64> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut n = 0;
        for slot in slots {
            let r = sqlx::query(
                "INSERT INTO runs (job_id, trigger, status, scheduled_ms, started_ms, finished_ms, attempt, error, node)
                 VALUES (?1, 'schedule', 'skipped', ?2, NULL, ?3, 1, ?4, ?5) ON CONFLICT DO NOTHING",
            )
            .bind(job_id)
            .bind(to_ms(*slot))
            .bind(to_ms(now))
            .bind(reason)
            .bind(node)
            .execute(&mut *tx)
            .await?;
            n += r.rows_affected();
        }
        if let Some(last) = slots.last() {
            sqlx::query("UPDATE jobs SET last_slot_ms = MAX(last_slot_ms, ?2) WHERE id = ?1")
                .bind(job_id)
                .bind(to_ms(*last))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    pub async fn mark_started(&self, id: i64, at: DateTime<Utc>) -> Result<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("UPDATE runs SET status = 'running', started_ms = ?2 WHERE id = ?1")
            .bind(id)
            .bind(to_ms(at))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn finish_run(
        &self,
        id: i64,
        status: RunStatus,
        at: DateTime<Utc>,
        output: Option<&serde_json::Value>,
        error: Option<&str>,
        log: Option<&str>,
    ) -> Result<()> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let op = crate::writer::Op::FinishRun {
            id,
            status: status.as_str(),
            at,
            output: output.map(|o| o.to_string()),
            error: error.map(str::to_string),
            log: log.map(str::to_string),
            reply,
        };
        self.submit(op, answer).await
    }

    /// Runs left queued or running by a process that is gone become `interrupted`.
    pub async fn interrupt_unfinished(&self, reason: &str, at: DateTime<Utc>) -> Result<Vec<Run>> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE runs SET status = 'interrupted', finished_ms = ?2, error = ?1
             WHERE status IN ('queued', 'running') RETURNING {RUN_COLUMNS}"
        )))
        .bind(reason)
        .bind(to_ms(at))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(run_from_row).collect()
    }

    /// Run `id`'s stored log (empty until the run ends); `None` when there is no such run.
    pub async fn run_log(&self, id: i64) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT log FROM runs WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?)
    }

    pub async fn get_run(&self, id: i64) -> Result<Option<Run>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"
        )))
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    /// Newest first, filtered, at most `limit` (1-500). One statement per filter shape, so
    /// each uses its own index rather than a plan that fits all shapes badly.
    pub async fn list_runs(&self, q: &RunQuery) -> Result<Vec<Run>> {
        let before = q.before.unwrap_or(i64::MAX);
        let limit = i64::from(q.limit.clamp(1, 500));
        let query = match (&q.job, q.status) {
            (None, None) => sqlx::query(select_runs!(" WHERE id < ?1 ORDER BY id DESC LIMIT ?2"))
                .bind(before)
                .bind(limit),
            (Some(job), None) => sqlx::query(select_runs!(
                " WHERE job_id = ?3 AND id < ?1 ORDER BY id DESC LIMIT ?2"
            ))
            .bind(before)
            .bind(limit)
            .bind(job.as_str()),
            (None, Some(status)) => sqlx::query(select_runs!(
                " WHERE status = ?3 AND id < ?1 ORDER BY id DESC LIMIT ?2"
            ))
            .bind(before)
            .bind(limit)
            .bind(status.as_str()),
            (Some(job), Some(status)) => sqlx::query(select_runs!(
                " WHERE job_id = ?3 AND status = ?4 AND id < ?1 ORDER BY id DESC LIMIT ?2"
            ))
            .bind(before)
            .bind(limit)
            .bind(job.as_str())
            .bind(status.as_str()),
        };
        let rows = query.fetch_all(&self.reader).await?;
        rows.iter().map(run_from_row).collect()
    }

    /// Run rows of one job, oldest first; for tests and reports.
    pub async fn runs_of(&self, job_id: &str) -> Result<Vec<Run>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE job_id = ?1 ORDER BY id"
        )))
        .bind(job_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(run_from_row).collect()
    }
}

// ---- reports and housekeeping ----------------------------------------------------------

impl Store {
    pub async fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = ?1")
            .bind(key)
            .fetch_optional(&self.reader)
            .await?)
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Runs still marked running long after their job's timeout (plus `grace`).
    pub async fn stuck_runs(
        &self,
        now: DateTime<Utc>,
        grace: std::time::Duration,
    ) -> Result<Vec<Run>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {cols} FROM runs r JOIN jobs j ON j.id = r.job_id
             WHERE r.status = 'running' AND r.started_ms + j.timeout_secs * 1000 + ?2 < ?1",
            cols = RUN_COLUMNS
                .split(", ")
                .map(|c| format!("r.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        )))
        .bind(to_ms(now))
        .bind(grace.as_millis() as i64)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// Deletes finished runs that finished before `cutoff`, keeping the newest `keep_last`
    /// of every job whatever their age. Returns how many were deleted.
    pub async fn delete_old_runs(&self, cutoff: DateTime<Utc>, keep_last: u32) -> Result<u64> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query(
            "DELETE FROM runs WHERE status NOT IN ('queued', 'running') AND COALESCE(finished_ms, started_ms, 0) < ?1
               AND id NOT IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY job_id ORDER BY id DESC) AS n FROM runs) WHERE n <= ?2)",
        )
        .bind(to_ms(cutoff))
        .bind(i64::from(keep_last))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Gives the space of deleted rows back to the file system.
    pub async fn vacuum(&self) -> Result<()> {
        sqlx::query("VACUUM").execute(&self.writer).await?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}

impl Store {
    /// The newest run of `job_id` that left an output (a report), if any.
    pub async fn latest_report(&self, job_id: &str) -> Result<Option<Run>> {
        let row = sqlx::query(select_runs!(
            " WHERE job_id = ?1 AND status IN ('succeeded', 'failed') AND output IS NOT NULL ORDER BY id DESC LIMIT 1"
        ))
        .bind(job_id)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(run_from_row).transpose()
    }
}

/// One job's figures over a window of its runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobStats {
    pub job: String,
    /// Runs that ended succeeded, failed, timed out or interrupted.
    pub runs: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub success_rate: Option<f64>,
    /// Nearest-rank percentiles of the durations.
    pub p50_ms: Option<i64>,
    pub p95_ms: Option<i64>,
}

/// Runs in one hour: succeeded, failed (failed, timed out, interrupted) and skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HourCount {
    /// The hour's start, ms since the epoch.
    pub hour_ms: i64,
    pub succeeded: u64,
    pub failed: u64,
    pub skipped: u64,
}

const HOUR_MS: i64 = 3_600_000;

impl Store {
    /// Per job figures for runs that started (or ended) at or after `since`. Counted and
    /// ranked inside SQLite over the time index, so a long history costs nothing and a
    /// busy day is never copied out row by row.
    pub async fn job_stats_since(&self, since: DateTime<Utc>) -> Result<Vec<JobStats>> {
        let rows = sqlx::query(
            "WITH r AS (
                SELECT job_id, status, finished_ms - started_ms AS d FROM runs INDEXED BY runs_by_time
                WHERE COALESCE(started_ms, finished_ms) >= ?1
                  AND status IN ('succeeded', 'failed', 'timed_out', 'interrupted')),
             t AS (
                SELECT job_id, d, ROW_NUMBER() OVER (PARTITION BY job_id ORDER BY d) AS rn,
                       COUNT(*) OVER (PARTITION BY job_id) AS n
                FROM r WHERE d IS NOT NULL),
             q AS (
                SELECT job_id, MAX(CASE WHEN rn = (50 * n + 99) / 100 THEN d END) AS p50,
                               MAX(CASE WHEN rn = (95 * n + 99) / 100 THEN d END) AS p95
                FROM t GROUP BY job_id),
             c AS (
                SELECT job_id, SUM(status = 'succeeded') AS ok, SUM(status != 'succeeded') AS bad
                FROM r GROUP BY job_id)
             SELECT c.job_id, c.ok, c.bad, q.p50, q.p95 FROM c LEFT JOIN q USING (job_id)
             ORDER BY c.job_id",
        )
        .bind(to_ms(since))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                let ok: i64 = r.try_get("ok")?;
                let bad: i64 = r.try_get("bad")?;
                let runs = (ok + bad).max(0) as u64;
                Ok(JobStats {
                    job: r.try_get("job_id")?,
                    runs,
                    succeeded: ok.max(0) as u64,
                    failed: bad.max(0) as u64,
                    success_rate: (runs > 0).then(|| ok as f64 / runs as f64),
                    p50_ms: r.try_get::<Option<i64>, _>("p50")?.map(|d| d.max(0)),
                    p95_ms: r.try_get::<Option<i64>, _>("p95")?.map(|d| d.max(0)),
                })
            })
            .collect()
    }

    /// Runs per hour for the `hours` whole hours up to and including the one holding
    /// `now`, oldest first; counted inside SQLite over the time index.
    pub async fn hourly_counts(&self, now: DateTime<Utc>, hours: usize) -> Result<Vec<HourCount>> {
        let last = to_ms(now).div_euclid(HOUR_MS) * HOUR_MS;
        let first = last - (hours as i64 - 1) * HOUR_MS;
        let rows = sqlx::query(
            "SELECT COALESCE(started_ms, finished_ms) / ?2 AS h,
                    SUM(status = 'succeeded') AS ok,
                    SUM(status IN ('failed', 'timed_out', 'interrupted')) AS bad,
                    SUM(status = 'skipped') AS skipped
             FROM runs INDEXED BY runs_by_time WHERE COALESCE(started_ms, finished_ms) >= ?1 GROUP BY h",
        )
        .bind(first)
        .bind(HOUR_MS)
        .fetch_all(&self.reader)
        .await?;
        let mut out: Vec<HourCount> = (0..hours as i64)
            .map(|k| HourCount {
                hour_ms: first + k * HOUR_MS,
                ..HourCount::default()
            })
            .collect();
        for r in &rows {
            let h: i64 = r.try_get("h")?;
            let Some(slot) = usize::try_from(h * HOUR_MS - first)
                .ok()
                .and_then(|off| out.get_mut(off / HOUR_MS as usize))
            else {
                continue;
            };
            slot.succeeded = r.try_get::<i64, _>("ok")?.max(0) as u64;
            slot.failed = r.try_get::<i64, _>("bad")?.max(0) as u64;
            slot.skipped = r.try_get::<i64, _>("skipped")?.max(0) as u64;
        }
        Ok(out)
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    /// `key` (the X-Dash-Key header), `session <id hash>`, `wrong key` or `anonymous`:
    /// always from the credential, never from a header the client chose.
    pub actor: String,
    pub ip: String,
    /// `METHOD /path`, or `login`, `login failed`, `logout`.
    pub action: String,
    /// What the change was about (`job nightly`, `run 42`), when known.
    pub target: String,
    /// The request's arguments as JSON, secrets masked.
    pub details: String,
    /// The HTTP status the request was answered with.
    pub status: u16,
}

impl Store {
    /// Records an entry; control characters in its text are encoded (no forged lines).
    pub async fn record_audit(&self, e: &AuditEntry) -> Result<()> {
        let clean = |t: &str| crate::secrets::escape_controls(t).into_owned();
        sqlx::query(
            "INSERT INTO audit (at_ms, actor, ip, action, status, target, details) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(to_ms(e.at))
        .bind(clean(&e.actor))
        .bind(clean(&e.ip))
        .bind(clean(&e.action))
        .bind(i64::from(e.status))
        .bind(clean(&e.target))
        .bind(clean(&e.details))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The newest `limit` entries, newest first.
    pub async fn list_audit(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT at_ms, actor, ip, action, status, target, details FROM audit ORDER BY id DESC LIMIT ?1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    at: from_ms(Some(r.try_get("at_ms")?)).unwrap_or_default(),
                    actor: r.try_get("actor")?,
                    ip: r.try_get("ip")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    details: r.try_get("details")?,
                    status: u16::try_from(r.try_get::<i64, _>("status")?).unwrap_or(0),
                })
            })
            .collect()
    }

    /// Deletes audit entries older than `cutoff`; returns how many.
    pub async fn delete_old_audit(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM audit WHERE at_ms < ?1")
            .bind(to_ms(cutoff))
            .execute(&self.writer)
            .await?
            .rows_affected())
    }
}
