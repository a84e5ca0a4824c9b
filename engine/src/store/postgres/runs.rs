//! Runs on PostgreSQL: the same state machine as SQLite, safe under several nodes.
//!
//! - A leader write (a slot claim, missed slots, the rescue) holds the lease row `FOR KEY
//!   SHARE` in the same statement and checks holder, epoch and expiry by the database's
//!   clock: a lease being taken over blocks it, and once taken over it matches nothing.
//! - The overlap decision of a `skip` or `queue` job, and a start of such a job, take a
//!   transaction-scoped advisory lock on the job, so two nodes never decide on a stale
//!   count (released at commit or rollback: nothing leaks on a cancelled request).
//! - Every state change is a compare-and-set on the row's status, and is announced.

use super::{notify, to_ms, PgStore};
use crate::error::Result;
use crate::model::{Overlap, Run, RunQuery};
use crate::store::rows::{self, run_columns_of, RUN_COLUMNS};
use crate::store::{Claim, NewRun, RunEnd, SlotClaim, SKIPPED_ACTIVE, SKIPPED_QUEUE_FULL};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// The lease, held `FOR KEY SHARE` until the write commits: `$node` leads with `$epoch`,
/// unexpired. A takeover locks the row `FOR UPDATE` first, so it waits for the writes in
/// flight and every later one sees the new epoch; renewals (an update of no key) do not
/// conflict, so a leader busy writing never starves its own renewal. (Placeholders named
/// by the caller.)
macro_rules! lease_cte {
    ($node:literal, $epoch:literal) => {
        concat!(
            "lease AS (SELECT epoch FROM scheduler_lease WHERE id = 1 AND holder = ",
            $node,
            " AND epoch = ",
            $epoch,
            " AND expires_ms > echopilot_now_ms() FOR KEY SHARE)"
        )
    };
}

/// Serialises the overlap decisions and starts of one job across nodes.
async fn lock_job(tx: &mut sqlx::PgConnection, job_id: &str) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))")
        .bind(job_id)
        .execute(tx)
        .await?;
    Ok(())
}

/// The node of a run no node has claimed yet ([`PgStore::enqueue_run`]). A queued run with
/// a node is waiting behind a running one of its job (overlap `queue`).
pub const UNCLAIMED: &str = "";

fn exclusive(overlap: Overlap) -> bool {
    matches!(overlap, Overlap::Skip | Overlap::Queue)
}

impl PgStore {
    pub async fn claim_slot(&self, c: &SlotClaim<'_>) -> Result<Claim> {
        let mut tx = self.pool.begin().await?;
        if exclusive(c.overlap) {
            lock_job(&mut tx, c.job_id).await?;
        }
        let inserted = sqlx::query(concat!(
            "WITH ",
            lease_cte!("$7", "$8"),
            ", active AS (SELECT count(*) FILTER (WHERE status = 'running') AS running,
                                count(*) FILTER (WHERE status = 'queued' AND node <> $10) AS queued
                         FROM runs WHERE job_id = $1 AND status IN ('running', 'queued')),
               decided AS (SELECT CASE
                   WHEN $3 = 'allow' OR active.running = 0 THEN 'running'
                   WHEN $3 = 'queue' AND active.queued = 0 THEN 'queued'
                   ELSE 'skipped' END AS status FROM active)
             INSERT INTO runs (job_id, trigger, status, scheduled_ms, started_ms, finished_ms, attempt, error, node, epoch)
             SELECT $1, $2, decided.status, $4,
                    CASE WHEN decided.status = 'queued' THEN NULL ELSE $5 END,
                    CASE WHEN decided.status = 'skipped' THEN $5 END,
                    1,
                    CASE WHEN decided.status <> 'skipped' THEN NULL
                         WHEN $3 = 'queue' THEN $9 ELSE $6 END,
                    $7, $8
             FROM decided, lease
             ON CONFLICT (job_id, scheduled_ms) WHERE trigger IN ('schedule', 'catch_up') DO NOTHING
             RETURNING id, status"
        ))
        .bind(c.job_id)
        .bind(c.trigger.as_str())
        .bind(c.overlap.as_str())
        .bind(to_ms(c.slot))
        .bind(to_ms(c.started_at))
        .bind(SKIPPED_ACTIVE)
        .bind(c.node)
        .bind(c.epoch)
        .bind(SKIPPED_QUEUE_FULL)
        .bind(UNCLAIMED)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = inserted else {
            // Nothing written: the slot was claimed already, or the lease moved on.
            let leads: Option<i64> = sqlx::query_scalar(concat!(
                "WITH ",
                lease_cte!("$1", "$2"),
                " SELECT epoch FROM lease"
            ))
            .bind(c.node)
            .bind(c.epoch)
            .fetch_optional(&mut *tx)
            .await?;
            tx.rollback().await?;
            return Ok(if leads.is_some() {
                Claim::Taken
            } else {
                Claim::Fenced
            });
        };
        let id: i64 = row.try_get("id")?;
        let status: String = row.try_get("status")?;
        // The cursor moves forward only, and never for an epoch older than its last mover.
        sqlx::query(
            "UPDATE jobs SET last_slot_ms = GREATEST(last_slot_ms, $2), slot_epoch = $3
             WHERE id = $1 AND slot_epoch <= $3",
        )
        .bind(c.job_id)
        .bind(to_ms(c.slot))
        .bind(c.epoch)
        .execute(&mut *tx)
        .await?;
        notify(&mut *tx, "runs").await?;
        tx.commit().await?;
        Ok(match status.as_str() {
            "running" => Claim::Run(id),
            "queued" => Claim::Queued(id),
            _ => Claim::Skipped(id),
        })
    }

    pub async fn record_skipped_slots(
        &self,
        job_id: &str,
        slots: &[DateTime<Utc>],
        reason: &str,
        now: DateTime<Utc>,
        node: &str,
        epoch: i64,
    ) -> Result<u64> {
        let ms: Vec<i64> = slots.iter().map(|s| to_ms(*s)).collect();
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(concat!(
            "WITH ",
            lease_cte!("$5", "$6"),
            " INSERT INTO runs (job_id, trigger, status, scheduled_ms, started_ms, finished_ms, attempt, error, node, epoch)
             SELECT $1, 'schedule', 'skipped', s.slot, NULL, $3, 1, $4, $5, $6
             FROM unnest($2::BIGINT[]) AS s(slot), lease
             ON CONFLICT (job_id, scheduled_ms) WHERE trigger IN ('schedule', 'catch_up') DO NOTHING"
        ))
        .bind(job_id)
        .bind(&ms)
        .bind(to_ms(now))
        .bind(reason)
        .bind(node)
        .bind(epoch)
        .execute(&mut *tx)
        .await?;
        if let Some(last) = ms.iter().max() {
            sqlx::query(concat!(
                "WITH ",
                lease_cte!("$4", "$3"),
                " UPDATE jobs SET last_slot_ms = GREATEST(last_slot_ms, $2), slot_epoch = $3
                 FROM lease WHERE jobs.id = $1 AND jobs.slot_epoch <= $3"
            ))
            .bind(job_id)
            .bind(last)
            .bind(epoch)
            .bind(node)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    pub async fn start_run(&self, r: &NewRun<'_>) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        if exclusive(r.overlap) {
            lock_job(&mut tx, r.job_id).await?;
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO runs (job_id, trigger, status, started_ms, attempt, node, params, rerun_of)
             VALUES ($1, $2, 'running', $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(r.job_id)
        .bind(r.trigger.as_str())
        .bind(to_ms(r.started_at))
        .bind(i64::from(r.attempt))
        .bind(r.node)
        .bind(r.params)
        .bind(r.rerun_of)
        .fetch_one(&mut *tx)
        .await?;
        notify(&mut *tx, "runs").await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Records a run any node may start (run now, on several nodes): queued on no node
    /// yet ([`UNCLAIMED`]), and announced, in one statement, so a node claims it at once.
    pub async fn enqueue_run(&self, r: &NewRun<'_>) -> Result<i64> {
        self.batch.enqueue(r).await
    }

    /// Claims up to `limit` runs no node has yet, oldest first, for `node` to execute now;
    /// rows another node is claiming are skipped, not waited for.
    pub async fn claim_pending(
        &self,
        node: &str,
        at: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Run>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH claimed AS (
                 UPDATE runs SET status = 'running', started_ms = $2, node = $1
                 WHERE id IN (SELECT id FROM runs WHERE status = 'queued' AND node = $4
                              ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
                 RETURNING {RUN_COLUMNS})
             SELECT claimed.*, pg_notify($5, 'runs') FROM claimed"
        )))
        .bind(node)
        .bind(to_ms(at))
        .bind(i64::from(limit))
        .bind(UNCLAIMED)
        .bind(super::CHANNEL)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::run).collect()
    }

    /// Any node may start a job's queued run: the row is taken with `SKIP LOCKED`.
    pub async fn start_queued(
        &self,
        job_id: &str,
        node: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<i64>> {
        let mut tx = self.pool.begin().await?;
        lock_job(&mut tx, job_id).await?;
        let id: Option<i64> = sqlx::query_scalar(
            "UPDATE runs SET status = 'running', started_ms = $2, node = $3
             WHERE id = (SELECT id FROM runs WHERE job_id = $1 AND status = 'queued' AND node <> $4
                         ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
               AND NOT EXISTS (SELECT 1 FROM runs WHERE job_id = $1 AND status = 'running')
             RETURNING id",
        )
        .bind(job_id)
        .bind(to_ms(at))
        .bind(node)
        .bind(UNCLAIMED)
        .fetch_optional(&mut *tx)
        .await?;
        if id.is_some() {
            notify(&mut *tx, "runs").await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    pub async fn start_free_queued(&self, node: &str, at: DateTime<Utc>) -> Result<Vec<Run>> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE runs SET status = 'running', started_ms = $2, node = $1
             WHERE id IN (SELECT min(q.id) FROM runs q
                          WHERE q.status = 'queued' AND q.node <> $3
                            AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.job_id = q.job_id AND r.status = 'running')
                          GROUP BY q.job_id)
               AND status = 'queued'
             RETURNING {RUN_COLUMNS}"
        )))
        .bind(node)
        .bind(to_ms(at))
        .bind(UNCLAIMED)
        .fetch_all(&mut *tx)
        .await?;
        if !rows.is_empty() {
            notify(&mut *tx, "runs").await?;
        }
        tx.commit().await?;
        rows.iter().map(rows::run).collect()
    }

    /// Through the group commit ([`super::batch`]); announced as `ended`.
    pub async fn finish_run(&self, end: &RunEnd<'_>) -> Result<bool> {
        self.batch.finish(end).await
    }

    pub async fn save_log(&self, id: i64, log: &str) -> Result<()> {
        sqlx::query("UPDATE runs SET log = $2 WHERE id = $1 AND status = 'running'")
            .bind(id)
            .bind(log)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn interrupt_runs_of(
        &self,
        node: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<Run>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE runs SET status = 'interrupted', finished_ms = $2, error = $1
             WHERE status IN ('queued', 'running') AND node = $3 RETURNING {RUN_COLUMNS}"
        )))
        .bind(reason)
        .bind(to_ms(at))
        .bind(node)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::run).collect()
    }

    /// The runs of nodes whose heartbeat expired (or that never registered): running ones
    /// are interrupted; queued ones stay queued for [`PgStore::start_free_queued`].
    pub async fn interrupt_orphans(
        &self,
        node: &str,
        epoch: i64,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<Run>> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH {lease}
             UPDATE runs SET status = 'interrupted', finished_ms = $2, error = $1
             FROM lease
             WHERE runs.status = 'running' AND runs.node <> $3
               AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = runs.node AND n.expires_ms > echopilot_now_ms())
             RETURNING {cols}",
            lease = lease_cte!("$3", "$4"),
            cols = run_columns_of("runs"),
        )))
        .bind(reason)
        .bind(to_ms(at))
        .bind(node)
        .bind(epoch)
        .fetch_all(&mut *tx)
        .await?;
        if !rows.is_empty() {
            notify(&mut *tx, "ended").await?;
        }
        tx.commit().await?;
        rows.iter().map(rows::run).collect()
    }

    pub async fn run_log(&self, id: i64) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT log FROM runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn get_run(&self, id: i64) -> Result<Option<Run>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(rows::run).transpose()
    }

    /// One statement per filter shape, each on its own index.
    pub async fn list_runs(&self, q: &RunQuery) -> Result<Vec<Run>> {
        let before = q.before.unwrap_or(i64::MAX);
        let after = q.after.unwrap_or(0);
        let limit = i64::from(q.limit.clamp(1, 500));
        let filter = match (&q.job, q.status) {
            (None, None) => "",
            (Some(_), None) => "job_id = $4 AND",
            (None, Some(_)) => "status = $4 AND",
            (Some(_), Some(_)) => "job_id = $4 AND status = $5 AND",
        };
        // Spelled out for the planner, whose generic plan cannot see the bound status: the
        // history indexes hold ended runs only, runs in flight are in runs_active_by_node.
        let phase = match q.status {
            None => "",
            Some(s) if s.is_finished() => "status NOT IN ('queued', 'running') AND",
            Some(_) => "status IN ('queued', 'running') AND",
        };
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE {filter} {phase} id < $1 AND id > $3 ORDER BY id DESC LIMIT $2"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(before)
            .bind(limit)
            .bind(after);
        if let Some(job) = &q.job {
            query = query.bind(job.as_str());
        }
        if let Some(status) = q.status {
            query = query.bind(status.as_str());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(rows::run).collect()
    }

    pub async fn last_runs(&self) -> Result<Vec<Run>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM jobs j
             JOIN LATERAL (SELECT * FROM runs WHERE job_id = j.id ORDER BY id DESC LIMIT 1) r ON TRUE
             ORDER BY j.id",
            run_columns_of("r")
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::run).collect()
    }

    pub async fn stuck_runs(
        &self,
        now: DateTime<Utc>,
        grace: std::time::Duration,
    ) -> Result<Vec<Run>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM runs r JOIN jobs j ON j.id = r.job_id
             WHERE r.status = 'running' AND r.started_ms + j.timeout_secs * 1000 + $2 < $1",
            run_columns_of("r")
        )))
        .bind(to_ms(now))
        .bind(grace.as_millis() as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::run).collect()
    }

    pub async fn latest_report(&self, job_id: &str) -> Result<Option<Run>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM runs
             WHERE job_id = $1 AND status IN ('succeeded', 'failed') AND output IS NOT NULL
             ORDER BY id DESC LIMIT 1"
        )))
        .bind(job_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(rows::run).transpose()
    }
}
