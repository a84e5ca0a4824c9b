//! Figures over the run history, retention and the audit log, on PostgreSQL.

use super::{to_ms, PgStore};
use crate::error::Result;
use crate::model::{AuditEntry, HourCount, JobStats};
use crate::store::rows::{self, HourRow, StatsRow, HOUR_MS};
use chrono::{DateTime, Utc};

impl PgStore {
    /// Counted and ranked inside the database over the time index.
    pub async fn job_stats_since(&self, since: DateTime<Utc>) -> Result<Vec<JobStats>> {
        let rows: Vec<StatsRow> = sqlx::query_as(
            "WITH r AS (
                SELECT job_id, status, finished_ms - started_ms AS d FROM runs
                WHERE COALESCE(started_ms, finished_ms) >= $1
                  AND status IN ('succeeded', 'failed', 'timed_out', 'interrupted')
                  AND status NOT IN ('queued', 'running')),
             t AS (
                SELECT job_id, d, ROW_NUMBER() OVER (PARTITION BY job_id ORDER BY d) AS rn,
                       COUNT(*) OVER (PARTITION BY job_id) AS n
                FROM r WHERE d IS NOT NULL),
             q AS (
                SELECT job_id, MAX(CASE WHEN rn = (50 * n + 99) / 100 THEN d END) AS p50,
                               MAX(CASE WHEN rn = (95 * n + 99) / 100 THEN d END) AS p95
                FROM t GROUP BY job_id),
             c AS (
                SELECT job_id, COUNT(*) FILTER (WHERE status = 'succeeded') AS ok,
                               COUNT(*) FILTER (WHERE status <> 'succeeded') AS bad
                FROM r GROUP BY job_id)
             SELECT c.job_id, c.ok, c.bad, q.p50, q.p95 FROM c LEFT JOIN q USING (job_id)
             ORDER BY c.job_id",
        )
        .bind(to_ms(since))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(JobStats::from).collect())
    }

    pub async fn hourly_counts(&self, now: DateTime<Utc>, hours: usize) -> Result<Vec<HourCount>> {
        let first = rows::first_hour(to_ms(now), hours);
        let counted: Vec<HourRow> = sqlx::query_as(
            "SELECT COALESCE(started_ms, finished_ms) / $2 AS h,
                    COUNT(*) FILTER (WHERE status = 'succeeded') AS ok,
                    COUNT(*) FILTER (WHERE status IN ('failed', 'timed_out', 'interrupted')) AS bad,
                    COUNT(*) FILTER (WHERE status = 'skipped') AS skipped
             FROM runs WHERE COALESCE(started_ms, finished_ms) >= $1
               AND status NOT IN ('queued', 'running')
             GROUP BY h",
        )
        .bind(first)
        .bind(HOUR_MS)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows::hours(first, hours, counted))
    }

    pub async fn delete_old_runs(&self, cutoff: DateTime<Utc>, keep_last: u32) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM runs WHERE status NOT IN ('queued', 'running') AND COALESCE(finished_ms, started_ms, 0) < $1
               AND id NOT IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY job_id ORDER BY id DESC) AS n FROM runs) k WHERE n <= $2)",
        )
        .bind(to_ms(cutoff))
        .bind(i64::from(keep_last))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn delete_old_audit(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM audit WHERE at_ms < $1")
            .bind(to_ms(cutoff))
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Autovacuum gives deleted rows' space back; an explicit VACUUM would only hold
    /// locks other nodes wait on.
    pub async fn reclaim_space(&self) -> Result<()> {
        Ok(())
    }

    pub async fn record_audit(&self, e: &AuditEntry) -> Result<()> {
        let clean = |t: &str| crate::secrets::escape_controls(t).into_owned();
        sqlx::query(
            "INSERT INTO audit (at_ms, actor, ip, action, status, target, details) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(to_ms(e.at))
        .bind(clean(&e.actor))
        .bind(clean(&e.ip))
        .bind(clean(&e.action))
        .bind(i64::from(e.status))
        .bind(clean(&e.target))
        .bind(clean(&e.details))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn list_audit(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT at_ms, actor, ip, action, status, target, details FROM audit ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::audit).collect()
    }
}
