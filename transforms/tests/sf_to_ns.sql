-- Salesforce Account + primary Contact -> NetSuite Customer.
-- Preamble: one account with one contact, as the Salesforce inbound connector writes them.
INSERT INTO sf_accounts (hub_id, id, name, phone, website, billingstreet, billingcity,
                         billingstate, billingpostalcode, billingcountry, createddate)
VALUES ('00000000-0000-0000-0000-00000000a001', '001000000000001AAA', 'Acme Corporation',
        '(415) 555-0100', 'acme.com', E'1 Market St\nSuite 300', 'San Francisco', 'CA', '94105',
        'United States', '2024-01-01');
INSERT INTO sf_contacts (hub_id, id, accountid, firstname, lastname, email, phone, createddate)
VALUES ('00000000-0000-0000-0000-00000000c001', '003000000000001AAA', '001000000000001AAA',
        'Ada', 'Lovelace', 'ada@acme.com', '+1 415 555 0199', '2024-01-02');

-- test: insert creates a matching customer
DO $$
DECLARE n ns_customers := cdc_test.ns_of('00000000-0000-0000-0000-00000000a001');
BEGIN
    PERFORM cdc_test.assert_not_null(n.hub_id, 'linked customer');
    PERFORM cdc_test.assert_equals(n.companyname, 'Acme Corporation', 'companyname');
    PERFORM cdc_test.assert_equals(n.email, 'ada@acme.com', 'email from primary contact');
    PERFORM cdc_test.assert_equals(n.phone, '4155550100', 'phone normalized');
    PERFORM cdc_test.assert_equals(n.url, 'https://acme.com', 'url with scheme');
    PERFORM cdc_test.assert_equals(n.externalid, 'sf-00000000-0000-0000-0000-00000000a001', 'externalid');
    PERFORM cdc_test.assert_false(n.isperson, 'isperson');
    PERFORM cdc_test.assert_false(n.isinactive, 'isinactive');
    PERFORM cdc_test.assert_null(n.internalid, 'internalid before NetSuite assigns it');
    PERFORM cdc_test.assert_equals(n.subsidiary, '1', 'default subsidiary');
    PERFORM cdc_test.assert_equals(cdc_test.billing(n),
        '{"addr1":"1 Market St","addr2":"Suite 300","city":"San Francisco","state":"CA","zip":"94105","country":"US"}'::jsonb,
        'default billing address');
    PERFORM cdc_test.assert_equals(jsonb_array_length(n.addressbook), 1, 'address book entries');
    PERFORM cdc_test.assert_equals(n.addressbook -> 0 ->> 'defaultBilling', 'true', 'entry is default billing');
END $$;
SELECT cdc_test.assert_count(
    $q$SELECT 1 FROM cdc.identity_links WHERE link_id = cdc.link_id_of('sf_accounts', '00000000-0000-0000-0000-00000000a001') AND object = 'ns_customers'$q$,
    1, 'one customer for one account and contact');

-- test: the link records both rows and the Salesforce id
SELECT cdc_test.assert_equals(
    cdc.linked_hub_id('ns_customers', cdc.linked_hub_id('sf_accounts', '00000000-0000-0000-0000-00000000a001', 'ns_customers'), 'sf_accounts'),
    '00000000-0000-0000-0000-00000000a001'::uuid, 'link is symmetric');
SELECT cdc_test.assert_equals(
    (SELECT record_id FROM cdc.identity_links WHERE object = 'sf_accounts' AND hub_id = '00000000-0000-0000-0000-00000000a001'),
    '001000000000001AAA', 'salesforce record id on the link');
SELECT cdc_test.assert_equals(
    (SELECT system FROM cdc.identity_links WHERE object = 'ns_customers'
        AND link_id = cdc.link_id_of('sf_accounts', '00000000-0000-0000-0000-00000000a001')), 'netsuite', 'system of the customer link row');
SELECT cdc_test.assert_count(
    $q$SELECT 1 FROM cdc.identity_links WHERE link_id = cdc.link_id_of('sf_accounts', '00000000-0000-0000-0000-00000000a001')$q$, 2, 'link rows');

-- test: cdcsync_id__c defaults to the hub id
SELECT cdc_test.assert_equals(cdcsync_id__c, hub_id::text, 'account cdcsync_id__c') FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
SELECT cdc_test.assert_equals(cdcsync_id__c, hub_id::text, 'contact cdcsync_id__c') FROM sf_contacts
 WHERE hub_id = '00000000-0000-0000-0000-00000000c001';

-- test: identical account update writes nothing to ns_customers
SELECT cdc_test.snapshot('ns_customers');
UPDATE sf_accounts SET name = name, phone = phone, website = website WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
UPDATE sf_accounts SET systemmodstamp = '2024-02-01', cdc_source_modified_at = '2024-02-01' WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
SELECT cdc_test.assert_unchanged('ns_customers', 'identical account update');

-- test: a hub-made account getting its Salesforce Id records it on the link and writes no customer
INSERT INTO sf_accounts (hub_id, name, phone) VALUES ('00000000-0000-0000-0000-00000000a0b1', 'Hub Made Ltd', '4155550177');
SELECT cdc_test.snapshot('ns_customers');
UPDATE sf_accounts SET id = '001000000000B01AAA' WHERE hub_id = '00000000-0000-0000-0000-00000000a0b1';
SELECT cdc_test.assert_unchanged('ns_customers', 'Id write-back');
SELECT cdc_test.assert_equals(
    (SELECT record_id FROM cdc.identity_links WHERE object = 'sf_accounts' AND hub_id = '00000000-0000-0000-0000-00000000a0b1'),
    '001000000000B01AAA', 'salesforce record id on the link');

-- test: an Id write-back that attaches a waiting contact maps that contact onto the customer
INSERT INTO sf_accounts (hub_id, name) VALUES ('00000000-0000-0000-0000-00000000a0b2', 'Waiting Contact Ltd');
INSERT INTO sf_contacts (hub_id, id, accountid, firstname, lastname, email, createddate)
VALUES ('00000000-0000-0000-0000-00000000c0b2', '003000000000B02AAA', '001000000000B02AAA', 'Grace', 'Hopper', 'grace@example.com', '2024-01-02');
UPDATE sf_accounts SET id = '001000000000B02AAA' WHERE hub_id = '00000000-0000-0000-0000-00000000a0b2';
SELECT cdc_test.assert_equals((cdc_test.ns_of('00000000-0000-0000-0000-00000000a0b2')).email, 'grace@example.com', 'email of the attached contact');

-- test: re-running the mapping on unchanged data writes nothing
SELECT cdc_test.snapshot('ns_customers');
SELECT cdc.sf_account_to_ns('00000000-0000-0000-0000-00000000a001');
SELECT cdc_test.assert_unchanged('ns_customers', 'mapping re-run');
SELECT cdc_test.assert_count(
    $q$SELECT 1 FROM cdc.identity_links WHERE link_id = cdc.link_id_of('sf_accounts', '00000000-0000-0000-0000-00000000a001')$q$,
    2, 'link rows after re-run');

-- test: identical contact update writes nothing to ns_customers
SELECT cdc_test.snapshot('ns_customers');
SELECT cdc_test.snapshot('sf_accounts');
UPDATE sf_contacts SET email = email, title = 'CTO' WHERE hub_id = '00000000-0000-0000-0000-00000000c001';
SELECT cdc_test.assert_unchanged('ns_customers', 'contact update of an unmapped field');
SELECT cdc_test.assert_unchanged('sf_accounts', 'contact update');

-- test: unchanged upsert in the inbound connector's style writes nothing
SELECT cdc_test.snapshot('ns_customers');
INSERT INTO sf_accounts (id, name, phone, website, billingstreet, billingcity, billingstate,
                         billingpostalcode, billingcountry, createddate)
VALUES ('001000000000001AAA', 'Acme Corporation', '(415) 555-0100', 'acme.com',
        E'1 Market St\nSuite 300', 'San Francisco', 'CA', '94105', 'United States', '2024-01-01')
ON CONFLICT (id) DO UPDATE
   SET name = EXCLUDED.name, phone = EXCLUDED.phone, website = EXCLUDED.website
 WHERE (sf_accounts.name, sf_accounts.phone, sf_accounts.website)
       IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.phone, EXCLUDED.website);
SELECT cdc_test.assert_unchanged('ns_customers', 'unchanged upsert');
-- The preamble wrote twice: the account created the customer, the contact added its email.
SELECT cdc_test.assert_equals(cdc_test.writes('ns_customers'), 2::bigint, 'ns_customers writes in the whole test');

-- test: a changed field updates the customer
UPDATE sf_accounts SET name = 'Acme Corp.', website = 'www.acme.example' WHERE id = '001000000000001AAA';
SELECT cdc_test.assert_equals((cdc_test.ns_of(hub_id)).companyname, 'Acme Corp.', 'companyname') FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
SELECT cdc_test.assert_equals((cdc_test.ns_of(hub_id)).url, 'https://www.acme.example', 'url') FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
SELECT cdc_test.assert_count(
    $q$SELECT 1 FROM cdc.identity_links WHERE link_id = cdc.link_id_of('sf_accounts', '00000000-0000-0000-0000-00000000a001') AND object = 'ns_customers'$q$,
    1, 'still one customer');

-- test: company name is cut to NetSuite's 83 characters
UPDATE sf_accounts SET name = repeat('x', 82) || ' Holdings International Limited' WHERE id = '001000000000001AAA';
SELECT cdc_test.assert_equals((cdc_test.ns_of(hub_id)).companyname, repeat('x', 82), 'companyname cut, trailing blank stripped')
  FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
UPDATE sf_accounts SET name = repeat('y', 100) WHERE id = '001000000000001AAA';
SELECT cdc_test.assert_equals(length((cdc_test.ns_of(hub_id)).companyname), 83, 'companyname length') FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000a001';

-- test: phone normalization
UPDATE sf_accounts SET phone = '+49 30 1234' WHERE id = '001000000000001AAA';
SELECT cdc_test.assert_equals((cdc_test.ns_of(hub_id)).phone, '+49301234', 'international phone') FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
SELECT cdc_test.snapshot('ns_customers');
UPDATE sf_accounts SET phone = '+49-30-1234' WHERE id = '001000000000001AAA';
SELECT cdc_test.assert_unchanged('ns_customers', 'same number, other formatting');
SELECT cdc_test.assert_equals(cdc.normalize_phone('(415) 555-0100'), '4155550100', 'normalize_phone us');
SELECT cdc_test.assert_equals(cdc.normalize_phone(' +1 (415) 555-0100 '), '+14155550100', 'normalize_phone leading +');
SELECT cdc_test.assert_null(cdc.normalize_phone(' - '), 'normalize_phone without digits');

-- test: account without phone falls back to the primary contact's phone
UPDATE sf_accounts SET phone = NULL WHERE id = '001000000000001AAA';
SELECT cdc_test.assert_equals((cdc_test.ns_of(hub_id)).phone, '+14155550199', 'contact phone') FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000a001';

-- test: url normalization keeps an existing scheme
UPDATE sf_accounts SET website = 'http://acme.com/shop' WHERE id = '001000000000001AAA';
SELECT cdc_test.assert_equals((cdc_test.ns_of(hub_id)).url, 'http://acme.com/shop', 'url with scheme') FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
UPDATE sf_accounts SET website = '  ' WHERE id = '001000000000001AAA';
SELECT cdc_test.assert_null((cdc_test.ns_of(hub_id)).url, 'blank website') FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000a001';

-- test: country names become ISO codes
UPDATE sf_accounts SET billingcountry = 'USA' WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
SELECT cdc_test.assert_equals(cdc_test.billing(cdc_test.ns_of(hub_id)) ->> 'country', 'US', 'USA') FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
UPDATE sf_accounts SET billingcountry = 'Germany' WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
SELECT cdc_test.assert_equals(cdc_test.billing(cdc_test.ns_of(hub_id)) ->> 'country', 'DE', 'Germany') FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
UPDATE sf_accounts SET billingcountry = 'fr' WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
SELECT cdc_test.assert_equals(cdc_test.billing(cdc_test.ns_of(hub_id)) ->> 'country', 'FR', 'two-letter code passes through') FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
UPDATE sf_accounts SET billingcountry = 'Narnia' WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
SELECT cdc_test.assert_null(cdc_test.billing(cdc_test.ns_of(hub_id)) ->> 'country', 'unknown country') FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
SELECT cdc_test.assert_equals(cdc.country_code('U.S.A.'), 'US', 'U.S.A.');
SELECT cdc_test.assert_equals(cdc.country_code(' united states '), 'US', 'lower case with blanks');
SELECT cdc_test.assert_equals(cdc.country_code('UK'), 'GB', 'UK');
SELECT cdc_test.assert_equals(cdc.country_code('ZZ'), 'ZZ', 'unknown code passes through');

-- test: billing changes touch only the default billing entry
-- NetSuite users added a shipping address; the inbound connector brings it in.
UPDATE ns_customers
   SET addressbook = addressbook || '[{"defaultBilling":false,"defaultShipping":true,"label":"Warehouse","addressBookAddress":{"addr1":"9 Dock Rd","city":"Oakland","country":"US"}}]'
 WHERE hub_id = (cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')).hub_id;
SELECT cdc_test.snapshot('sf_accounts');
UPDATE sf_accounts SET billingstreet = '2 Mission St', billingpostalcode = NULL WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
SELECT cdc_test.assert_equals(cdc_test.billing(cdc_test.ns_of(hub_id)),
    '{"addr1":"2 Mission St","city":"San Francisco","state":"CA","country":"US"}'::jsonb, 'billing entry')
  FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
SELECT cdc_test.assert_equals((cdc_test.ns_of(hub_id)).addressbook -> 1,
    '{"defaultBilling":false,"defaultShipping":true,"label":"Warehouse","addressBookAddress":{"addr1":"9 Dock Rd","city":"Oakland","country":"US"}}'::jsonb,
    'shipping entry untouched') FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000a001';

-- test: billing entry is created only when there is a billing address
INSERT INTO sf_accounts (hub_id, name) VALUES ('00000000-0000-0000-0000-00000000a002', 'No Address Inc');
SELECT cdc_test.assert_equals((cdc_test.ns_of('00000000-0000-0000-0000-00000000a002')).addressbook, '[]'::jsonb, 'empty address book');
UPDATE sf_accounts SET billingcity = 'Berlin', billingcountry = 'Deutschland' WHERE hub_id = '00000000-0000-0000-0000-00000000a002';
SELECT cdc_test.assert_equals((cdc_test.ns_of('00000000-0000-0000-0000-00000000a002')).addressbook,
    '[{"defaultBilling":true,"defaultShipping":false,"label":"Billing","addressBookAddress":{"city":"Berlin","country":"DE"}}]'::jsonb,
    'appended billing entry');

-- test: primary contact is the earliest created non-deleted contact
INSERT INTO sf_contacts (accountid, lastname, email, createddate)
VALUES ('001000000000001AAA', 'Later', 'later@acme.com', '2024-03-01');
SELECT cdc_test.assert_equals((cdc_test.ns_of(hub_id)).email, 'ada@acme.com', 'later contact is not primary') FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
INSERT INTO sf_contacts (hub_id, accountid, lastname, email, createddate)
VALUES ('00000000-0000-0000-0000-00000000c000', '001000000000001AAA', 'Earlier', 'earlier@acme.com', '2023-12-01');
SELECT cdc_test.assert_equals((cdc_test.ns_of(hub_id)).email, 'earlier@acme.com', 'earlier contact becomes primary') FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
UPDATE sf_contacts SET isdeleted = true WHERE hub_id = '00000000-0000-0000-0000-00000000c000';
SELECT cdc_test.assert_equals((cdc_test.ns_of(hub_id)).email, 'ada@acme.com', 'deleted contact is not primary') FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
DELETE FROM sf_contacts WHERE hub_id = '00000000-0000-0000-0000-00000000c001';
SELECT cdc_test.assert_equals((cdc_test.ns_of(hub_id)).email, 'later@acme.com', 'removed contact is not primary') FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000a001';

-- test: primary contact tie is broken by the lowest hub_id
INSERT INTO sf_contacts (hub_id, accountid, lastname, email, createddate) VALUES
    ('00000000-0000-0000-0000-00000000c00f', '001000000000001AAA', 'Tie B', 'b@acme.com', '2024-01-02'),
    ('00000000-0000-0000-0000-00000000c000', '001000000000001AAA', 'Tie A', 'a@acme.com', '2024-01-02');
SELECT cdc_test.assert_equals(cdc.primary_contact_hub_id('00000000-0000-0000-0000-00000000a001'),
    '00000000-0000-0000-0000-00000000c000'::uuid, 'primary contact on a tie');
SELECT cdc_test.assert_equals((cdc_test.ns_of(hub_id)).email, 'a@acme.com', 'email on a tie') FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000a001';

-- test: account without contacts gets the email once a contact arrives
INSERT INTO sf_accounts (hub_id, id, name) VALUES ('00000000-0000-0000-0000-00000000a002', '001000000000002AAA', 'Beta LLC');
SELECT cdc_test.assert_null((cdc_test.ns_of('00000000-0000-0000-0000-00000000a002')).email, 'no contact, no email');
INSERT INTO sf_contacts (accountid, lastname, email) VALUES ('001000000000002AAA', 'Bee', 'bee@beta.example');
SELECT cdc_test.assert_equals((cdc_test.ns_of('00000000-0000-0000-0000-00000000a002')).email, 'bee@beta.example', 'email from new contact');

-- test: a contact that arrives before its account is attached when the account arrives
INSERT INTO sf_contacts (hub_id, accountid, lastname, email)
VALUES ('00000000-0000-0000-0000-00000000c003', '001000000000003AAA', 'Early', 'early@gamma.example');
SELECT cdc_test.assert_null((SELECT account_hub_id FROM sf_contacts WHERE hub_id = '00000000-0000-0000-0000-00000000c003'), 'no parent yet');
INSERT INTO sf_accounts (hub_id, id, name) VALUES ('00000000-0000-0000-0000-00000000a003', '001000000000003AAA', 'Gamma GmbH');
SELECT cdc_test.assert_equals((SELECT account_hub_id FROM sf_contacts WHERE hub_id = '00000000-0000-0000-0000-00000000c003'),
    '00000000-0000-0000-0000-00000000a003'::uuid, 'parent attached');
SELECT cdc_test.assert_equals((cdc_test.ns_of('00000000-0000-0000-0000-00000000a003')).email, 'early@gamma.example', 'email of early contact');

-- test: a contact moving to another account re-maps both accounts
INSERT INTO sf_accounts (hub_id, id, name) VALUES ('00000000-0000-0000-0000-00000000a002', '001000000000002AAA', 'Beta LLC');
UPDATE sf_contacts SET accountid = '001000000000002AAA' WHERE hub_id = '00000000-0000-0000-0000-00000000c001';
SELECT cdc_test.assert_null((cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')).email, 'old account lost its contact');
SELECT cdc_test.assert_equals((cdc_test.ns_of('00000000-0000-0000-0000-00000000a002')).email, 'ada@acme.com', 'new account got it');

-- test: a deleted account makes the customer inactive, an undeleted one active again
UPDATE sf_accounts SET isdeleted = true WHERE id = '001000000000001AAA';
SELECT cdc_test.assert_true((cdc_test.ns_of(hub_id)).isinactive, 'inactive after IsDeleted') FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
SELECT cdc_test.assert_count(
    $q$SELECT 1 FROM cdc.identity_links WHERE link_id = cdc.link_id_of('sf_accounts', '00000000-0000-0000-0000-00000000a001') AND object = 'ns_customers'$q$,
    1, 'customer kept');
UPDATE sf_accounts SET isdeleted = false WHERE id = '001000000000001AAA';
SELECT cdc_test.assert_false((cdc_test.ns_of(hub_id)).isinactive, 'active after undelete') FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000a001';

-- test: a customer made inactive in NetSuite stays inactive on other Salesforce changes
UPDATE ns_customers SET isinactive = true WHERE hub_id = (cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')).hub_id;
UPDATE sf_accounts SET name = 'Acme Renamed' WHERE id = '001000000000001AAA';
SELECT cdc_test.assert_true((cdc_test.ns_of(hub_id)).isinactive, 'still inactive') FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
SELECT cdc_test.assert_equals((cdc_test.ns_of(hub_id)).companyname, 'Acme Renamed', 'rename applied') FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000a001';

-- test: deleting the account row makes the customer inactive, not deleted
DELETE FROM sf_accounts WHERE id = '001000000000001AAA';
SELECT cdc_test.assert_true((cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')).isinactive, 'inactive customer');
SELECT cdc_test.assert_count('SELECT 1 FROM sf_contacts WHERE hub_id = ''00000000-0000-0000-0000-00000000c001''', 0, 'contacts cascade');
SELECT cdc_test.assert_count(
    $q$SELECT 1 FROM cdc.identity_links WHERE link_id = cdc.link_id_of('sf_accounts', '00000000-0000-0000-0000-00000000a001')$q$,
    2, 'link kept for history');

-- test: a deleted account creates no customer
INSERT INTO sf_accounts (hub_id, id, name, isdeleted) VALUES ('00000000-0000-0000-0000-00000000a009', '001000000000009AAA', 'Gone Ltd', true);
SELECT cdc_test.assert_null(cdc.linked_hub_id('sf_accounts', '00000000-0000-0000-0000-00000000a009', 'ns_customers'), 'no linked customer');
SELECT cdc_test.assert_count('SELECT 1 FROM ns_customers WHERE externalid = ''sf-00000000-0000-0000-0000-00000000a009''', 0,
    'no customer for a deleted account');

-- test: an account carrying a NetSuite id adopts that customer
ALTER TABLE ns_customers DISABLE TRIGGER cdc_ns_customers_to_sf;   -- a bulk load without mapping
INSERT INTO ns_customers (hub_id, internalid, companyname) VALUES ('00000000-0000-0000-0000-00000000e001', '777', 'Delta Old Name');
ALTER TABLE ns_customers ENABLE TRIGGER cdc_ns_customers_to_sf;
INSERT INTO sf_accounts (hub_id, id, name, netsuite_id__c) VALUES ('00000000-0000-0000-0000-00000000a004', '001000000000004AAA', 'Delta', '777');
SELECT cdc_test.assert_equals(cdc.linked_hub_id('sf_accounts', '00000000-0000-0000-0000-00000000a004', 'ns_customers'),
    '00000000-0000-0000-0000-00000000e001'::uuid, 'adopted customer');
SELECT cdc_test.assert_equals((SELECT companyname FROM ns_customers WHERE internalid = '777'), 'Delta', 'adopted customer mapped');
SELECT cdc_test.assert_count('SELECT 1 FROM ns_customers WHERE externalid = ''sf-00000000-0000-0000-0000-00000000a004''', 0, 'no duplicate customer');

-- test: deleting an account only makes the customer inactive, every other field stays
-- Salesforce deletes the account's contacts with it and reports both; the customer must keep
-- the email and phone those contacts supplied (issue 7, item 6).
UPDATE sf_accounts SET phone = NULL WHERE hub_id = '00000000-0000-0000-0000-00000000a001';   -- phone from the contact
CREATE TEMP TABLE before_delete ON COMMIT DROP AS
    SELECT * FROM ns_customers WHERE hub_id = (cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')).hub_id;
SELECT cdc_test.assert_equals(email, 'ada@acme.com', 'email before the delete') FROM before_delete;
SELECT cdc_test.assert_equals(phone, '+14155550199', 'contact phone before the delete') FROM before_delete;
UPDATE sf_accounts SET isdeleted = true WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
UPDATE sf_contacts SET isdeleted = true WHERE hub_id = '00000000-0000-0000-0000-00000000c001';
SELECT cdc_test.assert_true((cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')).isinactive, 'inactive');
SELECT cdc_test.assert_equals(to_jsonb(cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')) - 'isinactive',
    (SELECT to_jsonb(b) - 'isinactive' FROM before_delete b), 'customer apart from isinactive');
-- Preamble: 2 writes, the phone now from the contact: 1, the delete: 1, the contacts' delete: 0.
SELECT cdc_test.assert_equals(cdc_test.writes('ns_customers'), 4::bigint, 'ns_customers writes');
-- Undeleted in Salesforce (account and contacts come back): active again, nothing else to write.
UPDATE sf_accounts SET isdeleted = false WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
UPDATE sf_contacts SET isdeleted = false WHERE hub_id = '00000000-0000-0000-0000-00000000c001';
SELECT cdc_test.assert_equals(to_jsonb(cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')),
    (SELECT to_jsonb(b) FROM before_delete b), 'customer after the undelete');
SELECT cdc_test.assert_equals(cdc_test.writes('ns_customers'), 5::bigint, 'ns_customers writes after the undelete');

-- test: purging an account row (its contacts cascade) keeps the customer's fields
CREATE TEMP TABLE before_purge ON COMMIT DROP AS
    SELECT * FROM ns_customers WHERE hub_id = (cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')).hub_id;
DELETE FROM sf_accounts WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
SELECT cdc_test.assert_equals(to_jsonb(cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')) - 'isinactive',
    (SELECT to_jsonb(b) - 'isinactive' FROM before_purge b), 'customer apart from isinactive');
SELECT cdc_test.assert_true((cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')).isinactive, 'inactive');

-- test: a contact's last name differing only in blanks writes nothing to an individual
INSERT INTO ns_customers (hub_id, internalid, isperson, firstname, lastname, email)
VALUES ('00000000-0000-0000-0000-00000000e010', '6010', true, 'Grace', 'Hopper', 'grace@navy.example');
SELECT cdc_test.snapshot('ns_customers');
UPDATE sf_contacts SET lastname = 'Hopper ', firstname = ' Grace'
 WHERE hub_id = (cdc_test.primary_contact((cdc_test.sf_of('00000000-0000-0000-0000-00000000e010')).hub_id)).hub_id;
SELECT cdc_test.assert_unchanged('ns_customers', 'last and first name differing only in blanks');
UPDATE sf_contacts SET lastname = 'Murray Hopper '
 WHERE hub_id = (cdc_test.primary_contact((cdc_test.sf_of('00000000-0000-0000-0000-00000000e010')).hub_id)).hub_id;
SELECT cdc_test.assert_equals(lastname, 'Murray Hopper', 'a real change arrives trimmed')
  FROM ns_customers WHERE hub_id = '00000000-0000-0000-0000-00000000e010';

-- test: NULL and blank values are the same on every mapped Salesforce field
INSERT INTO sf_accounts (hub_id, id, name, createddate)
VALUES ('00000000-0000-0000-0000-00000000a005', '001000000000005AAA', 'Blank Co', '2024-01-01');
INSERT INTO sf_contacts (hub_id, id, accountid, lastname, createddate)
VALUES ('00000000-0000-0000-0000-00000000c005', '003000000000005AAA', '001000000000005AAA', 'Blank', '2024-01-02');
SELECT cdc_test.snapshot('ns_customers');
UPDATE sf_accounts SET phone = '', website = ' ', billingstreet = E' \n ', billingcity = '', billingstate = ' ',
                       billingpostalcode = '', billingcountry = ''
 WHERE hub_id = '00000000-0000-0000-0000-00000000a005';
UPDATE sf_contacts SET email = ' ', phone = '', firstname = ''
 WHERE hub_id = '00000000-0000-0000-0000-00000000c005';
SELECT cdc_test.assert_unchanged('ns_customers', 'blank instead of NULL');
DO $$
DECLARE n ns_customers := cdc_test.ns_of('00000000-0000-0000-0000-00000000a005');
BEGIN
    PERFORM cdc_test.assert_null(n.email, 'email');
    PERFORM cdc_test.assert_null(n.phone, 'phone');
    PERFORM cdc_test.assert_null(n.url, 'url');
    PERFORM cdc_test.assert_equals(n.addressbook, '[]'::jsonb, 'no billing entry for a blank address');
END $$;

-- test: a contact that is not primary moves between accounts without any customer write
INSERT INTO sf_accounts (hub_id, id, name) VALUES ('00000000-0000-0000-0000-00000000a002', '001000000000002AAA', 'Beta LLC');
INSERT INTO sf_contacts (hub_id, accountid, lastname, email, createddate) VALUES
    ('00000000-0000-0000-0000-00000000c021', '001000000000002AAA', 'Beta First', 'first@beta.example', '2023-01-01'),
    ('00000000-0000-0000-0000-00000000c022', '001000000000001AAA', 'Acme Later', 'later@acme.com', '2024-06-01');
SELECT cdc_test.snapshot('ns_customers');
UPDATE sf_contacts SET accountid = '001000000000002AAA' WHERE hub_id = '00000000-0000-0000-0000-00000000c022';
SELECT cdc_test.assert_equals((SELECT account_hub_id FROM sf_contacts WHERE hub_id = '00000000-0000-0000-0000-00000000c022'),
    '00000000-0000-0000-0000-00000000a002'::uuid, 'moved');
SELECT cdc_test.assert_unchanged('ns_customers', 'a contact that is primary on neither account moved');

-- test: the primary contact moving to another account writes each customer once
INSERT INTO sf_accounts (hub_id, id, name) VALUES ('00000000-0000-0000-0000-00000000a002', '001000000000002AAA', 'Beta LLC');
SELECT cdc_test.assert_null((cdc_test.ns_of('00000000-0000-0000-0000-00000000a002')).email, 'no contact yet');
SELECT cdc_test.assert_equals(cdc_test.writes('ns_customers'), 3::bigint, 'writes before the move');
UPDATE sf_contacts SET accountid = '001000000000002AAA' WHERE hub_id = '00000000-0000-0000-0000-00000000c001';
SELECT cdc_test.assert_equals(cdc_test.writes('ns_customers'), 5::bigint, 'one write per customer');
DO $$
DECLARE
    old_n ns_customers := cdc_test.ns_of('00000000-0000-0000-0000-00000000a001');
    new_n ns_customers := cdc_test.ns_of('00000000-0000-0000-0000-00000000a002');
BEGIN
    PERFORM cdc_test.assert_null(old_n.email, 'old account has no contact left');
    PERFORM cdc_test.assert_equals(old_n.phone, '4155550100', 'old account keeps its own phone');
    PERFORM cdc_test.assert_equals(new_n.email, 'ada@acme.com', 'email follows the contact');
    PERFORM cdc_test.assert_equals(new_n.phone, '+14155550199', 'the contact phone stands in for the missing account phone');
END $$;
-- Moving it back restores both.
UPDATE sf_contacts SET accountid = '001000000000001AAA' WHERE hub_id = '00000000-0000-0000-0000-00000000c001';
SELECT cdc_test.assert_equals((cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')).email, 'ada@acme.com', 'moved back');
SELECT cdc_test.assert_null((cdc_test.ns_of('00000000-0000-0000-0000-00000000a002')).phone, 'no phone without a contact');

-- test: deleting an account whose customer NetSuite already made inactive writes nothing
UPDATE ns_customers SET isinactive = true WHERE hub_id = (cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')).hub_id;
SELECT cdc_test.snapshot('ns_customers');
UPDATE sf_accounts SET isdeleted = true WHERE hub_id = '00000000-0000-0000-0000-00000000a001';
UPDATE sf_contacts SET isdeleted = true WHERE hub_id = '00000000-0000-0000-0000-00000000c001';
SELECT cdc_test.assert_unchanged('ns_customers', 'delete of an account whose customer is inactive');
SELECT cdc_test.assert_equals((cdc_test.ns_of('00000000-0000-0000-0000-00000000a001')).email, 'ada@acme.com', 'email kept');
