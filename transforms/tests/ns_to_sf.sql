-- NetSuite Customer -> Salesforce Account + Contact.
-- Preamble: a company customer as the NetSuite inbound connector writes it, with a default
-- billing address and a separate shipping address.
INSERT INTO ns_customers (hub_id, internalid, entityid, companyname, email, phone, url,
                          subsidiary, addressbook, datecreated)
VALUES ('00000000-0000-0000-0000-00000000e001', '1001', 'CUST-1001', 'Northwind Traders',
        'orders@northwind.example', '(206) 555-0100', 'https://northwind.example', '1',
        '[{"defaultBilling":false,"defaultShipping":true,"label":"Dock",
           "addressBookAddress":{"addr1":"9 Pier Rd","city":"Tacoma","state":"WA","zip":"98401","country":"US"}},
          {"defaultBilling":true,"defaultShipping":false,"label":"Billing",
           "addressBookAddress":{"addr1":"100 Pine St","addr2":"Floor 2","city":"Seattle","state":"WA","zip":"98101","country":"US"}}]',
        '2024-01-01');

-- test: a customer creates an account and a contact
DO $$
DECLARE
    a sf_accounts := cdc_test.sf_of('00000000-0000-0000-0000-00000000e001');
    c sf_contacts;
BEGIN
    PERFORM cdc_test.assert_not_null(a.hub_id, 'linked account');
    PERFORM cdc_test.assert_equals(a.name, 'Northwind Traders', 'name');
    PERFORM cdc_test.assert_equals(a.phone, '(206) 555-0100', 'phone');
    PERFORM cdc_test.assert_equals(a.website, 'https://northwind.example', 'website');
    PERFORM cdc_test.assert_equals(a.billingstreet, E'100 Pine St\nFloor 2', 'billingstreet from the default billing entry');
    PERFORM cdc_test.assert_equals(a.billingcity, 'Seattle', 'billingcity');
    PERFORM cdc_test.assert_equals(a.billingstate, 'WA', 'billingstate');
    PERFORM cdc_test.assert_equals(a.billingpostalcode, '98101', 'billingpostalcode');
    PERFORM cdc_test.assert_equals(a.billingcountry, 'United States', 'billingcountry');
    PERFORM cdc_test.assert_null(a.shippingstreet, 'shipping is not mapped');
    PERFORM cdc_test.assert_equals(a.netsuite_id__c, '1001', 'netsuite_id__c');
    PERFORM cdc_test.assert_false(a.isdeleted, 'isdeleted');
    PERFORM cdc_test.assert_null(a.id, 'Salesforce Id before Salesforce assigns it');
    PERFORM cdc_test.assert_equals(a.cdcsync_id__c, a.hub_id::text, 'cdcsync_id__c');

    c := cdc_test.primary_contact(a.hub_id);
    PERFORM cdc_test.assert_not_null(c.hub_id, 'contact');
    PERFORM cdc_test.assert_equals(c.lastname, 'Northwind Traders', 'LastName falls back to companyname');
    PERFORM cdc_test.assert_null(c.firstname, 'firstname');
    PERFORM cdc_test.assert_equals(c.email, 'orders@northwind.example', 'contact email');
    PERFORM cdc_test.assert_equals(c.cdcsync_id__c, c.hub_id::text, 'contact cdcsync_id__c');
END $$;
SELECT cdc_test.assert_count(
    $q$SELECT 1 FROM cdc.identity_links WHERE link_id = cdc.link_id_of('ns_customers', '00000000-0000-0000-0000-00000000e001') AND object = 'sf_accounts'$q$,
    1, 'one account');
SELECT cdc_test.assert_count(
    $q$SELECT 1 FROM sf_contacts WHERE account_hub_id = cdc.linked_hub_id('ns_customers', '00000000-0000-0000-0000-00000000e001', 'sf_accounts')$q$,
    1, 'one contact');
SELECT cdc_test.assert_equals(
    (SELECT record_id FROM cdc.identity_links WHERE object = 'ns_customers' AND hub_id = '00000000-0000-0000-0000-00000000e001'),
    '1001', 'netsuite record id on the link');

-- test: identical customer update writes nothing to Salesforce tables
SELECT cdc_test.snapshot('sf_accounts');
SELECT cdc_test.snapshot('sf_contacts');
UPDATE ns_customers SET companyname = companyname, email = email, addressbook = addressbook WHERE hub_id = '00000000-0000-0000-0000-00000000e001';
UPDATE ns_customers SET lastmodifieddate = '2024-02-01', cdc_source_modified_at = '2024-02-01' WHERE hub_id = '00000000-0000-0000-0000-00000000e001';
SELECT cdc.ns_customer_to_sf('00000000-0000-0000-0000-00000000e001');
SELECT cdc_test.assert_unchanged('sf_accounts', 'identical customer update');
SELECT cdc_test.assert_unchanged('sf_contacts', 'identical customer update');

-- test: changed fields update account and contact
UPDATE ns_customers SET companyname = 'Northwind Ltd', email = 'ap@northwind.example', url = 'http://northwind.example/en'
 WHERE hub_id = '00000000-0000-0000-0000-00000000e001';
SELECT cdc_test.assert_equals((cdc_test.sf_of(hub_id)).name, 'Northwind Ltd', 'name') FROM ns_customers WHERE hub_id = '00000000-0000-0000-0000-00000000e001';
SELECT cdc_test.assert_equals((cdc_test.primary_contact((cdc_test.sf_of(hub_id)).hub_id)).email,
    'ap@northwind.example', 'email') FROM ns_customers WHERE hub_id = '00000000-0000-0000-0000-00000000e001';
SELECT cdc_test.assert_equals((cdc_test.sf_of(hub_id)).website, 'http://northwind.example/en', 'website') FROM ns_customers WHERE hub_id = '00000000-0000-0000-0000-00000000e001';
SELECT cdc_test.assert_equals((cdc_test.primary_contact((cdc_test.sf_of('00000000-0000-0000-0000-00000000e001')).hub_id)).lastname,
    'Northwind Traders', 'company contact name untouched');

-- test: only the default billing entry feeds Billing fields
SELECT cdc_test.snapshot('sf_accounts');
UPDATE ns_customers SET addressbook = jsonb_set(addressbook, '{0,addressBookAddress,city}', '"Olympia"') WHERE hub_id = '00000000-0000-0000-0000-00000000e001';
SELECT cdc_test.assert_unchanged('sf_accounts', 'shipping entry change');
UPDATE ns_customers SET addressbook = jsonb_set(addressbook, '{1,addressBookAddress}',
    '{"addr1":"1 Main St","city":"Bonn","zip":"53111","country":"DE"}') WHERE hub_id = '00000000-0000-0000-0000-00000000e001';
SELECT cdc_test.assert_equals((cdc_test.sf_of(hub_id)).billingstreet, '1 Main St', 'billingstreet') FROM ns_customers WHERE hub_id = '00000000-0000-0000-0000-00000000e001';
SELECT cdc_test.assert_equals((cdc_test.sf_of(hub_id)).billingcountry, 'Germany', 'billingcountry') FROM ns_customers WHERE hub_id = '00000000-0000-0000-0000-00000000e001';
SELECT cdc_test.assert_null((cdc_test.sf_of(hub_id)).billingstate, 'billingstate removed') FROM ns_customers WHERE hub_id = '00000000-0000-0000-0000-00000000e001';
UPDATE ns_customers SET addressbook = jsonb_set(addressbook, '{1,addressBookAddress,country}', '"ZZ"') WHERE hub_id = '00000000-0000-0000-0000-00000000e001';
SELECT cdc_test.assert_equals((cdc_test.sf_of(hub_id)).billingcountry, 'ZZ', 'unknown code passes through') FROM ns_customers WHERE hub_id = '00000000-0000-0000-0000-00000000e001';
UPDATE ns_customers SET addressbook = '[]' WHERE hub_id = '00000000-0000-0000-0000-00000000e001';
SELECT cdc_test.assert_null((cdc_test.sf_of(hub_id)).billingcity, 'no billing entry, no billing address') FROM ns_customers WHERE hub_id = '00000000-0000-0000-0000-00000000e001';

-- test: an individual becomes an account named after the person with that contact
INSERT INTO ns_customers (hub_id, internalid, isperson, firstname, lastname, email, phone)
VALUES ('00000000-0000-0000-0000-00000000e002', '1002', true, 'Grace', 'Hopper', 'grace@navy.example', '+1 202 555 0100');
DO $$
DECLARE
    a sf_accounts := cdc_test.sf_of('00000000-0000-0000-0000-00000000e002');
    c sf_contacts := cdc_test.primary_contact(a.hub_id);
BEGIN
    PERFORM cdc_test.assert_equals(a.name, 'Grace Hopper', 'account name of an individual');
    PERFORM cdc_test.assert_equals(c.firstname, 'Grace', 'contact firstname');
    PERFORM cdc_test.assert_equals(c.lastname, 'Hopper', 'contact lastname');
    PERFORM cdc_test.assert_equals(c.email, 'grace@navy.example', 'contact email');
END $$;
UPDATE ns_customers SET lastname = 'Murray Hopper' WHERE internalid = '1002';
SELECT cdc_test.assert_equals((cdc_test.sf_of(hub_id)).name, 'Grace Murray Hopper', 'renamed individual') FROM ns_customers WHERE internalid = '1002';
SELECT cdc_test.assert_equals((cdc_test.primary_contact((cdc_test.sf_of(hub_id)).hub_id)).lastname, 'Murray Hopper', 'renamed contact')
  FROM ns_customers WHERE internalid = '1002';

-- test: a contact without last name gets companyname or a placeholder
INSERT INTO ns_customers (internalid, isperson, firstname, companyname) VALUES ('1003', true, 'Cher', 'Cher Music');
SELECT cdc_test.assert_equals((cdc_test.primary_contact((cdc_test.sf_of(hub_id)).hub_id)).lastname, 'Cher Music', 'lastname from companyname')
  FROM ns_customers WHERE internalid = '1003';
SELECT cdc_test.assert_equals((cdc_test.sf_of(hub_id)).name, 'Cher', 'account name of a one-name individual')
  FROM ns_customers WHERE internalid = '1003';
INSERT INTO ns_customers (internalid, isperson, firstname) VALUES ('1004', true, 'Prince');
SELECT cdc_test.assert_equals((cdc_test.primary_contact((cdc_test.sf_of(hub_id)).hub_id)).lastname, '[not provided]', 'lastname placeholder')
  FROM ns_customers WHERE internalid = '1004';

-- test: a company without email or names gets no placeholder contact
INSERT INTO ns_customers (hub_id, internalid, companyname) VALUES ('00000000-0000-0000-0000-00000000e005', '1005', 'Quiet Co');
SELECT cdc_test.assert_equals((cdc_test.sf_of('00000000-0000-0000-0000-00000000e005')).name, 'Quiet Co', 'account created');
SELECT cdc_test.assert_count(
    $q$SELECT 1 FROM sf_contacts WHERE account_hub_id = cdc.linked_hub_id('ns_customers', '00000000-0000-0000-0000-00000000e005', 'sf_accounts')$q$,
    0, 'contacts of a bare company');
UPDATE ns_customers SET email = 'hello@quiet.example' WHERE internalid = '1005';
SELECT cdc_test.assert_equals((cdc_test.primary_contact((cdc_test.sf_of(hub_id)).hub_id)).email, 'hello@quiet.example', 'contact once there is an email')
  FROM ns_customers WHERE internalid = '1005';

-- test: an inactive customer creates no account
INSERT INTO ns_customers (hub_id, internalid, companyname, isinactive)
VALUES ('00000000-0000-0000-0000-00000000e006', '1006', 'Dormant Inc', true);
SELECT cdc_test.assert_null(cdc.linked_hub_id('ns_customers', '00000000-0000-0000-0000-00000000e006', 'sf_accounts'), 'no linked account');
SELECT cdc_test.assert_count('SELECT 1 FROM sf_accounts WHERE netsuite_id__c = ''1006''', 0, 'no account carries its internalId');

-- test: deleting a customer marks the account deleted
DELETE FROM ns_customers WHERE hub_id = '00000000-0000-0000-0000-00000000e001';
SELECT cdc_test.assert_true((cdc_test.sf_of('00000000-0000-0000-0000-00000000e001')).isdeleted, 'account marked deleted');
SELECT cdc_test.assert_not_null((cdc_test.sf_of('00000000-0000-0000-0000-00000000e001')).hub_id, 'account row kept (the link survives the delete)');
SELECT cdc_test.assert_count('SELECT 1 FROM ns_customers WHERE hub_id = ''00000000-0000-0000-0000-00000000e001''', 0, 'customer row gone');

-- test: a customer made inactive does not delete the account
UPDATE ns_customers SET isinactive = true WHERE hub_id = '00000000-0000-0000-0000-00000000e001';
SELECT cdc_test.assert_false((cdc_test.sf_of('00000000-0000-0000-0000-00000000e001')).isdeleted, 'account not deleted');

-- test: a customer whose internalId an account already carries adopts that account
ALTER TABLE sf_accounts DISABLE TRIGGER cdc_sf_accounts_to_ns;    -- a bulk load without mapping
INSERT INTO sf_accounts (hub_id, id, name, netsuite_id__c) VALUES ('00000000-0000-0000-0000-00000000a009', '001000000000009AAA', 'Epsilon', '2009');
ALTER TABLE sf_accounts ENABLE TRIGGER cdc_sf_accounts_to_ns;
INSERT INTO ns_customers (hub_id, internalid, companyname) VALUES ('00000000-0000-0000-0000-00000000e009', '2009', 'Epsilon');
SELECT cdc_test.assert_equals(cdc.linked_hub_id('ns_customers', '00000000-0000-0000-0000-00000000e009', 'sf_accounts'),
    '00000000-0000-0000-0000-00000000a009'::uuid, 'adopted account');
SELECT cdc_test.assert_count('SELECT 1 FROM sf_accounts WHERE netsuite_id__c = ''2009''', 1, 'no duplicate account');

-- test: the Salesforce AccountId follows the account on hub-made contacts
UPDATE sf_accounts SET id = '001000000000001AAA'    -- Salesforce reported the created account
 WHERE hub_id = (cdc_test.sf_of('00000000-0000-0000-0000-00000000e001')).hub_id;
INSERT INTO sf_contacts (hub_id, account_hub_id, lastname)
VALUES ('00000000-0000-0000-0000-00000000c002', (cdc_test.sf_of('00000000-0000-0000-0000-00000000e001')).hub_id, 'Second');
SELECT cdc_test.assert_equals((SELECT accountid FROM sf_contacts WHERE hub_id = '00000000-0000-0000-0000-00000000c002'),
    '001000000000001AAA', 'accountid filled');

-- test: NULL and blank values are the same on every mapped NetSuite field
INSERT INTO ns_customers (hub_id, internalid, companyname, email)
VALUES ('00000000-0000-0000-0000-00000000e007', '1007', 'Blank Ltd', 'info@blank.example');
SELECT cdc_test.snapshot('sf_accounts');
SELECT cdc_test.snapshot('sf_contacts');
UPDATE ns_customers SET phone = '', url = ' ', firstname = '', lastname = ' ', entityid = '',
                        addressbook = '[{"defaultBilling":true,"addressBookAddress":{"addr1":"","city":" ","zip":"","country":""}}]'
 WHERE hub_id = '00000000-0000-0000-0000-00000000e007';
SELECT cdc_test.assert_unchanged('sf_accounts', 'blank instead of NULL');
SELECT cdc_test.assert_unchanged('sf_contacts', 'blank instead of NULL');
UPDATE ns_customers SET email = ' INFO@blank.example ' WHERE hub_id = '00000000-0000-0000-0000-00000000e007';
SELECT cdc_test.assert_unchanged('sf_contacts', 'email differing in case and blanks');
