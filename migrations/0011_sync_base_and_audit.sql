-- Two-way state: what each system was last known to hold, field by field (the sync base that
-- conflict detection compares against), the policies that decide conflicts, and an audit trail
-- of every applied change. The rules themselves (which tables are tracked, which policy applies
-- to which field, which fields are sensitive) are rows, set by transforms/015_sync_rules.sql.

-- The value a system holds for one field of one record, as CdcSync last read it from the system
-- (inbound) or wrote it there (outbound). A field whose hub value differs from its base has a
-- change on its way to that system; an inbound value that differs from the base is an edit made
-- in the system. Both at once on one field is a conflict.
CREATE TABLE cdc.sync_base (
    object             text        NOT NULL,   -- staging table, e.g. 'sf_accounts'
    record_key         text        NOT NULL,   -- the row's hub key (hub_id) as text
    field              text        NOT NULL,   -- staging column
    value              jsonb,                  -- to_jsonb of the column value; NULL = SQL NULL
    source_modified_at timestamptz,            -- the system's modified stamp of that value, when known
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (object, record_key, field)
);

-- Where the hub's current value of a field came from when the hub, not the table's own system,
-- wrote it (a transform mapping another system's edit, an operator's decision): that system's
-- modified stamp is the hub value's stamp for last-write-wins. A row's cdc_source_modified_at
-- only dates what its own system sent.
CREATE TABLE cdc.hub_field_stamps (
    object        text        NOT NULL,
    record_key    text        NOT NULL,
    field         text        NOT NULL,
    modified_at   timestamptz NOT NULL,
    source_system text        NOT NULL,
    PRIMARY KEY (object, record_key, field)
);

-- Staging tables under conflict detection and audit: the system a table mirrors and the column
-- holding that system's own record id. cdc.track_sync_table() registers a table and attaches
-- the triggers.
CREATE TABLE cdc.sync_tables (
    object           text PRIMARY KEY,              -- staging table in public, e.g. 'sf_accounts'
    system           text NOT NULL,                 -- 'salesforce', 'netsuite', ...
    record_id_column text                           -- e.g. 'id', 'internalid'
);

-- How a conflict on a field is decided. field '*' is the table's default; a row for a field
-- overrides it. Without any row, last_write_wins.
--   last_write_wins  the value with the later system modified stamp (incoming wins ties)
--   source_priority  the value coming from priority_system wins
--   manual           the hub keeps its value for that field of that record, an open conflict
--                    waits for `cdcsync conflicts resolve`; other fields and records flow
--   custom           custom_function(base, hub, incoming, hub_modified_at, incoming_modified_at)
--                    (jsonb, jsonb, jsonb, timestamptz, timestamptz) returns the jsonb to keep
--   ignore           the field is not compared (hub-only or system-maintained columns)
CREATE TABLE cdc.conflict_policies (
    object          text NOT NULL,
    field           text NOT NULL DEFAULT '*',
    policy          text NOT NULL
                    CHECK (policy IN ('last_write_wins', 'source_priority', 'manual', 'custom', 'ignore')),
    priority_system text,
    custom_function regproc,
    PRIMARY KEY (object, field),
    CHECK (policy <> 'source_priority' OR priority_system IS NOT NULL),
    CHECK (policy <> 'custom' OR custom_function IS NOT NULL)
);

-- Fields whose values never reach the audit trail in clear ('***' instead; NULL stays NULL, so
-- "was set" and "was cleared" stay visible). object '*' = any table.
CREATE TABLE cdc.sensitive_fields (
    object text NOT NULL DEFAULT '*',
    field  text NOT NULL,
    PRIMARY KEY (object, field)
);

-- Settings of the two-way state: audit_retention (an interval; rows older are purged, at most
-- once per purge_interval, by the audit writers themselves and by `cdcsync audit purge`).
CREATE TABLE cdc.settings (
    key   text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO cdc.settings (key, value) VALUES
    ('audit_retention', '90 days'),
    ('audit_purge_interval', '1 hour'),
    ('audit_last_purge', '-infinity');

-- One row per field in conflict. The columns of 0010 stay (connector, policy, decision, status,
-- hub_values/incoming_values as {"field": value}) so status and older tools keep working.
ALTER TABLE cdc.conflicts
    ADD COLUMN field                text,
    ADD COLUMN base_value           jsonb,
    ADD COLUMN hub_value            jsonb,
    ADD COLUMN incoming_value       jsonb,
    ADD COLUMN decided_value        jsonb,
    ADD COLUMN hub_system           text,          -- where the hub's value came from
    ADD COLUMN incoming_system      text,          -- the system whose inbound write met the conflict
    ADD COLUMN hub_modified_at      timestamptz,
    ADD COLUMN incoming_modified_at timestamptz;
-- Manual review holds one field of one record at a time: a second inbound edit of a held field
-- updates the open conflict instead of opening another.
CREATE UNIQUE INDEX conflicts_open_field_uq
    ON cdc.conflicts (object, record_key, field) WHERE status = 'open';

ALTER TABLE cdc.audit_log
    ADD COLUMN source_system text,             -- where the change came from ('salesforce', 'hub', ...)
    ADD COLUMN target_system text,             -- where it was applied ('hub', 'netsuite', ...)
    ADD COLUMN record_id     text,             -- the system's own id of the record, when known
    ADD COLUMN changes       jsonb;            -- {"field": {"before": .., "after": ..}, ...}, masked
CREATE INDEX audit_log_record_id_idx ON cdc.audit_log (record_id);
CREATE INDEX audit_log_applied_idx ON cdc.audit_log (applied_at);

-- ---------------------------------------------------------------------------------------
-- Audit helpers
-- ---------------------------------------------------------------------------------------

CREATE FUNCTION cdc.mask_changes(p_object text, p_changes jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_object_agg(c.key,
               CASE WHEN EXISTS (SELECT 1 FROM cdc.sensitive_fields s
                                  WHERE s.field = c.key AND s.object IN (p_object, '*'))
                    THEN jsonb_build_object(
                             'before', CASE WHEN coalesce(c.value -> 'before', 'null') <> 'null' THEN '***' END,
                             'after',  CASE WHEN coalesce(c.value -> 'after', 'null') <> 'null' THEN '***' END)
                    ELSE c.value END), '{}'::jsonb)
      FROM jsonb_each(coalesce(p_changes, '{}')) c
$$;

-- Deletes audit rows older than audit_retention; returns how many.
CREATE FUNCTION cdc.purge_audit_log() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    DELETE FROM cdc.audit_log
     WHERE applied_at < now() - (SELECT value::interval FROM cdc.settings WHERE key = 'audit_retention');
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE cdc.settings SET value = now()::text WHERE key = 'audit_last_purge';
    RETURN n;
END
$$;

-- Retention without a scheduler: whoever writes audit rows purges when a purge is due. The
-- check is a read; only the one writer that finds it due takes the settings row lock.
CREATE FUNCTION cdc.purge_audit_log_if_due() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT value::timestamptz FROM cdc.settings WHERE key = 'audit_last_purge')
       < now() - (SELECT value::interval FROM cdc.settings WHERE key = 'audit_purge_interval') THEN
        PERFORM cdc.purge_audit_log();
    END IF;
END
$$;

-- The connector whose inbound write this session makes, or NULL for the hub's own writes
-- (transforms, operators). ReplicationOrigins sets cdc.connector next to the origin session;
-- a session that set up an origin by other means is recognized by the origin alone.
CREATE FUNCTION cdc.inbound_connector() RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c text := nullif(current_setting('cdc.connector', true), '');
BEGIN
    IF c IS NOT NULL THEN
        RETURN c;
    END IF;
    IF has_function_privilege('pg_replication_origin_session_is_setup()', 'EXECUTE')
       AND pg_replication_origin_session_is_setup() THEN
        RETURN 'unknown';
    END IF;
    RETURN NULL;
END
$$;

-- ---------------------------------------------------------------------------------------
-- Outbound: called by connectors after a system acknowledged a write
-- ---------------------------------------------------------------------------------------

-- The fields written become that system's base, and the write goes to the audit trail.
-- p_changes is {"field": {"before": <hub old value>, "after": <value written>}, ...}.
CREATE FUNCTION cdc.record_outbound(
    p_connector  text,
    p_object     text,
    p_record_key text,
    p_record_id  text,
    p_operation  text,
    p_changes    jsonb,
    p_commit_lsn pg_lsn)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cdc.sync_base AS b (object, record_key, field, value, updated_at)
    SELECT p_object, p_record_key, c.key, c.value -> 'after', now()
      FROM jsonb_each(coalesce(p_changes, '{}')) c
    ON CONFLICT (object, record_key, field)
    DO UPDATE SET value = EXCLUDED.value, updated_at = now();

    -- A write queued before a conflict was decided may land after it (transforms/005_sync_tracking.sql).
    PERFORM cdc.reconcile_outbound(p_object, p_record_key, p_changes);

    INSERT INTO cdc.audit_log (connector, direction, object, record_key, operation, commit_lsn,
                               source_system, target_system, record_id, changes)
    VALUES (p_connector, 'outbound', p_object, p_record_key, p_operation, p_commit_lsn,
            'hub', coalesce((SELECT t.system FROM cdc.sync_tables t WHERE t.object = p_object), p_connector),
            p_record_id, cdc.mask_changes(p_object, p_changes));
    PERFORM cdc.purge_audit_log_if_due();
END
$$;

-- Decisions pushed to a system when the hub already held them (cdc.resolve_conflict,
-- cdc.reconcile_outbound); one push per decision, which also keeps a push from repeating itself.
CREATE TABLE cdc.field_pushes (
    id         bigserial   PRIMARY KEY,
    object     text        NOT NULL,
    record_key text        NOT NULL,
    field      text        NOT NULL,
    conflict_id bigint     REFERENCES cdc.conflicts (id) ON DELETE SET NULL,  -- the decision pushed
    via_value  jsonb,
    value      jsonb,
    pushed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX field_pushes_conflict_idx ON cdc.field_pushes (conflict_id);
