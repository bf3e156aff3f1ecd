-- Matching and onboarding (transforms/050_matching.sql, holds in 012): two systems that already
-- hold data are loaded while onboarding, matched, and settled without duplicates.
-- Preamble: both connectors onboarding; the hub loaded as the inbound connectors would load it.
--   Acme        in both: name (case, spacing, suffix), phone (formatted differently) and website agree -> linked
--   Globex      one account, two customers agreeing on name and phone alike -> tie, review
--   Initech     only the name agrees -> weak, review
--   Paired      linked before CdcSync (netsuite_id__c = internalid) -> adopted as today
--   Solo / Lone only on one side -> created on the other by the settle
-- Matching and settling look at this file's records only (a hub under --in-place holds others).
SELECT set_config('cdc.onboard_scope', '00000000-0000-0000-0000-00000000%', true);
SELECT cdc.onboard_begin('cdc_test-sf');
SELECT cdc.onboard_begin('cdc_test-ns');
INSERT INTO sf_accounts (hub_id, id, name, phone, website, billingcity, netsuite_id__c, createddate, cdc_source_modified_at)
VALUES ('00000000-0000-0000-0000-00000000f101', '001000000000F101AA', 'Acme, Inc.', '(415) 555-0101', 'www.acme.example', 'San Francisco', NULL, '2024-01-01', '2024-03-01'),
       ('00000000-0000-0000-0000-00000000f102', '001000000000F102AA', 'Globex Corporation', '(212) 555-0102', NULL, NULL, NULL, '2024-01-01', '2024-03-01'),
       ('00000000-0000-0000-0000-00000000f103', '001000000000F103AA', 'Initech LLC', NULL, NULL, NULL, NULL, '2024-01-01', '2024-03-01'),
       ('00000000-0000-0000-0000-00000000f104', '001000000000F104AA', 'Solo Salesforce Ltd', '(303) 555-0104', NULL, NULL, NULL, '2024-01-01', '2024-03-01'),
       ('00000000-0000-0000-0000-00000000f106', '001000000000F106AA', 'Paired Before', NULL, NULL, NULL, '9106', '2024-01-01', '2024-03-01');
INSERT INTO sf_contacts (hub_id, id, accountid, lastname, email, createddate)
VALUES ('00000000-0000-0000-0000-00000000c101', '003000000000C101AA', '001000000000F101AA', 'Lovelace', 'ada@acme.example', '2024-01-02');
INSERT INTO ns_customers (hub_id, internalid, companyname, phone, url, email, addressbook, cdc_source_modified_at)
VALUES ('00000000-0000-0000-0000-00000000e101', '9101', 'ACME  inc', '4155550101', 'https://acme.example', NULL,
        '[{"defaultBilling":true,"defaultShipping":false,"label":"Billing","addressBookAddress":{"zip":"94105"}}]', '2024-02-01'),
       ('00000000-0000-0000-0000-00000000e102', '9102', 'Globex Corp', '2125550102', NULL, NULL, '[]', '2024-02-01'),
       ('00000000-0000-0000-0000-00000000e103', '9103', 'GLOBEX', '+1 212 555 0102', NULL, NULL, '[]', '2024-02-01'),
       ('00000000-0000-0000-0000-00000000e104', '9104', 'Initech', NULL, NULL, NULL, '[]', '2024-02-01'),
       ('00000000-0000-0000-0000-00000000e105', '9105', 'Lone NetSuite GmbH', '4955550105', NULL, 'info@lone.example', '[]', '2024-02-01'),
       ('00000000-0000-0000-0000-00000000e106', '9106', 'Paired Before Inc', NULL, NULL, NULL, '[]', '2024-02-01');
INSERT INTO sf_opportunities (hub_id, id, accountid, name, stagename, amount, closedate)
VALUES ('00000000-0000-0000-0000-00000000b101', '006000000000B101AA', '001000000000F101AA', 'Big Deal', 'Prospecting', 1000, '2024-06-30'),
       ('00000000-0000-0000-0000-00000000b102', '006000000000B102AA', '001000000000F101AA', 'Salesforce Only Deal', 'Prospecting', 2000, '2024-07-31');
INSERT INTO ns_opportunities (hub_id, internalid, entity, title, projectedtotal, expectedclosedate, memo)
VALUES ('00000000-0000-0000-0000-00000000d101', '8101', '9101', 'BIG deal', 1000, '2024-06-30', 'from NetSuite'),
       ('00000000-0000-0000-0000-00000000d102', '8102', '9101', 'NetSuite Only Deal', 3000, '2024-08-31', NULL);
SELECT cdc.onboard_loaded('cdc_test-sf', 6);
SELECT cdc.onboard_loaded('cdc_test-ns', 8);
CREATE TEMP VIEW our_links AS
SELECT l.* FROM cdc.identity_links l
 WHERE l.link_id IN (SELECT x.link_id FROM cdc.identity_links x
                      WHERE x.hub_id::text LIKE '00000000-0000-0000-0000-00000000%'
                        AND right(x.hub_id::text, 4) ~ '^[bcdef]10[0-9]$');

-- test: company names compare without case, spacing, punctuation and legal suffixes
SELECT cdc_test.assert_equals(cdc.match_company_key('Acme, Inc.'), 'acme', 'comma and Inc.');
SELECT cdc_test.assert_equals(cdc.match_company_key('ACME  inc'), 'acme', 'case and double space');
SELECT cdc_test.assert_equals(cdc.match_company_key('A.C.M.E. Co., Ltd.'), 'acme', 'dotted letters, two suffixes');
SELECT cdc_test.assert_equals(cdc.match_company_key('Blue Sky GmbH'), cdc.match_company_key('BlueSky'), 'spacing inside the name');
SELECT cdc_test.assert_equals(cdc.match_company_key('Widgets L.L.C.'), 'widgets', 'L.L.C.');
SELECT cdc_test.assert_equals(cdc.match_company_key('Globex Corporation'), cdc.match_company_key('GLOBEX corp'), 'Corporation / corp');
SELECT cdc_test.assert_equals(cdc.match_company_key('Co'), 'co', 'a name that is only a suffix keeps it');
SELECT cdc_test.assert_null(cdc.match_company_key(' - '), 'punctuation only');
SELECT cdc_test.assert_false(cdc.match_company_key('Acme Labs') = cdc.match_company_key('Acme'), 'other words still count');

-- test: websites, email domains and phones normalize to match keys
SELECT cdc_test.assert_equals(cdc.match_website_domain('https://www.Acme.example:443/about'), 'acme.example', 'scheme, www, port, path');
SELECT cdc_test.assert_equals(cdc.match_website_domain('ACME.example/'), 'acme.example', 'no scheme');
SELECT cdc_test.assert_null(cdc.match_website_domain('  '), 'blank website');
SELECT cdc_test.assert_equals(cdc.match_email_domain('Ada@Acme.EXAMPLE'), 'acme.example', 'email domain');
SELECT cdc_test.assert_null(cdc.match_email_domain('someone@gmail.com'), 'free-mail domain ignored');
SELECT cdc_test.assert_null(cdc.match_email_domain('not an email'), 'no domain');
SELECT cdc_test.assert_equals(cdc.match_phone_key('(415) 555-0101'), cdc.match_phone_key('+1 415 555 0101'), 'phone formats');
SELECT cdc_test.assert_null(cdc.match_phone_key('x12'), 'too short to identify');
SELECT cdc_test.assert_equals(cdc.match_phone_key(p), cdc.phone_key(p), 'match_phone_key is phone_key for ' || p)
  FROM unnest(ARRAY['(415) 555-0100', '+1 415-555-0100', '1 415 555 0100', '+49 30 1234567', '0049 30 1234567', '555-0100 x12']) p;

-- test: while onboarding is active nothing unlinked is created on the other side
SELECT cdc_test.assert_true(cdc.onboarding_active(), 'onboarding active');
SELECT cdc_test.assert_count($q$SELECT 1 FROM ns_customers WHERE externalid LIKE 'sf-00000000-0000-0000-0000-00000000f10%'$q$, 0, 'customers made from the accounts');
SELECT cdc_test.assert_count($q$SELECT 1 FROM our_links WHERE object IN ('sf_accounts', 'ns_customers')
                                 AND hub_id <> '00000000-0000-0000-0000-00000000f106' AND hub_id <> '00000000-0000-0000-0000-00000000e106'$q$,
    0, 'links other than the pair linked by id');
SELECT cdc_test.assert_count($q$SELECT 1 FROM ns_opportunities WHERE externalid LIKE 'sf-00000000-0000-0000-0000-00000000b10%'$q$, 0, 'NetSuite opportunities made');
-- a write to a held record while loading does not create it either
UPDATE sf_accounts SET phone = '(303) 555-0199' WHERE hub_id = '00000000-0000-0000-0000-00000000f104';
SELECT cdc_test.assert_null(cdc.linked_hub_id('sf_accounts', '00000000-0000-0000-0000-00000000f104', 'ns_customers'), 'updated unlinked account');

-- test: records already linked by id are adopted as today
SELECT cdc_test.assert_equals(cdc.linked_hub_id('sf_accounts', '00000000-0000-0000-0000-00000000f106', 'ns_customers'),
    '00000000-0000-0000-0000-00000000e106'::uuid, 'netsuite_id__c = internalid links while loading');

-- test: a confident unique match links the pair
SELECT * FROM cdc.onboard_match();
SELECT cdc_test.assert_equals(cdc.linked_hub_id('sf_accounts', '00000000-0000-0000-0000-00000000f101', 'ns_customers'),
    '00000000-0000-0000-0000-00000000e101'::uuid, 'Acme linked');
DO $$
DECLARE m cdc.match_candidates := (SELECT m FROM cdc.match_candidates m WHERE hub_a = '00000000-0000-0000-0000-00000000f101');
BEGIN
    PERFORM cdc_test.assert_equals(m.status, 'linked', 'status');
    PERFORM cdc_test.assert_equals(m.hub_b, '00000000-0000-0000-0000-00000000e101'::uuid, 'candidate');
    PERFORM cdc_test.assert_equals(m.keys, '{"name": 0.6, "phone": 0.4, "website_domain": 0.5}'::jsonb, 'keys that agreed');
    PERFORM cdc_test.assert_equals(m.score, 1.5, 'score');
    PERFORM cdc_test.assert_equals(m.link_id, cdc.link_id_of('sf_accounts', '00000000-0000-0000-0000-00000000f101'), 'link id');
END $$;
SELECT cdc_test.assert_equals(cdc.linked_hub_id('sf_opportunities', '00000000-0000-0000-0000-00000000b101', 'ns_opportunities'),
    '00000000-0000-0000-0000-00000000d101'::uuid, 'the pair''s deal with the same name is linked');
SELECT cdc_test.assert_null(cdc.linked_hub_id('sf_opportunities', '00000000-0000-0000-0000-00000000b102', 'ns_opportunities'), 'a deal only in Salesforce');
SELECT cdc_test.assert_count($q$SELECT 1 FROM cdc.audit_log WHERE record_key = '00000000-0000-0000-0000-00000000f101' AND operation = 'onboarding'$q$,
    1, 'the match in the audit trail');

-- test: a tie goes to review and neither candidate is created nor linked
SELECT * FROM cdc.onboard_match();
DO $$
DECLARE r cdc.match_review := (SELECT r FROM cdc.match_review r WHERE hub_id = '00000000-0000-0000-0000-00000000f102');
BEGIN
    PERFORM cdc_test.assert_equals(r.reason, 'tie', 'reason');
    PERFORM cdc_test.assert_equals(r.candidate_count, 2::bigint, 'candidates');
    PERFORM cdc_test.assert_equals(r.label, 'Globex Corporation', 'label');
    PERFORM cdc_test.assert_equals((SELECT array_agg((c ->> 'hub_id')::uuid ORDER BY c ->> 'hub_id') FROM jsonb_array_elements(r.candidates) c),
        ARRAY['00000000-0000-0000-0000-00000000e102', '00000000-0000-0000-0000-00000000e103']::uuid[], 'the two customers');
    PERFORM cdc_test.assert_equals(r.record ->> 'phone', '(212) 555-0102', 'the record as the operator sees it');
END $$;
SELECT * FROM cdc.onboard_settle();
SELECT cdc_test.assert_false(cdc.onboarding_active(), 'settled');
SELECT cdc_test.assert_count($q$SELECT 1 FROM our_links WHERE hub_id IN ('00000000-0000-0000-0000-00000000f102',
                                 '00000000-0000-0000-0000-00000000e102', '00000000-0000-0000-0000-00000000e103')$q$, 0, 'tied records linked or created');
SELECT cdc_test.assert_count($q$SELECT 1 FROM ns_customers WHERE externalid = 'sf-00000000-0000-0000-0000-00000000f102'$q$, 0, 'customer made from the account');
-- held after onboarding too: an edit creates nothing
UPDATE sf_accounts SET phone = '(212) 555-0199' WHERE hub_id = '00000000-0000-0000-0000-00000000f102';
UPDATE ns_customers SET phone = '2125550198' WHERE hub_id = '00000000-0000-0000-0000-00000000e103';
SELECT cdc_test.assert_count($q$SELECT 1 FROM our_links WHERE hub_id IN ('00000000-0000-0000-0000-00000000f102',
                                 '00000000-0000-0000-0000-00000000e102', '00000000-0000-0000-0000-00000000e103')$q$, 0, 'after edits');

-- test: two accounts contesting one customer are one review of the customer, children held
INSERT INTO sf_accounts (hub_id, id, name, phone, createddate)
VALUES ('00000000-0000-0000-0000-00000000f107', '001000000000F107AA', 'Umbrella Corp', '(617) 555-0107', '2024-01-01'),
       ('00000000-0000-0000-0000-00000000f108', '001000000000F108AA', 'UMBRELLA', '617.555.0107', '2024-01-01');
INSERT INTO ns_customers (hub_id, internalid, companyname, phone, addressbook)
VALUES ('00000000-0000-0000-0000-00000000e107', '9107', 'Umbrella Corporation', '6175550107', '[]');
INSERT INTO ns_opportunities (hub_id, internalid, entity, title, projectedtotal, expectedclosedate)
VALUES ('00000000-0000-0000-0000-00000000d107', '8107', '9107', 'Umbrella Renewal', 500, '2024-09-30');
SELECT * FROM cdc.onboard_match();
DO $$
DECLARE r cdc.match_review := (SELECT r FROM cdc.match_review r WHERE hub_id = '00000000-0000-0000-0000-00000000e107');
BEGIN
    PERFORM cdc_test.assert_equals(r.object, 'ns_customers', 'the review is of the customer');
    PERFORM cdc_test.assert_equals(r.reason, 'tie', 'reason');
    PERFORM cdc_test.assert_equals(r.candidate_count, 2::bigint, 'both accounts are its candidates');
END $$;
SELECT cdc_test.assert_count($q$SELECT 1 FROM cdc.match_review WHERE hub_id IN ('00000000-0000-0000-0000-00000000f107', '00000000-0000-0000-0000-00000000f108')$q$,
    0, 'no review per account');
SELECT * FROM cdc.onboard_settle();
SELECT cdc_test.assert_count($q$SELECT 1 FROM our_links WHERE hub_id IN ('00000000-0000-0000-0000-00000000f107', '00000000-0000-0000-0000-00000000f108',
                                 '00000000-0000-0000-0000-00000000e107', '00000000-0000-0000-0000-00000000d107')$q$, 0, 'nothing linked or created, the deal neither');
SELECT cdc_test.assert_count($q$SELECT 1 FROM cdc.onboard_report() WHERE hub_id = '00000000-0000-0000-0000-00000000d107' AND section LIKE 'create%'$q$, 0, 'the held customer''s deal is not to create');
-- accepted: the customer's deal follows it to Salesforce
SELECT cdc.match_accept((SELECT id FROM cdc.match_review WHERE hub_id = '00000000-0000-0000-0000-00000000e107'), '00000000-0000-0000-0000-00000000f107');
SELECT cdc_test.assert_equals((SELECT account_hub_id FROM sf_opportunities
                                WHERE hub_id = cdc.linked_hub_id('ns_opportunities', '00000000-0000-0000-0000-00000000d107', 'sf_opportunities')),
    '00000000-0000-0000-0000-00000000f107'::uuid, 'the deal created under the accepted account');
SELECT cdc_test.assert_not_null(cdc.linked_hub_id('sf_accounts', '00000000-0000-0000-0000-00000000f108', 'ns_customers'), 'the other account created as new');

-- test: a weak match goes to review
SELECT * FROM cdc.onboard_match();
SELECT cdc_test.assert_equals((SELECT reason FROM cdc.match_review WHERE hub_id = '00000000-0000-0000-0000-00000000f103'),
    'weak', 'reason');
SELECT cdc_test.assert_equals((SELECT (candidates -> 0 ->> 'hub_id')::uuid FROM cdc.match_review WHERE hub_id = '00000000-0000-0000-0000-00000000f103'),
    '00000000-0000-0000-0000-00000000e104'::uuid, 'candidate');
SELECT cdc_test.assert_equals((SELECT (candidates -> 0 -> 'keys') FROM cdc.match_review WHERE hub_id = '00000000-0000-0000-0000-00000000f103'),
    '{"name": 0.6}'::jsonb, 'keys');
SELECT * FROM cdc.onboard_settle();
SELECT cdc_test.assert_null(cdc.linked_hub_id('sf_accounts', '00000000-0000-0000-0000-00000000f103', 'ns_customers'), 'weak match not linked');
SELECT cdc_test.assert_null(cdc.linked_hub_id('ns_customers', '00000000-0000-0000-0000-00000000e104', 'sf_accounts'), 'nor created');

-- test: the report lists matches, reviews, records to create and differences
SELECT * FROM cdc.onboard_match();
SELECT cdc_test.assert_count($q$SELECT 1 FROM cdc.onboard_report() WHERE section = 'matched' AND hub_id = '00000000-0000-0000-0000-00000000f101'$q$, 1, 'matched');
SELECT cdc_test.assert_count($q$SELECT 1 FROM cdc.onboard_report() WHERE section = 'review' AND hub_id = '00000000-0000-0000-0000-00000000f102'$q$, 2, 'review lines of the tie');
SELECT cdc_test.assert_count($q$SELECT 1 FROM cdc.onboard_report() WHERE section = 'create_in_netsuite' AND hub_id = '00000000-0000-0000-0000-00000000f104'$q$, 1, 'account to create');
SELECT cdc_test.assert_count($q$SELECT 1 FROM cdc.onboard_report() WHERE section = 'create_in_salesforce' AND hub_id = '00000000-0000-0000-0000-00000000e105'$q$, 1, 'customer to create');
SELECT cdc_test.assert_count($q$SELECT 1 FROM cdc.onboard_report() WHERE section = 'create_in_netsuite' AND hub_id = '00000000-0000-0000-0000-00000000b102'$q$, 1, 'deal to create in NetSuite');
SELECT cdc_test.assert_count($q$SELECT 1 FROM cdc.onboard_report() WHERE section = 'create_in_salesforce' AND hub_id = '00000000-0000-0000-0000-00000000d102'$q$, 1, 'deal to create in Salesforce');
SELECT cdc_test.assert_count($q$SELECT 1 FROM cdc.onboard_report() WHERE hub_id IN ('00000000-0000-0000-0000-00000000f103', '00000000-0000-0000-0000-00000000e104') AND section LIKE 'create%'$q$, 0, 'held records are not to create');
SELECT cdc_test.assert_equals((SELECT r.value || ' | ' || r.other_value || ' | ' || r.settlement FROM cdc.onboard_report() r WHERE r.section = 'difference' AND r.hub_id = '00000000-0000-0000-0000-00000000f101' AND r.field = 'name'),
    'Acme, Inc. | ACME  inc | last_write_wins: kept salesforce', 'name difference');
SELECT cdc_test.assert_equals((SELECT r.settlement FROM cdc.onboard_report() r WHERE r.section = 'difference' AND r.hub_id = '00000000-0000-0000-0000-00000000f101' AND r.field = 'billingpostalcode'),
    'blank in salesforce: filled from netsuite', 'zip');
SELECT cdc_test.assert_count($q$SELECT 1 FROM cdc.onboard_report() WHERE section = 'difference' AND hub_id = '00000000-0000-0000-0000-00000000f101' AND field = 'phone'$q$,
    0, 'phones formatted differently are no difference');

-- test: settle fills blanks from the other side and records a conflict for a differing value
SELECT * FROM cdc.onboard_match();
SELECT * FROM cdc.onboard_settle();
DO $$
DECLARE
    a sf_accounts := (SELECT a FROM sf_accounts a WHERE hub_id = '00000000-0000-0000-0000-00000000f101');
    n ns_customers := (SELECT n FROM ns_customers n WHERE hub_id = '00000000-0000-0000-0000-00000000e101');
    c cdc.conflicts := (SELECT c FROM cdc.conflicts c WHERE record_key = '00000000-0000-0000-0000-00000000f101' AND field = 'name');
BEGIN
    PERFORM cdc_test.assert_equals(a.billingpostalcode, '94105', 'Salesforce blank filled from NetSuite');
    PERFORM cdc_test.assert_equals(cdc_test.billing(n) ->> 'city', 'San Francisco', 'NetSuite blank filled from Salesforce');
    PERFORM cdc_test.assert_equals(n.email, 'ada@acme.example', 'NetSuite email from the primary contact');
    PERFORM cdc_test.assert_equals(a.phone, '(415) 555-0101', 'equivalent phone: Salesforce keeps its format');
    PERFORM cdc_test.assert_equals(n.phone, '4155550101', 'equivalent phone: NetSuite keeps its format');
    PERFORM cdc_test.assert_equals(a.website, 'www.acme.example', 'equivalent website kept');
    PERFORM cdc_test.assert_equals(a.netsuite_id__c, '9101', 'Salesforce learns the NetSuite id');
    PERFORM cdc_test.assert_equals(n.companyname, 'Acme, Inc.', 'name decided by last write wins (Salesforce is later)');
    PERFORM cdc_test.assert_equals(a.name, 'Acme, Inc.', 'Salesforce keeps its name');
    PERFORM cdc_test.assert_equals(c.connector, 'onboarding', 'conflict connector');
    PERFORM cdc_test.assert_equals(c.object, 'sf_accounts', 'conflict object');
    PERFORM cdc_test.assert_equals(c.policy, 'last_write_wins', 'conflict policy');
    PERFORM cdc_test.assert_equals(c.hub_value, '"Acme, Inc."'::jsonb, 'salesforce value');
    PERFORM cdc_test.assert_equals(c.incoming_value, '"ACME  inc"'::jsonb, 'netsuite value');
    PERFORM cdc_test.assert_equals(c.decided_value, '"Acme, Inc."'::jsonb, 'decided');
    PERFORM cdc_test.assert_equals(c.decision, 'kept salesforce', 'decision');
    PERFORM cdc_test.assert_equals(c.status, 'resolved', 'status');
END $$;
SELECT cdc_test.assert_count($q$SELECT 1 FROM cdc.conflicts WHERE record_key = '00000000-0000-0000-0000-00000000f101' AND field = 'billingpostalcode'$q$,
    0, 'a filled blank is no conflict');
-- Every merge write is in the audit trail, as the hub's own change (it goes out to both systems).
SELECT cdc_test.assert_equals((SELECT changes -> 'companyname' FROM cdc.audit_log WHERE record_key = '00000000-0000-0000-0000-00000000e101' AND operation = 'onboarding' AND changes ? 'companyname'),
    '{"before": "ACME  inc", "after": "Acme, Inc."}'::jsonb, 'audited');
SELECT cdc_test.assert_equals((SELECT source_system FROM cdc.hub_field_stamps WHERE object = 'ns_customers' AND record_key = '00000000-0000-0000-0000-00000000e101' AND field = 'companyname'),
    'hub', 'merge written as the hub''s own change');
SELECT cdc_test.assert_equals((SELECT count(*) FROM cdc.onboarding WHERE connector LIKE 'cdc_test-%' AND phase = 'settled'), 2::bigint, 'connectors settled');

-- test: settle writes each merged row once and creates what matched nothing
SELECT * FROM cdc.onboard_match();
CREATE TEMP TABLE writes_before ON COMMIT DROP AS
SELECT cdc_test.writes('ns_customers') AS ns, cdc_test.writes('sf_accounts') AS sf;
SELECT * FROM cdc.onboard_settle();
-- ns_customers: Acme updated once, Solo Salesforce created; sf_accounts: Acme updated once, Lone NetSuite created.
SELECT cdc_test.assert_equals(cdc_test.writes('ns_customers') - ns, 2::bigint, 'writes to ns_customers') FROM writes_before;
SELECT cdc_test.assert_equals(cdc_test.writes('sf_accounts') - sf, 2::bigint, 'writes to sf_accounts') FROM writes_before;
SELECT cdc_test.assert_not_null(cdc.linked_hub_id('sf_accounts', '00000000-0000-0000-0000-00000000f104', 'ns_customers'), 'account only in Salesforce created in NetSuite');
SELECT cdc_test.assert_equals((cdc_test.sf_of('00000000-0000-0000-0000-00000000e105')).name, 'Lone NetSuite GmbH', 'customer only in NetSuite created in Salesforce');
SELECT cdc_test.assert_equals((cdc_test.primary_contact((cdc_test.sf_of('00000000-0000-0000-0000-00000000e105')).hub_id)).email,
    'info@lone.example', 'with its contact');

-- test: children of a matched pair are not duplicated
SELECT * FROM cdc.onboard_match();
SELECT * FROM cdc.onboard_settle();
SELECT cdc_test.assert_count($q$SELECT 1 FROM ns_opportunities WHERE entity_hub_id = '00000000-0000-0000-0000-00000000e101'$q$, 3,
    'NetSuite deals of Acme: the shared one, its own, the one from Salesforce');
SELECT cdc_test.assert_count($q$SELECT 1 FROM sf_opportunities WHERE account_hub_id = '00000000-0000-0000-0000-00000000f101'$q$, 3,
    'Salesforce deals of Acme: the shared one, its own, the one from NetSuite');
SELECT cdc_test.assert_count($q$SELECT 1 FROM sf_opportunities o WHERE account_hub_id = '00000000-0000-0000-0000-00000000f101'
                                  AND cdc.linked_hub_id('sf_opportunities', o.hub_id, 'ns_opportunities') IS NULL$q$, 0, 'every deal linked');
SELECT cdc_test.assert_equals((SELECT description FROM sf_opportunities WHERE hub_id = '00000000-0000-0000-0000-00000000b101'),
    'from NetSuite', 'the shared deal''s blank description filled from NetSuite');
SELECT cdc_test.assert_count($q$SELECT 1 FROM sf_contacts WHERE account_hub_id = '00000000-0000-0000-0000-00000000f101'$q$, 1, 'Acme''s contact folded in, not duplicated');

-- test: match and settle twice change nothing the second time
SELECT * FROM cdc.onboard_match();
SELECT * FROM cdc.onboard_settle();
SELECT cdc_test.snapshot('sf_accounts');
SELECT cdc_test.snapshot('sf_contacts');
SELECT cdc_test.snapshot('ns_customers');
SELECT cdc_test.snapshot('sf_opportunities');
SELECT cdc_test.snapshot('ns_opportunities');
CREATE TEMP TABLE state_before ON COMMIT DROP AS
SELECT (SELECT count(*) FROM cdc.match_candidates) AS candidates, (SELECT count(*) FROM cdc.conflicts) AS conflicts,
       (SELECT count(*) FROM cdc.identity_links) AS links, (SELECT count(*) FROM cdc.audit_log) AS audit;
SELECT cdc_test.assert_count('SELECT * FROM cdc.onboard_match()', 0, 'second match');
SELECT cdc_test.assert_equals((SELECT string_agg(outcome || ' ' || object, ', ') FROM cdc.onboard_settle()),
    'held reviews', 'second settle');
SELECT cdc_test.assert_unchanged('sf_accounts', 'second match and settle');
SELECT cdc_test.assert_unchanged('sf_contacts', 'second match and settle');
SELECT cdc_test.assert_unchanged('ns_customers', 'second match and settle');
SELECT cdc_test.assert_unchanged('sf_opportunities', 'second match and settle');
SELECT cdc_test.assert_unchanged('ns_opportunities', 'second match and settle');
SELECT cdc_test.assert_equals(ROW((SELECT count(*) FROM cdc.match_candidates), (SELECT count(*) FROM cdc.conflicts),
                                  (SELECT count(*) FROM cdc.identity_links), (SELECT count(*) FROM cdc.audit_log))::text,
                              ROW(s.candidates, s.conflicts, s.links, s.audit)::text, 'candidates, conflicts, links, audit')
  FROM state_before s;
SELECT cdc.onboard_begin('cdc_test-sf');
SELECT cdc.onboard_begin('cdc_test-sf');
SELECT cdc.onboard_loaded('cdc_test-sf', 6);
SELECT cdc.onboard_loaded('cdc_test-sf', 6);
SELECT cdc_test.assert_equals((SELECT phase || ' ' || records_loaded FROM cdc.onboarding WHERE connector = 'cdc_test-sf'),
    'loaded 6', 'begin and loaded twice');

-- test: accepting a tie links the chosen candidate, merges the pair and creates the other one
SELECT * FROM cdc.onboard_match();
SELECT * FROM cdc.onboard_settle();
SELECT cdc_test.assert_raises(format('SELECT cdc.match_accept(%s)', (SELECT id FROM cdc.match_review WHERE hub_id = '00000000-0000-0000-0000-00000000f102')),
    'has 2 candidates; pick one with --with', 'a tie needs a choice');
SELECT cdc_test.assert_raises(format('SELECT cdc.match_accept(%s, %L)', (SELECT id FROM cdc.match_review WHERE hub_id = '00000000-0000-0000-0000-00000000f102'),
                                     '00000000-0000-0000-0000-00000000e104'),
    'is not a candidate of match review', 'only a candidate');
CREATE TEMP TABLE accepted ON COMMIT DROP AS
SELECT cdc.match_accept((SELECT id FROM cdc.match_review WHERE hub_id = '00000000-0000-0000-0000-00000000f102'), '00000000-0000-0000-0000-00000000e102', 'cdc_test') AS link;
SELECT cdc_test.assert_equals(link, cdc.link_id_of('sf_accounts', '00000000-0000-0000-0000-00000000f102'), 'link id returned') FROM accepted;
SELECT cdc_test.assert_equals(cdc.linked_hub_id('sf_accounts', '00000000-0000-0000-0000-00000000f102', 'ns_customers'),
    '00000000-0000-0000-0000-00000000e102'::uuid, 'accepted candidate linked');
SELECT cdc_test.assert_equals((SELECT netsuite_id__c FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000f102'),
    '9102', 'pair merged at once (onboarding is over)');
SELECT cdc_test.assert_equals((cdc_test.sf_of('00000000-0000-0000-0000-00000000e103')).name, 'GLOBEX', 'the other candidate created as new');
SELECT cdc_test.assert_count($q$SELECT 1 FROM cdc.match_review WHERE hub_id = '00000000-0000-0000-0000-00000000f102'$q$, 0, 'review closed');
SELECT cdc_test.assert_equals(
    cdc.match_accept((SELECT min(id) FROM cdc.match_candidates WHERE hub_a = '00000000-0000-0000-0000-00000000f102'), '00000000-0000-0000-0000-00000000e102', 'cdc_test'),
    cdc.link_id_of('sf_accounts', '00000000-0000-0000-0000-00000000f102'), 'accepting again returns the same link');

-- test: rejecting a review creates both records as new
SELECT * FROM cdc.onboard_match();
SELECT cdc.match_reject((SELECT id FROM cdc.match_review WHERE hub_id = '00000000-0000-0000-0000-00000000f103'), 'cdc_test');
SELECT cdc.match_reject((SELECT min(id) FROM cdc.match_candidates WHERE hub_a = '00000000-0000-0000-0000-00000000f103'), 'cdc_test');
SELECT cdc_test.assert_null(cdc.linked_hub_id('sf_accounts', '00000000-0000-0000-0000-00000000f103', 'ns_customers'), 'not created while onboarding');
SELECT * FROM cdc.onboard_settle();
SELECT cdc_test.assert_equals((cdc_test.ns_of('00000000-0000-0000-0000-00000000f103')).externalid, 'sf-00000000-0000-0000-0000-00000000f103', 'account created in NetSuite');
SELECT cdc_test.assert_equals((cdc_test.sf_of('00000000-0000-0000-0000-00000000e104')).name, 'Initech', 'customer created in Salesforce');
SELECT cdc_test.assert_count('SELECT * FROM cdc.onboard_match()', 0, 'a rejected pair is not proposed again');

-- test: unlinking a wrong match leaves both records alone and held
SELECT * FROM cdc.onboard_match();
SELECT * FROM cdc.onboard_settle();
SELECT cdc.match_unlink(cdc.link_id_of('sf_accounts', '00000000-0000-0000-0000-00000000f101'), 'cdc_test');
SELECT cdc_test.assert_null(cdc.linked_hub_id('sf_accounts', '00000000-0000-0000-0000-00000000f101', 'ns_customers'), 'unlinked');
SELECT cdc_test.assert_equals((SELECT reason FROM cdc.match_review WHERE hub_id = '00000000-0000-0000-0000-00000000f101'),
    'unlinked', 'in review again');
SELECT cdc_test.assert_equals((SELECT status FROM cdc.match_candidates WHERE hub_a = '00000000-0000-0000-0000-00000000f101' AND hub_b = '00000000-0000-0000-0000-00000000e101' AND status <> 'review'),
    'unlinked', 'the match is marked');
UPDATE sf_accounts SET phone = '(415) 555-0111' WHERE hub_id = '00000000-0000-0000-0000-00000000f101';
UPDATE ns_customers SET phone = '4155550112' WHERE hub_id = '00000000-0000-0000-0000-00000000e101';
SELECT cdc_test.assert_count($q$SELECT 1 FROM ns_customers WHERE externalid = 'sf-00000000-0000-0000-0000-00000000f101'$q$, 0, 'not re-created in NetSuite');
SELECT cdc_test.assert_null(cdc.linked_hub_id('ns_customers', '00000000-0000-0000-0000-00000000e101', 'sf_accounts'), 'not re-created in Salesforce');
SELECT cdc_test.assert_null(netsuite_id__c, 'Salesforce no longer points at the customer') FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000f101';
SELECT cdc_test.assert_raises($s$SELECT cdc.match_unlink('00000000-0000-0000-0000-0000000000ff')$s$, 'no link', 'an unknown link');
SELECT cdc.match_unlink((SELECT link_id FROM cdc.match_candidates WHERE hub_a = '00000000-0000-0000-0000-00000000f101' AND status = 'unlinked'));
SELECT cdc_test.assert_count('SELECT * FROM cdc.onboard_match()', 0, 'an unlinked pair is not matched again');
-- rejecting the review makes them two records, each created on the other side
SELECT cdc.match_reject((SELECT id FROM cdc.match_review WHERE hub_id = '00000000-0000-0000-0000-00000000f101'));
SELECT cdc_test.assert_equals((cdc_test.ns_of('00000000-0000-0000-0000-00000000f101')).externalid, 'sf-00000000-0000-0000-0000-00000000f101', 'account created in NetSuite');
SELECT cdc_test.assert_equals((cdc_test.sf_of('00000000-0000-0000-0000-00000000e101')).name, 'Acme, Inc.', 'customer created in Salesforce');

-- test: accepting an unlinked pair links it again
SELECT * FROM cdc.onboard_match();
SELECT * FROM cdc.onboard_settle();
SELECT cdc.match_unlink(cdc.link_id_of('sf_accounts', '00000000-0000-0000-0000-00000000f101'), 'cdc_test');
SELECT cdc.match_accept((SELECT id FROM cdc.match_review WHERE hub_id = '00000000-0000-0000-0000-00000000f101'));
SELECT cdc_test.assert_equals(cdc.linked_hub_id('sf_accounts', '00000000-0000-0000-0000-00000000f101', 'ns_customers'),
    '00000000-0000-0000-0000-00000000e101'::uuid, 'linked again');
SELECT cdc_test.assert_equals((SELECT netsuite_id__c FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000f101'),
    '9101', 'Salesforce points at the customer again');

-- test: a manual policy keeps both values apart with an open conflict until it is resolved
INSERT INTO cdc.conflict_policies (object, field, policy) VALUES ('sf_accounts', 'website', 'manual')
ON CONFLICT (object, field) DO UPDATE SET policy = 'manual';
UPDATE ns_customers SET url = 'https://acme-corp.example' WHERE hub_id = '00000000-0000-0000-0000-00000000e101';
SELECT * FROM cdc.onboard_match();
SELECT cdc_test.assert_equals((SELECT settlement FROM cdc.onboard_report() WHERE section = 'difference' AND hub_id = '00000000-0000-0000-0000-00000000f101' AND field = 'website'),
    'held for review (manual): both keep their values, conflict open', 'report');
SELECT * FROM cdc.onboard_settle();
SELECT cdc_test.assert_equals((SELECT status || ' ' || decision FROM cdc.conflicts WHERE record_key = '00000000-0000-0000-0000-00000000f101' AND field = 'website'),
    'open held for review', 'open conflict');
-- an edit of another field does not carry the held one across
UPDATE sf_accounts SET billingcity = 'Oakland' WHERE hub_id = '00000000-0000-0000-0000-00000000f101';
UPDATE ns_customers SET phone = '4155550199' WHERE hub_id = '00000000-0000-0000-0000-00000000e101';
SELECT cdc_test.assert_equals((SELECT cdc_test.billing(n) ->> 'city' FROM ns_customers n WHERE hub_id = '00000000-0000-0000-0000-00000000e101'),
    'Oakland', 'other field flows');
SELECT cdc_test.assert_equals((SELECT url FROM ns_customers WHERE hub_id = '00000000-0000-0000-0000-00000000e101'),
    'https://acme-corp.example', 'NetSuite keeps its website');
SELECT cdc_test.assert_equals((SELECT website FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000f101'),
    'www.acme.example', 'Salesforce keeps its website');
SELECT cdc.resolve_conflict(id, '"acme-corp.example"', 'cdc_test')
  FROM cdc.conflicts WHERE record_key = '00000000-0000-0000-0000-00000000f101' AND field = 'website' AND status = 'open';
SELECT cdc_test.assert_equals((SELECT website FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000f101'),
    'acme-corp.example', 'Salesforce takes the decision');
SELECT cdc_test.assert_equals((SELECT cdc.url_key(url) FROM ns_customers WHERE hub_id = '00000000-0000-0000-0000-00000000e101'),
    'https://acme-corp.example', 'NetSuite holds the decision');
