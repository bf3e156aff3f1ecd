-- Sync tracking (transforms/005_sync_tracking.sql) runs inside every write a connector makes to a
-- tracked staging table. It must find a record's sync base and field stamps by their keys: a
-- scan of the whole table makes every write slower as the hub grows (measured: 200 Salesforce
-- Id write-backs took 1.0-1.4 s at 35,000 sync base rows, 0.2 s with the keys used).
-- Preamble: a sync base holding many other records, with statistics, as on a hub in service.
INSERT INTO cdc.sync_base (object, record_key, field, value)
SELECT 'sf_accounts', 'other-' || g, f, '"x"'
  FROM generate_series(1, 10000) g, unnest(ARRAY['name', 'phone', 'website']) f;
INSERT INTO cdc.hub_field_stamps (object, record_key, field, modified_at, source_system)
SELECT 'sf_accounts', 'other-' || g, 'phone', now(), 'netsuite' FROM generate_series(1, 10000) g;
ANALYZE cdc.sync_base;
ANALYZE cdc.hub_field_stamps;
INSERT INTO sf_accounts (hub_id, id, name, phone)
VALUES ('00000000-0000-0000-0000-00000000a901', '001000000000901AAA', 'Keyed Ltd', '4155550901');

-- test: a connector's write reads the sync base and field stamps by key, not by scanning them
SELECT set_config('cdc.connector', 'salesforce', true);
CREATE TEMP TABLE scans_before ON COMMIT DROP AS
SELECT relid, seq_scan FROM pg_stat_xact_all_tables WHERE relid IN ('cdc.sync_base'::regclass, 'cdc.hub_field_stamps'::regclass);
SELECT cdc_test.assert_equals((SELECT count(*) FROM scans_before), 2::bigint, 'tables whose scans are counted');
UPDATE sf_accounts SET phone = '4155550902', website = 'keyed.example'
 WHERE hub_id = '00000000-0000-0000-0000-00000000a901';
UPDATE sf_accounts SET name = 'Keyed Limited'
 WHERE hub_id = '00000000-0000-0000-0000-00000000a901';
SELECT cdc_test.assert_equals(a.seq_scan - b.seq_scan, 0::bigint, 'sequential scans of ' || a.relid::regclass || ' during two tracked writes')
  FROM pg_stat_xact_all_tables a JOIN scans_before b USING (relid);
SELECT cdc_test.assert_equals(value, '"4155550902"'::jsonb, 'the write''s phone is Salesforce''s sync base')
  FROM cdc.sync_base WHERE object = 'sf_accounts' AND record_key = '00000000-0000-0000-0000-00000000a901' AND field = 'phone';
