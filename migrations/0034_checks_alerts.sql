-- Data-quality checks (checks/*.sql) and the alerts the worker sends (docs/operations.md, "Checks"
-- and "Alerts").

-- Each check is deployed by `cdcsync migrate` as a view cdc_checks."<name>" returning the
-- offending rows; its header (severity, schedule) and the hash of its file are kept here, which
-- is how `migrate` and `check` know whether the hub holds what is on disk, and what the worker
-- schedules. The worker runs what is deployed, never the files, so a standby on another host
-- runs the same checks.
CREATE SCHEMA IF NOT EXISTS cdc_checks;

CREATE TABLE IF NOT EXISTS cdc.checks (
    name        text        PRIMARY KEY,              -- the view's name in cdc_checks
    file        text        NOT NULL,                 -- checks/<file>.sql, relative to the scripts folder
    severity    text        NOT NULL CHECK (severity IN ('warning', 'error')),
    schedule    text        NOT NULL,                 -- cron, 5 fields (minute hour day month weekday), UTC
    description text,
    hash        text        NOT NULL,                 -- of the file's content, as for transforms
    deployed_at timestamptz NOT NULL DEFAULT now()
);

-- One row per run of a check: how many rows it found and a capped sample of them.
CREATE TABLE IF NOT EXISTS cdc.check_runs (
    id           bigserial   PRIMARY KEY,
    check_name   text        NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL,
    failing_rows bigint,                              -- NULL when the run failed (error set)
    sample       jsonb       NOT NULL DEFAULT '[]',   -- the first rows, each as a JSON object
    error        text,
    run_by       text        NOT NULL                 -- 'worker host:pid' or 'cli'
);
CREATE INDEX IF NOT EXISTS check_runs_name_idx ON cdc.check_runs (check_name, id DESC);

-- One row per problem the alert evaluator has seen (key: 'check:<name>', 'dead-letters:<connector>', ...).
-- A row is open while resolved_at is NULL; notified_at / resolved_notified_at record what was
-- delivered. Kept in the hub, not in the worker, so a restarted worker or a standby taking over
-- knows what was already sent and sends nothing twice.
CREATE TABLE IF NOT EXISTS cdc.alerts (
    id                   bigserial   PRIMARY KEY,
    key                  text        NOT NULL,
    source               text        NOT NULL,
    severity             text        NOT NULL,
    text                 text        NOT NULL,
    opened_at            timestamptz NOT NULL,
    last_seen_at         timestamptz NOT NULL,
    notified_at          timestamptz,                 -- the alert was delivered
    resolved_at          timestamptz,                 -- the problem cleared
    resolved_notified_at timestamptz,                 -- the "resolved" was delivered (or was not needed)
    attempts             int         NOT NULL DEFAULT 0,
    last_error           text                         -- the last failed delivery
);
-- At most one row per problem still in play (open, or resolved but not yet told).
CREATE UNIQUE INDEX IF NOT EXISTS alerts_active_key_uq ON cdc.alerts (key) WHERE resolved_notified_at IS NULL;
