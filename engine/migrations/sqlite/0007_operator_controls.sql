-- Operator controls. A job may be paused (`pause`: JSON {reason, by, since, until}, NULL
-- when not). A run may be a rerun of another (`rerun_of`) and may have run with params
-- merged over its job's (`params`: the overrides as JSON, NULL for none).
ALTER TABLE jobs ADD COLUMN pause TEXT;

-- The trigger CHECK gains `rerun`: SQLite cannot alter a CHECK, so the table is rebuilt,
-- ids and the AUTOINCREMENT sequence kept.
CREATE TABLE runs_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id          TEXT    NOT NULL,
    trigger         TEXT    NOT NULL CHECK (trigger IN ('schedule', 'manual', 'api', 'cli', 'retry', 'catch_up', 'rerun')),
    status          TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled', 'interrupted', 'skipped')),
    scheduled_ms    INTEGER,
    started_ms      INTEGER,
    finished_ms     INTEGER,
    attempt         INTEGER NOT NULL DEFAULT 1,
    output          TEXT,
    log             TEXT    NOT NULL DEFAULT '',
    error           TEXT,
    node            TEXT    NOT NULL,
    params          TEXT,
    rerun_of        INTEGER
);
INSERT INTO runs_new (id, job_id, trigger, status, scheduled_ms, started_ms, finished_ms, attempt, output, log, error, node)
    SELECT id, job_id, trigger, status, scheduled_ms, started_ms, finished_ms, attempt, output, log, error, node FROM runs;
INSERT OR REPLACE INTO sqlite_sequence (name, seq)
    SELECT 'runs_new', MAX(seq) FROM sqlite_sequence WHERE name IN ('runs', 'runs_new');
DROP TABLE runs;
ALTER TABLE runs_new RENAME TO runs;
CREATE UNIQUE INDEX runs_one_per_slot ON runs (job_id, scheduled_ms)
    WHERE trigger IN ('schedule', 'catch_up');
CREATE INDEX runs_by_job ON runs (job_id, id DESC);
CREATE INDEX runs_by_status ON runs (status, id DESC);
CREATE INDEX runs_by_job_status ON runs (job_id, status, id DESC);
CREATE INDEX runs_by_time ON runs (COALESCE(started_ms, finished_ms), status, job_id, started_ms, finished_ms);
CREATE INDEX runs_by_rerun ON runs (rerun_of) WHERE rerun_of IS NOT NULL;

-- Maintenance windows: each one's definition as JSON (see model::maintenance).
CREATE TABLE maintenance (
    id          TEXT    PRIMARY KEY,
    body        TEXT    NOT NULL,
    updated_ms  INTEGER NOT NULL
);
