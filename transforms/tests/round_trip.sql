-- Round-trip stability: the other system reporting our own write back (an echo), even after
-- normalizing it, must change nothing on the side the change came from. Loop prevention
-- relies on this: an echo that writes nothing produces no WAL and no further outbound call.
-- Preamble: a Salesforce account whose values all need NetSuite-side normalization.
INSERT INTO sf_accounts (hub_id, id, name, phone, website, billingstreet, billingcity,
                         billingstate, billingpostalcode, billingcountry, createddate)
VALUES ('00000000-0000-0000-0000-00000000a001', '001000000000001AAA',
        'The Very Long Named Acme Corporation of Greater San Francisco Bay Area and Surroundings, Inc.',
        '(415) 555-0100', 'acme.com', E'1 Market St\nSuite 300', 'San Francisco', 'CA', '94105',
        'USA', '2024-01-01');
INSERT INTO sf_contacts (hub_id, id, accountid, firstname, lastname, email, createddate)
VALUES ('00000000-0000-0000-0000-00000000c001', '003000000000001AAA', '001000000000001AAA',
        'Ada', 'Lovelace', 'Ada@Acme.com', '2024-01-02');

-- test: the preamble needed normalization in NetSuite
SELECT cdc_test.assert_equals(length(name), 93, 'Salesforce name longer than 83') FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
SELECT cdc_test.assert_equals(length(companyname), 83, 'companyname cut') FROM ns_customers WHERE hub_id = (cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')).hub_id;
SELECT cdc_test.assert_equals(phone, '4155550100', 'phone digits') FROM ns_customers WHERE hub_id = (cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')).hub_id;

-- test: an identical NetSuite echo changes no Salesforce row
SELECT cdc_test.snapshot('sf_accounts');
SELECT cdc_test.snapshot('sf_contacts');
UPDATE ns_customers SET companyname = companyname, phone = phone, url = url, email = email,
                        addressbook = addressbook
 WHERE hub_id = (cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')).hub_id;
SELECT cdc.ns_customer_to_sf(hub_id) FROM ns_customers WHERE hub_id = (cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')).hub_id;     -- and the mapping itself, forced
SELECT cdc_test.assert_unchanged('sf_accounts', 'identical NetSuite echo');
SELECT cdc_test.assert_unchanged('sf_contacts', 'identical NetSuite echo');

-- test: NetSuite's echo with its ids and its own formatting only sets netsuite_id__c
SELECT cdc_test.snapshot('sf_contacts');
UPDATE ns_customers
   SET internalid = '5001', entityid = 'CUST5001', datecreated = '2024-01-03',
       lastmodifieddate = '2024-01-03', cdc_source_modified_at = '2024-01-03',
       phone = '(415) 555-0100',                 -- NetSuite formats the number it got
       email = 'ada@acme.com',                   -- and lower-cases the email
       url = 'https://acme.com',
       addressbook = jsonb_set(addressbook, '{0,addressBookAddress,addressee}', '"Acme"')
 WHERE hub_id = (cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')).hub_id;
DO $$
DECLARE a sf_accounts := (SELECT a FROM sf_accounts a WHERE hub_id = '00000000-0000-0000-0000-00000000a001');
BEGIN
    PERFORM cdc_test.assert_equals(a.netsuite_id__c, '5001', 'netsuite_id__c from internalid');
    PERFORM cdc_test.assert_equals(length(a.name), 93, 'long Salesforce name kept');
    PERFORM cdc_test.assert_equals(a.phone, '(415) 555-0100', 'Salesforce phone formatting kept');
    PERFORM cdc_test.assert_equals(a.website, 'acme.com', 'website without scheme kept');
    PERFORM cdc_test.assert_equals(a.billingcountry, 'USA', 'free-text country kept');
    PERFORM cdc_test.assert_equals(a.billingstreet, E'1 Market St\nSuite 300', 'street kept');
END $$;
SELECT cdc_test.assert_unchanged('sf_contacts', 'email differing only in case');
SELECT cdc_test.assert_equals(record_id, '5001', 'link got the NetSuite id')
  FROM cdc.identity_links WHERE object = 'ns_customers' AND hub_id = (cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')).hub_id;

-- test: the Salesforce echo of netsuite_id__c changes no NetSuite row
UPDATE ns_customers SET internalid = '5001', phone = '(415) 555-0100' WHERE hub_id = (cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')).hub_id;
SELECT cdc_test.snapshot('ns_customers');
UPDATE sf_accounts SET netsuite_id__c = '5001', systemmodstamp = '2024-01-04' WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
SELECT cdc.sf_account_to_ns(hub_id) FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
SELECT cdc_test.assert_unchanged('ns_customers', 'Salesforce echo');
SELECT cdc_test.assert_equals(phone, '(415) 555-0100', 'NetSuite phone formatting kept') FROM ns_customers WHERE hub_id = (cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')).hub_id;

-- test: a NetSuite-originated customer survives the Salesforce echo
INSERT INTO ns_customers (hub_id, internalid, companyname, email, phone, url, addressbook)
VALUES ('00000000-0000-0000-0000-00000000e002', '5002', 'Northwind Traders', 'orders@northwind.example',
        '+1 (206) 555-0100', 'northwind.example',
        '[{"defaultBilling":true,"defaultShipping":true,"label":"HQ","addressBookAddress":{"addr1":"100 Pine St","city":"Seattle","zip":"98101","country":"GB"}}]');
SELECT cdc_test.snapshot('ns_customers');
-- Salesforce created both records and reports them back with its ids and stamps.
UPDATE sf_accounts SET id = '001000000000002AAA', createddate = '2024-01-05', systemmodstamp = '2024-01-05'
 WHERE hub_id = cdc.linked_hub_id('ns_customers', '00000000-0000-0000-0000-00000000e002', 'sf_accounts');
UPDATE sf_contacts SET id = '003000000000002AAA', accountid = '001000000000002AAA', createddate = '2024-01-05'
 WHERE account_hub_id = cdc.linked_hub_id('ns_customers', '00000000-0000-0000-0000-00000000e002', 'sf_accounts');
SELECT cdc_test.assert_unchanged('ns_customers', 'Salesforce echo of a NetSuite-originated customer');
SELECT cdc_test.assert_equals(billingcountry, 'United Kingdom', 'country name') FROM sf_accounts WHERE id = '001000000000002AAA';
SELECT cdc_test.assert_equals(website, 'northwind.example', 'website as NetSuite has it') FROM sf_accounts WHERE id = '001000000000002AAA';

-- test: an individual survives the Salesforce echo
INSERT INTO ns_customers (hub_id, internalid, isperson, firstname, lastname, email)
VALUES ('00000000-0000-0000-0000-00000000e003', '5003', true, 'Grace', 'Hopper', 'grace@navy.example');
SELECT cdc_test.snapshot('ns_customers');
UPDATE sf_accounts SET id = '001000000000003AAA'
 WHERE hub_id = cdc.linked_hub_id('ns_customers', '00000000-0000-0000-0000-00000000e003', 'sf_accounts');
UPDATE sf_contacts SET id = '003000000000003AAA', title = 'Rear Admiral'
 WHERE account_hub_id = cdc.linked_hub_id('ns_customers', '00000000-0000-0000-0000-00000000e003', 'sf_accounts');
SELECT cdc_test.assert_unchanged('ns_customers', 'Salesforce echo of an individual');

-- test: placeholders made for Salesforce are not sent back to NetSuite
INSERT INTO ns_customers (hub_id, internalid, isperson, firstname, companyname)
VALUES ('00000000-0000-0000-0000-00000000e004', '5004', true, 'Cher', 'Cher Music');
SELECT cdc_test.snapshot('ns_customers');
SELECT cdc.sf_account_to_ns(cdc.linked_hub_id('ns_customers', '00000000-0000-0000-0000-00000000e004', 'sf_accounts'));
UPDATE sf_contacts SET id = '003000000000004AAA'
 WHERE account_hub_id = cdc.linked_hub_id('ns_customers', '00000000-0000-0000-0000-00000000e004', 'sf_accounts');
SELECT cdc_test.assert_unchanged('ns_customers', 'lastname stand-in');

-- test: a change reaches the other side once and does not bounce back
-- pg_trigger_depth() = 1 guard: the customer written by the transform does not map back.
SELECT cdc_test.assert_equals(cdc_test.writes('sf_accounts'), 1::bigint, 'sf_accounts writes so far (the insert)');
UPDATE sf_accounts SET website = 'acme.example' WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
SELECT cdc_test.assert_equals(cdc_test.writes('sf_accounts'), 2::bigint, 'only the inbound write touched sf_accounts');
SELECT cdc_test.assert_equals(url, 'https://acme.example', 'url') FROM ns_customers WHERE hub_id = (cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')).hub_id;
SELECT cdc_test.assert_equals(website, 'acme.example', 'website not rewritten by a bounce') FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000a001';

-- test: +1 415-555-0100 and NetSuite's 4155550100 are the same phone
-- Salesforce users retype the number with its country code: not a change for NetSuite.
SELECT cdc_test.snapshot('ns_customers');
UPDATE sf_accounts SET phone = '+1 415-555-0100' WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
SELECT cdc_test.assert_unchanged('ns_customers', 'same number with its country code');
-- NetSuite reports its 10 digits back (an echo, or any other field's change): Salesforce keeps its form.
SELECT cdc_test.snapshot('sf_accounts');
UPDATE ns_customers SET phone = '4155550100', lastmodifieddate = '2024-01-06', cdc_source_modified_at = '2024-01-06'
 WHERE hub_id = (cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')).hub_id;
SELECT cdc.ns_customer_to_sf((cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')).hub_id);
SELECT cdc_test.assert_unchanged('sf_accounts', 'NetSuite echo of the national form');
SELECT cdc_test.assert_equals(phone, '+1 415-555-0100', 'Salesforce value kept') FROM sf_accounts
 WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
-- And the other way round: NetSuite holding +14155550100 against Salesforce's (415) 555-0100.
UPDATE ns_customers SET phone = '+1 (415) 555-0100'
 WHERE hub_id = (cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')).hub_id;
SELECT cdc_test.assert_unchanged('sf_accounts', 'NetSuite value with the country code');
SELECT cdc_test.assert_equals(cdc.phone_key('1-415-555-0100'), '4155550100', 'phone_key 1-prefixed');
SELECT cdc_test.assert_equals(cdc.phone_key('+49 30 1234'), '+49301234', 'phone_key international');
SELECT cdc_test.assert_equals(cdc.phone_key('+1 415 555 01001'), '+141555501001', 'phone_key not a North American number');
-- A different number is still a change.
UPDATE sf_accounts SET phone = '+1 415-555-0199' WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
SELECT cdc_test.assert_equals(phone, '+14155550199', 'changed number') FROM ns_customers
 WHERE hub_id = (cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')).hub_id;

-- test: a NetSuite company known only by its entityId keeps an empty companyName
-- Account.Name is required, so Salesforce gets the entityId as a stand-in; its echo is no name.
INSERT INTO ns_customers (hub_id, internalid, entityid, email)
VALUES ('00000000-0000-0000-0000-00000000e011', '5011', 'CUST-5011', 'ap@nameless.example');
SELECT cdc_test.assert_equals((cdc_test.sf_of('00000000-0000-0000-0000-00000000e011')).name, 'CUST-5011', 'stand-in name');
SELECT cdc_test.snapshot('ns_customers');
UPDATE sf_accounts SET id = '001000000000011AAA', systemmodstamp = '2024-01-07'
 WHERE hub_id = (cdc_test.sf_of('00000000-0000-0000-0000-00000000e011')).hub_id;
SELECT cdc_test.assert_unchanged('ns_customers', 'Salesforce echo of a stand-in name');
UPDATE sf_accounts SET name = 'Nameless Ltd' WHERE id = '001000000000011AAA';
SELECT cdc_test.assert_equals(companyname, 'Nameless Ltd', 'a real name is sent')
  FROM ns_customers WHERE hub_id = '00000000-0000-0000-0000-00000000e011';

-- test: a website differing only in the case of its host or a trailing slash is the same
SELECT cdc_test.snapshot('ns_customers');
UPDATE sf_accounts SET website = 'ACME.com/' WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
SELECT cdc_test.assert_unchanged('ns_customers', 'website differing only in host case and trailing slash');
SELECT cdc_test.snapshot('sf_accounts');
UPDATE ns_customers SET url = 'HTTPS://acme.com'
 WHERE hub_id = (cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')).hub_id;
SELECT cdc_test.assert_unchanged('sf_accounts', 'url differing only in scheme case');
UPDATE sf_accounts SET website = 'acme.com/shop' WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
SELECT cdc_test.assert_equals(url, 'https://acme.com/shop', 'a path is a change') FROM ns_customers
 WHERE hub_id = (cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')).hub_id;
