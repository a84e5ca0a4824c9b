//! The node registry: every node registers at start (a new id per process) and beats on
//! the store's own small pool. A beat that matches no row means the node was declared
//! gone (its heartbeat expired and its runs were rescued): it must stop and start over.

use super::PgStore;
use crate::error::Result;
use crate::model::NodeInfo;
use chrono::DateTime;
use sqlx::Row;

/// How long a gone node stays listed (for the dashboard) before its row is pruned.
const KEEP_GONE_MS: i64 = 10 * 60 * 1000;

impl PgStore {
    /// Registers this node; answers the database's clock (ms) at registration.
    pub async fn register_node(&self, node: &NodeInfo, ttl_ms: i64) -> Result<i64> {
        let now: i64 = sqlx::query_scalar(
            "INSERT INTO nodes (id, name, pid, version, started_ms, heartbeat_ms, expires_ms, running, clock_offset_ms)
             SELECT $1, $2, $3, $4, t, t, t + $5, 0, $6 FROM (SELECT echopilot_now_ms() AS t) now
             ON CONFLICT (id) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms, expires_ms = excluded.expires_ms
             RETURNING heartbeat_ms",
        )
        .bind(&node.id)
        .bind(&node.name)
        .bind(i64::from(node.pid))
        .bind(&node.version)
        .bind(ttl_ms)
        .bind(node.clock_offset_ms)
        .fetch_one(&self.control)
        .await?;
        Ok(now)
    }

    /// One heartbeat; `None` when the node was declared gone meanwhile.
    pub async fn beat_node(
        &self,
        id: &str,
        running: u64,
        clock_offset_ms: i64,
        ttl_ms: i64,
    ) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "WITH now AS (SELECT echopilot_now_ms() AS t)
             UPDATE nodes SET heartbeat_ms = now.t, expires_ms = now.t + $4, running = $2, clock_offset_ms = $3
             FROM now WHERE id = $1 AND expires_ms > now.t
             RETURNING now.t",
        )
        .bind(id)
        .bind(running as i64)
        .bind(clock_offset_ms)
        .bind(ttl_ms)
        .fetch_optional(&self.control)
        .await?)
    }

    /// Forgets a node (drained at shutdown: its runs ended, nothing to rescue).
    pub async fn leave(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM nodes WHERE id = $1")
            .bind(id)
            .execute(&self.control)
            .await?;
        Ok(())
    }

    /// Nodes alive and lately gone, newest first; older gone ones are pruned.
    pub async fn list_nodes(&self) -> Result<Vec<NodeInfo>> {
        sqlx::query("DELETE FROM nodes WHERE expires_ms < echopilot_now_ms() - $1")
            .bind(KEEP_GONE_MS)
            .execute(&self.pool)
            .await?;
        let rows = sqlx::query(
            "SELECT n.id, n.name, n.pid, n.version, n.started_ms, n.heartbeat_ms, n.expires_ms,
                    n.running, n.clock_offset_ms,
                    (l.holder = n.id AND l.expires_ms > echopilot_now_ms()) IS TRUE AS leader
             FROM nodes n LEFT JOIN scheduler_lease l ON l.id = 1
             ORDER BY n.started_ms DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        let at = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap_or_default();
        rows.iter()
            .map(|r| {
                Ok(NodeInfo {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    pid: u32::try_from(r.try_get::<i64, _>("pid")?).unwrap_or(0),
                    version: r.try_get("version")?,
                    started_at: at(r.try_get("started_ms")?),
                    heartbeat_at: at(r.try_get("heartbeat_ms")?),
                    expires_at: at(r.try_get("expires_ms")?),
                    running: r.try_get::<i64, _>("running")?.max(0) as u64,
                    clock_offset_ms: r.try_get("clock_offset_ms")?,
                    leader: r.try_get("leader")?,
                })
            })
            .collect()
    }
}
