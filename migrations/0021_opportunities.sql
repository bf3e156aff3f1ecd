-- Second object pair: Salesforce Opportunity <-> NetSuite opportunity. Same conventions as
-- 0002_staging_tables.sql: columns are the APIs' field names in lower case (the connectors read
-- and write exactly these columns, named by describe / the metadata catalog), hub_id is the
-- hub's key, REPLICA IDENTITY FULL so updates carry the old row (changed fields only) and
-- deletes the system ids.

-- Salesforce Opportunity
CREATE TABLE public.sf_opportunities (
    hub_id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    id               text        UNIQUE,            -- NULL until created in Salesforce
    accountid        text,                          -- Salesforce Account Id
    -- Hub-side parent, known before Salesforce has created the account (see sf_contacts).
    account_hub_id   uuid        REFERENCES public.sf_accounts (hub_id) ON DELETE SET NULL,
    name             text        NOT NULL,
    stagename        text        NOT NULL,
    amount           numeric(18,2),
    closedate        date        NOT NULL,
    probability      numeric(5,2),
    description      text,
    isclosed         boolean,
    iswon            boolean,
    isdeleted        boolean     NOT NULL DEFAULT false,
    systemmodstamp   timestamptz,
    lastmodifieddate timestamptz,
    createddate      timestamptz,
    netsuite_id__c   text,                          -- internalId of the linked NetSuite opportunity
    cdcsync_id__c    text        UNIQUE,            -- external id the connector upserts by
    cdc_source_modified_at timestamptz
);
ALTER TABLE public.sf_opportunities REPLICA IDENTITY FULL;
CREATE INDEX sf_opportunities_accountid_idx ON public.sf_opportunities (accountid);
CREATE INDEX sf_opportunities_account_hub_idx ON public.sf_opportunities (account_hub_id);

CREATE TRIGGER cdc_default_cdcsync_id BEFORE INSERT ON public.sf_opportunities
    FOR EACH ROW EXECUTE FUNCTION cdc.default_cdcsync_id();

-- NetSuite opportunity (a transaction of a customer)
CREATE TABLE public.ns_opportunities (
    hub_id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    internalid        text        UNIQUE,           -- NULL until created in NetSuite
    externalid        text        UNIQUE,
    tranid            text,                         -- NetSuite's document number (read only)
    entity            text,                         -- internalId of the customer
    title             text,
    entitystatus      text,                         -- customer status internalId (sets status)
    status            text,                         -- read only, derived by NetSuite
    probability       numeric(5,2),
    projectedtotal    numeric(18,2),
    expectedclosedate date,
    trandate          date,
    memo              text,
    datecreated       timestamptz,
    lastmodifieddate  timestamptz,
    cdc_source_modified_at timestamptz
);
ALTER TABLE public.ns_opportunities REPLICA IDENTITY FULL;
CREATE INDEX ns_opportunities_entity_idx ON public.ns_opportunities (entity);
