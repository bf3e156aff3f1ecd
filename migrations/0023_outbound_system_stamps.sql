-- The system's modified stamp of each of our writes. An outbound connector reads back the stamp a
-- system gave the records it just wrote (one query per collection or batch) and passes it with the
-- acknowledgement ("stamp" in each element of cdc.record_outbound_batch). It becomes the
-- source_modified_at of the fields written in cdc.sync_base, so an inbound row carrying an older
-- stamp (a page read before our write landed, applied after it) is not taken for an edit of those
-- fields (transforms/005_sync_tracking.sql). Without a stamp (a system that returns none) the
-- fields get NULL: compared by value alone, as before.
CREATE OR REPLACE FUNCTION cdc.record_outbound(
    p_connector  text,
    p_object     text,
    p_record_key text,
    p_record_id  text,
    p_operation  text,
    p_changes    jsonb,
    p_commit_lsn pg_lsn,
    p_stamp      timestamptz)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cdc.sync_base AS b (object, record_key, field, value, source_modified_at, updated_at)
    SELECT p_object, p_record_key, c.key, c.value -> 'after', p_stamp, now()
      FROM jsonb_each(coalesce(p_changes, '{}')) c
    ON CONFLICT (object, record_key, field)
    DO UPDATE SET value = EXCLUDED.value, source_modified_at = EXCLUDED.source_modified_at, updated_at = now();

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

-- The seven-argument form (callers from before stamps): no stamp known.
CREATE OR REPLACE FUNCTION cdc.record_outbound(
    p_connector  text,
    p_object     text,
    p_record_key text,
    p_record_id  text,
    p_operation  text,
    p_changes    jsonb,
    p_commit_lsn pg_lsn)
RETURNS void
LANGUAGE sql AS $$
    SELECT cdc.record_outbound(p_connector, p_object, p_record_key, p_record_id, p_operation, p_changes, p_commit_lsn, NULL::timestamptz)
$$;

-- Each element may carry "stamp": the system's modified stamp of the record after the write.
CREATE OR REPLACE FUNCTION cdc.record_outbound_batch(p_connector text, p_writes jsonb)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    IF jsonb_typeof(coalesce(p_writes, '[]')) <> 'array' THEN
        RAISE EXCEPTION 'cdc.record_outbound_batch: p_writes must be a jsonb array, got %', jsonb_typeof(p_writes);
    END IF;

    PERFORM cdc.record_outbound(p_connector, w ->> 'object', w ->> 'record_key', w ->> 'record_id',
                                w ->> 'operation', coalesce(w -> 'changes', '{}'), (w ->> 'commit_lsn')::pg_lsn,
                                (w ->> 'stamp')::timestamptz)
       FROM jsonb_array_elements(coalesce(p_writes, '[]')) w;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
