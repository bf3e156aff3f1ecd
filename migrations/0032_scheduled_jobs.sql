-- Runs of the worker's scheduled jobs (reconcile, data-quality checks, ...), per slot: the worker
-- holding the slot's lease runs them, and a worker taking over reads here when each job last ran,
-- so a restart or a standby's takeover neither repeats a run nor forgets one that was due.
CREATE TABLE IF NOT EXISTS cdc.job_runs (
    id          bigserial   PRIMARY KEY,
    slot        text        NOT NULL,
    job         text        NOT NULL,
    worker      text        NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    outcome     text,
    error       text
);

CREATE INDEX IF NOT EXISTS job_runs_latest ON cdc.job_runs (slot, job, started_at DESC);
