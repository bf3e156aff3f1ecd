-- Outbound connectors acknowledge a whole batch of writes in one hub round trip: one call with a
-- jsonb array instead of one cdc.record_outbound call per record. Each element is
--   {"object": "sf_accounts", "record_key": "<hub_id>", "record_id": "<system id>",
--    "operation": "insert|update|delete", "changes": {"field": {"before": .., "after": ..}},
--    "commit_lsn": "0/16B3748"}
-- and goes through cdc.record_outbound, so the base and audit rules stay in one place.
CREATE FUNCTION cdc.record_outbound_batch(p_connector text, p_writes jsonb)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    IF jsonb_typeof(coalesce(p_writes, '[]')) <> 'array' THEN
        RAISE EXCEPTION 'cdc.record_outbound_batch: p_writes must be a jsonb array, got %', jsonb_typeof(p_writes);
    END IF;

    PERFORM cdc.record_outbound(p_connector, w ->> 'object', w ->> 'record_key', w ->> 'record_id',
                                w ->> 'operation', coalesce(w -> 'changes', '{}'), (w ->> 'commit_lsn')::pg_lsn)
       FROM jsonb_array_elements(coalesce(p_writes, '[]')) w;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
