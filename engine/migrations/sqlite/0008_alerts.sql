-- Alerts. Channels, rules and checks: each one's definition as JSON (see model::alert),
-- keyed by what it is and its id.
CREATE TABLE alert_items (
    what        TEXT    NOT NULL CHECK (what IN ('channel', 'rule', 'check')),
    id          TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    updated_ms  INTEGER NOT NULL,
    PRIMARY KEY (what, id)
);

-- An incident per (rule, subject) while its condition holds; at most one open at a time
-- (the unique index decides, whoever evaluates).
CREATE TABLE incidents (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id      TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    opened_ms    INTEGER NOT NULL,
    closed_ms    INTEGER,
    run_id       INTEGER,
    closed_by    INTEGER,
    message      TEXT    NOT NULL,
    suppressed   TEXT,
    notified_ms  INTEGER
);
CREATE UNIQUE INDEX incidents_one_open ON incidents (rule_id, subject) WHERE closed_ms IS NULL;
CREATE INDEX incidents_by_pair ON incidents (rule_id, subject, id);

-- The outbox: one notice to one channel, written with the incident change that causes it.
CREATE TABLE deliveries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id  INTEGER,
    channel_id   TEXT    NOT NULL,
    event        TEXT    NOT NULL CHECK (event IN ('opened', 'reminder', 'recovered', 'test')),
    status       TEXT    NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_ms      INTEGER NOT NULL,
    created_ms   INTEGER NOT NULL,
    done_ms      INTEGER,
    code         INTEGER,
    error        TEXT,
    body         TEXT    NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (status, next_ms);
CREATE INDEX deliveries_by_incident ON deliveries (incident_id);

-- Pings of inbound checks.
CREATE TABLE pings (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    check_id  TEXT    NOT NULL,
    at_ms     INTEGER NOT NULL,
    kind      TEXT    NOT NULL CHECK (kind IN ('success', 'start', 'fail')),
    body      TEXT,
    source    TEXT
);
CREATE INDEX pings_by_check ON pings (check_id, id);
