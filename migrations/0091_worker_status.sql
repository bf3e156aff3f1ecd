-- What the leading worker of each slot is doing, refreshed every few seconds by the worker:
-- `status` shows a worker that is up but not streaming (creating its slot and what that waits
-- for, restarting after an error) instead of a healthy-looking silence.
CREATE TABLE IF NOT EXISTS cdc.worker_status (
    slot        text        PRIMARY KEY,
    worker      text        NOT NULL,
    state       text        NOT NULL,
    pipeline    text        NOT NULL,
    stage       text,
    last_error  text,
    restarts    integer     NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
