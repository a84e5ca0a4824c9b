//! Group commit for the hot write path (claiming slots, recording run ends).
//!
//! SQLite has one writer at a time and every commit has a fixed cost, so committing each
//! run's rows on its own caps throughput near a thousand runs a second. Here one task owns
//! those writes: it takes every request waiting in its queue (up to [`MAX_BATCH`]), applies
//! them in one `BEGIN IMMEDIATE` transaction, commits, and only then answers each caller —
//! so a claim is durable before its run starts, exactly as with a transaction per call.
//! A failing statement fails only its own request (SQLite rolls back just that statement);
//! a failing commit fails the whole batch.

use crate::store::to_ms;
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqlitePool;
use tokio::sync::{mpsc, oneshot};

/// Most requests applied in one transaction.
const MAX_BATCH: usize = 512;
/// Requests waiting beyond this make callers wait (backpressure), not memory grow.
const QUEUE: usize = 8192;

/// A run row to insert, owned so it can cross to the writer task.
#[derive(Debug, Clone)]
pub(crate) struct RunRow {
    pub job_id: String,
    pub trigger: &'static str,
    pub status: &'static str,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub attempt: u32,
    pub error: Option<String>,
    pub node: String,
    /// A scheduled claim also advances the job's last claimed slot.
    pub advances_slot: bool,
}

pub(crate) enum Op {
    /// Answers the new run's id, or `None` when the (job, slot) was already claimed.
    InsertRun(RunRow, oneshot::Sender<Result<Option<i64>, String>>),
    FinishRun {
        id: i64,
        status: &'static str,
        at: DateTime<Utc>,
        output: Option<String>,
        error: Option<String>,
        /// `None` keeps the stored log (a run ended by someone other than its runner).
        log: Option<String>,
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// Starts the writer task on `pool` and returns its queue.
pub(crate) fn spawn(pool: SqlitePool) -> mpsc::Sender<Op> {
    let (tx, mut rx) = mpsc::channel::<Op>(QUEUE);
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
            apply(&pool, std::mem::take(&mut batch)).await;
        }
    });
    tx
}

enum Reply {
    Insert(
        oneshot::Sender<Result<Option<i64>, String>>,
        Result<Option<i64>, String>,
    ),
    Finish(oneshot::Sender<Result<(), String>>, Result<(), String>),
}

async fn apply(pool: &SqlitePool, batch: Vec<Op>) {
    let mut tx = match pool.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(e) => return fail_all(batch, &e.to_string()),
    };
    // Each statement is a round trip to SQLite's thread, so rows that cannot collide go
    // in as one multi-row statement per chunk: manual runs (the unique slot index covers
    // only scheduled triggers) and run ends. Slot claims, which may collide, go one by one.
    let mut replies = Vec::with_capacity(batch.len());
    let mut plain = Vec::new();
    let mut finishes = Vec::new();
    for op in batch {
        match op {
            Op::InsertRun(row, reply) if !row.advances_slot => plain.push((row, reply)),
            Op::InsertRun(row, reply) => {
                let r = insert(&mut tx, &row).await;
                replies.push(Reply::Insert(reply, r));
            }
            Op::FinishRun {
                id,
                status,
                at,
                output,
                error,
                log,
                reply,
            } => finishes.push((id, status, at, output, error, log, reply)),
        }
    }
    for chunk in chunks(plain) {
        let rows: Vec<&RunRow> = chunk.iter().map(|(row, _)| row).collect();
        let r = insert_plain(&mut tx, &rows).await;
        for (k, (_, reply)) in chunk.into_iter().enumerate() {
            replies.push(Reply::Insert(
                reply,
                r.clone().map(|first| Some(first + k as i64)),
            ));
        }
    }
    for chunk in chunks(finishes) {
        let mut sql = String::from(
            "UPDATE runs SET status = v.column2, finished_ms = v.column3, output = v.column4, error = v.column5, log = COALESCE(v.column6, runs.log) FROM (VALUES ",
        );
        for k in 0..chunk.len() {
            sql.push_str(if k == 0 {
                "(?, ?, ?, ?, ?, ?)"
            } else {
                ", (?, ?, ?, ?, ?, ?)"
            });
        }
        sql.push_str(") AS v WHERE runs.id = v.column1");
        // Only placeholders are spliced in; every value is bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, status, at, output, error, log, _) in &chunk {
            q = q
                .bind(*id)
                .bind(*status)
                .bind(to_ms(*at))
                .bind(output.clone())
                .bind(error.clone())
                .bind(log.clone());
        }
        let r = q
            .execute(&mut *tx)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        for (.., reply) in chunk {
            replies.push(Reply::Finish(reply, r.clone()));
        }
    }
    let committed = tx.commit().await.map_err(|e| e.to_string());
    for reply in replies {
        // A caller that stopped waiting (timed out, cancelled) just misses its answer.
        match (reply, &committed) {
            (Reply::Insert(to, r), Ok(())) => drop(to.send(r)),
            (Reply::Finish(to, r), Ok(())) => drop(to.send(r)),
            (Reply::Insert(to, _), Err(e)) => drop(to.send(Err(e.clone()))),
            (Reply::Finish(to, _), Err(e)) => drop(to.send(Err(e.clone()))),
        }
    }
}

/// Rows per multi-row statement: well under SQLite's limit on bound parameters.
const CHUNK: usize = 100;

fn chunks<T>(items: Vec<T>) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut it = items.into_iter().peekable();
    while it.peek().is_some() {
        out.push(it.by_ref().take(CHUNK).collect());
    }
    out
}

/// Inserts rows that cannot collide in one statement and returns the first new id. Inside
/// our `BEGIN IMMEDIATE` no other writer runs, and AUTOINCREMENT hands out ids in VALUES
/// order, so the rows got `first, first + 1, ...`.
async fn insert_plain(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    rows: &[&RunRow],
) -> Result<i64, String> {
    let mut sql = String::from(
        "INSERT INTO runs (job_id, trigger, status, scheduled_ms, started_ms, finished_ms, attempt, error, node) VALUES ",
    );
    for k in 0..rows.len() {
        sql.push_str(if k == 0 {
            "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
        } else {
            ", (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        });
    }
    // Only placeholders are spliced in; every value is bound.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for row in rows {
        let started = row.started_at.map(to_ms);
        q = q
            .bind(&row.job_id)
            .bind(row.trigger)
            .bind(row.status)
            .bind(row.scheduled_at.map(to_ms))
            .bind(started)
            .bind(if row.status == "skipped" {
                started
            } else {
                None
            })
            .bind(i64::from(row.attempt))
            .bind(&row.error)
            .bind(&row.node);
    }
    let done = q.execute(&mut **tx).await.map_err(|e| e.to_string())?;
    Ok(done.last_insert_rowid() - rows.len() as i64 + 1)
}

async fn insert(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    row: &RunRow,
) -> Result<Option<i64>, String> {
    let r = sqlx::query(
        "INSERT INTO runs (job_id, trigger, status, scheduled_ms, started_ms, finished_ms, attempt, error, node)
         VALUES (?1, ?2, ?3, ?4, ?5, CASE WHEN ?3 = 'skipped' THEN ?5 END, ?6, ?7, ?8)",
    )
    .bind(&row.job_id)
    .bind(row.trigger)
    .bind(row.status)
    .bind(row.scheduled_at.map(to_ms))
    .bind(row.started_at.map(to_ms))
    .bind(i64::from(row.attempt))
    .bind(&row.error)
    .bind(&row.node)
    .execute(&mut **tx)
    .await;
    let id = match r {
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => return Ok(None),
        Err(e) => return Err(e.to_string()),
        Ok(done) => done.last_insert_rowid(),
    };
    if let (true, Some(slot)) = (row.advances_slot, row.scheduled_at) {
        sqlx::query("UPDATE jobs SET last_slot_ms = MAX(last_slot_ms, ?2) WHERE id = ?1")
            .bind(&row.job_id)
            .bind(to_ms(slot))
            .execute(&mut **tx)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(Some(id))
}

fn fail_all(batch: Vec<Op>, why: &str) {
    for op in batch {
        match op {
            Op::InsertRun(_, reply) => drop(reply.send(Err(why.to_string()))),
            Op::FinishRun { reply, .. } => drop(reply.send(Err(why.to_string()))),
        }
    }
}
