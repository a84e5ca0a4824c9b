-- The scheduler's persisted intent: one row, so a restarted server knows whether the
-- operator last asked it to run or to stay stopped.
CREATE TABLE scheduler_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    desired     TEXT    NOT NULL CHECK (desired IN ('running', 'stopped')),
    updated_at  TEXT    NOT NULL
);

-- One row per node: its latest heartbeat and the next run times it computed. The event
-- log keeps the full history of ticks; this table keeps what status needs.
CREATE TABLE heartbeats (
    node         TEXT    PRIMARY KEY,
    pid          INTEGER NOT NULL,
    started_at   TEXT    NOT NULL,
    at           TEXT    NOT NULL,
    next_runs    TEXT    NOT NULL DEFAULT '[]'
);
