-- Salesforce Opportunity <-> NetSuite opportunity, linked through their account / customer.
-- Preamble: an account whose customer NetSuite has created (internal id 7001), as the
-- connectors leave them, and a second account with no customer in NetSuite yet.
INSERT INTO sf_accounts (hub_id, id, name, createddate)
VALUES ('00000000-0000-0000-0000-0000000a0001', '001000000000OPP1AA', 'Opportunity Test Corp', '2024-01-01'),
       ('00000000-0000-0000-0000-0000000a0002', '001000000000OPP2AA', 'Not Yet In NetSuite', '2024-01-01');
UPDATE ns_customers SET internalid = '7001'
 WHERE hub_id = cdc.linked_hub_id('sf_accounts', '00000000-0000-0000-0000-0000000a0001', 'ns_customers');
INSERT INTO sf_opportunities (hub_id, id, accountid, name, stagename, amount, closedate, probability, description)
VALUES ('00000000-0000-0000-0000-0000000b0001', '006000000000OPP1AA', '001000000000OPP1AA',
        'Big Deal', 'Prospecting', 50000, '2024-06-30', 10, 'Three-year licence');

-- test: an opportunity of a linked account creates a linked NetSuite opportunity
DO $$
DECLARE n ns_opportunities := (SELECT n FROM ns_opportunities n
                                WHERE hub_id = cdc.linked_hub_id('sf_opportunities', '00000000-0000-0000-0000-0000000b0001', 'ns_opportunities'));
BEGIN
    PERFORM cdc_test.assert_not_null(n.hub_id, 'linked NetSuite opportunity');
    PERFORM cdc_test.assert_equals(n.entity, '7001', 'entity is the linked customer''s internal id');
    PERFORM cdc_test.assert_equals(n.title, 'Big Deal', 'title from Name');
    PERFORM cdc_test.assert_equals(n.projectedtotal, 50000::numeric, 'projectedtotal from Amount');
    PERFORM cdc_test.assert_equals(n.expectedclosedate, '2024-06-30'::date, 'expectedclosedate from CloseDate');
    PERFORM cdc_test.assert_equals(n.probability, 10::numeric, 'probability');
    PERFORM cdc_test.assert_equals(n.memo, 'Three-year licence', 'memo from Description');
    PERFORM cdc_test.assert_equals(n.externalid, 'sf-00000000-0000-0000-0000-0000000b0001', 'externalid from the hub id');
    PERFORM cdc_test.assert_null(n.internalid, 'internalid before NetSuite assigns it');
END $$;
SELECT cdc_test.assert_equals(account_hub_id, '00000000-0000-0000-0000-0000000a0001'::uuid, 'account_hub_id resolved from AccountId')
  FROM sf_opportunities WHERE hub_id = '00000000-0000-0000-0000-0000000b0001';

-- test: an opportunity of an account whose customer NetSuite has not created yet is mapped at once
INSERT INTO sf_opportunities (hub_id, accountid, name, stagename, closedate)
VALUES ('00000000-0000-0000-0000-0000000b0002', '001000000000OPP2AA', 'Waiting Deal', 'Prospecting', '2024-07-01');
DO $$
DECLARE n ns_opportunities := (SELECT n FROM ns_opportunities n
                                WHERE hub_id = cdc.linked_hub_id('sf_opportunities', '00000000-0000-0000-0000-0000000b0002', 'ns_opportunities'));
BEGIN
    PERFORM cdc_test.assert_not_null(n.hub_id, 'linked NetSuite opportunity before the customer is in NetSuite');
    PERFORM cdc_test.assert_null(n.entity, 'entity left for the connector to resolve at send time');
    PERFORM cdc_test.assert_equals(n.entity_hub_id,
        cdc.linked_hub_id('sf_accounts', '00000000-0000-0000-0000-0000000a0002', 'ns_customers'),
        'entity_hub_id is the hub row of the account''s customer');
    PERFORM cdc_test.assert_equals(n.title, 'Waiting Deal', 'title from Name');
END $$;

-- test: NetSuite's read-back of that opportunity (entity set) keeps its customer and its account
UPDATE ns_customers SET internalid = '7002'
 WHERE hub_id = cdc.linked_hub_id('sf_accounts', '00000000-0000-0000-0000-0000000a0002', 'ns_customers');
UPDATE ns_opportunities SET internalid = '8003', entity = '7002'
 WHERE externalid = 'sf-00000000-0000-0000-0000-0000000b0002';
SELECT cdc_test.assert_equals(n.entity_hub_id,
           cdc.linked_hub_id('sf_accounts', '00000000-0000-0000-0000-0000000a0002', 'ns_customers'), 'entity_hub_id follows entity')
  FROM ns_opportunities n WHERE externalid = 'sf-00000000-0000-0000-0000-0000000b0002';
SELECT cdc_test.assert_equals(o.account_hub_id, '00000000-0000-0000-0000-0000000a0002'::uuid, 'account kept')
  FROM sf_opportunities o WHERE hub_id = '00000000-0000-0000-0000-0000000b0002';

-- test: an opportunity of an account that is not mapped to a customer is not mapped
DELETE FROM cdc.identity_links WHERE link_id = cdc.link_id_of('sf_accounts', '00000000-0000-0000-0000-0000000a0002');
INSERT INTO sf_opportunities (hub_id, accountid, name, stagename, closedate)
VALUES ('00000000-0000-0000-0000-0000000b0003', '001000000000OPP2AA', 'Orphan Deal', 'Prospecting', '2024-07-01');
SELECT cdc_test.assert_null(cdc.linked_hub_id('sf_opportunities', '00000000-0000-0000-0000-0000000b0003', 'ns_opportunities'), 'no NetSuite opportunity without a customer');

-- test: an identical Salesforce update writes nothing to ns_opportunities
SELECT cdc_test.snapshot('ns_opportunities');
UPDATE sf_opportunities SET name = name, amount = amount, systemmodstamp = '2024-01-05'
 WHERE hub_id = '00000000-0000-0000-0000-0000000b0001';
SELECT cdc_test.assert_unchanged('ns_opportunities', 'identical Salesforce update');

-- test: a Salesforce amount change updates only the NetSuite opportunity's projectedtotal
UPDATE sf_opportunities SET amount = 62500 WHERE hub_id = '00000000-0000-0000-0000-0000000b0001';
SELECT cdc_test.assert_equals(projectedtotal, 62500::numeric, 'projectedtotal follows')
  FROM ns_opportunities WHERE externalid = 'sf-00000000-0000-0000-0000-0000000b0001';
SELECT cdc_test.assert_equals(title, 'Big Deal', 'title unchanged')
  FROM ns_opportunities WHERE externalid = 'sf-00000000-0000-0000-0000-0000000b0001';

-- test: NetSuite's echo with its ids and derived fields only sets netsuite_id__c
UPDATE ns_opportunities
   SET internalid = '8001', tranid = 'OPP8001', status = 'inProgress', entitystatus = '8',
       trandate = '2024-01-02', datecreated = '2024-01-02', lastmodifieddate = '2024-01-02'
 WHERE externalid = 'sf-00000000-0000-0000-0000-0000000b0001';
DO $$
DECLARE o sf_opportunities := (SELECT o FROM sf_opportunities o WHERE hub_id = '00000000-0000-0000-0000-0000000b0001');
BEGIN
    PERFORM cdc_test.assert_equals(o.netsuite_id__c, '8001', 'netsuite_id__c from internalid');
    PERFORM cdc_test.assert_equals(o.name, 'Big Deal', 'name kept');
    PERFORM cdc_test.assert_equals(o.stagename, 'Prospecting', 'stage kept');
    PERFORM cdc_test.assert_equals(o.amount, 50000::numeric, 'amount kept');
END $$;

-- test: a NetSuite memo edit reaches the Salesforce Description
UPDATE ns_opportunities SET memo = 'Five-year licence' WHERE externalid = 'sf-00000000-0000-0000-0000-0000000b0001';
SELECT cdc_test.assert_equals(description, 'Five-year licence', 'description from memo')
  FROM sf_opportunities WHERE hub_id = '00000000-0000-0000-0000-0000000b0001';

-- test: an opportunity created in NetSuite for a linked customer creates a Salesforce opportunity
INSERT INTO ns_opportunities (hub_id, internalid, entity, title, probability, projectedtotal, expectedclosedate)
VALUES ('00000000-0000-0000-0000-0000000c0001', '8002', '7001', 'Renewal', 50, 1200, '2024-09-30');
DO $$
DECLARE o sf_opportunities := (SELECT o FROM sf_opportunities o
                                WHERE hub_id = cdc.linked_hub_id('ns_opportunities', '00000000-0000-0000-0000-0000000c0001', 'sf_opportunities'));
BEGIN
    PERFORM cdc_test.assert_not_null(o.hub_id, 'linked Salesforce opportunity');
    PERFORM cdc_test.assert_equals(o.account_hub_id, '00000000-0000-0000-0000-0000000a0001'::uuid, 'account through the customer link');
    PERFORM cdc_test.assert_equals(o.accountid, '001000000000OPP1AA', 'AccountId of the linked account');
    PERFORM cdc_test.assert_equals(o.name, 'Renewal', 'name from title');
    PERFORM cdc_test.assert_equals(o.stagename, 'Value Proposition', 'stage from probability');
    PERFORM cdc_test.assert_equals(o.amount, 1200::numeric, 'amount');
    PERFORM cdc_test.assert_equals(o.closedate, '2024-09-30'::date, 'close date');
    PERFORM cdc_test.assert_equals(o.netsuite_id__c, '8002', 'netsuite_id__c');
END $$;

-- test: deleted in Salesforce deletes the NetSuite opportunity
UPDATE sf_opportunities SET isdeleted = true WHERE hub_id = '00000000-0000-0000-0000-0000000b0001';
SELECT cdc_test.assert_count($q$SELECT 1 FROM ns_opportunities WHERE externalid = 'sf-00000000-0000-0000-0000-0000000b0001'$q$, 0, 'NetSuite opportunity deleted');

-- test: deleted in NetSuite marks the Salesforce opportunity deleted
DELETE FROM ns_opportunities WHERE externalid = 'sf-00000000-0000-0000-0000-0000000b0001';
SELECT cdc_test.assert_true(isdeleted, 'Salesforce opportunity marked deleted')
  FROM sf_opportunities WHERE hub_id = '00000000-0000-0000-0000-0000000b0001';

-- test: an opportunity read before its account (same poll) is attached and mapped when the account arrives
INSERT INTO sf_opportunities (hub_id, id, accountid, name, stagename, closedate)
VALUES ('00000000-0000-0000-0000-0000000b0009', '006000000000OPP9AA', '001000000000OPP9AA', 'Early Deal', 'Prospecting', '2024-08-01');
SELECT cdc_test.assert_null(account_hub_id, 'no account yet') FROM sf_opportunities WHERE hub_id = '00000000-0000-0000-0000-0000000b0009';
INSERT INTO sf_accounts (hub_id, id, name, createddate)
VALUES ('00000000-0000-0000-0000-0000000a0009', '001000000000OPP9AA', 'Late Account', '2024-01-01');
SELECT cdc_test.assert_equals(account_hub_id, '00000000-0000-0000-0000-0000000a0009'::uuid, 'attached when the account arrives')
  FROM sf_opportunities WHERE hub_id = '00000000-0000-0000-0000-0000000b0009';
SELECT cdc_test.assert_equals(n.entity_hub_id, cdc.linked_hub_id('sf_accounts', '00000000-0000-0000-0000-0000000a0009', 'ns_customers'),
                              'mapped to a NetSuite opportunity of the account''s customer')
  FROM ns_opportunities n
 WHERE n.hub_id = cdc.linked_hub_id('sf_opportunities', '00000000-0000-0000-0000-0000000b0009', 'ns_opportunities');
SELECT cdc_test.assert_not_null(cdc.linked_hub_id('sf_opportunities', '00000000-0000-0000-0000-0000000b0009', 'ns_opportunities'), 'linked NetSuite opportunity');
