-- Jobs and their runs. Times are integer milliseconds since the Unix epoch (UTC): exact,
-- compact, and ordered the same way as the instants they stand for.
CREATE TABLE jobs (
    id                  TEXT    PRIMARY KEY,
    name                TEXT    NOT NULL,
    kind                TEXT    NOT NULL,
    schedule            TEXT    NOT NULL,
    timezone            TEXT    NOT NULL DEFAULT 'UTC',
    enabled             INTEGER NOT NULL DEFAULT 1,
    timeout_secs        INTEGER NOT NULL,
    retries             INTEGER NOT NULL DEFAULT 0,
    retry_backoff_secs  INTEGER NOT NULL DEFAULT 10,
    overlap             TEXT    NOT NULL CHECK (overlap IN ('skip', 'queue', 'allow')),
    misfire             TEXT    NOT NULL CHECK (misfire IN ('skip', 'run_once')),
    params              TEXT    NOT NULL DEFAULT '{}',
    -- The last slot this job claimed: where catch-up after downtime starts from.
    last_slot_ms        INTEGER NOT NULL,
    created_ms          INTEGER NOT NULL,
    updated_ms          INTEGER NOT NULL
);

CREATE TABLE runs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id          TEXT    NOT NULL,
    trigger         TEXT    NOT NULL CHECK (trigger IN ('schedule', 'manual', 'api', 'cli', 'retry', 'catch_up')),
    status          TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled', 'interrupted', 'skipped')),
    scheduled_ms    INTEGER,
    started_ms      INTEGER,
    finished_ms     INTEGER,
    attempt         INTEGER NOT NULL DEFAULT 1,
    output          TEXT,
    log             TEXT    NOT NULL DEFAULT '',
    error           TEXT,
    node            TEXT    NOT NULL
);

-- One scheduled slot, one row: the claim. A second claim of the same (job, slot) fails
-- here, whatever process or node makes it.
CREATE UNIQUE INDEX runs_one_per_slot ON runs (job_id, scheduled_ms)
    WHERE trigger IN ('schedule', 'catch_up');
CREATE INDEX runs_by_job ON runs (job_id, id DESC);
CREATE INDEX runs_by_status ON runs (status, id DESC);
