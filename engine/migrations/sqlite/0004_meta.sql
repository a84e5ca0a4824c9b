-- Small facts about the store itself, e.g. whether the built-in jobs were seeded (so a
-- job the operator deleted is not seeded again).
CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
