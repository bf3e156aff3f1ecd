-- Operator requests and the worker's own view of itself, for replay and status.

-- A replay asks that one connector's checkpoint be lowered to from_lsn so the pipeline
-- re-delivers, to that connector only, every change the slot still retains after it. The worker
-- applies pending requests between two pipeline runs (it polls this table); `cdcsync replay`
-- applies them itself when no worker holds the lease.
CREATE TABLE IF NOT EXISTS cdc.replay_requests (
    id           bigserial   PRIMARY KEY,
    connector    text        NOT NULL,
    from_lsn     pg_lsn      NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    applied_at   timestamptz,
    applied_by   text,
    previous_lsn pg_lsn,
    error        text                              -- set when the request was closed without applying
);
CREATE INDEX IF NOT EXISTS replay_requests_pending_idx ON cdc.replay_requests (id) WHERE applied_at IS NULL;

-- What the running worker knows about each connector and nobody else can see from SQL: how far it
-- has read with nothing pending for the connector, its rate, its last error. Written every few
-- seconds; a stale row means the worker is gone.
CREATE TABLE IF NOT EXISTS cdc.connector_status (
    connector         text             PRIMARY KEY,
    worker            text             NOT NULL,
    caught_up_to      pg_lsn,
    lag_bytes         bigint           NOT NULL DEFAULT 0,
    lag_seconds       double precision NOT NULL DEFAULT 0,
    events_per_second double precision NOT NULL DEFAULT 0,
    changes_applied   bigint           NOT NULL DEFAULT 0,
    last_error        text,
    circuit           text             NOT NULL DEFAULT 'closed',
    updated_at        timestamptz      NOT NULL DEFAULT now()
);

-- A resync (backfill) of one hub table to one connector, run by the worker in key order, one
-- chunk at a time; last_key is where the next chunk starts, so a killed worker resumes there.
CREATE TABLE IF NOT EXISTS cdc.resync_jobs (
    id          bigserial   PRIMARY KEY,
    connector   text        NOT NULL,
    table_name  text        NOT NULL,              -- schema.table as given in Routes
    where_sql   text,
    batch_size  int         NOT NULL DEFAULT 1000 CHECK (batch_size > 0),
    status      text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
    last_key    text[],
    rows_done   bigint      NOT NULL DEFAULT 0,
    rows_total  bigint,
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    started_at  timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX IF NOT EXISTS resync_jobs_open_idx ON cdc.resync_jobs (id) WHERE status IN ('pending', 'running');
