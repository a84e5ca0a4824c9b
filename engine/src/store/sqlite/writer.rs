//! Group commit for the hot write path (claiming slots, starting runs, recording ends).
//!
//! SQLite has one writer at a time and every commit has a fixed cost, so committing each
//! run's rows on its own caps throughput near a thousand runs a second. Here one task owns
//! those writes: it takes every request waiting in its queue (up to [`MAX_BATCH`]), applies
//! them in one `BEGIN IMMEDIATE` transaction, commits, and only then answers each caller —
//! so a claim is durable before its run starts, exactly as with a transaction per call.
//! A failing statement fails only its own request (SQLite rolls back just that statement);
//! a failing commit fails the whole batch.

use super::to_ms;
use crate::model::Overlap;
use crate::store::{Claim, SKIPPED_ACTIVE, SKIPPED_QUEUE_FULL};
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqlitePool;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most requests applied in one transaction.
const MAX_BATCH: usize = 512;
/// Requests waiting beyond this make callers wait (backpressure), not memory grow.
const QUEUE: usize = 8192;

type Reply<T> = oneshot::Sender<Result<T, Arc<sqlx::Error>>>;

/// A slot claim, owned so it can cross to the writer task.
#[derive(Debug, Clone)]
pub(super) struct ClaimRow {
    pub job_id: String,
    pub slot: DateTime<Utc>,
    pub trigger: &'static str,
    pub overlap: Overlap,
    pub started_at: DateTime<Utc>,
    pub node: String,
}

/// A run that starts at once (run now, a retry).
#[derive(Debug, Clone)]
pub(super) struct StartRow {
    pub job_id: String,
    pub trigger: &'static str,
    pub attempt: u32,
    pub started_at: DateTime<Utc>,
    pub node: String,
    pub params: Option<String>,
    pub rerun_of: Option<i64>,
}

pub(super) enum Op {
    Claim(ClaimRow, Reply<Claim>),
    Start(StartRow, Reply<i64>),
    /// Answers whether the run was still running (and so was ended by this request).
    Finish {
        id: i64,
        status: &'static str,
        at: DateTime<Utc>,
        output: Option<String>,
        error: Option<String>,
        /// `None` keeps the stored log (a run ended by someone other than its runner).
        log: Option<String>,
        reply: Reply<bool>,
    },
}

/// Starts the writer task on `pool` and returns its queue.
pub(super) fn spawn(pool: SqlitePool) -> mpsc::Sender<Op> {
    let (tx, mut rx) = mpsc::channel::<Op>(QUEUE);
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
            apply(&pool, std::mem::take(&mut batch)).await;
        }
    });
    tx
}

/// An answer waiting for the commit.
enum Answer {
    Claim(Reply<Claim>, Result<Claim, Arc<sqlx::Error>>),
    Start(Reply<i64>, Result<i64, Arc<sqlx::Error>>),
    Finish(Reply<bool>, Result<bool, Arc<sqlx::Error>>),
}

type Finish = (
    i64,
    &'static str,
    DateTime<Utc>,
    Option<String>,
    Option<String>,
    Option<String>,
    Reply<bool>,
);

async fn apply(pool: &SqlitePool, batch: Vec<Op>) {
    let mut tx = match pool.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(e) => return fail_all(batch, Arc::new(e)),
    };
    // Each statement is a round trip to SQLite's thread, so rows that cannot collide go
    // in as one multi-row statement per chunk: run starts (the unique slot index covers
    // only scheduled triggers) and run ends. Slot claims, which may collide and decide
    // the overlap policy against the rows before them, go one by one, in order.
    let mut answers = Vec::with_capacity(batch.len());
    let mut starts = Vec::new();
    let mut finishes: Vec<Finish> = Vec::new();
    for op in batch {
        match op {
            Op::Claim(row, reply) => {
                let r = claim(&mut tx, &row).await.map_err(Arc::new);
                answers.push(Answer::Claim(reply, r));
            }
            Op::Start(row, reply) => starts.push((row, reply)),
            Op::Finish {
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
    for chunk in chunks(starts) {
        let rows: Vec<&StartRow> = chunk.iter().map(|(row, _)| row).collect();
        let r = insert_started(&mut tx, &rows).await.map_err(Arc::new);
        for (k, (_, reply)) in chunk.into_iter().enumerate() {
            answers.push(Answer::Start(
                reply,
                r.clone().map(|first| first + k as i64),
            ));
        }
    }
    for chunk in chunks(finishes) {
        let r = finish(&mut tx, &chunk).await.map_err(Arc::new);
        for (id, .., reply) in chunk {
            answers.push(Answer::Finish(
                reply,
                r.as_ref()
                    .map(|ended| ended.contains(&id))
                    .map_err(Arc::clone),
            ));
        }
    }
    let committed = tx.commit().await.map_err(Arc::new);
    for answer in answers {
        // A caller that stopped waiting (timed out, cancelled) just misses its answer.
        match (answer, &committed) {
            (Answer::Claim(to, r), Ok(())) => drop(to.send(r)),
            (Answer::Start(to, r), Ok(())) => drop(to.send(r)),
            (Answer::Finish(to, r), Ok(())) => drop(to.send(r)),
            (Answer::Claim(to, _), Err(e)) => drop(to.send(Err(e.clone()))),
            (Answer::Start(to, _), Err(e)) => drop(to.send(Err(e.clone()))),
            (Answer::Finish(to, _), Err(e)) => drop(to.send(Err(e.clone()))),
        }
    }
}

/// Rows per multi-row statement: well under SQLite's limit on bound parameters.
const CHUNK: usize = 100;

/// `n` copies of a row of placeholders, comma-separated: the VALUES of a multi-row
/// statement. Only placeholders are spliced into SQL; every value is bound.
fn rows_of(n: usize, row: &str) -> String {
    vec![row; n].join(", ")
}

fn chunks<T>(items: Vec<T>) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut it = items.into_iter().peekable();
    while it.peek().is_some() {
        out.push(it.by_ref().take(CHUNK).collect());
    }
    out
}

/// Ends the runs of `chunk` that are still running, in one statement; answers which.
async fn finish(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    chunk: &[Finish],
) -> Result<HashSet<i64>, sqlx::Error> {
    // The compare-and-set: a run someone else ended (cancelled, interrupted) stays so.
    let sql = format!(
        "UPDATE runs SET status = v.column2, finished_ms = v.column3, output = v.column4, error = v.column5, log = COALESCE(v.column6, runs.log)
         FROM (VALUES {}) AS v WHERE runs.id = v.column1 AND runs.status = 'running' RETURNING runs.id",
        rows_of(chunk.len(), "(?, ?, ?, ?, ?, ?)")
    );
    let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql));
    for (id, status, at, output, error, log, _) in chunk {
        q = q
            .bind(*id)
            .bind(*status)
            .bind(to_ms(*at))
            .bind(output.clone())
            .bind(error.clone())
            .bind(log.clone());
    }
    Ok(q.fetch_all(&mut **tx).await?.into_iter().collect())
}

/// Inserts running rows in one statement and returns the first new id. Inside our `BEGIN
/// IMMEDIATE` no other writer runs, and AUTOINCREMENT hands out ids in VALUES order, so
/// the rows got `first, first + 1, ...`.
async fn insert_started(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    rows: &[&StartRow],
) -> Result<i64, sqlx::Error> {
    let sql = format!(
        "INSERT INTO runs (job_id, trigger, status, started_ms, attempt, node, params, rerun_of) VALUES {}",
        rows_of(rows.len(), "(?, ?, 'running', ?, ?, ?, ?, ?)")
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for row in rows {
        q = q
            .bind(&row.job_id)
            .bind(row.trigger)
            .bind(to_ms(row.started_at))
            .bind(i64::from(row.attempt))
            .bind(&row.node)
            .bind(&row.params)
            .bind(row.rerun_of);
    }
    let done = q.execute(&mut **tx).await?;
    Ok(done.last_insert_rowid() - rows.len() as i64 + 1)
}

/// One slot claim: the overlap decision against the job's rows, the row, the cursor.
async fn claim(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    row: &ClaimRow,
) -> Result<Claim, sqlx::Error> {
    let (status, error) = match row.overlap {
        Overlap::Allow => ("running", None),
        Overlap::Skip | Overlap::Queue => {
            let (running, queued): (i64, i64) = sqlx::query_as(
                "SELECT COALESCE(SUM(status = 'running'), 0), COALESCE(SUM(status = 'queued'), 0)
                 FROM runs WHERE job_id = ?1 AND status IN ('running', 'queued')",
            )
            .bind(&row.job_id)
            .fetch_one(&mut **tx)
            .await?;
            match (row.overlap, running, queued) {
                (_, 0, _) => ("running", None),
                (Overlap::Queue, _, 0) => ("queued", None),
                (Overlap::Queue, _, _) => ("skipped", Some(SKIPPED_QUEUE_FULL)),
                _ => ("skipped", Some(SKIPPED_ACTIVE)),
            }
        }
    };
    // A queued run has not started; a skipped slot starts and ends at once.
    let started = (status != "queued").then(|| to_ms(row.started_at));
    let r = sqlx::query(
        "INSERT INTO runs (job_id, trigger, status, scheduled_ms, started_ms, finished_ms, attempt, error, node)
         VALUES (?1, ?2, ?3, ?4, ?5, CASE WHEN ?3 = 'skipped' THEN ?5 END, 1, ?6, ?7)",
    )
    .bind(&row.job_id)
    .bind(row.trigger)
    .bind(status)
    .bind(to_ms(row.slot))
    .bind(started)
    .bind(error)
    .bind(&row.node)
    .execute(&mut **tx)
    .await;
    let id = match r {
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => return Ok(Claim::Taken),
        Err(e) => return Err(e),
        Ok(done) => done.last_insert_rowid(),
    };
    sqlx::query("UPDATE jobs SET last_slot_ms = MAX(last_slot_ms, ?2) WHERE id = ?1")
        .bind(&row.job_id)
        .bind(to_ms(row.slot))
        .execute(&mut **tx)
        .await?;
    Ok(match status {
        "running" => Claim::Run(id),
        "queued" => Claim::Queued(id),
        _ => Claim::Skipped(id),
    })
}

fn fail_all(batch: Vec<Op>, why: Arc<sqlx::Error>) {
    for op in batch {
        match op {
            Op::Claim(_, reply) => drop(reply.send(Err(why.clone()))),
            Op::Start(_, reply) => drop(reply.send(Err(why.clone()))),
            Op::Finish { reply, .. } => drop(reply.send(Err(why.clone()))),
        }
    }
}
