//! Group commit for the hot writes on PostgreSQL: runs queued by "run now" and runs'
//! ends. Each is one autocommit statement per batch (`unnest` of arrays) with one
//! announcement, instead of a commit — a WAL flush — per run; while one batch of a kind is
//! in flight the next one fills, so batches grow with the load. A caller is answered after its batch committed, exactly as with a
//! statement of its own.
//!
//! An end is compare-and-set on the row (`status = 'running'`), per row as before; two
//! ends of one run never share a batch, so each learns whether it was the one recorded.

use super::{to_ms, UNCLAIMED};
use crate::error::{EngineError, Result};
use crate::store::{NewRun, RunEnd};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Most rows in one statement.
const MAX_BATCH: usize = 512;
/// Batches in flight at once, per kind.
const IN_FLIGHT: usize = 1;
/// Callers waiting beyond this wait to enqueue (backpressure).
const QUEUE: usize = 8192;
/// A batch the database does not answer within this fails (its callers see Unavailable).
const DEADLINE: Duration = Duration::from_secs(15);

type Reply<T> = oneshot::Sender<Result<T>>;

struct Queued {
    job_id: String,
    trigger: &'static str,
    attempt: i64,
    params: Option<String>,
    rerun_of: Option<i64>,
    reply: Reply<i64>,
}

struct Ended {
    id: i64,
    status: &'static str,
    at: i64,
    output: Option<String>,
    error: Option<String>,
    log: Option<String>,
    reply: Reply<bool>,
}

/// The queues of the two batchers.
#[derive(Debug, Clone)]
pub(super) struct Batcher {
    queue: mpsc::Sender<Queued>,
    end: mpsc::Sender<Ended>,
}

fn gone() -> EngineError {
    EngineError::WriterGone
}

impl Batcher {
    pub fn spawn(pool: sqlx::PgPool) -> Batcher {
        let (queue, queued) = mpsc::channel(QUEUE);
        let (end, ended) = mpsc::channel(QUEUE);
        tokio::spawn(run_queues(pool.clone(), queued));
        tokio::spawn(run_ends(pool, ended));
        Batcher { queue, end }
    }

    pub async fn enqueue(&self, r: &NewRun<'_>) -> Result<i64> {
        let (reply, answer) = oneshot::channel();
        let row = Queued {
            job_id: r.job_id.to_string(),
            trigger: r.trigger.as_str(),
            attempt: i64::from(r.attempt),
            params: r.params.map(str::to_string),
            rerun_of: r.rerun_of,
            reply,
        };
        self.queue.send(row).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    pub async fn finish(&self, e: &RunEnd<'_>) -> Result<bool> {
        let (reply, answer) = oneshot::channel();
        let row = Ended {
            id: e.id,
            status: e.status.as_str(),
            at: to_ms(e.at),
            output: e.output.map(|o| o.to_string()),
            error: e.error.map(str::to_string),
            log: e.log.map(str::to_string),
            reply,
        };
        self.end.send(row).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// Runs `write` under the deadline; the error shared by every caller of the batch.
async fn bounded<T>(
    write: impl std::future::Future<Output = std::result::Result<T, sqlx::Error>>,
) -> std::result::Result<T, Arc<EngineError>> {
    match tokio::time::timeout(DEADLINE, write).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Arc::new(EngineError::Write(Arc::new(e)))),
        Err(_) => Err(Arc::new(EngineError::StoreTimeout(DEADLINE))),
    }
}

/// The error for one caller of a failed batch.
fn each(e: &Arc<EngineError>) -> EngineError {
    match &**e {
        EngineError::Write(s) => EngineError::Write(s.clone()),
        EngineError::StoreTimeout(d) => EngineError::StoreTimeout(*d),
        _ => gone(),
    }
}

async fn run_queues(pool: sqlx::PgPool, mut rx: mpsc::Receiver<Queued>) {
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let rows = std::mem::take(&mut batch);
        let pool = pool.clone();
        tokio::spawn(async move {
            insert_queued(&pool, rows).await;
            drop(permit);
        });
    }
}

async fn insert_queued(pool: &sqlx::PgPool, rows: Vec<Queued>) {
    let jobs: Vec<&str> = rows.iter().map(|r| r.job_id.as_str()).collect();
    let triggers: Vec<&str> = rows.iter().map(|r| r.trigger).collect();
    let attempts: Vec<i64> = rows.iter().map(|r| r.attempt).collect();
    let params: Vec<Option<&str>> = rows.iter().map(|r| r.params.as_deref()).collect();
    let reruns: Vec<Option<i64>> = rows.iter().map(|r| r.rerun_of).collect();
    // Ids come from the sequence in the order of the rows (ORDER BY n), so the batch's
    // ids sorted are its rows' ids in order.
    let inserted = bounded(
        sqlx::query_scalar::<_, i64>(
            "WITH run AS (
                 INSERT INTO runs (job_id, trigger, status, attempt, node, params, rerun_of)
                 SELECT j, t, 'queued', a, $4, p, o
                 FROM unnest($1::TEXT[], $2::TEXT[], $3::BIGINT[], $6::TEXT[], $7::BIGINT[])
                     WITH ORDINALITY AS u(j, t, a, p, o, n)
                 ORDER BY n
                 RETURNING id)
             SELECT id FROM run, pg_notify($5, 'work')",
        )
        .bind(&jobs)
        .bind(&triggers)
        .bind(&attempts)
        .bind(UNCLAIMED)
        .bind(super::CHANNEL)
        .bind(&params)
        .bind(&reruns)
        .fetch_all(pool),
    )
    .await;
    match inserted {
        Ok(mut ids) if ids.len() == rows.len() => {
            ids.sort_unstable();
            for (row, id) in rows.into_iter().zip(ids) {
                let _ = row.reply.send(Ok(id));
            }
        }
        Ok(ids) => {
            let msg = format!("{} runs queued, {} ids returned", rows.len(), ids.len());
            for row in rows {
                let _ = row.reply.send(Err(EngineError::Corrupt(msg.clone())));
            }
        }
        Err(e) => {
            for row in rows {
                let _ = row.reply.send(Err(each(&e)));
            }
        }
    }
}

async fn run_ends(pool: sqlx::PgPool, mut rx: mpsc::Receiver<Ended>) {
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut waiting: Vec<Ended> = Vec::new();
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        if waiting.is_empty() && rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        // Whatever else is queued right now joins, up to the batch size.
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        // One end per run per batch: a second end of the same run waits for the next.
        let mut rows = Vec::with_capacity(batch.len());
        let mut later = Vec::new();
        let mut ids = HashSet::new();
        for e in waiting.drain(..).chain(batch.drain(..)) {
            if ids.insert(e.id) {
                rows.push(e);
            } else {
                later.push(e);
            }
        }
        waiting = later;
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let pool = pool.clone();
        tokio::spawn(async move {
            record_ends(&pool, rows).await;
            drop(permit);
        });
    }
}

async fn record_ends(pool: &sqlx::PgPool, rows: Vec<Ended>) {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let statuses: Vec<&str> = rows.iter().map(|r| r.status).collect();
    let ats: Vec<i64> = rows.iter().map(|r| r.at).collect();
    let outputs: Vec<Option<&str>> = rows.iter().map(|r| r.output.as_deref()).collect();
    let errors: Vec<Option<&str>> = rows.iter().map(|r| r.error.as_deref()).collect();
    let logs: Vec<Option<&str>> = rows.iter().map(|r| r.log.as_deref()).collect();
    let ended = bounded(
        sqlx::query_scalar::<_, i64>(
            "WITH v AS (SELECT * FROM unnest($1::BIGINT[], $2::TEXT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[], $6::TEXT[])
                        AS v(id, status, at, output, error, log)),
                  done AS (UPDATE runs r SET status = v.status, finished_ms = v.at, output = v.output,
                                             error = v.error, log = COALESCE(v.log, r.log)
                           -- Each row by its key: `= ANY` for the planner, and the status
                           -- test out of any index's reach (`IS TRUE`), as the indexes on
                           -- status hold an entry for every run recently ended, dead or not.
                           FROM v WHERE r.id = v.id AND r.id = ANY($1) AND (r.status = 'running') IS TRUE
                           RETURNING r.id)
             SELECT id FROM done, pg_notify($7, 'ended')",
        )
        .bind(&ids)
        .bind(&statuses)
        .bind(&ats)
        .bind(&outputs)
        .bind(&errors)
        .bind(&logs)
        .bind(super::CHANNEL)
        .fetch_all(pool),
    )
    .await;
    match ended {
        Ok(done) => {
            let done: HashSet<i64> = done.into_iter().collect();
            for row in rows {
                let _ = row.reply.send(Ok(done.contains(&row.id)));
            }
        }
        Err(e) => {
            for row in rows {
                let _ = row.reply.send(Err(each(&e)));
            }
        }
    }
}
