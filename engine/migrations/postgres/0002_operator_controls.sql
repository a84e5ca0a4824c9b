-- Operator controls: a job may be paused (`pause`: JSON {reason, by, since, until}); a
-- run may be a rerun of another (`rerun_of`) and may have run with params merged over its
-- job's (`params`: the overrides as JSON).
ALTER TABLE jobs ADD COLUMN pause TEXT;
ALTER TABLE runs DROP CONSTRAINT runs_trigger_check;
ALTER TABLE runs ADD CONSTRAINT runs_trigger_check
    CHECK (trigger IN ('schedule', 'manual', 'api', 'cli', 'retry', 'catch_up', 'rerun'));
ALTER TABLE runs ADD COLUMN params TEXT, ADD COLUMN rerun_of BIGINT;
CREATE INDEX runs_by_rerun ON runs (rerun_of) WHERE rerun_of IS NOT NULL;

-- Maintenance windows: each one's definition as JSON (see model::maintenance).
CREATE TABLE maintenance (
    id          TEXT   PRIMARY KEY,
    body        TEXT   NOT NULL,
    updated_ms  BIGINT NOT NULL
);
