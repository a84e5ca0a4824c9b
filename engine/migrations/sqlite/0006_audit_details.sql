-- What each audited change was about (`job nightly`, `run 42`) and its arguments, secrets
-- masked, so "POST /api/fn/delete_job" says which job.
ALTER TABLE audit ADD COLUMN target TEXT NOT NULL DEFAULT '';
ALTER TABLE audit ADD COLUMN details TEXT NOT NULL DEFAULT '';
