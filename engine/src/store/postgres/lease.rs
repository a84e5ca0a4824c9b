//! The leader's lease: one row, judged by the database's clock. Acquiring succeeds only
//! when the lease has expired (or was resigned) and always bumps the epoch — a lapsed
//! lease is never revived; renewing needs the same holder, the same epoch and a lease not
//! yet expired; resigning expires it at once and tells the other nodes. Each epoch's term
//! is kept in `leader_history`.
//!
//! These run on the store's own small pool, so a burst of runs never delays a renewal.

use super::{notify, PgStore};
use crate::error::Result;
use crate::model::LeaderTerm;
use chrono::DateTime;
use sqlx::Row;

/// How an attempt to take the lease came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    Granted(Grant),
    /// Another node holds it for `left_ms` more (by the database's clock).
    Held {
        left_ms: i64,
    },
}

/// A lease granted or renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub epoch: i64,
    /// When it expires, by the database's clock (ms).
    pub expires_ms: i64,
    /// The database's clock when it granted it (ms).
    pub db_now_ms: i64,
}

impl PgStore {
    /// Takes the lease for `holder` for `ttl_ms` if nobody holds an unexpired one; else
    /// says how long the holder's lease has left, so a follower can try again right then.
    pub async fn acquire_lease(&self, holder: &str, ttl_ms: i64) -> Result<Acquired> {
        let mut tx = self.control.begin().await?;
        // Once the lease ran out, waits for the leader writes in flight (each holds the row
        // `FOR KEY SHARE`), so none of the old epoch commits after the new one begins. A
        // lease still held is not locked: a follower's try never stalls the leader. While
        // this lock is held nobody renews or takes the lease, so the update needs no check.
        let lapsed = sqlx::query(
            "SELECT 1 FROM scheduler_lease WHERE id = 1 AND expires_ms <= echopilot_now_ms() FOR UPDATE",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let row = match lapsed {
            None => None,
            Some(_) => sqlx::query(
                "WITH now AS (SELECT echopilot_now_ms() AS t)
                 UPDATE scheduler_lease SET epoch = epoch + 1, holder = $1, renewed_ms = now.t, expires_ms = now.t + $2
                 FROM now WHERE id = 1
                 RETURNING epoch, expires_ms, now.t AS db_now",
            )
            .bind(holder)
            .bind(ttl_ms)
            .fetch_optional(&mut *tx)
            .await?,
        };
        let Some(row) = row else {
            let left_ms: i64 = sqlx::query_scalar(
                "SELECT expires_ms - echopilot_now_ms() FROM scheduler_lease WHERE id = 1",
            )
            .fetch_one(&mut *tx)
            .await?;
            tx.rollback().await?;
            return Ok(Acquired::Held { left_ms });
        };
        let grant = Grant {
            epoch: row.try_get("epoch")?,
            expires_ms: row.try_get("expires_ms")?,
            db_now_ms: row.try_get("db_now")?,
        };
        // The previous term ended when its lease lapsed (unless it resigned).
        sqlx::query(
            "UPDATE leader_history SET ended_ms = $2, ended_how = 'expired'
             WHERE epoch < $1 AND ended_ms IS NULL",
        )
        .bind(grant.epoch)
        .bind(grant.db_now_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO leader_history (epoch, holder, acquired_ms) VALUES ($1, $2, $3)")
            .bind(grant.epoch)
            .bind(holder)
            .bind(grant.db_now_ms)
            .execute(&mut *tx)
            .await?;
        notify(&mut *tx, "lease").await?;
        tx.commit().await?;
        Ok(Acquired::Granted(grant))
    }

    /// Extends `holder`'s lease of `epoch` by `ttl_ms` from now, if it still holds it.
    pub async fn renew_lease(
        &self,
        holder: &str,
        epoch: i64,
        ttl_ms: i64,
    ) -> Result<Option<Grant>> {
        let row = sqlx::query(
            "WITH now AS (SELECT echopilot_now_ms() AS t)
             UPDATE scheduler_lease SET renewed_ms = now.t, expires_ms = now.t + $3
             FROM now WHERE id = 1 AND holder = $1 AND epoch = $2 AND expires_ms > now.t
             RETURNING epoch, expires_ms, now.t AS db_now",
        )
        .bind(holder)
        .bind(epoch)
        .bind(ttl_ms)
        .fetch_optional(&self.control)
        .await?;
        row.map(|r| {
            Ok(Grant {
                epoch: r.try_get("epoch")?,
                expires_ms: r.try_get("expires_ms")?,
                db_now_ms: r.try_get("db_now")?,
            })
        })
        .transpose()
    }

    /// Gives the lease up now (shutdown) and tells the other nodes, so one takes over at
    /// once instead of waiting out the lease.
    pub async fn resign_lease(&self, holder: &str, epoch: i64) -> Result<()> {
        let mut tx = self.control.begin().await?;
        let done = sqlx::query(
            "UPDATE scheduler_lease SET expires_ms = 0 WHERE id = 1 AND holder = $1 AND epoch = $2",
        )
        .bind(holder)
        .bind(epoch)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            sqlx::query(
                "UPDATE leader_history SET ended_ms = echopilot_now_ms(), ended_how = 'resigned'
                 WHERE epoch = $1 AND ended_ms IS NULL",
            )
            .bind(epoch)
            .execute(&mut *tx)
            .await?;
            notify(&mut *tx, "lease").await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The current lease: `(epoch, holder)` while someone holds it unexpired.
    pub async fn current_lease(&self) -> Result<Option<(i64, String)>> {
        let row = sqlx::query(
            "SELECT epoch, holder FROM scheduler_lease
             WHERE id = 1 AND holder IS NOT NULL AND expires_ms > echopilot_now_ms()",
        )
        .fetch_optional(&self.control)
        .await?;
        row.map(|r| Ok((r.try_get("epoch")?, r.try_get("holder")?)))
            .transpose()
    }

    pub async fn leader_history(&self, limit: u32) -> Result<Vec<LeaderTerm>> {
        let rows = sqlx::query(
            "SELECT epoch, holder, acquired_ms, ended_ms, ended_how FROM leader_history
             ORDER BY epoch DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LeaderTerm {
                    epoch: r.try_get("epoch")?,
                    holder: r.try_get("holder")?,
                    acquired_at: DateTime::from_timestamp_millis(r.try_get("acquired_ms")?)
                        .unwrap_or_default(),
                    ended_at: r
                        .try_get::<Option<i64>, _>("ended_ms")?
                        .and_then(DateTime::from_timestamp_millis),
                    ended_how: r.try_get("ended_how")?,
                })
            })
            .collect()
    }
}
