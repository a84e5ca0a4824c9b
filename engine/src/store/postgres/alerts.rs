//! Alerts: channels, rules and checks as JSON definitions; incidents (one open per rule
//! and subject, the unique index decides) written with their deliveries in one
//! transaction; deliveries claimed one attempt at a time; the pings of inbound checks.

use super::{is_unique_violation, to_ms, PgStore};
use crate::error::Result;
use crate::model::alert::{Delivery, Incident, Ping};
use crate::store::rows::{DeliveryRow, IncidentRow, PingRow, DELIVERY_COLUMNS, INCIDENT_COLUMNS};
use crate::store::{DeliveryEnd, NewIncident, Notice};
use chrono::{DateTime, Utc};

async fn queue<'e>(
    tx: &mut sqlx::PgConnection,
    incident: i64,
    notices: &[Notice<'e>],
    at: DateTime<Utc>,
) -> Result<()> {
    for n in notices {
        // The notice was written before the incident had its id: it is filled in here.
        let body = n
            .body
            .replacen("\"incident\":null", &format!("\"incident\":{incident}"), 1);
        sqlx::query(
            "INSERT INTO deliveries (incident_id, channel_id, event, status, next_ms, created_ms, body)
             VALUES ($1, $2, $3, 'pending', $4, $4, $5)",
        )
        .bind(incident)
        .bind(n.channel)
        .bind(n.event.as_str())
        .bind(to_ms(at))
        .bind(body)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

impl PgStore {
    pub async fn alert_items(&self, what: &str) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT body FROM alert_items WHERE what = $1 ORDER BY id")
                .bind(what)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn put_alert_item(
        &self,
        what: &str,
        id: &str,
        body: &str,
        create: bool,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let done = if create {
            sqlx::query("INSERT INTO alert_items (what, id, body, updated_ms) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
        } else {
            sqlx::query("UPDATE alert_items SET body = $3, updated_ms = $4 WHERE what = $1 AND id = $2")
        }
        .bind(what)
        .bind(id)
        .bind(body)
        .bind(to_ms(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn delete_alert_item(&self, what: &str, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM alert_items WHERE what = $1 AND id = $2")
            .bind(what)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn latest_incidents(&self) -> Result<Vec<Incident>> {
        let rows: Vec<IncidentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents
             WHERE id IN (SELECT MAX(id) FROM incidents GROUP BY rule_id, subject)"
        )))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Incident::from).collect())
    }

    pub async fn list_incidents(&self, limit: u32) -> Result<Vec<Incident>> {
        let rows: Vec<IncidentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents
             ORDER BY (closed_ms IS NULL) DESC, id DESC LIMIT $1"
        )))
        .bind(i64::from(limit.clamp(1, 500)))
        .fetch_all(&self.pool)
        .await?;
        let mut incidents: Vec<Incident> = rows.into_iter().map(Incident::from).collect();
        let Some(oldest) = incidents.iter().map(|i| i.id).min() else {
            return Ok(incidents);
        };
        let rows: Vec<DeliveryRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE incident_id >= $1 ORDER BY id"
        )))
        .bind(oldest)
        .fetch_all(&self.pool)
        .await?;
        for row in rows {
            let d = Delivery::try_from(row)?;
            if let Some(i) = incidents.iter_mut().find(|i| Some(i.id) == d.incident) {
                i.deliveries.push(d);
            }
        }
        Ok(incidents)
    }

    pub async fn open_incident(&self, i: &NewIncident<'_>) -> Result<Option<i64>> {
        let mut tx = self.pool.begin().await?;
        let notified = (!i.notices.is_empty()).then(|| to_ms(i.at));
        let id = sqlx::query_scalar(
            "INSERT INTO incidents (rule_id, subject, opened_ms, run_id, message, suppressed, notified_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(i.rule)
        .bind(i.subject)
        .bind(to_ms(i.at))
        .bind(i.run)
        .bind(i.message)
        .bind(i.suppressed)
        .bind(notified)
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match id {
            Ok(id) => id,
            Err(e) if is_unique_violation(&e) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        queue(&mut tx, id, i.notices, i.at).await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    pub async fn close_incident(
        &self,
        id: i64,
        at: DateTime<Utc>,
        closed_by: Option<i64>,
        notices: &[Notice<'_>],
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE incidents SET closed_ms = $2, closed_by = $3 WHERE id = $1 AND closed_ms IS NULL",
        )
        .bind(id)
        .bind(to_ms(at))
        .bind(closed_by)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        queue(&mut tx, id, notices, at).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn remind_incident(
        &self,
        id: i64,
        at: DateTime<Utc>,
        since: Option<DateTime<Utc>>,
        notices: &[Notice<'_>],
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE incidents SET notified_ms = $2
             WHERE id = $1 AND closed_ms IS NULL AND notified_ms IS NOT DISTINCT FROM $3",
        )
        .bind(id)
        .bind(to_ms(at))
        .bind(since.map(to_ms))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        queue(&mut tx, id, notices, at).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn due_deliveries(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Delivery>> {
        let rows: Vec<DeliveryRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries
             WHERE status IN ('pending', 'sending') AND next_ms <= $1 ORDER BY next_ms, id LIMIT $2"
        )))
        .bind(to_ms(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(Delivery::try_from).collect()
    }

    pub async fn claim_delivery(
        &self,
        id: i64,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, next_ms = $3
             WHERE id = $1 AND status IN ('pending', 'sending') AND next_ms <= $2",
        )
        .bind(id)
        .bind(to_ms(now))
        .bind(to_ms(until))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn finish_delivery(&self, end: &DeliveryEnd<'_>) -> Result<()> {
        sqlx::query(
            "UPDATE deliveries SET status = $2, next_ms = $3, done_ms = $4, code = $5, error = $6
             WHERE id = $1 AND status = 'sending'",
        )
        .bind(end.id)
        .bind(end.status.as_str())
        .bind(to_ms(end.next_at))
        .bind(end.done_at.map(to_ms))
        .bind(end.code.map(i64::from))
        .bind(end.error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_old_alerts(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        // The newest incident of each pair is where its next scan starts, and the newest
        // pings of each check are its state: those stay whatever their age.
        let pings = sqlx::query(
            "DELETE FROM pings WHERE at_ms < $1
               AND id NOT IN (SELECT MAX(id) FROM pings GROUP BY check_id, kind)",
        )
        .bind(to_ms(cutoff))
        .execute(&self.pool)
        .await?
        .rows_affected();
        let incidents = sqlx::query(
            "DELETE FROM incidents WHERE closed_ms < $1
               AND id NOT IN (SELECT MAX(id) FROM incidents GROUP BY rule_id, subject)",
        )
        .bind(to_ms(cutoff))
        .execute(&self.pool)
        .await?
        .rows_affected();
        let deliveries = sqlx::query(
            "DELETE FROM deliveries WHERE created_ms < $1 AND status IN ('sent', 'failed')
               AND (incident_id IS NULL OR incident_id NOT IN (SELECT id FROM incidents))",
        )
        .bind(to_ms(cutoff))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(pings + incidents + deliveries)
    }

    pub async fn record_ping(&self, check_id: &str, p: &Ping) -> Result<()> {
        sqlx::query(
            "INSERT INTO pings (check_id, at_ms, kind, body, source) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(check_id)
        .bind(to_ms(p.at))
        .bind(p.kind.as_str())
        .bind(&p.body)
        .bind(&p.source)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn pings(&self, check_id: &str, limit: u32) -> Result<Vec<Ping>> {
        let rows: Vec<PingRow> = sqlx::query_as(
            "SELECT at_ms, kind, body, source FROM pings WHERE check_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(check_id)
        .bind(i64::from(limit.clamp(1, 500)))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Ping::from).collect())
    }

    pub async fn last_pings(&self) -> Result<Vec<(String, Ping)>> {
        let rows: Vec<(String, i64, String)> =
            sqlx::query_as("SELECT check_id, MAX(at_ms), kind FROM pings GROUP BY check_id, kind")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(c, at, kind)| {
                Some((
                    c,
                    Ping {
                        at: DateTime::from_timestamp_millis(at)?,
                        kind: crate::model::alert::PingKind::parse(&kind)?,
                        body: None,
                        source: None,
                    },
                ))
            })
            .collect())
    }
}
