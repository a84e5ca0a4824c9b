-- Run listings filtered by job and status together (the dashboard's failures per job).
CREATE INDEX runs_by_job_status ON runs (job_id, status, id DESC);
