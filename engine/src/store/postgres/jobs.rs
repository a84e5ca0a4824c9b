//! Jobs and their slot cursors. Every change is announced (`jobs`), so every node's jobs
//! table follows.

use super::{is_unique_violation, notify, to_ms, PgStore};
use crate::error::{EngineError, Result};
use crate::model::Job;
use crate::store::rows::{self, JOB_COLUMNS};
use crate::store::StoredJob;
use chrono::{DateTime, Utc};

/// Binds a job's fields as `$1`..`$13` (id first, `now` last), in the order both the
/// insert and the update name them.
trait BindJob<'q> {
    fn bind_job(self, job: &'q Job, now: DateTime<Utc>) -> Self;
}

impl<'q> BindJob<'q> for sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    fn bind_job(self, job: &'q Job, now: DateTime<Utc>) -> Self {
        self.bind(&job.id)
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
    }
}

/// Adds a job, its slot cursor at `now` (no backlog).
const INSERT_JOB: &str = "INSERT INTO jobs (id, name, kind, schedule, timezone, enabled, timeout_secs, retries, retry_backoff_secs,
                               overlap, misfire, params, last_slot_ms, created_ms, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $13)";
/// Replaces a job's fields; `$14` restarts its slot cursor at `now`.
const UPDATE_JOB: &str = "UPDATE jobs SET name = $2, kind = $3, schedule = $4, timezone = $5, enabled = $6, timeout_secs = $7,
                 retries = $8, retry_backoff_secs = $9, overlap = $10, misfire = $11, params = $12, updated_ms = $13,
                 last_slot_ms = CASE WHEN $14 THEN $13 ELSE last_slot_ms END
             WHERE id = $1";

impl PgStore {
    pub async fn insert_job(&self, job: &Job, now: DateTime<Utc>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(INSERT_JOB)
            .bind_job(job, now)
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
        notify(&mut *tx, "jobs").await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn update_job(&self, job: &Job, reset_slot: bool, now: DateTime<Utc>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(UPDATE_JOB)
            .bind_job(job, now)
            .bind(reset_slot)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(EngineError::NotFound(format!(
                "no job with id {:?}",
                job.id
            )));
        }
        notify(&mut *tx, "jobs").await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_job(&self, id: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM jobs WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        notify(&mut *tx, "jobs").await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn apply_jobs(
        &self,
        plan: &crate::store::JobsPlan<'_>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for job in plan.insert {
            sqlx::query(INSERT_JOB)
                .bind_job(job, now)
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        EngineError::Conflict(format!(
                            "a job with id {:?} was added meanwhile",
                            job.id
                        ))
                    } else {
                        e.into()
                    }
                })?;
        }
        for (job, reset_slot) in plan.update {
            let done = sqlx::query(UPDATE_JOB)
                .bind_job(job, now)
                .bind(*reset_slot)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(EngineError::Conflict(format!(
                    "job {:?} was deleted meanwhile",
                    job.id
                )));
            }
        }
        for id in plan.delete {
            sqlx::query("DELETE FROM jobs WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(crate::store::JOBS_APPLIED)
            .bind(plan.applied)
            .execute(&mut *tx)
            .await?;
        notify(&mut *tx, "jobs").await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn load_jobs(&self) -> Result<Vec<StoredJob>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs ORDER BY id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::job).collect()
    }
}
