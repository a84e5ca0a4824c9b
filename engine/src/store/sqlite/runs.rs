//! Runs: the state machine (claim, start, finish only if running, interrupt), every step a
//! compare-and-set on the row's status, and the listings.

use super::writer::{self, Op};
use super::{to_ms, SqliteStore};
use crate::error::Result;
use crate::model::{Run, RunQuery};
use crate::store::rows::{self, run_columns_of, RUN_COLUMNS};
use crate::store::{Claim, NewRun, RunEnd, SlotClaim};
use chrono::{DateTime, Utc};

/// `SELECT <run columns> FROM runs` followed by `$tail`, as one static string.
macro_rules! select_runs {
    ($tail:literal) => {
        concat!(
            "SELECT id, job_id, trigger, status, scheduled_ms, started_ms, finished_ms, attempt, output, error, node, params, rerun_of FROM runs",
            $tail
        )
    };
}

impl SqliteStore {
    /// Group-committed with the other claims, starts and ends of the moment.
    pub async fn claim_slot(&self, c: &SlotClaim<'_>) -> Result<Claim> {
        let row = writer::ClaimRow {
            job_id: c.job_id.to_string(),
            slot: c.slot,
            trigger: c.trigger.as_str(),
            overlap: c.overlap,
            started_at: c.started_at,
            node: c.node.to_string(),
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.submit(Op::Claim(row, reply), answer).await
    }

    pub async fn start_run(&self, r: &NewRun<'_>) -> Result<i64> {
        let row = writer::StartRow {
            job_id: r.job_id.to_string(),
            trigger: r.trigger.as_str(),
            attempt: r.attempt,
            started_at: r.started_at,
            node: r.node.to_string(),
            params: r.params.map(str::to_string),
            rerun_of: r.rerun_of,
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.submit(Op::Start(row, reply), answer).await
    }

    pub async fn finish_run(&self, end: &RunEnd<'_>) -> Result<bool> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let op = Op::Finish {
            id: end.id,
            status: end.status.as_str(),
            at: end.at,
            output: end.output.map(|o| o.to_string()),
            error: end.error.map(str::to_string),
            log: end.log.map(str::to_string),
            reply,
        };
        self.submit(op, answer).await
    }

    /// Not group-committed: it follows a finish (already committed) of a `queue` job only.
    pub async fn start_queued(
        &self,
        job_id: &str,
        node: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<i64>> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let id: Option<i64> = sqlx::query_scalar(
            "UPDATE runs SET status = 'running', started_ms = ?2, node = ?3
             WHERE id = (SELECT id FROM runs WHERE job_id = ?1 AND status = 'queued' ORDER BY id LIMIT 1)
               AND NOT EXISTS (SELECT 1 FROM runs WHERE job_id = ?1 AND status = 'running')
             RETURNING id",
        )
        .bind(job_id)
        .bind(to_ms(at))
        .bind(node)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Records many skipped slots of one job in one transaction (catch-up after downtime).
    pub async fn record_skipped_slots(
        &self,
        job_id: &str,
        slots: &[DateTime<Utc>],
        reason: &str,
        now: DateTime<Utc>,
        node: &str,
        _epoch: i64,
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

    pub async fn interrupt_runs_of(
        &self,
        node: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<Run>> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE runs SET status = 'interrupted', finished_ms = ?2, error = ?1
             WHERE status IN ('queued', 'running') AND node = ?3 RETURNING {RUN_COLUMNS}"
        )))
        .bind(reason)
        .bind(to_ms(at))
        .bind(node)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(rows::run).collect()
    }

    pub async fn start_free_queued(&self, node: &str, at: DateTime<Utc>) -> Result<Vec<Run>> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE runs SET status = 'running', started_ms = ?2, node = ?1
             WHERE id IN (SELECT min(q.id) FROM runs q
                          WHERE q.status = 'queued'
                            AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.job_id = q.job_id AND r.status = 'running')
                          GROUP BY q.job_id)
             RETURNING {RUN_COLUMNS}"
        )))
        .bind(node)
        .bind(to_ms(at))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(rows::run).collect()
    }

    /// One node follows its running runs' logs in memory: nothing to keep.
    pub async fn save_log(&self, _id: i64, _log: &str) -> Result<()> {
        Ok(())
    }

    /// Behind the data-dir lock this process is the only one alive: a run of any other
    /// node name is an orphan. (One leader for good: the epoch has nothing to fence.)
    pub async fn interrupt_orphans(
        &self,
        node: &str,
        _epoch: i64,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<Run>> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE runs SET status = 'interrupted', finished_ms = ?2, error = ?1
             WHERE status = 'running' AND node != ?3 RETURNING {RUN_COLUMNS}"
        )))
        .bind(reason)
        .bind(to_ms(at))
        .bind(node)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(rows::run).collect()
    }

    /// One node, no registry.
    pub async fn list_nodes(&self) -> Result<Vec<crate::model::NodeInfo>> {
        Ok(Vec::new())
    }

    /// One leader for good, no history.
    pub async fn leader_history(&self, _limit: u32) -> Result<Vec<crate::model::LeaderTerm>> {
        Ok(Vec::new())
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
        row.as_ref().map(rows::run).transpose()
    }

    /// Newest first, filtered, at most `limit` (1-500). One statement per filter shape, so
    /// each uses its own index rather than a plan that fits all shapes badly.
    pub async fn list_runs(&self, q: &RunQuery) -> Result<Vec<Run>> {
        let before = q.before.unwrap_or(i64::MAX);
        let after = q.after.unwrap_or(0);
        let limit = i64::from(q.limit.clamp(1, 500));
        let query = match (&q.job, q.status) {
            (None, None) => sqlx::query(select_runs!(
                " WHERE id < ?1 AND id > ?2 ORDER BY id DESC LIMIT ?3"
            )),
            (Some(_), None) => sqlx::query(select_runs!(
                " WHERE job_id = ?4 AND id < ?1 AND id > ?2 ORDER BY id DESC LIMIT ?3"
            )),
            (None, Some(_)) => sqlx::query(select_runs!(
                " WHERE status = ?4 AND id < ?1 AND id > ?2 ORDER BY id DESC LIMIT ?3"
            )),
            (Some(_), Some(_)) => sqlx::query(select_runs!(
                " WHERE job_id = ?4 AND status = ?5 AND id < ?1 AND id > ?2 ORDER BY id DESC LIMIT ?3"
            )),
        };
        let mut query = query.bind(before).bind(after).bind(limit);
        if let Some(job) = &q.job {
            query = query.bind(job.as_str());
        }
        if let Some(status) = q.status {
            query = query.bind(status.as_str());
        }
        let rows = query.fetch_all(&self.reader).await?;
        rows.iter().map(rows::run).collect()
    }

    /// One index seek per job (its newest run), rather than a scan of the history.
    pub async fn last_runs(&self) -> Result<Vec<Run>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM jobs j JOIN runs r
               ON r.id = (SELECT id FROM runs WHERE job_id = j.id ORDER BY id DESC LIMIT 1)
             ORDER BY j.id",
            run_columns_of("r")
        )))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(rows::run).collect()
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
            cols = run_columns_of("r")
        )))
        .bind(to_ms(now))
        .bind(grace.as_millis() as i64)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(rows::run).collect()
    }

    /// The newest run of `job_id` that left an output (a report), if any.
    pub async fn latest_report(&self, job_id: &str) -> Result<Option<Run>> {
        let row = sqlx::query(select_runs!(
            " WHERE job_id = ?1 AND status IN ('succeeded', 'failed') AND output IS NOT NULL ORDER BY id DESC LIMIT 1"
        ))
        .bind(job_id)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(rows::run).transpose()
    }
}
