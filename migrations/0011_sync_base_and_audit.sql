-- Two-way state: what each system was last known to hold, field by field (the sync base that
-- conflict detection compares against), and an audit trail of every applied change.

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

ALTER TABLE cdc.audit_log
    ADD COLUMN source_system text,             -- where the change came from ('salesforce', 'hub', ...)
    ADD COLUMN target_system text,             -- where it was applied
    ADD COLUMN record_id     text,             -- the system's own id of the record, when known
    ADD COLUMN changes       jsonb;            -- {"field": {"before": .., "after": ..}, ...}
CREATE INDEX audit_log_record_id_idx ON cdc.audit_log (record_id);

-- Called by outbound connectors after a system acknowledged a write: the fields written become
-- that system's base, and the write goes to the audit trail. p_changes is
-- {"field": {"before": <hub old value>, "after": <value written>}, ...}.
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

    INSERT INTO cdc.audit_log (connector, direction, object, record_key, operation, commit_lsn,
                               source_system, target_system, record_id, changes)
    VALUES (p_connector, 'outbound', p_object, p_record_key, p_operation, p_commit_lsn,
            'hub', p_connector, p_record_id, p_changes);
END
$$;
