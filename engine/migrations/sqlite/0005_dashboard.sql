-- The dashboard's last-24-hours figures are counted inside SQLite by time; with a long
-- history they must not scan it. The index covers every column those queries read, and
-- its first expression matches the one they filter on.
CREATE INDEX runs_by_time ON runs (COALESCE(started_ms, finished_ms), status, job_id, started_ms, finished_ms);

-- Who did what: every change made through the API or the dashboard.
CREATE TABLE audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms   INTEGER NOT NULL,
    actor   TEXT    NOT NULL,
    ip      TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    status  INTEGER NOT NULL
);
CREATE INDEX audit_by_time ON audit (at_ms);
