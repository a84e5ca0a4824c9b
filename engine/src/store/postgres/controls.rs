//! The operator's controls: cancel a run, pause a job or everything; each a
//! compare-and-set, announced so every node hears it (the node running a cancelled run
//! stops its work).

use super::{notify, to_ms, PgStore};
use crate::error::Result;
use crate::model::Window;
use chrono::{DateTime, Utc};

/// Where the scheduler-wide pause is kept (`meta`).
const SCHEDULER_PAUSE: &str = "scheduler_pause";

impl PgStore {
    pub async fn cancel_run(&self, id: i64, error: &str, at: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE runs SET status = 'cancelled', finished_ms = $2, error = $3
             WHERE id = $1 AND status IN ('queued', 'running')",
        )
        .bind(id)
        .bind(to_ms(at))
        .bind(error)
        .execute(&mut *tx)
        .await?;
        let cancelled = done.rows_affected() == 1;
        if cancelled {
            notify(&mut *tx, &format!("cancel {id}")).await?;
            notify(&mut *tx, "ended").await?;
        }
        tx.commit().await?;
        Ok(cancelled)
    }

    pub async fn keep_log(&self, id: i64, log: &str) -> Result<()> {
        // A shared log may be there already (kept while it ran): the whole one replaces it.
        sqlx::query("UPDATE runs SET log = $2 WHERE id = $1 AND status = 'cancelled'")
            .bind(id)
            .bind(log)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn reruns_of(&self, id: i64) -> Result<Vec<i64>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM runs WHERE rerun_of = $1 ORDER BY id")
                .bind(id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn swap_job_pause(
        &self,
        job_id: &str,
        from: Option<&str>,
        to: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE jobs SET pause = $3, updated_ms = $4 WHERE id = $1 AND pause IS NOT DISTINCT FROM $2",
        )
        .bind(job_id)
        .bind(from)
        .bind(to)
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await?;
        let swapped = done.rows_affected() == 1;
        if swapped {
            notify(&mut *tx, "jobs").await?;
        }
        tx.commit().await?;
        Ok(swapped)
    }

    pub async fn scheduler_pause(&self) -> Result<Option<String>> {
        self.fact(SCHEDULER_PAUSE).await
    }

    pub async fn swap_scheduler_pause(&self, from: Option<&str>, to: Option<&str>) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = match (from, to) {
            (None, None) => {
                let none: Option<String> =
                    sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
                        .bind(SCHEDULER_PAUSE)
                        .fetch_optional(&mut *tx)
                        .await?;
                return Ok(none.is_none());
            }
            (None, Some(to)) => {
                sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(SCHEDULER_PAUSE)
                    .bind(to)
                    .execute(&mut *tx)
                    .await?
            }
            (Some(from), Some(to)) => {
                sqlx::query("UPDATE meta SET value = $3 WHERE key = $1 AND value = $2")
                    .bind(SCHEDULER_PAUSE)
                    .bind(from)
                    .bind(to)
                    .execute(&mut *tx)
                    .await?
            }
            (Some(from), None) => {
                sqlx::query("DELETE FROM meta WHERE key = $1 AND value = $2")
                    .bind(SCHEDULER_PAUSE)
                    .bind(from)
                    .execute(&mut *tx)
                    .await?
            }
        };
        let swapped = done.rows_affected() == 1;
        if swapped {
            notify(&mut *tx, "desired").await?;
        }
        tx.commit().await?;
        Ok(swapped)
    }
}

impl PgStore {
    pub async fn list_windows(&self) -> Result<Vec<Window>> {
        let rows: Vec<String> = sqlx::query_scalar("SELECT body FROM maintenance ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|b| crate::store::rows::window(b)).collect()
    }

    pub async fn put_window(&self, w: &Window, create: bool, now: DateTime<Utc>) -> Result<bool> {
        let body = serde_json::to_string(w).unwrap_or_default();
        let mut tx = self.pool.begin().await?;
        let done = if create {
            sqlx::query("INSERT INTO maintenance (id, body, updated_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        } else {
            sqlx::query("UPDATE maintenance SET body = $2, updated_ms = $3 WHERE id = $1")
        }
        .bind(&w.id)
        .bind(body)
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await?;
        let put = done.rows_affected() == 1;
        if put {
            notify(&mut *tx, "desired").await?;
        }
        tx.commit().await?;
        Ok(put)
    }

    pub async fn delete_window(&self, id: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM maintenance WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let deleted = done.rows_affected() == 1;
        if deleted {
            notify(&mut *tx, "desired").await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }
}
