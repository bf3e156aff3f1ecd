-- The value a field held before our write, next to the base our write set. A system that stamps to
-- the second (NetSuite) gives a record we create and our next write of it (a Salesforce edit made
-- right after the create) the same stamp; a version read between the two and applied after the
-- second write then carried no older stamp than the base and was taken for the system's edit: the
-- first read-back of a new customer undid the Salesforce edit (transforms/005_sync_tracking.sql).
-- cdc.record_outbound_batch now keeps the base a write replaces (prior_value, prior_modified_at);
-- every other base update (an inbound read, a decision) clears it.
ALTER TABLE cdc.sync_base
    ADD COLUMN prior_value jsonb,
    ADD COLUMN prior_modified_at timestamptz;

CREATE OR REPLACE FUNCTION cdc.record_outbound_batch(p_connector text, p_writes jsonb)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
    w record;
BEGIN
    IF jsonb_typeof(coalesce(p_writes, '[]')) <> 'array' THEN
        RAISE EXCEPTION 'cdc.record_outbound_batch: p_writes must be a jsonb array, got %', jsonb_typeof(p_writes);
    END IF;

    -- The fields written become that system's base, stamped with the system's modified stamp when
    -- known (an inbound row with an older stamp was read before the write landed). A field written
    -- twice in one batch keeps the later write, as one call per write in order did.
    -- The base it replaces is kept as the field's prior value: a version read before the write and
    -- stamped in the same second (NetSuite stamps to the second) holds it, and is no edit.
    INSERT INTO cdc.sync_base AS b (object, record_key, field, value, source_modified_at, updated_at)
    SELECT DISTINCT ON (e.value ->> 'object', e.value ->> 'record_key', c.key)
           e.value ->> 'object', e.value ->> 'record_key', c.key, c.value -> 'after',
           (e.value ->> 'stamp')::timestamptz, now()
      FROM jsonb_array_elements(coalesce(p_writes, '[]')) WITH ORDINALITY e(value, i)
     CROSS JOIN LATERAL jsonb_each(coalesce(e.value -> 'changes', '{}')) c
     ORDER BY e.value ->> 'object', e.value ->> 'record_key', c.key, e.i DESC
    ON CONFLICT (object, record_key, field)
    DO UPDATE SET value = EXCLUDED.value, source_modified_at = EXCLUDED.source_modified_at, updated_at = now(),
                  prior_value = CASE WHEN b.value IS DISTINCT FROM EXCLUDED.value THEN b.value ELSE b.prior_value END,
                  prior_modified_at = CASE WHEN b.value IS DISTINCT FROM EXCLUDED.value THEN b.source_modified_at ELSE b.prior_modified_at END;

    -- A write queued before a conflict was decided may land after it (transforms/005_sync_tracking.sql).
    -- Only records with a conflict have anything to reconcile; they go one by one, in order.
    FOR w IN SELECT e.value
               FROM jsonb_array_elements(coalesce(p_writes, '[]')) WITH ORDINALITY e(value, i)
              WHERE EXISTS (SELECT 1 FROM cdc.conflicts x
                             WHERE x.object = e.value ->> 'object' AND x.record_key = e.value ->> 'record_key')
              ORDER BY e.i LOOP
        PERFORM cdc.reconcile_outbound(w.value ->> 'object', w.value ->> 'record_key', coalesce(w.value -> 'changes', '{}'));
    END LOOP;

    INSERT INTO cdc.audit_log (connector, direction, object, record_key, operation, commit_lsn,
                               source_system, target_system, record_id, changes)
    SELECT p_connector, 'outbound', e.value ->> 'object', e.value ->> 'record_key', e.value ->> 'operation',
           (e.value ->> 'commit_lsn')::pg_lsn, 'hub', coalesce(t.system, p_connector), e.value ->> 'record_id',
           cdc.mask_changes(e.value ->> 'object', coalesce(e.value -> 'changes', '{}'))
      FROM jsonb_array_elements(coalesce(p_writes, '[]')) WITH ORDINALITY e(value, i)
      LEFT JOIN cdc.sync_tables t ON t.object = e.value ->> 'object'
     ORDER BY e.i;
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM cdc.purge_audit_log_if_due();
    RETURN n;
END
$$;
