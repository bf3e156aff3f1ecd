-- Reconcile (transforms/060_reconcile.sql): the comparison keys, and what cdc.reconcile_compare
-- finds between what a system holds (cdc.reconcile_records, as a run loads it) and the hub.
-- test: a phone, a url and a blank compare by their keys
SELECT cdc_test.assert_equals(cdc.reconcile_key('sf_accounts', 'phone', '"(415) 555-0101"'),
                              cdc.reconcile_key('ns_customers', 'phone', '"+1 415 555 0101"'), 'a phone formatted differently is the same phone');
SELECT cdc_test.assert_true(cdc.reconcile_key('sf_accounts', 'phone', '"(415) 555-0101"')
                            IS DISTINCT FROM cdc.reconcile_key('sf_accounts', 'phone', '"(415) 555-0102"'), 'another number is another phone');
SELECT cdc_test.assert_equals(cdc.reconcile_key('ns_customers', 'url', '"ACME.example/"'),
                              cdc.reconcile_key('ns_customers', 'url', '"https://acme.example"'), 'a url without scheme or with a trailing slash is the same website');
SELECT cdc_test.assert_null(cdc.reconcile_key('sf_accounts', 'name', '"  "'), 'a blank is no value');


-- test: the compare finds each kind of drift, and no formatting difference
-- R1: only the phone's format differs; R2: the name differs; R3: removed without a trace;
-- R4: in the system only; R5: removed, but the hub knows it deleted.
INSERT INTO sf_accounts (hub_id, id, name, phone, isdeleted, cdc_source_modified_at)
VALUES ('00000000-0000-0000-0000-0000000a0001', '001000000000R01AAA', 'Reconcile One', '(415) 555-0101', false, '2024-03-01'),
       ('00000000-0000-0000-0000-0000000a0002', '001000000000R02AAA', 'Reconcile Two', NULL, false, '2024-03-01'),
       ('00000000-0000-0000-0000-0000000a0003', '001000000000R03AAA', 'Reconcile Three', NULL, false, '2024-03-01'),
       ('00000000-0000-0000-0000-0000000a0005', '001000000000R05AAA', 'Reconcile Five', NULL, true, '2024-03-01');
INSERT INTO cdc.reconcile_runs (run_id) VALUES (-1);
INSERT INTO cdc.reconcile_records (run_id, object, deleted, "values")
VALUES (-1, 'sf_accounts', false, '{"id": "001000000000R01AAA", "name": "Reconcile One", "phone": "415.555.0101", "cdc_source_modified_at": "2024-03-01T00:00:00Z"}'),
       (-1, 'sf_accounts', false, '{"id": "001000000000R02AAA", "name": "Reconcile 2", "phone": null, "cdc_source_modified_at": "2024-03-01T00:00:00Z"}'),
       (-1, 'sf_accounts', false, '{"id": "001000000000R04AAA", "name": "Reconcile Four", "cdc_source_modified_at": "2024-03-01T00:00:00Z"}');
-- One record at a time (a hub under --in-place holds many others: each compare looks at one).
CREATE TEMP TABLE our_findings AS
SELECT kind, record_id, field, system_value, hub_value FROM cdc.reconcile_findings WHERE false;
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['001000000000R01AAA', '001000000000R02AAA', '001000000000R03AAA', '001000000000R04AAA', '001000000000R05AAA'] LOOP
        PERFORM count(*) FROM cdc.reconcile_compare(-1, 'sf_accounts', r);
        INSERT INTO our_findings SELECT kind, record_id, field, system_value, hub_value FROM cdc.reconcile_findings WHERE run_id = -1;
    END LOOP;
END $$;

SELECT cdc_test.assert_count($$SELECT 1 FROM our_findings WHERE record_id = '001000000000R01AAA'$$, 0, 'a formatting difference is not drift');

SELECT cdc_test.assert_count($$SELECT 1 FROM our_findings WHERE record_id = '001000000000R02AAA' AND kind = 'field_differs' AND field = 'name'
                                AND system_value = 'Reconcile 2' AND hub_value = 'Reconcile Two'$$, 1, 'a differing name is reported with both values');

SELECT cdc_test.assert_count($$SELECT 1 FROM our_findings WHERE record_id = '001000000000R03AAA' AND kind = 'missing_in_system'$$, 1, 'a record removed without a trace');

SELECT cdc_test.assert_count($$SELECT 1 FROM our_findings WHERE record_id = '001000000000R04AAA' AND kind = 'missing_in_hub'$$, 1, 'a record the hub never saw');

SELECT cdc_test.assert_count($$SELECT 1 FROM our_findings WHERE record_id = '001000000000R05AAA'$$, 0, 'a record the hub knows deleted is not missing');

SELECT cdc_test.assert_equals(cdc.reconcile_tombstone_row('sf_accounts', '00000000-0000-0000-0000-0000000a0003') ->> 'isdeleted', 'true', 'a removed Salesforce record is written back marked deleted');
