-- Reconciliation (`cdcsync reconcile`, and Reconcile:Schedule in the worker): read each system in
-- full, compare every record with the hub, field by field through the comparison keys of
-- transforms/060_reconcile.sql, and keep what was found. See docs/operations.md, "Reconcile".

-- One row per run. status: running, clean (no drift), drift, capped (stopped at --max-api-calls
-- before everything was read: nothing was compared), failed. drift_count counts the findings
-- that are drift (not the open conflicts listed apart); alerts read the latest finished run.
CREATE TABLE cdc.reconcile_runs (
    run_id         bigserial   PRIMARY KEY,
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    trigger        text        NOT NULL DEFAULT 'cli' CHECK (trigger IN ('cli', 'schedule')),
    scope          jsonb       NOT NULL DEFAULT '{}',     -- {"table": .., "record": ..} when narrowed
    repair         boolean     NOT NULL DEFAULT false,
    dry_run        boolean     NOT NULL DEFAULT false,
    status         text        NOT NULL DEFAULT 'running'
                   CHECK (status IN ('running', 'clean', 'drift', 'capped', 'failed')),
    records_read   bigint      NOT NULL DEFAULT 0,
    drift_count    bigint      NOT NULL DEFAULT 0,
    open_conflicts bigint      NOT NULL DEFAULT 0,
    repaired       bigint      NOT NULL DEFAULT 0,
    api_calls      bigint      NOT NULL DEFAULT 0,
    max_api_calls  bigint,
    error          text
);
CREATE INDEX reconcile_runs_finished_idx ON cdc.reconcile_runs (finished_at DESC) WHERE finished_at IS NOT NULL;

-- What a run found, one row per finding. kind:
--   field_differs      a field of a record differs between its system and the hub (by comparison key)
--   missing_in_system  the hub holds a record (with its system id) the system no longer has, and
--                      the system reported no delete
--   missing_in_hub     the system holds a record the hub has no row for
--   unlinked           a hub record of a paired table linked to nothing on the other side
--   dangling_link      an identity link to a hub row that no longer exists
--   open_conflict      a record with an open conflict: known and waiting, not drift (drift = false)
-- repair: what --repair does (or did) about it; repaired_at when it was done.
CREATE TABLE cdc.reconcile_findings (
    id                 bigserial   PRIMARY KEY,
    run_id             bigint      NOT NULL REFERENCES cdc.reconcile_runs (run_id) ON DELETE CASCADE,
    kind               text        NOT NULL CHECK (kind IN ('field_differs', 'missing_in_system', 'missing_in_hub',
                                                           'unlinked', 'dangling_link', 'open_conflict')),
    drift              boolean     NOT NULL DEFAULT true,
    object             text        NOT NULL,
    system             text,
    hub_id             uuid,
    record_id          text,
    link_id            uuid,
    field              text,
    system_value       text,
    hub_value          text,
    system_modified_at timestamptz,
    hub_modified_at    timestamptz,
    repair             text,
    repaired_at        timestamptz
);
CREATE INDEX reconcile_findings_run_idx ON cdc.reconcile_findings (run_id, kind);

-- Scratch: what each system holds, as read by a run (values as the inbound path reads them:
-- staging column -> value). Unlogged: it is rebuilt by every run and deleted after it.
CREATE UNLOGGED TABLE cdc.reconcile_records (
    run_id  bigint  NOT NULL,
    object  text    NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    "values" jsonb  NOT NULL
);
CREATE INDEX reconcile_records_run_idx ON cdc.reconcile_records (run_id, object);

-- Staging tables whose records have a counterpart in another system's table (a record of either
-- linked to nothing is a finding). Filled by transforms/060_reconcile.sql.
CREATE TABLE cdc.reconcile_pairs (
    object       text NOT NULL,
    other_object text NOT NULL,
    PRIMARY KEY (object, other_object)
);
