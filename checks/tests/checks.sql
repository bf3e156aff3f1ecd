-- The shipped checks (checks/*.sql), each read through its view cdc_checks.<name>, which the
-- harness creates from the working copy. Every test looks at its own rows only (hub ids
-- 00000000-0000-0000-0000-0000000c....): under --in-place the hub's own rows are there too.
-- Preamble: onboarding, so the transforms create no counterparts of the rows inserted here.
SELECT cdc.onboard_begin('cdc_test-sf');
SELECT cdc.onboard_begin('cdc_test-ns');
CREATE TEMP VIEW our_rows AS SELECT '00000000-0000-0000-0000-0000000c%' AS pattern;

-- test: customers without an email are listed, with blank ones; inactive customers are not
INSERT INTO ns_customers (hub_id, internalid, companyname, email, isinactive)
VALUES ('00000000-0000-0000-0000-0000000c0e01', 'c901', 'No Mail Inc', NULL, false),
       ('00000000-0000-0000-0000-0000000c0e02', 'c902', 'Blank Mail Inc', '  ', false),
       ('00000000-0000-0000-0000-0000000c0e03', 'c903', 'Has Mail Inc', 'ap@hasmail.example', false),
       ('00000000-0000-0000-0000-0000000c0e04', 'c904', 'Gone Inc', NULL, true);
INSERT INTO ns_customers (hub_id, internalid, isperson, firstname, lastname, email)
VALUES ('00000000-0000-0000-0000-0000000c0e05', 'c905', true, 'Ada', 'Lovelace', NULL);
SELECT cdc_test.assert_equals(
    (SELECT array_agg(name ORDER BY hub_id) FROM cdc_checks.customers_without_email WHERE hub_id::text LIKE (SELECT pattern FROM our_rows)),
    ARRAY['No Mail Inc', 'Blank Mail Inc', 'Ada Lovelace'], 'customers listed, a person by name');

-- test: companies sharing a website domain are listed per system
INSERT INTO sf_accounts (hub_id, id, name, website)
VALUES ('00000000-0000-0000-0000-0000000c0a01', '001C0A01', 'Dup One', 'https://www.dup-check.example/about'),
       ('00000000-0000-0000-0000-0000000c0a02', '001C0A02', 'Dup Two', 'DUP-CHECK.example'),
       ('00000000-0000-0000-0000-0000000c0a03', '001C0A03', 'Single', 'single-check.example');
INSERT INTO sf_accounts (hub_id, id, name, website, isdeleted)
VALUES ('00000000-0000-0000-0000-0000000c0a04', '001C0A04', 'Dup Deleted', 'dup-check.example', true);
INSERT INTO ns_customers (hub_id, internalid, companyname, url)
VALUES ('00000000-0000-0000-0000-0000000c0e11', 'c911', 'Dup One', 'https://dup-check.example');
SELECT cdc_test.assert_count(
    $q$SELECT 1 FROM cdc_checks.shared_website_domains WHERE domain IN ('dup-check.example', 'single-check.example')$q$,
    1, 'one shared domain (the NetSuite side has one customer on it; a deleted account does not count)');
SELECT cdc_test.assert_equals(
    (SELECT system || ' ' || companies || ' ' || array_to_string(names, ', ') FROM cdc_checks.shared_website_domains WHERE domain = 'dup-check.example'),
    'salesforce 2 Dup One, Dup Two', 'the shared domain');

-- test: a live account linked to an inactive customer is listed; a deleted one is not
INSERT INTO sf_accounts (hub_id, id, name, isdeleted)
VALUES ('00000000-0000-0000-0000-0000000c0a21', '001C0A21', 'Live Account', false),
       ('00000000-0000-0000-0000-0000000c0a22', '001C0A22', 'Deleted Account', true),
       ('00000000-0000-0000-0000-0000000c0a23', '001C0A23', 'Active Pair', false);
INSERT INTO ns_customers (hub_id, internalid, companyname, isinactive)
VALUES ('00000000-0000-0000-0000-0000000c0e21', 'c921', 'Live Account', true),
       ('00000000-0000-0000-0000-0000000c0e22', 'c922', 'Deleted Account', true),
       ('00000000-0000-0000-0000-0000000c0e23', 'c923', 'Active Pair', false);
-- Linked as onboarding's matching would link them.
SELECT cdc.link('sf_accounts', ('00000000-0000-0000-0000-0000000c0a2' || n)::uuid, 'ns_customers', ('00000000-0000-0000-0000-0000000c0e2' || n)::uuid)
  FROM generate_series(1, 3) n;
SELECT cdc_test.assert_equals(
    (SELECT array_agg(account_name ORDER BY account_hub_id) FROM cdc_checks.links_to_inactive_customers
      WHERE account_hub_id::text LIKE (SELECT pattern FROM our_rows)),
    ARRAY['Live Account'], 'accounts linked to inactive customers');

-- test: phones that do not normalize to 7-15 digits are listed, formatted ones are not
INSERT INTO sf_accounts (hub_id, id, name, phone)
VALUES ('00000000-0000-0000-0000-0000000c0a31', '001C0A31', 'Formatted', '(415) 555-0100'),
       ('00000000-0000-0000-0000-0000000c0a32', '001C0A32', 'Words', 'n/a'),
       ('00000000-0000-0000-0000-0000000c0a33', '001C0A33', 'Short', '555-01'),
       ('00000000-0000-0000-0000-0000000c0a34', '001C0A34', 'International', '+49 30 1234567');
INSERT INTO sf_contacts (hub_id, id, account_hub_id, lastname, phone)
VALUES ('00000000-0000-0000-0000-0000000c0c31', '003C0C31', '00000000-0000-0000-0000-0000000c0a31', 'Long', '+1 415 555 0100 1234 5678');
INSERT INTO ns_customers (hub_id, internalid, companyname, phone)
VALUES ('00000000-0000-0000-0000-0000000c0e31', 'c931', 'Digits', '4155550100'),
       ('00000000-0000-0000-0000-0000000c0e32', 'c932', 'Letters', 'call reception');
SELECT cdc_test.assert_equals(
    (SELECT array_agg(object || ':' || phone ORDER BY hub_id) FROM cdc_checks.phones_not_normalized
      WHERE hub_id::text LIKE (SELECT pattern FROM our_rows)),
    ARRAY['sf_accounts:n/a', 'sf_accounts:555-01', 'sf_contacts:+1 415 555 0100 1234 5678', 'ns_customers:call reception'],
    'phones that do not normalize');
