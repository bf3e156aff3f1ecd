-- Acknowledging a batch of outbound writes costs a few statements, whatever its size: the sync base
-- of every field written in one upsert, the audit trail in one insert, one purge check. Before, each
-- write went through cdc.record_outbound on its own (≈ 0.3 ms a record, more than the rest of a
-- Salesforce collection's hub work; docs/BENCHMARKS.md). The rules now live here, and the
-- one-record cdc.record_outbound is a batch of one, so they stay in one place.

-- plpgsql keeps its plan for the session; a SQL function with a subquery cannot be inlined and was
-- planned again on every call from a trigger (one call per audited row). Same result as before.
CREATE OR REPLACE FUNCTION cdc.mask_changes(p_object text, p_changes jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
        SELECT coalesce(jsonb_object_agg(c.key,
                   CASE WHEN EXISTS (SELECT 1 FROM cdc.sensitive_fields s
                                      WHERE s.field = c.key AND s.object IN (p_object, '*'))
                        THEN jsonb_build_object(
                                 'before', CASE WHEN coalesce(c.value -> 'before', 'null') <> 'null' THEN '***' END,
                                 'after',  CASE WHEN coalesce(c.value -> 'after', 'null') <> 'null' THEN '***' END)
                        ELSE c.value END), '{}'::jsonb)
          FROM jsonb_each(coalesce(p_changes, '{}')) c);
END
$$;

-- p_writes: a jsonb array of
--   {"object": "sf_accounts", "record_key": "<hub_id>", "record_id": "<system id>",
--    "operation": "insert|update|upsert|delete", "changes": {"field": {"before": .., "after": ..}},
--    "commit_lsn": "0/16B3748", "stamp": "<the system's modified stamp after the write, or null>"}
-- in the order the system applied them. Returns how many writes were recorded.
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
    INSERT INTO cdc.sync_base AS b (object, record_key, field, value, source_modified_at, updated_at)
    SELECT DISTINCT ON (e.value ->> 'object', e.value ->> 'record_key', c.key)
           e.value ->> 'object', e.value ->> 'record_key', c.key, c.value -> 'after',
           (e.value ->> 'stamp')::timestamptz, now()
      FROM jsonb_array_elements(coalesce(p_writes, '[]')) WITH ORDINALITY e(value, i)
     CROSS JOIN LATERAL jsonb_each(coalesce(e.value -> 'changes', '{}')) c
     ORDER BY e.value ->> 'object', e.value ->> 'record_key', c.key, e.i DESC
    ON CONFLICT (object, record_key, field)
    DO UPDATE SET value = EXCLUDED.value, source_modified_at = EXCLUDED.source_modified_at, updated_at = now();

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

-- One write: a batch of one (the rules above). The seven-argument form (no stamp) calls this one.
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
LANGUAGE sql AS $$
    SELECT cdc.record_outbound_batch(p_connector, jsonb_build_array(jsonb_build_object(
        'object', p_object, 'record_key', p_record_key, 'record_id', p_record_id, 'operation', p_operation,
        'changes', coalesce(p_changes, '{}'), 'commit_lsn', p_commit_lsn::text, 'stamp', p_stamp)))
$$;

-- The keys of the sync base and of the hub's field stamps compare in collation "C" (bytes), whatever
-- the database's collation: every tracked write probes and inserts some twenty of them, and under a
-- linguistic collation (C.UTF-8, en_US.UTF-8) each comparison went through strcoll (≈ 12% of the
-- hub's share of a Salesforce collection; docs/BENCHMARKS.md). The keys are identifiers and hub ids,
-- never sorted for people. Rewrites both tables once.
ALTER TABLE cdc.sync_base
    ALTER COLUMN object TYPE text COLLATE "C",
    ALTER COLUMN record_key TYPE text COLLATE "C",
    ALTER COLUMN field TYPE text COLLATE "C";
ALTER TABLE cdc.hub_field_stamps
    ALTER COLUMN object TYPE text COLLATE "C",
    ALTER COLUMN record_key TYPE text COLLATE "C",
    ALTER COLUMN field TYPE text COLLATE "C";
