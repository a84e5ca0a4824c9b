-- EchoPilot on PostgreSQL: the same records as on SQLite (times as integer milliseconds
-- since the Unix epoch, UTC), plus what several nodes need: the leader's lease with its
-- epoch, the history of leaders, and the nodes' registry.

-- "Now" by the database's clock, which every node agrees on. clock_timestamp(), not now():
-- now() is frozen for a whole transaction.
CREATE FUNCTION echopilot_now_ms() RETURNS BIGINT LANGUAGE sql VOLATILE AS
$$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT $$;

-- The operator's intent: one row.
CREATE TABLE scheduler_state (
    id          INTEGER     PRIMARY KEY CHECK (id = 1),
    desired     TEXT        NOT NULL CHECK (desired IN ('running', 'stopped')),
    updated_at  TIMESTAMPTZ NOT NULL
);

-- Each node's latest firing-loop heartbeat and the next runs it computed.
CREATE TABLE heartbeats (
    node        TEXT        PRIMARY KEY,
    pid         BIGINT      NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    next_runs   TEXT        NOT NULL DEFAULT '[]'
);

CREATE TABLE jobs (
    id                  TEXT    PRIMARY KEY,
    name                TEXT    NOT NULL,
    kind                TEXT    NOT NULL,
    schedule            TEXT    NOT NULL,
    timezone            TEXT    NOT NULL DEFAULT 'UTC',
    enabled             BOOLEAN NOT NULL DEFAULT TRUE,
    timeout_secs        BIGINT  NOT NULL,
    retries             BIGINT  NOT NULL DEFAULT 0,
    retry_backoff_secs  BIGINT  NOT NULL DEFAULT 10,
    overlap             TEXT    NOT NULL CHECK (overlap IN ('skip', 'queue', 'allow')),
    misfire             TEXT    NOT NULL CHECK (misfire IN ('skip', 'run_once')),
    params              TEXT    NOT NULL DEFAULT '{}',
    -- The last slot claimed: where catch-up after a gap starts from.
    last_slot_ms        BIGINT  NOT NULL,
    -- The leader epoch that last moved last_slot_ms: a stale leader cannot move it back.
    slot_epoch          BIGINT  NOT NULL DEFAULT 0,
    created_ms          BIGINT  NOT NULL,
    updated_ms          BIGINT  NOT NULL
);

CREATE TABLE runs (
    id              BIGSERIAL PRIMARY KEY,
    job_id          TEXT    NOT NULL,
    trigger         TEXT    NOT NULL CHECK (trigger IN ('schedule', 'manual', 'api', 'cli', 'retry', 'catch_up')),
    status          TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled', 'interrupted', 'skipped')),
    scheduled_ms    BIGINT,
    started_ms      BIGINT,
    finished_ms     BIGINT,
    attempt         BIGINT  NOT NULL DEFAULT 1,
    output          TEXT,
    log             TEXT    NOT NULL DEFAULT '',
    error           TEXT,
    -- The node executing it; '' while no node has claimed it yet (run now).
    node            TEXT    NOT NULL,
    -- The leader epoch that claimed a slot (NULL for runs outside any slot).
    epoch           BIGINT,
    -- When the row was written, by the database's clock: evidence independent of the
    -- nodes' clocks (the chaos tests check no epoch wrote after its successor began).
    recorded_ms     BIGINT  NOT NULL DEFAULT echopilot_now_ms()
);

-- One scheduled slot, one row, whoever claims it: the last fence against running a slot
-- twice, stale leader or not.
CREATE UNIQUE INDEX runs_one_per_slot ON runs (job_id, scheduled_ms)
    WHERE trigger IN ('schedule', 'catch_up');
CREATE INDEX runs_by_job ON runs (job_id, id DESC);
-- The indexes for history (filters, the day's figures) hold ended runs only: a run is
-- written three times on its way (queued, running, ended), and only the last is history.
-- Runs in flight are few, and found through runs_active_by_node.
CREATE INDEX runs_by_status ON runs (status, id DESC) WHERE status NOT IN ('queued', 'running');
CREATE INDEX runs_by_job_status ON runs (job_id, status, id DESC) WHERE status NOT IN ('queued', 'running');
CREATE INDEX runs_by_time ON runs ((COALESCE(started_ms, finished_ms)), status, job_id, started_ms, finished_ms)
    WHERE status NOT IN ('queued', 'running');
-- Runs in flight by node: what rescue and boot interrupts look for.
CREATE INDEX runs_active_by_node ON runs (node) WHERE status IN ('queued', 'running');
-- Runs no node has claimed yet (run now on several nodes), oldest first.
CREATE INDEX runs_unclaimed ON runs (id) WHERE status = 'queued' AND node = '';

CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

CREATE TABLE audit (
    id      BIGSERIAL PRIMARY KEY,
    at_ms   BIGINT  NOT NULL,
    actor   TEXT    NOT NULL,
    ip      TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    status  BIGINT  NOT NULL,
    target  TEXT    NOT NULL DEFAULT '',
    details TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_by_time ON audit (at_ms);

-- The leader's lease: one row. Whoever holds an unexpired lease (by the database's clock)
-- fires schedules; a new holder always gets a new epoch, and every leader write checks
-- its epoch in the same statement.
CREATE TABLE scheduler_lease (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    epoch       BIGINT  NOT NULL,
    holder      TEXT,
    renewed_ms  BIGINT  NOT NULL,
    expires_ms  BIGINT  NOT NULL
);
INSERT INTO scheduler_lease (id, epoch, holder, renewed_ms, expires_ms) VALUES (1, 0, NULL, 0, 0);

-- One row per epoch: who led, from when, until when, and how it ended.
CREATE TABLE leader_history (
    epoch        BIGINT PRIMARY KEY,
    holder       TEXT   NOT NULL,
    acquired_ms  BIGINT NOT NULL,
    ended_ms     BIGINT,
    ended_how    TEXT
);

-- Every node alive (and those lately gone): a new id per process start.
CREATE TABLE nodes (
    id               TEXT    PRIMARY KEY,
    name             TEXT    NOT NULL,
    pid              BIGINT  NOT NULL,
    version          TEXT    NOT NULL,
    started_ms       BIGINT  NOT NULL,
    heartbeat_ms     BIGINT  NOT NULL,
    expires_ms       BIGINT  NOT NULL,
    running          BIGINT  NOT NULL DEFAULT 0,
    clock_offset_ms  BIGINT  NOT NULL DEFAULT 0
);
