-- The hub schema itself: properties the connectors and the worker rely on.

-- test: staging tables carry old values on delete
SELECT cdc_test.assert_equals(relreplident::text, 'f', 'replica identity of ' || relname)
  FROM pg_class WHERE oid IN ('public.sf_accounts'::regclass, 'public.sf_contacts'::regclass, 'public.ns_customers'::regclass);

-- test: repeated failures of a record bump one open dead letter
INSERT INTO cdc.dead_letters (connector, object, record_key, payload, error)
VALUES ('netsuite', 'ns_customers', 'cdc_test-abc', '{}', 'first')
ON CONFLICT (connector, object, record_key) WHERE status = 'open'
DO UPDATE SET attempts = cdc.dead_letters.attempts + 1, error = EXCLUDED.error, last_seen = now();
INSERT INTO cdc.dead_letters (connector, object, record_key, payload, error)
VALUES ('netsuite', 'ns_customers', 'cdc_test-abc', '{}', 'second')
ON CONFLICT (connector, object, record_key) WHERE status = 'open'
DO UPDATE SET attempts = cdc.dead_letters.attempts + 1, error = EXCLUDED.error, last_seen = now();
SELECT cdc_test.assert_equals(attempts, 2, 'attempts') FROM cdc.dead_letters WHERE record_key = 'cdc_test-abc';
SELECT cdc_test.assert_equals(error, 'second', 'latest error') FROM cdc.dead_letters WHERE record_key = 'cdc_test-abc';
UPDATE cdc.dead_letters SET status = 'retried' WHERE record_key = 'cdc_test-abc';
INSERT INTO cdc.dead_letters (connector, object, record_key, payload, error)
VALUES ('netsuite', 'ns_customers', 'cdc_test-abc', '{}', 'third');
SELECT cdc_test.assert_count($q$SELECT 1 FROM cdc.dead_letters WHERE record_key = 'cdc_test-abc'$q$, 2, 'a retried record can fail again');
SELECT cdc_test.assert_raises($s$UPDATE cdc.dead_letters SET status = 'lost' WHERE record_key = 'cdc_test-abc'$s$,
    'dead_letters_status_check', 'status values');

-- test: checkpoints upsert by connector
INSERT INTO cdc.checkpoints (connector, lsn) VALUES ('cdc_test-connector', '0/16B3748')
ON CONFLICT (connector) DO UPDATE SET lsn = EXCLUDED.lsn, updated_at = now();
INSERT INTO cdc.checkpoints (connector, lsn) VALUES ('cdc_test-connector', '0/16B3800')
ON CONFLICT (connector) DO UPDATE SET lsn = EXCLUDED.lsn, updated_at = now();
SELECT cdc_test.assert_equals(lsn, '0/16B3800'::pg_lsn, 'checkpoint') FROM cdc.checkpoints WHERE connector = 'cdc_test-connector';

-- test: identity links refuse to merge two records
INSERT INTO sf_accounts (hub_id, name) VALUES ('00000000-0000-0000-0000-00000000a001', 'One'),
                                            ('00000000-0000-0000-0000-00000000a002', 'Two');
SELECT cdc_test.assert_raises(
    $s$SELECT cdc.link('sf_accounts', '00000000-0000-0000-0000-00000000a001', 'ns_customers',
                       cdc.linked_hub_id('sf_accounts', '00000000-0000-0000-0000-00000000a002', 'ns_customers'))$s$,
    'already linked to different records', 'linking rows of two records');
SELECT cdc_test.assert_raises($s$SELECT cdc.link('sf_accounts', gen_random_uuid(), 'sf_accounts', gen_random_uuid())$s$,
    'same table', 'linking within one table');
SELECT cdc_test.assert_equals(
    cdc.link('sf_accounts', '00000000-0000-0000-0000-00000000a001', 'ns_customers',
             cdc.linked_hub_id('sf_accounts', '00000000-0000-0000-0000-00000000a001', 'ns_customers')),
    cdc.link_id_of('sf_accounts', '00000000-0000-0000-0000-00000000a001'), 'linking again is a no-op');
SELECT cdc_test.assert_count(
    $q$SELECT 1 FROM cdc.identity_links
        WHERE link_id IN (cdc.link_id_of('sf_accounts', '00000000-0000-0000-0000-00000000a001'),
                          cdc.link_id_of('sf_accounts', '00000000-0000-0000-0000-00000000a002'))$q$,
    4, 'two links of two rows');

-- test: the assertion helpers report what they compared
SELECT cdc_test.assert_raises($s$SELECT cdc_test.assert_equals(1, 2, 'one')$s$,
    'assertion failed: one: expected ''2'', got ''1''', 'assert_equals message');
SELECT cdc_test.snapshot('ns_customers');
SELECT cdc_test.assert_raises($s$SELECT cdc_test.assert_unchanged('sf_contacts', 'x')$s$,
    'call cdc_test.snapshot', 'assert_unchanged without snapshot');
